//! Wire types of what inventory scans found: deployments, datasets and training runs,
//! reconciliation findings, and kept scan reports (read back from the documents
//! [`crate::inventory::record`] keeps, so these also derive `Deserialize`).
//!
//! Like [`super::inventory_views`], these mirror the domain types on purpose, field by field,
//! and keep their keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::inventory::{Dataset, Deployment, Finding, Run};
use utoipa::ToSchema;

/// Where a model runs: a KServe InferenceService, a Seldon deployment, a model-server pod.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryDeploymentView {
    /// `<source>/<kind>/<namespace>/<name>`
    pub key: String,
    pub found_by: String,
    /// kserve, seldon, pod
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The model it serves, as the resource names it.
    pub model: Option<String>,
    pub version: Option<String>,
    pub format: Option<String>,
    pub runtime: Option<String>,
    pub storage_uri: Option<String>,
    /// The running artifact's digest, where the resource pins one.
    pub digest: Option<String>,
    pub url: Option<String>,
    pub ready: bool,
    pub labels: BTreeMap<String, String>,
    pub images: Vec<String>,
    /// Seen by the latest successful scan of its source.
    pub running: bool,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl From<&Deployment> for InventoryDeploymentView {
    fn from(d: &Deployment) -> Self {
        let Deployment {
            key,
            found_by,
            kind,
            namespace,
            name,
            model,
            version,
            format,
            runtime,
            storage_uri,
            digest,
            url,
            ready,
            labels,
            images,
            running,
            first_seen,
            last_seen,
        } = d;
        InventoryDeploymentView {
            key: key.clone(),
            found_by: found_by.clone(),
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            model: model.clone(),
            version: version.clone(),
            format: format.clone(),
            runtime: runtime.clone(),
            storage_uri: storage_uri.clone(),
            digest: digest.clone(),
            url: url.clone(),
            ready: *ready,
            labels: labels.clone(),
            images: images.clone(),
            running: *running,
            first_seen: *first_seen,
            last_seen: *last_seen,
        }
    }
}

/// A dataset a training run read.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetView {
    /// `name@digest` when the source gives a digest, else `name`.
    pub key: String,
    pub name: String,
    pub digest: Option<String>,
    /// Where the data lives (`s3://…`, a table).
    pub uri: Option<String>,
    /// The kind of location (`s3`, `delta_table`, `code`).
    pub source_type: Option<String>,
    pub found_by: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl From<&Dataset> for DatasetView {
    fn from(d: &Dataset) -> Self {
        let Dataset {
            key,
            name,
            digest,
            uri,
            source_type,
            found_by,
            first_seen,
            last_seen,
        } = d;
        DatasetView {
            key: key.clone(),
            name: name.clone(),
            digest: digest.clone(),
            uri: uri.clone(),
            source_type: source_type.clone(),
            found_by: found_by.clone(),
            first_seen: *first_seen,
            last_seen: *last_seen,
        }
    }
}

/// A training run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// The tracking server's run id.
    pub id: String,
    pub found_by: String,
    pub name: Option<String>,
    pub experiment: Option<String>,
    pub user: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    /// Keys of the datasets it read.
    pub datasets: Vec<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl From<&Run> for RunView {
    fn from(r: &Run) -> Self {
        let Run {
            id,
            found_by,
            name,
            experiment,
            user,
            started_at,
            params,
            metrics,
            datasets,
            first_seen,
            last_seen,
        } = r;
        RunView {
            id: id.clone(),
            found_by: found_by.clone(),
            name: name.clone(),
            experiment: experiment.clone(),
            user: user.clone(),
            started_at: *started_at,
            params: params.clone(),
            metrics: metrics.clone(),
            datasets: datasets.clone(),
            first_seen: *first_seen,
            last_seen: *last_seen,
        }
    }
}

/// One discrepancy between the inventory and what runs. Read back from kept scan reports too.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingView {
    /// orphan, not_running, unapproved, in_production_without_change, validation_expired or
    /// digest_mismatch
    pub kind: String,
    pub model: Option<String>,
    pub version: Option<String>,
    /// The deployment's key.
    pub deployment: Option<String>,
    pub detail: String,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        let Finding {
            kind,
            model,
            version,
            deployment,
            detail,
        } = f;
        FindingView {
            kind: kind.as_str().to_owned(),
            model: model.clone(),
            version: version.clone(),
            deployment: deployment.clone(),
            detail: detail.clone(),
        }
    }
}

/// A kept scan report: what each source did to the inventory, and the reconciliation after.
/// Read back from the document [`crate::inventory::record`] keeps.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScanReportView {
    /// `scan-<uuid>`
    pub id: String,
    /// When the earliest source was read.
    pub started_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub sources: Vec<ScanSourceView>,
    pub findings: Vec<FindingView>,
}

/// What one source of a scan did to the inventory.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScanSourceView {
    pub source: String,
    /// files, mlflow or kubernetes
    pub kind: String,
    pub ok: bool,
    /// Why the source could not be read; absent when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many versions, runs, datasets and deployments it reported.
    pub versions: usize,
    pub runs: usize,
    pub datasets: usize,
    pub deployments: usize,
    /// Models created, updated, and only seen again.
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    /// Deployments this source showed before and no longer does.
    pub gone: Vec<String>,
    pub problems: Vec<ScanProblemView>,
}

/// A problem a scan met that did not stop it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScanProblemView {
    /// Where: a path, a model version, a resource.
    pub at: String,
    pub problem: String,
}

impl ScanReportView {
    /// Reads a kept report; a document that is not one is a server fault, named in the log.
    pub fn from_stored(document: Value) -> Result<ScanReportView, crate::error::ApiError> {
        serde_json::from_value(document).map_err(|e| {
            crate::error::ApiError::Internal(anyhow::anyhow!(
                "a kept inventory scan report cannot be read: {e}"
            ))
        })
    }
}
