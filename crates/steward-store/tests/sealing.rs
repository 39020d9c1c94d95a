//! Sealed text at the storage level, on SQLite and PostgreSQL: what people write never reaches a
//! table in clear, reads open it, erasure turns it into `[erased]` for every reader (and a save
//! of a change read before the erasure does not bring it back), payload keys are stored wrapped,
//! a KEK-less copy cannot be opened, and older databases are sealed by the migration.
//!
//! PostgreSQL tests create their own database on the server named by `STEWARD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and fail when it is not there.

use chrono::Utc;
use serde_json::json;
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use steward_core::approval::{Decision, GivenDecision};
use steward_core::change::{Change, Transition};
use steward_core::inventory::Model;
use steward_core::state::ChangeState;
use steward_core::submission::ChangeRequest;
use steward_core::{TenantId, UserName};
use steward_store::{ChangeFilter, ERASED, Erasure, Notice, PayloadKek, Store, StoreError};

mod support;
use support::{Backend, Db, fresh};

/// Runs raw SQL, as someone with a copy of the database would.
async fn raw(db: &Db, sql: &str) -> Vec<sqlx::any::AnyRow> {
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
    rows
}

/// Everything the database holds, as text: SQLite's files (the database, its WAL); every row of
/// every PostgreSQL table, as text.
async fn raw_storage(db: &Db) -> String {
    match db.backend {
        Backend::Sqlite => {
            let mut all = String::new();
            for entry in std::fs::read_dir(db.dir.path()).expect("dir") {
                let path = entry.expect("entry").path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if name.starts_with("steward.db") {
                    all.push_str(&String::from_utf8_lossy(
                        &std::fs::read(&path).expect("read"),
                    ));
                }
            }
            all
        }
        Backend::Postgres => {
            let tables = raw(
                db,
                "SELECT CAST(table_name AS TEXT) AS table_name FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .await;
            let mut all = String::new();
            for table in tables {
                let name: String = table.try_get("table_name").expect("name");
                for row in raw(db, &format!("SELECT CAST(t AS TEXT) AS row FROM {name} t")).await {
                    all.push_str(&row.try_get::<String, _>("row").expect("row"));
                    all.push('\n');
                }
            }
            all
        }
    }
}

fn user(name: &str) -> UserName {
    UserName::parse(name).expect("user name")
}

/// A pending change by rita whose every free-text field carries `marker`.
fn change(marker: &str) -> Change {
    let request = ChangeRequest::parse(&json!({
        "title": format!("{marker} title"),
        "description": format!("{marker} description"),
        "category": "model-deployment",
        "targets": ["fraud-scoring"],
        "environment": "staging",
        "impact": {"data": "low", "availability": "low", "compliance": "low"},
        "implementation_plan": format!("{marker} implementation"),
        "rollback_plan": format!("{marker} rollback"),
        "verification_plan": format!("{marker} verification"),
    }))
    .expect("a valid request");
    let now = Utc::now();
    let mut change: Change = serde_json::from_value(json!({
        "id": "CHG-1", "tenant": "default", "requester": "rita", "request": request,
        "classification": {"type": "normal", "reason": "no template"},
        "risk": {"score": 10, "level": "low", "factors": []}, "state": "pending_approval",
        "required_approvals": [], "decisions": [], "approval_deadline": null,
        "scheduled_window": null, "implementer": null, "created_at": now,
        "submitted_at": now, "updated_at": now, "version": 0,
    }))
    .expect("a change");
    change.policy_input = Some(json!({"change": {"title": format!("{marker} title")}}));
    change
}

fn transition(action: &str, actor: &str, to: ChangeState, comment: Option<&str>) -> Transition {
    Transition {
        action: action.into(),
        from: None,
        to,
        actor: user(actor),
        comment: comment.map(str::to_owned),
        policy: None,
        details: None,
    }
}

/// Rita's change, approved by mia with a comment; returns it as stored.
async fn approved_change(store: &Store, marker: &str, comment: &str) -> Change {
    let tenant = store.tenant(&TenantId::default_tenant());
    let created = tenant
        .insert_change(
            change(marker),
            vec![transition(
                "change.submitted",
                "rita",
                ChangeState::PendingApproval,
                None,
            )],
        )
        .await
        .expect("inserted");
    let mut change = tenant
        .get_change(&created.id)
        .await
        .expect("read")
        .expect("there");
    change.decisions.push(GivenDecision {
        slot: "owner".into(),
        by: user("mia"),
        decision: Decision::Approve,
        comment: comment.into(),
        at: Utc::now(),
        acknowledged_conflicts: vec![],
    });
    change.state = ChangeState::Approved;
    let notice = Notice {
        recipient: user("mia"),
        subject: format!("{} approved", change.id),
        body: format!("you approved '{}'", change.request.title),
        change: Some(change.id.clone()),
        about: Some(user("rita")),
    };
    tenant
        .save_change_notifying(
            &change,
            &[transition(
                "change.approved",
                "mia",
                ChangeState::Approved,
                Some(comment),
            )],
            &[notice],
        )
        .await
        .expect("saved");
    tenant
        .get_change(&change.id)
        .await
        .expect("read")
        .expect("there")
}

async fn connect(db: &Db, kek: &[u8; 32]) -> Store {
    Store::connect(&db.url, PayloadKek::from_bytes(*kek))
        .await
        .expect("the store opens")
}

const KEK: [u8; 32] = [42; 32];

async fn erasure_erases_every_copy_of_what_a_person_wrote(backend: Backend) {
    let db = fresh(backend).await;
    let store = connect(&db, &KEK).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    let stored = approved_change(&store, "Quokka-7731", "Wombat-4419 looks safe").await;
    let id = stored.id.clone();

    // A model whose purpose rita attested, saved by mia: the record and its audit event.
    let now = Utc::now();
    let mut model = Model::new("fraud-scoring", now);
    model.attest(
        BTreeMap::from([("purpose".to_owned(), json!("Numbat-5521 purpose"))]),
        &user("rita"),
        now,
    );
    tenant
        .save_model(&model, Some("model.updated"), "mia", &["purpose".into()])
        .await
        .expect("model saved");

    // Readers see the text; storage never holds it in clear.
    assert_eq!(stored.request.title, "Quokka-7731 title");
    assert_eq!(
        stored.request.verification_plan.as_deref(),
        Some("Quokka-7731 verification")
    );
    assert_eq!(stored.decisions[0].comment, "Wombat-4419 looks safe");
    let listed = tenant
        .list_changes(&ChangeFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(listed[0].request.description, "Quokka-7731 description");
    let model = tenant
        .get_model("fraud-scoring")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(model.fields["purpose"], "Numbat-5521 purpose");
    let past = tenant
        .model_at("fraud-scoring", Utc::now())
        .await
        .expect("history");
    assert_eq!(
        past.expect("recorded").fields["purpose"],
        "Numbat-5521 purpose"
    );
    let inbox = tenant
        .notifications(&user("mia"), None, 10)
        .await
        .expect("inbox");
    assert!(inbox[0].body.contains("Quokka-7731"), "{:?}", inbox[0]);
    let storage = raw_storage(&db).await;
    for secret in ["Quokka-7731", "Wombat-4419", "Numbat-5521"] {
        assert!(!storage.contains(secret), "{secret} is stored in clear");
    }

    // Payload keys are stored wrapped: none is a bare key.
    for row in raw(&db, "SELECT subject, key FROM audit_subject_keys").await {
        let key: Option<String> = row.try_get("key").expect("key");
        let key = key.expect("no one is erased yet");
        assert!(key.starts_with("w1:"), "a bare payload key: {key}");
    }

    // Someone reads the change, rita is erased, then their save arrives.
    let read_before = tenant.get_change(&id).await.expect("read").expect("there");
    let erased = tenant
        .erase_subject(
            "olga",
            "rita",
            "GDPR Art. 17 request 1",
            &Default::default(),
            Utc::now(),
        )
        .await
        .expect("erased");
    assert!(matches!(erased, Erasure::Erased { .. }), "{erased:?}");
    let mut late = read_before;
    late.implementer = Some(user("max"));
    tenant
        .save_change(
            &late,
            &[transition(
                "change.scheduled",
                "max",
                ChangeState::Scheduled,
                None,
            )],
        )
        .await
        .expect("saved after the erasure");

    let shown = tenant.get_change(&id).await.expect("read").expect("there");
    assert_eq!(shown.request.title, ERASED);
    assert_eq!(shown.request.description, ERASED);
    assert_eq!(shown.request.implementation_plan, ERASED);
    assert_eq!(shown.request.rollback_plan, ERASED);
    assert_eq!(shown.request.verification_plan.as_deref(), Some(ERASED));
    assert_eq!(
        shown.policy_input.as_ref().map(|p| &p["change"]["title"]),
        Some(&json!(ERASED))
    );
    // The record stays whole: ids, states, people, times; mia's own words are hers.
    assert_eq!(
        (shown.id.clone(), shown.state),
        (id.clone(), ChangeState::Approved)
    );
    assert_eq!(shown.requester, user("rita"));
    assert_eq!(shown.decisions[0].comment, "Wombat-4419 looks safe");
    let model = tenant
        .get_model("fraud-scoring")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(model.fields["purpose"], ERASED);
    let past = tenant
        .model_at("fraud-scoring", Utc::now())
        .await
        .expect("history");
    assert_eq!(past.expect("recorded").fields["purpose"], ERASED);
    let inbox = tenant
        .notifications(&user("mia"), None, 10)
        .await
        .expect("inbox");
    assert_eq!(inbox[0].body, ERASED);
    let storage = raw_storage(&db).await;
    for secret in ["Quokka-7731", "Wombat-4419", "Numbat-5521"] {
        assert!(!storage.contains(secret), "{secret} is stored in clear");
    }
    // A new request by rita after her erasure gets a new key and is readable.
    let again = approved_change(&store, "Kiwi-8080", "fine").await;
    assert_eq!(again.request.title, "Kiwi-8080 title");
    store.close().await;

    // A copy of the database without its KEK opens nothing: Steward refuses another KEK.
    let other = Store::connect(&db.url, PayloadKek::from_bytes([7; 32])).await;
    match other {
        Err(StoreError::Config(message)) => {
            assert!(message.contains("key-encryption key"), "{message}")
        }
        other => panic!("another KEK was accepted: {:?}", other.map(|_| ())),
    }
    let store = connect(&db, &KEK).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    let again = tenant
        .get_change(&again.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(again.request.title, "Kiwi-8080 title");
    store.close().await;
}

async fn a_legal_hold_keeps_the_text_readable(backend: Backend) {
    let db = fresh(backend).await;
    let store = connect(&db, &KEK).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    let stored = approved_change(&store, "Emu-3141", "ok").await;
    tenant
        .set_legal_hold(
            "olga",
            "rita",
            Some("SOX 404 evidence until 2033"),
            Utc::now(),
        )
        .await
        .expect("held");
    let refused = tenant
        .erase_subject(
            "olga",
            "rita",
            "GDPR Art. 17",
            &Default::default(),
            Utc::now(),
        )
        .await
        .expect("answered");
    assert_eq!(
        refused,
        Erasure::UnderLegalHold {
            reason: "SOX 404 evidence until 2033".into()
        }
    );
    let shown = tenant
        .get_change(&stored.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(shown.request.title, "Emu-3141 title");
    store.close().await;
}

async fn payload_retention_does_not_erase_the_records(backend: Backend) {
    let db = fresh(backend).await;
    let store = connect(&db, &KEK).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    let stored = approved_change(&store, "Dingo-1618", "ok").await;
    // Eight years on, every payload has expired; the change still says what rita asked for.
    let later = Utc::now() + chrono::Duration::days(8 * 365);
    let done = store
        .apply_retention(&steward_store::Retention::default(), later)
        .await
        .expect("retention");
    assert!(done.payloads_deleted > 0, "{done:?}");
    let shown = tenant
        .get_change(&stored.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(shown.request.title, "Dingo-1618 title");
    store.close().await;
}

async fn older_databases_are_sealed_by_the_migration(backend: Backend) {
    let db = fresh(backend).await;
    let store = connect(&db, &KEK).await;
    let stored = approved_change(&store, "Ibis-2718", "ok").await;
    store.close().await;
    // Make it look like a database from before sealed text: the document in clear, a bare key,
    // migration 8 not applied.
    let mut plain = serde_json::to_value(&stored).expect("json");
    plain["request"]["title"] = json!("Legacy-Ibis title");
    plain["decisions"][0]["comment"] = json!("Legacy-Heron comment");
    let bare = "11".repeat(32);
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect");
    for sql in [
        format!(
            "UPDATE changes SET document = '{}' WHERE number = {}",
            plain.to_string().replace('\'', "''"),
            stored.id.number()
        ),
        format!(
            "INSERT INTO audit_subject_keys (subject, key, created_at) VALUES ('default:lena', '{bare}', '2026-01-01T00:00:00.000000Z')"
        ),
        "DELETE FROM steward_migrations WHERE version = 8".to_owned(),
        "DROP TABLE payload_kek_check".to_owned(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.close().await.ok();

    let store = connect(&db, &KEK).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    let shown = tenant
        .get_change(&stored.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(shown.request.title, "Legacy-Ibis title");
    assert_eq!(shown.decisions[0].comment, "Legacy-Heron comment");
    let documents: Vec<String> = raw(&db, "SELECT document FROM changes")
        .await
        .iter()
        .map(|r| r.try_get("document").expect("document"))
        .collect();
    assert!(
        documents.iter().all(|d| !d.contains("Legacy-")),
        "the migration left text in clear: {documents:?}"
    );
    let key: String = raw(
        &db,
        "SELECT key FROM audit_subject_keys WHERE subject = 'default:lena'",
    )
    .await[0]
        .try_get("key")
        .expect("key");
    assert!(key.starts_with("w1:") && !key.contains(&bare), "{key}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_created_private() {
    let db = fresh(Backend::Sqlite).await;
    let store = connect(&db, &KEK).await;
    approved_change(&store, "Kea-1", "ok").await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(db.dir.path()).expect("dir") {
            let path = entry.expect("entry").path();
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            seen.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
        }
        assert!(seen.contains(&Some("steward.db-wal".into())), "{seen:?}");
    }
    store.close().await;
}

both_backends!(
    erasure_erases_every_copy_of_what_a_person_wrote,
    a_legal_hold_keeps_the_text_readable,
    payload_retention_does_not_erase_the_records,
    older_databases_are_sealed_by_the_migration,
);
