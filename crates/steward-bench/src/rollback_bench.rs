//! `steward-rollback-bench`: how long an automatic rollback takes, against a real MLflow server.
//!
//! Each round registers a model with two versions in MLflow (`champion` → 1), has Steward run an
//! approved change that moves `champion` to 2 with a metric check, pushes a 30 % drop of the
//! metric, and polls MLflow every 2 ms until `champion` is back on 1. It reports two spans:
//! from the trigger firing (the `change.verification_failed` event) to the alias restored, and
//! from the degraded sample's arrival to the alias restored (which adds the worker's polling
//! interval, `--tick-ms`). The server runs in this process on a fresh database; MLflow is the one
//! at `--mlflow-url` (e.g. one `scripts/test.sh` style: `mlflow server --workers 1`).

mod fresh_db;

use anyhow::{Context, bail};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use clap::Parser;
use fresh_db::Backend;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use steward_server::Application;

#[derive(Debug, Parser)]
#[command(about = "Measure the time from a rollback trigger to MLflow's alias restored.")]
struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// A running MLflow tracking server.
    #[arg(long, env = "STEWARD_TEST_MLFLOW_URL")]
    mlflow_url: String,
    /// Rounds to measure.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// The execution worker's polling interval, in milliseconds (the server's default is 5000).
    #[arg(long, default_value_t = 1000)]
    tick_ms: u64,
    #[arg(
        long,
        env = "STEWARD_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
}

const ADMIN: &str = "stw_bench_admin_token_0123456789abcdef";

struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{url}: {status} {value}");
        }
        Ok(value)
    }
}

