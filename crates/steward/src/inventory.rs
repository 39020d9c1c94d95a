//! `steward inventory`: scan a directory of model files (locally, headers only plus a digest)
//! and record what was found, list and show models — now or as the inventory stood on a past
//! date — and state their governance fields.

use crate::client::Client;
use crate::output::emit as print;
use crate::paging::{self, ListArgs};
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Scan sources and record what they hold — directories of model files, MLflow registries,
    /// Kubernetes clusters, several at once — then reconcile the inventory with what runs.
    /// A source that cannot be read fails alone; the exit status is 1 if any did.
    #[command(group(clap::ArgGroup::new("sources").required(true).multiple(true).args(["files", "mlflow", "kubernetes"])))]
    Scan {
        /// A directory tree of model files (repeatable).
        #[arg(long)]
        files: Vec<PathBuf>,
        /// Read file headers only, without content digests (faster; versions keyed by path).
        #[arg(long)]
        headers_only: bool,
        /// An MLflow tracking server's address, e.g. http://mlflow:5000 (repeatable).
        #[arg(long)]
        mlflow: Vec<String>,
        /// Scan only MLflow models whose name starts with this.
        #[arg(long, requires = "mlflow")]
        mlflow_prefix: Option<String>,
        /// Scan the Kubernetes cluster of the kubeconfig's current context (or `--context`).
        #[arg(long)]
        kubernetes: bool,
        /// Kubeconfig contexts to scan (repeatable; implies --kubernetes).
        #[arg(long)]
        context: Vec<String>,
        /// The kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// The inventory report: counts by status and tier, incomplete models, reconciliation
    /// findings, overdue validations, production models and where they run, recent changes.
    Report {
        /// json, markdown or html.
        #[arg(long, default_value = "markdown", value_parser = ["json", "markdown", "html"])]
        format: String,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export the inventory as a CycloneDX 1.6 ML-BOM (JSON).
    Export {
        #[arg(long, default_value = "cyclonedx", value_parser = ["cyclonedx"])]
        format: String,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Kept scan reports, newest first (the last 10 unless --limit or --all says otherwise).
    Scans {
        #[command(flatten)]
        list: ListArgs,
    },
    /// The inventory against what runs, now: orphans, production models running nowhere,
    /// versions running or marked for production without a completed change that names them,
    /// unvalidated models running, digest mismatches.
    Reconcile {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Where models run, as the latest scans found them.
    Deployments {
        /// Include deployments no longer seen running.
        #[arg(long)]
        include_gone: bool,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Register a version of a model (stated by you, e.g. from a training pipeline).
    Register {
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        artifact_uri: String,
        /// The artifact's digest, `sha256:` and 64 hex digits.
        #[arg(long)]
        digest: Option<String>,
        #[arg(long)]
        framework: Option<String>,
        #[arg(long)]
        run_id: Option<String>,
        /// Registry aliases (repeatable), e.g. champion.
        #[arg(long)]
        alias: Vec<String>,
    },
    /// Models with status, completeness and validation.
    List {
        /// Only models in production.
        #[arg(long)]
        in_production: bool,
        /// As the inventory stood then: RFC 3339, a local time in --tz, or a date (the end of
        /// that day in --tz).
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// One model: fields with where each came from, versions, completeness.
    Show {
        name: String,
        /// As the model stood then, written as for `list --at`.
        #[arg(long)]
        at: Option<String>,
        /// Also list the record's history: every create, update and status change.
        #[arg(long)]
        history: bool,
    },
    /// State fields of a model: `field=value` (a JSON value, or text). The model must exist
    /// (found by a scan, registered, or created here with `--create`).
    Set {
        name: String,
        #[arg(required_unless_present = "create")]
        values: Vec<String>,
        /// Create the model if the inventory does not have it yet.
        #[arg(long)]
        create: bool,
    },
}

fn model_line(v: &Value) -> String {
    format!(
        "{:<32} {:<12} {:>3}% complete{}  {}{}\n",
        v["name"].as_str().unwrap_or(""),
        v["status"].as_str().unwrap_or(""),
        v.pointer("/completeness/score")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        if v["validation_current"] == true {
            ""
        } else {
            "  validation not current"
        },
        v["versions"]
            .as_array()
            .map(|a| format!("{} version(s)", a.len()))
            .unwrap_or_default(),
        match (&v["production_version"], &v["approval"]) {
            (Value::String(p), Value::Object(a)) => format!(
                "; v{p} in production, approved in {} by {}",
                a.get("change").and_then(Value::as_str).unwrap_or(""),
                a.get("approvers")
                    .and_then(Value::as_array)
                    .map(|l| l
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "standard change".to_owned())
            ),
            (Value::String(p), Value::Null) if v.get("approval").is_some() => {
                format!("; v{p} in production, no completed change names it")
            }
            (Value::String(p), _) => format!("; v{p} in production"),
            _ => String::new(),
        }
    )
}

fn model_details(v: &Value) -> String {
    let mut out = format!(
        "{}  {}  {}% complete\n",
        v["name"].as_str().unwrap_or(""),
        v["fields"]["status"].as_str().unwrap_or(""),
        v.pointer("/completeness/score")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    );
    if let Some(missing) = v
        .pointer("/completeness/missing")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    {
        let names: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
        out.push_str(&format!("  missing: {}\n", names.join(", ")));
    }
    for (field, value) in v["fields"].as_object().into_iter().flatten() {
        let from = &v["provenance"][field];
        let how = match from["by"].as_str() {
            Some("attested") => format!("attested by {}", from["user"].as_str().unwrap_or("")),
            Some("discovered") => {
                format!("discovered by {}", from["source"].as_str().unwrap_or(""))
            }
            Some("derived") => format!("derived from {}", from["from"].as_str().unwrap_or("")),
            _ => String::new(),
        };
        let text = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        out.push_str(&format!("  {field:<18} {text}  ({how})\n"));
    }
    if let Some(p) = v["production_version"].as_str() {
        out.push_str(&format!("  in production:     version {p}\n"));
    }
    let approval = &v["approval"];
    if approval.is_object() {
        let approvers = strings(&approval["approvers"]);
        out.push_str(&format!(
            "  approved by:       {} in {} ({}){}\n",
            if approvers.is_empty() {
                "pre-approved (standard change)".to_owned()
            } else {
                approvers.join(", ")
            },
            approval["change"].as_str().unwrap_or(""),
            approval["title"].as_str().unwrap_or(""),
            approval["implemented_at"]
                .as_str()
                .map(|t| format!(", implemented {t}"))
                .unwrap_or_default()
        ));
        if approval["version"].is_null() {
            out.push_str("                     (it names the model, not a version)\n");
        }
    } else if v.get("approval").is_some() {
        out.push_str(match v["production_version"].as_str() {
            Some(_) => "  approved by:       no completed change names the version in production\n",
            None => "  approved by:       no completed change names this model\n",
        });
    }
    for d in v["deployments"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  runs as {} {}/{}{}{}\n",
            d["kind"].as_str().unwrap_or(""),
            d["namespace"].as_str().unwrap_or(""),
            d["name"].as_str().unwrap_or(""),
            d["serves_version"]
                .as_str()
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default(),
            if d["running"] == true {
                ""
            } else {
                " — gone"
            }
        ));
    }
    for event in v["history"].as_array().into_iter().flatten() {
        let changed = strings(&event["changed"]);
        out.push_str(&format!(
            "  {}  {:<22} by {}{}\n",
            event["at"].as_str().unwrap_or(""),
            event["action"].as_str().unwrap_or(""),
            event["actor"].as_str().unwrap_or(""),
            if changed.is_empty() {
                String::new()
            } else {
                format!(": {}", changed.join(", "))
            }
        ));
    }
    for version in v["versions"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  version {:<14} {}  last seen {}{}\n",
            version["version"].as_str().unwrap_or(""),
            version["artifact_uri"].as_str().unwrap_or(""),
            version["last_seen"].as_str().unwrap_or(""),
            version["problems"]
                .as_array()
                .filter(|p| !p.is_empty())
                .map(|p| format!(
                    "  PROBLEMS: {}",
                    p.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
                .unwrap_or_default()
        ));
    }
    out
}

fn finding_line(f: &Value) -> String {
    format!(
        "{:<29} {}\n",
        f["kind"].as_str().unwrap_or(""),
        f["detail"].as_str().unwrap_or("")
    )
}

fn scan_summary(v: &Value) -> String {
    let mut out = String::new();
    for s in v["sources"].as_array().into_iter().flatten() {
        let n = |k: &str| s[k].as_array().map(Vec::len).unwrap_or(0);
        if let Some(error) = s["error"].as_str() {
            out.push_str(&format!(
                "{}: FAILED: {error}\n",
                s["source"].as_str().unwrap_or("")
            ));
            continue;
        }
        out.push_str(&format!(
            "{}: {} versions, {} runs, {} datasets, {} deployments; models: {} new, {} updated, {} unchanged{}\n",
            s["source"].as_str().unwrap_or(""),
            s["versions"], s["runs"], s["datasets"], s["deployments"],
            n("created"), n("updated"), n("unchanged"),
            if n("gone") > 0 { format!("; {} deployments gone", n("gone")) } else { String::new() }
        ));
        for p in s["problems"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  problem: {}: {}\n",
                p["at"].as_str().unwrap_or(""),
                p["problem"].as_str().unwrap_or("")
            ));
        }
    }
    let findings = v["findings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if findings.is_empty() {
        out.push_str("reconciliation: the inventory matches what runs\n");
    } else {
        out.push_str(&format!("reconciliation: {} finding(s)\n", findings.len()));
        for f in findings {
            out.push_str("  ");
            out.push_str(&finding_line(f));
        }
    }
    out
}

/// Writes a document to `out`, or to standard output.
fn write_out(out: Option<PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => crate::output::write(text),
    }
}

