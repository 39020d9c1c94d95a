//! Model discovery in an MLflow model registry: `steward inventory scan --mlflow URL` reads a
//! tracking server's registered models, their versions, aliases and tags, and the parameters,
//! metrics and tags of the runs that produced the versions, over MLflow's REST API
//! (`/api/2.0/mlflow/…`, as of MLflow 3.x).
//!
//! The requests, and why they are these (MLflow 3.17.2, measured):
//!
//! 1. `GET registered-models/search`, paged: names, descriptions, tags and aliases of every
//!    model. MLflow takes at most 1000 models a page.
//! 2. `GET model-versions/search`, paged, over the whole registry at once rather than once per
//!    model: versions are attached to their models here. (Version answers carry no aliases; a
//!    version's aliases are its model's aliases that point at it.) MLflow takes up to 200,000
//!    versions a page; one `page_size` serves every listing for simplicity.
//! 3. Only if some version names a run: `GET experiments/search` (`view_type=ALL`), paged, for
//!    every experiment id — a model version does not say which experiment its run is in, and
//!    `runs/search` needs experiment ids. Then `POST runs/search` with
//!    `attributes.run_id IN (…)` over [`RUN_BATCH`] run ids and all experiment ids
//!    ([`EXPERIMENT_BATCH`] at a time, so the server's SQL stays within bind-variable limits;
//!    the next group is asked only for runs not yet found), `run_view_type=ALL` so versions of
//!    deleted runs still show where they came from.
//!
//! So a registry of M models, V versions, R distinct runs and E experiments costs
//! ⌈M/page⌉ + ⌈V/page⌉ + ⌈E/page⌉ + ⌈R/100⌉·⌈E/1000⌉ requests (an empty listing still costs
//! one): four for most servers, against 1 + V + R for the naive walk. Asking `runs/get` for one
//! run per experiment to learn the experiment ids would cost two requests per experiment the
//! runs come from, usually more.
//!
//! The scan is idempotent: models are sorted by name, versions by number, maps are ordered, so
//! two scans of an unchanged registry differ only in `scanned_at`. It reads a live server page
//! by page, not a snapshot: a model registered during a scan may be missing or lack versions.
//! A version whose run cannot be found (deleted for good, or logged to another server) keeps its
//! `run_id` with `run: None`.
//!
//! Any failure fails the scan of this server — one tracking server is one source; a caller
//! scanning several sources reports the failed one and goes on with the others.
//!
//! The HTTP layer — the tracking URI, timeouts, MLflow's error answers, paging — is
//! `steward_connectors::mlflow`, the client the execution steps use too; this module types the
//! listings, batches the run lookups and says the client's errors in a scan's words.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_connectors::mlflow::{Method, Mlflow, MlflowError, Page};

/// Run ids per `runs/search` request.
pub const RUN_BATCH: usize = 100;
/// Experiment ids per `runs/search` request.
pub const EXPERIMENT_BATCH: usize = 1000;
/// The most registered models MLflow returns in one page (`registered-models/search`).
pub const MAX_MODEL_PAGE_SIZE: u32 = 1000;

/// How an MLflow scan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowOptions {
    /// Items per page of each listing (models, versions, experiments). MLflow refuses more than
    /// [`MAX_MODEL_PAGE_SIZE`] models a page; that is the default.
    pub page_size: u32,
    /// How long one request may take, connecting included.
    pub timeout: Duration,
    /// Scan only models whose name starts with this (MLflow's `name LIKE 'prefix%'`, checked
    /// again here because `_` in a LIKE pattern matches any character).
    pub name_prefix: Option<String>,
}

impl Default for MlflowOptions {
    fn default() -> Self {
        MlflowOptions {
            page_size: MAX_MODEL_PAGE_SIZE,
            timeout: Duration::from_secs(30),
            name_prefix: None,
        }
    }
}

