//! `steward inventory`: scan a directory of model files (locally, headers only plus a digest)
//! and record what was found, list and show models — now or as the inventory stood on a past
//! date — and state their governance fields.

use crate::client::Client;
use crate::output::emit as print;
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Scan a directory tree of model files and record them (models and versions, last seen).
    Scan {
        #[arg(long)]
        files: PathBuf,
        /// Read headers only, without a content digest (faster; versions are then keyed by path).
        #[arg(long)]
        headers_only: bool,
    },
    /// Models with status, completeness and validation.
    List {
        /// Only models in production.
        #[arg(long)]
        in_production: bool,
        /// As the inventory stood then (RFC 3339, or a date: the end of that day, UTC).
        #[arg(long)]
        at: Option<String>,
    },
    /// One model: fields with where each came from, versions, completeness.
    Show {
        name: String,
        #[arg(long)]
        at: Option<String>,
    },
    /// State fields of a model: `field=value` (a JSON value, or text).
    Set {
        name: String,
        #[arg(required = true)]
        values: Vec<String>,
    },
}

/// `2026-11-01` means the end of that day; an RFC 3339 time is taken as given.
fn at_param(at: &str) -> anyhow::Result<String> {
    if chrono::DateTime::parse_from_rfc3339(at).is_ok() {
        return Ok(at.to_owned());
    }
    let day = chrono::NaiveDate::parse_from_str(at, "%Y-%m-%d")
        .with_context(|| format!("--at {at}: give a date (2026-11-01) or an RFC 3339 time"))?;
    Ok(format!("{day}T23:59:59Z"))
}

fn model_line(v: &Value) -> String {
    format!(
        "{:<32} {:<12} {:>3}% complete{}  {}\n",
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
            .unwrap_or_default()
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

pub async fn run(client: &Client, json: bool, command: InventoryCommand) -> anyhow::Result<()> {
    match command {
        InventoryCommand::Scan {
            files,
            headers_only,
        } => {
            let root = files
                .canonicalize()
                .with_context(|| format!("cannot read {}", files.display()))?;
            let options = steward_discovery::ScanOptions {
                digest: if headers_only {
                    steward_discovery::DigestMode::HeaderOnly
                } else {
                    steward_discovery::DigestMode::Full
                },
                ..Default::default()
            };
            let terminal = std::io::stderr().is_terminal();
            let scan_root = root.clone();
            let report = tokio::task::spawn_blocking(move || {
                steward_discovery::scan_dir(&scan_root, &options, &mut |p| {
                    if terminal {
                        eprint!(
                            "\rscanned {}/{} files, {} models files",
                            p.files_seen, p.files_total, p.artifacts
                        );
                    }
                })
            })
            .await
            .context("the scan stopped")??;
            if terminal {
                eprintln!();
            }
            for (path, error) in &report.errors {
                eprintln!("warning: {}: {error}", path.display());
            }
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
            let body = json!({
                "source": format!("files:{host}:{}", root.display()),
                "root": root.display().to_string(),
                "artifacts": report.artifacts,
            });
            let answer = client
                .call(Method::POST, "/api/v1/inventory/scans", Some(&body))
                .await?;
            print(json, &answer, |v| {
                let n = |k: &str| v[k].as_array().map(Vec::len).unwrap_or(0);
                let mut out = format!(
                    "{} artifacts: {} new models, {} updated, {} unchanged\n",
                    v["artifacts"],
                    n("created"),
                    n("updated"),
                    n("unchanged")
                );
                for p in v["problems"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  problem: {}: {}\n",
                        p["path"].as_str().unwrap_or(""),
                        p["problem"].as_str().unwrap_or("")
                    ));
                }
                out
            })
        }
        InventoryCommand::List { in_production, at } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if in_production {
                query.push(("status", "production".into()));
            }
            if let Some(at) = at {
                query.push(("at", at_param(&at)?));
            }
            let models = client
                .call_with_query(Method::GET, "/api/v1/models", &query, None)
                .await?;
            print(json, &models, |v| crate::output::lines(v, model_line))
        }
        InventoryCommand::Show { name, at } => {
            let query: Vec<(&str, String)> = match at {
                Some(at) => vec![("at", at_param(&at)?)],
                None => Vec::new(),
            };
            let model = client
                .call_with_query(Method::GET, &format!("/api/v1/models/{name}"), &query, None)
                .await?;
            print(json, &model, model_details)
        }
        InventoryCommand::Set { name, values } => {
            let mut fields = Map::new();
            for pair in values {
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("{pair}: write it as field=value"))?;
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
                fields.insert(k.to_owned(), value);
            }
            let model = client
                .call(
                    Method::PUT,
                    &format!("/api/v1/models/{name}"),
                    Some(&Value::Object(fields)),
                )
                .await?;
            print(json, &model, model_details)
        }
    }
}
