//! Single sign-on and bearer JWTs against a real OpenID Connect provider: npm `oidc-provider`
//! (tests/oidc/provider.js, installed by `scripts/test.sh` with `npm ci`), one or two instances
//! per test on ports of their own. A small cookie-keeping client plays the browser: it follows
//! the redirects and submits the provider's development login and consent forms, as a person
//! would. A test fails, rather than skips, when Node or the provider is not installed.

mod harness;
mod lifecycle;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestDb, run_steward};
use harness::{
    AUDIENCE, Browser, Provider, actions, hs256, map, roles, steward, steward_at, tamper, unsigned,
    with_kid,
};
use reqwest::header::COOKIE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn signs_in_through_the_code_flow(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let db = TestDb::new(backend).await;
    let app = steward(&db, &provider).await;
    // The mapping, through the CLI as an admin would keep it.
    let run = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["tenant", "groups", "set", "ml-cab", "--roles", "cab_member"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // cab_member approves changes: the mapping waits for a second admin (dual control).
    assert!(
        run.stdout.contains("waits for a second admin"),
        "{}",
        run.stdout
    );
    let second = app.second_admin().await.to_owned();
    let run = run_steward(&app.base, &second, &["admin", "pending", "-o", "json"]);
    let waiting: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let id = waiting["items"][0]["id"].as_str().expect("id").to_owned();
    let run = run_steward(&app.base, &second, &["admin", "approve", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    map(&app, ADMIN_TOKEN, "ml-eng", &["requester"]).await;
    let run = run_steward(&app.base, ADMIN_TOKEN, &["tenant", "groups", "list"]);
    assert!(
        run.stdout.contains("ml-cab") && run.stdout.contains("ml-eng"),
        "{}",
        run.stdout
    );
    provider
        .groups("alice", &["ml-cab", "ml-eng", "unmapped"])
        .await;

    let browser = Browser::new();
    let (login, callback) = browser
        .authorize(&app, "?return_to=/api/v1/whoami", "alice")
        .await;
    let to_provider = login.location.as_deref().expect("Location");
    assert!(to_provider.starts_with(&provider.issuer), "{to_provider}");
    for parameter in [
        "code_challenge=",
        "code_challenge_method=S256",
        "state=",
        "nonce=",
    ] {
        assert!(
            to_provider.contains(parameter),
            "{parameter} in {to_provider}"
        );
    }
    let signed_in = browser.get(&callback).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location.as_deref(), Some("/api/v1/whoami"));
    let cookie = signed_in
        .cookie("steward_session")
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/;"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let max_age: i64 = cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .expect("Max-Age");
    assert!(
        (3500..=3600).contains(&max_age),
        "the session ends with the ID token (1 h): {max_age}"
    );

    let (status, me) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "alice");
    assert_eq!(roles(&me), ["requester", "cab_member"]);
    let created = actions(&app, "alice").await;
    assert_eq!(created[0].0, "user.created", "{created:?}");
    assert_eq!(created[0].1["after"]["source"], "oidc");
    assert!(created.iter().any(|(a, _)| a == "user.signed_in"));

    // The state works once: the same callback again is refused, on this server or another.
    let replayed = browser.get(&callback).await;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
    assert!(
        replayed.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("already used")),
        "{}",
        replayed.body
    );

    // A write carried by the cookie from another origin is refused.
    let (status, _) = {
        let answer = browser
            .send(
                browser
                    .http
                    .post(format!("{}/api/v1/changes", app.base))
                    .header("Origin", "https://evil.example")
                    .json(&json!({})),
            )
            .await;
        (answer.status, answer.body)
    };
    assert_eq!(status, StatusCode::FORBIDDEN);
    // … and one that does not say where it comes from (a browser always does).
    let bare = browser
        .send(
            browser
                .http
                .post(format!("{}/api/v1/changes", app.base))
                .json(&json!({})),
        )
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN, "{}", bare.body);
    // From Steward's own origin it reaches the handler (an empty change is a 422, not a 403).
    let own = browser
        .send(
            browser
                .http
                .post(format!("{}/api/v1/changes", app.base))
                .header("Origin", app.base.as_str())
                .json(&json!({})),
        )
        .await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", own.body);

    // Signing out ends the session.
    let session = browser.session().expect("session cookie");
    let out = browser.get(&format!("{}/auth/logout", app.base)).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert_eq!(out.json()["signed_out"], true);
    assert!(
        out.cookie("steward_session")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let stale = reqwest::Client::new()
        .get(format!("{}/api/v1/whoami", app.base))
        .header(COOKIE, format!("steward_session={session}"))
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);

    // A disabled account's session ends at once, and it cannot sign in again.
    let again = Browser::new();
    let signed_in = again.sign_in(&app, "", "alice").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let (status, body) = app
        .post("/api/v1/users/alice/disable", ADMIN_TOKEN, json!({}))
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = again.whoami(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("session has ended")),
        "{body}"
    );
    let refused = Browser::new().sign_in(&app, "", "alice").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("disabled"), "{}", refused.body);

    // A local account's name cannot be taken through the provider, and no mapped group is no
    // entry (a page for a browser).
    app.user("mia", &["manager"]).await;
    provider.groups("mia", &["ml-eng"]).await;
    let taken = Browser::new().sign_in(&app, "", "mia").await;
    assert_eq!(taken.status, StatusCode::FORBIDDEN, "{}", taken.body);
    assert!(
        taken
            .body
            .contains("does not sign in through the identity provider"),
        "{}",
        taken.body
    );
    provider.groups("nobody", &["unmapped"]).await;
    let outsider = Browser::new();
    let (_, callback) = outsider.authorize(&app, "", "nobody").await;
    let page = outsider
        .send(outsider.http.get(&callback).header("Accept", "text/html"))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.starts_with("<!doctype html>"), "{}", page.body);
    assert!(
        page.body.contains("give you no role in Steward"),
        "{}",
        page.body
    );
    app.stop().await;
    provider.stop();
}