/// What a scan of one tracking server found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlflowScan {
    /// As given to [`scan`], without a trailing `/`.
    pub tracking_uri: String,
    /// When the scan started.
    pub scanned_at: DateTime<Utc>,
    /// Sorted by name.
    pub models: Vec<RegisteredModel>,
    /// HTTP requests the scan made, for the request budget described in the module docs.
    pub requests: u64,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    /// `None` when MLflow has none (it answers `""`).
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Alias → the version it points at.
    pub aliases: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Sorted by version number.
    pub versions: Vec<ModelVersion>,
}

/// One version of a registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// MLflow's version number, as the string MLflow uses in its API (`"3"`).
    pub version: String,
    pub description: Option<String>,
    /// The artifact URI the version was registered from (`s3://…`, `runs:/…`, `models:/…`).
    pub source: String,
    /// The run that produced it, where MLflow knows one.
    pub run_id: Option<String>,
    /// `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    pub status: String,
    /// The legacy stage (`Staging`, `Production`, `Archived`); `None` for MLflow's `"None"`.
    pub stage: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The model's aliases that point at this version, sorted.
    pub aliases: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The run named by `run_id`; `None` when there is no run id or the server has no such run.
    pub run: Option<RunInfo>,
}

/// The run a model version came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub params: BTreeMap<String, String>,
    /// The latest value of each metric (MLflow's run view); `NaN` and infinities as MLflow has them.
    pub metrics: BTreeMap<String, f64>,
    /// The run's tags, MLflow's own (`mlflow.runName`, `mlflow.user`, …) included.
    pub tags: BTreeMap<String, String>,
    pub start_time: Option<DateTime<Utc>>,
    /// The datasets the run logged as inputs (`mlflow.log_input`).
    #[serde(default)]
    pub datasets: Vec<DatasetInput>,
}

/// A dataset a run read, as MLflow records it (`inputs.dataset_inputs[].dataset`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInput {
    pub name: String,
    /// MLflow's digest of the dataset (a short hash it computes when the dataset is logged).
    pub digest: Option<String>,
    /// `s3`, `http`, `delta_table`, `code`, …
    pub source_type: Option<String>,
    /// The source, as MLflow stores it: a JSON text such as `{"uri": "s3://…"}`.
    pub source: Option<String>,
    /// The input's context tag (`mlflow.data.context`: `training`, `evaluation`).
    pub context: Option<String>,
}

/// Which listing a running scan is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlflowStage {
    Models,
    Versions,
    /// Experiments, then runs.
    Runs,
}

/// Where a running scan is; sent after each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowProgress {
    pub stage: MlflowStage,
    /// Models listed so far.
    pub models: u64,
    /// Versions listed so far.
    pub versions: u64,
    /// Runs found so far.
    pub runs: u64,
    /// Requests made so far.
    pub requests: u64,
}

/// Why a scan of a tracking server failed.
#[derive(Debug, thiserror::Error)]
pub enum MlflowScanError {
    #[error(
        "{url} is not an MLflow tracking server URL ({message}): give the http(s) address the \
         server listens on, e.g. http://mlflow.internal:5000; file and database stores are read \
         through `mlflow server --backend-store-uri …`"
    )]
    InvalidTrackingUri { url: String, message: String },
    #[error("invalid MLflow scan options: {message}")]
    InvalidOptions { message: String },
    #[error(
        "cannot reach MLflow at {url}: {message}; check the URL and that the tracking server is \
         running and reachable from here"
    )]
    Unreachable { url: String, message: String },
    #[error("MLflow at {url} answered {endpoint} with {status} {code}: {message}{}", api_hint(.status, .code))]
    Api {
        url: String,
        endpoint: String,
        status: u16,
        /// MLflow's `error_code`, e.g. `INVALID_PARAMETER_VALUE`.
        code: String,
        message: String,
    },
    #[error(
        "{url} answered {endpoint} with something other than MLflow's API ({message}): is it the \
         address of an MLflow tracking server, without a path such as /#/models?"
    )]
    NotMlflow {
        url: String,
        endpoint: String,
        message: String,
    },
}

