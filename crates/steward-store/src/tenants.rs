//! Tenants (business units): creating one with its first admin and its catalog, and listing them.
//!
//! Tenants are the one installation-wide record besides the audit log: a tenant's own records
//! live behind [`TenantStore`](crate::TenantStore), but the list of tenants is reached only
//! through the installation's permit to manage tenants. Creating a tenant is one transaction:
//! the tenant row, its first admin account and token, the shipped catalog, and the audit events —
//! `tenant.created` in the installation tenant under the installation admin who asked, and the
//! new tenant's own `user.created` and `catalog.created` events under the server's name, each
//! correlated with the tenant (`tenant:<id>`), so each tenant's log says how it began.

use crate::audit::{self, AuditRecord};
use crate::{Store, StoreError, WriteTx, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeSet;
use steward_core::catalog::CatalogItem;
use steward_core::{Roles, TenantId, UserName};

/// A tenant as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub created_at: DateTime<Utc>,
    /// The installation admin who created it; `None` for the installation tenant itself.
    pub created_by: Option<String>,
}

/// What creating a tenant writes.
#[derive(Debug, Clone, Copy)]
pub struct NewTenant<'a> {
    pub id: &'a TenantId,
    /// The installation admin asking (an account of the installation tenant).
    pub created_by: &'a UserName,
    /// The tenant's first admin account, its roles and the hash of its first token.
    pub admin: &'a UserName,
    pub admin_roles: &'a Roles,
    pub token_hash: &'a str,
    /// The catalog the tenant starts with (the shipped one).
    pub catalog: &'a [CatalogItem],
    /// Whom the new tenant's own events name as their actor: the server, acting on the
    /// installation admin's request.
    pub tenant_actor: &'a str,
    pub now: DateTime<Utc>,
}

fn record_of(row: &sqlx::any::AnyRow) -> Result<TenantRecord, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(TenantRecord {
        id: TenantId::parse(&id).map_err(|e| StoreError::corrupt("tenant", e))?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        created_by: row.try_get("created_by")?,
    })
}

/// Creates the tenant in the caller's transaction (see [`Store::create_tenant`]).
/// [`StoreError::Duplicate`] when the tenant exists.
pub(crate) async fn create_tenant_in(
    tx: &mut WriteTx,
    new: &NewTenant<'_>,
) -> Result<(), StoreError> {
    let tenant = new.id.as_str().to_owned();
    let installation = TenantId::default_tenant().as_str().to_owned();
    sqlx::query("INSERT INTO tenants (id, created_at, created_by) VALUES ($1, $2, $3)")
        .bind(tenant.clone())
        .bind(ts(new.now))
        .bind(new.created_by.as_str().to_owned())
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::from_insert(e, || format!("tenant '{tenant}'")))?;
    sqlx::query("INSERT INTO users (tenant_id, name, roles, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant.clone())
        .bind(new.admin.as_str().to_owned())
        .bind(new.admin_roles.to_list())
        .bind(ts(new.now))
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, tenant_id, user_name, label, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new.token_hash.to_owned())
    .bind(tenant.clone())
    .bind(new.admin.as_str().to_owned())
    .bind("initial")
    .bind(ts(new.now))
    .execute(&mut **tx)
    .await?;
    let correlation = Some(format!("tenant:{tenant}"));
    let event =
        |actor: &str, action: &str, subject_type, subject_id: String, details| AuditRecord {
            occurred_at: new.now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject_type,
            subject_id,
            outcome: "success",
            correlation_id: correlation.clone(),
            details,
        };
    let mut own = vec![event(
        new.tenant_actor,
        "user.created",
        "user",
        new.admin.to_string(),
        json!({"after": {"name": new.admin, "roles": new.admin_roles},
               "requested_by": format!("{installation}:{}", new.created_by)}),
    )];
    for item in new.catalog {
        let action = crate::catalog::write_item(tx, &tenant, item, false, new.now).await?;
        own.push(event(
            new.tenant_actor,
            action,
            "catalog_item",
            item.name.clone(),
            json!({"before": null, "after": item}),
        ));
    }
    let created = [event(
        new.created_by.as_str(),
        "tenant.created",
        "tenant",
        tenant.clone(),
        json!({"tenant": tenant, "admin": new.admin,
               "catalog": new.catalog.iter().map(|i| &i.name).collect::<Vec<_>>()}),
    )];
    // Both tenants' payload keys first, then the head (the lock order), then both appends.
    let mut subjects = BTreeSet::new();
    audit::subjects(&installation, &created, &mut subjects);
    audit::subjects(&tenant, &own, &mut subjects);
    tx.subject_keys(&subjects, new.now).await?;
    audit::append(tx, &installation, &created).await?;
    audit::append(tx, &tenant, &own).await?;
    Ok(())
}

impl Store {
    /// Creates a tenant with its first admin and catalog, audited, in one transaction.
    /// [`StoreError::Duplicate`] when a tenant of that name exists.
    pub async fn create_tenant(&self, new: &NewTenant<'_>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        create_tenant_in(&mut tx, new).await?;
        tx.commit().await
    }

    /// Tenants named after `after` (from the first when `None`), by name, at most `limit`.
    pub async fn list_tenants(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, created_by FROM tenants WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_of).collect()
    }

    /// One tenant, if it exists.
    pub async fn tenant_record(&self, id: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
        let row = sqlx::query("SELECT id, created_at, created_by FROM tenants WHERE id = $1")
            .bind(id.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_of).transpose()
    }
}
