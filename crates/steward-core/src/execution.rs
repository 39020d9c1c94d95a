//! Typed implementation plans, the record of running them, and the checks that verify them.
//!
//! A change may carry `steps` — each an MLflow alias move, MLflow tags, a signed webhook or a
//! command — and `verification` checks that run for a period after the steps. This module holds
//! the pure part: parsing and validating the plan (every step needs a rollback path unless the
//! change is marked irreversible), the [`Execution`] journal stored on the change (which step ran,
//! its snapshot, its outcome, whether it was undone), and the verdicts of the checks over metric
//! samples. Talking to MLflow or running programs is `steward-connectors`' job; driving it all at
//! the window's start is the server's.

use crate::names::UserName;
use crate::submission::FieldError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most steps one change may carry.
pub const MAX_STEPS: usize = 50;
/// Most checks one change may carry.
pub const MAX_CHECKS: usize = 20;

/// A program with arguments, run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
}

/// What one step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Points a registered model's alias at a version (`champion` → 7).
    MlflowAlias {
        tracking_uri: String,
        model: String,
        alias: String,
        #[serde(deserialize_with = "text_or_number")]
        version: String,
    },
    /// Sets tags on a registered model, or on one of its versions.
    MlflowTags {
        tracking_uri: String,
        model: String,
        #[serde(default, deserialize_with = "optional_text_or_number")]
        version: Option<String>,
        tags: BTreeMap<String, String>,
    },
    /// A signed three-phase webhook call; `secret` names a secret the server holds
    /// (`STEWARD_SECRET_<NAME>`), so the change never carries it.
    Webhook {
        url: String,
        secret: String,
        #[serde(default)]
        body: Value,
        #[serde(default = "default_webhook_timeout")]
        timeout_seconds: u64,
        #[serde(default = "default_retries")]
        retries: u32,
    },
    /// A program with arguments; `undo` is its declared rollback.
    Command {
        program: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        undo: Option<Invocation>,
        #[serde(default = "default_command_timeout")]
        timeout_seconds: u64,
    },
}

fn default_webhook_timeout() -> u64 {
    30
}
fn default_retries() -> u32 {
    3
}
fn default_command_timeout() -> u64 {
    300
}

fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom("must be a version such as \"7\"")),
    }
}

/// As [`text_or_number`]; `null` (how an absent version is stored) is none.
fn optional_text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        other => text_or_number(other)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::MlflowAlias { .. } => "mlflow_alias",
            Action::MlflowTags { .. } => "mlflow_tags",
            Action::Webhook { .. } => "webhook",
            Action::Command { .. } => "command",
        }
    }

    /// Whether undoing the step is possible from its snapshot.
    pub fn reversible(&self) -> bool {
        match self {
            Action::Command { undo, .. } => undo.is_some(),
            _ => true,
        }
    }

    /// Whether running the step again has the same effect as running it once, so an interrupted
    /// run may simply be repeated.
    pub fn idempotent(&self) -> bool {
        matches!(self, Action::MlflowAlias { .. } | Action::MlflowTags { .. })
    }

    /// The longest one phase of the step may take, for the execution lease.
    pub fn timeout_seconds(&self) -> u64 {
        match self {
            Action::Webhook {
                timeout_seconds,
                retries,
                ..
            } => timeout_seconds * (u64::from(*retries) + 1) + 30,
            Action::Command {
                timeout_seconds, ..
            } => *timeout_seconds,
            _ => 30,
        }
    }
}

/// One step of a change's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    /// Unique within the change: `promote`, `tag-release`.
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

/// Which way a metric is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    HigherIsBetter,
    LowerIsBetter,
}

/// A Prometheus-compatible query endpoint a metric check reads instead of pushed samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// The server's base URL; `/api/v1/query_range` is appended.
    pub url: String,
    /// PromQL returning one series.
    pub query: String,
}

/// A webhook that answers a compliance test with `{"pass": true|false, "detail": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceWebhook {
    pub url: String,
    /// The name of a server-held secret the call is signed with.
    pub secret: String,
}

