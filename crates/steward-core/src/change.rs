//! The change aggregate: opening a change, deciding on it, and moving it through its lifecycle.
//!
//! Every operation takes the current [`Change`] and the facts the caller looked up, mutates the
//! change in memory, and returns the [`Transition`]s to record. The caller persists the new state
//! and one audit event per transition in one transaction, guarded by [`Change::version`] so two
//! servers deciding on the same change at once cannot both win.

use crate::approval::{
    self, Decision, DecisionRefused, GivenDecision, Outcome, RoutingPolicy, Slot,
};
use crate::catalog::CatalogItem;
use crate::classify::{self, ChangeType, Classification};
use crate::execution::Execution;
use crate::names::{ChangeId, TenantId, UserName};
use crate::policy::{self, InputFacts, Obligation, PolicyEvaluator, PolicyReceipt, Stage};
use crate::risk::{self, History, RiskAssessment, RiskPolicy};
use crate::role::{Role, Roles};
use crate::schedule::{FreezeHit, ScheduleCheck};
use crate::sla;
use crate::state::ChangeState;
use crate::submission::{ChangeRequest, FieldError, Window};
use crate::target::Target;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod window;
pub use window::{OverrideAgreement, WINDOW_OVERRIDE_HOURS, WindowOverride, WindowStanding};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub id: ChangeId,
    pub tenant: TenantId,
    pub requester: UserName,
    pub request: ChangeRequest,
    pub classification: Classification,
    pub risk: RiskAssessment,
    pub state: ChangeState,
    /// Approvals this change needs; empty for standard changes.
    pub required_approvals: Vec<Slot>,
    pub decisions: Vec<GivenDecision>,
    pub approval_deadline: Option<DateTime<Utc>>,
    /// The window the change was scheduled into, when it has one.
    pub scheduled_window: Option<Window>,
    pub implementer: Option<UserName>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency counter: bumped on every save.
    pub version: i64,
    /// The requester's roles when they submitted, as policies saw them.
    #[serde(default)]
    pub requester_roles: Vec<Role>,
    /// Every policy evaluation that decided something about this change, oldest first.
    #[serde(default)]
    pub policy_receipts: Vec<PolicyReceipt>,
    /// The exact `input` the policy set judged at submission: later stages re-use it with fresh
    /// approvals and schedule, and `steward policy backtest` replays it.
    #[serde(default)]
    pub policy_input: Option<Value>,
    /// What the change owes before it may close (e.g. a post-implementation review).
    #[serde(default)]
    pub obligations: Vec<Obligation>,
    /// Freezes this (emergency) change runs inside, with the CISO's approval.
    #[serde(default)]
    pub freeze_overrides: Vec<FreezeHit>,
    /// `succeeded` or `failed` once implementation ended; kept through `closed`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The journal of running the change's steps, verifying and rolling back.
    #[serde(default)]
    pub execution: Option<Execution>,
    /// When implementation actually began: the `implement` step, a person's or the worker's as
    /// it starts the steps. `None` before that, and on changes stored before it was recorded:
    /// their time is unknown, and the plan is no substitute (see [`Change::implemented_at`]).
    #[serde(default)]
    pub implementation_started_at: Option<DateTime<Utc>>,
    /// When implementation actually ended: completed, failed or rolled back while implementing.
    /// A later rollback of a completed change does not move it (the rollback has its own time
    /// in the journal and the audit log).
    #[serde(default)]
    pub implementation_ended_at: Option<DateTime<Utc>>,
    /// Its approvers' permission for this emergency change to start outside its window.
    #[serde(default)]
    pub window_override: Option<WindowOverride>,
    /// Approvers who agreed to a window override that still waits for the others.
    #[serde(default)]
    pub override_agreements: Vec<window::OverrideAgreement>,
    /// Deployments pipelines reported for this change, oldest first: evidence of when it took
    /// effect (see [`crate::deployment`]).
    #[serde(default)]
    pub deployments: Vec<crate::deployment::Deployment>,
}

/// What the caller looked up for a decision that depends on the world outside the change.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The change's targets, in the order the request names them.
    pub targets: &'a [Target],
    pub catalog_item: Option<&'a CatalogItem>,
    pub history: History,
    pub risk_policy: RiskPolicy,
    pub routing_policy: RoutingPolicy,
    pub now: DateTime<Utc>,
    pub requester_roles: &'a [Role],
    pub governance: Governance<'a>,
}

/// The rules outside the change that may refuse it: the policy set and the calendar.
#[derive(Debug, Clone, Copy)]
pub struct Governance<'a> {
    pub policy: &'a dyn PolicyEvaluator,
    /// Freezes, maintenance windows and conflicts for the change's window.
    pub schedule: &'a ScheduleCheck,
}

/// What submitting a request now would lead to (see [`Change::preview`]).
#[derive(Debug, Clone)]
pub struct Preview {
    /// The change as it would be classified, scored and routed, policy approvals included.
    pub change: Change,
    pub receipt: PolicyReceipt,
    /// Everything that would refuse the submission: policy denials and freezes.
    pub refusals: Vec<String>,
}

/// One person's decision on a change.
#[derive(Debug, Clone)]
pub struct DecisionRequest<'a> {
    pub who: &'a UserName,
    pub roles: &'a Roles,
    pub decision: Decision,
    pub comment: String,
    /// Earlier conflicting changes the approver has checked this one can run beside.
    pub acknowledged_conflicts: &'a [ChangeId],
    pub now: DateTime<Utc>,
}

/// One state change, to be recorded as one audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// `change.submitted`, `change.approved`, …
    pub action: String,
    pub from: Option<ChangeState>,
    pub to: ChangeState,
    pub actor: UserName,
    pub comment: Option<String>,
    /// The policy evaluation this transition rests on, for its audit event.
    pub policy: Option<PolicyReceipt>,
    /// What an execution step did (its snapshot, output, check results), for its audit event.
    #[serde(default)]
    pub details: Option<Value>,
}

