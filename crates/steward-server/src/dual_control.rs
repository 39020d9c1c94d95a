//! Dual control for privileged operations (seed 002 M2): the one door every privileged write
//! goes through.
//!
//! Granting an approving or privileged role (`admin`, `ciso`, `vp_engineering`, `cab_member`,
//! `compliance_officer`, `auditor`), changing the catalog, a tenant's policy modules or a group
//! mapping that grants such a role takes effect only when a second admin approves it: [`request`]
//! queues the operation (`steward admin pending`), and `steward admin approve` applies it in the
//! store's transaction ([`steward_store::pending`]). Until then it has no effect — a CISO-to-be
//! holds no role and a new account's token authenticates nothing. The requester never approves
//! their own request, nor does the account a grant raises. The one exception is the tenant's
//! first second admin, granted by its only admin and recorded as a bootstrap.

use crate::auth::{Permission, Permit};
use crate::error::ApiError;
use steward_store::StoreError;
use steward_store::pending::{Operation, PendingOperation, Refusal, granted_privileges};

/// What became of a privileged request.
#[derive(Debug)]
pub enum Requested {
    /// Applied at once: the tenant's only admin made its first second admin.
    Bootstrapped,
    /// Waits for a second admin.
    Waiting(PendingOperation),
}

/// Whether `operation` needs a second admin (a role change that only takes privileges away
/// does not).
pub fn needs_second_admin(operation: &Operation) -> bool {
    match operation {
        Operation::CreateUser { roles, .. } => !granted_privileges(None, roles).is_empty(),
        Operation::SetRoles { before, after, .. } => {
            !granted_privileges(Some(before), after).is_empty()
        }
        Operation::SetGroupRoles { before, after, .. } => {
            !granted_privileges(before.as_ref(), after).is_empty()
        }
        Operation::EnableUser { roles, .. } => !granted_privileges(None, roles).is_empty(),
        Operation::IssueToken { .. }
        | Operation::PutCatalogItem { .. }
        | Operation::PutPolicyModule { .. }
        | Operation::DeletePolicyModule { .. } => true,
    }
}

/// Queues `operation` for a second admin — or applies it at once when it is the tenant's first
/// second admin. The permit is the requester's right to ask (managing users, the catalog, …);
/// approving needs [`crate::auth::DecidePrivileged`].
pub async fn request<P: Permission>(
    permit: &Permit<'_, P>,
    operation: Operation,
) -> Result<Requested, ApiError> {
    let store = permit.store();
    let who = permit.who().as_str();
    match store.bootstrap_admin(who, &operation).await? {
        Ok(true) => return Ok(Requested::Bootstrapped),
        Ok(false) => {}
        Err(refusal) => return Err(refused(refusal, None)),
    }
    let mut attempts = 0;
    loop {
        match store.request_operation(who, &operation).await {
            Ok(pending) => return Ok(Requested::Waiting(pending)),
            // Two requests took the same number at once (PostgreSQL): take the next.
            Err(StoreError::Conflict) if attempts < 5 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The answer for a refused decision on operation `id`.
pub fn refused(refusal: Refusal, id: Option<&str>) -> ApiError {
    let id = id.unwrap_or("the operation");
    match refusal {
        Refusal::NotFound => ApiError::NotFound(format!("no privileged operation {id}")),
        Refusal::Decided(status) => ApiError::Conflict {
            message: format!("{id} was {} already", status.as_str()),
            details: serde_json::json!({ "status": status.as_str() }),
        },
        Refusal::OwnRequest => ApiError::Forbidden(format!(
            "you requested {id}, so a second admin must approve it (dual control)"
        )),
        Refusal::OwnGrant => ApiError::Forbidden(format!(
            "{id} raises your own privileges, so another admin must approve it"
        )),
        Refusal::Stale(why) => ApiError::Conflict {
            message: why,
            details: serde_json::Value::Null,
        },
    }
}
