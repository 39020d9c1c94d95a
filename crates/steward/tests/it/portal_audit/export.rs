//! The audit log's export as the portal serves it: a tar archive of the bundle
//! `steward audit export` writes, byte for byte, which `steward audit verify` accepts offline
//! and which names the index of an entry altered after the download.

use super::{attribute, history, signed_in};
use crate::both_backends;
use crate::helpers::{Backend, Run, TestApp, TestDb, run_steward};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use std::path::{Path, PathBuf};

/// Unpacks `archive` into `dir` with the system's `tar`; the bundle directory it holds.
pub(super) fn unpack(archive: &Path, dir: &Path) -> PathBuf {
    let tar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .output()
        .expect("tar runs");
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    dir.join("steward-audit-export")
}

/// `steward audit verify --bundle` with nothing but the key: no server answers at its address.
pub(super) fn verify_offline(bundle: &Path, key: &str) -> Run {
    run_steward(
        "http://127.0.0.1:9",
        "no-token",
        &[
            "audit",
            "verify",
            "--bundle",
            bundle.to_str().expect("utf-8 path"),
            "--public-key",
            key,
        ],
    )
}

/// The portal's export is the CLI's bundle in a tar archive, and verifies offline.
async fn the_export_downloads_and_verifies_offline(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    history(&app).await;
    let auditor = app.user("audra", &["auditor"]).await;
    let list = signed_in(&app, &auditor).await.get("/audit").await;
    assert_eq!(attribute(&list, "audit-export", "href"), "/audit/export");
    assert!(
        list.body
            .contains("steward audit verify --bundle steward-audit-export --public-key")
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let (size, archive) = download(&app, &auditor, "/audit/export", dir.path()).await;
    assert!(archive.ends_with(format!("steward-audit-{size}.tar")));
    let bundle = unpack(&archive, dir.path());
    let key = std::fs::read_to_string(bundle.join("public-key.txt")).expect("key file");
    let (_, served) = app.get("/api/v1/audit/public-key", &auditor).await;
    assert_eq!(key.trim(), served["key"].as_str().expect("key"));

    // Offline: no server, only the bundle and the key.
    let verified = verify_offline(&bundle, key.trim());
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    assert!(
        verified
            .stdout
            .starts_with(&format!("verified: {size} entries")),
        "{}",
        verified.stdout
    );

    // The same files `steward audit export` writes.
    let cli = dir.path().join("cli");
    let exported = run_steward(
        &app.base,
        &auditor,
        &[
            "audit",
            "export",
            "--out",
            cli.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    for file in [
        "entries.jsonl",
        "checkpoints.json",
        "checkpoint",
        "public-key.txt",
        "README.md",
    ] {
        assert_eq!(
            std::fs::read(bundle.join(file)).expect("portal file"),
            std::fs::read(cli.join(file)).expect("cli file"),
            "{file}"
        );
    }

    // An entry altered in the download is caught, at its index.
    let entries = std::fs::read_to_string(bundle.join("entries.jsonl")).expect("entries");
    std::fs::write(
        bundle.join("entries.jsonl"),
        entries.replacen("change.approved", "change.rejected", 1),
    )
    .expect("tamper");
    let caught = verify_offline(&bundle, key.trim());
    assert_ne!(caught.code, 0, "{}", caught.stdout);
    assert!(
        caught.stderr.contains("verification failed at index"),
        "{}",
        caught.stderr
    );
    app.stop().await;
}

/// Downloads `path` with `token` into `dir`; the checkpoint size its name carries, and the file.
pub(super) async fn download(app: &TestApp, token: &str, path: &str, dir: &Path) -> (u64, PathBuf) {
    let response = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "application/x-tar");
    let disposition = headers[CONTENT_DISPOSITION].to_str().expect("ascii");
    let name = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("an attachment: {disposition}"));
    let size: u64 = name
        .strip_prefix("steward-audit-")
        .and_then(|rest| rest.strip_suffix(".tar"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("steward-audit-<size>.tar: {name}"));
    let bytes = response.bytes().await.expect("body");
    let file = dir.join(name);
    std::fs::write(&file, &bytes).expect("write the archive");
    (size, file)
}

both_backends!(the_export_downloads_and_verifies_offline);
