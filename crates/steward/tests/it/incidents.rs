//! Incident management: Alertmanager and PagerDuty intake (resends and dedup keys change
//! nothing, bad payloads create nothing), the detector raising an incident whose top suspect is
//! the change that moved a model's alias, manager-approved containment on a real MLflow server,
//! and the review owed before closing.

use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, config, id};
use crate::mlflow::MlflowServer;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_server::Clock;

async fn spawn(db: &TestDb) -> TestApp {
    let mut config = config(db);
    config.execution.tick = std::time::Duration::from_millis(50);
    TestApp::spawn_with(config, Clock::default()).await
}

fn alert(fingerprint: &str, status: &str, labels: Value, started: DateTime<Utc>) -> Value {
    json!({"status": status, "labels": labels, "annotations": {"summary": format!("{} is failing", labels["alertname"].as_str().unwrap_or("x"))},
           "startsAt": started.to_rfc3339(), "endsAt": "0001-01-01T00:00:00Z",
           "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint})
}

fn alertmanager_payload(status: &str, alerts: Vec<Value>) -> Value {
    json!({"version": "4", "groupKey": "{}:{alertname=\"FraudErrors\"}", "truncatedAlerts": 0,
           "status": status, "receiver": "steward", "groupLabels": {"alertname": "FraudErrors"},
           "commonLabels": {"alertname": "FraudErrors"}, "commonAnnotations": {},
           "externalURL": "http://alertmanager:9093", "alerts": alerts})
}

/// Every incident, newest first, each whole as `GET /incidents/{id}` has it (the list answers
/// summaries).
async fn incidents(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/incidents", token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut whole = Vec::new();
    for summary in crate::helpers::items(&body) {
        let id = summary["id"].as_str().expect("id");
        let (status, incident) = app.get(&format!("/api/v1/incidents/{id}"), token).await;
        assert_eq!(status, StatusCode::OK, "{incident}");
        whole.push(incident);
    }
    whole
}

async fn alertmanager_resends_change_nothing_and_resolved_alerts_resolve(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db).await;
    let c = cast(&app).await;
    let monitor = app.user("prometheus", &["monitor"]).await;
    let now = app.clock.now();
    let firing = alertmanager_payload(
        "firing",
        vec![
            alert(
                "a1b2",
                "firing",
                json!({"alertname": "FraudErrors", "severity": "critical", "model": "fraud-scoring"}),
                now - Duration::minutes(2),
            ),
            alert(
                "c3d4",
                "firing",
                json!({"alertname": "FraudLatency", "severity": "warning", "deployment": "fraud-scoring"}),
                now - Duration::minutes(1),
            ),
        ],
    );
    // A requester is not a monitoring system.
    let (status, _) = app
        .post("/api/v1/integrations/alertmanager", &c.rita, firing.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(
            "/api/v1/integrations/alertmanager",
            &monitor,
            firing.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["incidents"],
        json!(["INC-1"]),
        "both alerts on one target join one incident"
    );
    // Alertmanager resends the group every repeat_interval: nothing changes.
    let (status, again) = app
        .post("/api/v1/integrations/alertmanager", &monitor, firing)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let all = incidents(&app, &c.rita).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["signals"].as_array().map(Vec::len), Some(2));
    assert_eq!(all[0]["severity"], "sev1", "critical maps to SEV1");
    assert_eq!(all[0]["targets"], json!(["fraud-scoring"]));
    let (_, shown) = app.get("/api/v1/incidents/INC-1", &c.rita).await;
    let opened = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["action"] == "incident.opened")
        .count();
    assert_eq!(opened, 1);

    // Resolved notices resolve; when all have, the incident resolves.
    let resolved = alertmanager_payload(
        "resolved",
        vec![alert(
            "a1b2",
            "resolved",
            json!({"alertname": "FraudErrors", "severity": "critical", "model": "fraud-scoring"}),
            now - Duration::minutes(2),
        )],
    );
    app.post("/api/v1/integrations/alertmanager", &monitor, resolved)
        .await;
    let (_, one) = app.get("/api/v1/incidents/INC-1", &c.rita).await;
    assert_eq!(one["state"], "triggered");
    let resolved = alertmanager_payload(
        "resolved",
        vec![alert(
            "c3d4",
            "resolved",
            json!({"alertname": "FraudLatency", "severity": "warning", "deployment": "fraud-scoring"}),
            now - Duration::minutes(1),
        )],
    );
    app.post("/api/v1/integrations/alertmanager", &monitor, resolved)
        .await;
    let (_, both) = app.get("/api/v1/incidents/INC-1", &c.rita).await;
    assert_eq!(both["state"], "resolved");

    // Bad payloads: 422 naming each problem, and nothing created.
    for (payload, field) in [
        (
            json!({"version": "3", "groupKey": "g", "alerts": [alert("x", "firing", json!({}), now)]}),
            "version",
        ),
        (
            alertmanager_payload(
                "firing",
                vec![
                    json!({"status": "firing", "labels": {}, "startsAt": "yesterday", "fingerprint": "f"}),
                ],
            ),
            "alerts[0].startsAt",
        ),
        (
            alertmanager_payload(
                "firing",
                vec![
                    json!({"status": "burning", "labels": {}, "startsAt": now.to_rfc3339(), "fingerprint": "f"}),
                ],
            ),
            "alerts[0].status",
        ),
        (alertmanager_payload("firing", vec![]), "alerts"),
    ] {
        let (status, body) = app
            .post("/api/v1/integrations/alertmanager", &monitor, payload)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            crate::helpers::field_names(&body).contains(&field),
            "{field}: {body}"
        );
    }
    assert_eq!(incidents(&app, &c.rita).await.len(), 1);
    app.stop().await;
}

