//! Dual control: privileged operations that wait for a second admin (seed 002 M2).
//!
//! A request stores the [`Operation`] exactly as it will be applied — for a role grant the roles
//! before and after, for a catalog item the content it replaces and the new content — so an
//! approval binds what the approver read: when the record moved meanwhile, approving refuses
//! ([`Refusal::Stale`]) instead of applying something nobody approved. Approving applies the
//! operation and records the decision in one transaction; the requester can never approve (nor
//! can the person a grant is for), and a decided operation stays on record. The request itself,
//! the approval and the applied change are each an audit event; other admins get a notice.
//!
//! One exception, recorded as such: a tenant whose only active admin grants `admin` (and nothing
//! else privileged) to a second account applies it at once ([`TenantStore::bootstrap_admin`]),
//! since there is nobody to approve the first second admin.

mod apply;

use crate::audit::{self, AuditRecord};
use crate::notifications::{self, Notice};
use crate::{Backend, StoreError, TenantStore, WriteTx, parse_ts, ts};
use apply::apply;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use steward_core::catalog::CatalogItem;
use steward_core::sso::GroupName;
use steward_core::{Role, Roles, UserName};

/// A privileged operation, as requested and as it will be applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Operation {
    /// A new account holding a privileged role. Its token was shown to the requester; only its
    /// hash is kept, and it authenticates nothing until the account exists.
    CreateUser {
        name: UserName,
        roles: Roles,
        token_hash: String,
        #[serde(default)]
        token_expires_at: Option<DateTime<Utc>>,
    },
    /// An account's roles go from `before` to `after`.
    SetRoles {
        user: UserName,
        before: Roles,
        after: Roles,
    },
    /// A new token for a person's account, minted by an admin (the person lost theirs): whoever
    /// holds it acts as that person, so a second admin agrees. Only the hash is kept.
    IssueToken {
        user: UserName,
        /// The roles the account held when it was asked: the token is for that account.
        roles: Roles,
        token_hash: String,
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// A disabled account holding a privileged role is enabled again (its tokens that have not
    /// expired or been revoked work again).
    EnableUser { user: UserName, roles: Roles },
    /// A catalog item is created (`before` absent) or replaced.
    PutCatalogItem {
        before: Option<Box<CatalogItem>>,
        item: Box<CatalogItem>,
    },
    /// One of the tenant's Rego modules is created (`before` absent) or replaced; `before` is the
    /// SHA-256 of the source it replaces.
    PutPolicyModule {
        name: String,
        before: Option<String>,
        source: String,
    },
    /// One of the tenant's Rego modules is deleted; `before` is the digest of its source.
    DeletePolicyModule { name: String, before: String },
    /// A provider group maps to `after` in this tenant (it mapped to `before`).
    SetGroupRoles {
        group: GroupName,
        before: Option<Roles>,
        after: Roles,
    },
}

