//! The web portal in a real browser: headless Chromium, driven through chromedriver (see
//! [`browser`]), signs in with the portal's form, reads the pages and posts their forms as a
//! person would, and axe-core checks the pages' accessibility. Setting up uses the API; what the
//! browser did is checked against the API afterwards (the portal and the API never disagree).
//! Browser tests run on SQLite only, and there are few of them: each drives a whole journey.
//! Screenshots of every page visited land in `target/portal-screenshots/`.

mod browser;

use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id};
use browser::{Browser, PHONE, serious};
use reqwest::StatusCode;
use serde_json::json;

/// Signs in through the form at `/` with `token` and waits for the home page.
async fn sign_in(browser: &Browser, app: &TestApp, token: &str) {
    browser.goto(&format!("{}/", app.base)).await;
    browser
        .wait_for(r#"form#signin[method="post"][action="/signin"]"#)
        .await;
    browser
        .type_into(
            r#"#signin input#token[name="token"][type="password"]"#,
            token,
        )
        .await;
    browser.click("#signin-submit").await;
    browser.wait_for_text("h1", "Waiting for you").await;
}

/// Signs out with the form on the home page and waits for the sign-in form.
async fn sign_out(browser: &Browser, app: &TestApp) {
    browser.goto(&format!("{}/", app.base)).await;
    browser
        .click(r#"form#signout button, form#signout input[type="submit"]"#)
        .await;
    browser.wait_for("form#signin").await;
}

/// Every form of a session carries its CSRF token. (The sign-in form has no session to take one
/// from: the server refuses a sign-in posted from another origin instead.)
async fn forms_carry_csrf_tokens(browser: &Browser) {
    let missing = browser
        .run(
            r#"return [...document.forms]
                 .filter(f => f.id !== "signin")
                 .filter(f => !f.querySelector('input[type="hidden"][name="csrf"]'))
                 .map(f => f.id || f.action);"#,
        )
        .await;
    assert_eq!(
        missing,
        json!([]),
        "forms without a hidden csrf input on {}",
        browser.path().await
    );
}

/// The page's style sheet is the portal's own, served by the binary.
async fn styled_by_the_portal(browser: &Browser) {
    let styled = browser
        .run(
            r#"return [...document.styleSheets].some(s => {
                 try { return s.href && new URL(s.href).pathname === "/static/portal.css"
                              && s.cssRules.length > 0; }
                 catch (e) { return false; } });"#,
        )
        .await;
    assert_eq!(
        styled,
        json!(true),
        "{} is not styled by /static/portal.css",
        browser.path().await
    );
}

