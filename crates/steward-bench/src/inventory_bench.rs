//! `steward-inventory-bench`: Steward's model inventory API against MLflow's model registry as a
//! peer — the same data, the same client code, the same concurrency — through their HTTP APIs.
//!
//! Both servers run outside this process (`bench/inventory-vs-mlflow.sh` starts them on fresh
//! databases); this driver only makes requests. Phases, each timed on its own, peer by peer (one
//! peer idle while the other is measured):
//!
//! - **create models**: `--models` models (MLflow `registered-models/create`, Steward
//!   `PUT /api/v1/models/{name}?create=true`), a few descriptive fields each.
//! - **register**: `--versions` versions of every model (MLflow `model-versions/create`, Steward
//!   `POST /api/v1/models/{name}/versions`), each with five tags, two metrics, an artifact URI
//!   (and for Steward a digest and framework; MLflow's versions have no metric or digest fields,
//!   so there the metrics and framework go as tags). Versions go round-robin over the models:
//!   request `i` registers version `i / models + 1` of model `i % models`.
//! - **get model**: one random model's versions, `--requests` times (MLflow
//!   `model-versions/search?filter=name='m042'`, Steward `GET /api/v1/models/m042`, which answers
//!   the model with all its versions, its fields with provenance, completeness, deployments and
//!   lineage; its audit history only with `?history=true`, which this does not ask for).
//! - **list models**: all models, `--list-requests` times (MLflow
//!   `registered-models/search?max_results=100`, Steward `GET /api/v1/models?limit=100`: one
//!   page as large as the data set, up to Steward's 500 a page).
//!
//! `--concurrency` clients share one connection pool per peer. Every request's status is checked;
//! answers are parsed and their content checked on a sample of requests (the first ones of each
//! worker and every 50th), so the client spends little CPU on the machine the servers share.
//! Any failed request makes the driver exit non-zero after printing the first error. The last
//! line printed is one JSON object with both peers' figures and the throughput ratios (Steward ÷
//! MLflow). With `--mlflow-pgid` and `--steward-pgid` (Linux) it also reports the CPU time each
//! server's processes spent per request in each phase, read from /proc before and after it, and
//! how much CPU the machine spent elsewhere meanwhile (other processes, kernel threads).

mod rng;

use anyhow::{Context, bail};
use clap::Parser;
use rng::Rng;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Measure Steward's inventory API against MLflow's model registry, same data.")]
struct Args {
    /// MLflow's tracking server, e.g. http://127.0.0.1:5079 (omit to measure Steward alone).
    #[arg(long)]
    mlflow_url: Option<String>,
    /// Steward's server, e.g. http://127.0.0.1:8081 (omit to measure MLflow alone).
    #[arg(long)]
    steward_url: Option<String>,
    /// An API token of a Steward account that may register versions (an admin's).
    #[arg(long, env = "STEWARD_BENCH_TOKEN", hide_env_values = true)]
    steward_token: Option<String>,
    /// Registered models.
    #[arg(long, default_value_t = 100)]
    models: usize,
    /// Versions per model.
    #[arg(long, default_value_t = 20)]
    versions: usize,
    /// Concurrent clients per peer.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Requests in the get-model phase.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests in the list-models phase.
    #[arg(long, default_value_t = 500)]
    list_requests: usize,
    /// The phases to run, in this order: any of create, register, get, list (e.g. `get,list`
    /// against servers that already hold the data).
    #[arg(long, value_delimiter = ',', default_values_t = ["create".to_owned(), "register".to_owned(), "get".to_owned(), "list".to_owned()])]
    phases: Vec<String>,
    /// MLflow's process group (Linux): the CPU time its processes spend in each phase is
    /// reported (from /proc). The script starts each server as its own group's leader.
    #[arg(long)]
    mlflow_pgid: Option<u32>,
    /// Steward's process group (Linux), as --mlflow-pgid.
    #[arg(long)]
    steward_pgid: Option<u32>,
    /// Seed of the random choice of models in the get-model phase (the same for both peers).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerKind {
    Mlflow,
    Steward,
}

