//! OpenID Connect: the identity provider's side of single sign-on and of bearer JWTs.
//!
//! [`Sso`] knows the provider (discovered from the issuer URL on first use, then kept: its
//! endpoints and its signing keys), starts a sign-in (the authorization URL with PKCE, `state`
//! and `nonce`), finishes one (the code exchanged at the token endpoint, the ID token verified)
//! and verifies bearer JWTs (`verify`). What it hands back is a [`VerifiedIdentity`]: who the
//! provider vouched for, their groups, and until when. It never touches the store: turning an
//! identity into an account with a tenant and roles is `auth::signin`'s, and the HTTP routes are
//! `api::sso`'s.
//!
//! Everything is done with the `openidconnect` crate (discovery, the code flow, JWKs, the
//! verifier), through the server's one reqwest client (rustls with ring), which follows no
//! redirects: a provider's answers are read where they were asked for.

mod cookie;
mod verify;

pub use cookie::{
    SessionCookie, clear_cookie, cookie_value, local_path, login_cookie, session_cookie,
};
pub use verify::{MAX_CLOCK_SKEW, VerifiedIdentity, looks_like_jwt};

use crate::error::ApiError;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How Steward signs people in and accepts bearer JWTs.
#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its tokens' `iss` says it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// What a bearer JWT's `aud` must contain (default: the client id).
    pub audience: String,
    /// Scopes asked for at sign-in besides `openid` (default: `profile groups`).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OidcConfig {
    // Hand-written: the client secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A sign-in to start: where to send the browser, and what its return must match.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What discovery found, kept for the life of the process (keys are refreshed in place).
#[derive(Debug, Clone)]
struct Provider {
    metadata: CoreProviderMetadata,
    keys: CoreJsonWebKeySet,
}

/// A failed discovery is not retried for this long, so a provider that is down is not asked
/// again by every request.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// Signing keys are fetched again for one unknown `kid` at most this often, so tokens naming
/// made-up key ids cannot make Steward hammer the provider.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// ...and for any unknown `kid` at most this often: a provider's new key is fetched within this
/// of its first use, whatever made-up key ids came before it.
pub const KEY_REFRESH_GAP: Duration = Duration::from_secs(5);
/// A session never outlives this, whatever the ID token says.
pub const MAX_SESSION: chrono::Duration = chrono::Duration::hours(12);
/// How long a sign-in may take between leaving for the provider and coming back.
pub const LOGIN_TIMEOUT: chrono::Duration = chrono::Duration::minutes(10);

/// The provider, as one server process knows it.
#[derive(Debug)]
pub struct Sso {
    config: OidcConfig,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    /// Cookies carry `Secure` when Steward's public URL is https.
    secure_cookies: bool,
    /// `scheme://host[:port]` of Steward's public URL: the `Origin` its own pages send.
    public_origin: String,
    http: reqwest::Client,
    provider: RwLock<Option<Arc<Provider>>>,
    /// One discovery at a time; when the last one failed.
    discovery: tokio::sync::Mutex<Option<Instant>>,
    /// When keys were last fetched for an unknown `kid`, and for which.
    key_refresh: Mutex<verify::RefreshGate>,
}

