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
    /// event `action` by `actor` holding the record after the change — or none when `action` is
    /// `None` (a scan that only saw the model again moves "last seen", which is not a change to
    /// the record worth an event holding all of it). [`StoreError::Conflict`] when another writer
    /// saved it first (or created the same name).
    pub async fn save_model(
        &self,
        model: &Model,
        action: Option<&str>,
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
        if let Some(action) = action {
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
        }
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

/// The kinds of inventory record besides models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Dataset,
    Run,
    Deployment,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Dataset => "dataset",
            RecordKind::Run => "run",
            RecordKind::Deployment => "deployment",
        }
    }
}

/// One record to write: created or changed ones carry the audit `action`; ones only seen again
/// carry `None` and just move "last seen".
#[derive(Debug, Clone)]
pub struct RecordWrite {
    pub kind: RecordKind,
    pub key: String,
    pub found_by: String,
    pub last_seen: DateTime<Utc>,
    pub document: serde_json::Value,
    /// `deployment.discovered`, `run.updated`, `deployment.gone`, …
    pub action: Option<String>,
}

impl TenantStore<'_> {
    /// Every record of `kind`, by key.
    pub async fn records<T: serde::de::DeserializeOwned>(
        &self,
        kind: RecordKind,
    ) -> Result<Vec<T>, StoreError> {
        let rows = sqlx::query(
            "SELECT document FROM inventory_records WHERE tenant_id = $1 AND kind = $2 ORDER BY key",
        )
        .bind(self.tenant.clone())
        .bind(kind.as_str())
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let doc: String = row.try_get("document")?;
                serde_json::from_str(&doc).map_err(|e| StoreError::corrupt("inventory record", e))
            })
            .collect()
    }

    /// The records of `kind` with these keys (those that exist).
    pub async fn records_by_key<T: serde::de::DeserializeOwned>(
        &self,
        kind: RecordKind,
        keys: &[String],
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query(
                "SELECT document FROM inventory_records WHERE tenant_id = $1 AND kind = $2 AND key = $3",
            )
            .bind(self.tenant.clone())
            .bind(kind.as_str())
            .bind(key.clone())
            .fetch_optional(&self.store.pool)
            .await?;
            if let Some(row) = row {
                let doc: String = row.try_get("document")?;
                out.push(
                    serde_json::from_str(&doc)
                        .map_err(|e| StoreError::corrupt("inventory record", e))?,
                );
            }
        }
        Ok(out)
    }

    /// Writes records in one transaction, with an audit event (holding the record) for each
    /// that carries an action.
    pub async fn write_records(
        &self,
        writes: &[RecordWrite],
        actor: &str,
    ) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin_write().await?;
        let mut events = Vec::new();
        for w in writes {
            sqlx::query(
                "INSERT INTO inventory_records (tenant_id, kind, key, found_by, last_seen, document) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, kind, key) DO UPDATE \
                 SET found_by = excluded.found_by, last_seen = excluded.last_seen, document = excluded.document",
            )
            .bind(self.tenant.clone())
            .bind(w.kind.as_str())
            .bind(w.key.clone())
            .bind(w.found_by.clone())
            .bind(ts(w.last_seen))
            .bind(w.document.to_string())
            .execute(&mut *tx)
            .await?;
            if let Some(action) = &w.action {
                events.push(AuditRecord {
                    occurred_at: w.last_seen,
                    actor: actor.to_owned(),
                    action: action.clone(),
                    subject_type: w.kind.as_str(),
                    subject_id: w.key.clone(),
                    outcome: "success",
                    correlation_id: None,
                    details: json!({"after": w.document}),
                });
            }
        }
        if !events.is_empty() {
            audit::append(&mut tx, &self.tenant, &events).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keeps a scan's report (`report["id"]`, `report["started_at"]`) with an audit event
    /// `inventory.scanned` holding its summary.
    pub async fn insert_scan(
        &self,
        id: &str,
        started_at: DateTime<Utc>,
        report: &serde_json::Value,
        summary: serde_json::Value,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO inventory_scans (tenant_id, id, started_at, document) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.tenant.clone())
        .bind(id.to_owned())
        .bind(ts(started_at))
        .bind(report.to_string())
        .execute(&mut *tx)
        .await?;
        let record = AuditRecord {
            occurred_at: started_at,
            actor: actor.to_owned(),
            action: "inventory.scanned".to_owned(),
            subject_type: "inventory_scan",
            subject_id: id.to_owned(),
            outcome: "success",
            correlation_id: None,
            details: summary,
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Scan reports, newest first.
    pub async fn scans(&self, limit: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT document FROM inventory_scans WHERE tenant_id = $1 \
             ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(self.tenant.clone())
        .bind(limit)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let doc: String = row.try_get("document")?;
                serde_json::from_str(&doc).map_err(|e| StoreError::corrupt("scan report", e))
            })
            .collect()
    }

    pub async fn scan(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let row =
            sqlx::query("SELECT document FROM inventory_scans WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant.clone())
                .bind(id.to_owned())
                .fetch_optional(&self.store.pool)
                .await?;
        row.map(|row| {
            let doc: String = row.try_get("document")?;
            serde_json::from_str(&doc).map_err(|e| StoreError::corrupt("scan report", e))
        })
        .transpose()
    }
}
