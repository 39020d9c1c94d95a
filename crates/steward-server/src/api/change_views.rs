//! Wire types for the governance a change carries: policy receipts, obligations, freezes and
//! the calendar's verdict (also what `POST /policy/evaluate` answers), and the window override.
//! The plan and the journal of running it are in [`super::plan_views`].
//!
//! Like [`super::views`], these mirror the domain types on purpose and keep their keys: the CLI
//! and integrations read them, and `steward_core` may change shape without breaking them. Each
//! constructor takes its domain record apart field by field, so a field added to the domain does
//! not compile until it is given (or refused) a place on the wire. A `serde_json::Value` is left
//! only where the content is a document someone else wrote: the inputs a Rego rule reports.

use super::views::WindowView;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use steward_core::change::{OverrideAgreement, WindowOverride};
use steward_core::policy::{Fulfilment, Obligation, PolicyReceipt, RequiredApproval, RuleVerdict};
use steward_core::schedule::{ConflictHit, FreezeHit, ScheduleCheck};
use steward_core::submission::Window;
use utoipa::ToSchema;

impl From<&Window> for WindowView {
    fn from(w: &Window) -> Self {
        WindowView {
            start: w.start,
            end: w.end,
        }
    }
}

/// One evaluation of the policy set (a decision receipt).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyReceiptView {
    /// submission, approval or preview
    pub stage: String,
    /// The policy-set version (a digest of its modules) that decided.
    pub policy_set: String,
    pub evaluated_at: DateTime<Utc>,
    pub rules: Vec<RuleVerdictView>,
}

impl From<&PolicyReceipt> for PolicyReceiptView {
    fn from(r: &PolicyReceipt) -> Self {
        let PolicyReceipt {
            stage,
            policy_set,
            evaluated_at,
            rules,
        } = r;
        PolicyReceiptView {
            stage: stage.as_str().to_owned(),
            policy_set: policy_set.clone(),
            evaluated_at: *evaluated_at,
            rules: rules.iter().map(RuleVerdictView::from).collect(),
        }
    }
}

/// What one rule said. Empty lists and an absent title are left out.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleVerdictView {
    /// The rule's package name: `pii_compliance_approval`.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The controls the rule implements: `GDPR Art. 32`, `SOX 404`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    /// pass, warn or deny
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warn: Vec<String>,
    /// Approvals the rule adds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<PolicyApprovalView>,
    /// Obligations the rule imposes, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obligations: Vec<String>,
    /// The parts of the input the rule looked at, as the rule reports them (free-form).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub inputs: Map<String, Value>,
}

impl From<&RuleVerdict> for RuleVerdictView {
    fn from(v: &RuleVerdict) -> Self {
        let RuleVerdict {
            rule,
            title,
            controls,
            verdict,
            deny,
            warn,
            approvals,
            obligations,
            inputs,
        } = v;
        RuleVerdictView {
            rule: rule.clone(),
            title: title.clone(),
            controls: controls.clone(),
            verdict: verdict.as_str().to_owned(),
            deny: deny.clone(),
            warn: warn.clone(),
            approvals: approvals.iter().map(PolicyApprovalView::from).collect(),
            obligations: obligations.clone(),
            inputs: inputs.clone(),
        }
    }
}

/// An approval a rule adds: someone holding `role` must approve too.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyApprovalView {
    pub role: String,
    pub reason: String,
}

impl From<&RequiredApproval> for PolicyApprovalView {
    fn from(a: &RequiredApproval) -> Self {
        let RequiredApproval { role, reason } = a;
        PolicyApprovalView {
            role: role.as_str().to_owned(),
            reason: reason.clone(),
        }
    }
}

/// Something the change owes before it may close.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObligationView {
    /// `post_implementation_review`
    pub name: String,
    /// The rule that imposed it.
    pub rule: String,
    /// Who met it, when and how; null while it is owed.
    pub fulfilled: Option<FulfilmentView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FulfilmentView {
    pub by: String,
    pub at: DateTime<Utc>,
    /// The review itself, or a note saying how the obligation was met.
    pub note: String,
}

