//! The windows page: maintenance windows and freezes as `GET /api/v1/windows` lists them (its
//! function and cursor: scope, local times in their zone, recurrence, the next occurrence in
//! UTC), and for those who keep the calendar the form that calls `POST /api/v1/windows`'s
//! function.

use super::super::signin::see_other;
use super::super::{Visitor, parse_form};
use super::{Notice, given, next_link, when};
use crate::AppState;
use crate::api::calendar::{WindowInput, create_calendar_window, windows_page as list_windows};
use crate::api::page::{PageQuery, Paged};
use crate::auth::{KeepCalendar, ReadRecords};
use crate::error::ApiError;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Template)]
#[template(path = "admin/windows.html")]
struct WindowsPage {
    chrome: Chrome,
    notice: Option<Notice>,
    rows: Vec<WindowRow>,
    next: Option<String>,
    /// The viewer may create windows and freezes.
    manage: bool,
}

struct WindowRow {
    name: String,
    kind: String,
    scope: String,
    /// `2026-12-24T18:00 – 2026-12-27T06:00 Europe/London`
    local: String,
    recurrence: String,
    next: String,
    reason: String,
    created: String,
}

/// The windows page's query: paging, and the window a form just created.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowsQuery {
    /// A window the form just created: the page says so when it exists.
    pub created: Option<String>,
}

/// Maintenance windows and freezes, by name, a page at a time; for those who keep the calendar,
/// the form to create one.
#[utoipa::path(get, path = "/admin/windows", tag = "portal", params(WindowsQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the windows page"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 422, description = "a bad cursor or limit: the page names it")))]
pub async fn windows_page(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<WindowsQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let Paged {
            page: request,
            filters,
        } = query?;
        let reader = viewer.caller.may::<ReadRecords>(&state)?;
        let page = list_windows(&state, &reader, &request).await?;
        let created = given(filters.created);
        let mut notice = None;
        let rows = page
            .items
            .into_iter()
            .map(|w| {
                if created.as_deref() == Some(w.name.as_str()) {
                    notice = Some(Notice {
                        kind: "done",
                        text: format!("the {} {} is in the calendar.", w.kind, w.name),
                        operation: None,
                    });
                }
                WindowRow {
                    local: format!("{} – {} {}", w.starts, w.ends, w.timezone),
                    recurrence: w.rrule.unwrap_or_else(|| "once".into()),
                    next: w.next.map_or_else(
                        || "none to come".into(),
                        |o| format!("{} – {}", when(o.start), when(o.end)),
                    ),
                    created: format!("{}, {}", w.created_by, when(w.created_at)),
                    name: w.name,
                    kind: w.kind,
                    scope: w.scope,
                    reason: w.reason,
                }
            })
            .collect();
        render(
            StatusCode::OK,
            &WindowsPage {
                chrome: chrome(&viewer),
                notice,
                next: next_link("/admin/windows", &request, page.next_cursor.as_ref()),
                rows,
                manage: viewer.caller.holds::<KeepCalendar>(),
            },
        )
    };
    answer(&state, html, result.await)
}

/// What the window form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WindowForm {
    #[serde(default)]
    pub name: String,
    /// maintenance or freeze
    #[serde(default)]
    pub kind: String,
    /// `everywhere`, `environment:production` or `target:<name>`.
    #[serde(default)]
    pub scope: String,
    /// IANA zone of `starts` and `ends`.
    #[serde(default)]
    pub timezone: String,
    /// Local wall-clock time in `timezone` (`2026-12-24T18:00`), or RFC 3339.
    #[serde(default)]
    pub starts: String,
    #[serde(default)]
    pub ends: String,
    /// RFC 5545 recurrence (`FREQ=WEEKLY;BYDAY=SA,SU`); blank for a one-off window.
    #[serde(default)]
    pub rrule: Option<String>,
    #[serde(default)]
    pub reason: String,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// Create a maintenance window or freeze (admin, compliance officer, CAB member): the same as
/// `POST /api/v1/windows`, then back to the windows page.
#[utoipa::path(post, path = "/admin/windows", tag = "portal",
    request_body(content = WindowForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "created: back to the windows page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not keep the calendar"),
        (status = 409, description = "a window of that name exists"),
        (status = 422, description = "a bad field: the page names each")))]
pub async fn create_window(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form: Result<WindowForm, _> = parse_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let keeper = viewer.caller.may::<KeepCalendar>(&state)?;
        let form = form?;
        let trimmed = |s: String| s.trim().to_owned();
        let created = create_calendar_window(
            &state,
            &keeper,
            WindowInput {
                name: trimmed(form.name),
                kind: trimmed(form.kind),
                scope: trimmed(form.scope),
                timezone: trimmed(form.timezone),
                starts: trimmed(form.starts),
                ends: trimmed(form.ends),
                rrule: given(form.rrule).map(trimmed),
                reason: trimmed(form.reason),
            },
        )
        .await?;
        let query = serde_urlencoded::to_string([("created", created.view.name.as_str())])
            .map_err(anyhow::Error::from)?;
        see_other(&format!("/admin/windows?{query}"), &[])
    };
    answer(&state, html, result.await)
}
