//! Dual control (issue #15): a privileged operation takes effect only when a second admin
//! approves it; until then it has no effect, its requester can never approve it, and what was
//! approved is exactly what was asked (a record that moved meanwhile is refused, not
//! overwritten). Through the API and the `steward` binary, on both backends.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, items, run_steward};
use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_core::TenantId;

fn item(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description, "categories": ["certificate"],
           "target_kinds": [], "environments": [], "max_impact": "low",
           "allow_regulated_production": false})
}

async fn put_item(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let name = body["name"].as_str().expect("name").to_owned();
    app.call(
        reqwest::Method::PUT,
        &format!("/api/v1/catalog/{name}"),
        Some(token),
        Some(body),
    )
    .await
}

/// Asks to approve operation `id` with `token`: the answer, whatever it is.
async fn try_approve(app: &TestApp, id: &str, token: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/admin/pending/{id}/approve"),
        token,
        json!({}),
    )
    .await
}

async fn catalog_names(app: &TestApp) -> Vec<String> {
    crate::helpers::all_items(app, "/api/v1/catalog", ADMIN_TOKEN)
        .await
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn events(app: &TestApp, subject_type: &str, subject: &str) -> Vec<(String, String, Value)> {
    app.store
        .tenant(&TenantId::default_tenant())
        .audit_events_for(subject_type, subject)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.action, e.actor, e.details))
        .collect()
}

