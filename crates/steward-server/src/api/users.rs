//! Accounts: creating users (admin only), listing them, and asking who you are. Their lifecycle
//! (disable, enable, roles, tokens) is [`super::accounts`].

use super::account_views::PendingAccountView;
use super::admin::{AppliedOrWaiting, PendingView};
use super::body::JsonBody;
use super::created::{Accepted, Created};
use super::page::{Page, PageQuery, PageRequest, Paged};
use super::views::UserView;
use crate::AppState;
use crate::auth::{Caller, ManageUsers, Permit, ReadRecords, generate_token, hash_token};
use crate::dual_control::{self, Requested};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use steward_core::{Roles, UserName};
use steward_store::pending::Operation;

use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    /// Any of: requester, manager, cab_member, ciso, vp_engineering, compliance_officer, auditor, admin, pipeline, monitor.
    pub roles: Vec<String>,
    /// When the first token stops working: a duration from now (`90d`, `12h`, `30m`, `2w`) or
    /// an RFC 3339 time. No expiry when absent.
    #[serde(default)]
    pub expires: Option<String>,
}

/// Create an account and its first API token (admin only). The token is shown once. An account
/// with a privileged role (admin, ciso, vp_engineering, cab_member, compliance_officer, auditor)
/// is created only when a second admin approves it: the answer is then 202 with the token and
/// the operation (`pending_approval`); the token authenticates nothing until then.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses(
    (status = 201, body = UserView, headers(("Location" = String, description = "the path of what was created"))),
    (status = 202, body = PendingAccountView, headers(("Location" = String, description = "the waiting operation"))),
    (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<AppliedOrWaiting<Created<UserView>, PendingAccountView>, ApiError> {
    create_account(&state, &caller.may::<ManageUsers>(&state)?, body).await
}

/// Creates an account, or asks a second admin to when it holds a privileged role: what
/// `POST /api/v1/users` and the portal's user form both do.
pub(crate) async fn create_account(
    state: &AppState,
    admin: &Permit<'_, ManageUsers>,
    body: CreateUser,
) -> Result<AppliedOrWaiting<Created<UserView>, PendingAccountView>, ApiError> {
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
    super::accounts::one_kind(&roles)?;
    let expires_at = super::accounts::expiry(state, body.expires.as_deref())?;
    let token = generate_token()?;
    let store = admin.store();
    let operation = Operation::CreateUser {
        name: name.clone(),
        roles: roles.clone(),
        token_hash: hash_token(&token),
        token_expires_at: expires_at,
    };
    if dual_control::needs_second_admin(&operation) {
        if store.account(&name).await?.is_some() {
            return Err(ApiError::Conflict {
                message: format!("user '{name}' already exists"),
                details: serde_json::Value::Null,
            });
        }
        if let Requested::Waiting(pending) = dual_control::request(admin, operation).await? {
            let operation = PendingView::new(&pending)?;
            return Ok(AppliedOrWaiting::Waiting(Accepted {
                location: operation.location(),
                view: PendingAccountView {
                    name: name.to_string(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    status: "pending_approval".into(),
                    token,
                    token_expires_at: expires_at,
                    pending_approval: operation.id.clone(),
                    operation,
                },
            }));
        }
    } else {
        store
            .create_user_expiring(
                admin.principal().name.as_str(),
                &name,
                &roles,
                &hash_token(&token),
                expires_at,
            )
            .await?;
    }
    let account = store
        .account(&name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the account {name} just created is not there"))?;
    let mut view = UserView::of(&account);
    view.token = Some(token);
    view.token_expires_at = expires_at;
    Ok(AppliedOrWaiting::Applied(Created::at(
        format!("/api/v1/users/{name}"),
        view,
    )))
}

/// List the accounts in your tenant, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = Page<UserView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<UserView>>, ApiError> {
    Ok(Json(
        users_page(&caller.may::<ReadRecords>(&state)?, &page).await?,
    ))
}

/// A page of the tenant's accounts, by name: the API's list and the portal's users page.
pub(crate) async fn users_page(
    reader: &Permit<'_, ReadRecords>,
    page: &PageRequest,
) -> Result<Page<UserView>, ApiError> {
    let after: Option<String> = page.after("users")?;
    let users = reader
        .store()
        .list_users(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("users", users, |account| account.name.to_string());
    Ok(page.map(|account| UserView::of(&account)))
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
    let account = reader.store().account(&parsed).await?.ok_or_else(missing)?;
    Ok(Json(UserView::of(&account)))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "users", responses((status = 200, body = UserView), (status = 401, body = ErrorBody)), security(("token" = [])))]
pub async fn whoami(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UserView>, ApiError> {
    let account = caller
        .own_account(&state)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the account of this token is gone".into()))?;
    Ok(Json(UserView::of(&account)))
}
