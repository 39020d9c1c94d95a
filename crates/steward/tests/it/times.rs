//! Times that are true: a change is implemented only inside its window (stepped or not), an
//! emergency leaves its window only through an approver's audited override, and what reasons
//! about "when a change happened" — incident correlation, the inventory's approval history —
//! uses the time it was actually implemented, never the plan.

use crate::helpers::{Backend, TestApp, TestDb, cast, change, id, run_steward};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    json!({"start": stamp(from), "end": stamp(to)})
}

fn time_of(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("a time, not {v}"))
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

async fn approve(app: &TestApp, token: &str, change_id: &str) {
    let (status, body) = app.decide(token, change_id, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn step_ok(app: &TestApp, token: &str, change_id: &str, step: &str) -> Value {
    let (status, body) = app.step(token, change_id, step).await;
    assert_eq!(status, StatusCode::OK, "{step} {change_id}: {body}");
    body
}

/// rita's change, approved by mia and scheduled by ivan into `[from, to)`.
async fn scheduled(
    app: &TestApp,
    c: &crate::helpers::Cast,
    ivan: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> String {
    let scheduled = id(&app
        .submit_ok(&c.rita, change(json!({"window": window(from, to)})))
        .await);
    approve(app, &c.mia, &scheduled).await;
    step_ok(app, ivan, &scheduled, "schedule").await;
    scheduled
}

async fn implementing_outside_the_window_is_refused_with_steps_and_without(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    app.target("churn-scoring", "mia", "staging", "low", &[])
        .await;
    let t0 = app.clock.now();
    let (opens, closes) = (t0 + Duration::hours(1), t0 + Duration::hours(2));
    let plain = id(&app
        .submit_ok(&c.rita, change(json!({"window": window(opens, closes)})))
        .await);
    let ran = db.dir.path().join("ran");
    let stepped = id(&app
        .submit_ok(
            &c.rita,
            change(json!({
                "targets": ["churn-scoring"],
                "window": window(opens, closes),
                "steps": [{"name": "write", "kind": "command", "program": "/bin/sh",
                           "args": ["-c", format!("echo run >> '{}'", ran.display())],
                           "undo": {"program": "/bin/true"}}],
            })),
        )
        .await);
    for change_id in [&plain, &stepped] {
        approve(&app, &c.mia, change_id).await;
    }
    step_ok(&app, &ivan, &plain, "schedule").await;

    // Before the window opens: refused, naming when it opens.
    let (status, body) = app.step(&ivan, &plain, "implement").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        error_of(&body).contains(&format!("window opens at {}", stamp(opens))),
        "{body}"
    );

    // Long after it closed (the case: the CLI used to accept a change without steps).
    app.clock.advance(Duration::hours(3));
    let run = run_steward(&app.base, &ivan, &["change", "implement", &plain]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let named_window = format!(
        "window closed at {} (it was {} → {})",
        stamp(closes),
        stamp(opens),
        stamp(closes)
    );
    assert!(run.stderr.contains(&named_window), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cancel it and submit it again with a new window"),
        "{}",
        run.stderr
    );
    for change_id in [&plain, &stepped] {
        let (status, body) = app.step(&ivan, change_id, "implement").await;
        assert_eq!(status, StatusCode::CONFLICT, "{change_id}: {body}");
        assert!(error_of(&body).contains(&named_window), "{body}");
        let (_, shown) = app
            .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
            .await;
        assert!(
            ["scheduled", "approved"].contains(&shown["state"].as_str().unwrap_or("")),
            "{shown}"
        );
        assert!(shown["implementation_started_at"].is_null(), "{shown}");
        assert!(shown["execution"].is_null(), "{shown}");
        assert!(shown["implementer"].is_null(), "{shown}");
    }
    assert!(!ran.exists(), "no step ran");

    // Inside its window, the actual times are recorded, shown by the API and by `change show`.
    let now = app.clock.now();
    let open_now = id(&app
        .submit_ok(
            &c.rita,
            change(
                json!({"window": window(now - Duration::minutes(10), now + Duration::hours(1))}),
            ),
        )
        .await);
    approve(&app, &c.mia, &open_now).await;
    step_ok(&app, &ivan, &open_now, "schedule").await;
    let before = app.clock.now();
    let started = step_ok(&app, &ivan, &open_now, "implement").await;
    let after = app.clock.now();
    let started_at = time_of(&started["implementation_started_at"]);
    assert!(before <= started_at && started_at <= after, "{started}");
    assert!(started["implementation_ended_at"].is_null(), "{started}");
    app.clock.advance(Duration::minutes(20));
    let completed = step_ok(&app, &ivan, &open_now, "complete").await;
    let ended_at = time_of(&completed["implementation_ended_at"]);
    assert!(
        ended_at >= started_at + Duration::minutes(20),
        "{completed}"
    );
    assert_eq!(time_of(&completed["implementation_started_at"]), started_at);
    let shown = run_steward(&app.base, &c.rita, &["change", "show", &open_now]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("implemented: started ") && shown.stdout.contains(" by ivan, ended "),
        "{}",
        shown.stdout
    );
    app.stop().await;
}

async fn an_emergency_leaves_its_window_only_through_an_approvers_audited_override(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let vic = app.user("vic", &["vp_engineering"]).await;
    let cass = app.user("cass", &["ciso"]).await;
    let t0 = app.clock.now();
    let (opens, closes) = (t0 + Duration::hours(1), t0 + Duration::hours(2));
    let emergency = id(&app
        .submit_ok(
            &c.rita,
            change(
                json!({"emergency": true, "justification": "card fraud losses spiking",
                          "window": window(opens, closes)}),
            ),
        )
        .await);
    approve(&app, &vic, &emergency).await;
    approve(&app, &cass, &emergency).await;
    step_ok(&app, &ivan, &emergency, "schedule").await;
    let normal = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"title": "Tidy fraud features",
                          "window": window(opens + Duration::minutes(90), closes + Duration::minutes(90))})),
        )
        .await);
    approve(&app, &c.mia, &normal).await;

    app.clock.advance(Duration::hours(4));
    let (status, body) = app.step(&ivan, &emergency, "implement").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        error_of(&body).contains(&format!(
            "`steward change override-window {emergency} --reason …`"
        )),
        "{body}"
    );
    let path = format!("/api/v1/changes/{emergency}/window-override");
    let reason = json!({"reason": "losses grow by the hour; tomorrow's window is too late"});
    // Not the implementer, not the requester, not a manager who did not approve it.
    for (token, who) in [(&ivan, "ivan"), (&c.rita, "rita"), (&c.mia, "mia")] {
        let (status, body) = app.post(&path, token, reason.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
    }
    // A normal change has no override, even for its approver.
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{normal}/window-override"),
            &c.mia,
            reason.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        error_of(&body).contains("only an emergency may start outside its window"),
        "{body}"
    );
    let (status, body) = app.post(&path, &vic, json!({"reason": "  "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let run = run_steward(
        &app.base,
        &vic,
        &[
            "change",
            "override-window",
            &emergency,
            "--reason",
            "losses grow by the hour; tomorrow's window is too late",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("window override agreed by vic")
            && run.stdout.contains("it opens when every approver agrees"),
        "{}",
        run.stdout
    );
    // One approver is not enough: dual control, as for the approval itself.
    let (status, body) = app.step(&ivan, &emergency, "implement").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app.post(&path, &vic, reason.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        error_of(&body).contains("opens when cass agrees too"),
        "{body}"
    );
    let run = run_steward(
        &app.base,
        &cass,
        &[
            "change",
            "override-window",
            &emergency,
            "--reason",
            "agreed: losses outweigh the risk",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("window overridden by vic and cass"),
        "{}",
        run.stdout
    );
    let (status, gate) = app
        .get(
            &format!("/api/v1/changes/{emergency}/gate?target=fraud-scoring&environment=staging"),
            &ivan,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{gate}");
    assert_eq!(gate["allowed"], true, "{gate}");
    assert!(
        gate["reason"]
            .as_str()
            .is_some_and(|r| r.contains("was overridden by its approvers vic and cass")),
        "{gate}"
    );
    let before = app.clock.now();
    let started = step_ok(&app, &ivan, &emergency, "implement").await;
    assert!(time_of(&started["implementation_started_at"]) >= before);
    assert_eq!(started["window_override"]["by"], "cass", "{started}");
    assert_eq!(
        started["window_override"]["agreements"][0]["by"], "vic",
        "{started}"
    );

    let (_, shown) = app
        .get(&format!("/api/v1/changes/{emergency}"), &c.rita)
        .await;
    let overrides: Vec<&Value> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["action"] == "change.window_override")
        .collect();
    assert_eq!(overrides.len(), 1, "{shown:#}");
    assert_eq!(overrides[0]["actor"], "cass");
    assert!(
        shown["history"]
            .as_array()
            .expect("history")
            .iter()
            .any(|e| e["action"] == "change.window_override_agreed" && e["actor"] == "vic"),
        "{shown:#}"
    );
    app.stop().await;
}

fn alert_at(started: DateTime<Utc>) -> Value {
    json!({"version": "4", "groupKey": "{}:{alertname=\"FraudErrors\"}", "truncatedAlerts": 0,
           "status": "firing", "receiver": "steward", "groupLabels": {"alertname": "FraudErrors"},
           "commonLabels": {"alertname": "FraudErrors"}, "commonAnnotations": {},
           "externalURL": "http://alertmanager:9093",
           "alerts": [{"status": "firing",
                       "labels": {"alertname": "FraudErrors", "severity": "critical", "model": "fraud-scoring"},
                       "annotations": {"summary": "fraud-scoring errors"},
                       "startsAt": stamp(started), "endsAt": "0001-01-01T00:00:00Z",
                       "generatorURL": "http://prometheus:9090/graph", "fingerprint": "f00d"}]})
}

async fn an_incident_does_not_suspect_a_change_implemented_after_it_began(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let monitor = app.user("prometheus", &["monitor"]).await;
    let t0 = app.clock.now();
    // Ran about 3h28m before the anomaly: a suspect.
    let earlier = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"title": "Raise fraud threshold",
                          "window": window(t0 + Duration::hours(1), t0 + Duration::hours(2))})),
        )
        .await);
    // Planned to start 2h53m before the anomaly, but implemented two minutes after it began.
    let late = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"window": window(t0 + Duration::minutes(125), t0 + Duration::hours(6))})),
        )
        .await);
    for change_id in [&earlier, &late] {
        approve(&app, &c.mia, change_id).await;
        step_ok(&app, &ivan, change_id, "schedule").await;
    }
    app.clock.advance(Duration::minutes(90));
    let earlier_at =
        time_of(&step_ok(&app, &ivan, &earlier, "implement").await["implementation_started_at"]);
    step_ok(&app, &ivan, &earlier, "complete").await;
    app.clock.advance(Duration::minutes(210));
    let implemented = step_ok(&app, &ivan, &late, "implement").await;
    let late_at = time_of(&implemented["implementation_started_at"]);
    step_ok(&app, &ivan, &late, "complete").await;

    // Whole seconds, as Alertmanager sends them.
    let began = time_of(&json!(stamp(late_at - Duration::minutes(2))));
    assert!(began < late_at);
    let (status, body) = app
        .post(
            "/api/v1/integrations/alertmanager",
            &monitor,
            alert_at(began),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let opened = body["incidents"][0].as_str().expect("an incident opened");
    let (status, incident) = app
        .get(&format!("/api/v1/incidents/{opened}"), &c.rita)
        .await;
    assert_eq!(status, StatusCode::OK, "{incident}");
    let suspects: Vec<&str> = incident["suspects"]
        .as_array()
        .expect("suspects")
        .iter()
        .filter_map(|s| s["change"].as_str())
        .collect();
    assert_eq!(suspects, [earlier.as_str()], "{incident:#}");
    assert!((began - earlier_at).num_minutes() >= 207, "{incident:#}");
    assert!(
        incident["suspects"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!(
                "{} min before the anomaly began",
                (began - earlier_at).num_minutes()
            ))),
        "{incident:#}"
    );
    app.stop().await;
}

