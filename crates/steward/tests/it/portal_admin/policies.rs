//! The policies page: the policy set as `GET /api/v1/policy` has it, the test tool beside
//! `POST /api/v1/policy/evaluate`, and the backtest of a candidate module over stored inputs.

use super::{element, ids_with, signed_in};
use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDb, cast, change, id};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A change the built-in `audit_logging_protected` rule denies.
fn audit_logging_off() -> Value {
    change(
        json!({"title": "Hotfix the scorer", "implementation_plan": "disable the audit log, then redeploy"}),
    )
}

async fn the_policy_test_shows_the_verdicts_the_api_gives(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let requester = signed_in(&app, &c.rita).await;

    let page = requester.get("/admin/policies").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (_, set) = app.get("/api/v1/policy", &c.rita).await;
    assert!(element(&page, "policy-version").contains(set["version"].as_str().expect("version")));
    let rules: Vec<String> = set["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(ids_with(&page, "rule-"), rules);
    // Every module's source, read-only; the example names the tenant's own target.
    assert!(
        page.body
            .contains(r#"id="module-builtin-emergency_justification-rego""#)
    );
    assert!(
        page.body
            .contains("package steward.rules.emergency_justification")
    );
    assert!(element(&page, "test-change").contains("fraud-scoring"));
    // A requester does not read every change's policy input: no backtest.
    assert!(!page.body.contains(r#"id="policy-backtest""#));

    let document = audit_logging_off();
    let tested = requester
        .post(
            "/admin/policies/test",
            &[("csrf", &page.csrf()), ("change", &document.to_string())],
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    let (status, api) = app
        .post("/api/v1/policy/evaluate", &c.rita, document.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{api}");
    assert_eq!(api["denied"], true, "{api}");
    assert!(element(&tested, "test-verdict").contains("would be refused"));
    for rule in api["rules"].as_array().expect("rules") {
        let name = rule["rule"].as_str().expect("rule");
        let verdict = rule["verdict"].as_str().expect("verdict");
        let row = element(&tested, &format!("verdict-{name}"));
        assert!(
            row.contains(&format!(r#"class="adm-verdict-{verdict}""#)),
            "{name} is {verdict} in the API: {row}"
        );
        for message in rule["deny"].as_array().into_iter().flatten() {
            assert!(row.contains(message.as_str().expect("message")), "{row}");
        }
    }
    // What was tested stays in the form; a document that is no change request is a 422 page.
    assert!(element(&tested, "test-change").contains("Hotfix the scorer"));
    let broken = requester
        .post(
            "/admin/policies/test",
            &[("csrf", &page.csrf()), ("change", "{\"title\": 1")],
        )
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        element(&broken, "problem").contains("not JSON"),
        "{}",
        broken.body
    );
    let invalid = requester
        .post(
            "/admin/policies/test",
            &[
                ("csrf", &page.csrf()),
                ("change", "{\"title\": \"only a title\"}"),
            ],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        element(&invalid, "problem").contains("rollback_plan"),
        "{}",
        invalid.body
    );
    let no_csrf = requester
        .post("/admin/policies/test", &[("change", &document.to_string())])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn a_backtest_names_the_past_changes_a_candidate_would_deny(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let deployment = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let retrain = id(&app
        .submit_ok(&c.rita, change(json!({"category": "model-retrain"})))
        .await);
    let cora = app.user("cora", &["compliance_officer"]).await;
    let officer = signed_in(&app, &cora).await;
    let page = officer.get("/admin/policies").await;
    assert!(
        page.body.contains(r#"id="policy-backtest""#),
        "{}",
        page.body
    );

    let module = "package steward.rules.no_retraining\n\nimport rego.v1\n\ndeny contains \"no retraining this quarter\" if input.change.category == \"model-retrain\"\n";
    let tested = officer
        .post(
            "/admin/policies/backtest",
            &[
                ("csrf", &page.csrf()),
                ("name", "no_retraining"),
                ("source", module),
                ("since", "2020-01-01"),
            ],
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert!(
        tested.body.contains(r#"id="backtest-replayed">2</span>"#),
        "{}",
        tested.body
    );
    let row = element(&tested, &format!("changed-{retrain}"));
    assert!(
        row.contains(r#"class="adm-verdict-deny">deny</span></td>"#)
            && row.contains("no_retraining: no retraining this quarter"),
        "{row}"
    );
    assert!(
        !tested
            .body
            .contains(&format!(r#"id="changed-{deployment}""#)),
        "the deployment's verdict is unchanged: {}",
        tested.body
    );
    // The same inputs through the API: the retraining is among them, as the page replayed.
    let (_, inputs) = app
        .get("/api/v1/policy/inputs?since=2020-01-01T00:00:00Z", &cora)
        .await;
    assert_eq!(
        inputs["items"].as_array().map(Vec::len),
        Some(2),
        "{inputs}"
    );
    // Nothing was stored: the tenant's set is unchanged.
    let (_, set) = app.get("/api/v1/policy", &cora).await;
    assert!(!set["modules"].to_string().contains("no_retraining"));

    // A module that does not compile, or names another package, is the page's 422.
    let broken = officer
        .post(
            "/admin/policies/backtest",
            &[
                ("csrf", &page.csrf()),
                ("name", "no_retraining"),
                (
                    "source",
                    "package steward.rules.no_retraining\n\ndeny contains",
                ),
                ("since", "2020-01-01"),
            ],
        )
        .await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        broken.body
    );
    assert!(
        element(&broken, "problem").contains("source"),
        "{}",
        broken.body
    );
    // A requester may not read every change's policy input: 403, as the API answers.
    let requester = signed_in(&app, &c.rita).await;
    let theirs = requester.get("/admin/policies").await;
    let refused = requester
        .post(
            "/admin/policies/backtest",
            &[
                ("csrf", &theirs.csrf()),
                ("name", "no_retraining"),
                ("source", module),
                ("since", "2020-01-01"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("read_policy_inputs"),
        "{}",
        refused.body
    );
    app.stop().await;
}

both_backends!(
    the_policy_test_shows_the_verdicts_the_api_gives,
    a_backtest_names_the_past_changes_a_candidate_would_deny,
);
