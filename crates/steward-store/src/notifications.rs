//! Notifications: what Steward told a person, kept in their inbox. Written inside the
//! transaction that records the event they report, so a rollback is never recorded without its
//! owners being told, nor told without being recorded.
//!
//! A notice that quotes what a person wrote (a change's title) names them in `about`; its
//! subject and body are then sealed under their key, like the text it quotes.

use crate::{StoreError, TenantStore, WriteTx, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeSet;
use steward_core::{ChangeId, UserName};

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub recipient: UserName,
    pub subject: String,
    pub body: String,
    pub change: Option<ChangeId>,
    /// Whose text the notice quotes (a change's requester, for its title): the subject and body
    /// are sealed under their key, so erasing them erases the notice's text too.
    #[serde(default)]
    pub about: Option<UserName>,
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

/// The subjects whose keys sealing `notices` needs.
pub(crate) fn subjects(tenant: &str, notices: &[Notice], out: &mut BTreeSet<String>) {
    out.extend(
        notices
            .iter()
            .filter_map(|n| n.about.as_ref())
            .map(|about| format!("{tenant}:{about}")),
    );
}

pub(crate) async fn insert(
    tx: &mut WriteTx,
    tenant: &str,
    notices: &[Notice],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut needed = BTreeSet::new();
    subjects(tenant, notices, &mut needed);
    tx.subject_keys(&needed, at).await?;
    let mut texts = Vec::with_capacity(notices.len());
    for notice in notices {
        let seal = |text: &str| match &notice.about {
            Some(about) => tx.keys().seal(&format!("{tenant}:{about}"), text),
            None => Ok(text.to_owned()),
        };
        texts.push((seal(&notice.subject)?, seal(&notice.body)?));
    }
    for (notice, (subject, body)) in notices.iter().zip(texts) {
        sqlx::query(
            "INSERT INTO notifications (tenant_id, id, recipient, subject, body, change_number, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.to_owned())
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(notice.recipient.as_str().to_owned())
        .bind(subject)
        .bind(body)
        .bind(notice.change.as_ref().map(|c| c.number() as i64))
        .bind(ts(at))
        .execute(&mut **tx)
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

    /// Notices for `recipient` older than `before` — the (`created_at`, `id`) of the last one
    /// a page showed — newest first, at most `limit`.
    pub async fn notifications(
        &self,
        recipient: &UserName,
        before: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> Result<Vec<StoredNotice>, StoreError> {
        let after = if before.is_some() {
            " AND (created_at < $3 OR (created_at = $3 AND id < $4))"
        } else {
            ""
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, recipient, subject, body, change_number, created_at FROM notifications \
             WHERE tenant_id = $1 AND recipient = $2{after} ORDER BY created_at DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        )))
        .bind(self.tenant.clone())
        .bind(recipient.as_str().to_owned());
        if let Some((created_at, id)) = before {
            query = query.bind(ts(created_at)).bind(id.to_owned());
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        // Subjects and bodies as JSON strings, opened together: one key lookup for the page.
        let mut texts = Vec::with_capacity(rows.len() * 2);
        for row in &rows {
            for column in ["subject", "body"] {
                let text: String = row.try_get(column)?;
                texts.push(serde_json::Value::String(text).to_string());
            }
        }
        let opened = self.store.open_texts(texts).await?;
        let text = |i: usize| -> Result<String, StoreError> {
            serde_json::from_str(&opened[i]).map_err(|e| StoreError::corrupt("notice", e))
        };
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                Ok(StoredNotice {
                    id: row.try_get("id")?,
                    recipient: row.try_get("recipient")?,
                    subject: text(2 * i)?,
                    body: text(2 * i + 1)?,
                    change: row
                        .try_get::<Option<i64>, _>("change_number")?
                        .map(|n| format!("CHG-{n}")),
                    created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
                })
            })
            .collect()
    }
}
