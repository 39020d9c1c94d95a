//! The portal's change form and change page over HTTP, as a browser posts them: the form lists
//! the tenant's targets and catalog; its preview says what `POST /api/v1/policy/evaluate` says;
//! posting it creates the change the API shows, field for field (or a draft, sent for approval
//! from its page); a bad form comes back with each message beside its field and creates
//! nothing; a form without the session's CSRF token and a viewer without `submit_changes` are
//! refused. The change page shows the policy receipts, the execution journal and the history the
//! API has, and the incidents that suspect the change.

mod created;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, items};
use crate::portal_http::{Browser, Page};
use reqwest::StatusCode;
use serde_json::json;

/// Text as the page shows it, HTML escapes undone.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// The text between `start` and the next `end` after it.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let at = body
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {body}"))
        + start.len();
    let rest = &body[at..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("no {end} after {start}"))]
}

/// The risk factors a page or fragment lists: (name, observed, points).
fn factors(body: &str) -> Vec<(String, String, u64)> {
    body.split(r#"<tr data-factor=""#)
        .skip(1)
        .map(|row| {
            let cells: Vec<String> = row
                .split("<td>")
                .skip(1)
                .take(3)
                .map(|c| unescape(&c[..c.find("</td>").expect("cell end")]))
                .collect();
            (
                cells[0].clone(),
                cells[1].clone(),
                cells[2].parse().expect("points"),
            )
        })
        .collect()
}

/// The form's fields for the change `helpers::change` describes (plus `extra`).
fn fields<'a>(csrf: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![
        ("csrf", csrf),
        ("title", "Promote fraud model v7"),
        ("description", "Retrained on October data"),
        ("category", "model-deployment"),
        ("environment", "staging"),
        ("targets", "fraud-scoring"),
        ("impact_data", "low"),
        ("impact_availability", "low"),
        ("impact_compliance", "low"),
        ("impact_rollback_complexity", ""),
        ("implementation_plan", "move alias champion to v7"),
        ("rollback_plan", "move alias champion back to v6"),
        ("backup_reference", "registry:fraud-scoring/6"),
        ("backup_verified_at", "2026-11-20T00:00"),
        ("step-0-name", ""),
        ("step-0-kind", ""),
        ("check-0-kind", ""),
    ];
    all.extend_from_slice(extra);
    all
}

async fn signed_in<'a>(app: &'a TestApp, token: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    let answer = browser.sign_in(token).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}

/// Opens the form and answers it with its CSRF token.
async fn form(browser: &Browser<'_>) -> (Page, String) {
    let page = browser.get("/changes/new").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    (page, csrf)
}

