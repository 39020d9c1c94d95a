//! The standard-change catalog, one JSON document per item.

use crate::audit::{self, AuditRecord};
use crate::{StoreError, TenantStore, read_document, ts};
use chrono::Utc;
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

    /// Creates or replaces a catalog item, audited with its previous and new content.
    pub async fn put_catalog_item(
        &self,
        actor: &str,
        item: &CatalogItem,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let document =
            serde_json::to_string(item).map_err(|e| StoreError::corrupt("catalog item", e))?;
        let mut tx = self.store.begin_write().await?;
        // Read inside the transaction, so the audit record's `before` is what this write replaced.
        let before: Option<CatalogItem> =
            sqlx::query("SELECT document FROM catalog_items WHERE tenant_id = $1 AND name = $2")
                .bind(self.tenant.clone())
                .bind(item.name.clone())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| read_document(&r, "catalog item"))
                .transpose()?;
        sqlx::query(
            "INSERT INTO catalog_items (tenant_id, name, document, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(self.tenant.clone())
        .bind(item.name.clone())
        .bind(document)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: if before.is_some() {
                "catalog.updated"
            } else {
                "catalog.created"
            }
            .into(),
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
