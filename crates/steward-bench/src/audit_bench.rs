//! `steward-audit-bench`: the verifiable log's figures.
//!
//! - `append`: audited events per second, each committed with its transaction (leaf entry, tree
//!   nodes, frontier, encrypted payload), one event per transaction and in batches.
//! - `verify`: offline verification of a 1,000,000-entry export, beside raw SHA-256 over the same
//!   entry bytes on the same core.
//! - `proofs`: inclusion-proof latency over HTTP on a log of `--events` entries.
//!
//! Results and commands are in bench/README.md.

mod fresh_db;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};
use fresh_db::{Backend, FreshDb};
use std::time::{Duration, Instant};
use steward_audit::bundle::{self, BundleLeaf};
use steward_audit::checkpoint::{LogSigner, VerifierKey};
use steward_audit::entry::Entry;
use steward_audit::hash::{leaf_hash, root_of, sha256};
use steward_core::TenantId;
use steward_store::{AuditRecord, Store};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Audited events per second with their transaction.
    Append {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        #[arg(
            long,
            env = "STEWARD_TEST_POSTGRES_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        postgres_url: String,
    },
    /// Offline verification of an export versus raw SHA-256.
    Verify {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
    },
    /// Inclusion-proof latency over HTTP.
    Proofs {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
        #[arg(
            long,
            env = "STEWARD_TEST_POSTGRES_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        postgres_url: String,
    },
}

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        occurred_at: Utc::now(),
        actor: format!("user{}", i % 50),
        action: "change.approval_recorded".into(),
        subject_type: "change",
        subject_id: format!("CHG-{i}"),
        outcome: "success",
        correlation_id: None,
        details: serde_json::json!({"before": {"state": "pending_approval"}, "after": {"state": "approved"}, "comment": "rollback plan checked"}),
    }
}

