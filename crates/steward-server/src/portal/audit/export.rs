//! The audit log's export as a download: the bundle `steward audit export` writes (the same
//! files, made by the same `steward_audit::bundle` functions from the same API reads), packed in
//! one POSIX tar archive so a browser can save it. An auditor unpacks it and runs
//! `steward audit verify --bundle steward-audit-export --public-key …`, offline.
//!
//! It is the whole log as the reader may read it, never the filtered list: the verifier rebuilds
//! the tree from every leaf in order and meets every signed checkpoint's root, which a subset
//! of the leaves cannot do. A tenant's reader gets its own entries and every other leaf as its
//! hash (what `steward audit export` gives that account); an installation reader may ask for
//! one tenant's view with `?tenant=`, as `--tenant` does. The archive is built in memory: a
//! log of millions of events is better exported with the CLI, which streams it to disk.

use crate::AppState;
use crate::api::audit::{LeavesQuery, asked_tenant, latest, leaves_page};
use crate::api::page::{MAX_LIMIT, PageRequest};
use crate::auth::ReadAuditLog;
use crate::error::ApiError;
use crate::portal::Visitor;
use crate::portal::answer::answer;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use steward_audit::bundle::{self, BundleLeaf};
use utoipa::IntoParams;

/// The directory the archive unpacks into.
pub(super) const DIRECTORY: &str = "steward-audit-export";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// An installation reader's export of one tenant's view: its entries in full, the others
    /// as leaf hashes only (`steward audit export --tenant`).
    pub tenant: Option<String>,
}

/// The audit log's export bundle, to verify offline: a tar archive of the directory
/// `steward audit export` writes (entries, every signed checkpoint, the latest one, the public
/// key, a README), as a download.
#[utoipa::path(get, path = "/audit/export", tag = "portal", params(ExportQuery),
    responses(
        (status = 200, content_type = "application/x-tar", body = Vec<u8>, description = "the export bundle as a tar archive (Content-Disposition: attachment)"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer's roles do not read the audit log"),
        (status = 422, description = "an unknown tenant, or a tenant's reader naming another")))]
pub async fn audit_export(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<crate::api::body::QueryParams<ExportQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, export(&state, visitor, query).await)
}

async fn export(
    state: &AppState,
    visitor: Visitor,
    query: Result<crate::api::body::QueryParams<ExportQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let permit = viewer.caller.may::<ReadAuditLog>(state)?;
    let crate::api::body::QueryParams(query) = query?;
    let tenant = query.tenant.filter(|t| !t.trim().is_empty());
    let log = permit.log();
    // Refuse a bad tenant before signing anything.
    asked_tenant(&log, tenant.as_deref()).await?;
    // As `steward audit export` reads it: the latest checkpoint (signed now, covering every
    // committed event), every checkpoint, then every leaf from 0 in the reader's scope.
    let checkpoint = latest(state, &permit).await?;
    let mut notes = Vec::new();
    let mut after = None;
    loop {
        let rows = log
            .tree()
            .checkpoints_after(after, MAX_LIMIT as i64)
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.size);
        notes.extend(rows.into_iter().map(|c| c.note));
    }
    let query = LeavesQuery {
        from: None,
        tenant,
        order: None,
        actor: None,
        subject: None,
        subject_type: None,
        action: None,
    };
    let mut entries = String::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = PageRequest::parse(cursor.as_deref(), Some(&MAX_LIMIT.to_string()))
            .map_err(ApiError::Invalid)?;
        let leaves = leaves_page(&log, &query, &page).await?;
        for leaf in leaves.items {
            let leaf = BundleLeaf {
                index: leaf.index,
                entry: leaf.entry,
                leaf_hash: leaf.leaf_hash,
            };
            entries.push_str(&bundle::entry_line(&leaf).map_err(anyhow::Error::from)?);
        }
        match leaves.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let key = format!("{}\n", state.checkpointer.verifier_key());
    let checkpoints = bundle::checkpoints_json(&notes).map_err(anyhow::Error::from)?;
    let files: [(&str, &[u8]); 5] = [
        (bundle::README_FILE, bundle::README.as_bytes()),
        (bundle::KEY_FILE, key.as_bytes()),
        (bundle::LATEST_FILE, checkpoint.note.as_bytes()),
        (bundle::CHECKPOINTS_FILE, checkpoints.as_bytes()),
        (bundle::ENTRIES_FILE, entries.as_bytes()),
    ];
    let archive = tar(
        DIRECTORY,
        &files,
        state.clock.now().timestamp().max(0) as u64,
    );
    let disposition = format!(
        "attachment; filename=\"steward-audit-{}.tar\"",
        checkpoint.size
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        archive,
    )
        .into_response())
}

