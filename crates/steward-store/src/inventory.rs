//! The model inventory's records: one document per model, saved with an optimistic version and
//! an audit event that carries the whole record after the change, so "what did the inventory say
//! on date D" is answered from the audit history.

use crate::audit::{self, AuditRecord};
use crate::{StoreError, TenantStore, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Any, Row};
use steward_core::inventory::Model;

fn from_row(row: &<Any as sqlx::Database>::Row) -> Result<Model, StoreError> {
    let doc: String = row.try_get("document")?;
    let mut model: Model =
        serde_json::from_str(&doc).map_err(|e| StoreError::corrupt("model document", e))?;
    model.version = row.try_get("version")?;
    Ok(model)
}

impl TenantStore<'_> {
    pub async fn get_model(&self, name: &str) -> Result<Option<Model>, StoreError> {
        let row =
            sqlx::query("SELECT version, document FROM models WHERE tenant_id = $1 AND name = $2")
                .bind(self.tenant.clone())
                .bind(name.to_owned())
                .fetch_optional(&self.store.pool)
                .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every model, by name.
    pub async fn list_models(&self) -> Result<Vec<Model>, StoreError> {
        let rows =
            sqlx::query("SELECT version, document FROM models WHERE tenant_id = $1 ORDER BY name")
                .bind(self.tenant.clone())
                .fetch_all(&self.store.pool)
                .await?;
        rows.iter().map(from_row).collect()
    }

    /// Creates (`model.version == 0`) or saves a model read at `model.version`, with one audit
    /// event `action` by `actor` holding the record after the change. [`StoreError::Conflict`]
    /// when another writer saved it first (or created the same name).
    pub async fn save_model(
        &self,
        model: &Model,
        action: &str,
        actor: &str,
        changed: &[String],
    ) -> Result<(), StoreError> {
        let mut saved = model.clone();
        saved.version += 1;
        let document =
            serde_json::to_string(&saved).map_err(|e| StoreError::corrupt("model document", e))?;
        let mut tx = self.store.begin_write().await?;
        let written = if model.version == 0 {
            sqlx::query(
                "INSERT INTO models (tenant_id, name, status, updated_at, version, document) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO NOTHING",
            )
            .bind(self.tenant.clone())
            .bind(model.name.clone())
            .bind(model.status().to_owned())
            .bind(ts(model.updated_at))
            .bind(saved.version)
            .bind(document)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "UPDATE models SET status = $1, updated_at = $2, version = $3, document = $4 \
                 WHERE tenant_id = $5 AND name = $6 AND version = $7",
            )
            .bind(model.status().to_owned())
            .bind(ts(model.updated_at))
            .bind(saved.version)
            .bind(document)
            .bind(self.tenant.clone())
            .bind(model.name.clone())
            .bind(model.version)
            .execute(&mut *tx)
            .await?
        };
        if written.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        }
        let record = AuditRecord {
            occurred_at: model.updated_at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject_type: "model",
            subject_id: model.name.clone(),
            outcome: "success",
            correlation_id: None,
            details: json!({"after": saved, "changed": changed}),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The model as the inventory recorded it at `at`: the record in its last audit event at or
    /// before then (`None` if it did not exist yet, or its history was erased).
    pub async fn model_at(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Model>, StoreError> {
        let events = self.audit_events_for("model", name).await?;
        Ok(events
            .into_iter()
            .rev()
            .find(|e| e.occurred_at <= at)
            .and_then(|e| serde_json::from_value(e.details.get("after")?.clone()).ok()))
    }
}
