//! A throwaway database for one benchmark run: SQLite in a temporary directory, or a new
//! PostgreSQL database (dropped by [`FreshDb::cleanup`]) on the server the URL names.

use anyhow::Context;
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct FreshDb {
    pub url: String,
    /// Holds the SQLite file, and serves as the server's data directory.
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

/// The same server URL with another database name, keeping any `?host=/socket/dir` query.
fn database_url_named(url: &str, name: &str) -> String {
    let (address, query) = url
        .split_once('?')
        .map_or((url, None), |(a, q)| (a, Some(q)));
    let base = address.rsplit_once('/').map_or(address, |(base, _)| base);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl FreshDb {
    pub async fn new(backend: Backend, postgres_url: &str) -> anyhow::Result<FreshDb> {
        let dir = tempfile::tempdir()?;
        sqlx::any::install_default_drivers();
        Ok(match backend {
            Backend::Sqlite => FreshDb {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("steward.db").display()
                ),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                let name = format!("steward_bench_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::AnyConnection::connect(postgres_url)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot reach PostgreSQL at {}",
                            steward_server::redact_url(postgres_url)
                        )
                    })?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                FreshDb {
                    url: database_url_named(postgres_url, &name),
                    dir,
                    postgres: Some((postgres_url.to_owned(), name)),
                }
            }
        })
    }

    pub async fn cleanup(self) -> anyhow::Result<()> {
        if let Some((admin, name)) = self.postgres {
            let mut conn = sqlx::AnyConnection::connect(&admin).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await?;
        }
        Ok(())
    }
}

impl FreshDb {
    /// A server on this database with production settings, on a free port, the admin's token
    /// being `token`.
    pub fn server_config(&self, token: &str) -> anyhow::Result<steward_server::ServerConfig> {
        Ok(steward_server::ServerConfig {
            listen: "127.0.0.1:0".parse()?,
            database_url: self.url.clone(),
            data_dir: self.dir.path().to_owned(),
            bootstrap_token: Some(token.into()),
            risk_policy: Default::default(),
            routing_policy: Default::default(),
            audit_origin: "steward.bench/audit".into(),
            audit_signing_key: None,
            payload_kek_file: None,
            audit_retention: Default::default(),
            policy_dir: None,
            builtin_policies: true,
            github: None,
            gitlab: None,
            execution: Default::default(),
            incidents: Default::default(),
            inventory_scans: None,
            public_url: None,
            oidc: None,
        })
    }
}
