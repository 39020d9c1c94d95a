//! What the store's integration tests share: a fresh database per test on either backend, and
//! `both_backends!`, which runs a scenario once on each.
//!
//! PostgreSQL tests create their own database on the server named by `STEWARD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and fail, rather than skip, when it is
//! not there.

#![allow(dead_code)] // Each test binary uses its own part.

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test.
pub struct Db {
    pub url: String,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
}

pub async fn fresh(backend: Backend) -> Db {
    let dir = tempfile::tempdir().expect("temp dir");
    sqlx::any::install_default_drivers();
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("steward.db").display()
        ),
        Backend::Postgres => {
            let admin = std::env::var("STEWARD_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let name = format!("steward_test_{}", uuid::Uuid::now_v7().simple());
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            conn.close().await.ok();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
    };
    Db { url, backend, dir }
}

/// Runs each scenario as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )+
        }
    };
}