/// Lifecycle steps after approval, each requested by a person or a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Submit,
    Schedule,
    Implement,
    Complete,
    Fail,
    Rollback,
    Close,
    Cancel,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Submit,
        Step::Schedule,
        Step::Implement,
        Step::Complete,
        Step::Fail,
        Step::Rollback,
        Step::Close,
        Step::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Submit => "submit",
            Step::Schedule => "schedule",
            Step::Implement => "implement",
            Step::Complete => "complete",
            Step::Fail => "fail",
            Step::Rollback => "rollback",
            Step::Close => "close",
            Step::Cancel => "cancel",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn target_state(self) -> ChangeState {
        match self {
            Step::Submit => ChangeState::Submitted,
            Step::Schedule => ChangeState::Scheduled,
            Step::Implement => ChangeState::Implementing,
            Step::Complete => ChangeState::Completed,
            Step::Fail => ChangeState::Failed,
            Step::Rollback => ChangeState::RolledBack,
            Step::Close => ChangeState::Closed,
            Step::Cancel => ChangeState::Cancelled,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    /// The request itself is inconsistent with the facts (unknown target, environment mismatch).
    #[error("the change request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("cannot {action} a change that is {current}")]
    IllegalTransition {
        action: &'static str,
        current: ChangeState,
    },
    #[error(transparent)]
    Decision(#[from] DecisionRefused),
    #[error("{0}")]
    Segregation(String),
    #[error("refused by policy: {}", .0.denials().join("; "))]
    PolicyDenied(Box<PolicyReceipt>),
    /// An open obligation or similar precondition of the step is not met.
    #[error("{0}")]
    Unmet(String),
    /// The window falls in a freeze.
    #[error("{0}")]
    Frozen(String),
    /// Overlapping changes on the same targets that the approver has not acknowledged.
    #[error("{message}")]
    Conflict {
        message: String,
        unacknowledged: Vec<ChangeId>,
    },
}

/// A time as people read it in messages: RFC 3339, whole seconds, `Z`.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn transition(
    action: &str,
    from: Option<ChangeState>,
    to: ChangeState,
    actor: &UserName,
    comment: Option<String>,
) -> Transition {
    Transition {
        action: format!("change.{action}"),
        from,
        to,
        actor: actor.clone(),
        comment,
        policy: None,
        details: None,
    }
}

/// Checks the request against the targets it names: every target exists (the caller passes only
/// those it found) and lives in the change's environment.
fn check_targets(request: &ChangeRequest, targets: &[Target]) -> Result<(), Refused> {
    let mut errors = Vec::new();
    for (i, name) in request.targets.iter().enumerate() {
        match targets.iter().find(|t| &t.name == name) {
            None => errors.push(FieldError::new(
                format!("targets[{i}]"),
                format!("unknown target '{name}': create it first with `steward target create`"),
            )),
            Some(t) if t.environment != request.environment => errors.push(FieldError::new(
                format!("targets[{i}]"),
                format!(
                    "target '{name}' is in {} but the change is for {}",
                    t.environment, request.environment
                ),
            )),
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Refused::Invalid(errors))
    }
}

impl Change {
    /// Opens a new change: classified, scored and routed; a draft stays in `draft`. Its id is
    /// [`ChangeId::UNASSIGNED`] until the store numbers it as it saves it.
    pub fn open(
        tenant: TenantId,
        requester: UserName,
        request: ChangeRequest,
        facts: Facts<'_>,
    ) -> Result<(Change, Vec<Transition>), Refused> {
        check_targets(&request, facts.targets)?;
        let classification = classify::classify(&request, facts.catalog_item, facts.targets);
        let risk = risk::assess(&request, facts.targets, facts.history, facts.risk_policy);
        let draft = request.draft;
        let mut change = Change {
            id: ChangeId::UNASSIGNED,
            tenant,
            requester: requester.clone(),
            request,
            classification,
            risk,
            state: ChangeState::Draft,
            required_approvals: Vec::new(),
            decisions: Vec::new(),
            approval_deadline: None,
            scheduled_window: None,
            implementer: None,
            created_at: facts.now,
            submitted_at: None,
            updated_at: facts.now,
            version: 0,
            requester_roles: facts.requester_roles.to_vec(),
            policy_receipts: Vec::new(),
            policy_input: None,
            obligations: Vec::new(),
            freeze_overrides: Vec::new(),
            outcome: None,
            execution: None,
            implementation_started_at: None,
            implementation_ended_at: None,
            window_override: None,
            override_agreements: Vec::new(),
            deployments: Vec::new(),
        };
        let mut transitions = vec![transition(
            "created",
            None,
            ChangeState::Draft,
            &requester,
            None,
        )];
        if !draft {
            transitions.extend(change.submit(facts)?);
        }
        Ok((change, transitions))
    }

    /// Classifies, scores and routes against today's facts, then asks the policy set.
    fn judge(&mut self, facts: Facts<'_>, stage: Stage) -> Result<PolicyReceipt, Refused> {
        check_targets(&self.request, facts.targets)?;
        self.classification = classify::classify(&self.request, facts.catalog_item, facts.targets);
        self.risk = risk::assess(
            &self.request,
            facts.targets,
            facts.history,
            facts.risk_policy,
        );
        self.required_approvals = approval::route(
            self.classification.change_type,
            &self.risk,
            facts.targets,
            &self.requester,
            facts.routing_policy,
        );
        if self.request.irreversible {
            self.required_approvals.push(Slot {
                id: "irreversible".into(),
                eligibility: approval::Eligibility::Role {
                    role: Role::Manager,
                },
                reason: "a step cannot be undone: a manager accepts the change as irreversible"
                    .into(),
            });
        }
        self.requester_roles = facts.requester_roles.to_vec();
        self.updated_at = facts.now;
        let input = policy::input(
            self,
            InputFacts {
                targets: facts.targets,
                catalog_item: facts.catalog_item,
                requester_roles: facts.requester_roles,
                schedule: facts.governance.schedule,
            },
            stage,
        );
        let receipt = PolicyReceipt::evaluate(facts.governance.policy, stage, &input, facts.now);
        receipt.merge_approvals(&mut self.required_approvals);
        policy::merge_obligations(&receipt, &mut self.obligations);
        self.policy_input = Some(input);
        Ok(receipt)
    }

    /// What submitting `request` now would lead to, without storing anything: the change as it
    /// would be routed and the policy set's receipt, denials included.
    /// Rules see the input exactly as at submission; the receipt is marked as a preview.
    /// `refusals` adds what would refuse the submission besides policy (a freeze).
    pub fn preview(
        tenant: TenantId,
        requester: UserName,
        mut request: ChangeRequest,
        facts: Facts<'_>,
    ) -> Result<Preview, Refused> {
        request.draft = true;
        let (mut change, _) = Change::open(tenant, requester, request, facts)?;
        let mut receipt = change.judge(facts, Stage::Submission)?;
        receipt.stage = Stage::Preview;
        let mut refusals = receipt.denials();
        let requester = change.requester.clone();
        if let Err(frozen) = change.apply_freezes(facts.governance.schedule, &requester) {
            refusals.push(frozen.to_string());
        }
        Ok(Preview {
            change,
            receipt,
            refusals,
        })
    }

    /// Submits a draft: re-checks and re-scores against today's facts, then routes for approval.
    fn submit(&mut self, facts: Facts<'_>) -> Result<Vec<Transition>, Refused> {
        self.ensure_can(Step::Submit)?;
        let receipt = self.judge(facts, Stage::Submission)?;
        if receipt.denied() {
            return Err(Refused::PolicyDenied(Box::new(receipt)));
        }
        self.policy_receipts.push(receipt.clone());
        self.submitted_at = Some(facts.now);
        self.approval_deadline = Some(sla::approval_deadline(
            self.classification.change_type,
            facts.now,
        ));
        self.updated_at = facts.now;
        let requester = self.requester.clone();
        let mut submitted = transition(
            "submitted",
            Some(self.state),
            ChangeState::Submitted,
            &requester,
            None,
        );
        submitted.policy = Some(receipt);
        let mut out = vec![submitted];
        out.extend(self.apply_freezes(facts.governance.schedule, &requester)?);
        let conflicts = &facts.governance.schedule.conflicts;
        if self.required_approvals.is_empty() && conflicts.iter().any(|c| c.needs_acknowledgement) {
            // A standard change approves itself, so nobody would acknowledge the overlap.
            self.required_approvals.push(Slot {
                id: "conflict".into(),
                eligibility: approval::Eligibility::Role {
                    role: Role::Manager,
                },
                reason: "overlaps another change on the same targets: a manager acknowledges it"
                    .into(),
            });
        }
        if !conflicts.is_empty() {
            let listed: Vec<String> = conflicts
                .iter()
                .map(|c| format!("{} ({})", c.change, c.via.join(", ")))
                .collect();
            out.push(transition(
                "conflicts_flagged",
                Some(self.state),
                self.state,
                &requester,
                Some(format!("overlaps {}", listed.join("; "))),
            ));
        }
        self.state = ChangeState::Submitted;
        let (next, action) = if self.required_approvals.is_empty() {
            (ChangeState::Approved, "auto_approved")
        } else {
            (ChangeState::PendingApproval, "routed")
        };
        out.push(transition(
            action,
            Some(self.state),
            next,
            &requester,
            Some(self.classification.reason.clone()),
        ));
        self.state = next;
        Ok(out)
    }

    /// Submits a change that was opened as a draft.
    pub fn submit_draft(
        &mut self,
        who: &UserName,
        facts: Facts<'_>,
    ) -> Result<Vec<Transition>, Refused> {
        if who != &self.requester {
            return Err(Refused::Segregation(format!(
                "only the requester ({}) may submit this draft",
                self.requester
            )));
        }
        self.submit(facts)
    }

    fn ensure_can(&self, step: Step) -> Result<(), Refused> {
        if self.state.can_become(step.target_state()) {
            Ok(())
        } else {
            Err(Refused::IllegalTransition {
                action: step.as_str(),
                current: self.state,
            })
        }
    }

    /// Records an approval or rejection, enforcing segregation of duties. An approval is also
    /// checked against the calendar (a freeze created since submission refuses it; an earlier
    /// conflicting change must be acknowledged) and put to the policy set with the approvals so
    /// far; a refusal records nothing.
    pub fn decide(
        &mut self,
        request: DecisionRequest<'_>,
        governance: Governance<'_>,
    ) -> Result<Vec<Transition>, Refused> {
        let DecisionRequest {
            who,
            roles,
            decision,
            comment,
            acknowledged_conflicts,
            now,
        } = request;
        if self.state != ChangeState::PendingApproval {
            return Err(Refused::IllegalTransition {
                action: decision.as_str(),
                current: self.state,
            });
        }
        let slot = approval::check_decider(
            &self.required_approvals,
            &self.decisions,
            &self.requester,
            who,
            roles,
        )?
        .id
        .clone();
        let mut out = Vec::new();
        let mut acknowledged = Vec::new();
        if decision == Decision::Approve {
            out.extend(self.apply_freezes(governance.schedule, who)?);
            acknowledged =
                self.acknowledge(governance.schedule, acknowledged_conflicts, "approve")?;
        }
        self.decisions.push(GivenDecision {
            slot: slot.clone(),
            by: who.clone(),
            decision,
            comment: comment.clone(),
            at: now,
            acknowledged_conflicts: acknowledged.clone(),
        });
        self.updated_at = now;
        let receipt = if decision == Decision::Approve {
            let input = match &self.policy_input {
                Some(stored) => {
                    policy::restage(stored, self, governance.schedule, Stage::Approval, now)
                }
                // A change stored before policies existed: judge what it still carries.
                None => policy::input(
                    self,
                    InputFacts {
                        targets: &[],
                        catalog_item: None,
                        requester_roles: &self.requester_roles,
                        schedule: governance.schedule,
                    },
                    Stage::Approval,
                ),
            };
            let receipt = PolicyReceipt::evaluate(governance.policy, Stage::Approval, &input, now);
            if receipt.denied() {
                return Err(Refused::PolicyDenied(Box::new(receipt)));
            }
            receipt.merge_approvals(&mut self.required_approvals);
            policy::merge_obligations(&receipt, &mut self.obligations);
            self.policy_receipts.push(receipt.clone());
            Some(receipt)
        } else {
            None
        };
        let (action, next) = match approval::outcome(&self.required_approvals, &self.decisions) {
            Outcome::Pending => ("approval_recorded", ChangeState::PendingApproval),
            Outcome::Approved => ("approved", ChangeState::Approved),
            Outcome::Rejected => ("rejected", ChangeState::Rejected),
        };
        let mut note = format!("{slot}: {comment}");
        if !acknowledged.is_empty() {
            let ids: Vec<String> = acknowledged.iter().map(|c| c.to_string()).collect();
            note.push_str(&format!(
                " (acknowledged conflicts with {})",
                ids.join(", ")
            ));
        }
        if decision == Decision::Approve
            && !self.freeze_overrides.is_empty()
            && roles.contains(Role::Ciso)
            && slot.contains("ciso")
        {
            note.push_str(" (CISO overrides the freeze)");
        }
        let mut t = transition(action, Some(self.state), next, who, Some(note));
        t.policy = receipt;
        self.state = next;
        out.push(t);
        Ok(out)
    }

    /// The freezes in `check` this change has not already been allowed to override.
    fn new_freezes<'a>(&self, check: &'a ScheduleCheck) -> Vec<&'a FreezeHit> {
        check
            .freezes
            .iter()
            .filter(|f| !self.freeze_overrides.contains(f))
            .collect()
    }

    /// Whether a CISO has approved this change (through a slot asking for the role).
    fn ciso_approved(&self) -> bool {
        self.decisions.iter().any(|d| {
            d.decision == Decision::Approve
                && self
                    .required_approvals
                    .iter()
                    .any(|s| s.id == d.slot && s.role() == Some(Role::Ciso))
        })
    }

    /// The conflicts in `check` that `acknowledged` covers, or a refusal naming those it does
    /// not. `verb` says what the caller was doing, for the message.
    fn acknowledge(
        &self,
        check: &ScheduleCheck,
        acknowledged: &[ChangeId],
        verb: &str,
    ) -> Result<Vec<ChangeId>, Refused> {
        let missing: Vec<&crate::schedule::ConflictHit> = check
            .conflicts
            .iter()
            .filter(|c| c.needs_acknowledgement && !acknowledged.contains(&c.change))
            .collect();
        if !missing.is_empty() {
            let listed: Vec<String> = missing
                .iter()
                .map(|c| format!("{} ({}, {})", c.change, c.state, c.via.join(", ")))
                .collect();
            return Err(Refused::Conflict {
                message: format!(
                    "{} overlaps other changes on the same targets: {}. Check they can run together, then {verb} again acknowledging each (`--acknowledge-conflict CHG-n`, or `acknowledge_conflicts` in the API)",
                    self.id,
                    listed.join("; ")
                ),
                unacknowledged: missing.iter().map(|c| c.change.clone()).collect(),
            });
        }
        Ok(check
            .conflicts
            .iter()
            .filter(|c| acknowledged.contains(&c.change))
            .map(|c| c.change.clone())
            .collect())
    }

    /// Checks an approved change against the calendar before it is scheduled (`conflicts`: the
    /// new window's overlaps must be acknowledged) or implemented (freezes only). A freeze the
    /// change was not already allowed to override refuses it — an emergency too, since its
    /// CISO approved before that freeze applied.
    pub fn check_schedule(
        &mut self,
        check: &ScheduleCheck,
        actor: &UserName,
        acknowledged: &[ChangeId],
        conflicts: bool,
    ) -> Result<Vec<Transition>, Refused> {
        if !self.new_freezes(check).is_empty() {
            return Err(Refused::Frozen(format!(
                "{} cannot run in a freeze: {}. Choose a window outside it{}",
                self.id,
                check.freeze_names(),
                if self.classification.change_type == ChangeType::Emergency {
                    ", or cancel and resubmit the emergency so the CISO approves overriding it"
                } else {
                    ""
                }
            )));
        }
        let mut out = Vec::new();
        if conflicts {
            let acked = self.acknowledge(check, acknowledged, "schedule")?;
            if !acked.is_empty() {
                let ids: Vec<String> = acked.iter().map(|c| c.to_string()).collect();
                out.push(transition(
                    "conflicts_acknowledged",
                    Some(self.state),
                    self.state,
                    actor,
                    Some(format!("scheduled beside {}", ids.join(", "))),
                ));
            }
        }
        Ok(out)
    }

    /// Refuses a window that falls in a freeze, unless the change is an emergency: then the
    /// override is recorded and needs the CISO's approval.
    fn apply_freezes(
        &mut self,
        check: &ScheduleCheck,
        actor: &UserName,
    ) -> Result<Option<Transition>, Refused> {
        let new = self.new_freezes(check);
        if new.is_empty() {
            return Ok(None);
        }
        if self.classification.change_type != ChangeType::Emergency {
            return Err(Refused::Frozen(format!(
                "the change window falls in a freeze: {}. Move the window, or raise an emergency change (the CISO must approve overriding a freeze)",
                check.freeze_names()
            )));
        }
        if self.ciso_approved() {
            // The CISO approved before this freeze existed: they have not approved overriding it.
            return Err(Refused::Frozen(format!(
                "a freeze declared after the CISO approved now covers this emergency change: {}. Cancel and resubmit it so the CISO approves the override",
                check.freeze_names()
            )));
        }
        self.freeze_overrides.extend(new.into_iter().cloned());
        let has_ciso = self
            .required_approvals
            .iter()
            .any(|s| s.role() == Some(Role::Ciso));
        if !has_ciso {
            self.required_approvals.push(Slot {
                id: "freeze_override:ciso".into(),
                eligibility: approval::Eligibility::Role { role: Role::Ciso },
                reason: "an emergency change inside a freeze needs the CISO".into(),
            });
        }
        Ok(Some(transition(
            "freeze_override_requested",
            Some(self.state),
            self.state,
            actor,
            Some(check.freeze_names()),
        )))
    }

    /// The window the change will run in: the scheduled one, else the requested one.
    pub fn effective_window(&self) -> Option<&Window> {
        self.scheduled_window
            .as_ref()
            .or(self.request.window.as_ref())
    }

    /// When this change actually began to take effect: the moment its implementation started,
    /// as recorded. This is the one answer to "when did this change happen" — incident
    /// correlation, the inventory's history and the metrics all ask it — and it is never the
    /// plan. A change stored before the time was recorded answers its execution's start if it
    /// ran steps, else `None`: unknown.
    ///
    /// A deployment a pipeline reported counts too: the earliest of the two is when the change
    /// began to take effect (a person may record `implement` after the pipeline deployed).
    pub fn implemented_at(&self) -> Option<DateTime<Utc>> {
        let recorded = self
            .implementation_started_at
            .or_else(|| self.execution.as_ref().map(|e| e.started_at));
        match (recorded, self.first_deployed_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the approval SLA has passed with the change still waiting.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == ChangeState::PendingApproval
            && self.approval_deadline.is_some_and(|due| due < now)
    }

    fn approvers(&self) -> impl Iterator<Item = &UserName> {
        self.decisions.iter().map(|d| &d.by)
    }

    /// Records that an obligation is met, e.g. the post-implementation review, whose text is the
    /// note. Anyone who may act on changes can record it, once.
    pub fn fulfil(
        &mut self,
        obligation: &str,
        who: &UserName,
        roles: &Roles,
        note: String,
        now: DateTime<Utc>,
    ) -> Result<Transition, Refused> {
        let id = self.id.clone();
        let involved = who == &self.requester
            || self.implementer.as_ref() == Some(who)
            || self.approvers().any(|a| a == who)
            || roles.contains(Role::Admin)
            || roles.contains(Role::ComplianceOfficer);
        if !involved {
            return Err(Refused::Segregation(format!(
                "only the requester, the implementer, an approver, a compliance officer or an admin may record what {id} owes"
            )));
        }
        let Some(owed) = self.obligations.iter_mut().find(|o| o.name == obligation) else {
            let owed: Vec<&str> = self.obligations.iter().map(|o| o.name.as_str()).collect();
            return Err(Refused::Invalid(vec![FieldError::new(
                "obligation",
                format!(
                    "{id} owes no '{obligation}' (it owes: {})",
                    if owed.is_empty() {
                        "nothing".to_owned()
                    } else {
                        owed.join(", ")
                    }
                ),
            )]));
        };
        if let Some(done) = &owed.fulfilled {
            return Err(Refused::Unmet(format!(
                "'{obligation}' on {id} was already fulfilled by {} at {}",
                done.by, done.at
            )));
        }
        if !matches!(
            self.state,
            ChangeState::Completed | ChangeState::Failed | ChangeState::RolledBack
        ) {
            return Err(Refused::Unmet(format!(
                "'{obligation}' is due after implementation; {id} is {}",
                self.state
            )));
        }
        owed.fulfilled = Some(policy::Fulfilment {
            by: who.clone(),
            at: now,
            note: note.clone(),
        });
        self.updated_at = now;
        Ok(transition(
            &format!("obligation_fulfilled.{obligation}"),
            Some(self.state),
            self.state,
            who,
            Some(note),
        ))
    }

    /// An event about this change that does not move its state: an execution step, a check.
    pub fn note(
        &self,
        action: &str,
        actor: &UserName,
        comment: Option<String>,
        details: Value,
    ) -> Transition {
        let mut t = transition(action, Some(self.state), self.state, actor, comment);
        t.details = Some(details);
        t
    }

    /// Moves the change one lifecycle step after approval (or cancels it).
    ///
    /// Segregation of duties: for normal and emergency changes, the person who schedules,
    /// implements or reports the outcome is neither the requester nor one of the approvers.
    /// Cancelling is for the requester or an admin. Implementing starts only inside the
    /// change's window (or an emergency's override of it; a change without a window starts
    /// when its implementer says), and records when implementation actually started and ended.
    pub fn advance(
        &mut self,
        step: Step,
        who: &UserName,
        roles: &Roles,
        window: Option<Window>,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Transition, Refused> {
        if step == Step::Submit {
            return Err(Refused::Segregation(
                "submit a draft through its own endpoint".into(),
            ));
        }
        self.ensure_can(step)?;
        match step {
            Step::Cancel if who != &self.requester && !roles.contains(Role::Admin) => {
                return Err(Refused::Segregation(format!(
                    "only the requester ({}) or an admin may cancel this change",
                    self.requester
                )));
            }
            Step::Cancel => {}
            Step::Close => {
                let open: Vec<&str> = self
                    .obligations
                    .iter()
                    .filter(|o| o.fulfilled.is_none())
                    .map(|o| o.name.as_str())
                    .collect();
                if !open.is_empty() {
                    return Err(Refused::Unmet(format!(
                        "cannot close {}: it still owes {} (record it with `steward change fulfil {} <obligation> --note …`)",
                        self.id,
                        open.join(", "),
                        self.id
                    )));
                }
            }
            _ if self.classification.change_type != ChangeType::Standard => {
                if who == &self.requester {
                    return Err(Refused::Segregation(format!(
                        "the requester may not {} their own {} change: someone else implements it",
                        step.as_str(),
                        self.classification.change_type
                    )));
                }
                if self.approvers().any(|a| a == who) {
                    return Err(Refused::Segregation(format!(
                        "{who} approved this change and so may not {} it",
                        step.as_str()
                    )));
                }
            }
            _ => {}
        }
        // A pipeline's deployment the gate allowed already started this change (one without
        // steps of its own) inside its window: a person recording `implement` afterwards is not
        // starting it late.
        if step == Step::Implement
            && !(self.request.steps.is_empty() && self.deployed_as_allowed())
            && let Some(why) = self.window_refusal(now)
        {
            return Err(Refused::Unmet(format!(
                "{} cannot be implemented now: {why}",
                self.id
            )));
        }
        if step == Step::Schedule {
            // The requested window is part of what was approved: scheduling may narrow it, never
            // move or widen it. A different window is a new request for approval.
            if let (Some(chosen), Some(approved)) = (&window, &self.request.window)
                && (chosen.start < approved.start || chosen.end > approved.end)
            {
                return Err(Refused::Unmet(format!(
                    "{} was approved for {} → {}; a window outside it needs a new approval: cancel the change and submit it again with the new window",
                    self.id,
                    approved.start.to_rfc3339(),
                    approved.end.to_rfc3339()
                )));
            }
            self.scheduled_window = window.or_else(|| self.request.window.clone());
        }
        if step == Step::Implement {
            self.implementer = Some(who.clone());
            // The person's own time; `implemented_at` answers the earlier deployment, if any.
            self.implementation_started_at = Some(now);
        }
        if self.state == ChangeState::Implementing
            && matches!(step, Step::Complete | Step::Fail | Step::Rollback)
        {
            self.implementation_ended_at = Some(now);
        }
        let next = step.target_state();
        if let Some(outcome) = next.outcome() {
            self.outcome = Some(outcome.to_owned());
        }
        let t = transition(
            match step {
                Step::Schedule => "scheduled",
                Step::Implement => "implementing",
                Step::Complete => "completed",
                Step::Fail => "failed",
                Step::Rollback => "rolled_back",
                Step::Close => "closed",
                Step::Cancel => "cancelled",
                Step::Submit => "submitted",
            },
            Some(self.state),
            next,
            who,
            comment,
        );
        self.state = next;
        self.updated_at = now;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::TargetName;
    use crate::policy::{NoPolicies, RequiredApproval, RuleVerdict, Verdict};
    use crate::submission::tests::valid_document;
    use crate::target::{Environment, Level, Regulated, TargetKind};
    use serde_json::json;

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("name")
    }
    fn roles(list: &str) -> Roles {
        Roles::parse_list(list).expect("roles")
    }
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }
    fn target(name: &str, environment: Environment, regulated: Vec<Regulated>) -> Target {
        Target {
            name: TargetName::parse(name).expect("name"),
            kind: TargetKind::ComputeCluster,
            owner: user("mia"),
            environment,
            criticality: Level::Low,
            regulated,
            parent: None,
        }
    }
    fn facts<'a>(targets: &'a [Target], catalog: Option<&'a CatalogItem>) -> Facts<'a> {
        Facts {
            targets,
            catalog_item: catalog,
            history: History::default(),
            risk_policy: RiskPolicy::default(),
            routing_policy: RoutingPolicy::default(),
            now: now(),
            requester_roles: &[Role::Requester],
            governance: governance(&NoPolicies),
        }
    }
    static NO_SCHEDULE: ScheduleCheck = ScheduleCheck {
        window: None,
        freezes: Vec::new(),
        outside_maintenance: Vec::new(),
        conflicts: Vec::new(),
    };
    fn governance(policy: &dyn PolicyEvaluator) -> Governance<'_> {
        Governance {
            policy,
            schedule: &NO_SCHEDULE,
        }
    }
    fn request(edit: serde_json::Value) -> ChangeRequest {
        let mut doc = valid_document();
        if let (Some(d), Some(e)) = (doc.as_object_mut(), edit.as_object()) {
            for (k, v) in e {
                d.insert(k.clone(), v.clone());
            }
        }
        ChangeRequest::parse(&doc).expect("valid request")
    }
    fn open(req: ChangeRequest, f: Facts<'_>) -> Result<(Change, Vec<Transition>), Refused> {
        Change::open(TenantId::default_tenant(), user("rita"), req, f)
    }
    fn decide(
        change: &mut Change,
        who: &str,
        role_list: &str,
        decision: Decision,
        governance: Governance<'_>,
    ) -> Result<Vec<Transition>, Refused> {
        let (who, roles) = (user(who), roles(role_list));
        change.decide(
            DecisionRequest {
                who: &who,
                roles: &roles,
                decision,
                comment: "ok".into(),
                acknowledged_conflicts: &[],
                now: now(),
            },
            governance,
        )
    }
    fn actions(ts: &[Transition]) -> Vec<&str> {
        ts.iter().map(|t| t.action.as_str()).collect()
    }

    #[test]
    fn a_matching_catalog_item_is_standard_and_approved_at_once() {
        let targets = [target("fraud-scoring", Environment::Staging, vec![])];
        let item = &CatalogItem::shipped()[1]; // security-patch
        let req = request(
            json!({"environment": "staging", "category": "security-patch",
            "catalog_item": "security-patch", "impact": {"data": "low", "availability": "low", "compliance": "low"}}),
        );
        let (change, ts) = open(req, facts(&targets, Some(item))).expect("opens");
        assert_eq!(change.classification.change_type, ChangeType::Standard);
        assert_eq!(change.state, ChangeState::Approved);
        assert_eq!(
            actions(&ts),
            ["change.created", "change.submitted", "change.auto_approved"]
        );
        assert_eq!(
            change.approval_deadline,
            Some(now() + chrono::Duration::days(1))
        );
    }

    #[test]
    fn a_catalog_item_never_covers_production_targets_with_regulated_data() {
        let targets = [target(
            "fraud-scoring",
            Environment::Production,
            vec![Regulated::Financial],
        )];
        for item in CatalogItem::shipped() {
            let req = request(
                json!({"category": item.categories[0], "catalog_item": item.name,
                "impact": {"data": "low", "availability": "low", "compliance": "low"}}),
            );
            let (change, _) = open(req, facts(&targets, Some(&item))).expect("opens");
            assert_eq!(
                change.classification.change_type,
                ChangeType::Normal,
                "{}",
                item.name
            );
            assert!(
                change
                    .classification
                    .reason
                    .contains("production target with regulated data"),
                "{}",
                change.classification.reason
            );
        }
    }

    #[test]
    fn emergency_and_normal_classification() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let (change, _) = open(
            request(json!({"emergency": true, "justification": "zero-day"})),
            facts(&targets, None),
        )
        .expect("opens");
        assert_eq!(change.classification.change_type, ChangeType::Emergency);
        assert_eq!(change.state, ChangeState::PendingApproval);
        let (change, _) = open(request(json!({})), facts(&targets, None)).expect("opens");
        assert_eq!(change.classification.change_type, ChangeType::Normal);
    }

    #[test]
    fn unknown_targets_and_environment_mismatches_are_named() {
        let targets = [target("fraud-scoring", Environment::Staging, vec![])];
        let err = open(
            request(json!({"targets": ["fraud-scoring", "ghost"]})),
            facts(&targets, None),
        )
        .expect_err("refused");
        let Refused::Invalid(errors) = err else {
            panic!("expected field errors")
        };
        assert_eq!(errors[0].field, "targets[0]");
        assert!(
            errors[0]
                .message
                .contains("is in staging but the change is for production")
        );
        assert!(errors[1].message.starts_with("unknown target 'ghost'"));
    }

    #[test]
    fn lifecycle_with_segregation_of_duties() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let (mut change, _) = open(request(json!({})), facts(&targets, None)).expect("opens");
        assert_eq!(change.state, ChangeState::PendingApproval);
        // Too early to schedule.
        let err = change
            .advance(
                Step::Schedule,
                &user("ivan"),
                &roles("requester"),
                None,
                None,
                now(),
            )
            .expect_err("illegal");
        assert_eq!(
            err.to_string(),
            "cannot schedule a change that is pending_approval"
        );
        decide(
            &mut change,
            "mia",
            "manager",
            Decision::Approve,
            governance(&NoPolicies),
        )
        .expect("owner approves");
        assert_eq!(change.state, ChangeState::Approved);
        // Neither the requester nor the approver implements.
        for who in ["rita", "mia"] {
            let err = change
                .advance(
                    Step::Schedule,
                    &user(who),
                    &roles("manager"),
                    None,
                    None,
                    now(),
                )
                .expect_err("segregation");
            assert!(matches!(err, Refused::Segregation(_)), "{who}");
        }
        for step in [Step::Schedule, Step::Implement, Step::Complete, Step::Close] {
            change
                .advance(step, &user("ivan"), &roles("requester"), None, None, now())
                .expect("implementer proceeds");
        }
        assert_eq!(change.state, ChangeState::Closed);
        assert_eq!(change.implementer, Some(user("ivan")));
        let err = change
            .advance(
                Step::Cancel,
                &user("rita"),
                &roles("requester"),
                None,
                None,
                now(),
            )
            .expect_err("closed is final");
        assert_eq!(err.to_string(), "cannot cancel a change that is closed");
    }

    #[test]
    fn a_draft_waits_until_its_requester_submits_it() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let (mut change, ts) =
            open(request(json!({"draft": true})), facts(&targets, None)).expect("opens");
        assert_eq!(
            (change.state, actions(&ts)),
            (ChangeState::Draft, vec!["change.created"])
        );
        assert!(
            change
                .submit_draft(&user("mia"), facts(&targets, None))
                .is_err()
        );
        let ts = change
            .submit_draft(&user("rita"), facts(&targets, None))
            .expect("submits");
        assert_eq!(actions(&ts), ["change.submitted", "change.routed"]);
        assert!(change.is_overdue(now() + chrono::Duration::days(4)));
        assert!(!change.is_overdue(now() + chrono::Duration::days(2)));
    }

    /// A policy set written in Rust for these tests: each rule fires when its predicate holds.
    #[derive(Debug)]
    struct Fake(Vec<RuleVerdict>);

    impl PolicyEvaluator for Fake {
        fn version(&self) -> &str {
            "fake"
        }
        fn evaluate(&self, input: &Value) -> Result<Vec<RuleVerdict>, String> {
            // Rules only speak when the input is a change at some stage.
            assert!(input["stage"].is_string() && input["change"]["title"].is_string());
            Ok(self.0.clone())
        }
    }

    fn rule(name: &str, deny: &[&str], warn: &[&str]) -> RuleVerdict {
        let deny: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
        let warn: Vec<String> = warn.iter().map(|s| s.to_string()).collect();
        RuleVerdict {
            rule: name.into(),
            title: None,
            controls: Vec::new(),
            verdict: RuleVerdict::verdict_of(&deny, &warn),
            deny,
            warn,
            approvals: Vec::new(),
            obligations: Vec::new(),
            inputs: Default::default(),
        }
    }

    #[test]
    fn a_policy_deny_refuses_submission_and_a_warning_is_recorded() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let policy = Fake(vec![rule("no_fridays", &["not on a Friday"], &[])]);
        let f = Facts {
            governance: governance(&policy),
            ..facts(&targets, None)
        };
        let err = open(request(json!({})), f).expect_err("denied");
        assert_eq!(
            err.to_string(),
            "refused by policy: no_fridays: not on a Friday"
        );

        let policy = Fake(vec![rule("tidy", &[], &["add a verification plan"])]);
        let f = Facts {
            governance: governance(&policy),
            ..facts(&targets, None)
        };
        let (change, ts) = open(request(json!({})), f).expect("warnings do not block");
        assert_eq!(change.state, ChangeState::PendingApproval);
        let receipt = ts[1]
            .policy
            .as_ref()
            .expect("the submission carries its receipt");
        assert_eq!(receipt.warnings(), ["tidy: add a verification plan"]);
        assert_eq!(receipt.rules[0].verdict, Verdict::Warn);
        assert_eq!(change.policy_receipts, std::slice::from_ref(receipt));
        assert!(change.policy_input.is_some());
    }

    #[test]
    fn policy_approvals_add_slots_that_must_be_filled_and_obligations_block_close() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let mut pii = rule("pii", &[], &[]);
        pii.approvals.push(RequiredApproval {
            role: Role::ComplianceOfficer,
            reason: "PII".into(),
        });
        pii.obligations.push("post_implementation_review".into());
        let policy = Fake(vec![pii]);
        let gov = governance(&policy);
        let f = Facts {
            governance: gov,
            ..facts(&targets, None)
        };
        let (mut change, _) = open(request(json!({})), f).expect("opens");
        let slots: Vec<&str> = change
            .required_approvals
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(slots, ["owner:mia", "policy:pii:compliance_officer"]);
        decide(&mut change, "mia", "manager", Decision::Approve, gov).expect("owner approves");
        assert_eq!(
            change.state,
            ChangeState::PendingApproval,
            "compliance still owed"
        );
        decide(
            &mut change,
            "cora",
            "compliance_officer",
            Decision::Approve,
            gov,
        )
        .expect("compliance approves");
        assert_eq!(change.state, ChangeState::Approved);
        for step in [Step::Schedule, Step::Implement, Step::Complete] {
            change
                .advance(step, &user("ivan"), &roles("requester"), None, None, now())
                .expect("implementer proceeds");
        }
        let err = change
            .advance(
                Step::Close,
                &user("ivan"),
                &roles("requester"),
                None,
                None,
                now(),
            )
            .expect_err("review owed");
        assert!(
            err.to_string().contains("post_implementation_review"),
            "{err}"
        );
        change
            .fulfil(
                "post_implementation_review",
                &user("ivan"),
                &roles("requester"),
                "went fine".into(),
                now(),
            )
            .expect("review recorded");
        change
            .advance(
                Step::Close,
                &user("ivan"),
                &roles("requester"),
                None,
                None,
                now(),
            )
            .expect("closes");
    }

    #[test]
    fn a_policy_deny_at_approval_refuses_that_approval_only() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let (mut change, _) = open(request(json!({})), facts(&targets, None)).expect("opens");
        let policy = Fake(vec![rule("late", &["approvals are closed"], &[])]);
        let before = change.clone();
        let err = decide(
            &mut change,
            "mia",
            "manager",
            Decision::Approve,
            governance(&policy),
        )
        .expect_err("denied");
        assert!(matches!(err, Refused::PolicyDenied(_)));
        // The caller discards the change on error; a rejection is never blocked by policy.
        change = before;
        decide(
            &mut change,
            "mia",
            "manager",
            Decision::Reject,
            governance(&policy),
        )
        .expect("rejections pass");
        assert_eq!(change.state, ChangeState::Rejected);
    }

    #[test]
    fn a_policy_set_that_cannot_be_evaluated_denies() {
        #[derive(Debug)]
        struct Broken;
        impl PolicyEvaluator for Broken {
            fn version(&self) -> &str {
                "broken"
            }
            fn evaluate(&self, _: &Value) -> Result<Vec<RuleVerdict>, String> {
                Err("division by zero".into())
            }
        }
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let f = Facts {
            governance: governance(&Broken),
            ..facts(&targets, None)
        };
        let err = open(request(json!({})), f).expect_err("fails closed");
        assert!(err.to_string().contains("division by zero"), "{err}");
    }

    fn freeze_check() -> ScheduleCheck {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("t")
                .with_timezone(&Utc)
        };
        ScheduleCheck {
            window: None,
            freezes: vec![FreezeHit {
                name: crate::names::WindowName::parse("quarter-end").expect("name"),
                reason: "books close".into(),
                scope: crate::schedule::Scope::Everywhere,
                start: at("2026-12-28T00:00:00Z"),
                end: at("2027-01-04T00:00:00Z"),
            }],
            outside_maintenance: Vec::new(),
            conflicts: Vec::new(),
        }
    }

    #[test]
    fn a_freeze_refuses_normal_changes_and_emergencies_need_the_ciso_to_override() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let frozen = freeze_check();
        let gov = Governance {
            policy: &NoPolicies,
            schedule: &frozen,
        };
        let f = Facts {
            governance: gov,
            ..facts(&targets, None)
        };
        let err = open(request(json!({})), f).expect_err("frozen");
        assert!(matches!(err, Refused::Frozen(_)));
        assert!(err.to_string().contains("quarter-end"), "{err}");

        let (mut change, ts) = open(
            request(json!({"emergency": true, "justification": "fraud losses spiking"})),
            f,
        )
        .expect("an emergency may ask to override");
        assert!(actions(&ts).contains(&"change.freeze_override_requested"));
        assert_eq!(change.freeze_overrides.len(), 1);
        let err = decide(&mut change, "vic", "vp_engineering", Decision::Approve, gov);
        assert!(err.is_ok(), "{err:?}");
        assert_eq!(
            change.state,
            ChangeState::PendingApproval,
            "the CISO has not approved"
        );
        let ts = decide(&mut change, "cass", "ciso", Decision::Approve, gov).expect("ciso");
        assert!(
            ts[0]
                .comment
                .as_deref()
                .unwrap_or("")
                .contains("CISO overrides the freeze")
        );
        assert_eq!(change.state, ChangeState::Approved);
    }

    #[test]
    fn a_freeze_created_after_submission_refuses_the_approval() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let (mut change, _) = open(request(json!({})), facts(&targets, None)).expect("opens");
        let frozen = freeze_check();
        let gov = Governance {
            policy: &NoPolicies,
            schedule: &frozen,
        };
        let err =
            decide(&mut change, "mia", "manager", Decision::Approve, gov).expect_err("frozen");
        assert!(matches!(err, Refused::Frozen(_)), "{err:?}");
    }

    #[test]
    fn approving_the_later_of_two_conflicting_changes_needs_an_acknowledgement() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let (mut change, _) = open(request(json!({})), facts(&targets, None)).expect("opens");
        change.id = ChangeId::from_number(7);
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("t")
                .with_timezone(&Utc)
        };
        let conflicted = ScheduleCheck {
            conflicts: vec![crate::schedule::ConflictHit {
                change: ChangeId::from_number(3),
                state: ChangeState::Approved,
                start: at("2026-12-01T22:00:00Z"),
                end: at("2026-12-01T23:00:00Z"),
                via: vec!["fraud-scoring".into()],
                needs_acknowledgement: true,
            }],
            ..ScheduleCheck::default()
        };
        let gov = Governance {
            policy: &NoPolicies,
            schedule: &conflicted,
        };
        let err = decide(&mut change, "mia", "manager", Decision::Approve, gov)
            .expect_err("unacknowledged");
        assert!(err.to_string().contains("CHG-3"), "{err}");
        let (who, roles) = (user("mia"), roles("manager"));
        let ts = change
            .decide(
                DecisionRequest {
                    who: &who,
                    roles: &roles,
                    decision: Decision::Approve,
                    comment: "checked with CHG-3's owner".into(),
                    acknowledged_conflicts: &[ChangeId::from_number(3)],
                    now: now(),
                },
                gov,
            )
            .expect("acknowledged");
        assert!(
            ts[0]
                .comment
                .as_deref()
                .unwrap_or("")
                .contains("acknowledged conflicts with CHG-3")
        );
        assert_eq!(
            change.decisions[0].acknowledged_conflicts,
            [ChangeId::from_number(3)]
        );
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    /// An approved change with the window 22:00–23:00 on 2026-11-23, scheduled into it by ivan.
    fn scheduled_in_window(emergency: bool) -> Change {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let window = json!({"start": "2026-11-23T22:00:00Z", "end": "2026-11-23T23:00:00Z"});
        let edit = if emergency {
            json!({"window": window, "emergency": true, "justification": "card fraud spiking"})
        } else {
            json!({"window": window})
        };
        let (mut change, _) = open(request(edit), facts(&targets, None)).expect("opens");
        change.id = ChangeId::from_number(9);
        if emergency {
            decide(
                &mut change,
                "vic",
                "vp_engineering",
                Decision::Approve,
                governance(&NoPolicies),
            )
            .expect("vp approves");
            decide(
                &mut change,
                "cass",
                "ciso",
                Decision::Approve,
                governance(&NoPolicies),
            )
            .expect("ciso approves");
        } else {
            decide(
                &mut change,
                "mia",
                "manager",
                Decision::Approve,
                governance(&NoPolicies),
            )
            .expect("owner approves");
        }
        assert_eq!(change.state, ChangeState::Approved);
        change
            .advance(
                Step::Schedule,
                &user("ivan"),
                &roles("requester"),
                None,
                None,
                now(),
            )
            .expect("scheduled");
        change
    }

    fn implement(change: &mut Change, when: &str) -> Result<Transition, Refused> {
        change.advance(
            Step::Implement,
            &user("ivan"),
            &roles("requester"),
            None,
            None,
            at(when),
        )
    }

    #[test]
    fn implementing_is_refused_outside_the_window_and_records_the_actual_times() {
        let mut change = scheduled_in_window(false);
        let early = implement(&mut change, "2026-11-23T21:00:00Z").expect_err("too early");
        assert_eq!(
            early.to_string(),
            "CHG-9 cannot be implemented now: CHG-9's window opens at 2026-11-23T22:00:00Z (it is 2026-11-23T22:00:00Z → 2026-11-23T23:00:00Z)"
        );
        let late = implement(&mut change, "2026-11-23T23:02:00Z").expect_err("too late");
        assert!(matches!(late, Refused::Unmet(_)), "{late:?}");
        assert_eq!(
            late.to_string(),
            "CHG-9 cannot be implemented now: CHG-9's window closed at 2026-11-23T23:00:00Z (it was 2026-11-23T22:00:00Z → 2026-11-23T23:00:00Z): cancel it and submit it again with a new window"
        );
        assert_eq!(change.state, ChangeState::Scheduled);
        assert_eq!(change.implemented_at(), None, "not implemented, so no time");
        assert_eq!(change.implementer, None);

        implement(&mut change, "2026-11-23T22:10:00Z").expect("inside the window");
        assert_eq!(change.implemented_at(), Some(at("2026-11-23T22:10:00Z")));
        assert_eq!(
            change.implementation_started_at,
            Some(at("2026-11-23T22:10:00Z"))
        );
        let ivan = (user("ivan"), roles("requester"));
        change
            .advance(
                Step::Complete,
                &ivan.0,
                &ivan.1,
                None,
                None,
                at("2026-11-23T22:40:00Z"),
            )
            .expect("completes");
        assert_eq!(
            change.implementation_ended_at,
            Some(at("2026-11-23T22:40:00Z"))
        );
        // A later rollback has its own time; implementation ended when it completed.
        change
            .advance(
                Step::Rollback,
                &ivan.0,
                &ivan.1,
                None,
                None,
                at("2026-11-24T09:00:00Z"),
            )
            .expect("rolled back");
        assert_eq!(
            change.implementation_ended_at,
            Some(at("2026-11-23T22:40:00Z"))
        );
        assert_eq!(change.implemented_at(), Some(at("2026-11-23T22:10:00Z")));
    }

    #[test]
    fn scheduling_may_narrow_the_approved_window_never_move_it() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let window = json!({"start": "2026-11-23T22:00:00Z", "end": "2026-11-23T23:00:00Z"});
        let (mut change, _) =
            open(request(json!({"window": window})), facts(&targets, None)).expect("opens");
        decide(
            &mut change,
            "mia",
            "manager",
            Decision::Approve,
            governance(&NoPolicies),
        )
        .expect("owner approves");
        let ivan = (user("ivan"), roles("requester"));
        let schedule = |change: &mut Change, start: &str, end: &str| {
            change.advance(
                Step::Schedule,
                &ivan.0,
                &ivan.1,
                Some(Window {
                    start: at(start),
                    end: at(end),
                }),
                None,
                at("2026-11-23T12:00:00Z"),
            )
        };
        // Moved to "now", or widened past the approved end: a new approval is needed.
        let moved = schedule(&mut change, "2026-11-23T12:00:00Z", "2026-11-23T13:00:00Z")
            .expect_err("moved");
        assert!(
            moved.to_string().contains("needs a new approval"),
            "{moved}"
        );
        schedule(&mut change, "2026-11-23T22:30:00Z", "2026-11-23T23:30:00Z").expect_err("wider");
        assert_eq!(change.state, ChangeState::Approved);
        assert_eq!(change.scheduled_window, None);
        // Inside it: fine.
        schedule(&mut change, "2026-11-23T22:15:00Z", "2026-11-23T22:45:00Z").expect("narrower");
        assert_eq!(change.state, ChangeState::Scheduled);
    }

    #[test]
    fn a_change_without_a_window_starts_when_its_implementer_says() {
        let targets = [target("fraud-scoring", Environment::Production, vec![])];
        let (mut change, _) = open(request(json!({})), facts(&targets, None)).expect("opens");
        decide(
            &mut change,
            "mia",
            "manager",
            Decision::Approve,
            governance(&NoPolicies),
        )
        .expect("approves");
        let ivan = (user("ivan"), roles("requester"));
        change
            .advance(Step::Schedule, &ivan.0, &ivan.1, None, None, now())
            .expect("scheduled");
        let later = now() + chrono::Duration::days(3);
        change
            .advance(Step::Implement, &ivan.0, &ivan.1, None, None, later)
            .expect("no window to miss");
        assert_eq!(change.implemented_at(), Some(later));
    }

    #[test]
    fn only_all_approvers_of_an_emergency_together_override_its_window_and_only_for_a_while() {
        let target_name = TargetName::parse("fraud-scoring").expect("name");
        let gate = |c: &Change, when: &str| {
            crate::gate::check(
                c,
                &target_name,
                Environment::Production,
                at(when),
                &ScheduleCheck::default(),
            )
        };
        let mut change = scheduled_in_window(true);
        let late = implement(&mut change, "2026-11-23T23:30:00Z").expect_err("closed");
        assert!(
            late.to_string()
                .contains("`steward change override-window CHG-9 --reason …`"),
            "{late}"
        );
        assert!(!gate(&change, "2026-11-23T23:30:00Z").allowed);
        let reason = || "fraud losses are growing; cannot wait for tomorrow's window".to_owned();
        let when = at("2026-11-23T23:30:00Z");
        for who in ["ivan", "rita"] {
            let err = change
                .override_window(&user(who), reason(), when)
                .expect_err("not an approver");
            assert_eq!(
                err.to_string(),
                "only someone who approved CHG-9 (vic, cass) may override its window"
            );
        }
        // One approver agrees: recorded, but the emergency still may not start.
        let t = change
            .override_window(&user("vic"), reason(), at("2026-11-23T23:20:00Z"))
            .expect("an approver agrees");
        assert_eq!(t.action, "change.window_override_agreed");
        assert_eq!(
            t.details.as_ref().expect("details")["waiting_for"],
            json!(["cass"])
        );
        assert!(change.window_override.is_none());
        assert!(!gate(&change, "2026-11-23T23:25:00Z").allowed);
        assert!(implement(&mut change.clone(), "2026-11-23T23:25:00Z").is_err());
        let again = change
            .override_window(&user("vic"), reason(), at("2026-11-23T23:25:00Z"))
            .expect_err("one person agrees once");
        assert!(
            again.to_string().contains("opens when cass agrees too"),
            "{again}"
        );
        // An agreement lapses: vic's from 23:20 is stale three hours later.
        let mut stale = change.clone();
        let t = stale
            .override_window(&user("cass"), reason(), at("2026-11-24T02:30:00Z"))
            .expect("cass agrees alone");
        assert_eq!(
            t.action, "change.window_override_agreed",
            "vic's agreement lapsed"
        );
        // The second approver agrees in time: the override opens.
        let t = change
            .override_window(&user("cass"), reason(), when)
            .expect("the last approver opens it");
        assert_eq!(t.action, "change.window_override");
        assert_eq!(t.comment.as_deref(), Some(reason().as_str()));
        assert_eq!(t.actor, user("cass"));
        let recorded = change.window_override.clone().expect("kept on the change");
        assert_eq!(recorded.until, at("2026-11-24T01:30:00Z"));
        let agreed: Vec<&UserName> = recorded.agreements.iter().map(|a| &a.by).collect();
        assert_eq!(agreed, [&user("vic"), &user("cass")]);
        assert!(change.override_agreements.is_empty());
        assert!(
            change
                .override_window(&user("vic"), reason(), when)
                .expect_err("once is enough")
                .to_string()
                .contains("already overridden by vic and cass")
        );
        let verdict = gate(&change, "2026-11-23T23:31:00Z");
        assert!(verdict.allowed, "{}", verdict.reason);
        assert!(
            verdict
                .reason
                .contains("was overridden by its approvers vic and cass at 2026-11-23T23:30:00Z"),
            "{}",
            verdict.reason
        );
        // The override is for the emergency at hand, not for later.
        assert!(!gate(&change, "2026-11-24T01:31:00Z").allowed);
        assert!(implement(&mut change.clone(), "2026-11-24T01:31:00Z").is_err());
        implement(&mut change, "2026-11-23T23:31:00Z").expect("starts under the override");
        assert_eq!(change.implemented_at(), Some(at("2026-11-23T23:31:00Z")));
        assert!(matches!(
            change.override_window(&user("vic"), reason(), when),
            Err(Refused::IllegalTransition { .. })
        ));
    }

    #[test]
    fn a_normal_change_has_no_window_override() {
        let mut change = scheduled_in_window(false);
        let err = change
            .override_window(
                &user("mia"),
                "in a hurry".into(),
                at("2026-11-23T23:30:00Z"),
            )
            .expect_err("normal");
        assert_eq!(
            err.to_string(),
            "CHG-9 is a normal change, and only an emergency may start outside its window: cancel it and submit it again with a new window"
        );
        assert_eq!(change.window_override, None);
    }
}
