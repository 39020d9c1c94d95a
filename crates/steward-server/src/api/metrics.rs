//! Metric samples in and out: `POST /metrics` from monitoring and pipelines, `GET /metrics` for
//! people and for post-change verification.

use super::body::{JsonBody, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::metrics::{self, Sample};
use steward_core::submission::FieldError;
use steward_store::SampleQuery;
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
    pub accepted: usize,
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

/// Push metric samples. All are stored, or none (422 naming every bad field). A sample resent
/// for the same series and time replaces the earlier value.
#[utoipa::path(post, path = "/api/v1/metrics", tag = "metrics", request_body = SamplesInput,
    responses((status = 200, body = Accepted), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(document): JsonBody<Value>,
) -> Result<Json<Accepted>, ApiError> {
    caller.as_actor()?;
    let now = state.clock.now();
    let samples = metrics::parse_samples(&document, now).map_err(ApiError::Invalid)?;
    let store = caller.store(&state.store);
    store.insert_samples(&samples, now).await?;
    // The samples are stored; a detector failing must not make the sender resend them.
    if let Err(e) = super::incidents::detect(&state, &store, &samples).await {
        tracing::warn!(error = %e, "anomaly detection failed for a batch of samples");
    }
    Ok(Json(Accepted {
        accepted: samples.len(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SamplesQuery {
    pub name: String,
    /// Labels the series must carry: `model=fraud-scoring,env=prod`.
    pub labels: Option<String>,
    /// Default: an hour ago.
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    pub to: Option<DateTime<Utc>>,
    /// At most this many, oldest first (default 1,000, max 10,000).
    pub limit: Option<usize>,
}

/// Read samples of one metric, filtered by labels and time.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(SamplesQuery),
    responses((status = 200, body = Vec<SampleView>), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<SamplesQuery>,
) -> Result<Json<Vec<SampleView>>, ApiError> {
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
        .store(&state.store)
        .samples(&SampleQuery {
            name: query.name,
            labels,
            from: query.from.unwrap_or(now - Duration::hours(1)),
            to: query.to.unwrap_or(now + Duration::seconds(1)),
            limit: query.limit.unwrap_or(1000).clamp(1, 10_000),
        })
        .await?;
    Ok(Json(samples.into_iter().map(SampleView::from).collect()))
}
