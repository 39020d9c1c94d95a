//! The two cookies of sign-in, and where a browser may be sent back to.
//!
//! The session cookie (`__Host-steward_session` under https, [`session_cookie`]) carries the portal session (random, 256 bits; the server keeps its
//! SHA-256): `HttpOnly` so no script reads it, `SameSite=Lax` so other sites' requests do not
//! carry it (top-level navigations still do), `Path=/`, `Secure` when Steward's public URL is
//! https, and a `Max-Age` that ends with the session. `steward_login` binds a sign-in under way
//! to the browser that started it (so a stranger's callback link cannot sign this browser in as
//! the stranger); it lives ten minutes on `/auth/callback` only.

use axum::http::HeaderMap;

/// The session cookie's name. Under https it is `__Host-steward_session`: a browser accepts a
/// `__Host-` cookie only when it is `Secure`, has `Path=/` and no `Domain`, and was set by this
/// very host — so no sibling subdomain (or a plain-http page on the network) can plant a
/// session in the browser (session fixation). Over plain http (local use), where browsers
/// refuse the prefix, it is `steward_session`. Only the name of the current scheme is read.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-steward_session"
    } else {
        "steward_session"
    }
}

/// The sign-in-under-way cookie's name (`Path=/auth`, so `__Secure-` rather than `__Host-`).
pub fn login_cookie(secure: bool) -> &'static str {
    if secure {
        "__Secure-steward_login"
    } else {
        "steward_login"
    }
}

/// A `Set-Cookie` value for one of our cookies.
#[derive(Debug, Clone, Copy)]
pub struct SessionCookie<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub path: &'a str,
    pub max_age_seconds: i64,
    pub secure: bool,
}

impl SessionCookie<'_> {
    pub fn header(&self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.name,
            self.value,
            self.path,
            self.max_age_seconds.max(0)
        )
    }
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, path: &str, secure: bool) -> String {
    SessionCookie {
        name,
        value: "",
        path,
        max_age_seconds: 0,
        secure,
    }
    .header()
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// `return_to` if it is a path on this server (`/…`, not `//host…` or `/\host…`, which browsers
/// read as another host), so a sign-in link cannot send people elsewhere afterwards.
pub fn local_path(return_to: &str) -> Option<String> {
    let local = return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.starts_with("/\\")
        && return_to.len() <= 2048
        && !return_to.chars().any(|c| c.is_control() || c == '\\');
    local.then(|| return_to.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookies_are_http_only_lax_and_secure_under_https() {
        let cookie = SessionCookie {
            name: session_cookie(true),
            value: "abc",
            path: "/",
            max_age_seconds: 3600,
            secure: true,
        };
        assert_eq!(
            cookie.header(),
            "__Host-steward_session=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure"
        );
        let plain = SessionCookie {
            name: session_cookie(false),
            secure: false,
            ..cookie
        };
        assert!(!plain.header().contains("Secure"));
        assert!(plain.header().starts_with("steward_session=abc;"));
        assert!(clear_cookie(session_cookie(false), "/", false).contains("Max-Age=0"));
        assert_eq!(login_cookie(true), "__Secure-steward_login");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; steward_session=xyz; b=2".parse().expect("header"),
        );
        assert_eq!(cookie_value(&headers, session_cookie(false)), Some("xyz"));
        assert_eq!(cookie_value(&headers, session_cookie(true)), None);
        assert_eq!(cookie_value(&headers, login_cookie(false)), None);
    }

    #[test]
    fn only_local_paths_are_return_targets() {
        assert_eq!(local_path("/portal?x=1").as_deref(), Some("/portal?x=1"));
        for foreign in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(local_path(foreign), None, "{foreign:?}");
        }
    }
}
