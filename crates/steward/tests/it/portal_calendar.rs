//! The portal's change calendar over HTTP: a recurring maintenance window, a freeze and an
//! approved change land on their UTC days in the month and week views and nowhere else; the
//! freeze says it is one in words; previous / next / today navigate; bad `view` and `date` are
//! a 400 page naming the expected form; the iCalendar link opens with the session and holds
//! what the page shows.

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id};
use crate::portal_http::{Browser, Page};
use crate::tenants::Tenant;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

/// Each day cell of the page's grid: `data-date` → the cell's HTML.
fn cells(page: &Page) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in page.body.split(r#"<td data-date=""#).skip(1) {
        let date = part[..part.find('"').expect("closing quote")].to_owned();
        let cell = part[..part.find("</td>").expect("cell end")].to_owned();
        out.insert(date, cell);
    }
    out
}

/// The days whose cells mention `what`.
fn days_with(page: &Page, what: &str) -> Vec<String> {
    cells(page)
        .into_iter()
        .filter(|(_, cell)| cell.contains(what))
        .map(|(date, _)| date)
        .collect()
}

/// The `href` of the element with `id`, unescaped as a browser reads it.
fn href(page: &Page, id: &str) -> String {
    let marker = format!(r#"id="{id}" href=""#);
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let rest = &page.body[at + marker.len()..];
    rest[..rest.find('"').expect("closing quote")].replace("&#38;", "&")
}

/// A window and a freeze (the admin keeps the calendar), an approved change and a change still
/// waiting, all in January 2027 (the server's clock is earlier).
async fn january(app: &TestApp) -> (String, String) {
    let c = cast(app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    for body in [
        // Saturdays 01:00–05:00 UTC: 2, 9, 16, 23 and 30 January.
        json!({"name": "weekly-patching", "kind": "maintenance", "scope": "target:fraud-scoring",
               "timezone": "UTC", "starts": "2027-01-02T01:00", "ends": "2027-01-02T05:00",
               "rrule": "FREQ=WEEKLY;BYDAY=SA", "reason": "weekly patching"}),
        // Wednesday 13 and Thursday 14 January, ending at midnight: not on the 15th.
        json!({"name": "audit-freeze", "kind": "freeze", "scope": "environment:staging",
               "timezone": "UTC", "starts": "2027-01-13T00:00", "ends": "2027-01-15T00:00",
               "reason": "the auditors are in"}),
    ] {
        let (status, body) = app.post("/api/v1/windows", ADMIN_TOKEN, body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let approved = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"title": "Promote fraud model v8",
                "window": {"start": "2027-01-20T09:00:00Z", "end": "2027-01-20T11:00:00Z"}})),
        )
        .await);
    let (status, body) = app.decide(&c.mia, &approved, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved", "{body}");
    // Overnight, still waiting: on the 21st and the 22nd.
    let waiting = id(&app
        .submit_ok(
            &ivan,
            change(json!({"title": "Retrain overnight",
                "window": {"start": "2027-01-21T22:00:00Z", "end": "2027-01-22T02:00:00Z"}})),
        )
        .await);
    // A draft is not on the calendar.
    let draft = app
        .submit_ok(
            &ivan,
            change(json!({"title": "Just an idea", "draft": true,
                "window": {"start": "2027-01-20T12:00:00Z", "end": "2027-01-20T13:00:00Z"}})),
        )
        .await;
    assert_eq!(draft["state"], "draft", "{draft}");
    (approved, waiting)
}

