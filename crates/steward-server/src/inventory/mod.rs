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
    self, Dataset, Deployment, Finding, Model, Run, SourceKind, SourceReport,
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
        // A model file whose header is corrupt or truncated is no evidence of a model: its
        // problems are reported, and it creates or changes nothing.
        if report.kind == SourceKind::Files && !found.version.problems.is_empty() {
            outcome.problems.push(inventory::ScanProblem {
                at: found.version.artifact_uri.clone(),
                problem: "not recorded: its header cannot be read cleanly, so it is not taken \
                          as a model version; fix or remove the file, then scan again"
                    .to_owned(),
            });
            continue;
        }
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
            let event = (action != "model.seen").then_some(action);
            match store.save_model(&model, event, actor, &changed).await {
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

/// A record a scan finds besides models: keyed, and stamped with who found it and when.
trait Found: Serialize + serde::de::DeserializeOwned + Clone {
    const KIND: RecordKind;
    fn key(&self) -> String;
    /// Stamps a found record: found by `source`, seen first and last `now`.
    fn seen(&mut self, source: &str, now: DateTime<Utc>);
    fn first_seen(&self) -> DateTime<Utc>;
    fn set_first_seen(&mut self, at: DateTime<Utc>);
}

macro_rules! found {
    ($type:ty, $kind:expr, |$r:ident| $key:expr) => {
        impl Found for $type {
            const KIND: RecordKind = $kind;
            fn key(&self) -> String {
                let $r = self;
                $key
            }
            fn seen(&mut self, source: &str, now: DateTime<Utc>) {
                (self.found_by, self.first_seen, self.last_seen) = (source.to_owned(), now, now);
            }
            fn first_seen(&self) -> DateTime<Utc> {
                self.first_seen
            }
            fn set_first_seen(&mut self, at: DateTime<Utc>) {
                self.first_seen = at;
            }
        }
    };
}

found!(Dataset, RecordKind::Dataset, |d| d.key.clone());
found!(Run, RecordKind::Run, |r| r.id.clone());
found!(Deployment, RecordKind::Deployment, |d| d.key.clone());

/// The writes for the records `source` found: new ones, changed ones (first seen kept) with
/// their audit action, and ones only seen again. Returns the records as they were before too.
async fn found_writes<T: Found>(
    store: &TenantStore<'_>,
    found: &[T],
    source: &str,
    now: DateTime<Utc>,
    writes: &mut Vec<RecordWrite>,
) -> Result<Vec<T>, StoreError> {
    let known: Vec<T> = store.records(T::KIND).await?;
    for f in found {
        let mut record = f.clone();
        record.seen(source, now);
        let key = record.key();
        let old = known.iter().find(|k| k.key() == key);
        let action = match old {
            None => Some("discovered"),
            Some(old) => {
                record.set_first_seen(old.first_seen());
                (!same(&record, old)).then_some("updated")
            }
        };
        writes.push(RecordWrite {
            kind: T::KIND,
            key,
            found_by: source.to_owned(),
            last_seen: now,
            document: serde_json::to_value(&record).unwrap_or(Value::Null),
            action: action.map(|a| format!("{}.{a}", T::KIND.as_str())),
        });
    }
    Ok(known)
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
    found_writes(store, &report.datasets, source, now, &mut writes).await?;
    found_writes(store, &report.runs, source, now, &mut writes).await?;
    if report.kind.is_runtime() || !report.deployments.is_empty() {
        let deployments: Vec<Deployment> = report
            .deployments
            .iter()
            .map(|d| Deployment {
                key: Deployment::key_for(source, &d.kind, &d.namespace, &d.name),
                running: true,
                ..d.clone()
            })
            .collect();
        let known = found_writes(store, &deployments, source, now, &mut writes).await?;
        for old in known.iter().filter(|k| {
            k.found_by == source && k.running && !deployments.iter().any(|d| d.key == k.key)
        }) {
            let gone = Deployment {
                running: false,
                ..old.clone()
            };
            outcome.gone.push(gone.key.clone());
            writes.push(RecordWrite {
                kind: RecordKind::Deployment,
                key: gone.key.clone(),
                found_by: source.to_owned(),
                last_seen: old.last_seen,
                document: serde_json::to_value(&gone).unwrap_or(Value::Null),
                action: Some("deployment.gone".to_owned()),
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
    Ok(inventory::reconcile(
        &models,
        &deployments,
        runtime_scanned || !deployments.is_empty(),
        &changes,
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
        let store = crate::auth::System::of(&state).tenant(&schedule.tenant);
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
