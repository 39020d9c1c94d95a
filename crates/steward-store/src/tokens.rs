//! API tokens: authenticating one on every request (a disabled account's token, an expired or a
//! revoked one is refused, saying which), and rotating, revoking and issuing them. Only hashes
//! are stored; a revoked or rotated token keeps its row for the record, with why
//! (`revoked_reason`), and never authenticates again. No audit event holds a token or its hash.

use crate::accounts::{AccountRefusal, corrupt, end_sessions, optional_time, record};
use crate::audit;
use crate::users::Principal;
use crate::{Store, StoreError, TenantStore, WriteTx, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use steward_core::account::{
    self, AccountStatus, LockoutRefused, Revocation, TokenFacts, TokenRefused,
};
use steward_core::{Roles, TenantId, UserName};

/// What a presented token's hash opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Valid(Principal),
    /// A known token that does not authenticate, and why.
    Refused(TokenRefused),
    /// No token has this hash.
    Unknown,
}

fn revocation(reason: Option<&str>) -> Result<Option<Revocation>, StoreError> {
    match reason {
        None => Ok(None),
        Some("rotated") => Ok(Some(Revocation::Rotated)),
        Some("revoked") => Ok(Some(Revocation::Revoked)),
        Some(other) => Err(corrupt("token revocation", other)),
    }
}

