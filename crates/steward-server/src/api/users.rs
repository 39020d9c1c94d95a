//! Accounts: creating users (admin only) and asking who you are.

use super::body::JsonBody;
use super::views::UserView;
use crate::AppState;
use crate::auth::{Caller, generate_token, hash_token};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
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
    (status = 201, body = UserView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let admin = caller.as_admin()?;
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
    caller
        .store(&state.store)
        .create_user(
            admin.principal().name.as_str(),
            &name,
            &roles,
            &hash_token(&token),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&name, &roles, Some(token)))))
}

/// List the accounts in your tenant.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Vec<UserView>)), security(("token" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = caller.store(&state.store).list_users().await?;
    Ok(Json(users.iter().map(|(n, r)| view(n, r, None)).collect()))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "users", responses((status = 200, body = UserView), (status = 401, body = ErrorBody)), security(("token" = [])))]
pub async fn whoami(caller: Caller) -> Json<UserView> {
    Json(view(&caller.0.name, &caller.0.roles, None))
}
