//! What a tenant's changes add up to over a period: how many of each type were requested each
//! week, the state those changes are in now, how long people took to approve them, how many of
//! those implemented failed, the share that were emergencies, and which approvals are overdue.
//!
//! Definitions (the API documents the same):
//! - a change counts in the week it was **created** (requested); the states are those changes'
//!   current states;
//! - a change is **implemented** in the week its implementation actually began
//!   ([`Change::implemented_at`], never the plan), and **failed** when the server says so (its
//!   outcome was `failed`, it was rolled back, or it is a strong suspect of an incident: the
//!   same test the incident metrics use, which needs the incident links, so the caller hands
//!   the verdicts in);
//! - **approval latency** runs from submission to the decision that completed the approvals,
//!   for changes whose approvals completed in the period; changes approved by their
//!   classification (standard changes) are counted apart, as auto-approved, since their
//!   latency is zero by construction;
//! - an approval is **overdue** when its SLA deadline has passed with the change still waiting,
//!   judged now, whatever the period.

use super::{Period, Spread, share};
use crate::ChangeId;
use crate::approval::{self, Decision, Outcome};
use crate::change::Change;
use crate::classify::ChangeType;
use crate::state::ChangeState;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The change types in the order every figure lists them.
pub const TYPES: [ChangeType; 3] = [
    ChangeType::Standard,
    ChangeType::Normal,
    ChangeType::Emergency,
];

/// How many changes of each type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCounts {
    pub standard: usize,
    pub normal: usize,
    pub emergency: usize,
}

impl TypeCounts {
    fn add(&mut self, change_type: ChangeType) {
        *self.get_mut(change_type) += 1;
    }

    fn get_mut(&mut self, change_type: ChangeType) -> &mut usize {
        match change_type {
            ChangeType::Standard => &mut self.standard,
            ChangeType::Normal => &mut self.normal,
            ChangeType::Emergency => &mut self.emergency,
        }
    }

    pub fn get(&self, change_type: ChangeType) -> usize {
        match change_type {
            ChangeType::Standard => self.standard,
            ChangeType::Normal => self.normal,
            ChangeType::Emergency => self.emergency,
        }
    }

    pub fn total(&self) -> usize {
        self.standard + self.normal + self.emergency
    }
}

/// Requests, implementations and failures in one stretch of time (a week, or the whole period).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub period: Period,
    /// Changes created in it, by type.
    pub created: TypeCounts,
    /// Changes whose implementation began in it.
    pub implemented: usize,
    /// Of those, the failed ones.
    pub failed: usize,
    /// `failed / implemented`; `None` when nothing was implemented.
    pub failure_rate: Option<f64>,
    /// Emergencies among the changes created; `None` when none was created.
    pub emergency_share: Option<f64>,
}

/// How long approvals took for one type of change (or for all, `change_type: None`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ApprovalLatency {
    pub change_type: Option<ChangeType>,
    pub latency: Spread,
}

/// An approval past its deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverdueApproval {
    pub id: ChangeId,
    pub title: String,
    pub change_type: ChangeType,
    pub due: DateTime<Utc>,
    /// How long past the deadline, judged at `now`.
    pub overdue_minutes: i64,
}

/// What the changes of a period add up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeMetrics {
    /// The whole period.
    pub totals: Tally,
    /// One per week of the period, oldest first.
    pub weeks: Vec<Tally>,
    /// The changes created in the period by their state now: every state, in lifecycle order,
    /// zero included.
    pub by_state: Vec<(ChangeState, usize)>,
    /// Changes approved by their classification in the period (no person's decision).
    pub auto_approved: usize,
    /// All approved changes first, then each type, in [`TYPES`] order.
    pub approval_latency: Vec<ApprovalLatency>,
    /// Approvals overdue now, the most overdue first.
    pub overdue: Vec<OverdueApproval>,
}

/// What [`summarize`] is given.
#[derive(Debug, Clone, Copy)]
pub struct ChangeFacts<'a> {
    pub period: Period,
    /// Every change that may count: created in the period, or created before it and approved
    /// or implemented in it.
    pub changes: &'a [Change],
    /// Of the changes implemented in the period, those that failed.
    pub failed: &'a BTreeSet<ChangeId>,
    /// Every change waiting for approval now, whenever it was created.
    pub waiting: &'a [Change],
    pub now: DateTime<Utc>,
}

