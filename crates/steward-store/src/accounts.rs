//! The account lifecycle: disabling and enabling accounts and changing their roles (tokens are
//! `tokens`). Each change is an audit event in its own transaction.
//!
//! The rules (what a token's facts mean, when a change would lock a tenant out, which slots a
//! disabled person leaves open) are `steward_core::account` and `steward_core::approval`; this
//! module applies them to what the transaction read. A lifecycle write locks the tenant's active
//! accounts first (PostgreSQL: `FOR UPDATE`; SQLite's write lock covers it), so two admins
//! disabling each other at once cannot leave the tenant without an active admin.

use crate::audit::{self, AuditRecord};
use crate::notifications::{self, Notice};
use crate::{Backend, StoreError, TenantStore, WriteTx, parse_ts, read_document, ts};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use steward_core::account::{self, AccountStatus, LockoutRefused};
use steward_core::approval::{describe, slots_open_to};
use steward_core::change::Change;
use steward_core::{ChangeId, Role, Roles, UserName};

/// An account as lists and lookups show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: UserName,
    pub roles: Roles,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// When one of its tokens, single sign-on sessions or bearer JWTs last authenticated (to the
    /// minute: written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Made by a single sign-on: its roles come from the provider's groups (the tenant's group
    /// mapping), and it holds no API token.
    pub from_sso: bool,
}

/// Why a lifecycle operation was not applied: each is the caller's to fix (4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRefusal {
    #[error("no user '{0}'")]
    NoSuchUser(UserName),
    #[error("{user} is already {status}")]
    AlreadyIs {
        user: UserName,
        status: AccountStatus,
    },
    #[error(transparent)]
    Lockout(#[from] LockoutRefused),
    /// Dual control: the roles an approval was for are no longer the account's.
    #[error("{user}'s roles are no longer {expected}: request the change again")]
    RolesChanged { user: UserName, expected: String },
    /// The token of the request is not a working API token of the caller's: rotated or revoked
    /// meanwhile (a second rotate of one token), or a single sign-on token.
    #[error(
        "the token of this request is not one of your working API tokens (it was rotated or revoked meanwhile, or it is a single sign-on token): rotate with a Steward API token"
    )]
    TokenGone,
    #[error("{0} is disabled: enable the account first")]
    Disabled(UserName),
}

/// An account was disabled: what it is now, and the changes awaiting approval it could have
/// approved, each reported to its requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub account: Account,
    pub reported: Vec<ReportedChange>,
}

/// A change that lost a possible approver: the open slots the disabled person was named for or
/// could have filled, and who was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedChange {
    pub change: ChangeId,
    pub slots: Vec<String>,
    pub notified: UserName,
}

const ACCOUNT_COLUMNS: &str = "name, roles, status, created_at, disabled_at, last_used_at, source";

pub(crate) fn corrupt(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{context}: {error}"))
}

pub(crate) fn optional_time(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<Option<String>, _>(column)?
        .map(|t| parse_ts(&t))
        .transpose()
}

pub(crate) fn account_from_row(row: &sqlx::any::AnyRow) -> Result<Account, StoreError> {
    let name: String = row.try_get("name")?;
    Ok(Account {
        name: UserName::parse(&name).map_err(|e| corrupt("user name", e))?,
        roles: Roles::parse_list(&row.try_get::<String, _>("roles")?)
            .map_err(|e| corrupt("roles", e))?,
        status: AccountStatus::parse(&row.try_get::<String, _>("status")?)
            .map_err(|e| corrupt("account status", e))?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        disabled_at: optional_time(row, "disabled_at")?,
        last_used_at: optional_time(row, "last_used_at")?,
        from_sso: row.try_get::<String, _>("source")? == "oidc",
    })
}

/// The tenant's active accounts, locked for the rest of `tx` (the first lock a lifecycle write
/// takes), and the target account among all of them.
pub(crate) struct Locked {
    pub(crate) active_admins: Vec<UserName>,
    pub(crate) account: Option<Account>,
}

pub(crate) async fn lock_accounts(
    tx: &mut WriteTx,
    backend: Backend,
    tenant: &str,
    name: &UserName,
) -> Result<Locked, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users WHERE tenant_id = $1 \
         AND (status = 'active' OR name = $2) ORDER BY name{lock}"
    )))
    .bind(tenant.to_owned())
    .bind(name.as_str().to_owned())
    .fetch_all(&mut **tx)
    .await?;
    let mut locked = Locked {
        active_admins: Vec::new(),
        account: None,
    };
    for row in &rows {
        let account = account_from_row(row)?;
        if account.status == AccountStatus::Active && account.roles.contains(Role::Admin) {
            locked.active_admins.push(account.name.clone());
        }
        if &account.name == name {
            locked.account = Some(account);
        }
    }
    Ok(locked)
}

