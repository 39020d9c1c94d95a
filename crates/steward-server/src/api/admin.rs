//! Privileged operations waiting for a second admin (dual control): list, show, approve, reject.
//! See [`crate::dual_control`] for what waits and why.

use super::body::JsonBody;
use super::catalog::{CatalogItemView, to_view};
use super::created::Accepted;
use super::page::{Page, PageQuery, PageRequest, Paged};
use crate::AppState;
use crate::auth::{Caller, DecidePrivileged, Permit, ReviewPrivileged};
use crate::dual_control::{Requested, refused};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_store::pending::{Operation, OperationStatus, PendingOperation, parse_operation_id};
use utoipa::{IntoParams, ToSchema};

/// What an operation does, as the approver binds it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OperationView {
    /// A new account with a privileged role (its token was shown to the requester only).
    CreateUser {
        name: String,
        roles: Vec<String>,
        token_expires_at: Option<DateTime<Utc>>,
    },
    /// An account's roles, from `before` to `after`.
    SetRoles {
        user: String,
        before: Vec<String>,
        after: Vec<String>,
    },
    /// A new API token for a person's account (shown to the requester only).
    IssueToken {
        user: String,
        /// The roles the account holds: the token is for it only while it holds them.
        roles: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
    },
    /// A disabled account holding a privileged role, enabled again.
    EnableUser { user: String, roles: Vec<String> },
    /// A catalog item created (`before` null) or replaced.
    PutCatalogItem {
        before: Option<Box<CatalogItemView>>,
        item: Box<CatalogItemView>,
    },
    /// A tenant Rego module created or replaced: its new source, and the SHA-256 of the source
    /// it replaces (null: a new module).
    PutPolicyModule {
        name: String,
        before: Option<String>,
        source: String,
    },
    /// A tenant Rego module deleted (`before`: the SHA-256 of its source).
    DeletePolicyModule { name: String, before: String },
    /// A provider group's roles in this tenant, from `before` (null: unmapped) to `after`.
    SetGroupRoles {
        group: String,
        before: Option<Vec<String>>,
        after: Vec<String>,
    },
}

fn roles(roles: &steward_core::Roles) -> Vec<String> {
    roles.iter().map(|r| r.to_string()).collect()
}

impl OperationView {
    fn new(operation: &Operation) -> Result<OperationView, ApiError> {
        Ok(match operation {
            Operation::CreateUser {
                name,
                roles: r,
                token_hash: _,
                token_expires_at,
            } => OperationView::CreateUser {
                name: name.to_string(),
                roles: roles(r),
                token_expires_at: *token_expires_at,
            },
            Operation::SetRoles {
                user,
                before,
                after,
            } => OperationView::SetRoles {
                user: user.to_string(),
                before: roles(before),
                after: roles(after),
            },
            Operation::IssueToken {
                user,
                roles: r,
                token_hash: _,
                expires_at,
            } => OperationView::IssueToken {
                user: user.to_string(),
                roles: roles(r),
                expires_at: *expires_at,
            },
            Operation::EnableUser { user, roles: r } => OperationView::EnableUser {
                user: user.to_string(),
                roles: roles(r),
            },
            Operation::PutCatalogItem { before, item } => OperationView::PutCatalogItem {
                before: before.as_deref().map(to_view).transpose()?.map(Box::new),
                item: Box::new(to_view(item)?),
            },
            Operation::PutPolicyModule {
                name,
                before,
                source,
            } => OperationView::PutPolicyModule {
                name: name.clone(),
                before: before.clone(),
                source: source.clone(),
            },
            Operation::DeletePolicyModule { name, before } => OperationView::DeletePolicyModule {
                name: name.clone(),
                before: before.clone(),
            },
            Operation::SetGroupRoles {
                group,
                before,
                after,
            } => OperationView::SetGroupRoles {
                group: group.to_string(),
                before: before.as_ref().map(roles),
                after: roles(after),
            },
        })
    }
}

