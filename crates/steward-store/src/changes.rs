//! Change requests: the whole [`Change`] is kept as a JSON document beside the columns that
//! queries filter on; the columns are derived from the document on every save.

use crate::audit::{self, AuditRecord};
use crate::sealing::{self, Keys};
use crate::{Backend, StoreError, TenantStore, read_document, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Any, AnyConnection, Row};
use std::collections::BTreeSet;
use steward_core::change::{Change, Transition};
use steward_core::classify::ChangeType;
use steward_core::risk::History;
use steward_core::state::ChangeState;
use steward_core::{ChangeId, TargetName, UserName};

/// What `change list` can filter on; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub state: Option<ChangeState>,
    pub change_type: Option<ChangeType>,
    pub target: Option<TargetName>,
    pub requester: Option<UserName>,
    /// Only changes still awaiting approval after their SLA deadline, as of this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only changes created at or after this time.
    pub created_since: Option<DateTime<Utc>>,
    /// Only changes numbered below this (a cursor for paging newest-first).
    pub before_number: Option<u64>,
    /// Only changes whose effective window overlaps `[from, to)`.
    pub window_overlaps: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub limit: i64,
}

/// States of a change that is still on its way: it can conflict with others.
pub(crate) const ACTIVE_STATES: &[&str] = &[
    "submitted",
    "pending_approval",
    "approved",
    "scheduled",
    "implementing",
];

/// A change as stored, its sealed text still sealed (for reading the columns it derives).
fn from_row(row: &<Any as sqlx::Database>::Row) -> Result<Change, StoreError> {
    let mut change: Change = read_document(row, "change document")?;
    change.version = row.try_get("version")?;
    Ok(change)
}

impl crate::Store {
    /// Changes from their rows, the text people wrote opened (or [`sealing::ERASED`]).
    async fn open_changes(&self, rows: &[sqlx::any::AnyRow]) -> Result<Vec<Change>, StoreError> {
        let mut changes: Vec<Change> = self.open_documents(rows, "change document").await?;
        for (change, row) in changes.iter_mut().zip(rows) {
            change.version = row.try_get("version")?;
        }
        Ok(changes)
    }
}

pub(crate) fn transition_records(change: &Change, transitions: &[Transition]) -> Vec<AuditRecord> {
    transitions
        .iter()
        .map(|t| AuditRecord {
            occurred_at: change.updated_at,
            actor: t.actor.to_string(),
            action: t.action.clone(),
            subject_type: "change",
            subject_id: change.id.to_string(),
            outcome: "success",
            correlation_id: None,
            details: json!({
                "before": t.from.map(|s| json!({ "state": s })),
                "after": { "state": t.to },
                "comment": t.comment,
                "type": change.classification.change_type,
                "risk_score": change.risk.score,
                "policy": t.policy,
                "execution": t.details,
            }),
        })
        .collect()
}

