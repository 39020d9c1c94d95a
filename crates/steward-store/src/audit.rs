//! The audit log's tables: appending events inside a caller's transaction, the Merkle tree over
//! them, signed checkpoints, and reading it all back.
//!
//! Rows are never updated or deleted (database triggers refuse it). Each event takes the next
//! `seq` from the single `audit_head` row, so the events of the whole installation form one
//! gapless sequence even with several servers on one PostgreSQL; `seq` is the leaf index of the
//! RFC 9162 tree. The same transaction stores the leaf's entry bytes, every perfect-subtree node
//! the append completes, and the new frontier, so the tree can never lag or lead the events. The
//! hashing itself is `steward-audit`'s.

use crate::{Store, StoreError, WriteTx, parse_ts, ts, values_clause};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row};
use std::collections::{BTreeSet, HashMap};
use steward_audit::compact::Frontier;
use steward_audit::entry::Entry;
use steward_audit::hash::{Hash, leaf_hash, sha256};
use steward_audit::hex;

/// An event to append.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: &'static str,
    pub subject_id: String,
    pub outcome: &'static str,
    pub correlation_id: Option<String>,
    /// What changed: `{"before": …, "after": …}` or the created record. Kept outside the tree.
    pub details: serde_json::Value,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub event_id: String,
    pub tenant: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub outcome: String,
    pub correlation_id: Option<String>,
    /// `null` once the payload was erased.
    pub details: serde_json::Value,
}

/// One leaf as an auditor receives it: its index, entry bytes, and the leaf hash the tree holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLeaf {
    pub index: u64,
    /// `None` when the reader may not see it: another tenant's entry, for a reader limited to
    /// one tenant ([`LeafScope::Tenant`]). Its leaf hash is still given.
    pub entry: Option<String>,
    pub leaf_hash: Option<String>,
}

/// Whose entries a reader of the leaves sees in full. Every read of the leaves names one, so a
/// reader limited to a tenant cannot be given the others' entries by a forgotten filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafScope<'a> {
    /// Every entry (the installation's auditors and admins).
    Everything,
    /// This tenant's entries; the others' as their leaf hashes only.
    Tenant(&'a str),
}

/// Which events a read of the leaves keeps (every given field must match exactly). Matching
/// reads an entry's facts, so a filtered read keeps only the entries its [`LeafScope`] shows in
/// full: a withheld entry is never matched, or a filter would tell its reader what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafFilter {
    pub actor: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub action: Option<String>,
}

impl LeafFilter {
    /// Whether it keeps every leaf (withheld ones too, in place).
    pub fn is_empty(&self) -> bool {
        self == &LeafFilter::default()
    }
}

/// The order of a read of the leaves, and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafOrder {
    /// Index order from this index (an export, a verifier).
    Oldest { from: u64 },
    /// Newest first, below this index when given (a person reading the log).
    Newest { before: Option<u64> },
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: String,
    pub note: String,
}

fn leaf_hash_of(entry: &str) -> String {
    leaf_hash(entry.as_bytes()).to_hex()
}

fn parse_frontier(size: i64, text: &str) -> Result<Frontier, StoreError> {
    let roots = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|h| Hash::from_hex(h).ok_or_else(|| StoreError::Corrupt("audit frontier hash".into())))
        .collect::<Result<Vec<_>, _>>()?;
    Frontier::from_roots(size as u64, roots)
        .ok_or_else(|| StoreError::Corrupt("audit frontier does not fit the tree size".into()))
}

fn frontier_text(frontier: &Frontier) -> String {
    frontier
        .roots()
        .iter()
        .map(Hash::to_hex)
        .collect::<Vec<_>>()
        .join(",")
}

/// Appends events in the caller's transaction. Locks the log head, which every appender takes
/// last, so the lock is held only for the tail of a transaction.
/// Most rows in one INSERT; see [`append`].
const ROWS_PER_STATEMENT: usize = 100;

/// The data subject a record's payload is about: the person who acted, within their tenant.
fn subject_of(tenant: &str, record: &AuditRecord) -> String {
    format!("{tenant}:{}", record.actor)
}

fn payload_aad(seq: i64) -> Vec<u8> {
    format!("steward-audit-payload:{seq}").into_bytes()
}

/// The subjects (`tenant:user`) whose payload keys an append of `records` needs: fetch them with
/// the transaction's other subjects, before the head, to keep the lock order.
pub(crate) fn subjects(tenant: &str, records: &[AuditRecord], out: &mut BTreeSet<String>) {
    out.extend(records.iter().map(|r| subject_of(tenant, r)));
}

