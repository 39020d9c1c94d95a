//! Verifying the provider's JWTs — ID tokens at sign-in, bearer JWTs on the API — with
//! `openidconnect`'s verifier, and the rate limit on fetching its keys again (per key id).
//!
//! Both kinds are checked the same way: a signature by one of the provider's keys (asymmetric
//! algorithms only, so a token signed with a shared secret or `none` is refused), `iss` equal to
//! the configured issuer, the audience, `exp` and `iat` (and `nbf` when present) against the
//! server's clock with at most [`MAX_CLOCK_SKEW`] of slack. An ID token's audience must be our
//! client id and nothing untrusted beside it, and its `nonce` the one the sign-in sent; a bearer
//! JWT's `aud` must contain the configured audience, and its type may be `JWT` or `at+jwt`
//! (RFC 9068 access tokens).

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, ClaimsVerificationError, ClientId, IdToken, IdTokenVerifier, IssuerUrl,
    JsonWebTokenType, Nonce, SignatureVerificationError,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};
use steward_core::sso::GroupName;

/// The most a token's times may be off the server's clock and still be accepted.
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// The claims Steward reads beyond the standard ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StewardClaims {
    /// The person's (or workload's) groups: a list of names, or one name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<serde_json::Value>,
    /// A workload token's client (RFC 9068), which names it when no user name does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<f64>,
}

impl AdditionalClaims for StewardClaims {}

type StewardIdToken = IdToken<
    StewardClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Who the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// `issuer#subject`: what an account made by single sign-on stays bound to.
    pub identity: String,
    pub preferred_username: Option<String>,
    pub client_id: Option<String>,
    pub subject: String,
    /// Groups whose names Steward can hold (others cannot be mapped, so they are dropped).
    pub groups: Vec<GroupName>,
    /// When the token stops being valid (`exp`).
    pub expires_at: DateTime<Utc>,
}

impl VerifiedIdentity {
    /// The account name: `preferred_username`, else `client_id`, else `sub`.
    pub fn account_name(&self) -> Result<steward_core::UserName, steward_core::sso::SignInRefused> {
        steward_core::sso::account_name(&[
            self.preferred_username.as_deref(),
            self.client_id.as_deref(),
            Some(self.subject.as_str()),
        ])
    }
}

/// Which kind of token is being verified, and what it must name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expected<'a> {
    IdToken { client_id: &'a str, nonce: &'a str },
    Bearer { audience: &'a str },
}

/// Which check a token failed, as a refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    Nonce,
    Malformed,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Signature => "signature",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not yet valid",
            Refusal::Issuer => "issuer",
            Refusal::Audience => "audience",
            Refusal::Nonce => "nonce",
            Refusal::Malformed => "malformed",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Signed with a key the known key set does not hold (refresh and try again).
    UnknownKey,
    Refusal(Refusal, String),
}

impl Refused {
    pub(crate) fn into_api_error(self, expected: &Expected<'_>) -> ApiError {
        let (kind, detail) = match self {
            Refused::UnknownKey => (
                Refusal::Signature,
                "no signing key of the identity provider has the token's key id".to_owned(),
            ),
            Refused::Refusal(kind, detail) => (kind, detail),
        };
        match expected {
            Expected::IdToken { .. } => ApiError::Unauthorized(format!(
                "the identity provider's ID token was refused ({}: {detail}): sign in again at /auth/login",
                kind.as_str()
            )),
            Expected::Bearer { .. } => ApiError::Unauthorized(format!(
                "bearer token refused ({}: {detail})",
                kind.as_str()
            )),
        }
    }
}

impl From<ClaimsVerificationError> for Refused {
    fn from(error: ClaimsVerificationError) -> Refused {
        let refusal = match &error {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => return Refused::UnknownKey,
            ClaimsVerificationError::SignatureVerification(_) => Refusal::Signature,
            ClaimsVerificationError::Expired(_) => Refusal::Expired,
            ClaimsVerificationError::InvalidIssuer(_) => Refusal::Issuer,
            ClaimsVerificationError::InvalidAudience(_) => Refusal::Audience,
            ClaimsVerificationError::InvalidNonce(_) => Refusal::Nonce,
            _ => Refusal::Malformed,
        };
        let detail = match &error {
            ClaimsVerificationError::SignatureVerification(inner) => inner.to_string(),
            other => other.to_string(),
        };
        Refused::Refusal(refusal, detail)
    }
}

