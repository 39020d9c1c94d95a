//! The authorization matrix: every route of the running server, called as every role.
//!
//! The route table is the server's own OpenAPI document, so a route added without a row in
//! [`ROWS`] fails `every_route_has_a_row`. Each row names the permission the route needs (one of
//! `steward_server::auth::PERMISSIONS`, which says which roles hold it), or says the route is
//! public or authenticated by a webhook signature. For each role the test expects: a role that
//! holds the permission passes authorization (anything but 401, 5xx, or a 403 naming the
//! permission — a 403 from the change's own segregation rules is a decision, not authorization);
//! every other role gets 403 naming the permission. The same table renders `docs/authorization.md`,
//! and the test fails when the published file differs (regenerate with
//! `STEWARD_WRITE_DOCS=1 cargo nextest run -p steward --test it authz`).

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use steward_core::Role;
use steward_server::auth::PERMISSIONS;

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// No token needed.
    Public,
    /// Any authenticated account (the answer reveals nothing beyond the caller's own tenant).
    Authenticated,
    /// Authenticated by the sender's signature or shared secret, not by a role.
    Webhook,
    /// Needs this permission (by its name in `PERMISSIONS`).
    Permission(&'static str),
}

/// One route: method, path template, access, a request body that parses (so a refused caller
/// is refused for its role, not for its body).
struct Row {
    method: &'static str,
    path: &'static str,
    access: Access,
    body: fn() -> Option<Value>,
}

const fn row(method: &'static str, path: &'static str, access: Access) -> Row {
    Row {
        method,
        path,
        access,
        body: no_body,
    }
}

const fn with(
    method: &'static str,
    path: &'static str,
    access: Access,
    body: fn() -> Option<Value>,
) -> Row {
    Row {
        method,
        path,
        access,
        body,
    }
}

fn no_body() -> Option<Value> {
    None
}
fn empty() -> Option<Value> {
    Some(json!({}))
}
fn comment() -> Option<Value> {
    Some(json!({"comment": "matrix"}))
}
fn note() -> Option<Value> {
    Some(json!({"note": "matrix"}))
}
fn reason() -> Option<Value> {
    Some(json!({"reason": "matrix"}))
}

use Access::*;