/// One check run while a change is under verification. Any failure rolls the change back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// A metric against its pre-change baseline: fails when it is worse by more than
    /// `max_degradation_percent` (20 unless stated).
    Metric {
        name: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        direction: Direction,
        #[serde(default = "default_degradation")]
        max_degradation_percent: f64,
        /// How far before the change the baseline reaches.
        #[serde(default = "default_baseline")]
        baseline_seconds: u64,
        #[serde(default)]
        prometheus: Option<PrometheusSource>,
    },
    /// User complaints: fails when the samples of `metric` in the last hour add up to more than
    /// `max_per_hour` (10 unless stated).
    Complaints {
        #[serde(default = "default_complaints_metric")]
        metric: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default = "default_complaints")]
        max_per_hour: f64,
    },
    /// A compliance test: a command (exit 0 passes) or a webhook.
    Compliance {
        #[serde(default)]
        command: Option<Invocation>,
        #[serde(default)]
        webhook: Option<ComplianceWebhook>,
        #[serde(default = "default_compliance_timeout")]
        timeout_seconds: u64,
    },
    /// Security controls still report: each of the change's targets must push a sample of
    /// `metric` (label `target`) at least every `max_silence_seconds`.
    SecurityControls {
        #[serde(default = "default_security_metric")]
        metric: String,
        #[serde(default = "default_silence")]
        max_silence_seconds: u64,
    },
}

fn default_degradation() -> f64 {
    20.0
}
fn default_baseline() -> u64 {
    3600
}
fn default_complaints_metric() -> String {
    "complaints".into()
}
fn default_complaints() -> f64 {
    10.0
}
fn default_compliance_timeout() -> u64 {
    60
}
fn default_security_metric() -> String {
    "security_events".into()
}
fn default_silence() -> u64 {
    900
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Metric { .. } => "metric",
            Check::Complaints { .. } => "complaints",
            Check::Compliance { .. } => "compliance",
            Check::SecurityControls { .. } => "security_controls",
        }
    }

    /// A short name for reports: `metric accuracy`, `compliance`.
    pub fn label(&self) -> String {
        match self {
            Check::Metric { name, .. } => format!("metric {name}"),
            Check::Complaints { metric, .. } => format!("complaints ({metric})"),
            Check::SecurityControls { metric, .. } => format!("security controls ({metric})"),
            Check::Compliance { .. } => "compliance test".into(),
        }
    }
}

/// How long verification runs and what it checks. The audit log's continuity is always checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// How long after the steps the checks keep running (15 minutes unless stated).
    #[serde(default = "default_period")]
    pub period_seconds: u64,
    #[serde(default)]
    pub checks: Vec<Check>,
}

fn default_period() -> u64 {
    900
}

/// Reads `steps` from a submission, recording an error per bad step.
pub fn parse_steps(value: &Value, errors: &mut Vec<FieldError>) -> Vec<PlanStep> {
    let Value::Array(items) = value else {
        errors.push(FieldError::new("steps", "must be a list of steps"));
        return Vec::new();
    };
    if items.len() > MAX_STEPS {
        errors.push(FieldError::new(
            "steps",
            format!("has {} steps; at most {MAX_STEPS}", items.len()),
        ));
        return Vec::new();
    }
    let mut steps: Vec<PlanStep> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("steps[{i}]");
        let Value::Object(map) = item else {
            errors.push(FieldError::new(
                path,
                "must be an object with name and kind",
            ));
            continue;
        };
        let mut rest: Map<String, Value> = map.clone();
        let name = match rest.remove("name") {
            Some(Value::String(n))
                if !n.is_empty()
                    && n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                n
            }
            Some(_) => {
                errors.push(FieldError::new(
                    format!("{path}.name"),
                    "must be 1 to 64 letters, digits, '-' or '_'",
                ));
                continue;
            }
            None => {
                errors.push(FieldError::new(format!("{path}.name"), "is required"));
                continue;
            }
        };
        if steps.iter().any(|s| s.name == name) {
            errors.push(FieldError::new(
                format!("{path}.name"),
                format!("step '{name}' is named twice"),
            ));
            continue;
        }
        match serde_json::from_value::<Action>(Value::Object(rest)) {
            Ok(action) => match check_action(&action) {
                Ok(()) => steps.push(PlanStep { name, action }),
                Err((field, message)) => {
                    errors.push(FieldError::new(format!("{path}.{field}"), message))
                }
            },
            Err(e) => errors.push(FieldError::new(
                path,
                format!(
                    "{e} (kinds: mlflow_alias, mlflow_tags, webhook, command; see the README's plan section)"
                ),
            )),
        }
    }
    steps
}