/// The algorithms a provider's signature may use: asymmetric ones only.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Whether a bearer value is a JWT (three base64url parts) rather than a Steward API token.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Verifies `token` against `keys` as `expected` says, at `now`.
pub(crate) fn verify(
    token: &str,
    issuer: &IssuerUrl,
    keys: &CoreJsonWebKeySet,
    expected: &Expected<'_>,
    now: DateTime<Utc>,
) -> Result<VerifiedIdentity, Refused> {
    let parsed = StewardIdToken::from_str(token)
        .map_err(|e| Refused::Refusal(Refusal::Malformed, format!("not a signed JWT: {e}")))?;
    let audience = match expected {
        Expected::IdToken { client_id, .. } => *client_id,
        Expected::Bearer { audience } => *audience,
    };
    let mut verifier: IdTokenVerifier<'_, CoreJsonWebKey> = IdTokenVerifier::new_public_client(
        ClientId::new(audience.to_owned()),
        issuer.clone(),
        keys.clone(),
    )
    .set_allowed_algs(ALGORITHMS)
    // `exp` is compared with this clock: a token may be up to the skew past its expiry.
    .set_time_fn(move || now - MAX_CLOCK_SKEW)
    .set_issue_time_verifier_fn(move |issued| {
        if issued > now + MAX_CLOCK_SKEW {
            Err(format!("issued in the future ({issued})"))
        } else {
            Ok(())
        }
    });
    let claims = match expected {
        Expected::IdToken { nonce, .. } => {
            parsed.claims(&verifier, &Nonce::new((*nonce).to_owned()))?
        }
        Expected::Bearer { .. } => {
            let types = ["JWT", "application/jwt", "at+jwt", "application/at+jwt"]
                .into_iter()
                .filter_map(|t| JsonWebTokenType::new(t.to_owned()).normalize().ok());
            verifier = verifier
                .set_allowed_jose_types(types)
                // `aud` must contain the audience; other audiences beside it are the
                // provider's business (a token for several resource servers).
                .set_other_audience_verifier_fn(|_| true);
            parsed.claims(&verifier, |_: Option<&Nonce>| Ok(()))?
        }
    };
    let extra = claims.additional_claims();
    if let Some(nbf) = extra.nbf {
        let earliest = now + MAX_CLOCK_SKEW;
        if nbf > earliest.timestamp() as f64 {
            return Err(Refused::Refusal(
                Refusal::NotYetValid,
                format!("not valid before {nbf} (seconds since the epoch)"),
            ));
        }
    }
    Ok(VerifiedIdentity {
        identity: format!("{}#{}", claims.issuer().as_str(), claims.subject().as_str()),
        preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
        client_id: extra.client_id.clone(),
        subject: claims.subject().as_str().to_owned(),
        groups: groups(extra.groups.as_ref()),
        expires_at: claims.expiration(),
    })
}

