//! Problem records: the root cause behind recurring incidents, by name. Incidents link to one
//! (`POST /incidents/{id}/actions` with `problem`), and the change raised as its permanent fix
//! is linked here, so the record shows its incidents and whether the fix is done.

use super::body::JsonBody;
use super::incident_views::{ProblemIncidentView, ProblemView};
use super::named::check_name;
use crate::AppState;
use crate::auth::{Caller, HandleIncidents, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use steward_core::ChangeId;
use steward_store::{IncidentFilter, NamedKind, TenantStore};
use utoipa::ToSchema;

/// A problem record as stored. The title and description are sealed to their writer in the
/// store (they read as `[erased]` after an erasure), so they stay strings either way.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct ProblemDocument {
    title: String,
    description: Option<String>,
    /// `CHG-<n>`, once a fix is linked.
    fix_change: Option<String>,
}

async fn load_problem(
    store: &TenantStore<'_>,
    name: &str,
) -> Result<Option<ProblemDocument>, ApiError> {
    match store.named_one(NamedKind::Problem, name).await? {
        None => Ok(None),
        Some(document) => serde_json::from_value(document).map(Some).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "problem record '{name}' is unreadable: {e}"
            ))
        }),
    }
}

async fn save_problem(
    store: &TenantStore<'_>,
    name: &str,
    document: &ProblemDocument,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let document = serde_json::to_value(document)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("problem record '{name}': {e}")))?;
    store
        .put_named(NamedKind::Problem, name, &document, actor, now)
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemInput {
    pub title: String,
    pub description: Option<String>,
}

/// Create or retitle a problem record: the root cause behind recurring incidents.
#[utoipa::path(put, path = "/api/v1/problems/{name}", tag = "incidents", request_body = ProblemInput,
    params(("name" = String, Path)),
    responses((status = 200, body = ProblemView), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn put_problem(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ProblemInput>,
) -> Result<Json<ProblemView>, ApiError> {
    let actor = caller.may::<HandleIncidents>(&state)?;
    check_name(&name)?;
    if body.title.trim().is_empty() {
        return Err(ApiError::invalid_field("title", "must not be empty"));
    }
    let store = actor.store();
    // Retitling keeps the fix already linked.
    let fix_change = load_problem(&store, &name)
        .await?
        .and_then(|p| p.fix_change);
    let document = ProblemDocument {
        title: body.title.trim().to_owned(),
        description: body.description,
        fix_change,
    };
    save_problem(
        &store,
        &name,
        &document,
        actor.principal().name.as_str(),
        state.clock.now(),
    )
    .await?;
    problem_view(&store, &name).await.map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixInput {
    /// The change that fixes the problem for good, `CHG-<n>`.
    pub change: String,
}

/// Link the change raised as the problem's permanent fix.
#[utoipa::path(post, path = "/api/v1/problems/{name}/fix", tag = "incidents", request_body = FixInput,
    params(("name" = String, Path)),
    responses((status = 200, body = ProblemView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn fix_problem(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<FixInput>,
) -> Result<Json<ProblemView>, ApiError> {
    let actor = caller.may::<HandleIncidents>(&state)?;
    let store = actor.store();
    let mut document = load_problem(&store, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no problem record '{name}'")))?;
    let change = ChangeId::parse(&body.change)
        .ok_or_else(|| ApiError::invalid_field("change", "must be a change id like CHG-12"))?;
    if store.get_change(&change).await?.is_none() {
        return Err(ApiError::invalid_field(
            "change",
            format!("no change {change}: raise the fix as a change first"),
        ));
    }
    document.fix_change = Some(change.to_string());
    save_problem(
        &store,
        &name,
        &document,
        actor.principal().name.as_str(),
        state.clock.now(),
    )
    .await?;
    problem_view(&store, &name).await.map(Json)
}

/// A problem record with its incidents and its fix's state.
#[utoipa::path(get, path = "/api/v1/problems/{name}", tag = "incidents",
    params(("name" = String, Path)),
    responses((status = 200, body = ProblemView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get_problem(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ProblemView>, ApiError> {
    problem_view(&caller.may::<ReadRecords>(&state)?.store(), &name)
        .await
        .map(Json)
}

async fn problem_view(store: &TenantStore<'_>, name: &str) -> Result<ProblemView, ApiError> {
    let document = load_problem(store, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no problem record '{name}'")))?;
    let incidents = store
        .list_incidents(&IncidentFilter {
            open_only: false,
            opened_since: None,
            limit: 5000,
            ..IncidentFilter::default()
        })
        .await?;
    // Oldest first: the problem's history in order.
    let linked = incidents
        .iter()
        .rev()
        .filter(|i| i.problem.as_deref() == Some(name))
        .map(ProblemIncidentView::from)
        .collect();
    let fix_state = match document.fix_change.as_deref().and_then(ChangeId::parse) {
        Some(change) => store
            .get_change(&change)
            .await?
            .map(|c| c.state.to_string()),
        None => None,
    };
    Ok(ProblemView {
        name: name.to_owned(),
        title: document.title,
        description: document.description,
        fix_change: document.fix_change,
        fix_state,
        incidents: linked,
    })
}
