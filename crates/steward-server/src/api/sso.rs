//! The sign-in routes of single sign-on: `GET /auth/login`, `GET /auth/callback`,
//! `GET /auth/logout`.
//!
//! Browser-facing: they answer with redirects and cookies, and a refusal is a short HTML page
//! when the browser asks for HTML (the same JSON error as every route otherwise). The work is
//! `auth::signin`'s (records, accounts, sessions) and `sso`'s (the provider); these handlers
//! parse, call, and set cookies.

use super::body::QueryParams;
use crate::AppState;
use crate::auth::signin;
use crate::error::{ApiError, ErrorBody};
use crate::sso::{self, SessionCookie, Sso, cookie_value};
use axum::Json;
use axum::extract::State;
use axum::http::header::{ACCEPT, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use steward_core::TenantId;
use utoipa::{IntoParams, ToSchema};

/// Where to sign in, and where to go afterwards.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// The tenant to sign in to, when your groups give you roles in several.
    pub tenant: Option<String>,
    /// A path on this server to open after signing in (default `/`); anything else is refused.
    pub return_to: Option<String>,
}

/// What the identity provider sends the browser back with.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The issuer (RFC 9207), when the provider says it.
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Where to go after signing out.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogoutQuery {
    /// A path on this server to open afterwards; without it the answer is JSON.
    pub return_to: Option<String>,
}

/// The answer to a sign-out without `return_to`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedOutView {
    /// Whether a session was ended (false: there was none).
    pub signed_out: bool,
}

fn configured(state: &AppState) -> Result<&Sso, ApiError> {
    state.sso.as_deref().ok_or_else(|| {
        ApiError::NotFound(
            "single sign-on is not configured: start the server with --oidc-issuer, --oidc-client-id and --oidc-client-secret"
                .into(),
        )
    })
}

fn return_path(return_to: Option<&str>) -> Result<String, ApiError> {
    match return_to {
        None => Ok("/".to_owned()),
        Some(path) => sso::local_path(path).ok_or_else(|| {
            ApiError::invalid_field(
                "return_to",
                "must be a path on this server, starting with a single '/'",
            )
        }),
    }
}

fn see_other(location: &str, cookies: &[String]) -> Result<Response, ApiError> {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(location).map_err(anyhow::Error::from)?,
    );
    for cookie in cookies {
        headers.append(
            SET_COOKIE,
            HeaderValue::from_str(cookie).map_err(anyhow::Error::from)?,
        );
    }
    Ok(response)
}

/// Sign in through the identity provider: redirects there (authorization code flow with PKCE).
#[utoipa::path(get, path = "/auth/login", tag = "auth", params(LoginQuery), responses(
    (status = 303, description = "to the identity provider, with the steward_login cookie",
        headers(("Location" = String), ("Set-Cookie" = String))),
    (status = 404, body = ErrorBody, description = "single sign-on is not configured"),
    (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryResult<LoginQuery>,
) -> Response {
    browser_answer(&headers, start(&state, &headers, query.0).await).await
}

async fn start(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<LoginQuery, ApiError>,
) -> Result<Response, ApiError> {
    let sso = configured(state)?;
    let query = query?;
    let tenant = query
        .tenant
        .as_deref()
        .map(|t| TenantId::parse(t).map_err(|e| ApiError::invalid_field("tenant", e.to_string())))
        .transpose()?;
    let return_to = return_path(query.return_to.as_deref())?;
    let started = signin::begin(
        state,
        sso,
        tenant,
        return_to,
        cookie_value(headers, state.public.login_cookie()),
    )
    .await?;
    let cookie = SessionCookie {
        name: state.public.login_cookie(),
        value: &started.browser,
        path: "/auth",
        max_age_seconds: sso::LOGIN_TIMEOUT.num_seconds(),
        secure: state.public.secure_cookies(),
    };
    see_other(&started.url, &[cookie.header()])
}

