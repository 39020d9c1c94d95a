//! Backtests: stored changes' submission inputs replayed through a candidate policy set, to see
//! what it would have denied or warned about and how often the changes it lets through failed.
//!
//! The one implementation, shared by `steward policy backtest` (which fetches the inputs from
//! `GET /api/v1/policy/inputs` and evaluates locally) and the portal's backtest tool (which reads
//! them through the same server function and evaluates in the server). Pure: the caller hands
//! over each change's input and outcome; nothing here reads a store or the network. Given a
//! *baseline* (the set changes are judged by now), a backtest also names every change whose
//! verdict the candidate changes, each set judging the same stored input, so what differs is
//! the candidate's doing and not history's.

use serde_json::{Value, json};
use steward_core::policy::{PolicyEvaluator, RuleVerdict, Verdict};

/// One stored change to replay.
#[derive(Debug, Clone, Copy)]
pub struct Replay<'a> {
    /// `CHG-7`
    pub id: &'a str,
    pub state: &'a str,
    /// standard, normal or emergency
    pub change_type: &'a str,
    /// `succeeded` or `failed` once implementation ended; `None` before.
    pub outcome: Option<&'a str>,
    /// The exact input the policy set saw at submission.
    pub input: &'a Value,
}

/// A replayed change the candidate would deny or warn about.
#[derive(Debug, Clone, PartialEq)]
pub struct Flagged {
    pub id: String,
    pub state: String,
    pub change_type: String,
    pub outcome: Option<String>,
    /// `rule: message` for each denial (or, for a warning, each warning).
    pub reasons: Vec<String>,
}

/// A replayed change whose verdict the candidate changes (backtests with a baseline only).
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub id: String,
    pub state: String,
    pub change_type: String,
    pub outcome: Option<String>,
    /// The baseline's verdict on the stored input.
    pub before: Verdict,
    /// The candidate's.
    pub after: Verdict,
    /// What the candidate says: its denials when it denies, its warnings when it warns.
    pub reasons: Vec<String>,
}

/// What a backtest found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The candidate set's version.
    pub policy_set: String,
    pub replayed: u64,
    pub would_deny: Vec<Flagged>,
    pub would_warn: Vec<Flagged>,
    /// Of the changes it would deny, how many failed in reality.
    pub denied_that_failed: u64,
    /// Of the changes it lets through, how many finished and how many of those failed.
    pub allowed_finished: u64,
    pub allowed_failed: u64,
    /// Of every replayed change, how many finished and how many of those failed.
    pub all_finished: u64,
    pub all_failed: u64,
    /// The changes whose verdict differs from the baseline's (empty without one).
    pub changed: Vec<Changed>,
}

fn rate(failed: u64, finished: u64) -> Option<f64> {
    (finished > 0).then(|| failed as f64 / finished as f64)
}

impl Report {
    /// The failure rate of the finished changes the candidate lets through.
    pub fn allowed_failure_rate(&self) -> Option<f64> {
        rate(self.allowed_failed, self.allowed_finished)
    }

    /// The failure rate of every finished replayed change.
    pub fn actual_failure_rate(&self) -> Option<f64> {
        rate(self.all_failed, self.all_finished)
    }

    /// The report as `steward policy backtest --output json` prints it (`since` as given).
    pub fn to_json(&self, since: &str) -> Value {
        let flagged = |rows: &[Flagged]| -> Vec<Value> {
            rows.iter()
                .map(|r| {
                    json!({"id": r.id, "state": r.state, "type": r.change_type,
                                "outcome": r.outcome, "reasons": r.reasons})
                })
                .collect()
        };
        json!({
            "policy_set": self.policy_set,
            "since": since,
            "replayed": self.replayed,
            "would_deny": flagged(&self.would_deny),
            "would_warn": flagged(&self.would_warn),
            "denied_that_failed": self.denied_that_failed,
            "allowed_finished": self.allowed_finished,
            "allowed_failed": self.allowed_failed,
            "allowed_failure_rate": self.allowed_failure_rate(),
            "actual_failure_rate": self.actual_failure_rate(),
        })
    }
}

