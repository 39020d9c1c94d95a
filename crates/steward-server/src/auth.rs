//! Authentication (API tokens; single sign-on's sessions and bearer JWTs in `signin`) and
//! authorization as permits: the only way to the store.
//!
//! A handler learns who is calling from the [`Caller`] extractor. It reaches data only through a
//! [`Permit`]: `caller.may::<PushMetrics>(&state)?` checks the caller's roles against what the
//! permission allows and, if they pass, hands back the caller's principal and the store handle the
//! operation needs — scoped to the caller's tenant. The store itself sits in a [`Vault`] that only
//! this module opens, so a handler that forgets the check has no store to call and does not
//! compile (lldap's shape: capabilities that are locks, not labels).
//!
//! Permissions are named after what they allow (`ApproveChanges`, `PushMetrics`,
//! `ReadAuditLog` …), never after who happens to hold them; [`PERMISSIONS`] lists each with the
//! roles that hold it, and the authorization-matrix test checks every route against it. Service
//! accounts (`pipeline`, `monitor`) ask and record: permissions marked `PEOPLE_ONLY` refuse any
//! account that holds a service role, whatever else it holds. Permissions marked
//! `INSTALLATION_ONLY` (creating tenants, running retention over the whole log) are held only by
//! accounts of the installation tenant (`default`): a tenant's admin administers its tenant, the
//! installation's admins the installation.
//!
//! The server's own work (the execution worker, scheduled scans, checkpoints) acts as the reserved
//! account `steward` through [`System`], which only those workers make; no request reaches it
//! without a permit first (a test keeps `System` out of the request handlers). The execution
//! runner takes a [`RunOrder`], made only from a permit to implement changes or approve
//! containment, or by the worker's `System`: running a change's steps always has an
//! authorization behind it.

pub(crate) mod session;
pub(crate) mod signin;

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::marker::PhantomData;
use steward_core::{Role, TenantId, UserName};
use steward_store::{Principal, Store, TenantStore, TokenCheck};

/// A new random API token: `stw_` and 64 hex digits (256 bits from the OS).
pub fn generate_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(format!("stw_{}", steward_audit::hex::encode(&bytes)))
}

/// Tokens carry 256 bits of entropy, so a fast hash suffices: there is nothing to brute-force,
/// and a slow KDF would only slow every request down.
pub fn hash_token(token: &str) -> String {
    steward_audit::hash::sha256(token.as_bytes()).to_hex()
}

/// The API token a request presents (`Authorization: Bearer <token>`), if it presents one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The store, sealed: only this module opens it, and only for a permit or [`System`].
#[derive(Debug, Clone)]
pub struct Vault(Store);

impl Vault {
    pub(crate) fn new(store: Store) -> Vault {
        Vault(store)
    }
}

/// The authenticated caller of a request. Holds no store: see [`Caller::may`].
#[derive(Debug, Clone)]
pub struct Caller(Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        // Single sign-on first: a bearer JWT from the identity provider, or a portal session.
        if let Some(caller) = signin::caller(parts, state).await {
            return caller;
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing API token: send `Authorization: Bearer <token>` (CLI: --token or STEWARD_TOKEN)".into(),
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        Caller::from_token(state, token).await
    }
}

impl Caller {
    /// The account a token belongs to (for endpoints whose clients send the token in the body,
    /// like PagerDuty's `routing_key`).
    ///
    /// Read on every request, never cached: a disabled account's token, an expired or a revoked
    /// one is refused (401 saying which) from the request after the change.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
        match state
            .store
            .0
            .authenticate(&hash_token(token), state.clock.now())
            .await?
        {
            TokenCheck::Valid(principal) => Ok(Caller(principal)),
            TokenCheck::Refused(why) => Err(ApiError::Unauthorized(why.to_string())),
            TokenCheck::Unknown => Err(ApiError::Unauthorized("unknown API token".into())),
        }
    }

    /// Who is calling. Knowing it grants nothing: data is reached through [`Caller::may`].
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    pub fn name(&self) -> &UserName {
        &self.0.name
    }

    /// The caller's own account (status, created, last used): knowing who you are lets you read
    /// that much of yourself, and nothing else.
    pub async fn own_account(
        &self,
        app: &AppState,
    ) -> Result<Option<steward_store::Account>, steward_store::StoreError> {
        app.store
            .0
            .tenant(&self.0.tenant)
            .account(&self.0.name)
            .await
    }

    /// Whether the caller's roles hold `P` (what a page offers; acting still takes a permit).
    pub fn holds<P: Permission>(&self) -> bool {
        allows::<P>(&self.0)
    }

    /// The permit for `P`, when the caller's roles allow it; 403 naming the permission and the
    /// roles that hold it otherwise.
    pub fn may<'a, P: Permission>(&'a self, app: &'a AppState) -> Result<Permit<'a, P>, ApiError> {
        if allows::<P>(&self.0) {
            Ok(Permit {
                principal: &self.0,
                store: app.store.0.tenant(&self.0.tenant),
                vault: &app.store.0,
                permission: PhantomData,
            })
        } else {
            Err(ApiError::NotPermitted {
                permission: P::NAME,
                roles: P::ROLES,
                people_only: P::PEOPLE_ONLY,
                installation_only: P::INSTALLATION_ONLY,
            })
        }
    }
}

