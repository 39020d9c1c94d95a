//! The lifecycle after approval, SLA clocks, persistence across restarts, and the audit events
//! every state change writes.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, config, id};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;
use steward_server::Clock;

async fn the_full_lifecycle_with_illegal_steps_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let changed = app.submit_ok(&c.rita, change(json!({}))).await;
    let id = id(&changed);
    // Not approved yet: scheduling is refused with the current state.
    let (status, body) = app.step(&ivan, &id, "schedule").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["error"],
        "cannot schedule a change that is pending_approval"
    );
    assert_eq!(body["details"]["current_state"], "pending_approval");
    app.decide(&c.mia, &id, "approve", "ok").await;
    // The requester and the approver may not implement.
    assert_eq!(
        app.step(&c.rita, &id, "schedule").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.step(&c.mia, &id, "schedule").await.0,
        StatusCode::FORBIDDEN
    );
    for (step, state) in [
        ("schedule", "scheduled"),
        ("implement", "implementing"),
        ("complete", "completed"),
        ("close", "closed"),
    ] {
        let (status, body) = app.step(&ivan, &id, step).await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
        assert_eq!(body["state"], state);
    }
    let (status, body) = app.step(&c.rita, &id, "cancel").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["details"]["current_state"], "closed");
    // An unknown step names the choices.
    let (status, body) = app.step(&ivan, &id, "explode").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["fields"][0]["field"], "step");

    // The history holds one audit event per state change, in order.
    let (_, shown) = app.get(&format!("/api/v1/changes/{id}"), &c.rita).await;
    let actions: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "change.created",
            "change.submitted",
            "change.routed",
            "change.approved",
            "change.scheduled",
            "change.implementing",
            "change.completed",
            "change.closed",
        ]
    );
    let approved = &shown["history"][3];
    assert_eq!(approved["actor"], "mia");
    assert_eq!(approved["details"]["before"]["state"], "pending_approval");
    assert_eq!(approved["details"]["after"]["state"], "approved");
}

async fn drafts_wait_and_cancellation_is_for_the_requester(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let draft = app.submit_ok(&c.rita, change(json!({"draft": true}))).await;
    assert_eq!(draft["state"], "draft");
    let id = id(&draft);
    assert_eq!(
        app.decide(&c.mia, &id, "approve", "early").await.0,
        StatusCode::CONFLICT
    );
    let (status, body) = app
        .post(&format!("/api/v1/changes/{id}/submit"), &c.rita, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "pending_approval");
    assert_eq!(
        app.step(&c.mia, &id, "cancel").await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = app.step(&c.rita, &id, "cancel").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
}

async fn sla_deadlines_by_type_and_the_overdue_list(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let normal = app.submit_ok(&c.rita, change(json!({}))).await;
    let emergency = app
        .submit_ok(
            &c.rita,
            change(
                json!({"emergency": true, "justification": "credential breach being exploited"}),
            ),
        )
        .await;
    let standard = app
        .submit_ok(
            &c.rita,
            change(json!({"category": "log-retention", "catalog_item": "log-retention"})),
        )
        .await;
    let deadline = |c: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(c["approvals"]["deadline"].as_str().expect("deadline"))
            .expect("time")
    };
    let submitted = |c: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(c["submitted_at"].as_str().expect("submitted"))
            .expect("time")
    };
    assert_eq!(
        deadline(&emergency) - submitted(&emergency),
        chrono::Duration::hours(2)
    );
    assert_eq!(
        deadline(&standard) - submitted(&standard),
        chrono::Duration::days(1)
    );
    assert!(deadline(&normal) - submitted(&normal) >= chrono::Duration::days(3));
    let overdue = || {
        let token = c.rita.clone();
        let app = &app;
        async move {
            let (_, list) = app.get("/api/v1/changes?overdue=true", &token).await;
            crate::helpers::items(&list)
                .iter()
                .map(id)
                .collect::<Vec<_>>()
        }
    };
    assert!(overdue().await.is_empty());
    app.clock.advance(chrono::Duration::hours(3));
    assert_eq!(overdue().await, [id(&emergency)]);
    app.clock.advance(chrono::Duration::days(6));
    // The standard change was approved at once, so it is never overdue.
    assert_eq!(overdue().await, [id(&emergency), id(&normal)]);
}

