//! Single sign-on's records: sign-ins under way, portal sessions, and the accounts sign-ins make
//! and keep up to date (each tenant's group-to-role mapping is [`crate::group_roles`]). The
//! portal's token sign-in opens its sessions here too ([`Store::open_token_session`]).
//!
//! A sign-in under way (`oidc_logins`) is read and deleted in one statement, so its `state` works
//! once, on whichever server sharing the database the browser comes back to. Sessions and
//! pending logins are stored by the SHA-256 of their random values, as API tokens are. An account
//! a sign-in makes is `source = 'oidc'`, holds no API token, and stays bound to the provider
//! identity that made it: a sign-in finds it by that identity, whatever name the provider gives
//! today. Its roles are set afresh at every sign-in (and every bearer JWT) from the mapping, with
//! a `user.roles_synced` audit event when they change (never taking `admin` from the tenant's
//! last active admin), and its last use is recorded as an API token's is. The rules (which tenant,
//! which roles, which name) are `steward_core::sso`; this module applies them to what the
//! transaction read.

use crate::accounts::optional_time;
use crate::audit::{self, AuditRecord};
use crate::users::Principal;
use crate::{Backend, Store, StoreError, WriteTx, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use steward_core::account::{AccountStatus, last_use_is_stale};
use steward_core::sso::{GroupName, SignInRefused};
use steward_core::{Role, Roles, TenantId, UserName};

/// A sign-in under way: what the callback needs to finish it.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// SHA-256 of the random value in the browser's login cookie.
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The tenant the person asked for (`/auth/login?tenant=`), if any.
    pub tenant: Option<TenantId>,
    /// A local path to send the browser to afterwards.
    pub return_to: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for PendingLogin {
    // The nonce and the PKCE verifier are secrets until the sign-in ends.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("tenant", &self.tenant)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An identity the provider vouched for, with what the mapping made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoAccount {
    pub tenant: TenantId,
    pub name: UserName,
    /// `issuer#subject`: the account stays bound to it.
    pub identity: String,
    pub roles: Roles,
    /// The groups that gave the roles (kept in the audit payload of a roles change).
    pub groups: Vec<GroupName>,
}

/// A portal session to open with the sign-in.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 of the cookie's value.
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a session cookie opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck {
    Valid(Principal),
    /// The session exists, but its account was disabled since.
    Disabled(UserName),
    /// Unknown, signed out, or past its end.
    Unknown,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn record(
    actor: &str,
    action: &str,
    subject: (&'static str, String),
    at: DateTime<Utc>,
    details: Value,
) -> AuditRecord {
    AuditRecord {
        occurred_at: at,
        actor: actor.to_owned(),
        action: action.into(),
        subject_type: subject.0,
        subject_id: subject.1,
        outcome: "success",
        correlation_id: None,
        details,
    }
}

impl Store {
    /// Records a sign-in under way under the hash of its `state`, and forgets those that expired.
    pub async fn begin_login(
        &self,
        state_hash: &str,
        login: &PendingLogin,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1")
            .bind(ts(now))
            .execute(&self.write_pool)
            .await?;
        sqlx::query(
            "INSERT INTO oidc_logins (state_hash, browser_hash, nonce, pkce_verifier, tenant_id, \
             return_to, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(state_hash.to_owned())
        .bind(login.browser_hash.clone())
        .bind(login.nonce.clone())
        .bind(login.pkce_verifier.clone())
        .bind(login.tenant.as_ref().map(|t| t.as_str().to_owned()))
        .bind(login.return_to.clone())
        .bind(ts(now))
        .bind(ts(login.expires_at))
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }

    /// The sign-in under way with this `state` hash, deleted in the same statement: a second
    /// call with the same state (a replay, or the other of two servers) finds nothing. An
    /// expired one is deleted and not returned.
    pub async fn take_login(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING browser_hash, nonce, \
             pkce_verifier, tenant_id, return_to, expires_at",
        )
        .bind(state_hash.to_owned())
        .fetch_optional(&self.write_pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let tenant: Option<String> = row.try_get("tenant_id")?;
        let login = PendingLogin {
            browser_hash: row.try_get("browser_hash")?,
            nonce: row.try_get("nonce")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            tenant: tenant
                .map(|t| TenantId::parse(&t).map_err(|e| corrupt("tenant", e)))
                .transpose()?,
            return_to: row.try_get("return_to")?,
            expires_at: parse_ts(&row.try_get::<String, _>("expires_at")?)?,
        };
        Ok((login.expires_at > now).then_some(login))
    }

    /// Signs an identity in: finds its account in the tenant by the identity (`issuer#subject`)
    /// first, whatever name the provider gives today, so a renamed person keeps their account,
    /// its name and its status; creates the account on the identity's first sign-in
    /// (`user.created`), under `account.name`; sets its roles when the mapping now gives others
    /// (`user.roles_synced`, before and after; the tenant's last active admin keeps `admin`, see
    /// [`steward_core::sso::synced_roles`]); and opens `session` if one is given
    /// (`user.signed_in`), in one transaction. Refused, writing nothing, when the identity's
    /// account is disabled, or it has none and the name belongs to a local account or to another
    /// identity. One identity never holds two accounts in a tenant (a unique index says so too).
    /// Without a session (a bearer JWT, on every request) an account that is already as it
    /// should be costs one read, and a write of its last use at most once a minute.
    pub async fn sign_in(
        &self,
        account: &SsoAccount,
        session: Option<&NewSession>,
        now: DateTime<Utc>,
    ) -> Result<Result<Principal, SignInRefused>, StoreError> {
        if session.is_none()
            && let Some(existing) = find(&self.pool, account, "").await?
        {
            if let Err(refused) = existing.admits(account) {
                return Ok(Err(refused));
            }
            if existing.roles == account.roles {
                let tenant = account.tenant.as_str();
                let name = existing.name.as_str();
                if last_use_is_stale(existing.last_used_at, now)
                    && let Err(error) = self.record_use(tenant, name, now).await
                {
                    tracing::warn!(%error, user = %name, "could not record the account's last use");
                }
                return Ok(Ok(existing.principal(&account.tenant)));
            }
        }
        // Two first requests of a new identity at once (a pipeline's parallel calls) both find
        // no account; the second insert fails, and its retry finds the account the first made.
        // A PostgreSQL deadlock with a lifecycle write (both lock the tenant's admins) is retried
        // the same way.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut tx = self.begin_write().await?;
            match sign_in_in(&mut tx, self.backend, account, session, now).await {
                Ok(Ok(principal)) => {
                    tx.commit().await?;
                    return Ok(Ok(principal));
                }
                Ok(Err(refused)) => {
                    tx.rollback().await?;
                    return Ok(Err(refused));
                }
                Err(StoreError::Duplicate(_) | StoreError::Conflict) if attempts < 3 => {
                    tx.rollback().await?
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The account a session cookie's hash opens at `now`, with its roles and status as they are
    /// now (an admin's change of roles takes effect at the next request; a disable, or revoking
    /// the account's tokens, ends its sessions). A valid use records the account's
    /// `last_used_at` as an API token's does (at most once a minute).
    pub async fn principal_for_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<SessionCheck, StoreError> {
        let row = sqlx::query(
            "SELECT u.tenant_id, u.name, u.roles, u.status, u.last_used_at FROM sessions s \
             JOIN users u ON u.tenant_id = s.tenant_id AND u.name = s.user_name \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash.to_owned())
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(SessionCheck::Unknown);
        };
        let name = UserName::parse(&row.try_get::<String, _>("name")?)
            .map_err(|e| corrupt("user name", e))?;
        let status = AccountStatus::parse(&row.try_get::<String, _>("status")?)
            .map_err(|e| corrupt("account status", e))?;
        if status != AccountStatus::Active {
            return Ok(SessionCheck::Disabled(name));
        }
        let tenant: String = row.try_get("tenant_id")?;
        if last_use_is_stale(optional_time(&row, "last_used_at")?, now)
            && let Err(error) = self.record_use(&tenant, name.as_str(), now).await
        {
            tracing::warn!(%error, user = %name, "could not record the account's last use");
        }
        Ok(SessionCheck::Valid(Principal {
            tenant: TenantId::parse(&tenant).map_err(|e| corrupt("tenant", e))?,
            name,
            roles: Roles::parse_list(&row.try_get::<String, _>("roles")?)
                .map_err(|e| corrupt("roles", e))?,
        }))
    }

    /// Opens a portal session for a local account that proved itself with its API token (the
    /// portal's sign-in form): the session row and a `user.signed_in` event (`via: "token"`) in
    /// one transaction. The caller has already authenticated the token (so a disabled account,
    /// or an expired or revoked token, never gets here); the session then follows the account
    /// as an SSO session does ([`Store::principal_for_session`]).
    pub async fn open_token_session(
        &self,
        principal: &Principal,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, tenant_id, user_name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.token_hash.clone())
        .bind(principal.tenant.as_str().to_owned())
        .bind(principal.name.as_str().to_owned())
        .bind(ts(now))
        .bind(ts(session.expires_at))
        .execute(&mut *tx)
        .await?;
        let name = principal.name.to_string();
        let event = record(
            &name,
            "user.signed_in",
            ("user", name.clone()),
            now,
            json!({"via": "token", "roles": principal.roles,
                   "session_expires_at": ts(session.expires_at)}),
        );
        audit::append(&mut tx, principal.tenant.as_str(), &[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends the session with this hash (`user.signed_out`); false when there was none.
    pub async fn end_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM sessions WHERE token_hash = $1 RETURNING tenant_id, user_name, expires_at",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let tenant: String = row.try_get("tenant_id")?;
        let name: String = row.try_get("user_name")?;
        let expires_at = parse_ts(&row.try_get::<String, _>("expires_at")?)?;
        if expires_at > now {
            let event = record(
                &name,
                "user.signed_out",
                ("user", name.clone()),
                now,
                json!({}),
            );
            audit::append(&mut tx, &tenant, &[event]).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// An account row as a sign-in reads it.
struct Existing {
    name: UserName,
    roles: Roles,
    source: String,
    identity: Option<String>,
    status: AccountStatus,
    last_used_at: Option<DateTime<Utc>>,
}

impl Existing {
    fn read(row: &sqlx::any::AnyRow) -> Result<Existing, StoreError> {
        Ok(Existing {
            name: UserName::parse(&row.try_get::<String, _>("name")?)
                .map_err(|e| corrupt("user name", e))?,
            roles: Roles::parse_list(&row.try_get::<String, _>("roles")?)
                .map_err(|e| corrupt("roles", e))?,
            source: row.try_get("source")?,
            identity: row.try_get("oidc_identity")?,
            status: AccountStatus::parse(&row.try_get::<String, _>("status")?)
                .map_err(|e| corrupt("account status", e))?,
            last_used_at: optional_time(row, "last_used_at")?,
        })
    }

    /// Whether `account`'s identity may sign in as this row.
    fn admits(&self, account: &SsoAccount) -> Result<(), SignInRefused> {
        if self.source != "oidc" {
            return Err(SignInRefused::LocalAccount(self.name.clone()));
        }
        if self.identity.as_deref() != Some(account.identity.as_str()) {
            return Err(SignInRefused::OtherIdentity(self.name.clone()));
        }
        if self.status != AccountStatus::Active {
            return Err(SignInRefused::Disabled(self.name.clone()));
        }
        Ok(())
    }

    fn principal(&self, tenant: &TenantId) -> Principal {
        Principal {
            tenant: tenant.clone(),
            name: self.name.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// The account `account`'s identity signs in as, if any: the one bound to the identity in the
/// tenant, whatever its name; else the one holding the name (which admits no other identity).
/// `lock` is `" FOR UPDATE"` inside a PostgreSQL transaction.
async fn find<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    account: &SsoAccount,
    lock: &str,
) -> Result<Option<Existing>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT name, roles, source, oidc_identity, status, last_used_at FROM users \
         WHERE tenant_id = $1 AND (oidc_identity = $2 OR name = $3) ORDER BY name{lock}"
    )))
    .bind(account.tenant.as_str().to_owned())
    .bind(account.identity.clone())
    .bind(account.name.as_str().to_owned())
    .fetch_all(executor)
    .await?;
    let mut found = rows
        .iter()
        .map(Existing::read)
        .collect::<Result<Vec<_>, _>>()?;
    let bound = found
        .iter()
        .position(|e| e.identity.as_deref() == Some(account.identity.as_str()));
    Ok(match bound {
        Some(at) => Some(found.swap_remove(at)),
        None => found.pop(),
    })
}

/// Why the tenant's last active admin kept `admin` its groups no longer give (in the audit).
const ADMIN_KEPT: &str = "the account is the tenant's last active admin: its groups may not take \
     admin from it; make another account admin first";

async fn sign_in_in(
    tx: &mut WriteTx,
    backend: Backend,
    account: &SsoAccount,
    session: Option<&NewSession>,
    now: DateTime<Utc>,
) -> Result<Result<Principal, SignInRefused>, StoreError> {
    let tenant = account.tenant.as_str().to_owned();
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let groups: Vec<&str> = account.groups.iter().map(GroupName::as_str).collect();
    let mut events = Vec::new();
    let mut admin_kept = false;
    let (name, roles) = match find(&mut **tx, account, lock).await? {
        None => {
            let name = account.name.as_str().to_owned();
            sqlx::query(
                "INSERT INTO users (tenant_id, name, roles, created_at, source, oidc_identity, \
                 last_used_at) VALUES ($1, $2, $3, $4, 'oidc', $5, $4)",
            )
            .bind(tenant.clone())
            .bind(name.clone())
            .bind(account.roles.to_list())
            .bind(ts(now))
            .bind(account.identity.clone())
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_insert(e, || format!("user '{name}'")))?;
            events.push(record(
                &name,
                "user.created",
                ("user", name.clone()),
                now,
                json!({"after": {"name": name, "roles": account.roles, "source": "oidc"},
                       "groups": groups}),
            ));
            (account.name.clone(), account.roles.clone())
        }
        Some(existing) => {
            if let Err(refused) = existing.admits(account) {
                return Ok(Err(refused));
            }
            let name = existing.name.as_str().to_owned();
            let roles = if existing.roles.contains(Role::Admin)
                && !account.roles.contains(Role::Admin)
            {
                // The groups would take admin: the lifecycle's last-admin rule, with the
                // tenant's active accounts locked as a lifecycle write locks them.
                let locked =
                    crate::accounts::lock_accounts(tx, backend, &tenant, &existing.name).await?;
                let (roles, kept) = steward_core::sso::synced_roles(
                    &existing.name,
                    &existing.roles,
                    &account.roles,
                    &locked.active_admins,
                );
                admin_kept = kept;
                roles
            } else {
                account.roles.clone()
            };
            if roles != existing.roles {
                sqlx::query("UPDATE users SET roles = $1 WHERE tenant_id = $2 AND name = $3")
                    .bind(roles.to_list())
                    .bind(tenant.clone())
                    .bind(name.clone())
                    .execute(&mut **tx)
                    .await?;
            }
            // A kept admin is recorded at each sign-in, even when nothing changed, so the
            // record says why the account holds a role its groups no longer give.
            if roles != existing.roles || (admin_kept && session.is_some()) {
                let mut details = json!({"before": {"roles": existing.roles},
                                         "after": {"roles": roles},
                                         "groups": groups, "via": "oidc"});
                if admin_kept {
                    details["mapped"] = json!({"roles": account.roles});
                    details["admin_kept"] = json!(ADMIN_KEPT);
                }
                events.push(record(
                    &name,
                    "user.roles_synced",
                    ("user", name.clone()),
                    now,
                    details,
                ));
            }
            if last_use_is_stale(existing.last_used_at, now) {
                sqlx::query(
                    "UPDATE users SET last_used_at = $1 WHERE tenant_id = $2 AND name = $3",
                )
                .bind(ts(now))
                .bind(tenant.clone())
                .bind(name.clone())
                .execute(&mut **tx)
                .await?;
            }
            (existing.name, roles)
        }
    };
    if let Some(session) = session {
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(ts(now))
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, tenant_id, user_name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.token_hash.clone())
        .bind(tenant.clone())
        .bind(name.as_str().to_owned())
        .bind(ts(now))
        .bind(ts(session.expires_at))
        .execute(&mut **tx)
        .await?;
        let mut details = json!({"via": "oidc", "roles": roles,
                                 "session_expires_at": ts(session.expires_at)});
        if name != account.name {
            // The provider names the person otherwise now; the account keeps its name.
            details["provider_name"] = json!(account.name);
        }
        events.push(record(
            name.as_str(),
            "user.signed_in",
            ("user", name.to_string()),
            now,
            details,
        ));
    }
    audit::append(tx, &tenant, &events).await?;
    Ok(Ok(Principal {
        tenant: account.tenant.clone(),
        name,
        roles,
    }))
}
