//! The account lifecycle (issue #15), through the API and the `steward` binary, on both backends:
//! a disabled account's token is refused at the next request and works again once enabled; a
//! rotated token's old value is refused; an expired or revoked token is refused; `user list`
//! shows status and last use; a disabled approver's open slots are reported to the change
//! owners; a tenant cannot lock itself out; every lifecycle action is an audit event that holds
//! no token nor its hash.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id, items, run_steward};
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_core::TenantId;
use steward_server::auth::hash_token;

async fn whoami(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.get("/api/v1/whoami", token).await
}

async fn admin_post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    app.call(Method::POST, path, Some(ADMIN_TOKEN), None).await
}

/// The audit events about account `name`: (action, actor, details).
async fn events(app: &TestApp, name: &str) -> Vec<(String, String, Value)> {
    app.store
        .tenant(&TenantId::default_tenant())
        .audit_events_for("user", name)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.action, e.actor, e.details))
        .collect()
}

/// No audit event (details or leaf) holds any of `tokens`, nor their hashes; `reader` is an
/// admin's token that works.
async fn no_secret_in_the_log(app: &TestApp, reader: &str, names: &[&str], tokens: &[&str]) {
    let mut text = String::new();
    for name in names {
        for (_, _, details) in events(app, name).await {
            text.push_str(&details.to_string());
        }
    }
    for leaf in crate::helpers::all_items(app, "/api/v1/audit/leaves", reader).await {
        text.push_str(&leaf.to_string());
    }
    assert!(text.contains("token."), "the log was read: {text}");
    for token in tokens {
        assert!(!text.contains(token), "a token is in the audit log");
        assert!(
            !text.contains(&hash_token(token)),
            "a token's hash is in the audit log"
        );
    }
}

