//! Execution, verification and automatic rollback, against a real MLflow server and real
//! programs: a change moves `champion` at its window and is rolled back when its metric drops;
//! nothing runs unapproved, outside its window or in a freeze; each rollback trigger fires; a
//! server killed mid-step never runs the step twice.

use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, config, id, run_steward,
};
use crate::mlflow::MlflowServer;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use steward_server::Clock;

/// A server whose execution worker looks for work every 50 ms (or, with `tick_ms`, less often).
async fn spawn(db: &TestDb, tick_ms: u64) -> TestApp {
    let mut config = config(db);
    config.execution.tick = std::time::Duration::from_millis(tick_ms);
    config.execution.secrets.insert(
        "COMPLIANCE".into(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
    );
    TestApp::spawn_with(config, Clock::default()).await
}

/// Polls the change until it is in `state` (shared with the inventory's tests).
pub async fn wait_for_state(app: &TestApp, token: &str, change: &str, state: &str) -> Value {
    wait_until(app, token, change, state, |c| c["state"] == state).await
}

/// Polls the change until `done` holds; `what` names the wait in the failure message.
async fn wait_until(
    app: &TestApp,
    token: &str,
    change: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = app.get(&format!("/api/v1/changes/{change}"), token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{change} never became {what}: {:#}",
            json!({"state": body["state"], "execution": body["execution"]})
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Pushes samples as the monitoring account (the only kind that may).
async fn push(app: &TestApp, name: &str, labels: Value, points: &[(DateTime<Utc>, f64)]) {
    let samples: Vec<Value> = points
        .iter()
        .map(|(t, v)| json!({"name": name, "labels": labels, "value": v, "time": t}))
        .collect();
    let (status, body) = app
        .post(
            "/api/v1/metrics",
            app.monitor().await,
            json!({ "samples": samples }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn actions(change: &Value) -> Vec<String> {
    change["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    json!({"start": from.to_rfc3339(), "end": to.to_rfc3339()})
}

/// A command step that appends `run` to `file`, undone by appending `undo`.
fn journaled_step(file: &Path) -> Value {
    let path = file.display().to_string();
    json!({"name": "write", "kind": "command", "program": "/bin/sh",
           "args": ["-c", format!("echo run >> '{path}'")],
           "undo": {"program": "/bin/sh", "args": ["-c", format!("echo undo >> '{path}'")]},
           "timeout_seconds": 10})
}

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn the_champion_alias_moves_at_its_window_and_rolls_back_when_accuracy_drops(
    backend: Backend,
) {
    let mlflow = MlflowServer::get().await;
    let model = mlflow.model("fraud", 2).await;
    mlflow.set_alias(&model, "champion", "1").await;
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 50).await;
    let c = cast(&app).await;
    let now = app.clock.now();
    let labels = json!({"model": model});
    push(
        &app,
        "accuracy",
        labels.clone(),
        &[
            (now - Duration::minutes(30), 0.90),
            (now - Duration::minutes(20), 0.91),
            (now - Duration::minutes(10), 0.89),
        ],
    )
    .await;
    let submitted = app
        .submit_ok(
            &c.rita,
            change(json!({
                "window": window(now + Duration::minutes(5), now + Duration::hours(2)),
                "steps": [
                    {"name": "promote", "kind": "mlflow_alias", "tracking_uri": mlflow.url,
                     "model": model, "alias": "champion", "version": 2},
                    {"name": "label", "kind": "mlflow_tags", "tracking_uri": mlflow.url,
                     "model": model, "version": "2", "tags": {"deployed_by": "steward"}},
                ],
                "verification": {"period_seconds": 1800, "checks": [
                    {"kind": "metric", "name": "accuracy", "labels": {"model": model}}
                ]},
            })),
        )
        .await;
    let change_id = id(&submitted);
    let (status, approved) = app.decide(&c.mia, &change_id, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "approved");

    // Approved, but its window has not opened: nothing runs.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(mlflow.alias(&model, "champion").await.as_deref(), Some("1"));

    app.clock
        .advance(Duration::minutes(5) + Duration::seconds(1));
    let completed = wait_for_state(&app, &c.rita, &change_id, "completed").await;
    assert_eq!(mlflow.alias(&model, "champion").await.as_deref(), Some("2"));
    assert_eq!(
        mlflow.version_tags(&model, "2").await,
        json!([{"key": "deployed_by", "value": "steward"}])
    );
    assert_eq!(completed["implementer"], "steward");
    assert_eq!(
        completed["execution"]["steps"][0]["snapshot"]["previous"],
        "1"
    );

    // Accuracy falls 30% below its baseline: Steward rolls the change back by itself.
    push(&app, "accuracy", labels, &[(app.clock.now(), 0.63)]).await;
    let rolled_back = wait_for_state(&app, &c.rita, &change_id, "rolled_back").await;
    assert_eq!(mlflow.alias(&model, "champion").await.as_deref(), Some("1"));
    assert!(
        mlflow
            .version_tags(&model, "2")
            .await
            .as_array()
            .is_none_or(|t| t.is_empty()),
        "the tag the change set is gone"
    );
    assert_eq!(rolled_back["execution"]["rollback"]["trigger"], "metric");
    assert!(
        rolled_back["execution"]["rollback"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("worse by 30.0%")),
        "{}",
        rolled_back["execution"]["rollback"]
    );

    let (_, shown) = app
        .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
        .await;
    let history = actions(&shown);
    let expected = [
        "change.approved",
        "change.implementing",
        "change.step_started",
        "change.step_applied",
        "change.step_started",
        "change.step_applied",
        "change.completed",
        "change.verification_failed",
        "change.rollback_started",
        "change.step_undone",
        "change.step_undone",
        "change.rolled_back",
    ];
    let mut at = 0;
    for action in &history {
        if at < expected.len() && action == expected[at] {
            at += 1;
        }
    }
    assert_eq!(at, expected.len(), "the audit trail, in order: {history:?}");
    // Undone last step first.
    let undone: Vec<&Value> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["action"] == "change.step_undone")
        .collect();
    assert_eq!(
        undone[0]["details"]["execution"]["step"], "label",
        "{undone:?}"
    );
    assert_eq!(undone[1]["details"]["execution"]["step"], "promote");

    // The owning manager is told.
    let (_, inbox) = app.get("/api/v1/notifications", &c.mia).await;
    assert!(
        inbox["items"][0]["subject"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("{change_id} was rolled back"))),
        "{inbox}"
    );
    app.stop().await;
}

async fn nothing_runs_unapproved_outside_its_window_or_in_a_freeze(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 50).await;
    let c = cast(&app).await;
    let now = app.clock.now();
    let file = db.dir.path().join("ran.txt");
    let plan = |w: Value| change(json!({"window": w, "steps": [journaled_step(&file)]}));

    // Pending approval with its window open.
    let pending = id(&app
        .submit_ok(&c.rita, plan(window(now, now + Duration::hours(1))))
        .await);
    // Approved, window tomorrow.
    let later = id(&app
        .submit_ok(
            &c.rita,
            plan(window(
                now + Duration::days(1),
                now + Duration::days(1) + Duration::hours(1),
            )),
        )
        .await);
    let (_, body) = app.decide(&c.mia, &later, "approve", "ok").await;
    assert_eq!(body["state"], "approved", "{body}");
    // Approved, window in ten minutes, then a freeze declared over it.
    let frozen = id(&app
        .submit_ok(
            &c.rita,
            plan(window(
                now + Duration::minutes(10),
                now + Duration::hours(1),
            )),
        )
        .await);
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{frozen}/approve"),
            &c.mia,
            json!({"comment": "ok", "acknowledge_conflicts": [pending]}),
        )
        .await;
    assert_eq!(body["state"], "approved", "{status}: {body}");
    let today = now.date_naive();
    let (status, body) = app
        .post(
            "/api/v1/windows",
            ADMIN_TOKEN,
            json!({"name": "incident-freeze", "kind": "freeze", "scope": "target:fraud-scoring",
                "timezone": "UTC", "starts": format!("{}T00:00", today - chrono::Days::new(1)),
                "ends": format!("{}T00:00", today + chrono::Days::new(1)), "reason": "SEV1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.clock.advance(Duration::minutes(11));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    for (change_id, state, refusal) in [
        (&pending, "pending_approval", "not approved"),
        (&later, "approved", "window opens at"),
        (&frozen, "approved", "incident-freeze"),
    ] {
        let (status, body) = app.step(&c.max, change_id, "implement").await;
        assert_eq!(status, StatusCode::CONFLICT, "{change_id}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(refusal)),
            "{change_id}: {body}"
        );
        let (_, shown) = app
            .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
            .await;
        assert_eq!(shown["state"], state, "{change_id}");
        assert!(
            shown["execution"].is_null(),
            "{change_id}: {}",
            shown["execution"]
        );
    }
    assert!(lines(&file).is_empty(), "nothing ran: {:?}", lines(&file));
    app.stop().await;
}

async fn an_implementer_runs_the_steps_and_rolls_them_back_by_hand(backend: Backend) {
    let db = TestDb::new(backend).await;
    // The worker looks once at start-up and then not for an hour: only people start changes.
    let app = spawn(&db, 3_600_000).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let now = app.clock.now();
    let file = db.dir.path().join("ran.txt");
    let change_id = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"window": window(now, now + Duration::hours(1)), "steps": [journaled_step(&file)]})),
        )
        .await);
    app.decide(&c.mia, &change_id, "approve", "ok").await;
    // Neither the requester nor the approver schedules or implements a normal change.
    for token in [&c.rita, &c.mia] {
        let (status, body) = app.step(token, &change_id, "schedule").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, body) = app.step(&ivan, &change_id, "schedule").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in [&c.rita, &c.mia] {
        let (status, body) = app.step(token, &change_id, "implement").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, body) = app.step(&ivan, &change_id, "implement").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "implementing");
    let completed = wait_for_state(&app, &c.rita, &change_id, "completed").await;
    assert_eq!(completed["execution"]["steps"][0]["status"], "applied");
    assert_eq!(lines(&file), ["run"]);
    // The executor reports the outcome; people do not.
    let (status, _) = app.step(&ivan, &change_id, "fail").await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{change_id}/rollback"),
            &ivan,
            json!({"reason": " "}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{change_id}/rollback"),
            &ivan,
            json!({"reason": "customers report slow scoring"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "rolled_back");
    assert_eq!(lines(&file), ["run", "undo"]);
    app.stop().await;
}

/// Submits and approves a change with one journaled step and `checks`, its window open now, and
/// waits for it to be under verification.
async fn verifying(app: &TestApp, file: &Path, checks: Value) -> (crate::helpers::Cast, String) {
    let c = cast(app).await;
    let now = app.clock.now();
    let change_id = id(&app
        .submit_ok(
            &c.rita,
            change(json!({
                "window": window(now, now + Duration::hours(2)),
                "steps": [journaled_step(file)],
                "verification": {"period_seconds": 600, "checks": checks},
            })),
        )
        .await);
    app.decide(&c.mia, &change_id, "approve", "ok").await;
    // Under verification once the steps are done (a failing check may already be rolling back).
    wait_until(app, &c.rita, &change_id, "verifying", |c| {
        !c["execution"]["verification"].is_null()
    })
    .await;
    (c, change_id)
}

async fn rolled_back_by(app: &TestApp, token: &str, change_id: &str, file: &Path, trigger: &str) {
    let rolled_back = wait_for_state(app, token, change_id, "rolled_back").await;
    assert_eq!(
        rolled_back["execution"]["rollback"]["trigger"], trigger,
        "{}",
        rolled_back["execution"]
    );
    assert_eq!(rolled_back["execution"]["rollback"]["by"], "steward");
    assert_eq!(lines(file), ["run", "undo"]);
}

async fn complaints_above_ten_an_hour_roll_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 50).await;
    let file = db.dir.path().join("ran.txt");
    let (c, change_id) = verifying(&app, &file, json!([{"kind": "complaints"}])).await;
    let now = app.clock.now();
    push(
        &app,
        "complaints",
        json!({}),
        &[(now - Duration::minutes(20), 6.0)],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, still) = app
        .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
        .await;
    assert_eq!(
        still["state"], "completed",
        "ten or fewer an hour is tolerated"
    );
    push(&app, "complaints", json!({}), &[(now, 5.0)]).await;
    rolled_back_by(&app, &c.rita, &change_id, &file, "complaints").await;
    app.stop().await;
}

