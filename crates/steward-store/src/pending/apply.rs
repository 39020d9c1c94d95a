//! Applying an approved privileged operation inside the approval's transaction: each kind
//! through the store write it stands for (the account, token, catalog, policy-module and
//! group-mapping writes), refusing when the record no longer matches what was approved.

use super::{PendingOperation, Refusal};
use crate::audit::AuditRecord;
use crate::pending::Operation;
use crate::{Backend, StoreError, WriteTx};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Applies the operation inside `tx`; the audit records of what it changed (operations whose
/// store write records its own event add none), or why the record no longer matches what was
/// approved.
pub(super) async fn apply(
    tx: &mut WriteTx,
    backend: Backend,
    tenant: &str,
    pending: &PendingOperation,
    approver: &str,
    now: DateTime<Utc>,
) -> Result<Result<Vec<AuditRecord>, Refusal>, StoreError> {
    let operation = (pending.number > 0).then(|| pending.id());
    let by = json!({"requested_by": pending.requested_by, "approved_by": approver,
                    "operation": operation});
    let requester = pending.requested_by.as_str();
    let record =
        |action: &str, subject_type: &'static str, subject: String, details: Value| AuditRecord {
            occurred_at: now,
            actor: requester.to_owned(),
            action: action.into(),
            subject_type,
            subject_id: subject,
            outcome: "success",
            correlation_id: None,
            details,
        };
    let stale = |what: String| Ok(Err(Refusal::Stale(what)));
    match &pending.operation {
        Operation::CreateUser {
            name,
            roles,
            token_hash,
            token_expires_at,
        } => {
            let inserted = crate::users::insert_user(
                tx,
                tenant,
                name,
                roles,
                token_hash,
                *token_expires_at,
                now,
            )
            .await;
            match inserted {
                Ok(()) => {}
                Err(StoreError::Duplicate(what)) => return stale(format!("{what} already exists")),
                Err(e) => return Err(e),
            }
            Ok(Ok(vec![record(
                "user.created",
                "user",
                name.to_string(),
                json!({"after": {"name": name, "roles": roles}, "dual_control": by}),
            )]))
        }
        Operation::SetRoles {
            user,
            before,
            after,
        } => {
            let changed =
                crate::accounts::set_user_roles_in(tx, backend, tenant, user, after, Some(before))
                    .await?;
            if let Err(refusal) = changed {
                return stale(format!("{refusal}: request the change again"));
            }
            Ok(Ok(vec![record(
                "user.roles_changed",
                "user",
                user.to_string(),
                json!({"before": {"roles": before}, "after": {"roles": after},
                       "dual_control": by}),
            )]))
        }
        Operation::IssueToken {
            user,
            roles,
            token_hash,
            expires_at,
        } => {
            let exists = sqlx::query(
                "SELECT name FROM users WHERE tenant_id = $1 AND name = $2 AND status = 'active' \
                 AND roles = $3",
            )
            .bind(tenant.to_owned())
            .bind(user.as_str().to_owned())
            .bind(roles.to_list())
            .fetch_optional(&mut **tx)
            .await?;
            if exists.is_none() {
                return stale(format!(
                    "{user} is gone, disabled, or no longer holds {}: request the token again",
                    roles.to_list()
                ));
            }
            crate::tokens::insert_token(tx, tenant, user, token_hash, "issued", *expires_at, now)
                .await?;
            Ok(Ok(vec![record(
                "token.issued",
                "user",
                user.to_string(),
                json!({"expires_at": expires_at, "dual_control": by}),
            )]))
        }
        Operation::EnableUser { user, roles } => {
            let enabled = sqlx::query(
                "UPDATE users SET status = 'active', disabled_at = NULL WHERE tenant_id = $1 \
                 AND name = $2 AND status = 'disabled' AND roles = $3",
            )
            .bind(tenant.to_owned())
            .bind(user.as_str().to_owned())
            .bind(roles.to_list())
            .execute(&mut **tx)
            .await?;
            if enabled.rows_affected() != 1 {
                return stale(format!(
                    "{user} is no longer a disabled account holding {}: request it again",
                    roles.to_list()
                ));
            }
            Ok(Ok(vec![record(
                "user.enabled",
                "user",
                user.to_string(),
                json!({"before": {"status": "disabled"}, "after": {"status": "active"},
                       "dual_control": by}),
            )]))
        }
        Operation::PutCatalogItem { before, item } => {
            let current = crate::catalog::read_item(tx, tenant, &item.name).await?;
            if current.as_ref() != before.as_deref() {
                return stale(format!(
                    "catalog item {} changed since the request: request the change again",
                    item.name
                ));
            }
            let action =
                crate::catalog::write_item(tx, tenant, item, before.is_some(), now).await?;
            Ok(Ok(vec![record(
                action,
                "catalog_item",
                item.name.clone(),
                json!({"before": before, "after": item, "dual_control": by}),
            )]))
        }
        Operation::PutPolicyModule {
            name,
            before,
            source,
        } => {
            let current = crate::policy_modules::stored(tx, tenant, name).await?;
            if current.map(|m| m.digest) != *before {
                return stale(format!(
                    "policy module {name} changed since the request: request the change again"
                ));
            }
            crate::policy_modules::put_policy_module_in(tx, tenant, requester, name, source, now)
                .await?;
            Ok(Ok(Vec::new()))
        }
        Operation::DeletePolicyModule { name, before } => {
            let current = crate::policy_modules::stored(tx, tenant, name).await?;
            if current.map(|m| m.digest).as_ref() != Some(before) {
                return stale(format!(
                    "policy module {name} changed since the request: request the deletion again"
                ));
            }
            crate::policy_modules::delete_policy_module_in(tx, tenant, requester, name, now)
                .await?;
            Ok(Ok(Vec::new()))
        }
        Operation::SetGroupRoles {
            group,
            before,
            after,
        } => {
            let had =
                crate::group_roles::set_group_roles_in(tx, tenant, requester, group, after, now)
                    .await?;
            if had != *before {
                return stale(format!(
                    "group {group}'s mapping changed since the request: request the change again"
                ));
            }
            Ok(Ok(Vec::new()))
        }
    }
}