async fn a_disabled_accounts_token_is_refused_until_it_is_enabled(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    assert_eq!(whoami(&app, &c.rita).await.0, StatusCode::OK);

    let (status, body) = admin_post(&app, "/api/v1/users/rita/disable").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["status"], "disabled");
    assert!(body["user"]["disabled_at"].is_string(), "{body}");
    // The very next request is refused, saying why.
    let (status, body) = whoami(&app, &c.rita).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("account disabled")),
        "{body}"
    );
    let cli = run_steward(&app.base, &c.rita, &["whoami"]);
    assert_eq!(cli.code, 1);
    assert!(cli.stderr.contains("account disabled"), "{}", cli.stderr);
    // Disabling twice is a conflict, not a second event.
    let (status, body) = admin_post(&app, "/api/v1/users/rita/disable").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "rita is already disabled");

    let cli = run_steward(&app.base, ADMIN_TOKEN, &["user", "enable", "rita"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert_eq!(cli.stdout, "enabled rita\n");
    let (status, body) = whoami(&app, &c.rita).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    assert!(body["disabled_at"].is_null(), "{body}");
    let (status, _) = admin_post(&app, "/api/v1/users/rita/enable").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = admin_post(&app, "/api/v1/users/nobody/disable").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let actions: Vec<String> = events(&app, "rita")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(actions, ["user.created", "user.disabled", "user.enabled"]);
}

async fn a_rotated_tokens_old_value_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // Through the API.
    let (status, rotated) = app.post("/api/v1/tokens/rotate", &c.rita, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["user"], "rita");
    assert!(rotated["expires_at"].is_null());
    let second = rotated["token"].as_str().expect("token").to_owned();
    assert_ne!(second, c.rita);
    let (status, body) = whoami(&app, &c.rita).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("token revoked")),
        "{body}"
    );
    assert_eq!(whoami(&app, &second).await.0, StatusCode::OK);
    // Through the CLI: `--output json` answers the API's JSON, the new token in `.token`.
    let cli = run_steward(
        &app.base,
        &second,
        &["token", "rotate", "--expires", "90d", "--output", "json"],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let answer: Value = serde_json::from_str(&cli.stdout).expect("json");
    let third = answer["token"].as_str().expect("token").to_owned();
    assert!(answer["expires_at"].is_string(), "{answer}");
    assert_eq!(whoami(&app, &second).await.0, StatusCode::UNAUTHORIZED);
    let (status, me) = whoami(&app, &third).await;
    assert_eq!(
        (status, me["name"].as_str()),
        (StatusCode::OK, Some("rita"))
    );
    // The text says the token, once.
    let cli = run_steward(&app.base, &third, &["token", "rotate"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let fourth = cli
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("the token is printed")
        .to_owned();
    assert!(cli.stdout.contains("expires: never"), "{}", cli.stdout);
    assert_eq!(whoami(&app, &third).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(&app, &fourth).await.0, StatusCode::OK);
    // An expiry in the past, or not an expiry, is refused naming the field.
    let (status, body) = app
        .post(
            "/api/v1/tokens/rotate",
            &fourth,
            json!({"expires": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"]["fields"][0]["field"], "expires");
    assert_eq!(
        whoami(&app, &fourth).await.0,
        StatusCode::OK,
        "a refused rotation keeps the token"
    );

    // The admin token (bootstrap) rotates like any other.
    let (status, rotated) = app
        .post("/api/v1/tokens/rotate", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let admin = rotated["token"].as_str().expect("token").to_owned();
    assert_eq!(whoami(&app, ADMIN_TOKEN).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"name": "ivan", "roles": ["requester"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let rotations = events(&app, "rita")
        .await
        .into_iter()
        .filter(|(action, actor, _)| action == "token.rotated" && actor == "rita")
        .count();
    assert_eq!(rotations, 3);
    no_secret_in_the_log(
        &app,
        &admin,
        &["rita", "admin"],
        &[&c.rita, &second, &third, &fourth, ADMIN_TOKEN, &admin],
    )
    .await;
}

async fn an_expired_token_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let (status, created) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "ci", "roles": ["pipeline"], "expires": "1h"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["token_expires_at"].is_string(), "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(whoami(&app, &token).await.0, StatusCode::OK);
    app.clock.advance(Duration::minutes(61));
    let (status, body) = whoami(&app, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("token expired")),
        "{body}"
    );
    // An expired token cannot rotate itself back to life.
    let (status, _) = app.post("/api/v1/tokens/rotate", &token, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The CLI reads a time in --tz; a bad one is refused before anything is sent.
    let cli = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &[
            "user",
            "create",
            "cd",
            "--role",
            "pipeline",
            "--expires",
            "2099-01-31",
            "-o",
            "json",
        ],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let created: Value = serde_json::from_str(&cli.stdout).expect("json");
    assert_eq!(created["token_expires_at"], "2099-01-31T00:00:00Z");
    let cli = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &[
            "user",
            "create",
            "cd2",
            "--role",
            "pipeline",
            "--expires",
            "whenever",
        ],
    );
    assert_eq!(cli.code, 1);
    assert!(cli.stderr.starts_with("error: --expires"), "{}", cli.stderr);
}

async fn an_admin_revokes_every_token_of_an_account(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // A person's second token is minted under dual control (whoever holds it acts as rita).
    let (status, issued) = app
        .post("/api/v1/users/rita/tokens", ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{issued}");
    let second = issued["token"].as_str().expect("token").to_owned();
    assert_eq!(whoami(&app, &second).await.0, StatusCode::UNAUTHORIZED);
    app.approve_operation(issued["pending_approval"].as_str().expect("operation"))
        .await;
    assert_eq!(whoami(&app, &second).await.0, StatusCode::OK);

    let cli = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["token", "revoke", "--user", "rita"],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert!(
        cli.stdout.starts_with("revoked 2 tokens of rita"),
        "{}",
        cli.stdout
    );
    for token in [&c.rita, &second] {
        let (status, body) = whoami(&app, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("token revoked")),
            "{body}"
        );
    }
    // Only an admin revokes; nobody revokes their own (rotate instead).
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/users/max/tokens/revoke",
            Some(&c.mia),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["details"]["permission"], "manage_users");
    let (status, body) = admin_post(&app, "/api/v1/users/admin/tokens/revoke").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // A new token works; the revoked ones stay revoked.
    let cli = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["token", "issue", "--user", "rita", "-o", "json"],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let third: Value = serde_json::from_str(&cli.stdout).expect("json");
    app.approve_operation(third["pending_approval"].as_str().expect("operation"))
        .await;
    let third = third["token"].as_str().expect("token").to_owned();
    assert_eq!(whoami(&app, &third).await.0, StatusCode::OK);
    assert_eq!(whoami(&app, &second).await.0, StatusCode::UNAUTHORIZED);

    let revoked: Vec<Value> = events(&app, "rita")
        .await
        .into_iter()
        .filter(|(action, ..)| action == "token.revoked")
        .map(|(_, actor, details)| json!({"actor": actor, "tokens": details["tokens"]}))
        .collect();
    assert_eq!(revoked, [json!({"actor": "admin", "tokens": 2})]);
    no_secret_in_the_log(&app, ADMIN_TOKEN, &["rita"], &[&c.rita, &second, &third]).await;
}

async fn the_user_list_shows_status_roles_created_and_last_use(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    assert_eq!(whoami(&app, &c.rita).await.0, StatusCode::OK);
    let (status, _) = admin_post(&app, "/api/v1/users/max/disable").await;
    assert_eq!(status, StatusCode::OK);
    let user = |page: &Value, name: &str| -> Value {
        items(page)
            .iter()
            .find(|u| u["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {page}"))
    };
    let (_, page) = app.get("/api/v1/users", ADMIN_TOKEN).await;
    let rita = user(&page, "rita");
    assert_eq!(rita["status"], "active");
    assert_eq!(rita["roles"], json!(["requester"]));
    assert!(
        rita["created_at"].is_string() && rita["disabled_at"].is_null(),
        "{rita}"
    );
    let used = rita["last_used_at"]
        .as_str()
        .expect("rita used her token")
        .to_owned();
    let max = user(&page, "max");
    assert_eq!(max["status"], "disabled");
    assert!(
        max["disabled_at"].is_string() && max["last_used_at"].is_null(),
        "{max}"
    );

    // Within a minute a request records nothing new; after it, it does.
    assert_eq!(whoami(&app, &c.rita).await.0, StatusCode::OK);
    let (_, page) = app.get("/api/v1/users", ADMIN_TOKEN).await;
    assert_eq!(user(&page, "rita")["last_used_at"], used.as_str());
    app.clock.advance(Duration::minutes(2));
    assert_eq!(whoami(&app, &c.rita).await.0, StatusCode::OK);
    let (_, page) = app.get("/api/v1/users", ADMIN_TOKEN).await;
    assert!(
        user(&page, "rita")["last_used_at"].as_str() > Some(used.as_str()),
        "{page}"
    );

    let cli = run_steward(&app.base, ADMIN_TOKEN, &["user", "list"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let header = cli.stdout.lines().next().expect("a header");
    for column in ["NAME", "STATUS", "CREATED", "LAST USED", "ROLES"] {
        assert!(header.contains(column), "{}", cli.stdout);
    }
    let line = |name: &str| {
        cli.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {}", cli.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        line("max").starts_with("max disabled ") && line("max").contains(" never "),
        "{}",
        cli.stdout
    );
    assert!(
        line("rita").starts_with("rita active ") && line("rita").ends_with(" requester"),
        "{}",
        cli.stdout
    );
    assert!(!line("rita").contains("never"), "{}", cli.stdout);
}

async fn a_disabled_approvers_open_slots_are_reported_to_the_change_owners(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.user("cy", &["ciso"]).await;
    app.user("val", &["vp_engineering"]).await;
    // CHG-1 waits for its owning manager, mia; CHG-2 (an emergency) for a CISO and a VP
    // Engineering; CHG-3 mia already approved.
    let normal = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let emergency = id(&app
        .submit_ok(
            &c.max,
            change(
                json!({"emergency": true, "justification": "fraud losses are rising by the hour"}),
            ),
        )
        .await);
    let decided = id(&app
        .submit_ok(&c.rita, change(json!({"title": "another"})))
        .await);
    let (status, _) = app.decide(&c.mia, &decided, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK);

    let cli = run_steward(&app.base, ADMIN_TOKEN, &["user", "disable", "mia"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert_eq!(
        cli.stdout,
        format!(
            "disabled mia: its tokens no longer work\nreported {normal} to rita: open slot owner:mia (user mia)\n"
        )
    );
    let (status, body) = admin_post(&app, "/api/v1/users/cy/disable").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["reported"],
        json!([{"change": emergency, "slots": ["ciso (a ciso)"], "notified": "max"}])
    );
    let cli = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["user", "disable", "val", "-o", "json"],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let answer: Value = serde_json::from_str(&cli.stdout).expect("json");
    assert_eq!(answer["user"]["status"], "disabled");
    assert_eq!(
        answer["reported"],
        json!([{"change": emergency, "slots": ["vp_engineering (a vp_engineering)"], "notified": "max"}])
    );
    // A person no pending change waits on: nothing to report.
    app.user("ivan", &["requester"]).await;
    let cli = run_steward(&app.base, ADMIN_TOKEN, &["user", "disable", "ivan"]);
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert!(
        cli.stdout
            .ends_with("no change awaiting approval was waiting on them\n"),
        "{}",
        cli.stdout
    );

    // The owners find it in their notifications.
    let (_, inbox) = app.get("/api/v1/notifications", &c.rita).await;
    let notices = items(&inbox);
    assert_eq!(notices.len(), 1, "{inbox}");
    assert_eq!(notices[0]["change"], normal.as_str());
    assert_eq!(
        notices[0]["subject"],
        format!("{normal}: mia can no longer approve it")
    );
    assert!(
        notices[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("owner:mia")),
        "{inbox}"
    );
    let (_, inbox) = app.get("/api/v1/notifications", &c.max).await;
    let about: Vec<&str> = items(&inbox)
        .iter()
        .filter_map(|n| n["subject"].as_str())
        .collect();
    assert_eq!(about.len(), 2, "{inbox}");
    assert!(about.iter().all(|s| s.starts_with(&emergency)), "{inbox}");
    // The event says which changes were reported.
    let disabled: Vec<Value> = events(&app, "mia")
        .await
        .into_iter()
        .filter(|(action, ..)| action == "user.disabled")
        .map(|(_, _, details)| details["reported_changes"].clone())
        .collect();
    assert_eq!(disabled, [json!([normal])]);
}

async fn a_tenant_cannot_lock_itself_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let second = app.second_admin().await.to_owned();
    // Nobody disables themselves.
    let (status, body) = admin_post(&app, "/api/v1/users/admin/disable").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["details"]["reason"], "self_disable");
    let cli = run_steward(&app.base, ADMIN_TOKEN, &["user", "disable", "admin"]);
    assert_eq!(cli.code, 1);
    assert_eq!(
        cli.stderr,
        "error: you cannot disable your own account: ask another admin (409)\n"
    );
    // The server's own account is not an account to disable.
    let (status, body) = admin_post(&app, "/api/v1/users/steward/disable").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // With `admin` disabled, the second admin is the last active one: it keeps the role.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/users/admin/disable",
            Some(&second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/users/second-admin/roles",
            Some(&second),
            Some(json!({"roles": ["manager"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["details"]["reason"], "last_admin");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("last active admin")),
        "{body}"
    );
    let cli = run_steward(
        &app.base,
        &second,
        &[
            "user",
            "roles",
            "second-admin",
            "--set",
            "manager,requester",
        ],
    );
    assert_eq!(cli.code, 1);
    assert!(
        cli.stderr.contains("second-admin is the last active admin"),
        "{}",
        cli.stderr
    );

    // Bringing `admin` back is dual control like any privileged grant: it waits. (Nobody in
    // this tenant can approve it, so the test restores the account in the store.)
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/users/admin/enable",
            Some(&second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.store
        .tenant(&steward_core::TenantId::default_tenant())
        .enable_user(
            "test-setup",
            &steward_core::UserName::parse("admin").expect("name"),
            None,
            chrono::Utc::now(),
        )
        .await
        .expect("store")
        .expect("enabled");
    // Once `admin` is back, the second admin may step down; a role change is recorded with
    // the roles before and after.
    let cli = run_steward(
        &app.base,
        &second,
        &["user", "roles", "second-admin", "--set", "manager"],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert_eq!(cli.stdout, "second-admin now holds manager\n");
    let (_, me) = whoami(&app, &second).await;
    assert_eq!(me["roles"], json!(["manager"]));
    let (status, _) = app
        .post(
            "/api/v1/users",
            &second,
            json!({"name": "x", "roles": ["requester"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the role is gone at the next request"
    );
    let changed: Vec<Value> = events(&app, "second-admin")
        .await
        .into_iter()
        .filter(|(action, ..)| action == "user.roles_changed")
        .map(|(_, actor, details)| json!({"actor": actor, "before": details["before"], "after": details["after"]}))
        .collect();
    assert_eq!(
        changed,
        [
            json!({"actor": "second-admin", "before": {"roles": ["admin"]}, "after": {"roles": ["manager"]}})
        ]
    );
    // And now `admin` is the last one again.
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/users/admin/roles",
            Some(ADMIN_TOKEN),
            Some(json!({"roles": ["requester"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

both_backends!(
    a_disabled_accounts_token_is_refused_until_it_is_enabled,
    a_rotated_tokens_old_value_is_refused,
    an_expired_token_is_refused,
    an_admin_revokes_every_token_of_an_account,
    the_user_list_shows_status_roles_created_and_last_use,
    a_disabled_approvers_open_slots_are_reported_to_the_change_owners,
    a_tenant_cannot_lock_itself_out,
);
