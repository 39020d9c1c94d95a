use super::*;
use serde_json::json;
use steward_core::policy::Verdict;

fn module(path: &str, text: &str) -> Module {
    Module {
        path: path.into(),
        text: text.into(),
    }
}

#[test]
fn every_builtin_rule_has_tests_and_they_all_pass() {
    let modules = builtin_modules();
    let results = run_tests(&modules).expect("the pack parses");
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.name, r.failure.as_deref().unwrap_or("")))
        .collect();
    assert!(
        failed.is_empty(),
        "failing Rego tests:\n{}",
        failed.join("\n")
    );
    let set = PolicySet::new(modules).expect("the pack loads");
    for rule in set.rules() {
        let tests = results
            .iter()
            .filter(|r| r.name.contains(&format!(".{rule}_test.")))
            .count();
        assert!(tests >= 2, "rule {rule} has {tests} tests");
    }
    assert_eq!(set.rules().len(), 7);
}

fn change_input() -> Value {
    json!({
        "stage": "submission",
        "now": "2026-11-23T10:00:00Z",
        "change": {
            "id": "CHG-0", "title": "Promote churn v7", "description": "alias move",
            "category": "model-deployment", "environment": "production",
            "implementation_plan": "set alias champion to 7", "rollback_plan": "set alias champion to 6",
            "emergency": false, "justification": null, "window": null, "backup": null,
            "catalog_item": null, "links": []
        },
        "classification": {"type": "normal", "reason": "no catalog item"},
        "risk": {"score": 70, "level": "high", "factors": []},
        "requester": {"name": "rita", "roles": ["requester"]},
        "targets": [{"name": "churn", "kind": "model_deployment", "owner": "mia", "environment": "production",
                     "criticality": "high", "regulated": ["pii", "financial"], "parent": null}],
        "catalog_item": null,
        "required_approvals": [],
        "approvals": [],
        "schedule": {"outside_maintenance": [], "freezes": [], "conflicts": []}
    })
}

#[test]
fn the_builtin_pack_explains_each_verdict() {
    let set = PolicySet::new(builtin_modules()).expect("loads");
    let verdicts = set.evaluate(&change_input()).expect("evaluates");
    let by_rule = |name: &str| {
        verdicts
            .iter()
            .find(|v| v.rule == name)
            .unwrap_or_else(|| panic!("no verdict for {name}"))
    };
    let backup = by_rule("high_risk_rollback");
    assert_eq!(backup.verdict, Verdict::Deny);
    assert!(
        backup.deny[0].contains("backup.reference"),
        "{:?}",
        backup.deny
    );
    assert_eq!(backup.inputs["risk_level"], "high");
    assert_eq!(backup.controls.len(), 2);
    assert!(backup.title.is_some());
    let pii = by_rule("pii_compliance_approval");
    assert_eq!(pii.verdict, Verdict::Pass);
    assert_eq!(pii.approvals[0].role, steward_core::Role::ComplianceOfficer);
    assert_eq!(pii.inputs["pii_targets"], json!(["churn"]));
    let sox = by_rule("sox_financial_cab");
    assert_eq!(sox.approvals[0].role, steward_core::Role::CabMember);
    assert_eq!(by_rule("maintenance_window").verdict, Verdict::Warn);
    assert_eq!(by_rule("audit_logging_protected").verdict, Verdict::Pass);
}

#[test]
fn broken_rego_is_named_with_file_and_line() {
    let err = PolicySet::new(vec![module(
        "policies/bad.rego",
        "package steward.rules.bad\nimport rego.v1\n\ndeny contains msg if {\n  msg := \n}\n",
    )])
    .expect_err("does not parse");
    let text = err.to_string();
    assert!(text.contains("policies/bad.rego:"), "{text}");
    assert!(text.contains(":6:") || text.contains(":5:"), "{text}");

    // Parses, but calls a function that does not exist: refused at load, not on first use.
    let err = PolicySet::new(vec![module(
        "policies/unknown.rego",
        "package steward.rules.unknown\nimport rego.v1\n\ndeny contains msg if {\n  msg := no_such_function(input.x)\n}\n",
    )])
    .expect_err("does not compile");
    assert!(err.to_string().contains("policies/unknown.rego"), "{err}");
}