impl PeerKind {
    fn name(self) -> &'static str {
        match self {
            PeerKind::Mlflow => "mlflow",
            PeerKind::Steward => "steward",
        }
    }
}

struct Peer {
    kind: PeerKind,
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    errors: AtomicUsize,
    first_error: Mutex<Option<String>>,
    /// The server's process group, for its CPU time.
    pgid: Option<u32>,
}

/// User + system CPU time of every live process in group `pgid`, from /proc/PID/stat (in
/// clock ticks of 10 ms: USER_HZ is 100 on Linux). None where /proc cannot be read.
fn group_cpu(pgid: u32) -> Option<Duration> {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name, in parentheses, may hold spaces: fields are counted after it.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        // After the name: state (3), ppid (4), pgrp (5), … utime (14), stime (15).
        if fields.get(2).and_then(|f| f.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        ticks += field(11).unwrap_or(0) + field(12).unwrap_or(0);
    }
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time this process has used (Linux).
fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Duration::from_millis((field(11)? + field(12)?) * 10))
}

/// CPU time the whole machine has been busy (all cores; not idle, not waiting for I/O).
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(Duration::from_millis(busy * 10))
}

/// What the machine spent elsewhere: busy time minus the driver's and every server's own
/// processes' — other processes (among them PostgreSQL's, when Steward runs on it), kernel
/// threads (writeback after an fsync), interrupts — so a phase measured while something else
/// ran on the machine can be told apart.
struct Usage {
    busy: Option<Duration>,
    ours: Option<Duration>,
}

impl Usage {
    fn now(pgids: &[Option<u32>]) -> Usage {
        let servers: Option<Vec<Duration>> = pgids.iter().map(|g| g.and_then(group_cpu)).collect();
        Usage {
            busy: machine_busy(),
            ours: own_cpu()
                .zip(servers)
                .map(|(o, s)| o + s.iter().sum::<Duration>()),
        }
    }

    /// Other processes' CPU time since `before`.
    fn others_since(&self, before: &Usage) -> Option<Duration> {
        let busy = self.busy?.checked_sub(before.busy?)?;
        let ours = self.ours?.checked_sub(before.ours?)?;
        Some(busy.saturating_sub(ours))
    }
}

/// What one request asks for, in terms both peers understand.
enum Request {
    CreateModel(usize),
    Register { model: usize, version: usize },
    GetModel(usize),
    ListModels,
}

/// The data set: deterministic, so both peers get the same.
struct Data {
    models: usize,
    versions: usize,
}

fn model_name(m: usize) -> String {
    format!("m{m:03}")
}

impl Data {
    fn hex(seed: u64, len: usize) -> String {
        let mut rng = Rng(seed);
        let mut out = String::with_capacity(len);
        while out.len() < len {
            out.push_str(&format!("{:016x}", rng.next_u64()));
        }
        out.truncate(len);
        out
    }

    /// The five tags of version `v` of model `m`.
    fn tags(m: usize, v: usize) -> Vec<(String, String)> {
        let teams = ["fraud", "credit", "marketing", "ops", "risk"];
        vec![
            ("team".into(), teams[m % teams.len()].into()),
            (
                "dataset".into(),
                format!("s3://data/{}/2026-{:02}", model_name(m), v % 12 + 1),
            ),
            ("git_commit".into(), Self::hex((m * 1000 + v) as u64, 40)),
            ("pipeline_run".into(), format!("run-{m}-{v}")),
            ("validated_by".into(), "model-risk".into()),
        ]
    }

