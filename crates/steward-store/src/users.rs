//! Accounts and API tokens. Tokens are stored only as SHA-256 hashes (see ARCHITECTURE.md for why
//! a fast hash is right for high-entropy random tokens).

use crate::audit::{self, AuditRecord};
use crate::{Store, StoreError, TenantStore, ts};
use chrono::Utc;
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
    /// Finds the account a token hash belongs to, in whichever tenant it lives.
    pub async fn principal_for_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "SELECT u.tenant_id, u.name, u.roles FROM api_tokens t \
             JOIN users u ON u.tenant_id = t.tenant_id AND u.name = t.user_name \
             WHERE t.token_hash = $1",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let tenant: String = row.try_get("tenant_id")?;
            let name: String = row.try_get("name")?;
            Ok(Principal {
                tenant: TenantId::parse(&tenant).map_err(|e| StoreError::corrupt("tenant", e))?,
                name: UserName::parse(&name).map_err(|e| StoreError::corrupt("user name", e))?,
                roles: parse_roles(&row.try_get::<String, _>("roles")?)?,
            })
        })
        .transpose()
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
    ) -> Result<Vec<(UserName, Roles)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, roles FROM users WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(self.tenant.clone())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("name")?;
                Ok((
                    UserName::parse(&name).map_err(|e| StoreError::corrupt("user name", e))?,
                    parse_roles(&r.try_get::<String, _>("roles")?)?,
                ))
            })
            .collect()
    }

    /// Creates an account with its first API token, audited as `user.created`.
    pub async fn create_user(
        &self,
        actor: &str,
        name: &UserName,
        roles: &Roles,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (tenant_id, name, roles, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .bind(roles.to_list())
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_insert(e, || format!("user '{name}'")))?;
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, tenant_id, user_name, label, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash.to_owned())
        .bind(self.tenant.clone())
        .bind(name.as_str().to_owned())
        .bind("initial")
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: "user.created".into(),
            subject_type: "user",
            subject_id: name.to_string(),
            outcome: "success",
            correlation_id: None,
            details: json!({"after": {"name": name, "roles": roles}}),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(())
    }
}
