//! The account lifecycle over HTTP: disable and enable an account, set its roles, rotate one's
//! own token, revoke or issue an account's tokens. Each is one store call, one transaction, one
//! audit event; none records a token or its hash.
//!
//! A tenant never locks itself out: disabling oneself, revoking one's own tokens, and disabling
//! or taking `admin` from the tenant's last active admin are refused (409), as is disabling
//! `steward`, the server's own account (422).

use super::account_views::{DisabledUserView, PendingTokenView, RevokedTokensView, TokenView};
use super::admin::{AppliedOrWaiting, PendingView};
use super::body::JsonBody;
use super::created::{Accepted, Created};
use super::views::UserView;
use crate::AppState;
use crate::auth::{
    Caller, ManageUsers, Permit, RotateOwnToken, bearer_token, generate_token, hash_token,
};
use crate::dual_control::{self, Requested};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use steward_core::account::{AccountStatus, LockoutRefused, parse_expiry};
use steward_core::{Role, Roles, UserName};
use steward_store::pending::{Operation, PendingOperation};
use steward_store::{Account, AccountRefusal, TenantStore};
use utoipa::ToSchema;

/// The roles an account is to hold from now on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    /// Any of: requester, manager, cab_member, ciso, vp_engineering, compliance_officer, auditor, admin, pipeline, monitor.
    pub roles: Vec<String>,
}

/// A new token's lifetime.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// When the new token stops working: a duration from now (`90d`, `12h`, `30m`, `2w`) or an
    /// RFC 3339 time. No expiry when absent.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A token's expiry as the request wrote it, read against the server's clock; 422 naming
/// `expires` when it is not one.
pub(crate) fn expiry(
    state: &AppState,
    written: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    written
        .map(|text| {
            parse_expiry(text, state.clock.now()).map_err(|e| ApiError::invalid_field("expires", e))
        })
        .transpose()
}

/// The account a path names; 404 when the name cannot be one.
fn account_name(name: &str) -> Result<UserName, ApiError> {
    UserName::parse(name).map_err(|_| ApiError::NotFound(format!("no user '{name}'")))
}

fn refused(refusal: AccountRefusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        AccountRefusal::NoSuchUser(_) => ApiError::NotFound(message),
        AccountRefusal::AlreadyIs { status, .. } => ApiError::Conflict {
            message,
            details: json!({ "status": status }),
        },
        AccountRefusal::Lockout(lockout) => ApiError::Conflict {
            message,
            details: json!({ "reason": match lockout {
                LockoutRefused::SelfDisable => "self_disable",
                LockoutRefused::LastAdmin { .. } => "last_admin",
                LockoutRefused::OwnTokens => "own_tokens",
            }}),
        },
        AccountRefusal::RolesChanged { .. }
        | AccountRefusal::TokenGone
        | AccountRefusal::Disabled(_) => ApiError::Conflict {
            message,
            details: serde_json::Value::Null,
        },
    }
}

