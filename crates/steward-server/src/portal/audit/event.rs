//! One audit event's page: its entry as the log holds it, its leaf hash, and its inclusion proof
//! against the latest signed checkpoint, checked twice so the reader need not take the
//! server's word for it.
//!
//! The server checks it with `steward-audit`, the code `steward audit prove` and the offline
//! verifier run: the checkpoint's signature with the log's verifier key, the entry's bytes
//! against the leaf hash, and the audit path up to the signed root (RFC 9162 §2.1.3.2). The
//! page then hands the entry, the leaf hash, the path and the root to `/static/portal.js`
//! (in `data-` attributes and the entry's own `<pre>`: the CSP runs no inline script), which
//! recomputes the leaf hash and the root with the browser's own SHA-256 and says whether they
//! match. Another tenant's event, like one that does not exist, is a 404; an event newer than
//! every checkpoint (a race with the signer, which signs on demand) a 409.

use super::{CheckpointBox, EventFacts, Shown, event_row};
use crate::AppState;
use crate::api::audit::{InclusionProofView, LeavesQuery, inclusion_proof, latest, leaves_page};
use crate::api::page::PageRequest;
use crate::auth::ReadAuditLog;
use crate::error::ApiError;
use crate::portal::Visitor;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use steward_audit::checkpoint::VerifierKey;
use steward_audit::hash::{Hash, leaf_hash};
use steward_audit::proof;

#[derive(Template)]
#[template(path = "audit_event.html")]
struct EventPage {
    chrome: Chrome,
    index: u64,
    /// The entry's facts, when its bytes parse.
    facts: Option<EventFacts>,
    /// Why they do not.
    unreadable: Option<String>,
    /// The leaf's input bytes, exactly as hashed.
    entry: String,
    leaf_hash: String,
    checkpoint: CheckpointBox,
    /// The audit path, leaf level first.
    path: Vec<String>,
    /// The same, space-separated, for the script.
    path_data: String,
    verdict: ProofVerdict,
}

/// What the server concluded about an event's inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProofVerdict {
    pub verified: bool,
    pub text: String,
}

/// Checks that `entry` is leaf `index` of the tree whose signed checkpoint is `note`, with the
/// code the offline verifier runs: the note's signature by `key`, the entry's bytes against
/// `leaf_hash` (RFC 9162: SHA-256(0x00 ‖ entry)), and the audit `path` from that leaf to the
/// signed root.
pub(super) fn check_inclusion(
    key: &str,
    note: &str,
    entry: &str,
    proof: &InclusionProofView,
) -> ProofVerdict {
    let failed = |why: String| ProofVerdict {
        verified: false,
        text: format!("Not verified: {why}"),
    };
    let checkpoint = match VerifierKey::parse(key).and_then(|k| k.verify(note)) {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            return failed(format!(
                "the checkpoint's signature does not check out ({e})"
            ));
        }
    };
    if checkpoint.size != proof.size {
        return failed(format!(
            "the proof is for a tree of {} events, the signed checkpoint for {}",
            proof.size, checkpoint.size
        ));
    }
    let Some(leaf) = Hash::from_hex(&proof.leaf_hash) else {
        return failed("the leaf hash is not hex SHA-256".into());
    };
    if leaf_hash(entry.as_bytes()) != leaf {
        return failed(
            "the entry does not hash to the leaf hash the tree holds: it was altered".into(),
        );
    }
    let Some(path) = proof
        .proof
        .iter()
        .map(|h| Hash::from_hex(h))
        .collect::<Option<Vec<_>>>()
    else {
        return failed("a hash of the audit path is not hex SHA-256".into());
    };
    match proof::verify_inclusion(proof.index, proof.size, &leaf, &path, &checkpoint.root) {
        Ok(()) => ProofVerdict {
            verified: true,
            text: format!(
                "Included in the checkpoint of size {} with root {}: verified",
                checkpoint.size, checkpoint.root
            ),
        },
        Err(e) => failed(format!(
            "the audit path does not lead from this leaf to the signed root {} ({e})",
            checkpoint.root
        )),
    }
}

/// One event of the audit log, with its inclusion proof checked against the latest signed
/// checkpoint (the values `GET /api/v1/audit/proofs/inclusion?index=` answers).
#[utoipa::path(get, path = "/audit/{index}", tag = "portal",
    params(("index" = u64, Path, description = "the event's leaf index in the log")),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the event and its inclusion proof"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer's roles do not read the audit log"),
        (status = 404, description = "no such event, or another tenant's"),
        (status = 409, description = "no signed checkpoint covers the event yet: reload")))]
pub async fn audit_event(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(index): Path<String>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, page(&state, visitor, &index).await)
}

