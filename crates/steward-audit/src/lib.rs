//! Steward's verifiable audit log, as pure computation.
//!
//! Every audit event is a leaf of one RFC 9162 (Certificate Transparency v2) Merkle tree. This
//! crate owns the hashing ([`hash`]), appending to the tree ([`compact`]), inclusion and
//! consistency proofs and their verification ([`proof`]), the bytes of a leaf ([`entry`]), and
//! signed checkpoints in the C2SP tlog-checkpoint / signed-note format ([`checkpoint`]). It does no
//! IO: the store hands it hashes, the CLI hands it files, and an auditor's verifier built on it
//! needs nothing but the exported entries and a public key.

pub mod bundle;
pub mod checkpoint;
pub mod compact;
pub mod entry;
pub mod hash;
pub mod hex;
pub mod payload;
pub mod proof;

pub use hash::Hash;
