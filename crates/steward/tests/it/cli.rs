//! The `steward` binary as a user runs it: `steward serve` in a process of its own, and the CLI
//! client commands against it, on SQLite and on PostgreSQL.

use crate::helpers::{Backend, Run, TestDb, run_steward};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_steward");

/// A `steward serve` process, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(data_dir: &Path, database_url: Option<&str>) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("STEWARD_DATABASE_URL")
            .env_remove("STEWARD_BOOTSTRAP_TOKEN")
            .env_remove("STEWARD_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let mut child = command.spawn().expect("steward serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let url = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("steward serve did not start: {seen:#?}"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
            seen.push(line);
        };
        Server {
            child,
            url,
            stderr: rx,
        }
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait");
        // Drain so the reader thread ends.
        while self.stderr.try_recv().is_ok() {}
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn steward(server: &Server, token: &str, args: &[&str]) -> Run {
    run_steward(&server.url, token, args)
}

fn ok_json(server: &Server, token: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let run = steward(server, token, &all);
    assert_eq!(run.code, 0, "steward {args:?}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

fn database(backend: Backend) -> TestDb {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(TestDb::new(backend))
}

const CHANGE_YAML: &str = r#"
title: Promote fraud model v7 to champion
description: Retrained on October data; offline AUC +0.8pt.
category: model-deployment
targets: [fraud-scoring]
environment: production
impact: {data: low, availability: medium, compliance: low}
implementation_plan: Move MLflow alias champion from v6 to v7.
rollback_plan: Move alias champion back to v6.
window: {start: "2026-12-01T22:00:00Z", end: "2026-12-01T23:00:00Z"}
"#;

fn the_five_minute_tour(backend: Backend) {
    let db = database(backend);
    let data_dir = db.dir.path().join("data");
    let url = (backend == Backend::Postgres).then_some(db.url.as_str());
    let server = Server::start(&data_dir, url);

    // The generated admin token is in a file only its owner can read.
    let token_file = data_dir.join("admin.token");
    let admin = std::fs::read_to_string(&token_file).expect("admin token file");
    let admin = admin.trim();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let mia = ok_json(
        &server,
        admin,
        &["user", "create", "mia", "--role", "manager"],
    );
    let mia = mia["token"].as_str().expect("token").to_owned();
    let rita = ok_json(
        &server,
        admin,
        &["user", "create", "rita", "--role", "requester"],
    );
    let rita = rita["token"].as_str().expect("token").to_owned();
    ok_json(
        &server,
        &mia,
        &[
            "target",
            "create",
            "fraud-scoring",
            "--kind",
            "model_deployment",
            "--owner",
            "mia",
            "--environment",
            "production",
            "--criticality",
            "medium",
        ],
    );
    let file = db.dir.path().join("change.yaml");
    std::fs::write(&file, CHANGE_YAML).expect("write");
    let file = file.to_str().expect("path");

    let submitted = ok_json(&server, &rita, &["change", "submit", file]);
    for key in ["id", "type", "state"] {
        assert!(submitted[key].is_string(), "{key} in {submitted}");
    }
    assert!(submitted["risk"]["score"].is_u64());
    assert!(submitted["risk"]["factors"].is_array());
    assert!(submitted["approvals"]["required"].is_array());
    assert!(submitted["approvals"]["given"].is_array());
    assert_eq!(submitted["state"], "pending_approval");
    let id = submitted["id"].as_str().expect("id");

    // The requester cannot approve: exit 1, one readable line naming what it would take.
    let run = steward(
        &server,
        &rita,
        &["change", "approve", id, "--comment", "mine"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("needs the permission approve_changes"),
        "{}",
        run.stderr
    );

    let run = steward(
        &server,
        &mia,
        &["change", "approve", id, "--comment", "rollback checked"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("state approved"), "{}", run.stdout);

    let shown = steward(&server, &rita, &["change", "show", id]);
    assert_eq!(shown.code, 0);
    for expected in [
        "state:       approved",
        "risk:",
        "impact.availability",
        "owner:mia",
        "change.approved",
    ] {
        assert!(
            shown.stdout.contains(expected),
            "{expected} missing from:\n{}",
            shown.stdout
        );
    }
    let listed = ok_json(&server, &rita, &["change", "list", "--state", "approved"]);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let overdue = ok_json(&server, &rita, &["change", "list", "--overdue"]);
    assert_eq!(
        overdue,
        serde_json::json!({"items": [], "next_cursor": null})
    );

    // Bad input: a file with bad fields names them on one line.
    let bad = db.dir.path().join("bad.yaml");
    std::fs::write(&bad, "title: x\nenvironment: prod\n").expect("write");
    let run = steward(
        &server,
        &rita,
        &["change", "submit", bad.to_str().expect("path")],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("environment: 'prod' is not one of"),
        "{}",
        run.stderr
    );
    let run = steward(&server, &rita, &["change", "submit", "/no/such/file.yaml"]);
    assert_eq!(
        (run.code, run.stderr.lines().count()),
        (1, 1),
        "{}",
        run.stderr
    );

    // SIGTERM shuts down gracefully; a restart keeps everything and does not bootstrap again.
    assert!(server.stop().success());
    let server = Server::start(&data_dir, url);
    assert_eq!(
        std::fs::read_to_string(&token_file).expect("token").trim(),
        admin
    );
    let shown = ok_json(&server, &rita, &["change", "show", id]);
    assert_eq!(shown["state"], "approved");
    assert!(server.stop().success());
}

fn an_unreachable_server_is_one_readable_line() {
    let output = Command::new(BIN)
        .args([
            "change",
            "list",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "x",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot reach the Steward server"),
        "{stderr}"
    );
}

/// Submissions race a `kill -9`; after a restart every acknowledged change is there with its audit
/// events, and the audit sequence has no gap.
fn acknowledged_submissions_survive_kill_9(backend: Backend) {
    let db = database(backend);
    let data_dir = db.dir.path().join("data");
    let url = (backend == Backend::Postgres).then_some(db.url.as_str());
    let server = Server::start(&data_dir, url);
    let admin = std::fs::read_to_string(data_dir.join("admin.token")).expect("token");
    let admin = admin.trim().to_owned();
    let rita = ok_json(
        &server,
        &admin,
        &["user", "create", "rita", "--role", "requester"],
    );
    let rita = rita["token"].as_str().expect("token").to_owned();
    ok_json(
        &server,
        &admin,
        &["user", "create", "mia", "--role", "manager"],
    );
    ok_json(
        &server,
        &admin,
        &[
            "target",
            "create",
            "fraud-scoring",
            "--kind",
            "model_deployment",
            "--owner",
            "mia",
            "--environment",
            "production",
            "--criticality",
            "medium",
        ],
    );
    let mut body: Value = yaml_to_json(CHANGE_YAML);
    // Without a window: identical windows on one target would make every submission a conflict
    // with all before it, which is what the calendar tests cover, not this one.
    if let Some(doc) = body.as_object_mut() {
        doc.remove("window");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let acknowledged: Vec<String> = runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut clients = tokio::task::JoinSet::new();
        // Counts acknowledgements, so the kill lands mid-stream however fast the machine is.
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..8 {
            let (http, base, token, body, answered) = (
                http.clone(),
                server.url.clone(),
                rita.clone(),
                body.clone(),
                answered.clone(),
            );
            clients.spawn(async move {
                let mut ids = Vec::new();
                // Until the server dies; an answer that never came is not an acknowledgement.
                while let Ok(response) = http
                    .post(format!("{base}/api/v1/changes"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    if response.status() != reqwest::StatusCode::CREATED {
                        break;
                    }
                    match response.json::<Value>().await {
                        Ok(change) => {
                            ids.push(change["id"].as_str().unwrap_or_default().to_owned());
                            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
                ids
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while answered.load(std::sync::atomic::Ordering::Relaxed) < 20
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut server = server;
        server.child.kill().expect("kill -9");
        server.child.wait().expect("reaped");
        let mut ids = Vec::new();
        while let Some(result) = clients.join_next().await {
            ids.extend(result.expect("client task"));
        }
        ids
    });
    assert!(
        acknowledged.len() >= 10,
        "too few submissions before the kill: {}",
        acknowledged.len()
    );

    let server = Server::start(&data_dir, url);
    for id in &acknowledged {
        let shown = ok_json(&server, &rita, &["change", "show", id]);
        let actions: Vec<&str> = shown["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|h| h["action"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            actions,
            ["change.created", "change.submitted", "change.routed"],
            "{id}"
        );
    }
    let stored = ok_json(&server, &rita, &["change", "list", "--all"]);
    let stored = stored["items"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        stored >= acknowledged.len(),
        "{stored} stored < {} acknowledged",
        acknowledged.len()
    );
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&store_url(&db, &data_dir, backend))
            .await
            .expect("connect");
        let seqs: Vec<i64> = sqlx::query("SELECT seq FROM audit_events ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("select")
            .iter()
            .map(|r| sqlx::Row::try_get::<i64, _>(r, "seq").expect("seq"))
            .collect();
        assert_eq!(
            seqs,
            (0..seqs.len() as i64).collect::<Vec<_>>(),
            "the audit sequence has a gap"
        );
        pool.close().await;
    });
    // The verifiable log survived the kill as well.
    let run = steward(&server, &admin, &["audit", "verify"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("verified: "), "{}", run.stdout);
    assert!(server.stop().success());
}

fn store_url(db: &TestDb, data_dir: &Path, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.join("steward.db").display()),
        Backend::Postgres => db.url.clone(),
    }
}

fn yaml_to_json(yaml: &str) -> Value {
    yaml_serde::from_str(yaml).expect("yaml")
}

#[test]
fn kill_9_on_sqlite() {
    acknowledged_submissions_survive_kill_9(Backend::Sqlite);
}

#[test]
fn kill_9_on_postgres() {
    acknowledged_submissions_survive_kill_9(Backend::Postgres);
}

#[test]
fn tour_on_sqlite() {
    the_five_minute_tour(Backend::Sqlite);
}

#[test]
fn tour_on_postgres() {
    the_five_minute_tour(Backend::Postgres);
}

#[test]
fn unreachable_server() {
    an_unreachable_server_is_one_readable_line();
}
