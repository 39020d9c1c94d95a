//! The reconciliation's findings: the inventory against what runs, now — what runs but is not
//! registered, what is registered for production but runs nowhere, what runs (or is marked
//! for production) without a completed change, expired validations, and running artifacts
//! that differ from the registered ones.
//!
//! A page of its own rather than a section of `/models`: the findings are computed over the
//! whole inventory and every change on each call, which the model list (a cheap keyset page)
//! should not pay for on every visit, and they page on their own cursor. The list is the API's
//! (`api::inventory_scans::findings_now` and `findings_page`, as
//! `GET /api/v1/inventory/reconciliation`), counted by kind above the page.

use crate::AppState;
use crate::api::inventory_scans::{findings_now, findings_page};
use crate::api::page::{DEFAULT_LIMIT, PageQuery, Paged};
use crate::auth::ReadRecords;
use crate::error::ApiError;
use crate::portal::Visitor;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use steward_core::inventory::FindingKind;

/// Every kind of finding, in the list's order, with what it means in words.
const KINDS: [(FindingKind, &str); 6] = [
    (FindingKind::Orphan, "Runs, but is not registered"),
    (
        FindingKind::NotRunning,
        "Registered for production, but runs nowhere a scan looked",
    ),
    (
        FindingKind::Unapproved,
        "Runs without a completed change that names that version",
    ),
    (
        FindingKind::InProductionWithoutChange,
        "Marked for production without a completed change",
    ),
    (
        FindingKind::ValidationExpired,
        "Runs with a validation that is missing or past due",
    ),
    (
        FindingKind::DigestMismatch,
        "The running artifact differs from the registered one",
    ),
];

fn meaning(kind: FindingKind) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, words)| words)
}

#[derive(Template)]
#[template(path = "reconciliation.html")]
struct FindingsPage {
    chrome: Chrome,
    counts: Vec<Count>,
    total: usize,
    rows: Vec<Row>,
    next: Option<String>,
}

struct Count {
    kind: &'static str,
    meaning: &'static str,
    count: usize,
}

struct Row {
    kind: &'static str,
    meaning: &'static str,
    model: Option<String>,
    version: String,
    deployment: String,
    detail: String,
}

/// The inventory reconciled against what runs, now, a page at a time, counted by kind.
#[utoipa::path(get, path = "/inventory/reconciliation", tag = "portal", params(PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "a page of the reconciliation's findings"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer may not read records"),
        (status = 422, description = "the cursor or limit is not valid: the page names it")))]
pub async fn reconciliation_page(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged, ApiError>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, page(&state, visitor, query).await)
}

async fn page(
    state: &AppState,
    visitor: Visitor,
    query: Result<Paged, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let Paged { page: request, .. } = query?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let findings = findings_now(state, &store).await?;
    let counts = (KINDS.iter())
        .map(|(kind, meaning)| Count {
            kind: kind.as_str(),
            meaning,
            count: findings.iter().filter(|f| f.kind == *kind).count(),
        })
        .collect();
    let total = findings.len();
    let page = findings_page(&request, findings)?;
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if request.limit() != DEFAULT_LIMIT {
            pairs.push(("limit", request.limit().to_string()));
        }
        pairs.push(("cursor", cursor.clone()));
        format!(
            "/inventory/reconciliation?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let page = FindingsPage {
        chrome: chrome(&viewer),
        counts,
        total,
        rows: (page.items.into_iter())
            .map(|f| Row {
                kind: f.kind.as_str(),
                meaning: meaning(f.kind),
                model: f.model,
                version: f.version.unwrap_or_default(),
                deployment: f.deployment.unwrap_or_default(),
                detail: f.detail,
            })
            .collect(),
        next,
    };
    render(StatusCode::OK, &page)
}
