//! Metric samples: written in multi-row inserts, read back by series and time range.
//!
//! Samples are the evidence post-change verification judges by, so they are never overwritten:
//! an identical resend is a no-op, a different value for a stored series and time refuses the
//! batch, and every accepted batch is one audit event naming who pushed which series.

use crate::{AuditRecord, StoreError, TenantStore, audit, parse_ts, ts, values_clause};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeMap;
use steward_core::metrics::Sample;

/// Rows per INSERT: sqlx's SQLite driver slows down with many parameters per statement.
const ROWS_PER_STATEMENT: usize = 50;

/// Which samples to read.
#[derive(Debug, Clone)]
pub struct SampleQuery {
    pub name: String,
    /// Every one of these labels must match; others may be present.
    pub labels: BTreeMap<String, String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: usize,
}

/// A sample whose series and time are already stored with a different value (or named twice in
/// one batch with different values). Evidence is never overwritten: the whole batch is refused.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SampleClash {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub time: DateTime<Utc>,
    /// The value kept (for two values in one batch: the first one sent).
    pub stored: f64,
    pub sent: f64,
}

/// What a pushed batch did.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplesPushed {
    /// Stored: `new` rows were added; the rest were resends of identical samples.
    Stored { new: usize },
    /// Nothing stored: these samples contradict stored (or each other's) values.
    Refused(Vec<SampleClash>),
}

fn clash(s: &Sample, stored: f64) -> SampleClash {
    SampleClash {
        name: s.name.clone(),
        labels: s.labels.clone(),
        time: s.time,
        stored,
        sent: s.value,
    }
}

