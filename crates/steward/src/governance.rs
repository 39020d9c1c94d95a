//! `steward policy`, `steward window` and `steward calendar`: compliance policy as code and the
//! change calendar.
//!
//! `policy test` and the evaluation half of `policy backtest` run locally with the same engine the
//! server uses, so a compliance officer can try a candidate policy set on real history without
//! installing it: the server only hands over the stored submission inputs.

use crate::client::Client;
use crate::output;
use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::PathBuf;
use steward_policy::backtest::{Backtest, Replay};
use steward_policy::{Module, PolicySet};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the Rego tests (`test_*` rules) in a directory, like `opa test`.
    Test {
        /// A directory of .rego files; omit with --builtin.
        dir: Option<PathBuf>,
        /// Test the built-in policy pack (with DIR: both).
        #[arg(long)]
        builtin: bool,
    },
    /// Show what every rule of the server's policy set says about a change, without submitting it.
    Eval {
        /// The change request, YAML or JSON, as for `change submit`.
        #[arg(long)]
        change: PathBuf,
    },
    /// Replay stored changes through a candidate policy set: what it would deny or warn, and how
    /// often the changes it lets through failed.
    Backtest {
        /// The candidate policy set: a directory of .rego files.
        dir: PathBuf,
        /// Replay changes created on or after this time: 2026-01-01 (midnight in --tz), a local
        /// time or RFC 3339.
        #[arg(long)]
        since: String,
        /// Judge with the built-in pack as well as DIR, as a server with default settings would.
        #[arg(long)]
        with_builtin: bool,
    },
    /// The policy set your tenant's changes are judged by: version and rules.
    Show,
    /// Your tenant's own Rego modules, judged on top of the installation's policy set.
    Module {
        #[command(subcommand)]
        command: ModuleCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Add or replace a module from a .rego file (admin); refused with the Rego error when it
    /// does not compile with the policy set.
    Put {
        file: PathBuf,
        /// The module's name [default: the file's name without .rego].
        #[arg(long)]
        name: Option<String>,
    },
    /// List your tenant's modules, by name.
    List {
        #[command(flatten)]
        list: crate::paging::ListArgs,
    },
    /// Delete a module (admin).
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum WindowCommand {
    /// Create a maintenance window or freeze (admin, compliance_officer or cab_member).
    Create {
        name: String,
        /// maintenance or freeze
        #[arg(long)]
        kind: String,
        /// `everywhere`, `environment:NAME` or `target:NAME` (covers the target's children too).
        #[arg(long, default_value = "everywhere")]
        scope: String,
        /// The window's IANA time zone: its times repeat in it, and --starts/--ends are read in
        /// it [default: --tz].
        #[arg(long)]
        timezone: Option<String>,
        /// Start of the first occurrence: local (2026-12-24T18:00, 2026-12-24 18:00, 2026-12-24)
        /// in the window's zone, or RFC 3339 with an offset (converted to the window's zone).
        #[arg(long, alias = "start")]
        starts: String,
        /// End of the first occurrence, written as --starts.
        #[arg(long, alias = "end")]
        ends: String,
        /// RFC 5545 recurrence rule, e.g. FREQ=WEEKLY;BYDAY=SA,SU.
        #[arg(long)]
        rrule: Option<String>,
        /// Why: shown to requesters whose changes it refuses.
        #[arg(long)]
        reason: String,
    },
    /// List windows and freezes, by name, with their next occurrence.
    List {
        #[command(flatten)]
        list: crate::paging::ListArgs,
    },
    /// Delete a window or freeze.
    Delete { name: String },
}

fn modules(dir: Option<&PathBuf>, builtin: bool) -> anyhow::Result<Vec<Module>> {
    let mut modules = Vec::new();
    if builtin {
        modules.extend(steward_policy::builtin_modules());
    }
    if let Some(dir) = dir {
        modules.extend(steward_policy::read_dir(dir)?);
    }
    if modules.is_empty() {
        bail!("name a policy directory, or pass --builtin to test the built-in pack");
    }
    Ok(modules)
}

pub async fn run_policy(
    client: &Client,
    json: bool,
    tz: &str,
    command: PolicyCommand,
) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Test { dir, builtin } => {
            let results = steward_policy::run_tests(&modules(dir.as_ref(), builtin)?)?;
            let failed = results.iter().filter(|r| !r.passed).count();
            if json {
                let rows: Vec<Value> = results
                    .iter()
                    .map(|r| json!({"name": r.name, "file": r.file, "passed": r.passed, "failure": r.failure, "micros": r.duration.as_micros() as u64}))
                    .collect();
                output::write(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
            } else {
                let mut text = String::new();
                for r in &results {
                    let _ = match &r.failure {
                        None => writeln!(text, "PASS {} ({} µs)", r.name, r.duration.as_micros()),
                        Some(why) => writeln!(text, "FAIL {} ({}): {why}", r.name, r.file),
                    };
                }
                let _ = writeln!(
                    text,
                    "{}: {}/{}",
                    if failed == 0 { "PASS" } else { "FAIL" },
                    results.len() - failed,
                    results.len()
                );
                output::write(&text)?;
            }
            if results.is_empty() {
                bail!("no test_* rules found");
            }
            if failed > 0 {
                bail!("{failed} of {} policy tests failed", results.len());
            }
            Ok(())
        }
        PolicyCommand::Eval { change } => {
            let document = crate::read_change(&change, tz)?;
            let answer = client
                .call(Method::POST, "/api/v1/policy/evaluate", Some(&document))
                .await?;
            print(json, &answer, output::evaluation)
        }
        PolicyCommand::Show => {
            let answer = client.call(Method::GET, "/api/v1/policy", None).await?;
            print(json, &answer, |v| {
                let mut out = format!("policy set {}\n", v["version"].as_str().unwrap_or("?"));
                for r in v["rules"].as_array().into_iter().flatten() {
                    let controls = strings(&r["controls"]);
                    let _ = writeln!(
                        out,
                        "  {:<30} {} [{}]",
                        r["name"].as_str().unwrap_or("?"),
                        r["title"].as_str().unwrap_or(""),
                        controls.join("; ")
                    );
                }
                out
            })
        }
        PolicyCommand::Module { command } => run_module(client, json, command).await,
        PolicyCommand::Backtest {
            dir,
            since,
            with_builtin,
        } => {
            let set = PolicySet::new(modules(Some(&dir), with_builtin)?)?;
            let since = crate::times::instant("--since", &since, crate::times::zone(tz)?)?;
            let report = backtest(client, &set, &since).await?;
            print(json, &report, backtest_text)
        }
    }
}

