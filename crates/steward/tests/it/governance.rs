//! Governance rules through the API: Rego policies (the built-in pack and a policy directory),
//! freezes and maintenance windows, conflicts between changes, and the iCalendar feed.

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, config, id, run_steward,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_server::{Application, Clock};

fn actions(change: &Value) -> Vec<String> {
    change["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn rule<'a>(receipt: &'a Value, name: &str) -> &'a Value {
    receipt["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["rule"] == name))
        .unwrap_or_else(|| panic!("no verdict from {name} in {receipt}"))
}

fn window(start: &str, end: &str) -> Value {
    json!({ "start": start, "end": end })
}

async fn freeze(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.post("/api/v1/windows", token, body).await
}

async fn a_policy_deny_blocks_submission_and_a_warning_is_recorded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.target("credit-model", "mia", "production", "high", &["pii"])
        .await;
    // High risk without a backup: the built-in pack denies, names the rule and keeps nothing.
    let risky = change(
        json!({"targets": ["credit-model"], "environment": "production",
        "impact": {"data": "high", "availability": "low", "compliance": "low"}, "backup": null}),
    );
    let (status, body) = app.submit(&c.rita, risky.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let error = body["error"].as_str().unwrap_or("");
    assert!(
        error.starts_with(
            "refused by policy: high_risk_rollback: a high-risk change needs a backup"
        ),
        "{error}"
    );
    let receipt = &body["details"]["policy"];
    assert_eq!(rule(receipt, "high_risk_rollback")["verdict"], "deny");
    assert_eq!(
        rule(receipt, "high_risk_rollback")["inputs"]["risk_level"],
        "high"
    );
    let (_, listed) = app.get("/api/v1/changes", &c.rita).await;
    assert_eq!(crate::helpers::items(&listed).len(), 0, "nothing stored");
    // ...but the denial itself is in the audit log.
    let leaves = crate::helpers::all_items(&app, "/api/v1/audit/leaves", ADMIN_TOKEN).await;
    let denials: Vec<&str> = leaves
        .iter()
        .filter_map(|l| l["entry"].as_str())
        .filter(|e| e.contains("\"policy.denied\""))
        .collect();
    assert_eq!(denials.len(), 1, "{leaves:?}");
    assert!(
        denials[0].contains("\"subject_id\":\"rita\""),
        "{}",
        denials[0]
    );
    // A backup never restored, as the server sends it (`verified_at: null`), is denied too.
    let unverified = change(
        json!({"targets": ["credit-model"], "environment": "production",
        "impact": {"data": "high", "availability": "low", "compliance": "low"},
        "backup": {"reference": "snap-7", "verified_at": null}}),
    );
    let (status, body) = app.submit(&c.rita, unverified).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("snap-7 has never been restored"),
        "{body}"
    );

    // Without a window the maintenance rule warns; warnings do not block and are kept.
    let ok = app.submit_ok(&c.rita, change(json!({}))).await;
    assert_eq!(ok["state"], "pending_approval");
    let receipt = &ok["policy"][0];
    assert_eq!(receipt["stage"], "submission");
    assert!(
        receipt["policy_set"]
            .as_str()
            .unwrap_or("")
            .starts_with("sha256:")
    );
    assert_eq!(rule(receipt, "maintenance_window")["verdict"], "warn");
    // The receipt is in the submission's audit event too.
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{}", id(&ok)), &c.rita)
        .await;
    let submitted = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["action"] == "change.submitted")
        .expect("submitted event");
    assert_eq!(
        submitted["details"]["policy"]["policy_set"],
        receipt["policy_set"]
    );
    assert_eq!(
        rule(&submitted["details"]["policy"], "maintenance_window")["verdict"],
        "warn"
    );
}