pub(crate) fn record(
    actor: &str,
    action: &str,
    subject: &UserName,
    at: DateTime<Utc>,
    details: Value,
) -> AuditRecord {
    AuditRecord {
        occurred_at: at,
        actor: actor.to_owned(),
        action: action.into(),
        subject_type: "user",
        subject_id: subject.to_string(),
        outcome: "success",
        correlation_id: None,
        details,
    }
}

/// Sets `name`'s roles to `roles` inside `tx`, unless that would leave the tenant without an
/// active admin, or (`expected_before`, for an approved dual-control request) the account's roles
/// are no longer what was approved. Answers the roles before; writes no audit event (the caller
/// records `user.roles_changed` its way). Setting the roles an account already has changes
/// nothing and is not refused.
pub(crate) async fn set_user_roles_in(
    tx: &mut WriteTx,
    backend: Backend,
    tenant: &str,
    name: &UserName,
    roles: &Roles,
    expected_before: Option<&Roles>,
) -> Result<Result<Roles, AccountRefusal>, StoreError> {
    let locked = lock_accounts(tx, backend, tenant, name).await?;
    let Some(account) = locked.account else {
        return Ok(Err(AccountRefusal::NoSuchUser(name.clone())));
    };
    if let Some(expected) = expected_before
        && expected != &account.roles
    {
        return Ok(Err(AccountRefusal::RolesChanged {
            user: name.clone(),
            expected: expected.to_list(),
        }));
    }
    let stays_admin = account.status == AccountStatus::Active && roles.contains(Role::Admin);
    if let Err(refused) = account::keeps_an_admin(name, stays_admin, &locked.active_admins) {
        return Ok(Err(refused.into()));
    }
    sqlx::query("UPDATE users SET roles = $1 WHERE tenant_id = $2 AND name = $3")
        .bind(roles.to_list())
        .bind(tenant.to_owned())
        .bind(name.as_str().to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(Ok(account.roles))
}

impl TenantStore<'_> {
    /// One account, by name.
    pub async fn account(&self, name: &UserName) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE tenant_id = $1 AND name = $2"
        )))
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Sets an account's roles (`user.roles_changed`, with the roles before and after), unless
    /// that would leave the tenant without an active admin. Roles equal to the current ones
    /// change nothing and record nothing.
    pub async fn set_user_roles(
        &self,
        actor: &str,
        name: &UserName,
        roles: &Roles,
        expected_before: Option<&Roles>,
        now: DateTime<Utc>,
    ) -> Result<Result<Account, AccountRefusal>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let before = match set_user_roles_in(
            &mut tx,
            self.store.backend,
            &self.tenant,
            name,
            roles,
            expected_before,
        )
        .await?
        {
            Ok(before) => before,
            Err(refused) => {
                tx.rollback().await?;
                return Ok(Err(refused));
            }
        };
        if &before != roles {
            let details = json!({"before": {"roles": before}, "after": {"roles": roles}});
            let event = record(actor, "user.roles_changed", name, now, details);
            audit::append(&mut tx, &self.tenant, &[event]).await?;
        }
        let account = self.account_in(&mut tx, name).await?;
        tx.commit().await?;
        Ok(account.ok_or_else(|| AccountRefusal::NoSuchUser(name.clone())))
    }

    pub(crate) async fn account_in(
        &self,
        tx: &mut WriteTx,
        name: &UserName,
    ) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE tenant_id = $1 AND name = $2"
        )))
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Disables an account (`user.disabled`): its tokens are refused from the next request on,
    /// its single sign-on sessions end (deleted: enabling it again does not bring them back),
    /// and each change awaiting approval that it was named for, or could have approved, is
    /// reported to the change's requester in the same transaction. Refuses disabling oneself
    /// and the tenant's last active admin.
    pub async fn disable_user(
        &self,
        actor: &UserName,
        name: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Result<Disabled, AccountRefusal>, StoreError> {
        if actor == name {
            return Ok(Err(LockoutRefused::SelfDisable.into()));
        }
        let mut tx = self.store.begin_write().await?;
        let locked = lock_accounts(&mut tx, self.store.backend, &self.tenant, name).await?;
        let refusal = match &locked.account {
            None => Some(AccountRefusal::NoSuchUser(name.clone())),
            Some(a) if a.status == AccountStatus::Disabled => Some(AccountRefusal::AlreadyIs {
                user: name.clone(),
                status: AccountStatus::Disabled,
            }),
            Some(_) => account::keeps_an_admin(name, false, &locked.active_admins)
                .err()
                .map(AccountRefusal::from),
        };
        let mut account = match (refusal, locked.account) {
            (None, Some(account)) => account,
            (refused, _) => {
                tx.rollback().await?;
                return Ok(Err(
                    refused.unwrap_or_else(|| AccountRefusal::NoSuchUser(name.clone()))
                ));
            }
        };
        sqlx::query(
            "UPDATE users SET status = 'disabled', disabled_at = $1 WHERE tenant_id = $2 AND name = $3",
        )
        .bind(ts(now))
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .execute(&mut *tx)
        .await?;
        let sessions = end_sessions(&mut tx, &self.tenant, name).await?;
        let reported = self.open_slots_of(&mut tx, &account).await?;
        let notices: Vec<Notice> = reported
            .iter()
            .map(|r| disabled_notice(actor, name, r))
            .collect();
        notifications::insert(&mut tx, &self.tenant, &notices, now).await?;
        let changes: Vec<String> = reported.iter().map(|r| r.change.to_string()).collect();
        let details = json!({"before": {"status": "active"},
                             "after": {"status": "disabled", "disabled_at": now},
                             "reported_changes": changes, "sessions_ended": sessions});
        let event = record(actor.as_str(), "user.disabled", name, now, details);
        audit::append(&mut tx, &self.tenant, &[event]).await?;
        tx.commit().await?;
        account.status = AccountStatus::Disabled;
        account.disabled_at = Some(now);
        Ok(Ok(Disabled { account, reported }))
    }

    /// The changes awaiting approval with open slots `account` was named for or could have
    /// filled, by number.
    async fn open_slots_of(
        &self,
        tx: &mut WriteTx,
        account: &Account,
    ) -> Result<Vec<ReportedChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT document FROM changes WHERE tenant_id = $1 AND state = 'pending_approval' \
             ORDER BY number",
        )
        .bind(self.tenant.clone())
        .fetch_all(&mut **tx)
        .await?;
        let mut reported = Vec::new();
        for row in &rows {
            // Slots, decisions and the requester are never sealed: the stored document serves.
            let change: Change = read_document(row, "change document")?;
            let slots = slots_open_to(
                &change.required_approvals,
                &change.decisions,
                &change.requester,
                &account.name,
                &account.roles,
            );
            if slots.is_empty() {
                continue;
            }
            reported.push(ReportedChange {
                change: change.id.clone(),
                slots: slots
                    .iter()
                    .map(|s| format!("{} ({})", s.id, describe(&s.eligibility)))
                    .collect(),
                notified: change.requester.clone(),
            });
        }
        Ok(reported)
    }

    /// Enables a disabled account (`user.enabled`): its tokens that have not expired or been
    /// revoked work again.
    pub async fn enable_user(
        &self,
        actor: &str,
        name: &UserName,
        expected_roles: Option<&Roles>,
        now: DateTime<Utc>,
    ) -> Result<Result<Account, AccountRefusal>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let locked = lock_accounts(&mut tx, self.store.backend, &self.tenant, name).await?;
        let mut account = match locked.account {
            None => {
                tx.rollback().await?;
                return Ok(Err(AccountRefusal::NoSuchUser(name.clone())));
            }
            Some(a) if a.status == AccountStatus::Active => {
                tx.rollback().await?;
                return Ok(Err(AccountRefusal::AlreadyIs {
                    user: name.clone(),
                    status: AccountStatus::Active,
                }));
            }
            Some(a) if expected_roles.is_some_and(|r| r != &a.roles) => {
                tx.rollback().await?;
                return Ok(Err(AccountRefusal::RolesChanged {
                    user: name.clone(),
                    expected: expected_roles.map(Roles::to_list).unwrap_or_default(),
                }));
            }
            Some(a) => a,
        };
        sqlx::query(
            "UPDATE users SET status = 'active', disabled_at = NULL WHERE tenant_id = $1 AND name = $2",
        )
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .execute(&mut *tx)
        .await?;
        let details = json!({"before": {"status": "disabled", "disabled_at": account.disabled_at},
                             "after": {"status": "active"}});
        let event = record(actor, "user.enabled", name, now, details);
        audit::append(&mut tx, &self.tenant, &[event]).await?;
        tx.commit().await?;
        account.status = AccountStatus::Active;
        account.disabled_at = None;
        Ok(Ok(account))
    }
}

/// Ends every single sign-on session of `name` inside `tx`; answers how many there were.
pub(crate) async fn end_sessions(
    tx: &mut WriteTx,
    tenant: &str,
    name: &UserName,
) -> Result<u64, StoreError> {
    let ended = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_name = $2")
        .bind(tenant.to_owned())
        .bind(name.as_str().to_owned())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(ended)
}

/// What a change's requester is told when a possible approver of it is disabled.
fn disabled_notice(actor: &UserName, disabled: &UserName, reported: &ReportedChange) -> Notice {
    let change = &reported.change;
    Notice {
        recipient: reported.notified.clone(),
        subject: format!("{change}: {disabled} can no longer approve it"),
        body: format!(
            "{actor} disabled the account {disabled}. {change} is awaiting approval, and {disabled} \
             was named for or could have filled its open slot(s): {}. Another eligible person must \
             approve it; a slot that named {disabled} no one else can fill: withdraw the change, \
             or ask an admin to enable the account again.",
            reported.slots.join(", ")
        ),
        change: Some(change.clone()),
        about: None,
    }
}
