//! `steward-policy-bench`: how long the policy set takes to judge one change.
//!
//! Builds a varied set of real policy inputs — the exact documents the server hands the engine,
//! produced by `steward_core` from generated change requests (low to high risk, normal and
//! emergency, personal and financial data, with and without backups and windows) — then times
//! `PolicySet::evaluate` on each, one at a time on one thread, and prints the distribution.
//! See bench/README.md for results.

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use steward_core::change::{Change, Facts, Governance};
use steward_core::policy::{NoPolicies, PolicyEvaluator};
use steward_core::schedule::ScheduleCheck;
use steward_core::submission::ChangeRequest;
use steward_core::target::{Environment, Level, Regulated, Target, TargetKind};
use steward_core::{Role, TargetName, TenantId, UserName};
use steward_policy::PolicySet;

#[derive(Debug, Parser)]
#[command(about = "Measure policy evaluation time per change.")]
struct Args {
    /// Evaluations to time (after 1,000 warm-up evaluations).
    #[arg(long, default_value_t = 20_000)]
    changes: usize,
    /// Judge with this policy directory as well as (or, with --no-builtin, instead of) the
    /// built-in pack.
    #[arg(long)]
    policy_dir: Option<PathBuf>,
    #[arg(long)]
    no_builtin: bool,
}

fn name(s: &str) -> TargetName {
    TargetName::parse(s).unwrap_or_else(|_| unreachable!("valid target name {s}"))
}

fn user(s: &str) -> UserName {
    UserName::parse(s).unwrap_or_else(|_| unreachable!("valid user name {s}"))
}

fn targets() -> Vec<Target> {
    let target =
        |n: &str, kind, regulated: Vec<Regulated>, criticality, parent: Option<&str>| Target {
            name: name(n),
            kind,
            owner: user("mia"),
            environment: Environment::Production,
            criticality,
            regulated,
            parent: parent.map(name),
        };
    vec![
        target(
            "gpu-a",
            TargetKind::ComputeCluster,
            vec![],
            Level::High,
            None,
        ),
        target(
            "fraud-scoring",
            TargetKind::ModelDeployment,
            vec![Regulated::Pii],
            Level::High,
            Some("gpu-a"),
        ),
        target(
            "ledger-forecast",
            TargetKind::ModelDeployment,
            vec![Regulated::Financial],
            Level::Medium,
            Some("gpu-a"),
        ),
        target(
            "churn",
            TargetKind::ModelDeployment,
            vec![],
            Level::Low,
            Some("gpu-a"),
        ),
        target(
            "feature-store",
            TargetKind::DataSource,
            vec![Regulated::Pii, Regulated::Financial],
            Level::High,
            None,
        ),
    ]
}

/// The `i`-th generated request: a mix that exercises every built-in rule.
fn request(i: usize, all: &[Target]) -> Value {
    let levels = ["low", "medium", "high"];
    let picked: Vec<&str> = (0..1 + i % 3)
        .map(|k| all[(i + k * 2) % all.len()].name.as_str())
        .collect();
    let categories = [
        "model-deployment",
        "model-retrain",
        "config",
        "security-patch",
    ];
    let mut doc = json!({
        "title": format!("Change {i}: promote model version {}", i % 17),
        "description": "Retrained on last month's data; offline metrics improved.",
        "category": categories[i % 4],
        "targets": picked,
        "environment": "production",
        "impact": {"data": levels[i % 3], "availability": levels[(i / 3) % 3], "compliance": levels[(i / 9) % 3]},
        "implementation_plan": if i.is_multiple_of(50) { "Disable the audit log on the gateway, then deploy." } else { "Move the champion alias to the new version." },
        "rollback_plan": if i.is_multiple_of(7) { "n/a" } else { "Move the champion alias back to the previous version." },
    });
    if !i.is_multiple_of(5) {
        doc["backup"] =
            json!({"reference": format!("snap-{i}"), "verified_at": "2026-11-01T00:00:00Z"});
    }
    if i.is_multiple_of(11) {
        doc["emergency"] = json!(true);
        doc["justification"] = json!(if i.is_multiple_of(22) {
            "urgent"
        } else {
            "fraud losses rising since the 09:00 release"
        });
    }
    if i.is_multiple_of(2) {
        doc["window"] = json!({"start": "2026-12-01T22:00:00Z", "end": "2026-12-01T23:00:00Z"});
    }
    doc
}

fn inputs(count: usize) -> anyhow::Result<Vec<Value>> {
    let all = targets();
    let schedule = ScheduleCheck::default();
    let now = chrono::Utc::now();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let request = ChangeRequest::parse(&request(i, &all))
            .map_err(|e| anyhow::anyhow!("generated request {i} is invalid: {e:?}"))?;
        let chosen: Vec<Target> = request
            .targets
            .iter()
            .filter_map(|n| all.iter().find(|t| &t.name == n).cloned())
            .collect();
        let facts = Facts {
            targets: &chosen,
            catalog_item: None,
            history: Default::default(),
            risk_policy: Default::default(),
            routing_policy: Default::default(),
            now,
            requester_roles: &[Role::Requester],
            governance: Governance {
                policy: &NoPolicies,
                schedule: &schedule,
            },
        };
        let (change, _) = Change::open(TenantId::default_tenant(), user("rita"), request, facts)
            .map_err(|e| anyhow::anyhow!("generated change {i} was refused: {e}"))?;
        out.push(
            change
                .policy_input
                .context("a submitted change keeps its policy input")?,
        );
    }
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut modules = Vec::new();
    if !args.no_builtin {
        modules.extend(steward_policy::builtin_modules());
    }
    if let Some(dir) = &args.policy_dir {
        modules.extend(steward_policy::read_dir(dir)?);
    }
    let set = PolicySet::new(modules)?;
    let distinct = inputs(1000)?;
    let (mut denied, mut warned) = (0, 0);
    for input in &distinct {
        let verdicts = set.evaluate(input).map_err(anyhow::Error::msg)?;
        denied += usize::from(verdicts.iter().any(|v| !v.deny.is_empty()));
        warned += usize::from(verdicts.iter().any(|v| !v.warn.is_empty()));
    }
    let mut times = Vec::with_capacity(args.changes);
    for i in 0..args.changes {
        let input = &distinct[i % distinct.len()];
        let started = Instant::now();
        let verdicts = set.evaluate(input).map_err(anyhow::Error::msg)?;
        times.push(started.elapsed());
        std::hint::black_box(verdicts);
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    println!(
        "policy set {} ({} rules), {} evaluations over {} distinct changes ({} denied, {} warned)",
        set.version(),
        set.rules().len(),
        times.len(),
        distinct.len(),
        denied,
        warned
    );
    println!(
        "per change: median {:?}  p90 {:?}  p99 {:?}  max {:?}  mean {:?}",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or_default(),
        mean
    );
    Ok(())
}
