//! The model inventory's records: one document per model, saved with an optimistic version and
//! an audit event for every change, so "what did the inventory say on date D" is answered from
//! the audit history: an event holds the whole record after the change, except a version's
//! registration, which holds the version (a model with many versions would otherwise write all
//! of them again for each new one); [`TenantStore::model_at`] folds the two.
//!
//! Registrations are written with group commit (the `batch` module): pipelines register versions
//! in bursts, and each needs its own audit event but not its own transaction.

use crate::audit::{self, AuditRecord};
use crate::batch::{Batcher, Job};
use crate::sealing;
use crate::{Backend, PayloadKek, StoreError, TenantStore, begin_write, read_document, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Any, AnyConnection, AnyPool, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use steward_core::inventory::{Model, ModelSummary, ModelVersion};

/// A model as stored, attested text still sealed: registrations read and write models this way,
/// since they never touch attested fields, so those tokens pass through unchanged.
fn from_row(row: &<Any as sqlx::Database>::Row) -> Result<Model, StoreError> {
    let mut model: Model = read_document(row, "model document")?;
    model.version = row.try_get("version")?;
    Ok(model)
}

impl crate::Store {
    /// Models from their rows, the attested text opened (or [`sealing::ERASED`]).
    async fn open_models(&self, rows: &[sqlx::any::AnyRow]) -> Result<Vec<Model>, StoreError> {
        let mut models: Vec<Model> = self.open_documents(rows, "model document").await?;
        for (model, row) in models.iter_mut().zip(rows) {
            model.version = row.try_get("version")?;
        }
        Ok(models)
    }
}

/// `model` at its next version, as JSON.
fn next_document(model: &Model) -> Result<(Model, serde_json::Value), StoreError> {
    let mut saved = model.clone();
    saved.version += 1;
    let document =
        serde_json::to_value(&saved).map_err(|e| StoreError::corrupt("model document", e))?;
    Ok((saved, document))
}

/// Writes `model` as read at `model.version` plus its changes, as `document` (the next version,
/// sealed): inserted when new (version 0), else updated if nobody saved it since
/// ([`StoreError::Conflict`] otherwise). (One statement per model: a multi-row `UPDATE … FROM
/// (VALUES …)` measured four times slower on PostgreSQL in the registration benchmark.)
async fn put_model(
    conn: &mut AnyConnection,
    tenant: &str,
    model: &Model,
    document: String,
) -> Result<(), StoreError> {
    let version = model.version + 1;
    let written = if model.version == 0 {
        sqlx::query(
            "INSERT INTO models (tenant_id, name, status, updated_at, version, document) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(tenant.to_owned())
        .bind(model.name.clone())
        .bind(model.status().to_owned())
        .bind(ts(model.updated_at))
        .bind(version)
        .bind(document)
        .execute(&mut *conn)
        .await?
    } else {
        sqlx::query(
            "UPDATE models SET status = $1, updated_at = $2, version = $3, document = $4 \
             WHERE tenant_id = $5 AND name = $6 AND version = $7",
        )
        .bind(model.status().to_owned())
        .bind(ts(model.updated_at))
        .bind(version)
        .bind(document)
        .bind(tenant.to_owned())
        .bind(model.name.clone())
        .bind(model.version)
        .execute(&mut *conn)
        .await?
    };
    if written.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// Most registrations written in one transaction.
const MAX_REGISTRATIONS: usize = 64;

/// A version to register, queued for the batch writer.
pub(crate) struct Registration {
    tenant: String,
    model: String,
    version: ModelVersion,
    actor: String,
    at: DateTime<Utc>,
}

/// What registering a version did.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The version as the inventory now holds it.
    pub version: ModelVersion,
    /// Whether the model was created by this registration.
    pub created: bool,
    /// False when the same version was registered before with the same content.
    pub changed: bool,
    /// True when the artifact's digest was known already under another version name: the
    /// registration joined that version (whose name `version` carries) instead of adding one.
    pub joined: bool,
}

pub(crate) type Registrations = Batcher<Registration, Registered>;

pub(crate) fn start_registrations(
    write_pool: AnyPool,
    backend: Backend,
    kek: Arc<PayloadKek>,
) -> Registrations {
    Batcher::start(MAX_REGISTRATIONS, move |batch| {
        let pool = write_pool.clone();
        let kek = kek.clone();
        async move { register_batch(&pool, backend, &kek, batch).await }
    })
}

/// Writes a batch; if it fails, each registration alone, so one cannot fail its neighbours.
async fn register_batch(
    pool: &AnyPool,
    backend: Backend,
    kek: &Arc<PayloadKek>,
    batch: Vec<Job<Registration, Registered>>,
) {
    let items: Vec<&Registration> = batch.iter().map(|job| &job.item).collect();
    match register(pool, backend, kek, &items).await {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                job.answer(Ok(result));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(job) = batch.into_iter().next() {
                job.answer(Err(error));
            }
        }
        Err(error) => {
            tracing::debug!(%error, size = batch.len(), "a registration batch failed; writing its registrations one by one");
            for job in batch {
                let result = register(pool, backend, kek, &[&job.item])
                    .await
                    .map(|mut r| r.remove(0));
                job.answer(result);
            }
        }
    }
}

/// Registers `items` in one transaction: each model read once (and locked, on PostgreSQL),
/// every version applied in order, each model written once, one audit event per registration
/// that changed something.
async fn register(
    pool: &AnyPool,
    backend: Backend,
    kek: &Arc<PayloadKek>,
    items: &[&Registration],
) -> Result<Vec<Registered>, StoreError> {
    let mut tx = begin_write(pool, backend, kek).await?;
    // Models in a fixed order, so two writers locking several never wait on each other in a
    // circle; the audit log's head is locked after them.
    let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        groups
            .entry((item.tenant.as_str(), item.model.as_str()))
            .or_default()
            .push(i);
    }
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let mut results: Vec<Option<Registered>> = vec![None; items.len()];
    let mut events: BTreeMap<&str, Vec<AuditRecord>> = BTreeMap::new();
    let mut changed_models: BTreeMap<&str, Vec<Model>> = BTreeMap::new();
    // Each tenant's models in one statement.
    let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (tenant, name) in groups.keys() {
        names.entry(tenant).or_default().push(name);
    }
    let mut read: BTreeMap<(&str, String), Model> = BTreeMap::new();
    for (tenant, names) in names {
        let params: Vec<String> = (2..names.len() + 2).map(|n| format!("${n}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT version, document FROM models WHERE tenant_id = $1 AND name IN ({}) \
             ORDER BY name{lock}",
            params.join(", ")
        )))
        .bind(tenant.to_owned());
        for name in names {
            query = query.bind(name.to_owned());
        }
        for row in query.fetch_all(&mut *tx).await? {
            let model = from_row(&row)?;
            read.insert((tenant, model.name.clone()), model);
        }
    }
    for ((tenant, name), indexes) in groups {
        let read = read.remove(&(tenant, name.to_owned()));
        let mut created = read.is_none();
        let mut model = read.unwrap_or_else(|| Model::new(name, items[indexes[0]].at));
        let mut changed_any = false;
        for i in indexes {
            let item = items[i];
            let before = model
                .registered_as(&item.version)
                .map(|i| model.versions[i].clone());
            let (name, changed) = model.register_version(item.version.clone(), item.at);
            // Unchanged, it answers the version as stored (its "last seen" is not written).
            let version = if changed {
                model.versions.iter().find(|v| v.version == name).cloned()
            } else {
                before
            }
            .ok_or_else(|| StoreError::Corrupt("a registered version went missing".into()))?;
            if changed {
                let (action, details) = if created {
                    (
                        "model.created",
                        json!({"after": model, "changed": ["versions"]}),
                    )
                } else {
                    (
                        "model.version_registered",
                        json!({"version": version, "changed": ["versions"]}),
                    )
                };
                events.entry(tenant).or_default().push(AuditRecord {
                    occurred_at: item.at,
                    actor: item.actor.clone(),
                    action: action.to_owned(),
                    subject_type: "model",
                    subject_id: model.name.clone(),
                    outcome: "success",
                    correlation_id: None,
                    details,
                });
            }
            results[i] = Some(Registered {
                joined: name != item.version.version,
                version,
                created: created && changed,
                changed,
            });
            changed_any |= changed;
            created &= !changed;
        }
        if changed_any {
            changed_models.entry(tenant).or_default().push(model);
        }
    }
    for (tenant, models) in &changed_models {
        for model in models {
            // Read with its tokens (`from_row`), written back with them: registrations add
            // versions, never attested text.
            let (_, document) = next_document(model)?;
            put_model(&mut tx, tenant, model, document.to_string()).await?;
        }
    }
    for (tenant, records) in events {
        audit::append(&mut tx, tenant, &records).await?;
    }
    tx.commit().await?;
    Ok(results.into_iter().flatten().collect())
}

