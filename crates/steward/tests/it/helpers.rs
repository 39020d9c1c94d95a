//! The test harness: a real server on port 0 over a fresh database per test, SQLite or PostgreSQL.
//!
//! PostgreSQL tests create their own database on the server named by `STEWARD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test.sh` starts PostgreSQL and
//! drops leftovers of earlier runs. A PostgreSQL test fails, rather than skips, when the server is
//! not there: a green run must mean both backends were tested.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use steward_core::approval::RoutingPolicy;
use steward_core::risk::RiskPolicy;
use steward_server::{Application, Clock, ServerConfig};
use steward_store::Store;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a scenario once per backend, as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )+
        }
    };
}

pub fn postgres_admin_url() -> String {
    std::env::var("STEWARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    /// Holds the SQLite file (and serves as the data directory) until the test ends.
    pub dir: TempDir,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("steward.db").display()
            ),
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = postgres_admin_url();
                let name = format!("steward_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test (run scripts/test.sh): {e}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let base = admin
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .unwrap_or(&admin);
                format!("{base}/{name}")
            }
        };
        TestDb { url, dir }
    }
}

pub fn config(db: &TestDb) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: db.url.clone(),
        data_dir: db.dir.path().to_owned(),
        bootstrap_token: Some(ADMIN_TOKEN.to_owned()),
        risk_policy: RiskPolicy::default(),
        routing_policy: RoutingPolicy::default(),
        audit_origin: "steward.test/audit".into(),
        // Shared by every server of a test, as several servers on one database must share it.
        audit_signing_key: Some(AUDIT_KEY.into()),
        payload_kek_file: None,
        audit_retention: Default::default(),
        policy_dir: None,
        builtin_policies: true,
        github: None,
        gitlab: None,
        execution: Default::default(),
        incidents: Default::default(),
        inventory_scans: None,
        public_url: None,
        oidc: None,
    }
}

pub const AUDIT_KEY: &str = "1f2e3d4c5b6a79880716253443526170f1e2d3c4b5a6978807162534435261aa";
pub const ADMIN_TOKEN: &str = "stw_test_admin_token_0123456789abcdef";

