//! The change list: every change of the viewer's tenant, newest first, a page at a time, with
//! the API list's filters and keyset cursor.
//!
//! The query is the API's own (`GET /api/v1/changes` takes the same parameters, parsed by the
//! same `Paged<ListQuery>` extractor and `api::changes::change_filter`), so the two lists never
//! disagree; a bad filter or cursor is a 422 page naming it. The filter form is a GET form whose
//! "any" choice sends an empty value, which here means no filter.

use super::Visitor;
use super::answer::{Chrome, answer, chrome, render};
use crate::AppState;
use crate::api::changes::{ListQuery, change_filter};
use crate::api::page::{DEFAULT_LIMIT, PageQuery, Paged};
use crate::auth::ReadRecords;
use crate::error::ApiError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use steward_core::state::ChangeState;

#[derive(Template)]
#[template(path = "changes.html")]
struct ListPage {
    chrome: Chrome,
    states: Vec<Choice>,
    types: Vec<Choice>,
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
    change_type: String,
    state: String,
    title: String,
    requester: String,
    created: String,
}

/// Changes, newest first, a page at a time: filter by state and type (and, as in the API, by
/// target, requester and `overdue`); "Next page" carries the cursor and the filters.
#[utoipa::path(get, path = "/changes", tag = "portal", params(ListQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "a page of the change list"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 422, description = "a filter or the cursor is not valid: the page names it")))]
pub async fn change_list(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<ListQuery>, ApiError>,
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
    query: Result<Paged<ListQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let Paged {
        page: request,
        filters,
    } = query?;
    let filters = ListQuery {
        state: given(filters.state),
        change_type: given(filters.change_type),
        target: given(filters.target),
        requester: given(filters.requester),
        overdue: filters.overdue,
    };
    let now = state.clock.now();
    let filter = change_filter(&filters, &request, now)?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let changes = store.list_changes(&filter).await?;
    let page = request.page("changes", changes, |c| c.id.number());
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (key, value) in [
            ("state", &filters.state),
            ("type", &filters.change_type),
            ("target", &filters.target),
            ("requester", &filters.requester),
        ] {
            if let Some(value) = value {
                pairs.push((key, value.clone()));
            }
        }
        if let Some(overdue) = filters.overdue {
            pairs.push(("overdue", overdue.to_string()));
        }
        if request.limit() != DEFAULT_LIMIT {
            pairs.push(("limit", request.limit().to_string()));
        }
        pairs.push(("cursor", cursor.clone()));
        format!(
            "/changes?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let picked = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    let page = ListPage {
        chrome: chrome(&viewer),
        states: (ChangeState::ALL.iter())
            .map(|s| Choice {
                value: s.as_str(),
                selected: picked(&filters.state, s.as_str()),
            })
            .collect(),
        types: ["standard", "normal", "emergency"]
            .into_iter()
            .map(|value| Choice {
                value,
                selected: picked(&filters.change_type, value),
            })
            .collect(),
        rows: (page.items.iter())
            .map(|c| Row {
                id: c.id.to_string(),
                change_type: c.classification.change_type.to_string(),
                state: c.state.to_string(),
                title: c.request.title.clone(),
                requester: c.requester.to_string(),
                created: c.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
            .collect(),
        next,
    };
    render(StatusCode::OK, &page)
}
