//! The standard-change catalog (admin-managed).

use super::admin::{PendingView, waiting};
use super::body::JsonBody;
use super::created::Accepted;
use super::page::{Page, PageQuery, PageRequest, Paged};
use crate::AppState;
use crate::auth::{Caller, ManageCatalog, Permit, ReadRecords};
use crate::dual_control;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use steward_core::catalog::CatalogItem;
use steward_store::pending::Operation;
use utoipa::ToSchema;

/// A pre-approved standard-change template.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogItemView {
    pub name: String,
    pub description: String,
    /// Categories a matching request must use; empty means any.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Target kinds a matching request may touch; empty means any.
    #[serde(default)]
    pub target_kinds: Vec<String>,
    /// Environments a matching request may run in; empty means any.
    #[serde(default)]
    pub environments: Vec<String>,
    /// The highest data, availability or compliance impact covered: low, medium or high.
    pub max_impact: String,
    /// Whether the template may touch a production target holding regulated data.
    #[serde(default)]
    pub allow_regulated_production: bool,
}

pub(crate) fn to_view(item: &CatalogItem) -> Result<CatalogItemView, ApiError> {
    let value = serde_json::to_value(item).map_err(anyhow::Error::from)?;
    Ok(serde_json::from_value(value).map_err(anyhow::Error::from)?)
}

/// List the catalog, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog", params(PageQuery),
    responses((status = 200, body = Page<CatalogItemView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_catalog(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<CatalogItemView>>, ApiError> {
    Ok(Json(
        catalog_page(&caller.may::<ReadRecords>(&state)?, &page).await?,
    ))
}

/// A page of the tenant's catalog, by name: the API's list and the portal's catalog page.
pub(crate) async fn catalog_page(
    reader: &Permit<'_, ReadRecords>,
    page: &PageRequest,
) -> Result<Page<CatalogItemView>, ApiError> {
    let after: Option<String> = page.after("catalog")?;
    let items = reader
        .store()
        .list_catalog(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("catalog", items, |item| item.name.clone());
    Ok(Page {
        items: page.items.iter().map(to_view).collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    })
}

/// Ask to create or replace a catalog item (admin only). A catalog item pre-approves changes, so
/// it takes effect only when a second admin approves it (`POST /admin/pending/{id}/approve`):
/// the answer is the waiting operation.
#[utoipa::path(put, path = "/api/v1/catalog/{name}", tag = "catalog", request_body = CatalogItemView,
    params(("name" = String, Path, description = "the item's name; must match the body")),
    responses((status = 202, body = PendingView, headers(("Location" = String, description = "the waiting operation"))),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_catalog_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<CatalogItemView>,
) -> Result<Accepted<PendingView>, ApiError> {
    let admin = caller.may::<ManageCatalog>(&state)?;
    request_catalog_item(&admin, &name, body).await
}

/// Asks a second admin to create or replace catalog item `name` with `body`: what
/// `PUT /api/v1/catalog/{name}` and the portal's catalog page both do.
pub(crate) async fn request_catalog_item(
    admin: &Permit<'_, ManageCatalog>,
    name: &str,
    body: CatalogItemView,
) -> Result<Accepted<PendingView>, ApiError> {
    if body.name != name {
        return Err(ApiError::invalid_field(
            "name",
            format!("must match the path ('{name}')"),
        ));
    }
    let value = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
    let item: CatalogItem = serde_json::from_value(value)
        .map_err(|e| ApiError::invalid_field("(body)", e.to_string()))?;
    let before = admin.store().catalog_item(name).await?;
    if before.as_ref() == Some(&item) {
        return Err(ApiError::Conflict {
            message: format!("catalog item {name} already says exactly this: nothing to approve"),
            details: serde_json::Value::Null,
        });
    }
    let operation = Operation::PutCatalogItem {
        before: before.map(Box::new),
        item: Box::new(item),
    };
    waiting(dual_control::request(admin, operation).await?)
}