async fn page(state: &AppState, visitor: Visitor, index: &str) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let permit = viewer.caller.may::<ReadAuditLog>(state)?;
    let index: u64 = index.trim().parse().map_err(|_| {
        ApiError::NotFound(format!(
            "no audit event '{index}': an event's page is /audit/<its index>, a whole number"
        ))
    })?;
    let log = permit.log();
    // `GET /api/v1/audit/leaves?from=<index>&limit=1`, in the reader's scope.
    let one = PageRequest::parse(None, Some("1")).map_err(ApiError::Invalid)?;
    let query = LeavesQuery {
        from: Some(index),
        tenant: None,
        order: None,
        actor: None,
        subject: None,
        subject_type: None,
        action: None,
    };
    let leaf = leaves_page(&log, &query, &one)
        .await?
        .items
        .into_iter()
        .find(|l| l.index == index)
        .ok_or_else(|| ApiError::NotFound(format!("no audit event {index} in the log yet")))?;
    let Some(entry) = leaf.entry.clone() else {
        return Err(ApiError::NotFound(format!(
            "no audit event {index} that you may read: another tenant's entries are withheld"
        )));
    };
    let checkpoint = latest(state, &permit).await?;
    if index >= checkpoint.size {
        return Err(ApiError::Conflict {
            message: format!(
                "event {index} is not covered by a signed checkpoint yet (the latest covers {} events): reload in a few seconds",
                checkpoint.size
            ),
            details: json!({ "index": index, "checkpoint_size": checkpoint.size }),
        });
    }
    let proof = inclusion_proof(state, &permit, index, Some(checkpoint.size)).await?;
    let key = state.checkpointer.verifier_key();
    let verdict = check_inclusion(&key, &checkpoint.note, &entry, &proof);
    let row = event_row(&leaf);
    let (facts, unreadable) = match row.shown {
        Shown::Event(facts) => (Some(*facts), None),
        Shown::Unreadable(why) => (None, Some(why)),
        Shown::Withheld => (None, None),
    };
    let page = EventPage {
        chrome: chrome(&viewer),
        index,
        facts,
        unreadable,
        entry,
        leaf_hash: proof.leaf_hash.clone(),
        checkpoint: CheckpointBox::new(checkpoint, key, state.clock.now()),
        path_data: proof.proof.join(" "),
        path: proof.proof,
        verdict,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_audit::checkpoint::LogSigner;
    use steward_audit::hash::root_of;

    /// A log of `n` entries signed at its full size: the signer's key, the entries, the note.
    fn signed_log(n: u64) -> (String, Vec<String>, String) {
        let signer = LogSigner::from_seed("test/log", [7u8; 32]);
        let entries: Vec<String> = (0..n)
            .map(|i| {
                format!("steward-audit-entry/v1\n{{\"actor\":\"mia\",\"subject_id\":\"CHG-{i}\"}}")
            })
            .collect();
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e.as_bytes())).collect();
        let note = signer.sign(n, root_of(&hashes));
        (signer.verifier_key(), entries, note)
    }

    /// The proof of leaf `index`, from the perfect subtrees of the log.
    fn proof_of(entries: &[String], index: u64) -> InclusionProofView {
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e.as_bytes())).collect();
        let size = hashes.len() as u64;
        let path = proof::inclusion_proof(index, size, |level, i| {
            let start = (i << level) as usize;
            let end = (((i + 1) << level) as usize).min(hashes.len());
            Ok(root_of(&hashes[start..end]))
        })
        .expect("proof");
        InclusionProofView {
            index,
            size,
            leaf_hash: hashes[index as usize].to_hex(),
            proof: path.iter().map(Hash::to_hex).collect(),
            checkpoint: None,
        }
    }

    #[test]
    fn an_honest_proof_verifies_and_every_tampering_is_refused() {
        let (key, entries, note) = signed_log(11);
        for index in [0, 5, 10] {
            let proof = proof_of(&entries, index);
            let verdict = check_inclusion(&key, &note, &entries[index as usize], &proof);
            assert!(verdict.verified, "{index}: {}", verdict.text);
            assert!(
                verdict
                    .text
                    .starts_with("Included in the checkpoint of size 11 with root "),
                "{}",
                verdict.text
            );
        }
        let honest = proof_of(&entries, 5);
        let refused = |proof: &InclusionProofView, entry: &str, note: &str, needle: &str| {
            let verdict = check_inclusion(&key, note, entry, proof);
            assert!(!verdict.verified, "{needle}: {}", verdict.text);
            assert!(
                verdict.text.starts_with("Not verified: "),
                "{}",
                verdict.text
            );
            assert!(verdict.text.contains(needle), "{needle}: {}", verdict.text);
        };

        // A hash of the path changed.
        let mut tampered = proof_of(&entries, 5);
        tampered.proof[1] = tampered.proof[0].clone();
        refused(&tampered, &entries[5], &note, "does not lead");
        // A hash dropped.
        let mut short = proof_of(&entries, 5);
        short.proof.pop();
        refused(&short, &entries[5], &note, "does not lead");
        // Another leaf's path.
        let other = InclusionProofView {
            index: 5,
            ..proof_of(&entries, 6)
        };
        refused(&other, &entries[6], &note, "does not lead");
        // The entry altered.
        let altered = entries[5].replace("CHG-5", "CHG-55");
        refused(&honest, &altered, &note, "altered");
        // A checkpoint of another tree (a wrong root), signed by the same key.
        let elsewhere = LogSigner::from_seed("test/log", [7u8; 32]).sign(11, leaf_hash(b"other"));
        refused(&honest, &entries[5], &elsewhere, "does not lead");
        // A checkpoint signed by another key.
        let forged = LogSigner::from_seed("test/log", [8u8; 32]).sign(11, leaf_hash(b"x"));
        refused(&honest, &entries[5], &forged, "signature");
        // A note whose size is not the proof's.
        let (_, _, twelve) = signed_log(12);
        refused(&honest, &entries[5], &twelve, "a tree of 11 events");
    }
}