    fn metrics(m: usize, v: usize) -> [(&'static str, f64); 2] {
        let x = ((m * 31 + v * 7) % 100) as f64 / 1000.0;
        [("auc", 0.85 + x), ("f1", 0.70 + x)]
    }

    fn source(m: usize, v: usize) -> String {
        format!("s3://models/{}/{v}/model.pkl", model_name(m))
    }
}

impl Peer {
    /// The HTTP request for `r`, as this peer spells it.
    fn request(&self, r: &Request, data: &Data) -> reqwest::RequestBuilder {
        let url = |path: &str| format!("{}{path}", self.base);
        let builder = match (self.kind, r) {
            (PeerKind::Mlflow, Request::CreateModel(m)) => self
                .http
                .post(url("/api/2.0/mlflow/registered-models/create"))
                .json(&json!({
                    "name": model_name(*m),
                    "description": format!("Benchmark model {m}"),
                    "tags": [
                        {"key": "owner", "value": "mia"},
                        {"key": "risk_tier", "value": "medium"},
                        {"key": "purpose", "value": "benchmark"},
                    ],
                })),
            (PeerKind::Steward, Request::CreateModel(m)) => self
                .http
                .put(url(&format!(
                    "/api/v1/models/{}?create=true",
                    model_name(*m)
                )))
                .json(&json!({
                    "title": format!("Benchmark model {m}"),
                    "owner": "mia",
                    "risk_tier": "medium",
                    "purpose": "benchmark",
                })),
            (PeerKind::Mlflow, Request::Register { model, version }) => {
                let mut tags: Vec<Value> = Data::tags(*model, *version)
                    .into_iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect();
                for (k, v) in Data::metrics(*model, *version) {
                    tags.push(json!({"key": format!("metric.{k}"), "value": v.to_string()}));
                }
                tags.push(json!({"key": "framework", "value": "sklearn"}));
                self.http
                    .post(url("/api/2.0/mlflow/model-versions/create"))
                    .json(&json!({
                        "name": model_name(*model),
                        "source": Data::source(*model, *version),
                        "tags": tags,
                    }))
            }
            (PeerKind::Steward, Request::Register { model, version }) => {
                let tags: serde_json::Map<String, Value> = Data::tags(*model, *version)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                let metrics: serde_json::Map<String, Value> = Data::metrics(*model, *version)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), json!(v)))
                    .collect();
                self.http
                    .post(url(&format!("/api/v1/models/{}/versions", model_name(*model))))
                    .json(&json!({
                        "version": version.to_string(),
                        "artifact_uri": Data::source(*model, *version),
                        "digest": format!("sha256:{}", Data::hex((model * 7919 + version) as u64, 64)),
                        "framework": "sklearn",
                        "metrics": metrics,
                        "metadata": {"tags": tags},
                    }))
            }
            (PeerKind::Mlflow, Request::GetModel(m)) => self
                .http
                .get(url("/api/2.0/mlflow/model-versions/search"))
                .query(&[("filter", format!("name='{}'", model_name(*m)))]),
            (PeerKind::Steward, Request::GetModel(m)) => self
                .http
                .get(url(&format!("/api/v1/models/{}", model_name(*m)))),
            (PeerKind::Mlflow, Request::ListModels) => self
                .http
                .get(url("/api/2.0/mlflow/registered-models/search"))
                .query(&[("max_results", data.models.to_string())]),
            // One page as large as the data set (Steward's pages hold at most 500).
            (PeerKind::Steward, Request::ListModels) => self
                .http
                .get(url("/api/v1/models"))
                .query(&[("limit", data.models.min(500).to_string())]),
        };
        match &self.token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Checks a successful answer's content (on a sample of requests).
    fn check(&self, r: &Request, data: &Data, body: &Value) -> Result<(), String> {
        let count = |v: &Value| v.as_array().map_or(0, Vec::len);
        match (self.kind, r) {
            (PeerKind::Mlflow, Request::GetModel(_)) => {
                let n = count(&body["model_versions"]);
                (n == data.versions)
                    .then_some(())
                    .ok_or(format!("{n} versions, not {}", data.versions))
            }
            (PeerKind::Steward, Request::GetModel(_)) => {
                let n = count(&body["versions"]);
                (n == data.versions)
                    .then_some(())
                    .ok_or(format!("{n} versions, not {}", data.versions))
            }
            (PeerKind::Mlflow, Request::ListModels) => {
                let n = count(&body["registered_models"]);
                (n == data.models)
                    .then_some(())
                    .ok_or(format!("{n} models, not {}", data.models))
            }
            (PeerKind::Steward, Request::ListModels) => {
                let n = count(&body["items"]);
                (n == data.models.min(500))
                    .then_some(())
                    .ok_or(format!("{n} models, not {}", data.models.min(500)))
            }
            (PeerKind::Mlflow, Request::Register { model, .. }) => (body["model_version"]["name"]
                == model_name(*model))
            .then_some(())
            .ok_or_else(|| format!("unexpected answer {body}")),
            (PeerKind::Steward, Request::Register { model, version }) => {
                (body["version"]["version"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    == Some(*version)
                    && body["model"] == model_name(*model))
                .then_some(())
                .ok_or_else(|| format!("unexpected answer {body}"))
            }
            (_, Request::CreateModel(_)) => Ok(()),
        }
    }

    fn fail(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what);
        }
    }

    /// Sends `r`; a failure is counted and the first one kept, never returned.
    async fn send(&self, r: &Request, data: &Data, check: bool) {
        let response = match self.request(r, data).send().await {
            Ok(response) => response,
            Err(e) => return self.fail(format!("{}: {e}", self.kind.name())),
        };
        let status = response.status();
        let url = response.url().clone();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return self.fail(format!("{}: {url}: {e}", self.kind.name())),
        };
        if !status.is_success() {
            return self.fail(format!(
                "{}: {url} answered {status}: {}",
                self.kind.name(),
                String::from_utf8_lossy(&bytes)
            ));
        }
        if check {
            let outcome = serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|body| self.check(r, data, &body));
            if let Err(e) = outcome {
                self.fail(format!("{}: {url}: {e}", self.kind.name()));
            }
        }
    }
}

