//! Wire types: what the API returns, described for OpenAPI.
//!
//! These mirror the domain types on purpose: the domain may change shape without breaking the
//! API's stable keys (`id`, `type`, `state`, `risk.score`, `risk.factors`, `approvals.required`,
//! `approvals.given`), and the domain crate stays free of HTTP and schema concerns.

use super::change_views::{
    FreezeView, ObligationView, PolicyReceiptView, ScheduleView, WindowOverrideView,
};
use super::plan_views::{BackupView, ExecutionView, PipelineView, PlanStepView, VerificationView};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_core::approval::describe;
use steward_core::change::Change;
use steward_core::target::Target;
use steward_store::AuditEvent;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RiskFactorView {
    pub name: String,
    pub observed: String,
    pub points: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RiskView {
    pub score: u32,
    /// low, medium or high
    pub level: String,
    pub factors: Vec<RiskFactorView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequiredApprovalView {
    /// The slot: `owner:mia`, `cab:2`, `ciso`, `vp_engineering`.
    pub slot: String,
    /// Who may fill it: `user mia` or `a cab_member`.
    pub who: String,
    pub reason: String,
    /// Who filled it, once someone has.
    pub filled_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GivenApprovalView {
    pub slot: String,
    pub by: String,
    /// approve or reject
    pub decision: String,
    pub comment: String,
    pub at: DateTime<Utc>,
    /// Earlier overlapping changes the approver acknowledged.
    #[serde(default)]
    pub acknowledged_conflicts: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalsView {
    pub required: Vec<RequiredApprovalView>,
    pub given: Vec<GivenApprovalView>,
    /// When approval is due under the SLA for this change type.
    pub deadline: Option<DateTime<Utc>>,
    pub overdue: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WindowView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImpactView {
    pub data: String,
    pub availability: String,
    pub compliance: String,
    pub rollback_complexity: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntryView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<AuditEvent> for HistoryEntryView {
    fn from(e: AuditEvent) -> Self {
        HistoryEntryView {
            seq: e.seq,
            at: e.occurred_at,
            actor: e.actor,
            action: e.action,
            details: e.details,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeView {
    /// `CHG-<n>`
    pub id: String,
    /// standard, normal or emergency
    #[serde(rename = "type")]
    pub change_type: String,
    pub classification_reason: String,
    pub state: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub targets: Vec<String>,
    pub environment: String,
    pub requester: String,
    pub impact: ImpactView,
    pub risk: RiskView,
    pub approvals: ApprovalsView,
    pub implementation_plan: String,
    pub rollback_plan: String,
    pub verification_plan: Option<String>,
    pub catalog_item: Option<String>,
    pub emergency: bool,
    pub justification: Option<String>,
    pub window: Option<WindowView>,
    pub scheduled_window: Option<WindowView>,
    pub implementer: Option<String>,
    /// When implementation actually started (not the plan); null until then, and for changes
    /// recorded before Steward kept it.
    pub implementation_started_at: Option<DateTime<Utc>>,
    /// When implementation actually ended: completed, failed or rolled back while running, else
    /// the last deployment a pipeline reported finished.
    pub implementation_ended_at: Option<DateTime<Utc>>,
    /// Deployments pipelines reported for this change, oldest first, each with the gate's verdict
    /// when it arrived.
    pub deployments: Vec<super::deployments::DeploymentView>,
    /// Approvers who agreed to let this emergency start outside its window, while the override
    /// still waits for the rest of them (it opens with the last agreement); lapsed agreements
    /// (older than two hours) are not shown, as they no longer count.
    pub window_override_agreements: Vec<super::change_views::OverrideAgreementView>,
    /// Its approvers' permission for this emergency to start outside its window: `by`,
    /// `reason`, `at`, `until` and the `window` it overrode.
    pub window_override: Option<WindowOverrideView>,
    pub links: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// The backup or snapshot the change can be restored from.
    pub backup: Option<BackupView>,
    /// The CI/CD run that raised the change: commit, run, artifact digest.
    pub pipeline: Option<PipelineView>,
    /// Every policy evaluation (decision receipt): stage, policy-set version, and each rule's
    /// verdict, messages, added approvals, obligations and the inputs it looked at.
    pub policy: Vec<PolicyReceiptView>,
    /// What the change owes before it may close, e.g. a post-implementation review.
    pub obligations: Vec<ObligationView>,
    /// Freezes this emergency change overrides, with the CISO's approval.
    pub freeze_overrides: Vec<FreezeView>,
    /// The typed steps the executors run, each with its kind and parameters.
    pub steps: Vec<PlanStepView>,
    /// The checks that run after the steps, and for how long.
    pub verification: Option<VerificationView>,
    /// Whether a step cannot be undone (approved as such).
    pub irreversible: bool,
    /// The execution journal: each step's status, snapshot and output, the verification
    /// checks' results, and the rollback (trigger, reason, outcome).
    pub execution: Option<ExecutionView>,
    /// Present on `GET /changes/{id}`: the calendar's view of the change's window now — freezes,
    /// targets outside their maintenance windows, and overlapping changes on the same targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleView>,
    /// Present on `GET /changes/{id}`: incidents that name this change as a suspect, with the
    /// suspicion's score and whether it is strong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incidents: Option<Vec<SuspectedInView>>,
    /// Present on `GET /changes/{id}`: every audit event about this change, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntryView>>,
}

/// An incident that names a change as a suspect, as `GET /changes/{id}` lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SuspectedInView {
    /// `INC-<n>`
    pub incident: String,
    /// 0–1: closeness in time and in the dependency graph.
    pub score: f64,
    /// The score is at or above the strong-suspect threshold.
    pub strong: bool,
}

fn window(w: &Option<steward_core::submission::Window>) -> Option<WindowView> {
    w.as_ref().map(|w| WindowView {
        start: w.start,
        end: w.end,
    })
}

impl ChangeView {
    pub fn new(change: &Change, now: DateTime<Utc>) -> ChangeView {
        let request = &change.request;
        ChangeView {
            id: change.id.to_string(),
            change_type: change.classification.change_type.to_string(),
            classification_reason: change.classification.reason.clone(),
            state: change.state.to_string(),
            title: request.title.clone(),
            description: request.description.clone(),
            category: request.category.clone(),
            targets: request.targets.iter().map(|t| t.to_string()).collect(),
            environment: request.environment.to_string(),
            requester: change.requester.to_string(),
            impact: ImpactView {
                data: request.impact.data.to_string(),
                availability: request.impact.availability.to_string(),
                compliance: request.impact.compliance.to_string(),
                rollback_complexity: request.impact.rollback_complexity.to_string(),
            },
            risk: RiskView {
                score: change.risk.score,
                level: change.risk.level.to_string(),
                factors: change
                    .risk
                    .factors
                    .iter()
                    .map(|f| RiskFactorView {
                        name: f.name.clone(),
                        observed: f.observed.clone(),
                        points: f.points,
                    })
                    .collect(),
            },
            approvals: ApprovalsView {
                required: change
                    .required_approvals
                    .iter()
                    .map(|slot| RequiredApprovalView {
                        slot: slot.id.clone(),
                        who: describe(&slot.eligibility),
                        reason: slot.reason.clone(),
                        filled_by: change
                            .decisions
                            .iter()
                            .find(|d| d.slot == slot.id)
                            .map(|d| d.by.to_string()),
                    })
                    .collect(),
                given: change
                    .decisions
                    .iter()
                    .map(|d| GivenApprovalView {
                        slot: d.slot.clone(),
                        by: d.by.to_string(),
                        decision: d.decision.as_str().to_owned(),
                        comment: d.comment.clone(),
                        at: d.at,
                        acknowledged_conflicts: d
                            .acknowledged_conflicts
                            .iter()
                            .map(|c| c.to_string())
                            .collect(),
                    })
                    .collect(),
                deadline: change.approval_deadline,
                overdue: change.is_overdue(now),
            },
            implementation_plan: request.implementation_plan.clone(),
            rollback_plan: request.rollback_plan.clone(),
            verification_plan: request.verification_plan.clone(),
            catalog_item: request.catalog_item.clone(),
            emergency: request.emergency,
            justification: request.justification.clone(),
            window: window(&request.window),
            scheduled_window: window(&change.scheduled_window),
            implementer: change.implementer.as_ref().map(|u| u.to_string()),
            implementation_started_at: change.implemented_at(),
            implementation_ended_at: change.implementation_ended(),
            deployments: change
                .deployments
                .iter()
                .map(super::deployments::DeploymentView::from)
                .collect(),
            window_override_agreements: change
                .override_agreements
                .iter()
                .filter(|a| {
                    now - a.at
                        < chrono::Duration::hours(steward_core::change::WINDOW_OVERRIDE_HOURS)
                })
                .map(super::change_views::OverrideAgreementView::from)
                .collect(),
            window_override: change
                .window_override
                .as_ref()
                .map(WindowOverrideView::from),
            links: request.links.clone(),
            created_at: change.created_at,
            submitted_at: change.submitted_at,
            updated_at: change.updated_at,
            version: change.version,
            backup: request.backup.as_ref().map(BackupView::from),
            pipeline: request.pipeline.as_ref().map(PipelineView::from),
            policy: change
                .policy_receipts
                .iter()
                .map(PolicyReceiptView::from)
                .collect(),
            obligations: change
                .obligations
                .iter()
                .map(ObligationView::from)
                .collect(),
            freeze_overrides: change
                .freeze_overrides
                .iter()
                .map(FreezeView::from)
                .collect(),
            steps: request.steps.iter().map(PlanStepView::from).collect(),
            verification: request.verification.as_ref().map(VerificationView::from),
            irreversible: request.irreversible,
            execution: change.execution.as_ref().map(ExecutionView::from),
            schedule: None,
            incidents: None,
            history: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TargetView {
    pub name: String,
    /// compute_cluster, training_environment, model_deployment, data_source or access_control
    pub kind: String,
    pub owner: String,
    pub environment: String,
    pub criticality: String,
    /// pii, financial
    pub regulated: Vec<String>,
    pub parent: Option<String>,
}

impl From<&Target> for TargetView {
    fn from(t: &Target) -> Self {
        TargetView {
            name: t.name.to_string(),
            kind: t.kind.to_string(),
            owner: t.owner.to_string(),
            environment: t.environment.to_string(),
            criticality: t.criticality.to_string(),
            regulated: t.regulated.iter().map(|r| r.to_string()).collect(),
            parent: t.parent.as_ref().map(|p| p.to_string()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub roles: Vec<String>,
    /// `active` or `disabled` (a disabled account's tokens are refused).
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// When an admin disabled the account; absent while it is active.
    pub disabled_at: Option<DateTime<Utc>>,
    /// When one of its tokens last authenticated (recorded at most once a minute); null if never.
    pub last_used_at: Option<DateTime<Utc>>,
    /// `local` (an API token account) or `oidc` (made by single sign-on: its roles come from the
    /// provider's groups through the tenant's group mapping).
    pub source: String,
    /// Only in the response to creating the user: shown once, stored hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When that token expires, if it was given an expiry (only beside `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<DateTime<Utc>>,
}

impl UserView {
    /// An account as every answer shows it (no token).
    pub fn of(account: &steward_store::Account) -> UserView {
        let steward_store::Account {
            name,
            roles,
            status,
            created_at,
            disabled_at,
            last_used_at,
            from_sso,
        } = account;
        UserView {
            name: name.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            status: status.to_string(),
            created_at: *created_at,
            disabled_at: *disabled_at,
            last_used_at: *last_used_at,
            source: if *from_sso { "oidc" } else { "local" }.to_owned(),
            token: None,
            token_expires_at: None,
        }
    }
}

/// A change as lists show it: enough to pick one out; `GET /changes/{id}` has the whole record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeSummaryView {
    /// `CHG-<n>`
    pub id: String,
    pub title: String,
    pub state: String,
    /// standard, normal or emergency
    #[serde(rename = "type")]
    pub change_type: String,
    /// low, medium or high
    pub risk_level: String,
    pub risk_score: u32,
    pub requester: String,
    pub targets: Vec<String>,
    pub environment: String,
    /// The window it runs in: the scheduled one, else the one requested.
    pub window: Option<WindowView>,
    /// Still awaiting approval after its SLA deadline.
    pub overdue: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When implementation actually started and ended (never the plan).
    pub implementation_started_at: Option<DateTime<Utc>>,
    pub implementation_ended_at: Option<DateTime<Utc>>,
}

impl ChangeSummaryView {
    pub fn new(change: &Change, now: DateTime<Utc>) -> ChangeSummaryView {
        let request = &change.request;
        ChangeSummaryView {
            id: change.id.to_string(),
            title: request.title.clone(),
            state: change.state.to_string(),
            change_type: change.classification.change_type.to_string(),
            risk_level: change.risk.level.to_string(),
            risk_score: change.risk.score,
            requester: change.requester.to_string(),
            targets: request.targets.iter().map(|t| t.to_string()).collect(),
            environment: request.environment.to_string(),
            window: change.effective_window().map(|w| WindowView {
                start: w.start,
                end: w.end,
            }),
            overdue: change.is_overdue(now),
            created_at: change.created_at,
            updated_at: change.updated_at,
            implementation_started_at: change.implemented_at(),
            implementation_ended_at: change.implementation_ended(),
        }
    }
}

/// An incident as lists show it; `GET /incidents/{id}` has the whole record (signals, timeline,
/// suspects, containment, review, history).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentSummaryView {
    /// `INC-<n>`
    pub id: String,
    pub title: String,
    /// sev1 … sev4
    pub severity: String,
    /// triggered, acknowledged, contained, resolved or closed
    pub state: String,
    pub targets: Vec<String>,
    pub owner: Option<String>,
    /// A change is its likely cause.
    pub change_related: bool,
    /// The top suspect change, `CHG-<n>`, when there is one.
    pub top_suspect: Option<String>,
    /// A review is owed before it may close.
    pub needs_review: bool,
    pub problem: Option<String>,
    /// When the anomaly began.
    pub started_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<&steward_core::incident::Incident> for IncidentSummaryView {
    fn from(i: &steward_core::incident::Incident) -> Self {
        IncidentSummaryView {
            id: i.id.to_string(),
            title: i.title.clone(),
            severity: i.severity.to_string(),
            state: i.state.to_string(),
            targets: i.targets.iter().map(|t| t.to_string()).collect(),
            owner: i.owner.as_ref().map(|o| o.to_string()),
            change_related: i.change_related,
            top_suspect: i.suspects.first().map(|s| s.change.to_string()),
            needs_review: i.needs_review(),
            problem: i.problem.clone(),
            started_at: i.started_at,
            opened_at: i.opened_at,
            resolved_at: i.resolved_at,
            closed_at: i.closed_at,
            updated_at: i.updated_at,
        }
    }
}
