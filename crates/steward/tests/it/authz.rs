//! The authorization matrix: every route of the running server, called as every role.
//!
//! The route table is the server's own OpenAPI document, so a route added without a row in
//! [`ROWS`] fails `every_route_has_a_row`. Each row names the permission the route needs (one of
//! `steward_server::auth::PERMISSIONS`, which says which roles hold it), or says the route is
//! public or authenticated by a webhook signature. For each role the test expects: a role that
//! holds the permission succeeds (2xx), acting on records made for its cell so that nothing but
//! authorization could stand in its way ([`Fixture`]); every other role gets 403 naming the
//! permission. Where the change's own rules refuse a role that holds the permission, the row
//! names that refusal ([`Refusal`]: its status and what its error says), so no cell passes on
//! anything but success or the refusal written down. The same table renders
//! `docs/authorization.md`, and the test fails when the published file differs (regenerate with
//! `STEWARD_WRITE_DOCS=1 cargo nextest run -p steward --test it authz`).

mod fixtures;
mod tenants;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, change, join_all};
use fixtures::{Cell, Fixture, World, dashed};
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

/// A refusal by the domain of a role that holds the permission: its status, and words its error
/// says. It must not name a permission (that would be authorization refusing).
#[derive(Debug, Clone, Copy)]
struct Refusal {
    status: StatusCode,
    says: &'static str,
}

/// One route: method, path template (then any query the call needs), access, what its
/// placeholders name, a request body valid for the cell (so an allowed call can succeed, and a
/// refused one is refused for its role, not for its body), and the domain's refusals of roles
/// that hold the permission.
struct Row {
    method: &'static str,
    path: &'static str,
    access: Access,
    fixture: Fixture,
    body: fn(&Cell) -> Option<Value>,
    refusals: &'static [(Role, Refusal)],
}

const fn row(method: &'static str, path: &'static str, access: Access) -> Row {
    Row {
        method,
        path,
        access,
        fixture: Fixture::Shared,
        body: nothing,
        refusals: &[],
    }
}

impl Row {
    const fn on(self, fixture: Fixture) -> Row {
        Row { fixture, ..self }
    }

    const fn body(self, body: fn(&Cell) -> Option<Value>) -> Row {
        Row { body, ..self }
    }

    const fn refuses(self, refusals: &'static [(Role, Refusal)]) -> Row {
        Row { refusals, ..self }
    }
}

