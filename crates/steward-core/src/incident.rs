//! Incidents: signals in, one incident per affected target and time, the changes that may have
//! caused it, a containment plan a manager approves, and the review it owes.
//!
//! Like [`crate::change`], every operation takes the incident and the facts the caller looked up
//! and returns the [`IncidentEvent`]s to record, one audit event each. Signals carry a
//! de-duplication key (Alertmanager's group key and fingerprint, PagerDuty's `dedup_key`, a
//! detector rule and series), so a resend changes nothing. [`correlate`] ranks the changes
//! implemented on the same or related targets shortly before the anomaly began.

use crate::change::Change;
use crate::execution::{self, PlanStep};
use crate::names::{ChangeId, TargetName, TenantId, UserName};
use crate::role::{Role, Roles};
use crate::submission::FieldError;
use crate::target::Target;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// `INC-<n>`, numbered per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IncidentId(u64);

impl IncidentId {
    pub const UNASSIGNED: IncidentId = IncidentId(0);
    pub fn from_number(number: u64) -> Self {
        IncidentId(number)
    }
    pub fn number(&self) -> u64 {
        self.0
    }
    pub fn parse(input: &str) -> Option<Self> {
        let digits = input
            .strip_prefix("INC-")
            .or_else(|| input.strip_prefix("inc-"))
            .unwrap_or(input);
        digits.parse::<u64>().ok().filter(|n| *n > 0).map(Self)
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INC-{}", self.0)
    }
}

impl TryFrom<String> for IncidentId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value == "INC-0" {
            return Ok(IncidentId::UNASSIGNED);
        }
        IncidentId::parse(&value)
            .ok_or_else(|| format!("'{value}' is not an incident id like INC-4"))
    }
}

