//! Metric samples: written in multi-row upserts, read back by series and time range.

use crate::{StoreError, TenantStore, parse_ts, ts, values_clause};
use chrono::{DateTime, Utc};
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

impl TenantStore<'_> {
    /// Stores samples in one transaction; a sample for a series and time already stored replaces
    /// its value (a resent batch is not counted twice).
    pub async fn insert_samples(
        &self,
        samples: &[Sample],
        received_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // One row per series and time, the last sent winning: PostgreSQL refuses an upsert that
        // touches the same row twice in one statement.
        let mut unique: Vec<&Sample> = Vec::with_capacity(samples.len());
        let mut seen = std::collections::HashMap::new();
        for s in samples {
            let key = (s.name.as_str(), s.labels_key(), s.time);
            match seen.get(&key) {
                Some(&i) => unique[i] = s,
                None => {
                    seen.insert(key, unique.len());
                    unique.push(s);
                }
            }
        }
        let mut tx = self.store.begin_write().await?;
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO metric_samples (tenant_id, name, labels, at, value, received_at) VALUES {} \
                 ON CONFLICT (tenant_id, name, labels, at) DO UPDATE SET value = excluded.value, \
                 received_at = excluded.received_at",
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
            query.execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// Samples of one metric in `[from, to)` whose labels include `query.labels`, oldest first.
    pub async fn samples(&self, query: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, labels, at, value FROM metric_samples \
             WHERE tenant_id = $1 AND name = $2 AND at >= $3 AND at < $4 ORDER BY at, labels",
        )
        .bind(self.tenant.clone())
        .bind(query.name.clone())
        .bind(ts(query.from))
        .bind(ts(query.to))
        .fetch_all(&self.store.pool)
        .await?;
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
