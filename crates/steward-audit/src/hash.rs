//! RFC 9162 §2.1.1 hashing: leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right),
//! and the empty tree's root = SHA-256("").

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 hash in the tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Hash> {
        crate::hex::decode(text).map(Hash)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; 32]>::try_from(bytes).ok().map(Hash)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn finish(hasher: Sha256) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    Hash(out)
}

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    finish(hasher)
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    finish(hasher)
}

pub fn empty_root() -> Hash {
    finish(Sha256::new())
}

/// Plain SHA-256, for hashes of payloads kept outside the tree.
pub fn sha256(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(data);
    finish(hasher)
}

/// The root of a list of leaf hashes, straight from the RFC's recursive definition. Used by the
/// offline verifier (linear, streaming-friendly via [`crate::compact::Frontier`]) and in tests.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = crate::compact::Frontier::default();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn h(hex: &str) -> Hash {
        Hash::from_hex(hex).expect("hex")
    }

    pub(crate) fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect()
    }

    /// The leaf inputs and roots of transparency-dev/merkle's test data; see testdata/README.md.
    pub(crate) fn vector_leaves() -> Vec<Hash> {
        include_str!("../testdata/leaves.txt")
            .lines()
            .map(|line| leaf_hash(&bytes(line.trim())))
            .collect()
    }

    pub(crate) fn vector_roots() -> Vec<Hash> {
        include_str!("../testdata/roots.txt")
            .lines()
            .map(|l| h(l.trim()))
            .collect()
    }

    #[test]
    fn roots_match_the_public_vectors() {
        let leaves = vector_leaves();
        let roots = vector_roots();
        assert_eq!(roots[0], empty_root());
        for size in 0..=leaves.len() {
            assert_eq!(root_of(&leaves[..size]), roots[size], "size {size}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let x = sha256(b"abc");
        assert_eq!(
            x.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Hash::from_hex(&x.to_hex()), Some(x));
        assert_eq!(Hash::from_hex("zz"), None);
    }
}
