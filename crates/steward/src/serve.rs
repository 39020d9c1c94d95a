//! `steward serve`: configuration from flags, `STEWARD_…` variables and a TOML file, then the server.
//!
//! Precedence, highest first: command-line flag, environment variable, config file, default.

mod sso;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use steward_core::approval::RoutingPolicy;
use steward_core::risk::RiskPolicy;
use steward_server::{Application, ServerConfig, redact_url};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file.
    #[arg(long, env = "STEWARD_CONFIG")]
    config: Option<PathBuf>,
    /// Where Steward keeps its SQLite database and admin token [default: ./steward-data].
    #[arg(long, env = "STEWARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "STEWARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB [default: SQLite in the data directory].
    #[arg(long, env = "STEWARD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The admin's API token on first start (generated when absent).
    #[arg(long, env = "STEWARD_BOOTSTRAP_TOKEN", hide_env_values = true)]
    bootstrap_token: Option<String>,
    /// Distinct cab_member approvals a high-risk change needs [default: 3].
    #[arg(long, env = "STEWARD_CAB_QUORUM")]
    cab_quorum: Option<u32>,
    /// Risk score at which a change is high risk and goes to the CAB [default: 60].
    #[arg(long, env = "STEWARD_RISK_HIGH_THRESHOLD")]
    risk_high_threshold: Option<u32>,
    /// Risk score at which a change is medium risk [default: 30].
    #[arg(long, env = "STEWARD_RISK_MEDIUM_THRESHOLD")]
    risk_medium_threshold: Option<u32>,
    /// The audit log's name in its checkpoints [default: steward.local/audit].
    #[arg(long, env = "STEWARD_AUDIT_ORIGIN")]
    audit_origin: Option<String>,
    /// The checkpoint signing key, 64 hex digits [default: generated into the data directory].
    #[arg(long, env = "STEWARD_AUDIT_SIGNING_KEY", hide_env_values = true)]
    audit_signing_key: Option<String>,
    /// The file holding the key-encryption key that wraps the per-person payload keys in the
    /// database (32 bytes, or 64 hex digits) [default: DATA_DIR/payload-kek, created on first
    /// start]. Every server sharing one database needs the same file.
    #[arg(long, env = "STEWARD_PAYLOAD_KEK_FILE")]
    payload_kek_file: Option<PathBuf>,
    /// Days audit payloads (free text, personal data) are kept [default: 2555, 7 years].
    #[arg(long, env = "STEWARD_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u32>,
    /// A directory of Rego policies (`package steward.rules.<name>`) judged beside the built-in
    /// pack. A broken policy stops start-up.
    #[arg(long, env = "STEWARD_POLICY_DIR")]
    policy_dir: Option<PathBuf>,
    /// Leave the built-in policy pack out (only the policy directory's rules apply).
    #[arg(long, env = "STEWARD_NO_BUILTIN_POLICIES")]
    no_builtin_policies: bool,
    /// The secret of a GitHub webhook sending deployment_protection_rule events.
    #[arg(long, env = "STEWARD_GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    github_webhook_secret: Option<String>,
    /// The token Steward answers GitHub's deployment reviews with.
    #[arg(long, env = "STEWARD_GITHUB_TOKEN", hide_env_values = true)]
    github_token: Option<String>,
    /// The secret token of a GitLab webhook sending deployment events (projects map to targets
    /// in the config file's [gitlab.projects]).
    #[arg(long, env = "STEWARD_GITLAB_WEBHOOK_TOKEN", hide_env_values = true)]
    gitlab_webhook_token: Option<String>,
    /// How often the execution worker looks for changes whose window opened, executions to
    /// resume and checks to run, in milliseconds.
    #[arg(long, env = "STEWARD_EXECUTION_TICK_MS", default_value_t = 5000)]
    execution_tick_ms: u64,
    /// How long past a step's timeout a stopped server's execution stays leased before another
    /// server (or this one, restarted) resumes it, in seconds.
    #[arg(
        long,
        env = "STEWARD_EXECUTION_LEASE_GRACE_SECONDS",
        default_value_t = 60
    )]
    execution_lease_grace_seconds: u64,
    /// Signals on a target join an open incident on it opened at most this many minutes ago.
    #[arg(long, env = "STEWARD_INCIDENT_GROUPING_MINUTES", default_value_t = 30)]
    incident_grouping_minutes: u64,
    /// Changes implemented at most this many hours before an anomaly began are suspects.
    #[arg(long, env = "STEWARD_INCIDENT_CORRELATION_HOURS", default_value_t = 24)]
    incident_correlation_hours: u64,
    /// Scan this directory of model files for the inventory on the schedule (repeatable).
    #[arg(long = "scan-files", env = "STEWARD_SCAN_FILES", value_delimiter = ',')]
    scan_files: Vec<PathBuf>,
    /// Scan this MLflow tracking server's registry on the schedule (repeatable).
    #[arg(
        long = "scan-mlflow",
        env = "STEWARD_SCAN_MLFLOW",
        value_delimiter = ','
    )]
    scan_mlflow: Vec<String>,
    /// Scan the Kubernetes cluster of this kubeconfig context on the schedule (repeatable;
    /// `current` for the current context, or in-cluster credentials when there is no kubeconfig).
    #[arg(
        long = "scan-kubernetes",
        env = "STEWARD_SCAN_KUBERNETES",
        value_delimiter = ','
    )]
    scan_kubernetes: Vec<String>,
    /// Minutes between scheduled inventory scans; the first runs at start-up.
    #[arg(long, env = "STEWARD_SCAN_INTERVAL_MINUTES", default_value_t = 60)]
    scan_interval_minutes: u64,
    /// The tenant scheduled scans record into.
    #[arg(long, env = "STEWARD_SCAN_TENANT", default_value = "default")]
    scan_tenant: String,
    #[command(flatten)]
    sso: sso::SsoArgs,
}

