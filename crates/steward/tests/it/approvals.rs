//! Approval routing and segregation of duties, through the API, including concurrent servers.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, cast, change, config, id, join_all};
use reqwest::StatusCode;
use serde_json::json;
use steward_server::Clock;

fn slots(change: &serde_json::Value) -> Vec<String> {
    change["approvals"]["required"]
        .as_array()
        .expect("required")
        .iter()
        .map(|s| s["slot"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn a_normal_medium_risk_change_goes_to_the_owning_manager(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let changed = app.submit_ok(&c.rita, change(json!({}))).await;
    assert_eq!(slots(&changed), ["owner:mia"]);
    let id = id(&changed);
    // Another manager is not the owner.
    let (status, body) = app.decide(&c.max, &id, "approve", "looks fine").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"],
        "max is not among the approvers this change still needs: it needs user mia"
    );
    // A requester holds no approving role at all.
    let (status, body) = app.decide(&c.rita, &id, "approve", "mine").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["details"]["permission"], "approve_changes", "{body}");
    // A manager who requested a change may never approve it, and is told why.
    let own = crate::helpers::id(&app.submit_ok(&c.max, change(json!({}))).await);
    let (status, body) = app.decide(&c.max, &own, "approve", "mine").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "the requester may not approve or reject their own change"
    );
    // The owner approves.
    let (status, body) = app
        .decide(&c.mia, &id, "approve", "rollback plan checked")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    assert_eq!(body["approvals"]["given"][0]["by"], "mia");
    assert_eq!(
        body["approvals"]["given"][0]["comment"],
        "rollback plan checked"
    );
}

async fn a_high_risk_change_needs_a_cab_quorum_of_distinct_members(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.target("credit-model", "mia", "production", "high", &["pii"])
        .await;
    let cab: Vec<String> = cab_members(&app, &["cab1", "cab2", "cab3"]).await;
    let changed = app
        .submit_ok(
            &c.rita,
            change(
                json!({"targets": ["credit-model"], "environment": "production",
                "impact": {"data": "high", "availability": "low", "compliance": "low"}}),
            ),
        )
        .await;
    assert_eq!(changed["risk"]["level"], "high");
    // The built-in pii rule adds a compliance officer to the CAB quorum.
    assert_eq!(
        slots(&changed),
        [
            "cab:1",
            "cab:2",
            "cab:3",
            "policy:pii_compliance_approval:compliance_officer"
        ]
    );
    let id = id(&changed);
    // The owning manager is not a CAB member.
    assert_eq!(
        app.decide(&c.mia, &id, "approve", "ok").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.decide(&cab[0], &id, "approve", "ok").await.1["state"],
        "pending_approval"
    );
    // The same member cannot fill a second seat.
    let (status, body) = app.decide(&cab[0], &id, "approve", "again").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("cannot fill two required approvals"),
        "{body}"
    );
    assert_eq!(
        app.decide(&cab[1], &id, "approve", "ok").await.1["state"],
        "pending_approval"
    );
    let (_, body) = app.decide(&cab[2], &id, "approve", "ok").await;
    assert_eq!(
        body["state"], "pending_approval",
        "the compliance officer is still needed"
    );
    // A CAB member cannot take the compliance officer's seat.
    assert_eq!(
        app.decide(&cab[2], &id, "approve", "again").await.0,
        StatusCode::FORBIDDEN
    );
    let cora = app.user("cora", &["compliance_officer"]).await;
    let (_, body) = app.decide(&cora, &id, "approve", "DPIA on file").await;
    assert_eq!(body["state"], "approved");
    assert_eq!(body["approvals"]["given"].as_array().map(Vec::len), Some(4));
}

async fn cab_members(app: &TestApp, names: &[&str]) -> Vec<String> {
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(app.user(name, &["cab_member"]).await);
    }
    tokens
}

async fn an_emergency_needs_both_ciso_and_vp_engineering_and_one_person_cannot_be_both(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let both = app.user("boss", &["ciso", "vp_engineering"]).await;
    let vp = app.user("val", &["vp_engineering"]).await;
    let changed = app
        .submit_ok(
            &c.rita,
            change(
                json!({"emergency": true, "justification": "outage of fraud scoring since 09:00"}),
            ),
        )
        .await;
    assert_eq!(slots(&changed), ["ciso", "vp_engineering"]);
    assert_eq!(
        changed["approvals"]["deadline"]
            .as_str()
            .map(|d| !d.is_empty()),
        Some(true)
    );
    let id = id(&changed);
    assert_eq!(
        app.decide(&both, &id, "approve", "contain it").await.1["state"],
        "pending_approval"
    );
    let (status, _) = app.decide(&both, &id, "approve", "and as VP").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, body) = app.decide(&vp, &id, "approve", "agreed").await;
    assert_eq!(body["state"], "approved");
}