pub(crate) async fn append(
    tx: &mut WriteTx,
    tenant: &str,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut needed = BTreeSet::new();
    subjects(tenant, records, &mut needed);
    tx.subject_keys(&needed, records[0].occurred_at).await?;
    let count = records.len() as i64;
    let head = sqlx::query(
        "UPDATE audit_head SET next_seq = next_seq + $1 WHERE id = 1 RETURNING next_seq, frontier",
    )
    .bind(count)
    .fetch_one(&mut **tx)
    .await?;
    let end: i64 = head.try_get("next_seq")?;
    let first = end - count;
    let mut frontier = parse_frontier(first, &head.try_get::<String, _>("frontier")?)?;

    let mut events = Vec::with_capacity(records.len());
    let mut nodes = Vec::with_capacity(records.len() * 2);
    for (i, record) in records.iter().enumerate() {
        let details = record.details.to_string();
        let entry = Entry {
            event_id: uuid::Uuid::now_v7().to_string(),
            time: ts(record.occurred_at),
            actor: record.actor.clone(),
            action: record.action.clone(),
            subject_type: record.subject_type.to_owned(),
            subject_id: record.subject_id.clone(),
            outcome: record.outcome.to_owned(),
            correlation_id: record.correlation_id.clone(),
            policy_version: None,
            payload_sha256: Some(sha256(details.as_bytes()).to_hex()),
            tenant: Some(tenant.to_owned()),
        };
        let bytes = entry.to_bytes();
        nodes.extend(frontier.append(leaf_hash(&bytes)));
        let text = String::from_utf8(bytes).map_err(|e| StoreError::corrupt("audit entry", e))?;
        events.push((first + i as i64, entry, text, details));
    }

    // Multi-row statements, at most ROWS_PER_STATEMENT rows each: few round trips, while the
    // drivers' per-parameter work (which grows faster than linearly with a statement's
    // parameters in sqlx's SQLite driver) stays small.
    for (chunk, chunk_records) in events
        .chunks(ROWS_PER_STATEMENT)
        .zip(records.chunks(ROWS_PER_STATEMENT))
    {
        let sql = format!(
            "INSERT INTO audit_events (seq, event_id, tenant_id, occurred_at, actor, action, \
             subject_type, subject_id, outcome, correlation_id, entry) VALUES {}",
            values_clause(chunk.len(), 11)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (seq, entry, text, _) in chunk {
            query = query
                .bind(*seq)
                .bind(entry.event_id.clone())
                .bind(tenant.to_owned())
                .bind(entry.time.clone())
                .bind(entry.actor.clone())
                .bind(entry.action.clone())
                .bind(entry.subject_type.clone())
                .bind(entry.subject_id.clone())
                .bind(entry.outcome.clone())
                .bind(entry.correlation_id.clone())
                .bind(text.clone());
        }
        query.execute(&mut **tx).await?;

        let sql = format!(
            "INSERT INTO audit_payloads (seq, subject, nonce, ciphertext) VALUES {}",
            values_clause(chunk.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((seq, _, _, details), record) in chunk.iter().zip(chunk_records) {
            let subject = subject_of(tenant, record);
            let key = tx
                .keys()
                .get(&subject)
                .ok_or_else(|| StoreError::Corrupt("payload key missing".into()))?;
            let nonce = crate::kek::random::<12>()?;
            let sealed =
                steward_audit::payload::seal(key, &nonce, &payload_aad(*seq), details.as_bytes())
                    .map_err(|e| StoreError::corrupt("payload", e))?;
            query = query
                .bind(*seq)
                .bind(subject)
                .bind(hex::encode(&nonce))
                .bind(sealed);
        }
        query.execute(&mut **tx).await?;
    }

    for chunk in nodes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO audit_nodes (level, idx, hash) VALUES {}",
            values_clause(chunk.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for node in chunk {
            query = query
                .bind(i64::from(node.level))
                .bind(node.index as i64)
                .bind(node.hash.to_hex());
        }
        query.execute(&mut **tx).await?;
    }

    sqlx::query("UPDATE audit_head SET frontier = $1 WHERE id = 1")
        .bind(frontier_text(&frontier))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The details of an event as JSON text: decrypted (sealed text of other subjects inside it still
/// sealed), `null` once erased or expired, or a marker when the stored ciphertext does not
/// decrypt (which only tampering can cause).
fn details_of(
    row: &<Any as sqlx::Database>::Row,
    kek: &crate::PayloadKek,
) -> Result<String, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let subject: Option<String> = row.try_get("payload_subject")?;
    let key: Option<String> = row.try_get("payload_key")?;
    let nonce: Option<String> = row.try_get("nonce")?;
    let ciphertext: Option<String> = row.try_get("ciphertext")?;
    let (Some(subject), Some(key), Some(nonce), Some(ciphertext)) =
        (subject, key, nonce, ciphertext)
    else {
        return Ok("null".to_owned());
    };
    let key = kek.unwrap(&subject, &key)?;
    let opened = hex::decode::<12>(&nonce)
        .ok_or(steward_audit::payload::PayloadError::Malformed)
        .and_then(|nonce| {
            steward_audit::payload::open(&key, &nonce, &payload_aad(seq), &ciphertext)
        });
    Ok(match opened {
        Ok(plain) => {
            String::from_utf8(plain).map_err(|e| StoreError::corrupt("audit details", e))?
        }
        Err(e) => serde_json::json!({ "unreadable": e.to_string() }).to_string(),
    })
}

/// An event from its row and its details (opened JSON text).
fn from_row(row: &<Any as sqlx::Database>::Row, details: &str) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        seq: row.try_get("seq")?,
        event_id: row.try_get("event_id")?,
        tenant: row.try_get("tenant_id")?,
        occurred_at: parse_ts(&row.try_get::<String, _>("occurred_at")?)?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject_type: row.try_get("subject_type")?,
        subject_id: row.try_get("subject_id")?,
        outcome: row.try_get("outcome")?,
        correlation_id: row.try_get("correlation_id")?,
        details: serde_json::from_str(details)
            .map_err(|e| StoreError::corrupt("audit details", e))?,
    })
}

pub(crate) const COLUMNS: &str = "e.seq, e.event_id, e.tenant_id, e.occurred_at, e.actor, e.action, e.subject_type, \
    e.subject_id, e.outcome, e.correlation_id, p.nonce, p.ciphertext, p.subject AS payload_subject, \
    k.key AS payload_key";

impl crate::TenantStore<'_> {
    /// Records events that change no other state (imports, sign-ins, benchmarks), in one
    /// transaction of their own.
    pub async fn record_events(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        append(&mut tx, &self.tenant, records).await?;
        tx.commit().await
    }

    /// The tenant's events about one subject, oldest first.
    pub async fn audit_events_for(
        &self,
        subject_type: &str,
        subject_id: &str,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events e LEFT JOIN audit_payloads p ON p.seq = e.seq \
             LEFT JOIN audit_subject_keys k ON k.subject = p.subject \
             WHERE e.tenant_id = $1 AND e.subject_type = $2 AND e.subject_id = $3 ORDER BY e.seq"
        )))
        .bind(self.tenant.clone())
        .bind(subject_type.to_owned())
        .bind(subject_id.to_owned())
        .fetch_all(&self.store.pool)
        .await?;
        let details = rows
            .iter()
            .map(|row| details_of(row, &self.store.kek))
            .collect::<Result<Vec<_>, _>>()?;
        let details = self.store.open_texts(details).await?;
        rows.iter()
            .zip(&details)
            .map(|(row, details)| from_row(row, details))
            .collect()
    }
}

