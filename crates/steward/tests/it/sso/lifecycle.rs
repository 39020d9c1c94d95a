//! Accounts made by single sign-on through their lifecycle: one account per provider identity
//! whatever name the provider gives it (a disabled person does not come back under a new name),
//! sessions that end at once when the account is disabled or its tokens revoked, and the last use
//! that access reviews read.

use super::harness::{Browser, Provider, actions, map, steward};
use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestDb, run_steward};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One account of the user list (`GET /api/v1/users`), by name.
async fn listed(app: &crate::helpers::TestApp, name: &str) -> Option<Value> {
    let (status, page) = app.get("/api/v1/users", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|u| u["name"] == name)
        .cloned()
}

async fn a_renamed_identity_keeps_its_account(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let db = TestDb::new(backend).await;
    let app = steward(&db, &provider).await;
    map(&app, ADMIN_TOKEN, "ml-eng", &["requester"]).await;
    provider.groups("ivy", &["ml-eng"]).await;
    let browser = Browser::new();
    let signed_in = browser.sign_in(&app, "", "ivy").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let run = run_steward(&app.base, ADMIN_TOKEN, &["user", "disable", "ivy"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // The provider now calls the same person (the same subject) by another name: still the
    // disabled account, not a new active one.
    provider.rename("ivy", "ivy.new", &["ml-eng"]).await;
    let refused = Browser::new().sign_in(&app, "", "ivy").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("ivy is disabled"), "{}", refused.body);
    assert!(listed(&app, "ivy.new").await.is_none(), "no second account");

    // Enabled again, the person signs in as the account they have, under its name.
    let run = run_steward(&app.base, ADMIN_TOKEN, &["user", "enable", "ivy"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let browser = Browser::new();
    let signed_in = browser.sign_in(&app, "", "ivy").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let (status, me) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "ivy");
    let (status, _) = app.get("/api/v1/users/ivy.new", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
    provider.stop();
}

async fn disabling_or_revoking_ends_the_sessions_at_once(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let db = TestDb::new(backend).await;
    let app = steward(&db, &provider).await;
    map(&app, ADMIN_TOKEN, "ml-eng", &["requester"]).await;
    provider.groups("hana", &["ml-eng"]).await;
    let browser = Browser::new();
    let signed_in = browser.sign_in(&app, "", "hana").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let signed_in_at = listed(&app, "hana").await.expect("hana")["last_used_at"].clone();
    assert!(
        signed_in_at.is_string(),
        "a sign-in is a use: {signed_in_at}"
    );

    // The session's use is recorded as a token's is (at most once a minute): `user list` shows
    // it for access reviews.
    app.clock.advance(chrono::Duration::minutes(2));
    let (status, me) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let used_at = listed(&app, "hana").await.expect("hana")["last_used_at"].clone();
    assert!(
        used_at.as_str() > signed_in_at.as_str(),
        "{used_at} after {signed_in_at}"
    );
    let run = run_steward(&app.base, ADMIN_TOKEN, &["user", "list"]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("hana "))
        .unwrap_or_else(|| panic!("hana in {}", run.stdout));
    assert!(!line.contains(" never "), "{line}");

    // Disabled: the session ends at once, and enabling the account does not bring it back.
    let run = run_steward(&app.base, ADMIN_TOKEN, &["user", "disable", "hana"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, body) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let run = run_steward(&app.base, ADMIN_TOKEN, &["user", "enable", "hana"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, body) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("session has ended")),
        "{body}"
    );

    // Revoking the account's tokens ends its sessions too.
    let signed_in = browser.sign_in(&app, "", "hana").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(browser.whoami(&app).await.0, StatusCode::OK);
    let run = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["token", "revoke", "--user", "hana"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, body) = browser.whoami(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let ended: Vec<Value> = actions(&app, "hana")
        .await
        .into_iter()
        .filter(|(action, _)| action == "user.disabled" || action == "token.revoked")
        .map(|(_, details)| details["sessions_ended"].clone())
        .collect();
    assert_eq!(
        ended,
        [json!(1), json!(1)],
        "the record says how many sessions ended"
    );
    app.stop().await;
    provider.stop();
}

both_backends!(
    a_renamed_identity_keeps_its_account,
    disabling_or_revoking_ends_the_sessions_at_once,
);
