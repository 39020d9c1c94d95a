//! Recording inventory scans. Whatever read the sources — `steward inventory scan` on an
//! operator's machine, or the server's own schedule — hands [`record`] one [`SourceReport`] per
//! source. Each readable source updates models (versions, discovered fields, last seen), runs,
//! datasets and deployments; deployments its source no longer shows are marked gone. A failed
//! source changes nothing it found before. Then the whole inventory is reconciled against what
//! runs, and the scan's report — sources, counts, problems, findings — is kept with an audit event.

pub mod kubernetes;
pub mod sources;

use crate::AppState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use steward_core::TenantId;
use steward_core::change::Change;
use steward_core::inventory::{
    self, Dataset, Deployment, Finding, Model, Run, SourceReport, change_covers,
};
use steward_store::{ChangeFilter, RecordKind, RecordWrite, StoreError, TenantStore};

pub use sources::{SourceSpec, scan_source};

/// What one source of a scan did to the inventory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceOutcome {
    pub source: String,
    pub kind: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    pub problems: Vec<inventory::ScanProblem>,
}

/// Records one scan of one or more sources and reconciles; returns the kept report.
pub async fn record(
    store: &TenantStore<'_>,
    reports: Vec<SourceReport>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let id = format!("scan-{}", uuid::Uuid::now_v7());
    let mut outcomes = Vec::new();
    for report in &reports {
        let mut outcome = SourceOutcome {
            source: report.source.clone(),
            kind: report.kind.as_str().to_owned(),
            ok: report.error.is_none(),
            error: report.error.clone(),
            versions: report.versions.len(),
            runs: report.runs.len(),
            datasets: report.datasets.len(),
            deployments: report.deployments.len(),
            problems: report.problems.clone(),
            ..Default::default()
        };
        if report.error.is_none() {
            record_models(store, report, actor, now, &mut outcome).await?;
            record_others(store, report, actor, now, &mut outcome).await?;
        }
        outcomes.push(outcome);
    }
    let runtime_scanned = reports
        .iter()
        .any(|r| r.error.is_none() && r.kind.is_runtime());
    let findings = reconciliation(store, runtime_scanned, now).await?;
    let report = json!({
        "id": id,
        "started_at": reports.iter().map(|r| r.scanned_at).min().unwrap_or(now),
        "recorded_at": now,
        "actor": actor,
        "sources": outcomes,
        "findings": findings,
    });
    let summary = json!({
        "sources": outcomes.iter().map(|o| json!({"source": o.source, "ok": o.ok, "error": o.error,
            "created": o.created.len(), "updated": o.updated.len(), "gone": o.gone.len()})).collect::<Vec<_>>(),
        "findings": findings.len(),
    });
    store.insert_scan(&id, now, &report, summary, actor).await?;
    Ok(report)
}

