//! `steward serve`'s single sign-on settings: the OpenID Connect provider (`--oidc-*`,
//! `STEWARD_OIDC_*`, the config file's `[oidc]` table) and the public URL browsers reach Steward
//! at (`--public-url`, `STEWARD_PUBLIC_URL`, `public_url`), resolved flag > env > file > default
//! like every other setting. The client secret is hidden from `--help` and from `Debug`.

use clap::Args;
use serde::Deserialize;
use steward_server::sso::OidcConfig;

#[derive(Args)]
pub struct SsoArgs {
    /// The address browsers reach Steward at, e.g. `https://steward.example.com`: the sign-in's
    /// redirect URI is PUBLIC_URL/auth/callback, and cookies are Secure when it is https
    /// [default: http://LISTEN].
    #[arg(long, env = "STEWARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// The OpenID Connect provider's issuer URL: turns on single sign-on (/auth/login) and bearer
    /// JWTs from the provider on the API.
    #[arg(long, env = "STEWARD_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The client id Steward is registered under at the provider.
    #[arg(long, env = "STEWARD_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    /// The client's secret.
    #[arg(long, env = "STEWARD_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<String>,
    /// What a bearer JWT's `aud` must contain [default: the client id].
    #[arg(long, env = "STEWARD_OIDC_AUDIENCE")]
    oidc_audience: Option<String>,
    /// Scopes asked for at sign-in besides openid, separated by spaces or commas
    /// [default: "profile groups"].
    #[arg(long, env = "STEWARD_OIDC_SCOPES")]
    oidc_scopes: Option<String>,
}

impl std::fmt::Debug for SsoArgs {
    // Hand-written: the client secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoArgs")
            .field("public_url", &self.public_url)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("oidc_client_id", &self.oidc_client_id)
            .field(
                "oidc_client_secret",
                &self.oidc_client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("oidc_audience", &self.oidc_audience)
            .field("oidc_scopes", &self.oidc_scopes)
            .finish()
    }
}

/// The config file's `[oidc]` table.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOidc {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
    scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for FileOidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The public URL and the provider, if single sign-on is configured.
pub fn resolve(
    args: SsoArgs,
    file: FileOidc,
    file_public_url: Option<String>,
) -> anyhow::Result<(Option<String>, Option<OidcConfig>)> {
    let public_url = args.public_url.or(file_public_url);
    if let Some(url) = public_url
        .as_ref()
        .filter(|url| !(url.starts_with("http://") || url.starts_with("https://")))
    {
        anyhow::bail!(
            "--public-url {url}: give the http(s) address browsers reach Steward at, e.g. https://steward.example.com"
        );
    }
    let issuer = args.oidc_issuer.or(file.issuer);
    let client_id = args.oidc_client_id.or(file.client_id);
    let client_secret = args.oidc_client_secret.or(file.client_secret);
    let audience = args.oidc_audience.or(file.audience);
    let scopes = match args.oidc_scopes {
        Some(scopes) => Some(
            scopes
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        None => file.scopes,
    };
    let Some(issuer) = issuer else {
        if client_id.is_some() || client_secret.is_some() || audience.is_some() {
            anyhow::bail!(
                "single sign-on needs the provider's issuer URL (--oidc-issuer, STEWARD_OIDC_ISSUER or [oidc] issuer) beside the client id and secret"
            );
        }
        return Ok((public_url, None));
    };
    let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
        anyhow::bail!(
            "single sign-on through {issuer} needs the client id and secret Steward is registered under (--oidc-client-id and --oidc-client-secret, STEWARD_OIDC_CLIENT_ID and STEWARD_OIDC_CLIENT_SECRET, or [oidc] client_id and client_secret)"
        );
    };
    Ok((
        public_url,
        Some(OidcConfig {
            audience: audience.unwrap_or_else(|| client_id.clone()),
            issuer,
            client_id,
            client_secret,
            scopes: scopes.unwrap_or_else(|| vec!["profile".into(), "groups".into()]),
        }),
    ))
}
