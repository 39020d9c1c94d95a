//! The tenant dimension of the authorization matrix: tenants never see each other's records.
//!
//! Tenant A is the installation tenant with the matrix's [`World`]; tenant B is created beside it
//! with its admin and an account per role. For every route with a record in its path, [`ACROSS`]
//! says what a caller of tenant B who holds the route's permission gets when the path names
//! tenant A's record: 404, exactly as for a record that does not exist (existence is not
//! revealed); or, where the path names what the call writes in the caller's own tenant (a `PUT`
//! by name), success there with tenant A's record untouched (409 where only one tenant may hold
//! it: a provider group's mapping); or, for a permission only the installation tenant's accounts
//! hold, 403. A route with a record in its path and no entry here
//! fails the test, as a route without a row fails the matrix. Every list (and every other read
//! without a record in its path) called by tenant B must not mention tenant A's records. The
//! CLI's record commands are run the same way, with tenant B's tokens on tenant A's records.

use super::fixtures::{Cell, World};
use super::{Access, ROWS, Row, admitted, method, template};
use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, run_steward};
use crate::tenants::Tenant;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use steward_core::Role;

/// What a caller of tenant B, holding a route's permission, gets on tenant A's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Across {
    /// 404, as if the record did not exist.
    NotFound,
    /// The path names what the call writes in the caller's own tenant: success there, and
    /// tenant A's record of that name is untouched.
    OwnRecord,
    /// Only the installation tenant's accounts hold the permission: 403.
    InstallationOnly,
    /// The path names what the call writes in the caller's own tenant, but only one tenant may
    /// hold it and tenant A does (a provider group's mapping): 409 naming no tenant, and tenant
    /// A's record untouched.
    HeldByOneTenant,
}

use Across::*;

/// Every route with a record in its path (`{id}`, `{name}`, `{user}`), by method and template.
#[rustfmt::skip] // Laid out by hand, so the table reads as a table.
const ACROSS: &[(&str, &str, Across)] = &[
    ("GET", "/api/v1/users/{name}", NotFound),
    ("POST", "/api/v1/users/{name}/disable", NotFound),
    ("POST", "/api/v1/users/{name}/enable", NotFound),
    ("PUT", "/api/v1/users/{name}/roles", NotFound),
    ("POST", "/api/v1/users/{name}/tokens", NotFound),
    ("POST", "/api/v1/users/{name}/tokens/revoke", NotFound),
    ("GET", "/api/v1/targets/{name}", NotFound),
    ("PUT", "/api/v1/catalog/{name}", OwnRecord),
    ("GET", "/api/v1/admin/pending/{id}", NotFound),
    ("POST", "/api/v1/admin/pending/{id}/approve", NotFound),
    ("POST", "/api/v1/admin/pending/{id}/reject", NotFound),
    ("GET", "/api/v1/changes/{id}", NotFound),
    ("POST", "/api/v1/changes/{id}/approve", NotFound),
    ("POST", "/api/v1/changes/{id}/reject", NotFound),
    ("POST", "/api/v1/changes/{id}/submit", NotFound),
    ("POST", "/api/v1/changes/{id}/transitions", NotFound),
    ("POST", "/api/v1/changes/{id}/rollback", NotFound),
    ("POST", "/api/v1/changes/{id}/window-override", NotFound),
    ("POST", "/api/v1/changes/{id}/deployments", NotFound),
    ("POST", "/api/v1/changes/{id}/obligations/{name}", NotFound),
    ("GET", "/api/v1/changes/{id}/gate", NotFound),
    ("GET", "/api/v1/incidents/{id}", NotFound),
    ("POST", "/api/v1/incidents/{id}/actions", NotFound),
    ("POST", "/api/v1/incidents/{id}/containment", NotFound),
    ("POST", "/api/v1/incidents/{id}/containment/approve", NotFound),
    ("POST", "/api/v1/incidents/{id}/review", NotFound),
    ("PUT", "/api/v1/detectors/{name}", OwnRecord),
    ("PUT", "/api/v1/playbooks/{name}", OwnRecord),
    ("PUT", "/api/v1/problems/{name}", OwnRecord),
    ("GET", "/api/v1/problems/{name}", NotFound),
    ("POST", "/api/v1/problems/{name}/fix", NotFound),
    ("GET", "/api/v1/models/{name}", NotFound),
    // Attesting states fields of a model that exists; creating one is `?create=true`.
    ("PUT", "/api/v1/models/{name}", NotFound),
    // Registering a version creates the model in the caller's tenant when it has none.
    ("POST", "/api/v1/models/{name}/versions", OwnRecord),
    ("GET", "/api/v1/inventory/scans/{id}", NotFound),
    ("GET", "/api/v1/windows/{name}", NotFound),
    ("DELETE", "/api/v1/windows/{name}", NotFound),
    ("POST", "/api/v1/audit/subjects/{user}/erase", NotFound),
    ("PUT", "/api/v1/audit/subjects/{user}/hold", NotFound),
    ("DELETE", "/api/v1/audit/subjects/{user}/hold", NotFound),
    ("GET", "/api/v1/policy/modules/{name}", NotFound),
    ("PUT", "/api/v1/policy/modules/{name}", OwnRecord),
    ("DELETE", "/api/v1/policy/modules/{name}", NotFound),
    ("GET", "/api/v1/tenants/{name}", InstallationOnly),
    ("POST", "/api/v1/tenants/{name}/pending/{id}/approve", InstallationOnly),
    ("PUT", "/api/v1/groups/{name}", HeldByOneTenant),
    ("DELETE", "/api/v1/groups/{name}", NotFound),
    ("GET", "/changes/{id}", NotFound),
    ("GET", "/models/{name}", NotFound),
    ("POST", "/changes/{id}/decision", NotFound),
    ("POST", "/changes/{id}/submit", NotFound),
    ("POST", "/admin/users/{name}/roles", NotFound),
    ("POST", "/admin/users/{name}/disable", NotFound),
    ("POST", "/admin/users/{name}/enable", NotFound),
    ("POST", "/admin/pending/{id}/approve", NotFound),
    ("POST", "/admin/pending/{id}/reject", NotFound),
    ("GET", "/incidents/{id}", NotFound),
    ("POST", "/incidents/{id}/containment/approve", NotFound),
    // Leaf 0 is the installation's first event: tenant B's reader sees it withheld, no page.
    ("GET", "/audit/{index}", NotFound),
];