/// Secrets that steps and checks name: `STEWARD_SECRET_<NAME>` in the environment.
fn secrets_from_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(key, value)| {
            key.strip_prefix("STEWARD_SECRET_")
                .filter(|name| !name.is_empty())
                .map(|name| (name.to_owned(), value))
        })
        .collect()
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    bootstrap_token: Option<String>,
    #[serde(default)]
    approval: FileApproval,
    #[serde(default)]
    risk: FileRisk,
    #[serde(default)]
    audit: FileAudit,
    #[serde(default)]
    policy: FilePolicy,
    #[serde(default)]
    github: FileGithub,
    #[serde(default)]
    gitlab: FileGitlab,
    /// The address browsers reach Steward at.
    public_url: Option<String>,
    #[serde(default)]
    oidc: sso::FileOidc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGitlab {
    webhook_token: Option<String>,
    /// The account deployments without a change are recorded as [default: gitlab].
    account: Option<String>,
    /// `"group/project" = "target-name"`.
    #[serde(default)]
    projects: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGithub {
    webhook_secret: Option<String>,
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicy {
    dir: Option<PathBuf>,
    builtin: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    origin: Option<String>,
    signing_key: Option<String>,
    /// The payload key-encryption key's file.
    payload_kek_file: Option<PathBuf>,
    retention_days: Option<u32>,
    /// Per event class (`change`, `user`, …): days to keep payloads.
    #[serde(default)]
    retention: std::collections::BTreeMap<String, u32>,
    /// Event classes the law requires keeping for their whole retention, with the legal basis
    /// (`change = "SOX 404 change evidence"`): erasing someone who appears in them is refused.
    #[serde(default)]
    kept_by_law: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApproval {
    cab_quorum: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRisk {
    high_threshold: Option<u32>,
    medium_threshold: Option<u32>,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    // The error's message and line only: its default form quotes the source line, which could be
    // the one holding a password.
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        anyhow::anyhow!(
            "config file {} is invalid: {}{at}",
            path.display(),
            e.message().trim()
        )
    })
}

/// Creates the data directory readable only by its owner (0700): it holds the database, the
/// admin token and the keys. (The server narrows an existing one when it starts.)
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

pub fn resolve(args: ServeArgs) -> anyhow::Result<ServerConfig> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("steward-data"));
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let database_url = match args.database_url.or(file.database_url) {
        Some(url) => url,
        None => {
            private_dir(&data_dir).with_context(|| {
                format!("cannot create the data directory {}", data_dir.display())
            })?;
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("steward.db").display()
            )
        }
    };
    let defaults = RiskPolicy::default();
    let risk_policy = RiskPolicy {
        high_threshold: args
            .risk_high_threshold
            .or(file.risk.high_threshold)
            .unwrap_or(defaults.high_threshold),
        medium_threshold: args
            .risk_medium_threshold
            .or(file.risk.medium_threshold)
            .unwrap_or(defaults.medium_threshold),
    };
    if risk_policy.medium_threshold > risk_policy.high_threshold {
        bail!(
            "the medium risk threshold ({}) must not exceed the high threshold ({})",
            risk_policy.medium_threshold,
            risk_policy.high_threshold
        );
    }
    let cab_quorum = args
        .cab_quorum
        .or(file.approval.cab_quorum)
        .unwrap_or(RoutingPolicy::default().cab_quorum);
    if cab_quorum == 0 {
        bail!("the CAB quorum must be at least 1");
    }
    let github = match (
        args.github_webhook_secret.or(file.github.webhook_secret),
        args.github_token.or(file.github.token),
    ) {
        (None, None) => None,
        (Some(webhook_secret), Some(token)) => Some(steward_server::GithubConfig {
            webhook_secret,
            token,
            tenant: steward_core::TenantId::default_tenant(),
        }),
        _ => bail!(
            "the GitHub integration needs both a webhook secret (STEWARD_GITHUB_WEBHOOK_SECRET) and a token (STEWARD_GITHUB_TOKEN)"
        ),
    };
    let gitlab = match args.gitlab_webhook_token.or(file.gitlab.webhook_token) {
        None => None,
        Some(webhook_token) => {
            let account = file.gitlab.account.unwrap_or_else(|| "gitlab".to_owned());
            let account = steward_core::UserName::parse(&account)
                .map_err(|e| anyhow::anyhow!("[gitlab] account '{account}' {e}"))?;
            let mut projects = std::collections::BTreeMap::new();
            for (project, target) in file.gitlab.projects {
                let target = steward_core::TargetName::parse(&target).map_err(|e| {
                    anyhow::anyhow!(
                        "[gitlab.projects] '{project}' = '{target}': the target name {e}"
                    )
                })?;
                projects.insert(project, target);
            }
            Some(steward_server::GitlabConfig {
                webhook_token,
                account,
                projects,
                tenant: steward_core::TenantId::default_tenant(),
            })
        }
    };
    // A class is matched as the prefix `class.` of an action in SQL: only plain names, so no
    // `_` or `%` can widen the match to other classes.
    for class in file
        .audit
        .retention
        .keys()
        .chain(file.audit.kept_by_law.keys())
    {
        let plain = !class.is_empty()
            && class
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !plain {
            anyhow::bail!(
                "[audit] event class '{class}': a class is the part of an event's action before its first dot (change, incident, inventory …), in lowercase letters, digits and '-'"
            );
        }
    }
    if let Some((class, _)) = file
        .audit
        .kept_by_law
        .iter()
        .find(|(_, b)| b.trim().is_empty())
    {
        anyhow::bail!(
            "[audit.kept_by_law] {class}: give the legal basis erasure is refused on, e.g. \"SOX 404 change evidence\""
        );
    }
    let (public_url, oidc) = sso::resolve(args.sso, file.oidc, file.public_url)?;
    Ok(ServerConfig {
        public_url,
        oidc,
        listen,
        database_url,
        data_dir,
        bootstrap_token: args.bootstrap_token.or(file.bootstrap_token),
        risk_policy,
        routing_policy: RoutingPolicy { cab_quorum },
        audit_origin: args
            .audit_origin
            .or(file.audit.origin)
            .unwrap_or_else(|| "steward.local/audit".to_owned()),
        audit_signing_key: args.audit_signing_key.or(file.audit.signing_key),
        payload_kek_file: args.payload_kek_file.or(file.audit.payload_kek_file),
        audit_retention: steward_server::Retention {
            default_days: args
                .audit_retention_days
                .or(file.audit.retention_days)
                .unwrap_or(steward_server::Retention::default().default_days),
            by_class: file.audit.retention,
            kept_by_law: file.audit.kept_by_law,
        },
        policy_dir: args.policy_dir.or(file.policy.dir),
        builtin_policies: !args.no_builtin_policies && file.policy.builtin.unwrap_or(true),
        github,
        gitlab,
        execution: steward_server::execution::ExecutionConfig {
            tick: std::time::Duration::from_millis(args.execution_tick_ms.max(10)),
            lease_grace: chrono::Duration::seconds(
                args.execution_lease_grace_seconds.min(86_400) as i64
            ),
            secrets: secrets_from_env(),
        },
        inventory_scans: scan_schedule(
            args.scan_files,
            args.scan_mlflow,
            args.scan_kubernetes,
            args.scan_interval_minutes,
            &args.scan_tenant,
        )?,
        incidents: steward_server::incidents::IncidentConfig {
            grouping: chrono::Duration::minutes(
                args.incident_grouping_minutes.clamp(1, 10_080) as i64
            ),
            correlation: chrono::Duration::hours(
                args.incident_correlation_hours.clamp(1, 24 * 90) as i64
            ),
        },
    })
}

