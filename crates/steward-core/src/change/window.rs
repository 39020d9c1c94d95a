//! A change's window and the one way an emergency leaves it: where "now" stands against the
//! time a change may start, why it may not start yet (or any more), and the window override.
//!
//! The override is dual control: an emergency was approved by two people (the CISO and the VP
//! Engineering), so it leaves its window only when every one of its approvers has agreed, each
//! with a reason, within [`WINDOW_OVERRIDE_HOURS`] of one another. The first agreement is
//! recorded and waits; the last one opens the override.

use super::{Change, Refused, Transition, stamp};
use crate::approval::Decision;
use crate::classify::ChangeType;
use crate::names::UserName;
use crate::state::ChangeState;
use crate::submission::Window;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An emergency change's approver let it start outside its window, for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOverride {
    pub by: UserName,
    /// Why, as the approver wrote it.
    pub reason: String,
    pub at: DateTime<Utc>,
    /// It may start under this override until then ([`WINDOW_OVERRIDE_HOURS`] after `at`).
    pub until: DateTime<Utc>,
    /// The window it overrides, as it was.
    pub window: Window,
    /// Every approver's agreement, in order (`by` is the last of them), each with its reason.
    /// Empty on overrides recorded before dual control, which one approver opened.
    #[serde(default)]
    pub agreements: Vec<OverrideAgreement>,
}

/// One approver's agreement to let an emergency start outside its window, waiting for the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideAgreement {
    pub by: UserName,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// How long a window override lets an emergency start: its approval SLA, so an override
/// answers the emergency at hand and cannot be saved for later.
pub const WINDOW_OVERRIDE_HOURS: i64 = 2;