async fn a_failing_compliance_test_rolls_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 50).await;
    let file = db.dir.path().join("ran.txt");
    let check = json!([{"kind": "compliance", "command": {"program": "/bin/sh", "args": ["-c", "echo 'PII column exposed'; exit 3"]}}]);
    let (c, change_id) = verifying(&app, &file, check).await;
    rolled_back_by(&app, &c.rita, &change_id, &file, "compliance").await;
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
        .await;
    assert!(
        shown["execution"]["rollback"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("PII column exposed")),
        "{}",
        shown["execution"]["rollback"]
    );
    app.stop().await;
}

async fn silent_security_controls_roll_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 50).await;
    let file = db.dir.path().join("ran.txt");
    let (c, change_id) = verifying(
        &app,
        &file,
        json!([{"kind": "security_controls", "max_silence_seconds": 30}]),
    )
    .await;
    push(
        &app,
        "security_events",
        json!({"target": "fraud-scoring"}),
        &[(app.clock.now(), 1.0)],
    )
    .await;
    app.clock.advance(Duration::seconds(20));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, still) = app
        .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
        .await;
    assert_eq!(still["state"], "completed");
    app.clock.advance(Duration::seconds(20));
    rolled_back_by(&app, &c.rita, &change_id, &file, "security_controls").await;
    app.stop().await;
}

