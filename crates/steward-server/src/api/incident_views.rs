//! Wire types of the incident endpoints: incidents, problem records, the response metrics,
//! detector rules and playbooks, and the receipts alert senders get back.
//!
//! Like [`super::views`], these mirror the domain types on purpose: `steward_core::incident`
//! may change shape without breaking the keys the CLI and integrations read, and the domain
//! crate stays free of HTTP and schema concerns. A `serde_json::Value` field is left only where
//! the content is a document someone else wrote: an executor step's parameters and its output,
//! a detector rule or playbook as the user stored it.

use super::views::HistoryEntryView;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::incident::{
    ActionRun, Containment, ContainmentAction, Incident, Review, Signal, Suspect, TimelineEntry,
};
use steward_core::measures::incidents::SeverityFigures;
use steward_store::AuditEvent;
use utoipa::ToSchema;

/// One incident with everything known about it, as every incident endpoint but the list
/// answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    /// `INC-<n>`
    pub id: String,
    pub tenant: String,
    pub title: String,
    /// sev1 … sev4
    pub severity: String,
    /// triggered, acknowledged, contained, resolved or closed
    pub state: String,
    /// The affected models and deployments (registered targets).
    pub targets: Vec<String>,
    /// The alerts and anomalies that raised or joined it, oldest first.
    pub signals: Vec<SignalView>,
    pub timeline: Vec<TimelineEntryView>,
    pub owner: Option<String>,
    /// Changes that may have caused it, likeliest first.
    pub suspects: Vec<SuspectView>,
    /// A change is its likely cause (the top suspect is strong).
    pub change_related: bool,
    pub containment: Option<ContainmentView>,
    pub review: Option<ReviewView>,
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
    /// A review is owed before it may close (SEV1/SEV2 or change-related).
    pub needs_review: bool,
    /// Every audit event about this incident, oldest first.
    pub history: Vec<HistoryEntryView>,
}

impl IncidentView {
    /// The incident and its audit history (`store.audit_events_for("incident", id)`).
    pub fn new(incident: &Incident, history: Vec<AuditEvent>) -> IncidentView {
        IncidentView {
            id: incident.id.to_string(),
            tenant: incident.tenant.to_string(),
            title: incident.title.clone(),
            severity: incident.severity.to_string(),
            state: incident.state.to_string(),
            targets: incident.targets.iter().map(ToString::to_string).collect(),
            signals: incident.signals.iter().map(SignalView::from).collect(),
            timeline: incident
                .timeline
                .iter()
                .map(TimelineEntryView::from)
                .collect(),
            owner: incident.owner.as_ref().map(ToString::to_string),
            suspects: incident.suspects.iter().map(SuspectView::from).collect(),
            change_related: incident.change_related,
            containment: incident.containment.as_ref().map(ContainmentView::from),
            review: incident.review.as_ref().map(ReviewView::from),
            problem: incident.problem.clone(),
            started_at: incident.started_at,
            opened_at: incident.opened_at,
            acknowledged_at: incident.acknowledged_at,
            contained_at: incident.contained_at,
            resolved_at: incident.resolved_at,
            closed_at: incident.closed_at,
            updated_at: incident.updated_at,
            version: incident.version,
            needs_review: incident.needs_review(),
            history: history.into_iter().map(HistoryEntryView::from).collect(),
        }
    }
}