#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub clock: Clock,
    pub store: Store,
    pub http: reqwest::Client,
    /// The monitoring account that pushes metric samples (made on first use).
    monitor: tokio::sync::OnceCell<String>,
    /// The second admin who approves privileged operations (made on first use).
    second_admin: tokio::sync::OnceCell<String>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(db: &TestDb) -> TestApp {
        Self::spawn_with(config(db), Clock::default()).await
    }

    pub async fn spawn_with(config: ServerConfig, clock: Clock) -> TestApp {
        let app = Application::build_with_clock(config, clock.clone())
            .await
            .expect("the application builds");
        let base = format!("http://{}", app.local_addr().expect("bound"));
        let store = app.store().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            clock,
            store,
            http: reqwest::Client::new(),
            monitor: tokio::sync::OnceCell::new(),
            second_admin: tokio::sync::OnceCell::new(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// The token of a monitoring account (`monitor` role), the only kind that pushes metric
    /// samples; created on first use as `metrics-feed`.
    pub async fn monitor(&self) -> &str {
        self.monitor
            .get_or_init(|| self.user("metrics-feed", &["monitor"]))
            .await
    }

    /// Creates a user with these roles and returns their token. A privileged role waits for a
    /// second admin (dual control): the bootstrap admin asks, [`Self::second_admin`] approves.
    pub async fn user(&self, name: &str, roles: &[&str]) -> String {
        // The tenant's first second admin is a bootstrap grant: make it the approver first, so
        // that an `admin` asked for here waits like any other grant.
        self.second_admin().await;
        let (status, body) = self
            .post(
                "/api/v1/users",
                ADMIN_TOKEN,
                json!({ "name": name, "roles": roles }),
            )
            .await;
        let token = body["token"].as_str().expect("token").to_owned();
        match status {
            StatusCode::CREATED => token,
            StatusCode::ACCEPTED => {
                let waiting = body["pending_approval"].as_str().expect("operation id");
                self.approve_operation(waiting).await;
                token
            }
            other => panic!("creating {name}: {other} {body}"),
        }
    }

    /// The second admin (`second-admin`), made on first use as the tenant's bootstrap grant:
    /// approves what the bootstrap admin asks for.
    pub async fn second_admin(&self) -> &str {
        self.second_admin
            .get_or_init(|| async {
                let (status, body) = self
                    .post(
                        "/api/v1/users",
                        ADMIN_TOKEN,
                        json!({ "name": "second-admin", "roles": ["admin"] }),
                    )
                    .await;
                match status {
                    StatusCode::CREATED => body["token"].as_str().expect("token").to_owned(),
                    // Another server on this database made it first: a token of our own.
                    StatusCode::CONFLICT => {
                        let token = format!("stw_second_admin_{}", uuid::Uuid::now_v7().simple());
                        let name = steward_core::UserName::parse("second-admin").expect("name");
                        self.store
                            .tenant(&steward_core::TenantId::default_tenant())
                            .issue_token(
                                "admin",
                                &name,
                                &steward_server::auth::hash_token(&token),
                                None,
                                chrono::Utc::now(),
                            )
                            .await
                            .expect("token")
                            .expect("the second admin exists");
                        token
                    }
                    other => panic!("bootstrap grant: {other} {body}"),
                }
            })
            .await
    }

    /// Approves a privileged operation the bootstrap admin asked for, as the second admin.
    pub async fn approve_operation(&self, id: &str) -> Value {
        let approver = self.second_admin().await.to_owned();
        self.approve_as(id, &approver).await
    }

    /// Approves privileged operation `id` with `approver`'s token, which must succeed.
    pub async fn approve_as(&self, id: &str, approver: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/admin/pending/{id}/approve"),
                approver,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "approving {id}: {body}");
        body
    }

    pub async fn target(
        &self,
        name: &str,
        owner: &str,
        environment: &str,
        criticality: &str,
        regulated: &[&str],
    ) {
        let (status, body) = self
            .post(
                "/api/v1/targets",
                ADMIN_TOKEN,
                json!({ "name": name, "kind": "model_deployment", "owner": owner, "environment": environment,
                        "criticality": criticality, "regulated": regulated }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn submit(&self, token: &str, document: Value) -> (StatusCode, Value) {
        self.post("/api/v1/changes", token, document).await
    }

    /// Submits and expects success; returns the change.
    pub async fn submit_ok(&self, token: &str, document: Value) -> Value {
        let (status, body) = self.submit(token, document).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn decide(
        &self,
        token: &str,
        id: &str,
        verb: &str,
        comment: &str,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/changes/{id}/{verb}"),
            token,
            json!({ "comment": comment }),
        )
        .await
    }

    pub async fn step(&self, token: &str, id: &str, step: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/changes/{id}/transitions"),
            token,
            json!({ "step": step }),
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A valid change request, with `overrides` merged over it.
pub fn change(overrides: Value) -> Value {
    let mut doc = json!({
        "title": "Promote fraud model v7",
        "description": "Retrained on October data",
        "category": "model-deployment",
        "targets": ["fraud-scoring"],
        "environment": "staging",
        "impact": {"data": "low", "availability": "low", "compliance": "low"},
        "implementation_plan": "move alias champion to v7",
        "rollback_plan": "move alias champion back to v6",
        "backup": {"reference": "registry:fraud-scoring/6", "verified_at": "2026-11-20T00:00:00Z"},
    });
    if let (Some(doc), Some(overrides)) = (doc.as_object_mut(), overrides.as_object()) {
        for (k, v) in overrides {
            doc.insert(k.clone(), v.clone());
        }
    }
    doc
}

/// The common cast: a requester, the owning manager of a staging target, another manager.
pub struct Cast {
    pub rita: String,
    pub mia: String,
    pub max: String,
}

pub async fn cast(app: &TestApp) -> Cast {
    let cast = Cast {
        rita: app.user("rita", &["requester"]).await,
        mia: app.user("mia", &["manager"]).await,
        max: app.user("max", &["manager"]).await,
    };
    app.target("fraud-scoring", "mia", "staging", "low", &[])
        .await;
    cast
}

/// The names of the bad fields in a 422 answer, in order.
pub fn field_names(body: &Value) -> Vec<&str> {
    body["details"]["fields"]
        .as_array()
        .expect("a 422 body lists its fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect()
}

/// The items of a list answer, `{"items": [...], "next_cursor": …}`; panics on any other shape.
pub fn items(page: &Value) -> &Vec<Value> {
    assert!(
        page.get("next_cursor")
            .is_some_and(|c| c.is_null() || c.is_string()),
        "not a page of a list: {page}"
    );
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page of a list: {page}"))
}

/// Every item of the list at `path` (which may carry its own query), following the cursors.
pub async fn all_items(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let join = if path.contains('?') { '&' } else { '?' };
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{join}limit=500&cursor={c}"),
            None => format!("{path}{join}limit=500"),
        };
        let (status, page) = app.get(&url, token).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        all.extend(items(&page).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

pub fn id(change: &Value) -> String {
    change["id"].as_str().expect("id").to_owned()
}

/// What a run of the `steward` binary printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `steward` binary as a user would, against `url` with `token`.
pub fn run_steward(url: &str, token: &str, args: &[&str]) -> Run {
    run_steward_with(url, token, args, &[])
}

/// As [`run_steward`], with extra environment variables (a CI system's, say).
pub fn run_steward_with(url: &str, token: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("STEWARD_URL", url)
        .env("STEWARD_TOKEN", token)
        .envs(env.iter().copied())
        .output()
        .expect("steward runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `futures` concurrently and returns their outputs in order.
pub async fn join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    // Poll them together on this task: concurrent requests without spawning 'static tasks.
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => outputs[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
