//! Policy decisions: the input a compliance policy sees, the verdicts it returns, and what those
//! verdicts do to a change.
//!
//! The rules themselves are Rego, evaluated by the `steward-policy` crate behind the
//! [`PolicyEvaluator`] trait, so this crate stays pure. Here live the parts that must not vary
//! with the engine: the shape of `input` ([`input`]), the meaning of a verdict (a `deny` blocks,
//! a `warn` is recorded, an approval adds a slot, an obligation must be fulfilled before the
//! change closes), and the [`PolicyReceipt`] kept with the change and its audit event so that any
//! decision can be explained, and re-run, later.

use crate::approval::{Eligibility, GivenDecision, Slot};
use crate::catalog::CatalogItem;
use crate::names::UserName;
use crate::role::Role;
use crate::target::Target;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;

/// Evaluates a policy set against one input document.
pub trait PolicyEvaluator: Send + Sync + fmt::Debug {
    /// The policy-set version: a digest of the loaded modules, recorded in every receipt.
    fn version(&self) -> &str;
    /// One verdict per rule. An `Err` means the policy set could not be evaluated at all; the
    /// caller fails closed on it.
    fn evaluate(&self, input: &Value) -> Result<Vec<RuleVerdict>, String>;
}

/// A policy set with no rules: everything passes. For tests and for `--no-builtin-policies`
/// with an empty directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPolicies;

impl PolicyEvaluator for NoPolicies {
    fn version(&self) -> &str {
        "none"
    }
    fn evaluate(&self, _: &Value) -> Result<Vec<RuleVerdict>, String> {
        Ok(Vec::new())
    }
}

/// When the policy was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Entering approval; a deny refuses the submission.
    Submission,
    /// An approval is being recorded; a deny refuses that approval.
    Approval,
    /// `steward policy eval`: nothing is stored.
    Preview,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Submission => "submission",
            Stage::Approval => "approval",
            Stage::Preview => "preview",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Deny => "deny",
        }
    }
}

/// An approval a rule adds: someone holding `role` must approve too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredApproval {
    pub role: Role,
    pub reason: String,
}

/// What one rule (one Rego package under `steward.rules`) said about one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleVerdict {
    /// The package's last name: `pii_compliance_approval`.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The controls the rule implements: `GDPR Art. 32`, `SOX 404`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warn: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<RequiredApproval>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obligations: Vec<String>,
    /// The parts of the input the rule looked at, as the rule reports them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub inputs: Map<String, Value>,
}

impl RuleVerdict {
    /// The verdict a rule's messages imply.
    pub fn verdict_of(deny: &[String], warn: &[String]) -> Verdict {
        if !deny.is_empty() {
            Verdict::Deny
        } else if !warn.is_empty() {
            Verdict::Warn
        } else {
            Verdict::Pass
        }
    }
}

/// One evaluation of the policy set, kept with the change and in its audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReceipt {
    pub stage: Stage,
    /// The policy-set version (digest of its modules) that decided.
    pub policy_set: String,
    pub evaluated_at: DateTime<Utc>,
    pub rules: Vec<RuleVerdict>,
}

impl PolicyReceipt {
    /// Evaluates `input`, failing closed: a policy set that cannot be evaluated denies.
    pub fn evaluate(
        policy: &dyn PolicyEvaluator,
        stage: Stage,
        input: &Value,
        now: DateTime<Utc>,
    ) -> PolicyReceipt {
        let rules = policy.evaluate(input).unwrap_or_else(|error| {
            vec![RuleVerdict {
                rule: "policy_engine".into(),
                title: Some("the policy set could not be evaluated".into()),
                controls: Vec::new(),
                verdict: Verdict::Deny,
                deny: vec![format!(
                    "policy evaluation failed, so the change is refused until it is fixed: {error}"
                )],
                warn: Vec::new(),
                approvals: Vec::new(),
                obligations: Vec::new(),
                inputs: Map::new(),
            }]
        });
        PolicyReceipt {
            stage,
            policy_set: policy.version().to_owned(),
            evaluated_at: now,
            rules,
        }
    }

    pub fn denied(&self) -> bool {
        self.rules.iter().any(|r| r.verdict == Verdict::Deny)
    }

    /// `rule: message` for every deny.
    pub fn denials(&self) -> Vec<String> {
        self.messages(|r| &r.deny)
    }

    /// `rule: message` for every warning.
    pub fn warnings(&self) -> Vec<String> {
        self.messages(|r| &r.warn)
    }