async fn a_gap_in_the_audit_log_rolls_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 50).await;
    let file = db.dir.path().join("ran.txt");
    let (c, change_id) = verifying(&app, &file, json!([])).await;
    // Someone with database access removes the newest event behind Steward's back.
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    let drop_guard = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_events_refuse_delete",
        Backend::Postgres => "DROP TRIGGER audit_events_refuse_update ON audit_events",
    };
    sqlx::raw_sql(drop_guard)
        .execute(&mut conn)
        .await
        .expect("drop trigger");
    sqlx::raw_sql(
        "DELETE FROM audit_payloads WHERE seq = (SELECT MAX(seq) FROM audit_events); \
         DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)",
    )
    .execute(&mut conn)
    .await
    .expect("delete");
    rolled_back_by(&app, &c.rita, &change_id, &file, "audit_gap").await;
    app.stop().await;
}

async fn a_quiet_verification_period_verifies_the_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 50).await;
    let file = db.dir.path().join("ran.txt");
    let c = cast(&app).await;
    let now = app.clock.now();
    push(
        &app,
        "latency_ms",
        json!({}),
        &[(now - Duration::minutes(5), 100.0)],
    )
    .await;
    let change_id = id(&app
        .submit_ok(
            &c.rita,
            change(json!({
                "window": window(now, now + Duration::hours(2)),
                "steps": [journaled_step(&file)],
                "verification": {"period_seconds": 60, "checks": [
                    {"kind": "metric", "name": "latency_ms", "direction": "lower_is_better"}]},
            })),
        )
        .await);
    app.decide(&c.mia, &change_id, "approve", "ok").await;
    wait_for_state(&app, &c.rita, &change_id, "completed").await;
    // 15% slower: within the 20% the check allows.
    push(&app, "latency_ms", json!({}), &[(app.clock.now(), 115.0)]).await;
    app.clock.advance(Duration::seconds(61));
    let verified = wait_until(&app, &c.rita, &change_id, "verified", |c| {
        !c["execution"]["verification"]["passed_at"].is_null()
    })
    .await;
    assert_eq!(verified["state"], "completed");
    assert_eq!(
        verified["execution"]["verification"]["checks"][0]["status"],
        "passing"
    );
    assert!(actions(&verified).contains(&"change.verified".to_owned()));
    assert_eq!(lines(&file), ["run"]);
    app.stop().await;
}

