//! GitHub deployment protection rules: GitHub asks Steward whether a deployment may proceed, and
//! Steward answers by calling the deployment's callback URL with `approved` or `rejected`.
//!
//! GitHub cannot send a Steward token, so the request is authenticated by its
//! `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the configured webhook secret,
//! compared in constant time). The change is found by a change id (`CHG-n`) in the deployment's
//! payload (`steward_change`), its ref, or its description; the decision is the deployment gate's
//! (`steward_core::gate`) for every target of the change in the GitHub environment's name.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_core::ChangeId;
use steward_core::target::Environment;
use steward_store::AuditRecord;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// approved or rejected; `ignored` for events other than deployment_protection_rule.
    pub state: String,
    pub reason: String,
    pub change: Option<String>,
}

/// Finds `CHG-<digits>` in free text.
pub(crate) fn change_id_in(text: &str) -> Option<ChangeId> {
    let upper = text.to_ascii_uppercase();
    let mut rest = upper.as_str();
    while let Some(at) = rest.find("CHG-") {
        let digits: String = rest[at + 4..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if let Some(id) = ChangeId::parse(&format!("CHG-{digits}")) {
            return Some(id);
        }
        rest = &rest[at + 4..];
    }
    None
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Receive a GitHub `deployment_protection_rule` webhook and answer it through its callback URL.
#[utoipa::path(post, path = "/api/v1/integrations/github/deployment-protection", tag = "pipelines",
    responses((status = 200, body = ReviewView), (status = 401, description = "bad or missing signature"),
        (status = 404, description = "the GitHub integration is not configured"),
        (status = 502, description = "GitHub's callback failed")))]
pub async fn deployment_protection(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReviewView>, ApiError> {
    let Some(github) = &state.config.github else {
        return Err(ApiError::NotFound(
            "the GitHub integration is not configured (set a webhook secret)".into(),
        ));
    };
    let Some(hook) = crate::auth::VerifiedWebhook::github(
        &state,
        github,
        &body,
        header(&headers, "x-hub-signature-256"),
    ) else {
        tracing::warn!("GitHub webhook refused: bad or missing X-Hub-Signature-256");
        return Err(ApiError::Unauthorized(
            "the X-Hub-Signature-256 header does not sign this body with the configured secret"
                .into(),
        ));
    };
    let event = header(&headers, "x-github-event").unwrap_or("");
    if event != "deployment_protection_rule" {
        return Ok(Json(ReviewView {
            state: "ignored".into(),
            reason: format!("event '{event}' is not a deployment_protection_rule"),
            change: None,
        }));
    }
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the webhook body is not JSON: {e}")))?;
    let Some(callback) = payload["deployment_callback_url"].as_str() else {
        return Err(ApiError::invalid_field(
            "deployment_callback_url",
            "is required",
        ));
    };
    let github_environment = payload["environment"].as_str().unwrap_or_default();
    let deployment = &payload["deployment"];
    let found = [
        deployment["payload"]["steward_change"].as_str(),
        deployment["ref"].as_str(),
        deployment["description"].as_str(),
    ]
    .into_iter()
    .flatten()
    .find_map(change_id_in);

    let store = hook.store();
    let now = state.clock.now();
    let (approved, reason, change_id) = match found {
        None => (
            false,
            "no Steward change named: put CHG-<n> in the deployment payload (steward_change), ref or description".to_owned(),
            None,
        ),
        Some(id) => match store.get_change(&id).await? {
            None => (false, format!("no change {id} in Steward"), Some(id)),
            Some(change) => match github_environment.parse::<Environment>() {
                Err(e) => (false, format!("GitHub environment {e}"), Some(id)),
                Ok(environment) => {
                    let verdict =
                        super::changes::gate_now(&state, &store, &change, None, environment)
                            .await?;
                    (verdict.allowed, verdict.reason, Some(id))
                }
            },
        },
    };
    let decision = if approved { "approved" } else { "rejected" };
    let answer = json!({
        "environment_name": github_environment,
        "state": decision,
        "comment": format!("Steward: {reason}"),
    });
    let sent = reqwest::Client::new()
        .post(callback)
        .bearer_auth(&github.token)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", "steward")
        .timeout(std::time::Duration::from_secs(10))
        .json(&answer)
        .send()
        .await;
    let callback_status = match &sent {
        Ok(response) => response.status().as_u16().to_string(),
        Err(e) => format!("failed: {e}"),
    };
    let record = AuditRecord {
        occurred_at: now,
        actor: "github".into(),
        action: format!("github.deployment_{decision}"),
        subject_type: "change",
        subject_id: change_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into()),
        outcome: if approved { "success" } else { "denied" },
        correlation_id: deployment["id"]
            .as_i64()
            .map(|d| format!("github-deployment:{d}")),
        details: json!({
            "environment": github_environment,
            "ref": deployment["ref"],
            "sha": deployment["sha"],
            "reason": reason,
            "callback_status": callback_status,
        }),
    };
    store.record_events(&[record]).await?;
    match sent {
        Ok(response) if response.status().is_success() => Ok(Json(ReviewView {
            state: decision.into(),
            reason,
            change: change_id.map(|c| c.to_string()),
        })),
        Ok(response) => Err(ApiError::BadGateway(format!(
            "GitHub refused the review callback ({}): check the configured token",
            response.status()
        ))),
        Err(e) => Err(ApiError::BadGateway(format!(
            "cannot reach GitHub's callback URL: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn change_ids_are_found_in_refs_and_text() {
        assert_eq!(
            super::change_id_in("release/chg-12-fraud").map(|c| c.to_string()),
            Some("CHG-12".into())
        );
        assert_eq!(
            super::change_id_in("deploy CHG- then CHG-7").map(|c| c.to_string()),
            Some("CHG-7".into())
        );
        assert!(super::change_id_in("refs/heads/main").is_none());
    }
}
