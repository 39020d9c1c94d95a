//! The verifiable audit log end to end: tampering done directly in the database (guards off) is
//! caught by `steward audit verify`, which names the first bad index; exports verify offline and
//! against a checkpoint kept from an earlier visit. Both backends.

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Run, TestApp, TestDb, cast, change, config, id, run_steward,
};
use reqwest::StatusCode;
use serde_json::json;
use std::process::Command;
use steward_server::Clock;

const BIN: &str = env!("CARGO_BIN_EXE_steward");

fn steward(app: &TestApp, args: &[&str]) -> Run {
    run_steward(&app.base, ADMIN_TOKEN, args)
}

/// A log with some history: users, a target, catalog items, and a few decided changes.
async fn history(app: &TestApp) {
    let c = cast(app).await;
    for _ in 0..4 {
        let changed = app.submit_ok(&c.rita, change(json!({}))).await;
        app.decide(&c.mia, &id(&changed), "approve", "ok").await;
    }
}

async fn public_key(app: &TestApp) -> String {
    let (status, body) = app.get("/api/v1/audit/public-key", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["key"].as_str().expect("key").to_owned()
}

async fn size(app: &TestApp) -> u64 {
    let (_, checkpoint) = app.get("/api/v1/audit/checkpoint", ADMIN_TOKEN).await;
    checkpoint["size"].as_u64().expect("size")
}

/// Runs SQL as a DBA who has switched the guards off.
async fn as_dba(db: &TestDb, backend: Backend, statements: &[String]) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    let mut all: Vec<String> = match backend {
        Backend::Sqlite => [
            "audit_events_refuse_update",
            "audit_events_refuse_delete",
            "audit_nodes_refuse_update",
            "audit_nodes_refuse_delete",
        ]
        .iter()
        .map(|t| format!("DROP TRIGGER IF EXISTS {t}"))
        .chain(["PRAGMA foreign_keys = OFF".to_owned()])
        .collect(),
        // Replica mode disables user triggers and foreign keys for this session.
        Backend::Postgres => vec!["SET session_replication_role = replica".to_owned()],
    };
    all.extend(statements.iter().cloned());
    for sql in all {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn verify_fails_at(app: &TestApp, key: &str, index: u64, needle: &str) {
    let run = steward(app, &["audit", "verify", "--public-key", key]);
    assert_eq!(run.code, 1, "tampering went unnoticed: {}", run.stdout);
    let line = run.stderr.trim();
    assert!(
        line.contains(&format!("verification failed at index {index}: ")),
        "{line}"
    );
    assert!(line.contains(needle), "{line}");
}

async fn tampering_is_detected_and_located(backend: Backend) {
    type Tamper = fn(u64) -> (Vec<String>, u64, &'static str);
    let cases: [(&str, Tamper); 5] = [
        ("one byte of an entry", |_| {
            (vec!["UPDATE audit_events SET entry = REPLACE(entry, '\"time\":\"2', '\"time\":\"3') WHERE seq = 12".into()], 12, "leaf hash")
        }),
        ("a deleted entry", |_| {
            (
                vec![
                    "DELETE FROM audit_payloads WHERE seq = 9".into(),
                    "DELETE FROM audit_events WHERE seq = 9".into(),
                ],
                9,
                "entry missing",
            )
        }),
        ("two entries swapped", |_| {
            (
                vec!["UPDATE audit_events SET entry = CASE seq WHEN 10 THEN (SELECT entry FROM audit_events WHERE seq = 11) \
                      ELSE (SELECT entry FROM audit_events WHERE seq = 10) END WHERE seq IN (10, 11)"
                    .into()],
                10,
                "leaf hash",
            )
        }),
        ("a truncated tail", |n| {
            (
                vec![
                    format!("DELETE FROM audit_payloads WHERE seq >= {}", n - 3),
                    format!("DELETE FROM audit_events WHERE seq >= {}", n - 3),
                ],
                n - 3,
                "truncated",
            )
        }),
        ("a forged entry inserted", |_| {
            (
                vec![
                    "UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= 7".into(),
                    "UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000".into(),
                    "INSERT INTO audit_events (seq, event_id, tenant_id, occurred_at, actor, action, subject_type, subject_id, outcome, entry) \
                     SELECT 7, 'forged', tenant_id, occurred_at, 'mallory', action, subject_type, subject_id, outcome, \
                     REPLACE(entry, '\"actor\":\"', '\"actor\":\"mallory-') FROM audit_events WHERE seq = 8"
                        .into(),
                ],
                7,
                "leaf hash",
            )
        }),
    ];
    for (what, tamper) in cases {
        let db = TestDb::new(backend).await;
        let app = TestApp::spawn(&db).await;
        history(&app).await;
        let key = public_key(&app).await;
        let n = size(&app).await;
        assert!(n >= 20, "{n}");
        let run = steward(&app, &["audit", "verify", "--public-key", &key]);
        assert_eq!(
            run.code, 0,
            "{what}: the untouched log must verify: {}",
            run.stderr
        );
        let (statements, index, needle) = tamper(n);
        as_dba(&db, backend, &statements).await;
        verify_fails_at(&app, &key, index, needle);
        app.stop().await;
    }
}

async fn bundles_verify_offline_and_against_a_kept_checkpoint(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    history(&app).await;
    let key = public_key(&app).await;
    let dir = tempfile::tempdir().expect("dir");
    let first = dir.path().join("first");
    let first_s = first.to_str().expect("path");
    let run = steward(&app, &["audit", "export", "--out", first_s]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for file in [
        "entries.jsonl",
        "checkpoints.json",
        "checkpoint",
        "public-key.txt",
        "README.md",
    ] {
        assert!(first.join(file).is_file(), "{file} missing from the bundle");
    }
    // Offline: the server is not needed (it is stopped first).
    app.stop().await;
    let offline = Command::new(BIN)
        .args(["audit", "verify", "--bundle", first_s, "--public-key", &key])
        .env("STEWARD_URL", "http://127.0.0.1:9")
        .output()
        .expect("runs");
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert!(String::from_utf8_lossy(&offline.stdout).starts_with("verified: "));

    // More events, a second export; it extends the kept checkpoint.
    let mut again = config(&db);
    again.bootstrap_token = None;
    let app = TestApp::spawn_with(again, Clock::default()).await;
    let rita = app.user("rita2", &["requester"]).await;
    app.submit_ok(&rita, change(json!({}))).await;
    let second = dir.path().join("second");
    let second_s = second.to_str().expect("path");
    assert_eq!(
        steward(&app, &["audit", "export", "--out", second_s]).code,
        0
    );
    let kept = first.join("checkpoint");
    let kept_s = kept.to_str().expect("path");
    let run = steward(
        &app,
        &[
            "audit",
            "verify",
            "--bundle",
            second_s,
            "--public-key",
            &key,
            "--previous",
            kept_s,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The live log is consistent with the kept checkpoint too, and proofs check out.
    assert_eq!(
        steward(
            &app,
            &[
                "audit",
                "verify",
                "--public-key",
                &key,
                "--previous",
                kept_s
            ]
        )
        .code,
        0
    );
    let run = steward(&app, &["audit", "prove", "--index", "3"]);
    assert!(
        run.stdout
            .contains("verified against the signed checkpoint"),
        "{}",
        run.stdout
    );

    // A rewritten history (a new database signed with the same key) is not consistent with it.
    let forged_db = TestDb::new(backend).await;
    let forger = TestApp::spawn(&forged_db).await;
    forger.user("someone-else", &["requester"]).await;
    history(&forger).await;
    let run = steward(
        &forger,
        &[
            "audit",
            "verify",
            "--public-key",
            &key,
            "--previous",
            kept_s,
        ],
    );
    assert_eq!(run.code, 1, "a rewritten history verified: {}", run.stdout);
    assert!(
        run.stderr.contains("the previous checkpoint you kept"),
        "{}",
        run.stderr
    );
    forger.stop().await;
    app.stop().await;
}

async fn proofs_through_the_api_and_who_may_read_the_log(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    history(&app).await;
    let c_rita = app.user("rita9", &["requester"]).await;
    assert_eq!(
        app.get("/api/v1/audit/checkpoint", &c_rita).await.0,
        StatusCode::FORBIDDEN
    );
    let auditor = app.user("audrey", &["auditor"]).await;
    let (status, checkpoint) = app.get("/api/v1/audit/checkpoint", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    let n = checkpoint["size"].as_u64().expect("size");
    let key = steward_audit::checkpoint::VerifierKey::parse(&public_key(&app).await).expect("key");
    let signed = key
        .verify(checkpoint["note"].as_str().expect("note"))
        .expect("signature");
    assert_eq!(signed.size, n);
    let hashes = |v: &serde_json::Value| -> Vec<steward_audit::Hash> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|h| steward_audit::Hash::from_hex(h.as_str().expect("hex")).expect("hash"))
            .collect()
    };
    for index in [0, 1, n / 2, n - 1] {
        let (status, p) = app
            .get(
                &format!("/api/v1/audit/proofs/inclusion?index={index}"),
                &auditor,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{p}");
        let leaf =
            steward_audit::Hash::from_hex(p["leaf_hash"].as_str().expect("leaf")).expect("hash");
        steward_audit::proof::verify_inclusion(index, n, &leaf, &hashes(&p["proof"]), &signed.root)
            .expect("included");
    }
    let (_, p) = app
        .get(
            &format!("/api/v1/audit/proofs/consistency?first=5&second={n}"),
            &auditor,
        )
        .await;
    let (_, old) = app
        .get("/api/v1/audit/proofs/inclusion?index=0&size=5", &auditor)
        .await;
    assert_eq!(old["size"], 5);
    // The root of the first 5 leaves, from the leaves themselves.
    let (_, leaves) = app.get("/api/v1/audit/leaves?limit=5", &auditor).await;
    let first5: Vec<steward_audit::Hash> = crate::helpers::items(&leaves)
        .iter()
        .map(|l| steward_audit::hash::leaf_hash(l["entry"].as_str().expect("entry").as_bytes()))
        .collect();
    let root5 = steward_audit::hash::root_of(&first5);
    steward_audit::proof::verify_consistency(5, n, &root5, &signed.root, &hashes(&p["proof"]))
        .expect("consistent");
    // By event id, and bad requests.
    let (_, leaf) = app
        .get("/api/v1/audit/leaves?from=2&limit=1", &auditor)
        .await;
    let entry = steward_audit::entry::Entry::parse(
        leaf["items"][0]["entry"]
            .as_str()
            .expect("entry")
            .as_bytes(),
    )
    .expect("entry");
    let (status, p) = app
        .get(
            &format!("/api/v1/audit/proofs/inclusion?event_id={}", entry.event_id),
            &auditor,
        )
        .await;
    assert_eq!((status, p["index"].as_u64()), (StatusCode::OK, Some(2)));
    assert_eq!(
        app.get(
            &format!("/api/v1/audit/proofs/inclusion?index={n}&size={n}"),
            &auditor
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, body) = app
        .get(
            &format!("/api/v1/audit/proofs/inclusion?index=0&size={}", n + 5),
            &auditor,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["details"]["fields"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("the log has"),
        "{body}"
    );
    assert_eq!(
        app.get("/api/v1/audit/proofs/inclusion?event_id=nope", &auditor)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            "/api/v1/audit/proofs/consistency?first=9&second=3",
            &auditor
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

fn approval_details(shown: &serde_json::Value) -> serde_json::Value {
    shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["action"] == "change.approved")
        .map(|h| h["details"].clone())
        .expect("approval event")
}

async fn erasure_destroys_a_subjects_payloads_and_keeps_every_proof(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let changed = app.submit_ok(&c.rita, change(json!({}))).await;
    let cid = id(&changed);
    app.decide(&c.mia, &cid, "approve", "mia's personal remark")
        .await;
    let key = public_key(&app).await;
    let path = format!("/api/v1/changes/{cid}");
    let show = || {
        let (path, token, app) = (path.clone(), c.rita.clone(), &app);
        async move { app.get(&path, &token).await.1 }
    };
    assert_eq!(
        approval_details(&show().await)["comment"],
        "owner:mia: mia's personal remark"
    );

    // Requesters may not erase; a legal hold blocks erasure until lifted.
    let (status, _) = app
        .post(
            "/api/v1/audit/subjects/mia/erase",
            &c.rita,
            json!({"basis": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let officer = app.user("olga", &["compliance_officer"]).await;
    let run = steward(
        &app,
        &["audit", "hold", "mia", "--reason", "litigation 2026-17"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = steward(
        &app,
        &[
            "audit",
            "erase",
            "mia",
            "--basis",
            "GDPR Art. 17 request 4411",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("under legal hold (litigation 2026-17)"),
        "{}",
        run.stderr
    );
    assert_eq!(steward(&app, &["audit", "release", "mia"]).code, 0);

    let (status, body) = app
        .post(
            "/api/v1/audit/subjects/mia/erase",
            &officer,
            json!({"basis": "GDPR Art. 17 request 4411"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["payloads_erased"].as_u64().unwrap_or(0) >= 1, "{body}");
    // Mia's payloads are unreadable; rita's are not; the log verifies; the erasure is an event.
    let shown = show().await;
    assert_eq!(approval_details(&shown), serde_json::Value::Null);
    let created = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["action"] == "change.created")
        .cloned();
    assert_eq!(
        created.map(|h| h["details"]["after"]["state"].clone()),
        Some(json!("draft"))
    );
    let run = steward(&app, &["audit", "verify", "--public-key", &key]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let leaves = crate::helpers::all_items(&app, "/api/v1/audit/leaves", ADMIN_TOKEN).await;
    let erasure = leaves
        .iter()
        .filter_map(|l| {
            steward_audit::entry::Entry::parse(l["entry"].as_str().unwrap_or("").as_bytes()).ok()
        })
        .find(|e| e.action == "audit.subject_erased")
        .expect("the erasure is itself an event");
    assert_eq!(
        (erasure.actor.as_str(), erasure.subject_id.as_str()),
        ("olga", "default:mia")
    );
    // Unknown subjects are named.
    let (status, _) = app
        .post(
            "/api/v1/audit/subjects/nobody/erase",
            &officer,
            json!({"basis": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn retention_deletes_expired_payloads_never_leaves(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let changed = app.submit_ok(&c.rita, change(json!({}))).await;
    let cid = id(&changed);
    app.decide(&c.mia, &cid, "approve", "ok").await;
    let run = steward(
        &app,
        &["audit", "hold", "rita", "--reason", "regulator inquiry"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let key = public_key(&app).await;
    let before = size(&app).await;
    // Nothing has expired yet.
    let (_, done) = app
        .post("/api/v1/audit/retention", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(done["payloads_deleted"], 0);
    // Eight years later, everything past the default seven years goes, except what is on hold.
    app.clock.advance(chrono::Duration::days(8 * 365));
    let (status, done) = app
        .post("/api/v1/audit/retention", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["payloads_deleted"].as_u64().unwrap_or(0) > 0, "{done}");
    let (_, shown) = app.get(&format!("/api/v1/changes/{cid}"), &c.rita).await;
    assert_eq!(
        approval_details(&shown),
        serde_json::Value::Null,
        "mia's expired payload is gone"
    );
    let rita_event = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["action"] == "change.created")
        .cloned();
    assert!(
        rita_event.is_some_and(|h| !h["details"].is_null()),
        "rita is on legal hold: her payloads stay"
    );
    assert!(size(&app).await > before, "retention is itself an event");
    let run = steward(&app, &["audit", "verify", "--public-key", &key]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// SOX change evidence under retention: a class the law keeps refuses erasure of anyone who
/// appears in it, naming the basis and when it lapses; after that, erasure goes ahead.
async fn a_retention_class_kept_by_law_refuses_erasure_until_it_lapses(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = crate::helpers::config(&db);
    config
        .audit_retention
        .by_class
        .insert("change".into(), 3650);
    config
        .audit_retention
        .kept_by_law
        .insert("change".into(), "SOX 404 change evidence".into());
    let app = TestApp::spawn_with(config, Default::default()).await;
    let c = cast(&app).await;
    let cid = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let submitted_at = app.clock.now();
    let run = steward(
        &app,
        &[
            "audit",
            "erase",
            "rita",
            "--basis",
            "GDPR Art. 17 request 9",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let until = (submitted_at + chrono::Duration::days(3650))
        .date_naive()
        .to_string();
    assert!(
        run.stderr
            .contains("rita appears in change records the law requires keeping until")
            && run.stderr.contains(&until)
            && run.stderr.contains("(SOX 404 change evidence)"),
        "{}",
        run.stderr
    );
    let (status, body) = app
        .post(
            "/api/v1/audit/subjects/rita/erase",
            ADMIN_TOKEN,
            json!({"basis": "GDPR"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["details"]["reason"], "retained_by_law", "{body}");
    // Her text is still there: nothing was half-erased.
    let (_, shown) = app.get(&format!("/api/v1/changes/{cid}"), &c.mia).await;
    assert_eq!(shown["title"], "Promote fraud model v7", "{shown}");
    // Ten years on, the evidence has lapsed and so has the refusal.
    app.clock.advance(chrono::Duration::days(3651));
    let run = steward(
        &app,
        &[
            "audit",
            "erase",
            "rita",
            "--basis",
            "GDPR Art. 17 request 9",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

both_backends!(
    a_retention_class_kept_by_law_refuses_erasure_until_it_lapses,
    erasure_destroys_a_subjects_payloads_and_keeps_every_proof,
    retention_deletes_expired_payloads_never_leaves,
    tampering_is_detected_and_located,
    bundles_verify_offline_and_against_a_kept_checkpoint,
    proofs_through_the_api_and_who_may_read_the_log,
);