/// Whether a principal holds `P`.
fn allows<P: Permission>(principal: &Principal) -> bool {
    let service = principal.roles.iter().any(Role::is_service_account);
    let holds = P::ROLES.iter().any(|r| principal.roles.contains(*r));
    let installation = principal.tenant == TenantId::default_tenant();
    holds && !(P::PEOPLE_ONLY && service) && (installation || !P::INSTALLATION_ONLY)
}

/// A permission: what it is called, which roles hold it, whether service accounts are refused.
pub trait Permission {
    /// snake_case, as it appears in 403 answers and in the published matrix.
    const NAME: &'static str;
    const ROLES: &'static [Role];
    /// Refused to any account holding a service role (`pipeline`, `monitor`).
    const PEOPLE_ONLY: bool = false;
    /// Held only by accounts of the installation tenant (`default`), whatever their roles
    /// elsewhere: the permission acts on the installation, not on one tenant.
    const INSTALLATION_ONLY: bool = false;
    /// One line for the published matrix.
    const MEANING: &'static str;
}

/// Proof that the caller holds permission `P`: the only way to the tenant's store.
pub struct Permit<'a, P> {
    principal: &'a Principal,
    store: TenantStore<'a>,
    vault: &'a Store,
    permission: PhantomData<fn() -> P>,
}

impl<P: Permission> std::fmt::Debug for Permit<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("permission", &P::NAME)
            .field("principal", &self.principal.name)
            .finish()
    }
}

impl<'a, P: Permission> Permit<'a, P> {
    /// Who the write is recorded under.
    pub fn principal(&self) -> &'a Principal {
        self.principal
    }

    pub fn who(&self) -> &'a UserName {
        &self.principal.name
    }

    /// The caller's tenant's records, and only those.
    pub fn store(&self) -> TenantStore<'a> {
        self.store.clone()
    }

    /// The same caller may need a second permission in one operation (e.g. a submitter reading
    /// the records its change names); this asks for it without a second extractor.
    pub fn also<Q: Permission>(&self) -> Result<Permit<'a, Q>, ApiError> {
        if allows::<Q>(self.principal) {
            Ok(Permit {
                principal: self.principal,
                store: self.vault.tenant(&self.principal.tenant),
                vault: self.vault,
                permission: PhantomData,
            })
        } else {
            Err(ApiError::NotPermitted {
                permission: Q::NAME,
                roles: Q::ROLES,
                people_only: Q::PEOPLE_ONLY,
                installation_only: Q::INSTALLATION_ONLY,
            })
        }
    }
}

/// Permissions over the whole installation rather than one tenant (each `INSTALLATION_ONLY`):
/// retention runs over the whole log, and tenants are the installation's to create.
pub trait InstallationWide: Permission {}
impl InstallationWide for ManageRetention {}
impl InstallationWide for ManageTenants {}

impl<'a, P: InstallationWide> Permit<'a, P> {
    /// The whole installation's store: every tenant, and the one log spanning them.
    pub fn installation(&self) -> &'a Store {
        self.vault
    }
}

impl<'a> Permit<'a, ReadAuditLog> {
    /// The audit log as this reader may see it: one tree spans every tenant, so its hashes
    /// (checkpoints, nodes, proofs) are everyone's, but the entries are shown in full only for
    /// the reader's own tenant — every tenant's for a reader of the installation tenant.
    pub fn log(&self) -> AuditLog<'a> {
        let tenant = (self.principal.tenant != TenantId::default_tenant())
            .then(|| self.principal.tenant.clone());
        AuditLog {
            store: self.vault,
            tenant,
        }
    }
}

