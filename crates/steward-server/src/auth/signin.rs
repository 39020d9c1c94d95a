//! Authentication through single sign-on: portal sessions, bearer JWTs, and the sign-in that
//! turns a provider identity into a Steward account.
//!
//! A child of `auth`, because it opens the store's authentication tables (sign-ins under way,
//! sessions, the accounts sign-ins provision), which happens before anyone is authorized. It
//! holds no other way to the store. What it does on each path:
//!
//! - **Sign-in** (`/auth/login` → provider → `/auth/callback`): [`begin`] records the sign-in
//!   under way (state → nonce, PKCE verifier, tenant, return path; bound to the browser's
//!   `steward_login` cookie) and answers the provider's URL; [`finish`] takes it back (once: a
//!   replayed state finds nothing), lets [`Sso::finish`] exchange the code and verify the ID
//!   token, decides tenant and roles from the groups (`steward_core::sso::resolve`), provisions
//!   or updates the account, and opens a session that ends with the ID token (at most 12 h).
//! - **Session cookie** on any request: the account as it is now in the database (roles, status).
//! - **Bearer JWT** on any request: verified by [`Sso::verify_bearer`], then provisioned like a
//!   sign-in (without a session), so its roles are those of its groups at this request.

use super::{Caller, hash_token};
use crate::AppState;
use crate::error::ApiError;
use crate::public_address::PublicAddress;
use crate::sso::{self, Sso, VerifiedIdentity, cookie_value, looks_like_jwt};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde_json::json;
use steward_core::TenantId;
use steward_core::sso::SignInRefused;
use steward_store::Principal;
use steward_store::sso::{NewSession, PendingLogin, SessionCheck, SsoAccount};

/// The caller, when the request authenticates through a session or single sign-on: a bearer
/// JWT (when a provider is configured), or a session cookie without an `Authorization` header
/// (opened by single sign-on or by the portal's token sign-in). `None` leaves the request to the
/// API-token path.
pub(super) async fn caller(parts: &Parts, state: &AppState) -> Option<Result<Caller, ApiError>> {
    match parts.headers.get(axum::http::header::AUTHORIZATION) {
        Some(value) => {
            let sso = state.sso.as_deref()?;
            let token = value.to_str().ok()?.strip_prefix("Bearer ")?.trim();
            if !looks_like_jwt(token) {
                return None;
            }
            Some(from_jwt(state, sso, token).await)
        }
        None => {
            let session = cookie_value(&parts.headers, state.public.session_cookie())?;
            Some(from_session(state, parts, session).await)
        }
    }
}

async fn from_jwt(state: &AppState, sso: &Sso, token: &str) -> Result<Caller, ApiError> {
    let identity = sso.verify_bearer(token, state.clock.now()).await?;
    match establish(state, &identity, None, None).await? {
        Ok(principal) => Ok(Caller(principal)),
        Err(SignInRefused::ChooseTenant(tenants)) => Err(ApiError::Forbidden(format!(
            "this token's groups give roles in several tenants ({}): a workload's groups must map into exactly one",
            names(&tenants)
        ))),
        Err(SignInRefused::Disabled(name)) => Err(ApiError::Unauthorized(format!(
            "account disabled: an admin disabled {name} (`steward user enable {name}` restores it)"
        ))),
        Err(refused) => Err(refusal(refused)),
    }
}

async fn from_session(state: &AppState, parts: &Parts, session: &str) -> Result<Caller, ApiError> {
    refuse_cross_origin(&state.public, parts)?;
    match state
        .store
        .0
        .principal_for_session(&hash_token(session), state.clock.now())
        .await?
    {
        SessionCheck::Valid(principal) => Ok(Caller(principal)),
        SessionCheck::Disabled(name) => Err(ApiError::Unauthorized(format!(
            "account disabled: an admin disabled {name} (`steward user enable {name}` restores it)"
        ))),
        SessionCheck::Unknown => Err(ApiError::Unauthorized(match state.sso {
            Some(_) => "your session has ended (it lasts as long as the identity provider's sign-in, at most 12 hours): sign in again at /auth/login".into(),
            None => "your session has ended (it lasts at most 12 hours): sign in again at /".into(),
        })),
    }
}

/// A request that changes something, carried by the session cookie, must come from Steward's own
/// pages: its `Origin` is Steward's public origin. Browsers send `Origin` with every request that
/// changes something, so one without it (or with another) is refused. (`SameSite=Lax` already
/// keeps other sites' requests from carrying the cookie; this also covers sibling subdomains,
/// which count as the same site, and a page that posts a `text/plain` form.)
fn refuse_cross_origin(public: &PublicAddress, parts: &Parts) -> Result<(), ApiError> {
    let safe = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if safe {
        return Ok(());
    }
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let public_origin = public.origin();
    match header(axum::http::header::ORIGIN) {
        Some(origin) if public.accepts(origin, header(axum::http::header::HOST)) => Ok(()),
        Some(origin) => Err(ApiError::Forbidden(format!(
            "a request from {origin} may not act with a Steward session: only Steward's own pages ({public_origin}; set --public-url to the address browsers use) may"
        ))),
        None => Err(ApiError::Forbidden(format!(
            "a change made with a Steward session must say where it comes from (an Origin header of {public_origin}): browsers send it; scripts use an API token"
        ))),
    }
}

