//! First start: an empty store gets an `admin` account and the shipped catalog.

use crate::ServerConfig;
use crate::auth::{generate_token, hash_token};
use anyhow::Context;
use std::path::PathBuf;
use steward_core::catalog::CatalogItem;
use steward_core::{Role, Roles, TenantId, UserName};
use steward_store::{Store, StoreError};

/// What the first start created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// Where the generated admin token was written (absent when it came from configuration).
    pub token_file: Option<PathBuf>,
}

pub const ADMIN: &str = "admin";
const SYSTEM: &str = "system";

pub(crate) async fn run(store: &Store, config: &ServerConfig) -> anyhow::Result<Option<Bootstrap>> {
    let tenant = store.tenant(&TenantId::default_tenant());
    if tenant.user_count().await? > 0 {
        return Ok(None);
    }
    let (token, generated) = match &config.bootstrap_token {
        Some(token) if token.len() < 24 => {
            anyhow::bail!("STEWARD_BOOTSTRAP_TOKEN is too short: use at least 24 random characters")
        }
        Some(token) => (token.clone(), false),
        None => (generate_token()?, true),
    };
    let admin = UserName::parse(ADMIN).context("admin name")?;
    let roles = Roles::new(vec![Role::Admin]).map_err(anyhow::Error::msg)?;
    match tenant
        .create_user(SYSTEM, &admin, &roles, &hash_token(&token))
        .await
    {
        Ok(()) => {}
        // Another server sharing this database bootstrapped first.
        Err(StoreError::Duplicate(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    for item in CatalogItem::shipped() {
        tenant.put_catalog_item(SYSTEM, &item).await?;
    }
    let token_file = if generated {
        Some(write_token_file(&config.data_dir, &token)?)
    } else {
        None
    };
    Ok(Some(Bootstrap { token_file }))
}

fn write_token_file(dir: &std::path::Path, token: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("admin.token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(path)
}
