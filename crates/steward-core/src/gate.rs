//! The deployment gate: may a pipeline deploy this change to this target, now?
//!
//! One pure function so that every pipeline integration (the `steward gate` command, and later
//! GitHub and GitLab deployment checks) answers the same way, with the reason in words: the change
//! is approved (or scheduled, or already running), covers the target in that environment, its
//! window is open (or, for an emergency, its approvers together overrode it), and no freeze it was
//! not allowed to override applies. `change implement` and the execution worker ask it too.

use crate::change::{Change, WindowStanding};
use crate::names::TargetName;
use crate::schedule::ScheduleCheck;
use crate::state::ChangeState;
use crate::target::Environment;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateVerdict {
    pub allowed: bool,
    /// Why, in one sentence a pipeline log can show.
    pub reason: String,
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Judges a deployment of `change` to `target` in `environment` at `now`. `schedule` is the
/// calendar's view of the moment (freezes covering the change's targets now).
pub fn check(
    change: &Change,
    target: &TargetName,
    environment: Environment,
    now: DateTime<Utc>,
    schedule: &ScheduleCheck,
) -> GateVerdict {
    let refuse = |reason: String| GateVerdict {
        allowed: false,
        reason,
    };
    let id = &change.id;
    if !matches!(
        change.state,
        ChangeState::Approved | ChangeState::Scheduled | ChangeState::Implementing
    ) {
        return refuse(format!(
            "{id} is {}, not approved: nothing may deploy it",
            change.state
        ));
    }
    if !change.request.targets.contains(target) {
        let covered: Vec<&str> = change.request.targets.iter().map(|t| t.as_str()).collect();
        return refuse(format!(
            "{id} does not cover target {target} (it covers {})",
            covered.join(", ")
        ));
    }
    if change.request.environment != environment {
        return refuse(format!(
            "{id} is for {}, not {environment}",
            change.request.environment
        ));
    }
    if let Some(why) = change.window_refusal(now) {
        return refuse(why);
    }
    let frozen: Vec<String> = schedule
        .freezes
        .iter()
        .filter(|f| !change.freeze_overrides.contains(f))
        .map(|f| format!("{} ({})", f.name, f.reason))
        .collect();
    if !frozen.is_empty() {
        return refuse(format!(
            "{target} is inside a freeze: {}",
            frozen.join("; ")
        ));
    }
    let approvers: Vec<&str> = change.decisions.iter().map(|d| d.by.as_str()).collect();
    GateVerdict {
        allowed: true,
        reason: format!(
            "{id} is {} ({} change{}), covers {target} in {environment}, {}, and no freeze applies",
            change.state,
            change.classification.change_type,
            if approvers.is_empty() {
                ", approved by its catalog item".to_owned()
            } else {
                format!(", approved by {}", approvers.join(", "))
            },
            match change.window_standing(now) {
                WindowStanding::Open(w) => format!("its window is open until {}", at(w.end)),
                WindowStanding::Overridden(o) => format!(
                    "its window ({} → {}) was overridden by its approvers {} at {}, so it may start until {}",
                    at(o.window.start),
                    at(o.window.end),
                    o.agreed_names(),
                    at(o.at),
                    at(o.until)
                ),
                WindowStanding::NoWindow => "it has no window".to_owned(),
                // Refused above by `window_refusal`.
                WindowStanding::NotYetOpen(_) | WindowStanding::Closed(_) => String::new(),
            },
        ),
    }
}
