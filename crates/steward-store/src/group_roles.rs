//! Each tenant's mapping of identity-provider groups to roles (single sign-on), and the query
//! sign-ins decide from: every row, in any tenant, for one of a person's groups.
//!
//! The writes come in two layers, as every privileged write does: `set_group_roles_in` and
//! `delete_group_roles_in` work inside a caller's transaction (dual control applies them when
//! a second admin approves), and [`TenantStore::set_group_roles`] /
//! [`TenantStore::delete_group_roles`] open one of their own. Each is a `group_roles.set` or
//! `group_roles.deleted` audit event in the same transaction.

use crate::audit::{self, AuditRecord};
use crate::{Store, StoreError, TenantStore, WriteTx, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use steward_core::sso::{GroupGrant, GroupName};
use steward_core::{Roles, TenantId};

/// One row of a tenant's mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoles {
    pub group: GroupName,
    pub roles: Roles,
    /// Who set the mapping as it stands, and when.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn record(
    actor: &str,
    action: &str,
    group: &GroupName,
    at: DateTime<Utc>,
    details: Value,
) -> AuditRecord {
    AuditRecord {
        occurred_at: at,
        actor: actor.to_owned(),
        action: action.into(),
        subject_type: "group",
        subject_id: group.to_string(),
        outcome: "success",
        correlation_id: None,
        details,
    }
}

impl Store {
    /// Every mapping row, in any tenant, for one of `groups`: what [`steward_core::sso::resolve`]
    /// decides from.
    pub async fn group_grants(&self, groups: &[GroupName]) -> Result<Vec<GroupGrant>, StoreError> {
        let mut grants = Vec::new();
        for chunk in groups.chunks(500) {
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT tenant_id, group_name, roles FROM group_roles WHERE group_name IN ({}) \
                 ORDER BY tenant_id, group_name",
                params.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for group in chunk {
                query = query.bind(group.as_str().to_owned());
            }
            for row in query.fetch_all(&self.pool).await? {
                grants.push(GroupGrant {
                    tenant: TenantId::parse(&row.try_get::<String, _>("tenant_id")?)
                        .map_err(|e| corrupt("tenant", e))?,
                    group: GroupName::parse(&row.try_get::<String, _>("group_name")?)
                        .map_err(|e| corrupt("group", e))?,
                    roles: Roles::parse_list(&row.try_get::<String, _>("roles")?)
                        .map_err(|e| corrupt("roles", e))?,
                });
            }
        }
        Ok(grants)
    }
}

/// Why a group another tenant maps cannot be mapped here. It does not name the other tenant:
/// that a tenant exists, and which groups it uses, is not another tenant's to learn.
fn mapped_elsewhere(group: &GroupName) -> StoreError {
    StoreError::Refused(format!(
        "group {group} is mapped in another tenant; ask the installation admins"
    ))
}

/// Maps `group` to `roles` in `tenant` inside `tx` (`group_roles.set`, with the roles before, if
/// any, and after). Answers the roles it had before. Setting the roles it already has changes
/// nothing and records nothing. A group is mapped in one tenant at most (group names are the
/// provider's, shared by all tenants): a group another tenant maps is refused
/// ([`StoreError::Refused`], a 409), here and through the unique index behind it.
pub(crate) async fn set_group_roles_in(
    tx: &mut WriteTx,
    tenant: &str,
    actor: &str,
    group: &GroupName,
    roles: &Roles,
    now: DateTime<Utc>,
) -> Result<Option<Roles>, StoreError> {
    if mapped_in_another_tenant(&mut **tx, tenant, group).await? {
        return Err(mapped_elsewhere(group));
    }
    let before = current_roles(tx, tenant, group).await?;
    if before.as_ref() == Some(roles) {
        return Ok(before);
    }
    sqlx::query(
        "INSERT INTO group_roles (tenant_id, group_name, roles, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, group_name) DO UPDATE SET \
         roles = excluded.roles, created_by = excluded.created_by, created_at = excluded.created_at",
    )
        .bind(tenant.to_owned())
        .bind(group.as_str().to_owned())
        .bind(roles.to_list())
        .bind(actor.to_owned())
        .bind(ts(now))
        .execute(&mut **tx)
        .await
        .map_err(|e| match StoreError::from_insert(e, String::new) {
            // Another tenant mapped the group since the check (the unique index on the group).
            StoreError::Duplicate(_) => mapped_elsewhere(group),
            other => other,
        })?;
    let event = record(
        actor,
        "group_roles.set",
        group,
        now,
        json!({"before": before.as_ref().map(|r| json!({"roles": r})),
               "after": {"group": group, "roles": roles}}),
    );
    audit::append(tx, tenant, &[event]).await?;
    Ok(before)
}