/// A POSIX ustar archive of `files` inside `directory`, every member dated `mtime` (seconds
/// since 1970). Names are short and ASCII (the bundle's own), so no extension headers.
pub(super) fn tar(directory: &str, files: &[(&str, &[u8])], mtime: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&header_block(
        &format!("{directory}/"),
        0,
        b'5',
        0o755,
        mtime,
    ));
    for (name, data) in files {
        let path = format!("{directory}/{name}");
        out.extend_from_slice(&header_block(&path, data.len() as u64, b'0', 0o644, mtime));
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    // The end of the archive: two zero blocks.
    out.resize(out.len() + 1024, 0);
    out
}

/// One ustar header block. The bundle's names are fixed and short and an export is built in
/// memory, so a name past ustar's 100 bytes or a size past its 11 octal digits (8 GiB) is a
/// bug here: it stops the export rather than write an archive that names or sizes a member
/// wrongly.
fn header_block(path: &str, size: u64, kind: u8, mode: u32, mtime: u64) -> [u8; 512] {
    assert!(
        path.len() <= 100 && size < 8u64.pow(11),
        "a ustar member must have a name of at most 100 bytes and a size under 8 GiB: {path} ({size} bytes)"
    );
    let mut block = [0u8; 512];
    let mut put = |at: usize, bytes: &[u8]| block[at..at + bytes.len()].copy_from_slice(bytes);
    // Octal, zero-padded to the field's width less its terminating NUL.
    let octal = |value: u64, width: usize| format!("{value:0w$o}", w = width - 1).into_bytes();
    put(0, path.as_bytes());
    put(100, &octal(u64::from(mode), 8));
    put(108, &octal(0, 8));
    put(116, &octal(0, 8));
    put(124, &octal(size, 12));
    put(136, &octal(mtime, 12));
    put(148, b"        ");
    put(156, &[kind]);
    put(257, b"ustar\0");
    put(263, b"00");
    put(265, b"steward");
    put(297, b"steward");
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    let mut checksum = format!("{sum:06o}").into_bytes();
    checksum.extend_from_slice(b"\0 ");
    block[148..156].copy_from_slice(&checksum);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The members of an archive: (name, type, contents), reading it as tar readers do.
    fn members(archive: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 512 <= archive.len() {
            let block = &archive[at..at + 512];
            if block.iter().all(|b| *b == 0) {
                break;
            }
            let field = |from: usize, len: usize| {
                let raw = &block[from..from + len];
                let end = raw.iter().position(|b| *b == 0).unwrap_or(len);
                String::from_utf8(raw[..end].to_vec()).expect("ascii")
            };
            let size = u64::from_str_radix(field(124, 12).trim(), 8).expect("size") as usize;
            let stored = u32::from_str_radix(field(148, 7).trim(), 8).expect("checksum");
            let mut blank = block.to_vec();
            blank[148..156].copy_from_slice(b"        ");
            assert_eq!(stored, blank.iter().map(|b| u32::from(*b)).sum::<u32>());
            assert_eq!(&block[257..263], b"ustar\0");
            let data = archive[at + 512..at + 512 + size].to_vec();
            out.push((field(0, 100), block[156], data));
            at += 512 + size.next_multiple_of(512);
        }
        out
    }

    #[test]
    fn the_archive_holds_the_directory_and_each_file_whole() {
        let long = "x".repeat(1000);
        let archive = tar(
            DIRECTORY,
            &[
                ("README.md", b"hello\n"),
                ("entries.jsonl", long.as_bytes()),
                ("empty", b""),
            ],
            1_790_000_000,
        );
        assert_eq!(archive.len() % 512, 0);
        let found = members(&archive);
        assert_eq!(
            found,
            vec![
                ("steward-audit-export/".to_owned(), b'5', vec![]),
                (
                    "steward-audit-export/README.md".to_owned(),
                    b'0',
                    b"hello\n".to_vec()
                ),
                (
                    "steward-audit-export/entries.jsonl".to_owned(),
                    b'0',
                    long.into_bytes()
                ),
                ("steward-audit-export/empty".to_owned(), b'0', vec![]),
            ]
        );
    }
}