const ROWS: &[Row] = &[
    row("GET", "/healthz", Public),
    row("GET", "/readyz", Public),
    row("GET", "/api/v1/whoami", Authenticated),
    with("POST", "/api/v1/users", Permission("manage_users"), || {
        Some(json!({"name": "matrix-user", "roles": ["requester"]}))
    }),
    row("GET", "/api/v1/users", Permission("read_records")),
    row("GET", "/api/v1/users/{name}", Permission("read_records")),
    with(
        "POST",
        "/api/v1/targets",
        Permission("manage_targets"),
        || {
            Some(
                json!({"name": "matrix-target", "kind": "model_deployment", "owner": "mia", "environment": "staging", "criticality": "low"}),
            )
        },
    ),
    row("GET", "/api/v1/targets", Permission("read_records")),
    row("GET", "/api/v1/targets/{name}", Permission("read_records")),
    row("GET", "/api/v1/catalog", Permission("read_records")),
    with(
        "PUT",
        "/api/v1/catalog/{name}",
        Permission("manage_catalog"),
        || Some(json!({"name": "matrix", "description": "matrix", "max_impact": "low"})),
    ),
    with(
        "POST",
        "/api/v1/changes",
        Permission("submit_changes"),
        || Some(change(json!({}))),
    ),
    row("GET", "/api/v1/changes", Permission("read_records")),
    row("GET", "/api/v1/changes/{id}", Permission("read_records")),
    with(
        "POST",
        "/api/v1/changes/{id}/approve",
        Permission("approve_changes"),
        comment,
    ),
    with(
        "POST",
        "/api/v1/changes/{id}/reject",
        Permission("approve_changes"),
        comment,
    ),
    row(
        "POST",
        "/api/v1/changes/{id}/submit",
        Permission("submit_changes"),
    ),
    with(
        "POST",
        "/api/v1/changes/{id}/transitions",
        Permission("implement_changes"),
        || Some(json!({"step": "implement"})),
    ),
    with(
        "POST",
        "/api/v1/changes/{id}/rollback",
        Permission("implement_changes"),
        reason,
    ),
    with(
        "POST",
        "/api/v1/changes/{id}/window-override",
        Permission("approve_changes"),
        reason,
    ),
    with(
        "POST",
        "/api/v1/changes/{id}/obligations/{name}",
        Permission("fulfil_obligations"),
        note,
    ),
    row(
        "GET",
        "/api/v1/changes/{id}/gate",
        Permission("read_records"),
    ),
    row("GET", "/api/v1/notifications", Permission("read_records")),
    with(
        "POST",
        "/api/v1/integrations/alertmanager",
        Permission("send_signals"),
        || Some(json!({"version": "4", "status": "firing", "alerts": []})),
    ),
    with(
        "POST",
        "/api/v1/integrations/pagerduty/v2/enqueue",
        Permission("send_signals"),
        empty,
    ),
    with(
        "POST",
        "/api/v1/integrations/pagerduty/v2/change/enqueue",
        Permission("send_signals"),
        empty,
    ),
    with(
        "POST",
        "/api/v1/integrations/github/deployment-protection",
        Webhook,
        empty,
    ),
    with(
        "POST",
        "/api/v1/integrations/gitlab/deployments",
        Webhook,
        empty,
    ),
    row("GET", "/api/v1/incidents", Permission("read_records")),
    with(
        "POST",
        "/api/v1/incidents",
        Permission("handle_incidents"),
        || Some(json!({"title": "matrix", "severity": "sev3", "targets": ["fraud-scoring"]})),
    ),
    row("GET", "/api/v1/incidents/{id}", Permission("read_records")),
    with(
        "POST",
        "/api/v1/incidents/{id}/actions",
        Permission("handle_incidents"),
        || Some(json!({"action": "acknowledge"})),
    ),
    with(
        "POST",
        "/api/v1/incidents/{id}/containment",
        Permission("handle_incidents"),
        || Some(json!({"actions": []})),
    ),
    with(
        "POST",
        "/api/v1/incidents/{id}/containment/approve",
        Permission("approve_containment"),
        comment,
    ),
    with(
        "POST",
        "/api/v1/incidents/{id}/review",
        Permission("handle_incidents"),
        || Some(json!({"what_happened": "matrix", "why": "matrix"})),
    ),
    row(
        "GET",
        "/api/v1/incident-metrics",
        Permission("read_records"),
    ),
    with(
        "PUT",
        "/api/v1/detectors/{name}",
        Permission("keep_detectors"),
        || Some(json!({"metric": "matrix", "config": {"detector": "robust_z"}})),
    ),
    row("GET", "/api/v1/detectors", Permission("read_records")),
    with(
        "PUT",
        "/api/v1/playbooks/{name}",
        Permission("keep_detectors"),
        || Some(json!({"actions": []})),
    ),
    with(
        "PUT",
        "/api/v1/problems/{name}",
        Permission("handle_incidents"),
        || Some(json!({"title": "matrix"})),
    ),
    row("GET", "/api/v1/problems/{name}", Permission("read_records")),
    with(
        "POST",
        "/api/v1/problems/{name}/fix",
        Permission("handle_incidents"),
        || Some(json!({"change": "CHG-1"})),
    ),
    row("GET", "/api/v1/models", Permission("read_records")),
    row("GET", "/api/v1/models/{name}", Permission("read_records")),
    with(
        "PUT",
        "/api/v1/models/{name}",
        Permission("attest_models"),
        empty,
    ),
    with(
        "POST",
        "/api/v1/models/{name}/versions",
        Permission("register_versions"),
        || Some(json!({"version": "1", "artifact_uri": "s3://m/1"})),
    ),
    row(
        "GET",
        "/api/v1/inventory/templates",
        Permission("read_records"),
    ),
    with(
        "PUT",
        "/api/v1/inventory/templates",
        Permission("keep_templates"),
        empty,
    ),
    with(
        "POST",
        "/api/v1/inventory/scans",
        Permission("record_scans"),
        || Some(json!({"sources": []})),
    ),
    row("GET", "/api/v1/inventory/scans", Permission("read_records")),
    row(
        "GET",
        "/api/v1/inventory/scans/{id}",
        Permission("read_records"),
    ),
    row(
        "GET",
        "/api/v1/inventory/reconciliation",
        Permission("read_records"),
    ),
    row(
        "GET",
        "/api/v1/inventory/deployments",
        Permission("read_records"),
    ),
    row(
        "GET",
        "/api/v1/inventory/datasets",
        Permission("read_records"),
    ),
    row("GET", "/api/v1/inventory/runs", Permission("read_records")),
    row(
        "GET",
        "/api/v1/inventory/report",
        Permission("read_records"),
    ),
    row(
        "GET",
        "/api/v1/inventory/export",
        Permission("read_records"),
    ),
    with(
        "POST",
        "/api/v1/metrics",
        Permission("push_metrics"),
        || Some(json!({"name": "matrix", "value": 1})),
    ),
    row(
        "GET",
        "/api/v1/metrics?name=matrix",
        Permission("read_records"),
    ),
    row("GET", "/api/v1/policy", Authenticated),
    with("POST", "/api/v1/policy/evaluate", Authenticated, || {
        Some(change(json!({})))
    }),
    row(
        "GET",
        "/api/v1/policy/inputs?since=2020-01-01T00:00:00Z",
        Permission("read_policy_inputs"),
    ),
    with(
        "POST",
        "/api/v1/windows",
        Permission("keep_calendar"),
        || {
            Some(
                json!({"name": "matrix", "kind": "freeze", "scope": "everywhere", "timezone": "UTC", "starts": "2030-01-01T00:00", "ends": "2030-01-02T00:00", "reason": "matrix"}),
            )
        },
    ),
    row("GET", "/api/v1/windows", Permission("read_records")),
    row("GET", "/api/v1/windows/{name}", Permission("read_records")),
    row(
        "DELETE",
        "/api/v1/windows/{name}",
        Permission("keep_calendar"),
    ),
    row("GET", "/api/v1/calendar.ics", Permission("read_records")),
    row(
        "GET",
        "/api/v1/audit/public-key",
        Permission("read_audit_log"),
    ),
    row(
        "GET",
        "/api/v1/audit/checkpoint",
        Permission("read_audit_log"),
    ),
    row(
        "GET",
        "/api/v1/audit/checkpoints",
        Permission("read_audit_log"),
    ),
    row("GET", "/api/v1/audit/leaves", Permission("read_audit_log")),
    row(
        "GET",
        "/api/v1/audit/proofs/inclusion?index=0",
        Permission("read_audit_log"),
    ),
    row(
        "GET",
        "/api/v1/audit/proofs/consistency?first=1",
        Permission("read_audit_log"),
    ),
    with(
        "POST",
        "/api/v1/audit/subjects/{user}/erase",
        Permission("erase_personal_data"),
        || Some(json!({"basis": "matrix"})),
    ),
    with(
        "PUT",
        "/api/v1/audit/subjects/{user}/hold",
        Permission("erase_personal_data"),
        reason,
    ),
    with(
        "DELETE",
        "/api/v1/audit/subjects/{user}/hold",
        Permission("erase_personal_data"),
        reason,
    ),
    row(
        "POST",
        "/api/v1/audit/retention",
        Permission("manage_retention"),
    ),
];

