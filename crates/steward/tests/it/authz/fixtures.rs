//! What each cell of the authorization matrix acts on, so that an allowed call can succeed.
//!
//! A [`World`] is made once per run: the common cast, one account per role (`as-<role>`), and the
//! shared records the read routes name (CHG-1 pending approval, INC-1 open, a problem record, a
//! window, a model, a scan). A cell whose role holds the row's permission then gets fresh
//! records of its own, in the state the route needs ([`Fixture`]): a change that role can
//! decide, a scheduled change to implement, an incident to acknowledge. Each is made through the
//! API by someone other than the caller where segregation of duties asks for it, and on a target
//! of its own, so no cell's history (a rolled-back change raising a target's risk, an open
//! incident absorbing a new one) reaches another's. A cell that does not hold the permission
//! acts on the shared records: it must be refused before it touches them.

use crate::helpers::{ADMIN_TOKEN, Cast, TestApp, cast, change, id};
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_core::Role;

const PROBLEM: &str = "matrix-problem";
const WINDOW: &str = "matrix-window";
const MODEL: &str = "matrix-model";
/// The installation tenant's own policy module (a rule that never fires).
pub const MODULE: &str = "matrix_rule";
/// The identity-provider group tenant A maps to a role (single sign-on).
pub const GROUP: &str = "matrix-group";
const JUSTIFICATION: &str = "fraud losses are rising by the hour";

/// What a row's `{id}`, `{name}` or `{user}` names for a cell whose role may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// The shared records ([`Cell::shared`]) serve: reads, and writes that create by name.
    Shared,
    /// `{id}`: a pending emergency change, marked irreversible, on a target holding personal
    /// and financial data. Its slots ask for the CISO, the VP Engineering, a manager (the
    /// irreversible step), a compliance officer (personal data) and a CAB member (SOX): every
    /// role that approves fills one.
    ChangeToDecide,
    /// `{id}`: a draft the caller requested.
    OwnDraft,
    /// `{id}`: a normal change its owning manager approved and another manager scheduled.
    ScheduledChange,
    /// `{id}`: the same, being implemented by that other manager.
    ChangeBeingImplemented,
    /// `{id}`: a [`Fixture::ChangeToDecide`] change with its window two days ahead, approved by
    /// the five approving roles' accounts (the caller's among them, when it approves at all).
    /// An override waits for every approver's agreement; the cell's is the first, recorded.
    ApprovedEmergency,
    /// `{id}`: an emergency change the caller scheduled, implemented and completed, owing its
    /// post-implementation review.
    CompletedEmergency,
    /// `{id}`: an incident just opened.
    OpenIncident,
    /// `{id}`: an incident on a target the caller owns, with a containment plan someone else
    /// proposed.
    ProposedContainment,
    /// `{id}`: a resolved incident.
    ResolvedIncident,
    /// `{name}`: a window of the cell's own.
    OwnWindow,
    /// `{user}`: a person the audit trail holds personal data of.
    DataSubject,
    /// `{name}`: a policy module of the cell's own, in the caller's tenant.
    OwnModule,
    /// `{name}`: a provider group the cell's tenant maps to a role, of the cell's own.
    OwnGroupMapping,
    /// `{name}`: an active account made for the cell (a requester), to disable, give roles,
    /// issue or revoke tokens of.
    FreshAccount,
    /// `{name}`: a disabled account made for the cell, to enable.
    DisabledAccount,
    /// The call is made with a token of its own: an account made for the cell holding only the
    /// cell's role (its token is what the call rotates, so the role's shared token survives).
    OwnToken,
    /// `{id}`: a privileged operation (a catalog item named after the cell) the bootstrap admin
    /// asked for, waiting for a second admin.
    OthersRequest,
    /// `{name}` and `{id}`: a tenant of the cell's own with a single admin, and a privileged
    /// operation that admin asked for (no one in the tenant can approve it).
    LonelyTenantRequest,
}

/// The records made once for every cell.
pub struct World {
    pub cast: Cast,
    /// One account per role, holding only that role: (role, name, token).
    pub accounts: Vec<(Role, String, String)>,
    /// A CISO and a VP Engineering outside the matrix, who approve the emergencies a cell then
    /// implements (an approver may not implement what they approved).
    ciso: String,
    vp_engineering: String,
    /// CHG-1, pending approval on fraud-scoring.
    change: String,
    /// INC-1, open on fraud-scoring.
    incident: String,
    scan: String,
}

