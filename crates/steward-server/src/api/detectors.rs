//! Detectors: the tenant's detector rules (which metric series to watch, with which detector,
//! raising what), pre-approved containment playbooks, and [`detect`], which scores pushed
//! samples against the rules and raises or resolves `detector` signals.
//!
//! Detector state lives in memory per (tenant, rule, series) in [`DetectorStates`]; a series
//! seen for the first time (a new series, or any series after a restart) warms up on the day
//! of stored history before its first new sample.

use super::body::JsonBody;
use super::incident_views::{DetectorRuleView, PlaybookDocumentView, PlaybookView};
use super::named::check_name;
use super::page::{Page, PageQuery, Paged};
use super::signals::TARGET_LABELS;
use crate::AppState;
use crate::auth::{Caller, KeepDetectors, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use crate::incidents::{self, find_target};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use steward_core::detect::{Detector, DetectorConfig};
use steward_core::incident::{Severity, Signal, parse_actions};
use steward_core::metrics::Sample;
use steward_store::{NamedKind, SampleQuery, TenantStore};
use utoipa::ToSchema;

/// A detector rule: which metric series it watches and what it raises.
#[derive(Debug, Clone, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectorRule {
    pub metric: String,
    /// Labels a series must carry to be watched (others may be present).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `{"detector": "robust_z" | "page_hinkley", …params}`.
    #[schema(value_type = Object)]
    pub config: Value,
    /// The affected target; default: the series' `target`, `deployment` or `model` label.
    pub target: Option<String>,
    /// sev1 … sev4 (default sev3).
    pub severity: Option<String>,
}

