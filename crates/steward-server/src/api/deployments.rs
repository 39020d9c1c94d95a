//! Deployment reports: a pipeline tells Steward it started, finished or failed deploying a change.
//!
//! A report is evidence, not a lifecycle step (service accounts never implement or complete a
//! change). It is stamped with the server's clock and the gate's verdict at that moment, kept on
//! the change and in the audit log in one transaction, and from then on it is part of "when did
//! this change happen": incident correlation and the inventory's history use it. The GitLab
//! deployment webhook records its events through `record` as well.

use super::body::JsonBody;
use super::changes::{gate_now, load_change, parse_id, update_change};
use crate::AppState;
use crate::auth::{Caller, RecordDeployments};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_core::deployment::{Deployment, DeploymentStatus};
use steward_core::target::Environment;
use steward_core::{ChangeId, TargetName, UserName};
use steward_store::TenantStore;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentInput {
    /// started, succeeded or failed
    pub status: String,
    /// The target deployed to.
    pub target: String,
    /// production, staging or development
    pub environment: String,
    /// A link to the pipeline run or job.
    #[serde(default)]
    pub run: Option<String>,
}

/// One deployment report as recorded on its change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentView {
    /// started, succeeded or failed
    pub status: String,
    pub target: Option<String>,
    pub environment: String,
    /// The account or integration that reported it.
    pub by: String,
    /// When the report reached Steward (the server's clock).
    pub at: DateTime<Utc>,
    /// Whether the gate allowed this change here at that moment.
    pub allowed: bool,
    pub reason: String,
    pub run: Option<String>,
}

impl DeploymentView {
    pub fn from(d: &Deployment) -> DeploymentView {
        DeploymentView {
            status: d.status.as_str().to_owned(),
            target: d.target.as_ref().map(ToString::to_string),
            environment: d.environment.to_string(),
            by: d.by.to_string(),
            at: d.at,
            allowed: d.allowed,
            reason: d.reason.clone(),
            run: d.run.clone(),
        }
    }
}

/// Report a deployment of a change (pipeline accounts). Recorded whatever the gate says now — an
/// unapproved deployment is a fact to keep — with the verdict, so `allowed: false` marks it.
#[utoipa::path(post, path = "/api/v1/changes/{id}/deployments", tag = "changes", request_body = DeploymentInput,
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = DeploymentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DeploymentInput>,
) -> Result<Json<DeploymentView>, ApiError> {
    let status = body
        .status
        .parse::<DeploymentStatus>()
        .map_err(|e| ApiError::invalid_field("status", e))?;
    let target = TargetName::parse(&body.target)
        .map_err(|e| ApiError::invalid_field("target", e.to_string()))?;
    let environment = body
        .environment
        .parse::<Environment>()
        .map_err(|e| ApiError::invalid_field("environment", e))?;
    let run = match body.run.as_deref().map(str::trim) {
        Some("") | None => None,
        Some(run) => Some(run_link(run).map_err(|e| ApiError::invalid_field("run", e))?),
    };
    let id = parse_id(&id)?;
    let permit = caller.may::<RecordDeployments>(&state)?;
    let report = Report {
        status,
        target: Some(target),
        environment,
        run,
        external_id: None,
    };
    let deployment = record(&state, &permit.store(), &id, permit.who(), report).await?;
    Ok(Json(DeploymentView::from(&deployment)))
}

/// A pipeline run's link: an http(s) URL of at most 2048 characters, without spaces — a link,
/// not free text (free text a person writes is sealed under their key; a link is not).
pub(crate) fn run_link(run: &str) -> Result<String, String> {
    let ok = (run.starts_with("https://") || run.starts_with("http://"))
        && run.len() <= 2048
        && !run.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(run.to_owned())
    } else {
        Err("a link to the pipeline run: http(s)://…, at most 2048 characters, no spaces".into())
    }
}

/// What a pipeline reported, before Steward stamps it.
#[derive(Debug)]
pub(crate) struct Report {
    pub status: DeploymentStatus,
    pub target: Option<TargetName>,
    pub environment: Environment,
    pub run: Option<String>,
    /// The deployment's own id, where the reporter has one (GitLab's `deployment_id`).
    pub external_id: Option<String>,
}

/// How often the verdict is taken again when the change moved while it was being judged.
const ATTEMPTS: usize = 8;

/// Records a deployment report on the change, with the gate's verdict now (a finish takes its
/// start's verdict); the change and its audit event are saved together. The verdict is taken
/// against the version of the change that is saved: if the change moved meanwhile (cancelled,
/// rescheduled), it is judged again. A resent report is recorded once.
pub(crate) async fn record(
    state: &AppState,
    store: &TenantStore<'_>,
    id: &ChangeId,
    by: &UserName,
    report: Report,
) -> Result<Deployment, ApiError> {
    for _ in 0..ATTEMPTS {
        let change = load_change(store, id).await?;
        let start = (report.status != DeploymentStatus::Started)
            .then(|| {
                change.open_start(
                    report.target.as_ref(),
                    report.environment,
                    report.external_id.as_deref(),
                )
            })
            .flatten();
        let (allowed, reason) = match start {
            Some(start) => (
                start.allowed,
                format!(
                    "as when it started at {}: {}",
                    start.at.to_rfc3339(),
                    start.reason
                ),
            ),
            None => {
                let verdict = gate_now(
                    state,
                    store,
                    &change,
                    report.target.as_ref(),
                    report.environment,
                )
                .await?;
                (verdict.allowed, verdict.reason)
            }
        };
        let deployment = Deployment {
            status: report.status,
            target: report.target.clone(),
            environment: report.environment,
            by: by.clone(),
            at: state.clock.now(),
            allowed,
            reason,
            run: report.run.clone(),
            external_id: report.external_id.clone(),
        };
        let judged = change.version;
        let saved = update_change(store, id, |current| {
            if current.version != judged {
                return Err(moved());
            }
            Ok(current
                .record_deployment(deployment.clone())?
                .into_iter()
                .collect())
        })
        .await;
        match saved {
            Ok(_) => {
                tracing::info!(change = %id, status = deployment.status.as_str(), allowed = deployment.allowed, by = %by, "deployment recorded");
                return Ok(deployment);
            }
            Err(ApiError::Conflict { details, .. }) if details == moved_marker() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Conflict {
        message: format!("{id} kept changing while the deployment was judged: report it again"),
        details: serde_json::Value::Null,
    })
}

fn moved_marker() -> serde_json::Value {
    serde_json::json!({ "reason": "judged_an_older_version" })
}

fn moved() -> ApiError {
    ApiError::Conflict {
        message: "the change moved while the deployment was judged".into(),
        details: moved_marker(),
    }
}