impl From<MlflowError> for MlflowScanError {
    fn from(e: MlflowError) -> MlflowScanError {
        match e {
            MlflowError::InvalidTrackingUri { url, message } => {
                MlflowScanError::InvalidTrackingUri { url, message }
            }
            MlflowError::Unreachable { url, message } => {
                MlflowScanError::Unreachable { url, message }
            }
            MlflowError::Api {
                url,
                endpoint,
                status,
                code,
                message,
            } => MlflowScanError::Api {
                url,
                endpoint,
                status,
                code,
                message,
            },
            MlflowError::NotMlflow {
                url,
                endpoint,
                message,
            } => MlflowScanError::NotMlflow {
                url,
                endpoint,
                message,
            },
        }
    }
}

/// What a person can do about an error MLflow answered, where that is clear.
fn api_hint(status: &u16, code: &str) -> &'static str {
    match (status, code) {
        (401 | 403, _) | (_, "PERMISSION_DENIED" | "UNAUTHENTICATED") => {
            "; the server requires authentication, which the MLflow scan does not send yet"
        }
        (_, "INVALID_PARAMETER_VALUE") => {
            "; check the scan's page size (MLflow takes 1 to 1000 models a page) and name prefix"
        }
        (500.., _) => "; the tracking server failed: its log says why",
        _ => "",
    }
}

/// Scans the registry of the tracking server at `tracking_uri` (`http://host:5000`), calling
/// `progress` after each request.
///
/// Needs a tokio runtime (the client uses `reqwest`). Fails as a whole — one server is one
/// source — when the server cannot be reached or answers an error.
pub async fn scan(
    tracking_uri: &str,
    options: &MlflowOptions,
    progress: &mut (dyn FnMut(MlflowProgress) + Send),
) -> Result<MlflowScan, MlflowScanError> {
    let scanned_at = Utc::now();
    let mlflow = Mlflow::with_timeout(tracking_uri, options.timeout)?;
    if options.page_size == 0 {
        return Err(MlflowScanError::InvalidOptions {
            message: "the page size must be at least 1".to_owned(),
        });
    }
    let name_filter = options
        .name_prefix
        .as_deref()
        .map(name_like_filter)
        .transpose()?;
    let mut scanner = Scanner {
        mlflow,
        progress,
        counts: MlflowProgress {
            stage: MlflowStage::Models,
            models: 0,
            versions: 0,
            runs: 0,
            requests: 0,
        },
        page_size: options.page_size,
    };

    let mut query = Vec::new();
    if let Some(filter) = &name_filter {
        query.push(("filter", filter.as_str()));
    }
    let keep = |name: &str| {
        options
            .name_prefix
            .as_deref()
            .is_none_or(|prefix| name.starts_with(prefix))
    };
    let wire_models: Vec<WireModel> = scanner
        .list::<ModelsPage>("registered-models/search", &query, MlflowStage::Models)
        .await?;
    let wire_versions: Vec<WireVersion> = scanner
        .list::<VersionsPage>("model-versions/search", &query, MlflowStage::Versions)
        .await?;
    let run_ids: BTreeSet<String> = wire_versions
        .iter()
        .filter(|v| keep(&v.name))
        .filter_map(|v| non_empty(&v.run_id))
        .collect();
    let runs = scanner.runs(run_ids).await?;

    let mut models: BTreeMap<String, RegisteredModel> = wire_models
        .into_iter()
        .filter(|m| keep(&m.name))
        .map(|m| (m.name.clone(), model_from_wire(m)))
        .collect();
    for v in wire_versions {
        // A version of a model registered after the model listing has no model to go with.
        let Some(model) = models.get_mut(&v.name) else {
            continue;
        };
        let aliases = model
            .aliases
            .iter()
            .filter(|(_, version)| **version == v.version)
            .map(|(alias, _)| alias.clone())
            .collect();
        let run_id = non_empty(&v.run_id);
        let run = run_id.as_ref().and_then(|id| runs.get(id).cloned());
        model.versions.push(ModelVersion {
            version: v.version,
            description: non_empty(&v.description),
            source: v.source,
            run_id,
            status: v.status,
            stage: non_empty(&v.current_stage).filter(|s| s != "None"),
            tags: tags(v.tags),
            aliases,
            created_at: v.creation_timestamp.and_then(millis),
            run,
        });
    }
    let mut models: Vec<RegisteredModel> = models.into_values().collect();
    for model in &mut models {
        model
            .versions
            .sort_by_cached_key(|v| version_order(&v.version));
    }
    Ok(MlflowScan {
        tracking_uri: scanner.mlflow.tracking_uri().to_owned(),
        scanned_at,
        models,
        requests: scanner.counts.requests,
    })
}