/// The roles a row's access admits (all of them for public and authenticated routes, none for
/// webhooks, which no token opens).
fn admitted(access: Access) -> BTreeSet<Role> {
    match access {
        Public | Authenticated => Role::ALL.into_iter().collect(),
        Webhook => BTreeSet::new(),
        Permission(name) => {
            let (_, roles, people_only, _) = PERMISSIONS
                .iter()
                .find(|(n, ..)| *n == name)
                .unwrap_or_else(|| panic!("no permission named {name}"));
            roles
                .iter()
                .copied()
                .filter(|r| !(*people_only && r.is_service_account()))
                .collect()
        }
    }
}

fn template(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The route's path with its parameters filled: a change, an incident and names that exist.
fn concrete(path: &str) -> String {
    path.replace("/changes/{id}", "/changes/CHG-1")
        .replace("/incidents/{id}", "/incidents/INC-1")
        .replace("/scans/{id}", "/scans/none")
        .replace("{user}", "nobody")
        .replace("{name}", "matrix")
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("method")
}

async fn every_route_has_a_row(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let (status, openapi) = app.get("/api/v1/openapi.json", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let mut routes = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for verb in ["get", "post", "put", "delete", "patch"] {
            if item.get(verb).is_some() {
                routes.insert((verb.to_uppercase(), path.clone()));
            }
        }
    }
    let rows: BTreeSet<(String, String)> = ROWS
        .iter()
        .map(|r| (r.method.to_owned(), template(r.path).to_owned()))
        .collect();
    let missing: Vec<_> = routes.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization matrix (crates/steward/tests/it/authz.rs): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );
    app.stop().await;
}