/// Disable an account (admin only): its tokens are refused from the next request on, and every
/// change awaiting an approval it could have given is reported to the change's requester.
#[utoipa::path(post, path = "/api/v1/users/{name}/disable", tag = "users",
    params(("name" = String, Path, description = "the user name")),
    responses((status = 200, body = DisabledUserView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<DisabledUserView>, ApiError> {
    let admin = caller.may::<ManageUsers>(&state)?;
    disable_account(&state, &admin, &name).await.map(Json)
}

/// Disables account `name`: what `POST /api/v1/users/{name}/disable` and the portal's users
/// page both do.
pub(crate) async fn disable_account(
    state: &AppState,
    admin: &Permit<'_, ManageUsers>,
    name: &str,
) -> Result<DisabledUserView, ApiError> {
    if name == crate::execution::SYSTEM_ACTOR {
        return Err(ApiError::invalid_field(
            "name",
            "steward is the server's own account (it runs approved changes): it cannot be disabled",
        ));
    }
    let name = account_name(name)?;
    let disabled = admin
        .store()
        .disable_user(admin.who(), &name, state.clock.now())
        .await?
        .map_err(refused)?;
    Ok(DisabledUserView::of(&disabled))
}

/// Enable a disabled account again (admin only): its tokens that have not expired or been
/// revoked work again. An account holding a privileged role (admin, ciso, vp_engineering,
/// cab_member, compliance_officer, auditor) gets its privileges back only when a second admin
/// approves (202, the waiting operation; a tenant with no second active admin asks an
/// installation admin: `steward tenant approve`).
#[utoipa::path(post, path = "/api/v1/users/{name}/enable", tag = "users",
    params(("name" = String, Path, description = "the user name")),
    responses((status = 200, body = UserView),
        (status = 202, body = PendingView, headers(("Location" = String, description = "the waiting operation"))),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<AppliedOrWaiting<Json<UserView>>, ApiError> {
    let admin = caller.may::<ManageUsers>(&state)?;
    enable_account(&state, &admin, &name).await
}

/// Enables account `name`, or asks a second admin to when it holds a privileged role: what
/// `POST /api/v1/users/{name}/enable` and the portal's users page both do.
pub(crate) async fn enable_account(
    state: &AppState,
    admin: &Permit<'_, ManageUsers>,
    name: &str,
) -> Result<AppliedOrWaiting<Json<UserView>>, ApiError> {
    let name = account_name(name)?;
    let store = admin.store();
    let account = store
        .account(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user '{name}'")))?;
    let operation = Operation::EnableUser {
        user: name.clone(),
        roles: account.roles.clone(),
    };
    if account.status == AccountStatus::Disabled && dual_control::needs_second_admin(&operation) {
        let Requested::Waiting(pending) = dual_control::request(admin, operation).await? else {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "enabling is never a bootstrap"
            )));
        };
        return Ok(AppliedOrWaiting::Waiting(waiting_for(&pending)?));
    }
    let account = store
        .enable_user(
            admin.who().as_str(),
            &name,
            Some(&account.roles),
            state.clock.now(),
        )
        .await?
        .map_err(refused)?;
    Ok(AppliedOrWaiting::Applied(Json(UserView::of(&account))))
}

/// Set an account's roles (admin only), replacing the ones it has. Taking `admin` from the
/// tenant's last active admin is refused. Granting a privileged role (admin, ciso,
/// vp_engineering, cab_member, compliance_officer, auditor) waits for a second admin: the answer
/// is then 202 with the waiting operation, and the account keeps its roles until it is approved.
/// A single sign-on account's roles come from the group mapping, so they are not set here.
#[utoipa::path(put, path = "/api/v1/users/{name}/roles", tag = "users", request_body = SetRoles,
    params(("name" = String, Path, description = "the user name")),
    responses((status = 200, body = UserView),
        (status = 202, body = PendingView, headers(("Location" = String, description = "the waiting operation"))),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn set_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SetRoles>,
) -> Result<AppliedOrWaiting<Json<UserView>>, ApiError> {
    let admin = caller.may::<ManageUsers>(&state)?;
    set_account_roles(&state, &admin, &name, body).await
}

/// Sets account `name`'s roles, or asks a second admin to when that grants a privileged role:
/// what `PUT /api/v1/users/{name}/roles` and the portal's users page both do.
pub(crate) async fn set_account_roles(
    state: &AppState,
    admin: &Permit<'_, ManageUsers>,
    name: &str,
    body: SetRoles,
) -> Result<AppliedOrWaiting<Json<UserView>>, ApiError> {
    let name = account_name(name)?;
    let roles = Roles::parse_list(&body.roles.join(","))
        .map_err(|e| ApiError::invalid_field("roles", e))?;
    one_kind(&roles)?;
    let store = admin.store();
    let account = local_account(
        &store,
        &name,
        "its roles come from the provider's groups: change the tenant's group mapping (`steward tenant groups set`)",
    )
    .await?;
    if is_service(&account.roles) != is_service(&roles) {
        return Err(ApiError::Conflict {
            message: format!(
                "{name} is {}: a service account and a person's account do not turn into each other (their tokens would change hands); create a new account instead",
                if is_service(&account.roles) {
                    "a service account"
                } else {
                    "a person's account"
                }
            ),
            details: json!({ "reason": "service_boundary" }),
        });
    }
    let operation = Operation::SetRoles {
        user: name.clone(),
        before: account.roles.clone(),
        after: roles.clone(),
    };
    if dual_control::needs_second_admin(&operation) {
        if let Requested::Waiting(pending) = dual_control::request(admin, operation).await? {
            return Ok(AppliedOrWaiting::Waiting(waiting_for(&pending)?));
        }
        let account = store
            .account(&name)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no user '{name}'")))?;
        return Ok(AppliedOrWaiting::Applied(Json(UserView::of(&account))));
    }
    let account = store
        .set_user_roles(
            admin.who().as_str(),
            &name,
            &roles,
            Some(&account.roles),
            state.clock.now(),
        )
        .await?
        .map_err(refused)?;
    Ok(AppliedOrWaiting::Applied(Json(UserView::of(&account))))
}

/// A service account holds only service roles (pipeline, monitor): it asks and records.
fn is_service(roles: &Roles) -> bool {
    roles.iter().all(Role::is_service_account)
}

/// 422 for roles that mix a service role with a person's (see
/// [`Roles::mixes_service_and_person`]).
pub(crate) fn one_kind(roles: &Roles) -> Result<(), ApiError> {
    if roles.mixes_service_and_person() {
        return Err(ApiError::invalid_field(
            "roles",
            "mixes a service role (pipeline, monitor) with a person's role: a service account holds only service roles; make the person an account of their own",
        ));
    }
    Ok(())
}

/// The account `name`, which must be a local one (a single sign-on account is refused, saying
/// `why`); 404 when there is none.
async fn local_account(
    store: &TenantStore<'_>,
    name: &UserName,
    why: &str,
) -> Result<Account, ApiError> {
    let account = store
        .account(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user '{name}'")))?;
    if account.from_sso {
        return Err(ApiError::Conflict {
            message: format!("{name} signs in through single sign-on: {why}"),
            details: json!({ "source": "oidc" }),
        });
    }
    Ok(account)
}

fn waiting_for(pending: &PendingOperation) -> Result<Accepted<PendingView>, ApiError> {
    let view = PendingView::new(pending)?;
    Ok(Accepted {
        location: view.location(),
        view,
    })
}

/// Replace the token this request is made with by a new one, shown once: the old one stops
/// working at once. The new token expires as asked (`expires`), or never.
#[utoipa::path(post, path = "/api/v1/tokens/rotate", tag = "users", request_body = NewToken,
    responses((status = 200, body = TokenView), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<Json<TokenView>, ApiError> {
    let holder = caller.may::<RotateOwnToken>(&state)?;
    let old = bearer_token(&headers).ok_or_else(|| {
        ApiError::BadRequest(
            "this request was not made with an API token: there is nothing to rotate".into(),
        )
    })?;
    let expires_at = expiry(&state, body.expires.as_deref())?;
    let token = generate_token()?;
    holder
        .store()
        .rotate_token(
            holder.who(),
            &hash_token(old),
            &hash_token(&token),
            expires_at,
            state.clock.now(),
        )
        .await?
        .map_err(refused)?;
    Ok(Json(TokenView {
        user: holder.who().to_string(),
        token,
        expires_at,
    }))
}

/// Revoke every token of an account (admin only): none works again, and its single sign-on
/// sessions end. The account stays; an admin may issue it a new token. One's own tokens are
/// rotated, not revoked. A single sign-on account's bearer JWTs come from the provider and work
/// until they expire: disable the account to stop those at once.
#[utoipa::path(post, path = "/api/v1/users/{name}/tokens/revoke", tag = "users",
    params(("name" = String, Path, description = "the user name")),
    responses((status = 200, body = RevokedTokensView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<RevokedTokensView>, ApiError> {
    let admin = caller.may::<ManageUsers>(&state)?;
    let name = account_name(&name)?;
    let revoked = admin
        .store()
        .revoke_tokens(admin.who(), &name, state.clock.now())
        .await?
        .map_err(refused)?;
    Ok(Json(RevokedTokensView {
        user: name.to_string(),
        revoked,
    }))
}

/// Issue a new token for an account (admin only), shown once: after its tokens were revoked, or
/// for a second pipeline. A service account's (pipeline, monitor) is issued at once (201). A
/// person's token lets its holder act as that person, so it waits for a second admin (202, the
/// token and the waiting operation; it works once approved). Single sign-on accounts hold no
/// API tokens.
#[utoipa::path(post, path = "/api/v1/users/{name}/tokens", tag = "users", request_body = NewToken,
    params(("name" = String, Path, description = "the user name")),
    responses((status = 201, body = TokenView, headers(("Location" = String, description = "the account the token belongs to"))),
        (status = 202, body = PendingTokenView, headers(("Location" = String, description = "the waiting operation"))),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<AppliedOrWaiting<Created<TokenView>, PendingTokenView>, ApiError> {
    let admin = caller.may::<ManageUsers>(&state)?;
    let name = account_name(&name)?;
    let expires_at = expiry(&state, body.expires.as_deref())?;
    let store = admin.store();
    let account = local_account(
        &store,
        &name,
        "it holds no API token (a pipeline gets its own account)",
    )
    .await?;
    let token = generate_token()?;
    if !is_service(&account.roles) {
        let operation = Operation::IssueToken {
            user: name.clone(),
            roles: account.roles.clone(),
            token_hash: hash_token(&token),
            expires_at,
        };
        let Requested::Waiting(pending) = dual_control::request(&admin, operation).await? else {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a token is never a bootstrap"
            )));
        };
        let operation = PendingView::new(&pending)?;
        return Ok(AppliedOrWaiting::Waiting(Accepted {
            location: operation.location(),
            view: PendingTokenView {
                user: name.to_string(),
                token,
                expires_at,
                pending_approval: operation.id.clone(),
                operation,
            },
        }));
    }
    store
        .issue_token(
            admin.who().as_str(),
            &name,
            &hash_token(&token),
            expires_at,
            state.clock.now(),
        )
        .await?
        .map_err(refused)?;
    Ok(AppliedOrWaiting::Applied(Created::at(
        format!("/api/v1/users/{name}"),
        TokenView {
            user: name.to_string(),
            token,
            expires_at,
        },
    )))
}
