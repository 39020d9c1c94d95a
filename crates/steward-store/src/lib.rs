//! Persistence for Steward: one [`Store`] over SQLite and PostgreSQL.
//!
//! This is the only crate that knows SQL. The backend is chosen at run time from the database URL
//! (`sqlite://…` or `postgres://…`) and reached through sqlx's `Any` driver, so every query is
//! written once; the few places where the dialects differ (migrations, transaction start) branch
//! on [`Backend`]. Both backends run the same conformance tests.
//!
//! Invariants kept here:
//! - every write that changes state appends its audit events in the **same transaction**
//!   (`audit::append`), so an acknowledged action always has its audit record;
//! - every query is scoped by tenant through [`TenantStore`], the only way to reach tenant data;
//! - a change is saved only if nobody saved it since it was read (`version` check), so two
//!   servers deciding on one change at once cannot both win.

pub mod accounts;
pub mod audit;
mod batch;
mod calendar;
mod catalog;
mod changes;
pub mod group_roles;
pub mod incidents;
pub mod inventory;
mod kek;
mod legacy;
mod metrics;
mod migrate;
pub mod notifications;
pub mod pending;
pub mod policy_modules;
pub mod privacy;
mod sealing;
pub mod sso;
pub mod submissions;
mod targets;
pub mod tenants;
mod tokens;
mod users;

pub use accounts::{Account, AccountRefusal, Disabled, ReportedChange};
pub use audit::{
    AuditEvent, AuditLeaf, AuditRecord, LeafFilter, LeafOrder, LeafScope, StoredCheckpoint,
};
pub use changes::ChangeFilter;
pub use incidents::{IncidentFilter, NamedKind};
pub use inventory::{RecordKind, RecordWrite, Registered};
pub use kek::{PayloadKek, private_dir};
pub use metrics::{SampleClash, SampleQuery, SamplesPushed};
pub use notifications::{Notice, StoredNotice};
pub use policy_modules::{ModuleWrite, PolicyModuleRecord};
pub use privacy::{Erasure, Retention, RetentionOutcome};
pub use sealing::ERASED;
pub use tenants::{NewTenant, TenantRecord};
pub use tokens::TokenCheck;
pub use users::Principal;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row, Transaction};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use steward_core::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(
                "database URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the record since it was read; reload and decide again.
    #[error("the record was changed concurrently")]
    Conflict,
    /// A record with this key already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0}")]
    Config(String),
    /// A write the rules do not allow as asked, saying why and what to do (a 409).
    #[error("{0}")]
    Refused(String),
    /// Stored data that cannot be read back: a bug or tampering, never user error.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    /// PostgreSQL's deadlock and serialization failures mean "try again", like a version
    /// conflict: the handlers retry them instead of answering 500.
    fn from(error: sqlx::Error) -> StoreError {
        match &error {
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40P01" | "40001")) =>
            {
                StoreError::Conflict
            }
            _ => StoreError::Database(error),
        }
    }
}

