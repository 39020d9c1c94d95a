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
        })
    }

    /// The `Origin` Steward's own pages send.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure
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
}
