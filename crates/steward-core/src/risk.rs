//! The risk score: a deterministic sum of named factors, kept with the change as a decision receipt.
//!
//! Every factor states what it looked at and how many points it added, so `steward change show`
//! can explain any score and an auditor can recompute it by hand. The weights are constants here,
//! not configuration, so that one score always means the same thing across installations; the
//! threshold that makes a score "high" is configuration ([`RiskPolicy`]).

use crate::submission::ChangeRequest;
use crate::target::{Environment, Level, Regulated, Target};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Outcomes of earlier changes on the same targets and category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Changes that reached an outcome (completed, failed or rolled back).
    pub finished: u64,
    /// Of those, the ones that failed or were rolled back.
    pub failed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskPolicy {
    /// Scores at or above this are high risk and go to the CAB.
    pub high_threshold: u32,
    /// Scores at or above this (and below high) are medium.
    pub medium_threshold: u32,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        Self {
            high_threshold: 60,
            medium_threshold: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskFactor {
    /// Stable machine name, e.g. `impact.data`.
    pub name: String,
    /// What was observed, e.g. `high` or `2 of 5 earlier changes failed`.
    pub observed: String,
    pub points: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskAssessment {
    pub score: u32,
    pub level: RiskLevel,
    pub factors: Vec<RiskFactor>,
}

fn level_points(level: Level, scale: u32) -> u32 {
    match level {
        Level::Low => 0,
        Level::Medium => scale / 2,
        Level::High => scale,
    }
}

/// Most points the failure history can add; reached when every earlier change failed.
const HISTORY_MAX_POINTS: u64 = 20;

pub fn assess(
    request: &ChangeRequest,
    targets: &[Target],
    history: History,
    policy: RiskPolicy,
) -> RiskAssessment {
    let mut factors = Vec::new();
    let mut add = |name: &str, observed: String, points: u32| {
        factors.push(RiskFactor {
            name: name.to_owned(),
            observed,
            points,
        });
    };
    let impact = &request.impact;
    add(
        "impact.data",
        impact.data.to_string(),
        level_points(impact.data, 20),
    );
    add(
        "impact.availability",
        impact.availability.to_string(),
        level_points(impact.availability, 20),
    );
    add(
        "impact.compliance",
        impact.compliance.to_string(),
        level_points(impact.compliance, 20),
    );
    add(
        "rollback_complexity",
        impact.rollback_complexity.to_string(),
        level_points(impact.rollback_complexity, 10),
    );

    let criticality = targets
        .iter()
        .max_by_key(|t| t.criticality)
        .map(|t| (t.criticality, t.name.to_string()));
    match criticality {
        Some((level, name)) => add(
            "target.criticality",
            format!("{level} (highest: {name})"),
            level_points(level, 20),
        ),
        None => add("target.criticality", "no targets".into(), 0),
    }

    for (class, points) in [(Regulated::Pii, 15), (Regulated::Financial, 15)] {
        let holders: Vec<&str> = targets
            .iter()
            .filter(|t| t.regulated.contains(&class))
            .map(|t| t.name.as_str())
            .collect();
        let name = format!("regulated.{class}");
        if holders.is_empty() {
            add(&name, "none".into(), 0);
        } else {
            add(&name, format!("held by {}", holders.join(", ")), points);
        }
    }

    let production = request.environment == Environment::Production;
    add(
        "environment",
        request.environment.to_string(),
        if production { 15 } else { 0 },
    );

    // Integer arithmetic so the score is identical on every platform; no history adds nothing.
    let history_points = (history.failed.min(history.finished) * HISTORY_MAX_POINTS)
        .checked_div(history.finished)
        .unwrap_or(0) as u32;
    add(
        "history.failure_rate",
        if history.finished == 0 {
            "no earlier changes on these targets in this category".into()
        } else {
            format!(
                "{} of {} earlier changes on these targets in this category failed",
                history.failed, history.finished
            )
        },
        history_points,
    );

    let score = factors.iter().map(|f| f.points).sum();
    let level = if score >= policy.high_threshold {
        RiskLevel::High
    } else if score >= policy.medium_threshold {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    };
    RiskAssessment {
        score,
        level,
        factors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{TargetName, UserName};
    use crate::submission::tests::valid_document;
    use crate::target::TargetKind;

    fn target(name: &str, criticality: Level, regulated: Vec<Regulated>) -> Target {
        Target {
            name: TargetName::parse(name).expect("name"),
            kind: TargetKind::ModelDeployment,
            owner: UserName::parse("mia").expect("name"),
            environment: Environment::Production,
            criticality,
            regulated,
            parent: None,
        }
    }

    fn points(assessment: &RiskAssessment) -> Vec<(&str, u32)> {
        assessment
            .factors
            .iter()
            .map(|f| (f.name.as_str(), f.points))
            .collect()
    }

    #[test]
    fn each_factor_contributes_its_named_points() {
        // valid_document: data low, availability medium, compliance low, production.
        let request = ChangeRequest::parse(&valid_document()).expect("valid");
        let targets = [
            target("a", Level::Medium, vec![Regulated::Pii]),
            target("b", Level::High, vec![]),
        ];
        let history = History {
            finished: 4,
            failed: 1,
        };
        let risk = assess(&request, &targets, history, RiskPolicy::default());
        assert_eq!(
            points(&risk),
            [
                ("impact.data", 0),
                ("impact.availability", 10),
                ("impact.compliance", 0),
                ("rollback_complexity", 5),
                ("target.criticality", 20),
                ("regulated.pii", 15),
                ("regulated.financial", 0),
                ("environment", 15),
                ("history.failure_rate", 5),
            ]
        );
        assert_eq!(risk.score, 70);
        assert_eq!(risk.level, RiskLevel::High);
        assert_eq!(risk.factors[4].observed, "high (highest: b)");
        assert_eq!(
            risk.factors[8].observed,
            "1 of 4 earlier changes on these targets in this category failed"
        );
    }

    #[test]
    fn levels_follow_the_thresholds() {
        let mut request = ChangeRequest::parse(&valid_document()).expect("valid");
        request.environment = Environment::Staging;
        let low = [target("a", Level::Low, vec![])];
        let risk = assess(&request, &low, History::default(), RiskPolicy::default());
        assert_eq!((risk.score, risk.level), (15, RiskLevel::Low));
        let policy = RiskPolicy {
            high_threshold: 16,
            medium_threshold: 15,
        };
        assert_eq!(
            assess(&request, &low, History::default(), policy).level,
            RiskLevel::Medium
        );
        let policy = RiskPolicy {
            high_threshold: 15,
            medium_threshold: 10,
        };
        assert_eq!(
            assess(&request, &low, History::default(), policy).level,
            RiskLevel::High
        );
    }
}