/// The audit log through a reader's permit ([`Permit::<ReadAuditLog>::log`]).
#[derive(Debug, Clone)]
pub struct AuditLog<'a> {
    store: &'a Store,
    /// `None`: the installation's reader, who sees every entry.
    tenant: Option<TenantId>,
}

impl<'a> AuditLog<'a> {
    /// The tree: its size, nodes, checkpoints and proofs, which hold hashes only.
    pub fn tree(&self) -> &'a Store {
        self.store
    }

    /// The tenant this reader is limited to, if any.
    pub fn limited_to(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// Whose entries the reader sees in full: its own tenant's; or, for the installation's
    /// reader, every tenant's, or the one tenant it asks for (an export for one tenant's
    /// auditors). A reader limited to a tenant cannot widen its view.
    pub fn scope<'s>(
        &'s self,
        asked: Option<&'s TenantId>,
    ) -> Result<steward_store::LeafScope<'s>, ApiError> {
        use steward_store::LeafScope;
        match (&self.tenant, asked) {
            (None, None) => Ok(LeafScope::Everything),
            (None, Some(asked)) => Ok(LeafScope::Tenant(asked.as_str())),
            (Some(own), None) => Ok(LeafScope::Tenant(own.as_str())),
            (Some(own), Some(asked)) if asked == own => Ok(LeafScope::Tenant(own.as_str())),
            (Some(own), Some(_)) => Err(ApiError::Forbidden(format!(
                "an account of tenant {own} reads only tenant {own}'s audit entries: leave out `tenant`, or ask an auditor of the installation"
            ))),
        }
    }
}

/// The server acting as itself (`steward`): the execution worker, scheduled scans, checkpoints,
/// retention, and the steps an approval set running. Made only by those workers and by
/// [`Application`](crate::Application); requests never start from it.
#[derive(Debug, Clone, Copy)]
pub struct System<'a>(&'a Store);

impl<'a> System<'a> {
    pub(crate) fn of(app: &'a AppState) -> System<'a> {
        System(&app.store.0)
    }

    pub fn store(&self) -> &'a Store {
        self.0
    }

    pub fn tenant(&self, tenant: &TenantId) -> TenantStore<'a> {
        self.0.tenant(tenant)
    }
}

impl System<'_> {
    /// The worker's own order to run, verify or undo a change in `tenant`.
    pub fn order(&self, tenant: &TenantId) -> RunOrder {
        RunOrder::new(self.0, tenant, system_account())
    }
}

fn system_account() -> UserName {
    UserName::parse(crate::execution::SYSTEM_ACTOR).expect("the system actor's name is valid")
}

/// Leave to run a change's steps, verify it, undo it, or run an incident's containment actions:
/// the one way into the execution runner, which then acts as the server (`steward`) in one
/// tenant. Made only from a permit to implement changes (a person starting or rolling back a
/// change), a permit to approve containment, or by the worker ([`System::order`]) — so no code
/// path reaches the runner without an authorization behind it. Owned, so a spawned run carries
/// it.
#[derive(Debug, Clone)]
pub struct RunOrder {
    store: Store,
    tenant: TenantId,
    ordered_by: UserName,
}

impl RunOrder {
    fn new(store: &Store, tenant: &TenantId, ordered_by: UserName) -> RunOrder {
        RunOrder {
            store: store.clone(),
            tenant: tenant.clone(),
            ordered_by,
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The person whose permit made the order, or `steward` for the worker.
    pub fn ordered_by(&self) -> &UserName {
        &self.ordered_by
    }

    /// The order's tenant's records.
    pub fn store(&self) -> TenantStore<'_> {
        self.store.tenant(&self.tenant)
    }

    /// The installation's audit log size (verification checks nothing was lost from it while
    /// a change was watched).
    pub async fn audit_size(&self) -> Result<u64, steward_store::StoreError> {
        self.store.audit_size().await
    }

    /// Whether the audit log lost entries since it had `from`.
    pub async fn audit_gap(&self, from: u64) -> Result<Option<String>, steward_store::StoreError> {
        self.store.audit_gap(from).await
    }
}

impl Permit<'_, ImplementChanges> {
    /// An order to run or undo a change's steps in the caller's tenant.
    pub fn order(&self) -> RunOrder {
        RunOrder::new(
            self.vault,
            &self.principal.tenant,
            self.principal.name.clone(),
        )
    }
}