async fn every_role_gets_exactly_what_its_permissions_allow(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // Something to act on: CHG-1 pending approval, INC-1 open.
    app.submit_ok(&c.rita, change(json!({}))).await;
    let (status, body) = app
        .post(
            "/api/v1/incidents",
            &c.mia,
            json!({"title": "matrix", "severity": "sev3", "targets": ["fraud-scoring"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let name = format!("as-{}", role.as_str().replace('_', "-"));
        tokens.push((role, app.user(&name, &[role.as_str()]).await));
    }
    let mut wrong = Vec::new();
    for row in ROWS {
        let path = concrete(row.path);
        let allowed = admitted(row.access);
        for (role, token) in &tokens {
            let token = match row.access {
                Public => None,
                _ => Some(token.as_str()),
            };
            let (status, body) = app
                .call(method(row.method), &path, token, (row.body)())
                .await;
            let refused_for_role =
                status == StatusCode::FORBIDDEN && body["details"]["permission"].is_string();
            let ok = match row.access {
                Webhook => matches!(
                    status,
                    StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
                ),
                Permission(name) if !allowed.contains(role) => {
                    refused_for_role && body["details"]["permission"] == name
                }
                _ => {
                    !refused_for_role
                        && status != StatusCode::UNAUTHORIZED
                        && !status.is_server_error()
                }
            };
            if !ok {
                wrong.push(format!(
                    "{} {} as {role}: {status} {body}",
                    row.method, row.path
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Without a token, nothing but the public routes answers.
    for row in ROWS
        .iter()
        .filter(|r| matches!(r.access, Permission(_) | Authenticated))
    {
        let (status, _) = app
            .call(method(row.method), &concrete(row.path), None, (row.body)())
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            row.method,
            row.path
        );
    }
    app.stop().await;
}

/// The matrix as published in `docs/authorization.md`.
fn render() -> String {
    let mut out = String::from(
        "# Authorization matrix\n\n\
         Generated from the route table by `crates/steward/tests/it/authz.rs`, which also calls every\n\
         route as every role and checks each cell; do not edit by hand (regenerate with\n\
         `STEWARD_WRITE_DOCS=1 cargo nextest run -p steward --test it authz`).\n\n\
         Service accounts (`pipeline`, `monitor`) never hold a permission marked *people only*,\n\
         whatever other roles the account has. Holding a permission passes the role check; the\n\
         change itself still decides (segregation of duties: a requester never approves or\n\
         implements their own change, one person fills one slot).\n\n## Permissions\n\n\
         | permission | people only | roles | allows |\n|---|---|---|---|\n",
    );
    for (name, roles, people_only, meaning) in PERMISSIONS {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        out.push_str(&format!(
            "| `{name}` | {} | {} | {meaning} |\n",
            if *people_only { "yes" } else { "" },
            roles.join(", ")
        ));
    }
    out.push_str("\n## Routes\n\n| route | needs |");
    for role in Role::ALL {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    for row in ROWS {
        let needs = match row.access {
            Public => "public".to_owned(),
            Authenticated => "any account".to_owned(),
            Webhook => "webhook signature".to_owned(),
            Permission(name) => format!("`{name}`"),
        };
        out.push_str(&format!(
            "| `{} {}` | {needs} |",
            row.method,
            template(row.path)
        ));
        let allowed = admitted(row.access);
        for role in Role::ALL {
            out.push_str(if allowed.contains(&role) {
                " ✓ |"
            } else {
                " |"
            });
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_published_matrix_is_the_tested_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/authorization.md");
    let rendered = render();
    if std::env::var_os("STEWARD_WRITE_DOCS").is_some() {
        std::fs::write(&path, &rendered).expect("write docs/authorization.md");
        return;
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == rendered,
        "docs/authorization.md is out of date: run `STEWARD_WRITE_DOCS=1 cargo nextest run -p steward --test it authz` and commit it"
    );
}

both_backends!(
    every_route_has_a_row,
    every_role_gets_exactly_what_its_permissions_allow,
);