/// Decides the tenant and roles `identity`'s groups give (in `chosen`, if the person named one)
/// and brings the account up to date, opening `session` if given. The inner `Err` is a refusal
/// the person can act on.
async fn establish(
    state: &AppState,
    identity: &VerifiedIdentity,
    chosen: Option<&TenantId>,
    session: Option<&NewSession>,
) -> Result<Result<Principal, SignInRefused>, ApiError> {
    let store = &state.store.0;
    let grants = store.group_grants(&identity.groups).await?;
    let resolved = match steward_core::sso::resolve(&grants, chosen) {
        Ok(resolved) => resolved,
        Err(refused) => return Ok(Err(refused)),
    };
    let name = match identity.account_name() {
        Ok(name) => name,
        Err(refused) => return Ok(Err(refused)),
    };
    if name.as_str() == crate::execution::SYSTEM_ACTOR {
        return Ok(Err(SignInRefused::LocalAccount(name)));
    }
    let account = SsoAccount {
        tenant: resolved.tenant,
        name,
        identity: identity.identity.clone(),
        roles: resolved.roles,
        groups: resolved.groups,
    };
    Ok(store.sign_in(&account, session, state.clock.now()).await?)
}

fn names(tenants: &[TenantId]) -> String {
    tenants
        .iter()
        .map(TenantId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A sign-in refusal as an answer: choosing among tenants is a 409 listing them, the rest 403.
fn refusal(refused: SignInRefused) -> ApiError {
    match &refused {
        SignInRefused::ChooseTenant(tenants) => ApiError::Conflict {
            message: refused.to_string(),
            details: json!({
                "tenants": tenants,
                "sign_in": tenants.iter().map(|t| format!("/auth/login?tenant={t}")).collect::<Vec<_>>(),
            }),
        },
        _ => ApiError::Forbidden(refused.to_string()),
    }
}

/// A random value for a cookie: 256 bits from the OS, hex.
pub(super) fn random_value() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(steward_audit::hex::encode(&bytes))
}

/// A sign-in to start: where to send the browser, and its `steward_login` cookie value.
#[derive(Debug)]
pub(crate) struct Started {
    pub url: String,
    pub browser: String,
}

/// Records a sign-in under way and answers the provider's authorization URL. `browser` is the
/// `steward_login` cookie the browser already has (kept, so two tabs signing in at once both
/// finish), or a new one.
pub(crate) async fn begin(
    state: &AppState,
    sso: &Sso,
    tenant: Option<TenantId>,
    return_to: String,
    browser: Option<&str>,
) -> Result<Started, ApiError> {
    let authorization = sso.authorization().await?;
    let browser = match browser {
        Some(existing)
            if existing.len() == 64 && existing.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            existing.to_owned()
        }
        _ => random_value()?,
    };
    let now = state.clock.now();
    let login = PendingLogin {
        browser_hash: hash_token(&browser),
        nonce: authorization.nonce.clone(),
        pkce_verifier: authorization.pkce_verifier.clone(),
        tenant,
        return_to,
        expires_at: now + sso::LOGIN_TIMEOUT,
    };
    state
        .store
        .0
        .begin_login(&hash_token(&authorization.state), &login, now)
        .await?;
    Ok(Started {
        url: authorization.url,
        browser,
    })
}

/// A finished sign-in: who, the session cookie's value and end, and where to go.
pub(crate) struct SignedIn {
    pub principal: Principal,
    pub session: String,
    pub expires_at: DateTime<Utc>,
    pub return_to: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("principal", &self.principal)
            .field("expires_at", &self.expires_at)
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// Finishes the sign-in `state_param` names, once, in the browser that started it.
pub(crate) async fn finish(
    state: &AppState,
    sso: &Sso,
    code: &str,
    state_param: &str,
    browser: Option<&str>,
) -> Result<SignedIn, ApiError> {
    let now = state.clock.now();
    let pending = state
        .store
        .0
        .take_login(&hash_token(state_param), now)
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest(
                "this sign-in is unknown, was already used, or took longer than 10 minutes: start again at /auth/login"
                    .into(),
            )
        })?;
    if browser.map(hash_token).as_deref() != Some(pending.browser_hash.as_str()) {
        return Err(ApiError::BadRequest(
            "this sign-in was started in another browser (its steward_login cookie is missing or different): start again at /auth/login"
                .into(),
        ));
    }
    let identity = sso
        .finish(code, &pending.pkce_verifier, &pending.nonce, now)
        .await?;
    let expires_at = identity.expires_at.min(now + sso::MAX_SESSION);
    if expires_at <= now {
        return Err(ApiError::Unauthorized(
            "the identity provider's ID token has already expired: check that Steward's and the provider's clocks agree, then sign in again"
                .into(),
        ));
    }
    let session = random_value()?;
    let new_session = NewSession {
        token_hash: hash_token(&session),
        expires_at,
    };
    let principal = establish(
        state,
        &identity,
        pending.tenant.as_ref(),
        Some(&new_session),
    )
    .await?
    .map_err(refusal)?;
    Ok(SignedIn {
        principal,
        session,
        expires_at,
        return_to: pending.return_to,
    })
}

/// Ends the session the cookie names, if any.
pub(crate) async fn sign_out(state: &AppState, session: Option<&str>) -> Result<bool, ApiError> {
    match session {
        Some(session) => Ok(state
            .store
            .0
            .end_session(&hash_token(session), state.clock.now())
            .await?),
        None => Ok(false),
    }
}