fn check_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "http://".len()
}

fn check_action(action: &Action) -> Result<(), (&'static str, String)> {
    match action {
        Action::MlflowAlias {
            tracking_uri,
            model,
            alias,
            ..
        } => {
            if !check_url(tracking_uri) {
                return Err(("tracking_uri", "must be an http(s) URL".into()));
            }
            if model.trim().is_empty() {
                return Err(("model", "must not be empty".into()));
            }
            if alias.trim().is_empty() || alias.chars().all(|c| c.is_ascii_digit()) {
                return Err((
                    "alias",
                    "must be a name such as champion (not a number)".into(),
                ));
            }
        }
        Action::MlflowTags {
            tracking_uri,
            model,
            tags,
            ..
        } => {
            if !check_url(tracking_uri) {
                return Err(("tracking_uri", "must be an http(s) URL".into()));
            }
            if model.trim().is_empty() {
                return Err(("model", "must not be empty".into()));
            }
            if tags.is_empty() {
                return Err(("tags", "must set at least one tag".into()));
            }
        }
        Action::Webhook {
            url,
            secret,
            timeout_seconds,
            ..
        } => {
            if !check_url(url) {
                return Err(("url", "must be an http(s) URL".into()));
            }
            if !secret_name_ok(secret) {
                return Err((
                    "secret",
                    "must name a secret the server holds (letters, digits, '_'), not the secret itself".into(),
                ));
            }
            if !(1..=3600).contains(timeout_seconds) {
                return Err(("timeout_seconds", "must be 1 to 3600".into()));
            }
        }
        Action::Command {
            program,
            timeout_seconds,
            undo,
            ..
        } => {
            if program.trim().is_empty() {
                return Err(("program", "must not be empty".into()));
            }
            if undo.as_ref().is_some_and(|u| u.program.trim().is_empty()) {
                return Err(("undo.program", "must not be empty".into()));
            }
            if !(1..=86_400).contains(timeout_seconds) {
                return Err(("timeout_seconds", "must be 1 to 86400".into()));
            }
        }
    }
    Ok(())
}

/// A secret's name as a step or check refers to it: `STEWARD_SECRET_<NAME>` holds its value.
pub fn secret_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("whsec_")
}

