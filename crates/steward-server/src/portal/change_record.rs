//! What a change's page shows besides its approvals: the request as written, the policy
//! receipts and obligations, the plan, the journal of running it (lifecycle times, each step,
//! deployments pipelines reported, the rollback), verification, the history from the audit log
//! and the incidents that suspect the change.
//!
//! Everything is read as `GET /api/v1/changes/{id}` reads it — the stored change, the store's
//! `audit_events_for` and `incidents_linked_to` — plus, for each suspecting incident, the
//! incident itself (`GET /api/v1/incidents/{id}`'s read), whose suspect entry says why. Rows are
//! plain strings, formatted here, so the template only lays them out; times are UTC and say so.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use steward_core::change::Change;
use steward_core::execution::{Action, Check, Direction, Execution};
use steward_core::policy::RuleVerdict;
use steward_core::risk::RiskAssessment;
use steward_store::TenantStore;

/// How much of a step's recorded output a row shows; the API has all of it.
const OUTPUT_CHARS: usize = 240;

/// A time as every page shows it.
pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn when_or(t: Option<DateTime<Utc>>, otherwise: &str) -> String {
    t.map_or_else(|| otherwise.to_owned(), when)
}

/// The wire spelling of a domain enum (`undo_failed`), which is what the API shows too.
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// One risk factor and its contribution.
#[derive(Debug)]
pub(super) struct FactorRow {
    pub name: String,
    pub observed: String,
    pub points: u32,
}

pub(super) fn factor_rows(risk: &RiskAssessment) -> Vec<FactorRow> {
    (risk.factors.iter())
        .map(|f| FactorRow {
            name: f.name.clone(),
            observed: f.observed.clone(),
            points: f.points,
        })
        .collect()
}

/// What one policy rule said.
#[derive(Debug)]
pub(super) struct RuleRow {
    pub rule: String,
    pub title: String,
    /// `SOX 404, GDPR Art. 32`
    pub controls: String,
    /// pass, warn or deny
    pub verdict: &'static str,
    /// Its deny and warn messages.
    pub messages: Vec<String>,
    /// Approvals it adds: `cab_member: financial reporting`.
    pub approvals: Vec<String>,
    pub obligations: Vec<String>,
}

impl From<&RuleVerdict> for RuleRow {
    fn from(v: &RuleVerdict) -> RuleRow {
        RuleRow {
            rule: v.rule.clone(),
            title: v.title.clone().unwrap_or_default(),
            controls: v.controls.join(", "),
            verdict: v.verdict.as_str(),
            messages: v.deny.iter().chain(&v.warn).cloned().collect(),
            approvals: (v.approvals.iter())
                .map(|a| format!("{}: {}", a.role.as_str(), a.reason))
                .collect(),
            obligations: v.obligations.clone(),
        }
    }
}

impl RuleRow {
    /// Whether the rule did more than pass.
    pub(super) fn said_something(&self) -> bool {
        self.verdict != "pass" || !self.approvals.is_empty() || !self.obligations.is_empty()
    }
}

/// One policy evaluation that decided something about the change.
#[derive(Debug)]
pub(super) struct ReceiptRow {
    /// submission or approval
    pub stage: String,
    /// The policy-set version (`sha256:…`) that decided.
    pub policy_set: String,
    pub at: String,
    pub rules: Vec<RuleRow>,
    /// Rules that passed without adding anything.
    pub passed: Vec<String>,
}

#[derive(Debug)]
pub(super) struct ObligationRow {
    pub name: String,
    pub rule: String,
    /// "owed", or who met it, when and how.
    pub status: String,
}

/// One step of the plan, in words.
#[derive(Debug)]
pub(super) struct PlanRow {
    pub name: String,
    pub kind: String,
    pub what: String,
}

/// One step's journal entry.
#[derive(Debug)]
pub(super) struct RunRow {
    pub name: String,
    pub status: String,
    pub started: String,
    pub finished: String,
    pub attempts: u32,
    /// The apply phase's recorded outcome (shortened), and the undo's when there was one.
    pub result: String,
}

#[derive(Debug)]
pub(super) struct DeploymentRow {
    pub status: String,
    pub target: String,
    pub environment: String,
    pub by: String,
    pub at: String,
    /// The gate's verdict when the report arrived.
    pub gate: String,
    pub run: String,
}

