//! The dual-control page: privileged operations waiting for a second admin and those decided,
//! as `GET /api/v1/admin/pending` lists them (its function, its `status` filter and cursor),
//! and the approve and reject forms, which call the functions
//! `POST /api/v1/admin/pending/{id}/approve|reject` call.
//!
//! Whether the viewer may approve an operation is the store's own rule
//! (`PendingOperation::refuses_approver`: not one's own request, not a grant of one's own
//! privileges), asked before the button is offered; the approval asks it again in its
//! transaction, so a forged post is refused (403) as the API refuses it. The requester may
//! still reject (withdraw) their own request, as the API allows.

use super::super::Visitor;
use super::super::parse_form;
use super::super::signin::see_other;
use super::{Notice, given, operation_notice, when, when_or};
use crate::AppState;
use crate::api::admin::{PendingView, approve_operation, operations_page, reject_operation};
use crate::api::page::{DEFAULT_LIMIT, PageQuery, Paged};
use crate::auth::{DecidePrivileged, ReviewPrivileged};
use crate::error::ApiError;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Template)]
#[template(path = "admin/pending.html")]
struct PendingPage {
    chrome: Chrome,
    notice: Option<Notice>,
    /// The status shown: pending, approved, rejected or all.
    status: String,
    tabs: Vec<Tab>,
    rows: Vec<OperationRow>,
    next: Option<String>,
}

struct Tab {
    status: &'static str,
    label: &'static str,
    current: bool,
}

struct OperationRow {
    id: String,
    kind: String,
    summary: String,
    status: String,
    requested_by: String,
    requested_at: String,
    /// "approved by ivy, 2026-12-01 10:00 UTC", or empty while pending.
    decided: String,
    reason: String,
    /// Waiting, and the viewer may approve it.
    may_approve: bool,
    /// Waiting, and the viewer may reject it (or withdraw it, when it is their own).
    may_reject: bool,
    /// Why the viewer may not approve it, when it waits and they may decide others.
    why_not: String,
    /// The viewer asked for it (rejecting it withdraws it).
    own: bool,
}

/// The pending page's query: the API's `status` filter, and the operation a form just decided.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// pending (the default), approved, rejected or all
    pub status: Option<String>,
    /// An operation a form just decided (`OP-n`): the page says how it stands.
    pub decided: Option<String>,
}

/// Privileged operations of the viewer's tenant, newest first, by status (waiting for a second
/// admin by default), with approve and reject forms for admins.
#[utoipa::path(get, path = "/admin/pending", tag = "portal", params(PendingQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the operations"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer may not review privileged operations"),
        (status = 422, description = "a bad status, cursor or limit: the page names it")))]
pub async fn pending_page(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<PendingQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, show(&state, visitor, query).await)
}

async fn show(
    state: &AppState,
    visitor: Visitor,
    query: Result<Paged<PendingQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let reviewer = viewer.caller.may::<ReviewPrivileged>(state)?;
    let Paged {
        page: request,
        filters,
    } = query?;
    let status = given(filters.status).unwrap_or_else(|| "pending".to_owned());
    let page = operations_page(&reviewer, Some(&status), &request).await?;
    let notice = match given(filters.decided) {
        Some(id) => operation_notice(state, &viewer.caller, &id).await,
        None => None,
    };
    let me = viewer.caller.name().as_str();
    let decides = viewer.caller.holds::<DecidePrivileged>();
    let rows = page
        .items
        .iter()
        .map(|pending| {
            let view = PendingView::new(pending)?;
            let waiting = view.status == "pending";
            let refusal = pending.refuses_approver(me);
            let why_not = match (&refusal, waiting && decides) {
                (Some(refusal), true) => {
                    crate::dual_control::refused(refusal.clone(), Some(&view.id)).to_string()
                }
                _ => String::new(),
            };
            Ok(OperationRow {
                may_approve: waiting && decides && refusal.is_none(),
                may_reject: waiting && decides,
                why_not,
                own: view.requested_by == me,
                decided: match &view.decided_by {
                    Some(by) => {
                        format!("{} by {by}, {}", view.status, when_or(view.decided_at, ""))
                    }
                    None => String::new(),
                },
                reason: view.reason.clone().unwrap_or_default(),
                requested_at: when(view.requested_at),
                id: view.id,
                kind: view.kind,
                summary: view.summary,
                status: view.status,
                requested_by: view.requested_by,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut pairs = vec![("status", status.clone())];
        if request.limit() != DEFAULT_LIMIT {
            pairs.push(("limit", request.limit().to_string()));
        }
        pairs.push(("cursor", cursor.clone()));
        format!(
            "/admin/pending?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let tabs = [
        ("pending", "Waiting"),
        ("approved", "Approved"),
        ("rejected", "Rejected"),
        ("all", "All"),
    ]
    .into_iter()
    .map(|(value, label)| Tab {
        status: value,
        label,
        current: value == status,
    })
    .collect();
    render(
        StatusCode::OK,
        &PendingPage {
            chrome: chrome(&viewer),
            notice,
            status,
            tabs,
            rows,
            next,
        },
    )
}

/// What the approve button posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ApproveForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// What the reject form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RejectForm {
    /// Why, for the requester and the record.
    #[serde(default)]
    pub reason: Option<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

fn decided(id: &str) -> Result<Response, ApiError> {
    let query = serde_urlencoded::to_string([("status", "all"), ("decided", id)])
        .map_err(anyhow::Error::from)?;
    see_other(&format!("/admin/pending?{query}"), &[])
}

/// Approve a privileged operation another admin asked for (admin): the same as
/// `POST /api/v1/admin/pending/{id}/approve` — it takes effect now — then back to the page. One's
/// own request, or a grant of one's own privileges, is refused (403).
#[utoipa::path(post, path = "/admin/pending/{id}/approve", tag = "portal",
    params(("id" = String, Path, description = "the operation, e.g. OP-7")),
    request_body(content = ApproveForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "approved: back to the page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, the viewer may not decide, or it is their own request"),
        (status = 404, description = "no such operation in your tenant"),
        (status = 409, description = "decided already, or what it would change changed since")))]
pub async fn approve(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form: Result<ApproveForm, _> = parse_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let approver = viewer.caller.may::<DecidePrivileged>(&state)?;
        let view = approve_operation(&state, &approver, &id).await?;
        decided(&view.id)
    };
    answer(&state, html, result.await)
}

/// Reject a privileged operation, or withdraw one's own request (admin): the same as
/// `POST /api/v1/admin/pending/{id}/reject` — it never takes effect — then back to the page.
#[utoipa::path(post, path = "/admin/pending/{id}/reject", tag = "portal",
    params(("id" = String, Path, description = "the operation, e.g. OP-7")),
    request_body(content = RejectForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "rejected: back to the page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not decide"),
        (status = 404, description = "no such operation in your tenant"),
        (status = 409, description = "decided already")))]
pub async fn reject(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form: Result<RejectForm, _> = parse_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let admin = viewer.caller.may::<DecidePrivileged>(&state)?;
        let form = form?;
        let view = reject_operation(&admin, &id, form.reason.as_deref()).await?;
        decided(&view.id)
    };
    answer(&state, html, result.await)
}