// Request bodies, each valid for the cell it is sent in.
fn nothing(_: &Cell) -> Option<Value> {
    None
}
fn comment(_: &Cell) -> Option<Value> {
    Some(json!({"comment": "matrix"}))
}
fn note(_: &Cell) -> Option<Value> {
    Some(json!({"note": "matrix"}))
}
fn reason(_: &Cell) -> Option<Value> {
    Some(json!({"reason": "matrix"}))
}
fn a_change(_: &Cell) -> Option<Value> {
    Some(change(json!({})))
}
/// The portal's decision form, as JSON (the matrix calls with bearer tokens; browsers post it
/// form-encoded, see `portal_http.rs`).
fn portal_decision(_: &Cell) -> Option<Value> {
    Some(json!({"decision": "approve", "comment": "matrix"}))
}
/// The portal's policy test form, as JSON: a change document in its text field.
fn portal_policy_test(_: &Cell) -> Option<Value> {
    Some(json!({"change": change(json!({})).to_string()}))
}
/// The portal's backtest form, as JSON: a candidate module that never fires.
fn portal_backtest(_: &Cell) -> Option<Value> {
    let module = fixtures::policy_module("candidate");
    Some(json!({"name": "candidate", "source": module["source"], "since": "2020-01-01"}))
}
fn empty(_: &Cell) -> Option<Value> {
    Some(json!({}))
}
fn new_user(c: &Cell) -> Option<Value> {
    Some(json!({"name": c.unique, "roles": ["requester"]}))
}
fn manager_role(_: &Cell) -> Option<Value> {
    Some(json!({"roles": ["manager"]}))
}
fn new_target(c: &Cell) -> Option<Value> {
    Some(
        json!({"name": c.unique, "kind": "model_deployment", "owner": "mia",
                "environment": "staging", "criticality": "low"}),
    )
}
fn catalog_item(c: &Cell) -> Option<Value> {
    Some(json!({"name": c.name, "description": "matrix", "max_impact": "low"}))
}
fn implement(_: &Cell) -> Option<Value> {
    Some(json!({"step": "implement"}))
}
fn deployment(_: &Cell) -> Option<Value> {
    Some(json!({"status": "started", "target": "fraud-scoring", "environment": "staging"}))
}
fn alert(c: &Cell) -> Option<Value> {
    let alert = json!({"status": "firing", "labels": {"alertname": "Matrix"},
                       "fingerprint": c.unique, "startsAt": "2026-11-01T00:00:00Z"});
    Some(json!({"version": "4", "groupKey": "matrix", "status": "firing", "alerts": [alert]}))
}
fn pagerduty_alert(_: &Cell) -> Option<Value> {
    let payload = json!({"summary": "matrix", "source": "matrix", "severity": "info"});
    Some(json!({"event_action": "trigger", "payload": payload}))
}
fn pagerduty_change(_: &Cell) -> Option<Value> {
    Some(json!({"payload": {"summary": "matrix"}}))
}
fn incident(_: &Cell) -> Option<Value> {
    Some(json!({"title": "matrix", "severity": "sev3", "targets": ["fraud-scoring"]}))
}
fn acknowledge(_: &Cell) -> Option<Value> {
    Some(json!({"action": "acknowledge"}))
}
fn harmless_plan(_: &Cell) -> Option<Value> {
    Some(json!({"actions": [{"name": "noop", "kind": "command", "program": "/bin/true"}]}))
}
fn review(_: &Cell) -> Option<Value> {
    Some(json!({"what_happened": "matrix", "why": "matrix", "risk_assessment_missed": "matrix"}))
}
fn detector(_: &Cell) -> Option<Value> {
    Some(json!({"metric": "matrix", "config": {"detector": "robust_z"}}))
}
fn title(_: &Cell) -> Option<Value> {
    Some(json!({"title": "matrix"}))
}
fn fix(_: &Cell) -> Option<Value> {
    Some(json!({"change": "CHG-1"}))
}
fn purpose(_: &Cell) -> Option<Value> {
    Some(json!({"purpose": "matrix"}))
}
fn version(c: &Cell) -> Option<Value> {
    Some(json!({"version": c.unique, "artifact_uri": format!("s3://m/{}", c.unique)}))
}
fn templates(_: &Cell) -> Option<Value> {
    Some(json!({"tiers": {"high": ["purpose"]}}))
}
fn scan(_: &Cell) -> Option<Value> {
    Some(fixtures::scan())
}
fn sample(_: &Cell) -> Option<Value> {
    Some(json!({"name": "matrix", "value": 1}))
}
fn window(c: &Cell) -> Option<Value> {
    Some(fixtures::window(&c.unique))
}
fn group_roles(_: &Cell) -> Option<Value> {
    Some(json!({"roles": ["requester"]}))
}
fn basis(_: &Cell) -> Option<Value> {
    Some(json!({"basis": "matrix"}))
}
fn new_tenant(c: &Cell) -> Option<Value> {
    Some(json!({"name": c.unique, "admin": "boss"}))
}
/// A new source for the module the cell names (the same source again would be refused: there
/// would be nothing to approve).
fn policy_module(c: &Cell) -> Option<Value> {
    let mut module = fixtures::policy_module(&c.name);
    let source = format!(
        "{}\n# edited by {}\n",
        module["source"].as_str().unwrap_or(""),
        c.unique
    );
    module["source"] = Value::String(source);
    Some(module)
}

