//! The incident list: every incident of the viewer's tenant, newest first, a page at a time,
//! with the API list's filters and keyset cursor.
//!
//! The query is the API's own (`GET /api/v1/incidents` takes the same parameters, parsed by the
//! same `Paged<IncidentListQuery>` extractor and `api::incidents::incident_filter`), so the two
//! lists never disagree; a bad filter or cursor is a 422 page naming it. The filter form is a
//! GET form whose "any" choice sends an empty value, which here means no filter.

use super::Visitor;
use super::answer::{Chrome, answer, chrome, render};
use crate::AppState;
use crate::api::incidents::{IncidentListQuery, incident_filter};
use crate::api::page::{DEFAULT_LIMIT, PageQuery, Paged};
use crate::auth::ReadRecords;
use crate::error::ApiError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

#[derive(Template)]
#[template(path = "incidents.html")]
struct ListPage {
    chrome: Chrome,
    states: Vec<Choice>,
    severities: Vec<Choice>,
    target: String,
    open_only: bool,
    rows: Vec<Row>,
    /// The next page's address, when there is one.
    next: Option<String>,
}

/// One option of a filter's select.
struct Choice {
    value: &'static str,
    selected: bool,
}

struct Row {
    id: String,
    severity: String,
    state: String,
    title: String,
    targets: String,
    owner: String,
    opened: String,
    top_suspect: Option<String>,
}

const STATES: [&str; 5] = [
    "triggered",
    "acknowledged",
    "contained",
    "resolved",
    "closed",
];
const SEVERITIES: [&str; 4] = ["sev1", "sev2", "sev3", "sev4"];

/// Incidents, newest first, a page at a time: filter by state, severity and affected target
/// (and, as in the API, `open`); "Next page" carries the cursor and the filters.
#[utoipa::path(get, path = "/incidents", tag = "portal", params(IncidentListQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "a page of the incident list"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 422, description = "a filter or the cursor is not valid: the page names it")))]
pub async fn incident_list(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<IncidentListQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, list(&state, visitor, query).await)
}

/// An empty value (the form's "any") is no filter.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

async fn list(
    state: &AppState,
    visitor: Visitor,
    query: Result<Paged<IncidentListQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let Paged {
        page: request,
        filters,
    } = query?;
    let filters = IncidentListQuery {
        open: filters.open,
        state: given(filters.state),
        severity: given(filters.severity),
        target: given(filters.target),
    };
    let (filter, before) = incident_filter(&filters, &request)?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let incidents = store.list_incidents_before(&filter, before).await?;
    let page = request.page("incidents", incidents, |i| i.id.number());
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(open) = filters.open {
            pairs.push(("open", open.to_string()));
        }
        for (key, value) in [
            ("state", &filters.state),
            ("severity", &filters.severity),
            ("target", &filters.target),
        ] {
            if let Some(value) = value {
                pairs.push((key, value.clone()));
            }
        }
        if request.limit() != DEFAULT_LIMIT {
            pairs.push(("limit", request.limit().to_string()));
        }
        pairs.push(("cursor", cursor.clone()));
        format!(
            "/incidents?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let picked = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    let page = ListPage {
        chrome: chrome(&viewer),
        states: (STATES.iter())
            .map(|&value| Choice {
                value,
                selected: picked(&filters.state, value),
            })
            .collect(),
        severities: (SEVERITIES.iter())
            .map(|&value| Choice {
                value,
                selected: picked(&filters.severity, value),
            })
            .collect(),
        target: filters.target.clone().unwrap_or_default(),
        open_only: filters.open == Some(true),
        rows: (page.items.iter())
            .map(|i| Row {
                id: i.id.to_string(),
                severity: i.severity.to_string(),
                state: i.state.to_string(),
                title: i.title.clone(),
                targets: (i.targets.iter())
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                owner: i
                    .owner
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                opened: i.opened_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                top_suspect: i.suspects.first().map(|s| s.change.to_string()),
            })
            .collect(),
        next,
    };
    render(StatusCode::OK, &page)
}