async fn pagerduty_events_deduplicate_acknowledge_and_resolve(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db).await;
    let c = cast(&app).await;
    let monitor = app.user("datadog", &["monitor"]).await;
    let event = |action: &str, key: Option<&str>| {
        let mut e = json!({"routing_key": monitor, "event_action": action,
            "payload": {"summary": "fraud-scoring p99 latency above 2s", "source": "fraud-scoring",
                        "severity": "error", "component": "fraud-scoring", "custom_details": {"p99": 2.4}}});
        if let Some(k) = key {
            e["dedup_key"] = json!(k);
        }
        e
    };
    let http = reqwest::Client::new();
    let send = |body: Value| {
        let http = http.clone();
        let url = format!("{}/api/v1/integrations/pagerduty/v2/enqueue", app.base);
        async move {
            let response = http.post(url).json(&body).send().await.expect("send");
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = send(event("trigger", Some("latency-1"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["dedup_key"], "latency-1");
    let (status, _) = send(event("trigger", Some("latency-1"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let all = incidents(&app, &c.rita).await;
    assert_eq!(all.len(), 1, "one dedup_key, one incident");
    assert_eq!(all[0]["severity"], "sev2");
    assert_eq!(all[0]["targets"], json!(["fraud-scoring"]));

    let (status, _) = send(event("acknowledge", Some("latency-1"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, shown) = app.get("/api/v1/incidents/INC-1", &c.rita).await;
    assert_eq!(shown["state"], "acknowledged");
    assert_eq!(shown["owner"], "datadog");
    let (status, _) = send(event("resolve", Some("latency-1"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, shown) = app.get("/api/v1/incidents/INC-1", &c.rita).await;
    assert_eq!(shown["state"], "resolved");

    // A trigger without a key gets one; bad events are refused and create nothing.
    let (status, body) = send(event("trigger", None)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body["dedup_key"].as_str().is_some_and(|k| !k.is_empty()));
    let mut wrong_key = event("trigger", Some("x"));
    wrong_key["routing_key"] = json!("not-a-token");
    assert_eq!(send(wrong_key).await.0, StatusCode::UNAUTHORIZED);
    let mut requester = event("trigger", Some("x"));
    requester["routing_key"] = json!(c.rita);
    assert_eq!(send(requester).await.0, StatusCode::FORBIDDEN);
    let before = incidents(&app, &c.rita).await.len();
    for (mut bad, field) in [
        (event("trigger", Some("y")), "payload.severity"),
        (event("snooze", Some("y")), "event_action"),
        (event("resolve", None), "dedup_key"),
    ] {
        if field == "payload.severity" {
            bad["payload"]["severity"] = json!("catastrophic");
        }
        let (status, body) = send(bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            crate::helpers::field_names(&body).contains(&field),
            "{field}: {body}"
        );
    }
    assert_eq!(incidents(&app, &c.rita).await.len(), before);

    // Change events are recorded.
    let change_event = json!({"routing_key": monitor, "payload": {"summary": "Deployed fraud-scoring v2 by hand", "source": "jenkins", "timestamp": Utc::now().to_rfc3339()}});
    let response = http
        .post(format!(
            "{}/api/v1/integrations/pagerduty/v2/change/enqueue",
            app.base
        ))
        .json(&change_event)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.stop().await;
}

async fn a_detected_error_spike_is_traced_to_the_change_and_contained_with_approval(
    backend: Backend,
) {
    let mlflow = MlflowServer::get().await;
    let model = mlflow.model("fraud", 2).await;
    mlflow.set_alias(&model, "champion", "1").await;
    let db = TestDb::new(backend).await;
    let app = spawn(&db).await;
    let c = cast(&app).await;
    let oscar = app.user("oscar", &["requester"]).await;
    let now = app.clock.now();

    // The error rate of the model's deployment is watched.
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/detectors/fraud-errors",
            Some(&c.mia),
            Some(
                json!({"metric": "error_rate", "labels": {"deployment": "fraud-scoring"},
                        "config": {"detector": "robust_z"}, "severity": "sev2"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let baseline: Vec<Value> = (1..=60)
        .rev()
        .map(|m| json!({"name": "error_rate", "labels": {"deployment": "fraud-scoring"},
                        "value": 0.02 + 0.002 * ((m as f64) * 1.7).sin(), "time": now - Duration::minutes(m)}))
        .collect();
    let (status, body) = app
        .post(
            "/api/v1/metrics",
            app.monitor().await,
            json!({"samples": baseline}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        incidents(&app, &c.rita).await.is_empty(),
        "a quiet baseline raises nothing"
    );

    // A change moves champion from v1 to v2.
    let change_id = id(&app
        .submit_ok(
            &c.rita,
            change(json!({
                "window": {"start": now.to_rfc3339(), "end": (now + Duration::hours(1)).to_rfc3339()},
                "steps": [{"name": "promote", "kind": "mlflow_alias", "tracking_uri": mlflow.url,
                           "model": model, "alias": "champion", "version": 2}],
            })),
        )
        .await);
    app.decide(&c.mia, &change_id, "approve", "ok").await;
    let started = std::time::Instant::now();
    loop {
        let (_, shown) = app
            .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
            .await;
        if shown["state"] == "completed" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{shown:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(mlflow.alias(&model, "champion").await.as_deref(), Some("2"));

    // The error rate jumps: the detector raises an incident with the change as top suspect.
    let after: Vec<Value> = (1..=4)
        .map(|s| {
            json!({"name": "error_rate", "labels": {"deployment": "fraud-scoring"},
                        "value": 0.21, "time": now + Duration::seconds(10 * s)})
        })
        .collect();
    app.post(
        "/api/v1/metrics",
        app.monitor().await,
        json!({"samples": after}),
    )
    .await;
    let all = incidents(&app, &c.rita).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let incident = &all[0];
    let inc = incident["id"].as_str().expect("id").to_owned();
    assert_eq!(incident["targets"], json!(["fraud-scoring"]));
    assert_eq!(incident["severity"], "sev2");
    assert_eq!(
        incident["suspects"][0]["change"],
        change_id.as_str(),
        "{incident:#}"
    );
    assert_eq!(incident["suspects"][0]["relation"], "same target");
    assert_eq!(incident["change_related"], true);
    let (_, linked) = app
        .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
        .await;
    assert_eq!(linked["incidents"][0]["incident"], inc.as_str());
    assert_eq!(linked["incidents"][0]["strong"], true);
    let shown = crate::helpers::run_steward(&app.base, &c.rita, &["change", "show", &change_id]);
    assert!(
        shown
            .stdout
            .contains(&format!("{inc} suspects this change")),
        "{}",
        shown.stdout
    );
    let (_, inbox) = app.get("/api/v1/notifications", &c.mia).await;
    assert!(
        inbox["items"][0]["subject"]
            .as_str()
            .is_some_and(|s| s.contains(&inc)),
        "{inbox}"
    );

    // Containment: proposed by the responder, approved by the owning manager only.
    let (status, body) = app
        .post(
            &format!("/api/v1/incidents/{inc}/actions"),
            &oscar,
            json!({"action": "acknowledge"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/incidents/{inc}/containment"),
            &oscar,
            json!({"actions": [{"name": "revert", "kind": "rollback_change", "change": change_id}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        mlflow.alias(&model, "champion").await.as_deref(),
        Some("2"),
        "nothing runs before approval"
    );
    for token in [&oscar, &c.max] {
        let (status, body) = app
            .post(
                &format!("/api/v1/incidents/{inc}/containment/approve"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, contained) = app
        .post(
            &format!("/api/v1/incidents/{inc}/containment/approve"),
            &c.mia,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{contained}");
    assert_eq!(contained["state"], "contained", "{contained:#}");
    assert_eq!(mlflow.alias(&model, "champion").await.as_deref(), Some("1"));
    let (_, rolled_back) = app
        .get(&format!("/api/v1/changes/{change_id}"), &c.rita)
        .await;
    assert_eq!(rolled_back["state"], "rolled_back");
    assert_eq!(rolled_back["execution"]["rollback"]["trigger"], "incident");

    // Resolved; the review is owed before it closes.
    app.post(
        &format!("/api/v1/incidents/{inc}/actions"),
        &c.mia,
        json!({"action": "resolve", "comment": "errors back to baseline"}),
    )
    .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/incidents/{inc}/actions"),
            &c.mia,
            json!({"action": "close"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("review")),
        "{body}"
    );
    let (status, body) = app
        .post(&format!("/api/v1/incidents/{inc}/review"), &c.mia, json!({"what_happened": "v2 raised errors tenfold", "why": "a feature missing in production traffic"}))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "change-related: say what the risk assessment missed: {body}"
    );
    let (status, body) = app
        .post(&format!("/api/v1/incidents/{inc}/review"), &c.mia, json!({"what_happened": "v2 raised errors tenfold", "why": "a feature missing in production traffic",
            "risk_assessment_missed": "no shadow traffic test", "actions": ["require shadow tests for model-deployment changes"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, closed) = app
        .post(
            &format!("/api/v1/incidents/{inc}/actions"),
            &c.mia,
            json!({"action": "close"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["state"], "closed");

    let actions: Vec<&str> = closed["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    let expected = [
        "incident.opened",
        "incident.acknowledged",
        "incident.containment_proposed",
        "incident.containment_approved",
        "incident.action_succeeded",
        "incident.contained",
        "incident.resolved",
        "incident.reviewed",
        "incident.closed",
    ];
    let mut at = 0;
    for action in &actions {
        if at < expected.len() && *action == expected[at] {
            at += 1;
        }
    }
    assert_eq!(at, expected.len(), "the audit trail in order: {actions:?}");

    let (status, metrics) = app.get("/api/v1/incident-metrics", &c.rita).await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    assert_eq!(metrics["incidents"], 1);
    assert_eq!(metrics["change_related_share"], 1.0);
    assert_eq!(metrics["change_failure_rate"], 1.0);
    assert_eq!(metrics["incidents_per_target"]["fraud-scoring"], 1);
    assert!(metrics["mean_minutes_to_contain"].is_number());
    let _ = ADMIN_TOKEN;
    app.stop().await;
}

async fn the_cli_lists_shows_and_moves_incidents(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db).await;
    let c = cast(&app).await;
    let monitor = app.user("prometheus", &["monitor"]).await;
    let now = app.clock.now();
    let firing = alertmanager_payload(
        "firing",
        vec![alert(
            "a1b2",
            "firing",
            json!({"alertname": "FraudErrors", "severity": "error", "model": "fraud-scoring"}),
            now,
        )],
    );
    app.post("/api/v1/integrations/alertmanager", &monitor, firing)
        .await;
    let run = |token: &str, args: &[&str]| crate::helpers::run_steward(&app.base, token, args);
    let listed = run(&c.mia, &["incident", "list", "--open"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed.stdout.contains("INC-1") && listed.stdout.contains("fraud-scoring"),
        "{}",
        listed.stdout
    );
    let acked = run(&c.mia, &["incident", "ack", "INC-1"]);
    assert_eq!(acked.code, 0, "{}", acked.stderr);
    assert!(acked.stdout.contains("acknowledged"), "{}", acked.stdout);
    let closed = run(&c.mia, &["incident", "close", "INC-1"]);
    assert_eq!(closed.code, 1);
    assert!(
        closed
            .stderr
            .contains("cannot close an incident that is acknowledged"),
        "{}",
        closed.stderr
    );
    let shown = run(&c.mia, &["incident", "show", "INC-1", "--output", "json"]);
    let value: Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(value["owner"], "mia");
    let bad = run(
        &c.mia,
        &[
            "detector",
            "set",
            "x",
            "--metric",
            "error_rate",
            "--detector",
            "crystal_ball",
        ],
    );
    assert_eq!(bad.code, 1);
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("crystal_ball"), "{}", bad.stderr);
    let set = run(
        &c.mia,
        &[
            "detector",
            "set",
            "fraud-errors",
            "--metric",
            "error_rate",
            "--label",
            "model=fraud-scoring",
            "--detector",
            "robust_z",
        ],
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    let (_, rules) = app.get("/api/v1/detectors", &c.rita).await;
    assert_eq!(rules["items"][0]["name"], "fraud-errors", "{rules}");
    assert_eq!(
        rules["items"][0]["rule"]["labels"]["model"],
        "fraud-scoring"
    );
    app.stop().await;
}

async fn a_sev1_playbook_runs_at_once_and_others_wait_for_approval(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db).await;
    let c = cast(&app).await;
    let monitor = app.user("prometheus", &["monitor"]).await;
    let file = db.dir.path().join("isolated.txt");
    let isolate = json!({"actions": [{"name": "isolate", "kind": "command", "program": "/bin/sh",
        "args": ["-c", format!("echo isolated >> '{}'", file.display())]}]});
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/playbooks/isolate-deployment",
            Some(&c.rita),
            Some(isolate.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "requesters do not keep playbooks: {body}"
    );
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/playbooks/isolate-deployment",
            Some(&c.mia),
            Some(isolate),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = app.clock.now();
    for (fingerprint, severity) in [("warn1", "warning")] {
        let payload = alertmanager_payload(
            "firing",
            vec![alert(
                fingerprint,
                "firing",
                json!({"alertname": "Slow", "severity": severity, "model": "fraud-scoring"}),
                now,
            )],
        );
        app.post("/api/v1/integrations/alertmanager", &monitor, payload)
            .await;
    }
    let (status, body) = app
        .post(
            "/api/v1/incidents/INC-1/containment",
            &c.max,
            json!({"playbook": "isolate-deployment"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a SEV3 waits for a manager: {body}"
    );
    assert!(!file.exists());

    // A SEV1 on another target runs the playbook at once, recorded as such.
    app.target("churn-scoring", "mia", "staging", "low", &[])
        .await;
    let payload = alertmanager_payload(
        "firing",
        vec![alert(
            "crit1",
            "firing",
            json!({"alertname": "Down", "severity": "critical", "model": "churn-scoring"}),
            now,
        )],
    );
    app.post("/api/v1/integrations/alertmanager", &monitor, payload)
        .await;
    let (status, body) = app
        .post(
            "/api/v1/incidents/INC-2/containment",
            &c.max,
            json!({"playbook": "isolate-deployment"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "contained", "{body:#}");
    assert_eq!(body["containment"]["playbook"], "isolate-deployment");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default().trim(),
        "isolated"
    );
    let actions: Vec<&str> = body["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"incident.playbook_started")
            && actions.contains(&"incident.action_succeeded"),
        "{actions:?}"
    );
    app.stop().await;
}

async fn problems_group_recurring_incidents_and_link_their_fix(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = spawn(&db).await;
    let c = cast(&app).await;
    let monitor = app.user("prometheus", &["monitor"]).await;
    let now = app.clock.now();
    for (i, fingerprint) in ["f1", "f2"].iter().enumerate() {
        let started = now - Duration::hours(3 - i as i64);
        let payload = alertmanager_payload(
            "firing",
            vec![alert(
                fingerprint,
                "firing",
                json!({"alertname": "FeatureStoreTimeout", "severity": "warning", "model": "fraud-scoring"}),
                started,
            )],
        );
        app.post("/api/v1/integrations/alertmanager", &monitor, payload)
            .await;
        let resolved = alertmanager_payload(
            "resolved",
            vec![alert(
                fingerprint,
                "resolved",
                json!({"alertname": "FeatureStoreTimeout", "severity": "warning", "model": "fraud-scoring"}),
                started,
            )],
        );
        app.post("/api/v1/integrations/alertmanager", &monitor, resolved)
            .await;
    }
    assert_eq!(incidents(&app, &c.rita).await.len(), 2);
    let run = |args: &[&str]| crate::helpers::run_steward(&app.base, &c.mia, args);
    let linked = run(&["incident", "problem", "INC-1", "feature-store-timeouts"]);
    assert_eq!(linked.code, 1, "the problem must exist first");
    assert!(
        linked.stderr.contains("steward problem create"),
        "{}",
        linked.stderr
    );
    assert_eq!(
        run(&[
            "problem",
            "create",
            "feature-store-timeouts",
            "--title",
            "Feature store times out under load"
        ])
        .code,
        0
    );
    for inc in ["INC-1", "INC-2"] {
        let linked = run(&["incident", "problem", inc, "feature-store-timeouts"]);
        assert_eq!(linked.code, 0, "{}", linked.stderr);
    }
    let fix = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"title": "Add a read replica to the feature store",
        "links": ["problem:feature-store-timeouts"]})),
        )
        .await);
    let fixed = run(&["problem", "fix", "feature-store-timeouts", "--change", &fix]);
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    let shown = run(&[
        "problem",
        "show",
        "feature-store-timeouts",
        "--output",
        "json",
    ]);
    let problem: Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(problem["fix_change"], fix.as_str());
    assert_eq!(problem["fix_state"], "pending_approval");
    let ids: Vec<&str> = problem["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["INC-1", "INC-2"]);
    app.stop().await;
}

crate::both_backends!(
    problems_group_recurring_incidents_and_link_their_fix,
    a_sev1_playbook_runs_at_once_and_others_wait_for_approval,
    the_cli_lists_shows_and_moves_incidents,
    alertmanager_resends_change_nothing_and_resolved_alerts_resolve,
    pagerduty_events_deduplicate_acknowledge_and_resolve,
    a_detected_error_spike_is_traced_to_the_change_and_contained_with_approval,
);
