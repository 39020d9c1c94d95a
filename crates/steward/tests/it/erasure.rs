//! Erasure that erases (issue #14), through the real server and the `steward` binary: what a
//! person wrote is never stored in clear (the test reads the SQLite file and its WAL, and every
//! PostgreSQL table, directly), and after `steward audit erase` no answer, CLI output or export
//! holds it, while the record keeps its ids, states, people and times and the log verifies.
//! Payload keys are wrapped by a KEK outside the database, so a copy of the database alone opens
//! nothing; the data directory is 0700 and every file in it 0600.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, config, run_steward};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, Row};
use std::path::Path;

/// What rita writes: in her change's title, description and plans.
const RITA: &str = "Quokka7731";
/// What mia writes approving it.
const MIA: &str = "Wombat4419";
/// What ivan writes opening, resolving and reviewing an incident.
const IVAN: &str = "Numbat5521";

/// Everything the database holds, as text: SQLite's files (the database, its WAL and shared
/// memory); every row of every PostgreSQL table, cast to text.
async fn raw_storage(db: &TestDb, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let mut all = String::new();
            for entry in std::fs::read_dir(db.dir.path()).expect("data dir") {
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
            assert!(all.contains("audit_events"), "the database file was read");
            all
        }
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&db.url)
                .await
                .expect("connect");
            let tables = sqlx::query(
                "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
                 WHERE table_schema = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("tables");
            let mut all = String::new();
            for table in tables {
                let name: String = table.try_get("name").expect("name");
                let sql = format!("SELECT CAST(t AS TEXT) AS row FROM {name} t");
                for row in sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .expect("rows")
                {
                    all.push_str(&row.try_get::<String, _>("row").expect("row text"));
                    all.push('\n');
                }
            }
            conn.close().await.ok();
            assert!(all.contains("change.created"), "the tables were read");
            all
        }
    }
}

fn ok(run: crate::helpers::Run, what: &str) -> String {
    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    run.stdout
}