pub async fn run(
    client: &Client,
    json: bool,
    tz: &str,
    command: InventoryCommand,
) -> anyhow::Result<()> {
    let at_param = |at: &str| crate::times::day_end("--at", at, crate::times::zone(tz)?);
    match command {
        InventoryCommand::Scan {
            files,
            headers_only,
            mlflow,
            mlflow_prefix,
            kubernetes,
            context,
            kubeconfig,
        } => {
            use steward_server::inventory::{SourceSpec, scan_source};
            let mut specs: Vec<SourceSpec> = files
                .into_iter()
                .map(|dir| SourceSpec::Files { dir, headers_only })
                .collect();
            specs.extend(mlflow.into_iter().map(|url| SourceSpec::Mlflow {
                url,
                prefix: mlflow_prefix.clone(),
            }));
            if context.is_empty() && kubernetes {
                specs.push(SourceSpec::Kubernetes {
                    context: None,
                    kubeconfig: kubeconfig.clone(),
                });
            }
            specs.extend(context.into_iter().map(|c| SourceSpec::Kubernetes {
                context: Some(c),
                kubeconfig: kubeconfig.clone(),
            }));
            let terminal = std::io::stderr().is_terminal();
            // With --output json, stderr holds only the JSON error (the report is on stdout).
            let narrate = |line: String| {
                if !json {
                    use std::io::Write as _;
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            };
            let mut reports = Vec::new();
            for spec in &specs {
                let name = spec.name();
                let mut progress = |line: String| {
                    if terminal {
                        eprint!("\r\x1b[2K{name}: {line}");
                    }
                };
                let report = scan_source(spec, &mut progress).await;
                if terminal {
                    eprint!("\r\x1b[2K");
                }
                narrate(format!(
                    "{}: {}",
                    report.source,
                    match &report.error {
                        Some(e) => format!("cannot scan: {e}"),
                        None => "read".to_owned(),
                    }
                ));
                reports.push(report);
            }
            let failed = reports.iter().filter(|r| r.error.is_some()).count();
            let total = reports.len();
            let answer = client
                .call(
                    Method::POST,
                    "/api/v1/inventory/scans",
                    Some(&json!({"sources": reports})),
                )
                .await?;
            print(json, &answer, scan_summary)?;
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {total} source(s) could not be scanned (the others were recorded)"
                );
            }
            Ok(())
        }
        InventoryCommand::Report { format, out } => {
            let text = client
                .get_text("/api/v1/inventory/report", &[("format", format)])
                .await?;
            write_out(out, &text)
        }
        InventoryCommand::Export { format, out } => {
            let text = client
                .get_text("/api/v1/inventory/export", &[("format", format)])
                .await?;
            write_out(out, &text)
        }
        InventoryCommand::Scans { mut list } => {
            // Scan reports are long: ten unless asked for more.
            if !list.all {
                list.limit = list.limit.or(Some(10));
            }
            let scans = paging::fetch(client, "/api/v1/inventory/scans", &[], &list).await?;
            paging::print(json, &scans, &list, |v| {
                let mut out = String::new();
                for s in v.as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "{}  {}  by {}\n",
                        s["id"].as_str().unwrap_or(""),
                        s["recorded_at"].as_str().unwrap_or(""),
                        s["actor"].as_str().unwrap_or("")
                    ));
                    for line in scan_summary(s).lines() {
                        out.push_str(&format!("  {line}\n"));
                    }
                }
                out
            })
        }
        InventoryCommand::Reconcile { list } => {
            let findings =
                paging::fetch(client, "/api/v1/inventory/reconciliation", &[], &list).await?;
            paging::print(json, &findings, &list, |v| {
                if v.as_array().is_some_and(Vec::is_empty) {
                    "the inventory matches what runs\n".to_owned()
                } else {
                    crate::output::lines(v, finding_line)
                }
            })
        }
        InventoryCommand::Deployments { include_gone, list } => {
            let deployments = paging::fetch(
                client,
                "/api/v1/inventory/deployments",
                &[("all", include_gone.to_string())],
                &list,
            )
            .await?;
            paging::print(json, &deployments, &list, |v| {
                crate::output::lines(v, |d| {
                    format!(
                        "{:<7} {}/{:<32} {:<24} {}{}\n",
                        d["kind"].as_str().unwrap_or(""),
                        d["namespace"].as_str().unwrap_or(""),
                        d["name"].as_str().unwrap_or(""),
                        format!(
                            "{}{}",
                            d["model"].as_str().unwrap_or("?"),
                            d["version"]
                                .as_str()
                                .map(|v| format!(" v{v}"))
                                .unwrap_or_default()
                        ),
                        d["storage_uri"].as_str().unwrap_or(""),
                        if d["running"] == true { "" } else { "  (gone)" }
                    )
                })
            })
        }
        InventoryCommand::Register {
            name,
            version,
            artifact_uri,
            digest,
            framework,
            run_id,
            alias,
        } => {
            let body = json!({"version": version, "artifact_uri": artifact_uri, "digest": digest,
                              "framework": framework, "run_id": run_id, "aliases": alias});
            let answer = client
                .call(
                    Method::POST,
                    &format!("/api/v1/models/{name}/versions"),
                    Some(&body),
                )
                .await?;
            print(json, &answer, |v| {
                let kept = v["version"]["version"].as_str().unwrap_or("");
                if v["joined"] == true {
                    return format!(
                        "{}: that artifact is v{kept} already, so the registration joined v{kept} (no new version)\n",
                        v["model"].as_str().unwrap_or("")
                    );
                }
                let said = if v["changed"] == false {
                    "was registered already with the same content"
                } else if v["created"] == true {
                    "registered (a new model)"
                } else {
                    "registered"
                };
                format!("{} v{kept} {said}\n", v["model"].as_str().unwrap_or(""))
            })
        }
        InventoryCommand::List {
            in_production,
            at,
            list,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if in_production {
                query.push(("status", "production".into()));
            }
            if let Some(at) = at {
                query.push(("at", at_param(&at)?));
            }
            let models = paging::fetch(client, "/api/v1/models", &query, &list).await?;
            paging::print(json, &models, &list, |v| {
                crate::output::lines(v, model_line)
            })
        }
        InventoryCommand::Show { name, at, history } => {
            let mut query: Vec<(&str, String)> = match at {
                Some(at) => vec![("at", at_param(&at)?)],
                None => Vec::new(),
            };
            if history {
                query.push(("history", "true".into()));
            }
            let model = client
                .call_with_query(Method::GET, &format!("/api/v1/models/{name}"), &query, None)
                .await?;
            print(json, &model, model_details)
        }
        InventoryCommand::Set {
            name,
            values,
            create,
        } => {
            let mut fields = Map::new();
            for pair in values {
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("{pair}: write it as field=value"))?;
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
                fields.insert(k.to_owned(), value);
            }
            let model = client
                .call_with_query(
                    Method::PUT,
                    &format!("/api/v1/models/{name}"),
                    &[("create", create.to_string())],
                    Some(&Value::Object(fields)),
                )
                .await?;
            print(json, &model, model_details)
        }
    }
}

/// The strings in a JSON array (none if it is not one).
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}
