//! The web portal: server-rendered pages for the people who never open a terminal, on the same
//! port as the API.
//!
//! Pages are askama templates (`crates/steward-server/templates/`, checked at compile time,
//! HTML-escaped by default) and one stylesheet served by the binary (`/static/portal.css`);
//! nothing is fetched from the internet. A handler has the API's shape — parse, authorize with
//! `caller.may::<P>(&state)`, call the same function the API calls, render a view — so the
//! portal and the API never disagree: a decision in the portal is
//! `api::changes::decide_change`, as `POST /api/v1/changes/{id}/approve` is.
//!
//! Who is viewing comes from the `steward_session` cookie (opened by the sign-in form at `/`
//! with an API token, or by single sign-on), or from a bearer token (scripts, the
//! authorization-matrix test). Every form carries a CSRF token bound to the session
//! (`csrf`); a write carried by the cookie must also name Steward's own `Origin` (checked by
//! the `Caller` extractor). A bearer token is no ambient credential — a browser never attaches
//! one by itself — so a request authenticated by one needs neither.
//!
//! Answers are HTML (`text/html; charset=utf-8`) for browsers; a refusal is an HTML page when
//! the request accepts HTML, and the API's JSON error otherwise (`answer`). The routes are
//! documented in the OpenAPI document under the `portal` tag, so the authorization matrix
//! (which derives its route list from that document) has a row for each.

mod admin;
mod answer;
mod assets;
mod audit;
mod calendar;
mod change_form;
mod change_list;
mod change_record;
mod changes;
mod csrf;
mod dashboard;
mod home;
mod incident_list;
mod incidents;
mod inventory;
mod signin;

pub(crate) use answer::not_found_page;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::sso::cookie_value;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The portal's routes, documented under the `portal` tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signin::index))
        .routes(routes!(signin::sign_in))
        .routes(routes!(signin::sign_out))
        .routes(routes!(change_list::change_list))
        .routes(routes!(changes::change_page))
        .routes(routes!(changes::decision))
        .routes(routes!(changes::submit_draft))
        .routes(routes!(change_form::new_change, change_form::create))
        .routes(routes!(change_form::live_preview))
        .routes(routes!(audit::audit_list))
        .routes(routes!(audit::export::audit_export))
        .routes(routes!(audit::event::audit_event))
        .routes(routes!(calendar::calendar))
        .routes(routes!(dashboard::dashboard))
        .routes(routes!(incident_list::incident_list))
        .routes(routes!(incidents::incident_page))
        .routes(routes!(incidents::approve_containment))
        .routes(routes!(inventory::model_list))
        .routes(routes!(inventory::model::model_page))
        .routes(routes!(inventory::reconciliation::reconciliation_page))
        .routes(routes!(admin::index))
        .routes(routes!(admin::users::users_page, admin::users::create_user))
        .routes(routes!(admin::users::set_roles))
        .routes(routes!(admin::users::disable_user))
        .routes(routes!(admin::users::enable_user))
        .routes(routes!(admin::pending::pending_page))
        .routes(routes!(admin::pending::approve))
        .routes(routes!(admin::pending::reject))
        .routes(routes!(
            admin::targets::targets_page,
            admin::targets::create_target
        ))
        .routes(routes!(
            admin::catalog::catalog_page,
            admin::catalog::request_item
        ))
        .routes(routes!(
            admin::windows::windows_page,
            admin::windows::create_window
        ))
        .routes(routes!(admin::policies::policies_page))
        .routes(routes!(admin::policies::test))
        .routes(routes!(admin::policies::backtest))
        .routes(routes!(assets::stylesheet))
        .routes(routes!(assets::script))
        .layer(axum::middleware::map_response(defensive_headers))
}

/// What every portal answer tells the browser: load nothing from elsewhere and run no inline
/// script (the pages have none), never be framed (clickjacking), never sniff a type, send no
/// path in `Referer` to other sites, and keep no copy of a page (after sign-out the back button
/// must not show a page, or its CSRF token, from the cache).
async fn defensive_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    // The stylesheet says how long it may be kept; pages are kept nowhere.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(header::HeaderValue::from_static("no-store"));
    response
}

/// Whether the request asks for HTML (a browser navigating or posting a form).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Who is looking at a page, as far as the request says.
#[derive(Debug)]
pub(crate) struct Visitor {
    /// Refusals are rendered as pages.
    html: bool,
    /// `Ok(None)`: no credential at all (signed out). `Err`: a credential that opens nothing
    /// (a session that ended, an unknown token, a session write from another origin).
    viewer: Result<Option<Viewer>, ApiError>,
}

/// An authenticated viewer.
#[derive(Debug)]
pub(crate) struct Viewer {
    caller: Caller,
    /// The CSRF token of the session the request carries (every form repeats it); `None` when
    /// a bearer token authenticated the request.
    csrf: Option<String>,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Visitor, std::convert::Infallible> {
        let html = wants_html(&parts.headers);
        // Only a bearer credential is the API's; a proxy's Basic auth leaves the session in charge.
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer "));
        let session =
            cookie_value(&parts.headers, state.public.session_cookie()).map(str::to_owned);
        let viewer = if !bearer && session.is_none() {
            Ok(None)
        } else {
            match Caller::from_request_parts(parts, state).await {
                Ok(caller) => Ok(Some(Viewer {
                    caller,
                    csrf: if bearer {
                        None
                    } else {
                        session.as_deref().map(csrf::token_for)
                    },
                })),
                Err(error) => Err(error),
            }
        };
        Ok(Visitor { html, viewer })
    }
}

impl Visitor {
    /// The viewer, or 401 saying how to sign in.
    fn signed_in(self) -> Result<Viewer, ApiError> {
        self.viewer?.ok_or_else(|| {
            ApiError::Unauthorized(
                "sign in first: paste your API token into the form at / (or use single sign-on), or send `Authorization: Bearer <token>`".into(),
            )
        })
    }
}

impl Viewer {
    /// Refuses a form whose CSRF field is not this session's (403); a bearer-token request
    /// passes (see the module's note).
    fn check_form(&self, sent: Option<&str>) -> Result<(), ApiError> {
        match &self.csrf {
            None => Ok(()),
            Some(expected) if sent.is_some_and(|sent| csrf::matches(expected, sent)) => Ok(()),
            Some(_) => Err(ApiError::Forbidden(csrf::REFUSAL.into())),
        }
    }

    /// The value every form's hidden `csrf` field carries (empty for bearer requests).
    fn csrf_field(&self) -> String {
        self.csrf.clone().unwrap_or_default()
    }
}

/// Whether a form came as JSON (scripts, the authorization matrix) rather than form-encoded.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"))
}

/// A form's fields: `application/x-www-form-urlencoded` as browsers post them, or the same
/// fields as JSON (scripts and the authorization matrix).
fn parse_form<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if is_json(headers) {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("the form's JSON is not valid: {e}")))
    } else {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))
    }
}
