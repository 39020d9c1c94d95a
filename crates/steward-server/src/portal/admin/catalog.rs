//! The catalog page: the tenant's standard-change templates as `GET /api/v1/catalog` lists them
//! (its function and cursor), and for admins the form that asks for a new or changed item —
//! `PUT /api/v1/catalog/{name}`'s function. A catalog item pre-approves changes, so it waits
//! for a second admin: the page says so and names the operation; the item is listed only once
//! it is approved.

use super::super::signin::see_other;
use super::super::{Visitor, is_json, parse_form};
use super::{Notice, form_pairs, given, next_link, operation_notice};
use crate::AppState;
use crate::api::catalog::{CatalogItemView, catalog_page as list_catalog, request_catalog_item};
use crate::api::page::{PageQuery, Paged};
use crate::auth::{ManageCatalog, ReadRecords};
use crate::error::ApiError;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use steward_core::target::{Environment, Level, TargetKind};
use utoipa::{IntoParams, ToSchema};

#[derive(Template)]
#[template(path = "admin/catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    notice: Option<Notice>,
    rows: Vec<ItemRow>,
    next: Option<String>,
    /// The viewer may ask for catalog items.
    manage: bool,
    kinds: Vec<&'static str>,
    environments: Vec<&'static str>,
    levels: Vec<&'static str>,
}

struct ItemRow {
    name: String,
    description: String,
    categories: String,
    target_kinds: String,
    environments: String,
    max_impact: String,
    regulated_production: &'static str,
}

/// "any" for an empty list (the item matches every value).
fn any(values: &[String]) -> String {
    if values.is_empty() {
        "any".into()
    } else {
        values.join(", ")
    }
}

/// The catalog page's query: paging, and the operation a form just asked for.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CatalogQuery {
    /// The privileged operation the form just asked for (`OP-n`): the page says where it stands.
    pub waiting: Option<String>,
}

/// The standard-change catalog, by name, a page at a time; for admins, the form to ask for a
/// new or changed item.
#[utoipa::path(get, path = "/admin/catalog", tag = "portal", params(CatalogQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the catalog page"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 422, description = "a bad cursor or limit: the page names it")))]
pub async fn catalog_page(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<CatalogQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let Paged {
            page: request,
            filters,
        } = query?;
        let reader = viewer.caller.may::<ReadRecords>(&state)?;
        let page = list_catalog(&reader, &request).await?;
        let notice = match given(filters.waiting) {
            Some(id) => operation_notice(&state, &viewer.caller, &id).await,
            None => None,
        };
        render(
            StatusCode::OK,
            &CatalogPage {
                chrome: chrome(&viewer),
                notice,
                next: next_link("/admin/catalog", &request, page.next_cursor.as_ref()),
                rows: page
                    .items
                    .into_iter()
                    .map(|item| ItemRow {
                        categories: any(&item.categories),
                        target_kinds: any(&item.target_kinds),
                        environments: any(&item.environments),
                        regulated_production: if item.allow_regulated_production {
                            "yes"
                        } else {
                            "no"
                        },
                        name: item.name,
                        description: item.description,
                        max_impact: item.max_impact,
                    })
                    .collect(),
                manage: viewer.caller.holds::<ManageCatalog>(),
                kinds: TargetKind::ALL.iter().map(|k| k.as_str()).collect(),
                environments: Environment::ALL.iter().map(|e| e.as_str()).collect(),
                levels: Level::ALL.iter().map(|l| l.as_str()).collect(),
            },
        )
    };
    answer(&state, html, result.await)
}

/// What the catalog form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CatalogForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Categories a matching request must use, comma-separated; blank: any.
    #[serde(default)]
    pub categories: String,
    /// Target kinds it may touch; the key repeats, once per checked box. None: any.
    #[serde(default)]
    pub target_kinds: Vec<String>,
    /// Environments it may run in; the key repeats. None: any.
    #[serde(default)]
    pub environments: Vec<String>,
    /// low, medium or high
    #[serde(default)]
    pub max_impact: String,
    /// Whether it may touch a production target holding regulated data.
    #[serde(default)]
    pub allow_regulated_production: bool,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

fn catalog_form(headers: &HeaderMap, body: &[u8]) -> Result<CatalogForm, ApiError> {
    if is_json(headers) {
        return parse_form(headers, body);
    }
    let mut form = CatalogForm::default();
    for (key, value) in form_pairs(body)? {
        match key.as_str() {
            "name" => form.name = value,
            "description" => form.description = value,
            "categories" => form.categories = value,
            "target_kinds" => form.target_kinds.push(value),
            "environments" => form.environments.push(value),
            "max_impact" => form.max_impact = value,
            "allow_regulated_production" => form.allow_regulated_production = value == "true",
            "csrf" => form.csrf = Some(value),
            _ => {}
        }
    }
    Ok(form)
}

/// Ask for a new or changed catalog item (admin): the same as `PUT /api/v1/catalog/{name}`. It
/// waits for a second admin; back to the catalog page, which names the operation.
#[utoipa::path(post, path = "/admin/catalog", tag = "portal",
    request_body(content = CatalogForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "waiting for a second admin: back to the catalog page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not keep the catalog"),
        (status = 409, description = "the item already says exactly this"),
        (status = 422, description = "a bad field: the page names it")))]
pub async fn request_item(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form = catalog_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let admin = viewer.caller.may::<ManageCatalog>(&state)?;
        let form = form?;
        let name = form.name.trim().to_owned();
        let item = CatalogItemView {
            name: name.clone(),
            description: form.description.trim().to_owned(),
            categories: form
                .categories
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            target_kinds: form.target_kinds,
            environments: form.environments,
            max_impact: form.max_impact.trim().to_owned(),
            allow_regulated_production: form.allow_regulated_production,
        };
        let waiting = request_catalog_item(&admin, &name, item).await?;
        let query = serde_urlencoded::to_string([("waiting", waiting.view.id.as_str())])
            .map_err(anyhow::Error::from)?;
        see_other(&format!("/admin/catalog?{query}"), &[])
    };
    answer(&state, html, result.await)
}