async fn a_step_without_a_rollback_path_needs_an_irreversible_approval(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db, 3_600_000).await;
    let c = cast(&app).await;
    let one_way = json!({"name": "purge", "kind": "command", "program": "/bin/true"});
    let (status, body) = app
        .submit(&c.rita, change(json!({"steps": [one_way]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(crate::helpers::field_names(&body), ["steps[0].undo"]);
    assert!(body.to_string().contains("irreversible"), "{body}");

    let submitted = app
        .submit_ok(
            &c.rita,
            change(json!({"steps": [one_way], "irreversible": true})),
        )
        .await;
    let change_id = id(&submitted);
    let slots: Vec<&str> = submitted["approvals"]["required"]
        .as_array()
        .expect("slots")
        .iter()
        .filter_map(|s| s["slot"].as_str())
        .collect();
    assert!(slots.contains(&"irreversible"), "{slots:?}");
    let (_, after_owner) = app.decide(&c.mia, &change_id, "approve", "ok").await;
    assert_eq!(after_owner["state"], "pending_approval");
    let (_, after_manager) = app
        .decide(&c.max, &change_id, "approve", "accepted as irreversible")
        .await;
    assert_eq!(after_manager["state"], "approved");
    app.stop().await;
}

const SERVING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A local server standing in for a serving platform's webhook (verifying each Standard Webhooks
/// signature with the shared secret) and for a Prometheus `query_range` endpoint (answering in
/// Prometheus's response format, since no Prometheus server can run here). `latency` is what the
/// series reads after the change.
async fn serving_platform() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    std::sync::Arc<std::sync::Mutex<f64>>,
) {
    use axum::routing::{get, post};
    use std::sync::{Arc, Mutex};
    let calls: Arc<Mutex<Vec<Value>>> = Default::default();
    let latency = Arc::new(Mutex::new(100.0));
    let log = calls.clone();
    let hook = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let log = log.clone();
        async move {
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let secret = steward_connectors::standard_webhooks::Secret::parse(SERVING_SECRET)
                .expect("secret");
            if secret
                .verify(
                    h("webhook-id").as_deref(),
                    h("webhook-timestamp").as_deref(),
                    h("webhook-signature").as_deref(),
                    &body,
                    Utc::now().timestamp(),
                )
                .is_err()
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"error": "bad signature"})),
                );
            }
            let message: Value = serde_json::from_slice(&body).expect("JSON");
            log.lock()
                .expect("lock")
                .push(json!({"id": h("webhook-id"), "message": message}));
            let answer = match message["phase"].as_str() {
                Some("snapshot") => json!({"replicas": 2}),
                _ if message["step"]["check"] == "compliance" => json!({"pass": true}),
                _ => json!({"ok": true}),
            };
            (StatusCode::OK, axum::Json(answer))
        }
    };
    let series = latency.clone();
    let query = move |axum::extract::Query(q): axum::extract::Query<
        std::collections::HashMap<String, String>,
    >| {
        let series = series.clone();
        async move {
            let start: f64 = q["start"].parse().expect("start");
            let end: f64 = q["end"].parse().expect("end");
            let now = *series.lock().expect("lock");
            axum::Json(
                json!({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"model": "fraud"}, "values": [
                    [start + 60.0, "100"], [end, now.to_string()]]}]}}),
            )
        }
    };
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .route("/api/v1/query_range", get(query));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls, latency)
}

