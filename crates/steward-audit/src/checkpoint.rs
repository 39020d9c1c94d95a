//! Signed checkpoints: the C2SP tlog-checkpoint body inside a C2SP signed note, signed with Ed25519.
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root hash>\n
//! \n
//! — <key name> <base64(key id ‖ signature)>\n
//! ```
//!
//! The key id is the first four bytes of SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key), 0x01 being
//! the Ed25519 signature type. A verifier key is written `<name>+<hex key id>+<base64(0x01 ‖ public
//! key)>`, the form Go's `golang.org/x/mod/sumdb/note` reads.

use crate::hash::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

const ED25519: u8 = 0x01;
const DASH: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("malformed verifier key: {0}")]
    BadKey(String),
    #[error("no signature by key {0} on the checkpoint")]
    NotSigned(String),
    #[error(
        "the signature by {0} does not verify: the checkpoint was altered or signed by another key"
    )]
    BadSignature(String),
}

impl Checkpoint {
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        )
    }

    fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the second line is not a tree size"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| Hash::from_slice(&r))
            .ok_or_else(|| bad("the third line is not a base64 SHA-256 root"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ED25519]);
    hasher.update(public.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The log's signing key, with its name (the checkpoint origin).
pub struct LogSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("LogSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LogSigner {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> LogSigner {
        LogSigner {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name+keyid+base64(0x01 ‖ public key)`: what an auditor verifies with.
    pub fn verifier_key(&self) -> String {
        let public = self.key.verifying_key();
        let mut typed = vec![ED25519];
        typed.extend_from_slice(public.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            crate::hex::encode(&key_id(&self.name, &public)),
            B64.encode(typed)
        )
    }

    /// The signed note for a checkpoint of this log.
    pub fn sign(&self, size: u64, root: Hash) -> String {
        let checkpoint = Checkpoint {
            origin: self.name.clone(),
            size,
            root,
        };
        let body = checkpoint.body();
        let signature = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{body}\n{DASH}{} {}\n", self.name, B64.encode(blob))
    }
}

/// A parsed verifier key.
#[derive(Debug, Clone)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    pub fn parse(text: &str) -> Result<VerifierKey, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadKey(m.to_owned());
        let mut parts = text.trim().splitn(3, '+');
        let name = parts
            .next()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("no key name"))?;
        let id_hex = parts.next().ok_or_else(|| bad("no key id"))?;
        let key_b64 = parts.next().ok_or_else(|| bad("no key"))?;
        let typed = B64
            .decode(key_b64)
            .map_err(|_| bad("the key is not base64"))?;
        let (kind, raw) = typed.split_first().ok_or_else(|| bad("empty key"))?;
        if *kind != ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| bad("not a valid Ed25519 point"))?;
        let id = key_id(name, &key);
        if crate::hex::encode(&id) != id_hex {
            return Err(bad("the key id does not match the key"));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Checks the note's signature by this key and returns the checkpoint it signs.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let (body, signatures) = note.split_once("\n\n").ok_or_else(|| {
            CheckpointError::Malformed("no blank line before the signatures".into())
        })?;
        let body = format!("{body}\n");
        let checkpoint = Checkpoint::parse_body(&body)?;
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix(DASH) else {
                continue;
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                continue;
            };
            if name != self.name {
                continue;
            }
            let Ok(blob) = B64.decode(blob) else { continue };
            if blob.len() != 4 + 64 || blob[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            return self
                .key
                .verify(body.as_bytes(), &signature)
                .map(|()| checkpoint)
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()));
        }
        Err(CheckpointError::NotSigned(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn sign_and_verify_a_checkpoint() {
        let signer = LogSigner::from_seed("steward.example/audit", [7u8; 32]);
        let root = sha256(b"root");
        let note = signer.sign(42, root);
        assert!(note.starts_with("steward.example/audit\n42\n"), "{note}");
        assert!(
            note.contains("\n\n\u{2014} steward.example/audit "),
            "{note}"
        );
        let verifier = VerifierKey::parse(&signer.verifier_key()).expect("key");
        let checkpoint = verifier.verify(&note).expect("verifies");
        assert_eq!((checkpoint.size, checkpoint.root), (42, root));
        // Any change to the body breaks the signature.
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert_eq!(
            verifier.verify(&forged),
            Err(CheckpointError::BadSignature(
                "steward.example/audit".into()
            ))
        );
        // Another key is not accepted.
        let other = LogSigner::from_seed("steward.example/audit", [8u8; 32]);
        let other_key = VerifierKey::parse(&other.verifier_key()).expect("key");
        assert!(matches!(
            other_key.verify(&note),
            Err(CheckpointError::NotSigned(_))
        ));
    }

    #[test]
    fn key_ids_follow_the_signed_note_rule() {
        let signer = LogSigner::from_seed("example", [1u8; 32]);
        let key = signer.verifier_key();
        let mut parts = key.split('+');
        assert_eq!(parts.next(), Some("example"));
        assert_eq!(parts.next().map(str::len), Some(8));
        let tampered = key.replacen("example", "exampl3", 1);
        assert!(VerifierKey::parse(&tampered).is_err());
    }
}