/// One alert or anomaly that raised or joined an incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalView {
    /// alertmanager, pagerduty, detector or manual
    pub source: String,
    /// Unique per source: a resend of the same key updates, never duplicates.
    pub key: String,
    pub summary: String,
    /// sev1 … sev4
    pub severity: String,
    /// The target it is about, when it names a registered one.
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// When the problem began, as the source says.
    pub started_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<&Signal> for SignalView {
    fn from(s: &Signal) -> Self {
        SignalView {
            source: s.source.clone(),
            key: s.key.clone(),
            summary: s.summary.clone(),
            severity: s.severity.to_string(),
            target: s.target.as_ref().map(ToString::to_string),
            labels: s.labels.clone(),
            started_at: s.started_at,
            received_at: s.received_at,
            resolved_at: s.resolved_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntryView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub what: String,
}

impl From<&TimelineEntry> for TimelineEntryView {
    fn from(e: &TimelineEntry) -> Self {
        TimelineEntryView {
            at: e.at,
            actor: e.actor.to_string(),
            what: e.what.clone(),
        }
    }
}

/// A change that may have caused the incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspectView {
    /// `CHG-<n>`
    pub change: String,
    pub title: String,
    pub implemented_at: DateTime<Utc>,
    /// The affected target it touched, or is related to.
    pub target: String,
    /// `same target`, `parent`, `child` or `same parent`.
    pub relation: String,
    pub minutes_before: i64,
    /// 0–1: closeness in time and in the dependency graph.
    pub score: f64,
    pub reason: String,
}

impl From<&Suspect> for SuspectView {
    fn from(s: &Suspect) -> Self {
        SuspectView {
            change: s.change.to_string(),
            title: s.title.clone(),
            implemented_at: s.implemented_at,
            target: s.target.to_string(),
            relation: s.relation.clone(),
            minutes_before: s.minutes_before,
            score: s.score,
            reason: s.reason.clone(),
        }
    }
}

/// The containment plan: proposed, approved (or run as a pre-approved playbook), and run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContainmentView {
    pub actions: Vec<ContainmentActionView>,
    pub proposed_by: String,
    pub proposed_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    /// Set when a pre-approved playbook ran it without waiting for a manager.
    pub playbook: Option<String>,
    /// Each action's result, in the order they ran.
    pub runs: Vec<ActionRunView>,
}

impl From<&Containment> for ContainmentView {
    fn from(c: &Containment) -> Self {
        ContainmentView {
            actions: c.actions.iter().map(ContainmentActionView::from).collect(),
            proposed_by: c.proposed_by.to_string(),
            proposed_at: c.proposed_at,
            approved_by: c.approved_by.as_ref().map(ToString::to_string),
            approved_at: c.approved_at,
            playbook: c.playbook.clone(),
            runs: c.runs.iter().map(ActionRunView::from).collect(),
        }
    }
}

/// One action of a containment plan.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainmentActionView {
    /// Roll a (suspect) change back, undoing its steps.
    RollbackChange {
        name: String,
        /// `CHG-<n>`
        change: String,
    },
    /// Any executor step (`mlflow_alias`, `webhook`, `command`, …): its `name`, `kind` and that
    /// kind's parameters, as in a change's `steps`.
    Step {
        #[schema(value_type = Object)]
        step: Value,
    },
}

impl From<&ContainmentAction> for ContainmentActionView {
    fn from(a: &ContainmentAction) -> Self {
        match a {
            ContainmentAction::RollbackChange { name, change } => {
                ContainmentActionView::RollbackChange {
                    name: name.clone(),
                    change: change.to_string(),
                }
            }
            ContainmentAction::Step { step } => ContainmentActionView::Step {
                step: serde_json::to_value(step).unwrap_or_default(),
            },
        }
    }
}

/// The result of running one containment action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionRunView {
    pub name: String,
    pub ok: bool,
    /// What the executor answered (its own shape per step kind).
    #[schema(value_type = Object)]
    pub result: Value,
    pub at: DateTime<Utc>,
}

impl From<&ActionRun> for ActionRunView {
    fn from(r: &ActionRun) -> Self {
        ActionRunView {
            name: r.name.clone(),
            ok: r.ok,
            result: r.result.clone(),
            at: r.at,
        }
    }
}

/// The post-incident review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub what_happened: String,
    pub why: String,
    /// What the change's risk assessment missed (for change-related incidents).
    pub risk_assessment_missed: String,
    /// Follow-up actions.
    pub actions: Vec<String>,
    pub by: String,
    pub at: DateTime<Utc>,
}

