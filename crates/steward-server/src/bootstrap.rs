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
    seed_catalog(&tenant).await?;
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
    // The token file is written before the account exists: a crash in between leaves no account,
    // so the next start simply bootstraps again, and never an account whose token is lost.
    let token_file = if generated {
        Some(write_token_file(&config.data_dir, &token)?)
    } else {
        None
    };
    let admin = UserName::parse(ADMIN).context("admin name")?;
    let roles = Roles::new(vec![Role::Admin]).map_err(anyhow::Error::msg)?;
    match tenant
        .create_user(SYSTEM, &admin, &roles, &hash_token(&token))
        .await
    {
        Ok(()) => Ok(Some(Bootstrap { token_file })),
        // Another server sharing this database bootstrapped first; our token is worthless.
        Err(StoreError::Duplicate(_)) => {
            if let Some(path) = &token_file {
                let _ = std::fs::remove_file(path);
            }
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Adds each shipped catalog item that is missing; items an admin changed are left alone.
async fn seed_catalog(tenant: &steward_store::TenantStore<'_>) -> anyhow::Result<()> {
    for item in CatalogItem::shipped() {
        if tenant.catalog_item(&item.name).await?.is_none() {
            tenant.put_catalog_item(SYSTEM, &item).await?;
        }
    }
    Ok(())
}

fn write_token_file(dir: &std::path::Path, token: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("admin.token");
    write_secret_file(&path, token)?;
    Ok(path)
}

/// Writes a secret readable only by its owner (0600), also narrowing an existing file.
pub(crate) fn write_secret_file(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` applies only to a new file; an existing one gets its permissions narrowed too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}
