//! `steward audit …`: checkpoints, proofs, export, and verification — offline from an exported
//! bundle with nothing but the public key, or live against a server.

use crate::client::Client;
use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use steward_audit::bundle::{self, BundleLeaf};
use steward_audit::checkpoint::VerifierKey;
use steward_audit::hash::Hash;
use steward_audit::proof;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the key that verifies this log's checkpoints (signed-note verifier key).
    PublicKey,
    /// Print the latest signed checkpoint (a new one covers every event committed so far).
    Checkpoint,
    /// Print (and check) an inclusion proof for one event.
    Prove {
        #[arg(long, conflicts_with = "event", required_unless_present = "event")]
        index: Option<u64>,
        #[arg(long)]
        event: Option<String>,
        /// Tree size to prove against [default: the latest checkpoint].
        #[arg(long)]
        size: Option<u64>,
    },
    /// Print (and check) a consistency proof between two tree sizes.
    Consistency {
        #[arg(long)]
        first: u64,
        #[arg(long)]
        second: Option<u64>,
    },
    /// Write a self-contained bundle an auditor verifies offline. An account outside the
    /// installation tenant exports its own tenant's entries, the others as leaf hashes only.
    Export {
        #[arg(long)]
        out: PathBuf,
        /// Limit the export to this tenant's entries; the others appear as leaf hashes only, and
        /// it still verifies against the signed checkpoints (installation auditors and admins).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Erase a person's personal data from the audit trail (their payload key is destroyed).
    Erase {
        /// The user name.
        subject: String,
        /// The legal basis, recorded in the erasure event.
        #[arg(long)]
        basis: String,
    },
    /// Place a legal hold on a person's audit data (erasure and retention skip it).
    Hold {
        subject: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a legal hold.
    Release { subject: String },
    /// Apply payload retention now.
    Retention,
    /// Verify the log: an exported bundle offline (--bundle), or the server's log live.
    Verify {
        /// A directory written by `steward audit export`; no server is contacted.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// The verifier key, or a file holding it. Required offline; live, the server's is used
        /// (and said to be untrusted) when absent.
        #[arg(long)]
        public_key: Option<String>,
        /// A checkpoint kept from an earlier visit: the log must extend it, not rewrite it.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
}

fn key_text(given: &str) -> anyhow::Result<String> {
    let path = Path::new(given);
    if path.is_file() {
        Ok(std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_owned())
    } else {
        Ok(given.trim().to_owned())
    }
}

fn hashes(value: &Value) -> anyhow::Result<Vec<Hash>> {
    value
        .as_array()
        .context("the proof is not a list")?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(Hash::from_hex)
                .context("a proof hash is not hex SHA-256")
        })
        .collect()
}

async fn server_key(client: &Client) -> anyhow::Result<VerifierKey> {
    let key = client
        .call(Method::GET, "/api/v1/audit/public-key", None)
        .await?;
    Ok(VerifierKey::parse(key["key"].as_str().unwrap_or_default())?)
}

/// Every leaf, in index order, following the server's cursors (entries outside `tenant`, or
/// outside the caller's view, as leaf hashes only); the number of leaves.
async fn fetch_leaves(
    client: &Client,
    tenant: Option<&str>,
    mut each: impl FnMut(BundleLeaf) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut next = 0u64;
    let query: Vec<(&str, String)> = tenant
        .map(|t| ("tenant", t.to_owned()))
        .into_iter()
        .collect();
    crate::paging::each_item(client, "/api/v1/audit/leaves", &query, |leaf| {
        let leaf: BundleLeaf = serde_json::from_value(leaf).context("unexpected leaf")?;
        next = leaf.index + 1;
        each(leaf)
    })
    .await?;
    Ok(next)
}

/// Every signed checkpoint's note, oldest first, following the server's cursors.
async fn fetch_notes(client: &Client) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    crate::paging::each_item(client, "/api/v1/audit/checkpoints", &[], |c| {
        notes.extend(c["note"].as_str().map(str::to_owned));
        Ok(())
    })
    .await?;
    Ok(notes)
}

