//! The portal's incident pages over HTTP: the list and its filters and paging (the API list's
//! own), an incident's page showing what `GET /api/v1/incidents/{id}` holds (timeline, suspects
//! with their reasons), and containment approval through the form — shown only to the manager
//! the core accepts, refused without the session's CSRF token and for anyone the core refuses,
//! recorded as the API's approval is. Another tenant's incident is a 404.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, cast, change, id, items};
use crate::portal_http::{Browser, Page};
use crate::tenants::Tenant;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

/// Text as the templates escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The incident ids the list page links to, in order.
fn listed(page: &Page) -> Vec<String> {
    page.body
        .split(r#"<tr data-incident=""#)
        .skip(1)
        .map(|part| part[..part.find('"').expect("closing quote")].to_owned())
        .collect()
}

fn utc(value: &Value) -> String {
    let at: DateTime<Utc> = value
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {value}"));
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

async fn incident(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/incidents/{id}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

struct People {
    rita: String,
    mia: String,
    max: String,
    oscar: String,
}

/// A change on fraud-scoring implemented five minutes before INC-1 began there (so it is its
/// suspect), and INC-2 on ledger, acknowledged.
async fn two_incidents(app: &TestApp) -> People {
    let c = cast(app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let oscar = app.user("oscar", &["requester"]).await;
    app.target("ledger", "max", "staging", "low", &[]).await;
    let chg = id(&app
        .submit_ok(&c.rita, change(json!({"title": "Promote fraud model v9"})))
        .await);
    let (status, body) = app.decide(&c.mia, &chg, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for step in ["schedule", "implement", "complete"] {
        let (status, body) = app.step(&ivan, &chg, step).await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
    app.clock.advance(Duration::minutes(5));
    for (title, severity, target) in [
        ("Fraud scores drift", "sev2", "fraud-scoring"),
        ("Ledger is slow", "sev4", "ledger"),
    ] {
        let (status, body) = app
            .post(
                "/api/v1/incidents",
                &oscar,
                json!({"title": title, "severity": severity, "targets": [target]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/incidents/INC-2/actions",
            &oscar,
            json!({"action": "acknowledge"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    People {
        rita: c.rita,
        mia: c.mia,
        max: c.max,
        oscar,
    }
}

async fn the_list_filters_and_pages_as_the_api_does(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let people = two_incidents(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&people.rita).await;

    let all = browser.get("/incidents").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(
        all.body.contains(r#"<table id="incident-list">"#),
        "{}",
        all.body
    );
    assert_eq!(listed(&all), ["INC-2", "INC-1"]);
    assert!(all.body.contains(r#"<a href="/incidents/INC-1">INC-1</a>"#));
    // INC-1's top suspect links to the change.
    assert!(
        all.body.contains(r#"<a href="/changes/CHG-1">CHG-1</a>"#),
        "{}",
        all.body
    );

    for (query, expected) in [
        ("severity=sev2", vec!["INC-1"]),
        ("state=acknowledged", vec!["INC-2"]),
        ("state=triggered", vec!["INC-1"]),
        ("target=ledger", vec!["INC-2"]),
        ("target=fraud-scoring&severity=sev4", vec![]),
        ("open=true&state=&severity=&target=", vec!["INC-2", "INC-1"]),
        ("state=closed", vec![]),
    ] {
        let page = browser.get(&format!("/incidents?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
        assert_eq!(listed(&page), expected, "{query}");
        if expected.is_empty() {
            assert!(page.body.contains(r#"id="no-incidents""#), "{query}");
        }
        // The API's list answers the same filters alike (empty values are the form's "any").
        let api_query = query.replace("&state=&severity=&target=", "");
        let (status, body) = app
            .get(&format!("/api/v1/incidents?{api_query}"), &people.rita)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let ids: Vec<&str> = items(&body)
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        assert_eq!(ids, expected, "{query}");
    }
    // The chosen filters stay chosen.
    let filtered = browser.get("/incidents?severity=sev2").await;
    assert!(
        filtered.body.contains(r#"<option value="sev2" selected>"#),
        "{}",
        filtered.body
    );

    // A bad filter is named, as the API names it.
    let bad = browser.get("/incidents?state=exploded").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(
        bad.body.contains("state: &#39;exploded&#39; is not one of"),
        "{}",
        bad.body
    );

    // A page at a time: the next page carries the filters and the cursor.
    let first = browser.get("/incidents?limit=1&open=true").await;
    assert_eq!(listed(&first), ["INC-2"]);
    let marker = r#"<a id="next-page" href=""#;
    let at = first.body.find(marker).expect("a next page");
    let rest = &first.body[at + marker.len()..];
    let next = rest[..rest.find('"').expect("quote")].replace("&#38;", "&");
    assert!(
        next.contains("open=true") && next.contains("limit=1"),
        "{next}"
    );
    let second = browser.get(&next).await;
    assert_eq!(listed(&second), ["INC-1"]);
    assert!(
        !second.body.contains(r#"id="next-page""#),
        "{}",
        second.body
    );
}

async fn the_page_shows_what_the_api_holds_and_containment_is_approved_by_form(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let people = two_incidents(&app).await;
    let api = incident(&app, &people.rita, "INC-1").await;
    assert_eq!(api["suspects"][0]["change"], "CHG-1", "{api:#}");

    let mut rita = Browser::new(&app);
    rita.sign_in(&people.rita).await;
    let page = rita.get("/incidents/INC-1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for (id, value) in [
        ("incident-id", "INC-1".to_owned()),
        ("incident-severity", "sev2".to_owned()),
        ("incident-state", "triggered".to_owned()),
        ("incident-targets", "fraud-scoring".to_owned()),
        ("incident-opened", utc(&api["opened_at"])),
        ("incident-acknowledged", "not yet".to_owned()),
    ] {
        let at = page
            .body
            .find(&format!(r#"id="{id}""#))
            .unwrap_or_else(|| panic!("no #{id} in {}", page.body));
        let element = &page.body[at..];
        let text = &element[element.find('>').expect(">") + 1..element.find('<').expect("<")];
        assert_eq!(text, value, "#{id}");
    }
    assert!(page.body.contains("Fraud scores drift"));
    // Every timeline entry, with its actor and time.
    let timeline = api["timeline"].as_array().expect("a timeline");
    assert!(!timeline.is_empty());
    let list_at = page
        .body
        .find(r#"<ol class="items" id="incident-timeline">"#)
        .expect("timeline");
    let list = &page.body[list_at..list_at + page.body[list_at..].find("</ol>").expect("end")];
    for entry in timeline {
        let shown = format!(
            r#"{}</time> <strong class="inc-actor">{}</strong> <span class="inc-what">{}</span>"#,
            utc(&entry["at"]),
            escaped(entry["actor"].as_str().expect("actor")),
            escaped(entry["what"].as_str().expect("what")),
        );
        assert!(list.contains(&shown), "{shown} in {list}");
    }
    assert_eq!(list.matches("<li>").count(), timeline.len());
    // Each suspect with the reason the API gives, linked to the change.
    let suspects = api["suspects"].as_array().expect("suspects");
    assert!(page.body.contains(r#"<table id="incident-suspects">"#));
    for suspect in suspects {
        let change = suspect["change"].as_str().expect("change");
        let row_at = page
            .body
            .find(&format!(r#"<tr data-change="{change}">"#))
            .unwrap_or_else(|| panic!("no row for {change}"));
        let row = &page.body[row_at..row_at + page.body[row_at..].find("</tr>").expect("row end")];
        assert!(
            row.contains(&format!(r#"<a href="/changes/{change}">{change}</a>"#)),
            "{row}"
        );
        assert!(
            row.contains(&format!(
                r#"<td class="inc-reason">{}</td>"#,
                escaped(suspect["reason"].as_str().expect("reason"))
            )),
            "{row}"
        );
        assert!(
            row.contains(&format!("<td>{}</td>", suspect["minutes_before"])),
            "{row}"
        );
    }
    assert!(
        page.body.contains(r#"id="no-containment""#),
        "{}",
        page.body
    );
    assert!(!page.body.contains(r#"id="containment-approve""#));

    // The responder proposes a plan; only mia, who owns fraud-scoring and did not propose it,
    // is offered the form. Everyone else is told why not, in the core's words.
    let (status, body) = app
        .post(
            "/api/v1/incidents/INC-1/containment",
            &people.oscar,
            json!({"actions": [{"name": "noop", "kind": "command", "program": "/bin/true"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut oscar = Browser::new(&app);
    oscar.sign_in(&people.oscar).await;
    let mut max = Browser::new(&app);
    max.sign_in(&people.max).await;
    let mut mia = Browser::new(&app);
    mia.sign_in(&people.mia).await;
    for (browser, says) in [
        (
            &oscar,
            "oscar proposed this containment plan and so may not approve it",
        ),
        (
            &max,
            "only a manager who owns an affected model or deployment may approve containment (mia)",
        ),
        (
            &rita,
            "only a manager who owns an affected model or deployment may approve containment (mia)",
        ),
    ] {
        let page = browser.get("/incidents/INC-1").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            !page.body.contains(r#"id="containment-approve""#),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(r#"id="no-containment-approval""#),
            "{}",
            page.body
        );
        assert!(page.body.contains(says), "{says}: {}", page.body);
        assert!(page.body.contains("Waiting for approval"), "{}", page.body);
    }
    let offered = mia.get("/incidents/INC-1").await;
    assert!(
        offered.body.contains(
            r#"<form id="containment-approve" method="post" action="/incidents/INC-1/containment/approve""#
        ),
        "{}",
        offered.body
    );
    assert!(
        offered
            .body
            .contains(r#"<ol class="items" id="containment-actions">"#)
    );

    // A form without the session's token is refused, and so is a forged one from max.
    let forged = mia.post("/incidents/INC-1/containment/approve", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let wrong = mia
        .post(
            "/incidents/INC-1/containment/approve",
            &[("csrf", "not-the-token")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
    let max_token = max.get("/incidents/INC-1").await.csrf();
    let refused = max
        .post(
            "/incidents/INC-1/containment/approve",
            &[("csrf", &max_token)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("only a manager who owns"),
        "{}",
        refused.body
    );
    let still = incident(&app, &people.rita, "INC-1").await;
    assert_eq!(
        still["containment"]["approved_by"],
        Value::Null,
        "{still:#}"
    );

    // mia approves through the form: recorded as the API's approval, the plan runs.
    let approved = mia
        .post(
            "/incidents/INC-1/containment/approve",
            &[("csrf", &offered.csrf())],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert_eq!(approved.header(LOCATION), "/incidents/INC-1");
    let after = incident(&app, &people.rita, "INC-1").await;
    assert_eq!(after["containment"]["approved_by"], "mia", "{after:#}");
    assert_eq!(after["containment"]["runs"][0]["ok"], true, "{after:#}");
    assert_eq!(after["state"], "contained", "{after:#}");
    assert!(
        after["history"]
            .as_array()
            .expect("history")
            .iter()
            .any(|h| h["actor"] == "mia"
                && h["action"]
                    .as_str()
                    .is_some_and(|a| a.ends_with("containment_approved"))),
        "{after:#}"
    );
    let shown = mia.get("/incidents/INC-1").await;
    assert!(shown.body.contains("Approved by mia"), "{}", shown.body);
    assert!(!shown.body.contains(r#"id="containment-approve""#));
    assert!(!shown.body.contains(r#"id="no-containment-approval""#));
    assert!(shown.body.contains(r#"<table id="containment-runs">"#));
    assert!(
        shown
            .body
            .contains(r#"<span class="inc-what">containment approved</span>"#),
        "{}",
        shown.body
    );
    // Approving twice is refused by the core.
    let twice = mia
        .post(
            "/incidents/INC-1/containment/approve",
            &[("csrf", &shown.csrf())],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
}

async fn another_tenants_incident_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let people = two_incidents(&app).await;
    let (status, body) = app
        .post(
            "/api/v1/incidents/INC-1/containment",
            &people.oscar,
            json!({"actions": [{"name": "noop", "kind": "command", "program": "/bin/true"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let b = Tenant::create(&app, "tenant-b").await;
    let b_manager = b.user(&app, "b-manager", &["manager"]).await;
    let mut outsider = Browser::new(&app);
    outsider.sign_in(&b_manager).await;
    let page = outsider.get("/incidents/INC-1").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    assert!(!page.body.contains("Fraud scores drift"), "{}", page.body);
    let list = outsider.get("/incidents").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(listed(&list).is_empty(), "{}", list.body);
    assert!(!list.body.contains("Fraud scores drift"));
    let token = list.csrf();
    let approve = outsider
        .post("/incidents/INC-1/containment/approve", &[("csrf", &token)])
        .await;
    assert_eq!(approve.status, StatusCode::NOT_FOUND, "{}", approve.body);
    let untouched = incident(&app, &people.rita, "INC-1").await;
    assert_eq!(untouched["containment"]["approved_by"], Value::Null);
}

both_backends!(
    the_list_filters_and_pages_as_the_api_does,
    the_page_shows_what_the_api_holds_and_containment_is_approved_by_form,
    another_tenants_incident_is_not_found,
);