impl From<IncidentId> for String {
    fn from(id: IncidentId) -> String {
        id.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev1 => "sev1",
            Severity::Sev2 => "sev2",
            Severity::Sev3 => "sev3",
            Severity::Sev4 => "sev4",
        }
    }

    /// `sev1`…`sev4` (any case).
    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "sev1" => Some(Severity::Sev1),
            "sev2" => Some(Severity::Sev2),
            "sev3" => Some(Severity::Sev3),
            "sev4" => Some(Severity::Sev4),
            _ => None,
        }
    }

    /// A monitoring system's word for severity: PagerDuty's `critical`/`error`/`warning`/`info`,
    /// Alertmanager's customary `severity` label values, or `sevN`. Unknown words are SEV3.
    pub fn from_external(text: &str) -> Severity {
        if let Some(s) = Severity::parse(text) {
            return s;
        }
        match text.to_ascii_lowercase().as_str() {
            "critical" | "page" | "p1" | "emergency" => Severity::Sev1,
            "error" | "high" | "major" | "p2" => Severity::Sev2,
            "info" | "low" | "informational" | "p4" | "none" => Severity::Sev4,
            _ => Severity::Sev3,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Triggered,
    Acknowledged,
    Contained,
    Resolved,
    Closed,
}

impl IncidentState {
    pub const OPEN: [IncidentState; 3] = [
        IncidentState::Triggered,
        IncidentState::Acknowledged,
        IncidentState::Contained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Triggered => "triggered",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Contained => "contained",
            IncidentState::Resolved => "resolved",
            IncidentState::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<IncidentState> {
        [
            IncidentState::Triggered,
            IncidentState::Acknowledged,
            IncidentState::Contained,
            IncidentState::Resolved,
            IncidentState::Closed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_open(self) -> bool {
        IncidentState::OPEN.contains(&self)
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert or anomaly that raised or joined an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// `alertmanager`, `pagerduty` or `detector`.
    pub source: String,
    /// Unique per source: a resend of the same key updates, never duplicates.
    pub key: String,
    pub summary: String,
    pub severity: Severity,
    /// The target it is about, when it names a registered one.
    pub target: Option<TargetName>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When the problem began, as the source says.
    pub started_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A change that may have caused the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspect {
    pub change: ChangeId,
    pub title: String,
    pub implemented_at: DateTime<Utc>,
    /// The affected target it touched, or is related to.
    pub target: TargetName,
    /// `same target`, `parent`, `child` or `same parent`.
    pub relation: String,
    pub minutes_before: i64,
    /// 0–1: closeness in time and in the dependency graph.
    pub score: f64,
    pub reason: String,
}

/// Suspects at or above this score make an incident change-related.
pub const STRONG_SUSPECT: f64 = 0.5;

/// One action of a containment plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainmentAction {
    /// Roll a (suspect) change back, undoing its steps.
    RollbackChange { name: String, change: ChangeId },
    /// Any executor step: move an alias back, isolate a deployment through a webhook, a command.
    Step { step: PlanStep },
}

impl ContainmentAction {
    pub fn name(&self) -> &str {
        match self {
            ContainmentAction::RollbackChange { name, .. } => name,
            ContainmentAction::Step { step } => &step.name,
        }
    }
}

/// Parses a containment plan: each action is `{"name", "kind": "rollback_change", "change"}` or
/// any step kind (`mlflow_alias`, `webhook`, `command`, …).
pub fn parse_actions(value: &Value) -> Result<Vec<ContainmentAction>, Vec<FieldError>> {
    let Value::Array(items) = value else {
        return Err(vec![FieldError::new(
            "actions",
            "must be a list of actions",
        )]);
    };
    if items.is_empty() {
        return Err(vec![FieldError::new(
            "actions",
            "must hold at least one action",
        )]);
    }
    let mut errors = Vec::new();
    let mut actions = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item["kind"] == "rollback_change" {
            let name = item["name"].as_str().unwrap_or("rollback").to_owned();
            match item["change"].as_str().and_then(ChangeId::parse) {
                Some(change) => actions.push(ContainmentAction::RollbackChange { name, change }),
                None => errors.push(FieldError::new(
                    format!("actions[{i}].change"),
                    "must name the change to roll back, e.g. CHG-12",
                )),
            }
            continue;
        }
        let mut step_errors = Vec::new();
        let steps = execution::parse_steps(&Value::Array(vec![item.clone()]), &mut step_errors);
        for e in step_errors {
            errors.push(FieldError::new(
                e.field.replacen("steps[0]", &format!("actions[{i}]"), 1),
                e.message,
            ));
        }
        actions.extend(
            steps
                .into_iter()
                .map(|step| ContainmentAction::Step { step }),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in actions.iter().enumerate() {
        if !seen.insert(a.name().to_owned()) {
            errors.push(FieldError::new(
                format!("actions[{i}].name"),
                format!("action '{}' is named twice", a.name()),
            ));
        }
    }
    if errors.is_empty() {
        Ok(actions)
    } else {
        Err(errors)
    }
}

/// The result of running one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    pub name: String,
    pub ok: bool,
    pub result: Value,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Containment {
    pub actions: Vec<ContainmentAction>,
    pub proposed_by: UserName,
    pub proposed_at: DateTime<Utc>,
    pub approved_by: Option<UserName>,
    pub approved_at: Option<DateTime<Utc>>,
    /// Set when a pre-approved playbook ran it without waiting for a manager.
    pub playbook: Option<String>,
    #[serde(default)]
    pub runs: Vec<ActionRun>,
}

/// The post-incident review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub what_happened: String,
    pub why: String,
    /// What the change's risk assessment missed (for change-related incidents).
    pub risk_assessment_missed: String,
    pub actions: Vec<String>,
    pub by: UserName,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub actor: UserName,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub tenant: TenantId,
    pub title: String,
    pub severity: Severity,
    pub state: IncidentState,
    /// The affected models and deployments (registered targets).
    pub targets: Vec<TargetName>,
    pub signals: Vec<Signal>,
    pub timeline: Vec<TimelineEntry>,
    pub owner: Option<UserName>,
    pub suspects: Vec<Suspect>,
    pub change_related: bool,
    pub containment: Option<Containment>,
    pub review: Option<Review>,
    /// The problem record grouping it with recurring incidents.
    pub problem: Option<String>,
    /// When the anomaly began: the earliest signal's start.
    pub started_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub contained_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// One thing that happened to an incident, recorded as one audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    /// `incident.opened`, `incident.signal_joined`, `incident.acknowledged`, …
    pub action: String,
    pub actor: UserName,
    pub comment: Option<String>,
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IncidentRefused {
    #[error("cannot {action} an incident that is {current}")]
    IllegalState {
        action: &'static str,
        current: IncidentState,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unmet(String),
    #[error("{0}")]
    Invalid(String),
}

/// The system's own name in incident events.
pub fn system() -> UserName {
    UserName::parse("steward").expect("valid")
}

impl Incident {
    /// A new incident raised by `signal` on `targets`, with its suspects already ranked.
    pub fn open(
        tenant: TenantId,
        signal: Signal,
        targets: Vec<TargetName>,
        suspects: Vec<Suspect>,
        now: DateTime<Utc>,
    ) -> (Incident, Vec<IncidentEvent>) {
        let change_related = suspects.first().is_some_and(|s| s.score >= STRONG_SUSPECT);
        let actor = system();
        let mut timeline = vec![TimelineEntry {
            at: now,
            actor: actor.clone(),
            what: format!("opened by {} signal: {}", signal.source, signal.summary),
        }];
        if let Some(top) = suspects.first() {
            timeline.push(TimelineEntry {
                at: now,
                actor: actor.clone(),
                what: format!("top suspect {}: {}", top.change, top.reason),
            });
        }
        let incident = Incident {
            id: IncidentId::UNASSIGNED,
            tenant,
            title: signal.summary.clone(),
            severity: signal.severity,
            state: IncidentState::Triggered,
            targets,
            started_at: signal.started_at,
            signals: vec![signal.clone()],
            timeline,
            owner: None,
            change_related,
            suspects: suspects.clone(),
            containment: None,
            review: None,
            problem: None,
            opened_at: now,
            acknowledged_at: None,
            contained_at: None,
            resolved_at: None,
            closed_at: None,
            updated_at: now,
            version: 0,
        };
        let event = IncidentEvent {
            action: "incident.opened".into(),
            actor,
            comment: Some(signal.summary.clone()),
            details: json!({
                "severity": incident.severity,
                "targets": incident.targets,
                "signal": {"source": signal.source, "key": signal.key},
                "suspects": suspects,
                "change_related": change_related,
            }),
        };
        (incident, vec![event])
    }

    fn event(
        &self,
        action: &str,
        actor: &UserName,
        comment: Option<String>,
        details: Value,
    ) -> IncidentEvent {
        IncidentEvent {
            action: format!("incident.{action}"),
            actor: actor.clone(),
            comment,
            details,
        }
    }

    fn note(&mut self, actor: &UserName, what: String, now: DateTime<Utc>) {
        self.timeline.push(TimelineEntry {
            at: now,
            actor: actor.clone(),
            what,
        });
        self.updated_at = now;
    }

    /// Adds a signal (or a resend of one already here: then nothing changes). A more severe
    /// signal raises the incident's severity; a new target joins the affected ones.
    pub fn add_signal(&mut self, signal: Signal, now: DateTime<Utc>) -> Vec<IncidentEvent> {
        if let Some(existing) = self
            .signals
            .iter_mut()
            .find(|s| s.source == signal.source && s.key == signal.key)
        {
            if existing.resolved_at.is_none() {
                return Vec::new();
            }
            // Firing again after it had resolved.
            existing.resolved_at = None;
            existing.received_at = now;
        } else {
            self.signals.push(signal.clone());
        }
        let actor = system();
        let mut out = Vec::new();
        if let Some(t) = &signal.target
            && !self.targets.contains(t)
        {
            self.targets.push(t.clone());
        }
        self.started_at = self.started_at.min(signal.started_at);
        self.note(
            &actor,
            format!("{} signal joined: {}", signal.source, signal.summary),
            now,
        );
        out.push(self.event(
            "signal_joined",
            &actor,
            Some(signal.summary.clone()),
            json!({"source": signal.source, "key": signal.key, "severity": signal.severity}),
        ));
        if signal.severity < self.severity {
            let before = self.severity;
            self.severity = signal.severity;
            self.note(
                &actor,
                format!("severity raised from {before} to {}", self.severity),
                now,
            );
            out.push(self.event(
                "severity_changed",
                &actor,
                None,
                json!({"before": before, "after": self.severity}),
            ));
        }
        out
    }

    /// Marks a signal resolved (idempotent). When every signal has resolved, the incident
    /// resolves too, unless people have already moved it on.
    pub fn resolve_signal(
        &mut self,
        source: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Vec<IncidentEvent> {
        let Some(signal) = self
            .signals
            .iter_mut()
            .find(|s| s.source == source && s.key == key)
        else {
            return Vec::new();
        };
        if signal.resolved_at.is_some() {
            return Vec::new();
        }
        signal.resolved_at = Some(now);
        let summary = signal.summary.clone();
        let actor = system();
        self.note(&actor, format!("{source} signal resolved: {summary}"), now);
        let mut out = vec![self.event(
            "signal_resolved",
            &actor,
            Some(summary),
            json!({"source": source, "key": key}),
        )];
        if self.state.is_open() && self.signals.iter().all(|s| s.resolved_at.is_some()) {
            out.extend(self.move_to(
                IncidentState::Resolved,
                &actor,
                Some("every signal resolved".into()),
                now,
            ));
        }
        out
    }

    fn move_to(
        &mut self,
        next: IncidentState,
        actor: &UserName,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Vec<IncidentEvent> {
        let before = self.state;
        self.state = next;
        match next {
            IncidentState::Acknowledged => self.acknowledged_at = Some(now),
            IncidentState::Contained => self.contained_at = Some(now),
            IncidentState::Resolved => {
                self.resolved_at = Some(now);
                self.acknowledged_at.get_or_insert(now);
            }
            IncidentState::Closed => self.closed_at = Some(now),
            IncidentState::Triggered => {}
        }
        self.note(
            actor,
            format!(
                "{before} → {next}{}",
                comment
                    .as_ref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            ),
            now,
        );
        vec![self.event(
            next.as_str(),
            actor,
            comment,
            json!({"before": before, "after": next}),
        )]
    }

    fn ensure(
        &self,
        action: &'static str,
        allowed: &[IncidentState],
    ) -> Result<(), IncidentRefused> {
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(IncidentRefused::IllegalState {
                action,
                current: self.state,
            })
        }
    }

    /// Someone takes the incident; they become its owner unless it has one.
    pub fn acknowledge(
        &mut self,
        who: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        self.ensure("acknowledge", &[IncidentState::Triggered])?;
        self.owner.get_or_insert_with(|| who.clone());
        Ok(self.move_to(IncidentState::Acknowledged, who, None, now))
    }

    /// Proposes a containment plan (replacing one not yet approved).
    pub fn propose(
        &mut self,
        actions: Vec<ContainmentAction>,
        who: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        self.ensure(
            "propose containment for",
            &[IncidentState::Triggered, IncidentState::Acknowledged],
        )?;
        if self
            .containment
            .as_ref()
            .is_some_and(|c| c.approved_by.is_some())
        {
            return Err(IncidentRefused::Unmet(format!(
                "{}'s containment plan is already approved",
                self.id
            )));
        }
        let names: Vec<&str> = actions.iter().map(ContainmentAction::name).collect();
        let event = self.event(
            "containment_proposed",
            who,
            Some(names.join(", ")),
            json!({"actions": actions}),
        );
        self.note(
            who,
            format!("containment proposed: {}", names.join(", ")),
            now,
        );
        self.containment = Some(Containment {
            actions,
            proposed_by: who.clone(),
            proposed_at: now,
            approved_by: None,
            approved_at: None,
            playbook: None,
            runs: Vec::new(),
        });
        Ok(vec![event])
    }

    /// An ML manager who owns an affected target approves the plan; the proposer may not.
    pub fn approve_containment(
        &mut self,
        who: &UserName,
        roles: &Roles,
        owners: &[UserName],
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        self.ensure(
            "approve containment for",
            &[IncidentState::Triggered, IncidentState::Acknowledged],
        )?;
        let id = self.id.clone();
        let Some(plan) = self.containment.as_mut() else {
            return Err(IncidentRefused::Unmet(format!(
                "{id} has no containment plan to approve: propose one first"
            )));
        };
        if plan.approved_by.is_some() {
            return Err(IncidentRefused::Unmet(format!(
                "{id}'s containment plan is already approved"
            )));
        }
        if &plan.proposed_by == who {
            return Err(IncidentRefused::Forbidden(format!(
                "{who} proposed this containment plan and so may not approve it"
            )));
        }
        if !roles.contains(Role::Manager) || !owners.contains(who) {
            let listed: Vec<&str> = owners.iter().map(|o| o.as_str()).collect();
            return Err(IncidentRefused::Forbidden(format!(
                "only a manager who owns an affected model or deployment may approve containment ({})",
                listed.join(", ")
            )));
        }
        plan.approved_by = Some(who.clone());
        plan.approved_at = Some(now);
        self.note(who, "containment approved".into(), now);
        Ok(vec![self.event(
            "containment_approved",
            who,
            None,
            json!({}),
        )])
    }

    /// Runs a pre-approved playbook's plan without a manager's approval (SEV1 only).
    pub fn run_playbook(
        &mut self,
        name: &str,
        actions: Vec<ContainmentAction>,
        who: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        if self.severity != Severity::Sev1 {
            return Err(IncidentRefused::Forbidden(format!(
                "pre-approved playbooks run only for SEV1 incidents; {} is {}: propose a plan for a manager to approve",
                self.id, self.severity
            )));
        }
        let mut out = self.propose(actions, who, now)?;
        if let Some(plan) = self.containment.as_mut() {
            plan.playbook = Some(name.to_owned());
            plan.approved_by = Some(system());
            plan.approved_at = Some(now);
        }
        self.note(
            who,
            format!("pre-approved playbook {name} runs without waiting"),
            now,
        );
        out.push(self.event(
            "playbook_started",
            who,
            Some(name.to_owned()),
            json!({"playbook": name}),
        ));
        Ok(out)
    }

    /// Records one containment action's result.
    pub fn record_action(&mut self, run: ActionRun, now: DateTime<Utc>) -> Vec<IncidentEvent> {
        let actor = system();
        let event = self.event(
            if run.ok {
                "action_succeeded"
            } else {
                "action_failed"
            },
            &actor,
            Some(run.name.clone()),
            json!({"action": run.name, "result": run.result}),
        );
        self.note(
            &actor,
            format!(
                "containment action {} {}",
                run.name,
                if run.ok { "succeeded" } else { "failed" }
            ),
            now,
        );
        if let Some(plan) = self.containment.as_mut() {
            plan.runs.push(run);
        }
        vec![event]
    }

    /// Contained: by the plan having run, or by a person saying so.
    pub fn contain(
        &mut self,
        who: &UserName,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        self.ensure(
            "contain",
            &[IncidentState::Triggered, IncidentState::Acknowledged],
        )?;
        self.acknowledged_at.get_or_insert(now);
        Ok(self.move_to(IncidentState::Contained, who, comment, now))
    }

    pub fn resolve(
        &mut self,
        who: &UserName,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        self.ensure("resolve", &IncidentState::OPEN)?;
        Ok(self.move_to(IncidentState::Resolved, who, comment, now))
    }

    /// Whether closing needs a post-incident review: SEV1, SEV2 and change-related incidents.
    pub fn needs_review(&self) -> bool {
        self.severity <= Severity::Sev2 || self.change_related
    }

    pub fn record_review(
        &mut self,
        review: Review,
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        self.ensure("review", &[IncidentState::Resolved])?;
        for (field, text) in [
            ("what_happened", &review.what_happened),
            ("why", &review.why),
        ] {
            if text.trim().is_empty() {
                return Err(IncidentRefused::Invalid(format!(
                    "{field} must not be empty"
                )));
            }
        }
        if self.change_related && review.risk_assessment_missed.trim().is_empty() {
            return Err(IncidentRefused::Invalid(
                "risk_assessment_missed must say what the change's risk assessment missed: this incident is change-related".into(),
            ));
        }
        let by = review.by.clone();
        self.note(&by, "post-incident review recorded".into(), now);
        let event = self.event(
            "reviewed",
            &by,
            Some(review.what_happened.clone()),
            json!({"actions": review.actions}),
        );
        self.review = Some(review);
        Ok(vec![event])
    }

    pub fn close(
        &mut self,
        who: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefused> {
        self.ensure("close", &[IncidentState::Resolved])?;
        if self.needs_review() && self.review.is_none() {
            return Err(IncidentRefused::Unmet(format!(
                "{} owes a post-incident review before it closes ({}): record it with `steward incident review {}`",
                self.id,
                if self.change_related {
                    "it is change-related"
                } else {
                    "it is SEV1/SEV2"
                },
                self.id
            )));
        }
        Ok(self.move_to(IncidentState::Closed, who, None, now))
    }

    /// Links the incident to a problem record (recurring failures).
    pub fn link_problem(
        &mut self,
        problem: &str,
        who: &UserName,
        now: DateTime<Utc>,
    ) -> Vec<IncidentEvent> {
        self.problem = Some(problem.to_owned());
        self.note(who, format!("linked to problem {problem}"), now);
        vec![self.event(
            "problem_linked",
            who,
            Some(problem.to_owned()),
            json!({"problem": problem}),
        )]
    }
}

/// How one target relates to an affected one in the dependency graph, and its weight.
fn relation(affected: &Target, other: &Target) -> Option<(&'static str, f64)> {
    if affected.name == other.name {
        Some(("same target", 1.0))
    } else if affected.parent.as_ref() == Some(&other.name) {
        Some(("parent", 0.7))
    } else if other.parent.as_ref() == Some(&affected.name) {
        Some(("child", 0.7))
    } else if affected.parent.is_some() && affected.parent == other.parent {
        Some(("same parent", 0.4))
    } else {
        None
    }
}

/// Ranks the changes implemented on the affected targets (or their parent, children or
/// siblings) within `window` before `began`: closeness in time (linear over the window) times
/// closeness in the graph. `targets` must hold the affected targets and every target the
/// candidates name.
pub fn correlate(
    began: DateTime<Utc>,
    affected: &[TargetName],
    targets: &[Target],
    candidates: &[Change],
    window: Duration,
) -> Vec<Suspect> {
    let find = |name: &TargetName| targets.iter().find(|t| &t.name == name);
    let mut suspects: Vec<Suspect> = Vec::new();
    for change in candidates {
        // When it actually started, never its plan: a change whose start was not recorded
        // cannot be placed before the anomaly, and one that started after it did not cause it.
        let Some(at) = change.implemented_at() else {
            continue;
        };
        if at > began || at < began - window {
            continue;
        }
        let mut best: Option<(f64, &TargetName, &'static str)> = None;
        for a in affected.iter().filter_map(&find) {
            for touched in change.request.targets.iter().filter_map(&find) {
                if let Some((rel, weight)) = relation(a, touched)
                    && best.is_none_or(|(w, _, _)| weight > w)
                {
                    best = Some((weight, &a.name, rel));
                }
            }
        }
        let Some((graph, target, rel)) = best else {
            continue;
        };
        let before = (began - at).max(Duration::zero());
        let time = 1.0 - before.num_seconds() as f64 / window.num_seconds().max(1) as f64;
        let score = (graph * time.clamp(0.0, 1.0) * 1000.0).round() / 1000.0;
        let minutes = before.num_minutes();
        suspects.push(Suspect {
            change: change.id.clone(),
            title: change.request.title.clone(),
            implemented_at: at,
            target: target.clone(),
            relation: rel.to_owned(),
            minutes_before: minutes,
            score,
            // The reason names the change, never quotes its title: it is copied into the
            // timeline and notices, where the requester's text could not be erased with them.
            reason: format!(
                "{} was implemented on {} ({rel} of {target}) {minutes} min before the anomaly began; it is {}",
                change.id,
                change.request.targets.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
                change.state
            ),
        });
    }
    suspects.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.minutes_before.cmp(&b.minutes_before))
    });
    suspects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Environment, Level, TargetKind};

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc)
            + Duration::minutes(minutes)
    }
    fn name(n: &str) -> TargetName {
        TargetName::parse(n).expect("name")
    }
    fn user(n: &str) -> UserName {
        UserName::parse(n).expect("user")
    }
    fn target(n: &str, parent: Option<&str>) -> Target {
        Target {
            name: name(n),
            kind: TargetKind::ModelDeployment,
            owner: user("mia"),
            environment: Environment::Production,
            criticality: Level::Medium,
            regulated: vec![],
            parent: parent.map(name),
        }
    }
    fn signal(key: &str, severity: Severity, started: i64) -> Signal {
        Signal {
            source: "alertmanager".into(),
            key: key.into(),
            summary: format!("alert {key}"),
            severity,
            target: Some(name("fraud")),
            labels: BTreeMap::new(),
            started_at: at(started),
            received_at: at(started),
            resolved_at: None,
        }
    }

    #[test]
    fn severities_map_from_monitoring_words() {
        assert_eq!(Severity::from_external("critical"), Severity::Sev1);
        assert_eq!(Severity::from_external("error"), Severity::Sev2);
        assert_eq!(Severity::from_external("warning"), Severity::Sev3);
        assert_eq!(Severity::from_external("info"), Severity::Sev4);
        assert_eq!(Severity::from_external("SEV2"), Severity::Sev2);
        assert_eq!(Severity::from_external("whatever"), Severity::Sev3);
    }

    #[test]
    fn resends_change_nothing_and_all_resolved_resolves() {
        let (mut incident, events) = Incident::open(
            TenantId::default_tenant(),
            signal("a", Severity::Sev3, 0),
            vec![name("fraud")],
            vec![],
            at(0),
        );
        assert_eq!(events[0].action, "incident.opened");
        assert!(
            incident
                .add_signal(signal("a", Severity::Sev3, 0), at(1))
                .is_empty()
        );
        let joined = incident.add_signal(signal("b", Severity::Sev1, 1), at(1));
        assert_eq!(joined.len(), 2, "joined and raised: {joined:?}");
        assert_eq!(incident.severity, Severity::Sev1);
        assert!(incident.resolve_signal("alertmanager", "a", at(2)).len() == 1);
        assert!(
            incident
                .resolve_signal("alertmanager", "a", at(3))
                .is_empty()
        );
        let last = incident.resolve_signal("alertmanager", "b", at(4));
        assert_eq!(
            last.last().map(|e| e.action.as_str()),
            Some("incident.resolved")
        );
        assert_eq!(incident.state, IncidentState::Resolved);
    }

    #[test]
    fn containment_needs_an_owning_manager_who_did_not_propose_it() {
        let (mut incident, _) = Incident::open(
            TenantId::default_tenant(),
            signal("a", Severity::Sev2, 0),
            vec![name("fraud")],
            vec![],
            at(0),
        );
        let action = ContainmentAction::RollbackChange {
            name: "revert".into(),
            change: ChangeId::from_number(3),
        };
        incident
            .propose(vec![action], &user("oscar"), at(1))
            .expect("proposed");
        let manager = Roles::parse_list("manager").expect("roles");
        let owners = [user("mia")];
        assert!(matches!(
            incident.approve_containment(&user("max"), &manager, &owners, at(2)),
            Err(IncidentRefused::Forbidden(_))
        ));
        assert!(matches!(
            incident.approve_containment(&user("oscar"), &manager, &[user("oscar")], at(2)),
            Err(IncidentRefused::Forbidden(_))
        ));
        incident
            .approve_containment(&user("mia"), &manager, &owners, at(2))
            .expect("approved");
        incident.contain(&system(), None, at(3)).expect("contained");
        incident
            .resolve(&user("mia"), None, at(4))
            .expect("resolved");
        assert!(
            matches!(
                incident.close(&user("mia"), at(5)),
                Err(IncidentRefused::Unmet(_))
            ),
            "SEV2 owes a review"
        );
        incident
            .record_review(
                Review {
                    what_happened: "alias moved to a bad version".into(),
                    why: "untested feature".into(),
                    risk_assessment_missed: String::new(),
                    actions: vec!["shadow test".into()],
                    by: user("mia"),
                    at: at(6),
                },
                at(6),
            )
            .expect("review");
        incident.close(&user("mia"), at(7)).expect("closed");
    }

    #[test]
    fn playbooks_run_only_for_sev1() {
        let (mut incident, _) = Incident::open(
            TenantId::default_tenant(),
            signal("a", Severity::Sev2, 0),
            vec![name("fraud")],
            vec![],
            at(0),
        );
        let action = ContainmentAction::RollbackChange {
            name: "revert".into(),
            change: ChangeId::from_number(3),
        };
        assert!(
            incident
                .run_playbook("sev1-revert", vec![action.clone()], &user("oscar"), at(1))
                .is_err()
        );
        incident.severity = Severity::Sev1;
        incident
            .run_playbook("sev1-revert", vec![action], &user("oscar"), at(1))
            .expect("runs");
        assert_eq!(
            incident
                .containment
                .as_ref()
                .and_then(|c| c.playbook.as_deref()),
            Some("sev1-revert")
        );
    }

    #[test]
    fn containment_actions_parse_with_field_paths() {
        let actions = parse_actions(&json!([
            {"name": "revert", "kind": "rollback_change", "change": "CHG-4"},
            {"name": "back", "kind": "mlflow_alias", "tracking_uri": "http://m", "model": "m", "alias": "champion", "version": 1},
        ]))
        .expect("valid");
        assert_eq!(actions.len(), 2);
        let errors = parse_actions(&json!([
            {"name": "revert", "kind": "rollback_change", "change": "yesterday"},
            {"name": "x", "kind": "webhook", "url": "ftp://x", "secret": "S"},
        ]))
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["actions[0].change", "actions[1].url"]);
    }

    /// A completed change on `on`, as stored before implementation times were recorded: it
    /// has a planned window starting `planned` minutes from the anomaly and no recorded start.
    fn stored_change(n: u64, on: &str, planned: i64) -> Change {
        let mut doc = crate::submission::tests::valid_document();
        doc["targets"] = json!([on]);
        let request = crate::submission::ChangeRequest::parse(&doc).expect("valid");
        let mut change: Change = serde_json::from_value(json!({
            "id": format!("CHG-{n}"), "tenant": "default", "requester": "rita",
            "request": request, "classification": {"type": "normal", "reason": "x"},
            "risk": {"score": 10, "level": "low", "factors": []}, "state": "completed",
            "required_approvals": [], "decisions": [], "approval_deadline": null,
            "scheduled_window": null, "implementer": null, "created_at": at(-400),
            "submitted_at": null, "updated_at": at(-400), "version": 1,
        }))
        .expect("a stored change without implementation times still loads");
        change.scheduled_window = Some(crate::submission::Window {
            start: at(planned),
            end: at(planned + 60),
        });
        change
    }

    /// A change that planned its window at `planned` and was actually implemented at `actual`.
    fn implemented(n: u64, on: &str, planned: i64, actual: i64) -> Change {
        let mut change = stored_change(n, on, planned);
        change.implementation_started_at = Some(at(actual));
        change.implementation_ended_at = Some(at(actual + 1));
        change
    }

    #[test]
    fn suspects_rank_by_time_and_graph_distance() {
        let targets = vec![
            target("cluster", None),
            target("fraud", Some("cluster")),
            target("churn", Some("cluster")),
            target("other", None),
        ];
        // Planned an hour earlier than they ran: the ranking uses when they ran.
        let make = |n: u64, on: &str, minutes: i64| implemented(n, on, minutes - 60, minutes);
        let candidates = vec![
            make(1, "fraud", -10),
            make(2, "cluster", -5),
            make(3, "churn", -2),
            make(4, "other", -1),
            make(5, "fraud", -600),
        ];
        let suspects = correlate(
            at(0),
            &[name("fraud")],
            &targets,
            &candidates,
            Duration::hours(2),
        );
        let ranked: Vec<(String, &str)> = suspects
            .iter()
            .map(|s| (s.change.to_string(), s.relation.as_str()))
            .collect();
        assert_eq!(
            ranked,
            [
                ("CHG-1".to_owned(), "same target"),
                ("CHG-2".to_owned(), "parent"),
                ("CHG-3".to_owned(), "same parent")
            ]
        );
        assert!(suspects[0].score >= STRONG_SUSPECT, "{suspects:?}");
        assert!(
            suspects[0].reason.contains("10 min before"),
            "{}",
            suspects[0].reason
        );
        assert_eq!(suspects[0].implemented_at, at(-10));
    }

    #[test]
    fn a_change_implemented_after_the_anomaly_began_is_not_a_suspect() {
        let targets = vec![target("fraud", None)];
        // Planned for 178 minutes before the anomaly, implemented two minutes after it began.
        let late = implemented(1, "fraud", -178, 2);
        // Even seconds after is after.
        let mut just_after = implemented(2, "fraud", -30, 0);
        just_after.implementation_started_at = Some(at(0) + Duration::seconds(20));
        let before = implemented(3, "fraud", -90, -5);
        assert_eq!(late.implemented_at(), Some(at(2)));
        let suspects = correlate(
            at(0),
            &[name("fraud")],
            &targets,
            &[late, just_after, before],
            Duration::hours(4),
        );
        let ids: Vec<String> = suspects.iter().map(|s| s.change.to_string()).collect();
        assert_eq!(ids, ["CHG-3"]);
        assert_eq!(suspects[0].minutes_before, 5, "{suspects:?}");
    }

    #[test]
    fn a_change_without_a_recorded_start_is_not_placed_at_its_plan() {
        let targets = vec![target("fraud", None)];
        let old = stored_change(1, "fraud", -10);
        assert_eq!(old.implemented_at(), None, "unknown, not the planned start");
        let suspects = correlate(
            at(0),
            &[name("fraud")],
            &targets,
            &[old],
            Duration::hours(2),
        );
        assert!(suspects.is_empty(), "{suspects:?}");
    }
}
