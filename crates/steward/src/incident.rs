//! `steward incident` and `steward detector`: incidents from the command line — list and show
//! them, acknowledge, propose and approve containment, resolve, review, close — and the detector
//! rules that raise them from pushed metrics.

use crate::client::Client;
use crate::output::{self, emit as print};
use crate::paging::{self, ListArgs};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Incidents, newest first.
    List {
        /// Only triggered, acknowledged or contained ones.
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        list: ListArgs,
    },
    /// One incident: signals, suspects, containment, review, timeline.
    Show { id: String },
    /// Open an incident by hand.
    Open {
        #[arg(long)]
        title: String,
        /// sev1 … sev4
        #[arg(long)]
        severity: String,
        /// An affected target (repeat for more).
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
    },
    /// Take the incident (you become its owner).
    Ack { id: String },
    /// Propose a containment plan: a YAML or JSON list of actions (`rollback_change` or any
    /// step kind); or run a pre-approved playbook at once (SEV1 only).
    Contain {
        id: String,
        #[arg(
            long,
            conflicts_with = "playbook",
            required_unless_present = "playbook"
        )]
        plan: Option<PathBuf>,
        #[arg(long)]
        playbook: Option<String>,
    },
    /// Approve the proposed containment plan (a manager who owns an affected target) and run it.
    Approve { id: String },
    /// Mark the incident resolved.
    Resolve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Record the post-incident review.
    Review {
        id: String,
        #[arg(long)]
        what_happened: String,
        #[arg(long)]
        why: String,
        /// What the change's risk assessment missed (for change-related incidents).
        #[arg(long, default_value = "")]
        risk_assessment_missed: String,
        /// A follow-up action (repeat for more).
        #[arg(long = "action")]
        actions: Vec<String>,
    },
    /// Close a resolved incident (after its review, when one is owed).
    Close { id: String },
    /// Link the incident to a problem record of recurring failures.
    Problem { id: String, problem: String },
    /// Mean time to acknowledge, contain, resolve; change-related share; change failure rate.
    Metrics {
        /// Since: RFC 3339, or a date or local time in --tz [default: 30 days ago].
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProblemCommand {
    /// Create (or retitle) a problem record for recurring incidents.
    Create {
        name: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// A problem with its incidents and its fix.
    Show { name: String },
    /// Link the change raised as the problem's permanent fix.
    Fix {
        name: String,
        #[arg(long)]
        change: String,
    },
}

fn problem_text(v: &Value) -> String {
    let mut out = format!(
        "{}  {}\n  fix: {} ({})\n",
        v["name"].as_str().unwrap_or(""),
        v["title"].as_str().unwrap_or(""),
        v["fix_change"].as_str().unwrap_or("none yet"),
        v["fix_state"].as_str().unwrap_or("-")
    );
    for i in v["incidents"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {} {} {}\n",
            i["id"].as_str().unwrap_or(""),
            i["severity"].as_str().unwrap_or(""),
            i["state"].as_str().unwrap_or(""),
            i["title"].as_str().unwrap_or("")
        ));
    }
    out
}

pub async fn run_problem(
    client: &Client,
    json: bool,
    command: ProblemCommand,
) -> anyhow::Result<()> {
    let shown = match command {
        ProblemCommand::Create {
            name,
            title,
            description,
        } => {
            let body = json!({"title": title, "description": description});
            client
                .call(
                    Method::PUT,
                    &format!("/api/v1/problems/{name}"),
                    Some(&body),
                )
                .await?
        }
        ProblemCommand::Show { name } => {
            client
                .call(Method::GET, &format!("/api/v1/problems/{name}"), None)
                .await?
        }
        ProblemCommand::Fix { name, change } => {
            let body = json!({"change": change});
            client
                .call(
                    Method::POST,
                    &format!("/api/v1/problems/{name}/fix"),
                    Some(&body),
                )
                .await?
        }
    };
    print(json, &shown, problem_text)
}