/// Fills `window_start`/`window_end` for changes stored before those columns existed.
pub(crate) async fn backfill_windows(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT tenant_id, number, version, document FROM changes")
        .fetch_all(&mut *conn)
        .await?;
    for row in &rows {
        let change = from_row(row)?;
        let Some(window) = change.effective_window() else {
            continue;
        };
        sqlx::query(
            "UPDATE changes SET window_start = $1, window_end = $2 WHERE tenant_id = $3 AND number = $4",
        )
        .bind(ts(window.start))
        .bind(ts(window.end))
        .bind(row.try_get::<String, _>("tenant_id")?)
        .bind(row.try_get::<i64, _>("number")?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A change's document, in clear, with the subjects (`tenant:user`) whose keys sealing it needs
/// added to `subjects`.
pub(crate) fn plain_document(
    change: &Change,
    tenant: &str,
    subjects: &mut BTreeSet<String>,
) -> Result<serde_json::Value, StoreError> {
    let mut doc =
        serde_json::to_value(change).map_err(|e| StoreError::corrupt("change document", e))?;
    sealing::subjects_of(tenant, &sealing::change_text(&mut doc), subjects);
    Ok(doc)
}

/// A [`plain_document`] with the text people wrote sealed under their keys (fetched into
/// `keys`). With `stored`, unchanged and erased text keeps its stored token.
pub(crate) fn seal_document(
    mut doc: serde_json::Value,
    tenant: &str,
    keys: &Keys,
    stored: Option<&serde_json::Value>,
) -> Result<String, StoreError> {
    sealing::seal_places(tenant, sealing::change_text(&mut doc), keys, stored)?;
    Ok(doc.to_string())
}

impl TenantStore<'_> {
    /// Outcomes of earlier changes in `category` on `targets`, summed over the targets (a change
    /// on two of them counts for each).
    pub async fn history(
        &self,
        targets: &[TargetName],
        category: &str,
    ) -> Result<History, StoreError> {
        if targets.is_empty() {
            return Ok(History::default());
        }
        let placeholders: Vec<String> = (0..targets.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(finished), 0) AS BIGINT) AS finished, \
             CAST(COALESCE(SUM(failed), 0) AS BIGINT) AS failed \
             FROM target_outcomes WHERE tenant_id = $1 AND category = $2 AND target IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(category.to_owned());
        for t in targets {
            query = query.bind(t.as_str().to_owned());
        }
        let row = query.fetch_one(&self.store.pool).await?;
        let finished: i64 = row.try_get("finished")?;
        let failed: i64 = row.try_get("failed")?;
        Ok(History {
            finished: finished.max(0) as u64,
            failed: failed.max(0) as u64,
        })
    }

    /// Counts an outcome reached (or changed, completed → rolled back) by these transitions.
    async fn record_outcomes(
        &self,
        conn: &mut AnyConnection,
        change: &Change,
        transitions: &[Transition],
    ) -> Result<(), StoreError> {
        let (mut finished, mut failed) = (0i64, 0i64);
        for t in transitions {
            let before = t.from.and_then(ChangeState::outcome);
            match (before, t.to.outcome()) {
                (None, Some(after)) => {
                    finished += 1;
                    failed += i64::from(after == "failed");
                }
                (Some(before), Some(after)) if before != after => {
                    failed += if after == "failed" { 1 } else { -1 };
                }
                _ => {}
            }
        }
        if finished == 0 && failed == 0 {
            return Ok(());
        }
        // In name order, so two transactions touching the same targets lock them in one order.
        let mut targets: Vec<&TargetName> = change.request.targets.iter().collect();
        targets.sort();
        for target in targets {
            sqlx::query(
                "INSERT INTO target_outcomes (tenant_id, target, category, finished, failed) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, target, category) DO UPDATE \
                 SET finished = target_outcomes.finished + excluded.finished, \
                 failed = target_outcomes.failed + excluded.failed",
            )
            .bind(self.tenant.clone())
            .bind(target.as_str().to_owned())
            .bind(change.request.category.clone())
            .bind(finished)
            .bind(failed)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Numbers a new change and stores it with its audit events. Submissions arriving together
    /// are written in one transaction (see [`crate::submissions`]); the answer comes only after
    /// that transaction committed.
    pub async fn insert_change(
        &self,
        change: Change,
        transitions: Vec<Transition>,
    ) -> Result<Change, StoreError> {
        self.store
            .submissions
            .submit(self.tenant.clone(), change, transitions)
            .await
    }

    pub async fn get_change(&self, id: &ChangeId) -> Result<Option<Change>, StoreError> {
        let row = sqlx::query(
            "SELECT version, document FROM changes WHERE tenant_id = $1 AND number = $2",
        )
        .bind(self.tenant.clone())
        .bind(id.number() as i64)
        .fetch_optional(&self.store.pool)
        .await?;
        let rows: Vec<_> = row.into_iter().collect();
        Ok(self.store.open_changes(&rows).await?.pop())
    }

    pub async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<Change>, StoreError> {
        let mut sql =
            String::from("SELECT version, document FROM changes c WHERE c.tenant_id = $1");
        let mut binds: Vec<String> = vec![self.tenant.clone()];
        let mut push = |clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(state) = filter.state {
            push(" AND c.state = ?", state.as_str().to_owned());
        }
        if let Some(t) = filter.change_type {
            push(" AND c.change_type = ?", t.as_str().to_owned());
        }
        if let Some(r) = &filter.requester {
            push(" AND c.requester = ?", r.as_str().to_owned());
        }
        if let Some(target) = &filter.target {
            push(
                " AND EXISTS (SELECT 1 FROM change_targets t WHERE t.tenant_id = c.tenant_id \
                 AND t.number = c.number AND t.target = ?)",
                target.as_str().to_owned(),
            );
        }
        if let Some(now) = filter.overdue_at {
            push(
                " AND c.state = 'pending_approval' AND c.approval_deadline < ?",
                ts(now),
            );
        }
        if let Some(since) = filter.created_since {
            push(" AND c.created_at >= ?", ts(since));
        }
        if let Some((from, to)) = filter.window_overlaps {
            push(" AND c.window_start < ?", ts(to));
            push(" AND c.window_end > ?", ts(from));
        }
        if let Some(before) = filter.before_number {
            sql.push_str(&format!(" AND c.number < {}", before.min(i64::MAX as u64)));
        }
        let limit = filter.limit.clamp(1, 1000);
        sql.push_str(&format!(" ORDER BY c.number DESC LIMIT {limit}"));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        self.store.open_changes(&rows).await
    }

    /// Saves a change read at `change.version` with the transitions that led to its new state.
    /// Fails with [`StoreError::Conflict`] if anyone saved it since it was read.
    pub async fn save_change(
        &self,
        change: &Change,
        transitions: &[Transition],
    ) -> Result<(), StoreError> {
        self.save_change_notifying(change, transitions, &[]).await
    }

    /// [`Self::save_change`], also delivering `notices` in the same transaction.
    pub async fn save_change_notifying(
        &self,
        change: &Change,
        transitions: &[Transition],
        notices: &[crate::Notice],
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        let mut saved = change.clone();
        saved.version += 1;
        let number = change.id.number() as i64;
        // The document as last written (locked on PostgreSQL): its tokens stay where the text
        // did not change, or can no longer be opened (erased since this change was read).
        let lock = match self.store.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT document FROM changes WHERE tenant_id = $1 AND number = $2 AND version = $3{lock}"
        )))
        .bind(self.tenant.clone())
        .bind(number)
        .bind(change.version)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(stored) = stored else {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        };
        let stored: serde_json::Value = read_document(&stored, "change document")?;
        let records = transition_records(change, transitions);
        let mut subjects = BTreeSet::new();
        let document = plain_document(&saved, &self.tenant, &mut subjects)?;
        audit::subjects(&self.tenant, &records, &mut subjects);
        crate::notifications::subjects(&self.tenant, notices, &mut subjects);
        tx.subject_keys(&subjects, change.updated_at).await?;
        let document = seal_document(document, &self.tenant, tx.keys(), Some(&stored))?;
        let updated = sqlx::query(
            "UPDATE changes SET state = $1, change_type = $2, risk_score = $3, approval_deadline = $4, \
             outcome = COALESCE($5, outcome), updated_at = $6, version = $7, document = $8, \
             window_start = $9, window_end = $10 \
             WHERE tenant_id = $11 AND number = $12 AND version = $13",
        )
        .bind(saved.state.as_str())
        .bind(saved.classification.change_type.as_str())
        .bind(i64::from(saved.risk.score))
        .bind(saved.approval_deadline.map(ts))
        .bind(saved.state.outcome())
        .bind(ts(saved.updated_at))
        .bind(saved.version)
        .bind(document)
        .bind(saved.effective_window().map(|w| ts(w.start)))
        .bind(saved.effective_window().map(|w| ts(w.end)))
        .bind(self.tenant.clone())
        .bind(number)
        .bind(change.version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        }
        self.insert_new_decisions(&mut tx, change).await?;
        self.record_outcomes(&mut tx, change, transitions).await?;
        audit::append(&mut tx, &self.tenant, &records).await?;
        crate::notifications::insert(&mut tx, &self.tenant, notices, change.updated_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_new_decisions(
        &self,
        conn: &mut AnyConnection,
        change: &Change,
    ) -> Result<(), StoreError> {
        let number = change.id.number() as i64;
        let recorded: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM change_decisions WHERE tenant_id = $1 AND number = $2",
        )
        .bind(self.tenant.clone())
        .bind(number)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
        for decision in change.decisions.iter().skip(recorded.max(0) as usize) {
            sqlx::query(
                "INSERT INTO change_decisions (tenant_id, number, slot, approver, decision, decided_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(self.tenant.clone())
            .bind(number)
            .bind(decision.slot.clone())
            .bind(decision.by.as_str().to_owned())
            .bind(decision.decision.as_str())
            .bind(ts(decision.at))
            .execute(&mut *conn)
            .await
            .map_err(|e| match StoreError::from_insert(e, String::new) {
                StoreError::Duplicate(_) => StoreError::Conflict,
                other => other,
            })?;
        }
        Ok(())
    }
}

impl crate::Store {
    /// Changes the execution worker may have to act on, in every tenant: approved or scheduled
    /// changes whose window is open at `now`, changes implementing (to resume after a restart),
    /// and changes completed in the last eight days (under verification). The caller reads each
    /// change's plan and journal to decide.
    pub async fn execution_candidates(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, document FROM changes WHERE \
             (state IN ('approved', 'scheduled') AND window_start <= $1 AND window_end > $2) \
             OR state = 'implementing' OR (state = 'completed' AND updated_at >= $3) \
             ORDER BY tenant_id, number",
        )
        .bind(ts(now))
        .bind(ts(now))
        .bind(ts(now - chrono::Duration::days(8)))
        .fetch_all(&self.pool)
        .await?;
        self.open_changes(&rows).await
    }
}