impl From<&Review> for ReviewView {
    fn from(r: &Review) -> Self {
        ReviewView {
            what_happened: r.what_happened.clone(),
            why: r.why.clone(),
            risk_assessment_missed: r.risk_assessment_missed.clone(),
            actions: r.actions.clone(),
            by: r.by.to_string(),
            at: r.at,
        }
    }
}

/// The response metrics over a period (`GET /incident-metrics`).
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentMetricsView {
    /// The period's start: incidents opened since then count.
    pub since: DateTime<Utc>,
    /// The period's end (exclusive): incidents opened before then count.
    pub until: DateTime<Utc>,
    /// How many incidents opened in the period.
    pub incidents: usize,
    /// Null when no incident in the period got that far.
    pub mean_minutes_to_acknowledge: Option<f64>,
    pub mean_minutes_to_contain: Option<f64>,
    pub mean_minutes_to_resolve: Option<f64>,
    /// Incidents per affected target.
    pub incidents_per_target: BTreeMap<String, u64>,
    /// 0–1; null when there were no incidents.
    pub change_related_share: Option<f64>,
    /// Changes whose implementation started in the period.
    pub changes_implemented: usize,
    /// 0–1: of those, the share that failed, was rolled back, or is a strong suspect of an
    /// incident; null when none was implemented.
    pub change_failure_rate: Option<f64>,
    /// Every severity, sev1 first, zero included.
    pub by_severity: Vec<SeverityMetricsView>,
}

/// The incidents of one severity opened in the period, and how long restoring them took.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeverityMetricsView {
    /// sev1 … sev4
    pub severity: String,
    pub incidents: usize,
    /// Of those, how many are resolved (the times to restore below are theirs).
    pub resolved: usize,
    /// Median time from opening to resolution, in minutes (nearest rank); null when none
    /// is resolved.
    pub median_minutes_to_restore: Option<f64>,
    /// 90th percentile of the same (nearest rank).
    pub p90_minutes_to_restore: Option<f64>,
}

impl From<&SeverityFigures> for SeverityMetricsView {
    fn from(f: &SeverityFigures) -> Self {
        SeverityMetricsView {
            severity: f.severity.as_str().to_owned(),
            incidents: f.incidents,
            resolved: f.time_to_restore.count,
            median_minutes_to_restore: f.time_to_restore.p50_minutes,
            p90_minutes_to_restore: f.time_to_restore.p90_minutes,
        }
    }
}

/// A problem record: the root cause behind recurring incidents, and its permanent fix.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    pub name: String,
    pub title: String,
    pub description: Option<String>,
    /// The change raised as the permanent fix, `CHG-<n>`.
    pub fix_change: Option<String>,
    /// The fix's state, once there is one.
    pub fix_state: Option<String>,
    /// The incidents linked to it, oldest first.
    pub incidents: Vec<ProblemIncidentView>,
}

/// An incident as a problem record lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemIncidentView {
    /// `INC-<n>`
    pub id: String,
    /// triggered, acknowledged, contained, resolved or closed
    pub state: String,
    /// sev1 … sev4
    pub severity: String,
    pub title: String,
    pub opened_at: DateTime<Utc>,
}

impl From<&Incident> for ProblemIncidentView {
    fn from(i: &Incident) -> Self {
        ProblemIncidentView {
            id: i.id.to_string(),
            state: i.state.to_string(),
            severity: i.severity.to_string(),
            title: i.title.clone(),
            opened_at: i.opened_at,
        }
    }
}

/// A detector rule with its name, as `PUT /detectors/{name}` and `GET /detectors` answer it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectorRuleView {
    pub name: String,
    /// The rule as stored: `metric`, `labels`, `config`, `target`, `severity`.
    #[schema(value_type = Object)]
    pub rule: Value,
}

/// A playbook with its name, as `PUT /playbooks/{name}` answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaybookView {
    pub name: String,
    pub playbook: PlaybookDocumentView,
}

/// A pre-approved containment playbook as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaybookDocumentView {
    /// The containment actions it runs, as the user wrote them.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    pub description: Option<String>,
}