/// Reads `verification` from a submission.
pub fn parse_verification(value: &Value, errors: &mut Vec<FieldError>) -> Option<Verification> {
    let verification: Verification = match serde_json::from_value(value.clone()) {
        Ok(v) => v,
        Err(e) => {
            errors.push(FieldError::new(
                "verification",
                format!(
                    "{e} (period_seconds, and checks of kind metric, complaints, compliance, security_controls)"
                ),
            ));
            return None;
        }
    };
    let before = errors.len();
    if !(60..=7 * 86_400).contains(&verification.period_seconds) && verification.period_seconds != 0
    {
        errors.push(FieldError::new(
            "verification.period_seconds",
            "must be 0 or between 60 and 604800 (a week)",
        ));
    }
    if verification.checks.len() > MAX_CHECKS {
        errors.push(FieldError::new(
            "verification.checks",
            format!("at most {MAX_CHECKS} checks"),
        ));
    }
    for (i, check) in verification.checks.iter().enumerate() {
        let path = format!("verification.checks[{i}]");
        let problem = match check {
            Check::Metric {
                max_degradation_percent,
                baseline_seconds,
                prometheus,
                name,
                ..
            } => {
                if name.trim().is_empty() {
                    Some(("name", "must name the metric".to_owned()))
                } else if !(0.0..=1000.0).contains(max_degradation_percent) {
                    Some(("max_degradation_percent", "must be 0 to 1000".into()))
                } else if *baseline_seconds < 60 {
                    Some(("baseline_seconds", "must be at least 60".into()))
                } else if prometheus.as_ref().is_some_and(|p| !check_url(&p.url)) {
                    Some(("prometheus.url", "must be an http(s) URL".into()))
                } else {
                    None
                }
            }
            Check::Complaints { max_per_hour, .. } if *max_per_hour < 0.0 => {
                Some(("max_per_hour", "must not be negative".into()))
            }
            Check::Complaints { .. } => None,
            Check::Compliance {
                command, webhook, ..
            } => match (command, webhook) {
                (None, None) | (Some(_), Some(_)) => Some((
                    "command",
                    "give exactly one of command or webhook".to_owned(),
                )),
                (_, Some(w)) if !check_url(&w.url) => {
                    Some(("webhook.url", "must be an http(s) URL".into()))
                }
                (_, Some(w)) if !secret_name_ok(&w.secret) => Some((
                    "webhook.secret",
                    "must name a secret the server holds, not the secret itself".into(),
                )),
                _ => None,
            },
            Check::SecurityControls {
                max_silence_seconds,
                ..
            } if *max_silence_seconds < 10 => {
                Some(("max_silence_seconds", "must be at least 10".into()))
            }
            Check::SecurityControls { .. } => None,
        };
        if let Some((field, message)) = problem {
            errors.push(FieldError::new(format!("{path}.{field}"), message));
        }
    }
    (errors.len() == before).then_some(verification)
}

/// Where one step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    /// Its snapshot is taken and it was sent; whether it finished is not yet recorded.
    Started,
    Applied,
    Failed,
    /// The server stopped while it ran: its effect is unknown.
    Interrupted,
    Undone,
    UndoFailed,
}

/// The journal of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRun {
    pub name: String,
    pub status: StepStatus,
    /// What undoing needs, taken before the step ran.
    pub snapshot: Option<Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The apply phase's outcome (output, exit status, HTTP status).
    pub result: Option<Value>,
    /// The undo phase's outcome.
    pub undo: Option<Value>,
    /// How many times the step was sent (more than one only for idempotent steps resumed).
    pub attempts: u32,
}

/// The state of one verification check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    pub check: String,
    pub status: CheckStatus,
    pub detail: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passing,
    /// Not enough data to judge yet (no baseline, no samples since the change).
    Inconclusive,
    Failed,
}

/// Verification after the steps ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationRun {
    /// When the steps finished: samples after this are "after the change".
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The audit log's size when verification began; it must only grow, without gaps.
    pub audit_size_at_start: u64,
    pub checks: Vec<CheckState>,
    /// Set when the period ended with no trigger.
    pub passed_at: Option<DateTime<Utc>>,
}

/// Why and how a change was rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRun {
    /// `manual`, `metric`, `complaints`, `compliance`, `security_controls`, `audit_gap`,
    /// `step_failed`.
    pub trigger: String,
    pub reason: String,
    pub by: UserName,
    pub at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether every undo succeeded.
    pub ok: Option<bool>,
}

/// The journal of a change's execution, stored on the change and saved at every step boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub started_at: DateTime<Utc>,
    pub started_by: UserName,
    pub steps: Vec<StepRun>,
    /// Until when the server running it holds it; after that another may resume it.
    pub lease_until: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub verification: Option<VerificationRun>,
    pub rollback: Option<RollbackRun>,
}

impl Execution {
    pub fn new(steps: &[PlanStep], by: &UserName, now: DateTime<Utc>) -> Execution {
        Execution {
            started_at: now,
            started_by: by.clone(),
            steps: steps
                .iter()
                .map(|s| StepRun {
                    name: s.name.clone(),
                    status: StepStatus::Pending,
                    snapshot: None,
                    started_at: None,
                    finished_at: None,
                    result: None,
                    undo: None,
                    attempts: 0,
                })
                .collect(),
            lease_until: now,
            finished_at: None,
            verification: None,
            rollback: None,
        }
    }

