//! Tenants (issue #15): an installation admin creates a tenant and its first admin, whose token
//! works at once and sees only its tenant; a tenant's own Rego module judges its changes and no
//! one else's; an audit export limited to a tenant verifies offline and carries nothing of the
//! other tenants but leaf hashes. Through the API and the `steward` binary, on both backends.

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, field_names, items, run_steward,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A tenant made for a test, with its first admin's token.
pub struct Tenant {
    pub name: String,
    pub admin: String,
    /// The tenant's second admin, who approves what its first admin asks (dual control).
    second: tokio::sync::OnceCell<String>,
}

impl Tenant {
    /// Creates tenant `name` (as the installation admin) with its admin `<name>-admin`.
    pub async fn create(app: &TestApp, name: &str) -> Tenant {
        let (status, body) = app
            .post(
                "/api/v1/tenants",
                ADMIN_TOKEN,
                json!({"name": name, "admin": format!("{name}-admin")}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "creating tenant {name}: {body}"
        );
        Tenant {
            name: name.to_owned(),
            admin: body["token"].as_str().expect("token").to_owned(),
            second: tokio::sync::OnceCell::new(),
        }
    }

    /// Approves, as the second admin, the operation a CLI answer says waits (`OP-n waits …`).
    pub async fn approve_waiting(&self, app: &TestApp, said: &str) {
        let id = said
            .split_whitespace()
            .find(|w| w.starts_with("OP-"))
            .unwrap_or_else(|| panic!("no waiting operation in: {said}"));
        let approver = self.second_admin(app).await.to_owned();
        app.approve_as(id, &approver).await;
    }

    /// The tenant's second admin, made as its bootstrap grant on first use.
    pub async fn second_admin(&self, app: &TestApp) -> &str {
        self.second
            .get_or_init(|| async {
                let name = format!("{}-second-admin", self.name);
                let (status, body) = app
                    .post(
                        "/api/v1/users",
                        &self.admin,
                        json!({"name": name, "roles": ["admin"]}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "bootstrap grant: {body}");
                body["token"].as_str().expect("token").to_owned()
            })
            .await
    }

    /// Creates an account in the tenant (its admin asks; a privileged role is approved by the
    /// tenant's second admin) and returns its token.
    pub async fn user(&self, app: &TestApp, name: &str, roles: &[&str]) -> String {
        let approver = self.second_admin(app).await.to_owned();
        let (status, body) = app
            .post(
                "/api/v1/users",
                &self.admin,
                json!({"name": name, "roles": roles}),
            )
            .await;
        let token = body["token"].as_str().expect("token").to_owned();
        match status {
            StatusCode::CREATED => token,
            StatusCode::ACCEPTED => {
                let waiting = body["pending_approval"].as_str().expect("operation id");
                app.approve_as(waiting, &approver).await;
                token
            }
            other => panic!("creating {name} in {}: {other} {body}", self.name),
        }
    }
}

fn names(page: &Value) -> Vec<String> {
    items(page)
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn json_out(run: &crate::helpers::Run) -> Value {
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

async fn tenant_create_prints_a_working_token_and_its_admin_sees_only_its_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let cast = cast(&app).await;
    app.submit_ok(&cast.rita, change(json!({}))).await;

    // JSON: `.token`, exactly as `user create` prints it.
    let created = json_out(&run_steward(
        &app.base,
        ADMIN_TOKEN,
        &[
            "tenant", "create", "risk", "--admin", "rhea", "--output", "json",
        ],
    ));
    assert_eq!(
        (&created["name"], &created["admin"]),
        (&json!("risk"), &json!("rhea"))
    );
    assert_eq!(created["roles"], json!(["admin"]));
    let rhea = created["token"].as_str().expect("token").to_owned();
    // Text: the token, once, said to be shown once.
    let text = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["tenant", "create", "retail", "--admin", "ron"],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("token: stw_") && text.stdout.contains("shown once"),
        "{}",
        text.stdout
    );

    // The token works at once, as the tenant's admin.
    let me = json_out(&run_steward(
        &app.base,
        &rhea,
        &["whoami", "--output", "json"],
    ));
    assert_eq!(
        (&me["name"], &me["roles"]),
        (&json!("rhea"), &json!(["admin"]))
    );
    // It sees its own tenant only: its users, no changes, no targets, its own catalog.
    let (_, users) = app.get("/api/v1/users", &rhea).await;
    assert_eq!(names(&users), ["rhea"]);
    let (_, changes) = app.get("/api/v1/changes", &rhea).await;
    assert!(items(&changes).is_empty(), "{changes}");
    let (_, targets) = app.get("/api/v1/targets", &rhea).await;
    assert!(items(&targets).is_empty(), "{targets}");
    let (_, catalog) = app.get("/api/v1/catalog", &rhea).await;
    let (_, shipped) = app.get("/api/v1/catalog", ADMIN_TOKEN).await;
    assert!(!items(&catalog).is_empty());
    assert_eq!(
        names(&catalog),
        names(&shipped),
        "the shipped catalog, seeded"
    );
    let shown = run_steward(&app.base, &rhea, &["change", "show", "CHG-1"]);
    assert_eq!(shown.code, 1);
    assert!(
        shown.stderr.contains("404") || shown.stderr.contains("no change"),
        "{}",
        shown.stderr
    );
    // And the installation's admin does not see the tenant's accounts either.
    let (status, _) = app.get("/api/v1/users/rhea", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/users/rita", &rhea).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Installation admins list and create tenants; a tenant's admin may not.
    let listed = json_out(&run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["tenant", "list", "--output", "json"],
    ));
    assert_eq!(names(&listed), ["default", "retail", "risk"]);
    assert_eq!(items(&listed)[2]["created_by"], "admin");
    let refused = run_steward(&app.base, &rhea, &["tenant", "list"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("manage_tenants") && refused.stderr.contains("installation"),
        "{}",
        refused.stderr
    );
    let (status, body) = app
        .post(
            "/api/v1/tenants",
            &rhea,
            json!({"name": "mine", "admin": "me"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["details"]["installation_only"], true);
    let (status, _) = app.get("/api/v1/tenants/risk", &rhea).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.get("/api/v1/tenants/risk", ADMIN_TOKEN).await;
    assert_eq!((status, &body["name"]), (StatusCode::OK, &json!("risk")));

    // Names are checked (every bad field at once), and a tenant exists once.
    let (status, body) = app
        .post(
            "/api/v1/tenants",
            ADMIN_TOKEN,
            json!({"name": "Risk Team", "admin": "steward"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), ["name", "admin"]);
    let duplicate = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["tenant", "create", "risk", "--admin", "rex"],
    );
    assert_eq!(duplicate.code, 1);
    assert!(
        duplicate.stderr.contains("already exists"),
        "{}",
        duplicate.stderr
    );

    // All audited: the installation says who created the tenant; the tenant's log how it began.
    let installation = app
        .store
        .tenant(&steward_core::TenantId::default_tenant())
        .audit_events_for("tenant", "risk")
        .await
        .expect("events");
    assert_eq!(installation.len(), 1);
    assert_eq!(
        (
            installation[0].action.as_str(),
            installation[0].actor.as_str()
        ),
        ("tenant.created", "admin")
    );
    let own = app
        .store
        .tenant(&steward_core::TenantId::parse("risk").expect("tenant"))
        .audit_events_for("user", "rhea")
        .await
        .expect("events");
    assert_eq!(own[0].action, "user.created");
    assert_eq!(own[0].details["requested_by"], "default:admin");
    app.stop().await;
}

const DENY_STAGING: &str = r#"package steward.rules.risk_no_staging_models

import rego.v1

title := "Risk: nothing reaches staging without the model board"

deny contains "risk sends staging changes through the model board" if {
	input.change.environment == "staging"
}
"#;

async fn a_tenants_rego_module_judges_its_changes_and_no_one_elses(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let cast = cast(&app).await;
    let risk = Tenant::create(&app, "risk").await;
    let requester = risk.user(&app, "rory", &["requester"]).await;
    risk.user(&app, "mona", &["manager"]).await;
    let (status, body) = app
        .post(
            "/api/v1/targets",
            &risk.admin,
            json!({"name": "fraud-scoring", "kind": "model_deployment", "owner": "mona",
                   "environment": "staging", "criticality": "low"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, before) = app.get("/api/v1/policy", &risk.admin).await;
    let (_, installation) = app.get("/api/v1/policy", ADMIN_TOKEN).await;
    assert_eq!(
        before["version"], installation["version"],
        "no modules of its own yet"
    );

    // Only its admins write modules; a broken one is refused with the Rego error.
    let dir = tempfile::tempdir().expect("dir");
    let broken = dir.path().join("broken.rego");
    std::fs::write(
        &broken,
        "package steward.rules.broken\n\ndeny contains msg if {\n  msg := \n}\n",
    )
    .expect("write");
    let refused = run_steward(
        &app.base,
        &risk.admin,
        &["policy", "module", "put", broken.to_str().expect("path")],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("422") || refused.stderr.contains("does not compile"),
        "{}",
        refused.stderr
    );
    let (status, body) = app
        .call(Method::PUT, "/api/v1/policy/modules/broken", Some(&risk.admin),
              Some(json!({"source": "package steward.rules.broken\n\ndeny contains msg if {\n  msg := \n}\n"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let said = body["details"]["fields"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        said.contains("tenant/broken.rego"),
        "the Rego error names the file and line: {said}"
    );
    // Reopening a built-in rule's package would read as the built-in rule: refused.
    let (status, body) = app
        .call(Method::PUT, "/api/v1/policy/modules/sneaky", Some(&risk.admin),
              Some(json!({"source": "package steward.rules.emergency_justification\n\nimport rego.v1\n\nwarn contains \"x\" if false\n"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/policy/modules/risk_no_staging_models",
            Some(&requester),
            Some(json!({"source": DENY_STAGING})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let file = dir.path().join("risk_no_staging_models.rego");
    std::fs::write(&file, DENY_STAGING).expect("write");
    let put = run_steward(
        &app.base,
        &risk.admin,
        &["policy", "module", "put", file.to_str().expect("path")],
    );
    assert_eq!(put.code, 0, "{}", put.stderr);
    // Policy waits for the tenant's second admin (dual control): nothing judges yet.
    let (_, waiting) = app.get("/api/v1/policy", &requester).await;
    assert_eq!(
        waiting["version"], installation["version"],
        "{}",
        put.stdout
    );
    risk.approve_waiting(&app, &put.stdout).await;
    let listed = json_out(&run_steward(
        &app.base,
        &requester,
        &["policy", "module", "list", "--output", "json"],
    ));
    assert_eq!(names(&listed), ["risk_no_staging_models"]);
    // Its policy set now holds the module, and its version says so.
    let (_, after) = app.get("/api/v1/policy", &requester).await;
    assert_ne!(after["version"], installation["version"]);
    assert!(
        after["modules"]
            .as_array()
            .expect("modules")
            .contains(&json!("tenant/risk_no_staging_models.rego")),
        "{after}"
    );
    assert!(
        after["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["name"] == "risk_no_staging_models")
    );

    // It denies the tenant's change, naming itself …
    let (status, denied) = app.submit(&requester, change(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    assert!(
        denied["error"]
            .as_str()
            .unwrap_or_default()
            .contains("model board"),
        "{denied}"
    );
    assert_eq!(denied["details"]["policy"]["policy_set"], after["version"]);
    // … and judges no one else's: the same change passes in the installation tenant.
    app.submit_ok(&cast.rita, change(json!({}))).await;
    let (_, default_set) = app.get("/api/v1/policy", &cast.rita).await;
    assert!(
        !default_set["modules"].to_string().contains("tenant/"),
        "{default_set}"
    );
    // Another tenant's admin does not see it, and cannot delete it.
    let retail = Tenant::create(&app, "retail").await;
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/policy/modules/risk_no_staging_models",
            Some(&retail.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = app.get("/api/v1/policy/modules", &retail.admin).await;
    assert!(items(&theirs).is_empty(), "{theirs}");

    // Deleted, it judges nothing any more.
    let deleted = run_steward(
        &app.base,
        &risk.admin,
        &["policy", "module", "delete", "risk_no_staging_models"],
    );
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    risk.approve_waiting(&app, &deleted.stdout).await;
    app.submit_ok(&requester, change(json!({}))).await;
    let events = app
        .store
        .tenant(&steward_core::TenantId::parse("risk").expect("tenant"))
        .audit_events_for("policy_module", "risk_no_staging_models")
        .await
        .expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["policy.module_created", "policy.module_deleted"]);
    assert_eq!(events[0].details["after"]["source"], DENY_STAGING);
    app.stop().await;
}

/// The leaves of an export directory.
fn exported(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("entries.jsonl"))
        .expect("entries")
        .lines()
        .map(|l| serde_json::from_str(l).expect("leaf"))
        .collect()
}

/// Checks an export limited to `tenant`: every entry shown is the tenant's, every other leaf is
/// a hash alone, and nothing of the installation tenant's cast is in it.
fn limited_to(leaves: &[Value], tenant: &str) {
    let (shown, withheld): (Vec<&Value>, Vec<&Value>) =
        leaves.iter().partition(|l| l["entry"].is_string());
    assert!(!shown.is_empty() && !withheld.is_empty());
    let marker = format!("\"tenant\":\"{tenant}\"");
    for leaf in &shown {
        assert!(
            leaf["entry"].as_str().expect("entry").contains(&marker),
            "{leaf}"
        );
    }
    for leaf in &withheld {
        let keys: Vec<&String> = leaf.as_object().expect("leaf").keys().collect();
        assert!(
            !keys.contains(&&"entry".to_owned()) || leaf["entry"].is_null(),
            "{leaf}"
        );
        assert!(leaf["leaf_hash"].is_string(), "{leaf}");
    }
    let text = serde_json::to_string(leaves).expect("json");
    for other in ["rita", "fraud-scoring", "CHG-1", "default"] {
        assert!(!text.contains(other), "the export carries {other}");
    }
}

async fn a_tenant_limited_export_verifies_and_carries_no_other_tenants_details(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let cast = cast(&app).await;
    app.submit_ok(&cast.rita, change(json!({}))).await;
    let risk = Tenant::create(&app, "risk").await;
    let auditor = risk.user(&app, "ada", &["auditor"]).await;
    risk.user(&app, "rory", &["requester"]).await;
    // More of the installation tenant's after the tenant's own, so withheld leaves sit on both sides.
    app.user("olga", &["compliance_officer"]).await;
    let (_, key) = app.get("/api/v1/audit/public-key", ADMIN_TOKEN).await;
    let key = key["key"].as_str().expect("key").to_owned();
    let dir = tempfile::tempdir().expect("dir");

    // The tenant's auditor exports its own view: it verifies offline, with the others' leaves
    // as hashes only.
    let own = dir.path().join("risk");
    let export = run_steward(
        &app.base,
        &auditor,
        &["audit", "export", "--out", own.to_str().expect("path")],
    );
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(
        export.stdout.contains("as leaf hashes only"),
        "{}",
        export.stdout
    );
    let verified = run_steward(
        &app.base,
        "",
        &[
            "audit",
            "verify",
            "--bundle",
            own.to_str().expect("path"),
            "--public-key",
            &key,
        ],
    );
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    assert!(
        verified.stdout.starts_with("verified: ")
            && verified.stdout.contains("as leaf hashes only"),
        "{}",
        verified.stdout
    );
    limited_to(&exported(&own), "risk");
    // Altering one of the tenant's own entries fails the verification.
    let mut tampered: Vec<Value> = exported(&own);
    let at = tampered
        .iter()
        .position(|l| l["entry"].is_string())
        .expect("a shown entry");
    let entry = tampered[at]["entry"]
        .as_str()
        .expect("entry")
        .replace("rhea", "eve")
        .replace("risk-admin", "eve");
    tampered[at]["entry"] = json!(entry);
    tampered[at]["leaf_hash"] = Value::Null;
    let lines: Vec<String> = tampered.iter().map(Value::to_string).collect();
    std::fs::write(own.join("entries.jsonl"), lines.join("\n") + "\n").expect("write");
    let failed = run_steward(
        &app.base,
        "",
        &[
            "audit",
            "verify",
            "--bundle",
            own.to_str().expect("path"),
            "--public-key",
            &key,
        ],
    );
    assert_eq!(failed.code, 1, "{}", failed.stdout);

    // It cannot widen its view, nor prove the installation's events by id.
    let widened = run_steward(
        &app.base,
        &auditor,
        &[
            "audit",
            "export",
            "--out",
            dir.path().join("x").to_str().expect("path"),
            "--tenant",
            "default",
        ],
    );
    assert_eq!(widened.code, 1);
    assert!(
        widened.stderr.contains("reads only tenant risk"),
        "{}",
        widened.stderr
    );
    let rita_event = app
        .store
        .tenant(&steward_core::TenantId::default_tenant())
        .audit_events_for("change", "CHG-1")
        .await
        .expect("events")[0]
        .event_id
        .clone();
    let (status, _) = app
        .get(
            &format!("/api/v1/audit/proofs/inclusion?event_id={rita_event}"),
            &auditor,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/v1/audit/leaves?limit=500", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.to_string().contains("rita"), "{body}");

    // The installation's auditor limits an export to the tenant the same way.
    let installation_auditor = app.user("ida", &["auditor"]).await;
    let for_risk = dir.path().join("for-risk");
    let export = run_steward(
        &app.base,
        &installation_auditor,
        &[
            "audit",
            "export",
            "--out",
            for_risk.to_str().expect("path"),
            "--tenant",
            "risk",
        ],
    );
    assert_eq!(export.code, 0, "{}", export.stderr);
    let verified = run_steward(
        &app.base,
        "",
        &[
            "audit",
            "verify",
            "--bundle",
            for_risk.to_str().expect("path"),
            "--public-key",
            &key,
        ],
    );
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    limited_to(&exported(&for_risk), "risk");
    let unknown = run_steward(
        &app.base,
        &installation_auditor,
        &[
            "audit",
            "export",
            "--out",
            dir.path().join("y").to_str().expect("path"),
            "--tenant",
            "nosuch",
        ],
    );
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no tenant 'nosuch'"),
        "{}",
        unknown.stderr
    );
    // Unlimited, it sees every entry in full.
    let all = dir.path().join("all");
    let export = run_steward(
        &app.base,
        &installation_auditor,
        &["audit", "export", "--out", all.to_str().expect("path")],
    );
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(exported(&all).iter().all(|l| l["entry"].is_string()));
    let verified = run_steward(
        &app.base,
        "",
        &[
            "audit",
            "verify",
            "--bundle",
            all.to_str().expect("path"),
            "--public-key",
            &key,
        ],
    );
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        !verified.stdout.contains("leaf hashes only"),
        "{}",
        verified.stdout
    );

    // Erasure and holds stay within the tenant; retention is the installation's.
    let (status, _) = app
        .post(
            "/api/v1/audit/subjects/rita/erase",
            &risk.admin,
            json!({"basis": "GDPR Art. 17"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/audit/subjects/rita/hold",
            Some(&risk.admin),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post("/api/v1/audit/retention", &risk.admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["details"]["installation_only"], true);
    app.stop().await;
}

both_backends!(
    tenant_create_prints_a_working_token_and_its_admin_sees_only_its_tenant,
    a_tenants_rego_module_judges_its_changes_and_no_one_elses,
    a_tenant_limited_export_verifies_and_carries_no_other_tenants_details,
);