/// The verdict of a whole set: deny when any rule denies, else warn when any warns.
pub fn overall(verdicts: &[RuleVerdict]) -> Verdict {
    if verdicts.iter().any(|v| v.verdict == Verdict::Deny) {
        Verdict::Deny
    } else if verdicts.iter().any(|v| v.verdict == Verdict::Warn) {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

fn messages(verdicts: &[RuleVerdict], pick: fn(&RuleVerdict) -> &Vec<String>) -> Vec<String> {
    verdicts
        .iter()
        .flat_map(|v| pick(v).iter().map(move |m| format!("{}: {m}", v.rule)))
        .collect()
}

/// A backtest under way: feed it changes with [`Backtest::replay`], then take its [`Report`].
#[derive(Debug)]
pub struct Backtest<'s> {
    candidate: &'s dyn PolicyEvaluator,
    baseline: Option<&'s dyn PolicyEvaluator>,
    report: Report,
}

impl<'s> Backtest<'s> {
    /// A backtest of `candidate`.
    pub fn new(candidate: &'s dyn PolicyEvaluator) -> Backtest<'s> {
        Backtest {
            report: Report {
                policy_set: candidate.version().to_owned(),
                ..Report::default()
            },
            candidate,
            baseline: None,
        }
    }

    /// Also compares each verdict with `baseline`'s on the same input ([`Report::changed`]).
    pub fn against(mut self, baseline: &'s dyn PolicyEvaluator) -> Backtest<'s> {
        self.baseline = Some(baseline);
        self
    }

    /// Replays one stored change; an error names the change and the set that failed on it.
    pub fn replay(&mut self, change: Replay<'_>) -> Result<(), String> {
        let report = &mut self.report;
        report.replayed += 1;
        let verdicts = self
            .candidate
            .evaluate(change.input)
            .map_err(|e| format!("the candidate policy set failed on \"{}\": {e}", change.id))?;
        let failed = change.outcome == Some("failed");
        if change.outcome.is_some() {
            report.all_finished += 1;
            report.all_failed += u64::from(failed);
        }
        let flagged = |reasons: Vec<String>| Flagged {
            id: change.id.to_owned(),
            state: change.state.to_owned(),
            change_type: change.change_type.to_owned(),
            outcome: change.outcome.map(str::to_owned),
            reasons,
        };
        let after = overall(&verdicts);
        let reasons = match after {
            Verdict::Deny => messages(&verdicts, |v| &v.deny),
            Verdict::Warn => messages(&verdicts, |v| &v.warn),
            Verdict::Pass => Vec::new(),
        };
        if let Some(baseline) = self.baseline {
            let before = baseline
                .evaluate(change.input)
                .map_err(|e| format!("the current policy set failed on \"{}\": {e}", change.id))?;
            let before = overall(&before);
            if before != after {
                report.changed.push(Changed {
                    id: change.id.to_owned(),
                    state: change.state.to_owned(),
                    change_type: change.change_type.to_owned(),
                    outcome: change.outcome.map(str::to_owned),
                    before,
                    after,
                    reasons: reasons.clone(),
                });
            }
        }
        match after {
            Verdict::Deny => {
                report.denied_that_failed += u64::from(failed);
                report.would_deny.push(flagged(reasons));
            }
            Verdict::Warn | Verdict::Pass => {
                if after == Verdict::Warn {
                    report.would_warn.push(flagged(reasons));
                }
                if change.outcome.is_some() {
                    report.allowed_finished += 1;
                    report.allowed_failed += u64::from(failed);
                }
            }
        }
        Ok(())
    }

    pub fn report(self) -> Report {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Module, PolicySet};

    fn set(rule: &str) -> PolicySet {
        PolicySet::new(vec![Module {
            path: "candidate.rego".into(),
            text: format!("package steward.rules.candidate\n\nimport rego.v1\n\n{rule}\n"),
        }])
        .expect("the set compiles")
    }

    fn replay<'a>(id: &'a str, outcome: Option<&'a str>, input: &'a Value) -> Replay<'a> {
        Replay {
            id,
            state: "completed",
            change_type: "normal",
            outcome,
            input,
        }
    }

    #[test]
    fn a_candidate_that_denies_retraining_reports_what_it_would_change() {
        let retrain = json!({"request": {"category": "model-retrain"}});
        let deploy = json!({"request": {"category": "model-deployment"}});
        let candidate = set(
            "deny contains \"no retraining\" if input.request.category == \"model-retrain\"\nwarn contains \"deploying\" if input.request.category == \"model-deployment\"",
        );
        let baseline = set("warn contains \"never\" if false");
        let mut backtest = Backtest::new(&candidate).against(&baseline);
        backtest
            .replay(replay("CHG-1", Some("succeeded"), &retrain))
            .expect("replayed");
        backtest
            .replay(replay("CHG-2", Some("failed"), &deploy))
            .expect("replayed");
        backtest
            .replay(replay("CHG-3", None, &json!({})))
            .expect("replayed");
        let report = backtest.report();
        assert_eq!(report.replayed, 3);
        assert_eq!(report.would_deny.len(), 1);
        assert_eq!(report.would_deny[0].id, "CHG-1");
        assert_eq!(
            report.would_deny[0].reasons,
            ["candidate: no retraining".to_owned()]
        );
        assert_eq!(report.would_warn[0].id, "CHG-2");
        assert_eq!((report.allowed_finished, report.allowed_failed), (1, 1));
        assert_eq!(report.allowed_failure_rate(), Some(1.0));
        assert_eq!(report.actual_failure_rate(), Some(0.5));
        let changed: Vec<(&str, Verdict, Verdict)> = report
            .changed
            .iter()
            .map(|c| (c.id.as_str(), c.before, c.after))
            .collect();
        assert_eq!(
            changed,
            [
                ("CHG-1", Verdict::Pass, Verdict::Deny),
                ("CHG-2", Verdict::Pass, Verdict::Warn)
            ]
        );
        let json = report.to_json("2026-01-01T00:00:00Z");
        assert_eq!(json["would_deny"][0]["type"], "normal");
        assert_eq!(json["since"], "2026-01-01T00:00:00Z");
        assert!(
            json.get("changed").is_none(),
            "the CLI's report is unchanged"
        );
    }

    #[test]
    fn without_a_baseline_nothing_is_compared() {
        let candidate = set("deny contains \"all\" if true");
        let mut backtest = Backtest::new(&candidate);
        backtest
            .replay(replay("CHG-1", None, &json!({})))
            .expect("replayed");
        let report = backtest.report();
        assert!(report.changed.is_empty());
        assert_eq!(report.would_deny.len(), 1);
        assert_eq!(report.allowed_failure_rate(), None);
    }
}
