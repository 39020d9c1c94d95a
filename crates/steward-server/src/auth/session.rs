//! The portal's own sign-in: an API token, pasted into the form at `/`, opens a session.
//!
//! A child of `auth` because it opens the store's session table before anyone is authorized. The
//! token is checked exactly as a bearer token is ([`Caller::from_token`]: unknown, expired,
//! revoked tokens and disabled accounts are refused, saying which), and the session it opens is
//! the one single sign-on opens (`steward_session`, stored by its SHA-256, ending within 12
//! hours): from then on the cookie is read by the same code whichever way it was opened, so a
//! disable or a revocation ends it at the next request.

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
    let expires_at = now + crate::sso::MAX_SESSION;
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
    })
}
