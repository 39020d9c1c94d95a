//! CSRF tokens: every portal form carries one, bound to the session that rendered it.
//!
//! The token is the SHA-256 of a fixed label and the session cookie's value. The cookie is
//! `HttpOnly` and 256 bits of randomness, so a page on another site can neither read it nor
//! compute the token; the label keeps the token distinct from the session's stored hash. Being
//! derived, not stored, it needs no table and no key, works on every server sharing the
//! database, and ends with the session.

/// What a refused form is told.
pub(super) const REFUSAL: &str =
    "the form expired or did not come from Steward: go back, reload the page and send it again";

/// The CSRF token of the session whose cookie value is `session`.
pub(super) fn token_for(session: &str) -> String {
    let mut input = b"steward portal csrf\n".to_vec();
    input.extend_from_slice(session.as_bytes());
    steward_audit::hash::sha256(&input).to_hex()
}

/// Whether `sent` is `expected`, compared in constant time.
pub(super) fn matches(expected: &str, sent: &str) -> bool {
    let (expected, sent) = (expected.as_bytes(), sent.as_bytes());
    expected.len() == sent.len()
        && expected
            .iter()
            .zip(sent)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_session() {
        let a = token_for("session-a");
        assert_eq!(a, token_for("session-a"));
        assert_ne!(a, token_for("session-b"));
        assert_eq!(a.len(), 64);
        assert!(matches(&a, &a.clone()));
        assert!(!matches(&a, &token_for("session-b")));
        assert!(!matches(&a, ""));
        assert!(!matches(&a, &a[..63]));
    }
}