/// The verification run after the steps.
#[derive(Debug)]
pub(super) struct VerificationRow {
    pub from: String,
    pub until: String,
    /// "passed at …", or "running" / "stopped".
    pub outcome: String,
    pub checks: Vec<CheckResultRow>,
}

#[derive(Debug)]
pub(super) struct CheckResultRow {
    pub check: String,
    pub status: String,
    pub detail: String,
    pub at: String,
}

/// One audit event about the change.
#[derive(Debug)]
pub(super) struct HistoryRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    /// `pending_approval → approved`, or empty when the state stayed.
    pub states: String,
    pub comment: String,
}

/// An incident that names this change as a suspect.
#[derive(Debug)]
pub(super) struct IncidentRow {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub state: String,
    /// 0–1, two decimals.
    pub score: String,
    pub strong: bool,
    pub reason: String,
}

/// Everything on the change's page besides its header, risk and approvals.
#[derive(Debug)]
pub(super) struct ChangeRecord {
    pub description: String,
    pub category: String,
    pub environment: String,
    pub targets: Vec<String>,
    pub catalog_item: String,
    pub emergency: bool,
    pub justification: String,
    pub classification_reason: String,
    /// `data low · availability medium · compliance low · rollback complexity medium`
    pub impact: String,
    pub window: String,
    pub scheduled_window: String,
    pub implementation_plan: String,
    pub rollback_plan: String,
    pub verification_plan: String,
    pub links: Vec<String>,
    pub backup: String,
    pub pipeline: String,
    pub irreversible: bool,
    pub receipts: Vec<ReceiptRow>,
    pub obligations: Vec<ObligationRow>,
    pub freeze_overrides: Vec<String>,
    pub steps: Vec<PlanRow>,
    /// The declared checks, in words, and how long they run.
    pub checks: Vec<String>,
    pub verification_period: String,
    pub implementer: String,
    pub implementation_started: String,
    pub implementation_ended: String,
    pub outcome: String,
    pub runs: Vec<RunRow>,
    /// Why and how it was rolled back, when it was.
    pub rollback: String,
    pub deployments: Vec<DeploymentRow>,
    pub verification: Option<VerificationRow>,
    pub history: Vec<HistoryRow>,
    pub incidents: Vec<IncidentRow>,
}

fn window_text(w: Option<&steward_core::submission::Window>) -> String {
    w.map_or_else(
        || "none".to_owned(),
        |w| format!("{} – {}", when(w.start), when(w.end)),
    )
}

fn shortened(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= OUTPUT_CHARS {
        return text;
    }
    let cut: String = text.chars().take(OUTPUT_CHARS).collect();
    format!("{cut}…")
}