pub async fn run(client: &Client, json: bool, command: AuditCommand) -> anyhow::Result<()> {
    let print = |value: &Value, text: String| crate::output::emit(json, value, |_| text);
    match command {
        AuditCommand::PublicKey => {
            let key = client
                .call(Method::GET, "/api/v1/audit/public-key", None)
                .await?;
            print(
                &key,
                format!("{}\n", key["key"].as_str().unwrap_or_default()),
            )
        }
        AuditCommand::Checkpoint => {
            let c = client
                .call(Method::GET, "/api/v1/audit/checkpoint", None)
                .await?;
            print(&c, c["note"].as_str().unwrap_or_default().to_owned())
        }
        AuditCommand::Prove { index, event, size } => {
            let mut query = Vec::new();
            if let Some(index) = index {
                query.push(("index", index.to_string()));
            }
            if let Some(event) = event {
                query.push(("event_id", event));
            }
            if let Some(size) = size {
                query.push(("size", size.to_string()));
            }
            let p = client
                .call_with_query(Method::GET, "/api/v1/audit/proofs/inclusion", &query, None)
                .await?;
            let (index, size) = (
                p["index"].as_u64().unwrap_or(0),
                p["size"].as_u64().unwrap_or(0),
            );
            let leaf = p["leaf_hash"]
                .as_str()
                .and_then(Hash::from_hex)
                .context("no leaf hash")?;
            let path = hashes(&p["proof"])?;
            let mut verdict =
                String::from("not checked: give no --size to prove against the signed checkpoint");
            if let Some(note) = p["checkpoint"].as_str() {
                let checkpoint = server_key(client).await?.verify(note)?;
                proof::verify_inclusion(index, size, &leaf, &path, &checkpoint.root)
                    .with_context(|| format!("the proof for index {index} does not verify"))?;
                verdict = format!("verified against the signed checkpoint of size {size}");
            }
            let mut text = format!("leaf {index} of {size}: {leaf}\n");
            for h in &path {
                text.push_str(&format!("  {h}\n"));
            }
            text.push_str(&format!("{verdict}\n"));
            print(&p, text)
        }
        AuditCommand::Consistency { first, second } => {
            let mut query = vec![("first", first.to_string())];
            if let Some(second) = second {
                query.push(("second", second.to_string()));
            }
            let p = client
                .call_with_query(
                    Method::GET,
                    "/api/v1/audit/proofs/consistency",
                    &query,
                    None,
                )
                .await?;
            let mut text = format!("consistency {} → {}\n", p["first"], p["second"]);
            for h in hashes(&p["proof"])? {
                text.push_str(&format!("  {h}\n"));
            }
            print(&p, text)
        }
        AuditCommand::Export { out, tenant } => export(client, &out, tenant.as_deref()).await,
        AuditCommand::Erase { subject, basis } => {
            let body = serde_json::json!({ "basis": basis });
            let done = client
                .call(
                    Method::POST,
                    &format!("/api/v1/audit/subjects/{subject}/erase"),
                    Some(&body),
                )
                .await?;
            print(
                &done,
                format!(
                    "erased {}: {} payload(s) are now unreadable; the log still verifies\n",
                    done["subject"].as_str().unwrap_or_default(),
                    done["payloads_erased"]
                ),
            )
        }
        AuditCommand::Hold { subject, reason } => {
            let body = serde_json::json!({ "reason": reason });
            client
                .call(
                    Method::PUT,
                    &format!("/api/v1/audit/subjects/{subject}/hold"),
                    Some(&body),
                )
                .await?;
            print(
                &serde_json::json!({ "subject": subject, "legal_hold": reason }),
                format!("legal hold placed on {subject}\n"),
            )
        }
        AuditCommand::Release { subject } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/api/v1/audit/subjects/{subject}/hold"),
                    None,
                )
                .await?;
            print(
                &serde_json::json!({ "subject": subject, "legal_hold": null }),
                format!("legal hold lifted from {subject}\n"),
            )
        }
        AuditCommand::Retention => {
            let done = client
                .call(Method::POST, "/api/v1/audit/retention", None)
                .await?;
            print(
                &done,
                format!(
                    "deleted {} expired payload(s) and {} key(s)\n",
                    done["payloads_deleted"], done["keys_deleted"]
                ),
            )
        }
        AuditCommand::Verify {
            bundle: Some(dir),
            public_key,
            previous,
        } => {
            let Some(key) = public_key else {
                bail!(
                    "offline verification needs --public-key (the key the auditor obtained independently)"
                );
            };
            verify_bundle(&dir, &key_text(&key)?, previous.as_deref())
        }
        AuditCommand::Verify {
            bundle: None,
            public_key,
            previous,
        } => {
            let key = match public_key {
                Some(k) => VerifierKey::parse(&key_text(&k)?)?,
                None => {
                    eprintln!(
                        "note: using the server's own public key; pass --public-key to verify against one you trust"
                    );
                    server_key(client).await?
                }
            };
            // Ask for a checkpoint covering everything first, then read.
            client
                .call(Method::GET, "/api/v1/audit/checkpoint", None)
                .await?;
            let notes = fetch_notes(client).await?;
            let mut leaves = Vec::new();
            fetch_leaves(client, None, |leaf| {
                leaves.push(leaf);
                Ok(())
            })
            .await?;
            let previous = previous
                .map(|p| {
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))
                })
                .transpose()?;
            report(bundle::verify(leaves, &notes, &key, previous.as_deref()))
        }
    }
}