async fn webhook_steps_and_prometheus_checks_use_the_servers_secrets(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = config(&db);
    config.execution.tick = std::time::Duration::from_millis(50);
    config
        .execution
        .secrets
        .insert("SERVING".into(), SERVING_SECRET.into());
    let app = TestApp::spawn_with(config, Clock::default()).await;
    let c = cast(&app).await;
    let (platform, calls, latency) = serving_platform().await;
    let now = app.clock.now();
    // A step may not carry the secret itself, only the name of one the server holds.
    let (status, body) = app
        .submit(
            &c.rita,
            change(json!({"steps": [{"name": "scale", "kind": "webhook", "url": format!("{platform}/hook"),
                                      "secret": SERVING_SECRET}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(crate::helpers::field_names(&body), ["steps[0].secret"]);

    let change_id = id(&app
        .submit_ok(
            &c.rita,
            change(json!({
                "window": window(now, now + Duration::hours(1)),
                "steps": [{"name": "scale", "kind": "webhook", "url": format!("{platform}/hook"),
                           "secret": "SERVING", "body": {"replicas": 4}}],
                "verification": {"period_seconds": 600, "checks": [
                    {"kind": "metric", "name": "latency_ms", "direction": "lower_is_better",
                     "prometheus": {"url": platform, "query": "avg(latency_ms{model=\"fraud\"})"}},
                    {"kind": "compliance", "webhook": {"url": format!("{platform}/hook"), "secret": "SERVING"}},
                ]},
            })),
        )
        .await);
    app.decide(&c.mia, &change_id, "approve", "ok").await;
    let verifying = wait_until(&app, &c.rita, &change_id, "checked", |c| {
        c["execution"]["verification"]["checks"]
            .as_array()
            .is_some_and(|checks| !checks.is_empty())
    })
    .await;
    let checks = &verifying["execution"]["verification"]["checks"];
    assert_eq!(checks[0]["status"], "passing", "{checks}");
    assert_eq!(checks[1]["status"], "passing", "{checks}");
    assert_eq!(
        verifying["execution"]["steps"][0]["snapshot"]["replicas"],
        2
    );

    // Latency 50% worse in Prometheus: rolled back through the webhook's undo phase.
    *latency.lock().expect("lock") = 150.0;
    let rolled_back = wait_for_state(&app, &c.rita, &change_id, "rolled_back").await;
    assert_eq!(rolled_back["execution"]["rollback"]["trigger"], "metric");
    let calls = calls.lock().expect("lock").clone();
    let step_phases: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c["message"]["step"]["step"] == "scale")
        .map(|c| {
            (
                c["id"].as_str().unwrap_or(""),
                c["message"]["phase"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let expected_ids = [
        format!("{change_id}.scale.snapshot"),
        format!("{change_id}.scale.apply"),
        format!("{change_id}.scale.undo"),
    ];
    assert_eq!(
        step_phases,
        [
            (expected_ids[0].as_str(), "snapshot"),
            (expected_ids[1].as_str(), "apply"),
            (expected_ids[2].as_str(), "undo")
        ]
    );
    let undo = calls
        .iter()
        .find(|c| c["message"]["phase"] == "undo")
        .expect("undo");
    assert_eq!(
        undo["message"]["snapshot"]["replicas"], 2,
        "undo receives the snapshot"
    );
    assert!(
        calls
            .iter()
            .any(|c| c["message"]["step"]["check"] == "compliance"),
        "the compliance webhook was asked"
    );
    // The secret is nowhere in what Steward stored or shows.
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
        .await;
    assert!(!shown.to_string().contains(SERVING_SECRET));
    app.stop().await;
}

crate::both_backends!(
    webhook_steps_and_prometheus_checks_use_the_servers_secrets,
    the_champion_alias_moves_at_its_window_and_rolls_back_when_accuracy_drops,
    nothing_runs_unapproved_outside_its_window_or_in_a_freeze,
    an_implementer_runs_the_steps_and_rolls_them_back_by_hand,
    complaints_above_ten_an_hour_roll_back,
    a_failing_compliance_test_rolls_back,
    silent_security_controls_roll_back,
    a_gap_in_the_audit_log_rolls_back,
    a_quiet_verification_period_verifies_the_change,
    a_step_without_a_rollback_path_needs_an_irreversible_approval,
);

/// `steward serve` as a process: SIGKILLed while a step runs, then started again on the same
/// database. The interrupted step is not run a second time: the change fails, its owner is told,
/// and `steward change rollback` undoes it.
mod restart {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    const BIN: &str = env!("CARGO_BIN_EXE_steward");

    struct Serve {
        child: Child,
        url: String,
    }

    impl Serve {
        fn start(db: &TestDb) -> Serve {
            let mut child = Command::new(BIN)
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(db.dir.path().join("data"))
                .args(["--database-url", &db.url])
                .args(["--bootstrap-token", ADMIN_TOKEN])
                .args(["--audit-signing-key", crate::helpers::AUDIT_KEY])
                .args([
                    "--execution-tick-ms",
                    "100",
                    "--execution-lease-grace-seconds",
                    "0",
                ])
                .env_remove("STEWARD_CONFIG")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("steward serve starts");
            let stderr = child.stderr.take().expect("stderr");
            let mut lines = BufReader::new(stderr).lines();
            let url = loop {
                let line = lines
                    .next()
                    .and_then(Result::ok)
                    .expect("steward serve printed where it listens");
                if let Some(rest) = line.split("listening on ").nth(1) {
                    break rest.split_whitespace().next().expect("url").to_owned();
                }
            };
            std::thread::spawn(move || for _ in lines {});
            Serve { child, url }
        }
    }

    impl Drop for Serve {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn api(
        serve: &Serve,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", serve.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("steward answers");
        let status = response.status();
        let value: Value = response.json().await.expect("JSON");
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn scenario(backend: Backend) {
        let db = TestDb::new(backend).await;
        let file: PathBuf = db.dir.path().join("ran.txt");
        let first = Serve::start(&db);
        let mut tokens = Vec::new();
        for (name, role) in [
            ("rita", "requester"),
            ("mia", "manager"),
            ("ivan", "requester"),
        ] {
            let created = api(
                &first,
                ADMIN_TOKEN,
                reqwest::Method::POST,
                "/api/v1/users",
                Some(json!({"name": name, "roles": [role]})),
            )
            .await;
            tokens.push(created["token"].as_str().expect("token").to_owned());
        }
        let (rita, mia, ivan) = (&tokens[0], &tokens[1], &tokens[2]);
        api(
            &first,
            ADMIN_TOKEN,
            reqwest::Method::POST,
            "/api/v1/targets",
            Some(json!({
            "name": "fraud-scoring", "kind": "model_deployment", "owner": "mia",
            "environment": "staging", "criticality": "low", "regulated": []})),
        )
        .await;
        let now = Utc::now();
        let path = file.display().to_string();
        let slow = json!({"name": "migrate", "kind": "command", "program": "/bin/sh",
            "args": ["-c", format!("echo run >> '{path}'; sleep 30")],
            "undo": {"program": "/bin/sh", "args": ["-c", format!("echo undo >> '{path}'")]},
            "timeout_seconds": 3});
        let submitted = api(
            &first,
            rita,
            reqwest::Method::POST,
            "/api/v1/changes",
            Some(change(json!({
            "window": window(now, now + Duration::hours(1)), "steps": [slow]}))),
        )
        .await;
        let change_id = id(&submitted);
        api(
            &first,
            mia,
            reqwest::Method::POST,
            &format!("/api/v1/changes/{change_id}/approve"),
            Some(json!({"comment": "ok"})),
        )
        .await;

        // The step starts; the server dies under it.
        let started = std::time::Instant::now();
        while lines(&file).is_empty() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "the step never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(first);

        let second = Serve::start(&db);
        let started = std::time::Instant::now();
        let failed = loop {
            let shown = api(
                &second,
                rita,
                reqwest::Method::GET,
                &format!("/api/v1/changes/{change_id}"),
                None,
            )
            .await;
            if shown["state"] == "failed" {
                break shown;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{shown:#}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(failed["execution"]["steps"][0]["status"], "interrupted");
        assert_eq!(failed["execution"]["steps"][0]["attempts"], 1);
        assert_eq!(
            lines(&file),
            ["run"],
            "the interrupted step did not run again"
        );
        assert!(actions(&failed).contains(&"change.step_interrupted".to_owned()));
        let inbox = api(
            &second,
            mia,
            reqwest::Method::GET,
            "/api/v1/notifications",
            None,
        )
        .await;
        assert!(
            inbox["items"][0]["subject"]
                .as_str()
                .is_some_and(|s| s.contains("interrupted")),
            "{inbox}"
        );

        // An implementer rolls it back from the command line.
        let run = run_steward(
            &second.url,
            ivan,
            &[
                "change",
                "rollback",
                &change_id,
                "--reason",
                "interrupted by a restart",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let shown = api(
            &second,
            rita,
            reqwest::Method::GET,
            &format!("/api/v1/changes/{change_id}"),
            None,
        )
        .await;
        assert_eq!(shown["state"], "rolled_back");
        assert_eq!(lines(&file), ["run", "undo"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_a_restart_mid_step_never_runs_it_twice() {
        scenario(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_restart_mid_step_never_runs_it_twice() {
        scenario(Backend::Postgres).await
    }
}