/// A privileged operation and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingView {
    /// `OP-7`: what `steward admin approve` takes.
    pub id: String,
    /// create_user, set_roles, issue_token, enable_user, put_catalog_item, put_policy_module,
    /// delete_policy_module or set_group_roles
    pub kind: String,
    /// The account or item it acts on.
    pub subject: String,
    /// One line for the person deciding.
    pub summary: String,
    /// pending, approved or rejected
    pub status: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected, when it was.
    pub reason: Option<String>,
    pub operation: OperationView,
}

impl PendingView {
    pub fn new(pending: &PendingOperation) -> Result<PendingView, ApiError> {
        Ok(PendingView {
            id: pending.id(),
            kind: pending.operation.kind().to_owned(),
            subject: pending.operation.subject(),
            summary: pending.operation.summary(),
            status: pending.status.as_str().to_owned(),
            requested_by: pending.requested_by.clone(),
            requested_at: pending.requested_at,
            decided_by: pending.decided_by.clone(),
            decided_at: pending.decided_at,
            reason: pending.reason.clone(),
            operation: OperationView::new(&pending.operation)?,
        })
    }

    /// Where a waiting operation can be read.
    pub fn location(&self) -> String {
        format!("/api/v1/admin/pending/{}", self.id)
    }
}

/// The answer to a privileged request: 202 with the waiting operation.
pub(crate) fn waiting(requested: Requested) -> Result<Accepted<PendingView>, ApiError> {
    match requested {
        Requested::Waiting(pending) => {
            let view = PendingView::new(&pending)?;
            Ok(Accepted {
                location: view.location(),
                view,
            })
        }
        Requested::Bootstrapped => Err(ApiError::Internal(anyhow::anyhow!(
            "only an account's first second admin is a bootstrap"
        ))),
    }
}

/// What a request that may need a second admin answers: the result when it applied at once
/// (200, or 201 for `Created`), else 202 with the waiting operation.
#[derive(Debug)]
pub enum AppliedOrWaiting<T, W = PendingView> {
    Applied(T),
    Waiting(Accepted<W>),
}

