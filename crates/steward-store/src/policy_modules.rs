//! A tenant's own Rego modules, which its changes are judged by on top of the installation's
//! policy set.
//!
//! The store keeps the source and its SHA-256 per (tenant, name); the server compiles them. A
//! server reads the (name, digest) pairs before each judgement ([`TenantStore::policy_module_digests`])
//! to know whether the policy set it cached for the tenant is still the tenant's, so several
//! servers on one database never judge with a stale set. Every write is an audit event holding
//! the source before and after. The writes come in two layers, as dual control needs: a function
//! that runs inside a caller's transaction (`…_in`) and the method that opens one.

use crate::audit::{self, AuditRecord};
use crate::{StoreError, TenantStore, WriteTx, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;

/// One stored module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyModuleRecord {
    pub name: String,
    pub source: String,
    /// Hex SHA-256 of `source`.
    pub digest: String,
    pub created_by: String,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleWrite {
    Created,
    Replaced,
    /// The same source was stored already: nothing written, nothing audited.
    Unchanged,
}

pub(crate) fn digest(source: &str) -> String {
    steward_audit::hash::sha256(source.as_bytes()).to_hex()
}

fn record_of(row: &sqlx::any::AnyRow) -> Result<PolicyModuleRecord, StoreError> {
    Ok(PolicyModuleRecord {
        name: row.try_get("name")?,
        source: row.try_get("source")?,
        digest: row.try_get("digest")?,
        created_by: row.try_get("created_by")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
    })
}

pub(crate) async fn stored(
    tx: &mut WriteTx,
    tenant: &str,
    name: &str,
) -> Result<Option<PolicyModuleRecord>, StoreError> {
    sqlx::query(
        "SELECT name, source, digest, created_by, created_at FROM tenant_policy_modules \
         WHERE tenant_id = $1 AND name = $2",
    )
    .bind(tenant.to_owned())
    .bind(name.to_owned())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(record_of)
    .transpose()
}

fn event(
    actor: &str,
    action: &str,
    name: &str,
    now: DateTime<Utc>,
    details: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        occurred_at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject_type: "policy_module",
        subject_id: name.to_owned(),
        outcome: "success",
        correlation_id: None,
        details,
    }
}

/// Creates or replaces module `name` of `tenant` in the caller's transaction, audited as
/// `policy.module_created` / `policy.module_replaced` with the source before and after. The
/// caller has checked that the source compiles with the tenant's other modules.
pub(crate) async fn put_policy_module_in(
    tx: &mut WriteTx,
    tenant: &str,
    actor: &str,
    name: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<ModuleWrite, StoreError> {
    let before = stored(tx, tenant, name).await?;
    let digest = digest(source);
    if before.as_ref().is_some_and(|b| b.digest == digest) {
        return Ok(ModuleWrite::Unchanged);
    }
    sqlx::query(
        "INSERT INTO tenant_policy_modules (tenant_id, name, source, digest, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO UPDATE SET \
         source = excluded.source, digest = excluded.digest, created_by = excluded.created_by, \
         created_at = excluded.created_at",
    )
    .bind(tenant.to_owned())
    .bind(name.to_owned())
    .bind(source.to_owned())
    .bind(digest.clone())
    .bind(actor.to_owned())
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    let (action, outcome) = match &before {
        None => ("policy.module_created", ModuleWrite::Created),
        Some(_) => ("policy.module_replaced", ModuleWrite::Replaced),
    };
    let details = json!({
        "before": before.map(|b| json!({"digest": b.digest, "source": b.source})),
        "after": {"digest": digest, "source": source},
    });
    audit::append(tx, tenant, &[event(actor, action, name, now, details)]).await?;
    Ok(outcome)
}

/// Deletes module `name` of `tenant` in the caller's transaction, audited as
/// `policy.module_deleted` with the source it had. `false` when there is no such module.
pub(crate) async fn delete_policy_module_in(
    tx: &mut WriteTx,
    tenant: &str,
    actor: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(before) = stored(tx, tenant, name).await? else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM tenant_policy_modules WHERE tenant_id = $1 AND name = $2")
        .bind(tenant.to_owned())
        .bind(name.to_owned())
        .execute(&mut **tx)
        .await?;
    let details = json!({"before": {"digest": before.digest, "source": before.source}});
    audit::append(
        tx,
        tenant,
        &[event(actor, "policy.module_deleted", name, now, details)],
    )
    .await?;
    Ok(true)
}

impl TenantStore<'_> {
    /// The tenant's modules, by name, with their sources: what its policy set is built from.
    pub async fn policy_modules(&self) -> Result<Vec<PolicyModuleRecord>, StoreError> {
        self.list_policy_modules(None, i64::MAX).await
    }

    /// Modules named after `after` (from the first when `None`), by name, at most `limit`.
    pub async fn list_policy_modules(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PolicyModuleRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, source, digest, created_by, created_at FROM tenant_policy_modules \
             WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(self.tenant.clone())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(record_of).collect()
    }

    /// (name, digest) of each of the tenant's modules, by name: one small read that tells a
    /// cached policy set from a stale one.
    pub async fn policy_module_digests(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, digest FROM tenant_policy_modules WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(self.tenant.clone())
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("digest")?)))
            .collect()
    }

    /// Creates or replaces one of the tenant's modules, in a transaction of its own (see
    /// `put_policy_module_in`).
    pub async fn put_policy_module(
        &self,
        actor: &str,
        name: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ModuleWrite, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let written = put_policy_module_in(&mut tx, &self.tenant, actor, name, source, now).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Deletes one of the tenant's modules, in a transaction of its own (see
    /// `delete_policy_module_in`); `false` when there is none of that name.
    pub async fn delete_policy_module(
        &self,
        actor: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let deleted = delete_policy_module_in(&mut tx, &self.tenant, actor, name, now).await?;
        if deleted {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(deleted)
    }
}