/// Words only tenant A's records hold: its people, target, problem, window, model, scan, module.
const TENANT_A: &[&str] = &[
    "rita",
    "fraud-scoring",
    "matrix-problem",
    "matrix-window",
    "matrix-model",
    "as-requester",
    "files:matrix",
    super::fixtures::MODULE,
    super::fixtures::GROUP,
];

fn has_record(path: &str) -> bool {
    template(path).contains('{')
}

fn across(row: &Row) -> Option<Across> {
    ACROSS
        .iter()
        .find(|(m, p, _)| *m == row.method && *p == template(row.path))
        .map(|(.., a)| *a)
}

/// Tenant B: its admin and an account per role (`b-<role>`), by their tokens.
struct TenantB {
    accounts: Vec<(Role, String)>,
}

impl TenantB {
    async fn build(app: &TestApp) -> TenantB {
        let tenant = Tenant::create(app, "tenant-b").await;
        let mut accounts = Vec::new();
        for role in Role::ALL {
            let token = match role {
                Role::Admin => tenant.admin.clone(),
                _ => {
                    let name = format!("b-{}", super::fixtures::dashed(role));
                    tenant.user(app, &name, &[role.as_str()]).await
                }
            };
            accounts.push((role, token));
        }
        TenantB { accounts }
    }

    fn token(&self, role: Role) -> &str {
        self.accounts
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, t)| t.as_str())
            .expect("an account per role")
    }

    /// Who calls `row` in tenant B: its admin when it holds the permission, else the first
    /// role that does (any account for public and authenticated routes).
    fn caller(&self, row: &Row) -> Option<(Role, &str)> {
        let allowed = admitted(row.access);
        let role = if allowed.contains(&Role::Admin) {
            Role::Admin
        } else {
            *allowed.iter().next()?
        };
        Some((role, self.token(role)))
    }
}

/// A privileged request of tenant A's waiting for its second admin. Requests are numbered per
/// tenant, so tenant A asks twenty times first: tenant B, which asks a few times in this test,
/// has no request of the last one's number.
async fn a_request(app: &TestApp) -> String {
    let mut id = String::new();
    for i in 0..20 {
        let name = format!("a-request-{i}");
        let (status, waiting) = app
            .call(
                Method::PUT,
                &format!("/api/v1/catalog/{name}"),
                Some(ADMIN_TOKEN),
                Some(json!({"name": name, "description": "tenant a", "max_impact": "low"})),
            )
            .await;
        assert!(status.is_success(), "{waiting}");
        id = waiting["id"].as_str().expect("id").to_owned();
    }
    id
}

/// The path and body of `row` filled with tenant A's records.
fn on_tenant_a(world: &World, request: &str, index: usize, row: &Row) -> (String, Option<Value>) {
    let mut cell = Cell::shared(world, format!("b{index}"), row.path);
    // Tenant A's person, a catalog item it has, and its waiting request.
    cell.user = "rita".into();
    if row.path.contains("/catalog/{name}") {
        cell.name = "certificate-renewal".into();
    }
    if row.path.contains("/admin/pending/{id}") {
        cell.id = request.to_owned();
    }
    (cell.fill(row.path), (row.body)(&cell))
}

