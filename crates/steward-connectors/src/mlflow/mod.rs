//! MLflow's tracking server over its REST API (`/api/2.0/mlflow/…`, as of MLflow 3.x): the one
//! client Steward talks to MLflow through, for discovery's registry scan
//! (`steward_discovery::mlflow`) and the execution steps ([`AliasStep`], [`TagsStep`]) alike.
//! It owns the HTTP layer so both see MLflow the same way: the tracking URI parsed once (http or
//! https, without the `#/models` of an address copied from a browser), one timeout per request,
//! MLflow's error answers (`{"error_code": …, "message": …}`) told apart from an address that
//! is not MLflow at all, a refused connection named by its cause rather than by reqwest's
//! wrapper, and the paging of MLflow's listings (`max_results`, `page_token`,
//! `next_page_token`). It sends no credentials: the servers Steward reads today take none.
//!
//! The answers stay MLflow's JSON, typed by each caller: MLflow's vocabulary is not Steward's.

mod steps;

pub use steps::{AliasStep, TagsStep};

use crate::executor::ExecError;
/// The method of a [`Mlflow::call`], re-exported so callers need no `reqwest` of their own.
pub use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

/// How long one request may take, connecting included, unless the caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An MLflow tracking server.
#[derive(Debug, Clone)]
pub struct Mlflow {
    /// The tracking URI as parsed, without a trailing `/`.
    tracking_uri: String,
    /// `{tracking_uri}/api/2.0/mlflow`.
    base: String,
    http: reqwest::Client,
    timeout: Duration,
}

/// Why a request to MLflow failed; each names the tracking URI. Callers say it in their own
/// words: discovery adds what a person can do, an executor step records MLflow's message.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// Not an http(s) URL.
    #[error("{url} is not an MLflow tracking server URL ({message})")]
    InvalidTrackingUri { url: String, message: String },
    /// No answer: refused, timed out, or the HTTP client could not be set up.
    #[error("cannot reach MLflow at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// An error MLflow answered in its own format.
    #[error("MLflow answered {status} {code}: {message}")]
    Api {
        url: String,
        endpoint: String,
        status: u16,
        /// MLflow's `error_code`, e.g. `RESOURCE_DOES_NOT_EXIST`.
        code: String,
        message: String,
    },
    /// An answer that is not MLflow's API: no JSON, or JSON of another shape.
    #[error("{url} answered {endpoint} with something other than MLflow's API ({message})")]
    NotMlflow {
        url: String,
        endpoint: String,
        message: String,
    },
}

impl From<MlflowError> for ExecError {
    fn from(e: MlflowError) -> ExecError {
        match e {
            MlflowError::InvalidTrackingUri { .. } => ExecError::Invalid(e.to_string()),
            _ => ExecError::Unreachable(e.to_string()),
        }
    }
}

/// A page of a listing: its items and the token of the next page, if any.
pub trait Page: DeserializeOwned {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

impl Mlflow {
    /// A client for the tracking server at `tracking_uri` (`http://127.0.0.1:5000`), each
    /// request within [`DEFAULT_TIMEOUT`].
    pub fn new(tracking_uri: &str) -> Result<Mlflow, MlflowError> {
        Mlflow::with_timeout(tracking_uri, DEFAULT_TIMEOUT)
    }

    /// A client whose requests, connecting included, each take at most `timeout`.
    pub fn with_timeout(tracking_uri: &str, timeout: Duration) -> Result<Mlflow, MlflowError> {
        let tracking_uri = tracking_uri_base(tracking_uri)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| MlflowError::Unreachable {
                url: tracking_uri.clone(),
                message: format!("cannot set up an HTTP client: {}", root_cause(&e)),
            })?;
        Ok(Mlflow {
            base: format!("{tracking_uri}/api/2.0/mlflow"),
            tracking_uri,
            http,
            timeout,
        })
    }

    /// The tracking URI requests go to: http(s), without a trailing `/`, fragment or query.
    pub fn tracking_uri(&self) -> &str {
        &self.tracking_uri
    }