/// The installation-wide log (one tree for all tenants): for auditors and admins.
impl Store {
    /// The number of leaves committed.
    pub async fn audit_size(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT next_seq FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("next_seq")?;
        Ok(n.max(0) as u64)
    }

    /// Whether events are missing from the log since it held `from` events: the sequence must
    /// only grow, and every number in it must still be there. `None` when it is whole.
    pub async fn audit_gap(&self, from: u64) -> Result<Option<String>, StoreError> {
        let size = self.audit_size().await?;
        if size < from {
            return Ok(Some(format!(
                "the audit log shrank from {from} to {size} events"
            )));
        }
        let found: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_events WHERE seq >= $1 AND seq < $2",
        )
        .bind(from as i64)
        .bind(size as i64)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let expected = size - from;
        Ok((found.max(0) as u64 != expected).then(|| {
            format!("the audit log has a gap: {expected} events since seq {from}, {found} present")
        }))
    }

    /// Stored tree nodes by (level, index).
    pub async fn audit_nodes(
        &self,
        wanted: &BTreeSet<(u32, u64)>,
    ) -> Result<HashMap<(u32, u64), Hash>, StoreError> {
        let mut out = HashMap::new();
        let wanted: Vec<&(u32, u64)> = wanted.iter().collect();
        for chunk in wanted.chunks(200) {
            let clauses: Vec<String> = (0..chunk.len())
                .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "SELECT level, idx, hash FROM audit_nodes WHERE {}",
                clauses.join(" OR ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (level, index) in chunk {
                query = query.bind(i64::from(*level)).bind(*index as i64);
            }
            for row in query.fetch_all(&self.pool).await? {
                let level: i64 = row.try_get("level")?;
                let index: i64 = row.try_get("idx")?;
                let hash = Hash::from_hex(&row.try_get::<String, _>("hash")?)
                    .ok_or_else(|| StoreError::Corrupt("audit node hash".into()))?;
                out.insert((level as u32, index as u64), hash);
            }
        }
        Ok(out)
    }

    /// The leaf index of an event that `scope` may see (another tenant's is not found).
    pub async fn audit_index_of(
        &self,
        event_id: &str,
        scope: LeafScope<'_>,
    ) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT seq, tenant_id FROM audit_events WHERE event_id = $1")
            .bind(event_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let tenant: String = row.try_get("tenant_id")?;
        if matches!(scope, LeafScope::Tenant(t) if t != tenant) {
            return Ok(None);
        }
        Ok(Some(row.try_get::<i64, _>("seq")? as u64))
    }

    /// Leaves in index order from `from`, at most `limit`, with the leaf hashes the tree holds;
    /// the entries outside `scope` withheld (hash only).
    pub async fn audit_leaves(
        &self,
        from: u64,
        limit: u64,
        scope: LeafScope<'_>,
    ) -> Result<Vec<AuditLeaf>, StoreError> {
        self.audit_leaves_where(
            LeafOrder::Oldest { from },
            limit,
            scope,
            &LeafFilter::default(),
        )
        .await
    }

    /// At most `limit` leaves in `order`, with the leaf hashes the tree holds. Without a filter
    /// every leaf comes in place, the entries outside `scope` withheld (hash only); with one,
    /// only the matching entries `scope` shows in full.
    pub async fn audit_leaves_where(
        &self,
        order: LeafOrder,
        limit: u64,
        scope: LeafScope<'_>,
        filter: &LeafFilter,
    ) -> Result<Vec<AuditLeaf>, StoreError> {
        let (start, direction) = match order {
            LeafOrder::Oldest { from } => (Some(("e.seq >=", from)), "ASC"),
            LeafOrder::Newest { before } => (before.map(|b| ("e.seq <", b)), "DESC"),
        };
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let mut bound = 0;
        let mut next = || {
            bound += 1;
            format!("${bound}")
        };
        if let Some((op, _)) = start {
            conditions.push(format!("{op} {}", next()));
        }
        let tenant = match scope {
            LeafScope::Tenant(t) if !filter.is_empty() => Some(t),
            _ => None,
        };
        for (column, value) in [
            ("e.tenant_id", tenant),
            ("e.actor", filter.actor.as_deref()),
            ("e.subject_type", filter.subject_type.as_deref()),
            ("e.subject_id", filter.subject_id.as_deref()),
            ("e.action", filter.action.as_deref()),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = {}", next()));
                values.push(value.to_owned());
            }
        }
        let limit_at = next();
        let condition = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT e.seq, e.tenant_id, e.entry, n.hash FROM audit_events e \
             LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = e.seq \
             {condition} ORDER BY e.seq {direction} LIMIT {limit_at}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some((_, index)) = start {
            query = query.bind(index.min(i64::MAX as u64) as i64);
        }
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(limit.min(i64::MAX as u64) as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let tenant: String = r.try_get("tenant_id")?;
                let visible = match scope {
                    LeafScope::Everything => true,
                    LeafScope::Tenant(t) => t == tenant,
                };
                let leaf_hash: Option<String> = r.try_get("hash")?;
                let entry: String = r.try_get("entry")?;
                Ok(AuditLeaf {
                    index: r.try_get::<i64, _>("seq")? as u64,
                    // A withheld entry is its hash; the tree holds it (computed here when a
                    // node row is missing, which only an interrupted migration could cause).
                    leaf_hash: leaf_hash.or_else(|| (!visible).then(|| leaf_hash_of(&entry))),
                    entry: visible.then_some(entry),
                })
            })
            .collect()
    }

    pub async fn save_checkpoint(
        &self,
        size: u64,
        root: &Hash,
        note: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(size as i64)
        .bind(root.to_hex())
        .bind(note.to_owned())
        .bind(ts(Utc::now()))
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }

    /// Signed checkpoints of trees larger than `after` (all when `None`), oldest first, at most
    /// `limit`.
    pub async fn checkpoints_after(
        &self,
        after: Option<u64>,
        limit: i64,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT size, root, note FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT $2",
        )
        .bind(after.map_or(-1, |a| a.min(i64::MAX as u64) as i64))
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredCheckpoint {
                    size: r.try_get::<i64, _>("size")? as u64,
                    root: r.try_get("root")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }

    /// The signed checkpoints, oldest first (all of them, or the latest only).
    pub async fn checkpoints(
        &self,
        latest_only: bool,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let sql = if latest_only {
            "SELECT size, root, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1"
        } else {
            "SELECT size, root, note FROM audit_checkpoints ORDER BY size"
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(StoredCheckpoint {
                    size: r.try_get::<i64, _>("size")? as u64,
                    root: r.try_get("root")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }
}