fn module_line(v: &Value) -> String {
    format!(
        "{:<28} {}  by {} at {}\n",
        v["path"].as_str().unwrap_or("?"),
        v["digest"].as_str().map_or("?", |d| &d[..d.len().min(12)]),
        v["created_by"].as_str().unwrap_or("?"),
        v["created_at"].as_str().unwrap_or("?"),
    )
}

async fn run_module(client: &Client, json: bool, command: ModuleCommand) -> anyhow::Result<()> {
    match command {
        ModuleCommand::Put { file, name } => {
            let source = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = match name {
                Some(name) => name,
                None => file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_owned)
                    .context("name the module with --name")?,
            };
            let module = client
                .call(
                    Method::PUT,
                    &format!("/api/v1/policy/modules/{name}"),
                    Some(&json!({ "source": source })),
                )
                .await?;
            print(json, &module, |v| {
                // Under dual control the answer is the operation waiting for a second admin.
                crate::admin::waiting_line(v)
                    .unwrap_or_else(|| format!("stored {}", module_line(v)))
            })
        }
        ModuleCommand::List { list } => {
            let page = crate::paging::fetch(client, "/api/v1/policy/modules", &[], &list).await?;
            crate::paging::print(json, &page, &list, |items| {
                output::lines(items, module_line)
            })
        }
        ModuleCommand::Delete { name } => {
            let waiting = client
                .call(
                    Method::DELETE,
                    &format!("/api/v1/policy/modules/{name}"),
                    None,
                )
                .await?;
            print(json, &waiting, |v| {
                crate::admin::waiting_line(v)
                    .unwrap_or_else(|| format!("deleted policy module {name}\n"))
            })
        }
    }
}

/// The strings of a JSON array (none when it is not one).
fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

use output::emit as print;

