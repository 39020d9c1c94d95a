//! The portal's dashboard over HTTP: changes of every type (approved after delays the test
//! clock makes, one failed, one overdue), incidents resolved after a known time, and models of
//! two tiers; the page's tables show the figures `GET /api/v1/change-metrics`,
//! `GET /api/v1/incident-metrics` and `GET /api/v1/inventory/report` give for the same period,
//! figure by figure; every chart is an `<svg role="img">` with drawn elements and nothing the
//! CSP blocks; another tenant's records are not counted; bad dates are a 400 page.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id};
use crate::portal_http::{Browser, Page};
use crate::tenants::Tenant;
use chrono::{Duration, NaiveDate};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every chart the dashboard draws.
const CHARTS: [&str; 7] = [
    "chart-changes-by-type",
    "chart-changes-by-state",
    "chart-failure-rate",
    "chart-approval-latency",
    "chart-inventory-completeness",
    "chart-incidents-by-severity",
    "chart-time-to-restore",
];

/// The text of each `<td>` of the table row `id` (tags inside a cell dropped).
fn row(page: &Page, id: &str) -> Vec<String> {
    let marker = format!(r#"<tr id="{id}">"#);
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {id} in {}", page.body));
    let html = &page.body[at..];
    let html = &html[..html.find("</tr>").expect("row end")];
    html.split("<td")
        .skip(1)
        .map(|cell| {
            let cell = &cell[cell.find('>').expect("cell start") + 1..];
            let cell = &cell[..cell.find("</td>").expect("cell end")];
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

/// The text of the element `id` (no nested tags).
fn text_of(page: &Page, id: &str) -> String {
    let marker = format!(r#"id="{id}">"#);
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in {}", page.body))
        + marker.len();
    page.body[at..at + page.body[at..].find('<').expect("end")].to_owned()
}

/// The headline `id` (its markup).
fn headline<'p>(page: &'p Page, id: &str) -> &'p str {
    let marker = format!(r#"<div class="dash-headline" id="{id}">"#);
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no headline {id} in {}", page.body));
    let html = &page.body[at..];
    &html[..html.find("</div>").expect("headline end")]
}

/// The chart `id`'s SVG, which must be there.
fn chart<'p>(page: &'p Page, id: &str) -> &'p str {
    let marker = format!(r#"<svg id="{id}" class="dash-chart" role="img" aria-label=""#);
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no chart {id} in {}", page.body));
    let svg = &page.body[at..];
    &svg[..svg.find("</svg>").expect("svg end") + "</svg>".len()]
}

/// A share as the dashboard writes it.
fn percent(share: &Value) -> String {
    share
        .as_f64()
        .map_or("—".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

/// Minutes as the dashboard writes hours.
fn hours(minutes: &Value) -> String {
    minutes
        .as_f64()
        .map_or("—".to_owned(), |m| format!("{:.1}", m / 60.0))
}

fn count(v: &Value) -> String {
    v.as_u64().expect("a count").to_string()
}

/// The period the page shows, as the APIs' `from`/`to` (`since`/`until`) take it.
fn period(page: &Page) -> (String, String) {
    let day = |id: &str| NaiveDate::parse_from_str(&text_of(page, id), "%Y-%m-%d").expect("day");
    let (first, last) = (day("dashboard-first-day"), day("dashboard-last-day"));
    (
        format!("{first}T00:00:00Z"),
        format!("{}T00:00:00Z", last + Duration::days(1)),
    )
}

async fn ok(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, body) = app.get(path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn step_through(app: &TestApp, token: &str, change: &str, steps: &[&str]) {
    for step in steps {
        let (status, body) = app.step(token, change, step).await;
        assert_eq!(status, StatusCode::OK, "{change} {step}: {body}");
    }
}

async fn approve(app: &TestApp, token: &str, change: &str) {
    let (status, body) = app.decide(token, change, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK, "{change}: {body}");
}

async fn open_incident(app: &TestApp, token: &str, severity: &str, target: &str) -> String {
    let (status, body) = app
        .post(
            "/api/v1/incidents",
            token,
            json!({"title": "scores drift", "severity": severity, "targets": [target]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id(&body)
}

/// Another tenant with a change, an incident and a model of its own, none of which may count.
async fn busy_other_tenant(app: &TestApp) -> Tenant {
    let b = Tenant::create(app, "tenant-b").await;
    b.user(app, "bo", &["manager"]).await;
    let (status, body) = app
        .post(
            "/api/v1/targets",
            &b.admin,
            json!({"name": "b-model", "kind": "model_deployment", "owner": "bo",
                   "environment": "staging", "criticality": "low"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let bea = b.user(app, "bea", &["requester"]).await;
    app.submit_ok(
        &bea,
        change(json!({"targets": ["b-model"], "emergency": true, "justification": "the serving cluster is down for every customer"})),
    )
    .await;
    open_incident(app, &b.admin, "sev1", "b-model").await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/models/b-scoring?create=true",
            Some(&b.admin),
            Some(json!({"risk_tier": "high"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    b
}

async fn the_dashboard_shows_the_figures_the_apis_give(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let cy = app.user("cy", &["ciso"]).await;
    let val = app.user("val", &["vp_engineering"]).await;
    app.target("churn", "max", "staging", "low", &[]).await;
    app.target("churn-batch", "max", "staging", "low", &[])
        .await;
    let other = busy_other_tenant(&app).await;

    // Requested together; approved one, two and five hours later.
    let normal_ok = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let normal_failed = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let emergency =
        json!({"emergency": true, "justification": "credential breach being exploited"});
    let emergency_ok = id(&app.submit_ok(&c.rita, change(emergency.clone())).await);
    let emergency_waiting = id(&app.submit_ok(&c.rita, change(emergency)).await);
    let standard = app
        .submit_ok(
            &c.rita,
            change(json!({"category": "log-retention", "catalog_item": "log-retention"})),
        )
        .await;
    assert_eq!(standard["state"], "approved", "{standard}");
    app.clock.advance(Duration::hours(1));
    approve(&app, &cy, &emergency_ok).await;
    approve(&app, &val, &emergency_ok).await;
    app.clock.advance(Duration::hours(1));
    approve(&app, &c.mia, &normal_ok).await;
    app.clock.advance(Duration::hours(3));
    approve(&app, &c.mia, &normal_failed).await;
    let done = ["schedule", "implement", "complete"];
    step_through(&app, &ivan, &normal_ok, &done).await;
    step_through(&app, &ivan, &emergency_ok, &done).await;
    step_through(
        &app,
        &ivan,
        &normal_failed,
        &["schedule", "implement", "fail"],
    )
    .await;

    // Incidents on targets no change touched (so no change is a suspect), one each (an open
    // incident takes in what else happens on its target): a sev1 resolved after 30 minutes, a
    // sev3 still open.
    let sev1 = open_incident(&app, &c.mia, "sev1", "churn").await;
    open_incident(&app, &c.mia, "sev3", "churn-batch").await;
    app.clock.advance(Duration::minutes(30));
    let (status, body) = app
        .post(
            &format!("/api/v1/incidents/{sev1}/actions"),
            &c.mia,
            json!({"action": "resolve", "comment": "back to baseline"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Models: a low-tier and a high-tier record, both missing required fields.
    for (name, tier) in [("fraud-model", "low"), ("churn-model", "high")] {
        let (status, body) = app
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/models/{name}?create=true"),
                Some(&c.mia),
                Some(json!({"risk_tier": tier, "owner": "mia"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    let page = rita.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(r#"<section id="dashboard""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"id="nav-dashboard""#), "{}", page.body);
    let (from, to) = period(&page);
    // The default: the last 90 days, today included.
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&to).expect("to")
            - chrono::DateTime::parse_from_rfc3339(&from).expect("from"),
        Duration::days(90)
    );

    // Changes: the page says what the change metrics API says for the same period.
    let api = ok(
        &app,
        &format!("/api/v1/change-metrics?from={from}&to={to}"),
        &c.rita,
    )
    .await;
    let totals = &api["totals"];
    assert_eq!(
        totals["created"]["total"], 5,
        "no other tenant's change: {api}"
    );
    assert_eq!(
        row(&page, "requested-total"),
        [
            count(&totals["created"]["standard"]),
            count(&totals["created"]["normal"]),
            count(&totals["created"]["emergency"]),
            count(&totals["created"]["total"]),
        ]
    );
    assert_eq!(row(&page, "requested-total"), ["1", "2", "2", "5"]);
    assert_eq!(
        row(&page, "failures-total"),
        [
            count(&totals["implemented"]),
            count(&totals["failed"]),
            percent(&totals["failure_rate"]),
            count(&totals["created"]["total"]),
            count(&totals["created"]["emergency"]),
            percent(&totals["emergency_share"]),
        ]
    );
    assert_eq!(
        row(&page, "failures-total"),
        ["3", "1", "33.3%", "5", "2", "40.0%"]
    );
    // Each week's row is the API's week.
    let weeks = api["weeks"].as_array().expect("weeks");
    assert_eq!(weeks.len(), 13);
    for week in weeks {
        let key = &week["from"].as_str().expect("from")[..10];
        assert_eq!(
            row(&page, &format!("failures-{key}")),
            [
                count(&week["implemented"]),
                count(&week["failed"]),
                percent(&week["failure_rate"]),
                count(&week["created"]["total"]),
                count(&week["created"]["emergency"]),
                percent(&week["emergency_share"]),
            ],
            "week of {key}"
        );
    }
    for state in api["by_state"].as_array().expect("states") {
        let name = state["state"].as_str().expect("state");
        assert_eq!(
            row(&page, &format!("state-{name}")),
            [count(&state["changes"])]
        );
    }
    assert_eq!(row(&page, "state-completed"), ["2"]);
    assert_eq!(row(&page, "state-failed"), ["1"]);
    assert_eq!(row(&page, "state-pending_approval"), ["1"]);
    assert_eq!(row(&page, "state-approved"), ["1"]);
    // Approval latency: 1 h (the emergency, once both approved), 2 h and 5 h.
    for latency in api["approval_latency"].as_array().expect("latency") {
        let kind = latency["type"].as_str().expect("type");
        assert_eq!(
            row(&page, &format!("latency-{kind}")),
            [
                count(&latency["approved"]),
                hours(&latency["p50_minutes"]),
                hours(&latency["p90_minutes"]),
                hours(&latency["p99_minutes"]),
            ],
            "{kind}"
        );
    }
    assert_eq!(row(&page, "latency-all"), ["3", "2.0", "5.0", "5.0"]);
    assert_eq!(row(&page, "latency-emergency"), ["1", "1.0", "1.0", "1.0"]);
    assert_eq!(row(&page, "latency-standard"), ["0", "—", "—", "—"]);
    assert_eq!(api["auto_approved"], 1);
    // The emergency still waiting is past its two hours: overdue, linked.
    assert_eq!(
        api["overdue_approvals"][0]["id"],
        emergency_waiting.as_str()
    );
    assert_eq!(text_of(&page, "overdue-count"), "1");
    assert!(
        page.body.contains(&format!(
            r#"<tr id="overdue-{emergency_waiting}"><td><a href="/changes/{emergency_waiting}">"#
        )),
        "{}",
        page.body
    );
    // The headlines say the same at a glance.
    assert!(
        headline(&page, "kpi-failure-rate").contains(">33.3%<"),
        "{}",
        page.body
    );
    assert!(
        headline(&page, "kpi-emergency-share").contains(">40.0%<"),
        "{}",
        page.body
    );
    assert!(
        headline(&page, "kpi-approval-median").contains(">2.0 h<"),
        "{}",
        page.body
    );
    assert!(
        headline(&page, "kpi-overdue-approvals").contains(">1<"),
        "{}",
        page.body
    );

    // The change failure rate is the incident metrics' too, for the same period.
    let incidents = ok(
        &app,
        &format!("/api/v1/incident-metrics?since={from}&until={to}"),
        &c.rita,
    )
    .await;
    assert_eq!(percent(&incidents["change_failure_rate"]), "33.3%");
    assert_eq!(
        incidents["incidents"], 2,
        "no other tenant's incident: {incidents}"
    );
    for severity in incidents["by_severity"].as_array().expect("severities") {
        let name = severity["severity"].as_str().expect("severity");
        assert_eq!(
            row(&page, &format!("incidents-{name}")),
            [count(&severity["incidents"]), count(&severity["resolved"])]
        );
        assert_eq!(
            row(&page, &format!("restore-{name}")),
            [
                count(&severity["resolved"]),
                hours(&severity["median_minutes_to_restore"]),
                hours(&severity["p90_minutes_to_restore"]),
            ]
        );
    }
    assert_eq!(row(&page, "incidents-sev1"), ["1", "1"]);
    assert_eq!(row(&page, "restore-sev1"), ["1", "0.5", "0.5"]);
    assert_eq!(row(&page, "incidents-sev3"), ["1", "0"]);
    assert_eq!(row(&page, "restore-sev3"), ["0", "—", "—"]);

    // The inventory: completeness by tier as the report has it.
    let report = ok(&app, "/api/v1/inventory/report", &c.rita).await;
    assert_eq!(
        report["totals"]["models"], 2,
        "no other tenant's model: {report}"
    );
    for tier in report["completeness_by_tier"].as_array().expect("tiers") {
        let name = tier["tier"].as_str().expect("tier");
        let models = tier["models"].as_u64().expect("models");
        let complete = tier["complete"].as_u64().expect("complete");
        assert_eq!(
            row(&page, &format!("tier-{name}")),
            [
                models.to_string(),
                complete.to_string(),
                (models - complete).to_string(),
                tier["mean_score"]
                    .as_u64()
                    .map_or("—".to_owned(), |s| format!("{s}%")),
            ],
            "{name}"
        );
    }
    assert_eq!(row(&page, "tier-low")[..3], ["1", "0", "1"]);
    assert_eq!(row(&page, "tier-high")[..3], ["1", "0", "1"]);
    assert_eq!(row(&page, "tier-medium"), ["0", "0", "0", "—"]);

    // Every chart is there, an image with a name, drawn, with nothing the CSP blocks.
    for id in CHARTS {
        let svg = chart(&page, id);
        assert!(svg.contains("<title>"), "{id}: {svg}");
        assert!(svg.contains("viewBox=\"0 0 "), "{id}: {svg}");
        assert!(
            svg.contains("<rect") && (svg.contains("<path") || svg.contains("<line")),
            "{id} draws: {svg}"
        );
        assert!(!svg.contains("style"), "{id}: {svg}");
    }
    // Bars for the data: the failed change's week has its emergency bar.
    let by_type = chart(&page, "chart-changes-by-type");
    assert!(
        by_type.contains(r#"data-series="emergency""#) && by_type.contains(r#"data-value="2""#),
        "{by_type}"
    );
    assert!(!page.body.contains("<style"), "{}", page.body);

    // The other tenant's dashboard counts only its own.
    let mut b = Browser::new(&app);
    b.sign_in(&other.admin).await;
    let theirs = b.get("/dashboard").await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert_eq!(row(&theirs, "requested-total"), ["0", "0", "1", "1"]);
    assert_eq!(row(&theirs, "incidents-sev1"), ["1", "0"]);
    assert_eq!(row(&theirs, "tier-high")[..1], ["1"]);
    assert_eq!(
        text_of(&theirs, "overdue-count"),
        "1",
        "bea's emergency is overdue too"
    );
    assert!(
        theirs.body.contains(r#"<tr id="overdue-CHG-1">"#)
            && !theirs
                .body
                .contains(&format!("overdue-{emergency_waiting}")),
        "{}",
        theirs.body
    );
    let _ = ADMIN_TOKEN;
    app.stop().await;
}

async fn a_chosen_period_counts_only_its_days_and_bad_dates_are_400s(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.submit_ok(&c.rita, change(json!({}))).await;
    let today = app.clock.now().date_naive();
    let mut rita = Browser::new(&app);

    // Signed out: the sign-in page, never the figures.
    let page = rita.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    assert!(!page.body.contains(r#"id="dashboard""#), "{}", page.body);

    rita.sign_in(&c.rita).await;
    // Yesterday alone: today's change is not in it.
    let yesterday = today - Duration::days(1);
    let page = rita
        .get(&format!("/dashboard?from={yesterday}&to={yesterday}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(text_of(&page, "dashboard-first-day"), yesterday.to_string());
    assert_eq!(row(&page, "requested-total"), ["0", "0", "0", "0"]);
    assert_eq!(row(&page, "failures-total")[2], "—", "nothing implemented");
    for id in CHARTS {
        chart(&page, id);
    }
    // Today alone, from the form's fields: the change is there, in the one week.
    let page = rita
        .get(&format!("/dashboard?from={today}&to={today}"))
        .await;
    assert_eq!(row(&page, "requested-total"), ["0", "1", "0", "1"]);
    assert_eq!(
        row(&page, &format!("requested-{today}")),
        ["0", "1", "0", "1"]
    );
    assert!(
        page.body.contains(&format!(
            r#"<input type="date" name="from" id="dashboard-from" value="{today}""#
        )),
        "{}",
        page.body
    );

    // Bad dates and periods: a 400 page saying what is wrong.
    for (query, says) in [
        ("from=2026-13-01", "not a date"),
        ("to=yesterday", "YYYY-MM-DD"),
        ("from=2026-03-05&to=2026-03-01", "after it ends"),
        ("from=2020-01-01&to=2026-03-01", "longer than"),
    ] {
        let page = rita.get(&format!("/dashboard?{query}")).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.body
        );
        assert!(page.body.contains(says), "{query}: {}", page.body);
        assert!(
            page.body.contains(r#"id="problem""#),
            "{query}: {}",
            page.body
        );
    }
    // The API refuses an empty period too (422, as its other queries do).
    let (status, body) = app
        .get(
            "/api/v1/change-metrics?from=2026-03-05T00:00:00Z&to=2026-03-01T00:00:00Z",
            &c.rita,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .get(
            "/api/v1/incident-metrics?since=2026-03-05T00:00:00Z&until=2026-03-01T00:00:00Z",
            &c.rita,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.stop().await;
}

both_backends!(
    the_dashboard_shows_the_figures_the_apis_give,
    a_chosen_period_counts_only_its_days_and_bad_dates_are_400s,
);
