//! The inventory's pages: the model list (`/models`), a model's page with its fields'
//! provenance, completeness, versions, deployments, findings and lineage graph
//! (`/models/{name}`, in [`model`]), and the reconciliation's findings
//! (`/inventory/reconciliation`, in [`reconciliation`]).
//!
//! Each page is built from the API's own answer: the list is `api::inventory::list_models`
//! (the page `GET /api/v1/models` answers, with its filters parsed by the same `Paged<ModelsQuery>`
//! and `check_models_query`), a model is `api::inventory::model_detail`, findings are
//! `api::inventory_scans::findings_now`, so a page and the API never disagree. What the API
//! list does not carry — where each model runs — is the core's `match_deployment` over the
//! stored deployments, the rule the model's own page and the reconciliation use.

mod lineage;
pub(super) mod model;
pub(super) mod reconciliation;

use super::Visitor;
use super::answer::{Chrome, answer, chrome, render};
use crate::AppState;
use crate::api::inventory::{ModelsQuery, check_models_query, list_models};
use crate::api::page::{DEFAULT_LIMIT, PageQuery, Paged};
use crate::auth::ReadRecords;
use crate::error::ApiError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::inventory::{self, Deployment, Model};
use steward_store::{RecordKind, TenantStore};

/// A time as the portal shows it: UTC, said so.
pub(super) fn utc(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A field's value as text: text as is, a list joined, anything else as JSON.
pub(super) fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Where each model of the inventory runs now: model name → the running deployments
/// (`namespace/name`) the core's `match_deployment` attributes to it — the rule the model's
/// page (`deployments`) and the reconciliation use.
pub(super) async fn running_where(
    store: &TenantStore<'_>,
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let deployments: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
    let mut running: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !deployments.iter().any(|d| d.running) {
        return Ok(running);
    }
    let models: Vec<Model> = store.list_models().await?;
    for d in deployments.iter().filter(|d| d.running) {
        if let Some((model, _)) = inventory::match_deployment(d, &models) {
            running
                .entry(model.name.clone())
                .or_default()
                .push(format!("{}/{}", d.namespace, d.name));
        }
    }
    Ok(running)
}

#[derive(Template)]
#[template(path = "models.html")]
struct ListPage {
    chrome: Chrome,
    statuses: Vec<Choice>,
    /// The time the list is as of (`?at=`), said above it.
    at: Option<String>,
    rows: Vec<Row>,
    next: Option<String>,
}

/// One option of the status filter.
struct Choice {
    value: &'static str,
    selected: bool,
}

struct Row {
    name: String,
    title: String,
    status: String,
    risk_tier: String,
    owner: String,
    completeness: u32,
    needs_review: bool,
    latest_version: String,
    production_version: String,
    /// Running deployments; `None` for a list as of a past time (deployments have no history).
    running: Option<Vec<String>>,
}

/// The inventory's models by name, a page at a time, with the API list's filter (`status`) and
/// point-in-time (`at`, RFC 3339): each model's risk tier, owner, completeness against its
/// template, latest and production versions, and where it runs.
#[utoipa::path(get, path = "/models", tag = "portal", params(ModelsQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "a page of the model list"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer may not read records"),
        (status = 422, description = "a filter or the cursor is not valid: the page names it")))]
pub async fn model_list(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<ModelsQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, list(&state, visitor, query).await)
}

async fn list(
    state: &AppState,
    visitor: Visitor,
    query: Result<Paged<ModelsQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let Paged {
        page: request,
        filters,
    } = query?;
    // The form's "any" sends an empty value: no filter.
    let filters = ModelsQuery {
        status: filters.status.filter(|s| !s.trim().is_empty()),
        at: filters.at,
    };
    check_models_query(&filters)?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let page = list_models(state, &store, &request, &filters).await?;
    let running = match filters.at {
        None => Some(running_where(&store).await?),
        Some(_) => None,
    };
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(status) = &filters.status {
            pairs.push(("status", status.clone()));
        }
        if let Some(at) = &filters.at {
            pairs.push(("at", at.to_rfc3339()));
        }
        if request.limit() != DEFAULT_LIMIT {
            pairs.push(("limit", request.limit().to_string()));
        }
        pairs.push(("cursor", cursor.clone()));
        format!(
            "/models?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let text = |v: &Option<Value>| v.as_ref().map(value_text).unwrap_or_default();
    let page = ListPage {
        chrome: chrome(&viewer),
        statuses: (inventory::STATUSES.iter())
            .map(|s| Choice {
                value: s,
                selected: filters.status.as_deref() == Some(*s),
            })
            .collect(),
        at: filters.at.as_ref().map(utc),
        rows: (page.items.iter())
            .map(|m| Row {
                name: m.name.clone(),
                title: text(&m.title),
                status: m.status.clone(),
                risk_tier: text(&m.risk_tier),
                owner: text(&m.owner),
                completeness: m.completeness.score,
                needs_review: m.completeness.needs_review,
                latest_version: m.versions.last().cloned().unwrap_or_default(),
                production_version: m.production_version.clone().unwrap_or_default(),
                running: running
                    .as_ref()
                    .map(|r| r.get(&m.name).cloned().unwrap_or_default()),
            })
            .collect(),
        next,
    };
    render(StatusCode::OK, &page)
}