fn report(result: Result<bundle::Verified, bundle::Failure>) -> anyhow::Result<()> {
    match result {
        Ok(v) => {
            crate::output::write(&format!(
                "verified: {} entries under {} signed checkpoint(s); root {}{}{}\n",
                v.size,
                v.checkpoints,
                v.root,
                if v.withheld > 0 {
                    format!(
                        "; {} entries shown in full, {} withheld as leaf hashes only (the server says: other tenants')",
                        v.size + v.uncovered - v.withheld,
                        v.withheld
                    )
                } else {
                    String::new()
                },
                if v.uncovered > 0 {
                    format!(
                        "; {} newer entries not yet covered by a checkpoint",
                        v.uncovered
                    )
                } else {
                    String::new()
                }
            ))?;
            Ok(())
        }
        Err(failure) => bail!("verification failed at {failure}"),
    }
}

async fn export(client: &Client, out: &Path, tenant: Option<&str>) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let latest = client
        .call(Method::GET, "/api/v1/audit/checkpoint", None)
        .await?;
    let key = client
        .call(Method::GET, "/api/v1/audit/public-key", None)
        .await?;
    let notes = fetch_notes(client).await?;
    let file = std::fs::File::create(out.join(bundle::ENTRIES_FILE))
        .with_context(|| format!("cannot write {}", bundle::ENTRIES_FILE))?;
    let mut writer = BufWriter::new(file);
    let mut withheld = 0u64;
    let count = fetch_leaves(client, tenant, |leaf| {
        withheld += u64::from(leaf.entry.is_none());
        writer.write_all(bundle::entry_line(&leaf)?.as_bytes())?;
        Ok(())
    })
    .await?;
    writer.flush()?;
    std::fs::write(
        out.join(bundle::CHECKPOINTS_FILE),
        bundle::checkpoints_json(&notes)?,
    )?;
    std::fs::write(
        out.join(bundle::LATEST_FILE),
        latest["note"].as_str().unwrap_or_default(),
    )?;
    std::fs::write(
        out.join(bundle::KEY_FILE),
        format!("{}\n", key["key"].as_str().unwrap_or_default()),
    )?;
    std::fs::write(out.join(bundle::README_FILE), bundle::README)?;
    let limited = if withheld > 0 {
        format!(
            "; {} in full, {withheld} withheld as leaf hashes only (other tenants', as the server says)",
            count - withheld
        )
    } else {
        String::new()
    };
    crate::output::write(&format!(
        "exported {count} entries{limited} and {} checkpoint(s) to {} (latest checkpoint: size {})\n",
        notes.len(),
        out.display(),
        latest["size"]
    ))?;
    Ok(())
}

fn verify_bundle(dir: &Path, key: &str, previous: Option<&Path>) -> anyhow::Result<()> {
    let key = VerifierKey::parse(key)?;
    let notes: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(dir.join(bundle::CHECKPOINTS_FILE)).with_context(|| {
            format!("cannot read {}/{}", dir.display(), bundle::CHECKPOINTS_FILE)
        })?,
    )
    .with_context(|| format!("{} is not a list of signed notes", bundle::CHECKPOINTS_FILE))?;
    let previous = previous
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    let file = std::fs::File::open(dir.join(bundle::ENTRIES_FILE))
        .with_context(|| format!("cannot read {}/{}", dir.display(), bundle::ENTRIES_FILE))?;
    let mut bad_line = None;
    let leaves =
        std::io::BufReader::new(file)
            .lines()
            .enumerate()
            .map_while(|(n, line)| {
                match line
                    .map_err(anyhow::Error::from)
                    .and_then(|l| Ok(serde_json::from_str::<BundleLeaf>(&l)?))
                {
                    Ok(leaf) => Some(leaf),
                    Err(e) => {
                        bad_line = Some(format!("entries.jsonl line {}: {e}", n + 1));
                        None
                    }
                }
            });
    let result = bundle::verify(leaves, &notes, &key, previous.as_deref());
    if let Some(bad) = bad_line {
        bail!("verification failed: {bad}");
    }
    report(result)
}