fn groups(claim: Option<&serde_json::Value>) -> Vec<GroupName> {
    let names: Vec<&str> = match claim {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        Some(serde_json::Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    };
    let mut groups: Vec<GroupName> = names
        .into_iter()
        .filter_map(|n| GroupName::parse(n).ok())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The key id (`kid`) a JWT's header names, if it names one; read without verifying anything,
/// only to rate-limit key refreshes per key id. At most 128 characters are kept.
pub(crate) fn key_id(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(header.get("kid")?.as_str()?.chars().take(128).collect())
}

/// Lets key refreshes through for unknown key ids: one key id at most once per `every`, and
/// any at most once per `gap`. A provider's new key is fetched within `gap` of its first use,
/// however many made-up key ids came before it, while made-up ids cannot make Steward fetch the
/// keys more than once per `gap` (nor the same one more than once per `every`). The key ids
/// remembered are those that passed within `every`: at most `every / gap + 1` of them.
#[derive(Debug)]
pub(crate) struct RefreshGate {
    every: Duration,
    gap: Duration,
    last: Option<Instant>,
    tried: HashMap<String, Instant>,
}

impl RefreshGate {
    pub(crate) fn new(every: Duration, gap: Duration) -> RefreshGate {
        RefreshGate {
            every,
            gap,
            last: None,
            tried: HashMap::new(),
        }
    }

    /// Whether a refresh for `kid` may happen at `now` (and, if so, it is counted).
    pub(crate) fn try_pass(&mut self, kid: &str, now: Instant) -> bool {
        let recent = |at: &Instant| now.saturating_duration_since(*at) < self.every;
        if self.tried.get(kid).is_some_and(recent) {
            return false;
        }
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.gap)
        {
            return false;
        }
        self.tried.retain(|_, at| recent(at));
        self.tried.insert(kid.to_owned(), now);
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_refresh_per_interval_for_one_key_id() {
        let mut gate = RefreshGate::new(Duration::from_secs(30), Duration::from_secs(5));
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(
            gate.try_pass("k1", start),
            "the first unknown key refreshes"
        );
        assert!(!gate.try_pass("k1", at(1)));
        assert!(!gate.try_pass("k1", at(29)));
        assert!(gate.try_pass("k1", at(30)));
        assert!(!gate.try_pass("k1", at(31)));
    }

    #[test]
    fn a_new_key_id_refreshes_soon_after_made_up_ones() {
        let mut gate = RefreshGate::new(Duration::from_secs(30), Duration::from_secs(5));
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(gate.try_pass("made-up-0", start));
        // Other key ids right after: no refresh within the gap...
        assert!(!gate.try_pass("made-up-1", at(1)));
        assert!(!gate.try_pass("rotated", at(4)));
        // ...and a new one refreshes once it has passed, though the made-up id was tried
        // within the interval; the made-up id itself still waits for the interval.
        assert!(gate.try_pass("rotated", at(5)));
        assert!(!gate.try_pass("made-up-0", at(11)));
        assert!(gate.try_pass("made-up-1", at(11)));
        assert!(gate.try_pass("made-up-0", at(30)));
        // Only key ids tried within the interval are remembered.
        assert!(gate.try_pass("x", at(36)));
        let mut remembered: Vec<&str> = gate.tried.keys().map(String::as_str).collect();
        remembered.sort();
        assert_eq!(remembered, ["made-up-0", "made-up-1", "x"]);
    }

    #[test]
    fn key_ids_are_read_from_the_header() {
        assert_eq!(
            key_id("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln").as_deref(),
            Some("k1")
        );
        assert_eq!(key_id("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), None);
        assert_eq!(key_id("garbage"), None);
    }

    #[test]
    fn jwts_are_told_from_api_tokens() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0."));
        assert!(!looks_like_jwt("stw_0123456789abcdef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b c.d"));
    }

    #[test]
    fn groups_are_a_list_or_one_name() {
        let list = serde_json::json!(["ml-cab", "ml-cab", "", 7, "risk"]);
        let names: Vec<String> = groups(Some(&list)).iter().map(|g| g.to_string()).collect();
        assert_eq!(names, ["ml-cab", "risk"]);
        let one = serde_json::json!("ml-cab");
        assert_eq!(groups(Some(&one)).len(), 1);
        assert!(groups(None).is_empty());
    }

    #[test]
    fn garbage_is_malformed_not_an_unknown_key() {
        let keys = CoreJsonWebKeySet::new(vec![]);
        let issuer = IssuerUrl::new("https://idp.example".into()).expect("url");
        let refused = verify(
            "not-a-jwt",
            &issuer,
            &keys,
            &Expected::Bearer {
                audience: "steward",
            },
            Utc::now(),
        )
        .expect_err("garbage");
        assert!(
            matches!(refused, Refused::Refusal(Refusal::Malformed, _)),
            "{refused:?}"
        );
    }
}
