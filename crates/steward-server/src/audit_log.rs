//! The server's side of the verifiable log: the signing key, the checkpoint signer (a worker that
//! signs a new checkpoint every few seconds while events arrive, and on demand), and proofs built
//! from the store's tree nodes.

use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use steward_audit::checkpoint::LogSigner;
use steward_audit::compact::Frontier;
use steward_audit::hash::Hash;
use steward_audit::proof::{self, ProofError};
use steward_store::{Store, StoreError, StoredCheckpoint};
use tokio::sync::Mutex;

/// How often the worker looks for new events to cover with a checkpoint.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

/// Loads the signing key: from configuration (hex seed), else from `DATA_DIR/audit-signing.key`,
/// generating that file (0600) on first start.
pub fn load_signer(
    origin: &str,
    configured: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<LogSigner> {
    let parse = |text: &str, from: &str| -> anyhow::Result<[u8; 32]> {
        steward_audit::hex::decode(text.trim())
            .ok_or_else(|| anyhow::anyhow!("the audit signing key in {from} must be 64 hex digits"))
    };
    if let Some(text) = configured {
        return Ok(LogSigner::from_seed(
            origin,
            parse(text, "STEWARD_AUDIT_SIGNING_KEY")?,
        ));
    }
    let path = data_dir.join("audit-signing.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(LogSigner::from_seed(
            origin,
            parse(&text, &path.display().to_string())?,
        ));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    crate::bootstrap::write_secret_file(&path, &steward_audit::hex::encode(&seed))?;
    tracing::info!(path = %path.display(), "generated the audit log's signing key");
    Ok(LogSigner::from_seed(origin, seed))
}

/// Signs checkpoints; one per server, serialised so two requests never sign the same size twice.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    signer: Arc<LogSigner>,
    lock: Arc<Mutex<()>>,
}

impl Checkpointer {
    pub fn new(signer: LogSigner) -> Checkpointer {
        Checkpointer {
            signer: Arc::new(signer),
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// Signs a checkpoint of the log as it is now, unless the latest one already covers it.
    pub async fn checkpoint_now(
        &self,
        store: &Store,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        let size = store.audit_size().await?;
        let latest = store.checkpoints(true).await?.into_iter().next();
        if latest.as_ref().is_some_and(|c| c.size >= size) {
            return Ok(latest);
        }
        let root = tree_root(store, size).await?;
        let note = self.signer.sign(size, root);
        store.save_checkpoint(size, &root, &note).await?;
        Ok(store.checkpoints(true).await?.into_iter().next())
    }

    /// Runs until the task is dropped: a checkpoint every few seconds while events arrive.
    pub async fn run(self, store: Store) {
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = self.checkpoint_now(&store).await {
                tracing::warn!(error = %e, "could not sign an audit checkpoint; will retry");
            }
        }
    }
}

fn missing(e: ProofError) -> StoreError {
    StoreError::Corrupt(format!("the audit tree is incomplete: {e}"))
}

/// The root of the first `size` leaves, from stored nodes.
pub async fn tree_root(store: &Store, size: u64) -> Result<Hash, StoreError> {
    let coordinates = Frontier::coordinates(size);
    let nodes = store
        .audit_nodes(&coordinates.iter().copied().collect())
        .await?;
    let roots = coordinates
        .iter()
        .map(|c| {
            nodes.get(c).copied().ok_or(ProofError::MissingNode {
                level: c.0,
                index: c.1,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(missing)?;
    Frontier::from_roots(size, roots)
        .map(|f| f.root())
        .ok_or_else(|| StoreError::Corrupt("audit frontier".into()))
}

pub async fn inclusion_proof(
    store: &Store,
    index: u64,
    size: u64,
) -> Result<(Hash, Vec<Hash>), StoreError> {
    let mut wanted = proof::inclusion_nodes(index, size);
    wanted.insert((0, index));
    let nodes = store.audit_nodes(&wanted).await?;
    let lookup = |level: u32, i: u64| {
        nodes
            .get(&(level, i))
            .copied()
            .ok_or(ProofError::MissingNode { level, index: i })
    };
    let leaf = lookup(0, index).map_err(missing)?;
    let path = proof::inclusion_proof(index, size, lookup).map_err(missing)?;
    Ok((leaf, path))
}

pub async fn consistency_proof(
    store: &Store,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, StoreError> {
    let nodes = store
        .audit_nodes(&proof::consistency_nodes(first, second))
        .await?;
    let lookup = |level: u32, i: u64| {
        nodes
            .get(&(level, i))
            .copied()
            .ok_or(ProofError::MissingNode { level, index: i })
    };
    proof::consistency_proof(first, second, lookup).map_err(missing)
}

/// How often payload retention is applied.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// Applies payload retention now and every few hours.
pub async fn retain(store: Store, retention: steward_store::Retention, clock: crate::Clock) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tick.tick().await;
        match store.apply_retention(&retention, clock.now()).await {
            Ok(done) if done.payloads_deleted > 0 => {
                tracing::info!(
                    payloads = done.payloads_deleted,
                    keys = done.keys_deleted,
                    "expired audit payloads deleted"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not apply audit payload retention; will retry")
            }
        }
    }
}
