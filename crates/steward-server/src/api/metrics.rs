//! Metric samples in and out: `POST /metrics` from monitoring and pipelines, `GET /metrics` for
//! people and for post-change verification.

use super::body::JsonBody;
use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::auth::{Caller, PushMetrics, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::metrics::{self, Sample};
use steward_core::submission::FieldError;
use steward_store::{SampleQuery, SamplesPushed};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Parsed by `metrics::parse_samples`, which names every bad field; this is its schema.
pub struct SampleInput {
    /// A Prometheus-style metric name: `error_rate`, `latency_seconds`.
    pub name: String,
    /// Series labels, e.g. `{"model": "fraud-scoring", "deployment": "prod-eu"}`.
    pub labels: Option<BTreeMap<String, String>>,
    pub value: f64,
    /// When it was measured (default: when it arrives).
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct SamplesInput {
    /// Up to 10,000 samples; a single sample object is accepted too.
    pub samples: Vec<SampleInput>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Samples in the batch.
    pub accepted: usize,
    /// Of those, how many were not stored before (the rest were identical resends).
    pub new: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SampleView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub time: DateTime<Utc>,
}

impl From<Sample> for SampleView {
    fn from(s: Sample) -> Self {
        SampleView {
            name: s.name,
            labels: s.labels,
            value: s.value,
            time: s.time,
        }
    }
}

/// Push metric samples (monitoring service accounts only: the samples decide whether changes are
/// rolled back, so no one judged by them may write them). All are stored, or none: 422 naming
/// every bad field; 409 listing every sample whose series and time is stored with a different
/// value (evidence is never overwritten). An identical resend is accepted and changes nothing.
/// Each accepted batch is an audit event (`metrics.pushed`).
#[utoipa::path(post, path = "/api/v1/metrics", tag = "metrics", request_body = SamplesInput,
    responses((status = 200, body = Accepted), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(document): JsonBody<Value>,
) -> Result<Json<Accepted>, ApiError> {
    let permit = caller.may::<PushMetrics>(&state)?;
    let now = state.clock.now();
    let samples = metrics::parse_samples(&document, now).map_err(ApiError::Invalid)?;
    let store = permit.store();
    let new = match store
        .insert_samples(permit.who().as_str(), &samples, now)
        .await?
    {
        SamplesPushed::Stored { new } => new,
        SamplesPushed::Refused(clashes) => {
            return Err(ApiError::Conflict {
                message: format!(
                    "{} sample(s) contradict stored values for the same series and time; samples are evidence and are never overwritten: send only new samples (an identical resend is fine)",
                    clashes.len()
                ),
                details: serde_json::json!({ "reason": "sample_conflict", "samples": clashes }),
            });
        }
    };
    // The samples are stored; a detector failing must not make the sender resend them.
    if let Err(e) = super::detectors::detect(&state, &store, &samples).await {
        tracing::warn!(error = %e, "anomaly detection failed for a batch of samples");
    }
    Ok(Json(Accepted {
        accepted: samples.len(),
        new,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SamplesQuery {
    pub name: String,
    /// Labels the series must carry: `model=fraud-scoring,env=prod`.
    pub labels: Option<String>,
    /// Default: an hour ago.
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    pub to: Option<DateTime<Utc>>,
}

/// Read samples of one metric, filtered by labels and time, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(SamplesQuery, PageQuery),
    responses((status = 200, body = Page<SampleView>), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<SamplesQuery>,
) -> Result<Json<Page<SampleView>>, ApiError> {
    let after: Option<(DateTime<Utc>, String)> = page.after("metrics")?;
    let now = state.clock.now();
    let mut labels = BTreeMap::new();
    for pair in query
        .labels
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "labels",
                format!("'{pair}' is not key=value"),
            )]));
        };
        labels.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let samples = caller
        .may::<ReadRecords>(&state)?
        .store()
        .samples_after(
            &SampleQuery {
                name: query.name,
                labels,
                from: query.from.unwrap_or(now - Duration::hours(1)),
                to: query.to.unwrap_or(now + Duration::seconds(1)),
                limit: page.fetch() as usize,
            },
            after.as_ref().map(|(at, labels)| (*at, labels.as_str())),
        )
        .await?;
    let page = page.page("metrics", samples, |s| (s.time, s.labels_key()));
    Ok(Json(page.map(SampleView::from)))
}
