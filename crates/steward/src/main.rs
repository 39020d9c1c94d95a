//! `steward`: the server (`steward serve`) and the command-line client for everything else.
//!
//! Client commands talk to a server over its REST API (`--server`, `--token`), print readable text
//! or, with `--output json`, the API's JSON unchanged. Errors end the process with status 1 (2 for
//! `steward gate`, whose 1 means "refused") and one readable line on stderr; with `--output json`
//! that line is the JSON error body `{"error": …, "details": …}`, the server's own when it refused.
//! Times typed on the command line go through one parser (`times`, over `steward_core::time`).

mod accounts;
mod admin;
mod audit;
mod client;
mod detect;
mod governance;
mod incident;
mod inventory;
mod output;
mod paging;
mod serve;
mod tenant;
mod times;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use client::Client;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    about = "Governance for ML infrastructure: change management, compliance policy, the change calendar, audit."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

/// How client commands reach the server.
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// The Steward server's base URL.
    #[arg(
        long,
        env = "STEWARD_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// Your API token.
    #[arg(long, env = "STEWARD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// text for people, json for scripts (the API's JSON, with stable keys; errors as JSON too).
    #[arg(long, short = 'o', value_enum, default_value = "text", global = true)]
    output: OutputFormat,
    /// The IANA time zone that dates and local times (2026-12-01, 2026-12-01T22:00) are read in.
    #[arg(long, env = "STEWARD_TZ", default_value = "UTC", global = true)]
    tz: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Steward server (SQLite in ./steward-data unless told otherwise).
    Serve(Box<serve::ServeArgs>),
    /// Accounts and their roles.
    User {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// API tokens: rotate your own, revoke or issue an account's (admin).
    Token {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: accounts::TokenCommand,
    },
    /// Dual control: privileged operations waiting for a second admin, and deciding them.
    Admin {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Tenants (business units): create one with its first admin, list them (installation admins).
    Tenant {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: tenant::TenantCommand,
    },
    /// Show who your token belongs to.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Incidents: list, show, acknowledge, contain, approve containment, resolve, review, close.
    Incident {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// The model inventory: scan model files, list and show models (now or at a past date), state fields.
    Inventory {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: inventory::InventoryCommand,
    },
    /// Problem records: the root causes behind recurring incidents, and their permanent fixes.
    Problem {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: incident::ProblemCommand,
    },
    /// Try an anomaly detector on history, locally: `steward detect replay FILE.csv --detector …`.
    Detect {
        #[command(subcommand)]
        command: detect::DetectCommand,
    },
    /// Detector rules that raise incidents from pushed metrics.
    Detector {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: incident::DetectorCommand,
    },
    /// Your notifications, newest first: rollbacks of your changes, executions that need you.
    Notifications {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        list: paging::ListArgs,
    },
    /// Resources a change can touch.
    Target {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TargetCommand,
    },
    /// The standard-change catalog (pre-approved templates).
    Catalog {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// The verifiable audit log: checkpoints, proofs, export, offline verification.
    Audit {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Change requests.
    Change {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: ChangeCommand,
    },
    /// The deployment gate for pipelines: exit 0 (and why) when the change may deploy to the
    /// target now — approved, in its window, outside freezes, covering the target — exit 1 when
    /// it may not, exit 2 when the question could not be answered (unknown change, bad token,
    /// server down, bad flags).
    Gate {
        #[command(flatten)]
        client: ClientArgs,
        /// The change id, e.g. CHG-7.
        #[arg(long)]
        change: String,
        #[arg(long)]
        target: String,
        #[arg(long)]
        environment: String,
    },
    /// Report a deployment your pipeline ran for a change (pipeline accounts): `started` when the
    /// deploy job begins, `succeeded` or `failed` when it ends. Steward stamps its own time and
    /// the gate's verdict; the change then knows when it really took effect.
    Deployment {
        #[command(flatten)]
        client: ClientArgs,
        /// The change id, e.g. CHG-7.
        #[arg(long)]
        change: String,
        #[arg(long)]
        target: String,
        #[arg(long)]
        environment: String,
        /// started, succeeded or failed
        #[arg(long)]
        status: String,
        /// A link to the pipeline run or job.
        #[arg(long)]
        run: Option<String>,
    },
    /// Compliance policy as code (Rego): test, evaluate, backtest.
    Policy {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: governance::PolicyCommand,
    },
    /// Maintenance windows and freezes.
    Window {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: governance::WindowCommand,
    },
    /// The change calendar as an iCalendar (RFC 5545) feed: changes, windows, freezes.
    Calendar {
        #[command(flatten)]
        client: ClientArgs,
        /// Only changes touching this target, and windows covering it.
        #[arg(long)]
        target: Option<String>,
        /// Only this environment.
        #[arg(long)]
        environment: Option<String>,
        /// Start of the period: 2026-12-01, 2026-12-01T22:00 (in --tz) or RFC 3339 [default: 30 days ago].
        #[arg(long)]
        from: Option<String>,
        /// End of the period, written as --from [default: a year ahead].
        #[arg(long)]
        to: Option<String>,
        /// Write the feed to this file instead of standard output.
        #[arg(long = "out")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TargetCommand {
    /// Register a target (manager or admin).
    Create {
        name: String,
        /// compute_cluster, training_environment, model_deployment, data_source or access_control.
        #[arg(long)]
        kind: String,
        /// The owning manager.
        #[arg(long)]
        owner: String,
        /// production, staging or development.
        #[arg(long)]
        environment: String,
        /// low, medium or high.
        #[arg(long)]
        criticality: String,
        /// Regulated data it processes, comma-separated: pii, financial.
        #[arg(long, value_delimiter = ',')]
        regulated: Vec<String>,
        /// The target it runs on.
        #[arg(long)]
        parent: Option<String>,
    },
    /// List targets, by name.
    List {
        #[command(flatten)]
        list: paging::ListArgs,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// List catalog items, by name.
    List {
        #[command(flatten)]
        list: paging::ListArgs,
    },
    /// Ask to create or replace a catalog item from a YAML or JSON file (admin; takes effect when a second admin approves it: `steward admin approve`).
    Put { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum ChangeCommand {
    /// Submit a change request from a YAML or JSON file (`-` reads standard input). Its
    /// `window.start`/`end` may be RFC 3339, or dates and local times read in --tz.
    Submit {
        file: PathBuf,
        /// Record the CI/CD run raising it, from the pipeline's environment: the commit
        /// (GITHUB_SHA, CI_COMMIT_SHA or STEWARD_PIPELINE_COMMIT), the run (the GitHub Actions
        /// run URL, CI_PIPELINE_URL or STEWARD_PIPELINE_RUN) and STEWARD_ARTIFACT_DIGEST.
        #[arg(long)]
        from_pipeline: bool,
    },
    /// List changes, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long = "type")]
        change_type: Option<String>,
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        requester: Option<String>,
        /// Only changes past their approval deadline.
        #[arg(long)]
        overdue: bool,
        #[command(flatten)]
        list: paging::ListArgs,
    },
    /// Show a change: type, state, risk with factors, approvals and history.
    Show { id: String },
    /// Approve a change.
    Approve {
        id: String,
        #[arg(long)]
        comment: String,
        /// An earlier overlapping change (CHG-n) you checked this one can run beside; repeatable.
        #[arg(long = "acknowledge-conflict")]
        acknowledge_conflicts: Vec<String>,
    },
    /// Reject a change.
    Reject {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Send a draft for approval.
    SubmitDraft { id: String },
    /// Schedule an approved change (into its requested window unless given one).
    Schedule {
        id: String,
        /// The window's start: RFC 3339, or a date or local time read in --tz.
        #[arg(long, requires = "end")]
        start: Option<String>,
        #[arg(long, requires = "start")]
        end: Option<String>,
        /// An overlapping change (CHG-n) you checked this one can run beside; repeatable.
        #[arg(long = "acknowledge-conflict")]
        acknowledge_conflicts: Vec<String>,
    },
    /// Start implementing an approved or scheduled change; a change with steps runs them now,
    /// inside its window and outside freezes.
    Implement {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Record that implementation completed.
    Complete {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Record that implementation failed.
    Fail {
        id: String,
        #[arg(long)]
        comment: String,
    },
    /// Roll a change back: undo each step that ran, last first, from the snapshot taken before
    /// it ran (a change without steps is recorded as rolled back by hand).
    Rollback {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Agree to let an emergency change you approved start outside its window: once every
    /// approver has agreed (within two hours), it may start for two hours. Audited with your reason.
    OverrideWindow {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Close a finished change.
    Close {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Cancel a change that has not started.
    Cancel {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Record that an obligation is met, e.g. the post-implementation review a policy imposed.
    Fulfil {
        id: String,
        /// The obligation, e.g. post_implementation_review.
        obligation: String,
        /// The review itself, or how the obligation was met.
        #[arg(long)]
        note: String,
    },
}

impl Command {
    /// How a client command reaches the server; `None` for the local ones.
    fn client_args(&self) -> Option<&ClientArgs> {
        match self {
            Command::Serve(_) | Command::Detect { .. } => None,
            Command::User { client, .. }
            | Command::Token { client, .. }
            | Command::Admin { client, .. }
            | Command::Tenant { client, .. }
            | Command::Whoami { client }
            | Command::Incident { client, .. }
            | Command::Inventory { client, .. }
            | Command::Problem { client, .. }
            | Command::Detector { client, .. }
            | Command::Notifications { client, .. }
            | Command::Target { client, .. }
            | Command::Catalog { client, .. }
            | Command::Audit { client, .. }
            | Command::Change { client, .. }
            | Command::Gate { client, .. }
            | Command::Deployment { client, .. }
            | Command::Policy { client, .. }
            | Command::Window { client, .. }
            | Command::Calendar { client, .. } => Some(client),
        }
    }
}

/// `steward gate` answered no: exit 1, which a pipeline tells apart from an error (2).
#[derive(Debug)]
struct GateRefused {
    reason: String,
    verdict: Value,
}

impl std::fmt::Display for GateRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.reason)
    }
}

impl std::error::Error for GateRefused {}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| usage_error(e));
    let json = cli
        .command
        .client_args()
        .is_some_and(|c| c.output == OutputFormat::Json);
    let gate = matches!(cli.command, Command::Gate { .. });
    let result = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    if let Err(e) = result {
        let refused = e.downcast_ref::<GateRefused>();
        to_stderr(&error_report(&e, json));
        std::process::exit(match refused {
            Some(_) => 1,
            None if gate => 2,
            None => 1,
        });
    }
}

/// What stderr says about `error`: one readable line, or with `--output json` one line of JSON,
/// `{"error": …, "details": …}` — the server's own body when it refused.
fn error_report(error: &anyhow::Error, json: bool) -> String {
    if !json {
        return format!("error: {}", one_line(error));
    }
    let body = if let Some(refused) = error.downcast_ref::<GateRefused>() {
        json!({ "error": refused.to_string(), "details": refused.verdict })
    } else if let Some(refused) = error
        .chain()
        .find_map(|e| e.downcast_ref::<client::ServerRefused>())
    {
        refused.body.clone()
    } else {
        json!({ "error": one_line(error), "details": null })
    };
    body.to_string()
}

/// A command line clap could not read: its usage message (exit 2), as JSON when the command line
/// asked for `--output json`. Help and version are printed as usual.
fn usage_error(error: clap::Error) -> ! {
    if !error.use_stderr() || !asks_for_json(std::env::args().skip(1)) {
        error.exit()
    }
    let usage = error.render().to_string();
    // What went wrong, on one line: the text before clap's `Usage:` paragraph.
    let what = usage.split("\n\nUsage:").next().unwrap_or_default();
    let what = what.strip_prefix("error: ").unwrap_or(what);
    let message = what.split_whitespace().collect::<Vec<_>>().join(" ");
    to_stderr(&json!({ "error": message, "details": { "usage": usage } }).to_string());
    std::process::exit(error.exit_code())
}

/// One line on stderr. A closed stderr (`… 2>&1 | head`) must not turn the exit status into a
/// panic's 101: a pipeline reads the status, not the text.
fn to_stderr(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Whether the arguments contain `--output json` (or `-o json`, `--output=json`, `-ojson`).
fn asks_for_json(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    args.iter().enumerate().any(|(i, arg)| {
        let next_is_json = args.get(i + 1).is_some_and(|n| n == "json");
        ((arg == "--output" || arg == "-o") && next_is_json)
            || ["--output=json", "-ojson", "-o=json"].contains(&arg.as_str())
    })
}

/// The error and its causes on one line.
fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = error.chain().map(|e| e.to_string()).collect();
    parts.dedup();
    parts.join(": ").replace('\n', " ")
}

fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter: Targets = std::env::var("STEWARD_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| "info,sqlx=warn".parse().unwrap_or_default());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
}

/// The `pipeline` field of a change request from a CI system's environment variables.
fn pipeline_from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
    let first = |names: &[&str]| names.iter().find_map(|n| var(n).filter(|v| !v.is_empty()));
    let commit = first(&["STEWARD_PIPELINE_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"]);
    let github_run = match (
        var("GITHUB_SERVER_URL"),
        var("GITHUB_REPOSITORY"),
        var("GITHUB_RUN_ID"),
    ) {
        (Some(server), Some(repo), Some(run)) => {
            Some(format!("{server}/{repo}/actions/runs/{run}"))
        }
        _ => None,
    };
    let run = first(&["STEWARD_PIPELINE_RUN", "CI_PIPELINE_URL"]).or(github_run);
    let (Some(commit), Some(run)) = (commit, run) else {
        bail!(
            "--from-pipeline needs the commit (GITHUB_SHA, CI_COMMIT_SHA or STEWARD_PIPELINE_COMMIT) and the run (GITHUB_SERVER_URL + GITHUB_REPOSITORY + GITHUB_RUN_ID, CI_PIPELINE_URL or STEWARD_PIPELINE_RUN) in the environment"
        );
    };
    Ok(json!({
        "commit": commit,
        "run": run,
        "artifact_digest": var("STEWARD_ARTIFACT_DIGEST"),
    }))
}

/// Reads a change request file: its window's times become RFC 3339 instants, read in `zone`.
fn read_change(path: &PathBuf, zone: &str) -> anyhow::Result<Value> {
    let mut document = read_document(path)?;
    times::normalise_window(
        &mut document,
        times::zone(zone)?,
        &path.display().to_string(),
    )?;
    Ok(document)
}

/// Reads a YAML or JSON document (`-` for standard input) into JSON.
fn read_document(path: &PathBuf) -> anyhow::Result<Value> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let is_json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    if is_json {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    } else {
        yaml_serde::from_str(&text).with_context(|| format!("{} is not valid YAML", path.display()))
    }
}

struct Ctx {
    client: Client,
    output: OutputFormat,
    /// `--tz`, checked when a time needs it.
    tz: String,
}

impl Ctx {
    fn new(args: &ClientArgs) -> anyhow::Result<Ctx> {
        Ok(Ctx {
            client: Client::new(&args.server, args.token.clone())?,
            output: args.output,
            tz: args.tz.clone(),
        })
    }

    fn zone(&self) -> anyhow::Result<steward_core::time::Tz> {
        times::zone(&self.tz)
    }

    fn print(&self, value: &Value, text: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
        output::emit(self.output == OutputFormat::Json, value, text)
    }

    /// Prints a page of a list: its items as `text` renders them, then how to get the rest.
    fn print_page(
        &self,
        page: &Value,
        list: &paging::ListArgs,
        text: impl FnOnce(&Value) -> String,
    ) -> anyhow::Result<()> {
        paging::print(self.output == OutputFormat::Json, page, list, text)
    }

    async fn transition(
        &self,
        id: &str,
        step: &str,
        comment: Option<String>,
        window: Option<Value>,
        acknowledge_conflicts: Vec<String>,
    ) -> anyhow::Result<()> {
        let body = json!({
            "step": step, "comment": comment, "window": window,
            "acknowledge_conflicts": acknowledge_conflicts,
        });
        let change = self
            .client
            .call(
                Method::POST,
                &format!("/api/v1/changes/{id}/transitions"),
                Some(&body),
            )
            .await?;
        self.print(&change, output::change_summary)
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            init_logging();
            serve::run(*args).await
        }
        Command::Incident { client, command } => {
            let ctx = Ctx::new(&client)?;
            incident::run_incident(
                &ctx.client,
                ctx.output == OutputFormat::Json,
                &ctx.tz,
                command,
                read_document,
            )
            .await
        }
        Command::Detect { command } => detect::run(command),
        Command::Inventory { client, command } => {
            let ctx = Ctx::new(&client)?;
            inventory::run(
                &ctx.client,
                ctx.output == OutputFormat::Json,
                &ctx.tz,
                command,
            )
            .await
        }
        Command::Problem { client, command } => {
            let ctx = Ctx::new(&client)?;
            incident::run_problem(&ctx.client, ctx.output == OutputFormat::Json, command).await
        }
        Command::Admin { client, command } => {
            let ctx = Ctx::new(&client)?;
            admin::run(&ctx.client, ctx.output == OutputFormat::Json, command).await
        }
        Command::Tenant { client, command } => {
            let ctx = Ctx::new(&client)?;
            tenant::run(&ctx.client, ctx.output == OutputFormat::Json, command).await
        }
        Command::Detector { client, command } => {
            let ctx = Ctx::new(&client)?;
            incident::run_detector(&ctx.client, ctx.output == OutputFormat::Json, command).await
        }
        Command::Notifications { client, list } => {
            let ctx = Ctx::new(&client)?;
            let inbox = paging::fetch(&ctx.client, "/api/v1/notifications", &[], &list).await?;
            ctx.print_page(&inbox, &list, output::notification_lines)
        }
        Command::Whoami { client } => {
            let ctx = Ctx::new(&client)?;
            let me = ctx.client.call(Method::GET, "/api/v1/whoami", None).await?;
            ctx.print(&me, output::user_line)
        }
        Command::User { client, command } => {
            let ctx = Ctx::new(&client)?;
            let json = ctx.output == OutputFormat::Json;
            accounts::run_user(&ctx.client, json, &ctx.tz, command).await
        }
        Command::Token { client, command } => {
            let ctx = Ctx::new(&client)?;
            let json = ctx.output == OutputFormat::Json;
            accounts::run_token(&ctx.client, json, &ctx.tz, command).await
        }
        Command::Target { client, command } => {
            let ctx = Ctx::new(&client)?;
            match command {
                TargetCommand::Create {
                    name,
                    kind,
                    owner,
                    environment,
                    criticality,
                    regulated,
                    parent,
                } => {
                    let body = json!({
                        "name": name, "kind": kind, "owner": owner, "environment": environment,
                        "criticality": criticality, "regulated": regulated, "parent": parent,
                    });
                    let target = ctx
                        .client
                        .call(Method::POST, "/api/v1/targets", Some(&body))
                        .await?;
                    ctx.print(&target, output::target_line)
                }
                TargetCommand::List { list } => {
                    let targets = paging::fetch(&ctx.client, "/api/v1/targets", &[], &list).await?;
                    ctx.print_page(&targets, &list, |v| output::lines(v, output::target_line))
                }
            }
        }
        Command::Catalog { client, command } => {
            let ctx = Ctx::new(&client)?;
            match command {
                CatalogCommand::List { list } => {
                    let items = paging::fetch(&ctx.client, "/api/v1/catalog", &[], &list).await?;
                    ctx.print_page(&items, &list, |v| output::lines(v, output::catalog_line))
                }
                CatalogCommand::Put { file } => {
                    let document = read_document(&file)?;
                    let Some(name) = document.get("name").and_then(Value::as_str) else {
                        bail!("{} has no `name`", file.display());
                    };
                    let item = ctx
                        .client
                        .call(
                            Method::PUT,
                            &format!("/api/v1/catalog/{name}"),
                            Some(&document),
                        )
                        .await?;
                    ctx.print(&item, |v| {
                        admin::waiting_line(v).unwrap_or_else(|| output::catalog_line(v))
                    })
                }
            }
        }
        Command::Change { client, command } => run_change(Ctx::new(&client)?, command).await,
        Command::Gate {
            client,
            change,
            target,
            environment,
        } => {
            let ctx = Ctx::new(&client)?;
            let verdict = ctx
                .client
                .call_with_query(
                    Method::GET,
                    &format!("/api/v1/changes/{change}/gate"),
                    &[("target", target), ("environment", environment)],
                    None,
                )
                .await?;
            let reason = verdict["reason"]
                .as_str()
                .unwrap_or("no reason given")
                .to_owned();
            match verdict["allowed"].as_bool() {
                Some(true) => ctx.print(&verdict, |_| format!("allowed: {reason}\n")),
                Some(false) => {
                    if ctx.output == OutputFormat::Json {
                        output::emit(true, &verdict, |_| String::new())?;
                    }
                    Err(GateRefused { reason, verdict }.into())
                }
                // Neither yes nor no is not an answer: an error (2), never a refusal (1).
                None => bail!("the server's gate answer has no `allowed`: {verdict}"),
            }
        }
        Command::Deployment {
            client,
            change,
            target,
            environment,
            status,
            run,
        } => {
            let ctx = Ctx::new(&client)?;
            let mut body = json!({"status": status, "target": target, "environment": environment});
            if let Some(run) = run {
                body["run"] = json!(run);
            }
            let recorded = ctx
                .client
                .call(
                    Method::POST,
                    &format!("/api/v1/changes/{change}/deployments"),
                    Some(&body),
                )
                .await?;
            ctx.print(&recorded, |d| output::deployment_line(&change, d))
        }
        Command::Policy { client, command } => {
            let ctx = Ctx::new(&client)?;
            governance::run_policy(
                &ctx.client,
                ctx.output == OutputFormat::Json,
                &ctx.tz,
                command,
            )
            .await
        }
        Command::Window { client, command } => {
            let ctx = Ctx::new(&client)?;
            governance::run_window(
                &ctx.client,
                ctx.output == OutputFormat::Json,
                &ctx.tz,
                command,
            )
            .await
        }
        Command::Calendar {
            client,
            target,
            environment,
            from,
            to,
            out,
        } => {
            let ctx = Ctx::new(&client)?;
            let zone = ctx.zone()?;
            let from = from
                .map(|t| times::instant("--from", &t, zone))
                .transpose()?;
            let to = to.map(|t| times::instant("--to", &t, zone)).transpose()?;
            governance::run_calendar(&ctx.client, target, environment, from, to, out).await
        }
        Command::Audit { client, command } => {
            let ctx = Ctx::new(&client)?;
            audit::run(&ctx.client, ctx.output == OutputFormat::Json, command).await
        }
    }
}

async fn run_change(ctx: Ctx, command: ChangeCommand) -> anyhow::Result<()> {
    match command {
        ChangeCommand::Submit {
            file,
            from_pipeline,
        } => {
            let mut document = read_change(&file, &ctx.tz)?;
            if from_pipeline {
                let pipeline = pipeline_from_env(|name| std::env::var(name).ok())?;
                match document.as_object_mut() {
                    Some(doc) => {
                        doc.insert("pipeline".into(), pipeline);
                    }
                    None => bail!("{} is not a change request object", file.display()),
                }
            }
            let change = ctx
                .client
                .call(Method::POST, "/api/v1/changes", Some(&document))
                .await?;
            ctx.print(&change, output::change_summary)
        }
        ChangeCommand::List {
            state,
            change_type,
            target,
            requester,
            overdue,
            list,
        } => {
            let mut query = Vec::new();
            let mut add = |k: &'static str, v: Option<String>| {
                if let Some(v) = v {
                    query.push((k, v));
                }
            };
            add("state", state);
            add("type", change_type);
            add("target", target);
            add("requester", requester);
            add("overdue", overdue.then(|| "true".to_owned()));
            let changes = paging::fetch(&ctx.client, "/api/v1/changes", &query, &list).await?;
            ctx.print_page(&changes, &list, output::change_table)
        }
        ChangeCommand::Show { id } => {
            let change = ctx
                .client
                .call(Method::GET, &format!("/api/v1/changes/{id}"), None)
                .await?;
            ctx.print(&change, output::change_details)
        }
        ChangeCommand::Approve {
            id,
            comment,
            acknowledge_conflicts,
        } => {
            let body =
                json!({ "comment": comment, "acknowledge_conflicts": acknowledge_conflicts });
            let change = ctx
                .client
                .call(
                    Method::POST,
                    &format!("/api/v1/changes/{id}/approve"),
                    Some(&body),
                )
                .await?;
            ctx.print(&change, output::change_summary)
        }
        ChangeCommand::Reject { id, comment } => {
            let change = ctx
                .client
                .call(
                    Method::POST,
                    &format!("/api/v1/changes/{id}/reject"),
                    Some(&json!({ "comment": comment })),
                )
                .await?;
            ctx.print(&change, output::change_summary)
        }
        ChangeCommand::SubmitDraft { id } => {
            let change = ctx
                .client
                .call(Method::POST, &format!("/api/v1/changes/{id}/submit"), None)
                .await?;
            ctx.print(&change, output::change_summary)
        }
        ChangeCommand::Schedule {
            id,
            start,
            end,
            acknowledge_conflicts,
        } => {
            let window = match (start, end) {
                (Some(start), Some(end)) => {
                    let zone = ctx.zone()?;
                    Some(json!({
                        "start": times::instant("--start", &start, zone)?,
                        "end": times::instant("--end", &end, zone)?,
                    }))
                }
                _ => None,
            };
            ctx.transition(&id, "schedule", None, window, acknowledge_conflicts)
                .await
        }
        ChangeCommand::Implement { id, comment } => {
            ctx.transition(&id, "implement", comment, None, vec![])
                .await
        }
        ChangeCommand::Complete { id, comment } => {
            ctx.transition(&id, "complete", comment, None, vec![]).await
        }
        ChangeCommand::Fail { id, comment } => {
            ctx.transition(&id, "fail", Some(comment), None, vec![])
                .await
        }
        ChangeCommand::Rollback { id, reason } => {
            let change = ctx
                .client
                .call(
                    Method::POST,
                    &format!("/api/v1/changes/{id}/rollback"),
                    Some(&json!({ "reason": reason })),
                )
                .await?;
            ctx.print(&change, output::change_summary)
        }
        ChangeCommand::OverrideWindow { id, reason } => {
            let change = ctx
                .client
                .call(
                    Method::POST,
                    &format!("/api/v1/changes/{id}/window-override"),
                    Some(&json!({ "reason": reason })),
                )
                .await?;
            ctx.print(&change, output::change_summary)
        }
        ChangeCommand::Close { id, comment } => {
            ctx.transition(&id, "close", comment, None, vec![]).await
        }
        ChangeCommand::Cancel { id, comment } => {
            ctx.transition(&id, "cancel", comment, None, vec![]).await
        }
        ChangeCommand::Fulfil {
            id,
            obligation,
            note,
        } => {
            let change = ctx
                .client
                .call(
                    Method::POST,
                    &format!("/api/v1/changes/{id}/obligations/{obligation}"),
                    Some(&json!({ "note": note })),
                )
                .await?;
            ctx.print(&change, output::change_summary)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_is_recognised_in_every_spelling_clap_takes() {
        let check = |args: &[&str], expected: bool| {
            let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            assert_eq!(asks_for_json(owned.into_iter()), expected, "{args:?}");
        };
        check(&["gate", "--output", "json"], true);
        check(&["gate", "-o", "json"], true);
        check(&["gate", "--output=json"], true);
        check(&["gate", "-ojson"], true);
        check(&["gate", "-o=json"], true);
        check(&["gate", "--output", "text"], false);
        check(&["gate", "--change", "json"], false);
        check(&["gate"], false);
    }

    #[test]
    fn errors_are_one_line_or_one_json_body() {
        let error = anyhow::anyhow!("cannot read x.yaml").context("change.yaml");
        assert_eq!(
            error_report(&error, false),
            "error: change.yaml: cannot read x.yaml"
        );
        let body: Value = serde_json::from_str(&error_report(&error, true)).expect("json");
        assert_eq!(
            body,
            json!({"error": "change.yaml: cannot read x.yaml", "details": null})
        );
        let refused = anyhow::Error::new(GateRefused {
            reason: "window closed".into(),
            verdict: json!({"allowed": false, "reason": "window closed"}),
        });
        let body: Value = serde_json::from_str(&error_report(&refused, true)).expect("json");
        assert_eq!(body["error"], "refused: window closed");
        assert_eq!(body["details"]["allowed"], false);
    }
}
