//! Accounts: creating users (admin only) and asking who you are.

use super::body::JsonBody;
use super::created::Created;
use super::page::{Page, PageQuery, Paged};
use super::views::UserView;
use crate::AppState;
use crate::auth::{Caller, ManageUsers, ReadRecords, generate_token, hash_token};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use steward_core::{Roles, UserName};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    /// Any of: requester, manager, cab_member, ciso, vp_engineering, compliance_officer, auditor, admin, pipeline, monitor.
    pub roles: Vec<String>,
}

fn view(name: &UserName, roles: &Roles, token: Option<String>) -> UserView {
    UserView {
        name: name.to_string(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        token,
    }
}

/// Create an account and its first API token (admin only). The token is shown once.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses(
    (status = 201, body = UserView, headers(("Location" = String, description = "the path of what was created"))), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<Created<UserView>, ApiError> {
    let admin = caller.may::<ManageUsers>(&state)?;
    let name =
        UserName::parse(&body.name).map_err(|e| ApiError::invalid_field("name", e.to_string()))?;
    if name.as_str() == crate::execution::SYSTEM_ACTOR {
        return Err(ApiError::invalid_field(
            "name",
            "is reserved: Steward acts under it in the audit log when it runs changes",
        ));
    }
    let roles = Roles::parse_list(&body.roles.join(","))
        .map_err(|e| ApiError::invalid_field("roles", e))?;
    let token = generate_token()?;
    admin
        .store()
        .create_user(
            admin.principal().name.as_str(),
            &name,
            &roles,
            &hash_token(&token),
        )
        .await?;
    Ok(Created::at(
        format!("/api/v1/users/{name}"),
        view(&name, &roles, Some(token)),
    ))
}

/// List the accounts in your tenant, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = Page<UserView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<UserView>>, ApiError> {
    let after: Option<String> = page.after("users")?;
    let users = caller
        .may::<ReadRecords>(&state)?
        .store()
        .list_users(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("users", users, |(name, _)| name.to_string());
    Ok(Json(page.map(|(n, r)| view(&n, &r, None))))
}

/// One account in your tenant, by name (where `POST /api/v1/users` says it created it).
#[utoipa::path(get, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "the user name")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let reader = caller.may::<ReadRecords>(&state)?;
    let missing = || ApiError::NotFound(format!("no user '{name}'"));
    let parsed = UserName::parse(&name).map_err(|_| missing())?;
    let roles = reader
        .store()
        .user_roles(&parsed)
        .await?
        .ok_or_else(missing)?;
    Ok(Json(view(&parsed, &roles, None)))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "users", responses((status = 200, body = UserView), (status = 401, body = ErrorBody)), security(("token" = [])))]
pub async fn whoami(caller: Caller) -> Json<UserView> {
    Json(view(caller.name(), &caller.principal().roles, None))
}
