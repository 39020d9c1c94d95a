//! The executors that move a registered model's alias and set tags, through the [`Mlflow`]
//! client.
//!
//! Snapshots read the registered model (its aliases) or version (its tags) before anything
//! changes, so undo restores exactly what was there — an alias that did not exist is deleted, a
//! tag that did not exist is removed. Both steps are idempotent: setting an alias or tag twice
//! has the effect of setting it once, which is what lets an interrupted execution repeat them.
//! When `apply` gets an error MLflow answered, the step fails with MLflow's message as its
//! outcome; anything else — unreachable, not MLflow, a snapshot or undo that fails — is an
//! [`ExecError`]. Undo takes MLflow's 400 or 404 for "already gone".

use super::{Mlflow, MlflowError};
use crate::executor::{ExecError, Executor, Outcome};
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
                ..
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
                        ..
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