impl Store {
    /// Finds the account a token hash belongs to, in whichever tenant it lives, and whether the
    /// token authenticates at `now`: read on every request, so a disable, a revocation or an
    /// expiry takes effect at the next one. A valid use records the account's `last_used_at`
    /// when the stored one is a minute old or more (telemetry, not an audit event; a failure to
    /// record it is logged and does not refuse the request).
    pub async fn authenticate(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenCheck, StoreError> {
        let row = sqlx::query(
            "SELECT u.tenant_id, u.name, u.roles, u.status, u.last_used_at, t.expires_at, \
             t.revoked_at, t.revoked_reason FROM api_tokens t \
             JOIN users u ON u.tenant_id = t.tenant_id AND u.name = t.user_name \
             WHERE t.token_hash = $1",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(TokenCheck::Unknown);
        };
        let revoked_at = optional_time(&row, "revoked_at")?;
        let reason: Option<String> = row.try_get("revoked_reason")?;
        let facts = TokenFacts {
            status: AccountStatus::parse(&row.try_get::<String, _>("status")?)
                .map_err(|e| corrupt("account status", e))?,
            expires_at: optional_time(&row, "expires_at")?,
            // A revoked row always says why; one that does not is revoked all the same.
            revoked: match (revoked_at, revocation(reason.as_deref())?) {
                (None, _) => None,
                (Some(_), why) => Some(why.unwrap_or(Revocation::Revoked)),
            },
        };
        if let Err(refused) = account::check_token(&facts, now) {
            return Ok(TokenCheck::Refused(refused));
        }
        let tenant: String = row.try_get("tenant_id")?;
        let name: String = row.try_get("name")?;
        let principal = Principal {
            tenant: TenantId::parse(&tenant).map_err(|e| corrupt("tenant", e))?,
            name: UserName::parse(&name).map_err(|e| corrupt("user name", e))?,
            roles: Roles::parse_list(&row.try_get::<String, _>("roles")?)
                .map_err(|e| corrupt("roles", e))?,
        };
        if account::last_use_is_stale(optional_time(&row, "last_used_at")?, now)
            && let Err(error) = self.record_use(&tenant, &name, now).await
        {
            tracing::warn!(%error, user = %name, "could not record the account's last use");
        }
        Ok(TokenCheck::Valid(principal))
    }

    /// Sets `last_used_at` unless another request already moved it past `now` (several servers).
    pub(crate) async fn record_use(
        &self,
        tenant: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET last_used_at = $1 WHERE tenant_id = $2 AND name = $3 \
             AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(ts(now))
        .bind(tenant.to_owned())
        .bind(name.to_owned())
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }
}

impl TenantStore<'_> {
    /// Replaces the token `old_hash` of `name` by `new_hash` (`token.rotated`): the old one is
    /// kept, revoked as `rotated`, and never authenticates again. Refused when the old token
    /// was rotated or revoked meanwhile, so one token is never rotated into two.
    /// When a token expires (`None`: never, or no such token).
    pub async fn token_expiry(
        &self,
        token_hash: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT expires_at FROM api_tokens WHERE token_hash = $1 AND tenant_id = $2",
        )
        .bind(token_hash.to_owned())
        .bind(self.tenant.clone())
        .fetch_optional(&self.store.pool)
        .await?;
        row.map(|r| optional_time(&r, "expires_at"))
            .transpose()
            .map(Option::flatten)
    }

    pub async fn rotate_token(
        &self,
        name: &UserName,
        old_hash: &str,
        new_hash: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), AccountRefusal>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        match self.account_in(&mut tx, name).await? {
            None => {
                tx.rollback().await?;
                return Ok(Err(AccountRefusal::NoSuchUser(name.clone())));
            }
            Some(a) if a.status == AccountStatus::Disabled => {
                tx.rollback().await?;
                return Ok(Err(AccountRefusal::Disabled(name.clone())));
            }
            Some(_) => {}
        }
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1, revoked_reason = 'rotated' \
             WHERE token_hash = $2 AND tenant_id = $3 AND user_name = $4 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(old_hash.to_owned())
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .execute(&mut *tx)
        .await?;
        if revoked.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Err(AccountRefusal::TokenGone));
        }
        insert_token(
            &mut tx,
            &self.tenant,
            name,
            new_hash,
            "rotated",
            expires_at,
            now,
        )
        .await?;
        // A portal session opened with the old token must not outlive it: rotating ends the
        // account's sessions (the holder signs in again with the new token).
        let sessions_ended = crate::accounts::end_sessions(&mut tx, &self.tenant, name).await?;
        let details = json!({"expires_at": expires_at, "sessions_ended": sessions_ended});
        let event = record(name.as_str(), "token.rotated", name, now, details);
        audit::append(&mut tx, &self.tenant, &[event]).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Revokes every token of `name` (`token.revoked`, with how many) and ends its single
    /// sign-on sessions: none of them authenticates again. Answers how many were revoked. Refuses revoking one's own (that is
    /// what rotating is for).
    pub async fn revoke_tokens(
        &self,
        actor: &UserName,
        name: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Result<u64, AccountRefusal>, StoreError> {
        if actor == name {
            return Ok(Err(LockoutRefused::OwnTokens.into()));
        }
        let mut tx = self.store.begin_write().await?;
        if self.account_in(&mut tx, name).await?.is_none() {
            tx.rollback().await?;
            return Ok(Err(AccountRefusal::NoSuchUser(name.clone())));
        }
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1, revoked_reason = 'revoked' \
             WHERE tenant_id = $2 AND user_name = $3 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let sessions = end_sessions(&mut tx, &self.tenant, name).await?;
        let event = record(
            actor.as_str(),
            "token.revoked",
            name,
            now,
            json!({"tokens": revoked, "sessions_ended": sessions}),
        );
        audit::append(&mut tx, &self.tenant, &[event]).await?;
        tx.commit().await?;
        Ok(Ok(revoked))
    }

    /// Issues a new token for `name` (`token.issued`), e.g. after its tokens were revoked. A
    /// disabled account's new token works once the account is enabled.
    pub async fn issue_token(
        &self,
        actor: &str,
        name: &UserName,
        token_hash: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), AccountRefusal>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        if self.account_in(&mut tx, name).await?.is_none() {
            tx.rollback().await?;
            return Ok(Err(AccountRefusal::NoSuchUser(name.clone())));
        }
        insert_token(
            &mut tx,
            &self.tenant,
            name,
            token_hash,
            "issued",
            expires_at,
            now,
        )
        .await?;
        let event = record(
            actor,
            "token.issued",
            name,
            now,
            json!({"expires_at": expires_at}),
        );
        audit::append(&mut tx, &self.tenant, &[event]).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}

/// Adds a token row for `name` (only its hash is stored).
pub(crate) async fn insert_token(
    tx: &mut WriteTx,
    tenant: &str,
    name: &UserName,
    token_hash: &str,
    label: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, tenant_id, user_name, label, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash.to_owned())
    .bind(tenant.to_owned())
    .bind(name.as_str().to_owned())
    .bind(label.to_owned())
    .bind(ts(now))
    .bind(expires_at.map(ts))
    .execute(&mut **tx)
    .await
    .map_err(|e| StoreError::from_insert(e, || "a token with this hash".to_owned()))?;
    Ok(())
}