/// `name LIKE 'prefix%'`, quoted with whichever quote the prefix does not contain (MLflow's
/// filter grammar has no escapes).
fn name_like_filter(prefix: &str) -> Result<String, MlflowScanError> {
    let quote = if !prefix.contains('\'') {
        '\''
    } else if !prefix.contains('"') {
        '"'
    } else {
        return Err(MlflowScanError::InvalidOptions {
            message: format!(
                "the name prefix {prefix:?} holds both quote characters, which MLflow's search \
                 filter cannot express; shorten it to before one of them"
            ),
        });
    };
    Ok(format!("name LIKE {quote}{prefix}%{quote}"))
}

/// Numeric versions in numeric order, anything else after them by text.
fn version_order(version: &str) -> (u8, u64, String) {
    match version.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, version.to_owned()),
    }
}

/// MLflow's run ids are 32 hex digits; only ids of plain characters can go into an `IN (…)`
/// filter, and no run on the server has any other kind.
fn is_plain_run_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.is_empty()).cloned()
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn tags(tags: Vec<WireTag>) -> BTreeMap<String, String> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

fn model_from_wire(m: WireModel) -> RegisteredModel {
    RegisteredModel {
        description: non_empty(&m.description),
        tags: tags(m.tags),
        aliases: m
            .aliases
            .into_iter()
            .map(|a| (a.alias, a.version))
            .collect(),
        created_at: m.creation_timestamp.and_then(millis),
        updated_at: m.last_updated_timestamp.and_then(millis),
        versions: Vec::new(),
        name: m.name,
    }
}

fn run_from_wire(run: WireRun) -> RunInfo {
    RunInfo {
        run_id: run.info.run_id,
        experiment_id: run.info.experiment_id,
        params: tags(run.data.params),
        metrics: run
            .data
            .metrics
            .into_iter()
            .filter_map(|m| Some((m.key, metric_value(&m.value)?)))
            .collect(),
        tags: tags(run.data.tags),
        start_time: run.info.start_time.and_then(millis),
        datasets: run
            .inputs
            .dataset_inputs
            .into_iter()
            .map(|i| DatasetInput {
                context: i
                    .tags
                    .into_iter()
                    .find(|t| t.key == "mlflow.data.context")
                    .map(|t| t.value),
                name: i.dataset.name,
                digest: i.dataset.digest.filter(|d| !d.is_empty()),
                source_type: i.dataset.source_type.filter(|d| !d.is_empty()),
                source: i.dataset.source.filter(|d| !d.is_empty()),
            })
            .collect(),
    }
}

/// A metric value: a JSON number, or MLflow's `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn metric_value(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

struct Scanner<'p> {
    mlflow: Mlflow,
    progress: &'p mut (dyn FnMut(MlflowProgress) + Send),
    counts: MlflowProgress,
    page_size: u32,
}

