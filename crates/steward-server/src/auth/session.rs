//! The portal's own sign-in: an API token, pasted into the form at `/`, opens a session.
//!
//! A child of `auth` because it opens the store's session table before anyone is authorized. The
//! token is checked exactly as a bearer token is ([`Caller::from_token`]: unknown, expired,
//! revoked tokens and disabled accounts are refused, saying which), and the session it opens is
//! the one single sign-on opens (`steward_session`, stored by its SHA-256, ending within 12
//! hours and never after the token's own expiry): from then on the cookie is read by the same
//! code whichever way it was opened, so a disable, a revocation or a rotation of the account's
//! token ends it at the next request.

use super::signin::random_value;
use super::{Caller, hash_token};
use crate::AppState;
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use steward_store::Principal;
use steward_store::sso::NewSession;

/// A session opened with a token: who, the cookie's value, and when it ends.
pub(crate) struct Opened {
    pub principal: Principal,
    pub session: String,
    pub expires_at: DateTime<Utc>,
    /// How long it lasts from when it was opened (the cookie's `Max-Age`).
    pub lifetime: chrono::Duration,
}

impl std::fmt::Debug for Opened {
    // The cookie's value is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("principal", &self.principal)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Opens a session for the account `token` belongs to; 401 saying why when it opens nothing.
pub(crate) async fn open_with_token(state: &AppState, token: &str) -> Result<Opened, ApiError> {
    let caller = Caller::from_token(state, token.trim()).await?;
    let now = state.clock.now();
    let session = random_value()?;
    // Never longer than the token that opened it.
    let token_expiry = state
        .store
        .0
        .tenant(&caller.0.tenant)
        .token_expiry(&hash_token(token.trim()))
        .await?;
    let expires_at = match token_expiry {
        Some(at) => at.min(now + crate::sso::MAX_SESSION),
        None => now + crate::sso::MAX_SESSION,
    };
    let new_session = NewSession {
        token_hash: hash_token(&session),
        expires_at,
    };
    state
        .store
        .0
        .open_token_session(&caller.0, &new_session, now)
        .await?;
    Ok(Opened {
        principal: caller.0,
        session,
        expires_at,
        lifetime: expires_at - now,
    })
}

/// Ends the session a browser's cookie names, if it is one (signing in again on a shared
/// computer leaves no earlier session behind).
pub(crate) async fn end(state: &AppState, session: &str) -> Result<(), ApiError> {
    state
        .store
        .0
        .end_session(&hash_token(session), state.clock.now())
        .await?;
    Ok(())
}
