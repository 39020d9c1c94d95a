//! Schema migrations: one folder per backend, embedded in the binary, applied in order.
//!
//! A small runner of our own rather than `sqlx::migrate!`: it works through the `Any` driver,
//! needs no proc-macro crate at build time, and serialises concurrent start-ups of several
//! servers on one PostgreSQL with an advisory lock. Each applied migration's SHA-256 is recorded;
//! a binary whose copy of an applied migration differs refuses to start, because editing an
//! applied migration silently forks schemas between installations.

use crate::{Backend, PayloadKek, StoreError};
use sqlx::{AnyConnection, Row};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "calendar",
        sqlite: include_str!("../migrations/sqlite/0002_calendar.sql"),
        postgres: include_str!("../migrations/postgres/0002_calendar.sql"),
    },
    Migration {
        version: 3,
        name: "metrics",
        sqlite: include_str!("../migrations/sqlite/0003_metrics.sql"),
        postgres: include_str!("../migrations/postgres/0003_metrics.sql"),
    },
    Migration {
        version: 4,
        name: "notifications",
        sqlite: include_str!("../migrations/sqlite/0004_notifications.sql"),
        postgres: include_str!("../migrations/postgres/0004_notifications.sql"),
    },
    Migration {
        version: 5,
        name: "incidents",
        sqlite: include_str!("../migrations/sqlite/0005_incidents.sql"),
        postgres: include_str!("../migrations/postgres/0005_incidents.sql"),
    },
    Migration {
        version: 6,
        name: "inventory",
        sqlite: include_str!("../migrations/sqlite/0006_inventory.sql"),
        postgres: include_str!("../migrations/postgres/0006_inventory.sql"),
    },
    Migration {
        version: 7,
        name: "inventory_records",
        sqlite: include_str!("../migrations/sqlite/0007_inventory_records.sql"),
        postgres: include_str!("../migrations/postgres/0007_inventory_records.sql"),
    },
    Migration {
        version: 8,
        name: "sealed_text",
        sqlite: include_str!("../migrations/sqlite/0008_sealed_text.sql"),
        postgres: include_str!("../migrations/postgres/0008_sealed_text.sql"),
    },
    Migration {
        version: 9,
        name: "accounts",
        sqlite: include_str!("../migrations/sqlite/0009_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0009_accounts.sql"),
    },
    Migration {
        version: 10,
        name: "dual_control",
        sqlite: include_str!("../migrations/sqlite/0010_dual_control.sql"),
        postgres: include_str!("../migrations/postgres/0010_dual_control.sql"),
    },
    Migration {
        version: 11,
        name: "tenants",
        sqlite: include_str!("../migrations/sqlite/0011_tenants.sql"),
        postgres: include_str!("../migrations/postgres/0011_tenants.sql"),
    },
    Migration {
        version: 12,
        name: "oidc",
        sqlite: include_str!("../migrations/sqlite/0012_oidc.sql"),
        postgres: include_str!("../migrations/postgres/0012_oidc.sql"),
    },
];

/// An arbitrary constant that names Steward's migration lock among PostgreSQL advisory locks.
const ADVISORY_LOCK_KEY: i64 = 0x0053_7465_7761_7264;

fn checksum(sql: &str) -> String {
    steward_audit::hash::sha256(sql.as_bytes()).to_hex()
}

pub(crate) async fn run(
    conn: &mut AnyConnection,
    backend: Backend,
    kek: &PayloadKek,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN PERFORM pg_advisory_lock({ADVISORY_LOCK_KEY}); END $$;"
        )))
        .execute(&mut *conn)
        .await?;
    }
    let result = apply_pending(conn, backend, kek).await;
    if backend == Backend::Postgres {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN PERFORM pg_advisory_unlock({ADVISORY_LOCK_KEY}); END $$;"
        )))
        .execute(&mut *conn)
        .await?;
    }
    result
}

async fn apply_pending(
    conn: &mut AnyConnection,
    backend: Backend,
    kek: &PayloadKek,
) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS steward_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await?;
    let applied = sqlx::query("SELECT version, checksum FROM steward_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await?;
    for migration in MIGRATIONS {
        let sql = match backend {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        let sum = checksum(sql);
        let recorded = applied.iter().find_map(|row| {
            let version: i64 = row.try_get("version").ok()?;
            (version == migration.version).then(|| row.try_get::<String, _>("checksum").ok())
        });
        match recorded {
            Some(Some(recorded)) if recorded == sum => continue,
            Some(_) => {
                return Err(StoreError::Corrupt(format!(
                    "migration {} ({}) was changed after it was applied to this database; \
                     restore the original file and add a new migration instead",
                    migration.version, migration.name
                )));
            }
            None => {}
        }
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        if migration.version == 2 {
            // The window columns are derived from each change's document, which SQL cannot
            // read the same way on both backends: fill them from Rust, in the same transaction.
            crate::changes::backfill_windows(&mut tx).await?;
        }
        if migration.version == 8 {
            // Wrapping keys and sealing text needs the KEK, which SQL does not have.
            crate::legacy::seal_existing(&mut tx, kek).await?;
        }
        sqlx::query("INSERT INTO steward_migrations (version, name, checksum) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(sum)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
