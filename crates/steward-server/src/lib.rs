//! Steward's HTTP face: the REST API, authentication, and the application lifecycle.
//!
//! This is the only crate that knows HTTP. A request is authenticated into a [`auth::Caller`],
//! authorized into a capability, parsed into core types, decided by `steward-core`, and persisted
//! with its audit events by `steward-store`. [`Application::build`] binds the port (0 in tests)
//! and bootstraps an empty store; [`Application::run_until_stopped`] serves until the shutdown
//! future completes, then drains in-flight requests.

pub mod api;
pub mod audit_log;
pub mod auth;
mod bootstrap;
pub mod dual_control;
pub mod error;
pub mod execution;
pub mod incidents;
pub mod inventory;
mod measures;
pub mod policies;
pub mod portal;
pub mod public_address;
pub mod sso;

pub use bootstrap::Bootstrap;
pub use steward_store::Retention;

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use steward_core::approval::RoutingPolicy;
use steward_core::policy::PolicyEvaluator;
use steward_core::risk::RiskPolicy;
use steward_policy::PolicySet;
use steward_store::Store;

fn policy_version(policy: &PolicySet) -> &str {
    policy.version()
}
use tokio::net::TcpListener;

/// Everything the server needs, passed in explicitly; there is no global configuration.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Where the admin token file (and, for SQLite, the database) lives.
    pub data_dir: PathBuf,
    /// The admin's token on first start; generated when absent.
    pub bootstrap_token: Option<String>,
    pub risk_policy: RiskPolicy,
    pub routing_policy: RoutingPolicy,
    /// The audit log's name, the first line of every checkpoint (e.g. `steward.example.com/audit`).
    pub audit_origin: String,
    /// The checkpoint signing key (64 hex digits). Several servers sharing one database must share
    /// it; a single server may leave it unset and have one generated into the data directory.
    pub audit_signing_key: Option<String>,
    /// The file holding the key-encryption key that wraps the payload keys in the database
    /// (default: `<data_dir>/payload-kek`, created on first start). Several servers sharing one
    /// database must share it.
    pub payload_kek_file: Option<PathBuf>,
    /// How long audit payloads (personal data, free text) are kept, by event class.
    pub audit_retention: steward_store::Retention,
    /// A directory of Rego policies evaluated beside (or, without the built-in pack, instead of)
    /// the built-in pack.
    pub policy_dir: Option<PathBuf>,
    /// Whether the built-in policy pack is loaded (default: yes).
    pub builtin_policies: bool,
    /// GitHub deployment protection rules, when configured.
    pub github: Option<GithubConfig>,
    /// GitLab deployment events, when configured.
    pub gitlab: Option<GitlabConfig>,
    pub execution: execution::ExecutionConfig,
    pub incidents: incidents::IncidentConfig,
    /// Sources the server scans for the inventory on a schedule (none: no scheduled scans).
    pub inventory_scans: Option<inventory::ScanSchedule>,
    /// The address browsers reach Steward at (`https://steward.example.com`): the sign-in's
    /// redirect URI is under it, and cookies are `Secure` when it is https. Default: the address
    /// the server listens on, over http.
    pub public_url: Option<String>,
    /// Single sign-on and bearer JWTs through an OpenID Connect provider, when configured.
    pub oidc: Option<sso::OidcConfig>,
}

/// How Steward records GitLab's deployment events.
#[derive(Clone)]
pub struct GitlabConfig {
    /// The webhook's secret token, sent by GitLab in X-Gitlab-Token.
    pub webhook_token: String,
    /// The account deployments without a change are recorded as (give it the pipeline role).
    pub account: steward_core::UserName,
    /// GitLab project (`group/project`) → the Steward target its deployments change.
    pub projects: std::collections::BTreeMap<String, steward_core::TargetName>,
    pub tenant: steward_core::TenantId,
}

impl std::fmt::Debug for GitlabConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitlabConfig")
            .field("webhook_token", &"<redacted>")
            .field("account", &self.account)
            .field("projects", &self.projects)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// How Steward answers GitHub's deployment protection rule webhooks.