impl Scanner<'_> {
    fn report(&mut self, stage: MlflowStage) {
        self.counts.stage = stage;
        (self.progress)(self.counts.clone());
    }

    /// One page of a listing, counted in the request budget.
    async fn page<P: Page>(
        &mut self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<(Vec<P::Item>, Option<String>), MlflowScanError> {
        self.counts.requests += 1;
        Ok(self
            .mlflow
            .page::<P>(method, endpoint, query, body, token)
            .await?)
    }

    /// Every page of a GET listing.
    async fn list<P: Page>(
        &mut self,
        endpoint: &str,
        query: &[(&str, &str)],
        stage: MlflowStage,
    ) -> Result<Vec<P::Item>, MlflowScanError> {
        let page_size = self.page_size.to_string();
        let mut query = query.to_vec();
        query.push(("max_results", &page_size));
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page_items, next) = self
                .page::<P>(Method::GET, endpoint, &query, None, token.as_deref())
                .await?;
            let count = page_items.len() as u64;
            match stage {
                MlflowStage::Models => self.counts.models += count,
                MlflowStage::Versions => self.counts.versions += count,
                MlflowStage::Runs => {}
            }
            items.extend(page_items);
            self.report(stage);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// The runs of these ids that the server has, batched as the module docs describe.
    async fn runs(
        &mut self,
        run_ids: BTreeSet<String>,
    ) -> Result<BTreeMap<String, RunInfo>, MlflowScanError> {
        let mut found = BTreeMap::new();
        let run_ids: Vec<String> = run_ids
            .into_iter()
            .filter(|id| is_plain_run_id(id))
            .collect();
        if run_ids.is_empty() {
            return Ok(found);
        }
        let experiments: Vec<WireExperiment> = self
            .list::<ExperimentsPage>(
                "experiments/search",
                &[("view_type", "ALL")],
                MlflowStage::Runs,
            )
            .await?;
        let experiment_ids: Vec<String> =
            experiments.into_iter().map(|e| e.experiment_id).collect();
        for batch in run_ids.chunks(RUN_BATCH) {
            let mut pending: BTreeSet<&str> = batch.iter().map(String::as_str).collect();
            for experiments in experiment_ids.chunks(EXPERIMENT_BATCH) {
                if pending.is_empty() {
                    break;
                }
                let list = pending
                    .iter()
                    .map(|id| format!("'{id}'"))
                    .collect::<Vec<_>>()
                    .join(",");
                let body = json!({
                    "experiment_ids": experiments,
                    "filter": format!("attributes.run_id IN ({list})"),
                    "run_view_type": "ALL",
                    "max_results": RUN_BATCH,
                });
                let mut token: Option<String> = None;
                loop {
                    let (runs, next) = self
                        .page::<RunsPage>(
                            Method::POST,
                            "runs/search",
                            &[],
                            Some(&body),
                            token.as_deref(),
                        )
                        .await?;
                    for run in runs {
                        let run = run_from_wire(run);
                        pending.remove(run.run_id.as_str());
                        found.insert(run.run_id.clone(), run);
                    }
                    self.counts.runs = found.len() as u64;
                    self.report(MlflowStage::Runs);
                    match next {
                        Some(next) => token = Some(next),
                        None => break,
                    }
                }
            }
        }
        Ok(found)
    }
}

// MLflow's wire format, private to this module: its JSON is not Steward's vocabulary.

#[derive(Deserialize)]
struct ModelsPage {
    #[serde(default)]
    registered_models: Vec<WireModel>,
    next_page_token: Option<String>,
}

impl Page for ModelsPage {
    type Item = WireModel;
    fn into_parts(self) -> (Vec<WireModel>, Option<String>) {
        (self.registered_models, self.next_page_token)
    }
}

#[derive(Deserialize)]
struct VersionsPage {
    #[serde(default)]
    model_versions: Vec<WireVersion>,
    next_page_token: Option<String>,
}

impl Page for VersionsPage {
    type Item = WireVersion;
    fn into_parts(self) -> (Vec<WireVersion>, Option<String>) {
        (self.model_versions, self.next_page_token)
    }
}

#[derive(Deserialize)]
struct ExperimentsPage {
    #[serde(default)]
    experiments: Vec<WireExperiment>,
    next_page_token: Option<String>,
}

impl Page for ExperimentsPage {
    type Item = WireExperiment;
    fn into_parts(self) -> (Vec<WireExperiment>, Option<String>) {
        (self.experiments, self.next_page_token)
    }
}