impl Operation {
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::CreateUser { .. } => "create_user",
            Operation::SetRoles { .. } => "set_roles",
            Operation::IssueToken { .. } => "issue_token",
            Operation::EnableUser { .. } => "enable_user",
            Operation::PutCatalogItem { .. } => "put_catalog_item",
            Operation::PutPolicyModule { .. } => "put_policy_module",
            Operation::DeletePolicyModule { .. } => "delete_policy_module",
            Operation::SetGroupRoles { .. } => "set_group_roles",
        }
    }

    /// What the operation acts on: an account, a catalog item, a module or a group.
    pub fn subject(&self) -> String {
        match self {
            Operation::CreateUser { name, .. } => name.to_string(),
            Operation::SetRoles { user, .. }
            | Operation::IssueToken { user, .. }
            | Operation::EnableUser { user, .. } => user.to_string(),
            Operation::PutCatalogItem { item, .. } => item.name.clone(),
            Operation::PutPolicyModule { name, .. }
            | Operation::DeletePolicyModule { name, .. } => name.clone(),
            Operation::SetGroupRoles { group, .. } => group.to_string(),
        }
    }

    /// One line for a person deciding it.
    pub fn summary(&self) -> String {
        match self {
            Operation::CreateUser { name, roles, .. } => {
                format!("create account {name} with roles {}", roles.to_list())
            }
            Operation::SetRoles {
                user,
                before,
                after,
            } => format!(
                "change {user}'s roles from {} to {}",
                before.to_list(),
                after.to_list()
            ),
            Operation::IssueToken { user, roles, .. } => {
                format!("issue a new API token for {user} ({})", roles.to_list())
            }
            Operation::EnableUser { user, roles } => {
                format!("enable {user} again (roles {})", roles.to_list())
            }
            Operation::PutCatalogItem { before: None, item } => {
                format!("add catalog item {}", item.name)
            }
            Operation::PutCatalogItem { item, .. } => format!("replace catalog item {}", item.name),
            Operation::PutPolicyModule {
                name, before: None, ..
            } => format!("add policy module {name}"),
            Operation::PutPolicyModule { name, .. } => format!("replace policy module {name}"),
            Operation::DeletePolicyModule { name, .. } => format!("delete policy module {name}"),
            Operation::SetGroupRoles {
                group,
                before,
                after,
            } => match before {
                None => format!("map group {group} to roles {}", after.to_list()),
                Some(before) => format!(
                    "map group {group} to roles {} (was {})",
                    after.to_list(),
                    before.to_list()
                ),
            },
        }
    }

    /// The account whose privileges the operation raises, if any: they may not approve it.
    pub fn beneficiary(&self) -> Option<&UserName> {
        match self {
            Operation::CreateUser { name, .. } => Some(name),
            Operation::SetRoles { user, .. }
            | Operation::IssueToken { user, .. }
            | Operation::EnableUser { user, .. } => Some(user),
            _ => None,
        }
    }

    /// What an audit event says about the operation: everything but a token's hash.
    fn audit_details(&self) -> Value {
        match self {
            Operation::CreateUser {
                name,
                roles,
                token_expires_at,
                ..
            } => json!({"kind": self.kind(), "name": name, "roles": roles,
                        "token_expires_at": token_expires_at}),
            Operation::IssueToken {
                user,
                roles,
                expires_at,
                ..
            } => json!({"kind": self.kind(), "user": user, "roles": roles,
                        "expires_at": expires_at}),
            other => serde_json::to_value(other).unwrap_or(Value::Null),
        }
    }
}

/// Where a pending operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Pending,
    Approved,
    Rejected,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Pending => "pending",
            OperationStatus::Approved => "approved",
            OperationStatus::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Result<OperationStatus, StoreError> {
        match text {
            "pending" => Ok(OperationStatus::Pending),
            "approved" => Ok(OperationStatus::Approved),
            "rejected" => Ok(OperationStatus::Rejected),
            other => Err(StoreError::Corrupt(format!("operation status '{other}'"))),
        }
    }
}

/// A privileged operation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingOperation {
    pub number: i64,
    pub operation: Operation,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub status: OperationStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

impl PendingOperation {
    /// `OP-7`: how people and the API name it.
    pub fn id(&self) -> String {
        format!("OP-{}", self.number)
    }

    /// Why `approver` may never approve this operation, whatever else holds: they asked for it,
    /// or it raises their own privileges. The approval checks it (with what only its
    /// transaction can know: still pending, the requester still an active admin), and the
    /// portal asks it to offer no approve button that would be refused.
    pub fn refuses_approver(&self, approver: &str) -> Option<Refusal> {
        if self.requested_by == approver {
            return Some(Refusal::OwnRequest);
        }
        if self
            .operation
            .beneficiary()
            .is_some_and(|b| b.as_str() == approver)
        {
            return Some(Refusal::OwnGrant);
        }
        None
    }
}

/// Parses `OP-7` (or `7`).
pub fn parse_operation_id(text: &str) -> Option<i64> {
    let digits = text
        .strip_prefix("OP-")
        .or_else(|| text.strip_prefix("op-"))
        .unwrap_or(text);
    digits.parse::<i64>().ok().filter(|n| *n >= 0)
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// Decided already.
    Decided(OperationStatus),
    /// The requester asked to approve their own request.
    OwnRequest,
    /// The account the operation raises asked to approve it.
    OwnGrant,
    /// The record changed since the request; what was approved no longer describes it.
    Stale(String),
}

/// Roles that approve or hold privilege: granting one waits for a second admin.
pub fn is_privileged(role: Role) -> bool {
    matches!(
        role,
        Role::Admin
            | Role::Ciso
            | Role::VpEngineering
            | Role::CabMember
            | Role::ComplianceOfficer
            | Role::Auditor
    )
}

/// The privileged roles in `after` that `before` does not hold.
pub fn granted_privileges(before: Option<&Roles>, after: &Roles) -> Vec<Role> {
    after
        .iter()
        .filter(|r| is_privileged(*r) && !before.is_some_and(|b| b.contains(*r)))
        .collect()
}