/// When the approvals a change needed were completed by a person's decision: the latest
/// approving decision, once every slot is approved. `None` for a change approved by its
/// classification (no slots), or not (yet) approved.
pub fn approved_at(change: &Change) -> Option<DateTime<Utc>> {
    if change.required_approvals.is_empty()
        || approval::outcome(&change.required_approvals, &change.decisions) != Outcome::Approved
    {
        return None;
    }
    change
        .decisions
        .iter()
        .filter(|d| d.decision == Decision::Approve)
        .map(|d| d.at)
        .max()
}

/// Whether a change was approved by its classification (no person needed), and when: its
/// submission.
fn auto_approved_at(change: &Change) -> Option<DateTime<Utc>> {
    let approved = !matches!(
        change.state,
        ChangeState::Draft
            | ChangeState::Submitted
            | ChangeState::PendingApproval
            | ChangeState::Rejected
    );
    (change.required_approvals.is_empty() && change.decisions.is_empty() && approved)
        .then_some(change.submitted_at)
        .flatten()
}

fn tally(period: Period, changes: &[Change], failed: &BTreeSet<ChangeId>) -> Tally {
    let mut created = TypeCounts::default();
    let (mut implemented, mut failures) = (0, 0);
    for change in changes {
        if period.contains(change.created_at) {
            created.add(change.classification.change_type);
        }
        if change
            .implemented_at()
            .is_some_and(|at| period.contains(at))
        {
            implemented += 1;
            if failed.contains(&change.id) {
                failures += 1;
            }
        }
    }
    Tally {
        period,
        created,
        implemented,
        failed: failures,
        failure_rate: share(failures, implemented),
        emergency_share: share(created.emergency, created.total()),
    }
}

