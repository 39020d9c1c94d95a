//! GitLab webhook authentication: GitLab sends the webhook's secret token verbatim in
//! `X-Gitlab-Token`; it is compared with the configured one in constant time.

/// Whether `received` equals `expected`, without a timing difference that reveals how much of
/// the token matched.
pub fn token_matches(expected: &str, received: Option<&str>) -> bool {
    let Some(received) = received else {
        return false;
    };
    let (a, b) = (expected.as_bytes(), received.as_bytes());
    // Length is not secret; the bytes are compared all the way through.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_exact_token_matches() {
        assert!(super::token_matches("s3cret", Some("s3cret")));
        assert!(!super::token_matches("s3cret", Some("s3cres")));
        assert!(!super::token_matches("s3cret", Some("s3cret ")));
        assert!(!super::token_matches("s3cret", None));
    }
}