impl TenantStore<'_> {
    /// Stores a batch of samples pushed by `actor` in one transaction with one audit event
    /// (`metrics.pushed`: how many, which series). A resend of an identical sample changes
    /// nothing; a different value for a stored series and time refuses the whole batch.
    pub async fn insert_samples(
        &self,
        actor: &str,
        samples: &[Sample],
        received_at: DateTime<Utc>,
    ) -> Result<SamplesPushed, StoreError> {
        let mut unique: Vec<&Sample> = Vec::with_capacity(samples.len());
        let mut seen = std::collections::HashMap::new();
        let mut clashes = Vec::new();
        for s in samples {
            let key = (s.name.as_str(), s.labels_key(), s.time);
            match seen.get(&key) {
                Some(&i) => {
                    let first: &Sample = unique[i];
                    if first.value != s.value {
                        clashes.push(clash(s, first.value));
                    }
                }
                None => {
                    seen.insert(key, unique.len());
                    unique.push(s);
                }
            }
        }
        if !clashes.is_empty() {
            self.record_refusal(actor, samples.len(), &clashes, received_at)
                .await?;
            return Ok(SamplesPushed::Refused(clashes));
        }
        // Rows in key order, so two overlapping batches lock them in the same order (PostgreSQL
        // would otherwise deadlock two batches sent in opposite orders).
        unique.sort_by_cached_key(|s| (s.name.clone(), s.labels_key(), s.time));
        let mut tx = self.store.begin_write().await?;
        let mut new = 0;
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            // Insert what is new; rows that exist are left alone and compared below. Reading
            // after the insert (not before) also catches a concurrent batch that wrote the same
            // series and time first: PostgreSQL's insert waits for it, then sees it.
            let sql = format!(
                "INSERT INTO metric_samples (tenant_id, name, labels, at, value, received_at) VALUES {} \
                 ON CONFLICT (tenant_id, name, labels, at) DO NOTHING RETURNING name, labels, at",
                values_clause(chunk.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                query = query
                    .bind(self.tenant.clone())
                    .bind(s.name.clone())
                    .bind(s.labels_key())
                    .bind(ts(s.time))
                    .bind(s.value)
                    .bind(ts(received_at));
            }
            let inserted = query.fetch_all(&mut *tx).await?;
            let mut fresh = std::collections::HashSet::new();
            for row in &inserted {
                fresh.insert((
                    row.try_get::<String, _>("name")?,
                    row.try_get::<String, _>("labels")?,
                    row.try_get::<String, _>("at")?,
                ));
            }
            new += inserted.len();
            for s in chunk {
                let key = (s.name.clone(), s.labels_key(), ts(s.time));
                if fresh.contains(&key) {
                    continue;
                }
                let stored: f64 = sqlx::query(
                    "SELECT value FROM metric_samples \
                     WHERE tenant_id = $1 AND name = $2 AND labels = $3 AND at = $4",
                )
                .bind(self.tenant.clone())
                .bind(key.0)
                .bind(key.1)
                .bind(key.2)
                .fetch_one(&mut *tx)
                .await?
                .try_get("value")?;
                if stored != s.value {
                    clashes.push(clash(s, stored));
                }
            }
        }
        if !clashes.is_empty() {
            tx.rollback().await?;
            self.record_refusal(actor, samples.len(), &clashes, received_at)
                .await?;
            return Ok(SamplesPushed::Refused(clashes));
        }
        let series: std::collections::BTreeSet<String> = unique
            .iter()
            .map(|s| {
                if s.labels.is_empty() {
                    s.name.clone()
                } else {
                    let labels: Vec<String> =
                        s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                    format!("{}{{{}}}", s.name, labels.join(","))
                }
            })
            .collect();
        let record = AuditRecord {
            occurred_at: received_at,
            actor: actor.to_owned(),
            action: "metrics.pushed".to_owned(),
            subject_type: "metric_samples",
            subject_id: actor.to_owned(),
            outcome: "success",
            correlation_id: None,
            details: json!({
                "samples": samples.len(),
                "new": new,
                "resent": unique.len() - new,
                "series": series,
                "from": unique.iter().map(|s| s.time).min(),
                "to": unique.iter().map(|s| s.time).max(),
            }),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(SamplesPushed::Stored { new })
    }

    /// An attempt to overwrite evidence is itself evidence: one audit event (`metrics.refused`)
    /// naming who sent how many samples and the first clashes, written after the batch was
    /// rolled back.
    async fn record_refusal(
        &self,
        actor: &str,
        sent: usize,
        clashes: &[SampleClash],
        received_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        let record = AuditRecord {
            occurred_at: received_at,
            actor: actor.to_owned(),
            action: "metrics.refused".to_owned(),
            subject_type: "metric_samples",
            subject_id: actor.to_owned(),
            outcome: "refused",
            correlation_id: None,
            details: json!({
                "samples": sent,
                "clashes": clashes.len(),
                "first_clashes": clashes.iter().take(20).collect::<Vec<_>>(),
            }),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await
    }

    /// Samples of one metric in `[from, to)` whose labels include `query.labels`, oldest first.
    pub async fn samples(&self, query: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
        self.samples_after(query, None).await
    }

    /// [`Self::samples`] after `after` — the time and [`Sample::labels_key`] of the last sample
    /// a page showed — in the same order (time, then labels).
    pub async fn samples_after(
        &self,
        query: &SampleQuery,
        after: Option<(DateTime<Utc>, &str)>,
    ) -> Result<Vec<Sample>, StoreError> {
        let keyset = if after.is_some() {
            " AND (at > $5 OR (at = $5 AND labels > $6))"
        } else {
            ""
        };
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name, labels, at, value FROM metric_samples \
             WHERE tenant_id = $1 AND name = $2 AND at >= $3 AND at < $4{keyset} ORDER BY at, labels"
        )))
        .bind(self.tenant.clone())
        .bind(query.name.clone())
        .bind(ts(query.from))
        .bind(ts(query.to));
        if let Some((at, labels)) = after {
            rows = rows.bind(ts(at)).bind(labels.to_owned());
        }
        let rows = rows.fetch_all(&self.store.pool).await?;
        let mut out = Vec::new();
        for row in rows {
            let labels: BTreeMap<String, String> =
                serde_json::from_str(&row.try_get::<String, _>("labels")?)
                    .map_err(|e| StoreError::corrupt("metric labels", e))?;
            if !query.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                continue;
            }
            out.push(Sample {
                name: row.try_get("name")?,
                labels,
                value: row.try_get("value")?,
                time: parse_ts(&row.try_get::<String, _>("at")?)?,
            });
            if out.len() >= query.limit {
                break;
            }
        }
        Ok(out)
    }
}
