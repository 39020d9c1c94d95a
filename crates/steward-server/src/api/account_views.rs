//! Wire types of the account lifecycle: what disabling an account reported, a rotated or issued
//! token (shown once), a revocation. An account itself is [`super::views::UserView`].

use super::views::UserView;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_store::{Disabled, ReportedChange};
use utoipa::ToSchema;

/// An account was disabled: the account, and the changes awaiting approval it could have
/// approved, each reported to its requester's notifications.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DisabledUserView {
    pub user: UserView,
    pub reported: Vec<ReportedChangeView>,
}

impl DisabledUserView {
    pub fn of(disabled: &Disabled) -> DisabledUserView {
        let Disabled { account, reported } = disabled;
        DisabledUserView {
            user: UserView::of(account),
            reported: reported.iter().map(ReportedChangeView::of).collect(),
        }
    }
}

/// A change awaiting approval that lost a possible approver.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportedChangeView {
    /// `CHG-<n>`
    pub change: String,
    /// The open slots the disabled person was named for or could have filled, e.g.
    /// `owner:mia (user mia)`, `ciso (a ciso)`.
    pub slots: Vec<String>,
    /// Who was told: the change's requester.
    pub notified: String,
}

impl ReportedChangeView {
    fn of(reported: &ReportedChange) -> ReportedChangeView {
        let ReportedChange {
            change,
            slots,
            notified,
        } = reported;
        ReportedChangeView {
            change: change.to_string(),
            slots: slots.clone(),
            notified: notified.to_string(),
        }
    }
}

/// A new API token: shown once, stored only as a hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// The account the token belongs to.
    pub user: String,
    pub token: String,
    /// When it stops working; null when it does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An account's tokens were revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokedTokensView {
    pub user: String,
    /// How many tokens were still working and now are not.
    pub revoked: u64,
}

/// An account that exists only once a second admin approves it (it holds a privileged role).
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingAccountView {
    pub name: String,
    pub roles: Vec<String>,
    /// `pending_approval`
    pub status: String,
    /// Shown once, stored hashed: it works from the moment the account is approved.
    pub token: String,
    pub token_expires_at: Option<DateTime<Utc>>,
    /// The operation a second admin approves: `steward admin approve <it>`.
    pub pending_approval: String,
    pub operation: super::admin::PendingView,
}

/// A person's new token, minted by an admin: it works once a second admin approves it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingTokenView {
    pub user: String,
    /// Shown once, stored hashed.
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The operation a second admin approves: `steward admin approve <it>`.
    pub pending_approval: String,
    pub operation: super::admin::PendingView,
}
