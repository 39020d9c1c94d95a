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
use crate::names::{ChangeId, TenantId, UserName};
use crate::risk::{self, History, RiskAssessment, RiskPolicy};
use crate::role::{Role, Roles};
use crate::sla;
use crate::state::ChangeState;
use crate::submission::{ChangeRequest, FieldError, Window};
use crate::target::Target;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

    fn target_state(self) -> ChangeState {
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

    /// Submits a draft: re-checks and re-scores against today's facts, then routes for approval.
    fn submit(&mut self, facts: Facts<'_>) -> Result<Vec<Transition>, Refused> {
        self.ensure_can(Step::Submit)?;
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
        self.submitted_at = Some(facts.now);
        self.approval_deadline = Some(sla::approval_deadline(
            self.classification.change_type,
            facts.now,
        ));
        self.updated_at = facts.now;
        let requester = self.requester.clone();
        let mut out = vec![transition(
            "submitted",
            Some(self.state),
            ChangeState::Submitted,
            &requester,
            None,
        )];
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

    /// Records an approval or rejection, enforcing segregation of duties.
    pub fn decide(
        &mut self,
        who: &UserName,
        roles: &Roles,
        decision: Decision,
        comment: String,
        now: DateTime<Utc>,
    ) -> Result<Vec<Transition>, Refused> {
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
        self.decisions.push(GivenDecision {
            slot: slot.clone(),
            by: who.clone(),
            decision,
            comment: comment.clone(),
            at: now,
        });
        self.updated_at = now;
        let (action, next) = match approval::outcome(&self.required_approvals, &self.decisions) {
            Outcome::Pending => ("approval_recorded", ChangeState::PendingApproval),
            Outcome::Approved => ("approved", ChangeState::Approved),
            Outcome::Rejected => ("rejected", ChangeState::Rejected),
        };
        let t = transition(
            action,
            Some(self.state),
            next,
            who,
            Some(format!("{slot}: {comment}")),
        );
        self.state = next;
        Ok(vec![t])
    }

    /// Whether the approval SLA has passed with the change still waiting.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == ChangeState::PendingApproval
            && self.approval_deadline.is_some_and(|due| due < now)
    }

    fn approvers(&self) -> impl Iterator<Item = &UserName> {
        self.decisions.iter().map(|d| &d.by)
    }

    /// Moves the change one lifecycle step after approval (or cancels it).
    ///
    /// Segregation of duties: for normal and emergency changes, the person who schedules,
    /// implements or reports the outcome is neither the requester nor one of the approvers.
    /// Cancelling is for the requester or an admin.
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
            Step::Close => {}
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
        if step == Step::Schedule {
            self.scheduled_window = window.or_else(|| self.request.window.clone());
        }
        if step == Step::Implement {
            self.implementer = Some(who.clone());
        }
        let next = step.target_state();
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
        change
            .decide(
                &user("mia"),
                &roles("manager"),
                Decision::Approve,
                "fine".into(),
                now(),
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
}
