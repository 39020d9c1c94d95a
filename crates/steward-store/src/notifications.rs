//! Notifications: what Steward told a person, kept in their inbox. Written inside the
//! transaction that records the event they report, so a rollback is never recorded without its
//! owners being told, nor told without being recorded.

use crate::{StoreError, TenantStore, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use steward_core::{ChangeId, UserName};

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub recipient: UserName,
    pub subject: String,
    pub body: String,
    pub change: Option<ChangeId>,
}

/// A notice as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNotice {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub change: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub(crate) async fn insert(
    conn: &mut AnyConnection,
    tenant: &str,
    notices: &[Notice],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for notice in notices {
        sqlx::query(
            "INSERT INTO notifications (tenant_id, id, recipient, subject, body, change_number, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.to_owned())
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(notice.recipient.as_str().to_owned())
        .bind(notice.subject.clone())
        .bind(notice.body.clone())
        .bind(notice.change.as_ref().map(|c| c.number() as i64))
        .bind(ts(at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl TenantStore<'_> {
    /// Delivers notices on their own (not tied to a change's save).
    pub async fn notify(&self, notices: &[Notice], at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        insert(&mut tx, &self.tenant, notices, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest notices for `recipient`, newest first.
    pub async fn notifications(
        &self,
        recipient: &UserName,
        limit: i64,
    ) -> Result<Vec<StoredNotice>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, recipient, subject, body, change_number, created_at FROM notifications \
             WHERE tenant_id = $1 AND recipient = $2 ORDER BY created_at DESC, id DESC LIMIT {}",
            limit.clamp(1, 500)
        )))
        .bind(self.tenant.clone())
        .bind(recipient.as_str().to_owned())
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredNotice {
                    id: row.try_get("id")?,
                    recipient: row.try_get("recipient")?,
                    subject: row.try_get("subject")?,
                    body: row.try_get("body")?,
                    change: row
                        .try_get::<Option<i64>, _>("change_number")?
                        .map(|n| format!("CHG-{n}")),
                    created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
                })
            })
            .collect()
    }
}