    /// The steps to undo on rollback, last first: those that ran or may have run.
    pub fn undo_order(&self) -> Vec<usize> {
        (0..self.steps.len())
            .rev()
            .filter(|&i| {
                matches!(
                    self.steps[i].status,
                    StepStatus::Applied
                        | StepStatus::Failed
                        | StepStatus::Interrupted
                        | StepStatus::Started
                        | StepStatus::UndoFailed
                ) && self.steps[i].snapshot.is_some()
            })
            .collect()
    }

    /// Whether verification is running now.
    pub fn verifying(&self) -> bool {
        self.rollback.is_none()
            && self
                .verification
                .as_ref()
                .is_some_and(|v| v.passed_at.is_none())
    }

    /// Whether the server holding the execution may have stopped.
    pub fn lease_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.lease_until
    }
}

/// What to do with an execution found `implementing` whose lease ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Carry on from step `index`; `repeat` says that step was interrupted and is idempotent.
    From { index: usize, repeat: bool },
    /// Step `index` was interrupted and cannot safely run again: fail the change.
    Interrupted { index: usize },
    /// Every step already applied: go on to verification.
    Done,
}

/// Decides how an interrupted execution resumes, never running a non-idempotent step twice.
pub fn resume(execution: &Execution, steps: &[PlanStep]) -> Resume {
    for (index, run) in execution.steps.iter().enumerate() {
        match run.status {
            StepStatus::Applied => continue,
            StepStatus::Pending => {
                return Resume::From {
                    index,
                    repeat: false,
                };
            }
            StepStatus::Started if steps.get(index).is_some_and(|s| s.action.idempotent()) => {
                return Resume::From {
                    index,
                    repeat: true,
                };
            }
            _ => return Resume::Interrupted { index },
        }
    }
    Resume::Done
}

/// One metric reading, for the checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub at: DateTime<Utc>,
    pub value: f64,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Judges a metric check: the mean after the change against the mean over the baseline period
/// before the execution started. Degradation is measured in the metric's bad direction.
pub fn judge_metric(
    direction: Direction,
    max_degradation_percent: f64,
    baseline: &[Reading],
    after: &[Reading],
) -> (CheckStatus, String) {
    let (Some(before), Some(now)) = (
        mean(baseline.iter().map(|r| r.value)),
        mean(after.iter().map(|r| r.value)),
    ) else {
        return (
            CheckStatus::Inconclusive,
            format!(
                "{} baseline and {} post-change samples: nothing to compare yet",
                baseline.len(),
                after.len()
            ),
        );
    };
    if before == 0.0 {
        return (
            CheckStatus::Inconclusive,
            "the baseline is 0: a relative degradation cannot be measured".into(),
        );
    }
    let worse = match direction {
        Direction::HigherIsBetter => (before - now) / before.abs() * 100.0,
        Direction::LowerIsBetter => (now - before) / before.abs() * 100.0,
    };
    let detail = format!(
        "baseline {before:.4} ({} samples), now {now:.4} ({} samples): {} by {:.1}% (limit {max_degradation_percent}%)",
        baseline.len(),
        after.len(),
        if worse > 0.0 { "worse" } else { "better" },
        worse.abs()
    );
    if worse > max_degradation_percent {
        (CheckStatus::Failed, detail)
    } else {
        (CheckStatus::Passing, detail)
    }
}

/// Judges complaints: the samples of the last hour added up.
pub fn judge_complaints(
    max_per_hour: f64,
    readings: &[Reading],
    now: DateTime<Utc>,
) -> (CheckStatus, String) {
    let hour_ago = now - Duration::hours(1);
    let total: f64 = readings
        .iter()
        .filter(|r| r.at > hour_ago && r.at <= now)
        .map(|r| r.value)
        .sum();
    let detail = format!("{total} complaints in the last hour (limit {max_per_hour})");
    if total > max_per_hour {
        (CheckStatus::Failed, detail)
    } else {
        (CheckStatus::Passing, detail)
    }
}