impl TenantStore<'_> {
    pub async fn get_model(&self, name: &str) -> Result<Option<Model>, StoreError> {
        let row =
            sqlx::query("SELECT version, document FROM models WHERE tenant_id = $1 AND name = $2")
                .bind(self.tenant.clone())
                .bind(name.to_owned())
                .fetch_optional(&self.store.pool)
                .await?;
        let rows: Vec<_> = row.into_iter().collect();
        Ok(self.store.open_models(&rows).await?.pop())
    }

    /// Every model's summary, by name: what a list shows, read without building whole records.
    pub async fn list_model_summaries(&self) -> Result<Vec<ModelSummary>, StoreError> {
        let rows = sqlx::query("SELECT document FROM models WHERE tenant_id = $1 ORDER BY name")
            .bind(self.tenant.clone())
            .fetch_all(&self.store.pool)
            .await?;
        self.store.open_documents(&rows, "model document").await
    }

    /// The summaries of models named after `after` (from the first when `None`), by name, at
    /// most `limit`; only those of `status` when given.
    pub async fn model_summaries_after(
        &self,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ModelSummary>, StoreError> {
        let status_clause = if status.is_some() {
            " AND status = $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT document FROM models WHERE tenant_id = $1 AND name > $2{status_clause} \
             ORDER BY name LIMIT $3"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(after.unwrap_or("").to_owned())
            .bind(limit.max(1));
        if let Some(status) = status {
            query = query.bind(status.to_owned());
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        self.store.open_documents(&rows, "model document").await
    }

    /// Every model, by name.
    pub async fn list_models(&self) -> Result<Vec<Model>, StoreError> {
        let rows =
            sqlx::query("SELECT version, document FROM models WHERE tenant_id = $1 ORDER BY name")
                .bind(self.tenant.clone())
                .fetch_all(&self.store.pool)
                .await?;
        self.store.open_models(&rows).await
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
        let mut tx = self.store.begin_write().await?;
        // The record as last written (locked on PostgreSQL), for its tokens: see
        // `TenantStore::save_change`.
        let stored = if model.version == 0 {
            None
        } else {
            let lock = match self.store.backend {
                Backend::Postgres => " FOR UPDATE",
                Backend::Sqlite => "",
            };
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT document FROM models WHERE tenant_id = $1 AND name = $2 AND version = $3{lock}"
            )))
            .bind(self.tenant.clone())
            .bind(model.name.clone())
            .bind(model.version)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Err(StoreError::Conflict);
            };
            Some(read_document::<serde_json::Value>(&row, "model document")?)
        };
        let (_, mut saved) = next_document(model)?;
        let mut subjects = BTreeSet::from([format!("{}:{actor}", self.tenant)]);
        sealing::subjects_of(
            &self.tenant,
            &sealing::model_text(&mut saved),
            &mut subjects,
        );
        tx.subject_keys(&subjects, model.updated_at).await?;
        let places = sealing::model_text(&mut saved);
        sealing::seal_places(&self.tenant, places, tx.keys(), stored.as_ref())?;
        put_model(&mut tx, &self.tenant, model, saved.to_string()).await?;
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

    /// Registers a version of model `name` as stated by `actor` at `at` (creating the model if
    /// new): written with other registrations waiting at the same time, in one transaction, each
    /// with its own audit event; registering the same content again writes nothing, and an
    /// artifact the model holds already (the same digest) joins that version
    /// ([`Model::register_version`]).
    pub async fn register_version(
        &self,
        name: &str,
        version: ModelVersion,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        self.store
            .registrations
            .call(Registration {
                tenant: self.tenant.clone(),
                model: name.to_owned(),
                version,
                actor: actor.to_owned(),
                at,
            })
            .await
    }

    /// The model as the inventory recorded it at `at`, from its audit events up to then: the
    /// last whole record, with the versions registered after it (`None` if it did not exist
    /// yet, or its history was erased).
    pub async fn model_at(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Model>, StoreError> {
        let events = self.audit_events_for("model", name).await?;
        let mut model: Option<Model> = None;
        for e in events.into_iter().filter(|e| e.occurred_at <= at) {
            if let Some(after) = e.details.get("after") {
                model = serde_json::from_value(after.clone()).ok();
            } else if let Some(version) = e.details.get("version") {
                match (model.as_mut(), serde_json::from_value(version.clone())) {
                    (Some(m), Ok(version)) => m.put_version(version, e.occurred_at),
                    _ => model = None,
                }
            } else {
                // Erased (its actor's key is gone) or expired: what the record said from here
                // on is no longer known, until a later event holds the whole record again.
                model = None;
            }
        }
        Ok(model)
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
            .map(|row| read_document(row, "inventory record"))
            .collect()
    }

    /// Records of `kind` keyed after `after` (from the first when `None`), by key, at most
    /// `limit`, each with its key.
    pub async fn records_after<T: serde::de::DeserializeOwned>(
        &self,
        kind: RecordKind,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, document FROM inventory_records WHERE tenant_id = $1 AND kind = $2 \
             AND key > $3 ORDER BY key LIMIT $4",
        )
        .bind(self.tenant.clone())
        .bind(kind.as_str())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("key")?, read_document(row, "inventory record")?)))
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
                out.push(read_document(&row, "inventory record")?);
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
            .map(|row| read_document(row, "scan report"))
            .collect()
    }

    /// Scan reports before `before` — a (`started_at`, `id`) pair as this returns them — newest
    /// first, at most `limit`, each with that pair.
    pub async fn scans_before(
        &self,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<((String, String), serde_json::Value)>, StoreError> {
        let after = if before.is_some() {
            " AND (started_at < $3 OR (started_at = $3 AND id < $4))"
        } else {
            ""
        };
        let sql = format!(
            "SELECT started_at, id, document FROM inventory_scans WHERE tenant_id = $1{after} \
             ORDER BY started_at DESC, id DESC LIMIT $2"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(limit.max(1));
        if let Some((started_at, id)) = before {
            query = query.bind(started_at.to_owned()).bind(id.to_owned());
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        rows.iter()
            .map(|row| {
                let key = (row.try_get("started_at")?, row.try_get("id")?);
                Ok((key, read_document(row, "scan report")?))
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
        row.map(|row| read_document(&row, "scan report"))
            .transpose()
    }
}