#[derive(Clone)]
pub struct GithubConfig {
    /// The webhook's secret: requests are authenticated by their X-Hub-Signature-256.
    pub webhook_secret: String,
    /// A token that may review deployments (an app installation token or a fine-grained token
    /// with `deployments: write`), sent to the callback URL.
    pub token: String,
    /// The tenant whose changes GitHub deployments refer to.
    pub tenant: steward_core::TenantId,
}

impl std::fmt::Debug for GithubConfig {
    // Hand-written: neither secret reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubConfig")
            .field("webhook_secret", &"<redacted>")
            .field("token", &"<redacted>")
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl std::fmt::Debug for ServerConfig {
    // Hand-written so the bootstrap token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field(
                "bootstrap_token",
                &self.bootstrap_token.as_ref().map(|_| "<redacted>"),
            )
            .field("risk_policy", &self.risk_policy)
            .field("routing_policy", &self.routing_policy)
            .field("audit_origin", &self.audit_origin)
            .field(
                "audit_signing_key",
                &self.audit_signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("payload_kek_file", &self.payload_kek_file)
            .field("audit_retention", &self.audit_retention)
            .field("policy_dir", &self.policy_dir)
            .field("builtin_policies", &self.builtin_policies)
            .field("github", &self.github)
            .field("gitlab", &self.gitlab)
            .field("execution", &self.execution)
            .field("incidents", &self.incidents)
            .field("public_url", &self.public_url)
            .field("oidc", &self.oidc)
            .finish()
    }
}

/// Hides the password in a database URL, in the authority (`postgres://user:secret@host`) or the
/// query (`?password=secret`).
pub fn redact_url(url: &str) -> String {
    let (address, query) = match url.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (url, None),
    };
    let address = redact_authority(address);
    match query {
        None => address,
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{address}?{}", params.join("&"))
        }
    }
}

fn redact_authority(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The server's clock. Real time plus an offset that only tests move, so SLA deadlines and
/// windows can be tested without waiting; times are cut to microseconds, the precision the
/// store keeps, so a value reads back exactly as it was written.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        let now =
            Utc::now() + chrono::Duration::microseconds(self.offset_micros.load(Ordering::Relaxed));
        now.trunc_subsecs(6)
    }

    /// Moves this clock (and every server sharing it) forward.
    pub fn advance(&self, by: chrono::Duration) {
        let micros = by.num_microseconds().unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_wherever_the_url_carries_them() {
        let check = |url: &str, expected: &str| assert_eq!(super::redact_url(url), expected);
        check(
            "postgres://u:secret@db:5432/s",
            "postgres://u:***@db:5432/s",
        );
        check(
            "postgres://u@db/s?password=secret&sslmode=require",
            "postgres://u@db/s?password=***&sslmode=require",
        );
        check(
            "sqlite://steward-data/steward.db?mode=rwc",
            "sqlite://steward-data/steward.db?mode=rwc",
        );
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Sealed: opened only by `auth`, for a permit or the server's own work.
    pub store: auth::Vault,
    pub config: Arc<ServerConfig>,
    pub clock: Clock,
    pub checkpointer: audit_log::Checkpointer,
    /// The compliance policy sets changes are judged by: the installation's, and each tenant's
    /// built on it (`state.policies.of(&store)`).
    pub policies: Arc<policies::Policies>,
    /// The changes this process is executing now.
    pub running: execution::Running,
    /// Serializes signal intake in this process: one signal at a time joins or opens.
    pub intake: Arc<tokio::sync::Mutex<()>>,
    /// Serializes inventory scan recording in this process: one scan reconciles at a time.
    pub scans: Arc<tokio::sync::Mutex<()>>,
    /// The anomaly detectors' state per rule and series.
    pub detectors: crate::api::detectors::DetectorStates,
    /// The OpenID Connect provider (single sign-on, bearer JWTs), when configured.
    pub sso: Option<Arc<sso::Sso>>,
    /// Where browsers reach Steward: the `Origin` a session's writes must carry, and whether
    /// cookies are `Secure`.
    pub public: Arc<public_address::PublicAddress>,
}

/// Loads the policy set the configuration names: the built-in pack and/or a directory. A broken
/// module is an error naming its file and line; the server does not start without its policies.
pub fn load_policies(config: &ServerConfig) -> anyhow::Result<PolicySet> {
    let mut modules = Vec::new();
    if config.builtin_policies {
        modules.extend(steward_policy::builtin_modules());
    }
    if let Some(dir) = &config.policy_dir {
        modules.extend(steward_policy::read_dir(dir)?);
    }
    PolicySet::new(modules).map_err(|e| match &config.policy_dir {
        Some(dir) => anyhow::anyhow!(
            "the policy set is broken, so Steward will not start without it (policy dir {}): {e}",
            dir.display()
        ),
        None => anyhow::anyhow!("the built-in policy pack is broken: {e}"),
    })
}

#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    bootstrap: Option<Bootstrap>,
}

