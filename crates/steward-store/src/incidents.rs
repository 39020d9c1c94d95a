//! Incidents: the document per incident with its state, severity and dates as columns; the
//! signal keys that make a resent alert find its incident; the links to suspect changes; detector
//! rules and containment playbooks. Every write carries the incident's audit events in the same
//! transaction, like changes.

use crate::audit::{self, AuditRecord};
use crate::sealing::{self, Requesters};
use crate::{Backend, StoreError, TenantStore, WriteTx, read_document, ts};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeSet;
use steward_core::ChangeId;
use steward_core::TargetName;
use steward_core::incident::{
    Incident, IncidentEvent, IncidentId, IncidentState, STRONG_SUSPECT, Severity,
};

/// An incident's document and its audit events, with the text people wrote sealed under their
/// keys: the places of [`sealing::incident_text`], and inside the events' payloads (encrypted
/// under the actor's key) what others wrote — a hand-reported summary the system quotes, the
/// suspects' titles.
struct Sealed {
    document: String,
    records: Vec<AuditRecord>,
}

impl TenantStore<'_> {
    /// Each suspect change's requester (whose title the suspects quote), in one query.
    async fn suspect_requesters(
        &self,
        tx: &mut WriteTx,
        incident: &Value,
    ) -> Result<Requesters, StoreError> {
        let ids = sealing::suspect_changes(incident);
        let numbers: Vec<i64> = ids
            .iter()
            .filter_map(|id| steward_core::ChangeId::parse(id))
            .map(|id| id.number() as i64)
            .collect();
        let mut out = Requesters::new();
        if numbers.is_empty() {
            return Ok(out);
        }
        let params: Vec<String> = (2..numbers.len() + 2).map(|n| format!("${n}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT number, requester FROM changes WHERE tenant_id = $1 AND number IN ({})",
            params.join(", ")
        )))
        .bind(self.tenant.clone());
        for n in numbers {
            query = query.bind(n);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let number: i64 = row.try_get("number")?;
            out.insert(format!("CHG-{number}"), row.try_get("requester")?);
        }
        Ok(out)
    }

    /// Fetches the keys an incident's save needs (in one statement, before the log head) and
    /// seals its document and events; `stored` is the document as last written.
    async fn seal_incident(
        &self,
        tx: &mut WriteTx,
        incident: &Incident,
        events: &[IncidentEvent],
        stored: Option<&Value>,
    ) -> Result<Sealed, StoreError> {
        let mut doc = serde_json::to_value(incident)
            .map_err(|e| StoreError::corrupt("incident document", e))?;
        let requesters = self.suspect_requesters(tx, &doc).await?;
        let reporter = incident
            .signals
            .iter()
            .find_map(|s| {
                s.labels
                    .get("reported_by")
                    .filter(|_| s.summary == incident.title)
            })
            .cloned();
        let mut records = records(incident, events);
        let mut subjects = BTreeSet::new();
        sealing::subjects_of(
            &self.tenant,
            &sealing::incident_text(&mut doc, &requesters),
            &mut subjects,
        );
        audit::subjects(&self.tenant, &records, &mut subjects);
        for record in records.iter_mut() {
            let places =
                sealing::incident_event_text(&mut record.details, &requesters, reporter.as_deref());
            sealing::subjects_of(&self.tenant, &places, &mut subjects);
        }
        tx.subject_keys(&subjects, incident.updated_at).await?;
        let places = sealing::incident_text(&mut doc, &requesters);
        sealing::seal_places(&self.tenant, places, tx.keys(), stored)?;
        for (record, event) in records.iter_mut().zip(events) {
            // The system's own events quote a hand-reported summary; people's are their own.
            let quoting = (event.actor.as_str() == "steward")
                .then_some(reporter.as_deref())
                .flatten();
            let places = sealing::incident_event_text(&mut record.details, &requesters, quoting);
            sealing::seal_places(&self.tenant, places, tx.keys(), None)?;
        }
        Ok(Sealed {
            document: doc.to_string(),
            records,
        })
    }
}

