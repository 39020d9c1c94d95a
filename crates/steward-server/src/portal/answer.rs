//! How the portal answers: pages rendered from templates, and refusals as pages for browsers
//! (the API's JSON error for everyone else).

use super::Viewer;
use super::signin::SignInPage;
use crate::AppState;
use crate::error::ApiError;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// What every page shows around its content: who is signed in, and the session's CSRF token
/// for the sign-out form.
#[derive(Debug, Default)]
pub(super) struct Chrome {
    /// `name (tenant)`, when someone is signed in.
    pub user: Option<String>,
    pub csrf: String,
    /// The pages the viewer's roles open, in the order the navigation lists them.
    pub nav: Vec<NavLink>,
}

/// One entry of the navigation bar.
#[derive(Debug)]
pub(super) struct NavLink {
    pub href: &'static str,
    /// The element id browser tests click (`nav-…`).
    pub id: &'static str,
    pub label: &'static str,
}

/// The chrome of a page for `viewer`: a page they may not open gets no link (its URL still
/// answers 403, which is the rule; the navigation only saves a wasted click).
pub(super) fn chrome(viewer: &Viewer) -> Chrome {
    use crate::auth::{ReadAuditLog, ReadRecords, SubmitChanges};
    let caller = &viewer.caller;
    let principal = caller.principal();
    let reads = caller.holds::<ReadRecords>();
    let pages = [
        ("/", "nav-home", "Waiting for you", true),
        ("/changes", "nav-changes", "Changes", reads),
        (
            "/changes/new",
            "nav-new-change",
            "New change",
            caller.holds::<SubmitChanges>(),
        ),
        ("/calendar", "nav-calendar", "Calendar", reads),
        ("/models", "nav-models", "Inventory", reads),
        ("/incidents", "nav-incidents", "Incidents", reads),
        ("/dashboard", "nav-dashboard", "Dashboard", reads),
        (
            "/audit",
            "nav-audit",
            "Audit log",
            caller.holds::<ReadAuditLog>(),
        ),
        ("/admin", "nav-admin", "Administration", reads),
    ];
    Chrome {
        user: Some(format!("{} ({})", principal.name, principal.tenant)),
        csrf: viewer.csrf_field(),
        nav: pages
            .into_iter()
            .filter(|(.., open)| *open)
            .map(|(href, id, label, _)| NavLink { href, id, label })
            .collect(),
    }
}

/// A refusal as a page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: &'static str,
    message: String,
}

/// `page` rendered as `text/html; charset=utf-8` with `status`.
pub(super) fn render(status: StatusCode, page: &impl Template) -> Result<Response, ApiError> {
    let html = page
        .render()
        .map_err(|e| anyhow::anyhow!("rendering a portal page: {e}"))?;
    Ok((status, Html(html)).into_response())
}

/// The answer to a portal request: the page, or the refusal — as a page when the request
/// accepts HTML (401 is the sign-in page saying why), as the API's JSON error otherwise.
pub(super) fn answer(state: &AppState, html: bool, result: Result<Response, ApiError>) -> Response {
    let error = match result {
        Ok(response) => return response,
        Err(error) => error,
    };
    if !html {
        return error.into_response();
    }
    let message = match &error {
        ApiError::Internal(_) => "something went wrong on Steward's side: the server logged the cause; try again, or tell your admin".to_owned(),
        // Name each bad field, as the API's `details` does.
        ApiError::Invalid(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    // The JSON answer decides the status (and logs an internal error's cause once).
    let status = error.into_response().status();
    let page = if status == StatusCode::UNAUTHORIZED {
        render(status, &SignInPage::new(state, Some(message)))
    } else {
        let heading = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::CONFLICT => "Not now",
            s if s.is_client_error() => "That did not work",
            _ => "Steward could not answer",
        };
        render(
            status,
            &ErrorPage {
                chrome: Chrome::default(),
                heading,
                message,
            },
        )
    };
    page.unwrap_or_else(IntoResponse::into_response)
}

/// The page for a path that is no page (outside `/api/`, where 404s stay JSON).
pub(crate) fn not_found_page(path: &str) -> Response {
    let page = ErrorPage {
        chrome: Chrome::default(),
        heading: "Not found",
        message: format!("there is no page at {path}: start from what is waiting for you"),
    };
    render(StatusCode::NOT_FOUND, &page).unwrap_or_else(IntoResponse::into_response)
}
