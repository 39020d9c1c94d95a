//! Standard Webhooks (<https://www.standardwebhooks.com>) signatures: the body is signed with
//! HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, and sent as
//! `webhook-signature: v1,<base64>` beside the `webhook-id` and `webhook-timestamp` headers.
//! Secrets are `whsec_` + base64 of the key bytes. Verification is constant-time, accepts any one
//! of several space-separated signatures (key rotation), and refuses timestamps outside a
//! tolerance, so a captured request cannot be replayed later.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a timestamp may be from the receiver's clock, either way (the spec's default).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the webhook secret must be `whsec_` followed by base64")]
    BadSecret,
    #[error("the `{0}` header is missing")]
    Missing(&'static str),
    #[error("the webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("the webhook-timestamp is {0} seconds from now: too old or too new (a replay?)")]
    OutsideTolerance(i64),
    #[error("no signature matches")]
    NoMatch,
}

/// A signing key from its `whsec_…` form.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    pub fn parse(text: &str) -> Result<Secret, SignatureError> {
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SignatureError::BadSecret)?;
        if key.is_empty() {
            return Err(SignatureError::BadSecret);
        }
        Ok(Secret(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Checks a received message's headers against this secret, at time `now` (Unix seconds).
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let id = id.ok_or(SignatureError::Missing("webhook-id"))?;
        let timestamp = timestamp.ok_or(SignatureError::Missing("webhook-timestamp"))?;
        let signatures = signatures.ok_or(SignatureError::Missing("webhook-signature"))?;
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        let skew = timestamp - now;
        if skew.abs() > TOLERANCE_SECONDS {
            return Err(SignatureError::OutsideTolerance(skew));
        }
        for candidate in signatures.split_whitespace() {
            let Some(encoded) = candidate.strip_prefix("v1,") else {
                continue;
            };
            let Ok(tag) = STANDARD.decode(encoded) else {
                continue;
            };
            // `verify_slice` compares in constant time.
            if self.mac(id, timestamp, body).verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example in the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> Secret {
        Secret::parse(SECRET).expect("secret")
    }

    #[test]
    fn signs_the_specification_example() {
        assert_eq!(secret().sign(ID, TIMESTAMP, BODY), SIGNATURE);
    }

    #[test]
    fn verifies_good_refuses_bad_missing_and_replayed() {
        let ts = TIMESTAMP.to_string();
        let s = secret();
        assert_eq!(
            s.verify(Some(ID), Some(&ts), Some(SIGNATURE), BODY, TIMESTAMP),
            Ok(())
        );
        // One of several (rotation), in any order.
        let rotated = format!("v1,AAAA {SIGNATURE}");
        assert_eq!(
            s.verify(Some(ID), Some(&ts), Some(&rotated), BODY, TIMESTAMP + 60),
            Ok(())
        );
        // Bad: another body, another id, a tampered signature.
        assert_eq!(
            s.verify(
                Some(ID),
                Some(&ts),
                Some(SIGNATURE),
                br#"{"test": 1}"#,
                TIMESTAMP
            ),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            s.verify(
                Some("msg_other"),
                Some(&ts),
                Some(SIGNATURE),
                BODY,
                TIMESTAMP
            ),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            s.verify(
                Some(ID),
                Some(&ts),
                Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF="),
                BODY,
                TIMESTAMP
            ),
            Err(SignatureError::NoMatch)
        );
        // Missing headers are named.
        assert_eq!(
            s.verify(Some(ID), None, Some(SIGNATURE), BODY, TIMESTAMP),
            Err(SignatureError::Missing("webhook-timestamp"))
        );
        // Replayed ten minutes later.
        assert_eq!(
            s.verify(Some(ID), Some(&ts), Some(SIGNATURE), BODY, TIMESTAMP + 600),
            Err(SignatureError::OutsideTolerance(-600))
        );
        assert_eq!(
            Secret::parse("whsec_***").map(|_| ()),
            Err(SignatureError::BadSecret)
        );
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }
}