fn row_to_operation(row: &sqlx::any::AnyRow) -> Result<PendingOperation, StoreError> {
    let decided_at: Option<String> = row.try_get("decided_at")?;
    Ok(PendingOperation {
        number: row.try_get("number")?,
        operation: read_document_column(row, "operation")?,
        requested_by: row.try_get("requested_by")?,
        requested_at: parse_ts(&row.try_get::<String, _>("requested_at")?)?,
        status: OperationStatus::parse(&row.try_get::<String, _>("status")?)?,
        decided_by: row.try_get("decided_by")?,
        decided_at: decided_at.as_deref().map(parse_ts).transpose()?,
        reason: row.try_get("reason")?,
    })
}

fn read_document_column(row: &sqlx::any::AnyRow, column: &str) -> Result<Operation, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("pending operation: {e}")))
}

const COLUMNS: &str = "number, operation, requested_by, requested_at, status, decided_by, \
                       decided_at, reason";

impl TenantStore<'_> {
    /// Queues `operation` for a second admin, audited as `admin.operation_requested`, with a
    /// notice to every other active admin of the tenant.
    pub async fn request_operation(
        &self,
        actor: &str,
        operation: &Operation,
    ) -> Result<PendingOperation, StoreError> {
        let now = Utc::now();
        let text = serde_json::to_string(operation)
            .map_err(|e| StoreError::Corrupt(format!("pending operation: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        let number: i64 = sqlx::query(
            "SELECT COALESCE(MAX(number), 0) + 1 AS n FROM pending_operations WHERE tenant_id = $1",
        )
        .bind(self.tenant.clone())
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        sqlx::query(
            "INSERT INTO pending_operations (tenant_id, number, kind, subject, operation, \
             requested_by, requested_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')",
        )
        .bind(self.tenant.clone())
        .bind(number)
        .bind(operation.kind())
        .bind(operation.subject())
        .bind(text)
        .bind(actor.to_owned())
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        // Two requests at once on PostgreSQL take the same number: the caller retries.
        .map_err(|e| match StoreError::from_insert(e, String::new) {
            StoreError::Duplicate(_) => StoreError::Conflict,
            other => other,
        })?;
        let pending = PendingOperation {
            number,
            operation: operation.clone(),
            requested_by: actor.to_owned(),
            requested_at: now,
            status: OperationStatus::Pending,
            decided_by: None,
            decided_at: None,
            reason: None,
        };
        let admins = active_admins(&mut tx, &self.tenant).await?;
        let notices: Vec<Notice> = admins
            .into_iter()
            .filter(|a| a.as_str() != actor)
            .map(|recipient| Notice {
                recipient,
                subject: format!("{} waits for your approval", pending.id()),
                body: format!(
                    "{actor} asked to {}. It takes effect only when a second admin approves it: \
                     steward admin approve {}",
                    operation.summary(),
                    pending.id()
                ),
                change: None,
                about: None,
            })
            .collect();
        notifications::insert(&mut tx, &self.tenant, &notices, now).await?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: "admin.operation_requested".into(),
            subject_type: "pending_operation",
            subject_id: pending.id(),
            outcome: "success",
            correlation_id: None,
            details: json!({"operation": operation.audit_details()}),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(pending)
    }

    /// One operation by number.
    pub async fn pending_operation(
        &self,
        number: i64,
    ) -> Result<Option<PendingOperation>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pending_operations WHERE tenant_id = $1 AND number = $2"
        )))
        .bind(self.tenant.clone())
        .bind(number)
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(row_to_operation).transpose()
    }

    /// Operations newest first, numbered below `before` (from the newest when `None`), with the
    /// given status (any when `None`), at most `limit`.
    pub async fn pending_operations(
        &self,
        status: Option<OperationStatus>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PendingOperation>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pending_operations WHERE tenant_id = $1 \
             AND ($2 = '' OR status = $2) AND number < $3 ORDER BY number DESC LIMIT $4"
        )))
        .bind(self.tenant.clone())
        .bind(status.map(|s| s.as_str()).unwrap_or("").to_owned())
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(row_to_operation).collect()
    }

    /// Approves and applies an operation in one transaction.
    pub async fn approve_operation(
        &self,
        number: i64,
        approver: &str,
    ) -> Result<Result<PendingOperation, Refusal>, StoreError> {
        self.approve(number, approver, false).await
    }

    /// Recovery: an installation admin (of tenant `default`) approves an operation of this
    /// tenant, which has fewer than two active admins (its only admin cannot be the second), so
    /// a tenant is never stuck. The approval event says so.
    pub async fn approve_operation_for_installation(
        &self,
        number: i64,
        installation_admin: &str,
    ) -> Result<Result<PendingOperation, Refusal>, StoreError> {
        self.approve(number, installation_admin, true).await
    }

    async fn approve(
        &self,
        number: i64,
        approver: &str,
        by_installation: bool,
    ) -> Result<Result<PendingOperation, Refusal>, StoreError> {
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        // The tenant's accounts first, as every lifecycle write takes them (the lock order): the
        // operation may change one, and the requester must still be an active admin.
        let approver_name =
            UserName::parse(approver).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let locked = crate::accounts::lock_accounts(
            &mut tx,
            self.store.backend,
            &self.tenant,
            &approver_name,
        )
        .await?;
        if by_installation && locked.active_admins.len() >= 2 {
            return Ok(Err(Refusal::Stale(
                "the tenant has two active admins: one of them decides (an installation admin approves only for a tenant that has no second admin)".into(),
            )));
        }
        let pending = match self.lock_pending(&mut tx, number).await? {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Some(refusal) = pending.refuses_approver(approver) {
            return Ok(Err(refusal));
        }
        // A request lapses with its requester's admin role: a leaver's queue is not approvable.
        if !locked
            .active_admins
            .iter()
            .any(|a| a.as_str() == pending.requested_by)
        {
            return Ok(Err(Refusal::Stale(format!(
                "{} requested it but is no longer an active admin: the request lapsed (reject it)",
                pending.requested_by
            ))));
        }
        // Both people's payload keys before the audit head (the lock order).
        let subjects = [approver, pending.requested_by.as_str()]
            .iter()
            .map(|who| format!("{}:{who}", self.tenant))
            .collect();
        tx.subject_keys(&subjects, now).await?;
        // Applied first: its rows are written before the audit head is taken (a store write
        // that records its own event takes the head itself, last). A refusal drops the
        // transaction: nothing of it is kept.
        let records = match apply(
            &mut tx,
            self.store.backend,
            &self.tenant,
            &pending,
            approver,
            now,
        )
        .await?
        {
            Ok(records) => records,
            Err(refusal) => return Ok(Err(refusal)),
        };
        decide(
            &mut tx,
            &self.tenant,
            number,
            OperationStatus::Approved,
            approver,
            None,
            now,
        )
        .await?;
        let approval = AuditRecord {
            occurred_at: now,
            actor: approver.to_owned(),
            action: "admin.operation_approved".into(),
            subject_type: "pending_operation",
            subject_id: pending.id(),
            outcome: "success",
            correlation_id: None,
            details: json!({"requested_by": pending.requested_by,
                            "by_installation_admin": by_installation,
                            "operation": pending.operation.audit_details()}),
        };
        let mut all = vec![approval];
        all.extend(records);
        audit::append(&mut tx, &self.tenant, &all).await?;
        tx.commit().await?;
        Ok(Ok(PendingOperation {
            status: OperationStatus::Approved,
            decided_by: Some(approver.to_owned()),
            decided_at: Some(now),
            ..pending
        }))
    }

    /// Rejects an operation (the requester withdrawing it, or another admin refusing it).
    pub async fn reject_operation(
        &self,
        number: i64,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Result<PendingOperation, Refusal>, StoreError> {
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        let pending = match self.lock_pending(&mut tx, number).await? {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        decide(
            &mut tx,
            &self.tenant,
            number,
            OperationStatus::Rejected,
            actor,
            reason,
            now,
        )
        .await?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: "admin.operation_rejected".into(),
            subject_type: "pending_operation",
            subject_id: pending.id(),
            outcome: "success",
            correlation_id: None,
            details: json!({"requested_by": pending.requested_by, "reason": reason,
                            "operation": pending.operation.audit_details()}),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(Ok(PendingOperation {
            status: OperationStatus::Rejected,
            decided_by: Some(actor.to_owned()),
            decided_at: Some(now),
            reason: reason.map(str::to_owned),
            ..pending
        }))
    }

    /// The pending operation, locked; refused when missing or decided.
    async fn lock_pending(
        &self,
        tx: &mut WriteTx,
        number: i64,
    ) -> Result<Result<PendingOperation, Refusal>, StoreError> {
        let lock = match self.store.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pending_operations WHERE tenant_id = $1 AND number = $2{lock}"
        )))
        .bind(self.tenant.clone())
        .bind(number)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(pending) = row.as_ref().map(row_to_operation).transpose()? else {
            return Ok(Err(Refusal::NotFound));
        };
        if pending.status != OperationStatus::Pending {
            return Ok(Err(Refusal::Decided(pending.status)));
        }
        Ok(Ok(pending))
    }

    /// Applies a grant of `admin` at once when the tenant's only active admin is `actor` and the
    /// operation grants no other privileged role: the first second admin, recorded as a
    /// bootstrap. `Ok(false)` when the tenant is past that point (the operation must wait).
    pub async fn bootstrap_admin(
        &self,
        actor: &str,
        operation: &Operation,
    ) -> Result<Result<bool, Refusal>, StoreError> {
        let granted = match operation {
            Operation::CreateUser { roles, .. } => granted_privileges(None, roles),
            Operation::SetRoles { before, after, .. } => granted_privileges(Some(before), after),
            _ => return Ok(Ok(false)),
        };
        if granted != [Role::Admin] {
            return Ok(Ok(false));
        }
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        let actor_name = UserName::parse(actor).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let admins =
            crate::accounts::lock_accounts(&mut tx, self.store.backend, &self.tenant, &actor_name)
                .await?
                .active_admins;
        if admins.len() != 1 || admins[0].as_str() != actor {
            return Ok(Ok(false));
        }
        // Once per tenant: the bootstrap is kept as operation 0, whose key also makes two
        // bootstraps at once collide (the second waits for approval like any other grant).
        let marker = sqlx::query(
            "INSERT INTO pending_operations (tenant_id, number, kind, subject, operation, \
             requested_by, requested_at, status, decided_at, reason) \
             VALUES ($1, 0, $2, $3, $4, $5, $6, 'approved', $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(self.tenant.clone())
        .bind(operation.kind())
        .bind(operation.subject())
        .bind(
            serde_json::to_string(operation)
                .map_err(|e| StoreError::Corrupt(format!("pending operation: {e}")))?,
        )
        .bind(actor.to_owned())
        .bind(ts(now))
        .bind("bootstrap: the tenant's only admin made its first second admin")
        .execute(&mut *tx)
        .await?;
        if marker.rows_affected() != 1 {
            return Ok(Ok(false));
        }
        let pending = PendingOperation {
            number: 0,
            operation: operation.clone(),
            requested_by: actor.to_owned(),
            requested_at: now,
            status: OperationStatus::Approved,
            decided_by: None,
            decided_at: None,
            reason: None,
        };
        let mut records =
            match apply(&mut tx, self.store.backend, &self.tenant, &pending, "", now).await? {
                Ok(records) => records,
                Err(refusal) => return Ok(Err(refusal)),
            };
        for record in &mut records {
            if let Value::Object(details) = &mut record.details {
                details.insert("bootstrap".into(), Value::Bool(true));
                details.insert(
                    "dual_control".into(),
                    json!({"requested_by": actor, "approved_by": null, "operation": "OP-0",
                           "note": "the tenant's only admin made its first second admin; no one else could approve it"}),
                );
            }
        }
        audit::append(&mut tx, &self.tenant, &records).await?;
        tx.commit().await?;
        Ok(Ok(true))
    }
}