// An admin holds `approve_changes` (a policy may ask for an admin's approval, and dual control
// of privileged operations will), yet the built-in routing never asks for the admin role: a slot
// asks for a target's owning manager, a CAB member, the CISO, the VP Engineering, or a role a
// policy names. So the core refuses a bare admin every built-in slot, and the window override
// that only an approver of the change may make.
// The matrix's server has no identity provider configured, so the sign-in routes answer 404
// saying so, to everyone (tests/it/sso.rs signs in against a real provider).
const SSO_OFF: &[(Role, Refusal)] = &{
    let refusal = Refusal {
        status: StatusCode::NOT_FOUND,
        says: "single sign-on is not configured",
    };
    let mut all = [(Role::Requester, refusal); Role::ALL.len()];
    let mut i = 0;
    while i < all.len() {
        all[i].0 = Role::ALL[i];
        i += 1;
    }
    all
};

// The matrix posts no form to the portal's sign-in, so it asks every caller for a token
// (tests/it/portal_http.rs signs in through the form).
const SIGNIN_WITHOUT_A_TOKEN: &[(Role, Refusal)] = &{
    let refusal = Refusal {
        status: StatusCode::UNAUTHORIZED,
        says: "paste your API token",
    };
    let mut all = [(Role::Requester, refusal); Role::ALL.len()];
    let mut i = 0;
    while i < all.len() {
        all[i].0 = Role::ALL[i];
        i += 1;
    }
    all
};

const NO_SLOT_FOR_AN_ADMIN: &[(Role, Refusal)] = &[(
    Role::Admin,
    Refusal {
        status: StatusCode::FORBIDDEN,
        says: "is not among the approvers this change still needs",
    },
)];
const ONLY_ITS_APPROVERS_OVERRIDE: &[(Role, Refusal)] = &[(
    Role::Admin,
    Refusal {
        status: StatusCode::FORBIDDEN,
        says: "may override its window",
    },
)];

use Access::*;
use Fixture::*;

