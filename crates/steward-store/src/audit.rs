//! The audit event table: appending events inside a caller's transaction, and reading them back.
//!
//! Rows are never updated or deleted (database triggers refuse it). Each event takes the next
//! `seq` from the single `audit_head` row, so the events of the whole installation form one
//! gapless sequence even with several servers on one PostgreSQL: that sequence is what the
//! verifiable log (RFC 9162 Merkle tree) is built over.

use crate::{StoreError, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Row};

/// An event to append.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: &'static str,
    pub subject_id: String,
    pub outcome: &'static str,
    pub correlation_id: Option<String>,
    /// What changed: `{"before": …, "after": …}` or the created record.
    pub details: serde_json::Value,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub event_id: String,
    pub tenant: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub outcome: String,
    pub correlation_id: Option<String>,
    pub details: serde_json::Value,
}

/// Appends events in the caller's transaction. Locks the log head last, so the lock is held only
/// for the tail of the transaction.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    tenant: &str,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let count = records.len() as i64;
    let end: i64 = sqlx::query(
        "UPDATE audit_head SET next_seq = next_seq + $1 WHERE id = 1 RETURNING next_seq",
    )
    .bind(count)
    .fetch_one(&mut *conn)
    .await?
    .try_get("next_seq")?;
    // One statement for all rows: fewer round trips while the log head is locked.
    let sql = format!(
        "INSERT INTO audit_events (seq, event_id, tenant_id, occurred_at, actor, action, \
         subject_type, subject_id, outcome, correlation_id, details) VALUES {}",
        crate::values_clause(records.len(), 11)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (i, record) in records.iter().enumerate() {
        query = query
            .bind(end - count + i as i64)
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(tenant.to_owned())
            .bind(ts(record.occurred_at))
            .bind(record.actor.clone())
            .bind(record.action.clone())
            .bind(record.subject_type)
            .bind(record.subject_id.clone())
            .bind(record.outcome)
            .bind(record.correlation_id.clone())
            .bind(record.details.to_string());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

pub(crate) fn from_row(row: &<Any as sqlx::Database>::Row) -> Result<AuditEvent, StoreError> {
    let details: String = row.try_get("details")?;
    Ok(AuditEvent {
        seq: row.try_get("seq")?,
        event_id: row.try_get("event_id")?,
        tenant: row.try_get("tenant_id")?,
        occurred_at: parse_ts(&row.try_get::<String, _>("occurred_at")?)?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject_type: row.try_get("subject_type")?,
        subject_id: row.try_get("subject_id")?,
        outcome: row.try_get("outcome")?,
        correlation_id: row.try_get("correlation_id")?,
        details: serde_json::from_str(&details)
            .map_err(|e| StoreError::corrupt("audit details", e))?,
    })
}

pub(crate) const COLUMNS: &str = "seq, event_id, tenant_id, occurred_at, actor, action, subject_type, subject_id, outcome, correlation_id, details";

impl crate::TenantStore<'_> {
    /// The tenant's events about one subject, oldest first.
    pub async fn audit_events_for(
        &self,
        subject_type: &str,
        subject_id: &str,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events \
             WHERE tenant_id = $1 AND subject_type = $2 AND subject_id = $3 ORDER BY seq"
        )))
        .bind(self.tenant.clone())
        .bind(subject_type.to_owned())
        .bind(subject_id.to_owned())
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The tenant's events in log order, from `after_seq` (exclusive), at most `limit`.
    pub async fn audit_events(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        )))
        .bind(self.tenant.clone())
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }
}