/// Judges security controls: every target reported within `max_silence` of now. Silence is
/// counted from the later of its last report and the start of verification.
pub fn judge_security(
    max_silence_seconds: u64,
    last_report: &[(String, Option<DateTime<Utc>>)],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (CheckStatus, String) {
    let limit = Duration::seconds(max_silence_seconds as i64);
    let silent: Vec<String> = last_report
        .iter()
        .filter(|(_, last)| now - last.unwrap_or(since).max(since) > limit)
        .map(|(target, last)| match last {
            Some(at) => format!("{target} (last report {})", at.to_rfc3339()),
            None => format!("{target} (no report)"),
        })
        .collect();
    if silent.is_empty() {
        (
            CheckStatus::Passing,
            format!("every target reported within {max_silence_seconds}s"),
        )
    } else {
        (
            CheckStatus::Failed,
            format!(
                "silent for more than {max_silence_seconds}s: {}",
                silent.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
            + Duration::minutes(minutes)
    }

    fn readings(values: &[(i64, f64)]) -> Vec<Reading> {
        values
            .iter()
            .map(|&(m, value)| Reading { at: at(m), value })
            .collect()
    }

    #[test]
    fn a_tags_step_on_the_model_reads_back_as_stored() {
        let mut errors = Vec::new();
        let steps = parse_steps(
            &json!([{"name": "label", "kind": "mlflow_tags", "tracking_uri": "http://127.0.0.1:5000",
                     "model": "fraud", "tags": {"team": "risk"}}]),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let stored = serde_json::to_value(&steps).expect("json");
        let read: Vec<PlanStep> = serde_json::from_value(stored).expect("reads back");
        assert_eq!(read, steps);
    }

    #[test]
    fn steps_parse_and_name_each_bad_field() {
        let mut errors = Vec::new();
        let steps = parse_steps(
            &json!([
                {"name": "promote", "kind": "mlflow_alias", "tracking_uri": "http://127.0.0.1:5000",
                 "model": "fraud", "alias": "champion", "version": 2},
                {"name": "notify", "kind": "webhook", "url": "https://hooks.example", "secret": "DEPLOY"},
                {"name": "warm", "kind": "command", "program": "/bin/true", "undo": {"program": "/bin/true"}},
            ]),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(steps.len(), 3);
        assert!(matches!(&steps[0].action, Action::MlflowAlias { version, .. } if version == "2"));
        assert!(steps.iter().all(|s| s.action.reversible()));

        let mut errors = Vec::new();
        parse_steps(
            &json!([
                {"name": "a", "kind": "teleport"},
                {"name": "a b", "kind": "command", "program": "x"},
                {"name": "c", "kind": "webhook", "url": "ftp://x", "secret": "S"},
                {"name": "d", "kind": "webhook", "url": "https://x", "secret": "whsec_abc"},
                {"name": "e", "kind": "mlflow_alias", "tracking_uri": "http://m", "model": "m", "alias": "7", "version": "7"},
                {"name": "f", "kind": "command", "program": "x", "shell": "bash"},
            ]),
            &mut errors,
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "steps[0]",
                "steps[1].name",
                "steps[2].url",
                "steps[3].secret",
                "steps[4].alias",
                "steps[5]"
            ]
        );
        assert!(
            errors[0].message.contains("teleport"),
            "{}",
            errors[0].message
        );
        assert!(errors[5].message.contains("shell"), "{}", errors[5].message);
    }

    #[test]
    fn verification_parses_with_defaults_and_refuses_nonsense() {
        let mut errors = Vec::new();
        let v = parse_verification(
            &json!({"checks": [{"kind": "metric", "name": "accuracy"}, {"kind": "complaints"}]}),
            &mut errors,
        )
        .expect("valid");
        assert_eq!(v.period_seconds, 900);
        assert!(matches!(
            &v.checks[0],
            Check::Metric { max_degradation_percent, .. } if *max_degradation_percent == 20.0
        ));
        assert!(
            matches!(&v.checks[1], Check::Complaints { max_per_hour, .. } if *max_per_hour == 10.0)
        );

        let mut errors = Vec::new();
        assert!(
            parse_verification(
                &json!({"period_seconds": 5, "checks": [{"kind": "compliance"}]}),
                &mut errors
            )
            .is_none()
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "verification.period_seconds",
                "verification.checks[0].command"
            ]
        );
    }

    #[test]
    fn a_thirty_percent_drop_fails_a_twenty_percent_limit() {
        let baseline = readings(&[(-30, 0.90), (-20, 0.92), (-10, 0.88)]);
        let after = readings(&[(5, 0.63)]);
        let (status, detail) = judge_metric(Direction::HigherIsBetter, 20.0, &baseline, &after);
        assert_eq!(status, CheckStatus::Failed, "{detail}");
        assert!(detail.contains("worse by 30.0%"), "{detail}");
        let (status, _) = judge_metric(
            Direction::HigherIsBetter,
            20.0,
            &baseline,
            &readings(&[(5, 0.80)]),
        );
        assert_eq!(status, CheckStatus::Passing);
        // Latency: higher is worse.
        let (status, _) = judge_metric(
            Direction::LowerIsBetter,
            20.0,
            &readings(&[(-5, 100.0)]),
            &readings(&[(5, 125.0)]),
        );
        assert_eq!(status, CheckStatus::Failed);
        let (status, _) = judge_metric(Direction::HigherIsBetter, 20.0, &[], &after);
        assert_eq!(status, CheckStatus::Inconclusive);
    }

    #[test]
    fn complaints_count_the_last_hour_only() {
        let now = at(120);
        let old = readings(&[(30, 50.0)]);
        assert_eq!(judge_complaints(10.0, &old, now).0, CheckStatus::Passing);
        let recent = readings(&[(70, 6.0), (110, 5.0)]);
        let (status, detail) = judge_complaints(10.0, &recent, now);
        assert_eq!(status, CheckStatus::Failed, "{detail}");
        assert_eq!(
            judge_complaints(10.0, &readings(&[(70, 10.0)]), now).0,
            CheckStatus::Passing
        );
    }

    #[test]
    fn security_controls_fail_on_silence() {
        let since = at(0);
        let reports = vec![
            ("gpu-a".to_owned(), Some(at(9))),
            ("gpu-b".to_owned(), None),
        ];
        assert_eq!(
            judge_security(600, &reports, since, at(9)).0,
            CheckStatus::Passing
        );
        let (status, detail) = judge_security(600, &reports, since, at(11));
        assert_eq!(status, CheckStatus::Failed);
        assert!(
            detail.contains("gpu-b (no report)") && !detail.contains("gpu-a"),
            "{detail}"
        );
    }

    #[test]
    fn resuming_never_repeats_a_step_that_is_not_idempotent() {
        let mut errors = Vec::new();
        let steps = parse_steps(
            &json!([
                {"name": "a", "kind": "mlflow_alias", "tracking_uri": "http://m", "model": "m", "alias": "champion", "version": "2"},
                {"name": "b", "kind": "command", "program": "/bin/true", "undo": {"program": "/bin/true"}},
            ]),
            &mut errors,
        );
        let who = UserName::parse("steward").expect("name");
        let mut execution = Execution::new(&steps, &who, at(0));
        assert_eq!(
            resume(&execution, &steps),
            Resume::From {
                index: 0,
                repeat: false
            }
        );
        execution.steps[0].status = StepStatus::Started;
        execution.steps[0].snapshot = Some(json!({}));
        assert_eq!(
            resume(&execution, &steps),
            Resume::From {
                index: 0,
                repeat: true
            }
        );
        execution.steps[0].status = StepStatus::Applied;
        execution.steps[1].status = StepStatus::Started;
        execution.steps[1].snapshot = Some(json!({}));
        assert_eq!(resume(&execution, &steps), Resume::Interrupted { index: 1 });
        assert_eq!(execution.undo_order(), vec![1, 0]);
        execution.steps[1].status = StepStatus::Applied;
        assert_eq!(resume(&execution, &steps), Resume::Done);
    }
}
