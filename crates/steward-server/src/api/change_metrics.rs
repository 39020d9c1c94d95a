//! `GET /api/v1/change-metrics`: what a tenant's changes add up to over a period — requests per
//! week by type, the states they are in, approval latency percentiles, the change failure rate
//! and the emergency share (per week and in all), and the approvals overdue now. The figures
//! are `steward_core::measures::changes`, read through `crate::measures` as the portal's
//! dashboard reads them; the wire types below keep the API's keys apart from the domain's.

use super::body::QueryParams;
use crate::AppState;
use crate::auth::{Caller, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use steward_core::measures::Period;
use steward_core::measures::changes::{
    ApprovalLatency, ChangeMetrics, OverdueApproval, Tally, TypeCounts,
};
use utoipa::{IntoParams, ToSchema};

/// The period `GET /change-metrics` covers when it is not given.
pub const DEFAULT_DAYS: i64 = 90;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangeMetricsQuery {
    /// The period's start (default: 90 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// The period's end, exclusive (default: now).
    pub to: Option<DateTime<Utc>>,
}

/// How many changes of each type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TypeCountsView {
    pub standard: usize,
    pub normal: usize,
    pub emergency: usize,
    pub total: usize,
}

impl From<&TypeCounts> for TypeCountsView {
    fn from(c: &TypeCounts) -> Self {
        TypeCountsView {
            standard: c.standard,
            normal: c.normal,
            emergency: c.emergency,
            total: c.total(),
        }
    }
}

/// Requests, implementations and failures in one stretch of time.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeTallyView {
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    /// Changes created (requested) in it, by type.
    pub created: TypeCountsView,
    /// Changes whose implementation actually began in it.
    pub implemented: usize,
    /// Of those, the ones that failed, were rolled back, or are a strong suspect of an incident.
    pub failed: usize,
    /// 0–1: `failed / implemented`; null when nothing was implemented.
    pub failure_rate: Option<f64>,
    /// 0–1: emergencies among the changes created; null when none was created.
    pub emergency_share: Option<f64>,
}

impl From<&Tally> for ChangeTallyView {
    fn from(t: &Tally) -> Self {
        ChangeTallyView {
            from: t.period.from,
            to: t.period.to,
            created: TypeCountsView::from(&t.created),
            implemented: t.implemented,
            failed: t.failed,
            failure_rate: t.failure_rate,
            emergency_share: t.emergency_share,
        }
    }
}

/// How many changes created in the period are in one state now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StateCountView {
    pub state: String,
    pub changes: usize,
}

/// How long people took to approve one type of change: from submission to the decision that
/// completed its approvals, nearest-rank percentiles in minutes (null when none).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalLatencyView {
    /// `all`, `standard`, `normal` or `emergency`.
    #[serde(rename = "type")]
    pub change_type: String,
    /// Changes whose approvals completed in the period.
    pub approved: usize,
    pub p50_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
    pub p99_minutes: Option<f64>,
}

impl From<&ApprovalLatency> for ApprovalLatencyView {
    fn from(l: &ApprovalLatency) -> Self {
        ApprovalLatencyView {
            change_type: l.change_type.map_or("all", |t| t.as_str()).to_owned(),
            approved: l.latency.count,
            p50_minutes: l.latency.p50_minutes,
            p90_minutes: l.latency.p90_minutes,
            p99_minutes: l.latency.p99_minutes,
        }
    }
}

/// An approval past its SLA deadline.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverdueApprovalView {
    /// `CHG-<n>`
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub change_type: String,
    pub due: DateTime<Utc>,
    pub overdue_minutes: i64,
}

impl From<&OverdueApproval> for OverdueApprovalView {
    fn from(o: &OverdueApproval) -> Self {
        OverdueApprovalView {
            id: o.id.to_string(),
            title: o.title.clone(),
            change_type: o.change_type.as_str().to_owned(),
            due: o.due,
            overdue_minutes: o.overdue_minutes,
        }
    }
}

/// What a tenant's changes add up to over a period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeMetricsView {
    /// The whole period.
    pub totals: ChangeTallyView,
    /// Seven-day weeks from the period's start (the last one cut short at its end).
    pub weeks: Vec<ChangeTallyView>,
    /// The changes created in the period, by their state now: every state, zero included.
    pub by_state: Vec<StateCountView>,
    /// Changes approved by their classification (standard changes) in the period.
    pub auto_approved: usize,
    /// `all` first, then each type.
    pub approval_latency: Vec<ApprovalLatencyView>,
    /// Approvals overdue now (whatever the period), the most overdue first.
    pub overdue_approvals: Vec<OverdueApprovalView>,
}

impl From<&ChangeMetrics> for ChangeMetricsView {
    fn from(m: &ChangeMetrics) -> Self {
        ChangeMetricsView {
            totals: ChangeTallyView::from(&m.totals),
            weeks: m.weeks.iter().map(ChangeTallyView::from).collect(),
            by_state: m
                .by_state
                .iter()
                .map(|(state, changes)| StateCountView {
                    state: state.as_str().to_owned(),
                    changes: *changes,
                })
                .collect(),
            auto_approved: m.auto_approved,
            approval_latency: m
                .approval_latency
                .iter()
                .map(ApprovalLatencyView::from)
                .collect(),
            overdue_approvals: m.overdue.iter().map(OverdueApprovalView::from).collect(),
        }
    }
}

/// The period a query names, or a 422 saying what is wrong with it.
pub(crate) fn period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Period, ApiError> {
    Period::new(from, to).map_err(|e| ApiError::invalid_field("to", e.to_string()))
}

/// Change metrics over a period: requests per week by type, the states those changes are in
/// now, approval latency percentiles, the change failure rate and the emergency share (per
/// week and in all), and the approvals overdue now.
#[utoipa::path(get, path = "/api/v1/change-metrics", tag = "changes", params(ChangeMetricsQuery),
    responses((status = 200, body = ChangeMetricsView), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn change_metrics(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ChangeMetricsQuery>,
) -> Result<Json<ChangeMetricsView>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let now = state.clock.now();
    let to = query.to.unwrap_or(now);
    let from = query
        .from
        .unwrap_or_else(|| to - Duration::days(DEFAULT_DAYS));
    let metrics = crate::measures::change_metrics(&store, period(from, to)?, now).await?;
    Ok(Json(ChangeMetricsView::from(&metrics)))
}
