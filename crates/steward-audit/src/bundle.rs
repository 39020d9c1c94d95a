//! Offline verification of an exported log: the entries, the signed checkpoints, a public key.
//!
//! The verifier trusts nothing but the key. It recomputes every leaf hash from the entry bytes,
//! rebuilds the tree leaf by leaf, and checks its root against every signed checkpoint on the way
//! (and against a checkpoint the auditor kept from an earlier visit, which proves the old history
//! was not rewritten). The leaf hashes the operator's tree holds ride along in the export only to
//! say *where* an entry was altered: a mismatch there is reported at its index, while the
//! signatures are what make the verdict trustworthy.
//!
//! An export limited to one tenant keeps every leaf in its place but shows only that tenant's
//! entries: the others are their leaf hashes alone (`entry` absent). The tree is rebuilt from
//! the shown entries' hashes and the hidden leaves' hashes together, so every signed root still
//! has to match — which proves each shown entry's inclusion at its index (the hashes beside it
//! are its audit path) and that no leaf was removed, added or reordered — while the hidden
//! entries' contents never leave the server. What it cannot prove: a hidden leaf's hash does not
//! say whose entry it is, so the verifier takes the server's word that every withheld leaf
//! belongs to another tenant (an installation-wide export, which withholds nothing, is the check
//! for that). The verdict counts how many entries were shown in full and how many withheld.

use crate::checkpoint::{Checkpoint, VerifierKey};
use crate::compact::Frontier;
use crate::entry::ENTRY_PREFIX;
use crate::hash::{Hash, leaf_hash};
use serde::{Deserialize, Serialize};

/// The files of an export bundle, a directory: what `steward audit export` writes and the
/// portal's download packs, so an auditor verifies either the same way.
pub const ENTRIES_FILE: &str = "entries.jsonl";
/// Every signed checkpoint's note, oldest first, as a JSON list ([`checkpoints_json`]).
pub const CHECKPOINTS_FILE: &str = "checkpoints.json";
/// The latest signed checkpoint's note, to keep for `--previous` next time.
pub const LATEST_FILE: &str = "checkpoint";
/// The verifier key as the operator states it, one line.
pub const KEY_FILE: &str = "public-key.txt";
/// [`README`], for the auditor who opens the directory.
pub const README_FILE: &str = "README.md";

pub const README: &str = "# Steward audit log export

This directory is a complete copy of a Steward audit log, verifiable without the operator.

- `entries.jsonl`: one leaf per line: `index`, `entry` (the leaf's input bytes:
  `steward-audit-entry/v1` and canonical JSON, RFC 8785, naming the event's `tenant`) and
  `leaf_hash` (what the operator's tree holds, used only to locate damage). An export limited to
  one tenant keeps every leaf in its place but gives other tenants' leaves as `leaf_hash` alone
  (no `entry`): the tree is still rebuilt from every leaf, so each signed root proves that every
  entry shown is in the log at its index and that no leaf was removed or reordered. A withheld
  leaf's hash does not say whose entry it is: that it is another tenant's is the operator's
  word (an installation-wide export withholds nothing).
- `checkpoints.json`: every signed checkpoint (C2SP tlog-checkpoint in a signed note, Ed25519).
- `checkpoint`: the latest signed checkpoint. Keep it: next time, pass it as `--previous` to prove
  the new log extends this one and history was not rewritten.
- `public-key.txt`: the verifier key as the operator states it. Obtain the key independently and
  compare before trusting it.

Verify:

    steward audit verify --bundle . --public-key '<the key you trust>' [--previous old-checkpoint]

Every leaf is hashed as RFC 9162 §2.1.1 (SHA-256(0x00 ‖ entry), nodes SHA-256(0x01 ‖ left ‖
right)); the tree's root at each checkpoint size must equal the signed root. Any altered, missing,
reordered, inserted or truncated entry fails with its index.
";

/// One line of [`ENTRIES_FILE`], newline included.
pub fn entry_line(leaf: &BundleLeaf) -> Result<String, serde_json::Error> {
    Ok(format!("{}\n", serde_json::to_string(leaf)?))
}

/// The text of [`CHECKPOINTS_FILE`].
pub fn checkpoints_json(notes: &[String]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(notes)
}

/// One line of `entries.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleLeaf {
    pub index: u64,
    /// The leaf's input bytes, as text; absent for an entry the export withholds (another
    /// tenant's, in an export limited to one tenant).
    #[serde(default)]
    pub entry: Option<String>,
    /// The hash the operator's tree holds for this leaf, hex. A withheld entry is this alone.
    pub leaf_hash: Option<String>,
}

/// What failed, and at which leaf index when one can be named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{check}", index.map(|i| format!("index {i}: ")).unwrap_or_default())]
pub struct Failure {
    pub index: Option<u64>,
    pub check: String,
}

fn fail<T>(index: Option<u64>, check: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        index,
        check: check.into(),
    })
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries whose inclusion under a signed checkpoint was proven.
    pub size: u64,
    pub root: Hash,
    /// Signed checkpoints matched along the way (including `previous`).
    pub checkpoints: usize,
    /// Entries after the latest checkpoint, present but not yet covered by a signature.
    pub uncovered: u64,
    /// Leaves the export withheld, present as their hashes only (another tenant's entries).
    pub withheld: u64,
}