async fn record_models(
    store: &TenantStore<'_>,
    report: &SourceReport,
    actor: &str,
    now: DateTime<Utc>,
    outcome: &mut SourceOutcome,
) -> Result<(), StoreError> {
    let mut grouped: BTreeMap<&str, Vec<&inventory::FoundVersion>> = BTreeMap::new();
    for found in &report.versions {
        grouped.entry(found.model.as_str()).or_default().push(found);
    }
    for (name, found) in grouped {
        if !inventory::valid_name(name) {
            outcome.problems.push(inventory::ScanProblem {
                at: name.to_owned(),
                problem: "not a valid model name; skipped".to_owned(),
            });
            continue;
        }
        for attempt in 0.. {
            let existing = store.get_model(name).await?;
            let is_new = existing.is_none();
            let mut model = existing.unwrap_or_else(|| Model::new(name, now));
            let before = model.status().to_owned();
            let mut changed = Vec::new();
            for f in &found {
                let mut version = f.version.clone();
                version.source = report.source.clone();
                if model.see_version(version, now) {
                    changed.push("versions".to_owned());
                }
                for (field, value) in &f.fields {
                    if model.discover(field, value.clone(), &report.source, now) {
                        changed.push(field.clone());
                    }
                }
            }
            changed.sort();
            changed.dedup();
            let action = if is_new {
                "model.created"
            } else if changed.is_empty() {
                // Only "last seen" moved: recorded, so the inventory knows it is still there.
                "model.seen"
            } else if model.status() != before {
                "model.status_changed"
            } else {
                "model.updated"
            };
            match store.save_model(&model, action, actor, &changed).await {
                Ok(()) => {
                    let list = match action {
                        "model.created" => &mut outcome.created,
                        "model.seen" => &mut outcome.unchanged,
                        _ => &mut outcome.updated,
                    };
                    list.push(name.to_owned());
                    break;
                }
                Err(StoreError::Conflict) if attempt < 8 => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Compares two records without their first/last-seen times.
fn same<T: Serialize>(a: &T, b: &T) -> bool {
    let strip = |v: &T| {
        let mut v = serde_json::to_value(v).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("first_seen");
            o.remove("last_seen");
        }
        v
    };
    strip(a) == strip(b)
}

/// The write for one found record: created, changed (first seen kept), or only seen again.
fn write_for<T: Serialize + Clone>(
    kind: RecordKind,
    key: &str,
    found: &T,
    existing: Option<&T>,
    keep_first_seen: impl Fn(&mut T, &T),
    source: &str,
    now: DateTime<Utc>,
) -> RecordWrite {
    let mut record = found.clone();
    let action = match existing {
        None => Some(match kind {
            RecordKind::Deployment => "deployment.discovered",
            RecordKind::Run => "run.discovered",
            RecordKind::Dataset => "dataset.discovered",
        }),
        Some(old) => {
            keep_first_seen(&mut record, old);
            (!same(&record, old)).then_some(match kind {
                RecordKind::Deployment => "deployment.updated",
                RecordKind::Run => "run.updated",
                RecordKind::Dataset => "dataset.updated",
            })
        }
    };
    RecordWrite {
        kind,
        key: key.to_owned(),
        found_by: source.to_owned(),
        last_seen: now,
        document: serde_json::to_value(&record).unwrap_or(Value::Null),
        action,
    }
}

async fn record_others(
    store: &TenantStore<'_>,
    report: &SourceReport,
    actor: &str,
    now: DateTime<Utc>,
    outcome: &mut SourceOutcome,
) -> Result<(), StoreError> {
    let source = report.source.as_str();
    let mut writes = Vec::new();
    if !report.datasets.is_empty() {
        let known: Vec<Dataset> = store.records(RecordKind::Dataset).await?;
        for d in &report.datasets {
            let mut d = d.clone();
            (d.found_by, d.first_seen, d.last_seen) = (source.to_owned(), now, now);
            let old = known.iter().find(|k| k.key == d.key);
            writes.push(write_for(
                RecordKind::Dataset,
                &d.key,
                &d,
                old,
                |r, o| r.first_seen = o.first_seen,
                source,
                now,
            ));
        }
    }
    if !report.runs.is_empty() {
        let known: Vec<Run> = store.records(RecordKind::Run).await?;
        for r in &report.runs {
            let mut r = r.clone();
            (r.found_by, r.first_seen, r.last_seen) = (source.to_owned(), now, now);
            let old = known.iter().find(|k| k.id == r.id);
            writes.push(write_for(
                RecordKind::Run,
                &r.id,
                &r,
                old,
                |r, o| r.first_seen = o.first_seen,
                source,
                now,
            ));
        }
    }
    if report.kind.is_runtime() || !report.deployments.is_empty() {
        let known: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
        for d in &report.deployments {
            let mut d = d.clone();
            d.key = Deployment::key_for(source, &d.kind, &d.namespace, &d.name);
            (d.found_by, d.first_seen, d.last_seen, d.running) =
                (source.to_owned(), now, now, true);
            let old = known.iter().find(|k| k.key == d.key);
            writes.push(write_for(
                RecordKind::Deployment,
                &d.key.clone(),
                &d,
                old,
                |r, o| r.first_seen = o.first_seen,
                source,
                now,
            ));
        }
        let seen: Vec<String> = writes.iter().map(|w| w.key.clone()).collect();
        for old in known
            .iter()
            .filter(|k| k.found_by == source && k.running && !seen.contains(&k.key))
        {
            let mut gone = old.clone();
            gone.running = false;
            outcome.gone.push(gone.key.clone());
            writes.push(RecordWrite {
                kind: RecordKind::Deployment,
                key: gone.key.clone(),
                found_by: source.to_owned(),
                last_seen: old.last_seen,
                document: serde_json::to_value(&gone).unwrap_or(Value::Null),
                action: Some("deployment.gone"),
            });
        }
    }
    store.write_records(&writes, actor).await
}

/// Every change that could have approved a model into service.
pub async fn approvable_changes(store: &TenantStore<'_>) -> Result<Vec<Change>, StoreError> {
    let mut changes = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_changes(&ChangeFilter {
                before_number: before,
                limit: 500,
                ..Default::default()
            })
            .await?;
        let done = page.len() < 500;
        before = page.last().map(|c| c.id.number());
        changes.extend(page);
        if done {
            break;
        }
    }
    Ok(changes)
}

/// The inventory against what runs, now.
pub async fn reconciliation(
    store: &TenantStore<'_>,
    runtime_scanned: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, StoreError> {
    let models = store.list_models().await?;
    let deployments: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
    let changes = approvable_changes(store).await?;
    let approved = |model: &str, version: Option<&str>| {
        changes.iter().any(|c| change_covers(c, model, version))
    };
    Ok(inventory::reconcile(
        &models,
        &deployments,
        runtime_scanned || !deployments.is_empty(),
        &approved,
        now.date_naive(),
    ))
}

/// Where the server's scheduled scans look, how often, and for which tenant.
#[derive(Debug, Clone)]
pub struct ScanSchedule {
    pub sources: Vec<SourceSpec>,
    pub every: Duration,
    pub tenant: TenantId,
}

/// Scans the configured sources on the schedule, recording as the system actor `steward`.
pub async fn scheduler(state: AppState, schedule: ScanSchedule) {
    if schedule.sources.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(schedule.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut reports = Vec::new();
        for spec in &schedule.sources {
            let name = spec.name();
            let mut progress = |line: String| tracing::debug!(source = %name, "{line}");
            let report = scan_source(spec, &mut progress).await;
            if let Some(e) = &report.error {
                tracing::warn!(source = %report.source, "scheduled inventory scan: {e}");
            }
            reports.push(report);
        }
        let store = state.store.tenant(&schedule.tenant);
        let _one_at_a_time = state.scans.lock().await;
        match record(&store, reports, "steward", state.clock.now()).await {
            Ok(report) => tracing::info!(
                scan = %report["id"].as_str().unwrap_or(""),
                findings = report["findings"].as_array().map(Vec::len).unwrap_or(0),
                "scheduled inventory scan recorded"
            ),
            Err(e) => tracing::error!("recording a scheduled inventory scan failed: {e}"),
        }
    }
}
