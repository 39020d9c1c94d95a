//! Administration: accounts, privileged operations waiting for a second admin, targets, the
//! standard-change catalog, maintenance windows and freezes, and the policy set — each page for
//! those who may read it, each action for those who may take it.
//!
//! Every page and form calls the function the API's handler calls (`api::users::create_account`,
//! `api::admin::approve_operation`, `api::policy::evaluate_request`, …), so the portal and the
//! API cannot disagree, and a forged post meets the same permit and the same store checks. A
//! privileged write answers as the API's 202 does: the page says the operation waits for a
//! second admin and names it (`OP-n`); nothing on a page claims it applied. Notices after a
//! write (`?waiting=OP-n`, `?changed=<name>`) are read back from the store, never echoed from
//! the address, so a crafted link cannot make a page say something happened.

pub(super) mod catalog;
pub(super) mod pending;
pub(super) mod policies;
pub(super) mod targets;
pub(super) mod users;
pub(super) mod windows;

use super::Visitor;
use super::answer::{Chrome, answer, chrome, render};
use crate::AppState;
use crate::api::admin::{PendingView, operation, operations_page};
use crate::api::page::PageRequest;
use crate::auth::{
    DecidePrivileged, KeepCalendar, ManageCatalog, ManagePolicies, ManageTargets, ManageUsers,
    ReadPolicyInputs, ReadRecords, ReviewPrivileged,
};
use crate::error::ApiError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

/// A time as every administration page shows it: UTC, said so.
fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time that may not have happened yet (a last use, a decision).
fn when_or(at: Option<DateTime<Utc>>, otherwise: &str) -> String {
    at.map_or_else(|| otherwise.to_owned(), when)
}

/// What a page says after a write, read back from the store.
pub(super) struct Notice {
    /// `done` (applied), `waiting` (queued for a second admin) or `decided`.
    pub kind: &'static str,
    pub text: String,
    /// The operation a waiting or decided notice is about (`OP-n`), linked to the pending page.
    pub operation: Option<String>,
}

/// The notice for privileged operation `id`, as it stands in the store: waiting for a second
/// admin, or decided since. `None` when the viewer may not review operations or there is no
/// such operation in their tenant (a link made up by someone else says nothing).
async fn operation_notice(
    state: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
) -> Option<Notice> {
    let reviewer = caller.may::<ReviewPrivileged>(state).ok()?;
    let pending = operation(&reviewer, id).await.ok()?;
    let view = PendingView::new(&pending).ok()?;
    Some(match view.status.as_str() {
        "pending" => Notice {
            kind: "waiting",
            text: format!(
                "waiting for a second admin: {} ({}). It has no effect until another admin approves it.",
                view.id, view.summary
            ),
            operation: Some(view.id),
        },
        status => Notice {
            kind: "decided",
            text: format!(
                "{} ({}) was {status} by {}.",
                view.id,
                view.summary,
                view.decided_by.as_deref().unwrap_or("someone")
            ),
            operation: Some(view.id),
        },
    })
}

/// An empty query value (a form's blank field) is no value.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The link to the next page of a list, keeping the page size.
fn next_link(path: &str, request: &PageRequest, cursor: Option<&String>) -> Option<String> {
    let cursor = cursor?;
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if request.limit() != crate::api::page::DEFAULT_LIMIT {
        pairs.push(("limit", request.limit().to_string()));
    }
    pairs.push(("cursor", cursor.clone()));
    Some(format!(
        "{path}?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    ))
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct IndexPage {
    chrome: Chrome,
    links: Vec<AdminLink>,
    /// Operations waiting for a second admin (for those who review them): "3", "100+".
    waiting: Option<String>,
}

struct AdminLink {
    href: &'static str,
    id: &'static str,
    label: &'static str,
    about: &'static str,
    /// What the viewer may do there beyond reading.
    actions: Vec<&'static str>,
}

/// Administration: links to the pages the viewer may open, saying what they may do on each.
#[utoipa::path(get, path = "/admin", tag = "portal", responses(
    (status = 200, content_type = "text/html", body = String, description = "the administration index"),
    (status = 401, description = "signed out: the sign-in form"),
    (status = 403, description = "the viewer may not read the tenant's records")))]
pub async fn index(State(state): State<AppState>, visitor: Visitor) -> Response {
    let html = visitor.html;
    answer(&state, html, show_index(&state, visitor).await)
}

async fn show_index(state: &AppState, visitor: Visitor) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let caller = &viewer.caller;
    caller.may::<ReadRecords>(state)?;
    let may = |yes: bool, action: &'static str| yes.then_some(action);
    let links = vec![
        AdminLink {
            href: "/admin/users",
            id: "admin-users",
            label: "Users",
            about: "accounts, their roles, status and last use",
            actions: [
                may(caller.holds::<ManageUsers>(), "create accounts"),
                may(caller.holds::<ManageUsers>(), "set roles, disable, enable"),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
        AdminLink {
            href: "/admin/pending",
            id: "admin-pending",
            label: "Waiting for a second admin",
            about: "privileged operations (dual control), waiting and decided",
            actions: may(caller.holds::<DecidePrivileged>(), "approve or reject")
                .into_iter()
                .collect(),
        },
        AdminLink {
            href: "/admin/targets",
            id: "admin-targets",
            label: "Targets",
            about: "what changes touch: owner, environment, criticality, regulated data",
            actions: may(caller.holds::<ManageTargets>(), "register targets")
                .into_iter()
                .collect(),
        },
        AdminLink {
            href: "/admin/catalog",
            id: "admin-catalog",
            label: "Standard-change catalog",
            about: "pre-approved templates a standard change matches",
            actions: may(
                caller.holds::<ManageCatalog>(),
                "ask for a new or changed item",
            )
            .into_iter()
            .collect(),
        },
        AdminLink {
            href: "/admin/windows",
            id: "admin-windows",
            label: "Maintenance windows and freezes",
            about: "when changes may run, and when they may not",
            actions: may(caller.holds::<KeepCalendar>(), "create windows and freezes")
                .into_iter()
                .collect(),
        },
        AdminLink {
            href: "/admin/policies",
            id: "admin-policies",
            label: "Policies",
            about: "the Rego rules every change is judged by",
            actions: [
                Some("test a change against them"),
                may(
                    caller.holds::<ReadPolicyInputs>(),
                    "backtest a candidate module",
                ),
                may(
                    caller.holds::<ManagePolicies>(),
                    "write modules (steward policy module put; a second admin approves)",
                ),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
    ];
    let links = links
        .into_iter()
        .filter(|l| l.href != "/admin/pending" || caller.holds::<ReviewPrivileged>())
        .collect();
    let waiting = match caller.may::<ReviewPrivileged>(state) {
        Ok(reviewer) => {
            let first = PageRequest::default();
            let page = operations_page(&reviewer, Some("pending"), &first).await?;
            Some(if page.next_cursor.is_some() {
                format!("{}+", page.items.len())
            } else {
                page.items.len().to_string()
            })
        }
        Err(_) => None,
    };
    render(
        StatusCode::OK,
        &IndexPage {
            chrome: chrome(&viewer),
            links,
            waiting,
        },
    )
}

/// The roles an account may hold, in the order the forms list them.
fn role_names() -> Vec<&'static str> {
    steward_core::Role::ALL.iter().map(|r| r.as_str()).collect()
}

/// A form's fields as pairs (browsers repeat a key once per checked box, which
/// `serde_urlencoded` does not read into a struct).
fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))
}