struct Phase {
    peer: PeerKind,
    name: &'static str,
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    /// CPU time the server's processes spent during the phase, when known.
    server_cpu: Option<Duration>,
    /// CPU time spent elsewhere on the machine during the phase ([`Usage`]), when known.
    others_cpu: Option<Duration>,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default().as_secs_f64() * 1000.0
    }

    /// Server CPU milliseconds per request, when known.
    fn cpu_ms_per_request(&self) -> Option<f64> {
        self.server_cpu
            .map(|c| c.as_secs_f64() * 1000.0 / self.count as f64)
    }

    /// Cores' worth of CPU spent elsewhere on average during the phase, when known.
    fn others_cores(&self) -> Option<f64> {
        self.others_cpu
            .map(|c| c.as_secs_f64() / self.elapsed.as_secs_f64())
    }

    fn json(&self) -> Value {
        json!({
            "server_cpu_ms_per_request": self.cpu_ms_per_request().map(|c| (c * 100.0).round() / 100.0),
            "elsewhere_cores": self.others_cores().map(|c| (c * 100.0).round() / 100.0),
            "requests": self.count,
            "seconds": (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "per_second": (self.per_second() * 10.0).round() / 10.0,
            "p50_ms": (self.percentile_ms(0.50) * 100.0).round() / 100.0,
            "p99_ms": (self.percentile_ms(0.99) * 100.0).round() / 100.0,
            "errors": self.errors,
        })
    }
}