/// axe-core finds nothing serious or critical on the page on show.
async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.axe().await;
    let serious = serious(&violations);
    assert!(
        serious.is_empty(),
        "axe-core on the {page} page ({}):\n{}",
        browser.path().await,
        serious.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_approved_in_the_browser_by_its_owning_manager() {
    const TEST: &str = "approve";
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let changed = app.submit_ok(&c.rita, change(json!({}))).await;
    let id = id(&changed);
    let link = format!("/changes/{id}");
    let browser = Browser::start(TEST).await;

    // Signed out, `/` is the sign-in form.
    browser.goto(&format!("{}/", app.base)).await;
    browser.wait_for("form#signin").await;
    styled_by_the_portal(&browser).await;
    forms_carry_csrf_tokens(&browser).await;
    browser.screenshot("signin").await;

    // The requester finds her change on her home page, and no way to decide it.
    sign_in(&browser, &app, &c.rita).await;
    for section in ["#approvals", "#my-changes", "#my-incidents"] {
        browser.wait_for(section).await;
    }
    let mine = browser
        .all(&format!(r#"#my-changes a[href="{link}"]"#))
        .await;
    assert_eq!(
        mine.len(),
        1,
        "{id} among rita's changes:\n{}",
        browser.source().await
    );
    assert!(
        browser
            .all(&format!(r#"#approvals a[href="{link}"]"#))
            .await
            .is_empty(),
        "rita may not approve her own change"
    );
    forms_carry_csrf_tokens(&browser).await;
    browser.screenshot("home-requester").await;

    mine[0].click().await.expect("following the link");
    browser.wait_for("#state").await;
    assert_eq!(browser.path().await, link);
    let state = changed["state"].as_str().expect("state");
    browser.wait_for_text("#state", state).await;
    assert!(
        browser.all("#decide").await.is_empty(),
        "the requester sees no approve form on her own change:\n{}",
        browser.source().await
    );
    assert!(browser.all("#approve").await.is_empty());
    browser.screenshot("change-requester").await;
    sign_out(&browser, &app).await;

    // Her manager finds it waiting, opens it from the list, and approves it with a comment.
    sign_in(&browser, &app, &c.mia).await;
    let waiting = browser
        .wait_for(&format!(r#"#approvals a[href="{link}"]"#))
        .await;
    browser.screenshot("home-approver").await;
    accessible(&browser, "home").await;
    waiting.click().await.expect("following the link");
    browser.wait_for("form#decide").await;
    assert_eq!(browser.path().await, link);
    forms_carry_csrf_tokens(&browser).await;
    browser.wait_for("#reject").await;
    accessible(&browser, "change").await;
    browser.screenshot("change-approver").await;
    let comment = "rollback plan checked in the portal";
    browser
        .type_into(r#"form#decide textarea#comment[name="comment"]"#, comment)
        .await;
    browser.click("#approve").await;
    browser.wait_for_text("#state", "approved").await;
    assert!(
        browser.all("#decide").await.is_empty(),
        "a decided change offers no more decisions"
    );
    browser.screenshot("change-approved").await;

    // The API agrees with what the page said.
    let (status, body) = app.get(&format!("/api/v1/changes/{id}"), &c.rita).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");
    assert_eq!(body["approvals"]["given"][0]["by"], "mia", "{body}");
    assert_eq!(body["approvals"]["given"][0]["comment"], comment, "{body}");

    // A phone-sized screen gets the same home page.
    browser.resize(PHONE).await;
    browser.goto(&format!("{}/", app.base)).await;
    browser.wait_for_text("h1", "Waiting for you").await;
    let width = browser.run("return window.innerWidth;").await;
    assert_eq!(
        width,
        json!(PHONE.0),
        "the home page is laid out for the phone's width (a viewport meta tag)"
    );
    let overflow = browser
        .run("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 0),
        "the home page scrolls sideways on a phone by {overflow} px"
    );
    browser.screenshot("home-phone").await;

    browser.close().await;
    app.stop().await;
}

/// An admin reads the dashboard — its charts are drawn, not just sent — and checks an audit
/// event's inclusion proof in the browser, which recomputes the root with its own SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_and_the_browser_verifies_an_audit_proof() {
    const TEST: &str = "oversight";
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.submit_ok(&c.rita, change(json!({}))).await;
    let browser = Browser::start(TEST).await;
    sign_in(&browser, &app, ADMIN_TOKEN).await;

    browser.click("#nav-dashboard").await;
    browser.wait_for("section#dashboard").await;
    let charts = browser
        .run(
            r#"return [...document.querySelectorAll('svg[role="img"][id^="chart-"]')]
                 .filter(svg => { const box = svg.getBoundingClientRect();
                                  return box.width > 0 && box.height > 0
                                      && svg.querySelectorAll("rect, path, line").length > 0; })
                 .map(svg => svg.id);"#,
        )
        .await;
    assert!(
        charts.as_array().is_some_and(
            |drawn| drawn.len() == 7 && drawn.contains(&json!("chart-changes-by-type"))
        ),
        "every chart is drawn with a size and marks: {charts}"
    );
    accessible(&browser, "dashboard").await;
    browser.screenshot("dashboard").await;

    browser.click("#nav-audit").await;
    browser.wait_for("#audit-checkpoint").await;
    accessible(&browser, "audit").await;
    browser.screenshot("audit").await;
    browser.goto(&format!("{}/audit/0", app.base)).await;
    browser
        .wait_for(r#"#proof-verified[data-verified="true"]"#)
        .await;
    browser
        .wait_for(r#"#proof-browser-check[data-result="match"]"#)
        .await;
    accessible(&browser, "audit event").await;
    browser.screenshot("audit-event").await;

    browser.close().await;
    app.stop().await;
}