impl<T: axum::response::IntoResponse, W: Serialize> axum::response::IntoResponse
    for AppliedOrWaiting<T, W>
{
    fn into_response(self) -> axum::response::Response {
        match self {
            AppliedOrWaiting::Applied(done) => done.into_response(),
            AppliedOrWaiting::Waiting(waiting) => waiting.into_response(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// pending (the default), approved, rejected or all
    pub status: Option<String>,
}

/// Privileged operations in your tenant, newest first: by default those waiting for a second
/// admin.
#[utoipa::path(get, path = "/api/v1/admin/pending", tag = "admin", params(PendingQuery, PageQuery),
    responses((status = 200, body = Page<PendingView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<PendingQuery>,
) -> Result<Json<Page<PendingView>>, ApiError> {
    let reviewer = caller.may::<ReviewPrivileged>(&state)?;
    let page = operations_page(&reviewer, query.status.as_deref(), &page).await?;
    Ok(Json(Page {
        items: page
            .items
            .iter()
            .map(PendingView::new)
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}

/// A page of the tenant's privileged operations, newest first, by `status` (pending, the
/// default; approved, rejected or all): the API's list and the portal's pending page.
pub(crate) async fn operations_page(
    reviewer: &Permit<'_, ReviewPrivileged>,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Page<PendingOperation>, ApiError> {
    let status = match status.unwrap_or("pending") {
        "pending" => Some(OperationStatus::Pending),
        "approved" => Some(OperationStatus::Approved),
        "rejected" => Some(OperationStatus::Rejected),
        "all" => None,
        other => {
            return Err(ApiError::invalid_field(
                "status",
                format!("'{other}' is not one of pending, approved, rejected, all"),
            ));
        }
    };
    let before: Option<i64> = page.after("pending")?;
    let rows = reviewer
        .store()
        .pending_operations(status, before, page.fetch())
        .await?;
    Ok(page.page("pending", rows, |p| p.number))
}

/// What is checked again when an operation is approved: a policy module must still compile
/// with the tenant's set as it is now.
pub(crate) async fn check_before_approving(
    state: &AppState,
    store: &steward_store::TenantStore<'_>,
    number: i64,
) -> Result<(), ApiError> {
    if let Some(pending) = store.pending_operation(number).await? {
        let module = match &pending.operation {
            Operation::PutPolicyModule { name, source, .. } => Some((name, Some(source.as_str()))),
            Operation::DeletePolicyModule { name, .. } => Some((name, None)),
            _ => None,
        };
        if let Some((name, source)) = module {
            let current = store.policy_modules().await?;
            super::policy_modules::check_module(state, &current, name, source)?;
        }
    }
    Ok(())
}

fn number(id: &str) -> Result<i64, ApiError> {
    parse_operation_id(id)
        .ok_or_else(|| ApiError::NotFound(format!("no privileged operation {id}")))
}

/// One privileged operation.
#[utoipa::path(get, path = "/api/v1/admin/pending/{id}", tag = "admin",
    params(("id" = String, Path, description = "the operation, e.g. OP-7")),
    responses((status = 200, body = PendingView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PendingView>, ApiError> {
    let reviewer = caller.may::<ReviewPrivileged>(&state)?;
    Ok(Json(PendingView::new(&operation(&reviewer, &id).await?)?))
}

/// Operation `id` (`OP-7`) of the reviewer's tenant; 404 when there is none.
pub(crate) async fn operation(
    reviewer: &Permit<'_, ReviewPrivileged>,
    id: &str,
) -> Result<PendingOperation, ApiError> {
    reviewer
        .store()
        .pending_operation(number(id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no privileged operation {id}")))
}

/// Approve a privileged operation another admin requested: it takes effect now.
#[utoipa::path(post, path = "/api/v1/admin/pending/{id}/approve", tag = "admin",
    params(("id" = String, Path, description = "the operation, e.g. OP-7")),
    responses((status = 200, body = PendingView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PendingView>, ApiError> {
    let approver = caller.may::<DecidePrivileged>(&state)?;
    approve_operation(&state, &approver, &id).await.map(Json)
}

/// Approves and applies operation `id` (`OP-7`): what `POST /api/v1/admin/pending/{id}/approve`
/// and the portal's pending page both do. The store refuses the requester and the account the
/// operation raises.
pub(crate) async fn approve_operation(
    state: &AppState,
    approver: &Permit<'_, DecidePrivileged>,
    id: &str,
) -> Result<PendingView, ApiError> {
    let store = approver.store();
    let number = number(id)?;
    check_before_approving(state, &store, number).await?;
    let decided = store
        .approve_operation(number, approver.who().as_str())
        .await?
        .map_err(|r| refused(r, Some(id)))?;
    state.policies.forget(store.tenant_id());
    PendingView::new(&decided)
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RejectInput {
    /// Why, for the requester and the record.
    pub reason: Option<String>,
}

/// Reject a privileged operation (or withdraw one's own request): it never takes effect.
#[utoipa::path(post, path = "/api/v1/admin/pending/{id}/reject", tag = "admin", request_body = RejectInput,
    params(("id" = String, Path, description = "the operation, e.g. OP-7")),
    responses((status = 200, body = PendingView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RejectInput>,
) -> Result<Json<PendingView>, ApiError> {
    let admin = caller.may::<DecidePrivileged>(&state)?;
    reject_operation(&admin, &id, body.reason.as_deref())
        .await
        .map(Json)
}

/// Rejects operation `id` (or withdraws one's own request), with an optional reason: what
/// `POST /api/v1/admin/pending/{id}/reject` and the portal's pending page both do.
pub(crate) async fn reject_operation(
    admin: &Permit<'_, DecidePrivileged>,
    id: &str,
    reason: Option<&str>,
) -> Result<PendingView, ApiError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let decided = admin
        .store()
        .reject_operation(number(id)?, admin.who().as_str(), reason)
        .await?
        .map_err(|r| refused(r, Some(id)))?;
    PendingView::new(&decided)
}
