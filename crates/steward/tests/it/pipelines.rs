//! CI/CD pipelines: the deployment gate (`steward gate`) as a pipeline's service account runs it.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id, run_steward};
use chrono::{Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn the_gate_answers_with_exit_status_and_reason(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ci = app.user("ci-deployer", &["pipeline"]).await;
    let gate = |change: &str, target: &str, environment: &str| {
        run_steward(
            &app.base,
            &ci,
            &[
                "gate",
                "--change",
                change,
                "--target",
                target,
                "--environment",
                environment,
            ],
        )
    };
    let open_now = json!({"start": at(Duration::hours(-1)), "end": at(Duration::hours(1))});
    let approved = app
        .submit_ok(&c.rita, change(json!({"window": open_now})))
        .await;
    let approved_id = id(&approved);
    // Waiting for approval: refused.
    let run = gate(&approved_id, "fraud-scoring", "staging");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: refused: {approved_id} is pending_approval, not approved: nothing may deploy it"
        )
    );
    // A pipeline account cannot approve.
    assert_eq!(
        app.decide(&ci, &approved_id, "approve", "lgtm").await.0,
        StatusCode::FORBIDDEN
    );
    app.decide(&c.mia, &approved_id, "approve", "ok").await;
    let run = gate(&approved_id, "fraud-scoring", "staging");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!("allowed: {approved_id} is approved (normal change, approved by mia), covers fraud-scoring in staging, its window is open until")),
        "{}",
        run.stdout
    );
    // Not this target, not this environment.
    app.target("ledger", "mia", "staging", "low", &[]).await;
    let run = gate(&approved_id, "ledger", "staging");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("does not cover target ledger (it covers fraud-scoring)"),
        "{}",
        run.stderr
    );
    let run = gate(&approved_id, "fraud-scoring", "production");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("is for staging, not production"),
        "{}",
        run.stderr
    );
    // Bad input is named.
    let run = gate(&approved_id, "fraud-scoring", "prod");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("environment: 'prod' is not one of"),
        "{}",
        run.stderr
    );
    let run = gate("CHG-999", "fraud-scoring", "staging");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no change CHG-999"), "{}", run.stderr);

    // A window that has not opened yet.
    let later = app
        .submit_ok(
            &c.rita,
            change(
                json!({"window": {"start": at(Duration::days(2)), "end": at(Duration::days(3))}}),
            ),
        )
        .await;
    let later_id = id(&later);
    app.decide(&c.mia, &later_id, "approve", "ok").await;
    let run = gate(&later_id, "fraud-scoring", "staging");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("window opens at"), "{}", run.stderr);

    // A freeze declared now stops the approved change; JSON output still exits 1.
    let today = Utc::now().date_naive();
    let (status, body) = app
        .post(
            "/api/v1/windows",
            ADMIN_TOKEN,
            json!({"name": "incident-freeze", "kind": "freeze", "scope": "target:fraud-scoring",
                "timezone": "UTC", "starts": format!("{}T00:00", today - chrono::Days::new(1)),
                "ends": format!("{}T00:00", today + chrono::Days::new(2)), "reason": "SEV1 in progress"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let run = run_steward(
        &app.base,
        &ci,
        &[
            "gate",
            "--change",
            &approved_id,
            "--target",
            "fraud-scoring",
            "--environment",
            "staging",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 1);
    let verdict: Value = serde_json::from_str(&run.stdout).expect("json verdict");
    assert_eq!(verdict["allowed"], false);
    assert_eq!(
        verdict["reason"],
        "fraud-scoring is inside a freeze: incident-freeze (SEV1 in progress)"
    );
}

both_backends!(the_gate_answers_with_exit_status_and_reason);
