//! GitLab deployment events: every deployment GitLab runs is linked to its Steward change, or
//! recorded as a change when it has none, so no deployment escapes the record.
//!
//! GitLab's "Deployment Hook" is a notification (it cannot hold a deployment back), authenticated
//! by the webhook's secret in `X-Gitlab-Token`. A deployment naming a change (`CHG-n` in its ref
//! or commit title) is linked to it with the gate's verdict at that moment — an unapproved
//! deployment is recorded as such — and a running, succeeded or failed one is also recorded on
//! the change as a deployment report ([`super::deployments`]): the true time it took effect. A
//! starting deployment that names none becomes a change raised by the configured GitLab account
//! on the target its project maps to, so it goes to approvers (and shows in the failure rate)
//! like any other.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_core::ChangeId;
use steward_core::change::Change;
use steward_core::deployment::DeploymentStatus;
use steward_core::gate;
use steward_core::submission::ChangeRequest;
use steward_core::target::Environment;
use steward_store::AuditRecord;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentRecord {
    /// linked, created, unmatched or ignored
    pub outcome: String,
    pub change: Option<String>,
    pub reason: String,
}

fn answer(outcome: &str, change: Option<&ChangeId>, reason: String) -> Json<DeploymentRecord> {
    Json(DeploymentRecord {
        outcome: outcome.into(),
        change: change.map(|c| c.to_string()),
        reason,
    })
}

/// Receive a GitLab "Deployment Hook" event and link or record the deployment.
#[utoipa::path(post, path = "/api/v1/integrations/gitlab/deployments", tag = "pipelines",
    responses((status = 200, body = DeploymentRecord), (status = 401, description = "bad or missing X-Gitlab-Token"),
        (status = 404, description = "the GitLab integration is not configured")))]