async fn change_count(app: &TestApp) -> usize {
    let (status, list) = app.get("/api/v1/changes", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    items(&list).len()
}

async fn the_form_lists_the_tenants_targets_and_catalog(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.target("ledger", "mia", "production", "high", &["pii", "financial"])
        .await;
    let rita = signed_in(&app, &c.rita).await;
    let (page, _) = form(&rita).await;
    for id in [
        r#"<form id="change-form" method="post" action="/changes/new""#,
        r#"id="change-title""#,
        r#"id="change-preview" aria-live="polite""#,
        r#"id="change-preview-button""#,
        r#"id="change-submit""#,
        r#"id="change-save-draft""#,
        r#"id="change-add-step""#,
        r#"id="step-0-kind""#,
        r#"id="check-0-kind""#,
        r#"<label for="change-title">"#,
    ] {
        assert!(page.body.contains(id), "{id} missing: {}", page.body);
    }
    // Every target, with what a requester needs to know of it.
    assert!(
        page.body.contains(r#"<input type="checkbox" name="targets" value="fraud-scoring" id="change-target-fraud-scoring">"#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"id="change-target-ledger""#)
            && page
                .body
                .contains("model_deployment · production · criticality high · pii · financial"),
        "{}",
        page.body
    );
    // Every catalog item is a choice.
    let (status, catalog) = app.get("/api/v1/catalog", &c.rita).await;
    assert_eq!(status, StatusCode::OK);
    let catalog = items(&catalog);
    assert!(!catalog.is_empty(), "the shipped catalog");
    for item in catalog {
        let name = item["name"].as_str().expect("name");
        assert!(
            page.body.contains(&format!(r#"<option value="{name}">"#)),
            "{name} missing: {}",
            page.body
        );
    }
    // The navigation's "New change" opens it.
    assert!(
        page.body
            .contains(r#"href="/changes/new" id="nav-new-change""#)
    );

    // An auditor proposes nothing: no link, and the page and its posts are refused.
    let auditor = app.user("audrey", &["auditor"]).await;
    let audrey = signed_in(&app, &auditor).await;
    let home = audrey.get("/").await;
    assert!(!home.body.contains("nav-new-change"), "{}", home.body);
    let refused = audrey.get("/changes/new").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("submit_changes"), "{}", refused.body);
    let csrf = home.csrf();
    for path in ["/changes/new", "/changes/preview"] {
        let refused = audrey.post(path, &fields(&csrf, &[])).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(change_count(&app).await, 0);
}

async fn the_preview_says_what_policy_evaluate_says(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // A production target with regulated data: several rules have something to say.
    app.target("ledger", "mia", "production", "high", &["pii", "financial"])
        .await;
    let rita = signed_in(&app, &c.rita).await;
    let (_, csrf) = form(&rita).await;
    let posted = fields(
        &csrf,
        &[
            ("environment", "production"),
            ("targets", "ledger"),
            ("impact_data", "high"),
        ],
    );
    // The form posts both `targets`; the document names only ledger and production.
    let posted: Vec<_> = posted
        .into_iter()
        .filter(|(k, v)| !(*k == "targets" && *v == "fraud-scoring"))
        .filter(|(k, v)| !(*k == "environment" && *v == "staging"))
        .filter(|(k, v)| !(*k == "impact_data" && *v == "low"))
        .collect();
    let document = change(json!({
        "environment": "production", "targets": ["ledger"],
        "impact": {"data": "high", "availability": "low", "compliance": "low"},
        "backup": {"reference": "registry:fraud-scoring/6", "verified_at": "2026-11-20T00:00:00Z"},
    }));
    let (status, evaluated) = app
        .post("/api/v1/policy/evaluate", &c.rita, document.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{evaluated}");

    let fragment = rita.post("/changes/preview", &posted).await;
    assert_eq!(fragment.status, StatusCode::OK, "{}", fragment.body);
    let body = &fragment.body;
    assert!(!body.contains("<html"), "a fragment, not a page: {body}");
    assert!(body.contains(r#"data-status="ready""#), "{body}");
    assert_eq!(
        between(body, r#"id="preview-risk-score">"#, "<"),
        evaluated["risk_score"].to_string()
    );
    assert_eq!(
        between(body, r#"id="preview-type">"#, "<"),
        evaluated["type"].as_str().expect("type")
    );
    assert_eq!(
        between(body, r#"id="preview-policy-set">"#, "<"),
        evaluated["policy_set"].as_str().expect("policy set")
    );
    assert_eq!(
        body.contains("Submitting now would be refused"),
        evaluated["denied"].as_bool().expect("denied")
    );
    for approval in evaluated["required_approvals"].as_array().expect("list") {
        let approval = approval.as_str().expect("text");
        assert!(unescape(body).contains(approval), "{approval}: {body}");
    }
    let mut spoke = 0;
    for rule in evaluated["rules"].as_array().expect("rules") {
        let name = rule["rule"].as_str().expect("rule");
        let verdict = rule["verdict"].as_str().expect("verdict");
        let said = verdict != "pass"
            || rule.get("approvals").is_some()
            || rule.get("obligations").is_some();
        if said {
            spoke += 1;
            assert!(
                body.contains(&format!(r#"<tr class="cr-verdict-{verdict}"><td>{name}"#)),
                "{name} ({verdict}) missing: {body}"
            );
            for message in rule["deny"]
                .as_array()
                .into_iter()
                .chain(rule["warn"].as_array())
                .flatten()
            {
                assert!(
                    unescape(body).contains(message.as_str().expect("text")),
                    "{message}"
                );
            }
        } else {
            assert!(between(body, r#"id="preview-passed">"#, "</p>").contains(name));
        }
    }
    assert!(
        spoke > 0,
        "the regulated production target draws rules: {evaluated:#}"
    );
    // The factors are the ones the change gets when the same document is stored.
    let mut as_draft = document.clone();
    as_draft["draft"] = json!(true);
    let (status, draft) = app.submit(&c.rita, as_draft).await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    assert_eq!(draft["risk"]["score"], evaluated["risk_score"]);
    let stored: Vec<(String, String, u64)> =
        (draft["risk"]["factors"].as_array().expect("factors").iter())
            .map(|f| {
                (
                    f["name"].as_str().expect("name").to_owned(),
                    f["observed"].as_str().expect("observed").to_owned(),
                    f["points"].as_u64().expect("points"),
                )
            })
            .collect();
    assert!(!stored.is_empty());
    assert_eq!(factors(body), stored);

    // Without the script, "Preview" shows the whole form again, values kept, panel filled in.
    let mut with_button = posted.clone();
    with_button.push(("action", "preview"));
    let page = rita.post("/changes/new", &with_button).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(r#"<form id="change-form""#));
    assert!(
        page.body.contains(r#"value="Promote fraud model v7""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"id="change-target-ledger" checked"#),
        "{}",
        page.body
    );
    assert_eq!(factors(&page.body), stored);
    // "Add a step" keeps everything and adds a row.
    let mut more = posted.clone();
    more.push(("action", "add_step"));
    let page = rita.post("/changes/new", &more).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(r#"id="step-1-kind""#), "{}", page.body);
    assert!(page.body.contains(r#"value="Promote fraud model v7""#));

    // A form being filled in is incomplete, not an error: the panel says what is missing.
    let partial = rita
        .post(
            "/changes/preview",
            &[("csrf", csrf.as_str()), ("title", "Half a change")],
        )
        .await;
    assert_eq!(partial.status, StatusCode::OK, "{}", partial.body);
    assert!(
        partial.body.contains(r#"data-status="incomplete""#),
        "{}",
        partial.body
    );
    assert!(
        partial.body.contains("Description: is required"),
        "{}",
        partial.body
    );
    let untouched = rita
        .post("/changes/preview", &[("csrf", csrf.as_str())])
        .await;
    assert!(
        untouched.body.contains(r#"data-status="empty""#),
        "{}",
        untouched.body
    );
    // Only the one draft stored above: previews store nothing.
    assert_eq!(change_count(&app).await, 1);
}

async fn a_bad_form_comes_back_with_each_message_and_creates_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let rita = signed_in(&app, &c.rita).await;
    let (_, csrf) = form(&rita).await;
    let posted: Vec<_> = fields(
        &csrf,
        &[
            ("targets", "no-such-target"),
            ("window_start", "tomorrow-ish"),
            ("window_end", "2026-12-01T10:00"),
            ("step-0-name", "restart"),
            ("step-0-kind", "command"),
            ("step-0-program", "/usr/bin/systemctl"),
            ("check-0-kind", "metric"),
            ("check-0-metric", "accuracy"),
            ("check-0-max_degradation_percent", "a lot"),
            ("action", "submit"),
        ],
    )
    .into_iter()
    .filter(|(k, _)| *k != "title")
    .collect();
    let page = rita.post("/changes/new", &posted).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    let body = &page.body;
    // The summary links each message to its field; each message sits beside its field.
    assert!(
        body.contains(r#"id="change-errors" role="alert""#),
        "{body}"
    );
    assert!(
        body.contains(r##"<a href="#change-title">Title</a>: is required"##),
        "{body}"
    );
    assert!(
        body.contains(r#"<div class="cf-error" id="change-title-error"><p>is required</p></div>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"id="change-title" name="title" value="" maxlength="200" aria-required="true" aria-invalid="true""#),
        "{body}"
    );
    assert!(
        unescape(between(
            body,
            r#"id="change-window-start-error">"#,
            "</div>"
        ))
        .contains("'tomorrow-ish' is not a time"),
        "{body}"
    );
    assert!(
        unescape(between(body, r#"id="step-0-error">"#, "</div>"))
            .contains("undo: step 'restart' has no rollback path"),
        "{body}"
    );
    assert!(
        between(body, r#"id="check-0-error">"#, "</div>")
            .contains("max_degradation_percent: must be a number"),
        "{body}"
    );
    // Values are kept, the forged target too, so it can be unticked.
    assert!(
        body.contains(r#">Retrained on October data</textarea>"#),
        "{body}"
    );
    assert!(body.contains(r#"value="/usr/bin/systemctl""#), "{body}");
    assert!(
        body.contains(r#"id="change-target-no-such-target" checked"#),
        "{body}"
    );
    assert_eq!(change_count(&app).await, 0);

    // Fields only the store can judge (an unknown target) land beside their field too.
    let posted: Vec<_> = fields(
        &csrf,
        &[("targets", "no-such-target"), ("action", "submit")],
    )
    .into_iter()
    .filter(|(k, v)| !(*k == "targets" && *v == "fraud-scoring"))
    .collect();
    let page = rita.post("/changes/new", &posted).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(
        between(&page.body, r#"id="change-targets-list-error">"#, "</div>")
            .contains("unknown target"),
        "{}",
        page.body
    );
    assert_eq!(change_count(&app).await, 0);

    // A policy's denial says why (a freeze does the same with 409): an emergency without its
    // justification is a field; an irreversible catalog change is refused by the parser too.
    let page = rita
        .post(
            "/changes/new",
            &fields(&csrf, &[("emergency", "true"), ("action", "submit")]),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains(r#"id="change-justification-error""#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"id="change-emergency" name="emergency" value="true" checked"#),
        "{}",
        page.body
    );
    assert_eq!(change_count(&app).await, 0);
}

async fn a_form_without_the_sessions_csrf_token_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let rita = signed_in(&app, &c.rita).await;
    let (_, csrf) = form(&rita).await;
    let mut other = Browser::new(&app);
    other.sign_in(&c.max).await;
    let (_, max_csrf) = form(&other).await;
    for path in ["/changes/new", "/changes/preview"] {
        let without: Vec<_> = fields("", &[("action", "submit")])
            .into_iter()
            .filter(|(k, _)| *k != "csrf")
            .collect();
        let refused = rita.post(path, &without).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.body
        );
        assert!(
            refused.body.contains("did not come from Steward"),
            "{}",
            refused.body
        );
        // Another session's token is no better.
        let refused = rita
            .post(path, &fields(&max_csrf, &[("action", "submit")]))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        // From another site, even with the token: refused.
        let elsewhere = rita
            .post_from(
                Some("https://evil.example"),
                path,
                &fields(&csrf, &[("action", "submit")]),
            )
            .await;
        assert_eq!(elsewhere.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(change_count(&app).await, 0);
    // A script with a bearer token posts the API's document as JSON and needs no token.
    let (status, created) = app
        .call(
            reqwest::Method::POST,
            "/changes/new",
            Some(&c.rita),
            Some(change(json!({}))),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "redirected to the change's page: {created}"
    );
    assert_eq!(change_count(&app).await, 1);
}

both_backends!(
    the_form_lists_the_tenants_targets_and_catalog,
    the_preview_says_what_policy_evaluate_says,
    a_bad_form_comes_back_with_each_message_and_creates_nothing,
    a_form_without_the_sessions_csrf_token_is_refused,
);
