//! Where browsers reach Steward: the origin its own pages send (`Origin` of a form post), and
//! whether its cookies must be `Secure`.
//!
//! Known with or without single sign-on, because the portal's own sign-in (an API token pasted
//! into a form) opens the same session cookie as single sign-on does, and a write carried by that
//! cookie must name this origin. It comes from `--public-url`, or, without one, from the address
//! the server listens on (over http).

/// Steward's public address, parsed once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicAddress {
    /// `scheme://host[:port]`, as browsers write it in `Origin`.
    origin: String,
    /// Cookies carry `Secure` when Steward is reached over https.
    secure: bool,
    /// Whether `--public-url` said it. Without it, Steward does not know the name browsers use
    /// (`localhost`, a LAN name, an address when it listens on 0.0.0.0), so a page's `Origin`
    /// may also be `http://` + the `Host` the browser asked for: a cross-site page cannot make a
    /// browser send its own origin with Steward's host.
    configured: bool,
}

impl PublicAddress {
    pub fn parse(public_url: &str) -> anyhow::Result<PublicAddress> {
        let url = reqwest::Url::parse(public_url.trim_end_matches('/')).map_err(|e| {
            anyhow::anyhow!(
                "--public-url {public_url}: not a URL ({e}); give the address browsers reach Steward at, e.g. https://steward.example.com"
            )
        })?;
        Ok(PublicAddress {
            origin: url.origin().ascii_serialization(),
            secure: url.scheme() == "https",
            configured: true,
        })
    }

    /// The address derived from where the server listens (no `--public-url`).
    pub fn listening(url: &str) -> anyhow::Result<PublicAddress> {
        Ok(PublicAddress {
            configured: false,
            ..PublicAddress::parse(url)?
        })
    }

    /// Whether `origin` is one of Steward's own pages, for a request to `host`.
    pub fn accepts(&self, origin: &str, host: Option<&str>) -> bool {
        origin == self.origin
            || (!self.configured && host.is_some_and(|host| origin == format!("http://{host}")))
    }

    /// The `Origin` Steward's own pages send.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure
    }

    /// The session cookie's name at this address (`__Host-` prefixed under https).
    pub fn session_cookie(&self) -> &'static str {
        crate::sso::session_cookie(self.secure)
    }

    /// The sign-in-under-way cookie's name at this address.
    pub fn login_cookie(&self) -> &'static str {
        crate::sso::login_cookie(self.secure)
    }
}

#[cfg(test)]
mod tests {
    use super::PublicAddress;

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        let https = PublicAddress::parse("https://steward.example.com/").expect("url");
        assert_eq!(https.origin(), "https://steward.example.com");
        assert!(https.secure_cookies());
        let local = PublicAddress::parse("http://127.0.0.1:8080").expect("url");
        assert_eq!(local.origin(), "http://127.0.0.1:8080");
        assert!(!local.secure_cookies());
        assert!(PublicAddress::parse("not a url").is_err());
    }

    #[test]
    fn without_a_public_url_the_host_asked_for_is_steward_s_own() {
        let listening = PublicAddress::listening("http://0.0.0.0:8080").expect("url");
        assert!(listening.accepts("http://localhost:8080", Some("localhost:8080")));
        assert!(!listening.accepts("https://evil.example", Some("localhost:8080")));
        let configured = PublicAddress::parse("https://steward.example.com").expect("url");
        assert!(!configured.accepts("http://localhost:8080", Some("localhost:8080")));
        assert!(configured.accepts("https://steward.example.com", Some("whatever")));
    }
}