#[derive(Debug, Subcommand)]
pub enum DetectorCommand {
    /// Create or replace a detector rule over a pushed metric.
    Set {
        name: String,
        #[arg(long)]
        metric: String,
        /// A label the series must carry, `k=v` (repeat for more).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// robust_z or page_hinkley
        #[arg(long)]
        detector: String,
        /// The detector's parameters, `k=v,k=v` (see `steward detect replay`).
        #[arg(long, default_value = "")]
        params: String,
        /// The affected target (default: the series' target, deployment or model label).
        #[arg(long)]
        target: Option<String>,
        /// sev1 … sev4 of the incidents it raises (default sev3).
        #[arg(long)]
        severity: Option<String>,
    },
    /// The detector rules, by name.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
}

fn incident_line(v: &Value) -> String {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    format!(
        "{:<8} {:<5} {:<13} {:<28} {}{}\n",
        s("/id"),
        s("/severity"),
        s("/state"),
        v["targets"]
            .as_array()
            .map(|t| t
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default(),
        s("/title"),
        if v["change_related"] == true {
            "  [change-related]"
        } else {
            ""
        }
    )
}

fn incident_details(v: &Value) -> String {
    let mut out = incident_line(v);
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string())
            })
            .unwrap_or_default()
    };
    out.push_str(&format!(
        "  owner: {}   opened {}   began {}\n",
        s(v, "/owner"),
        s(v, "/opened_at"),
        s(v, "/started_at")
    ));
    for suspect in v["suspects"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  suspect {} score {}: {}\n",
            s(suspect, "/change"),
            s(suspect, "/score"),
            s(suspect, "/reason")
        ));
    }
    if let Some(plan) = v.get("containment").filter(|p| !p.is_null()) {
        out.push_str(&format!(
            "  containment proposed by {}, {}\n",
            s(plan, "/proposed_by"),
            match plan["approved_by"].as_str() {
                Some(by) => format!("approved by {by}"),
                None => "waiting for an owning manager's approval".into(),
            }
        ));
        for run in plan["runs"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    {} {}\n",
                s(run, "/name"),
                if run["ok"] == true {
                    "succeeded"
                } else {
                    "FAILED"
                }
            ));
        }
    }
    if v["needs_review"] == true {
        out.push_str(if v["review"].is_null() {
            "  review: owed before closing\n"
        } else {
            "  review: recorded\n"
        });
    }
    for entry in v["timeline"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}  {:<10} {}\n",
            s(entry, "/at"),
            s(entry, "/actor"),
            s(entry, "/what")
        ));
    }
    out
}

fn metrics_text(v: &Value) -> String {
    let mut out = String::new();
    for key in [
        "incidents",
        "mean_minutes_to_acknowledge",
        "mean_minutes_to_contain",
        "mean_minutes_to_resolve",
        "change_related_share",
        "changes_implemented",
        "change_failure_rate",
    ] {
        out.push_str(&format!("{key:<30} {}\n", v[key]));
    }
    out
}