async fn after_erasure_no_answer_export_or_table_holds_the_text(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let max = app.user("maxine", &["manager"]).await;
    let steward = |token: &str, args: &[&str]| run_steward(&app.base, token, args);
    let now = app.clock.now();

    // Rita asks, through the CLI; mia approves with a comment; maxine implements.
    let file = db.dir.path().join("change.json");
    let request = json!({
        "title": format!("{RITA} promote the fraud model"),
        "description": format!("{RITA}: retrained on rita's October data"),
        "category": "model-deployment",
        "targets": ["fraud-scoring"],
        "environment": "staging",
        "impact": {"data": "low", "availability": "low", "compliance": "low"},
        "implementation_plan": format!("{RITA} move alias champion to v7"),
        "rollback_plan": format!("{RITA} move alias champion back to v6"),
        "verification_plan": format!("{RITA} watch the error rate"),
        "window": {"start": (now - Duration::minutes(5)).to_rfc3339(),
                   "end": (now + Duration::hours(1)).to_rfc3339()},
    });
    std::fs::write(&file, request.to_string()).expect("write the request");
    let file = file.to_str().expect("path");
    ok(steward(&c.rita, &["change", "submit", file]), "submit");
    let approval = format!("{MIA} checked the offline metrics");
    ok(
        steward(
            &c.mia,
            &["change", "approve", "CHG-1", "--comment", &approval],
        ),
        "approve",
    );
    for step in ["schedule", "implement", "complete"] {
        let (status, body) = app.step(&max, "CHG-1", step).await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }

    // Ivan opens an incident by hand; the change is its suspect (quoting rita's title).
    app.clock.advance(Duration::minutes(2));
    let title = format!("{IVAN} fraud scores drifting");
    ok(
        steward(
            &ivan,
            &[
                "incident",
                "open",
                "--title",
                &title,
                "--severity",
                "sev3",
                "--target",
                "fraud-scoring",
            ],
        ),
        "incident open",
    );
    let note = format!("{IVAN} rolled the canary back");
    ok(
        steward(&ivan, &["incident", "resolve", "INC-1", "--comment", &note]),
        "incident resolve",
    );
    let shown = ok(steward(&c.rita, &["change", "show", "CHG-1"]), "show");
    assert!(shown.contains(RITA) && shown.contains(MIA), "{shown}");
    let incident = ok(
        steward(&ivan, &["incident", "show", "INC-1", "--output", "json"]),
        "incident show",
    );
    assert!(
        incident.contains(RITA),
        "the suspect quotes the title: {incident}"
    );

    let calendar = db.dir.path().join("calendar.ics");
    let calendar_path = calendar.to_str().expect("path");
    ok(
        steward(&c.mia, &["calendar", "--out", calendar_path]),
        "calendar",
    );
    let feed = std::fs::read_to_string(&calendar).expect("feed");
    assert!(feed.contains(RITA), "the feed shows the title: {feed}");

    // Nothing anyone wrote is stored in clear, before or after an erasure.
    let storage = raw_storage(&db, backend).await;
    for text in [RITA, MIA, IVAN] {
        assert!(!storage.contains(text), "{text} is stored in clear");
    }

    // A legal hold refuses the erasure with its reason; lifted, rita is erased.
    ok(
        steward(
            ADMIN_TOKEN,
            &[
                "audit",
                "hold",
                "rita",
                "--reason",
                "SOX 404 evidence, FY2026",
            ],
        ),
        "hold",
    );
    let refused = steward(
        ADMIN_TOKEN,
        &["audit", "erase", "rita", "--basis", "GDPR Art. 17"],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("SOX 404 evidence, FY2026"),
        "{}",
        refused.stderr
    );
    assert!(ok(steward(&c.rita, &["change", "show", "CHG-1"]), "show").contains(RITA));
    ok(
        steward(ADMIN_TOKEN, &["audit", "release", "rita"]),
        "release",
    );
    ok(
        steward(
            ADMIN_TOKEN,
            &[
                "audit",
                "erase",
                "rita",
                "--basis",
                "GDPR Art. 17 request 9",
            ],
        ),
        "erase",
    );

    // Every reader: the CLI (text and JSON), the API, lists, the calendar, incidents, exports.
    let mut answers = vec![
        ok(steward(&c.rita, &["change", "show", "CHG-1"]), "show"),
        ok(
            steward(&c.rita, &["change", "show", "CHG-1", "--output", "json"]),
            "show json",
        ),
        ok(
            steward(&c.mia, &["change", "list", "--output", "json"]),
            "list",
        ),
        ok(
            steward(&ivan, &["incident", "show", "INC-1", "--output", "json"]),
            "incident",
        ),
    ];
    for path in [
        "/api/v1/changes/CHG-1",
        "/api/v1/changes",
        "/api/v1/incidents/INC-1",
    ] {
        let (status, body) = app.get(path, &c.mia).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        answers.push(body.to_string());
    }
    let (_, inbox) = app.get("/api/v1/notifications", &c.mia).await;
    answers.push(inbox.to_string());
    ok(
        steward(&c.mia, &["calendar", "--out", calendar_path]),
        "calendar",
    );
    answers.push(std::fs::read_to_string(&calendar).expect("feed"));
    let bundle = db.dir.path().join("bundle");
    let bundle_path = bundle.to_str().expect("path");
    ok(
        steward(ADMIN_TOKEN, &["audit", "export", "--out", bundle_path]),
        "export",
    );
    for file in std::fs::read_dir(&bundle).expect("bundle") {
        answers.push(std::fs::read_to_string(file.expect("file").path()).expect("bundle file"));
    }
    for answer in &answers {
        assert!(
            !answer.contains(RITA),
            "rita's text is still answered: {answer}"
        );
    }

    // The record stays whole: ids, states, people, times; other people's words are theirs.
    let (_, change) = app.get("/api/v1/changes/CHG-1", &c.mia).await;
    assert_eq!(change["id"], "CHG-1");
    assert_eq!(change["state"], "completed");
    assert_eq!(change["requester"], "rita");
    let text = change.to_string();
    assert!(text.contains("[erased]"), "{text}");
    assert!(text.contains(MIA), "mia's approval comment is hers: {text}");
    assert!(answers[3].contains(IVAN), "ivan's incident text is his");
    let storage = raw_storage(&db, backend).await;
    for text in [RITA, MIA, IVAN] {
        assert!(!storage.contains(text), "{text} is stored in clear");
    }

    // The log still verifies.
    let (_, key) = app.get("/api/v1/audit/public-key", ADMIN_TOKEN).await;
    let key = key["key"].as_str().expect("key").to_owned();
    let verified = ok(
        steward(ADMIN_TOKEN, &["audit", "verify", "--public-key", &key]),
        "verify",
    );
    assert!(verified.starts_with("verified: "), "{verified}");

    // Payload keys are stored wrapped under the KEK in the data directory: a copy of the
    // database without that file opens nothing, and Steward refuses to start on it.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect");
    let keys = sqlx::query("SELECT subject, key FROM audit_subject_keys WHERE key IS NOT NULL")
        .fetch_all(&mut conn)
        .await
        .expect("keys");
    conn.close().await.ok();
    assert!(keys.len() >= 3, "mia, maxine, ivan and admin have keys");
    for row in keys {
        let stored: String = row.try_get("key").expect("key");
        assert!(
            stored.starts_with("w1:") && steward_audit::hex::decode::<32>(&stored).is_none(),
            "a payload key is stored bare: {stored}"
        );
    }
    let elsewhere = tempfile::tempdir().expect("another data directory");
    let mut copy = config(&db);
    copy.data_dir = elsewhere.path().to_owned();
    let refused = steward_server::Application::build(copy).await;
    let error = format!(
        "{:#}",
        refused.expect_err("a server without the KEK is refused")
    );
    assert!(error.contains("key-encryption key"), "{error}");
    app.stop().await;
}

/// The mode bits of a path.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `steward serve` with no configuration creates its data directory 0700 and every file in it
/// (database, WAL, shared memory, admin token, signing key, KEK) 0600.
#[test]
fn the_data_directory_is_private() {
    use std::io::{BufRead, BufReader};
    let parent = tempfile::tempdir().expect("temp dir");
    let data = parent.path().join("steward-data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("STEWARD_DATABASE_URL")
        .env_remove("STEWARD_BOOTSTRAP_TOKEN")
        .env_remove("STEWARD_CONFIG")
        .env_remove("STEWARD_PAYLOAD_KEK_FILE")
        .env_remove("STEWARD_AUDIT_SIGNING_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("steward serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("steward serve stopped: {seen:#?}"))
            .expect("line");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
        seen.push(line);
    };
    // A write, so the WAL holds something.
    let token = std::fs::read_to_string(data.join("admin.token")).expect("admin token");
    let created = run_steward(
        &url,
        token.trim(),
        &["user", "create", "rita", "--role", "requester"],
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(mode(&data), 0o700, "the data directory");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data).expect("data dir") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    files.sort();
    for expected in [
        "admin.token",
        "audit-signing.key",
        "payload-kek",
        "steward.db",
        "steward.db-shm",
        "steward.db-wal",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} missing: {files:?}"
        );
    }
    assert_eq!(
        std::fs::read(data.join("payload-kek")).expect("kek").len(),
        32,
        "32 random bytes"
    );
}

both_backends!(after_erasure_no_answer_export_or_table_holds_the_text);