impl Sso {
    /// Checks the configuration; the provider is discovered on first use, so Steward starts
    /// even while the provider is unreachable.
    pub fn new(config: OidcConfig, public_url: &str) -> anyhow::Result<Sso> {
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| {
            anyhow::anyhow!(
                "--oidc-issuer {}: not a URL ({e}); give the provider's issuer, e.g. https://login.example.com/realms/bank",
                config.issuer
            )
        })?;
        let public = public_url.trim_end_matches('/');
        let redirect = RedirectUrl::new(format!("{public}/auth/callback")).map_err(|e| {
            anyhow::anyhow!(
                "--public-url {public_url}: not a URL ({e}); give the address browsers reach Steward at, e.g. https://steward.example.com"
            )
        })?;
        let public_origin = reqwest::Url::parse(public)
            .map(|url| url.origin().ascii_serialization())
            .map_err(|e| anyhow::anyhow!("--public-url {public_url}: not a URL ({e})"))?;
        if config.client_id.is_empty() {
            anyhow::bail!(
                "--oidc-client-id is empty: give the client id registered at the provider"
            );
        }
        if config.client_secret.is_empty() {
            anyhow::bail!(
                "--oidc-client-secret is empty: give the client's secret (STEWARD_OIDC_CLIENT_SECRET)"
            );
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Sso {
            secure_cookies: public.starts_with("https://"),
            public_origin,
            config,
            issuer,
            redirect,
            http,
            provider: RwLock::new(None),
            discovery: tokio::sync::Mutex::new(None),
            key_refresh: Mutex::new(verify::RefreshGate::new(
                KEY_REFRESH_INTERVAL,
                KEY_REFRESH_GAP,
            )),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Whether cookies must carry `Secure` (Steward is reached over https).
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// The `Origin` Steward's own pages send.
    pub fn public_origin(&self) -> &str {
        &self.public_origin
    }

    /// The provider's metadata and keys, discovering them on first use.
    async fn provider(&self) -> Result<Arc<Provider>, ApiError> {
        if let Some(provider) = self.known() {
            return Ok(provider);
        }
        let mut last_failure = self.discovery.lock().await;
        if let Some(provider) = self.known() {
            return Ok(provider);
        }
        if last_failure.is_some_and(|at| at.elapsed() < DISCOVERY_RETRY) {
            return Err(ApiError::BadGateway(format!(
                "the identity provider at {} could not be reached a moment ago: try again shortly",
                self.config.issuer
            )));
        }
        match CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http).await {
            Ok(metadata) => {
                *last_failure = None;
                let provider = Arc::new(Provider {
                    keys: metadata.jwks().clone(),
                    metadata,
                });
                if let Ok(mut known) = self.provider.write() {
                    *known = Some(provider.clone());
                }
                tracing::info!(issuer = %self.config.issuer, "discovered the OpenID Connect provider");
                Ok(provider)
            }
            Err(error) => {
                *last_failure = Some(Instant::now());
                tracing::warn!(issuer = %self.config.issuer, error = %error, "OpenID Connect discovery failed");
                Err(ApiError::BadGateway(format!(
                    "the identity provider at {} did not answer discovery ({error}): check --oidc-issuer and that the provider is up",
                    self.config.issuer
                )))
            }
        }
    }

    fn known(&self) -> Option<Arc<Provider>> {
        self.provider.read().ok().and_then(|p| p.clone())
    }

    fn client(
        &self,
        provider: &Provider,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            provider.metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// A new sign-in: the provider's authorization URL (code flow, PKCE S256, fresh `state` and
    /// `nonce`), and the values its return must match.
    pub async fn authorization(&self) -> Result<Authorization, ApiError> {
        let provider = self.provider().await?;
        let client = self.client(&provider);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.config.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Finishes a sign-in: exchanges `code` (with the PKCE verifier) at the token endpoint and
    /// verifies the ID token it returns (signature by the provider's keys, issuer, audience =
    /// our client id, expiry with bounded skew, and `nonce`).
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<VerifiedIdentity, ApiError> {
        let provider = self.provider().await?;
        let client = self.client(&provider);
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| {
                ApiError::BadGateway(format!(
                    "the identity provider's discovery names no token endpoint ({e})"
                ))
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let response = request.request_async(&self.http).await.map_err(|e| {
            ApiError::BadRequest(format!(
                "the identity provider refused the sign-in code ({}): sign in again at /auth/login",
                token_error(&e)
            ))
        })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| {
                ApiError::BadGateway(
                    "the identity provider returned no ID token: is the `openid` scope allowed for this client?"
                        .into(),
                )
            })?
            .to_string();
        let expected = verify::Expected::IdToken {
            client_id: &self.config.client_id,
            nonce,
        };
        self.verify_with_refresh(&id_token, &expected, now).await
    }

    /// Verifies a bearer JWT for the API: signature by the provider's keys, `iss`, `aud`
    /// containing the configured audience, `exp`/`nbf`/`iat` with bounded skew.
    pub async fn verify_bearer(
        &self,
        token: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<VerifiedIdentity, ApiError> {
        let expected = verify::Expected::Bearer {
            audience: &self.config.audience,
        };
        self.verify_with_refresh(token, &expected, now).await
    }

    /// Verifies against the keys known; when the token names a key not among them, fetches the
    /// provider's keys again (for one key id at most once per [`KEY_REFRESH_INTERVAL`], for any
    /// at most once per [`KEY_REFRESH_GAP`]) and tries once more.
    async fn verify_with_refresh(
        &self,
        token: &str,
        expected: &verify::Expected<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<VerifiedIdentity, ApiError> {
        let provider = self.provider().await?;
        match verify::verify(token, &self.issuer, &provider.keys, expected, now) {
            Err(verify::Refused::UnknownKey) => {}
            other => return other.map_err(|e| e.into_api_error(expected)),
        }
        let kid = verify::key_id(token).unwrap_or_default();
        let refreshed = self.refresh_keys(&provider, &kid).await?;
        verify::verify(token, &self.issuer, &refreshed.keys, expected, now)
            .map_err(|e| e.into_api_error(expected))
    }

    /// Fetches the provider's keys again for a token naming `kid` if the rate limit allows; the
    /// provider as known after.
    async fn refresh_keys(
        &self,
        provider: &Arc<Provider>,
        kid: &str,
    ) -> Result<Arc<Provider>, ApiError> {
        let allowed = self
            .key_refresh
            .lock()
            .map(|mut gate| gate.try_pass(kid, Instant::now()))
            .unwrap_or(false);
        if !allowed {
            return Ok(self.known().unwrap_or_else(|| provider.clone()));
        }
        let keys = CoreJsonWebKeySet::fetch_async(provider.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| {
                ApiError::BadGateway(format!(
                    "the identity provider's signing keys could not be fetched ({e})"
                ))
            })?;
        let refreshed = Arc::new(Provider {
            metadata: provider.metadata.clone(),
            keys,
        });
        if let Ok(mut known) = self.provider.write() {
            *known = Some(refreshed.clone());
        }
        tracing::info!(issuer = %self.config.issuer, "refreshed the OpenID Connect provider's signing keys");
        Ok(refreshed)
    }
}

/// The provider's error code and description, when it gave them; never the response body.
fn token_error<RE: std::error::Error + 'static>(
    error: &openidconnect::RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> String {
    match error {
        openidconnect::RequestTokenError::ServerResponse(response) => {
            match response.error_description() {
                Some(description) => format!("{}: {description}", response.error()),
                None => response.error().to_string(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://idp.example.com/realms/bank".into(),
            client_id: "steward".into(),
            client_secret: "s3cret-value".into(),
            audience: "steward".into(),
            scopes: vec!["profile".into(), "groups".into()],
        }
    }

    #[test]
    fn cookies_are_secure_when_steward_is_reached_over_https() {
        let sso = Sso::new(config(), "https://steward.example.com/").expect("valid");
        assert!(sso.secure_cookies());
        assert_eq!(sso.public_origin(), "https://steward.example.com");
        assert_eq!(
            sso.redirect.as_str(),
            "https://steward.example.com/auth/callback"
        );
        let plain = Sso::new(config(), "http://127.0.0.1:8080").expect("valid");
        assert!(!plain.secure_cookies());
    }

    #[test]
    fn the_client_secret_stays_out_of_debug_output() {
        let sso = Sso::new(config(), "https://steward.example.com").expect("valid");
        assert!(!format!("{sso:?}").contains("s3cret"));
        let err = Sso::new(
            OidcConfig {
                issuer: "not a url".into(),
                ..config()
            },
            "https://steward.example.com",
        )
        .expect_err("bad issuer");
        assert!(err.to_string().contains("--oidc-issuer"), "{err}");
    }
}