impl Permit<'_, HandleIncidents> {
    /// An order to run a containment playbook at once: its actions were approved when the
    /// playbook was written (by someone who keeps detectors), and the core lets one run without
    /// a second approval only for a SEV1.
    pub fn playbook_order(&self) -> RunOrder {
        RunOrder::new(
            self.vault,
            &self.principal.tenant,
            self.principal.name.clone(),
        )
    }
}

impl Permit<'_, ApproveContainment> {
    /// An order to run an approved containment plan in the caller's tenant.
    pub fn order(&self) -> RunOrder {
        RunOrder::new(
            self.vault,
            &self.principal.tenant,
            self.principal.name.clone(),
        )
    }
}

/// A check made outside the role system: a webhook whose signature or shared token verified
/// (GitHub, GitLab) acts in its configured tenant as the integration. The only constructors are
/// the verifications themselves, so a handler cannot hold one for an unverified request.
#[derive(Debug)]
pub struct VerifiedWebhook<'a> {
    store: TenantStore<'a>,
}

impl<'a> VerifiedWebhook<'a> {
    /// GitHub: the body carries a valid `X-Hub-Signature-256` under the configured secret.
    pub fn github(
        app: &'a AppState,
        config: &crate::GithubConfig,
        body: &[u8],
        signature: Option<&str>,
    ) -> Option<VerifiedWebhook<'a>> {
        steward_connectors::github::verify(config.webhook_secret.as_bytes(), body, signature).then(
            || VerifiedWebhook {
                store: app.store.0.tenant(&config.tenant),
            },
        )
    }

    /// GitLab: the `X-Gitlab-Token` equals the configured webhook token.
    pub fn gitlab(
        app: &'a AppState,
        config: &crate::GitlabConfig,
        token: Option<&str>,
    ) -> Option<VerifiedWebhook<'a>> {
        steward_connectors::gitlab::token_matches(&config.webhook_token, token).then(|| {
            VerifiedWebhook {
                store: app.store.0.tenant(&config.tenant),
            }
        })
    }

    pub fn store(&self) -> TenantStore<'a> {
        self.store.clone()
    }
}

/// Unauthenticated readiness: may only ask whether the database answers.
pub async fn database_answers(app: &AppState) -> Result<(), steward_store::StoreError> {
    app.store.0.ping().await
}

macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident = $text:literal, people_only: $people:literal, $(installation_only: $installation:literal,)? $meaning:literal, [$($role:ident),+];)+) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub enum $name {}
            impl Permission for $name {
                const NAME: &'static str = $text;
                const ROLES: &'static [Role] = &[$(Role::$role),+];
                const PEOPLE_ONLY: bool = $people;
                const INSTALLATION_ONLY: bool = false $(|| $installation)?;
                const MEANING: &'static str = $meaning;
            }
        )+
        /// Every permission: (name, roles, people only, meaning) — for the published matrix.
        pub const PERMISSIONS: &[(&str, &[Role], bool, &str)] = &[
            $(($text, &[$(Role::$role),+], $people, $meaning)),+
        ];
        /// Every permission's name, and whether only the installation tenant's accounts hold it.
        const INSTALLATION_SCOPES: &[(&str, bool)] = &[
            $(($text, <$name as Permission>::INSTALLATION_ONLY)),+
        ];
    };
}

/// Whether the permission named `name` is held only by accounts of the installation tenant.
pub fn installation_only(name: &str) -> bool {
    INSTALLATION_SCOPES
        .iter()
        .any(|(n, installation)| *n == name && *installation)
}