impl From<&Obligation> for ObligationView {
    fn from(o: &Obligation) -> Self {
        let Obligation {
            name,
            rule,
            fulfilled,
        } = o;
        ObligationView {
            name: name.clone(),
            rule: rule.clone(),
            fulfilled: fulfilled.as_ref().map(|f| {
                let Fulfilment { by, at, note } = f;
                FulfilmentView {
                    by: by.to_string(),
                    at: *at,
                    note: note.clone(),
                }
            }),
        }
    }
}

/// A freeze a change window falls into.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FreezeView {
    pub name: String,
    pub reason: String,
    /// `everywhere`, `environment:<name>` or `target:<name>`
    pub scope: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl From<&FreezeHit> for FreezeView {
    fn from(f: &FreezeHit) -> Self {
        let FreezeHit {
            name,
            reason,
            scope,
            start,
            end,
        } = f;
        FreezeView {
            name: name.to_string(),
            reason: reason.clone(),
            scope: scope.to_string(),
            start: *start,
            end: *end,
        }
    }
}

/// Another change that touches the same targets (or a parent or child of one) at the same time.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConflictView {
    /// `CHG-<n>`
    pub change: String,
    pub state: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// How they meet: `fraud-scoring`, or `fraud-scoring runs on gpu-a`.
    pub via: Vec<String>,
    /// Whether approving or scheduling this change needs an acknowledgement of that one.
    pub needs_acknowledgement: bool,
}

/// What the calendar says about a change window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub window: Option<WindowView>,
    pub freezes: Vec<FreezeView>,
    /// Targets with maintenance windows, none of which holds the whole change window.
    pub outside_maintenance: Vec<String>,
    pub conflicts: Vec<ConflictView>,
}

impl From<&ScheduleCheck> for ScheduleView {
    fn from(s: &ScheduleCheck) -> Self {
        let ScheduleCheck {
            window,
            freezes,
            outside_maintenance,
            conflicts,
        } = s;
        ScheduleView {
            window: window.as_ref().map(WindowView::from),
            freezes: freezes.iter().map(FreezeView::from).collect(),
            outside_maintenance: outside_maintenance.iter().map(|t| t.to_string()).collect(),
            conflicts: conflicts
                .iter()
                .map(|c| {
                    let ConflictHit {
                        change,
                        state,
                        start,
                        end,
                        via,
                        needs_acknowledgement,
                    } = c;
                    ConflictView {
                        change: change.to_string(),
                        state: state.as_str().to_owned(),
                        start: *start,
                        end: *end,
                        via: via.clone(),
                        needs_acknowledgement: *needs_acknowledgement,
                    }
                })
                .collect(),
        }
    }
}

/// Its approvers' permission for an emergency change to start outside its window, for a while.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WindowOverrideView {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// It may start under this override until then.
    pub until: DateTime<Utc>,
    /// The window it overrides, as it was.
    pub window: WindowView,
    /// Every approver's agreement, in order (`by` gave the last); empty on overrides from before
    /// dual control.
    pub agreements: Vec<OverrideAgreementView>,
}

impl From<&WindowOverride> for WindowOverrideView {
    fn from(o: &WindowOverride) -> Self {
        let WindowOverride {
            by,
            reason,
            at,
            until,
            window,
            agreements,
        } = o;
        WindowOverrideView {
            by: by.to_string(),
            reason: reason.clone(),
            at: *at,
            until: *until,
            window: window.into(),
            agreements: agreements.iter().map(OverrideAgreementView::from).collect(),
        }
    }
}

/// One approver's agreement to let an emergency start outside its window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverrideAgreementView {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl From<&OverrideAgreement> for OverrideAgreementView {
    fn from(a: &OverrideAgreement) -> Self {
        let OverrideAgreement { by, reason, at } = a;
        OverrideAgreementView {
            by: by.to_string(),
            reason: reason.clone(),
            at: *at,
        }
    }
}