fn records(incident: &Incident, events: &[IncidentEvent]) -> Vec<AuditRecord> {
    events
        .iter()
        .map(|e| AuditRecord {
            occurred_at: incident.updated_at,
            actor: e.actor.to_string(),
            action: e.action.clone(),
            subject_type: "incident",
            subject_id: incident.id.to_string(),
            outcome: "success",
            correlation_id: None,
            details: json!({
                "after": {"state": incident.state, "severity": incident.severity},
                "comment": e.comment,
                "details": e.details,
            }),
        })
        .collect()
}

impl crate::Store {
    /// Incidents from their rows, the text people wrote opened (or [`sealing::ERASED`]).
    async fn open_incidents(
        &self,
        rows: &[sqlx::any::AnyRow],
    ) -> Result<Vec<Incident>, StoreError> {
        let mut incidents: Vec<Incident> = self.open_documents(rows, "incident document").await?;
        for (incident, row) in incidents.iter_mut().zip(rows) {
            incident.version = row.try_get("version")?;
        }
        Ok(incidents)
    }
}

/// Which incidents to list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only triggered, acknowledged or contained incidents.
    pub open_only: bool,
    pub state: Option<IncidentState>,
    pub severity: Option<Severity>,
    /// Only incidents that name this target among the affected ones.
    pub target: Option<TargetName>,
    pub opened_since: Option<DateTime<Utc>>,
    pub limit: i64,
}