async fn champion(http: &Http, mlflow: &str, model: &str) -> anyhow::Result<Option<String>> {
    let value = http
        .send(
            reqwest::Method::GET,
            &format!("{mlflow}/api/2.0/mlflow/registered-models/get?name={model}"),
            None,
            None,
        )
        .await?;
    Ok(value["registered_model"]["aliases"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alias"] == "champion"))
        .and_then(|a| a["version"].as_str().map(str::to_owned)))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    println!(
        "{name:<34} median {:>8.1} ms   p95 {:>8.1} ms   max {:>8.1} ms   ({} rounds)",
        percentile(&values, 0.5),
        percentile(&values, 0.95),
        values.last().copied().unwrap_or_default(),
        values.len()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mlflow = args.mlflow_url.trim_end_matches('/').to_owned();
    let http = Http {
        client: reqwest::Client::new(),
    };
    http.send(
        reqwest::Method::GET,
        &format!("{mlflow}/health"),
        None,
        None,
    )
    .await
    .ok();
    let db = fresh_db::FreshDb::new(args.backend, &args.postgres_url).await?;
    let mut config = db.server_config(ADMIN)?;
    config.execution.tick = Duration::from_millis(args.tick_ms.max(10));
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let api = |path: &str| format!("{base}/api/v1{path}");
    let post = |path: &str, token: &str, body: Value| {
        let url = api(path);
        let token = token.to_owned();
        let http = &http;
        async move {
            http.send(reqwest::Method::POST, &url, Some(&token), Some(body))
                .await
        }
    };
    let user = |name: &'static str, role: &'static str| {
        let post = &post;
        async move {
            let created = post("/users", ADMIN, json!({"name": name, "roles": [role]})).await?;
            anyhow::Ok(created["token"].as_str().context("token")?.to_owned())
        }
    };
    let rita = user("rita", "requester").await?;
    let mia = user("mia", "manager").await?;
    // Only monitoring accounts push the samples verification judges by.
    let prometheus = user("prometheus", "monitor").await?;

    let mut from_trigger = Vec::new();
    let mut from_sample = Vec::new();
    for round in 0..args.rounds {
        let model = format!("bench-{}", uuid::Uuid::now_v7().simple());
        let mlflow_api = format!("{mlflow}/api/2.0/mlflow");
        http.send(
            reqwest::Method::POST,
            &format!("{mlflow_api}/registered-models/create"),
            None,
            Some(json!({"name": model})),
        )
        .await?;
        for v in 1..=2 {
            http.send(
                reqwest::Method::POST,
                &format!("{mlflow_api}/model-versions/create"),
                None,
                Some(json!({"name": model, "source": format!("s3://bench/{model}/{v}")})),
            )
            .await?;
        }
        http.send(
            reqwest::Method::POST,
            &format!("{mlflow_api}/registered-models/alias"),
            None,
            Some(json!({"name": model, "alias": "champion", "version": "1"})),
        )
        .await?;
        let target = format!("scoring-{round}");
        post(
            "/targets",
            ADMIN,
            json!({"name": target, "kind": "model_deployment", "owner": "mia",
                   "environment": "staging", "criticality": "low", "regulated": []}),
        )
        .await?;
        let now = Utc::now();
        let labels = json!({"model": model});
        let baseline: Vec<Value> = (1..=5)
            .map(|m| {
                json!({"name": "accuracy", "labels": labels, "value": 0.9,
                            "time": now - ChronoDuration::minutes(m)})
            })
            .collect();
        post("/metrics", &prometheus, json!({ "samples": baseline })).await?;
        let change = post(
            "/changes",
            &rita,
            json!({
                "title": "Promote the challenger", "description": "benchmark round",
                "category": "model-deployment", "targets": [target], "environment": "staging",
                "impact": {"data": "low", "availability": "low", "compliance": "low"},
                "implementation_plan": "move champion to 2", "rollback_plan": "move it back",
                "backup": {"reference": "mlflow:1", "verified_at": now},
                "window": {"start": now, "end": now + ChronoDuration::hours(1)},
                "steps": [{"name": "promote", "kind": "mlflow_alias", "tracking_uri": mlflow,
                           "model": model, "alias": "champion", "version": "2"}],
                "verification": {"period_seconds": 3600, "checks": [
                    {"kind": "metric", "name": "accuracy", "labels": labels}]},
            }),
        )
        .await?;
        let id = change["id"].as_str().context("id")?.to_owned();
        post(
            &format!("/changes/{id}/approve"),
            &mia,
            json!({"comment": "ok"}),
        )
        .await?;
        let started = Instant::now();
        while champion(&http, &mlflow, &model).await?.as_deref() != Some("2") {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{id} never moved champion to 2");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the change reach verification before the metric drops.
        loop {
            let shown = http
                .send(
                    reqwest::Method::GET,
                    &api(&format!("/changes/{id}")),
                    Some(&rita),
                    None,
                )
                .await?;
            if !shown["execution"]["verification"].is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pushed = post(
            "/metrics",
            &prometheus,
            json!({"samples": [{"name": "accuracy", "labels": labels, "value": 0.63}]}),
        );
        let sent = Instant::now();
        let sent_at = Utc::now();
        pushed.await?;
        let restored_at = loop {
            if champion(&http, &mlflow, &model).await?.as_deref() == Some("1") {
                break Utc::now();
            }
            if sent.elapsed() > Duration::from_secs(120) {
                bail!("{id}: champion was never restored");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let shown = http
            .send(
                reqwest::Method::GET,
                &api(&format!("/changes/{id}")),
                Some(&rita),
                None,
            )
            .await?;
        let fired: DateTime<Utc> = shown["history"]
            .as_array()
            .and_then(|h| {
                h.iter()
                    .find(|e| e["action"] == "change.verification_failed")
            })
            .and_then(|e| e["at"].as_str())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .context("the trigger's audit event")?;
        from_trigger
            .push((restored_at - fired).num_microseconds().unwrap_or_default() as f64 / 1000.0);
        from_sample.push(
            (restored_at - sent_at)
                .num_microseconds()
                .unwrap_or_default() as f64
                / 1000.0,
        );
    }
    println!(
        "backend {:?}, worker tick {} ms, MLflow at {mlflow}",
        args.backend, args.tick_ms
    );
    summary("trigger fired → alias restored", from_trigger);
    summary("degraded sample → alias restored", from_sample);
    let _ = stop.send(());
    server.await??;
    db.cleanup().await?;
    Ok(())
}
