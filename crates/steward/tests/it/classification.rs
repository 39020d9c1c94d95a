//! Classification and risk, through the API.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, cast, change, id};
use reqwest::StatusCode;
use serde_json::json;

fn factor_points(change: &serde_json::Value, name: &str) -> u64 {
    change["risk"]["factors"]
        .as_array()
        .expect("factors")
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["points"].as_u64())
        .unwrap_or_else(|| panic!("no factor {name} in {change}"))
}

async fn a_matching_catalog_item_makes_a_standard_change_approved_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let changed = app
        .submit_ok(
            &c.rita,
            change(json!({"category": "log-retention", "catalog_item": "log-retention"})),
        )
        .await;
    assert_eq!(changed["type"], "standard");
    assert_eq!(changed["state"], "approved");
    assert_eq!(changed["approvals"]["required"], json!([]));
    assert!(
        changed["classification_reason"]
            .as_str()
            .unwrap_or("")
            .contains("log-retention")
    );
}

async fn a_catalog_item_whose_conditions_fail_falls_back_to_normal_with_the_reason(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.target(
        "payments-model",
        "mia",
        "production",
        "high",
        &["financial"],
    )
    .await;
    let changed = app
        .submit_ok(
            &c.rita,
            change(
                json!({"category": "log-retention", "catalog_item": "log-retention",
                          "targets": ["payments-model"], "environment": "production"}),
            ),
        )
        .await;
    assert_eq!(changed["type"], "normal");
    let reason = changed["classification_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("production target with regulated data"),
        "{reason}"
    );
    // An unknown catalog item is refused rather than silently treated as normal.
    let (status, body) = app
        .submit(&c.rita, change(json!({"catalog_item": "nope"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["fields"][0]["field"], "catalog_item");
}

async fn emergency_is_classified_when_asked_with_a_justification(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let changed = app
        .submit_ok(
            &c.rita,
            change(json!({"emergency": true, "justification": "zero-day in the runtime"})),
        )
        .await;
    assert_eq!(changed["type"], "emergency");
    assert_eq!(changed["state"], "pending_approval");
    let (status, body) = app
        .submit(&c.rita, change(json!({"emergency": true})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["fields"][0]["field"], "justification");
}

async fn risk_factors_are_stored_and_explain_the_score(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.target(
        "credit-model",
        "mia",
        "production",
        "high",
        &["pii", "financial"],
    )
    .await;
    let changed = app
        .submit_ok(
            &c.rita,
            change(json!({"targets": ["credit-model"], "environment": "production",
                "impact": {"data": "high", "availability": "medium", "compliance": "low", "rollback_complexity": "high"}})),
        )
        .await;
    let expected = [
        ("impact.data", 20),
        ("impact.availability", 10),
        ("impact.compliance", 0),
        ("rollback_complexity", 10),
        ("target.criticality", 20),
        ("regulated.pii", 15),
        ("regulated.financial", 15),
        ("environment", 15),
        ("history.failure_rate", 0),
    ];
    for (name, points) in expected {
        assert_eq!(factor_points(&changed, name), points, "{name}");
    }
    assert_eq!(changed["risk"]["score"], 105);
    assert_eq!(changed["risk"]["level"], "high");
    // Read back after a round trip through the store: the receipt is stored, not recomputed.
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{}", id(&changed)), &c.rita)
        .await;
    assert_eq!(shown["risk"], changed["risk"]);
}

async fn the_failure_history_of_earlier_changes_raises_the_score(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    // One earlier change on the same target and category fails.
    let first = app.submit_ok(&c.rita, change(json!({}))).await;
    let first = id(&first);
    assert_eq!(
        app.decide(&c.mia, &first, "approve", "ok").await.0,
        StatusCode::OK
    );
    for step in ["schedule", "implement", "fail"] {
        let (status, body) = app.step(&ivan, &first, step).await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
    let second = app.submit_ok(&c.rita, change(json!({}))).await;
    assert_eq!(factor_points(&second, "history.failure_rate"), 20);
    // A different category has no history.
    let other = app
        .submit_ok(&c.rita, change(json!({"category": "config"})))
        .await;
    assert_eq!(factor_points(&other, "history.failure_rate"), 0);
}

both_backends!(
    a_matching_catalog_item_makes_a_standard_change_approved_at_once,
    a_catalog_item_whose_conditions_fail_falls_back_to_normal_with_the_reason,
    emergency_is_classified_when_asked_with_a_justification,
    risk_factors_are_stored_and_explain_the_score,
    the_failure_history_of_earlier_changes_raises_the_score,
);
