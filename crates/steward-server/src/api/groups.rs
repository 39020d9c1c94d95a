//! The tenant's mapping of identity-provider groups to roles (single sign-on): who signs in with
//! which roles. Listing is for anyone who may read the tenant's records (like the account list);
//! changing it is for admins, and a mapping that grants a privileged role waits for a second
//! admin (dual control).

use super::admin::{AppliedOrWaiting, PendingView, waiting};
use super::body::JsonBody;
use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::auth::{Caller, ManageGroupRoles, ReadRecords};
use crate::dual_control;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_core::Roles;
use steward_core::sso::GroupName;
use steward_store::group_roles::GroupRoles;
use steward_store::pending::Operation;
use utoipa::ToSchema;

/// What a provider group means in this tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupRolesView {
    /// The group as the identity provider names it in the `groups` claim.
    pub group: String,
    /// The roles its members hold in this tenant.
    pub roles: Vec<String>,
    /// Who set the mapping as it stands, and when.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl GroupRolesView {
    fn new(mapping: &GroupRoles) -> GroupRolesView {
        GroupRolesView {
            group: mapping.group.to_string(),
            roles: mapping.roles.iter().map(|r| r.to_string()).collect(),
            created_by: mapping.created_by.clone(),
            created_at: mapping.created_at,
        }
    }
}

/// The roles to give a group's members.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetGroupRoles {
    /// Any of: requester, manager, cab_member, ciso, vp_engineering, compliance_officer, auditor, admin, pipeline, monitor.
    pub roles: Vec<String>,
}

/// A mapping that was removed, with the roles it gave.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeletedGroupView {
    pub group: String,
    pub roles: Vec<String>,
}

fn group_name(group: &str) -> Result<GroupName, ApiError> {
    GroupName::parse(group).map_err(|e| ApiError::invalid_field("group", e))
}

/// List the tenant's group-to-role mapping, by group name, a page at a time.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(PageQuery),
    responses((status = 200, body = Page<GroupRolesView>), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<GroupRolesView>>, ApiError> {
    let after: Option<String> = page.after("groups")?;
    let rows = caller
        .may::<ReadRecords>(&state)?
        .store()
        .group_roles(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("groups", rows, |row| row.group.to_string());
    Ok(Json(page.map(|row| GroupRolesView::new(&row))))
}

/// Map a provider group to roles in your tenant (admin only): its members hold them from their
/// next sign-in (or bearer token) on. Replaces the group's roles if it had some. A group is mapped
/// in one tenant at most: one that another tenant maps is refused (409). A mapping that
/// grants a privileged role (admin, ciso, vp_engineering, cab_member, compliance_officer,
/// auditor) waits for a second admin (202, the waiting operation); one that grants none applies
/// at once (200).
#[utoipa::path(put, path = "/api/v1/groups/{name}", tag = "groups", request_body = SetGroupRoles,
    params(("name" = String, Path, description = "the group as the provider names it (percent-encoded)")),
    responses((status = 200, body = GroupRolesView),
        (status = 202, body = PendingView, headers(("Location" = String, description = "the waiting operation"))),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn set_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
    JsonBody(body): JsonBody<SetGroupRoles>,
) -> Result<AppliedOrWaiting<Json<GroupRolesView>>, ApiError> {
    let admin = caller.may::<ManageGroupRoles>(&state)?;
    let group = group_name(&group)?;
    let roles = Roles::parse_list(&body.roles.join(","))
        .map_err(|e| ApiError::invalid_field("roles", e))?;
    super::accounts::one_kind(&roles)?;
    let store = admin.store();
    // A group another tenant maps is refused now, not when a second admin approves.
    store.check_group_mappable(&group).await?;
    let before = store.group_role(&group).await?.map(|m| m.roles);
    let operation = Operation::SetGroupRoles {
        group: group.clone(),
        before: before.clone(),
        after: roles.clone(),
    };
    if dual_control::needs_second_admin(&operation) {
        let waiting = waiting(dual_control::request(&admin, operation).await?)?;
        return Ok(AppliedOrWaiting::Waiting(waiting));
    }
    // Judged against `before`: applied only if the mapping is still that (a conflict otherwise,
    // so a concurrent change cannot turn this into an unapproved grant).
    store
        .set_group_roles_if(admin.who().as_str(), &group, &roles, before.as_ref())
        .await?;
    let mapping = store.group_role(&group).await?.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "group mapping {group} missing after it was set"
        ))
    })?;
    Ok(AppliedOrWaiting::Applied(Json(GroupRolesView::new(
        &mapping,
    ))))
}

/// Remove a group's mapping in your tenant (admin only): its members lose its roles from their
/// next sign-in (or bearer token) on.
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "the group as the provider names it (percent-encoded)")),
    responses((status = 200, body = DeletedGroupView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
) -> Result<Json<DeletedGroupView>, ApiError> {
    let admin = caller.may::<ManageGroupRoles>(&state)?;
    let group = group_name(&group)?;
    let roles = admin
        .store()
        .delete_group_roles(admin.who().as_str(), &group)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("group '{group}' has no mapping in this tenant"))
        })?;
    Ok(Json(DeletedGroupView {
        group: group.to_string(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }))
}