#[test]
fn version_follows_the_modules_and_tests_are_left_out() {
    let a = PolicySet::new(builtin_modules()).expect("loads");
    let b = PolicySet::new(builtin_modules()).expect("loads");
    assert_eq!(a.version(), b.version());
    assert!(a.version().starts_with("sha256:"));
    assert!(a.modules().iter().all(|m| !m.is_test()));
    let mut modules = builtin_modules();
    modules[0].text.push_str("\n# edited\n");
    let c = PolicySet::new(modules).expect("loads");
    assert_ne!(a.version(), c.version());
    // The same files read from another directory are the same set.
    let moved: Vec<Module> = builtin_modules()
        .into_iter()
        .map(|m| Module {
            path: m.path.replace("builtin/", "/etc/steward/policies/"),
            text: m.text,
        })
        .collect();
    assert_eq!(PolicySet::new(moved).expect("loads").version(), a.version());
}

#[test]
fn failing_and_erroring_tests_are_reported() {
    let results = run_tests(&[module(
        "t_test.rego",
        "package t\nimport rego.v1\n\ntest_ok if true\ntest_false if false\ntest_undefined if input.nothing\n",
    )])
    .expect("parses");
    let summary: Vec<(&str, bool)> = results
        .iter()
        .map(|r| (r.name.as_str(), r.passed))
        .collect();
    assert_eq!(
        summary,
        [
            ("data.t.test_ok", true),
            ("data.t.test_false", false),
            ("data.t.test_undefined", false)
        ]
    );
}

#[test]
fn bad_approval_roles_are_an_evaluation_error() {
    let set = PolicySet::new(vec![module(
        "r.rego",
        "package steward.rules.r\nimport rego.v1\napprovals contains {\"role\": \"boss\"} if true\n",
    )])
    .expect("loads");
    let err = set.evaluate(&json!({})).expect_err("unknown role");
    assert!(err.contains("boss"), "{err}");
}

#[test]
fn mistakes_in_rules_fail_closed_instead_of_passing() {
    // A deny written as a boolean rule is not a set of messages.
    let set = PolicySet::new(vec![module(
        "b.rego",
        "package steward.rules.b\nimport rego.v1\ndeny if input.x == 1\n",
    )])
    .expect("loads");
    let err = set.evaluate(&json!({"x": 1})).expect_err("not a set");
    assert!(err.contains("`deny` is true, but must be a set"), "{err}");
    assert!(
        set.evaluate(&json!({"x": 2}))
            .expect("undefined is fine")
            .iter()
            .all(|v| v.verdict == Verdict::Pass)
    );

    // A builtin that fails is an error, not a silently undefined deny.
    let set = PolicySet::new(vec![module(
        "t.rego",
        "package steward.rules.t\nimport rego.v1\ndeny contains \"old\" if time.parse_rfc3339_ns(input.at) < 0\n",
    )])
    .expect("loads");
    assert!(set.evaluate(&json!({"at": "not a time"})).is_err());
}

#[test]
fn a_set_knows_which_module_declares_which_package() {
    let mut modules = builtin_modules();
    modules.push(module(
        "tenant/board.rego",
        "package steward.rules.board\n\nimport rego.v1\n\nwarn contains \"x\" if false\n",
    ));
    let set = PolicySet::new(modules).expect("loads");
    assert_eq!(
        set.package_of("tenant/board.rego"),
        Some("steward.rules.board")
    );
    assert_eq!(
        set.path_declaring("steward.rules.sox_financial_cab"),
        Some("builtin/sox_financial_cab.rego")
    );
    assert_eq!(set.path_declaring("steward.rules.nothing"), None);
}