impl TenantStore<'_> {
    /// The incident a signal (by source and key) already belongs to.
    pub async fn incident_for_signal(
        &self,
        source: &str,
        key: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        let row = sqlx::query(
            "SELECT number FROM incident_signals WHERE tenant_id = $1 AND source = $2 AND signal_key = $3",
        )
        .bind(self.tenant.clone())
        .bind(source.to_owned())
        .bind(key.to_owned())
        .fetch_optional(&self.store.pool)
        .await?;
        row.map(|r| {
            Ok(IncidentId::from_number(
                r.try_get::<i64, _>("number")? as u64
            ))
        })
        .transpose()
    }

    pub async fn get_incident(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query(
            "SELECT version, document FROM incidents WHERE tenant_id = $1 AND number = $2",
        )
        .bind(self.tenant.clone())
        .bind(id.number() as i64)
        .fetch_optional(&self.store.pool)
        .await?;
        let rows: Vec<_> = row.into_iter().collect();
        Ok(self.store.open_incidents(&rows).await?.pop())
    }

    /// Incidents, newest first.
    pub async fn list_incidents(
        &self,
        filter: &IncidentFilter,
    ) -> Result<Vec<Incident>, StoreError> {
        self.list_incidents_before(filter, None).await
    }

    /// Incidents numbered below `before` (all when `None`), newest first: a keyset page.
    pub async fn list_incidents_before(
        &self,
        filter: &IncidentFilter,
        before: Option<u64>,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut sql = String::from("SELECT version, document FROM incidents WHERE tenant_id = $1");
        if filter.open_only {
            sql.push_str(" AND state IN ('triggered', 'acknowledged', 'contained')");
        }
        let mut binds: Vec<String> = vec![self.tenant.clone()];
        let mut push = |clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(state) = filter.state {
            push(" AND state = ?", state.as_str().to_owned());
        }
        if let Some(severity) = filter.severity {
            push(" AND severity = ?", severity.as_str().to_owned());
        }
        if let Some(target) = &filter.target {
            // The affected targets live in the document only (they are names, never sealed).
            let clause = match self.store.backend {
                Backend::Sqlite => {
                    " AND EXISTS (SELECT 1 FROM json_each(document, '$.targets') AS t WHERE t.value = ?)"
                }
                Backend::Postgres => {
                    " AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(CAST(document AS jsonb) -> 'targets') AS t(name) WHERE t.name = ?)"
                }
            };
            push(clause, target.as_str().to_owned());
        }
        if let Some(since) = filter.opened_since {
            push(" AND opened_at >= ?", ts(since));
        }
        if let Some(before) = before {
            sql.push_str(&format!(" AND number < {}", before.min(i64::MAX as u64)));
        }
        sql.push_str(&format!(
            " ORDER BY number DESC LIMIT {}",
            filter.limit.clamp(1, 5000)
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        self.store.open_incidents(&rows).await
    }

    /// The incidents that name `change` as a suspect: (incident, score, strong).
    pub async fn incidents_linked_to(
        &self,
        change: &ChangeId,
    ) -> Result<Vec<(IncidentId, f64, bool)>, StoreError> {
        let rows = sqlx::query(
            "SELECT number, score, strong FROM incident_links WHERE tenant_id = $1 AND change_number = $2 \
             ORDER BY number",
        )
        .bind(self.tenant.clone())
        .bind(change.number() as i64)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    IncidentId::from_number(r.try_get::<i64, _>("number")? as u64),
                    r.try_get("score")?,
                    r.try_get::<i64, _>("strong")? != 0,
                ))
            })
            .collect()
    }

    /// Numbers and stores a new incident with its events.
    pub async fn insert_incident(
        &self,
        mut incident: Incident,
        events: &[IncidentEvent],
    ) -> Result<Incident, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let number: i64 = sqlx::query(
            "INSERT INTO counters (tenant_id, name, value) VALUES ($1, 'incident', 1) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + 1 RETURNING value",
        )
        .bind(self.tenant.clone())
        .fetch_one(&mut *tx)
        .await?
        .try_get("value")?;
        incident.id = IncidentId::from_number(number as u64);
        incident.version = 1;
        let sealed = self.seal_incident(&mut tx, &incident, events, None).await?;
        sqlx::query(
            "INSERT INTO incidents (tenant_id, number, state, severity, opened_at, updated_at, version, document) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(self.tenant.clone())
        .bind(number)
        .bind(incident.state.as_str())
        .bind(incident.severity.as_str())
        .bind(ts(incident.opened_at))
        .bind(ts(incident.updated_at))
        .bind(incident.version)
        .bind(sealed.document)
        .execute(&mut *tx)
        .await?;
        self.index(&mut tx, &incident).await?;
        audit::append(&mut tx, &self.tenant, &sealed.records).await?;
        tx.commit().await?;
        Ok(incident)
    }

    /// Saves an incident read at `incident.version`; [`StoreError::Conflict`] if another writer
    /// saved it since.
    pub async fn save_incident(
        &self,
        incident: &Incident,
        events: &[IncidentEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        // The document as last written (locked on PostgreSQL), for its tokens: see
        // `TenantStore::save_change`.
        let lock = match self.store.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT document FROM incidents WHERE tenant_id = $1 AND number = $2 AND version = $3{lock}"
        )))
        .bind(self.tenant.clone())
        .bind(incident.id.number() as i64)
        .bind(incident.version)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(stored) = stored else {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        };
        let stored: Value = read_document(&stored, "incident document")?;
        let sealed = self
            .seal_incident(&mut tx, incident, events, Some(&stored))
            .await?;
        let updated = sqlx::query(
            "UPDATE incidents SET state = $1, severity = $2, updated_at = $3, version = $4, document = $5 \
             WHERE tenant_id = $6 AND number = $7 AND version = $8",
        )
        .bind(incident.state.as_str())
        .bind(incident.severity.as_str())
        .bind(ts(incident.updated_at))
        .bind(incident.version + 1)
        .bind(sealed.document)
        .bind(self.tenant.clone())
        .bind(incident.id.number() as i64)
        .bind(incident.version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        }
        self.index(&mut tx, incident).await?;
        audit::append(&mut tx, &self.tenant, &sealed.records).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Keeps the signal keys and suspect links in step with the document.
    async fn index(&self, conn: &mut AnyConnection, incident: &Incident) -> Result<(), StoreError> {
        let number = incident.id.number() as i64;
        for signal in &incident.signals {
            sqlx::query(
                "INSERT INTO incident_signals (tenant_id, source, signal_key, number) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, source, signal_key) DO NOTHING",
            )
            .bind(self.tenant.clone())
            .bind(signal.source.clone())
            .bind(signal.key.clone())
            .bind(number)
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query("DELETE FROM incident_links WHERE tenant_id = $1 AND number = $2")
            .bind(self.tenant.clone())
            .bind(number)
            .execute(&mut *conn)
            .await?;
        for suspect in &incident.suspects {
            sqlx::query(
                "INSERT INTO incident_links (tenant_id, number, change_number, score, strong) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(self.tenant.clone())
            .bind(number)
            .bind(suspect.change.number() as i64)
            .bind(suspect.score)
            .bind(i64::from(suspect.score >= STRONG_SUSPECT))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Stores a named document (a detector rule or a playbook), audited.
    pub async fn put_named(
        &self,
        kind: NamedKind,
        name: &str,
        document: &Value,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        // A problem record's title and description are its writer's.
        let mut stored = document.clone();
        if kind == NamedKind::Problem {
            let subjects = BTreeSet::from([format!("{}:{actor}", self.tenant)]);
            tx.subject_keys(&subjects, at).await?;
            let places = sealing::top_level_text(&mut stored, actor, &["title", "description"]);
            sealing::seal_places(&self.tenant, places, tx.keys(), None)?;
        }
        let sql = format!(
            "INSERT INTO {} (tenant_id, name, document) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET document = excluded.document",
            kind.table()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(name.to_owned())
            .bind(stored.to_string())
            .execute(&mut *tx)
            .await?;
        let record = AuditRecord {
            occurred_at: at,
            actor: actor.to_owned(),
            action: format!("{}.saved", kind.subject()),
            subject_type: kind.subject(),
            subject_id: name.to_owned(),
            outcome: "success",
            correlation_id: None,
            details: json!({"after": document}),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One named document of `kind`.
    pub async fn named_one(
        &self,
        kind: NamedKind,
        name: &str,
    ) -> Result<Option<Value>, StoreError> {
        let sql = format!(
            "SELECT document FROM {} WHERE tenant_id = $1 AND name = $2",
            kind.table()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(name.to_owned())
            .fetch_optional(&self.store.pool)
            .await?;
        let rows: Vec<_> = row.into_iter().collect();
        Ok(self.store.open_documents(&rows, kind.table()).await?.pop())
    }

    /// Every named document of `kind`, by name.
    pub async fn named(&self, kind: NamedKind) -> Result<Vec<(String, Value)>, StoreError> {
        self.named_after(kind, None, i64::MAX).await
    }

    /// Named documents of `kind` named after `after` (from the first when `None`), by name, at
    /// most `limit`.
    pub async fn named_after(
        &self,
        kind: NamedKind,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let sql = format!(
            "SELECT name, document FROM {} WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3",
            kind.table()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(after.unwrap_or("").to_owned())
            .bind(limit.max(1))
            .fetch_all(&self.store.pool)
            .await?;
        let documents: Vec<Value> = self.store.open_documents(&rows, kind.table()).await?;
        rows.iter()
            .zip(documents)
            .map(|(r, document)| Ok((r.try_get("name")?, document)))
            .collect()
    }
}

/// The named documents incidents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedKind {
    DetectorRule,
    Playbook,
    /// A problem record: recurring incidents and their permanent fix.
    Problem,
    /// The inventory's metadata templates (one document, `default`).
    InventoryTemplates,
}

impl NamedKind {
    fn table(self) -> &'static str {
        match self {
            NamedKind::DetectorRule => "detector_rules",
            NamedKind::Playbook => "playbooks",
            NamedKind::Problem => "problems",
            NamedKind::InventoryTemplates => "inventory_templates",
        }
    }
    fn subject(self) -> &'static str {
        match self {
            NamedKind::DetectorRule => "detector_rule",
            NamedKind::Playbook => "playbook",
            NamedKind::Problem => "problem",
            NamedKind::InventoryTemplates => "inventory_templates",
        }
    }
}
