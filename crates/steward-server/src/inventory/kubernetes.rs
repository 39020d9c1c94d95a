//! A Kubernetes cluster as an inventory source: the workloads `steward-discovery` finds (KServe
//! InferenceServices, Seldon deployments, model-server pods) become deployments.

use chrono::Utc;
use std::path::PathBuf;
use steward_core::inventory::{Deployment, ScanProblem, SourceKind, SourceReport};
use steward_discovery::kubernetes::{self, KubernetesOptions, KubernetesScan, WorkloadKind};

/// Scans the cluster of `context` (the kubeconfig's current one when `None`).
pub async fn scan(
    source: String,
    context: &Option<String>,
    kubeconfig: &Option<PathBuf>,
    progress: &mut (dyn FnMut(String) + Send),
) -> SourceReport {
    let started = Utc::now();
    let options = KubernetesOptions {
        context: context.clone(),
        kubeconfig: kubeconfig.clone(),
        ..Default::default()
    };
    let mut report = |p: kubernetes::KubernetesProgress| {
        progress(format!(
            "{}: {} found ({} requests)",
            p.resource, p.items, p.requests
        ))
    };
    match kubernetes::scan(&options, &mut report).await {
        // Without a context named, the source is named after the one the kubeconfig chose.
        Ok(scan) if context.is_none() => {
            kubernetes_report(&format!("kubernetes:{}", scan.cluster), &scan)
        }
        Ok(scan) => kubernetes_report(&source, &scan),
        Err(e) => SourceReport::failed(source, SourceKind::Kubernetes, started, e.to_string()),
    }
}

/// A cluster scan as the inventory records it.
pub fn kubernetes_report(source: &str, scan: &KubernetesScan) -> SourceReport {
    let mut report = SourceReport::new(source, SourceKind::Kubernetes, scan.scanned_at);
    for skipped in &scan.skipped {
        report.problems.push(ScanProblem {
            at: scan.cluster.clone(),
            problem: skipped.clone(),
        });
    }
    for w in &scan.workloads {
        let kind = match w.kind {
            WorkloadKind::Kserve => "kserve",
            WorkloadKind::Seldon => "seldon",
            WorkloadKind::Pod => "pod",
        };
        report.deployments.push(Deployment {
            key: Deployment::key_for(source, kind, &w.namespace, &w.name),
            found_by: source.to_owned(),
            kind: kind.to_owned(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            model: w.model_name.clone(),
            version: w.model_version.clone(),
            format: w.model_format.clone(),
            runtime: w.runtime.clone(),
            storage_uri: w.storage_uri.clone(),
            digest: w.digest.clone(),
            url: w.url.clone(),
            ready: w.ready,
            labels: w.labels.clone(),
            images: w.images.clone(),
            running: true,
            first_seen: scan.scanned_at,
            last_seen: scan.scanned_at,
        });
    }
    report
}