async fn windows_freezes_and_changes_land_on_their_days(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let (approved, waiting) = january(&app).await;
    let auditor = app.user("audrey", &["auditor"]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&auditor).await;

    // The month: five weeks, Monday 28 December to Sunday 31 January.
    let month = browser.get("/calendar?view=month&date=2027-01-09").await;
    assert_eq!(month.status, StatusCode::OK, "{}", month.body);
    assert!(
        month.body.contains(r#"<table id="calendar-month""#),
        "{}",
        month.body
    );
    assert!(month.body.contains("January 2027"), "{}", month.body);
    for day in ["Monday", "Sunday"] {
        assert!(
            month
                .body
                .contains(&format!(r#"<th scope="col">{day}</th>"#))
        );
    }
    let grid = cells(&month);
    assert_eq!(grid.len(), 35);
    assert_eq!(grid.keys().next().map(String::as_str), Some("2026-12-28"));
    assert_eq!(grid.keys().last().map(String::as_str), Some("2027-01-31"));
    assert_eq!(
        days_with(&month, "weekly-patching"),
        [
            "2027-01-02",
            "2027-01-09",
            "2027-01-16",
            "2027-01-23",
            "2027-01-30"
        ]
    );
    assert!(
        grid["2027-01-09"].contains("01:00–05:00"),
        "{}",
        grid["2027-01-09"]
    );
    assert_eq!(
        days_with(&month, "audit-freeze"),
        ["2027-01-13", "2027-01-14"]
    );
    // The freeze is told apart in words and in its kind, not by colour alone.
    let frozen = &grid["2027-01-13"];
    assert!(
        frozen.contains(r#"data-kind="freeze""#)
            && frozen.contains(r#"<span class="cal-marker">Freeze</span>"#)
            && frozen.contains("all day"),
        "{frozen}"
    );
    assert!(
        grid["2027-01-09"].contains(r#"<span class="cal-marker">Maintenance window</span>"#),
        "{}",
        grid["2027-01-09"]
    );
    assert_eq!(
        days_with(&month, &format!("/changes/{approved}\"")),
        ["2027-01-20"]
    );
    let on_the_20th = &grid["2027-01-20"];
    assert!(
        on_the_20th.contains("09:00–11:00")
            && on_the_20th.contains("Promote fraud model v8")
            && on_the_20th.contains("(approved)"),
        "{on_the_20th}"
    );
    assert_eq!(
        days_with(&month, &format!("/changes/{waiting}\"")),
        ["2027-01-21", "2027-01-22"]
    );
    assert!(
        grid["2027-01-21"].contains("from 22:00"),
        "{}",
        grid["2027-01-21"]
    );
    assert!(
        grid["2027-01-22"].contains("until 02:00"),
        "{}",
        grid["2027-01-22"]
    );
    assert!(grid["2027-01-22"].contains("awaiting approval"));
    assert!(
        !month.body.contains("Just an idea"),
        "drafts are not on the calendar"
    );
    // The lists below the grid say the same in rows.
    assert!(
        month.body.contains(
            r#"<tr data-window="audit-freeze"><td><strong class="cal-freeze-text">Freeze</strong>"#
        ),
        "{}",
        month.body
    );
    assert!(
        month
            .body
            .contains(&format!(r#"<tr data-change="{approved}">"#))
    );

    // A week: seven day columns, Monday to Sunday, with times.
    let week = browser.get("/calendar?view=week&date=2027-01-20").await;
    assert_eq!(week.status, StatusCode::OK, "{}", week.body);
    assert!(
        week.body.contains(r#"<table id="calendar-week""#),
        "{}",
        week.body
    );
    let days: Vec<String> = cells(&week).into_keys().collect();
    assert_eq!(
        days,
        [
            "2027-01-18",
            "2027-01-19",
            "2027-01-20",
            "2027-01-21",
            "2027-01-22",
            "2027-01-23",
            "2027-01-24"
        ]
    );
    assert_eq!(
        days_with(&week, &format!("/changes/{approved}\"")),
        ["2027-01-20"]
    );
    assert_eq!(days_with(&week, "weekly-patching"), ["2027-01-23"]);
    assert!(days_with(&week, "audit-freeze").is_empty());
    assert!(cells(&week)["2027-01-20"].contains("09:00–11:00"));

    // Previous and next weeks.
    assert_eq!(
        href(&week, "calendar-prev"),
        "/calendar?view=week&date=2027-01-11"
    );
    assert_eq!(
        href(&week, "calendar-next"),
        "/calendar?view=week&date=2027-01-25"
    );
    let before = browser.get(&href(&week, "calendar-prev")).await;
    assert_eq!(
        days_with(&before, "audit-freeze"),
        ["2027-01-13", "2027-01-14"]
    );
    assert_eq!(days_with(&before, "weekly-patching"), ["2027-01-16"]);
    assert!(days_with(&before, &format!("/changes/{approved}\"")).is_empty());

    // Previous and next months; the December grid ends on Sunday 3 January.
    assert_eq!(
        href(&month, "calendar-prev"),
        "/calendar?view=month&date=2026-12-01"
    );
    assert_eq!(
        href(&month, "calendar-next"),
        "/calendar?view=month&date=2027-02-01"
    );
    let december = browser.get(&href(&month, "calendar-prev")).await;
    assert!(december.body.contains("December 2026"), "{}", december.body);
    assert_eq!(days_with(&december, "weekly-patching"), ["2027-01-02"]);
    assert!(days_with(&december, "audit-freeze").is_empty());
    let february = browser.get(&href(&month, "calendar-next")).await;
    assert!(february.body.contains("February 2027"), "{}", february.body);
    assert_eq!(
        days_with(&february, "weekly-patching"),
        ["2027-02-06", "2027-02-13", "2027-02-20", "2027-02-27"]
    );
    assert!(days_with(&february, "/changes/").is_empty());
    // Switching views keeps the day.
    assert_eq!(
        href(&month, "calendar-view-week"),
        "/calendar?view=week&date=2027-01-09"
    );

    // Today: this month by the server's clock, in UTC.
    assert_eq!(href(&month, "calendar-today"), "/calendar?view=month");
    let today = browser.get("/calendar").await;
    assert_eq!(today.status, StatusCode::OK, "{}", today.body);
    let now = app.clock.now();
    assert!(
        today.body.contains(&now.format("%B %Y").to_string()),
        "{}",
        today.body
    );
    assert!(
        cells(&today)[&now.format("%Y-%m-%d").to_string()].contains("cal-today-mark"),
        "{}",
        today.body
    );

    // The environment filter is the feed's: production has neither the staging freeze nor the
    // staging changes.
    let production = browser
        .get("/calendar?view=month&date=2027-01-09&environment=production")
        .await;
    assert_eq!(production.status, StatusCode::OK, "{}", production.body);
    assert!(days_with(&production, "audit-freeze").is_empty());
    assert!(days_with(&production, "/changes/").is_empty());

    // The iCalendar link opens with the session and holds the same period.
    let ics = browser.get(&href(&month, "calendar-ics")).await;
    assert_eq!(ics.status, StatusCode::OK, "{}", ics.body);
    assert!(
        ics.header(reqwest::header::CONTENT_TYPE)
            .starts_with("text/calendar")
    );
    for summary in [
        format!("SUMMARY:{approved} [approved] Promote fraud model v8"),
        "SUMMARY:FREEZE audit-freeze (environment:staging)".to_owned(),
    ] {
        assert!(ics.body.contains(&summary), "{summary} in {}", ics.body);
    }
    assert_eq!(
        ics.body.matches("weekly-patching").count(),
        5 * 2,
        "{}",
        ics.body
    );
    assert!(month.body.contains(r#"id="calendar-feed-url""#));
}

async fn bad_views_and_dates_are_named_and_other_tenants_see_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    january(&app).await;
    let auditor = app.user("audrey", &["auditor"]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&auditor).await;
    for (query, says) in [
        ("view=day", "view must be month or week"),
        ("date=09-01-2027", "YYYY-MM-DD"),
        ("date=2027-02-30", "YYYY-MM-DD"),
        ("view=week&date=tomorrow", "YYYY-MM-DD"),
    ] {
        let page = browser.get(&format!("/calendar?{query}")).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.body
        );
        assert!(page.body.contains(says), "{query}: {}", page.body);
    }
    let unknown = browser.get("/calendar?target=no-such-target").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    // Signed out: the sign-in form.
    let stranger = Browser::new(&app).get("/calendar").await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);

    // Another tenant's calendar holds none of this tenant's windows or changes.
    let b = Tenant::create(&app, "tenant-b").await;
    let b_reader = b.user(&app, "b-auditor", &["auditor"]).await;
    let mut outsider = Browser::new(&app);
    outsider.sign_in(&b_reader).await;
    let theirs = outsider.get("/calendar?view=month&date=2027-01-09").await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    for word in ["weekly-patching", "audit-freeze", "/changes/CHG-"] {
        assert!(!theirs.body.contains(word), "{word}: {}", theirs.body);
    }
}

both_backends!(
    windows_freezes_and_changes_land_on_their_days,
    bad_views_and_dates_are_named_and_other_tenants_see_nothing,
);