impl StoreError {
    fn from_insert(error: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate(what()),
            _ => StoreError::Database(error),
        }
    }

    fn corrupt(context: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{context}: {error}"))
    }
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` parameters: one multi-row statement instead
/// of a round trip per row. Parameters are numbered in order of appearance, which SQLite needs.
pub(crate) fn values_clause(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Formats a time the way every table stores it: UTC, microseconds, fixed width.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_ts(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::corrupt("timestamp", e))
}

/// A row's `document` column (JSON) as stored, tokens and all, read as `T`;
/// [`StoreError::Corrupt`] naming `what` if it does not parse. Readers that answer people use
/// [`Store::open_documents`], which opens the sealed text.
pub(crate) fn read_document<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    what: &str,
) -> Result<T, StoreError> {
    use sqlx::Row;
    let doc: String = row.try_get("document")?;
    serde_json::from_str(&doc).map_err(|e| StoreError::corrupt(what, e))
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where write transactions run. For PostgreSQL, the same pool as reads. SQLite allows one
    /// writer at a time, so it gets a pool of one connection of its own: writers queue for it in
    /// memory, never inside SQLite's busy handler (which sleeps for milliseconds between retries),
    /// and never behind readers that have taken every connection of the read pool.
    write_pool: AnyPool,
    submissions: submissions::Submissions,
    registrations: inventory::Registrations,
    /// Wraps the payload keys; kept outside the database (see [`kek`]).
    kek: Arc<PayloadKek>,
}

/// A write transaction, with the payload keys it has fetched (and locked) so far.
pub(crate) struct WriteTx {
    tx: Transaction<'static, sqlx::Any>,
    kek: Arc<PayloadKek>,
    keys: sealing::Keys,
}

impl WriteTx {
    /// Fetches the payload keys of `subjects` (`tenant:user`) not fetched yet in this
    /// transaction, creating those that do not exist (or were erased), in one statement. The
    /// rows are locked in name order, so fetch every subject a transaction needs at once, before
    /// the audit head (the lock order in ARCHITECTURE.md).
    pub(crate) async fn subject_keys(
        &mut self,
        subjects: &BTreeSet<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        upsert_subject_keys(&mut self.tx, &self.kek, &mut self.keys, subjects, now).await
    }

    /// The keys fetched so far.
    pub(crate) fn keys(&self) -> &sealing::Keys {
        &self.keys
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// Connects, configures the connection (SQLite: WAL, full fsync, foreign keys, and deleted
    /// content zeroed, so an erased key does not linger in free pages), applies pending
    /// migrations and makes sure the default tenant exists. `kek` wraps the payload keys; a
    /// database first opened with another KEK is refused. A new SQLite file is created 0600.
    pub async fn connect(url: &str, kek: PayloadKek) -> Result<Store, StoreError> {
        let backend = Backend::from_url(url)?;
        let kek = Arc::new(kek);
        if backend == Backend::Sqlite {
            kek::prepare_sqlite_file(url)?;
        }
        install_default_drivers();
        let options = || AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let store = match backend {
            Backend::Sqlite => {
                let sqlite = |max: u32| {
                    options().max_connections(max).after_connect(|conn, _meta| {
                        Box::pin(async move {
                            sqlx::raw_sql(
                                "PRAGMA journal_mode = WAL;
                                 PRAGMA synchronous = FULL;
                                 PRAGMA foreign_keys = ON;
                                 PRAGMA busy_timeout = 10000;
                                 PRAGMA secure_delete = ON;",
                            )
                            .execute(conn)
                            .await?;
                            Ok(())
                        })
                    })
                };
                // The writer connects first: it creates the file, and switches it to WAL
                // before any reader opens it.
                let write_pool = sqlite(1).connect(url).await?;
                let pool = sqlite(8).connect(url).await?;
                Store {
                    pool,
                    backend,
                    submissions: submissions::Submissions::start(
                        write_pool.clone(),
                        backend,
                        kek.clone(),
                    ),
                    registrations: inventory::start_registrations(
                        write_pool.clone(),
                        backend,
                        kek.clone(),
                    ),
                    write_pool,
                    kek,
                }
            }
            Backend::Postgres => {
                let pool = options().max_connections(16).connect(url).await?;
                Store {
                    submissions: submissions::Submissions::start(
                        pool.clone(),
                        backend,
                        kek.clone(),
                    ),
                    registrations: inventory::start_registrations(
                        pool.clone(),
                        backend,
                        kek.clone(),
                    ),
                    write_pool: pool.clone(),
                    pool,
                    backend,
                    kek,
                }
            }
        };
        let mut conn = store.write_pool.acquire().await?;
        migrate::run(&mut conn, backend, &store.kek).await?;
        drop(conn);
        store.check_kek().await?;
        if backend == Backend::Sqlite {
            // Files SQLite made before this version narrowed its database file.
            kek::narrow_sqlite_files(url);
        }
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(TenantId::default_tenant().as_str().to_owned())
            .bind(ts(Utc::now()))
            .execute(&store.write_pool)
            .await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers while the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
    }

    /// Everything that reads or writes one tenant's records goes through the returned handle.
    pub fn tenant(&self, tenant: &TenantId) -> TenantStore<'_> {
        TenantStore {
            store: self,
            tenant: tenant.as_str().to_owned(),
            id: tenant.clone(),
        }
    }

    /// Starts a write transaction. On SQLite it waits for the writer connection and takes the write
    /// lock up front (`BEGIN IMMEDIATE`), so a transaction that reads and then writes never fails
    /// on lock upgrade.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        begin_write(&self.write_pool, self.backend, &self.kek).await
    }

    /// Records the KEK's check value on first start; refuses a KEK that does not match it.
    async fn check_kek(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payload_kek_check (id, check_value, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(self.kek.check_value()?)
        .bind(ts(Utc::now()))
        .execute(&self.write_pool)
        .await?;
        let stored: String = sqlx::query("SELECT check_value FROM payload_kek_check WHERE id = 1")
            .fetch_one(&self.write_pool)
            .await?
            .try_get("check_value")?;
        if self.kek.matches(&stored) {
            Ok(())
        } else {
            Err(StoreError::Config(
                "this database's payload keys were wrapped with another key-encryption key: \
                 give this server the same payload-kek file as the others on this database \
                 (--payload-kek-file, STEWARD_PAYLOAD_KEK_FILE)"
                    .into(),
            ))
        }
    }

    /// The payload keys of `subjects` (`tenant:user`) as they are now, for reading: one query.
    /// Erased subjects, and subjects with no key, map to `None`.
    pub(crate) async fn read_keys(
        &self,
        subjects: &BTreeSet<String>,
    ) -> Result<sealing::Keys, StoreError> {
        let mut keys = sealing::Keys::default();
        let subjects: Vec<&String> = subjects.iter().collect();
        for chunk in subjects.chunks(500) {
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT subject, key FROM audit_subject_keys WHERE subject IN ({})",
                params.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for subject in chunk {
                query = query.bind((*subject).clone());
            }
            for row in query.fetch_all(&self.pool).await? {
                let subject: String = row.try_get("subject")?;
                let stored: Option<String> = row.try_get("key")?;
                let key = stored
                    .map(|stored| self.kek.unwrap(&subject, &stored))
                    .transpose()?;
                keys.insert(subject, key);
            }
            for subject in chunk {
                if !keys.contains(subject) {
                    keys.insert((*subject).clone(), None);
                }
            }
        }
        Ok(keys)
    }

    /// JSON texts (documents, payloads) with their sealed text opened, fetching the keys of every
    /// subject they name in one query.
    pub(crate) async fn open_texts(&self, texts: Vec<String>) -> Result<Vec<String>, StoreError> {
        let mut subjects = BTreeSet::new();
        for text in &texts {
            sealing::subjects_in(text, &mut subjects);
        }
        if subjects.is_empty() {
            return Ok(texts);
        }
        let keys = self.read_keys(&subjects).await?;
        Ok(texts
            .iter()
            .map(|text| sealing::open_json(text, &keys))
            .collect())
    }

    /// Rows' `document` columns with their sealed text opened, each read as `T`.
    pub(crate) async fn open_documents<T: serde::de::DeserializeOwned>(
        &self,
        rows: &[sqlx::any::AnyRow],
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let texts = rows
            .iter()
            .map(|row| row.try_get::<String, _>("document"))
            .collect::<Result<Vec<_>, _>>()?;
        self.open_texts(texts)
            .await?
            .iter()
            .map(|text| serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e)))
            .collect()
    }
}

/// Fetches into `keys` the payload keys of `subjects` (`tenant:user`) it lacks, creating those
/// that do not exist (or were erased) wrapped under `kek`, in one statement that locks their rows
/// in name order.
pub(crate) async fn upsert_subject_keys(
    conn: &mut sqlx::AnyConnection,
    kek: &PayloadKek,
    keys: &mut sealing::Keys,
    subjects: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let missing: Vec<&String> = subjects.iter().filter(|s| !keys.contains(s)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO audit_subject_keys (subject, key, created_at) VALUES {} \
         ON CONFLICT (subject) DO UPDATE SET key = COALESCE(audit_subject_keys.key, excluded.key) \
         RETURNING subject, key",
        values_clause(missing.len(), 3)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for subject in &missing {
        let fresh = kek::random::<32>()?;
        query = query
            .bind((*subject).clone())
            .bind(kek.wrap(subject, &fresh)?)
            .bind(ts(now));
    }
    for row in query.fetch_all(&mut *conn).await? {
        let subject: String = row.try_get("subject")?;
        let stored: Option<String> = row.try_get("key")?;
        let stored = stored.ok_or_else(|| StoreError::Corrupt("payload key".into()))?;
        let key = kek.unwrap(&subject, &stored)?;
        keys.insert(subject, Some(key));
    }
    Ok(())
}

pub(crate) async fn begin_write(
    write_pool: &AnyPool,
    backend: Backend,
    kek: &Arc<PayloadKek>,
) -> Result<WriteTx, StoreError> {
    let tx = match backend {
        Backend::Sqlite => write_pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => write_pool.begin().await?,
    };
    Ok(WriteTx {
        tx,
        kek: kek.clone(),
        keys: sealing::Keys::default(),
    })
}

/// The store, seen from inside one tenant. Every query binds the tenant id; there is no other
/// way to reach tenant data, so a handler cannot forget the scope.
#[derive(Debug, Clone)]
pub struct TenantStore<'a> {
    store: &'a Store,
    tenant: String,
    id: TenantId,
}

impl TenantStore<'_> {
    pub fn tenant_id(&self) -> &str {
        &self.tenant
    }

    /// The tenant this handle is scoped to.
    pub fn tenant(&self) -> &TenantId {
        &self.id
    }
}