#[rustfmt::skip] // Laid out by hand, so the table reads as a table.
const ROWS: &[Row] = &[
    row("GET", "/healthz", Public),
    row("GET", "/readyz", Public),
    row("GET", "/api/v1/whoami", Authenticated),
    row("GET", "/auth/login", Public).refuses(SSO_OFF),
    row("GET", "/auth/callback", Public).refuses(SSO_OFF),
    row("GET", "/auth/logout", Public),
    row("GET", "/api/v1/groups", Permission("read_records")),
    row("PUT", "/api/v1/groups/{name}", Permission("manage_group_roles")).body(group_roles),
    row("DELETE", "/api/v1/groups/{name}", Permission("manage_group_roles")).on(OwnGroupMapping),
    row("POST", "/api/v1/users", Permission("manage_users")).body(new_user),
    row("GET", "/api/v1/users", Permission("read_records")),
    row("GET", "/api/v1/users/{name}", Permission("read_records")),
    row("POST", "/api/v1/users/{name}/disable", Permission("manage_users")).on(FreshAccount),
    row("POST", "/api/v1/users/{name}/enable", Permission("manage_users")).on(DisabledAccount),
    row("PUT", "/api/v1/users/{name}/roles", Permission("manage_users"))
        .on(FreshAccount)
        .body(manager_role),
    row("POST", "/api/v1/users/{name}/tokens", Permission("manage_users"))
        .on(FreshAccount)
        .body(empty),
    row("POST", "/api/v1/users/{name}/tokens/revoke", Permission("manage_users"))
        .on(FreshAccount),
    row("POST", "/api/v1/tokens/rotate", Permission("rotate_own_token")).on(OwnToken).body(empty),
    row("POST", "/api/v1/targets", Permission("manage_targets")).body(new_target),
    row("GET", "/api/v1/targets", Permission("read_records")),
    row("GET", "/api/v1/targets/{name}", Permission("read_records")),
    row("GET", "/api/v1/catalog", Permission("read_records")),
    row("PUT", "/api/v1/catalog/{name}", Permission("manage_catalog")).body(catalog_item),
    row("GET", "/api/v1/admin/pending", Permission("review_privileged")),
    row("GET", "/api/v1/admin/pending/{id}", Permission("review_privileged")).on(OthersRequest),
    row("POST", "/api/v1/admin/pending/{id}/approve", Permission("decide_privileged"))
        .on(OthersRequest),
    row("POST", "/api/v1/admin/pending/{id}/reject", Permission("decide_privileged"))
        .on(OthersRequest)
        .body(reason),
    row("POST", "/api/v1/changes", Permission("submit_changes")).body(a_change),
    row("GET", "/api/v1/changes", Permission("read_records")),
    row("GET", "/api/v1/changes/{id}", Permission("read_records")),
    row("POST", "/api/v1/changes/{id}/approve", Permission("approve_changes"))
        .on(ChangeToDecide)
        .body(comment)
        .refuses(NO_SLOT_FOR_AN_ADMIN),
    row("POST", "/api/v1/changes/{id}/reject", Permission("approve_changes"))
        .on(ChangeToDecide)
        .body(comment)
        .refuses(NO_SLOT_FOR_AN_ADMIN),
    row("POST", "/api/v1/changes/{id}/submit", Permission("submit_changes")).on(OwnDraft),
    row("POST", "/api/v1/changes/{id}/transitions", Permission("implement_changes"))
        .on(ScheduledChange)
        .body(implement),
    row("POST", "/api/v1/changes/{id}/rollback", Permission("implement_changes"))
        .on(ChangeBeingImplemented)
        .body(reason),
    row("POST", "/api/v1/changes/{id}/window-override", Permission("approve_changes"))
        .on(ApprovedEmergency)
        .body(reason)
        .refuses(ONLY_ITS_APPROVERS_OVERRIDE),
    row("POST", "/api/v1/changes/{id}/deployments", Permission("record_deployments"))
        .body(deployment),
    row("POST", "/api/v1/changes/{id}/obligations/{name}", Permission("fulfil_obligations"))
        .on(CompletedEmergency)
        .body(note),
    row("GET", "/api/v1/changes/{id}/gate?target=fraud-scoring&environment=staging",
        Permission("read_records")),
    row("GET", "/api/v1/notifications", Permission("read_records")),
    row("POST", "/api/v1/integrations/alertmanager", Permission("send_signals")).body(alert),
    row("POST", "/api/v1/integrations/pagerduty/v2/enqueue", Permission("send_signals"))
        .body(pagerduty_alert),
    row("POST", "/api/v1/integrations/pagerduty/v2/change/enqueue", Permission("send_signals"))
        .body(pagerduty_change),
    row("POST", "/api/v1/integrations/github/deployment-protection", Webhook).body(empty),
    row("POST", "/api/v1/integrations/gitlab/deployments", Webhook).body(empty),
    row("GET", "/api/v1/incidents", Permission("read_records")),
    row("POST", "/api/v1/incidents", Permission("handle_incidents")).body(incident),
    row("GET", "/api/v1/incidents/{id}", Permission("read_records")),
    row("POST", "/api/v1/incidents/{id}/actions", Permission("handle_incidents"))
        .on(OpenIncident)
        .body(acknowledge),
    row("POST", "/api/v1/incidents/{id}/containment", Permission("handle_incidents"))
        .on(OpenIncident)
        .body(harmless_plan),
    row("POST", "/api/v1/incidents/{id}/containment/approve", Permission("approve_containment"))
        .on(ProposedContainment),
    row("POST", "/api/v1/incidents/{id}/review", Permission("handle_incidents"))
        .on(ResolvedIncident)
        .body(review),
    row("GET", "/api/v1/incident-metrics", Permission("read_records")),
    row("GET", "/api/v1/change-metrics", Permission("read_records")),
    row("PUT", "/api/v1/detectors/{name}", Permission("keep_detectors")).body(detector),
    row("GET", "/api/v1/detectors", Permission("read_records")),
    row("PUT", "/api/v1/playbooks/{name}", Permission("keep_detectors")).body(harmless_plan),
    row("PUT", "/api/v1/problems/{name}", Permission("handle_incidents")).body(title),
    row("GET", "/api/v1/problems/{name}", Permission("read_records")),
    row("POST", "/api/v1/problems/{name}/fix", Permission("handle_incidents")).body(fix),
    row("GET", "/api/v1/models", Permission("read_records")),
    row("GET", "/api/v1/models/{name}", Permission("read_records")),
    row("PUT", "/api/v1/models/{name}", Permission("attest_models")).body(purpose),
    row("POST", "/api/v1/models/{name}/versions", Permission("register_versions")).body(version),
    row("GET", "/api/v1/inventory/templates", Permission("read_records")),
    row("PUT", "/api/v1/inventory/templates", Permission("keep_templates")).body(templates),
    row("POST", "/api/v1/inventory/scans", Permission("record_scans")).body(scan),
    row("GET", "/api/v1/inventory/scans", Permission("read_records")),
    row("GET", "/api/v1/inventory/scans/{id}", Permission("read_records")),
    row("GET", "/api/v1/inventory/reconciliation", Permission("read_records")),
    row("GET", "/api/v1/inventory/deployments", Permission("read_records")),
    row("GET", "/api/v1/inventory/datasets", Permission("read_records")),
    row("GET", "/api/v1/inventory/runs", Permission("read_records")),
    row("GET", "/api/v1/inventory/report", Permission("read_records")),
    row("GET", "/api/v1/inventory/export", Permission("read_records")),
    row("POST", "/api/v1/metrics", Permission("push_metrics")).body(sample),
    row("GET", "/api/v1/metrics?name=matrix", Permission("read_records")),
    row("GET", "/api/v1/policy", Authenticated),
    row("POST", "/api/v1/policy/evaluate", Authenticated).body(a_change),
    row("GET", "/api/v1/policy/inputs?since=2020-01-01T00:00:00Z",
        Permission("read_policy_inputs")),
    row("GET", "/api/v1/policy/modules", Permission("read_records")),
    row("GET", "/api/v1/policy/modules/{name}", Permission("read_records")),
    row("PUT", "/api/v1/policy/modules/{name}", Permission("manage_policies")).body(policy_module),
    row("DELETE", "/api/v1/policy/modules/{name}", Permission("manage_policies")).on(OwnModule),
    row("POST", "/api/v1/tenants", Permission("manage_tenants")).body(new_tenant),
    row("GET", "/api/v1/tenants", Permission("manage_tenants")),
    row("GET", "/api/v1/tenants/{name}", Permission("manage_tenants")),
    row("POST", "/api/v1/tenants/{name}/pending/{id}/approve", Permission("manage_tenants"))
        .on(LonelyTenantRequest),
    row("POST", "/api/v1/windows", Permission("keep_calendar")).body(window),
    row("GET", "/api/v1/windows", Permission("read_records")),
    row("GET", "/api/v1/windows/{name}", Permission("read_records")),
    row("DELETE", "/api/v1/windows/{name}", Permission("keep_calendar")).on(OwnWindow),
    row("GET", "/api/v1/calendar.ics", Permission("read_records")),
    row("GET", "/api/v1/audit/public-key", Permission("read_audit_log")),
    row("GET", "/api/v1/audit/checkpoint", Permission("read_audit_log")),
    row("GET", "/api/v1/audit/checkpoints", Permission("read_audit_log")),
    row("GET", "/api/v1/audit/leaves", Permission("read_audit_log")),
    row("GET", "/api/v1/audit/proofs/inclusion?index=0", Permission("read_audit_log")),
    row("GET", "/api/v1/audit/proofs/consistency?first=1", Permission("read_audit_log")),
    row("POST", "/api/v1/audit/subjects/{user}/erase", Permission("erase_personal_data"))
        .on(DataSubject)
        .body(basis),
    row("PUT", "/api/v1/audit/subjects/{user}/hold", Permission("erase_personal_data"))
        .on(DataSubject)
        .body(reason),
    row("DELETE", "/api/v1/audit/subjects/{user}/hold", Permission("erase_personal_data"))
        .on(DataSubject),
    row("POST", "/api/v1/audit/retention", Permission("manage_retention")),
    // The web portal (tag `portal`): pages answer bearer tokens as they answer the session.
    row("GET", "/", Public),
    row("POST", "/signin", Public).refuses(SIGNIN_WITHOUT_A_TOKEN),
    row("POST", "/signout", Public),
    row("GET", "/changes", Permission("read_records")),
    row("GET", "/changes/{id}", Permission("read_records")),
    row("POST", "/changes/{id}/decision", Permission("approve_changes"))
        .on(ChangeToDecide)
        .body(portal_decision)
        .refuses(NO_SLOT_FOR_AN_ADMIN),
    row("POST", "/changes/{id}/submit", Permission("submit_changes")).on(OwnDraft),
    row("GET", "/changes/new", Permission("submit_changes")),
    row("POST", "/changes/new", Permission("submit_changes")).body(a_change),
    row("POST", "/changes/preview", Permission("submit_changes")).body(a_change),
    row("GET", "/audit", Permission("read_audit_log")),
    row("GET", "/audit/{index}", Permission("read_audit_log")),
    row("GET", "/audit/export", Permission("read_audit_log")),
    row("GET", "/models", Permission("read_records")),
    row("GET", "/models/{name}", Permission("read_records")),
    row("GET", "/inventory/reconciliation", Permission("read_records")),
    row("GET", "/calendar", Permission("read_records")),
    row("GET", "/dashboard", Permission("read_records")),
    row("GET", "/incidents", Permission("read_records")),
    row("GET", "/incidents/{id}", Permission("read_records")),
    row("POST", "/incidents/{id}/containment/approve", Permission("approve_containment"))
        .on(ProposedContainment)
        .body(empty),
    row("GET", "/admin", Permission("read_records")),
    row("GET", "/admin/users", Permission("read_records")),
    row("POST", "/admin/users", Permission("manage_users")).body(new_user),
    row("POST", "/admin/users/{name}/roles", Permission("manage_users"))
        .on(FreshAccount)
        .body(manager_role),
    row("POST", "/admin/users/{name}/disable", Permission("manage_users")).on(FreshAccount).body(empty),
    row("POST", "/admin/users/{name}/enable", Permission("manage_users")).on(DisabledAccount).body(empty),
    row("GET", "/admin/pending", Permission("review_privileged")),
    row("POST", "/admin/pending/{id}/approve", Permission("decide_privileged"))
        .on(OthersRequest)
        .body(empty),
    row("POST", "/admin/pending/{id}/reject", Permission("decide_privileged"))
        .on(OthersRequest)
        .body(reason),
    row("GET", "/admin/targets", Permission("read_records")),
    row("POST", "/admin/targets", Permission("manage_targets")).body(new_target),
    row("GET", "/admin/catalog", Permission("read_records")),
    row("POST", "/admin/catalog", Permission("manage_catalog")).body(catalog_item),
    row("GET", "/admin/windows", Permission("read_records")),
    row("POST", "/admin/windows", Permission("keep_calendar")).body(window),
    row("GET", "/admin/policies", Permission("read_records")),
    row("POST", "/admin/policies/test", Permission("read_records")).body(portal_policy_test),
    row("POST", "/admin/policies/backtest", Permission("read_policy_inputs"))
        .body(portal_backtest),
    row("GET", "/static/portal.css", Public),
    row("GET", "/static/portal.js", Public),
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

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("method")
}

