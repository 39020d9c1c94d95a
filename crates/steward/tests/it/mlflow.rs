//! A real MLflow tracking server for the tests (`mlflow==3.17.2` from PyPI).
//!
//! `scripts/test.sh` installs MLflow into `target/test-venv`, starts one server for the whole
//! run and exports its URL as `STEWARD_TEST_MLFLOW_URL`; each test registers models under names
//! of its own, so tests never share state. Run alone (`cargo nextest run …`), a test starts its
//! own server from the same virtualenv (≈ 12 s). A test fails, rather than skips, when MLflow is
//! not installed: a green run must mean it ran against the real thing.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

#[derive(Debug)]
pub struct MlflowServer {
    pub url: String,
    http: reqwest::Client,
    child: Option<Child>,
    _dir: Option<TempDir>,
}

fn mlflow_binary() -> String {
    std::env::var("STEWARD_TEST_MLFLOW").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/test-venv/bin/mlflow"
        )
        .to_owned()
    })
}

impl MlflowServer {
    /// The shared server of this test run, or one of this test's own.
    pub async fn get() -> MlflowServer {
        let http = reqwest::Client::new();
        if let Ok(url) = std::env::var("STEWARD_TEST_MLFLOW_URL") {
            return MlflowServer {
                url,
                http,
                child: None,
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let binary = mlflow_binary();
        let child = Command::new(&binary)
            .args(["server", "--backend-store-uri"])
            .arg(format!("sqlite:///{}", dir.path().join("mlflow.db").display()))
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .current_dir(dir.path())
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so dropping the server also stops the workers it forks.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("MLflow is needed for this test: run scripts/test.sh, which installs it into target/test-venv ({binary}: {e})")
            });
        let server = MlflowServer {
            url: format!("http://127.0.0.1:{port}"),
            http,
            child: Some(child),
            _dir: Some(dir),
        };
        let started = Instant::now();
        loop {
            let health = server
                .http
                .get(format!("{}/health", server.url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == StatusCode::OK) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "MLflow did not answer /health within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        server
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/api/2.0/mlflow/{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("MLflow answers");
        let status = response.status();
        let value: Value = response.json().await.expect("MLflow answers JSON");
        assert!(status.is_success(), "MLflow {path}: {status} {value}");
        value
    }

    /// Registers a model of a name unique to this call with `versions` versions; returns the name.
    pub async fn model(&self, prefix: &str, versions: usize) -> String {
        let name = format!("{prefix}-{}", uuid::Uuid::now_v7().simple());
        self.post("registered-models/create", json!({"name": name}))
            .await;
        for v in 1..=versions {
            self.post(
                "model-versions/create",
                json!({"name": name, "source": format!("s3://models/{name}/{v}")}),
            )
            .await;
        }
        name
    }

    /// Registers a model of exactly this name, without versions.
    pub async fn create_model(&self, name: &str) {
        self.post("registered-models/create", json!({"name": name}))
            .await;
    }

    pub async fn set_alias(&self, model: &str, alias: &str, version: &str) {
        self.post(
            "registered-models/alias",
            json!({"name": model, "alias": alias, "version": version}),
        )
        .await;
    }

    /// Creates an experiment of a name unique to this call; returns its id.
    pub async fn experiment(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", uuid::Uuid::now_v7().simple());
        let created = self.post("experiments/create", json!({"name": name})).await;
        created["experiment_id"]
            .as_str()
            .expect("an experiment id")
            .to_owned()
    }

    /// Creates a run in `experiment_id` with these params, tags and metrics (logged in order,
    /// each at the next step, so a key given twice ends at its last value); returns its id.
    pub async fn run(
        &self,
        experiment_id: &str,
        params: &[(&str, &str)],
        metrics: &[(&str, f64)],
        tags: &[(&str, &str)],
    ) -> String {
        let start = chrono::Utc::now().timestamp_millis();
        let created = self
            .post(
                "runs/create",
                json!({"experiment_id": experiment_id, "start_time": start}),
            )
            .await;
        let run_id = created["run"]["info"]["run_id"]
            .as_str()
            .expect("a run id")
            .to_owned();
        let pairs = |pairs: &[(&str, &str)]| -> Vec<Value> {
            pairs
                .iter()
                .map(|(key, value)| json!({"key": key, "value": value}))
                .collect()
        };
        let metrics: Vec<Value> = metrics
            .iter()
            .enumerate()
            .map(|(step, (key, value))| {
                json!({"key": key, "value": value, "timestamp": start + step as i64, "step": step})
            })
            .collect();
        self.post(
            "runs/log-batch",
            json!({"run_id": run_id, "params": pairs(params), "metrics": metrics, "tags": pairs(tags)}),
        )
        .await;
        run_id
    }

    /// Logs a dataset as a training input of `run_id` (`mlflow.log_input`).
    pub async fn log_dataset(&self, run_id: &str, name: &str, digest: &str, uri: &str) {
        self.post(
            "runs/log-inputs",
            json!({"run_id": run_id, "datasets": [{
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
                "dataset": {"name": name, "digest": digest, "source_type": "s3",
                            "source": json!({"uri": uri}).to_string(), "schema": "", "profile": ""}
            }]}),
        )
        .await;
    }

    /// Marks a run deleted (MLflow keeps it, in the deleted view).
    pub async fn delete_run(&self, run_id: &str) {
        self.post("runs/delete", json!({"run_id": run_id})).await;
    }

    /// Registers a new version of `model` from `run_id` (which MLflow does not check exists);
    /// returns its version number.
    pub async fn version_of_run(&self, model: &str, run_id: &str) -> String {
        let created = self
            .post(
                "model-versions/create",
                json!({"name": model, "source": format!("runs:/{run_id}/model"), "run_id": run_id}),
            )
            .await;
        created["model_version"]["version"]
            .as_str()
            .expect("a version")
            .to_owned()
    }

    pub async fn set_model_tag(&self, model: &str, key: &str, value: &str) {
        self.post(
            "registered-models/set-tag",
            json!({"name": model, "key": key, "value": value}),
        )
        .await;
    }

    pub async fn set_version_tag(&self, model: &str, version: &str, key: &str, value: &str) {
        self.post(
            "model-versions/set-tag",
            json!({"name": model, "version": version, "key": key, "value": value}),
        )
        .await;
    }

    pub async fn set_description(&self, model: &str, description: &str) {
        let response = self
            .http
            .patch(format!(
                "{}/api/2.0/mlflow/registered-models/update",
                self.url
            ))
            .json(&json!({"name": model, "description": description}))
            .send()
            .await
            .expect("MLflow answers");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// The version `alias` points at, read straight from MLflow.
    pub async fn alias(&self, model: &str, alias: &str) -> Option<String> {
        let value: Value = self
            .http
            .get(format!("{}/api/2.0/mlflow/registered-models/get", self.url))
            .query(&[("name", model)])
            .send()
            .await
            .expect("MLflow answers")
            .json()
            .await
            .expect("JSON");
        value["registered_model"]["aliases"]
            .as_array()?
            .iter()
            .find(|a| a["alias"] == alias)
            .and_then(|a| a["version"].as_str().map(str::to_owned))
    }

    /// A model version's tags.
    pub async fn version_tags(&self, model: &str, version: &str) -> Value {
        let value: Value = self
            .http
            .get(format!("{}/api/2.0/mlflow/model-versions/get", self.url))
            .query(&[("name", model), ("version", version)])
            .send()
            .await
            .expect("MLflow answers")
            .json()
            .await
            .expect("JSON");
        value["model_version"]["tags"].clone()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
