//! Reading the inventory's sources into [`SourceReport`]s: a directory tree of model files, an
//! MLflow registry, a Kubernetes cluster. Used by `steward inventory scan` on the operator's
//! machine and by the server's scheduled scans alike. A source that cannot be read becomes a
//! failed report with a message saying what to fix; it never stops the other sources.

use chrono::Utc;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use steward_core::inventory::{
    self, Dataset, FoundVersion, ModelVersion, Run, ScanProblem, SourceKind, SourceReport,
};
use steward_discovery::mlflow::{self, MlflowScan};

/// A source to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A directory tree; `headers_only` skips content digests.
    Files { dir: PathBuf, headers_only: bool },
    /// An MLflow tracking server (`http://host:5000`), optionally only the models whose name
    /// starts with `prefix`.
    Mlflow { url: String, prefix: Option<String> },
    /// A Kubernetes cluster: a kubeconfig context (the current one when `None`).
    Kubernetes {
        context: Option<String>,
        kubeconfig: Option<PathBuf>,
    },
}

impl SourceSpec {
    /// The source's name in the inventory: `files:<host>:<dir>`, `mlflow:<url>`,
    /// `kubernetes:<context>`.
    pub fn name(&self) -> String {
        match self {
            SourceSpec::Files { dir, .. } => format!("files:{}:{}", host(), dir.display()),
            SourceSpec::Mlflow { url, .. } => format!("mlflow:{}", url.trim_end_matches('/')),
            SourceSpec::Kubernetes { context, .. } => {
                format!(
                    "kubernetes:{}",
                    context.as_deref().unwrap_or("current-context")
                )
            }
        }
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            SourceSpec::Files { .. } => SourceKind::Files,
            SourceSpec::Mlflow { .. } => SourceKind::Mlflow,
            SourceSpec::Kubernetes { .. } => SourceKind::Kubernetes,
        }
    }
}

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Scans one source, telling `progress` where it is (one short line at a time).
pub async fn scan_source(
    spec: &SourceSpec,
    progress: &mut (dyn FnMut(String) + Send),
) -> SourceReport {
    let started = Utc::now();
    match spec {
        SourceSpec::Files { dir, headers_only } => {
            let root = match dir.canonicalize() {
                Ok(root) => root,
                Err(e) => {
                    return SourceReport::failed(
                        spec.name(),
                        SourceKind::Files,
                        started,
                        format!("cannot read {}: {e}", dir.display()),
                    );
                }
            };
            let source = SourceSpec::Files {
                dir: root.clone(),
                headers_only: *headers_only,
            }
            .name();
            let options = steward_discovery::ScanOptions {
                digest: if *headers_only {
                    steward_discovery::DigestMode::HeaderOnly
                } else {
                    steward_discovery::DigestMode::Full
                },
                ..Default::default()
            };
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let scan_root = root.clone();
            let task = tokio::task::spawn_blocking(move || {
                steward_discovery::scan_dir(&scan_root, &options, &mut |p| {
                    let _ = tx.send(format!(
                        "{} of {} files, {} model files",
                        p.files_seen, p.files_total, p.artifacts
                    ));
                })
            });
            while let Some(line) = rx.recv().await {
                progress(line);
            }
            match task.await {
                Ok(Ok(report)) => files_report(&source, &root, report),
                Ok(Err(e)) => {
                    SourceReport::failed(source, SourceKind::Files, started, e.to_string())
                }
                Err(e) => SourceReport::failed(
                    source,
                    SourceKind::Files,
                    started,
                    format!("the scan stopped: {e}"),
                ),
            }
        }
        SourceSpec::Mlflow { url, prefix } => {
            let mut report = |p: mlflow::MlflowProgress| {
                progress(format!(
                    "{} models, {} versions, {} runs ({} requests)",
                    p.models, p.versions, p.runs, p.requests
                ))
            };
            let options = mlflow::MlflowOptions {
                name_prefix: prefix.clone(),
                ..Default::default()
            };
            match mlflow::scan(url, &options, &mut report).await {
                Ok(scan) => mlflow_report(&scan),
                Err(e) => {
                    SourceReport::failed(spec.name(), SourceKind::Mlflow, started, e.to_string())
                }
            }
        }
        SourceSpec::Kubernetes {
            context,
            kubeconfig,
        } => super::kubernetes::scan(spec.name(), context, kubeconfig, progress).await,
    }
}