/// Replays the stored inputs since `since` through `set` ([`steward_policy::backtest`], which
/// the portal's backtest tool runs too).
async fn backtest(client: &Client, set: &PolicySet, since: &str) -> anyhow::Result<Value> {
    let mut backtest = Backtest::new(set);
    crate::paging::each_item(
        client,
        "/api/v1/policy/inputs",
        &[("since", since.to_owned())],
        |change| {
            backtest
                .replay(Replay {
                    id: change["id"].as_str().unwrap_or("?"),
                    state: change["state"].as_str().unwrap_or("?"),
                    change_type: change["type"].as_str().unwrap_or("?"),
                    outcome: change["outcome"].as_str(),
                    input: &change["input"],
                })
                .map_err(|e| anyhow::anyhow!(e))
        },
    )
    .await?;
    Ok(backtest.report().to_json(since))
}

fn percent(v: &Value) -> String {
    v.as_f64()
        .map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "n/a (none finished)".into())
}

fn backtest_text(v: &Value) -> String {
    let mut out = String::new();
    let denied = v["would_deny"].as_array().map_or(0, Vec::len);
    let warned = v["would_warn"].as_array().map_or(0, Vec::len);
    let _ = writeln!(
        out,
        "replayed {} changes since {} through policy set {}",
        v["replayed"],
        v["since"].as_str().unwrap_or("?"),
        v["policy_set"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "would deny {denied} ({} of them failed in reality), would warn on {warned}",
        v["denied_that_failed"]
    );
    for (label, key) in [("DENY", "would_deny"), ("WARN", "would_warn")] {
        for row in v[key].as_array().into_iter().flatten() {
            let reasons = strings(&row["reasons"]);
            let _ = writeln!(
                out,
                "  {label} {} ({}, {}, outcome {}): {}",
                row["id"].as_str().unwrap_or("?"),
                row["type"].as_str().unwrap_or("?"),
                row["state"].as_str().unwrap_or("?"),
                row["outcome"].as_str().unwrap_or("pending"),
                reasons.join("; ")
            );
        }
    }
    let _ = writeln!(
        out,
        "failure rate of the changes it lets through: {} ({} of {} finished); of all replayed: {}",
        percent(&v["allowed_failure_rate"]),
        v["allowed_failed"],
        v["allowed_finished"],
        percent(&v["actual_failure_rate"])
    );
    out
}

pub async fn run_window(
    client: &Client,
    json: bool,
    tz: &str,
    command: WindowCommand,
) -> anyhow::Result<()> {
    match command {
        WindowCommand::Create {
            name,
            kind,
            scope,
            timezone,
            starts,
            ends,
            rrule,
            reason,
        } => {
            // The server reads the times in the window's zone, with the same parser as the CLI.
            let timezone = timezone.unwrap_or_else(|| tz.to_owned());
            let body = json!({
                "name": name, "kind": kind, "scope": scope, "timezone": timezone,
                "starts": starts, "ends": ends, "rrule": rrule, "reason": reason,
            });
            let window = client
                .call(Method::POST, "/api/v1/windows", Some(&body))
                .await?;
            print(json, &window, output::window_line)
        }
        WindowCommand::List { list } => {
            let windows = crate::paging::fetch(client, "/api/v1/windows", &[], &list).await?;
            crate::paging::print(json, &windows, &list, |v| {
                output::lines(v, output::window_line)
            })
        }
        WindowCommand::Delete { name } => {
            let window = client
                .call(Method::DELETE, &format!("/api/v1/windows/{name}"), None)
                .await?;
            print(json, &window, |v| {
                format!("deleted {}", output::window_line(v))
            })
        }
    }
}

/// `steward calendar`: the iCalendar feed, to standard output or a file.
pub async fn run_calendar(
    client: &Client,
    target: Option<String>,
    environment: Option<String>,
    from: Option<String>,
    to: Option<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut query = Vec::new();
    for (key, value) in [
        ("target", target),
        ("environment", environment),
        ("from", from),
        ("to", to),
    ] {
        if let Some(value) = value {
            query.push((key, value));
        }
    }
    let feed = client.get_text("/api/v1/calendar.ics", &query).await?;
    match out {
        Some(path) => {
            std::fs::write(&path, feed).with_context(|| format!("cannot write {}", path.display()))
        }
        None => output::write(&feed),
    }
}
