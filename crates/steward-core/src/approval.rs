//! Approval routing and decisions, with segregation of duties.
//!
//! Routing turns a classified, scored change into the list of approval *slots* it needs. A
//! decision fills one slot. The rules that keep duties apart are checked here, in one function
//! ([`check_decider`]), so no caller can forget them: the requester never decides on their own
//! change, one person never fills two slots, and a person may only fill a slot they qualify for.

use crate::classify::ChangeType;
use crate::names::UserName;
use crate::risk::{RiskAssessment, RiskLevel};
use crate::role::{Role, Roles};
use crate::target::Target;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingPolicy {
    /// How many distinct cab_member approvals a high-risk normal change needs.
    pub cab_quorum: u32,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        Self { cab_quorum: 3 }
    }
}

/// Who may fill a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Eligibility {
    /// Exactly this person (a target's owning manager).
    User { user: UserName },
    /// Anyone holding this role.
    Role { role: Role },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Stable within a change: `owner:mia`, `cab:2`, `ciso`.
    pub id: String,
    pub eligibility: Eligibility,
    /// Why this slot exists, for people reading `change show`.
    pub reason: String,
}

impl Slot {
    /// The role the slot asks for, when it asks for a role rather than a person.
    pub fn role(&self) -> Option<Role> {
        match &self.eligibility {
            Eligibility::Role { role } => Some(*role),
            Eligibility::User { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenDecision {
    pub slot: String,
    pub by: UserName,
    pub decision: Decision,
    pub comment: String,
    pub at: DateTime<Utc>,
    /// Earlier overlapping changes this approver acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledged_conflicts: Vec<crate::names::ChangeId>,
}

/// Builds the slots a change needs. An empty list means it is approved by its classification.
pub fn route(
    change_type: ChangeType,
    risk: &RiskAssessment,
    targets: &[Target],
    requester: &UserName,
    policy: RoutingPolicy,
) -> Vec<Slot> {
    match change_type {
        ChangeType::Standard => Vec::new(),
        ChangeType::Emergency => vec![
            Slot {
                id: "ciso".into(),
                eligibility: Eligibility::Role { role: Role::Ciso },
                reason: "emergency changes need the CISO".into(),
            },
            Slot {
                id: "vp_engineering".into(),
                eligibility: Eligibility::Role {
                    role: Role::VpEngineering,
                },
                reason: "emergency changes need the VP Engineering".into(),
            },
        ],
        ChangeType::Normal if risk.level == RiskLevel::High => (1..=policy.cab_quorum.max(1))
            .map(|n| Slot {
                id: format!("cab:{n}"),
                eligibility: Eligibility::Role {
                    role: Role::CabMember,
                },
                reason: format!(
                    "high risk (score {}): CAB quorum of {}",
                    risk.score, policy.cab_quorum
                ),
            })
            .collect(),
        ChangeType::Normal => {
            let mut owners: Vec<&UserName> = targets.iter().map(|t| &t.owner).collect();
            owners.sort();
            owners.dedup();
            owners
                .into_iter()
                .map(|owner| {
                    let owned: Vec<&str> = targets
                        .iter()
                        .filter(|t| &t.owner == owner)
                        .map(|t| t.name.as_str())
                        .collect();
                    if owner == requester {
                        // The owner cannot approve their own request; any other manager can.
                        Slot {
                            id: format!("owner:{owner}"),
                            eligibility: Eligibility::Role {
                                role: Role::Manager,
                            },
                            reason: format!(
                                "owner of {} is the requester, so another manager decides",
                                owned.join(", ")
                            ),
                        }
                    } else {
                        Slot {
                            id: format!("owner:{owner}"),
                            eligibility: Eligibility::User {
                                user: owner.clone(),
                            },
                            reason: format!("owning manager of {}", owned.join(", ")),
                        }
                    }
                })
                .collect()
        }
    }
}

/// Why a person may not decide on a change now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionRefused {
    #[error("the requester may not approve or reject their own change")]
    OwnChange,
    #[error(
        "{by} has already decided on this change; one person cannot fill two required approvals"
    )]
    AlreadyDecided { by: UserName },
    #[error("{by} is not among the approvers this change still needs: it needs {needs}")]
    NotEligible { by: UserName, needs: String },
}

fn qualifies(slot: &Slot, who: &UserName, roles: &Roles) -> bool {
    match &slot.eligibility {
        Eligibility::User { user } => user == who,
        Eligibility::Role { role } => roles.contains(*role),
    }
}

pub fn describe(eligibility: &Eligibility) -> String {
    match eligibility {
        Eligibility::User { user } => format!("user {user}"),
        Eligibility::Role { role } => format!("a {role}"),
    }
}

/// Checks segregation of duties and returns the slot this person's decision fills.
pub fn check_decider<'s>(
    slots: &'s [Slot],
    given: &[GivenDecision],
    requester: &UserName,
    who: &UserName,
    roles: &Roles,
) -> Result<&'s Slot, DecisionRefused> {
    if who == requester {
        return Err(DecisionRefused::OwnChange);
    }
    if given.iter().any(|g| &g.by == who) {
        return Err(DecisionRefused::AlreadyDecided { by: who.clone() });
    }
    let open: Vec<&Slot> = slots
        .iter()
        .filter(|s| !given.iter().any(|g| g.slot == s.id))
        .collect();
    // A named person's slot first: the owner should fill "owner:x", not a generic role slot.
    open.iter()
        .find(|s| matches!(s.eligibility, Eligibility::User { .. }) && qualifies(s, who, roles))
        .or_else(|| open.iter().find(|s| qualifies(s, who, roles)))
        .copied()
        .ok_or_else(|| {
            let mut needs: Vec<String> = open.iter().map(|s| describe(&s.eligibility)).collect();
            needs.dedup();
            DecisionRefused::NotEligible {
                by: who.clone(),
                needs: if needs.is_empty() {
                    "no further approvals".into()
                } else {
                    needs.join(" and ")
                },
            }
        })
}

