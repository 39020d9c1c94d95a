//! Each tenant's effective policy set: the installation's modules (the built-in pack and the
//! policy directory) plus the tenant's own, compiled once per distinct set and cached.
//!
//! A tenant's own modules live in the store ([`steward_store::policy_modules`]). Before each
//! judgement the server reads their (name, digest) pairs — one small query — and uses the set it
//! compiled for exactly those, compiling anew only when they differ. So a module written through
//! another server on the same database takes effect at the next judgement here, and a write
//! through this one drops its entry at once ([`Policies::forget`]). A tenant with no modules of
//! its own is judged by the installation's set itself, whose version is unchanged.
//!
//! A tenant's module adds rules; it may not reopen a package the installation's modules declare
//! (a `deny` added to a built-in rule would read as the built-in rule's), and it is refused at
//! write time, with the Rego error, when the set it would make does not compile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use steward_policy::{Module, PolicyError, PolicySet};
use steward_store::{PolicyModuleRecord, StoreError, TenantStore};

/// Where a tenant's modules sit among the set's files (shown in errors and `GET /policy`).
const TENANT_DIR: &str = "tenant/";

/// A tenant's modules as (name, digest) pairs, by name: what a compiled set was built from.
type ModuleKeys = Vec<(String, String)>;

/// The installation's policy set and the tenants' sets built on it.
#[derive(Debug)]
pub struct Policies {
    base: Arc<PolicySet>,
    /// The compiled set per tenant, with the modules it was compiled from.
    cache: Mutex<HashMap<String, (ModuleKeys, Arc<PolicySet>)>>,
}

/// Why a tenant's module cannot join its policy set.
#[derive(Debug, thiserror::Error)]
pub enum ModuleRefused {
    #[error("{0}")]
    Broken(String),
    #[error(
        "declares package {package}, which the installation's policy set declares ({path}): put a tenant rule in a package of its own, e.g. `package steward.rules.<your_rule>`"
    )]
    ReopensPackage { package: String, path: String },
    #[error(
        "declares package {found}: a tenant module named {name} declares `package steward.rules.{name}` (its own package, so it can neither reopen nor extend another rule)"
    )]
    WrongPackage { name: String, found: String },
}

fn as_module(record: &PolicyModuleRecord) -> Module {
    Module {
        path: format!("{TENANT_DIR}{}.rego", record.name),
        text: record.source.clone(),
    }
}

impl Policies {
    pub fn new(base: PolicySet) -> Policies {
        Policies {
            base: Arc::new(base),
            cache: Mutex::default(),
        }
    }

    /// The installation's set, which every tenant's builds on.
    pub fn installation(&self) -> &Arc<PolicySet> {
        &self.base
    }

    /// The set `store`'s tenant is judged by now.
    pub async fn of(&self, store: &TenantStore<'_>) -> Result<Arc<PolicySet>, StoreError> {
        let digests = store.policy_module_digests().await?;
        if digests.is_empty() {
            return Ok(self.base.clone());
        }
        let tenant = store.tenant_id().to_owned();
        if let Some(set) = self.cached(&tenant, &digests) {
            return Ok(set);
        }
        let modules = store.policy_modules().await?;
        let keys: ModuleKeys = modules
            .iter()
            .map(|m| (m.name.clone(), m.digest.clone()))
            .collect();
        // Stored modules were checked when written; a set that no longer compiles (the
        // installation's modules changed under it) is a server fault, and judging fails closed.
        let set = Arc::new(self.build(modules.iter().map(as_module).collect()).map_err(|e| {
            StoreError::Corrupt(format!(
                "tenant {tenant}'s policy modules no longer compile with the installation's: {e}"
            ))
        })?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(tenant, (keys, set.clone()));
        }
        Ok(set)
    }

    fn cached(&self, tenant: &str, digests: &[(String, String)]) -> Option<Arc<PolicySet>> {
        let cache = self.cache.lock().ok()?;
        let (keys, set) = cache.get(tenant)?;
        (keys.as_slice() == digests).then(|| set.clone())
    }

    /// Forgets the tenant's cached set (after a write to its modules).
    pub fn forget(&self, tenant: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(tenant);
        }
    }

    /// Checks that the tenant's modules, with `name` set to `source` (or removed, for `None`),
    /// make a set that compiles and reopens none of the installation's packages.
    pub fn check(
        &self,
        current: &[PolicyModuleRecord],
        name: &str,
        source: Option<&str>,
    ) -> Result<PolicySet, ModuleRefused> {
        let mut modules: Vec<Module> = current
            .iter()
            .filter(|m| m.name != name)
            .map(as_module)
            .collect();
        let path = format!("{TENANT_DIR}{name}.rego");
        if let Some(source) = source {
            modules.push(Module {
                path: path.clone(),
                text: source.to_owned(),
            });
        }
        let set = self
            .build(modules)
            .map_err(|e| ModuleRefused::Broken(e.to_string()))?;
        if let Some(package) = set.package_of(&path) {
            if let Some(base_path) = self.base.path_declaring(package) {
                return Err(ModuleRefused::ReopensPackage {
                    package: package.to_owned(),
                    path: base_path.to_owned(),
                });
            }
            if source.is_some() && package != format!("steward.rules.{name}") {
                return Err(ModuleRefused::WrongPackage {
                    name: name.to_owned(),
                    found: package.to_owned(),
                });
            }
        }
        Ok(set)
    }

    fn build(&self, tenant_modules: Vec<Module>) -> Result<PolicySet, PolicyError> {
        let mut modules = self.base.modules().to_vec();
        modules.extend(tenant_modules);
        PolicySet::new(modules)
    }
}