async fn the_inventory_dates_an_approval_from_the_actual_implementation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/models/fraud-scoring?create=true",
            Some(&c.mia),
            Some(json!({"purpose": "score card transactions for fraud"})),
        )
        .await;
    assert!(status.is_success(), "{status}: {body}");
    let t0 = app.clock.now();
    let promoted = scheduled(
        &app,
        &c,
        &ivan,
        t0 + Duration::hours(1),
        t0 + Duration::hours(5),
    )
    .await;
    app.clock.advance(Duration::hours(4));
    let implemented = step_ok(&app, &ivan, &promoted, "implement").await;
    let implemented_at = time_of(&implemented["implementation_started_at"]);
    step_ok(&app, &ivan, &promoted, "complete").await;

    // Two hours in, the window had opened but nothing had been implemented.
    let at = |t: DateTime<Utc>| format!("/api/v1/models/fraud-scoring?at={}", stamp(t));
    let (status, then) = app.get(&at(t0 + Duration::hours(2)), &c.rita).await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert!(then["approval"].is_null(), "not in service yet: {then:#}");
    let (status, now) = app
        .get(&at(app.clock.now() + Duration::seconds(1)), &c.rita)
        .await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert_eq!(now["approval"]["change"], promoted.as_str(), "{now:#}");
    assert_eq!(time_of(&now["approval"]["implemented_at"]), implemented_at);
    app.stop().await;
}

