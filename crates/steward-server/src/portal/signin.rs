//! Signing in and out, and the page at `/`: the sign-in form for a visitor, what waits for
//! them once signed in.

use super::answer::{Chrome, answer, render};
use super::{Visitor, home, parse_form};
use crate::AppState;
use crate::auth::session;
use crate::auth::signin;
use crate::error::ApiError;
use crate::sso::{SessionCookie, clear_cookie, cookie_value};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

/// The sign-in form (also the page a 401 shows).
#[derive(Template)]
#[template(path = "signin.html")]
pub(super) struct SignInPage {
    chrome: Chrome,
    /// Why the last attempt, or the session, ended.
    problem: Option<String>,
    /// Offer single sign-on (an identity provider is configured).
    single_sign_on: bool,
}

impl SignInPage {
    pub(super) fn new(state: &AppState, problem: Option<String>) -> SignInPage {
        SignInPage {
            chrome: Chrome::default(),
            problem,
            single_sign_on: state.sso.is_some(),
        }
    }
}

/// What the sign-in form posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignInForm {
    /// An API token (`stw_…`).
    #[serde(default)]
    pub token: String,
}

/// What the sign-out form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SignOutForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// A 303 to `location`, setting `cookies`.
pub(super) fn see_other(location: &str, cookies: &[String]) -> Result<Response, ApiError> {
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

/// Signed out: the sign-in form. Signed in: what waits for you (approvals you may give, your
/// open changes, incidents you own).
#[utoipa::path(get, path = "/", tag = "portal", responses(
    (status = 200, content_type = "text/html", body = String,
        description = "the home page, or the sign-in form when signed out")))]
pub async fn index(State(state): State<AppState>, visitor: Visitor) -> Response {
    let html = visitor.html;
    let result = match visitor.viewer {
        Ok(Some(viewer)) => home::page(&state, &viewer).await,
        Ok(None) => render(StatusCode::OK, &SignInPage::new(&state, None)),
        // A session that ended, or a token that opens nothing: the form, saying why, and the
        // stale cookie gone.
        Err(ApiError::Unauthorized(why)) => {
            render(StatusCode::OK, &SignInPage::new(&state, Some(why))).map(|mut page| {
                if let Ok(clear) = HeaderValue::from_str(&clear_cookie(
                    state.public.session_cookie(),
                    "/",
                    state.public.secure_cookies(),
                )) {
                    page.headers_mut().append(SET_COOKIE, clear);
                }
                page
            })
        }
        Err(other) => Err(other),
    };
    answer(&state, html, result)
}

/// Sign in with an API token: opens a session (the `steward_session` cookie: HttpOnly,
/// SameSite=Lax, Secure under https, at most 12 hours) and goes to `/`. A token that opens
/// nothing (unknown, expired, revoked, a disabled account) is answered 401 saying why.
#[utoipa::path(post, path = "/signin", tag = "portal",
    request_body(content = SignInForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "signed in: to /, with the steward_session cookie",
            headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 401, content_type = "text/html", body = String,
            description = "the sign-in form, saying why the token was refused"),
        (status = 403, description = "the form was posted from another site")))]
pub async fn sign_in(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&state, visitor.html, open(&state, &headers, &body).await)
}

async fn open(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    // Login CSRF: a page elsewhere must not sign this browser in as someone else. Browsers
    // send `Origin` with every form post; a script without one may sign in.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok())
        && !state.public.accepts(origin, host)
    {
        return Err(ApiError::Forbidden(format!(
            "a sign-in from {origin} is refused: sign in on Steward's own page ({}/; set --public-url to the address browsers use)",
            state.public.origin()
        )));
    }
    let form: SignInForm = parse_form(headers, body)?;
    if form.token.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "paste your API token (it starts with stw_) into the form to sign in".into(),
        ));
    }
    let opened = session::open_with_token(state, &form.token).await?;
    tracing::info!(user = %opened.principal.name, tenant = %opened.principal.tenant, "signed in to the portal with a token");
    // A browser signing in again leaves no earlier session behind (a shared computer).
    if let Some(earlier) = crate::sso::cookie_value(headers, state.public.session_cookie()) {
        session::end(state, earlier).await?;
    }
    let cookie = SessionCookie {
        name: state.public.session_cookie(),
        value: &opened.session,
        path: "/",
        // Never longer than the session (which never outlives its token).
        max_age_seconds: opened.lifetime.num_seconds().max(0),
        secure: state.public.secure_cookies(),
    };
    see_other("/", &[cookie.header()])
}

/// Sign out: ends the session (the form's CSRF token must be the session's), clears the
/// cookie, and goes to `/`.
#[utoipa::path(post, path = "/signout", tag = "portal",
    request_body(content = SignOutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "signed out: to /, the cookie cleared",
            headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 403, description = "the form's CSRF token is missing or not this session's")))]
pub async fn sign_out(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    answer(&state, html, close(&state, visitor, &headers, &body).await)
}

async fn close(
    state: &AppState,
    visitor: Visitor,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let clear = clear_cookie(
        state.public.session_cookie(),
        "/",
        state.public.secure_cookies(),
    );
    let viewer = match visitor.viewer {
        Ok(Some(viewer)) => viewer,
        // Nothing to end (no session, or one that already ended): just forget the cookie.
        Ok(None) | Err(ApiError::Unauthorized(_)) => return see_other("/", &[clear]),
        Err(other) => return Err(other),
    };
    let form: SignOutForm = parse_form(headers, body).unwrap_or_default();
    viewer.check_form(form.csrf.as_deref())?;
    if viewer.csrf.is_some() {
        signin::sign_out(state, cookie_value(headers, state.public.session_cookie())).await?;
    }
    see_other("/", &[clear])
}
