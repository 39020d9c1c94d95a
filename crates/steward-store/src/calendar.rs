//! The change calendar: maintenance windows and freezes (one JSON document each), and the
//! active changes whose windows overlap a period, for conflict checks and the iCal feed.

use crate::audit::{self, AuditRecord};
use crate::changes::ACTIVE_STATES;
use crate::{StoreError, TenantStore, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use steward_core::schedule::{CalendarWindow, ScheduledChange};
use steward_core::state::ChangeState;
use steward_core::submission::Window;
use steward_core::{ChangeId, TargetName, WindowName};

fn window_from(doc: &str) -> Result<CalendarWindow, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::corrupt("calendar window", e))
}

impl TenantStore<'_> {
    /// Every window and freeze of the tenant, by name. Tenants keep tens of these, not millions.
    pub async fn calendar_windows(&self) -> Result<Vec<CalendarWindow>, StoreError> {
        let rows =
            sqlx::query("SELECT document FROM calendar_windows WHERE tenant_id = $1 ORDER BY name")
                .bind(self.tenant.clone())
                .fetch_all(&self.store.pool)
                .await?;
        rows.iter()
            .map(|r| window_from(&r.try_get::<String, _>("document")?))
            .collect()
    }

    /// Windows and freezes named after `after` (from the first when `None`), by name, at most
    /// `limit`: the pages of `GET /windows`.
    pub async fn calendar_windows_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CalendarWindow>, StoreError> {
        let rows = sqlx::query(
            "SELECT document FROM calendar_windows WHERE tenant_id = $1 AND name > $2 \
             ORDER BY name LIMIT $3",
        )
        .bind(self.tenant.clone())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| window_from(&r.try_get::<String, _>("document")?))
            .collect()
    }

    /// Creates a window, audited; a name already in use is a [`StoreError::Duplicate`].
    pub async fn insert_window(&self, window: &CalendarWindow) -> Result<(), StoreError> {
        let document =
            serde_json::to_string(window).map_err(|e| StoreError::corrupt("calendar window", e))?;
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO calendar_windows (tenant_id, name, kind, document, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.tenant.clone())
        .bind(window.name.as_str().to_owned())
        .bind(window.kind.as_str())
        .bind(document)
        .bind(ts(window.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_insert(e, || format!("window '{}'", window.name)))?;
        let record = AuditRecord {
            occurred_at: window.created_at,
            actor: window.created_by.to_string(),
            action: format!("calendar.{}_created", window.kind),
            subject_type: "calendar_window",
            subject_id: window.name.to_string(),
            outcome: "success",
            correlation_id: None,
            details: json!({ "after": window }),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await
    }

    /// Deletes a window, audited with what it was. `None` when there was no such window.
    pub async fn delete_window(
        &self,
        name: &WindowName,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CalendarWindow>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let Some(row) =
            sqlx::query("SELECT document FROM calendar_windows WHERE tenant_id = $1 AND name = $2")
                .bind(self.tenant.clone())
                .bind(name.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        let before = window_from(&row.try_get::<String, _>("document")?)?;
        sqlx::query("DELETE FROM calendar_windows WHERE tenant_id = $1 AND name = $2")
            .bind(self.tenant.clone())
            .bind(name.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: format!("calendar.{}_deleted", before.kind),
            subject_type: "calendar_window",
            subject_id: name.to_string(),
            outcome: "success",
            correlation_id: None,
            details: json!({ "before": before }),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    /// Changes still on their way (submitted through implementing) whose window overlaps
    /// `[from, to)`, each with its targets and their parents.
    pub async fn scheduled_changes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ScheduledChange>, StoreError> {
        let states: Vec<String> = ACTIVE_STATES.iter().map(|s| format!("'{s}'")).collect();
        let sql = format!(
            "SELECT c.number, c.state, c.window_start, c.window_end, ct.target, t.parent \
             FROM changes c JOIN change_targets ct ON ct.tenant_id = c.tenant_id AND ct.number = c.number \
             LEFT JOIN targets t ON t.tenant_id = ct.tenant_id AND t.name = ct.target \
             WHERE c.tenant_id = $1 AND c.window_start < $2 AND c.window_end > $3 AND c.state IN ({}) \
             ORDER BY c.number, ct.target",
            states.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.tenant.clone())
            .bind(ts(to))
            .bind(ts(from))
            .fetch_all(&self.store.pool)
            .await?;
        let mut out: Vec<ScheduledChange> = Vec::new();
        for row in rows {
            let number: i64 = row.try_get("number")?;
            let id = ChangeId::from_number(number as u64);
            let target = TargetName::parse(&row.try_get::<String, _>("target")?)
                .map_err(|e| StoreError::corrupt("change target", e))?;
            let parent = row
                .try_get::<Option<String>, _>("parent")?
                .map(|p| TargetName::parse(&p))
                .transpose()
                .map_err(|e| StoreError::corrupt("target parent", e))?;
            match out.last_mut() {
                Some(last) if last.id == id => last.targets.push((target, parent)),
                _ => {
                    let state: String = row.try_get("state")?;
                    out.push(ScheduledChange {
                        id,
                        state: ChangeState::parse(&state)
                            .ok_or_else(|| StoreError::corrupt("change state", &state))?,
                        window: Window {
                            start: parse_ts(&row.try_get::<String, _>("window_start")?)?,
                            end: parse_ts(&row.try_get::<String, _>("window_end")?)?,
                        },
                        targets: vec![(target, parent)],
                    });
                }
            }
        }
        Ok(out)
    }
}
