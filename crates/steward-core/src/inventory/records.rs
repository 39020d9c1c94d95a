//! What scans find besides model versions — training runs, the datasets they read, and the
//! deployments that serve models — with the lineage between them (dataset → run → version →
//! deployment), and [`SourceReport`], the source-neutral shape every scanner (files, MLflow,
//! Kubernetes) reports in, so one recorder handles them all.

use super::{Model, ModelVersion, name_from};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The kind of system a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A directory tree of model artifacts.
    Files,
    /// An MLflow tracking server's model registry.
    Mlflow,
    /// A Kubernetes cluster: where models run.
    Kubernetes,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Files => "files",
            SourceKind::Mlflow => "mlflow",
            SourceKind::Kubernetes => "kubernetes",
        }
    }

    /// Whether the source tells where models run (so "registered but not running" can be judged).
    pub fn is_runtime(self) -> bool {
        self == SourceKind::Kubernetes
    }
}

/// A problem a scan met that did not stop it (a corrupt file header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanProblem {
    /// Where: a path, a model version, a resource.
    pub at: String,
    pub problem: String,
}

/// A version as a scan found it, with the model fields the source states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundVersion {
    /// The inventory's name for the model (see [`name_from`]).
    pub model: String,
    /// Field values the source states (an MLflow tag `risk_tier`, a GGUF licence), recorded
    /// as discovered where no person stated them.
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    pub version: ModelVersion,
}

/// What one source of one scan found — or why it could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// `files:<host>:<dir>`, `mlflow:<url>`, `kubernetes:<context>`.
    pub source: String,
    pub kind: SourceKind,
    pub scanned_at: DateTime<Utc>,
    /// Set when the source could not be read: nothing else in the report applies, and what the
    /// inventory knew from this source is left as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub versions: Vec<FoundVersion>,
    #[serde(default)]
    pub runs: Vec<Run>,
    #[serde(default)]
    pub datasets: Vec<Dataset>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(default)]
    pub problems: Vec<ScanProblem>,
}

impl SourceReport {
    pub fn new(source: impl Into<String>, kind: SourceKind, at: DateTime<Utc>) -> SourceReport {
        SourceReport {
            source: source.into(),
            kind,
            scanned_at: at,
            error: None,
            versions: Vec::new(),
            runs: Vec::new(),
            datasets: Vec::new(),
            deployments: Vec::new(),
            problems: Vec::new(),
        }
    }

    pub fn failed(
        source: impl Into<String>,
        kind: SourceKind,
        at: DateTime<Utc>,
        error: impl Into<String>,
    ) -> SourceReport {
        let mut report = SourceReport::new(source, kind, at);
        report.error = Some(error.into());
        report
    }
}

/// A dataset a training run read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// `name@digest` when the source gives a digest, else `name` — stable across scans.
    pub key: String,
    pub name: String,
    pub digest: Option<String>,
    /// Where the data lives (`s3://…`, a table), as the source states it.
    pub uri: Option<String>,
    /// The kind of location (`s3`, `delta_table`, `code`).
    pub source_type: Option<String>,
    /// The scan source that found it.
    pub found_by: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl Dataset {
    pub fn key_for(name: &str, digest: Option<&str>) -> String {
        match digest {
            Some(d) if !d.is_empty() => format!("{name}@{d}"),
            _ => name.to_owned(),
        }
    }
}

/// A training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The tracking server's run id.
    pub id: String,
    pub found_by: String,
    pub name: Option<String>,
    pub experiment: Option<String>,
    pub user: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Keys of the datasets it read.
    #[serde(default)]
    pub datasets: Vec<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Where a model runs: a KServe InferenceService, a Seldon deployment, a model-server pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// `<source>/<kind>/<namespace>/<name>`.
    pub key: String,
    pub found_by: String,
    /// `kserve`, `seldon`, `pod`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The model it serves, as the resource names it (labels, an MLflow `models:/` URI).
    pub model: Option<String>,
    pub version: Option<String>,
    pub format: Option<String>,
    pub runtime: Option<String>,
    pub storage_uri: Option<String>,
    /// The running artifact's digest (`sha256:…`), where the resource pins one.
    pub digest: Option<String>,
    pub url: Option<String>,
    pub ready: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub images: Vec<String>,
    /// Seen by the latest successful scan of its source; `false` once a scan no longer finds it.
    pub running: bool,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl Deployment {
    pub fn key_for(source: &str, kind: &str, namespace: &str, name: &str) -> String {
        format!("{source}/{kind}/{namespace}/{name}")
    }
}