#[derive(Deserialize)]
struct RunsPage {
    #[serde(default)]
    runs: Vec<WireRun>,
    next_page_token: Option<String>,
}

impl Page for RunsPage {
    type Item = WireRun;
    fn into_parts(self) -> (Vec<WireRun>, Option<String>) {
        (self.runs, self.next_page_token)
    }
}

#[derive(Deserialize)]
struct WireModel {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    creation_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    last_updated_timestamp: Option<i64>,
    #[serde(default)]
    tags: Vec<WireTag>,
    #[serde(default)]
    aliases: Vec<WireAlias>,
}

#[derive(Deserialize)]
struct WireTag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct WireAlias {
    alias: String,
    version: String,
}

#[derive(Deserialize)]
struct WireVersion {
    name: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    creation_timestamp: Option<i64>,
    #[serde(default)]
    current_stage: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    tags: Vec<WireTag>,
}

#[derive(Deserialize)]
struct WireExperiment {
    experiment_id: String,
}

#[derive(Deserialize)]
struct WireRun {
    info: WireRunInfo,
    #[serde(default)]
    data: WireRunData,
    #[serde(default)]
    inputs: WireRunInputs,
}

#[derive(Deserialize, Default)]
struct WireRunInputs {
    #[serde(default)]
    dataset_inputs: Vec<WireDatasetInput>,
}

#[derive(Deserialize)]
struct WireDatasetInput {
    #[serde(default)]
    tags: Vec<WireTag>,
    dataset: WireDataset,
}

#[derive(Deserialize)]
struct WireDataset {
    name: String,
    digest: Option<String>,
    source_type: Option<String>,
    source: Option<String>,
}

#[derive(Deserialize)]
struct WireRunInfo {
    run_id: String,
    experiment_id: String,
    #[serde(default, deserialize_with = "int64")]
    start_time: Option<i64>,
}

#[derive(Deserialize, Default)]
struct WireRunData {
    #[serde(default)]
    metrics: Vec<WireMetric>,
    #[serde(default)]
    params: Vec<WireTag>,
    #[serde(default)]
    tags: Vec<WireTag>,
}

#[derive(Deserialize)]
struct WireMetric {
    key: String,
    value: Value,
}

/// Protobuf's JSON mapping allows int64 as a number or a string; MLflow sends numbers today.
fn int64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_number_then_text() {
        let mut versions = vec!["10", "2", "x", "1", "9"];
        versions.sort_by_cached_key(|v| version_order(v));
        assert_eq!(versions, ["1", "2", "9", "10", "x"]);
    }

    #[test]
    fn the_name_filter_quotes_around_the_prefix() {
        let check = |prefix: &str, expected: Option<&str>| {
            assert_eq!(
                name_like_filter(prefix).ok().as_deref(),
                expected,
                "{prefix}"
            );
        };
        check("fraud-", Some("name LIKE 'fraud-%'"));
        check("o'neil", Some("name LIKE \"o'neil%\""));
        check("a'b\"c", None);
    }

    #[test]
    fn metric_values_include_mlflow_spellings_of_non_finite_numbers() {
        assert_eq!(metric_value(&json!(0.5)), Some(0.5));
        assert_eq!(metric_value(&json!("Infinity")), Some(f64::INFINITY));
        assert!(metric_value(&json!("NaN")).is_some_and(f64::is_nan));
        assert_eq!(metric_value(&json!(null)), None);
    }

    #[test]
    fn only_plain_run_ids_go_into_a_filter() {
        assert!(is_plain_run_id("46e2a0e7cdc44f84b810bc494481067e"));
        assert!(!is_plain_run_id("x') OR ('1'='1"));
        assert!(!is_plain_run_id(""));
    }

    #[test]
    fn a_scan_can_run_on_any_tokio_worker() {
        fn send<T: Send>(_: &T) {}
        let options = MlflowOptions::default();
        let mut progress = |_: MlflowProgress| {};
        let future = scan("http://127.0.0.1:9", &options, &mut progress);
        send(&future);
    }
}