impl Application {
    /// Connects the store (migrating it), bootstraps an empty one, and binds the listener.
    pub async fn build(config: ServerConfig) -> anyhow::Result<Application> {
        Self::build_with_clock(config, Clock::default()).await
    }

    /// As [`Application::build`], with a clock the caller controls (tests).
    pub async fn build_with_clock(
        config: ServerConfig,
        clock: Clock,
    ) -> anyhow::Result<Application> {
        let policy = load_policies(&config)?;
        tracing::info!(
            version = policy_version(&policy),
            rules = policy.rules().len(),
            "policy set loaded"
        );
        // The data directory holds the database (SQLite), the admin token and the keys: private.
        steward_store::private_dir(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let kek_file = (config.payload_kek_file.clone())
            .unwrap_or_else(|| config.data_dir.join("payload-kek"));
        let kek = steward_store::PayloadKek::load_or_create(&kek_file)?;
        let store = Store::connect(&config.database_url, kek)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database at {}",
                    redact_url(&config.database_url)
                )
            })?;
        let bootstrap = bootstrap::run(&store, &config).await?;
        let signer = audit_log::load_signer(
            &config.audit_origin,
            config.audit_signing_key.as_deref(),
            &config.data_dir,
        )?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let (public_url, public) = match &config.public_url {
            Some(url) => (url.clone(), public_address::PublicAddress::parse(url)?),
            None => {
                let url = format!("http://{}", listener.local_addr()?);
                let public = public_address::PublicAddress::listening(&url)?;
                (url, public)
            }
        };
        let public = Arc::new(public);
        let sso = match &config.oidc {
            Some(oidc) => Some(Arc::new(sso::Sso::new(oidc.clone(), &public_url)?)),
            None => None,
        };
        Ok(Application {
            listener,
            state: AppState {
                store: auth::Vault::new(store),
                config: Arc::new(config),
                clock,
                checkpointer: audit_log::Checkpointer::new(signer),
                policies: Arc::new(policies::Policies::new(policy)),
                running: execution::Running::default(),
                intake: Arc::default(),
                scans: Arc::default(),
                detectors: Default::default(),
                sso,
                public,
            },
            bootstrap,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// What first start created, if this start was the first.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.bootstrap.as_ref()
    }

    /// The store, for tests and tools that start the server in-process.
    pub fn store(&self) -> &Store {
        auth::System::of(&self.state).store()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = auth::System::of(&self.state).store().clone();
        let checkpoints = tokio::spawn(self.state.checkpointer.clone().run(store.clone()));
        let retention = tokio::spawn(audit_log::retain(
            store.clone(),
            self.state.config.audit_retention.clone(),
            self.state.clock.clone(),
        ));
        let executions = tokio::spawn(execution::worker(self.state.clone()));
        let scans = self
            .state
            .config
            .inventory_scans
            .clone()
            .map(|schedule| tokio::spawn(inventory::scheduler(self.state.clone(), schedule)));
        let app = api::router(self.state);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server failed");
        checkpoints.abort();
        executions.abort();
        if let Some(scans) = scans {
            scans.abort();
        }
        retention.abort();
        store.close().await;
        served
    }
}