fn step_in_words(action: &Action) -> String {
    let command = |program: &str, args: &[String]| {
        std::iter::once(program)
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match action {
        Action::MlflowAlias {
            tracking_uri,
            model,
            alias,
            version,
        } => format!("point {model}@{alias} at version {version} ({tracking_uri})"),
        Action::MlflowTags {
            tracking_uri,
            model,
            version,
            tags,
        } => {
            let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let on = version
                .as_ref()
                .map_or_else(|| model.clone(), |v| format!("{model} version {v}"));
            format!("tag {on} with {} ({tracking_uri})", tags.join(", "))
        }
        Action::Webhook {
            url,
            secret,
            timeout_seconds,
            retries,
            ..
        } => format!(
            "call {url}, signed with {secret} ({timeout_seconds} s timeout, {retries} retries)"
        ),
        Action::Command {
            program,
            args,
            undo,
            timeout_seconds,
        } => {
            let undo = undo.as_ref().map_or_else(
                || "no undo".to_owned(),
                |u| format!("undo: {}", command(&u.program, &u.args)),
            );
            format!(
                "run {} ({undo}; {timeout_seconds} s timeout)",
                command(program, args)
            )
        }
    }
}

fn check_in_words(check: &Check) -> String {
    let labels = |labels: &std::collections::BTreeMap<String, String>| {
        if labels.is_empty() {
            String::new()
        } else {
            let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(" {{{}}}", pairs.join(", "))
        }
    };
    match check {
        Check::Metric {
            name,
            labels: l,
            direction,
            max_degradation_percent,
            baseline_seconds,
            prometheus,
        } => format!(
            "metric {name}{}: fails when more than {max_degradation_percent}% worse than its {baseline_seconds} s baseline ({}){}",
            labels(l),
            match direction {
                Direction::HigherIsBetter => "higher is better",
                Direction::LowerIsBetter => "lower is better",
            },
            prometheus
                .as_ref()
                .map(|p| format!(", read from {}", p.url))
                .unwrap_or_default()
        ),
        Check::Complaints {
            metric,
            labels: l,
            max_per_hour,
        } => format!(
            "complaints ({metric}{}): fails above {max_per_hour} per hour",
            labels(l)
        ),
        Check::Compliance {
            command,
            webhook,
            timeout_seconds,
        } => match (command, webhook) {
            (Some(c), _) => format!(
                "compliance test: {} {} ({timeout_seconds} s timeout)",
                c.program,
                c.args.join(" ")
            ),
            (None, Some(w)) => format!("compliance test: webhook {}", w.url),
            (None, None) => "compliance test".into(),
        },
        Check::SecurityControls {
            metric,
            max_silence_seconds,
        } => format!(
            "security controls ({metric}): each target reports at least every {max_silence_seconds} s"
        ),
    }
}

fn journal(execution: &Execution) -> (Vec<RunRow>, String, Option<VerificationRow>) {
    let runs = (execution.steps.iter())
        .map(|s| RunRow {
            name: s.name.clone(),
            status: word(&s.status),
            started: when_or(s.started_at, "—"),
            finished: when_or(s.finished_at, "—"),
            attempts: s.attempts,
            result: match (&s.result, &s.undo) {
                (None, None) => String::new(),
                (Some(r), None) => shortened(r),
                (None, Some(u)) => format!("undo: {}", shortened(u)),
                (Some(r), Some(u)) => format!("{}; undo: {}", shortened(r), shortened(u)),
            },
        })
        .collect();
    let rollback = execution.rollback.as_ref().map_or_else(String::new, |r| {
        format!(
            "rolled back by {} at {} (trigger {}): {}{}",
            r.by,
            when(r.at),
            r.trigger,
            r.reason,
            match r.ok {
                Some(true) => format!("; every undo succeeded, {}", when_or(r.finished_at, "")),
                Some(false) => "; an undo failed: check the steps".to_owned(),
                None => "; still running".to_owned(),
            }
        )
    });
    let verification = execution.verification.as_ref().map(|v| VerificationRow {
        from: when(v.from),
        until: when(v.until),
        outcome: match (v.passed_at, &execution.rollback) {
            (Some(at), _) => format!("passed at {}", when(at)),
            (None, Some(_)) => "stopped: the change was rolled back".into(),
            (None, None) => "running".into(),
        },
        checks: (v.checks.iter())
            .map(|c| CheckResultRow {
                check: c.check.clone(),
                status: word(&c.status),
                detail: c.detail.clone(),
                at: when(c.at),
            })
            .collect(),
    });
    (runs, rollback, verification)
}

/// The change's record for its page: the change as stored, its audit history and the
/// incidents that suspect it.
pub(super) async fn record(
    store: &TenantStore<'_>,
    change: &Change,
) -> Result<ChangeRecord, ApiError> {
    let request = &change.request;
    let id = change.id.to_string();
    let history = store.audit_events_for("change", &id).await?;
    let mut incidents = Vec::new();
    for (incident_id, score, strong) in store.incidents_linked_to(&change.id).await? {
        let incident = store.get_incident(&incident_id).await?;
        let suspect = incident
            .as_ref()
            .and_then(|i| i.suspects.iter().find(|s| s.change == change.id));
        incidents.push(IncidentRow {
            id: incident_id.to_string(),
            title: incident
                .as_ref()
                .map(|i| i.title.clone())
                .unwrap_or_default(),
            severity: incident
                .as_ref()
                .map(|i| i.severity.to_string())
                .unwrap_or_default(),
            state: incident
                .as_ref()
                .map(|i| i.state.to_string())
                .unwrap_or_default(),
            score: format!("{score:.2}"),
            strong,
            reason: suspect.map(|s| s.reason.clone()).unwrap_or_default(),
        });
    }
    let (runs, rollback, verification) = change
        .execution
        .as_ref()
        .map_or_else(|| (Vec::new(), String::new(), None), journal);
    Ok(ChangeRecord {
        description: request.description.clone(),
        category: request.category.clone(),
        environment: request.environment.to_string(),
        targets: request.targets.iter().map(|t| t.to_string()).collect(),
        catalog_item: request.catalog_item.clone().unwrap_or_default(),
        emergency: request.emergency,
        justification: request.justification.clone().unwrap_or_default(),
        classification_reason: change.classification.reason.clone(),
        impact: format!(
            "data {} · availability {} · compliance {} · rollback complexity {}",
            request.impact.data,
            request.impact.availability,
            request.impact.compliance,
            request.impact.rollback_complexity
        ),
        window: window_text(request.window.as_ref()),
        scheduled_window: window_text(change.scheduled_window.as_ref()),
        implementation_plan: request.implementation_plan.clone(),
        rollback_plan: request.rollback_plan.clone(),
        verification_plan: request.verification_plan.clone().unwrap_or_default(),
        links: request.links.clone(),
        backup: request.backup.as_ref().map_or_else(String::new, |b| {
            format!(
                "{} (restore last verified: {})",
                b.reference,
                when_or(b.verified_at, "never")
            )
        }),
        pipeline: request.pipeline.as_ref().map_or_else(String::new, |p| {
            format!(
                "commit {} in run {}{}",
                p.commit,
                p.run,
                p.artifact_digest
                    .as_ref()
                    .map(|d| format!(", artifact {d}"))
                    .unwrap_or_default()
            )
        }),
        irreversible: request.irreversible,
        receipts: (change.policy_receipts.iter())
            .map(|r| {
                let (rules, passed): (Vec<_>, Vec<_>) = (r.rules.iter())
                    .map(RuleRow::from)
                    .partition(RuleRow::said_something);
                ReceiptRow {
                    stage: r.stage.as_str().to_owned(),
                    policy_set: r.policy_set.clone(),
                    at: when(r.evaluated_at),
                    rules,
                    passed: passed.into_iter().map(|r| r.rule).collect(),
                }
            })
            .collect(),
        obligations: (change.obligations.iter())
            .map(|o| ObligationRow {
                name: o.name.clone(),
                rule: o.rule.clone(),
                status: o.fulfilled.as_ref().map_or_else(
                    || "owed".to_owned(),
                    |f| format!("met by {} at {}: {}", f.by, when(f.at), f.note),
                ),
            })
            .collect(),
        freeze_overrides: (change.freeze_overrides.iter())
            .map(|f| format!("{} ({}): {}", f.name, f.scope, f.reason))
            .collect(),
        steps: (request.steps.iter())
            .map(|s| PlanRow {
                name: s.name.clone(),
                kind: s.action.kind().to_owned(),
                what: step_in_words(&s.action),
            })
            .collect(),
        checks: request
            .verification
            .as_ref()
            .map_or_else(Vec::new, |v| v.checks.iter().map(check_in_words).collect()),
        verification_period: request.verification.as_ref().map_or_else(String::new, |v| {
            format!("{} s after the steps", v.period_seconds)
        }),
        implementer: change
            .implementer
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        implementation_started: when_or(change.implemented_at(), "not started"),
        implementation_ended: when_or(change.implementation_ended(), "not ended"),
        outcome: change.outcome.clone().unwrap_or_default(),
        runs,
        rollback,
        deployments: (change.deployments.iter())
            .map(|d| DeploymentRow {
                status: d.status.as_str().to_owned(),
                target: d.target.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                environment: d.environment.to_string(),
                by: d.by.to_string(),
                at: when(d.at),
                gate: if d.allowed {
                    format!("allowed: {}", d.reason)
                } else {
                    format!("refused: {}", d.reason)
                },
                run: d.run.clone().unwrap_or_default(),
            })
            .collect(),
        verification,
        history: history
            .into_iter()
            .map(|e| {
                let state = |side: &str| e.details[side]["state"].as_str().map(str::to_owned);
                HistoryRow {
                    seq: e.seq,
                    at: when(e.occurred_at),
                    actor: e.actor,
                    action: e.action,
                    states: match (state("before"), state("after")) {
                        (Some(before), Some(after)) if before != after => {
                            format!("{before} → {after}")
                        }
                        (None, Some(after)) => format!("→ {after}"),
                        _ => String::new(),
                    },
                    comment: e.details["comment"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect(),
        incidents,
    })
}