fn scan_schedule(
    files: Vec<PathBuf>,
    mlflow: Vec<String>,
    kubernetes: Vec<String>,
    minutes: u64,
    tenant: &str,
) -> anyhow::Result<Option<steward_server::inventory::ScanSchedule>> {
    use steward_server::inventory::SourceSpec;
    let mut sources: Vec<SourceSpec> = files
        .into_iter()
        .map(|dir| SourceSpec::Files {
            dir,
            headers_only: false,
        })
        .collect();
    for url in mlflow {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--scan-mlflow {url}: give the tracking server's http(s) address");
        }
        sources.push(SourceSpec::Mlflow { url, prefix: None });
    }
    sources.extend(kubernetes.into_iter().map(|c| SourceSpec::Kubernetes {
        context: (c != "current").then_some(c),
        kubeconfig: None,
    }));
    if sources.is_empty() {
        return Ok(None);
    }
    if minutes == 0 {
        bail!("--scan-interval-minutes must be at least 1");
    }
    let tenant = steward_core::TenantId::parse(tenant)
        .map_err(|e| anyhow::anyhow!("--scan-tenant {tenant}: {e}"))?;
    Ok(Some(steward_server::inventory::ScanSchedule {
        sources,
        every: std::time::Duration::from_secs(minutes * 60),
        tenant,
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = resolve(args)?;
    tracing::info!(database = %redact_url(&config.database_url), "opening the store");
    let app = Application::build(config).await?;
    if let Some(bootstrap) = app.bootstrap() {
        match &bootstrap.token_file {
            Some(path) => eprintln!(
                "created the admin account; its API token is in {} (readable only by you)",
                path.display()
            ),
            None => {
                eprintln!("created the admin account with the token from STEWARD_BOOTSTRAP_TOKEN")
            }
        }
    }
    let addr = app.local_addr()?;
    eprintln!(
        "steward is listening on http://{addr} (API under /api/v1, OpenAPI at /api/v1/openapi.json)"
    );
    app.run_until_stopped(shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn resolve_args(args: &[&str]) -> anyhow::Result<ServerConfig> {
        let cli = Cli::try_parse_from(std::iter::once("steward").chain(args.iter().copied()))?;
        resolve(cli.serve)
    }

    fn config_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path.display().to_string())
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let (dir, path) = config_file(
            "listen = \"127.0.0.1:9999\"\ndatabase_url = \"postgres://u:secret@db/steward\"\n\
             [approval]\ncab_quorum = 5\n[risk]\nhigh_threshold = 70\n",
        );
        let data = dir.path().join("data");
        let data = data.to_str().expect("path");
        let config = resolve_args(&["--config", &path, "--data-dir", data, "--cab-quorum", "2"])
            .expect("valid");
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.database_url, "postgres://u:secret@db/steward");
        assert_eq!(config.routing_policy.cab_quorum, 2);
        assert_eq!(config.risk_policy.high_threshold, 70);
        assert_eq!(
            config.risk_policy.medium_threshold,
            RiskPolicy::default().medium_threshold
        );
        // The password never reaches Debug output (and so never a log line).
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn without_a_database_url_sqlite_lives_in_the_data_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        let config = resolve_args(&["--data-dir", data.to_str().expect("path")]).expect("valid");
        assert!(
            config.database_url.starts_with("sqlite://"),
            "{}",
            config.database_url
        );
        assert!(config.database_url.contains("steward.db"));
        assert!(data.is_dir(), "the data directory is created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&data).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "only its owner may enter it");
        }
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    }

    #[test]
    fn the_payload_kek_file_comes_from_the_flag_or_the_file() {
        let (_dir, path) = config_file("[audit]\npayload_kek_file = \"/etc/steward/kek\"\n");
        let config = resolve_args(&["--config", &path]).expect("valid");
        assert_eq!(
            config.payload_kek_file,
            Some(PathBuf::from("/etc/steward/kek"))
        );
        let config =
            resolve_args(&["--config", &path, "--payload-kek-file", "/run/kek"]).expect("valid");
        assert_eq!(config.payload_kek_file, Some(PathBuf::from("/run/kek")));
    }

    #[test]
    fn single_sign_on_comes_from_flags_or_the_oidc_table_and_hides_its_secret() {
        let (_dir, path) = config_file(
            "public_url = \"https://steward.example.com\"\n[oidc]\nissuer = \"https://idp.example.com\"\n\
             client_id = \"steward\"\nclient_secret = \"s3cret-value\"\n",
        );
        let config = resolve_args(&["--config", &path]).expect("valid");
        let oidc = config.oidc.as_ref().expect("configured");
        assert_eq!(
            oidc.audience, "steward",
            "the audience defaults to the client id"
        );
        assert_eq!(oidc.scopes, ["profile", "groups"]);
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://steward.example.com")
        );
        assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
        let config = resolve_args(&[
            "--config",
            &path,
            "--oidc-client-id",
            "other",
            "--oidc-audience",
            "urn:steward:api",
            "--oidc-scopes",
            "profile,email groups",
        ])
        .expect("valid");
        let oidc = config.oidc.as_ref().expect("configured");
        assert_eq!(oidc.client_id, "other");
        assert_eq!(oidc.audience, "urn:steward:api");
        assert_eq!(oidc.scopes, ["profile", "email", "groups"]);
        let (_dir, path) = config_file("[oidc]\nissuer = \"https://idp.example.com\"\n");
        let err = resolve_args(&["--config", &path]).expect_err("no client");
        assert!(err.to_string().contains("--oidc-client-id"), "{err}");
        let err = resolve_args(&["--oidc-client-id", "steward"]).expect_err("no issuer");
        assert!(err.to_string().contains("--oidc-issuer"), "{err}");
        assert!(resolve_args(&[]).expect("valid").oidc.is_none());
    }

    #[test]
    fn bad_configuration_is_refused_with_what_to_fix() {
        let (_dir, path) = config_file("listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
        let err = resolve_args(&["--config", &path]).expect_err("unknown key");
        assert!(
            format!("{err:#}").contains("unknown field `listen_port`"),
            "{err:#}"
        );
        let (_dir, path) = config_file("[risk]\nhigh_threshold = 10\nmedium_threshold = 20\n");
        let err = resolve_args(&["--config", &path]).expect_err("thresholds");
        assert!(err.to_string().contains("must not exceed"), "{err}");
        let err = resolve_args(&["--config", "/no/such/steward.toml"]).expect_err("missing file");
        assert!(err.to_string().contains("cannot read config file"), "{err}");
    }
}