async fn any_required_rejection_rejects_the_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ciso = app.user("cy", &["ciso"]).await;
    let changed = app
        .submit_ok(
            &c.rita,
            change(
                json!({"emergency": true, "justification": "outage of fraud scoring since 09:00"}),
            ),
        )
        .await;
    let id = id(&changed);
    let (status, body) = app.decide(&ciso, &id, "reject", "not an emergency").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "rejected");
    // A decided change takes no more decisions: 409 naming the state.
    let (status, body) = app.decide(&c.mia, &id, "approve", "late").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["details"]["current_state"], "rejected");
    // An empty comment is refused.
    let other = app.submit_ok(&c.rita, change(json!({}))).await;
    let (status, body) = app
        .decide(&c.mia, &crate::helpers::id(&other), "approve", "  ")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["fields"][0]["field"], "comment");
}

/// Two servers share one database; the same decisions race through both. Each change must end
/// with exactly the approvals its slots allow, and every winner has its audit event.
async fn concurrent_approvals_through_two_servers_decide_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = TestApp::spawn(&db).await;
    let mut second_config = config(&db);
    second_config.bootstrap_token = None;
    let second = TestApp::spawn_with(second_config, Clock::default()).await;
    let c = cast(&first).await;
    // Financial, not personal, data: the SOX rule's CAB review is covered by the quorum, so the
    // slots stay the three CAB seats.
    first
        .target("credit-model", "mia", "production", "high", &["financial"])
        .await;
    let cab = cab_members(&first, &["cab1", "cab2", "cab3"]).await;
    let boss = first.user("boss", &["ciso", "vp_engineering"]).await;
    for round in 0..5 {
        // Quorum 3: three members race through alternating servers, plus one repeats.
        let high = first
            .submit_ok(
                &c.rita,
                change(
                    json!({"targets": ["credit-model"], "environment": "production",
                "impact": {"data": "high", "availability": "low", "compliance": "low"}}),
                ),
            )
            .await;
        let high_id = id(&high);
        let apps = [&first, &second, &first, &second];
        let voters = [&cab[0], &cab[1], &cab[2], &cab[0]];
        let mut tasks = Vec::new();
        for (app, voter) in apps.iter().zip(voters) {
            tasks.push(app.decide(voter, &high_id, "approve", "ok"));
        }
        let results = join_all(tasks).await;
        let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert_eq!(ok, 3, "round {round}: {results:?}");
        let (_, shown) = second
            .get(&format!("/api/v1/changes/{high_id}"), &c.rita)
            .await;
        assert_eq!(shown["state"], "approved");
        assert_eq!(
            shown["approvals"]["given"].as_array().map(Vec::len),
            Some(3)
        );
        let approvals_in_history = shown["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|h| {
                h["action"] == "change.approval_recorded" || h["action"] == "change.approved"
            })
            .count();
        assert_eq!(approvals_in_history, 3, "round {round}");

        // Emergency: one person holding both roles approves on both servers at once.
        let emergency = first
            .submit_ok(
                &c.rita,
                change(json!({"emergency": true, "justification": "outage of fraud scoring since 09:00"})),
            )
            .await;
        let eid = id(&emergency);
        let results = join_all(vec![
            first.decide(&boss, &eid, "approve", "a"),
            second.decide(&boss, &eid, "approve", "b"),
        ])
        .await;
        let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert_eq!(ok, 1, "round {round}: {results:?}");
        let (_, shown) = first.get(&format!("/api/v1/changes/{eid}"), &c.rita).await;
        assert_eq!(shown["state"], "pending_approval");
        assert_eq!(
            shown["approvals"]["given"].as_array().map(Vec::len),
            Some(1)
        );
    }
    // Both servers appended to one log: one gapless sequence whose tree matches the signed root.
    let (_, checkpoint) = second
        .get("/api/v1/audit/checkpoint", crate::helpers::ADMIN_TOKEN)
        .await;
    let size = checkpoint["size"].as_u64().expect("size");
    let leaves =
        crate::helpers::all_items(&first, "/api/v1/audit/leaves", crate::helpers::ADMIN_TOKEN)
            .await;
    let leaves: Vec<steward_audit::bundle::BundleLeaf> = leaves
        .into_iter()
        .take(size as usize)
        .map(|l| serde_json::from_value(l).expect("leaf"))
        .collect();
    let (_, key) = first
        .get("/api/v1/audit/public-key", crate::helpers::ADMIN_TOKEN)
        .await;
    let key = steward_audit::checkpoint::VerifierKey::parse(key["key"].as_str().expect("key"))
        .expect("key");
    let note = checkpoint["note"].as_str().expect("note").to_owned();
    let verified =
        steward_audit::bundle::verify(leaves, &[note], &key, None).expect("one consistent log");
    assert_eq!(verified.size, size);
    second.stop().await;
    first.stop().await;
}

both_backends!(
    a_normal_medium_risk_change_goes_to_the_owning_manager,
    a_high_risk_change_needs_a_cab_quorum_of_distinct_members,
    an_emergency_needs_both_ciso_and_vp_engineering_and_one_person_cannot_be_both,
    any_required_rejection_rejects_the_change,
    concurrent_approvals_through_two_servers_decide_once,
);