/// One cell: a name of its own, and what the row's placeholders stand for.
pub struct Cell {
    /// A name no other cell uses (`r<row>-<role>`), for what the call creates.
    pub unique: String,
    pub id: String,
    pub name: String,
    pub user: String,
    /// The token the call is made with, when the fixture made one ([`Fixture::OwnToken`]);
    /// else the role's account's.
    pub token: Option<String>,
}

/// `cab_member` as names take it: `cab-member`.
pub fn dashed(role: Role) -> String {
    role.as_str().replace('_', "-")
}

/// The answer's body, after checking that setting up a fixture succeeded.
fn ok(what: &str, (status, body): (StatusCode, Value)) -> Value {
    assert!(status.is_success(), "setting up {what}: {status} {body}");
    body
}

/// As [`ok`], for a privileged write: one that waits for a second admin is approved by
/// [`TestApp::second_admin`].
async fn approved(app: &TestApp, what: &str, answer: (StatusCode, Value)) -> Value {
    let body = ok(what, answer);
    match body["id"].as_str() {
        Some(id) if id.starts_with("OP-") => app.approve_operation(id).await,
        _ => body,
    }
}

fn text(body: &Value, key: &str) -> String {
    body[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .to_owned()
}

impl World {
    pub async fn build(app: &TestApp) -> World {
        let cast = cast(app).await;
        let ciso = app.user("cy", &["ciso"]).await;
        let vp_engineering = app.user("val", &["vp_engineering"]).await;
        let mut accounts = Vec::new();
        for role in Role::ALL {
            let name = format!("as-{}", dashed(role));
            let token = app.user(&name, &[role.as_str()]).await;
            accounts.push((role, name, token));
        }
        let change = id(&app.submit_ok(&cast.rita, change(json!({}))).await);
        assert_eq!(change, "CHG-1", "the fix of a problem record names CHG-1");
        let incident = text(&open_incident(app, &cast.mia, "fraud-scoring").await, "id");
        ok(
            "a problem record",
            app.call(
                Method::PUT,
                &format!("/api/v1/problems/{PROBLEM}"),
                Some(&cast.mia),
                Some(json!({"title": "matrix"})),
            )
            .await,
        );
        ok(
            "a maintenance window",
            app.post("/api/v1/windows", ADMIN_TOKEN, window(WINDOW))
                .await,
        );
        ok(
            "a model",
            app.call(
                Method::PUT,
                &format!("/api/v1/models/{MODEL}?create=true"),
                Some(ADMIN_TOKEN),
                Some(json!({"purpose": "matrix"})),
            )
            .await,
        );
        let scan = ok(
            "a scan",
            app.post("/api/v1/inventory/scans", ADMIN_TOKEN, scan())
                .await,
        );
        approved(
            app,
            "a policy module",
            app.call(
                Method::PUT,
                &format!("/api/v1/policy/modules/{MODULE}"),
                Some(ADMIN_TOKEN),
                Some(policy_module(MODULE)),
            )
            .await,
        )
        .await;
        ok(
            "a group mapping",
            app.call(
                Method::PUT,
                &format!("/api/v1/groups/{GROUP}"),
                Some(ADMIN_TOKEN),
                Some(json!({"roles": ["requester"]})),
            )
            .await,
        );
        World {
            cast,
            accounts,
            ciso,
            vp_engineering,
            change,
            incident,
            scan: text(&scan, "id"),
        }
    }

    fn account(&self, role: Role) -> (&str, &str) {
        self.accounts
            .iter()
            .find(|(r, ..)| *r == role)
            .map(|(_, name, token)| (name.as_str(), token.as_str()))
            .expect("an account per role")
    }
}

/// A maintenance window far from every change the matrix makes.
pub fn window(name: &str) -> Value {
    json!({"name": name, "kind": "maintenance", "scope": "everywhere", "timezone": "UTC",
           "starts": "2030-02-01T00:00", "ends": "2030-02-01T04:00", "reason": "matrix"})
}

/// A tenant policy module named `name`: a rule that never fires.
pub fn policy_module(name: &str) -> Value {
    json!({"source": format!("package steward.rules.{name}\n\nimport rego.v1\n\nwarn contains \"matrix\" if false\n")})
}

/// An inventory scan of one (empty) directory of model files.
pub fn scan() -> Value {
    json!({"sources": [{"source": "files:matrix:/models", "kind": "files",
                        "scanned_at": "2026-11-01T00:00:00Z"}]})
}

async fn open_incident(app: &TestApp, token: &str, target: &str) -> Value {
    ok(
        "an incident",
        app.post(
            "/api/v1/incidents",
            token,
            json!({"title": "matrix", "severity": "sev3", "targets": [target]}),
        )
        .await,
    )
}

async fn submit(app: &TestApp, token: &str, document: Value) -> String {
    id(&app.submit_ok(token, document).await)
}

async fn step(app: &TestApp, token: &str, change: &str, step: &str) {
    ok(step, app.step(token, change, step).await);
}

async fn approve(app: &TestApp, token: &str, change: &str) {
    ok(
        "an approval",
        app.decide(token, change, "approve", "matrix").await,
    );
}

/// The emergency every approving role has a slot on ([`Fixture::ChangeToDecide`]), on a new
/// target named `target`.
async fn change_to_decide(app: &TestApp, world: &World, target: &str, window: Value) -> String {
    app.target(target, "mia", "staging", "low", &["pii", "financial"])
        .await;
    let mut document = change(json!({"targets": [target], "emergency": true,
        "justification": JUSTIFICATION, "irreversible": true}));
    if !window.is_null() {
        document["window"] = window;
    }
    submit(app, &world.cast.rita, document).await
}

/// A normal change on a new target `target` owned by mia, requested by rita, approved by mia.
async fn approved_change(app: &TestApp, world: &World, target: &str) -> String {
    app.target(target, "mia", "staging", "low", &[]).await;
    let id = submit(app, &world.cast.rita, change(json!({"targets": [target]}))).await;
    approve(app, &world.cast.mia, &id).await;
    id
}

impl Cell {
    /// The cell as the shared records fill it: `{id}` is CHG-1, INC-1 or the scan by the
    /// path's collection; `{name}` an existing record where the path reads or changes one,
    /// the cell's own name where it creates one; `{user}` the cell's own name.
    pub fn shared(world: &World, unique: String, path: &str) -> Cell {
        let id = if path.contains("/incidents/{id}") {
            &world.incident
        } else if path.contains("/scans/{id}") {
            &world.scan
        } else {
            &world.change
        };
        let existing = [
            ("/users/", "rita"),
            ("/targets/", "fraud-scoring"),
            ("/windows/", WINDOW),
            ("/groups/", GROUP),
            ("/problems/", PROBLEM),
            ("/models/", MODEL),
            ("/policy/modules/", MODULE),
            ("/tenants/", "default"),
            ("/obligations/", "post_implementation_review"),
        ];
        let name = existing
            .iter()
            .find(|(collection, _)| path.contains(collection))
            .map_or(unique.clone(), |(_, name)| (*name).to_owned());
        Cell {
            id: id.clone(),
            name,
            user: unique.clone(),
            unique,
            token: None,
        }
    }

    /// The cell with the records `fixture` asks for, made for `role`.
    pub async fn prepare(
        mut self,
        app: &TestApp,
        world: &World,
        fixture: Fixture,
        role: Role,
    ) -> Cell {
        let (me, token) = world.account(role);
        let cast = &world.cast;
        // Where a fixture needs a target, it is a new one named after the cell.
        let target = self.unique.clone();
        match fixture {
            Fixture::Shared => {}
            Fixture::ChangeToDecide => {
                self.id = change_to_decide(app, world, &target, Value::Null).await;
            }
            Fixture::OwnDraft => {
                self.id = submit(app, token, change(json!({"draft": true}))).await;
            }
            Fixture::ScheduledChange => {
                self.id = approved_change(app, world, &target).await;
                step(app, &cast.max, &self.id, "schedule").await;
            }
            Fixture::ChangeBeingImplemented => {
                self.id = approved_change(app, world, &target).await;
                step(app, &cast.max, &self.id, "schedule").await;
                step(app, &cast.max, &self.id, "implement").await;
            }
            Fixture::ApprovedEmergency => {
                let start = app.clock.now() + Duration::days(2);
                let window = json!({"start": start, "end": start + Duration::hours(2)});
                self.id = change_to_decide(app, world, &target, window).await;
                for approver in [
                    Role::Ciso,
                    Role::VpEngineering,
                    Role::Manager,
                    Role::ComplianceOfficer,
                    Role::CabMember,
                ] {
                    approve(app, world.account(approver).1, &self.id).await;
                }
            }
            Fixture::CompletedEmergency => {
                app.target(&target, "mia", "staging", "low", &[]).await;
                let document = change(json!({"targets": [target], "emergency": true,
                    "justification": JUSTIFICATION}));
                self.id = submit(app, &cast.rita, document).await;
                approve(app, &world.ciso, &self.id).await;
                approve(app, &world.vp_engineering, &self.id).await;
                for next in ["schedule", "implement", "complete"] {
                    step(app, token, &self.id, next).await;
                }
            }
            Fixture::OpenIncident => {
                app.target(&target, "mia", "staging", "low", &[]).await;
                self.id = text(&open_incident(app, &cast.mia, &target).await, "id");
            }
            Fixture::ProposedContainment => {
                app.target(&target, me, "staging", "low", &[]).await;
                self.id = text(&open_incident(app, &cast.rita, &target).await, "id");
                let plan = json!({"actions": [{"name": "noop", "kind": "command",
                                               "program": "/bin/true"}]});
                ok(
                    "a containment plan",
                    app.post(
                        &format!("/api/v1/incidents/{}/containment", self.id),
                        &cast.rita,
                        plan,
                    )
                    .await,
                );
            }
            Fixture::ResolvedIncident => {
                app.target(&target, "mia", "staging", "low", &[]).await;
                self.id = text(&open_incident(app, &cast.mia, &target).await, "id");
                ok(
                    "resolving an incident",
                    app.post(
                        &format!("/api/v1/incidents/{}/actions", self.id),
                        &cast.mia,
                        json!({"action": "resolve"}),
                    )
                    .await,
                );
            }
            Fixture::OwnWindow => {
                ok(
                    "a window",
                    app.post("/api/v1/windows", ADMIN_TOKEN, window(&self.unique))
                        .await,
                );
                self.name = self.unique.clone();
            }
            Fixture::OthersRequest => {
                let item = json!({"name": self.unique, "description": "matrix",
                                  "max_impact": "low"});
                let waiting = ok(
                    "a privileged request",
                    app.call(
                        Method::PUT,
                        &format!("/api/v1/catalog/{}", self.unique),
                        Some(ADMIN_TOKEN),
                        Some(item),
                    )
                    .await,
                );
                self.id = text(&waiting, "id");
            }
            Fixture::FreshAccount => {
                app.user(&self.unique, &["requester"]).await;
                self.name = self.unique.clone();
            }
            Fixture::DisabledAccount => {
                app.user(&self.unique, &["requester"]).await;
                ok(
                    "a disabled account",
                    app.post(
                        &format!("/api/v1/users/{}/disable", self.unique),
                        ADMIN_TOKEN,
                        json!({}),
                    )
                    .await,
                );
                self.name = self.unique.clone();
            }
            Fixture::OwnToken => {
                self.token = Some(app.user(&self.unique, &[role.as_str()]).await);
            }
            Fixture::OwnModule => {
                self.name = format!("matrix_{}", self.unique.replace('-', "_"));
                approved(
                    app,
                    "a policy module",
                    app.call(
                        Method::PUT,
                        &format!("/api/v1/policy/modules/{}", self.name),
                        Some(ADMIN_TOKEN),
                        Some(policy_module(&self.name)),
                    )
                    .await,
                )
                .await;
            }
            Fixture::OwnGroupMapping => {
                self.name = self.unique.clone();
                ok(
                    "a group mapping",
                    app.call(
                        Method::PUT,
                        &format!("/api/v1/groups/{}", self.name),
                        Some(ADMIN_TOKEN),
                        Some(json!({"roles": ["requester"]})),
                    )
                    .await,
                );
            }
            Fixture::LonelyTenantRequest => {
                let tenant = ok(
                    "a tenant",
                    app.post(
                        "/api/v1/tenants",
                        ADMIN_TOKEN,
                        json!({"name": self.unique, "admin": "lonely-admin"}),
                    )
                    .await,
                );
                let item = json!({"name": "lonely", "description": "matrix", "max_impact": "low"});
                let waiting = ok(
                    "a privileged request",
                    app.call(
                        Method::PUT,
                        "/api/v1/catalog/lonely",
                        Some(&text(&tenant, "token")),
                        Some(item),
                    )
                    .await,
                );
                self.name = self.unique.clone();
                self.id = text(&waiting, "id");
            }
            Fixture::DataSubject => {
                let subject = app.user(&self.unique, &["requester"]).await;
                submit(app, &subject, change(json!({}))).await;
                self.user = self.unique.clone();
            }
        }
        self
    }

    /// `path` with its placeholders filled.
    pub fn fill(&self, path: &str) -> String {
        path.replace("{id}", &self.id)
            .replace("{name}", &self.name)
            .replace("{user}", &self.user)
            // The audit log's first leaf: the installation tenant's first event.
            .replace("{index}", "0")
    }
}
