//! Tenants (business units), administered by the installation's admins: create one with its
//! first admin account (whose token is shown once, as for `POST /users`), list them.
//!
//! Only accounts of the installation tenant (`default`) hold `manage_tenants`; a tenant's own
//! admin administers its users, catalog, policies and calendar, never other tenants.

use super::admin::PendingView;
use super::body::JsonBody;
use super::created::Created;
use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::auth::{Caller, ManageTenants, generate_token, hash_token};
use crate::dual_control::refused;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_core::catalog::CatalogItem;
use steward_core::{Role, Roles, TenantId, UserName};
use steward_store::pending::parse_operation_id;
use steward_store::{NewTenant, StoreError, TenantRecord};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The tenant's name: lowercase letters, digits, '-', '_' and '.'.
    pub name: String,
    /// The name of its first admin account, created with it.
    pub admin: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The installation admin who created it; absent for the installation tenant.
    pub created_by: Option<String>,
}

impl From<TenantRecord> for TenantView {
    fn from(t: TenantRecord) -> Self {
        TenantView {
            name: t.id.to_string(),
            created_at: t.created_at,
            created_by: t.created_by,
        }
    }
}

/// A created tenant and its first admin, whose token is shown once (as for a created user).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedTenantView {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    /// The first admin account's name.
    pub admin: String,
    pub roles: Vec<String>,
    /// The admin's API token: shown once, stored hashed.
    pub token: String,
}

/// Create a tenant with its first admin account and the shipped catalog (installation admins
/// only). The admin's token is shown once.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant, responses(
    (status = 201, body = CreatedTenantView, headers(("Location" = String, description = "the path of what was created"))),
    (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTenant>,
) -> Result<Created<CreatedTenantView>, ApiError> {
    let installation = caller.may::<ManageTenants>(&state)?;
    let mut invalid = Vec::new();
    let name = TenantId::parse(&body.name)
        .map_err(|e| {
            invalid.push(steward_core::submission::FieldError::new(
                "name",
                e.to_string(),
            ))
        })
        .ok();
    let admin = match UserName::parse(&body.admin) {
        Ok(admin) if admin.as_str() == crate::execution::SYSTEM_ACTOR => {
            invalid.push(steward_core::submission::FieldError::new(
                "admin",
                "is reserved: Steward acts under it in the audit log",
            ));
            None
        }
        Ok(admin) => Some(admin),
        Err(e) => {
            invalid.push(steward_core::submission::FieldError::new(
                "admin",
                e.to_string(),
            ));
            None
        }
    };
    let (Some(name), Some(admin)) = (name, admin) else {
        return Err(ApiError::Invalid(invalid));
    };
    let roles = Roles::new(vec![Role::Admin]).map_err(|e| anyhow::anyhow!(e))?;
    let token = generate_token()?;
    let now = state.clock.now();
    let catalog = CatalogItem::shipped();
    let created = installation
        .installation()
        .create_tenant(&NewTenant {
            id: &name,
            created_by: installation.who(),
            admin: &admin,
            admin_roles: &roles,
            token_hash: &hash_token(&token),
            catalog: &catalog,
            tenant_actor: crate::execution::SYSTEM_ACTOR,
            now,
        })
        .await;
    match created {
        Ok(()) => {}
        Err(StoreError::Duplicate(_)) => {
            return Err(ApiError::Conflict {
                message: format!("tenant {name} already exists: see `steward tenant list`"),
                details: serde_json::json!({ "tenant": name }),
            });
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenant = %name, admin = %admin, by = %installation.who(), "tenant created");
    Ok(Created::at(
        format!("/api/v1/tenants/{name}"),
        CreatedTenantView {
            name: name.to_string(),
            created_at: now,
            created_by: Some(installation.who().to_string()),
            admin: admin.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            token,
        },
    ))
}

/// The installation's tenants, by name, a page at a time (installation admins only).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(PageQuery),
    responses((status = 200, body = Page<TenantView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<TenantView>>, ApiError> {
    let installation = caller.may::<ManageTenants>(&state)?;
    let after: Option<String> = page.after("tenants")?;
    let tenants = installation
        .installation()
        .list_tenants(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("tenants", tenants, |t| t.id.to_string());
    Ok(Json(page.map(TenantView::from)))
}

/// One tenant (installation admins only).
#[utoipa::path(get, path = "/api/v1/tenants/{name}", tag = "tenants",
    params(("name" = String, Path, description = "the tenant's name")),
    responses((status = 200, body = TenantView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    let installation = caller.may::<ManageTenants>(&state)?;
    let missing = || ApiError::NotFound(format!("no tenant '{name}': see `steward tenant list`"));
    let id = TenantId::parse(&name).map_err(|_| missing())?;
    let tenant = installation
        .installation()
        .tenant_record(&id)
        .await?
        .ok_or_else(missing)?;
    Ok(Json(tenant.into()))
}

/// Recovery for a tenant without a second admin (installation admins only): approve one of its
/// waiting privileged operations — typically re-enabling or granting its second admin — which
/// its only active admin cannot approve alone. Refused (409) while the tenant has two active
/// admins: they decide themselves. The approval event in the tenant's log names the
/// installation admin and says so.
#[utoipa::path(post, path = "/api/v1/tenants/{name}/pending/{id}/approve", tag = "tenants",
    params(("name" = String, Path, description = "the tenant's name"),
           ("id" = String, Path, description = "the operation, e.g. OP-7")),
    responses((status = 200, body = PendingView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn approve_for_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<PendingView>, ApiError> {
    let installation = caller.may::<ManageTenants>(&state)?;
    let missing = || ApiError::NotFound(format!("no tenant '{name}': see `steward tenant list`"));
    let tenant = TenantId::parse(&name).map_err(|_| missing())?;
    let store = installation.installation();
    store.tenant_record(&tenant).await?.ok_or_else(missing)?;
    let number = parse_operation_id(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no privileged operation {id}")))?;
    let tenant_store = store.tenant(&tenant);
    super::admin::check_before_approving(&state, &tenant_store, number).await?;
    let decided = tenant_store
        .approve_operation_for_installation(number, installation.who().as_str())
        .await?
        .map_err(|r| refused(r, Some(&id)))?;
    state.policies.forget(tenant_store.tenant_id());
    Ok(Json(PendingView::new(&decided)?))
}
