//! GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`,
//! keyed with the webhook's secret, compared in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `X-Hub-Signature-256` value GitHub sends for `body` (for tests and replays).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!(
        "sha256={}",
        steward_audit::hex::encode(&mac.finalize().into_bytes())
    )
}

/// Whether `header` (the `X-Hub-Signature-256` value) signs `body` with `secret`.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(tag) = steward_audit::hex::decode::<32>(hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented example ("Validating webhook deliveries").
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const HEADER: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn verifies_githubs_published_example_and_refuses_the_rest() {
        assert_eq!(sign(SECRET, BODY), HEADER);
        assert!(verify(SECRET, BODY, Some(HEADER)));
        assert!(!verify(SECRET, b"Hello, World?", Some(HEADER)));
        assert!(!verify(b"another secret", BODY, Some(HEADER)));
        assert!(!verify(SECRET, BODY, None));
        assert!(!verify(SECRET, BODY, Some("sha1=757107ea")));
        assert!(!verify(SECRET, BODY, Some("sha256=zz")));
    }
}
