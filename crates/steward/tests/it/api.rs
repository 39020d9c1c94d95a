//! The API's edges: authentication, authorization, bad input, health, and the OpenAPI document.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, field_names};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn every_endpoint_needs_a_valid_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    for (method, path) in [
        (Method::GET, "/api/v1/changes"),
        (Method::POST, "/api/v1/changes"),
        (Method::GET, "/api/v1/changes/CHG-1"),
        (Method::POST, "/api/v1/changes/CHG-1/approve"),
        (Method::GET, "/api/v1/targets"),
        (Method::POST, "/api/v1/users"),
        (Method::GET, "/api/v1/catalog"),
    ] {
        let (status, body) = app.call(method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("missing API token"),
            "{body}"
        );
        let (status, _) = app
            .call(method.clone(), path, Some("stw_wrong"), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

async fn roles_limit_what_each_caller_may_do(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let auditor = app.user("audrey", &["auditor"]).await;
    // Only admins create users.
    let (status, body) = app
        .post(
            "/api/v1/users",
            &c.mia,
            json!({"name": "x", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["details"]["permission"], "manage_users", "{body}");
    assert_eq!(body["details"]["roles"], json!(["admin"]), "{body}");
    // Auditors read but never write.
    let (status, _) = app.submit(&auditor, change(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let changed = app.submit_ok(&c.rita, change(json!({}))).await;
    let id = changed["id"].as_str().expect("id");
    assert_eq!(
        app.get(&format!("/api/v1/changes/{id}"), &auditor).await.0,
        StatusCode::OK
    );
    let (status, body) = app.decide(&auditor, id, "approve", "ok").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["details"]["permission"], "approve_changes", "{body}");
    // Service accounts ask and record; they never approve, schedule, implement, complete or
    // close a change. No account holds a manager's role beside a service role (the
    // people-only rule would still refuse one: `auth::tests`).
    let (status, body) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "ci-manager", "roles": ["pipeline", "manager"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("service role"), "{body}");
    for (name, roles) in [("ci", &["pipeline"][..]), ("prom", &["monitor"][..])] {
        let service = app.user(name, roles).await;
        let (status, body) = app.decide(&service, id, "approve", "ok").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        assert_eq!(body["details"]["permission"], "approve_changes");
        for step in ["schedule", "implement", "complete", "fail", "close"] {
            let (status, body) = app.step(&service, id, step).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name} {step}: {body}");
            assert_eq!(body["details"]["permission"], "implement_changes");
        }
    }
    // Requesters do not register targets.
    let (status, _) = app
        .post(
            "/api/v1/targets",
            &c.rita,
            json!({"name": "t", "kind": "data_source", "owner": "mia",
            "environment": "staging", "criticality": "low"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn bad_input_gets_a_4xx_naming_each_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // Not JSON at all.
    let response = app
        .http
        .post(format!("{}/api/v1/changes", app.base))
        .bearer_auth(&c.rita)
        .body("title: yaml is for the CLI")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.expect("json error body");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{body}"
    );

    let (status, body) = app
        .submit(
            &c.rita,
            json!({"title": "", "targets": "fraud-scoring", "environment": "prod",
            "impact": {"data": "low"}, "surprise": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = field_names(&body);
    assert_eq!(
        fields,
        [
            "surprise",
            "title",
            "description",
            "category",
            "environment",
            "implementation_plan",
            "rollback_plan",
            "targets",
            "impact.availability",
            "impact.compliance",
        ]
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("the request has 10 invalid fields")
    );

    // Unknown targets and environment mismatches are named too.
    let (status, body) = app
        .submit(
            &c.rita,
            change(json!({"targets": ["fraud-scoring", "ghost"], "environment": "production"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["fields"][0]["field"], "targets[0]");
    assert_eq!(body["details"]["fields"][1]["field"], "targets[1]");

    // Targets: the owner must be an existing manager; enum fields list their options.
    let (status, body) = app
        .post(
            "/api/v1/targets",
            ADMIN_TOKEN,
            json!({"name": "t1", "kind": "gpu", "owner": "rita",
            "environment": "staging", "criticality": "extreme", "parent": "nothing"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = field_names(&body);
    assert_eq!(fields, ["kind", "criticality", "owner", "parent"]);

    // Duplicates are a conflict.
    let (status, body) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "rita", "roles": ["requester"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "user 'rita' already exists");
    let (status, body) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "zed", "roles": ["boss"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["details"]["fields"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown role 'boss'")
    );
    // Too many targets, a wrong query type, an oversized body, a role that must stay alone.
    let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let (status, body) = app.submit(&c.rita, change(json!({"targets": many}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["details"]["fields"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most 100"),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/changes?limit=lots", &c.rita).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].is_string(), "{body}");
    let huge = "x".repeat(2 * 1024 * 1024);
    // On its own connection: the server answers 413 without reading the rest of the body and
    // closes that connection, which a pooled client could otherwise reuse for the next request.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/changes", app.base))
        .bearer_auth(&c.rita)
        .json(&change(json!({"description": huge})))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("json error body");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"].as_str().unwrap_or("").contains("larger than"),
        "{body}"
    );
    let (status, _) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "aud", "roles": ["auditor", "admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Unknown changes and ids.
    assert_eq!(
        app.get("/api/v1/changes/CHG-999", &c.rita).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/changes/banana", &c.rita).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn health_readiness_and_the_openapi_document(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let (status, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    for path in [
        "/api/v1/changes",
        "/api/v1/changes/{id}",
        "/api/v1/changes/{id}/approve",
        "/api/v1/changes/{id}/reject",
        "/api/v1/changes/{id}/transitions",
        "/api/v1/targets",
        "/api/v1/users",
        "/api/v1/catalog/{name}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    // The documented request fields are exactly the ones the parser accepts.
    let mut documented: Vec<String> = doc["components"]["schemas"]["SubmitChange"]["properties"]
        .as_object()
        .expect("SubmitChange schema")
        .keys()
        .cloned()
        .collect();
    documented.sort();
    let mut accepted: Vec<String> = steward_core::submission::SUBMISSION_FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    accepted.sort();
    assert_eq!(documented, accepted);
    // The database going away makes the server unready but still alive.
    app.store.close().await;
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
}

both_backends!(
    every_endpoint_needs_a_valid_token,
    roles_limit_what_each_caller_may_do,
    bad_input_gets_a_4xx_naming_each_field,
    health_readiness_and_the_openapi_document,
);