/// The answer to an Alertmanager webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertmanagerReceipt {
    /// The incidents the payload opened, joined or resolved, `INC-<n>`, each once.
    pub incidents: Vec<String>,
    /// How many of the payload's alerts were firing, and how many resolved.
    pub firing: u64,
    pub resolved: u64,
}

/// The answer to a PagerDuty Events API v2 event, shaped like PagerDuty's own.
#[derive(Debug, Serialize, ToSchema)]
pub struct PagerDutyReceipt {
    /// Always `success` (a failure is an error body instead).
    pub status: String,
    pub message: String,
    /// For an alert event: the key later events about the same alert must send. Absent for a
    /// change event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

impl PagerDutyReceipt {
    pub fn success(message: &str, dedup_key: Option<String>) -> PagerDutyReceipt {
        PagerDutyReceipt {
            status: "success".into(),
            message: message.into(),
            dedup_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;
    use steward_core::incident::{IncidentId, IncidentState, Severity, parse_actions};
    use steward_core::{ChangeId, TargetName, TenantId, UserName};

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 10, minute, 0)
            .single()
            .expect("a time")
    }

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("a user name")
    }

    /// An incident with every optional part filled, so every nested view is exercised.
    fn full_incident() -> Incident {
        let target = TargetName::parse("fraud-scorer").expect("a target name");
        let actions = parse_actions(&json!([
            {"name": "undo", "kind": "rollback_change", "change": "CHG-7"},
            {"name": "page", "kind": "webhook", "url": "https://hooks.example", "secret": "HOOK"},
        ]))
        .expect("valid actions");
        Incident {
            id: IncidentId::from_number(3),
            tenant: TenantId::default_tenant(),
            title: "latency high".into(),
            severity: Severity::Sev3,
            state: IncidentState::Resolved,
            targets: vec![target.clone()],
            signals: vec![Signal {
                source: "alertmanager".into(),
                key: "g/f".into(),
                summary: "latency high".into(),
                severity: Severity::Sev3,
                target: Some(target.clone()),
                labels: BTreeMap::from([("alertname".to_owned(), "Latency".to_owned())]),
                started_at: at(0),
                received_at: at(1),
                resolved_at: Some(at(30)),
            }],
            timeline: vec![TimelineEntry {
                at: at(1),
                actor: user("steward"),
                what: "opened".into(),
            }],
            owner: Some(user("mia")),
            suspects: vec![Suspect {
                change: ChangeId::from_number(7),
                title: "new model".into(),
                implemented_at: at(0),
                target,
                relation: "same target".into(),
                minutes_before: 12,
                score: 0.75,
                reason: "same target, 12 minutes before".into(),
            }],
            change_related: true,
            containment: Some(Containment {
                actions,
                proposed_by: user("rita"),
                proposed_at: at(5),
                approved_by: Some(user("mia")),
                approved_at: Some(at(6)),
                playbook: None,
                runs: vec![ActionRun {
                    name: "undo".into(),
                    ok: true,
                    result: json!({"rolled_back": "CHG-7"}),
                    at: at(7),
                }],
            }),
            review: Some(Review {
                what_happened: "a".into(),
                why: "b".into(),
                risk_assessment_missed: "c".into(),
                actions: vec!["d".into()],
                by: user("mia"),
                at: at(40),
            }),
            problem: Some("slow-features".into()),
            started_at: at(0),
            opened_at: at(1),
            acknowledged_at: Some(at(2)),
            contained_at: Some(at(7)),
            resolved_at: Some(at(30)),
            closed_at: None,
            updated_at: at(40),
            version: 9,
        }
    }

    #[test]
    fn an_incident_view_keeps_the_keys_and_shapes_of_the_serialized_domain_record() {
        let incident = full_incident();
        // What the API answered before it had a view: the domain record, plus `needs_review`
        // and the history.
        let mut expected = serde_json::to_value(&incident).expect("serializes");
        expected["needs_review"] = json!(incident.needs_review());
        expected["history"] = json!([]);
        let view =
            serde_json::to_value(IncidentView::new(&incident, Vec::new())).expect("serializes");
        assert_eq!(view, expected);
    }
}