async fn a_catalog_change_waits_for_a_second_admin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let second = app.second_admin().await.to_owned();

    let (status, waiting) = put_item(&app, ADMIN_TOKEN, item("gpu-driver", "driver bump")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{waiting}");
    let id = waiting["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("OP-"), "{waiting}");
    assert_eq!(waiting["status"], "pending");
    assert_eq!(waiting["kind"], "put_catalog_item");
    assert_eq!(waiting["operation"]["item"]["description"], "driver bump");
    assert_eq!(waiting["operation"]["before"], Value::Null);
    // Until approved it has no effect.
    assert!(!catalog_names(&app).await.contains(&"gpu-driver".to_owned()));
    // The location answers; the second admin was told.
    let (status, shown) = app
        .get(&format!("/api/v1/admin/pending/{id}"), &second)
        .await;
    assert_eq!((status, &shown["id"]), (StatusCode::OK, &json!(id)));
    let (_, inbox) = app.get("/api/v1/notifications", &second).await;
    assert!(
        items(&inbox)
            .iter()
            .any(|n| n["subject"].as_str().unwrap_or("").contains(&id)),
        "{inbox}"
    );

    // The requester can never approve their own request.
    let (status, refused) = try_approve(&app, &id, ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("second admin")
    );
    assert!(!catalog_names(&app).await.contains(&"gpu-driver".to_owned()));

    // The second admin approves: in effect now, once.
    let (status, approved) = try_approve(&app, &id, &second).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(
        (&approved["status"], &approved["decided_by"]),
        (&json!("approved"), &json!("second-admin"))
    );
    assert!(catalog_names(&app).await.contains(&"gpu-driver".to_owned()));
    let (status, _) = try_approve(&app, &id, &second).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Each step is on record: the request, the approval, and the change with both names.
    let op_events = events(&app, "pending_operation", &id).await;
    let actions: Vec<&str> = op_events.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["admin.operation_requested", "admin.operation_approved"]
    );
    let item_events = events(&app, "catalog_item", "gpu-driver").await;
    let (action, actor, details) = item_events.last().expect("catalog event");
    assert_eq!(
        (action.as_str(), actor.as_str()),
        ("catalog.created", "admin")
    );
    assert_eq!(details["dual_control"]["approved_by"], "second-admin");
    assert_eq!(details["dual_control"]["operation"], json!(id));

    // Lists: the waiting queue is empty again; `all` keeps the decided one.
    let (_, pending) = app.get("/api/v1/admin/pending", &second).await;
    assert!(items(&pending).is_empty(), "{pending}");
    let (_, all) = app.get("/api/v1/admin/pending?status=all", &second).await;
    let ids: Vec<&Value> = items(&all).iter().map(|o| &o["id"]).collect();
    assert_eq!(
        ids,
        [&json!(id), &json!("OP-0")],
        "the bootstrap is on record as OP-0"
    );
    let (status, _) = app.get("/api/v1/admin/pending?status=maybe", &second).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

async fn an_approval_binds_what_was_asked(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let second = app.second_admin().await.to_owned();
    // Two requests to create the same item, each from an empty catalog entry.
    let (_, first) = put_item(&app, ADMIN_TOKEN, item("nightly-retrain", "first")).await;
    let (_, other) = put_item(&app, ADMIN_TOKEN, item("nightly-retrain", "second")).await;
    let approve = |id: &Value| {
        format!(
            "/api/v1/admin/pending/{}/approve",
            id.as_str().unwrap_or("")
        )
    };
    let (status, _) = app.post(&approve(&first["id"]), &second, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // The second was asked against a catalog without the item: approving it now would replace
    // what the first put there, which nobody approved.
    let (status, stale) = app.post(&approve(&other["id"]), &second, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert!(
        stale["error"]
            .as_str()
            .unwrap_or("")
            .contains("changed since the request")
    );
    let (_, kept) = app.get("/api/v1/catalog?limit=500", ADMIN_TOKEN).await;
    let kept = items(&kept)
        .iter()
        .find(|i| i["name"] == "nightly-retrain")
        .cloned()
        .expect("item");
    assert_eq!(kept["description"], "first");
    // A rejected request never takes effect; the requester may withdraw their own.
    let (_, third) = put_item(&app, ADMIN_TOKEN, item("nightly-retrain", "third")).await;
    let id = third["id"].as_str().expect("id");
    let (status, rejected) = app
        .post(
            &format!("/api/v1/admin/pending/{id}/reject"),
            ADMIN_TOKEN,
            json!({"reason": "wrong window"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(
        (&rejected["status"], &rejected["reason"]),
        (&json!("rejected"), &json!("wrong window"))
    );
    let (status, _) = app.post(&approve(&third["id"]), &second, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Unknown ids are 404s; non-admins cannot decide.
    let (status, _) = app
        .post("/api/v1/admin/pending/OP-999/approve", &second, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn the_cli_asks_lists_and_approves(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let second = app.second_admin().await.to_owned();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("item.yaml");
    std::fs::write(
        &file,
        "name: feature-flag\ndescription: flip a flag\nmax_impact: low\n",
    )
    .expect("write");
    let path = file.to_str().expect("path");

    let run = run_steward(&app.base, ADMIN_TOKEN, &["catalog", "put", path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("waits for a second admin"),
        "{}",
        run.stdout
    );

    let run = run_steward(
        &app.base,
        &second,
        &["admin", "pending", "--output", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page: Value = serde_json::from_str(&run.stdout).expect("json");
    let id = items(&page)[0]["id"].as_str().expect("id").to_owned();
    assert!(
        page.get("next_cursor").is_some(),
        "a paginated list: {page}"
    );

    let run = run_steward(&app.base, ADMIN_TOKEN, &["admin", "approve", &id]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("second admin"), "{}", run.stderr);

    let run = run_steward(&app.base, &second, &["admin", "approve", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("approved"), "{}", run.stdout);
    let run = run_steward(&app.base, &second, &["catalog", "list"]);
    assert!(run.stdout.contains("feature-flag"), "{}", run.stdout);
    app.stop().await;
}

/// The roles of `name` as the API shows them.
async fn roles_of(app: &TestApp, name: &str) -> Value {
    let (status, user) = app.get(&format!("/api/v1/users/{name}"), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    user["roles"].clone()
}

async fn set_rita(app: &TestApp, roles: Value) -> (StatusCode, Value) {
    app.call(
        reqwest::Method::PUT,
        "/api/v1/users/rita/roles",
        Some(ADMIN_TOKEN),
        Some(json!({ "roles": roles })),
    )
    .await
}

async fn put_group(app: &TestApp, group: &str, roles: Value) -> (StatusCode, Value) {
    app.call(
        reqwest::Method::PUT,
        &format!("/api/v1/groups/{group}"),
        Some(ADMIN_TOKEN),
        Some(json!({ "roles": roles })),
    )
    .await
}

async fn a_role_grant_waits_for_a_second_admin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    // The tenant's only admin made its first second admin at once, recorded as a bootstrap.
    let second = app.second_admin().await.to_owned();
    let created = events(&app, "user", "second-admin").await;
    assert_eq!(created[0].0, "user.created");
    assert_eq!(created[0].2["bootstrap"], json!(true), "{:?}", created[0].2);

    // A CISO-to-be: the account does not exist and its token opens nothing until approved.
    let (status, asked) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "cleo", "roles": ["ciso"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    let token = asked["token"].as_str().expect("token").to_owned();
    let id = asked["pending_approval"]
        .as_str()
        .expect("operation")
        .to_owned();
    assert_eq!(asked["operation"]["operation"]["kind"], "create_user");
    assert!(!asked.to_string().contains("token_hash"), "{asked}");
    let (status, _) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/v1/users/cleo", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = try_approve(&app, &id, ADMIN_TOKEN).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the requester never approves"
    );
    app.approve_operation(&id).await;
    let (status, me) = app.get("/api/v1/whoami", &token).await;
    assert_eq!((status, &me["roles"]), (StatusCode::OK, &json!(["ciso"])));

    // A grant to an existing account: it keeps its roles until approved.
    let rita = app.user("rita", &["requester"]).await;
    let (status, grant) = set_rita(&app, json!(["requester", "cab_member"])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{grant}");
    assert_eq!(roles_of(&app, "rita").await, json!(["requester"]));
    let (status, refused) = try_approve(&app, grant["id"].as_str().unwrap_or(""), &rita).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    app.approve_operation(grant["id"].as_str().expect("id"))
        .await;
    assert_eq!(
        roles_of(&app, "rita").await,
        json!(["requester", "cab_member"])
    );
    // Taking a privilege away needs no second admin.
    let (status, _) = set_rita(&app, json!(["requester"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(roles_of(&app, "rita").await, json!(["requester"]));

    // What was approved is what was asked: roles that moved meanwhile refuse the approval.
    let (_, grant) = set_rita(&app, json!(["requester", "compliance_officer"])).await;
    let (status, _) = set_rita(&app, json!(["manager"])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, stale) = try_approve(&app, grant["id"].as_str().unwrap_or(""), &second).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert_eq!(roles_of(&app, "rita").await, json!(["manager"]));

    // The account a grant raises cannot approve it, even as an admin.
    let (_, raise) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/users/second-admin/roles",
            Some(ADMIN_TOKEN),
            Some(json!({"roles": ["admin", "ciso"]})),
        )
        .await;
    let (status, refused) = try_approve(&app, raise["id"].as_str().unwrap_or(""), &second).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("your own privileges")
    );

    // A person's token minted by an admin waits too; a pipeline's does not.
    let (status, minted) = app
        .post("/api/v1/users/rita/tokens", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{minted}");
    let (status, _) = app
        .get("/api/v1/whoami", minted["token"].as_str().expect("token"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.user("ci", &["pipeline"]).await;
    let (status, _) = app
        .post("/api/v1/users/ci/tokens", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A group mapping that grants a privileged role waits; one that does not applies.
    let (status, _) = put_group(&app, "ml-readers", json!(["requester"])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, mapping) = put_group(&app, "ml-cab", json!(["cab_member"])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{mapping}");
    let (_, groups) = app.get("/api/v1/groups", ADMIN_TOKEN).await;
    assert_eq!(items(&groups).len(), 1, "{groups}");
    app.approve_operation(mapping["id"].as_str().expect("id"))
        .await;
    let (_, groups) = app.get("/api/v1/groups", ADMIN_TOKEN).await;
    assert_eq!(items(&groups).len(), 2, "{groups}");
    app.stop().await;
}

async fn the_cli_shows_a_waiting_account_and_its_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    app.second_admin().await;
    let run = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["user", "create", "dana", "--role", "auditor"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("waits for a second admin"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("stw_"),
        "the token is shown once: {}",
        run.stdout
    );
    let run = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &[
            "user",
            "create",
            "erin",
            "--role",
            "cab_member",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let asked: Value = serde_json::from_str(&run.stdout).expect("json");
    assert!(
        asked["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("stw_"))
    );
    let run = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["user", "roles", "erin", "--set", "requester"],
    );
    assert_eq!(run.code, 1, "no account until approved: {}", run.stdout);
    app.stop().await;
}

async fn one_admin_never_acts_alone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let second = app.second_admin().await.to_owned();
    let post = |path: String, token: String| {
        let app = &app;
        async move { app.post(&path, &token, json!({})).await }
    };
    // Enabling a disabled account that holds a privileged role waits for a second admin.
    let cleo = app.user("cleo", &["ciso"]).await;
    let (status, _) = post("/api/v1/users/cleo/disable".into(), ADMIN_TOKEN.into()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, enable) = post("/api/v1/users/cleo/enable".into(), ADMIN_TOKEN.into()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{enable}");
    let (status, _) = app.get("/api/v1/whoami", &cleo).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "still disabled until approved"
    );
    app.approve_operation(enable["id"].as_str().expect("id"))
        .await;
    assert_eq!(app.get("/api/v1/whoami", &cleo).await.0, StatusCode::OK);

    // A service account does not become a person's (its tokens would change hands), and no
    // account mixes the two.
    app.user("mia", &["manager"]).await;
    let (status, refused) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/users/mia/roles",
            Some(ADMIN_TOKEN),
            Some(json!({"roles": ["pipeline"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["details"]["reason"], "service_boundary");
    let (status, refused) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/users/mia/roles",
            Some(ADMIN_TOKEN),
            Some(json!({"roles": ["manager", "monitor"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    // The bootstrap happens once: an admin who disables the other admin is alone again, yet a
    // new admin waits, and so does bringing the disabled one back.
    let (status, body) = post(
        "/api/v1/users/second-admin/disable".into(),
        ADMIN_TOKEN.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, ghost) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "ghost", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "a second bootstrap: {ghost}");
    let (status, enable) = post(
        "/api/v1/users/second-admin/enable".into(),
        ADMIN_TOKEN.into(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{enable}");
    assert_eq!(
        app.get("/api/v1/whoami", &second).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The bootstrap is on record as operation 0.
    let (_, all) = app
        .get("/api/v1/admin/pending?status=all", ADMIN_TOKEN)
        .await;
    assert!(
        items(&all)
            .iter()
            .any(|o| o["id"] == "OP-0" && o["status"] == "approved"),
        "{all}"
    );
    app.stop().await;
}

async fn an_installation_admin_unblocks_a_tenant_without_a_second_admin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let (status, risk) = app
        .post(
            "/api/v1/tenants",
            ADMIN_TOKEN,
            json!({"name": "risk", "admin": "rhea"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{risk}");
    let rhea = risk["token"].as_str().expect("token").to_owned();
    // rhea is risk's only admin: her catalog request has no one in the tenant to approve it.
    let (status, waiting) = put_item(&app, &rhea, item("risk-item", "x")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{waiting}");
    let id = waiting["id"].as_str().expect("id").to_owned();
    let approve = format!("/api/v1/tenants/risk/pending/{id}/approve");
    // Only installation admins may step in (rhea's own tenant route refuses her too).
    let (status, _) = app.post(&approve, &rhea, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let run = run_steward(&app.base, ADMIN_TOKEN, &["tenant", "approve", "risk", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("approved"), "{}", run.stdout);
    let (_, catalog) = app.get("/api/v1/catalog?limit=500", &rhea).await;
    assert!(
        items(&catalog).iter().any(|i| i["name"] == "risk-item"),
        "{catalog}"
    );
    let events = app
        .store
        .tenant(&TenantId::parse("risk").expect("tenant"))
        .audit_events_for("pending_operation", &id)
        .await
        .expect("events");
    let approval = events.last().expect("approval");
    assert_eq!(approval.action, "admin.operation_approved");
    assert_eq!(approval.details["by_installation_admin"], json!(true));
    // Once the tenant has its second admin, its admins decide.
    let (status, _) = app
        .post(
            "/api/v1/users",
            &rhea,
            json!({"name": "risa", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "the tenant's bootstrap");
    let (_, again) = put_item(&app, &rhea, item("risk-item-2", "x")).await;
    let id = again["id"].as_str().expect("id");
    let (status, refused) = app
        .post(
            &format!("/api/v1/tenants/risk/pending/{id}/approve"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    app.stop().await;
}

async fn a_request_lapses_with_its_requesters_admin_role(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let second = app.second_admin().await.to_owned();
    // A third admin, approved by the second.
    let third = app.user("third-admin", &["admin"]).await;
    // The second admin asks for a catalog item, then leaves.
    let (status, waiting) = put_item(&app, &second, item("leaver-item", "x")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{waiting}");
    let (status, _) = app
        .post("/api/v1/users/second-admin/disable", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, lapsed) = try_approve(&app, waiting["id"].as_str().unwrap_or(""), &third).await;
    assert_eq!(status, StatusCode::CONFLICT, "{lapsed}");
    assert!(
        lapsed["error"].as_str().unwrap_or("").contains("lapsed"),
        "{lapsed}"
    );
    assert!(
        !catalog_names(&app)
            .await
            .contains(&"leaver-item".to_owned())
    );
    app.stop().await;
}

both_backends!(
    a_catalog_change_waits_for_a_second_admin,
    an_approval_binds_what_was_asked,
    the_cli_asks_lists_and_approves,
    a_role_grant_waits_for_a_second_admin,
    the_cli_shows_a_waiting_account_and_its_token,
    one_admin_never_acts_alone,
    an_installation_admin_unblocks_a_tenant_without_a_second_admin,
    a_request_lapses_with_its_requesters_admin_role,
);
