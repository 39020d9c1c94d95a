//! Payloads kept outside the tree, encrypted per data subject with AES-256-GCM.
//!
//! Each data subject (the person an event's free text and personal details are about) has a key
//! of their own. Destroying that key erases every payload of theirs at once (GDPR Art. 17, DPDPA
//! §8(7)) while the leaves, which hold only each payload's SHA-256, and so every proof, stay valid.
//! Randomness comes from the caller, so this module stays pure.

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload key or nonce is malformed")]
    Malformed,
    #[error("the payload does not decrypt with its subject's key (altered, or the wrong key)")]
    Undecryptable,
}

/// Encrypts `plaintext` for a subject; returns base64 ciphertext. `aad` binds the ciphertext to
/// its place (the event's sequence number), so a payload cannot be moved to another event.
pub fn seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<String, PayloadError> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let nonce = Nonce::from(*nonce);
    let sealed = cipher
        .encrypt(
            &nonce,
            aes_gcm::aead::Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| PayloadError::Malformed)?;
    Ok(B64.encode(sealed))
}

pub fn open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &str,
) -> Result<Vec<u8>, PayloadError> {
    let sealed = B64
        .decode(ciphertext)
        .map_err(|_| PayloadError::Malformed)?;
    let cipher = Aes256Gcm::new(&(*key).into());
    let nonce = Nonce::from(*nonce);
    cipher
        .decrypt(&nonce, aes_gcm::aead::Payload { msg: &sealed, aad })
        .map_err(|_| PayloadError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_bind_key_nonce_and_place() {
        let (key, nonce) = ([9u8; 32], [1u8; 12]);
        let sealed = seal(&key, &nonce, b"seq:7", b"{\"comment\":\"ok\"}").expect("sealed");
        assert_eq!(
            open(&key, &nonce, b"seq:7", &sealed).expect("opens"),
            b"{\"comment\":\"ok\"}"
        );
        assert_eq!(
            open(&[8u8; 32], &nonce, b"seq:7", &sealed),
            Err(PayloadError::Undecryptable)
        );
        assert_eq!(
            open(&key, &nonce, b"seq:8", &sealed),
            Err(PayloadError::Undecryptable)
        );
        assert_eq!(
            open(&key, &[2u8; 12], b"seq:7", &sealed),
            Err(PayloadError::Undecryptable)
        );
    }
}
