//! Incidents: the document per incident with its state, severity and dates as columns; the
//! signal keys that make a resent alert find its incident; the links to suspect changes; detector
//! rules and containment playbooks. Every write carries the incident's audit events in the same
//! transaction, like changes.

use crate::audit::{self, AuditRecord};
use crate::{StoreError, TenantStore, read_document, ts};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Any, AnyConnection, Row};
use steward_core::ChangeId;
use steward_core::incident::{Incident, IncidentEvent, IncidentId, STRONG_SUSPECT};

fn from_row(row: &<Any as sqlx::Database>::Row) -> Result<Incident, StoreError> {
    let mut incident: Incident = read_document(row, "incident document")?;
    incident.version = row.try_get("version")?;
    Ok(incident)
}

fn document(incident: &Incident) -> Result<String, StoreError> {
    serde_json::to_string(incident).map_err(|e| StoreError::corrupt("incident document", e))
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

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub open_only: bool,
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
        row.as_ref().map(from_row).transpose()
    }

    /// Incidents, newest first.
    pub async fn list_incidents(
        &self,
        filter: &IncidentFilter,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut sql = String::from("SELECT version, document FROM incidents WHERE tenant_id = $1");
        if filter.open_only {
            sql.push_str(" AND state IN ('triggered', 'acknowledged', 'contained')");
        }
        let since = filter.opened_since.map(ts);
        if since.is_some() {
            sql.push_str(" AND opened_at >= $2");
        }
        sql.push_str(&format!(
            " ORDER BY number DESC LIMIT {}",
            filter.limit.clamp(1, 5000)
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(self.tenant.clone());
        if let Some(since) = since {
            query = query.bind(since);
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        rows.iter().map(from_row).collect()
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
        .bind(document(&incident)?)
        .execute(&mut *tx)
        .await?;
        self.index(&mut tx, &incident).await?;
        audit::append(&mut tx, &self.tenant, &records(&incident, events)).await?;
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
        let updated = sqlx::query(
            "UPDATE incidents SET state = $1, severity = $2, updated_at = $3, version = $4, document = $5 \
             WHERE tenant_id = $6 AND number = $7 AND version = $8",
        )
        .bind(incident.state.as_str())
        .bind(incident.severity.as_str())
        .bind(ts(incident.updated_at))
        .bind(incident.version + 1)
        .bind(document(incident)?)
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
        audit::append(&mut tx, &self.tenant, &records(incident, events)).await?;
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
        let sql = format!(
            "INSERT INTO {} (tenant_id, name, document) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET document = excluded.document",
            kind.table()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(name.to_owned())
            .bind(document.to_string())
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
        row.map(|r| read_document(&r, kind.table())).transpose()
    }

    /// Every named document of `kind`, by name.
    pub async fn named(&self, kind: NamedKind) -> Result<Vec<(String, Value)>, StoreError> {
        let sql = format!(
            "SELECT name, document FROM {} WHERE tenant_id = $1 ORDER BY name",
            kind.table()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, read_document(r, kind.table())?)))
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
