//! `steward-bench`: change submissions and approvals per second through the HTTP API, with
//! latency percentiles, on SQLite or PostgreSQL.
//!
//! The server runs in this process on a fresh database (SQLite in a temporary directory, or a
//! new PostgreSQL database that is dropped afterwards), with its production settings: SQLite in
//! WAL mode with `synchronous = FULL`, so every acknowledged submission, with its audit events, is
//! on disk before the answer is sent. The load comes from `--concurrency` HTTP clients in the same
//! process, over loopback, so client and server share the machine's cores: the figures are a floor
//! for the server alone. See bench/README.md for results.

mod fresh_db;

use anyhow::{Context, bail};
use clap::Parser;
use fresh_db::Backend;

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_server::Application;

#[derive(Debug, Parser)]
#[command(about = "Measure change submissions and approvals per second through the HTTP API.")]
struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Changes to submit and then approve.
    #[arg(long, default_value_t = 5000)]
    changes: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// A PostgreSQL server where the benchmark may create (and drop) a database.
    #[arg(
        long,
        env = "STEWARD_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
}

const ADMIN: &str = "stw_bench_admin_token_0123456789abcdef";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {value}");
        }
        Ok(value)
    }
}

fn change(i: usize) -> Value {
    json!({
        "title": format!("benchmark change {i}"),
        "description": "move the champion alias",
        "category": "model-deployment",
        "targets": ["bench-model"],
        "environment": "staging",
        "impact": {"data": "low", "availability": "low", "compliance": "low"},
        "implementation_plan": "set alias champion to the next version",
        "rollback_plan": "set alias champion back",
    })
}

struct Phase {
    name: &'static str,
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn row(&self, backend: Backend, concurrency: usize) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "| {:?} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            backend,
            self.name,
            self.count,
            concurrency,
            self.count as f64 / self.elapsed.as_secs_f64(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
        )
    }
}

/// Runs `count` requests over `concurrency` workers; request `i` is made by `make(i)`.
async fn run_phase<F, Fut>(
    name: &'static str,
    count: usize,
    concurrency: usize,
    make: F,
) -> anyhow::Result<Phase>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let make = make.clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                make(i).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(count);
    while let Some(result) = workers.join_next().await {
        latencies.extend(result??);
    }
    Ok(Phase {
        name,
        count,
        elapsed: started.elapsed(),
        latencies,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = fresh_db::FreshDb::new(args.backend, &args.postgres_url).await?;
    let app = Application::build(db.server_config(ADMIN)?).await?;
    let base = format!("http://{}", app.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()?,
        base,
    });
    let token = |v: Value| v["token"].as_str().map(str::to_owned).context("no token");
    let rita = token(
        client
            .post(
                "/api/v1/users",
                ADMIN,
                &json!({"name": "rita", "roles": ["requester"]}),
            )
            .await?,
    )?;
    let mia = token(
        client
            .post(
                "/api/v1/users",
                ADMIN,
                &json!({"name": "mia", "roles": ["manager"]}),
            )
            .await?,
    )?;
    client
        .post(
            "/api/v1/targets",
            ADMIN,
            &json!({"name": "bench-model", "kind": "model_deployment", "owner": "mia",
                    "environment": "staging", "criticality": "low"}),
        )
        .await?;

    let submit = {
        let client = client.clone();
        let rita = rita.clone();
        move |i: usize| {
            let client = client.clone();
            let rita = rita.clone();
            async move {
                client.post("/api/v1/changes", &rita, &change(i)).await?;
                Ok(())
            }
        }
    };
    // Warm up connections and caches; these changes are not approved or counted.
    run_phase("warm-up", 200, args.concurrency, submit.clone()).await?;
    let submitted = run_phase("submit", args.changes, args.concurrency, submit).await?;
    let approve = {
        let client = client.clone();
        move |i: usize| {
            let client = client.clone();
            let mia = mia.clone();
            async move {
                // Warm-up took CHG-1..=200.
                let id = format!("CHG-{}", 200 + i + 1);
                let body = client
                    .post(
                        &format!("/api/v1/changes/{id}/approve"),
                        &mia,
                        &json!({"comment": "ok"}),
                    )
                    .await?;
                if body["state"] != "approved" {
                    bail!("{id} ended {}", body["state"]);
                }
                Ok(())
            }
        }
    };
    let approved = run_phase("approve", args.changes, args.concurrency, approve).await?;

    println!("| backend | phase | requests | clients | per second | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    println!("{}", submitted.row(args.backend, args.concurrency));
    println!("{}", approved.row(args.backend, args.concurrency));

    let _ = stop.send(());
    server.await??;
    db.cleanup().await?;
    Ok(())
}
