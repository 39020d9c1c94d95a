//! MLflow's model registry over its REST API (`/api/2.0/mlflow/…`): a small client, and the
//! executors that move a registered model's alias and set tags.
//!
//! Snapshots read the registered model (its aliases) or version (its tags) before anything
//! changes, so undo restores exactly what was there — an alias that did not exist is deleted, a
//! tag that did not exist is removed. Both steps are idempotent: setting an alias or tag twice
//! has the effect of setting it once, which is what lets an interrupted execution repeat them.
//! MLflow answers errors as `{"error_code": …, "message": …}`; DELETE takes a JSON body.

use crate::executor::{ExecError, Executor, Outcome, bounded};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// An MLflow tracking server.
#[derive(Debug, Clone)]
pub struct Mlflow {
    base: String,
    http: reqwest::Client,
}

/// An error MLflow answered, or a failure to reach it.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error("cannot reach MLflow at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("MLflow answered {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
}

impl From<MlflowError> for ExecError {
    fn from(e: MlflowError) -> ExecError {
        ExecError::Unreachable(e.to_string())
    }
}

impl Mlflow {
    /// A client for the tracking server at `tracking_uri` (`http://127.0.0.1:5000`).
    pub fn new(tracking_uri: &str) -> Result<Mlflow, ExecError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ExecError::Invalid(e.to_string()))?;
        Ok(Mlflow {
            base: format!("{}/api/2.0/mlflow", tracking_uri.trim_end_matches('/')),
            http,
        })
    }

    /// Calls one endpoint: `query` goes in the URL for GET, `body` as JSON otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, MlflowError> {
        let url = format!("{}/{path}", self.base);
        let mut request = self.http.request(method, &url).query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| MlflowError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| MlflowError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(MlflowError::Api {
            status: status.as_u16(),
            code: value["error_code"].as_str().unwrap_or("UNKNOWN").to_owned(),
            message: value["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| bounded(&text)),
        })
    }

    /// The registered model: `{"name", "aliases": [{"alias", "version"}], "tags": [...]}`.
    pub async fn registered_model(&self, name: &str) -> Result<Value, MlflowError> {
        let answer = self
            .call(
                Method::GET,
                "registered-models/get",
                &[("name", name)],
                None,
            )
            .await?;
        Ok(answer["registered_model"].clone())
    }

    /// One model version: `{"name", "version", "source", "tags": [...], "aliases": [...]}`.
    pub async fn model_version(&self, name: &str, version: &str) -> Result<Value, MlflowError> {
        let answer = self
            .call(
                Method::GET,
                "model-versions/get",
                &[("name", name), ("version", version)],
                None,
            )
            .await?;
        Ok(answer["model_version"].clone())
    }

    /// The version `alias` points at, or `None` when the model has no such alias.
    pub async fn alias_version(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<String>, MlflowError> {
        let model = self.registered_model(name).await?;
        Ok(model["aliases"].as_array().and_then(|aliases| {
            aliases
                .iter()
                .find(|a| a["alias"] == alias)
                .and_then(|a| a["version"].as_str().map(str::to_owned))
        }))
    }

    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<(), MlflowError> {
        self.call(
            Method::POST,
            "registered-models/alias",
            &[],
            Some(json!({"name": name, "alias": alias, "version": version})),
        )
        .await
        .map(drop)
    }

    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), MlflowError> {
        self.call(
            Method::DELETE,
            "registered-models/alias",
            &[],
            Some(json!({"name": name, "alias": alias})),
        )
        .await
        .map(drop)
    }

    /// Sets a tag on the model, or on one version of it.
    pub async fn set_tag(
        &self,
        name: &str,
        version: Option<&str>,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        let (path, body) = match version {
            Some(v) => (
                "model-versions/set-tag",
                json!({"name": name, "version": v, "key": key, "value": value}),
            ),
            None => (
                "registered-models/set-tag",
                json!({"name": name, "key": key, "value": value}),
            ),
        };
        self.call(Method::POST, path, &[], Some(body))
            .await
            .map(drop)
    }

    pub async fn delete_tag(
        &self,
        name: &str,
        version: Option<&str>,
        key: &str,
    ) -> Result<(), MlflowError> {
        let (path, body) = match version {
            Some(v) => (
                "model-versions/delete-tag",
                json!({"name": name, "version": v, "key": key}),
            ),
            None => (
                "registered-models/delete-tag",
                json!({"name": name, "key": key}),
            ),
        };
        self.call(Method::DELETE, path, &[], Some(body))
            .await
            .map(drop)
    }
}

