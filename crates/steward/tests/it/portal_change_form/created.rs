//! What the change form creates, and the change's page: the form's change is the API's, field
//! for field, and its page shows the request and who may decide; a draft is sent for approval
//! from its page by its requester only; the page shows the policy receipts, the execution
//! journal and the history the API has, and the incidents that suspect the change.

use super::{between, factors, fields, form, signed_in, unescape};
use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, cast, change, id};
use crate::portal_http::Browser;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

async fn posting_the_form_creates_the_change_the_api_shows(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let rita = signed_in(&app, &c.rita).await;
    let (_, csrf) = form(&rita).await;
    let start = (app.clock.now() + Duration::days(3))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let end = (app.clock.now() + Duration::days(3) + Duration::hours(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let extra = [
        ("window_start", start.as_str()),
        ("window_end", end.as_str()),
        (
            "links",
            "https://git.example/fraud/commit/abc123\r\nhttps://ci.example/runs/42",
        ),
        ("verification_plan", "watch the error rate"),
        ("impact_rollback_complexity", "high"),
        ("step-0-name", "restart"),
        ("step-0-kind", "command"),
        ("step-0-program", "/usr/bin/systemctl"),
        ("step-0-args", "restart\r\nfraud-scoring"),
        ("step-0-undo_program", "/usr/bin/systemctl"),
        ("step-0-undo_args", "restart\r\nfraud-scoring-v6"),
        ("step-0-timeout_seconds", "120"),
        ("step-0-url", "ignored: not a webhook"),
        ("verification_period_seconds", "600"),
        ("check-0-kind", "metric"),
        ("check-0-metric", "accuracy"),
        ("check-0-labels", "model=fraud"),
        ("check-0-max_degradation_percent", "10"),
        ("action", "submit"),
    ];
    let created = rita.post("/changes/new", &fields(&csrf, &extra)).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.header(LOCATION), "/changes/CHG-1");

    let (status, shown) = app.get("/api/v1/changes/CHG-1", &c.rita).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["requester"], "rita");
    assert_eq!(shown["state"], "pending_approval");
    for (key, value) in [
        ("title", json!("Promote fraud model v7")),
        ("description", json!("Retrained on October data")),
        ("category", json!("model-deployment")),
        ("environment", json!("staging")),
        ("targets", json!(["fraud-scoring"])),
        ("implementation_plan", json!("move alias champion to v7")),
        ("rollback_plan", json!("move alias champion back to v6")),
        ("verification_plan", json!("watch the error rate")),
        (
            "links",
            json!([
                "https://git.example/fraud/commit/abc123",
                "https://ci.example/runs/42"
            ]),
        ),
        (
            "impact",
            json!({"data": "low", "availability": "low", "compliance": "low", "rollback_complexity": "high"}),
        ),
        ("irreversible", json!(false)),
        ("emergency", json!(false)),
    ] {
        assert_eq!(shown[key], value, "{key}: {shown:#}");
    }
    let at = |text: &str| {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
            .expect("form time")
            .and_utc()
    };
    let api_time = |v: &Value| {
        v.as_str()
            .expect("time")
            .parse::<DateTime<Utc>>()
            .expect("RFC 3339")
    };
    assert_eq!(
        api_time(&shown["window"]["start"]),
        at(&start),
        "times are UTC"
    );
    assert_eq!(api_time(&shown["window"]["end"]), at(&end));
    assert_eq!(shown["backup"]["reference"], "registry:fraud-scoring/6");
    assert_eq!(
        api_time(&shown["backup"]["verified_at"]),
        at("2026-11-20T00:00")
    );
    assert_eq!(
        shown["steps"],
        json!([{"name": "restart", "kind": "command", "program": "/usr/bin/systemctl",
                "args": ["restart", "fraud-scoring"],
                "undo": {"program": "/usr/bin/systemctl", "args": ["restart", "fraud-scoring-v6"]},
                "timeout_seconds": 120}])
    );
    assert_eq!(shown["verification"]["period_seconds"], 600);
    let check = &shown["verification"]["checks"][0];
    assert_eq!(check["kind"], "metric");
    assert_eq!(check["name"], "accuracy");
    assert_eq!(check["labels"], json!({"model": "fraud"}));
    assert_eq!(check["max_degradation_percent"], 10.0);

    // The change's page shows what was asked, and mia (the owner) may approve it; rita may not.
    let page = rita.get("/changes/CHG-1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"<dd id="description" class="cr-text">Retrained on October data</dd>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("run /usr/bin/systemctl restart fraud-scoring (undo: /usr/bin/systemctl restart fraud-scoring-v6; 120 s timeout)"), "{}", page.body);
    assert!(
        page.body
            .contains("metric accuracy {model=fraud}: fails when more than 10% worse"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"id="no-decision""#) && page.body.contains("segregation of duties")
    );
    let mut mia = Browser::new(&app);
    mia.sign_in(&c.mia).await;
    let to_decide = mia.get("/changes/CHG-1").await;
    assert!(
        to_decide.body.contains(r#"id="approve""#),
        "{}",
        to_decide.body
    );
    let mia_csrf = to_decide.csrf();
    let decided = mia
        .post(
            "/changes/CHG-1/decision",
            &[
                ("csrf", mia_csrf.as_str()),
                ("decision", "approve"),
                ("comment", "fine"),
            ],
        )
        .await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER, "{}", decided.body);
    let (_, shown) = app.get("/api/v1/changes/CHG-1", &c.rita).await;
    assert_eq!(shown["state"], "approved");

    // "Save as draft" keeps it a draft; its page offers the requester to send it.
    let drafted = rita
        .post("/changes/new", &fields(&csrf, &[("action", "draft")]))
        .await;
    assert_eq!(drafted.status, StatusCode::SEE_OTHER, "{}", drafted.body);
    assert_eq!(drafted.header(LOCATION), "/changes/CHG-2");
    let (_, draft) = app.get("/api/v1/changes/CHG-2", &c.rita).await;
    assert_eq!(draft["state"], "draft");
    assert!(draft["policy"].as_array().expect("receipts").is_empty());
    let page = rita.get("/changes/CHG-2").await;
    assert!(
        page.body.contains(r#"id="submit-draft-button""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"id="no-receipts""#));
    let others = mia.get("/changes/CHG-2").await;
    assert!(
        !others.body.contains("submit-draft"),
        "only its requester sends a draft"
    );
    let others_csrf = others.csrf();
    let forged = mia
        .post("/changes/CHG-2/submit", &[("csrf", others_csrf.as_str())])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let unsigned = rita.post("/changes/CHG-2/submit", &[]).await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    let sent = rita
        .post("/changes/CHG-2/submit", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let (_, sent) = app.get("/api/v1/changes/CHG-2", &c.rita).await;
    assert_eq!(sent["state"], "pending_approval");
    assert_eq!(sent["policy"][0]["stage"], "submission");
}

async fn the_change_page_shows_receipts_journal_history_and_suspecting_incidents(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let created = app.submit_ok(&c.rita, change(json!({}))).await;
    let id = id(&created);
    let (status, body) = app.decide(&c.mia, &id, "approve", "looks fine").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for step in ["schedule", "implement", "complete"] {
        let (status, body) = app.step(&ivan, &id, step).await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
    // An alert on the target after the change took effect: the incident suspects it.
    app.clock.advance(Duration::minutes(5));
    let monitor = app.user("prometheus", &["monitor"]).await;
    let started = app.clock.now() - Duration::minutes(1);
    let alert = json!({"status": "firing", "labels": {"alertname": "FraudErrors", "severity": "critical", "target": "fraud-scoring"},
                       "annotations": {"summary": "fraud-scoring errors"}, "startsAt": started.to_rfc3339(),
                       "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1"});
    let (status, body) = app
        .post(
            "/api/v1/integrations/alertmanager",
            &monitor,
            json!({"version": "4", "groupKey": "g", "status": "firing", "receiver": "steward",
                   "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                   "externalURL": "http://alertmanager:9093", "alerts": [alert]}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (_, shown) = app.get(&format!("/api/v1/changes/{id}"), &c.rita).await;
    let incident = shown["incidents"][0]["incident"]
        .as_str()
        .unwrap_or_else(|| panic!("the incident suspects the change: {shown:#}"))
        .to_owned();
    let (_, whole) = app
        .get(&format!("/api/v1/incidents/{incident}"), &c.rita)
        .await;
    let reason = whole["suspects"][0]["reason"]
        .as_str()
        .expect("reason")
        .to_owned();

    let rita = signed_in(&app, &c.rita).await;
    let page = rita.get(&format!("/changes/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = unescape(&page.body);
    // The history is the API's, event for event.
    let history = between(&page.body, r#"<table id="history-events">"#, "</table>");
    for event in shown["history"].as_array().expect("history") {
        let row = format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            event["seq"],
            event["at"]
                .as_str()
                .expect("at")
                .parse::<DateTime<Utc>>()
                .expect("time")
                .format("%Y-%m-%d %H:%M UTC"),
            event["actor"].as_str().expect("actor"),
            event["action"].as_str().expect("action"),
        );
        assert!(history.contains(&row), "{row} missing: {history}");
    }
    for moved in [
        "pending_approval → approved",
        "approved → scheduled",
        "scheduled → implementing",
        "implementing → completed",
    ] {
        assert!(history.contains(moved), "{moved}: {history}");
    }
    assert!(history.contains("looks fine"), "the approval's comment");
    // The receipts: submission and approval, each naming the policy set that decided.
    let policy_set = shown["policy"][0]["policy_set"].as_str().expect("receipt");
    assert!(
        page.body
            .contains(r#"<div class="cr-receipt" id="receipt-1">"#),
        "{}",
        page.body
    );
    assert!(between(&page.body, r#"id="receipt-1">"#, "</h3>").contains("submission"));
    assert!(between(&page.body, r#"id="receipt-2">"#, "</h3>").contains("approval"));
    assert!(page.body.contains(policy_set));
    // The journal: who implemented it, when it started and ended (the record's own times).
    assert!(
        page.body.contains(r#"<dd id="implementer">ivan</dd>"#),
        "{}",
        page.body
    );
    let started_at = shown["implementation_started_at"]
        .as_str()
        .expect("started")
        .parse::<DateTime<Utc>>()
        .expect("time");
    assert_eq!(
        between(&page.body, r#"<dd id="implementation-started">"#, "</dd>"),
        started_at.format("%Y-%m-%d %H:%M UTC").to_string()
    );
    assert!(
        !between(&page.body, r#"<dd id="implementation-ended">"#, "</dd>").contains("not ended")
    );
    assert!(page.body.contains(r#"id="no-verification""#));
    // The suspecting incident, with why.
    let incidents = between(&body, r#"<table id="suspecting-incidents">"#, "</table>");
    assert!(
        incidents.contains(&format!(
            r#"<a href="/incidents/{incident}">{incident}</a>"#
        )),
        "{incidents}"
    );
    assert!(incidents.contains(&reason), "{reason}: {incidents}");
    // The risk factors are the API's.
    let api_factors: Vec<(String, String, u64)> =
        (shown["risk"]["factors"].as_array().expect("factors").iter())
            .map(|f| {
                (
                    f["name"].as_str().expect("name").to_owned(),
                    f["observed"].as_str().expect("observed").to_owned(),
                    f["points"].as_u64().expect("points"),
                )
            })
            .collect();
    assert_eq!(factors(&page.body), api_factors);
}

both_backends!(
    posting_the_form_creates_the_change_the_api_shows,
    the_change_page_shows_receipts_journal_history_and_suspecting_incidents,
);