async fn policies_from_a_directory_add_approvals_and_can_refuse_an_approval(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = db.dir.path().join("policies");
    std::fs::create_dir_all(&dir).expect("policy dir");
    std::fs::write(
        dir.join("gpu_quota.rego"),
        r#"package steward.rules.gpu_quota
import rego.v1

title := "GPU quota changes need the CISO and may not be approved by a manager alone"

approvals contains {"role": "ciso", "reason": "GPU quota is a cost control"} if {
	input.change.category == "gpu-quota"
}

# At approval time: a manager may not be the first to approve a quota change.
deny contains "a quota change is approved by the CISO first" if {
	input.stage == "approval"
	input.change.category == "gpu-quota"
	count(input.approvals) == 1
	input.approvals[0].role == null
}

inputs := {"category": input.change.category, "approvals_so_far": count(input.approvals)}
"#,
    )
    .expect("write policy");
    let mut cfg = config(&db);
    cfg.policy_dir = Some(dir);
    let app = TestApp::spawn_with(cfg, Clock::default()).await;
    let c = cast(&app).await;
    let cass = app.user("cass", &["ciso"]).await;
    let quota = app
        .submit_ok(&c.rita, change(json!({"category": "gpu-quota"})))
        .await;
    let slots: Vec<&str> = quota["approvals"]["required"]
        .as_array()
        .expect("slots")
        .iter()
        .filter_map(|s| s["slot"].as_str())
        .collect();
    assert_eq!(slots, ["owner:mia", "policy:gpu_quota:ciso"]);
    let quota_id = id(&quota);
    // The owner first: refused by the directory's rule, nothing recorded.
    let (status, body) = app.decide(&c.mia, &quota_id, "approve", "fine").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"],
        "refused by policy: gpu_quota: a quota change is approved by the CISO first"
    );
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{quota_id}"), &c.rita)
        .await;
    assert!(
        actions(&shown).contains(&"policy.denied".to_owned()),
        "{:?}",
        actions(&shown)
    );
    assert_eq!(
        shown["approvals"]["given"].as_array().map(Vec::len),
        Some(0)
    );
    // The CISO, then the owner; the change needs both.
    let (status, body) = app.decide(&cass, &quota_id, "approve", "budget ok").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "pending_approval");
    let (status, body) = app.decide(&c.mia, &quota_id, "approve", "fine").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    let stages: Vec<&str> = body["policy"]
        .as_array()
        .expect("receipts")
        .iter()
        .filter_map(|r| r["stage"].as_str())
        .collect();
    assert_eq!(stages, ["submission", "approval", "approval"]);
    assert_eq!(
        rule(&body["policy"][2], "gpu_quota")["inputs"]["approvals_so_far"],
        2
    );
    // Other categories are untouched by the rule.
    let other = app.submit_ok(&c.rita, change(json!({}))).await;
    assert_eq!(
        other["approvals"]["required"].as_array().map(Vec::len),
        Some(1)
    );
}

async fn a_broken_policy_set_stops_the_server_from_starting(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = db.dir.path().join("broken");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("half.rego"),
        "package steward.rules.half\nimport rego.v1\n\ndeny contains msg if {\n  msg := \n}\n",
    )
    .expect("write");
    let mut cfg = config(&db);
    cfg.policy_dir = Some(dir);
    let err = Application::build(cfg)
        .await
        .expect_err("a broken policy refuses start-up");
    let text = format!("{err:#}");
    assert!(text.contains("will not start"), "{text}");
    assert!(text.contains("half.rego:5:"), "{text}");
}