fn tags_of(record: &Value) -> BTreeMap<String, String> {
    record["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    Some((
                        t["key"].as_str()?.to_owned(),
                        t["value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn done(output: String, detail: Value) -> Outcome {
    Outcome {
        ok: true,
        output,
        detail,
    }
}

/// Points `alias` of registered model `model` at `version`.
#[derive(Debug, Clone)]
pub struct AliasStep {
    pub mlflow: Mlflow,
    pub model: String,
    pub alias: String,
    pub version: String,
}

impl Executor for AliasStep {
    async fn snapshot(&self) -> Result<Value, ExecError> {
        let previous = self.mlflow.alias_version(&self.model, &self.alias).await?;
        Ok(json!({"model": self.model, "alias": self.alias, "previous": previous}))
    }

    async fn apply(&self) -> Result<Outcome, ExecError> {
        match self
            .mlflow
            .set_alias(&self.model, &self.alias, &self.version)
            .await
        {
            Ok(()) => Ok(done(
                format!("{}@{} → version {}", self.model, self.alias, self.version),
                json!({"version": self.version}),
            )),
            Err(MlflowError::Api {
                status,
                code,
                message,
            }) => Ok(Outcome {
                ok: false,
                output: message,
                detail: json!({"status": status, "error_code": code}),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn undo(&self, snapshot: &Value) -> Result<Outcome, ExecError> {
        match snapshot["previous"].as_str() {
            Some(previous) => {
                self.mlflow
                    .set_alias(&self.model, &self.alias, previous)
                    .await?;
                Ok(done(
                    format!("{}@{} back to version {previous}", self.model, self.alias),
                    json!({"version": previous}),
                ))
            }
            None => {
                match self.mlflow.delete_alias(&self.model, &self.alias).await {
                    // Already gone is what undo wants.
                    Ok(())
                    | Err(MlflowError::Api {
                        status: 400 | 404, ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(done(
                    format!(
                        "{}@{} removed (it did not exist before)",
                        self.model, self.alias
                    ),
                    json!({"version": null}),
                ))
            }
        }
    }
}

/// Sets tags on a registered model or one of its versions.
#[derive(Debug, Clone)]
pub struct TagsStep {
    pub mlflow: Mlflow,
    pub model: String,
    pub version: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl TagsStep {
    async fn current(&self) -> Result<BTreeMap<String, String>, MlflowError> {
        let record = match &self.version {
            Some(v) => self.mlflow.model_version(&self.model, v).await?,
            None => self.mlflow.registered_model(&self.model).await?,
        };
        Ok(tags_of(&record))
    }
}

impl Executor for TagsStep {
    async fn snapshot(&self) -> Result<Value, ExecError> {
        let current = self.current().await?;
        // Only the keys this step sets: `null` means the tag did not exist.
        let previous: BTreeMap<&String, Option<&String>> =
            self.tags.keys().map(|k| (k, current.get(k))).collect();
        Ok(json!({"model": self.model, "version": self.version, "previous": previous}))
    }

    async fn apply(&self) -> Result<Outcome, ExecError> {
        for (key, value) in &self.tags {
            if let Err(e) = self
                .mlflow
                .set_tag(&self.model, self.version.as_deref(), key, value)
                .await
            {
                return match e {
                    MlflowError::Api {
                        status,
                        code,
                        message,
                    } => Ok(Outcome {
                        ok: false,
                        output: format!("tag {key}: {message}"),
                        detail: json!({"status": status, "error_code": code}),
                    }),
                    other => Err(other.into()),
                };
            }
        }
        Ok(done(
            format!("set {} tag(s) on {}", self.tags.len(), self.model),
            json!({"tags": self.tags}),
        ))
    }

    async fn undo(&self, snapshot: &Value) -> Result<Outcome, ExecError> {
        let previous = snapshot["previous"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (key, value) in &previous {
            let version = self.version.as_deref();
            match value.as_str() {
                Some(v) => self.mlflow.set_tag(&self.model, version, key, v).await?,
                None => match self.mlflow.delete_tag(&self.model, version, key).await {
                    Ok(())
                    | Err(MlflowError::Api {
                        status: 400 | 404, ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
        Ok(done(
            format!("restored {} tag(s) on {}", previous.len(), self.model),
            json!({"tags": previous}),
        ))
    }
}