/// Which model (and version) of the inventory a deployment serves: the model its resource names
/// (when the inventory has it), else the version whose artifact URI or digest it runs. `None`
/// is an orphan: running, but not registered.
pub fn match_deployment<'m>(
    deployment: &Deployment,
    models: &'m [Model],
) -> Option<(&'m Model, Option<String>)> {
    if let Some(named) = deployment.model.as_deref().map(name_from)
        && let Some(model) = models.iter().find(|m| m.name == named)
    {
        let version = deployment.version.clone().or_else(|| {
            model
                .versions
                .iter()
                .find(|v| runs_version(deployment, v))
                .map(|v| v.version.clone())
        });
        return Some((model, version));
    }
    models.iter().find_map(|m| {
        m.versions
            .iter()
            .find(|v| runs_version(deployment, v))
            .map(|v| (m, Some(v.version.clone())))
    })
}

fn runs_version(deployment: &Deployment, version: &ModelVersion) -> bool {
    deployment.storage_uri.as_deref().is_some_and(|u| {
        !u.is_empty() && u.trim_end_matches('/') == version.artifact_uri.trim_end_matches('/')
    }) || (deployment.digest.is_some() && deployment.digest == version.digest)
}

/// A node of a model's lineage graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageNode {
    /// `dataset`, `run`, `version` or `deployment`.
    pub kind: String,
    pub key: String,
    pub label: String,
}

/// `from` fed `to`: dataset → run (read by), run → version (produced), version → deployment
/// (serves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Lineage {
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
}

/// A model's lineage: its versions, the runs that produced them, the datasets those runs read,
/// and the deployments serving each version. Node keys are `kind:key`.
pub fn lineage(
    model: &Model,
    models: &[Model],
    runs: &[Run],
    datasets: &[Dataset],
    deployments: &[Deployment],
) -> Lineage {
    let mut out = Lineage::default();
    let add = |out: &mut Lineage, kind: &str, key: &str, label: String| {
        let id = format!("{kind}:{key}");
        if !out.nodes.iter().any(|n| n.key == id) {
            out.nodes.push(LineageNode {
                kind: kind.to_owned(),
                key: id.clone(),
                label,
            });
        }
        id
    };
    for v in &model.versions {
        let version = add(
            &mut out,
            "version",
            &format!("{}/{}", model.name, v.version),
            format!("{} v{}", model.name, v.version),
        );
        if let Some(run) = v
            .run_id
            .as_deref()
            .and_then(|id| runs.iter().find(|r| r.id == id))
        {
            let run_id = add(
                &mut out,
                "run",
                &run.id,
                run.name.clone().unwrap_or_else(|| run.id.clone()),
            );
            out.edges.push(LineageEdge {
                from: run_id.clone(),
                to: version.clone(),
            });
            for key in &run.datasets {
                let label = datasets
                    .iter()
                    .find(|d| &d.key == key)
                    .map(|d| d.name.clone())
                    .unwrap_or_else(|| key.clone());
                let dataset = add(&mut out, "dataset", key, label);
                let edge = LineageEdge {
                    from: dataset,
                    to: run_id.clone(),
                };
                if !out.edges.contains(&edge) {
                    out.edges.push(edge);
                }
            }
        }
    }
    for d in deployments {
        if let Some((m, Some(version))) = match_deployment(d, models)
            && m.name == model.name
        {
            let target = format!("version:{}/{}", model.name, version);
            if !out.nodes.iter().any(|n| n.key == target) {
                continue;
            }
            let label = format!(
                "{}/{}{}",
                d.namespace,
                d.name,
                if d.running { "" } else { " (gone)" }
            );
            let dep = add(&mut out, "deployment", &d.key, label);
            out.edges.push(LineageEdge {
                from: target,
                to: dep,
            });
        }
    }
    out
}
