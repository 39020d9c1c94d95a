//! Targets: the resources changes touch.

use super::body::JsonBody;
use super::created::Created;
use super::page::{Page, PageQuery, PageRequest, Paged};
use super::views::TargetView;
use crate::AppState;
use crate::auth::{Caller, ManageTargets, Permit, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use steward_core::account::AccountStatus;
use steward_core::submission::FieldError;
use steward_core::target::{Target, TargetKind};
use steward_core::{Role, TargetName, UserName};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTarget {
    pub name: String,
    /// compute_cluster, training_environment, model_deployment, data_source or access_control
    pub kind: String,
    /// The owning manager's user name; they must hold the manager role.
    pub owner: String,
    /// production, staging or development
    pub environment: String,
    /// low, medium or high
    pub criticality: String,
    /// Regulated data the target processes: pii, financial.
    #[serde(default)]
    pub regulated: Vec<String>,
    /// The target this one runs on (e.g. a deployment's cluster).
    pub parent: Option<String>,
}

/// Register a target (manager or admin).
#[utoipa::path(post, path = "/api/v1/targets", tag = "targets", request_body = CreateTarget, responses(
    (status = 201, body = TargetView, headers(("Location" = String, description = "the path of what was created"))), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create_target(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTarget>,
) -> Result<Created<TargetView>, ApiError> {
    register_target(&caller.may::<ManageTargets>(&state)?, body).await
}

/// Registers a target: what `POST /api/v1/targets` and the portal's targets page both do.
pub(crate) async fn register_target(
    manager: &Permit<'_, ManageTargets>,
    body: CreateTarget,
) -> Result<Created<TargetView>, ApiError> {
    let store = manager.store();
    let mut errors = Vec::new();
    let mut field = |name: &str, message: String| errors.push(FieldError::new(name, message));
    let name = TargetName::parse(&body.name)
        .map_err(|e| field("name", e.to_string()))
        .ok();
    let kind = body
        .kind
        .parse::<TargetKind>()
        .map_err(|e| field("kind", e))
        .ok();
    let owner = UserName::parse(&body.owner)
        .map_err(|e| field("owner", e.to_string()))
        .ok();
    let environment = body
        .environment
        .parse()
        .map_err(|e| field("environment", e))
        .ok();
    let criticality = body
        .criticality
        .parse()
        .map_err(|e| field("criticality", e))
        .ok();
    let regulated: Vec<_> = body
        .regulated
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.parse()
                .map_err(|e| field(&format!("regulated[{i}]"), e))
                .ok()
        })
        .collect();
    let parent = body
        .parent
        .as_deref()
        .map(TargetName::parse)
        .transpose()
        .map_err(|e| field("parent", e.to_string()))
        .ok()
        .flatten();
    if let Some(owner) = &owner {
        match store.account(owner).await? {
            None => field(
                "owner",
                format!("no user '{owner}': create it first with `steward user create`"),
            ),
            Some(account) if !account.roles.contains(Role::Manager) => {
                field("owner", format!("user '{owner}' is not a manager"))
            }
            Some(account) if account.status == AccountStatus::Disabled => field(
                "owner",
                format!("user '{owner}' is disabled: an owner must be able to approve"),
            ),
            Some(_) => {}
        }
    }
    if let Some(parent) = &parent
        && store
            .targets_named(std::slice::from_ref(parent))
            .await?
            .is_empty()
    {
        field("parent", format!("no target '{parent}'"));
    }
    let (Some(name), Some(kind), Some(owner), Some(environment), Some(criticality), true) = (
        name,
        kind,
        owner,
        environment,
        criticality,
        errors.is_empty(),
    ) else {
        return Err(ApiError::Invalid(errors));
    };
    let target = Target {
        name,
        kind,
        owner,
        environment,
        criticality,
        regulated,
        parent,
    };
    store
        .create_target(manager.principal().name.as_str(), &target)
        .await?;
    Ok(Created::at(
        format!("/api/v1/targets/{}", target.name),
        TargetView::from(&target),
    ))
}

/// List your tenant's targets, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/targets", tag = "targets", params(PageQuery),
    responses((status = 200, body = Page<TargetView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_targets(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<TargetView>>, ApiError> {
    Ok(Json(
        targets_page(&caller.may::<ReadRecords>(&state)?, &page).await?,
    ))
}

/// A page of the tenant's targets, by name: the API's list and the portal's targets page.
pub(crate) async fn targets_page(
    reader: &Permit<'_, ReadRecords>,
    page: &PageRequest,
) -> Result<Page<TargetView>, ApiError> {
    let after: Option<String> = page.after("targets")?;
    let targets = reader
        .store()
        .list_targets_after(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("targets", targets, |t| t.name.to_string());
    Ok(page.map(|t| TargetView::from(&t)))
}

/// One target, by name (where `POST /api/v1/targets` says it created it).
#[utoipa::path(get, path = "/api/v1/targets/{name}", tag = "targets",
    params(("name" = String, Path, description = "the target's name")),
    responses((status = 200, body = TargetView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TargetView>, ApiError> {
    let reader = caller.may::<ReadRecords>(&state)?;
    let missing = || ApiError::NotFound(format!("no target '{name}'"));
    let parsed = TargetName::parse(&name).map_err(|_| missing())?;
    let target = reader
        .store()
        .targets_named(std::slice::from_ref(&parsed))
        .await?
        .pop()
        .ok_or_else(missing)?;
    Ok(Json(TargetView::from(&target)))
}
