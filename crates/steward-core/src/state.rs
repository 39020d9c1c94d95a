//! The change lifecycle: states and the transitions between them.
//!
//! ```text
//! draft → submitted → pending_approval → approved → scheduled → implementing → completed → closed
//!                                      ↘ rejected                           ↘ failed ─────↗
//!                                                                            ↘ rolled_back ↗
//! (draft, submitted, pending_approval, approved, scheduled) → cancelled
//! (completed, failed) → rolled_back
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    Draft,
    Submitted,
    PendingApproval,
    Approved,
    Rejected,
    Scheduled,
    Implementing,
    Completed,
    Failed,
    RolledBack,
    Closed,
    Cancelled,
}

use ChangeState::*;

impl ChangeState {
    pub const ALL: [ChangeState; 12] = [
        Draft,
        Submitted,
        PendingApproval,
        Approved,
        Rejected,
        Scheduled,
        Implementing,
        Completed,
        Failed,
        RolledBack,
        Closed,
        Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Draft => "draft",
            Submitted => "submitted",
            PendingApproval => "pending_approval",
            Approved => "approved",
            Rejected => "rejected",
            Scheduled => "scheduled",
            Implementing => "implementing",
            Completed => "completed",
            Failed => "failed",
            RolledBack => "rolled_back",
            Closed => "closed",
            Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The one table of legal transitions.
    pub fn can_become(self, next: ChangeState) -> bool {
        matches!(
            (self, next),
            (Draft, Submitted)
                | (Submitted, PendingApproval | Approved)
                | (PendingApproval, Approved | Rejected)
                | (Approved, Scheduled)
                | (Scheduled, Implementing)
                | (Implementing, Completed | Failed | RolledBack)
                | (Completed | Failed, RolledBack)
                | (Completed | Failed | RolledBack, Closed)
                | (
                    Draft | Submitted | PendingApproval | Approved | Scheduled,
                    Cancelled
                )
        )
    }

    /// An outcome counted in the failure history of later changes.
    pub fn outcome(self) -> Option<&'static str> {
        match self {
            Completed => Some("succeeded"),
            Failed | RolledBack => Some("failed"),
            _ => None,
        }
    }
}

impl fmt::Display for ChangeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_table() {
        let legal = [
            "draft>submitted",
            "submitted>pending_approval",
            "submitted>approved",
            "pending_approval>approved",
            "pending_approval>rejected",
            "approved>scheduled",
            "scheduled>implementing",
            "implementing>completed",
            "implementing>failed",
            "implementing>rolled_back",
            "completed>rolled_back",
            "failed>rolled_back",
            "completed>closed",
            "failed>closed",
            "rolled_back>closed",
            "draft>cancelled",
            "submitted>cancelled",
            "pending_approval>cancelled",
            "approved>cancelled",
            "scheduled>cancelled",
        ];
        for from in ChangeState::ALL {
            for to in ChangeState::ALL {
                let key = format!("{from}>{to}");
                assert_eq!(from.can_become(to), legal.contains(&key.as_str()), "{key}");
            }
        }
    }
}