/// Create or replace a detector rule (managers, compliance officers, admins). Every pushed sample
/// of a watched series is scored; an anomaly raises a `detector` signal, which opens or joins an
/// incident; its end resolves the signal.
#[utoipa::path(put, path = "/api/v1/detectors/{name}", tag = "incidents", request_body = DetectorRule,
    params(("name" = String, Path)),
    responses((status = 200, body = DetectorRuleView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_detector(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(rule): JsonBody<DetectorRule>,
) -> Result<Json<DetectorRuleView>, ApiError> {
    let keeper = caller.may::<KeepDetectors>(&state)?;
    check_name(&name)?;
    let config: DetectorConfig = serde_json::from_value(rule.config.clone())
        .map_err(|e| ApiError::invalid_field("config", e.to_string()))?;
    config
        .validate()
        .map_err(|e| ApiError::invalid_field("config", e))?;
    if let Some(s) = &rule.severity
        && Severity::parse(s).is_none()
    {
        return Err(ApiError::invalid_field(
            "severity",
            "must be sev1, sev2, sev3 or sev4",
        ));
    }
    let document = serde_json::to_value(&rule).unwrap_or_default();
    keeper
        .store()
        .put_named(
            NamedKind::DetectorRule,
            &name,
            &document,
            keeper.principal().name.as_str(),
            state.clock.now(),
        )
        .await?;
    state
        .detectors
        .forget_rule(caller.principal().tenant.as_str(), &name);
    Ok(Json(DetectorRuleView {
        name,
        rule: document,
    }))
}
/// The tenant's detector rules by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/detectors", tag = "incidents", params(PageQuery),
    responses((status = 200, body = Page<DetectorRuleView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_detectors(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<DetectorRuleView>>, ApiError> {
    let after: Option<String> = page.after("detectors")?;
    let rules = caller
        .may::<ReadRecords>(&state)?
        .store()
        .named_after(NamedKind::DetectorRule, after.as_deref(), page.fetch())
        .await?;
    let page = page.page("detectors", rules, |(name, _)| name.clone());
    Ok(Json(
        page.map(|(name, rule)| DetectorRuleView { name, rule }),
    ))
}

#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookInput {
    /// The containment actions it runs (see `POST /incidents/{id}/containment`).
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    pub description: Option<String>,
}

/// Create or replace a pre-approved containment playbook (managers, compliance officers,
/// admins): it may run at once for SEV1 incidents, recorded as such.
#[utoipa::path(put, path = "/api/v1/playbooks/{name}", tag = "incidents", request_body = PlaybookInput,
    params(("name" = String, Path)),
    responses((status = 200, body = PlaybookView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_playbook(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PlaybookInput>,
) -> Result<Json<PlaybookView>, ApiError> {
    let keeper = caller.may::<KeepDetectors>(&state)?;
    check_name(&name)?;
    parse_actions(&body.actions).map_err(ApiError::Invalid)?;
    let document = serde_json::to_value(&body).unwrap_or_default();
    keeper
        .store()
        .put_named(
            NamedKind::Playbook,
            &name,
            &document,
            keeper.principal().name.as_str(),
            state.clock.now(),
        )
        .await?;
    Ok(Json(PlaybookView {
        name,
        playbook: PlaybookDocumentView {
            actions: body.actions,
            description: body.description,
        },
    }))
}

/// Detector state per (tenant, rule, series), kept in memory; a new series warms up from its
/// stored history.
#[derive(Debug, Clone, Default)]
pub struct DetectorStates(Arc<Mutex<HashMap<SeriesKey, Series>>>);

/// (tenant, rule, series labels).
type SeriesKey = (String, String, String);

#[derive(Debug, Clone)]
struct Series {
    detector: Detector,
    /// The open episode's signal key, while the series is anomalous.
    episode: Option<String>,
    last: DateTime<Utc>,
}

impl DetectorStates {
    fn forget_rule(&self, tenant: &str, rule: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|(t, r, _), _| !(t == tenant && r == rule));
        }
    }
}

/// What a batch of samples did to the detectors: signals to raise and to resolve.
enum Outcome {
    Raise(Signal),
    Resolve(String),
}

/// Feeds pushed samples to the tenant's detector rules; anomalies raise signals.
pub async fn detect(
    state: &AppState,
    store: &TenantStore<'_>,
    samples: &[Sample],
) -> Result<(), ApiError> {
    let rules = store.named(NamedKind::DetectorRule).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let tenant = store.tenant_id().to_owned();
    let mut outcomes = Vec::new();
    for (name, doc) in rules {
        let Ok(rule) = serde_json::from_value::<DetectorRule>(doc) else {
            continue;
        };
        let Ok(config) = serde_json::from_value::<DetectorConfig>(rule.config.clone()) else {
            continue;
        };
        let mut series: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
        for s in samples {
            if s.name == rule.metric && rule.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
            {
                series.entry(s.labels_key()).or_default().push(s);
            }
        }
        for (labels_key, mut points) in series {
            points.sort_by_key(|s| s.time);
            let key = (tenant.clone(), name.clone(), labels_key.clone());
            let known = state
                .detectors
                .0
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            let mut current = match known {
                Some(s) => s,
                None => {
                    // Warm up on the stored history before this batch.
                    let first = points[0].time;
                    let history = store
                        .samples(&SampleQuery {
                            name: rule.metric.clone(),
                            labels: points[0].labels.clone(),
                            from: first - Duration::days(1),
                            to: first,
                            limit: 5000,
                        })
                        .await?;
                    let mut detector = config.build();
                    for h in history.iter().filter(|h| h.labels_key() == labels_key) {
                        detector.update(h.time.timestamp_millis() as f64 / 1000.0, h.value);
                    }
                    Series {
                        detector,
                        episode: None,
                        last: first - Duration::milliseconds(1),
                    }
                }
            };
            for p in points {
                if p.time <= current.last {
                    continue; // a resend or an older sample: already scored
                }
                current.last = p.time;
                let d = current
                    .detector
                    .update(p.time.timestamp_millis() as f64 / 1000.0, p.value);
                if d.onset && current.episode.is_none() {
                    let signal_key = format!("{name}/{labels_key}/{}", p.time.timestamp_millis());
                    current.episode = Some(signal_key.clone());
                    let mut candidates: Vec<&str> =
                        rule.target.iter().map(String::as_str).collect();
                    candidates.extend(
                        TARGET_LABELS
                            .iter()
                            .filter_map(|l| p.labels.get(*l).map(String::as_str)),
                    );
                    let target = find_target(store, &candidates).await?;
                    outcomes.push(Outcome::Raise(Signal {
                        source: "detector".into(),
                        key: signal_key,
                        summary: format!(
                            "{} anomalous on {} (rule {name}, score {:.2})",
                            rule.metric, labels_key, d.score
                        ),
                        severity: rule
                            .severity
                            .as_deref()
                            .and_then(Severity::parse)
                            .unwrap_or(Severity::Sev3),
                        target,
                        labels: p.labels.clone(),
                        started_at: p.time,
                        received_at: state.clock.now(),
                        resolved_at: None,
                    }));
                } else if !d.anomaly
                    && let Some(open) = current.episode.take()
                {
                    outcomes.push(Outcome::Resolve(open));
                }
            }
            if let Ok(mut map) = state.detectors.0.lock() {
                map.insert(key, current);
            }
        }
    }
    for outcome in outcomes {
        match outcome {
            Outcome::Raise(signal) => {
                incidents::raise(state, store, signal).await?;
            }
            Outcome::Resolve(key) => {
                incidents::resolve_signal(state, store, "detector", &key).await?;
            }
        }
    }
    Ok(())
}