pub async fn run_incident(
    client: &Client,
    json: bool,
    tz: &str,
    command: IncidentCommand,
    read: impl Fn(&PathBuf) -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    let act = |id: &str, body: Value| {
        let path = format!("/api/v1/incidents/{id}/actions");
        async move { client.call(Method::POST, &path, Some(&body)).await }
    };
    let shown = match command {
        IncidentCommand::List { open, list } => {
            let query = if open {
                vec![("open", "true".to_owned())]
            } else {
                vec![]
            };
            let page = paging::fetch(client, "/api/v1/incidents", &query, &list).await?;
            return paging::print(json, &page, &list, |v| output::lines(v, incident_line));
        }
        IncidentCommand::Metrics { since } => {
            let since = since
                .map(|s| crate::times::instant("--since", &s, crate::times::zone(tz)?))
                .transpose()?;
            let query: Vec<(&str, String)> = since.into_iter().map(|s| ("since", s)).collect();
            let metrics = client
                .call_with_query(Method::GET, "/api/v1/incident-metrics", &query, None)
                .await?;
            return print(json, &metrics, metrics_text);
        }
        IncidentCommand::Show { id } => {
            client
                .call(Method::GET, &format!("/api/v1/incidents/{id}"), None)
                .await?
        }
        IncidentCommand::Open {
            title,
            severity,
            targets,
        } => {
            let body = json!({"title": title, "severity": severity, "targets": targets});
            client
                .call(Method::POST, "/api/v1/incidents", Some(&body))
                .await?
        }
        IncidentCommand::Ack { id } => act(&id, json!({"action": "acknowledge"})).await?,
        IncidentCommand::Contain { id, plan, playbook } => {
            let body = match (plan, playbook) {
                (Some(path), _) => {
                    let doc = read(&path)?;
                    let actions = doc.get("actions").cloned().unwrap_or(doc);
                    json!({"actions": actions})
                }
                (None, Some(name)) => json!({"playbook": name}),
                (None, None) => anyhow::bail!("give --plan FILE or --playbook NAME"),
            };
            client
                .call(
                    Method::POST,
                    &format!("/api/v1/incidents/{id}/containment"),
                    Some(&body),
                )
                .await?
        }
        IncidentCommand::Approve { id } => {
            client
                .call(
                    Method::POST,
                    &format!("/api/v1/incidents/{id}/containment/approve"),
                    Some(&json!({})),
                )
                .await?
        }
        IncidentCommand::Resolve { id, comment } => {
            act(&id, json!({"action": "resolve", "comment": comment})).await?
        }
        IncidentCommand::Review {
            id,
            what_happened,
            why,
            risk_assessment_missed,
            actions,
        } => {
            let body = json!({"what_happened": what_happened, "why": why,
                              "risk_assessment_missed": risk_assessment_missed, "actions": actions});
            client
                .call(
                    Method::POST,
                    &format!("/api/v1/incidents/{id}/review"),
                    Some(&body),
                )
                .await?
        }
        IncidentCommand::Close { id } => act(&id, json!({"action": "close"})).await?,
        IncidentCommand::Problem { id, problem } => {
            act(&id, json!({"action": "problem", "problem": problem})).await?
        }
    };
    print(json, &shown, incident_details)
}

pub async fn run_detector(
    client: &Client,
    json: bool,
    command: DetectorCommand,
) -> anyhow::Result<()> {
    match command {
        DetectorCommand::Set {
            name,
            metric,
            labels,
            detector,
            params,
            target,
            severity,
        } => {
            let config = steward_core::detect::DetectorConfig::parse(&detector, &params)
                .map_err(|e| anyhow::anyhow!(e))?;
            let mut label_map = BTreeMap::new();
            for l in labels {
                let (k, v) = l
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--label {l}: write it as name=value"))?;
                label_map.insert(k.to_owned(), v.to_owned());
            }
            let body = json!({"metric": metric, "labels": label_map, "config": config, "target": target, "severity": severity});
            let saved = client
                .call(
                    Method::PUT,
                    &format!("/api/v1/detectors/{name}"),
                    Some(&body),
                )
                .await?;
            print(json, &saved, |v| {
                format!("detector {} saved\n", v["name"].as_str().unwrap_or(""))
            })
        }
        DetectorCommand::List { list } => {
            let rules = paging::fetch(client, "/api/v1/detectors", &[], &list).await?;
            paging::print(json, &rules, &list, |v| {
                output::lines(v, |d| {
                    format!(
                        "{:<24} {} {}\n",
                        d["name"].as_str().unwrap_or(""),
                        d["rule"]["metric"].as_str().unwrap_or(""),
                        d["rule"]["config"]
                    )
                })
            })
        }
    }
}
