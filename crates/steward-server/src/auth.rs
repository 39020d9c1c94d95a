//! Authentication (API tokens) and authorization as capabilities.
//!
//! A handler learns who is calling from the [`Caller`] extractor, and obtains the right to do a
//! privileged thing through a check that returns a capability (`caller.as_admin()?`), in the style
//! of lldap; the capability carries the principal the write is recorded under, so the natural way
//! to write a handler is to take it first. Tenant scoping is structural: [`Caller::store`] is the
//! only route to tenant data, and it only ever opens the caller's own tenant.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use steward_core::{Role, UserName};
use steward_store::{Principal, Store, TenantStore};

/// A new random API token: `stw_` and 64 hex digits (256 bits from the OS).
pub fn generate_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(format!("stw_{}", steward_audit::hex::encode(&bytes)))
}

/// Tokens carry 256 bits of entropy, so a fast hash suffices: there is nothing to brute-force,
/// and a slow KDF would only slow every request down.
pub fn hash_token(token: &str) -> String {
    steward_audit::hash::sha256(token.as_bytes()).to_hex()
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing API token: send `Authorization: Bearer <token>` (CLI: --token or STEWARD_TOKEN)".into(),
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        Caller::from_token(state, token).await
    }
}

impl Caller {
    /// The account a token belongs to (for endpoints whose clients send the token in the body,
    /// like PagerDuty's `routing_key`).
    pub async fn from_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
        let principal = state
            .store
            .principal_for_token(&hash_token(token))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API token".into()))?;
        Ok(Caller(principal))
    }
}

fn requires(roles: &[Role]) -> ApiError {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    ApiError::Forbidden(format!("this requires the role {}", names.join(" or ")))
}

/// Proof that the caller is an admin.
#[derive(Debug)]
pub struct Admin<'a>(&'a Principal);
/// Proof that the caller may propose changes.
#[derive(Debug)]
pub struct Submitter<'a>(&'a Principal);
/// Proof that the caller may act on changes (decide, implement); not a read-only auditor.
#[derive(Debug)]
pub struct Actor<'a>(&'a Principal);
/// Proof that the caller may read the installation-wide audit log.
#[derive(Debug)]
pub struct LogReader<'a>(&'a Principal);
/// Proof that the caller may erase personal data and place legal holds.
#[derive(Debug)]
pub struct PrivacyOfficer<'a>(&'a Principal);
/// Proof that the caller may create and delete maintenance windows and freezes.
#[derive(Debug)]
pub struct CalendarKeeper<'a>(&'a Principal);
/// Proof that the caller may read every change's policy inputs (for backtests).
#[derive(Debug)]
pub struct PolicyReader<'a>(&'a Principal);
/// Proof that the caller may manage targets.
#[derive(Debug)]
pub struct TargetManager<'a>(&'a Principal);
/// Proof that the caller may send alert signals (a monitoring service account, or an admin).
#[derive(Debug)]
pub struct SignalSource<'a>(&'a Principal);
/// Proof that the caller may keep detector rules and containment playbooks.
#[derive(Debug)]
pub struct IncidentKeeper<'a>(&'a Principal);

impl Caller {
    pub fn name(&self) -> &UserName {
        &self.0.name
    }

    /// Who is calling, for reads any authenticated caller may make.
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.0.roles.contains(*r))
    }

    /// This caller's tenant's records, and only those.
    pub fn store<'s>(&self, store: &'s Store) -> TenantStore<'s> {
        store.tenant(&self.0.tenant)
    }

    pub fn as_admin(&self) -> Result<Admin<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Admin];
        self.has_any(ROLES)
            .then_some(Admin(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    pub fn as_submitter(&self) -> Result<Submitter<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Requester, Role::Manager, Role::Admin, Role::Pipeline];
        self.has_any(ROLES)
            .then_some(Submitter(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    pub fn as_target_manager(&self) -> Result<TargetManager<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Manager, Role::Admin];
        self.has_any(ROLES)
            .then_some(TargetManager(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    /// The audit log spans every tenant of the installation, so reading it is for admins and
    /// auditors only.
    pub fn as_log_reader(&self) -> Result<LogReader<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Admin, Role::Auditor];
        self.has_any(ROLES)
            .then_some(LogReader(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    /// Erasure and legal holds: for admins and compliance officers.
    pub fn as_privacy_officer(&self) -> Result<PrivacyOfficer<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Admin, Role::ComplianceOfficer];
        self.has_any(ROLES)
            .then_some(PrivacyOfficer(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    /// Windows and freezes: admins, compliance officers and CAB members.
    pub fn as_calendar_keeper(&self) -> Result<CalendarKeeper<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Admin, Role::ComplianceOfficer, Role::CabMember];
        self.has_any(ROLES)
            .then_some(CalendarKeeper(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    /// Policy inputs of every change in the tenant: admins, compliance officers and auditors.
    pub fn as_policy_reader(&self) -> Result<PolicyReader<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Admin, Role::ComplianceOfficer, Role::Auditor];
        self.has_any(ROLES)
            .then_some(PolicyReader(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    /// Alertmanager, PagerDuty-style events: monitoring service accounts and admins.
    pub fn as_signal_source(&self) -> Result<SignalSource<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Monitor, Role::Admin];
        self.has_any(ROLES)
            .then_some(SignalSource(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    /// Detector rules and playbooks: managers, compliance officers and admins.
    pub fn as_incident_keeper(&self) -> Result<IncidentKeeper<'_>, ApiError> {
        const ROLES: &[Role] = &[Role::Manager, Role::ComplianceOfficer, Role::Admin];
        self.has_any(ROLES)
            .then_some(IncidentKeeper(&self.0))
            .ok_or_else(|| requires(ROLES))
    }

    pub fn as_actor(&self) -> Result<Actor<'_>, ApiError> {
        let acts = self.0.roles.iter().any(|r| r != Role::Auditor);
        acts.then_some(Actor(&self.0))
            .ok_or_else(|| ApiError::Forbidden("auditors have read-only access".into()))
    }
}

macro_rules! capability_principal {
    ($($cap:ident),+) => {$(
        impl $cap<'_> {
            pub fn principal(&self) -> &Principal {
                self.0
            }
        }
    )+};
}
capability_principal!(
    SignalSource,
    IncidentKeeper,
    Admin,
    Submitter,
    Actor,
    TargetManager,
    LogReader,
    PrivacyOfficer,
    CalendarKeeper,
    PolicyReader
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = generate_token().expect("token");
        let b = generate_token().expect("token");
        assert_ne!(a, b);
        assert!(a.starts_with("stw_") && a.len() == 68, "{a}");
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