    fn messages(&self, pick: impl Fn(&RuleVerdict) -> &Vec<String>) -> Vec<String> {
        self.rules
            .iter()
            .flat_map(|r| pick(r).iter().map(move |m| format!("{}: {m}", r.rule)))
            .collect()
    }

    /// The receipt as an audit event records it: everything but the full input.
    pub fn summary(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Adds the slots the rules require that the change does not already have. A role already
    /// required by an existing slot is satisfied by it (a CAB quorum covers "needs CAB review").
    pub fn merge_approvals(&self, slots: &mut Vec<Slot>) {
        for rule in &self.rules {
            for wanted in &rule.approvals {
                let covered = slots.iter().any(|s| s.role() == Some(wanted.role));
                if !covered {
                    slots.push(Slot {
                        id: format!("policy:{}:{}", rule.rule, wanted.role),
                        eligibility: Eligibility::Role { role: wanted.role },
                        reason: format!("policy {}: {}", rule.rule, wanted.reason),
                    });
                }
            }
        }
    }
}

/// Something a change owes before it may close, e.g. a post-implementation review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligation {
    /// `post_implementation_review`
    pub name: String,
    /// The rule that imposed it.
    pub rule: String,
    pub fulfilled: Option<Fulfilment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfilment {
    pub by: UserName,
    pub at: DateTime<Utc>,
    /// The review itself, or a note saying how the obligation was met.
    pub note: String,
}

/// Adds the obligations a receipt imposes that the change does not carry yet.
pub fn merge_obligations(receipt: &PolicyReceipt, obligations: &mut Vec<Obligation>) {
    for rule in &receipt.rules {
        for name in &rule.obligations {
            if !obligations.iter().any(|o| &o.name == name) {
                obligations.push(Obligation {
                    name: name.clone(),
                    rule: rule.rule.clone(),
                    fulfilled: None,
                });
            }
        }
    }
}

/// What a change looked like when it was judged: the parts of the world a policy may read.
#[derive(Debug, Clone, Copy)]
pub struct InputFacts<'a> {
    pub targets: &'a [Target],
    pub catalog_item: Option<&'a CatalogItem>,
    pub requester_roles: &'a [Role],
    /// Freezes, maintenance windows and conflicts, as [`crate::schedule`] found them.
    pub schedule: &'a crate::schedule::ScheduleCheck,
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Builds the `input` document a policy sees. Its shape is documented in ARCHITECTURE.md and is
/// a compatibility promise to policy authors: fields are added, never renamed.
pub fn input(change: &crate::change::Change, facts: InputFacts<'_>, stage: Stage) -> Value {
    let mut request = serde_json::to_value(&change.request).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut request {
        map.insert("id".into(), json!(change.id.to_string()));
        map.remove("draft");
    }
    json!({
        "stage": stage.as_str(),
        "now": timestamp(change.updated_at),
        "change": request,
        "classification": change.classification,
        "risk": change.risk,
        "requester": {"name": change.requester, "roles": facts.requester_roles},
        "targets": facts.targets,
        "catalog_item": facts.catalog_item,
        "required_approvals": change.required_approvals,
        "approvals": approvals(&change.required_approvals, &change.decisions),
        "schedule": facts.schedule,
    })
}

/// Decisions so far, each with the role its slot asked for (when it asked for one).
pub fn approvals(slots: &[Slot], decisions: &[GivenDecision]) -> Value {
    Value::Array(
        decisions
            .iter()
            .map(|d| {
                let role = slots.iter().find(|s| s.id == d.slot).and_then(Slot::role);
                json!({"slot": d.slot, "by": d.by, "decision": d.decision, "role": role, "at": timestamp(d.at)})
            })
            .collect(),
    )
}

/// Rewrites a stored submission input for a later stage: fresh approvals, schedule and clock.
pub fn restage(
    stored: &Value,
    change: &crate::change::Change,
    schedule: &crate::schedule::ScheduleCheck,
    stage: Stage,
    now: DateTime<Utc>,
) -> Value {
    let mut input = stored.clone();
    if let Value::Object(map) = &mut input {
        map.insert("stage".into(), json!(stage.as_str()));
        map.insert("now".into(), json!(timestamp(now)));
        map.insert(
            "required_approvals".into(),
            serde_json::to_value(&change.required_approvals).unwrap_or(Value::Null),
        );
        map.insert(
            "approvals".into(),
            approvals(&change.required_approvals, &change.decisions),
        );
        map.insert("schedule".into(), json!(schedule));
    }
    input
}
