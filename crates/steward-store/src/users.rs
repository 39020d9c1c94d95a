//! Accounts and API tokens. Tokens are stored only as SHA-256 hashes (see ARCHITECTURE.md for why
//! a fast hash is right for high-entropy random tokens). Their lifecycle (disable, enable, roles,
//! rotation, revocation, expiry) is [`crate::accounts`].

use crate::accounts::{Account, account_from_row};
use crate::audit::{self, AuditRecord};
use crate::tokens::{TokenCheck, insert_token};
use crate::{Store, StoreError, TenantStore, WriteTx, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use steward_core::{Roles, TenantId, UserName};

/// Who is calling, as established from their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub name: UserName,
    pub roles: Roles,
}

fn parse_roles(list: &str) -> Result<Roles, StoreError> {
    Roles::parse_list(list).map_err(|e| StoreError::corrupt("roles", e))
}

impl Store {
    /// The account a token hash belongs to, in whichever tenant it lives, when the token
    /// authenticates now (see [`Store::authenticate`], which also says why one does not).
    pub async fn principal_for_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, StoreError> {
        Ok(match self.authenticate(token_hash, Utc::now()).await? {
            TokenCheck::Valid(principal) => Some(principal),
            TokenCheck::Refused(_) | TokenCheck::Unknown => None,
        })
    }
}

impl TenantStore<'_> {
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1")
                .bind(self.tenant.clone())
                .fetch_one(&self.store.pool)
                .await?
                .try_get("n")?,
        )
    }

    pub async fn user_roles(&self, name: &UserName) -> Result<Option<Roles>, StoreError> {
        let row = sqlx::query("SELECT roles FROM users WHERE tenant_id = $1 AND name = $2")
            .bind(self.tenant.clone())
            .bind(name.as_str().to_owned())
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|r| parse_roles(&r.try_get::<String, _>("roles")?))
            .transpose()
    }

    /// Accounts named after `after` (from the first when `None`), by name, at most `limit`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, roles, status, created_at, disabled_at, last_used_at, source FROM users \
             WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(self.tenant.clone())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Creates an account with its first API token, audited as `user.created`.
    pub async fn create_user(
        &self,
        actor: &str,
        name: &UserName,
        roles: &Roles,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        self.create_user_expiring(actor, name, roles, token_hash, None)
            .await
    }

    /// [`Self::create_user`], the token expiring at `token_expires_at` when given.
    pub async fn create_user_expiring(
        &self,
        actor: &str,
        name: &UserName,
        roles: &Roles,
        token_hash: &str,
        token_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        insert_user(
            &mut tx,
            &self.tenant,
            name,
            roles,
            token_hash,
            token_expires_at,
            now,
        )
        .await?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: "user.created".into(),
            subject_type: "user",
            subject_id: name.to_string(),
            outcome: "success",
            correlation_id: None,
            details: json!({"after": {"name": name, "roles": roles},
                            "token_expires_at": token_expires_at}),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Inserts an active account and its first token (only its hash) inside `tx`; no audit event
/// (the caller records `user.created` its way). [`StoreError::Duplicate`] when the name is taken.
pub(crate) async fn insert_user(
    tx: &mut WriteTx,
    tenant: &str,
    name: &UserName,
    roles: &Roles,
    token_hash: &str,
    token_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO users (tenant_id, name, roles, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant.to_owned())
        .bind(name.as_str().to_owned())
        .bind(roles.to_list())
        .bind(ts(now))
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::from_insert(e, || format!("user '{name}'")))?;
    insert_token(
        tx,
        tenant,
        name,
        token_hash,
        "initial",
        token_expires_at,
        now,
    )
    .await
}