/// The figures of `facts.period`.
pub fn summarize(facts: &ChangeFacts) -> ChangeMetrics {
    let period = facts.period;
    let changes = facts.changes;
    let by_state = ChangeState::ALL
        .into_iter()
        .map(|state| {
            let count = changes
                .iter()
                .filter(|c| period.contains(c.created_at) && c.state == state)
                .count();
            (state, count)
        })
        .collect();
    let latency = |only: Option<ChangeType>| -> Spread {
        Spread::of(changes.iter().filter_map(|c| {
            let approved = approved_at(c).filter(|at| period.contains(*at))?;
            if only.is_some_and(|t| t != c.classification.change_type) {
                return None;
            }
            let asked = c.submitted_at.unwrap_or(c.created_at);
            Some((approved - asked).max(Duration::zero()))
        }))
    };
    let mut overdue: Vec<OverdueApproval> = facts
        .waiting
        .iter()
        .filter(|c| c.is_overdue(facts.now))
        .filter_map(|c| {
            let due = c.approval_deadline?;
            Some(OverdueApproval {
                id: c.id.clone(),
                title: c.request.title.clone(),
                change_type: c.classification.change_type,
                due,
                overdue_minutes: (facts.now - due).num_minutes(),
            })
        })
        .collect();
    overdue.sort_by(|a, b| a.due.cmp(&b.due).then_with(|| a.id.cmp(&b.id)));
    ChangeMetrics {
        totals: tally(period, changes, facts.failed),
        weeks: period
            .weeks()
            .into_iter()
            .map(|week| tally(week, changes, facts.failed))
            .collect(),
        by_state,
        auto_approved: changes
            .iter()
            .filter(|c| auto_approved_at(c).is_some_and(|at| period.contains(at)))
            .count(),
        approval_latency: std::iter::once(None)
            .chain(TYPES.into_iter().map(Some))
            .map(|change_type| ApprovalLatency {
                change_type,
                latency: latency(change_type),
            })
            .collect(),
        overdue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0)
            .single()
            .expect("time")
    }

    /// `CHG-n` of `kind`, created (and submitted) at `created`, in `state`.
    fn change(n: u64, kind: &str, state: &str, created: DateTime<Utc>) -> Change {
        let request =
            crate::submission::ChangeRequest::parse(&crate::submission::tests::valid_document())
                .expect("valid");
        serde_json::from_value(json!({
            "id": format!("CHG-{n}"), "tenant": "default", "requester": "rita",
            "request": request, "classification": {"type": kind, "reason": "x"},
            "risk": {"score": 10, "level": "low", "factors": []}, "state": state,
            "required_approvals": [], "decisions": [], "approval_deadline": null,
            "scheduled_window": null, "implementer": null, "created_at": created,
            "submitted_at": created, "updated_at": created, "version": 1,
        }))
        .expect("change")
    }

    /// `change` needing the slots named, each approved (in order) at the times given.
    fn approved(mut change: Change, approvals: &[(&str, DateTime<Utc>)]) -> Change {
        change.required_approvals = serde_json::from_value(json!(approvals
            .iter()
            .map(|(slot, _)| json!({"id": slot, "eligibility": {"kind": "role", "role": "manager"}, "reason": "x"}))
            .collect::<Vec<_>>()))
        .expect("slots");
        change.decisions = serde_json::from_value(json!(
            approvals
                .iter()
                .map(
                    |(slot, at)| json!({"slot": slot, "by": format!("{slot}-person"),
                                     "decision": "approve", "comment": "ok", "at": at})
                )
                .collect::<Vec<_>>()
        ))
        .expect("decisions");
        change
    }

    fn implemented(mut change: Change, at: DateTime<Utc>) -> Change {
        change.implementation_started_at = Some(at);
        change
    }

    fn period() -> Period {
        Period::new(at(1, 0), at(15, 0)).expect("two weeks")
    }

    #[test]
    fn changes_count_in_the_week_they_were_requested_by_type() {
        let changes = [
            change(1, "normal", "pending_approval", at(1, 9)),
            approved(
                change(2, "emergency", "approved", at(2, 9)),
                &[("ciso", at(2, 10))],
            ),
            change(3, "standard", "approved", at(9, 9)),
            change(4, "normal", "rejected", at(9, 10)),
            // Before the period, and at its (exclusive) end: not counted as requests.
            change(5, "normal", "closed", at(1, 0) - Duration::seconds(1)),
            change(6, "emergency", "draft", at(15, 0)),
        ];
        let m = summarize(&ChangeFacts {
            period: period(),
            changes: &changes,
            failed: &BTreeSet::new(),
            waiting: &[],
            now: at(20, 0),
        });
        assert_eq!(m.weeks.len(), 2);
        let counts = |t: &Tally| (t.created.standard, t.created.normal, t.created.emergency);
        assert_eq!(counts(&m.weeks[0]), (0, 1, 1));
        assert_eq!(counts(&m.weeks[1]), (1, 1, 0));
        assert_eq!(counts(&m.totals), (1, 2, 1));
        assert_eq!(m.totals.emergency_share, Some(0.25));
        assert_eq!(m.weeks[0].emergency_share, Some(0.5));
        assert_eq!(m.weeks[1].emergency_share, Some(0.0));
        let state = |s: ChangeState| m.by_state.iter().find(|(x, _)| *x == s).map(|(_, n)| *n);
        assert_eq!(m.by_state.len(), ChangeState::ALL.len());
        assert_eq!(state(ChangeState::Approved), Some(2));
        assert_eq!(state(ChangeState::Rejected), Some(1));
        assert_eq!(
            state(ChangeState::Closed),
            Some(0),
            "created before the period"
        );
        assert_eq!(state(ChangeState::Draft), Some(0), "created at its end");
        // The standard change was approved by its classification at submission.
        assert_eq!(m.auto_approved, 1);
    }

    #[test]
    fn the_failure_rate_is_of_changes_implemented_in_the_week() {
        let changes = [
            implemented(change(1, "normal", "completed", at(1, 9)), at(3, 9)),
            implemented(change(2, "normal", "failed", at(1, 9)), at(4, 9)),
            implemented(change(3, "normal", "rolled_back", at(2, 9)), at(10, 9)),
            // Requested before the period, implemented in it: its failure counts.
            implemented(
                change(4, "normal", "completed", at(1, 0) - Duration::days(30)),
                at(11, 9),
            ),
            // Implemented after the period: not counted.
            implemented(change(5, "normal", "failed", at(2, 9)), at(16, 0)),
            // Not implemented (only planned): not counted.
            change(6, "normal", "scheduled", at(2, 9)),
        ];
        let failed: BTreeSet<ChangeId> = ["CHG-2", "CHG-3", "CHG-5"]
            .into_iter()
            .filter_map(ChangeId::parse)
            .collect();
        let m = summarize(&ChangeFacts {
            period: period(),
            changes: &changes,
            failed: &failed,
            waiting: &[],
            now: at(20, 0),
        });
        assert_eq!((m.weeks[0].implemented, m.weeks[0].failed), (2, 1));
        assert_eq!(m.weeks[0].failure_rate, Some(0.5));
        assert_eq!((m.weeks[1].implemented, m.weeks[1].failed), (2, 1));
        assert_eq!((m.totals.implemented, m.totals.failed), (4, 2));
        assert_eq!(m.totals.failure_rate, Some(0.5));
        let quiet = summarize(&ChangeFacts {
            period: period(),
            changes: &[],
            failed: &failed,
            waiting: &[],
            now: at(20, 0),
        });
        assert_eq!(quiet.totals.failure_rate, None, "nothing implemented");
        assert_eq!(quiet.totals.emergency_share, None, "nothing requested");
    }

    #[test]
    fn approval_latency_runs_from_submission_to_the_last_approval() {
        // Half approved: one of its two slots is filled, so it still waits and has no latency.
        let mut half = approved(
            change(4, "emergency", "pending_approval", at(4, 0)),
            &[("ciso", at(4, 1))],
        );
        half.required_approvals.push(
            serde_json::from_value(
                json!({"id": "vp", "eligibility": {"kind": "role", "role": "manager"}, "reason": "x"}),
            )
            .expect("slot"),
        );
        let changes = [
            approved(
                change(1, "normal", "approved", at(2, 0)),
                &[("manager", at(2, 1))],
            ),
            approved(
                change(2, "normal", "closed", at(3, 0)),
                &[("manager", at(3, 3))],
            ),
            // Two approvers: done when the second approves.
            approved(
                change(3, "emergency", "approved", at(4, 0)),
                &[("ciso", at(4, 0) + Duration::minutes(20)), ("vp", at(4, 1))],
            ),
            half,
            // Approved after the period: not this period's latency.
            approved(
                change(5, "normal", "approved", at(14, 0)),
                &[("manager", at(15, 1))],
            ),
        ];
        let m = summarize(&ChangeFacts {
            period: period(),
            changes: &changes,
            failed: &BTreeSet::new(),
            waiting: &[],
            now: at(20, 0),
        });
        let row = |t: Option<ChangeType>| {
            m.approval_latency
                .iter()
                .find(|l| l.change_type == t)
                .expect("row")
                .latency
        };
        let all = row(None);
        assert_eq!(all.count, 3);
        assert_eq!(all.p50_minutes, Some(60.0));
        assert_eq!(all.p90_minutes, Some(180.0));
        assert_eq!(all.p99_minutes, Some(180.0));
        assert_eq!(row(Some(ChangeType::Normal)).count, 2);
        assert_eq!(row(Some(ChangeType::Emergency)).p50_minutes, Some(60.0));
        assert_eq!(row(Some(ChangeType::Standard)).count, 0);
        assert_eq!(row(Some(ChangeType::Standard)).p50_minutes, None);
        assert_eq!(m.auto_approved, 0);
    }

    #[test]
    fn overdue_approvals_are_judged_now_the_most_overdue_first() {
        let waiting_until = |n: u64, due: DateTime<Utc>| {
            let mut c = change(n, "normal", "pending_approval", at(1, 0));
            c.approval_deadline = Some(due);
            c
        };
        let waiting = [
            waiting_until(1, at(5, 0)),
            waiting_until(2, at(3, 0)),
            waiting_until(3, at(30, 0)),
        ];
        let m = summarize(&ChangeFacts {
            period: period(),
            changes: &[],
            failed: &BTreeSet::new(),
            waiting: &waiting,
            now: at(6, 0),
        });
        let ids: Vec<String> = m.overdue.iter().map(|o| o.id.to_string()).collect();
        assert_eq!(ids, ["CHG-2", "CHG-1"]);
        assert_eq!(m.overdue[0].overdue_minutes, 3 * 24 * 60);
    }
}
