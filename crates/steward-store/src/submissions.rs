//! Saving new changes with group commit (the `batch` module).
//!
//! Every submission must be on disk, with its audit events, before it is acknowledged. The
//! submissions waiting in the queue, up to [`MAX_BATCH`], are written in one transaction with
//! multi-row statements: a handful of round trips and one commit per batch, whatever its size.
//!
//! If a batch fails, each of its changes is retried in a transaction of its own, so one bad
//! submission cannot fail its neighbours.

use crate::audit;
use crate::batch::{Batcher, Job};
use crate::changes::{plain_document, seal_document, transition_records};
use crate::{PayloadKek, StoreError, WriteTx, begin_write, ts, values_clause};
use sqlx::{AnyConnection, AnyPool, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use steward_core::ChangeId;
use steward_core::change::{Change, Transition};

/// Most submissions written in one transaction; keeps statements within parameter limits.
pub const MAX_BATCH: usize = 128;

/// The queue in front of the batch writer.
#[derive(Debug, Clone)]
pub(crate) struct Submissions {
    batcher: Batcher<Item, Change>,
}

impl Submissions {
    /// Starts the writer task; it ends when the last `Submissions` handle is dropped.
    pub(crate) fn start(
        write_pool: AnyPool,
        backend: crate::Backend,
        kek: Arc<PayloadKek>,
    ) -> Submissions {
        let batcher = Batcher::start(MAX_BATCH, move |batch| {
            let pool = write_pool.clone();
            let kek = kek.clone();
            async move { save_batch(&pool, backend, &kek, batch).await }
        });
        Submissions { batcher }
    }

    pub(crate) async fn submit(
        &self,
        tenant: String,
        change: Change,
        transitions: Vec<Transition>,
    ) -> Result<Change, StoreError> {
        self.batcher.call((tenant, change, transitions)).await
    }
}

async fn save_batch(
    pool: &AnyPool,
    backend: crate::Backend,
    kek: &Arc<PayloadKek>,
    batch: Vec<Job<Item, Change>>,
) {
    let (mut items, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|job| (job.item, job.reply)).unzip();
    match persist(pool, backend, kek, &mut items).await {
        Ok(()) => {
            for ((_, change, _), reply) in items.into_iter().zip(replies) {
                let _ = reply.send(Ok(change));
            }
        }
        Err(error) if items.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(%error, size = items.len(), "a submission batch failed; saving its changes one by one");
            for (item, reply) in items.into_iter().zip(replies) {
                let mut single = vec![item];
                let result = persist(pool, backend, kek, &mut single).await;
                let _ = reply.send(result.map(|()| single.remove(0).1));
            }
        }
    }
}

type Item = (String, Change, Vec<Transition>);

/// Numbers and writes `items` in one transaction.
async fn persist(
    pool: &AnyPool,
    backend: crate::Backend,
    kek: &Arc<PayloadKek>,
    items: &mut [Item],
) -> Result<(), StoreError> {
    let mut tx = begin_write(pool, backend, kek).await?;
    let mut by_tenant: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (tenant, _, _)) in items.iter().enumerate() {
        by_tenant.entry(tenant.clone()).or_default().push(i);
    }
    // Every tenant's counter before the first audit append: the log head is always locked last.
    for (tenant, indexes) in &by_tenant {
        let last = reserve_numbers(&mut tx, tenant, indexes.len()).await?;
        let first = last - indexes.len() as i64 + 1;
        for (k, &i) in indexes.iter().enumerate() {
            items[i].1.id = ChangeId::from_number((first + k as i64) as u64);
        }
    }
    // Every payload key the batch needs (the writers of the sealed text, the actors of the audit
    // payloads) in one statement, in name order (tenants in order, so across tenants too), before
    // the log head; a new requester's key is created here, in this transaction.
    let mut subjects = BTreeSet::new();
    let mut records = BTreeMap::new();
    let mut documents = Vec::with_capacity(items.len());
    for (tenant, change, _) in items.iter() {
        documents.push(Some(plain_document(change, tenant, &mut subjects)?));
    }
    for (tenant, indexes) in &by_tenant {
        let group: Vec<_> = indexes
            .iter()
            .flat_map(|&i| transition_records(&items[i].1, &items[i].2))
            .collect();
        audit::subjects(tenant, &group, &mut subjects);
        records.insert(tenant, group);
    }
    if let Some((_, first, _)) = items.first() {
        tx.subject_keys(&subjects, first.updated_at).await?;
    }
    for (tenant, indexes) in &by_tenant {
        let group: Vec<&Item> = indexes.iter().map(|&i| &items[i]).collect();
        let mut sealed = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let document = documents[i].take().unwrap_or_default();
            sealed.push(seal_document(document, tenant, tx.keys(), None)?);
        }
        insert_changes(&mut tx, tenant, &group, sealed).await?;
        insert_targets(&mut tx, tenant, &group).await?;
        if let Some(records) = records.get(tenant) {
            audit::append(&mut tx, tenant, records).await?;
        }
    }
    tx.commit().await
}

/// Takes `count` change numbers for a tenant and returns the last; locks the tenant's counter.
async fn reserve_numbers(tx: &mut WriteTx, tenant: &str, count: usize) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO counters (tenant_id, name, value) VALUES ($1, 'change', $2) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + excluded.value RETURNING value",
    )
    .bind(tenant.to_owned())
    .bind(count as i64)
    .fetch_one(&mut **tx)
    .await?
    .try_get("value")?)
}

/// Inserts a tenant's new changes, with their sealed documents in the same order.
async fn insert_changes(
    tx: &mut WriteTx,
    tenant: &str,
    group: &[&Item],
    documents: Vec<String>,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO changes (tenant_id, number, state, change_type, requester, category, environment, \
         risk_score, approval_deadline, outcome, created_at, updated_at, version, document, \
         window_start, window_end) VALUES {}",
        values_clause(group.len(), 16)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for ((_, change, _), document) in group.iter().zip(documents) {
        query = query
            .bind(tenant.to_owned())
            .bind(change.id.number() as i64)
            .bind(change.state.as_str())
            .bind(change.classification.change_type.as_str())
            .bind(change.requester.as_str().to_owned())
            .bind(change.request.category.clone())
            .bind(change.request.environment.as_str())
            .bind(i64::from(change.risk.score))
            .bind(change.approval_deadline.map(ts))
            .bind(change.state.outcome())
            .bind(ts(change.created_at))
            .bind(ts(change.updated_at))
            .bind(change.version)
            .bind(document)
            .bind(change.effective_window().map(|w| ts(w.start)))
            .bind(change.effective_window().map(|w| ts(w.end)));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

async fn insert_targets(
    conn: &mut AnyConnection,
    tenant: &str,
    group: &[&Item],
) -> Result<(), StoreError> {
    let rows: Vec<(i64, &str)> = group
        .iter()
        .flat_map(|(_, change, _)| {
            let number = change.id.number() as i64;
            change
                .request
                .targets
                .iter()
                .map(move |t| (number, t.as_str()))
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO change_targets (tenant_id, number, target) VALUES {}",
        values_clause(rows.len(), 3)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (number, target) in rows {
        query = query
            .bind(tenant.to_owned())
            .bind(number)
            .bind(target.to_owned());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}