/// Verifies a log leaf by leaf, so an export of any size streams through in constant memory.
#[derive(Debug)]
pub struct Verifier {
    /// Signed checkpoints to meet, by size, with what each one is.
    checkpoints: Vec<(Checkpoint, &'static str)>,
    latest: u64,
    next: usize,
    frontier: Frontier,
    covered: Hash,
    withheld: u64,
}

impl Verifier {
    /// `notes` are the signed checkpoints in the export; `previous` is one the auditor kept from
    /// an earlier visit.
    pub fn new(
        notes: &[String],
        key: &VerifierKey,
        previous: Option<&str>,
    ) -> Result<Verifier, Failure> {
        let mut checkpoints: Vec<(Checkpoint, &'static str)> = Vec::new();
        for note in notes {
            match key.verify(note) {
                Ok(c) => checkpoints.push((c, "a signed checkpoint in the export")),
                Err(e) => return fail(None, format!("checkpoint signature: {e}")),
            }
        }
        if let Some(previous) = previous {
            match key.verify(previous) {
                Ok(c) => checkpoints.push((c, "the previous checkpoint you kept")),
                Err(e) => return fail(None, format!("previous checkpoint: {e}")),
            }
        }
        let Some(latest) = checkpoints.iter().map(|(c, _)| c.size).max() else {
            return fail(None, "the export holds no signed checkpoint");
        };
        checkpoints.sort_by_key(|(c, _)| c.size);
        let mut verifier = Verifier {
            checkpoints,
            latest,
            next: 0,
            frontier: Frontier::default(),
            covered: crate::hash::empty_root(),
            withheld: 0,
        };
        verifier.meet_checkpoints()?;
        Ok(verifier)
    }

    /// Compares the tree so far with every checkpoint of exactly its size.
    fn meet_checkpoints(&mut self) -> Result<(), Failure> {
        while let Some((c, what)) = self.checkpoints.get(self.next) {
            if c.size != self.frontier.size() {
                break;
            }
            let root = self.frontier.root();
            if root != c.root {
                let start = if self.next == 0 {
                    0
                } else {
                    self.checkpoints[self.next - 1].0.size
                };
                return fail(
                    Some(start),
                    format!(
                        "the first {} entries do not hash to the root of {what} (size {}): an entry in \
                         indexes {start}..{} was altered, removed, reordered or inserted, or history was rewritten",
                        c.size, c.size, c.size
                    ),
                );
            }
            self.covered = root;
            self.next += 1;
        }
        Ok(())
    }

    pub fn push(&mut self, leaf: &BundleLeaf) -> Result<(), Failure> {
        let expected = self.frontier.size();
        if leaf.index > expected {
            return fail(
                Some(expected),
                format!("entry missing (the next entry has index {})", leaf.index),
            );
        }
        if leaf.index < expected {
            return fail(Some(leaf.index), "entry out of order or duplicated");
        }
        let hash = match &leaf.entry {
            Some(entry) => Self::entry_hash(expected, entry, leaf.leaf_hash.as_deref())?,
            // A withheld entry: only its hash is given, and only the signed roots can vouch for
            // it (they do, or the next checkpoint fails).
            None => {
                let Some(hash) = leaf.leaf_hash.as_deref().and_then(Hash::from_hex) else {
                    return fail(
                        Some(expected),
                        "entry missing: neither the entry nor its leaf hash is given",
                    );
                };
                self.withheld += 1;
                hash
            }
        };
        self.frontier.push(hash);
        self.meet_checkpoints()
    }

    /// The leaf hash of a shown entry, checked against the hash the operator's tree holds.
    fn entry_hash(index: u64, entry: &str, stored: Option<&str>) -> Result<Hash, Failure> {
        // The hash covers the bytes; checking the format prefix is enough to refuse foreign data
        // without paying for a JSON parse per entry.
        if !entry.starts_with(ENTRY_PREFIX) {
            return fail(
                Some(index),
                "entry unreadable: not a steward-audit-entry/v1 entry",
            );
        }
        let hash = leaf_hash(entry.as_bytes());
        if let Some(stored) = stored
            && Hash::from_hex(stored) != Some(hash)
        {
            return fail(
                Some(index),
                "the entry does not match the leaf hash in the log's tree: the entry was altered or replaced",
            );
        }
        Ok(hash)
    }

    pub fn finish(self) -> Result<Verified, Failure> {
        let size = self.frontier.size();
        if size < self.latest {
            return fail(
                Some(size),
                format!(
                    "entries missing: the export has {size} entries but a signed checkpoint covers {} (the log was truncated)",
                    self.latest
                ),
            );
        }
        Ok(Verified {
            size: self.latest,
            root: self.covered,
            checkpoints: self.checkpoints.len(),
            uncovered: size - self.latest,
            withheld: self.withheld,
        })
    }
}

/// Verifies a whole log export (see [`Verifier`]).
pub fn verify(
    leaves: impl IntoIterator<Item = BundleLeaf>,
    notes: &[String],
    key: &VerifierKey,
    previous: Option<&str>,
) -> Result<Verified, Failure> {
    let mut verifier = Verifier::new(notes, key, previous)?;
    for leaf in leaves {
        verifier.push(&leaf)?;
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::LogSigner;
    use crate::entry::Entry;

    fn entry(i: u64) -> String {
        let e = Entry {
            event_id: format!("e{i}"),
            time: "2026-11-23T10:00:00.000000Z".into(),
            actor: "mia".into(),
            action: "change.approved".into(),
            subject_type: "change".into(),
            subject_id: format!("CHG-{i}"),
            outcome: "success".into(),
            correlation_id: None,
            policy_version: None,
            payload_sha256: None,
            tenant: Some(
                if i.is_multiple_of(3) {
                    "risk"
                } else {
                    "retail"
                }
                .into(),
            ),
        };
        String::from_utf8(e.to_bytes()).expect("utf8")
    }

    fn log(n: u64) -> Vec<BundleLeaf> {
        (0..n)
            .map(|i| {
                let entry = entry(i);
                BundleLeaf {
                    index: i,
                    leaf_hash: Some(leaf_hash(entry.as_bytes()).to_hex()),
                    entry: Some(entry),
                }
            })
            .collect()
    }

    fn signed(signer: &LogSigner, leaves: &[BundleLeaf], size: u64) -> String {
        let hashes: Vec<Hash> = leaves[..size as usize]
            .iter()
            .map(|l| leaf_hash(l.entry.as_deref().expect("entry").as_bytes()))
            .collect();
        signer.sign(size, crate::hash::root_of(&hashes))
    }

    fn check(
        leaves: Vec<BundleLeaf>,
        notes: &[String],
        key: &VerifierKey,
        expected_index: Option<u64>,
        needle: &str,
    ) {
        let failure = verify(leaves, notes, key, None).expect_err("tampering must be detected");
        assert_eq!(failure.index, expected_index, "{failure}");
        assert!(failure.check.contains(needle), "{failure}");
    }

    #[test]
    fn an_untouched_log_verifies_and_every_tampering_is_named() {
        let signer = LogSigner::from_seed("test/log", [3u8; 32]);
        let key = VerifierKey::parse(&signer.verifier_key()).expect("key");
        let good = log(20);
        let notes = vec![signed(&signer, &good, 7), signed(&signer, &good, 18)];
        let ok = verify(good.clone(), &notes, &key, None).expect("verifies");
        assert_eq!((ok.size, ok.checkpoints, ok.uncovered), (18, 2, 2));

        let mut altered = good.clone();
        altered[5].entry = altered[5]
            .entry
            .as_ref()
            .map(|e| e.replace("CHG-5", "CHG-6"));
        check(
            altered,
            &notes,
            &key,
            Some(5),
            "does not match the leaf hash",
        );

        let mut deleted = good.clone();
        deleted.remove(9);
        check(deleted, &notes, &key, Some(9), "entry missing");

        let mut reordered = good.clone();
        let (a, b) = (reordered[3].entry.clone(), reordered[4].entry.clone());
        reordered[3].entry = b;
        reordered[4].entry = a;
        check(
            reordered,
            &notes,
            &key,
            Some(3),
            "does not match the leaf hash",
        );

        check(good[..12].to_vec(), &notes, &key, Some(12), "truncated");

        // A forged entry inserted at 2 with its own consistent leaf hash, later entries shifted:
        // the signed roots catch it, in the range before the first checkpoint.
        let mut forged = good.clone();
        forged.insert(
            2,
            BundleLeaf {
                index: 2,
                entry: Some(entry(99)),
                leaf_hash: Some(leaf_hash(entry(99).as_bytes()).to_hex()),
            },
        );
        for (i, leaf) in forged.iter_mut().enumerate() {
            leaf.index = i as u64;
        }
        check(forged, &notes, &key, Some(0), "do not hash to the root");

        // A checkpoint by another key is refused outright.
        let other = LogSigner::from_seed("test/log", [4u8; 32]);
        let foreign = vec![signed(&other, &good, 18)];
        let failure = verify(good.clone(), &foreign, &key, None).expect_err("foreign key");
        assert!(failure.check.contains("checkpoint signature"), "{failure}");
    }

    #[test]
    fn a_rewritten_history_fails_against_the_previous_checkpoint() {
        let signer = LogSigner::from_seed("test/log", [3u8; 32]);
        let key = VerifierKey::parse(&signer.verifier_key()).expect("key");
        let old = log(10);
        let kept = signed(&signer, &old, 10);
        // Later: more events, and the operator (holding the key) rewrites entry 4 and re-signs.
        let mut new = log(15);
        new[4].entry = new[4].entry.as_ref().map(|e| e.replace("CHG-4", "CHG-44"));
        new[4].leaf_hash =
            Some(leaf_hash(new[4].entry.as_deref().expect("entry").as_bytes()).to_hex());
        let resigned = vec![signed(&signer, &new, 15)];
        assert!(
            verify(new.clone(), &resigned, &key, None).is_ok(),
            "self-consistent on its own"
        );
        let failure = verify(new, &resigned, &key, Some(&kept)).expect_err("history rewritten");
        assert!(
            failure.check.contains("the previous checkpoint you kept"),
            "{failure}"
        );
        // An honest extension is consistent with the kept checkpoint.
        let honest = log(15);
        let notes = vec![signed(&signer, &honest, 15)];
        assert!(verify(honest, &notes, &key, Some(&kept)).is_ok());
    }

    /// An export limited to one tenant: the others' entries withheld, their hashes kept.
    fn limited_to(leaves: &[BundleLeaf], tenant: &str) -> Vec<BundleLeaf> {
        let marker = format!("\"tenant\":\"{tenant}\"");
        leaves
            .iter()
            .map(|l| BundleLeaf {
                index: l.index,
                entry: l.entry.clone().filter(|e| e.contains(&marker)),
                leaf_hash: l.leaf_hash.clone(),
            })
            .collect()
    }

    #[test]
    fn an_export_limited_to_one_tenant_verifies_and_its_entries_cannot_be_altered() {
        let signer = LogSigner::from_seed("test/log", [3u8; 32]);
        let key = VerifierKey::parse(&signer.verifier_key()).expect("key");
        let good = log(20);
        let notes = vec![signed(&signer, &good, 7), signed(&signer, &good, 18)];
        let risk = limited_to(&good, "risk");
        assert!(
            risk.iter()
                .all(|l| l.entry.as_deref().is_none_or(|e| !e.contains("retail")))
        );
        let ok = verify(risk.clone(), &notes, &key, None).expect("verifies");
        assert_eq!((ok.size, ok.withheld), (18, 13));

        // A shown entry altered (with its stored hash recomputed to match) breaks a signed root.
        let mut altered = risk.clone();
        altered[3].entry = altered[3]
            .entry
            .as_ref()
            .map(|e| e.replace("CHG-3", "CHG-33"));
        altered[3].leaf_hash =
            Some(leaf_hash(altered[3].entry.as_deref().expect("entry").as_bytes()).to_hex());
        check(altered, &notes, &key, Some(0), "do not hash to the root");

        // So does a withheld hash replaced by another.
        let mut swapped = risk.clone();
        swapped[4].leaf_hash = swapped[3].leaf_hash.clone();
        check(swapped, &notes, &key, Some(0), "do not hash to the root");

        // A leaf with neither entry nor hash is a missing entry.
        let mut missing = risk;
        missing[10].leaf_hash = None;
        check(
            missing,
            &notes,
            &key,
            Some(10),
            "neither the entry nor its leaf hash",
        );
    }
}