pub async fn deployment(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DeploymentRecord>, ApiError> {
    let Some(gitlab) = &state.config.gitlab else {
        return Err(ApiError::NotFound(
            "the GitLab integration is not configured (set a webhook token)".into(),
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(hook) = crate::auth::VerifiedWebhook::gitlab(&state, gitlab, header("x-gitlab-token"))
    else {
        tracing::warn!("GitLab webhook refused: bad or missing X-Gitlab-Token");
        return Err(ApiError::Unauthorized(
            "the X-Gitlab-Token header does not match the configured webhook token".into(),
        ));
    };
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the webhook body is not JSON: {e}")))?;
    if header("x-gitlab-event") != Some("Deployment Hook") || payload["object_kind"] != "deployment"
    {
        return Ok(answer("ignored", None, "not a deployment event".into()));
    }
    let status = payload["status"].as_str().unwrap_or("unknown").to_owned();
    let environment_name = payload["environment"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let project = payload["project"]["path_with_namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let store = hook.store();
    let now = state.clock.now();
    let named = [payload["ref"].as_str(), payload["commit_title"].as_str()]
        .into_iter()
        .flatten()
        .find_map(super::github::change_id_in);
    let details = json!({
        "status": status,
        "environment": environment_name,
        "project": project,
        "ref": payload["ref"],
        "sha": payload["short_sha"],
        "deployment_id": payload["deployment_id"],
        "job": payload["deployable_url"],
        "user": payload["user"]["username"],
    });
    let record =
        |action: String, subject: String, outcome: &'static str, details: Value| AuditRecord {
            occurred_at: now,
            actor: "gitlab".into(),
            action,
            subject_type: "change",
            subject_id: subject,
            outcome,
            correlation_id: payload["deployment_id"]
                .as_i64()
                .map(|d| format!("gitlab-deployment:{d}")),
            details,
        };

    // A deployment that names its change: link it, with the gate's verdict now.
    if let Some(id) = named {
        let Some(change) = store.get_change(&id).await? else {
            return Ok(answer(
                "unmatched",
                Some(&id),
                format!("no change {id} in Steward"),
            ));
        };
        let verdict = match environment_name.parse::<Environment>() {
            Err(e) => gate::GateVerdict {
                allowed: false,
                reason: format!("GitLab environment {e}"),
            },
            Ok(environment) => {
                let verdict =
                    super::changes::gate_now(&state, &store, &change, None, environment).await?;
                if verdict.allowed {
                    gate::GateVerdict {
                        allowed: true,
                        reason: format!("{id} allows this deployment"),
                    }
                } else {
                    verdict
                }
            }
        };
        // Running, succeeded and failed deployments are evidence of when the change took effect.
        if let (Ok(environment), Some(status)) = (
            environment_name.parse::<Environment>(),
            deployment_status(&status),
        ) {
            let report = super::deployments::Report {
                status,
                target: None,
                environment,
                run: payload["deployable_url"]
                    .as_str()
                    .and_then(|u| super::deployments::run_link(u).ok()),
                external_id: payload["deployment_id"].as_i64().map(|d| d.to_string()),
            };
            // The webhook's own audit event below is written whatever happens here: a report
            // the change cannot take (its limit reached) must not lose the deployment's record.
            if let Err(e) =
                super::deployments::record(&state, &store, &id, &gitlab.account, report).await
            {
                tracing::warn!(change = %id, error = %e, "GitLab deployment not recorded on the change");
            }
        }
        let mut linked = details.clone();
        linked["gate"] = json!(verdict);
        let outcome = if verdict.allowed { "success" } else { "denied" };
        store
            .record_events(&[record(
                format!("gitlab.deployment_{status}"),
                id.to_string(),
                outcome,
                linked,
            )])
            .await?;
        let reason = if verdict.allowed {
            verdict.reason
        } else {
            format!("recorded an unapproved deployment: {}", verdict.reason)
        };
        return Ok(answer("linked", Some(&id), reason));
    }

    // A starting deployment with no change: record it as one, on its project's target.
    let mapped = gitlab.projects.get(&project);
    let starting = matches!(status.as_str(), "created" | "running");
    let (Some(target), true) = (mapped, starting) else {
        let reason = if mapped.is_none() {
            format!("deployment names no change and project '{project}' maps to no target")
        } else {
            format!("a {status} deployment that names no change")
        };
        store
            .record_events(&[AuditRecord {
                subject_type: "gitlab_project",
                ..record(
                    format!("gitlab.deployment_{status}"),
                    project.clone(),
                    "denied",
                    details,
                )
            }])
            .await?;
        return Ok(answer("unmatched", None, reason));
    };
    let short_sha = payload["short_sha"].as_str().unwrap_or_default();
    let job = payload["deployable_url"].as_str().unwrap_or_default();
    let document = json!({
        "title": format!("GitLab deployment of {project} {short_sha} to {environment_name}"),
        "description": format!(
            "Recorded from GitLab: {} (by {}). No change was named by the deployment.",
            payload["commit_title"].as_str().unwrap_or(""),
            payload["user"]["username"].as_str().unwrap_or("?")
        ),
        "category": "model-deployment",
        "targets": [target],
        "environment": environment_name,
        "impact": {"data": "low", "availability": "medium", "compliance": "medium"},
        "implementation_plan": format!("GitLab deployment job {job}"),
        "rollback_plan": format!("Re-run the previous successful deployment of {environment_name} in GitLab"),
        "links": [job, payload["commit_url"].as_str().unwrap_or_default()],
        "pipeline": {"commit": short_sha, "run": job},
    });
    let request = ChangeRequest::parse(&document).map_err(ApiError::Invalid)?;
    let account = store.account(&gitlab.account).await?.ok_or_else(|| {
        ApiError::Unavailable(format!(
            "the configured GitLab account '{}' does not exist: create it with the pipeline role",
            gitlab.account
        ))
    })?;
    if account.status == steward_core::account::AccountStatus::Disabled {
        return Err(ApiError::Unavailable(format!(
            "the configured GitLab account '{}' is disabled: enable it (steward user enable) or configure another",
            gitlab.account
        )));
    }
    let roles = account.roles;
    let loaded =
        super::changes::load_facts(&state.policies, &store, &request, roles.iter().collect())
            .await?;
    match Change::open(
        gitlab.tenant.clone(),
        gitlab.account.clone(),
        request,
        loaded.facts(&state),
    ) {
        Ok((change, transitions)) => {
            let change = store.insert_change(change, transitions).await?;
            store
                .record_events(&[record(
                    format!("gitlab.deployment_{status}"),
                    change.id.to_string(),
                    "success",
                    details,
                )])
                .await?;
            Ok(answer(
                "created",
                Some(&change.id),
                format!("recorded as {} ({})", change.id, change.state),
            ))
        }
        Err(refused) => {
            let reason = refused.to_string();
            let mut refusal = details;
            refusal["refused"] = json!(reason);
            store
                .record_events(&[AuditRecord {
                    subject_type: "gitlab_project",
                    ..record(
                        format!("gitlab.deployment_{status}"),
                        project,
                        "denied",
                        refusal,
                    )
                }])
                .await?;
            Ok(answer(
                "unmatched",
                None,
                format!("could not be recorded as a change: {reason}"),
            ))
        }
    }
}

/// GitLab's deployment status as a deployment report: `created` is not yet a deployment.
fn deployment_status(gitlab: &str) -> Option<DeploymentStatus> {
    match gitlab {
        "running" => Some(DeploymentStatus::Started),
        "success" => Some(DeploymentStatus::Succeeded),
        "failed" | "canceled" => Some(DeploymentStatus::Failed),
        _ => None,
    }
}
