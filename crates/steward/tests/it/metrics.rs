//! Metric samples through the API: batches, idempotent resends, label filters, refusals.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, field_names};
use reqwest::StatusCode;
use serde_json::json;

async fn samples_are_stored_once_and_read_back_by_series(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let prometheus = app.user("prometheus", &["monitor"]).await;
    let batch = json!({"samples": [
        {"name": "error_rate", "labels": {"model": "fraud", "env": "prod"}, "value": 0.012, "time": "2026-11-23T09:00:00Z"},
        {"name": "error_rate", "labels": {"env": "prod", "model": "fraud"}, "value": 0.015, "time": "2026-11-23T09:01:00Z"},
        {"name": "error_rate", "labels": {"model": "churn", "env": "prod"}, "value": 0.5, "time": "2026-11-23T09:01:00Z"},
        {"name": "latency_seconds", "labels": {"model": "fraud"}, "value": 0.25, "time": "2026-11-23T09:01:00Z"},
    ]});
    // The evidence that judges a change is written only by monitoring accounts: not by the
    // requester whose change it judges, not by its manager, not by an admin.
    for token in [&c.rita, &c.mia, ADMIN_TOKEN] {
        let (status, body) = app.post("/api/v1/metrics", token, batch.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["details"]["permission"], "push_metrics", "{body}");
    }
    let (status, body) = app
        .post("/api/v1/metrics", &prometheus, batch.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 4);
    assert_eq!(body["new"], 4);
    // Resent unchanged (a retry): accepted, nothing new.
    let (status, body) = app
        .post("/api/v1/metrics", &prometheus, batch.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["new"], 0);
    // Resent with one value changed: refused whole, never an overwrite.
    let mut changed = batch.clone();
    changed["samples"][1]["value"] = json!(0.002);
    changed["samples"]
        .as_array_mut()
        .expect("samples")
        .push(json!({"name": "error_rate", "labels": {"model": "new"}, "value": 1, "time": "2026-11-23T09:02:00Z"}));
    let (status, body) = app.post("/api/v1/metrics", &prometheus, changed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["details"]["reason"], "sample_conflict");
    assert_eq!(body["details"]["samples"][0]["stored"], 0.015);
    assert_eq!(body["details"]["samples"][0]["sent"], 0.002);
    // One batch naming one series and time twice with different values is refused too.
    let (status, body) = app
        .post(
            "/api/v1/metrics",
            &prometheus,
            json!({"samples": [
                {"name": "twice", "value": 1, "time": "2026-11-23T09:00:00Z"},
                {"name": "twice", "value": 2, "time": "2026-11-23T09:00:00Z"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Each accepted batch is one audit event naming who pushed which series; each refusal is
    // one too (an attempt to overwrite evidence is evidence).
    let (_, leaves) = app.get("/api/v1/audit/leaves", ADMIN_TOKEN).await;
    let pushes: Vec<&str> = leaves["items"]
        .as_array()
        .expect("leaves")
        .iter()
        .filter_map(|l| l["entry"].as_str())
        .filter(|e| e.contains("metrics.pushed"))
        .collect();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert!(
        pushes.iter().all(|e| e.contains("prometheus")),
        "{pushes:?}"
    );
    let refusals = leaves["items"]
        .as_array()
        .expect("leaves")
        .iter()
        .filter_map(|l| l["entry"].as_str())
        .filter(|e| e.contains("metrics.refused"))
        .count();
    assert_eq!(refusals, 2);
    let range = "from=2026-11-23T08:00:00Z&to=2026-11-23T10:00:00Z";
    let (status, fraud) = app
        .get(
            &format!("/api/v1/metrics?name=error_rate&labels=model=fraud&{range}"),
            &c.rita,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fraud}");
    let values: Vec<f64> = fraud["items"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(values, [0.012, 0.015]);
    assert_eq!(
        fraud["items"][0]["labels"],
        json!({"env": "prod", "model": "fraud"})
    );
    let (_, all) = app
        .get(&format!("/api/v1/metrics?name=error_rate&{range}"), &c.rita)
        .await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(3));
    // A single sample without a time is taken now.
    let (status, _) = app
        .post(
            "/api/v1/metrics",
            &prometheus,
            json!({"name": "complaints_total", "value": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, now) = app
        .get("/api/v1/metrics?name=complaints_total", &c.rita)
        .await;
    assert_eq!(now["items"][0]["value"], 3.0);
}

async fn bad_samples_are_refused_whole_with_every_field_named(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let prometheus = app.user("prometheus", &["monitor"]).await;
    let (status, body) = app
        .post(
            "/api/v1/metrics",
            &prometheus,
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
    assert_eq!(
        stored["items"].as_array().map(Vec::len),
        Some(0),
        "all or nothing"
    );
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