/// The open slots of a change that `who` was named for or qualifies for, with `roles`: the
/// approvals this person could still give. Empty when they requested the change or have already
/// decided on it (segregation of duties would refuse them anyway). When a person is disabled,
/// these are the slots their change owners must be told about.
pub fn slots_open_to<'s>(
    slots: &'s [Slot],
    given: &[GivenDecision],
    requester: &UserName,
    who: &UserName,
    roles: &Roles,
) -> Vec<&'s Slot> {
    if who == requester || given.iter().any(|g| &g.by == who) {
        return Vec::new();
    }
    slots
        .iter()
        .filter(|s| !given.iter().any(|g| g.slot == s.id) && qualifies(s, who, roles))
        .collect()
}

/// What the recorded decisions add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Approved,
    Rejected,
}

pub fn outcome(slots: &[Slot], given: &[GivenDecision]) -> Outcome {
    if given.iter().any(|g| g.decision == Decision::Reject) {
        Outcome::Rejected
    } else if slots.iter().all(|s| {
        given
            .iter()
            .any(|g| g.slot == s.id && g.decision == Decision::Approve)
    }) {
        Outcome::Approved
    } else {
        Outcome::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TargetName;
    use crate::risk::RiskFactor;
    use crate::target::{Environment, Level, TargetKind};

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("name")
    }
    fn roles(list: &str) -> Roles {
        Roles::parse_list(list).expect("roles")
    }
    fn risk(level: RiskLevel) -> RiskAssessment {
        RiskAssessment {
            score: 42,
            level,
            factors: vec![RiskFactor {
                name: "x".into(),
                observed: "y".into(),
                points: 42,
            }],
        }
    }
    fn target(name: &str, owner: &str) -> Target {
        Target {
            name: TargetName::parse(name).expect("name"),
            kind: TargetKind::ComputeCluster,
            owner: user(owner),
            environment: Environment::Staging,
            criticality: Level::Low,
            regulated: vec![],
            parent: None,
        }
    }
    fn approve(slot: &str, by: &str) -> GivenDecision {
        GivenDecision {
            slot: slot.into(),
            by: user(by),
            decision: Decision::Approve,
            comment: "ok".into(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            acknowledged_conflicts: Vec::new(),
        }
    }
    fn ids(slots: &[Slot]) -> Vec<&str> {
        slots.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn the_slots_a_person_could_still_fill() {
        let requester = user("rita");
        let targets = [target("a", "mia"), target("b", "max")];
        let slots = route(
            ChangeType::Normal,
            &risk(RiskLevel::Medium),
            &targets,
            &requester,
            RoutingPolicy::default(),
        );
        let open = |who: &str, with: &str, given: &[GivenDecision]| {
            slots_open_to(&slots, given, &requester, &user(who), &roles(with))
                .into_iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(open("mia", "manager", &[]), ["owner:mia"]);
        assert_eq!(
            open("mia", "manager", &[approve("owner:max", "max")]),
            ["owner:mia"]
        );
        assert!(open("mia", "manager", &[approve("owner:mia", "mia")]).is_empty());
        assert!(
            open("rita", "manager", &[]).is_empty(),
            "the requester fills none"
        );
        assert!(
            open("ivan", "manager", &[]).is_empty(),
            "named slots are the owners'"
        );
        let emergency = route(
            ChangeType::Emergency,
            &risk(RiskLevel::High),
            &targets,
            &requester,
            RoutingPolicy::default(),
        );
        let eligible = slots_open_to(&emergency, &[], &requester, &user("cy"), &roles("ciso"));
        assert_eq!(
            ids(&eligible.into_iter().cloned().collect::<Vec<_>>()),
            ["ciso"]
        );
    }

    #[test]
    fn routing_by_type_and_risk() {
        let requester = user("rita");
        let targets = [target("a", "mia"), target("b", "max"), target("c", "mia")];
        let policy = RoutingPolicy { cab_quorum: 3 };
        let check = |t, level, expected: &[&str]| {
            let slots = route(t, &risk(level), &targets, &requester, policy);
            assert_eq!(ids(&slots), expected);
        };
        check(ChangeType::Standard, RiskLevel::High, &[]);
        check(
            ChangeType::Normal,
            RiskLevel::Medium,
            &["owner:max", "owner:mia"],
        );
        check(
            ChangeType::Normal,
            RiskLevel::High,
            &["cab:1", "cab:2", "cab:3"],
        );
        check(
            ChangeType::Emergency,
            RiskLevel::Low,
            &["ciso", "vp_engineering"],
        );
    }

    #[test]
    fn an_owner_requesting_their_own_change_is_routed_to_another_manager() {
        let slots = route(
            ChangeType::Normal,
            &risk(RiskLevel::Low),
            &[target("a", "mia")],
            &user("mia"),
            RoutingPolicy::default(),
        );
        assert_eq!(
            slots[0].eligibility,
            Eligibility::Role {
                role: Role::Manager
            }
        );
        let slot = check_decider(&slots, &[], &user("mia"), &user("max"), &roles("manager"));
        assert_eq!(slot.map(|s| s.id.as_str()), Ok("owner:mia"));
    }

    #[test]
    fn segregation_of_duties() {
        let slots = route(
            ChangeType::Emergency,
            &risk(RiskLevel::Low),
            &[],
            &user("rita"),
            RoutingPolicy::default(),
        );
        let both = roles("ciso,vp_engineering");
        // The requester never decides, whatever roles they hold.
        assert_eq!(
            check_decider(&slots, &[], &user("rita"), &user("rita"), &both),
            Err(DecisionRefused::OwnChange)
        );
        // One person holding both roles fills one slot, never two.
        let first =
            check_decider(&slots, &[], &user("rita"), &user("cy"), &both).map(|s| s.id.clone());
        assert_eq!(first.as_deref(), Ok("ciso"));
        let given = [approve("ciso", "cy")];
        assert_eq!(
            check_decider(&slots, &given, &user("rita"), &user("cy"), &both),
            Err(DecisionRefused::AlreadyDecided { by: user("cy") })
        );
        // Someone without a needed role is told what is needed.
        let err = check_decider(
            &slots,
            &given,
            &user("rita"),
            &user("bob"),
            &roles("manager"),
        )
        .expect_err("not eligible");
        assert_eq!(
            err.to_string(),
            "bob is not among the approvers this change still needs: it needs a vp_engineering"
        );
        assert_eq!(outcome(&slots, &given), Outcome::Pending);
        let given = [approve("ciso", "cy"), approve("vp_engineering", "val")];
        assert_eq!(outcome(&slots, &given), Outcome::Approved);
    }

    #[test]
    fn any_rejection_rejects() {
        let slots = route(
            ChangeType::Normal,
            &risk(RiskLevel::High),
            &[],
            &user("rita"),
            RoutingPolicy { cab_quorum: 2 },
        );
        let mut given = vec![approve("cab:1", "c1")];
        given.push(GivenDecision {
            decision: Decision::Reject,
            ..approve("cab:2", "c2")
        });
        assert_eq!(outcome(&slots, &given), Outcome::Rejected);
    }
}