async fn decide(
    tx: &mut WriteTx,
    tenant: &str,
    number: i64,
    status: OperationStatus,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE pending_operations SET status = $1, decided_by = $2, decided_at = $3, reason = $4 \
         WHERE tenant_id = $5 AND number = $6 AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(actor.to_owned())
    .bind(ts(now))
    .bind(reason.map(str::to_owned))
    .bind(tenant.to_owned())
    .bind(number)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// The tenant's active admins, by name.
async fn active_admins(tx: &mut WriteTx, tenant: &str) -> Result<Vec<UserName>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, roles FROM users WHERE tenant_id = $1 AND status = 'active' ORDER BY name",
    )
    .bind(tenant.to_owned())
    .fetch_all(&mut **tx)
    .await?;
    admins_of(&rows)
}

fn admins_of(rows: &[sqlx::any::AnyRow]) -> Result<Vec<UserName>, StoreError> {
    let mut admins = Vec::new();
    for row in rows {
        let roles = Roles::parse_list(&row.try_get::<String, _>("roles")?)
            .map_err(|e| StoreError::Corrupt(format!("roles: {e}")))?;
        if roles.contains(Role::Admin) {
            let name: String = row.try_get("name")?;
            admins.push(UserName::parse(&name).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
    }
    Ok(admins)
}