/// Tenant A's view of the record a write of tenant B's names in its own tenant, when a GET of
/// it exists.
async fn seen_by_a(app: &TestApp, row: &Row, path: &str) -> Option<(StatusCode, Value)> {
    let readable = ROWS
        .iter()
        .any(|r| r.method == "GET" && template(r.path) == template(row.path));
    if !readable || across(row) != Some(OwnRecord) {
        return None;
    }
    Some(
        app.get(path.split('?').next().unwrap_or(path), ADMIN_TOKEN)
            .await,
    )
}

async fn tenant_b_never_sees_tenant_a(backend: Backend) {
    // Every route with a record in its path says what tenant B gets on tenant A's.
    let missing: Vec<String> = ROWS
        .iter()
        .filter(|r| has_record(r.path) && across(r).is_none())
        .map(|r| format!("{} {}", r.method, template(r.path)))
        .collect();
    assert!(
        missing.is_empty(),
        "routes with a record in their path and no cross-tenant cell (ACROSS in crates/steward/tests/it/authz/tenants.rs): {missing:?}"
    );
    let routes: BTreeSet<(&str, &str)> =
        ROWS.iter().map(|r| (r.method, template(r.path))).collect();
    let stale: Vec<_> = ACROSS
        .iter()
        .filter(|(m, p, _)| !routes.contains(&(*m, *p)))
        .collect();
    assert!(
        stale.is_empty(),
        "cross-tenant cells of routes that do not exist: {stale:?}"
    );

    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let world = World::build(&app).await;
    let b = TenantB::build(&app).await;
    let mut wrong = Vec::new();

    // Reads without a record in their path (lists, reports, the log) never mention tenant A's.
    for row in ROWS
        .iter()
        .filter(|r| r.method == "GET" && !has_record(r.path))
    {
        let token = match row.access {
            Access::Public => None,
            Access::Webhook => continue,
            _ => match b.caller(row) {
                Some((_, token)) => Some(token),
                None => continue,
            },
        };
        let (status, body) = app.call(Method::GET, row.path, token, None).await;
        let name = match row.access {
            Access::Permission(name) => name,
            _ => "",
        };
        if steward_server::auth::installation_only(name) {
            if status != StatusCode::FORBIDDEN {
                wrong.push(format!(
                    "GET {} as tenant B: expected 403, got {status} {body}",
                    row.path
                ));
            }
            continue;
        }
        let text = body.to_string();
        if !status.is_success() && !matches!(row.access, Access::Public) {
            wrong.push(format!("GET {} as tenant B: {status} {body}", row.path));
        } else if let Some(leak) = TENANT_A.iter().find(|w| text.contains(*w)) {
            wrong.push(format!(
                "GET {} as tenant B shows tenant A's {leak}: {text}",
                row.path
            ));
        }
    }

    // Routes naming a record: tenant A's, called by tenant B's holder of the permission. The
    // writes that make tenant B a record of the same name (a `PUT` by name) come last, after
    // the CLI's turn, so every other call meets a name tenant B does not have.
    let request = a_request(&app).await;
    let cells: Vec<(usize, &Row, Across)> = ROWS
        .iter()
        .enumerate()
        .filter_map(|(index, row)| Some((index, row, across(row)?)))
        .collect();
    let (writes, others): (Vec<_>, Vec<_>) = cells
        .into_iter()
        .partition(|(.., across)| *across == OwnRecord);
    for (index, row, expected) in others {
        wrong.extend(cross_cell(&app, &world, &b, &request, (index, row), expected).await);
    }
    wrong.extend(cli_commands(&app, &b, &request));
    for (index, row, expected) in writes {
        wrong.extend(cross_cell(&app, &world, &b, &request, (index, row), expected).await);
    }
    assert!(
        wrong.is_empty(),
        "{} cross-tenant cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    app.stop().await;
}

/// Calls `row` as tenant B's holder of its permission on tenant A's record: the wrong answer,
/// if it is one.
async fn cross_cell(
    app: &TestApp,
    world: &World,
    b: &TenantB,
    request: &str,
    (index, row): (usize, &Row),
    expected: Across,
) -> Option<String> {
    let (path, body) = on_tenant_a(world, request, index, row);
    let (role, token) = match expected {
        InstallationOnly => (Role::Admin, b.token(Role::Admin)),
        _ => b.caller(row).expect("someone in tenant B holds it"),
    };
    let before = seen_by_a(app, row, &path).await;
    let (status, answer) = app.call(method(row.method), &path, Some(token), body).await;
    let met = match expected {
        NotFound => status == StatusCode::NOT_FOUND,
        OwnRecord => status.is_success(),
        InstallationOnly => {
            status == StatusCode::FORBIDDEN && answer["details"]["installation_only"] == true
        }
        HeldByOneTenant => {
            status == StatusCode::CONFLICT
                && answer["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("another tenant") && !e.contains("default"))
        }
    };
    if !met {
        return Some(format!(
            "{} {path} as tenant B's {role}: expected {expected:?}, got {status} {answer}",
            row.method
        ));
    }
    let before = before?;
    let after = seen_by_a(app, row, &path).await;
    (after.as_ref() != Some(&before)).then(|| {
        format!(
            "{} {path} as tenant B's {role} changed tenant A's record: {before:?} → {after:?}",
            row.method
        )
    })
}

/// The CLI's record commands, with tenant B's tokens on tenant A's records: each must fail,
/// not found. The wrong answers.
fn cli_commands(app: &TestApp, b: &TenantB, request: &str) -> Vec<String> {
    let commands: &[(Role, &[&str])] = &[
        (Role::Auditor, &["change", "show", "CHG-1"]),
        (
            Role::Manager,
            &["change", "approve", "CHG-1", "--comment", "x"],
        ),
        (Role::Requester, &["change", "cancel", "CHG-1"]),
        (
            Role::Requester,
            &[
                "change",
                "fulfil",
                "CHG-1",
                "post_implementation_review",
                "--note",
                "x",
            ],
        ),
        (
            Role::Pipeline,
            &[
                "gate",
                "--change",
                "CHG-1",
                "--target",
                "fraud-scoring",
                "--environment",
                "staging",
            ],
        ),
        (Role::Auditor, &["incident", "show", "INC-1"]),
        (Role::Manager, &["incident", "ack", "INC-1"]),
        (Role::Auditor, &["problem", "show", "matrix-problem"]),
        (Role::Auditor, &["inventory", "show", "matrix-model"]),
        (
            Role::ComplianceOfficer,
            &["inventory", "set", "matrix-model", "purpose=x"],
        ),
        (Role::Admin, &["window", "delete", "matrix-window"]),
        (Role::Admin, &["user", "disable", "rita"]),
        (Role::Admin, &["user", "roles", "rita", "--set", "manager"]),
        (Role::Admin, &["token", "revoke", "--user", "rita"]),
        (Role::Admin, &["audit", "erase", "rita", "--basis", "x"]),
        (Role::Admin, &["audit", "hold", "rita", "--reason", "x"]),
        (
            Role::Admin,
            &["policy", "module", "delete", super::fixtures::MODULE],
        ),
        (Role::Admin, &["admin", "show", request]),
        (Role::Admin, &["admin", "approve", request]),
        (Role::Admin, &["admin", "reject", request, "--reason", "x"]),
        (
            Role::Manager,
            &["change", "reject", "CHG-1", "--comment", "x"],
        ),
        (Role::Requester, &["change", "submit-draft", "CHG-1"]),
        (Role::Manager, &["change", "schedule", "CHG-1"]),
        (Role::Manager, &["change", "implement", "CHG-1"]),
        (Role::Manager, &["change", "complete", "CHG-1"]),
        (
            Role::Manager,
            &["change", "fail", "CHG-1", "--comment", "x"],
        ),
        (
            Role::Manager,
            &["change", "rollback", "CHG-1", "--reason", "x"],
        ),
        (
            Role::Ciso,
            &["change", "override-window", "CHG-1", "--reason", "x"],
        ),
        (Role::Manager, &["change", "close", "CHG-1"]),
        (
            Role::Pipeline,
            &[
                "deployment",
                "--change",
                "CHG-1",
                "--target",
                "fraud-scoring",
                "--environment",
                "staging",
                "--status",
                "started",
            ],
        ),
        (Role::Manager, &["incident", "approve", "INC-1"]),
        (Role::Manager, &["incident", "resolve", "INC-1"]),
        (
            Role::Manager,
            &[
                "incident",
                "review",
                "INC-1",
                "--what-happened",
                "x",
                "--why",
                "x",
            ],
        ),
        (Role::Manager, &["incident", "close", "INC-1"]),
        (
            Role::Manager,
            &["incident", "problem", "INC-1", "matrix-problem"],
        ),
        (
            Role::Manager,
            &["problem", "fix", "matrix-problem", "--change", "CHG-1"],
        ),
        (Role::Admin, &["user", "enable", "rita"]),
        (Role::Admin, &["token", "issue", "--user", "rita"]),
        (Role::Admin, &["audit", "release", "rita"]),
    ];
    commands
        .iter()
        .filter_map(|(role, args)| {
            let run = run_steward(&app.base, b.token(*role), args);
            (run.code == 0 || !run.stderr.contains("(404)")).then(|| {
                format!(
                    "steward {} as tenant B's {role}: exit {}, {}{}",
                    args.join(" "),
                    run.code,
                    run.stdout,
                    run.stderr
                )
            })
        })
        .collect()
}

both_backends!(tenant_b_never_sees_tenant_a);