/// Where the identity provider sends the browser back: finishes the sign-in and opens a session.
#[utoipa::path(get, path = "/auth/callback", tag = "auth", params(CallbackQuery), responses(
    (status = 303, description = "signed in: to the page asked for, with the steward_session cookie",
        headers(("Location" = String), ("Set-Cookie" = String))),
    (status = 400, body = ErrorBody, description = "unknown, replayed or expired sign-in"),
    (status = 401, body = ErrorBody, description = "the ID token was refused"),
    (status = 403, body = ErrorBody, description = "no role, or the account may not sign in"),
    (status = 404, body = ErrorBody, description = "single sign-on is not configured"),
    (status = 409, body = ErrorBody, description = "the groups reach several tenants: choose one")))]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryResult<CallbackQuery>,
) -> Response {
    browser_answer(&headers, finish(&state, &headers, query.0).await).await
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<CallbackQuery, ApiError>,
) -> Result<Response, ApiError> {
    let sso = configured(state)?;
    let query = query?;
    let browser = cookie_value(headers, state.public.login_cookie());
    if let Some(error) = &query.error {
        let description = query
            .error_description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(ApiError::Forbidden(format!(
            "the identity provider did not sign you in: {error}{description}"
        )));
    }
    if let Some(iss) = query
        .iss
        .as_ref()
        .filter(|iss| **iss != sso.config().issuer)
    {
        return Err(ApiError::BadRequest(format!(
            "this sign-in came back from {iss}, not from Steward's identity provider: start again at /auth/login"
        )));
    }
    let (Some(code), Some(state_param)) = (&query.code, &query.state) else {
        return Err(ApiError::BadRequest(
            "the identity provider's answer lacks `code` or `state`: start again at /auth/login"
                .into(),
        ));
    };
    let signed_in = signin::finish(state, sso, code, state_param, browser).await?;
    tracing::info!(user = %signed_in.principal.name, tenant = %signed_in.principal.tenant, "signed in through the identity provider");
    let session = SessionCookie {
        name: state.public.session_cookie(),
        value: &signed_in.session,
        path: "/",
        max_age_seconds: (signed_in.expires_at - state.clock.now()).num_seconds(),
        secure: state.public.secure_cookies(),
    };
    see_other(
        &signed_in.return_to,
        &[
            session.header(),
            sso::clear_cookie(
                state.public.login_cookie(),
                "/auth",
                state.public.secure_cookies(),
            ),
        ],
    )
}

/// Sign out: ends the session (if any) and deletes its cookie.
#[utoipa::path(get, path = "/auth/logout", tag = "auth", params(LogoutQuery), responses(
    (status = 200, body = SignedOutView, headers(("Set-Cookie" = String))),
    (status = 303, description = "to `return_to`", headers(("Location" = String), ("Set-Cookie" = String))),
    (status = 422, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryResult<LogoutQuery>,
) -> Response {
    browser_answer(&headers, sign_out(&state, &headers, query.0).await).await
}

async fn sign_out(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<LogoutQuery, ApiError>,
) -> Result<Response, ApiError> {
    let query = query?;
    let return_to = query
        .return_to
        .as_deref()
        .map(|path| return_path(Some(path)))
        .transpose()?;
    let signed_out =
        signin::sign_out(state, cookie_value(headers, state.public.session_cookie())).await?;
    let clear = sso::clear_cookie(
        state.public.session_cookie(),
        "/",
        state.public.secure_cookies(),
    );
    match return_to {
        Some(path) => see_other(&path, &[clear]),
        None => {
            let mut response = Json(SignedOutView { signed_out }).into_response();
            response.headers_mut().append(
                SET_COOKIE,
                HeaderValue::from_str(&clear).map_err(anyhow::Error::from)?,
            );
            Ok(response)
        }
    }
}

/// Query parameters whose parse error is answered like the handler's other errors (as a page
/// for a browser), rather than by the extractor.
#[derive(Debug)]
pub struct QueryResult<T>(Result<T, ApiError>);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for QueryResult<T>
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(QueryResult(
            QueryParams::<T>::from_request_parts(parts, state)
                .await
                .map(|q| q.0),
        ))
    }
}

/// The handler's answer; a refusal becomes a short HTML page when the browser asks for HTML.
async fn browser_answer(headers: &HeaderMap, result: Result<Response, ApiError>) -> Response {
    let error = match result {
        Ok(response) => return response,
        Err(error) => error,
    };
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let response = error.into_response();
    if !wants_html {
        return response;
    }
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = parsed["error"].as_str().unwrap_or("the sign-in failed");
    let choices: String = parsed["details"]["sign_in"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .filter_map(|l| l.as_str())
                .map(|l| format!("<li><a href=\"{0}\">{0}</a></li>", escape(l)))
                .collect()
        })
        .unwrap_or_default();
    let choices = if choices.is_empty() {
        "<p><a href=\"/auth/login\">Sign in again</a></p>".to_owned()
    } else {
        format!("<ul>{choices}</ul>")
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Steward: sign-in</title></head>\
         <body><h1>Steward could not sign you in</h1><p>{}</p>{choices}</body></html>",
        escape(message)
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