async fn append(backend: Backend, events: usize, postgres_url: &str) -> anyhow::Result<()> {
    println!("| backend | events per transaction | concurrent writers | events | events/s |");
    println!("|---|---|---|---|---|");
    for (per_tx, writers) in [(1usize, 16usize), (10, 16), (100, 4), (1000, 2)] {
        let db = FreshDb::new(backend, postgres_url).await?;
        let store = Store::connect(&db.url, payload_kek(&db)?).await?;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let per_writer = events / writers;
        for w in 0..writers {
            let store = store.clone();
            tasks.spawn(async move {
                let tenant = store.tenant(&TenantId::default_tenant());
                let mut i = w * per_writer;
                while i < (w + 1) * per_writer {
                    let batch: Vec<AuditRecord> = (i..(i + per_tx).min((w + 1) * per_writer))
                        .map(record)
                        .collect();
                    i += batch.len();
                    tenant.record_events(&batch).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let elapsed = started.elapsed();
        let total = per_writer * writers;
        println!(
            "| {backend:?} | {per_tx} | {writers} | {total} | {:.0} |",
            total as f64 / elapsed.as_secs_f64()
        );
        store.close().await;
        db.cleanup().await?;
    }
    Ok(())
}

fn verify(events: usize) -> anyhow::Result<()> {
    let signer = LogSigner::from_seed("steward.bench/audit", [5u8; 32]);
    let key = VerifierKey::parse(&signer.verifier_key())?;
    let entries: Vec<String> = (0..events)
        .map(|i| {
            let e = Entry {
                event_id: format!("01a20000-0000-7000-8000-{i:012x}"),
                time: "2026-11-23T10:00:00.000000Z".into(),
                actor: format!("user{}", i % 50),
                action: "change.approval_recorded".into(),
                subject_type: "change".into(),
                subject_id: format!("CHG-{i}"),
                outcome: "success".into(),
                correlation_id: None,
                policy_version: None,
                payload_sha256: Some(sha256(i.to_string().as_bytes()).to_hex()),
                tenant: Some("default".into()),
            };
            String::from_utf8(e.to_bytes()).expect("utf8")
        })
        .collect();
    let hashes: Vec<_> = entries.iter().map(|e| leaf_hash(e.as_bytes())).collect();
    let note = signer.sign(events as u64, root_of(&hashes));
    let leaves: Vec<BundleLeaf> = entries
        .iter()
        .zip(&hashes)
        .enumerate()
        .map(|(i, (e, h))| BundleLeaf {
            index: i as u64,
            entry: Some(e.clone()),
            leaf_hash: Some(h.to_hex()),
        })
        .collect();
    let bytes: usize = entries.iter().map(String::len).sum();

    // Raw SHA-256 over the same bytes, the floor any verifier pays.
    let started = Instant::now();
    let mut sink = 0u8;
    for e in &entries {
        sink ^= sha256(e.as_bytes()).0[0];
    }
    let raw = started.elapsed();
    // The verifier borrows the leaves, as it does streaming them from a file: freeing them is
    // not part of verifying.
    let started = Instant::now();
    let mut verifier =
        bundle::Verifier::new(&[note], &key, None).map_err(|f| anyhow::anyhow!("{f}"))?;
    for leaf in &leaves {
        verifier.push(leaf).map_err(|f| anyhow::anyhow!("{f}"))?;
    }
    let verified = verifier.finish().map_err(|f| anyhow::anyhow!("{f}"))?;
    let full = started.elapsed();
    assert_eq!(verified.size, events as u64);
    println!(
        "| entries | entry bytes | raw SHA-256 | verify (leaf hashes, tree, checkpoint) | ratio |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {events} | {:.1} MB | {:.3} s ({:.0} MB/s) | {:.3} s | {:.2}× |",
        bytes as f64 / 1e6,
        raw.as_secs_f64(),
        bytes as f64 / 1e6 / raw.as_secs_f64(),
        full.as_secs_f64(),
        full.as_secs_f64() / raw.as_secs_f64()
    );
    std::hint::black_box(sink);
    Ok(())
}

/// The payload key-encryption key a server on `db` uses: its data directory's.
fn payload_kek(db: &FreshDb) -> anyhow::Result<steward_store::PayloadKek> {
    Ok(steward_store::PayloadKek::load_or_create(
        &db.dir.path().join("payload-kek"),
    )?)
}

async fn proofs(
    backend: Backend,
    events: usize,
    requests: usize,
    postgres_url: &str,
) -> anyhow::Result<()> {
    let db = FreshDb::new(backend, postgres_url).await?;
    {
        let store = Store::connect(&db.url, payload_kek(&db)?).await?;
        let tenant = store.tenant(&TenantId::default_tenant());
        let started = Instant::now();
        let mut i = 0;
        while i < events {
            let batch: Vec<AuditRecord> = (i..(i + 1000).min(events)).map(record).collect();
            i += batch.len();
            tenant.record_events(&batch).await?;
        }
        eprintln!(
            "filled the log with {events} events in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        store.close().await;
    }
    let token = "stw_bench_admin_token_0123456789abcdef";
    let app = steward_server::Application::build(db.server_config(token)?).await?;
    let base = format!("http://{}", app.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let checkpoint: serde_json::Value = http
        .get(format!("{base}/api/v1/audit/checkpoint"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let size = checkpoint["size"].as_u64().context("no checkpoint")?;
    let mut latencies = Vec::with_capacity(requests);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..requests {
        // xorshift: spread indexes over the whole log without a rand dependency.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        let response = http
            .get(format!(
                "{base}/api/v1/audit/proofs/inclusion?index={index}&size={size}"
            ))
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "proof {index}: {}",
            response.status()
        );
        let _ = response.bytes().await?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| backend | log size | requests | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {backend:?} | {size} | {requests} | {:.2} | {:.2} | {:.2} |",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    let _ = stop.send(());
    server.await??;
    db.cleanup().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().scenario {
        Scenario::Append {
            backend,
            events,
            postgres_url,
        } => append(backend, events, &postgres_url).await,
        Scenario::Verify { events } => verify(events),
        Scenario::Proofs {
            backend,
            events,
            requests,
            postgres_url,
        } => proofs(backend, events, requests, &postgres_url).await,
    }
}
