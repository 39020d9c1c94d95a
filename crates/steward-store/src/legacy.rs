//! What databases written before sealed text hold in clear, sealed once (migration 8, in its
//! transaction): bare payload keys are wrapped under the KEK, and the free text of existing
//! changes, incidents, models and change notices is sealed under its writer's key, as new writes
//! are. Audit payloads already written stay as they are: each is encrypted under its actor's key,
//! and re-encrypting one would change the bytes its leaf's payload hash covers.

use crate::sealing::{self, Keys, Place, Requesters};
use crate::{PayloadKek, StoreError, kek, upsert_subject_keys};
use chrono::Utc;
use serde_json::Value;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet};
use steward_audit::hex;

pub(crate) async fn seal_existing(
    conn: &mut AnyConnection,
    kek: &PayloadKek,
) -> Result<(), StoreError> {
    wrap_bare_keys(conn, kek).await?;
    let requesters = requesters(conn).await?;
    let mut keys = Keys::default();

    let rows = sqlx::query("SELECT tenant_id, number, document FROM changes")
        .fetch_all(&mut *conn)
        .await?;
    let mut docs = parse(&rows, "change document")?;
    let mut subjects = BTreeSet::new();
    for (tenant, doc) in docs.iter_mut() {
        sealing::subjects_of(tenant, &sealing::change_text(doc), &mut subjects);
    }
    upsert_subject_keys(conn, kek, &mut keys, &subjects, Utc::now()).await?;
    for ((tenant, mut doc), row) in docs.into_iter().zip(&rows) {
        sealing::seal_plain_places(&tenant, sealing::change_text(&mut doc), &keys)?;
        sqlx::query("UPDATE changes SET document = $1 WHERE tenant_id = $2 AND number = $3")
            .bind(doc.to_string())
            .bind(tenant)
            .bind(row.try_get::<i64, _>("number")?)
            .execute(&mut *conn)
            .await?;
    }

    let rows = sqlx::query("SELECT tenant_id, number, document FROM incidents")
        .fetch_all(&mut *conn)
        .await?;
    let mut docs = parse(&rows, "incident document")?;
    let none = Requesters::new();
    let of = |tenant: &str| requesters.get(tenant).unwrap_or(&none);
    let mut subjects = BTreeSet::new();
    for (tenant, doc) in docs.iter_mut() {
        let places = sealing::incident_text(doc, of(tenant));
        sealing::subjects_of(tenant, &places, &mut subjects);
    }
    upsert_subject_keys(conn, kek, &mut keys, &subjects, Utc::now()).await?;
    for ((tenant, mut doc), row) in docs.into_iter().zip(&rows) {
        let places = sealing::incident_text(&mut doc, of(&tenant));
        sealing::seal_plain_places(&tenant, places, &keys)?;
        sqlx::query("UPDATE incidents SET document = $1 WHERE tenant_id = $2 AND number = $3")
            .bind(doc.to_string())
            .bind(tenant)
            .bind(row.try_get::<i64, _>("number")?)
            .execute(&mut *conn)
            .await?;
    }

    let rows = sqlx::query("SELECT tenant_id, name, document FROM models")
        .fetch_all(&mut *conn)
        .await?;
    let mut docs = parse(&rows, "model document")?;
    let mut subjects = BTreeSet::new();
    for (tenant, doc) in docs.iter_mut() {
        sealing::subjects_of(tenant, &sealing::model_text(doc), &mut subjects);
    }
    upsert_subject_keys(conn, kek, &mut keys, &subjects, Utc::now()).await?;
    for ((tenant, mut doc), row) in docs.into_iter().zip(&rows) {
        sealing::seal_plain_places(&tenant, sealing::model_text(&mut doc), &keys)?;
        sqlx::query("UPDATE models SET document = $1 WHERE tenant_id = $2 AND name = $3")
            .bind(doc.to_string())
            .bind(tenant)
            .bind(row.try_get::<String, _>("name")?)
            .execute(&mut *conn)
            .await?;
    }

    // Notices about a change quote its request: its requester's.
    let rows = sqlx::query(
        "SELECT tenant_id, id, subject, body, change_number FROM notifications \
         WHERE change_number IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut notices = Vec::new();
    for row in &rows {
        let tenant: String = row.try_get("tenant_id")?;
        let number: i64 = row.try_get("change_number")?;
        let Some(requester) = of(&tenant).get(&format!("CHG-{number}")).cloned() else {
            continue;
        };
        let doc = serde_json::json!({
            "subject": row.try_get::<String, _>("subject")?,
            "body": row.try_get::<String, _>("body")?,
        });
        notices.push((tenant, row.try_get::<String, _>("id")?, requester, doc));
    }
    let subjects: BTreeSet<String> = notices
        .iter()
        .map(|(tenant, _, requester, _)| format!("{tenant}:{requester}"))
        .collect();
    upsert_subject_keys(conn, kek, &mut keys, &subjects, Utc::now()).await?;
    for (tenant, id, requester, mut doc) in notices {
        let places = notice_text(&mut doc, &requester);
        sealing::seal_plain_places(&tenant, places, &keys)?;
        sqlx::query(
            "UPDATE notifications SET subject = $1, body = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(doc["subject"].as_str().unwrap_or_default().to_owned())
        .bind(doc["body"].as_str().unwrap_or_default().to_owned())
        .bind(tenant)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A notice's subject and body, as the places of `{"subject", "body"}`.
pub(crate) fn notice_text<'a>(doc: &'a mut Value, about: &str) -> Vec<Place<'a>> {
    sealing::top_level_text(doc, about, &["subject", "body"])
}

/// Each row's tenant and parsed `document`.
fn parse(rows: &[sqlx::any::AnyRow], what: &str) -> Result<Vec<(String, Value)>, StoreError> {
    rows.iter()
        .map(|row| {
            let text: String = row.try_get("document")?;
            let doc = serde_json::from_str(&text).map_err(|e| StoreError::corrupt(what, e))?;
            Ok((row.try_get("tenant_id")?, doc))
        })
        .collect()
}

/// Every change's requester, by tenant and change id.
async fn requesters(conn: &mut AnyConnection) -> Result<BTreeMap<String, Requesters>, StoreError> {
    let rows = sqlx::query("SELECT tenant_id, number, requester FROM changes")
        .fetch_all(&mut *conn)
        .await?;
    let mut out: BTreeMap<String, Requesters> = BTreeMap::new();
    for row in rows {
        let number: i64 = row.try_get("number")?;
        out.entry(row.try_get("tenant_id")?)
            .or_default()
            .insert(format!("CHG-{number}"), row.try_get("requester")?);
    }
    Ok(out)
}

/// Wraps every payload key stored bare (64 hex digits) under the KEK.
async fn wrap_bare_keys(conn: &mut AnyConnection, kek: &PayloadKek) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT subject, key FROM audit_subject_keys WHERE key IS NOT NULL")
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let subject: String = row.try_get("subject")?;
        let stored: String = row.try_get("key")?;
        if kek::is_wrapped(&stored) {
            continue;
        }
        let key = hex::decode::<32>(&stored)
            .ok_or_else(|| StoreError::Corrupt(format!("the payload key of {subject}")))?;
        sqlx::query("UPDATE audit_subject_keys SET key = $1 WHERE subject = $2")
            .bind(kek.wrap(&subject, &key)?)
            .bind(subject)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