// Roles that act as people (everyone but the read-only auditor and the service accounts).
permissions! {
    /// Read the tenant's records: changes, targets, catalog, incidents, models, metrics, calendar.
    ReadRecords = "read_records", people_only: false,
        "read the tenant's changes, targets, catalog, incidents, inventory, metrics and calendar",
        [Requester, Manager, CabMember, Ciso, VpEngineering, ComplianceOfficer, Auditor, Admin, Pipeline, Monitor];
    /// Propose changes (and send drafts for approval).
    SubmitChanges = "submit_changes", people_only: false,
        "propose changes and send drafts for approval",
        [Requester, Manager, Admin, Pipeline];
    /// Approve or reject changes; the core decides which slot, if any, this person may fill.
    ApproveChanges = "approve_changes", people_only: true,
        "approve or reject changes (the change's routing decides which slots)",
        [Manager, CabMember, Ciso, VpEngineering, ComplianceOfficer, Admin];
    /// Schedule, implement, complete, fail, roll back and close changes.
    ImplementChanges = "implement_changes", people_only: true,
        "schedule, implement, complete, fail, roll back and close changes (not one's own)",
        [Requester, Manager, CabMember, Ciso, VpEngineering, ComplianceOfficer, Admin];
    /// Withdraw a change (its requester or an admin, as the core decides).
    CancelChanges = "cancel_changes", people_only: false,
        "cancel a change one requested (admins: any)",
        [Requester, Manager, CabMember, Ciso, VpEngineering, ComplianceOfficer, Admin, Pipeline];
    /// Report a deployment a pipeline ran for a change: evidence of when it took effect, never a
    /// lifecycle step.
    RecordDeployments = "record_deployments", people_only: false,
        "report that a pipeline started, finished or failed deploying a change (evidence of when it took effect)",
        [Pipeline];
    /// Record what a change owes (post-implementation reviews, obligations).
    FulfilObligations = "fulfil_obligations", people_only: true,
        "record post-implementation reviews and other obligations",
        [Requester, Manager, CabMember, Ciso, VpEngineering, ComplianceOfficer, Admin];
    /// Register and change targets.
    ManageTargets = "manage_targets", people_only: true,
        "register targets", [Manager, Admin];
    /// Keep the standard-change catalog.
    ManageCatalog = "manage_catalog", people_only: true,
        "add and change standard-change catalog items", [Admin];
    /// Create, disable and enable accounts, set their roles, revoke and issue their tokens.
    ManageUsers = "manage_users", people_only: true,
        "create, disable and enable accounts, set their roles, revoke and issue their tokens",
        [Admin];
    /// Map identity-provider groups to roles in the tenant (single sign-on).
    ManageGroupRoles = "manage_group_roles", people_only: true,
        "map identity-provider groups to roles in the tenant (single sign-on)", [Admin];
    /// Replace the token one is calling with by a new one (every account, service accounts too:
    /// a pipeline's secret must be rotatable without an admin).
    RotateOwnToken = "rotate_own_token", people_only: false,
        "replace one's own API token by a new one (the old one stops working)",
        [Requester, Manager, CabMember, Ciso, VpEngineering, ComplianceOfficer, Auditor, Admin, Pipeline, Monitor];
    /// Approve or reject a privileged operation another admin requested (dual control).
    DecidePrivileged = "decide_privileged", people_only: true,
        "approve or reject a privileged operation another admin requested (dual control; never one's own)",
        [Admin];
    /// See the privileged operations waiting for a second admin, and those decided (access
    /// reviews).
    ReviewPrivileged = "review_privileged", people_only: true,
        "list privileged operations waiting for a second admin and those decided", [Admin, Auditor];
    /// Push metric samples: the evidence verification judges changes by.
    PushMetrics = "push_metrics", people_only: false,
        "push metric samples (the evidence changes are verified against)", [Monitor];
    /// Send alert signals (Alertmanager, PagerDuty-style events).
    SendSignals = "send_signals", people_only: false,
        "send alerts and change events from monitoring (their times decide which changes are suspects)",
        [Monitor];
    /// Open incidents by hand, acknowledge, contain, resolve and review them, keep problem records.
    HandleIncidents = "handle_incidents", people_only: true,
        "open, acknowledge, contain, resolve and review incidents; keep problem records",
        [Requester, Manager, CabMember, Ciso, VpEngineering, ComplianceOfficer, Admin];
    /// Approve containment plans (the core decides who may).
    ApproveContainment = "approve_containment", people_only: true,
        "approve an incident's containment plan (an owning manager of an affected target)",
        [Manager];
    /// Keep detector rules and containment playbooks.
    KeepDetectors = "keep_detectors", people_only: true,
        "keep anomaly detector rules and containment playbooks",
        [Manager, ComplianceOfficer, Admin];
    /// Attest model fields (`inventory set`).
    AttestModels = "attest_models", people_only: true,
        "attest model facts (owners, purpose, validation)", [Manager, ComplianceOfficer, Admin];
    /// Register model versions (a training pipeline's account, or a person).
    RegisterVersions = "register_versions", people_only: false,
        "register model versions", [Manager, ComplianceOfficer, Admin, Pipeline];
    /// Record inventory scans (uploaded by `steward inventory scan`).
    RecordScans = "record_scans", people_only: false,
        "upload inventory scan reports", [Manager, ComplianceOfficer, Admin, Monitor];
    /// Keep the metadata templates per risk tier.
    KeepTemplates = "keep_templates", people_only: true,
        "set the mandatory metadata templates", [ComplianceOfficer, Admin];
    /// Create and delete maintenance windows and freezes.
    KeepCalendar = "keep_calendar", people_only: true,
        "create and delete maintenance windows and freezes", [ComplianceOfficer, CabMember, Admin];
    /// Read every change's stored policy input (backtests).
    ReadPolicyInputs = "read_policy_inputs", people_only: false,
        "read every change's stored policy input (backtests)", [ComplianceOfficer, Auditor, Admin];
    /// Read the audit log: checkpoints, proofs, and the entries of one's own tenant (every
    /// tenant's in the installation tenant; the others' appear as leaf hashes only).
    ReadAuditLog = "read_audit_log", people_only: false,
        "read the audit log's checkpoints and proofs, and its entries of one's own tenant (the installation tenant: every tenant's)",
        [Auditor, Admin];
    /// Erase a person's data; place and release legal holds.
    ErasePersonalData = "erase_personal_data", people_only: true,
        "erase a person's data; place and release legal holds", [ComplianceOfficer, Admin];
    /// Run retention now (over the whole log, so the installation's admins only).
    ManageRetention = "manage_retention", people_only: true, installation_only: true,
        "run audit payload retention now, over every tenant's payloads", [Admin];
    /// Create tenants and list them: the installation's admins only.
    ManageTenants = "manage_tenants", people_only: true, installation_only: true,
        "create tenants (each with its first admin) and list them", [Admin];
    /// Add, replace and delete the tenant's own Rego policy modules.
    ManagePolicies = "manage_policies", people_only: true,
        "add, replace and delete the tenant's own Rego policy modules", [Admin];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request handlers reach the store through permits only: `System` (the server acting as
    /// itself) belongs to the workers, never to a handler.
    #[test]
    fn no_request_handler_acts_as_the_system() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut dirs = vec![src.join("api"), src.join("portal")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("handler directory") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source");
                if text.contains("System::of") || text.contains("auth::System") {
                    offenders.push(path.display().to_string());
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "handlers must authorize with a permit, not act as the system: {offenders:?}"
        );
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = generate_token().expect("token");
        let b = generate_token().expect("token");
        assert_ne!(a, b);
        assert!(a.starts_with("stw_") && a.len() == 68, "{a}");
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn principal(roles: &str) -> Principal {
        Principal {
            tenant: TenantId::parse("default").expect("tenant"),
            name: UserName::parse("someone").expect("name"),
            roles: steward_core::role::Roles::parse_list(roles).expect("roles"),
        }
    }

    #[test]
    fn service_accounts_never_hold_a_people_only_permission() {
        assert!(allows::<ApproveChanges>(&principal("manager")));
        assert!(!allows::<ApproveChanges>(&principal("manager,pipeline")));
        assert!(!allows::<ImplementChanges>(&principal("admin,monitor")));
        assert!(allows::<SubmitChanges>(&principal("pipeline")));
        assert!(allows::<PushMetrics>(&principal("monitor")));
        assert!(!allows::<PushMetrics>(&principal("requester")));
        assert!(!allows::<PushMetrics>(&principal("admin")));
    }

    #[test]
    fn installation_permissions_are_held_in_the_installation_tenant_only() {
        let mut admin = principal("admin");
        assert!(allows::<ManageTenants>(&admin) && allows::<ManageRetention>(&admin));
        admin.tenant = TenantId::parse("risk").expect("tenant");
        assert!(!allows::<ManageTenants>(&admin) && !allows::<ManageRetention>(&admin));
        assert!(allows::<ManageUsers>(&admin) && allows::<ManagePolicies>(&admin));
        assert!(installation_only("manage_tenants") && !installation_only("manage_users"));
    }
}