/// What one cell must answer.
#[derive(Debug)]
enum Expected {
    Success,
    Refused(Refusal),
    NotPermitted(&'static str),
    /// A webhook called with a role's token (and no signature) opens nothing.
    NotOpened,
}

impl Expected {
    fn of(row: &Row, role: Role, admitted: &BTreeSet<Role>) -> Expected {
        match row.access {
            Webhook => Expected::NotOpened,
            Permission(name) if !admitted.contains(&role) => Expected::NotPermitted(name),
            _ => row
                .refusals
                .iter()
                .find(|(r, _)| *r == role)
                .map_or(Expected::Success, |(_, refusal)| {
                    Expected::Refused(*refusal)
                }),
        }
    }

    fn met_by(&self, status: StatusCode, body: &Value) -> bool {
        let permission = &body["details"]["permission"];
        match self {
            Expected::Success => status.is_success(),
            Expected::Refused(refusal) => {
                status == refusal.status
                    && permission.is_null()
                    && body["error"]
                        .as_str()
                        .is_some_and(|e| e.contains(refusal.says))
            }
            Expected::NotPermitted(name) => status == StatusCode::FORBIDDEN && permission == name,
            Expected::NotOpened => matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
            ),
        }
    }
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

/// Calls one cell: `role` on `row`, on records of its own when it may succeed. The wrong
/// answer, if it is one.
async fn call_cell(
    app: &TestApp,
    world: &World,
    (index, row): (usize, &Row),
    (role, token): (Role, &str),
    allowed: &BTreeSet<Role>,
) -> Option<String> {
    let cell = Cell::shared(world, format!("r{index}-{}", dashed(role)), row.path);
    let cell = if allowed.contains(&role) {
        cell.prepare(app, world, row.fixture, role).await
    } else {
        cell
    };
    let token = match row.access {
        Public => None,
        _ => Some(cell.token.as_deref().unwrap_or(token)),
    };
    let (status, body) = app
        .call(
            method(row.method),
            &cell.fill(row.path),
            token,
            (row.body)(&cell),
        )
        .await;
    let expected = Expected::of(row, role, allowed);
    (!expected.met_by(status, &body)).then(|| {
        format!(
            "{} {} as {role}: expected {expected:?}, got {status} {body}",
            row.method, row.path
        )
    })
}

async fn every_role_gets_exactly_what_its_permissions_allow(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let world = World::build(&app).await;
    let mut wrong = Vec::new();
    for (index, row) in ROWS.iter().enumerate() {
        let allowed = admitted(row.access);
        for (role, _) in row.refusals {
            assert!(
                allowed.contains(role),
                "{} {} lists a refusal of {role}, which does not hold its permission",
                row.method,
                row.path
            );
        }
        // A row's cells hang on no one else's: what a cell changes is its own, or the same
        // for all of them (a model's purpose, the templates). So they run side by side.
        let cells = world
            .accounts
            .iter()
            .map(|(role, _, token)| call_cell(&app, &world, (index, row), (*role, token), &allowed))
            .collect();
        wrong.extend(join_all(cells).await.into_iter().flatten());
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
        let cell = Cell::shared(&world, "nobody".into(), row.path);
        let (status, _) = app
            .call(
                method(row.method),
                &cell.fill(row.path),
                None,
                (row.body)(&cell),
            )
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
         implements their own change, one person fills one slot).\n\n\
         Every permission acts within the caller's tenant: a caller of tenant B who holds it, on a\n\
         record of tenant A, is answered 404, as if the record did not exist (the tenant dimension\n\
         of the test, `authz/tenants.rs`, calls every route with a record in its path that way).\n\
         Permissions marked *installation only* are held only by accounts of the installation\n\
         tenant (`default`): a tenant's admin gets 403. Reading the audit log is one tree for all\n\
         tenants: outside the installation tenant, a reader gets its own tenant's entries in full\n\
         and the others' as leaf hashes only.\n\n## Permissions\n\n\
         | permission | people only | installation only | roles | allows |\n|---|---|---|---|---|\n",
    );
    for (name, roles, people_only, meaning) in PERMISSIONS {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} | {meaning} |\n",
            if *people_only { "yes" } else { "" },
            if steward_server::auth::installation_only(name) {
                "yes"
            } else {
                ""
            },
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
            Permission(name) if steward_server::auth::installation_only(name) => {
                format!("`{name}` (installation only)")
            }
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