/// A directory scan as the inventory records it: each artifact a version of the model it names
/// (its metadata's name, else its folder's, else its file's), keyed by its digest.
pub fn files_report(
    source: &str,
    root: &Path,
    scan: steward_discovery::ScanReport,
) -> SourceReport {
    let mut report = SourceReport::new(source, SourceKind::Files, scan.started_at);
    for (path, error) in scan.errors {
        report.problems.push(ScanProblem {
            at: path.display().to_string(),
            problem: error,
        });
    }
    for a in scan.artifacts {
        let named = a
            .metadata
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let folder = a
            .path
            .parent()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned());
        let stem = a
            .path
            .file_stem()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let model = inventory::name_from(&named.or(folder).unwrap_or(stem));
        for p in &a.problems {
            report.problems.push(ScanProblem {
                at: a.path.display().to_string(),
                problem: p.clone(),
            });
        }
        let fields = ["architecture", "framework", "license", "base_model"]
            .into_iter()
            .filter_map(|f| Some((f.to_owned(), a.metadata.get(f)?.clone())))
            .collect();
        report.versions.push(FoundVersion {
            model,
            fields,
            version: ModelVersion {
                version: a
                    .digest
                    .as_deref()
                    .map(|d| d.trim_start_matches("sha256:").chars().take(12).collect())
                    .unwrap_or_else(|| a.path.display().to_string()),
                artifact_uri: format!("file://{}", root.join(&a.path).display()),
                digest: a.digest.clone(),
                framework: a
                    .metadata
                    .get("framework")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                trained_at: None,
                metrics: BTreeMap::new(),
                source: source.to_owned(),
                first_seen: scan.started_at,
                last_seen: scan.started_at,
                metadata: json!({"format": a.format, "size": a.size, "path": a.path, "metadata": a.metadata}),
                problems: a.problems,
                run_id: None,
                aliases: Vec::new(),
                stage: None,
            },
        });
    }
    report
}

/// A field an MLflow tag states: `risk_tier` or `steward.risk_tier`, lists comma-separated.
fn field_from_tag(key: &str, value: &str) -> Option<(String, Value)> {
    let field = key.strip_prefix("steward.").unwrap_or(key);
    let kind = inventory::kind_of(field)?;
    let value = match kind {
        inventory::Kind::List => Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| json!(s))
                .collect(),
        ),
        inventory::Kind::Days => json!(value.trim().parse::<u64>().ok()?),
        _ => json!(value),
    };
    let mut one = serde_json::Map::new();
    one.insert(field.to_owned(), value);
    inventory::check_fields(&one).ok()?.into_iter().next()
}

/// The framework MLflow logged the model with: the first flavour other than `python_function`
/// in the run's `mlflow.log-model.history` tag.
fn framework_of(run: &mlflow::RunInfo) -> Option<String> {
    let history: Value = serde_json::from_str(run.tags.get("mlflow.log-model.history")?).ok()?;
    history
        .as_array()?
        .iter()
        .filter_map(|entry| entry.get("flavors")?.as_object())
        .flat_map(|flavors| flavors.keys())
        .find(|k| k.as_str() != "python_function")
        .cloned()
}

/// Where a dataset lives, from MLflow's JSON source text (`{"uri": "s3://…"}`).
fn dataset_uri(source: Option<&str>) -> Option<String> {
    let text = source?;
    let parsed: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    ["uri", "url", "path", "table_name", "location"]
        .iter()
        .find_map(|k| parsed.get(*k).and_then(Value::as_str).map(str::to_owned))
        .or_else(|| (!parsed.is_object()).then(|| text.to_owned()))
}

