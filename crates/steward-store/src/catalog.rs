//! The standard-change catalog, one JSON document per item.

use crate::audit::{self, AuditRecord};
use crate::{StoreError, TenantStore, WriteTx, read_document, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use steward_core::catalog::CatalogItem;

impl TenantStore<'_> {
    pub async fn catalog_item(&self, name: &str) -> Result<Option<CatalogItem>, StoreError> {
        let row =
            sqlx::query("SELECT document FROM catalog_items WHERE tenant_id = $1 AND name = $2")
                .bind(self.tenant.clone())
                .bind(name.to_owned())
                .fetch_optional(&self.store.pool)
                .await?;
        row.map(|r| read_document(&r, "catalog item")).transpose()
    }

    /// Catalog items named after `after` (from the first when `None`), by name, at most `limit`.
    pub async fn list_catalog(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CatalogItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT document FROM catalog_items WHERE tenant_id = $1 AND name > $2 \
             ORDER BY name LIMIT $3",
        )
        .bind(self.tenant.clone())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| read_document(r, "catalog item"))
            .collect()
    }

    /// Creates or replaces a catalog item, audited with its previous and new content. (Requests
    /// from people go through dual control, [`crate::pending`]; this is the shipped catalog's
    /// seeding.)
    pub async fn put_catalog_item(
        &self,
        actor: &str,
        item: &CatalogItem,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        // Read inside the transaction, so the audit record's `before` is what this write replaced.
        let before = read_item(&mut tx, &self.tenant, &item.name).await?;
        let action = write_item(&mut tx, &self.tenant, item, before.is_some(), now).await?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: action.into(),
            subject_type: "catalog_item",
            subject_id: item.name.clone(),
            outcome: "success",
            correlation_id: None,
            details: json!({ "before": before, "after": item }),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A catalog item as stored, read inside a writing transaction.
pub(crate) async fn read_item(
    tx: &mut WriteTx,
    tenant: &str,
    name: &str,
) -> Result<Option<CatalogItem>, StoreError> {
    sqlx::query("SELECT document FROM catalog_items WHERE tenant_id = $1 AND name = $2")
        .bind(tenant.to_owned())
        .bind(name.to_owned())
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| read_document(&r, "catalog item"))
        .transpose()
}

/// Writes a catalog item; the audit action it is (`catalog.created` / `catalog.updated`).
pub(crate) async fn write_item(
    tx: &mut WriteTx,
    tenant: &str,
    item: &CatalogItem,
    existed: bool,
    now: DateTime<Utc>,
) -> Result<&'static str, StoreError> {
    let document =
        serde_json::to_string(item).map_err(|e| StoreError::corrupt("catalog item", e))?;
    sqlx::query(
        "INSERT INTO catalog_items (tenant_id, name, document, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
    )
    .bind(tenant.to_owned())
    .bind(item.name.clone())
    .bind(document)
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    Ok(if existed {
        "catalog.updated"
    } else {
        "catalog.created"
    })
}