/// Sends `requests` from `concurrency` workers, each taking the next request in order.
async fn run_phase(
    peer: &Arc<Peer>,
    data: &Arc<Data>,
    name: &'static str,
    requests: Vec<Request>,
    concurrency: usize,
    checks: bool,
) -> anyhow::Result<Phase> {
    let count = requests.len();
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let errors_before = peer.errors.load(Ordering::Relaxed);
    let cpu_before = peer.pgid.and_then(group_cpu);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (peer, data, requests, next) =
            (peer.clone(), data.clone(), requests.clone(), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = requests.get(i) else { break };
                let check = checks && (latencies.len() < 2 || i % 50 == 0);
                let t = Instant::now();
                peer.send(r, &data, check).await;
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(count);
    while let Some(result) = workers.join_next().await {
        latencies.extend(result?);
    }
    let elapsed = started.elapsed();
    let cpu_after = peer.pgid.and_then(group_cpu);
    Ok(Phase {
        peer: peer.kind,
        name,
        count,
        elapsed,
        latencies,
        errors: peer.errors.load(Ordering::Relaxed) - errors_before,
        server_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b)),
        others_cpu: None,
    })
}

/// The phases in the order they run; the first word of each is its name for `--phases`.
const PHASES: [&str; 4] = ["create models", "register", "get model", "list models"];