/// Removes `group`'s mapping in `tenant` inside `tx` (`group_roles.deleted`, with the roles it
/// gave). Answers them; `None` (and nothing recorded) when the group had no mapping.
pub(crate) async fn delete_group_roles_in(
    tx: &mut WriteTx,
    tenant: &str,
    actor: &str,
    group: &GroupName,
    now: DateTime<Utc>,
) -> Result<Option<Roles>, StoreError> {
    let Some(before) = current_roles(tx, tenant, group).await? else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM group_roles WHERE tenant_id = $1 AND group_name = $2")
        .bind(tenant.to_owned())
        .bind(group.as_str().to_owned())
        .execute(&mut **tx)
        .await?;
    let event = record(
        actor,
        "group_roles.deleted",
        group,
        now,
        json!({"before": {"group": group, "roles": before}}),
    );
    audit::append(tx, tenant, &[event]).await?;
    Ok(Some(before))
}

/// Whether a tenant other than `tenant` maps `group`.
async fn mapped_in_another_tenant<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    tenant: &str,
    group: &GroupName,
) -> Result<bool, StoreError> {
    let row =
        sqlx::query("SELECT 1 AS one FROM group_roles WHERE group_name = $1 AND tenant_id <> $2")
            .bind(group.as_str().to_owned())
            .bind(tenant.to_owned())
            .fetch_optional(executor)
            .await?;
    Ok(row.is_some())
}

async fn current_roles(
    tx: &mut WriteTx,
    tenant: &str,
    group: &GroupName,
) -> Result<Option<Roles>, StoreError> {
    let row = sqlx::query("SELECT roles FROM group_roles WHERE tenant_id = $1 AND group_name = $2")
        .bind(tenant.to_owned())
        .bind(group.as_str().to_owned())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| {
        Roles::parse_list(&r.try_get::<String, _>("roles")?).map_err(|e| corrupt("roles", e))
    })
    .transpose()
}

impl TenantStore<'_> {
    /// The tenant's mapping, by group name, after `after`, at most `limit` rows.
    pub async fn group_roles(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GroupRoles>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_name, roles, created_by, created_at FROM group_roles \
             WHERE tenant_id = $1 AND group_name > $2 ORDER BY group_name LIMIT $3",
        )
        .bind(self.tenant.clone())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GroupRoles {
                    group: GroupName::parse(&row.try_get::<String, _>("group_name")?)
                        .map_err(|e| corrupt("group", e))?,
                    roles: Roles::parse_list(&row.try_get::<String, _>("roles")?)
                        .map_err(|e| corrupt("roles", e))?,
                    created_by: row.try_get("created_by")?,
                    created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
                })
            })
            .collect()
    }

    /// One group's mapping in the tenant.
    pub async fn group_role(&self, group: &GroupName) -> Result<Option<GroupRoles>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_name, roles, created_by, created_at FROM group_roles \
             WHERE tenant_id = $1 AND group_name = $2",
        )
        .bind(self.tenant.clone())
        .bind(group.as_str().to_owned())
        .fetch_optional(&self.store.pool)
        .await?;
        rows.map(|row| {
            Ok(GroupRoles {
                group: group.clone(),
                roles: Roles::parse_list(&row.try_get::<String, _>("roles")?)
                    .map_err(|e| corrupt("roles", e))?,
                created_by: row.try_get("created_by")?,
                created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
            })
        })
        .transpose()
    }

    /// Refused ([`StoreError::Refused`]) when another tenant maps `group`: a mapping asked for
    /// is checked before it waits for a second admin (and again when it is applied).
    pub async fn check_group_mappable(&self, group: &GroupName) -> Result<(), StoreError> {
        if mapped_in_another_tenant(&self.store.pool, &self.tenant, group).await? {
            return Err(mapped_elsewhere(group));
        }
        Ok(())
    }

    /// Maps `group` to `roles` in this tenant, in a transaction of its own (see
    /// `set_group_roles_in`). Answers the roles before.
    pub async fn set_group_roles(
        &self,
        actor: &str,
        group: &GroupName,
        roles: &Roles,
    ) -> Result<Option<Roles>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let before =
            set_group_roles_in(&mut tx, &self.tenant, actor, group, roles, Utc::now()).await?;
        tx.commit().await?;
        Ok(before)
    }

    /// As [`Self::set_group_roles`], only if the group still maps to `expected` (`None`:
    /// unmapped): a change judged against one mapping is never applied to another. A conflict
    /// (nothing written) otherwise.
    pub async fn set_group_roles_if(
        &self,
        actor: &str,
        group: &GroupName,
        roles: &Roles,
        expected: Option<&Roles>,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        let before =
            set_group_roles_in(&mut tx, &self.tenant, actor, group, roles, Utc::now()).await?;
        if before.as_ref() != expected {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes `group`'s mapping in this tenant, in a transaction of its own (see
    /// `delete_group_roles_in`). Answers the roles it gave; `None` when there was none.
    pub async fn delete_group_roles(
        &self,
        actor: &str,
        group: &GroupName,
    ) -> Result<Option<Roles>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let before = delete_group_roles_in(&mut tx, &self.tenant, actor, group, Utc::now()).await?;
        tx.commit().await?;
        Ok(before)
    }
}