async fn list_filters_by_state_type_target_and_requester(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    app.target("other-model", "max", "staging", "low", &[])
        .await;
    let a = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let b = id(&app
        .submit_ok(&ivan, change(json!({"targets": ["other-model"]})))
        .await);
    let e = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"emergency": true, "justification": "zero-day in the serving runtime"})),
        )
        .await);
    app.decide(&c.mia, &a, "approve", "ok").await;
    let list = |query: &'static str| {
        let token = c.rita.clone();
        let app = &app;
        async move {
            let (status, body) = app.get(&format!("/api/v1/changes?{query}"), &token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            crate::helpers::items(&body)
                .iter()
                .map(id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("state=approved").await, [a.as_str()]);
    assert_eq!(list("type=emergency").await, [e.as_str()]);
    assert_eq!(list("target=other-model").await, [b.as_str()]);
    assert_eq!(list("requester=rita").await, [e.as_str(), a.as_str()]);
    assert_eq!(list("limit=1").await, [e.as_str()]);
    let (status, body) = app
        .get("/api/v1/changes?state=nope&type=big", &c.rita)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["fields"].as_array().map(Vec::len), Some(2));
}

async fn a_restart_keeps_everything(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let changed = app.submit_ok(&c.rita, change(json!({}))).await;
    let id = id(&changed);
    app.decide(&c.mia, &id, "approve", "ok").await;
    let (_, before) = app.get(&format!("/api/v1/changes/{id}"), &c.rita).await;
    app.stop().await;

    // Same database, new process state; bootstrap must not run again.
    let mut again = config(&db);
    again.bootstrap_token = Some("stw_a_different_token_that_must_not_work".into());
    let app = TestApp::spawn_with(again, Clock::default()).await;
    let (status, after) = app.get(&format!("/api/v1/changes/{id}"), &c.rita).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before);
    assert_eq!(
        app.get("/api/v1/whoami", ADMIN_TOKEN).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/whoami", "stw_a_different_token_that_must_not_work")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Numbering continues.
    let next = app.submit_ok(&c.rita, change(json!({}))).await;
    assert_eq!(next["id"], "CHG-2");
}

/// The audit log is one gapless sequence; its rows cannot be changed or removed.
async fn audit_events_form_one_gapless_append_only_sequence(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    for _ in 0..3 {
        let changed = app.submit_ok(&c.rita, change(json!({}))).await;
        app.decide(&c.mia, &id(&changed), "approve", "ok").await;
    }
    // A refused request writes nothing.
    let (status, _) = app
        .submit(&c.rita, change(json!({"targets": ["ghost"]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
    let seqs: Vec<i64> = sqlx::query("SELECT seq FROM audit_events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("select")
        .iter()
        .map(|r| r.try_get::<i64, _>("seq").expect("seq"))
        .collect();
    // admin + the second admin + 3 users, 1 target, 3 catalog items,
    // 3 × (created, submitted, routed, approved)
    assert_eq!(seqs, (0..(5 + 1 + 3 + 12)).collect::<Vec<i64>>());
    let changes: i64 = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM changes")
        .fetch_one(&pool)
        .await
        .expect("count")
        .try_get("n")
        .expect("n");
    assert_eq!(changes, 3, "the refused submission left no change behind");
    for statement in [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
    ] {
        let error = sqlx::query(statement)
            .execute(&pool)
            .await
            .expect_err("refused");
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    if backend == Backend::Postgres {
        // Refused by the trigger (or first by the payload table's foreign key): either way, nothing goes.
        sqlx::query("TRUNCATE audit_events")
            .execute(&pool)
            .await
            .expect_err("refused");
        let error = sqlx::query("TRUNCATE audit_nodes")
            .execute(&pool)
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    let left: i64 = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_events")
        .fetch_one(&pool)
        .await
        .expect("count")
        .try_get("n")
        .expect("n");
    assert_eq!(left as usize, seqs.len());
    pool.close().await;
}

both_backends!(
    the_full_lifecycle_with_illegal_steps_refused,
    drafts_wait_and_cancellation_is_for_the_requester,
    sla_deadlines_by_type_and_the_overdue_list,
    list_filters_by_state_type_target_and_requester,
    a_restart_keeps_everything,
    audit_events_form_one_gapless_append_only_sequence,
);