async fn freezes_refuse_changes_and_emergencies_need_the_ciso(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let cora = app.user("cora", &["compliance_officer"]).await;
    // Requesters may not declare freezes.
    let quarter_end = json!({"name": "quarter-end", "kind": "freeze", "scope": "environment:staging",
        "timezone": "America/New_York", "starts": "2027-03-29T00:00", "ends": "2027-04-02T00:00",
        "reason": "Q1 books close"});
    assert_eq!(
        freeze(&app, &c.rita, quarter_end.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, created) = freeze(&app, &cora, quarter_end).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["next"]["start"], "2027-03-29T04:00:00Z");

    let in_freeze = window("2027-03-30T22:00:00Z", "2027-03-30T23:00:00Z");
    // A preview says so before anyone submits.
    let (status, preview) = app
        .post(
            "/api/v1/policy/evaluate",
            &c.rita,
            change(json!({"window": in_freeze})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["denied"], true);
    assert!(
        preview["denials"][0]
            .as_str()
            .unwrap_or("")
            .contains("quarter-end"),
        "{preview}"
    );
    let (status, body) = app
        .submit(&c.rita, change(json!({"window": in_freeze})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("quarter-end"),
        "the freeze is named: {body}"
    );
    // Outside it (the day after it ends) is fine.
    app.submit_ok(
        &c.rita,
        change(json!({"window": window("2027-04-02T05:00:00Z", "2027-04-02T06:00:00Z")})),
    )
    .await;

    // An emergency may ask to override; the CISO must approve, and the override is recorded.
    let vic = app.user("vic", &["vp_engineering"]).await;
    let cass = app.user("cass", &["ciso"]).await;
    let emergency = app
        .submit_ok(
            &c.rita,
            change(json!({"window": in_freeze, "emergency": true,
                "justification": "fraud ring exploiting the v6 scoring gap"})),
        )
        .await;
    assert_eq!(emergency["freeze_overrides"][0]["name"], "quarter-end");
    assert_eq!(
        emergency["obligations"][0]["name"],
        "post_implementation_review"
    );
    let eid = id(&emergency);
    let (_, body) = app.decide(&vic, &eid, "approve", "go").await;
    assert_eq!(body["state"], "pending_approval");
    let (status, body) = app
        .decide(&cass, &eid, "approve", "override accepted")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    let (_, shown) = app.get(&format!("/api/v1/changes/{eid}"), &c.rita).await;
    let history = actions(&shown);
    assert!(
        history.contains(&"change.freeze_override_requested".to_owned()),
        "{history:?}"
    );
    let approved = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["action"] == "change.approved")
        .expect("approved event");
    assert!(
        approved["details"]["comment"]
            .as_str()
            .unwrap_or("")
            .contains("CISO overrides the freeze"),
        "{approved}"
    );
}

async fn a_freeze_declared_after_the_ciso_approved_refuses_the_emergency(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let cass = app.user("cass", &["ciso"]).await;
    let vic = app.user("vic", &["vp_engineering"]).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let emergency = app
        .submit_ok(
            &c.rita,
            change(json!({"emergency": true, "justification": "fraud ring exploiting the v6 scoring gap",
                "window": window("2027-05-10T22:00:00Z", "2027-05-10T23:00:00Z")})),
        )
        .await;
    let eid = id(&emergency);
    assert_eq!(
        app.decide(&cass, &eid, "approve", "go").await.0,
        StatusCode::OK
    );
    let (status, _) = freeze(
        &app,
        ADMIN_TOKEN,
        json!({"name": "may-close", "kind": "freeze", "scope": "everywhere", "timezone": "UTC",
            "starts": "2027-05-10T00:00", "ends": "2027-05-11T00:00", "reason": "month-end"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // The CISO approved before this freeze existed: the VP's approval cannot complete it.
    let (status, body) = app.decide(&vic, &eid, "approve", "go").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("resubmit"),
        "{body}"
    );
    // Scheduling an approved change into the freeze is refused as well.
    let normal = app
        .submit_ok(
            &c.rita,
            change(json!({"window": window("2027-05-12T22:00:00Z", "2027-05-12T23:00:00Z")})),
        )
        .await;
    let nid = id(&normal);
    app.decide(&c.mia, &nid, "approve", "ok").await;
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{nid}/transitions"),
            &ivan,
            json!({"step": "schedule", "window": window("2027-05-10T12:00:00Z", "2027-05-10T13:00:00Z")}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("may-close"),
        "{body}"
    );
}

async fn a_freeze_declared_after_submission_refuses_approval(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let pending = app
        .submit_ok(
            &c.rita,
            change(json!({"window": window("2027-06-10T22:00:00Z", "2027-06-10T23:00:00Z")})),
        )
        .await;
    let (status, _) = freeze(
        &app,
        ADMIN_TOKEN,
        json!({"name": "audit-week", "kind": "freeze", "scope": "target:fraud-scoring",
            "timezone": "UTC", "starts": "2027-06-07T00:00", "ends": "2027-06-14T00:00",
            "reason": "external audit on site"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.decide(&c.mia, &id(&pending), "approve", "ok").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("audit-week"),
        "{body}"
    );
    // Deleting the freeze (audited) lets the approval through.
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/windows/audit-week",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.decide(&c.mia, &id(&pending), "approve", "ok").await.1["state"],
        "approved"
    );
}

async fn a_recurring_freeze_follows_local_time_across_the_dst_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let (status, body) = freeze(
        &app,
        ADMIN_TOKEN,
        json!({"name": "trading-hours", "kind": "freeze", "scope": "everywhere",
            "timezone": "Europe/London", "starts": "2027-01-04T09:00", "ends": "2027-01-04T17:00",
            "rrule": "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "reason": "markets open"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Friday 26 March 2027, 08:30 UTC = 08:30 GMT: before trading hours.
    app.submit_ok(
        &c.rita,
        change(json!({"window": window("2027-03-26T08:30:00Z", "2027-03-26T08:50:00Z")})),
    )
    .await;
    // Clocks go forward on the 28th: Monday 29 March, 08:30 UTC = 09:30 BST, inside.
    let (status, body) = app
        .submit(
            &c.rita,
            change(json!({"window": window("2027-03-29T08:30:00Z", "2027-03-29T08:50:00Z")})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("2027-03-29T08:00:00Z"),
        "the occurrence is named in UTC: {body}"
    );
}

async fn overlapping_changes_are_flagged_and_the_later_needs_an_acknowledgement(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // A cluster and a deployment running on it.
    for body in [
        json!({"name": "gpu-a", "kind": "compute_cluster", "owner": "mia", "environment": "staging", "criticality": "low", "regulated": []}),
        json!({"name": "churn", "kind": "model_deployment", "owner": "mia", "environment": "staging", "criticality": "low", "regulated": [], "parent": "gpu-a"}),
    ] {
        let (status, created) = app.post("/api/v1/targets", ADMIN_TOKEN, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    let first = app
        .submit_ok(
            &c.rita,
            change(json!({"targets": ["gpu-a"], "window": window("2027-02-01T22:00:00Z", "2027-02-01T23:00:00Z")})),
        )
        .await;
    let second = app
        .submit_ok(
            &c.rita,
            change(json!({"targets": ["churn"], "window": window("2027-02-01T22:30:00Z", "2027-02-01T23:30:00Z")})),
        )
        .await;
    // Not overlapping in time: no conflict.
    app.submit_ok(
        &c.rita,
        change(json!({"targets": ["churn"], "window": window("2027-02-02T22:00:00Z", "2027-02-02T23:00:00Z")})),
    )
    .await;
    let (first_id, second_id) = (id(&first), id(&second));
    // Both show the conflict; both histories record it.
    let (_, shown_first) = app
        .get(&format!("/api/v1/changes/{first_id}"), &c.mia)
        .await;
    let conflict = &shown_first["schedule"]["conflicts"];
    assert_eq!(conflict.as_array().map(Vec::len), Some(1), "{conflict}");
    assert_eq!(conflict[0]["change"], second_id.as_str());
    assert_eq!(conflict[0]["via"][0], "churn runs on gpu-a");
    assert_eq!(conflict[0]["needs_acknowledgement"], false);
    assert!(actions(&shown_first).contains(&"change.conflict_flagged".to_owned()));
    let (_, shown_second) = app
        .get(&format!("/api/v1/changes/{second_id}"), &c.rita)
        .await;
    assert_eq!(
        shown_second["schedule"]["conflicts"][0]["change"],
        first_id.as_str()
    );
    assert!(actions(&shown_second).contains(&"change.conflicts_flagged".to_owned()));

    // The earlier change is approved as usual; the later one needs the acknowledgement.
    assert_eq!(
        app.decide(&c.mia, &first_id, "approve", "ok").await.1["state"],
        "approved"
    );
    let (status, body) = app.decide(&c.mia, &second_id, "approve", "ok").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains(&first_id),
        "{body}"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{second_id}/approve"),
            &c.mia,
            json!({"comment": "checked: the cluster patch does not restart churn", "acknowledge_conflicts": [first_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    assert_eq!(
        body["approvals"]["given"][0]["acknowledged_conflicts"][0],
        first_id.as_str()
    );

    // Scheduling another approved change onto the cluster's window needs the acknowledgement too.
    let ivan = app.user("ivan", &["requester"]).await;
    let third = app
        .submit_ok(&c.rita, change(json!({"targets": ["churn"]})))
        .await;
    let third_id = id(&third);
    app.decide(&c.mia, &third_id, "approve", "ok").await;
    let into_overlap = json!({"step": "schedule", "window": window("2027-02-01T22:35:00Z", "2027-02-01T22:45:00Z")});
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{third_id}/transitions"),
            &ivan,
            into_overlap.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let mut unacknowledged: Vec<&str> = body["details"]["unacknowledged"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    unacknowledged.sort();
    assert_eq!(unacknowledged, [first_id.as_str(), second_id.as_str()]);
    let mut acknowledged = into_overlap;
    acknowledged["acknowledge_conflicts"] = json!([first_id, second_id]);
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{third_id}/transitions"),
            &ivan,
            acknowledged,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "scheduled");
}

async fn a_post_implementation_review_is_owed_before_closing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let vic = app.user("vic", &["vp_engineering"]).await;
    let cass = app.user("cass", &["ciso"]).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let emergency = app
        .submit_ok(
            &c.rita,
            change(json!({"emergency": true, "justification": "scoring outage since 09:00, all card traffic declined"})),
        )
        .await;
    let eid = id(&emergency);
    app.decide(&vic, &eid, "approve", "go").await;
    app.decide(&cass, &eid, "approve", "go").await;
    for step in ["schedule", "implement", "complete"] {
        let (status, body) = app.step(&ivan, &eid, step).await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
    let (status, body) = app.step(&ivan, &eid, "close").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("post_implementation_review"),
        "{body}"
    );
    // Someone unconnected to the change cannot write its review; an unknown obligation is named.
    let stranger = app.user("sam", &["requester"]).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{eid}/obligations/post_implementation_review"),
            &stranger,
            json!({"note": "looks fine to me"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{eid}/obligations/pir"),
            &ivan,
            json!({"note": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("obligation"),
        "{body}"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/changes/{eid}/obligations/post_implementation_review"),
            &ivan,
            json!({"note": "Root cause: expired cert. Missed in risk review: no cert expiry check. Action: alert at 14 days."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["obligations"][0]["fulfilled"]["by"], "ivan");
    let (status, body) = app.step(&ivan, &eid, "close").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "closed");
}

/// The feed parses in a real calendar library (Python's `icalendar`, which `scripts/test.sh`
/// installs into target/test-venv); a change, a recurring maintenance window and a freeze are in
/// it, with the right instants, and filters narrow it.
async fn the_calendar_feed_parses_in_a_real_icalendar_parser(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.target("ledger", "mia", "production", "low", &[]).await;
    for body in [
        json!({"name": "weekend-maintenance", "kind": "maintenance", "scope": "target:fraud-scoring",
            "timezone": "Asia/Kolkata", "starts": "2027-01-02T01:00", "ends": "2027-01-02T05:00",
            "rrule": "FREQ=WEEKLY;BYDAY=SA", "reason": "weekly patching; commas, semicolons; and \\ survive"}),
        json!({"name": "year-end", "kind": "freeze", "scope": "environment:production",
            "timezone": "UTC", "starts": "2027-12-24T00:00", "ends": "2028-01-02T00:00", "reason": "year-end close"}),
    ] {
        let (status, created) = freeze(&app, ADMIN_TOKEN, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    let long_title = format!("Promote fraud model v7 — {}", "ü".repeat(80));
    app.submit_ok(
        &c.rita,
        change(json!({"title": long_title, "window": window("2027-01-09T20:00:00Z", "2027-01-09T21:00:00Z")})),
    )
    .await;
    let url = |query: &str| {
        format!(
            "{}/api/v1/calendar.ics?from=2027-01-01T00:00:00Z&to=2028-01-31T00:00:00Z{query}",
            app.base
        )
    };
    let all = parse_ics(&fetch(&c.rita, url("")).await);
    let summaries: Vec<&str> = all.iter().filter_map(|e| e["summary"].as_str()).collect();
    let change_event = all
        .iter()
        .find(|e| {
            e["summary"]
                .as_str()
                .unwrap_or("")
                .starts_with("CHG-1 [pending_approval]")
        })
        .unwrap_or_else(|| panic!("no change event in {summaries:?}"));
    assert_eq!(change_event["start"], "2027-01-09T20:00:00+00:00");
    assert_eq!(change_event["status"], "TENTATIVE");
    assert!(
        change_event["summary"]
            .as_str()
            .unwrap_or("")
            .ends_with(&"ü".repeat(80))
    );
    // 01:00-05:00 IST on Saturdays = 19:30-23:30 UTC on Fridays; 56 Saturdays in range... at least 50.
    let maintenance: Vec<&Value> = all
        .iter()
        .filter(|e| {
            e["summary"]
                .as_str()
                .unwrap_or("")
                .starts_with("Maintenance window weekend-maintenance")
        })
        .collect();
    assert!(maintenance.len() >= 50, "{}", maintenance.len());
    assert_eq!(maintenance[0]["start"], "2027-01-01T19:30:00+00:00");
    assert_eq!(
        maintenance[0]["description"],
        "weekly patching; commas, semicolons; and \\ survive"
    );
    let year_end: Vec<&Value> = all
        .iter()
        .filter(|e| {
            e["summary"]
                .as_str()
                .unwrap_or("")
                .starts_with("FREEZE year-end")
        })
        .collect();
    assert_eq!(year_end.len(), 1);
    assert_eq!(year_end[0]["end"], "2028-01-02T00:00:00+00:00");

    // Filtered to the production ledger: the production freeze only.
    let ledger = parse_ics(&fetch(&c.rita, url("&target=ledger")).await);
    let summaries: Vec<&str> = ledger
        .iter()
        .filter_map(|e| e["summary"].as_str())
        .collect();
    assert_eq!(summaries, ["FREEZE year-end (environment:production)"]);
    let staging = parse_ics(&fetch(&c.rita, url("&environment=staging")).await);
    assert!(
        staging
            .iter()
            .all(|e| !e["summary"].as_str().unwrap_or("").contains("year-end"))
    );
    assert!(staging.len() > 50);
    let (status, body) = app
        .get("/api/v1/calendar.ics?environment=prod", &c.rita)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// Parses an iCalendar document with Python's `icalendar` and returns its events.
fn parse_ics(text: &str) -> Vec<Value> {
    // scripts/test.sh sets this; a plain `cargo nextest run` finds the venv it left behind.
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/test-venv/bin/python"
    );
    let python = std::env::var("STEWARD_TEST_PYTHON").unwrap_or_else(|_| {
        if std::path::Path::new(venv).exists() {
            venv.to_owned()
        } else {
            "python3".to_owned()
        }
    });
    let script = r#"
import json, sys, icalendar
cal = icalendar.Calendar.from_ical(sys.stdin.read())
out = []
for e in cal.walk("VEVENT"):
    out.append({
        "summary": str(e.get("SUMMARY")),
        "description": str(e.get("DESCRIPTION")),
        "status": str(e.get("STATUS")),
        "start": e.decoded("DTSTART").isoformat(),
        "end": e.decoded("DTEND").isoformat(),
        "uid": str(e.get("UID")),
    })
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed the parser");
    let output = child.wait_with_output().expect("parser ran");
    assert!(
        output.status.success(),
        "icalendar refused the feed (is it installed? scripts/test.sh installs it into target/test-venv and sets STEWARD_TEST_PYTHON): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser output")
}

/// `steward policy test|eval|backtest` as a compliance officer would run them.
async fn the_policy_commands_test_evaluate_and_backtest(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let cora = app.user("cora", &["compliance_officer"]).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let dir = db.dir.path().join("candidate");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("friday.rego"),
        r#"package steward.rules.no_retraining_in_staging
import rego.v1

deny contains "retraining is frozen in staging" if input.change.category == "model-retrain"

warn contains "deployments want a verification plan" if {
	input.change.category == "model-deployment"
	input.change.verification_plan == null
}
"#,
    )
    .expect("write");
    std::fs::write(
        dir.join("friday_test.rego"),
        r#"package steward.rules.no_retraining_in_staging_test
import rego.v1
import data.steward.rules.no_retraining_in_staging as rule

test_retraining_denied if {
	count(rule.deny) == 1 with input as {"change": {"category": "model-retrain"}}
}

test_this_one_fails if {
	count(rule.deny) == 1 with input as {"change": {"category": "model-deployment"}}
}
"#,
    )
    .expect("write");
    let dir_arg = dir.to_str().expect("utf-8 path");

    // policy test: the built-in pack passes; the candidate has one failing test.
    let run = run_steward(&app.base, &cora, &["policy", "test", "--builtin"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("PASS: "), "{}", run.stdout);
    let run = run_steward(&app.base, &cora, &["policy", "test", dir_arg]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("FAIL data.steward.rules.no_retraining_in_staging_test.test_this_one_fails"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr.trim(), "error: 1 of 2 policy tests failed");

    // policy eval: what each rule says, nothing stored.
    let file = db.dir.path().join("risky.json");
    std::fs::write(
        &file,
        change(
            json!({"backup": null, "implementation_plan": "disable the audit log, then deploy"}),
        )
        .to_string(),
    )
    .expect("write");
    let run = run_steward(
        &app.base,
        &c.rita,
        &["policy", "eval", "--change", file.to_str().expect("path")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("WOULD BE DENIED"), "{}", run.stdout);
    assert!(
        run.stdout.contains("DENY  audit_logging_protected"),
        "{}",
        run.stdout
    );
    let (_, listed) = app.get("/api/v1/changes", &c.rita).await;
    assert_eq!(crate::helpers::items(&listed).len(), 0);

    // History: two deployments (one fails), one retraining that succeeded.
    let failed = app.submit_ok(&c.rita, change(json!({}))).await;
    let retrain = app
        .submit_ok(&c.rita, change(json!({"category": "model-retrain"})))
        .await;
    let pending = app.submit_ok(&c.rita, change(json!({}))).await;
    for (change, last) in [(&failed, "fail"), (&retrain, "complete")] {
        let cid = id(change);
        app.decide(&c.mia, &cid, "approve", "ok").await;
        for step in ["schedule", "implement", last] {
            let (status, body) = app
                .post(
                    &format!("/api/v1/changes/{cid}/transitions"),
                    &ivan,
                    json!({"step": step, "comment": "done"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let _ = pending;
    // A requester may not read every change's policy inputs.
    let run = run_steward(
        &app.base,
        &c.rita,
        &["policy", "backtest", dir_arg, "--since", "2020-01-01"],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("compliance_officer"), "{}", run.stderr);
    let run = run_steward(
        &app.base,
        &cora,
        &[
            "policy",
            "backtest",
            dir_arg,
            "--since",
            "2020-01-01",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["replayed"], 3);
    assert_eq!(report["would_deny"][0]["id"], id(&retrain).as_str());
    assert_eq!(report["denied_that_failed"], 0);
    assert_eq!(report["would_warn"].as_array().map(Vec::len), Some(2));
    // Let through: the failed deployment (and the pending one, unfinished): 1 of 1 failed.
    assert_eq!(report["allowed_finished"], 1);
    assert_eq!(report["allowed_failure_rate"], 1.0);
    assert_eq!(report["actual_failure_rate"], 0.5);
    let run = run_steward(
        &app.base,
        &cora,
        &["policy", "backtest", dir_arg, "--since", "2020-01-01"],
    );
    assert!(run.stdout.contains("would deny 1"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("failure rate of the changes it lets through: 100.0%"),
        "{}",
        run.stdout
    );
    let run = run_steward(
        &app.base,
        &cora,
        &["policy", "backtest", dir_arg, "--since", "yesterday"],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--since 'yesterday'"), "{}", run.stderr);
}

both_backends!(
    a_policy_deny_blocks_submission_and_a_warning_is_recorded,
    policies_from_a_directory_add_approvals_and_can_refuse_an_approval,
    a_broken_policy_set_stops_the_server_from_starting,
    freezes_refuse_changes_and_emergencies_need_the_ciso,
    a_freeze_declared_after_submission_refuses_approval,
    a_freeze_declared_after_the_ciso_approved_refuses_the_emergency,
    a_recurring_freeze_follows_local_time_across_the_dst_change,
    overlapping_changes_are_flagged_and_the_later_needs_an_acknowledgement,
    a_post_implementation_review_is_owed_before_closing,
    the_calendar_feed_parses_in_a_real_icalendar_parser,
    the_policy_commands_test_evaluate_and_backtest,
);

async fn fetch(token: &str, url: String) -> String {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("feed");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/calendar")
    );
    response.text().await.expect("body")
}

/// `steward serve` with a broken policy directory exits 1 with one line naming file and line.
#[test]
fn serve_refuses_a_broken_policy_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("dir");
    std::fs::write(
        policies.join("typo.rego"),
        "package steward.rules.typo\nimport rego.v1\ndeny contains \"x\" if {\n  input.change.title ==\n}\n",
    )
    .expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--policy-dir")
        .arg(&policies)
        .output()
        .expect("steward runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: the policy set is broken"),
        "{stderr}"
    );
    assert!(last.contains("typo.rego:5:"), "{stderr}");
}