    /// Calls one endpoint (`registered-models/get`): `query` goes in the URL, `body` as JSON.
    /// A success must be JSON of type `T`; a failure must be MLflow's error JSON, or the
    /// address is taken for something other than MLflow.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, MlflowError> {
        let mut request = self
            .http
            .request(method, format!("{}/{endpoint}", self.base))
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| MlflowError::Unreachable {
            url: self.tracking_uri.clone(),
            message: if e.is_timeout() {
                format!("no answer to {endpoint} within {:?}", self.timeout)
            } else {
                root_cause(&e)
            },
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| "no content type".to_owned(), str::to_owned);
        let answer = response.bytes().await.map_err(unreachable)?;
        let not_mlflow = |message: String| MlflowError::NotMlflow {
            url: self.tracking_uri.clone(),
            endpoint: endpoint.to_owned(),
            message,
        };
        if status.is_success() {
            return serde_json::from_slice(&answer).map_err(|e| {
                not_mlflow(format!(
                    "{status}, {content_type}, not the JSON expected: {e}"
                ))
            });
        }
        #[derive(Deserialize)]
        struct WireError {
            error_code: String,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_slice::<WireError>(&answer) {
            Ok(error) => Err(MlflowError::Api {
                url: self.tracking_uri.clone(),
                endpoint: endpoint.to_owned(),
                status: status.as_u16(),
                code: error.error_code,
                message: error.message,
            }),
            Err(_) => Err(not_mlflow(format!("{status}, {content_type}"))),
        }
    }

    /// One page of a listing, after `token` (the first page without one). The caller's `query`
    /// (GET) or `body` (POST) says how many items a page holds (`max_results`); `page_token`
    /// goes where the method takes it. Answers the page's items and the token of the next page:
    /// `None` when this page was the last, or was empty — an empty page with a token would
    /// repeat forever on a misbehaving server.
    pub async fn page<P: Page>(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<(Vec<P::Item>, Option<String>), MlflowError> {
        let page: P = match (token, body) {
            (None, _) => self.call(method, endpoint, query, body).await?,
            (Some(token), None) => {
                let mut query = query.to_vec();
                query.push(("page_token", token));
                self.call(method, endpoint, &query, None).await?
            }
            (Some(token), Some(body)) => {
                let mut body = body.clone();
                body["page_token"] = json!(token);
                self.call(method, endpoint, query, Some(&body)).await?
            }
        };
        let (items, next) = page.into_parts();
        let next = next.filter(|t| !t.is_empty() && !items.is_empty());
        Ok((items, next))
    }

    /// The registered model: `{"name", "aliases": [{"alias", "version"}], "tags": [...]}`.
    pub async fn registered_model(&self, name: &str) -> Result<Value, MlflowError> {
        let answer: Value = self
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
        let answer: Value = self
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
        let body = json!({"name": name, "alias": alias, "version": version});
        self.call::<Value>(Method::POST, "registered-models/alias", &[], Some(&body))
            .await
            .map(drop)
    }

    /// MLflow's DELETE endpoints take a JSON body.
    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), MlflowError> {
        let body = json!({"name": name, "alias": alias});
        self.call::<Value>(Method::DELETE, "registered-models/alias", &[], Some(&body))
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
        let (endpoint, body) = match version {
            Some(v) => (
                "model-versions/set-tag",
                json!({"name": name, "version": v, "key": key, "value": value}),
            ),
            None => (
                "registered-models/set-tag",
                json!({"name": name, "key": key, "value": value}),
            ),
        };
        self.call::<Value>(Method::POST, endpoint, &[], Some(&body))
            .await
            .map(drop)
    }

    pub async fn delete_tag(
        &self,
        name: &str,
        version: Option<&str>,
        key: &str,
    ) -> Result<(), MlflowError> {
        let (endpoint, body) = match version {
            Some(v) => (
                "model-versions/delete-tag",
                json!({"name": name, "version": v, "key": key}),
            ),
            None => (
                "registered-models/delete-tag",
                json!({"name": name, "key": key}),
            ),
        };
        self.call::<Value>(Method::DELETE, endpoint, &[], Some(&body))
            .await
            .map(drop)
    }
}

/// The tracking URI the API paths go after: http(s) only, without a trailing `/`, and without
/// the `#/models` of an address copied from the browser (or any query).
fn tracking_uri_base(tracking_uri: &str) -> Result<String, MlflowError> {
    let invalid = |message: String| MlflowError::InvalidTrackingUri {
        url: tracking_uri.to_owned(),
        message,
    };
    let mut url = reqwest::Url::parse(tracking_uri).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        scheme => return Err(invalid(format!("a {scheme}: URL, not http or https"))),
    }
    url.set_fragment(None);
    url.set_query(None);
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The innermost cause of an error: for a refused connection "Connection refused (os error
/// 111)" rather than reqwest's "error sending request for url (…)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests;