async fn bearer_jwts_call_the_api(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let other_issuer = Provider::start(&[]).await;
    let db = TestDb::new(backend).await;
    let app = steward(&db, &provider).await;
    map(&app, ADMIN_TOKEN, "ml-pipelines", &["pipeline"]).await;

    let token = provider.client_token("pipeline", AUDIENCE).await;
    let (status, me) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "pipeline", "named by its client_id");
    assert_eq!(roles(&me), ["pipeline"]);
    let (status, body) = app.get("/api/v1/changes", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/changes/CHG-1/approve",
            &token,
            json!({"comment": "x"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a pipeline's roles, not more: {body}"
    );

    let refused = |status: StatusCode, body: &Value, says: &str| {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(says)),
            "expected '{says}': {body}"
        );
    };
    // A token for another resource server.
    let elsewhere = provider.client_token("pipeline", "urn:other:api").await;
    let (status, body) = app.get("/api/v1/whoami", &elsewhere).await;
    refused(status, &body, "audience");
    // A token from another issuer (same signing key, so only the issuer tells them apart).
    let foreign = other_issuer.client_token("pipeline", AUDIENCE).await;
    let (status, body) = app.get("/api/v1/whoami", &foreign).await;
    refused(status, &body, "issuer");
    // A tampered payload under the original signature.
    let tampered = tamper(&token, |claims| claims["groups"] = json!(["ml-admins"]));
    let (status, body) = app.get("/api/v1/whoami", &tampered).await;
    refused(status, &body, "signature");
    // No signature (`alg: none`), and an HMAC signature keyed with the provider's public key:
    // only the provider's asymmetric signatures count.
    let (status, body) = app.get("/api/v1/whoami", &unsigned(&token)).await;
    refused(status, &body, "bearer token refused (signature");
    let jwks = provider.jwks().await;
    let key = &jwks["keys"][0];
    let modulus = key["n"].as_str().expect("an RSA key");
    for secret in [
        serde_json::to_vec(key).expect("json"),
        serde_json::to_vec(&jwks).expect("json"),
        modulus.as_bytes().to_vec(),
    ] {
        let (status, body) = app.get("/api/v1/whoami", &hs256(&token, &secret)).await;
        refused(status, &body, "bearer token refused (signature");
    }
    // A client whose groups map to nothing has no role.
    let stranger = provider.client_token("pipeline-2", AUDIENCE).await;
    let (status, body) = app.get("/api/v1/whoami", &stranger).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Roles come from the mapping at each request: removing it takes the role away (CLI).
    let run = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["tenant", "groups", "delete", "ml-pipelines"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    map(&app, ADMIN_TOKEN, "ml-pipelines", &["pipeline"]).await;

    // Each use is recorded as an API token's is (at most once a minute), for access reviews.
    let last_used = || async {
        let (status, account) = app.get("/api/v1/users/pipeline", ADMIN_TOKEN).await;
        assert_eq!(status, StatusCode::OK, "{account}");
        account["last_used_at"].as_str().map(str::to_owned)
    };
    let before = last_used().await;
    assert!(before.is_some(), "the first request is a use");
    app.clock.advance(chrono::Duration::minutes(2));
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = last_used().await;
    assert!(after > before, "{after:?} after {before:?}");

    // A disabled account's JWT is refused at the next request (CLI), and works once enabled.
    let run = run_steward(&app.base, ADMIN_TOKEN, &["user", "disable", "pipeline"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    refused(status, &body, "account disabled");
    let run = run_steward(&app.base, ADMIN_TOKEN, &["user", "enable", "pipeline"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Expired (the server's clock two hours on; the token lived ten minutes).
    app.clock.advance(chrono::Duration::hours(2));
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    refused(status, &body, "expired");
    app.stop().await;
    provider.stop();
    other_issuer.stop();
}

/// Two servers on one database behind one public address: a sign-in started on one finishes on
/// the other, once.
async fn a_sign_in_started_on_one_server_finishes_on_another(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let db = TestDb::new(backend).await;
    let first = steward(&db, &provider).await;
    let second = steward_at(&db, &provider, Some(&first.base)).await;
    map(&first, ADMIN_TOKEN, "ml-eng", &["requester"]).await;
    provider.groups("dora", &["ml-eng"]).await;
    let browser = Browser::new();
    let (_, callback) = browser.authorize(&first, "", "dora").await;
    let on_second = callback.replacen(&first.base, &second.base, 1);
    let signed_in = browser.get(&on_second).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let (status, me) = browser.whoami(&first).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the session works on every server: {me}"
    );
    assert_eq!(me["name"], "dora");
    let replayed = browser.get(&callback).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.body
    );
    second.stop().await;
    first.stop().await;
    provider.stop();
}

async fn group_removal_takes_effect_after_the_session_expires(backend: Backend) {
    // ID tokens, and so sessions, of three seconds.
    let provider = Provider::start(&["--id-token-ttl=3"]).await;
    let db = TestDb::new(backend).await;
    let app = steward(&db, &provider).await;
    map(&app, ADMIN_TOKEN, "ml-cab", &["cab_member"]).await;
    map(&app, ADMIN_TOKEN, "ml-eng", &["requester"]).await;
    provider.groups("bob", &["ml-cab"]).await;
    let browser = Browser::new();
    let signed_in = browser.sign_in(&app, "", "bob").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let (_, me) = browser.whoami(&app).await;
    assert_eq!(roles(&me), ["cab_member"]);

    // Removed from the CAB group at the provider: the session keeps what it was given...
    provider.groups("bob", &["ml-eng"]).await;
    let (status, me) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(roles(&me), ["cab_member"]);
    // ...until it ends with the ID token; the next request is refused, and the next sign-in
    // brings the roles the groups now give.
    tokio::time::sleep(Duration::from_millis(4_100)).await;
    let (status, body) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("/auth/login")),
        "{body}"
    );
    let again = browser.sign_in(&app, "", "bob").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let (_, me) = browser.whoami(&app).await;
    assert_eq!(roles(&me), ["requester"]);
    let synced: Vec<Value> = actions(&app, "bob")
        .await
        .into_iter()
        .filter(|(action, _)| action == "user.roles_synced")
        .map(|(_, details)| details)
        .collect();
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(synced[0]["before"]["roles"], json!(["cab_member"]));
    assert_eq!(synced[0]["after"]["roles"], json!(["requester"]));
    app.stop().await;
    provider.stop();
}

async fn several_tenants_need_a_choice(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let db = TestDb::new(backend).await;
    let app = steward(&db, &provider).await;
    let (status, risk) = app
        .post(
            "/api/v1/tenants",
            ADMIN_TOKEN,
            json!({"name": "risk", "admin": "rhea"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{risk}");
    let risk_admin = risk["token"].as_str().expect("token").to_owned();
    map(&app, ADMIN_TOKEN, "ml-eng", &["requester"]).await;

    // A group another tenant maps cannot be mapped in risk (risk could otherwise hand roles to
    // default's people, and learn its name from their refusals), and the refusal names no
    // tenant: at once (CLI)...
    let mapped_elsewhere = |message: &str, group: &str| {
        let expected =
            format!("group {group} is mapped in another tenant; ask the installation admins");
        assert!(message.contains(&expected), "{message}");
        assert!(!message.contains("default"), "{message}");
    };
    let run = run_steward(
        &app.base,
        &risk_admin,
        &["tenant", "groups", "set", "ml-eng", "--roles", "requester"],
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    mapped_elsewhere(&run.stderr, "ml-eng");
    // ...before a privileged mapping waits for a second admin (API)...
    let put = |group: &str, roles: Value| {
        let path = format!("/api/v1/groups/{group}");
        let token = risk_admin.clone();
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                &path,
                Some(&token),
                Some(json!({ "roles": roles })),
            )
            .await
        }
    };
    let (status, body) = put("ml-eng", json!(["cab_member"])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    mapped_elsewhere(body["error"].as_str().expect("error"), "ml-eng");
    // ...and when a waiting mapping is approved after another tenant mapped the group.
    let (status, waiting) = put("ml-ops", json!(["cab_member"])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{waiting}");
    let ml_ops = waiting["id"].as_str().expect("id").to_owned();
    map(&app, ADMIN_TOKEN, "ml-ops", &["requester"]).await;
    let (status, second) = app
        .post(
            "/api/v1/users",
            &risk_admin,
            json!({"name": "second-admin", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let risk_second = second["token"].as_str().expect("token").to_owned();
    let approve = |id: String| {
        let token = risk_second.clone();
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/admin/pending/{id}/approve"),
                &token,
                json!({}),
            )
            .await
        }
    };
    let (status, body) = approve(ml_ops).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    mapped_elsewhere(body["error"].as_str().expect("error"), "ml-ops");

    // A group of its own: a person still reaches several tenants through different groups.
    let (status, waiting) = put("ml-cab", json!(["cab_member"])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{waiting}");
    let (status, body) = approve(waiting["id"].as_str().expect("id").to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    provider.groups("carol", &["ml-eng", "ml-cab"]).await;

    let refused = Browser::new().sign_in(&app, "", "carol").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(
        refused.json()["details"]["tenants"],
        json!(["default", "risk"])
    );

    let browser = Browser::new();
    let signed_in = browser.sign_in(&app, "?tenant=risk", "carol").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let (_, me) = browser.whoami(&app).await;
    assert_eq!(roles(&me), ["cab_member"], "only the chosen tenant's roles");
    let (_, users) = app.get("/api/v1/users/carol", &risk_admin).await;
    assert_eq!(users["name"], "carol", "the account lives in tenant risk");
    let (status, _) = app.get("/api/v1/users/carol", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "and not in default");
    app.stop().await;
    provider.stop();
}

/// A token signed with a key Steward has not seen makes it fetch the keys again, once; tokens
/// naming made-up key ids after that do not reach the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_ids_refresh_the_keys_at_most_once() {
    let first = Provider::start(&["--kid=first"]).await;
    let port = first.port();
    let db = TestDb::new(Backend::Sqlite).await;
    let app = steward(&db, &first).await;
    map(&app, ADMIN_TOKEN, "ml-pipelines", &["pipeline"]).await;
    let token = first.client_token("pipeline", AUDIENCE).await;
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    first.stop();

    // The provider comes back with a new signing key (same issuer, same port).
    let rotated = Provider::start_on(port, &["--kid=second"]).await;
    let token = rotated.client_token("pipeline", AUDIENCE).await;
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::OK, "the new key is fetched: {body}");
    assert_eq!(rotated.key_fetches().await, 1);
    for n in 0..5 {
        let garbage = with_kid(&token, &format!("made-up-{n}"));
        let (status, _) = app.get("/api/v1/whoami", &garbage).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        rotated.key_fetches().await,
        1,
        "made-up key ids must not make Steward fetch the keys again"
    );
    app.stop().await;
    rotated.stop();
}

/// Made-up key ids do not hold back a provider's new key: it is fetched soon after, though a
/// made-up id made Steward fetch the keys moments before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_fetched_soon_after_made_up_key_ids() {
    let first = Provider::start(&["--kid=first"]).await;
    let port = first.port();
    let db = TestDb::new(Backend::Sqlite).await;
    let app = steward(&db, &first).await;
    map(&app, ADMIN_TOKEN, "ml-pipelines", &["pipeline"]).await;
    let token = first.client_token("pipeline", AUDIENCE).await;
    let garbage = with_kid(&token, "made-up");
    let (status, _) = app.get("/api/v1/whoami", &garbage).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fetched_at = std::time::Instant::now();
    assert_eq!(
        first.key_fetches().await,
        2,
        "discovery, then the made-up key id"
    );
    first.stop();

    let rotated = Provider::start_on(port, &["--kid=second"]).await;
    let token = rotated.client_token("pipeline", AUDIENCE).await;
    let gap = steward_server::sso::KEY_REFRESH_GAP + Duration::from_millis(200);
    tokio::time::sleep(gap.saturating_sub(fetched_at.elapsed())).await;
    assert!(
        fetched_at.elapsed() < steward_server::sso::KEY_REFRESH_INTERVAL,
        "the test must run within one refresh interval of the made-up key id"
    );
    let (status, body) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::OK, "the new key is fetched: {body}");
    // The made-up key id again, and another: within the gap, no fetch.
    for kid in ["made-up", "made-up-2"] {
        let (status, _) = app.get("/api/v1/whoami", &with_kid(&token, kid)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(rotated.key_fetches().await, 1);
    app.stop().await;
    rotated.stop();
}

both_backends!(
    signs_in_through_the_code_flow,
    a_sign_in_started_on_one_server_finishes_on_another,
    bearer_jwts_call_the_api,
    group_removal_takes_effect_after_the_session_expires,
    several_tenants_need_a_choice,
);