/// Where now stands against the time a change may start in (see [`Change::window_standing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowStanding<'a> {
    /// No window: an implementer starts it when they choose (the worker never does).
    NoWindow,
    Open(&'a Window),
    /// Outside the window, but an approver's override lets this emergency start now.
    Overridden(&'a WindowOverride),
    NotYetOpen(&'a Window),
    Closed(&'a Window),
}

impl Change {
    /// Where `now` stands against the time this change may start in: its window (scheduled,
    /// else requested), or the period an approver's override of an emergency opened.
    pub fn window_standing(&self, now: DateTime<Utc>) -> WindowStanding<'_> {
        let Some(window) = self.effective_window() else {
            return WindowStanding::NoWindow;
        };
        if window.start <= now && now < window.end {
            return WindowStanding::Open(window);
        }
        if let Some(o) = &self.window_override
            && o.at <= now
            && now < o.until
        {
            return WindowStanding::Overridden(o);
        }
        if now < window.start {
            WindowStanding::NotYetOpen(window)
        } else {
            WindowStanding::Closed(window)
        }
    }

    /// Why this change may not start at `now` as far as its window goes, naming the window and
    /// what to do; `None` when it may. The deployment gate and [`Change::advance`] both ask it.
    pub fn window_refusal(&self, now: DateTime<Utc>) -> Option<String> {
        let id = &self.id;
        let emergency = self.classification.change_type == ChangeType::Emergency;
        match self.window_standing(now) {
            WindowStanding::NoWindow | WindowStanding::Open(_) | WindowStanding::Overridden(_) => {
                None
            }
            WindowStanding::NotYetOpen(w) => Some(format!(
                "{id}'s window opens at {} (it is {} → {})",
                stamp(w.start),
                stamp(w.start),
                stamp(w.end)
            )),
            WindowStanding::Closed(w) => Some(format!(
                "{id}'s window closed at {} (it was {} → {}): {}",
                stamp(w.end),
                stamp(w.start),
                stamp(w.end),
                if emergency {
                    format!(
                        "its approvers may together let this emergency start now: each runs `steward change override-window {id} --reason …`"
                    )
                } else {
                    "cancel it and submit it again with a new window".to_owned()
                }
            )),
        }
    }

    /// Lets this emergency change start now although its window is closed or not yet open:
    /// only its approvers may, each with a reason, and only all of them together (dual
    /// control: the override opens with the last agreement). Agreements older than
    /// [`WINDOW_OVERRIDE_HOURS`] lapse, and the override lasts that long. Normal and standard
    /// changes have no override: their window is what was approved.
    pub fn override_window(
        &mut self,
        who: &UserName,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Transition, Refused> {
        let id = self.id.clone();
        if !matches!(self.state, ChangeState::Approved | ChangeState::Scheduled) {
            return Err(Refused::IllegalTransition {
                action: "override the window of",
                current: self.state,
            });
        }
        let change_type = self.classification.change_type;
        if change_type != ChangeType::Emergency {
            return Err(Refused::Unmet(format!(
                "{id} is a {change_type} change, and only an emergency may start outside its window: cancel it and submit it again with a new window"
            )));
        }
        let mut approvers: Vec<UserName> = Vec::new();
        for d in self
            .decisions
            .iter()
            .filter(|d| d.decision == Decision::Approve)
        {
            if !approvers.contains(&d.by) {
                approvers.push(d.by.clone());
            }
        }
        if !approvers.contains(who) {
            let names: Vec<&str> = approvers.iter().map(|a| a.as_str()).collect();
            return Err(Refused::Segregation(format!(
                "only someone who approved {id} ({}) may override its window",
                names.join(", ")
            )));
        }
        let window = match self.window_standing(now) {
            WindowStanding::NoWindow => {
                return Err(Refused::Unmet(format!(
                    "{id} has no window, so there is nothing to override: an implementer may start it now"
                )));
            }
            WindowStanding::Open(w) => {
                return Err(Refused::Unmet(format!(
                    "{id}'s window is open until {}: implement it now, no override is needed",
                    stamp(w.end)
                )));
            }
            WindowStanding::Overridden(o) => {
                return Err(Refused::Unmet(format!(
                    "{id}'s window was already overridden by {} at {}: it may start until {}",
                    o.agreed_names(),
                    stamp(o.at),
                    stamp(o.until)
                )));
            }
            WindowStanding::NotYetOpen(w) | WindowStanding::Closed(w) => w.clone(),
        };
        let lapse = chrono::Duration::hours(WINDOW_OVERRIDE_HOURS);
        self.override_agreements.retain(|a| now - a.at < lapse);
        if let Some(mine) = self.override_agreements.iter().find(|a| &a.by == who) {
            return Err(Refused::Unmet(format!(
                "{who} already agreed to override {id}'s window at {}; it opens when {} agree{} too",
                stamp(mine.at),
                self.override_waiting_for(&approvers).join(" and "),
                if self.override_waiting_for(&approvers).len() == 1 {
                    "s"
                } else {
                    ""
                }
            )));
        }
        self.override_agreements.push(OverrideAgreement {
            by: who.clone(),
            reason: reason.clone(),
            at: now,
        });
        self.updated_at = now;
        let waiting = self.override_waiting_for(&approvers);
        if !waiting.is_empty() {
            let details = serde_json::json!({"window": window, "waiting_for": waiting});
            return Ok(self.note("window_override_agreed", who, Some(reason), details));
        }
        let until = now + lapse;
        let agreements: Vec<OverrideAgreement> = self.override_agreements.drain(..).collect();
        let agreed_by: Vec<&UserName> = agreements.iter().map(|a| &a.by).collect();
        let details = serde_json::json!({
            "window": window,
            "until": until,
            "agreed_by": agreed_by,
        });
        self.window_override = Some(WindowOverride {
            by: who.clone(),
            reason: reason.clone(),
            at: now,
            until,
            window,
            agreements,
        });
        Ok(self.note("window_override", who, Some(reason), details))
    }

    /// The approvers who have not yet agreed to the pending window override.
    pub fn override_waiting_for(&self, approvers: &[UserName]) -> Vec<String> {
        approvers
            .iter()
            .filter(|a| !self.override_agreements.iter().any(|g| &g.by == *a))
            .map(|a| a.to_string())
            .collect()
    }
}

impl WindowOverride {
    /// Who opened it: every approver who agreed, `cass and vic`.
    pub fn agreed_names(&self) -> String {
        if self.agreements.is_empty() {
            return self.by.to_string();
        }
        let names: Vec<&str> = self.agreements.iter().map(|a| a.by.as_str()).collect();
        names.join(" and ")
    }
}
