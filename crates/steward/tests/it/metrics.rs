//! Metric samples through the API: batches, idempotent resends, label filters, refusals.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, cast, field_names};
use reqwest::StatusCode;
use serde_json::json;

async fn samples_are_stored_once_and_read_back_by_series(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let batch = json!({"samples": [
        {"name": "error_rate", "labels": {"model": "fraud", "env": "prod"}, "value": 0.012, "time": "2026-11-23T09:00:00Z"},
        {"name": "error_rate", "labels": {"env": "prod", "model": "fraud"}, "value": 0.013, "time": "2026-11-23T09:01:00Z"},
        {"name": "error_rate", "labels": {"model": "churn", "env": "prod"}, "value": 0.5, "time": "2026-11-23T09:01:00Z"},
        {"name": "latency_seconds", "labels": {"model": "fraud"}, "value": 0.25, "time": "2026-11-23T09:01:00Z"},
    ]});
    let (status, body) = app.post("/api/v1/metrics", &c.rita, batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 4);
    // Resent (a retry), with one value corrected: still one row per series and time.
    let mut resent = batch;
    resent["samples"][1]["value"] = json!(0.014);
    // The same series and time twice in one request: the last one counts.
    if let Some(samples) = resent["samples"].as_array_mut() {
        samples.push(json!({"name": "error_rate", "labels": {"model": "fraud", "env": "prod"}, "value": 0.015, "time": "2026-11-23T09:01:00Z"}));
    }
    let (status, _) = app.post("/api/v1/metrics", &c.mia, resent).await;
    assert_eq!(status, StatusCode::OK);
    let range = "from=2026-11-23T08:00:00Z&to=2026-11-23T10:00:00Z";
    let (status, fraud) = app
        .get(
            &format!("/api/v1/metrics?name=error_rate&labels=model=fraud&{range}"),
            &c.rita,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fraud}");
    let values: Vec<f64> = fraud
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(values, [0.012, 0.015]);
    assert_eq!(fraud[0]["labels"], json!({"env": "prod", "model": "fraud"}));
    let (_, all) = app
        .get(&format!("/api/v1/metrics?name=error_rate&{range}"), &c.rita)
        .await;
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    // A single sample without a time is taken now.
    let (status, _) = app
        .post(
            "/api/v1/metrics",
            &c.rita,
            json!({"name": "complaints_total", "value": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, now) = app
        .get("/api/v1/metrics?name=complaints_total", &c.rita)
        .await;
    assert_eq!(now[0]["value"], 3.0);
}

async fn bad_samples_are_refused_whole_with_every_field_named(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let (status, body) = app
        .post(
            "/api/v1/metrics",
            &c.rita,
            json!({"samples": [
                {"name": "ok_metric", "value": 1, "time": "2026-11-23T09:00:00Z"},
                {"name": "2xx", "value": "NaN"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields = field_names(&body);
    assert_eq!(fields, ["samples[1].name", "samples[1].value"]);
    let (_, stored) = app
        .get(
            "/api/v1/metrics?name=ok_metric&from=2026-11-23T00:00:00Z&to=2026-11-24T00:00:00Z",
            &c.rita,
        )
        .await;
    assert_eq!(stored.as_array().map(Vec::len), Some(0), "all or nothing");
    // Auditors read, never write.
    let audrey = app.user("audrey", &["auditor"]).await;
    let (status, _) = app
        .post("/api/v1/metrics", &audrey, json!({"name": "x", "value": 1}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .get("/api/v1/metrics?name=x&labels=model", &audrey)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

both_backends!(
    samples_are_stored_once_and_read_back_by_series,
    bad_samples_are_refused_whole_with_every_field_named,
);