fn phase_requests(name: &str, args: &Args) -> Vec<Request> {
    match name {
        "create models" => (0..args.models).map(Request::CreateModel).collect(),
        "register" => (0..args.models * args.versions)
            .map(|i| Request::Register {
                model: i % args.models,
                version: i / args.models + 1,
            })
            .collect(),
        "get model" => {
            let mut rng = Rng(args.seed);
            (0..args.requests)
                .map(|_| Request::GetModel((rng.next_u64() % args.models as u64) as usize))
                .collect()
        }
        _ => (0..args.list_requests)
            .map(|_| Request::ListModels)
            .collect(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.models == 0 || args.versions == 0 || args.concurrency == 0 {
        bail!("--models, --versions and --concurrency must be at least 1");
    }
    if let Some(p) = args
        .phases
        .iter()
        .find(|p| !["create", "register", "get", "list"].contains(&p.as_str()))
    {
        bail!("unknown phase {p}: the phases are create, register, get and list");
    }
    let client = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .timeout(Duration::from_secs(120))
            .build()
    };
    let mut peers = Vec::new();
    if let Some(url) = &args.mlflow_url {
        peers.push(Arc::new(Peer {
            kind: PeerKind::Mlflow,
            http: client()?,
            base: url.trim_end_matches('/').to_owned(),
            token: None,
            errors: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            pgid: args.mlflow_pgid,
        }));
    }
    if let Some(url) = &args.steward_url {
        let token = args
            .steward_token
            .clone()
            .context("--steward-token (or STEWARD_BENCH_TOKEN) is needed with --steward-url")?;
        peers.push(Arc::new(Peer {
            kind: PeerKind::Steward,
            http: client()?,
            base: url.trim_end_matches('/').to_owned(),
            token: Some(token),
            errors: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            pgid: args.steward_pgid,
        }));
    }
    if peers.is_empty() {
        bail!("give --mlflow-url, --steward-url or both");
    }
    let data = Arc::new(Data {
        models: args.models,
        versions: args.versions,
    });
    eprintln!(
        "{} models × {} versions, {} clients, {} get-model and {} list requests per peer",
        args.models, args.versions, args.concurrency, args.requests, args.list_requests
    );

    // Warm-up: open the connections and wake every worker process before anything is timed.
    for peer in &peers {
        let warm: Vec<Request> = (0..args.concurrency * 8)
            .map(|_| Request::ListModels)
            .collect();
        // The registries are still empty: their answers are not checked.
        run_phase(peer, &data, "warm-up", warm, args.concurrency, false).await?;
    }

    let wanted: Vec<&str> = PHASES
        .into_iter()
        .filter(|name| {
            let short = name.split(' ').next().unwrap_or_default();
            args.phases.iter().any(|p| p == short)
        })
        .collect();
    // Without every server's process group, the servers would count as "elsewhere".
    let pgids: Vec<Option<u32>> = peers.iter().map(|p| p.pgid).collect();
    let mut phases: Vec<Phase> = Vec::new();
    for name in wanted {
        for peer in &peers {
            let requests = phase_requests(name, &args);
            if requests.is_empty() {
                continue;
            }
            let before = Usage::now(&pgids);
            let mut phase = run_phase(peer, &data, name, requests, args.concurrency, true).await?;
            phase.others_cpu = Usage::now(&pgids).others_since(&before);
            eprintln!(
                "{:>8} {:<13} {:>6} requests in {:>7.2} s: {:>8.1}/s{}",
                peer.kind.name(),
                name,
                phase.count,
                phase.elapsed.as_secs_f64(),
                phase.per_second(),
                phase
                    .others_cores()
                    .map_or(String::new(), |c| format!(" (elsewhere: {c:.2} cores)"))
            );
            phases.push(phase);
        }
    }

    let find =
        |kind: PeerKind, name: &str| phases.iter().find(|p| p.peer == kind && p.name == name);
    let cpu = |p: &Phase| {
        p.cpu_ms_per_request()
            .map_or("-".to_owned(), |c| format!("{c:.2}"))
    };
    println!(
        "| phase | peer | requests | clients | per second | p50 ms | p99 ms | server CPU ms/request | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for name in PHASES {
        for p in phases.iter().filter(|p| p.name == name) {
            println!(
                "| {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {} | {} |",
                name,
                p.peer.name(),
                p.count,
                args.concurrency,
                p.per_second(),
                p.percentile_ms(0.50),
                p.percentile_ms(0.99),
                cpu(p),
                p.errors
            );
        }
        if let (Some(m), Some(s)) = (find(PeerKind::Mlflow, name), find(PeerKind::Steward, name)) {
            // Every factor is "how many times better Steward did": throughput Steward ÷ MLflow,
            // latency and CPU MLflow ÷ Steward.
            let cpu_ratio = m
                .cpu_ms_per_request()
                .zip(s.cpu_ms_per_request())
                .filter(|(_, s)| *s > 0.0)
                .map_or("-".to_owned(), |(m, s)| format!("{:.1}×", m / s));
            println!(
                "| {name} | **Steward's advantage** | | | **{:.1}×** | {:.1}× | {:.1}× | {cpu_ratio} | |",
                s.per_second() / m.per_second(),
                m.percentile_ms(0.50) / s.percentile_ms(0.50),
                m.percentile_ms(0.99) / s.percentile_ms(0.99),
            );
        }
    }

    let mut summary = serde_json::Map::new();
    for name in PHASES {
        let mut entry = serde_json::Map::new();
        for p in phases.iter().filter(|p| p.name == name) {
            entry.insert(p.peer.name().to_owned(), p.json());
        }
        if let (Some(m), Some(s)) = (find(PeerKind::Mlflow, name), find(PeerKind::Steward, name)) {
            let ratio = s.per_second() / m.per_second();
            entry.insert("ratio".into(), json!((ratio * 100.0).round() / 100.0));
        }
        if !entry.is_empty() {
            summary.insert(name.replace(' ', "_"), Value::Object(entry));
        }
    }
    let errors: usize = peers.iter().map(|p| p.errors.load(Ordering::Relaxed)).sum();
    println!(
        "{}",
        json!({
            "bench": "steward-inventory-bench",
            "models": args.models,
            "versions": args.versions,
            "concurrency": args.concurrency,
            "phases": summary,
            "errors": errors,
        })
    );
    if errors > 0 {
        for peer in &peers {
            let n = peer.errors.load(Ordering::Relaxed);
            if n > 0 {
                let first = peer
                    .first_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .unwrap_or_default();
                eprintln!(
                    "{}: {n} failed requests; the first: {first}",
                    peer.kind.name()
                );
            }
        }
        bail!("{errors} requests failed");
    }
    Ok(())
}