/// An MLflow registry as the inventory records it: each registered model's versions, its tags
/// that name inventory fields, the runs behind the versions and the datasets those runs read.
pub fn mlflow_report(scan: &MlflowScan) -> SourceReport {
    let source = format!("mlflow:{}", scan.tracking_uri);
    let mut report = SourceReport::new(&source, SourceKind::Mlflow, scan.scanned_at);
    let now = scan.scanned_at;
    for m in &scan.models {
        let name = inventory::name_from(&m.name);
        let mut fields: BTreeMap<String, Value> = m
            .tags
            .iter()
            .filter_map(|(k, v)| field_from_tag(k, v))
            .collect();
        if let Some(description) = &m.description {
            fields
                .entry("model_card".to_owned())
                .or_insert_with(|| json!(description));
        }
        for v in &m.versions {
            let run = v.run.as_ref();
            let mut problems = Vec::new();
            if v.status != "READY" {
                problems.push(format!("MLflow registration status {}", v.status));
            }
            if v.run_id.is_some() && run.is_none() {
                problems.push(format!(
                    "run {} is not on the tracking server",
                    v.run_id.as_deref().unwrap_or("")
                ));
            }
            for p in &problems {
                report.problems.push(ScanProblem {
                    at: format!("{} v{}", m.name, v.version),
                    problem: p.clone(),
                });
            }
            report.versions.push(FoundVersion {
                model: name.clone(),
                fields: fields.clone(),
                version: ModelVersion {
                    version: v.version.clone(),
                    artifact_uri: v.source.clone(),
                    digest: ["steward.digest", "digest", "artifact_digest"]
                        .iter()
                        .find_map(|k| v.tags.get(*k).cloned()),
                    framework: run.and_then(framework_of),
                    trained_at: run.and_then(|r| r.start_time),
                    metrics: run.map(|r| r.metrics.clone()).unwrap_or_default(),
                    source: source.clone(),
                    first_seen: now,
                    last_seen: now,
                    metadata: json!({
                        "registered_name": m.name,
                        "status": v.status,
                        "description": v.description,
                        "tags": v.tags,
                        "params": run.map(|r| &r.params),
                        "created_at": v.created_at,
                    }),
                    problems,
                    run_id: v.run_id.clone(),
                    aliases: v.aliases.clone(),
                    stage: v.stage.clone(),
                },
            });
            let Some(run) = run else { continue };
            if report.runs.iter().any(|r| r.id == run.run_id) {
                continue;
            }
            let mut keys = Vec::new();
            for d in &run.datasets {
                let key = Dataset::key_for(&d.name, d.digest.as_deref());
                keys.push(key.clone());
                if !report.datasets.iter().any(|x| x.key == key) {
                    report.datasets.push(Dataset {
                        key,
                        name: d.name.clone(),
                        digest: d.digest.clone(),
                        uri: dataset_uri(d.source.as_deref()),
                        source_type: d.source_type.clone(),
                        found_by: source.clone(),
                        first_seen: now,
                        last_seen: now,
                    });
                }
            }
            report.runs.push(Run {
                id: run.run_id.clone(),
                found_by: source.clone(),
                name: run.tags.get("mlflow.runName").cloned(),
                experiment: Some(run.experiment_id.clone()),
                user: run.tags.get("mlflow.user").cloned(),
                started_at: run.start_time,
                params: run.params.clone(),
                metrics: run.metrics.clone(),
                datasets: keys,
                first_seen: now,
                last_seen: now,
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_tags_that_name_fields_become_discovered_values() {
        assert_eq!(
            field_from_tag("steward.risk_tier", "high"),
            Some(("risk_tier".into(), json!("high")))
        );
        assert_eq!(
            field_from_tag("regulatory_tags", "sox, gdpr"),
            Some(("regulatory_tags".into(), json!(["sox", "gdpr"])))
        );
        assert_eq!(field_from_tag("risk_tier", "extreme"), None, "checked");
        assert_eq!(field_from_tag("team", "fraud"), None, "not a field");
        assert_eq!(
            dataset_uri(Some(r#"{"uri": "s3://data/train.parquet"}"#)).as_deref(),
            Some("s3://data/train.parquet")
        );
    }
}