/// A change a CI job deploys: the pipeline reports its deployment (it may not implement), and
/// that report is when the change took effect — for correlation, for `change show`, and for the
/// person who records `implement` afterwards, even once the window has closed.
async fn a_pipeline_deployment_is_when_its_change_took_effect(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let ci = app.user("ci-deployer", &["pipeline"]).await;
    let monitor = app.user("prometheus", &["monitor"]).await;
    let t0 = app.clock.now();
    let deployed = scheduled(
        &app,
        &c,
        &ivan,
        t0 + Duration::hours(1),
        t0 + Duration::hours(2),
    )
    .await;
    // A report for another environment is kept as evidence, but it is not this change taking
    // effect: the change is for staging.
    app.clock.advance(Duration::minutes(30));
    let (status, elsewhere) = app
        .post(
            &format!("/api/v1/changes/{deployed}/deployments"),
            &ci,
            json!({"status": "started", "target": "fraud-scoring", "environment": "production"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{elsewhere}");
    assert_eq!(elsewhere["allowed"], false, "{elsewhere}");
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{deployed}"), &c.rita)
        .await;
    assert!(shown["implementation_started_at"].is_null(), "{shown:#}");
    app.clock.advance(Duration::minutes(40));
    let report = |status: &str| {
        run_steward(
            &app.base,
            &ci,
            &[
                "deployment",
                "--change",
                &deployed,
                "--target",
                "fraud-scoring",
                "--environment",
                "staging",
                "--status",
                status,
                "--run",
                "https://ci.example/jobs/7",
            ],
        )
    };
    let before = app.clock.now();
    let started = report("started");
    assert_eq!(started.code, 0, "{}", started.stderr);
    assert!(
        started.stdout.starts_with(&format!(
            "recorded: {deployed} deployment started to fraud-scoring in staging at"
        )) && !started.stdout.contains("warning"),
        "{}",
        started.stdout
    );
    app.clock.advance(Duration::minutes(6));
    let succeeded = report("succeeded");
    assert_eq!(succeeded.code, 0, "{}", succeeded.stderr);

    let (status, shown) = app
        .get(&format!("/api/v1/changes/{deployed}"), &c.rita)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(
        shown["state"], "scheduled",
        "a report is not a lifecycle step"
    );
    let reports = shown["deployments"].as_array().expect("deployments");
    assert_eq!(reports.len(), 3, "{shown:#}");
    // Stamped by the server's clock as each report arrived.
    let (started_at, succeeded_at) = (time_of(&reports[1]["at"]), time_of(&reports[2]["at"]));
    assert!(before <= started_at && started_at + Duration::minutes(6) <= succeeded_at);
    assert_eq!(time_of(&shown["implementation_started_at"]), started_at);
    assert_eq!(time_of(&shown["implementation_ended_at"]), succeeded_at);
    assert_eq!(reports[1]["by"], "ci-deployer");
    assert_eq!(reports[1]["allowed"], true, "{shown:#}");
    assert_eq!(reports[2]["status"], "succeeded");
    assert_eq!(
        reports[2]["allowed"], true,
        "judged as its start was: {shown:#}"
    );

    // An anomaly three minutes after the deployment started: the deployed change is a suspect,
    // though no person has implemented it yet.
    let began = time_of(&json!(stamp(started_at + Duration::minutes(3))));
    let (status, body) = app
        .post(
            "/api/v1/integrations/alertmanager",
            &monitor,
            alert_at(began),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let opened = body["incidents"][0].as_str().expect("an incident opened");
    let (_, incident) = app
        .get(&format!("/api/v1/incidents/{opened}"), &c.rita)
        .await;
    assert_eq!(
        incident["suspects"][0]["change"],
        deployed.as_str(),
        "{incident:#}"
    );

    // The pipeline may not implement; a person may, after the window closed, because the
    // deployment it records started inside it — and the start stays the deployment's.
    assert_eq!(
        app.step(&ci, &deployed, "implement").await.0,
        StatusCode::FORBIDDEN
    );
    app.clock.advance(Duration::hours(2));
    let implemented = step_ok(&app, &ivan, &deployed, "implement").await;
    assert_eq!(
        time_of(&implemented["implementation_started_at"]),
        started_at
    );
    let shown = run_steward(&app.base, &c.rita, &["change", "show", &deployed]);
    assert!(
        shown
            .stdout
            .contains("by ci-deployer's deployment (recorded by ivan)"),
        "{}",
        shown.stdout
    );
    step_ok(&app, &ivan, &deployed, "complete").await;

    // A deployment of a change nobody approved is recorded as the unapproved deployment it was.
    let pending = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let (status, unapproved) = app
        .post(
            &format!("/api/v1/changes/{pending}/deployments"),
            &ci,
            json!({"status": "started", "target": "fraud-scoring", "environment": "staging"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{unapproved}");
    assert_eq!(unapproved["allowed"], false, "{unapproved}");
    assert!(
        unapproved["reason"]
            .as_str()
            .is_some_and(|r| r.contains("pending_approval")),
        "{unapproved}"
    );
    let cli = run_steward(
        &app.base,
        &ci,
        &[
            "deployment",
            "--change",
            &pending,
            "--target",
            "fraud-scoring",
            "--environment",
            "staging",
            "--status",
            "failed",
        ],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert!(
        cli.stdout
            .contains("warning: the gate did not allow this deployment"),
        "{}",
        cli.stdout
    );
    // Only pipelines report deployments, and a bad status is named.
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{pending}/deployments"),
            &c.rita,
            json!({"status": "started", "target": "fraud-scoring", "environment": "staging"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["details"]["permission"], "record_deployments");
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{pending}/deployments"),
            &ci,
            json!({"status": "done", "target": "fraud-scoring", "environment": "staging"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string()
            .contains("not one of started, succeeded, failed"),
        "{body}"
    );
    app.stop().await;
}

crate::both_backends!(
    a_pipeline_deployment_is_when_its_change_took_effect,
    implementing_outside_the_window_is_refused_with_steps_and_without,
    an_emergency_leaves_its_window_only_through_an_approvers_audited_override,
    an_incident_does_not_suspect_a_change_implemented_after_it_began,
    the_inventory_dates_an_approval_from_the_actual_implementation,
);
