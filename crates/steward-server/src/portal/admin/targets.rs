//! The targets page: the tenant's targets as `GET /api/v1/targets` lists them (its function and
//! cursor), and for those who register targets (managers, admins) the form that calls
//! `POST /api/v1/targets`'s function.

use super::super::signin::see_other;
use super::super::{Visitor, is_json, parse_form};
use super::{Notice, form_pairs, given, next_link};
use crate::AppState;
use crate::api::page::{PageQuery, Paged};
use crate::api::targets::{CreateTarget, register_target, targets_page as list_targets};
use crate::auth::{ManageTargets, ReadRecords};
use crate::error::ApiError;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use steward_core::target::{Environment, Level, Regulated, TargetKind};
use utoipa::{IntoParams, ToSchema};

#[derive(Template)]
#[template(path = "admin/targets.html")]
struct TargetsPage {
    chrome: Chrome,
    notice: Option<Notice>,
    rows: Vec<TargetRow>,
    next: Option<String>,
    /// The viewer may register targets.
    manage: bool,
    kinds: Vec<&'static str>,
    environments: Vec<&'static str>,
    levels: Vec<&'static str>,
    regulated: Vec<&'static str>,
}

struct TargetRow {
    name: String,
    kind: String,
    owner: String,
    environment: String,
    criticality: String,
    regulated: String,
    parent: String,
}

/// The targets page's query: paging, and the target a form just registered.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TargetsQuery {
    /// A target the form just registered: the page says so when it exists.
    pub created: Option<String>,
}

/// The tenant's targets, by name, a page at a time: owner, environment, criticality, the
/// regulated data they process, what they run on; and the form to register one.
#[utoipa::path(get, path = "/admin/targets", tag = "portal", params(TargetsQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the targets page"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 422, description = "a bad cursor or limit: the page names it")))]
pub async fn targets_page(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<TargetsQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let Paged {
            page: request,
            filters,
        } = query?;
        let reader = viewer.caller.may::<ReadRecords>(&state)?;
        let page = list_targets(&reader, &request).await?;
        let mut notice = None;
        if let Some(name) = given(filters.created)
            && let Ok(parsed) = steward_core::TargetName::parse(&name)
            && let Some(target) = reader
                .store()
                .targets_named(std::slice::from_ref(&parsed))
                .await?
                .pop()
        {
            notice = Some(Notice {
                kind: "done",
                text: format!(
                    "{} is registered: {} in {}, owned by {}.",
                    target.name, target.kind, target.environment, target.owner
                ),
                operation: None,
            });
        }
        render(
            StatusCode::OK,
            &TargetsPage {
                chrome: chrome(&viewer),
                notice,
                next: next_link("/admin/targets", &request, page.next_cursor.as_ref()),
                rows: page
                    .items
                    .into_iter()
                    .map(|t| TargetRow {
                        name: t.name,
                        kind: t.kind,
                        owner: t.owner,
                        environment: t.environment,
                        criticality: t.criticality,
                        regulated: t.regulated.join(", "),
                        parent: t.parent.unwrap_or_default(),
                    })
                    .collect(),
                manage: viewer.caller.holds::<ManageTargets>(),
                kinds: TargetKind::ALL.iter().map(|k| k.as_str()).collect(),
                environments: Environment::ALL.iter().map(|e| e.as_str()).collect(),
                levels: Level::ALL.iter().map(|l| l.as_str()).collect(),
                regulated: Regulated::ALL.iter().map(|r| r.as_str()).collect(),
            },
        )
    };
    answer(&state, html, result.await)
}

/// What the target form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TargetForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    /// The owning manager's user name.
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub criticality: String,
    /// pii, financial; the key repeats, once per checked box.
    #[serde(default)]
    pub regulated: Vec<String>,
    /// The target this one runs on; blank for none.
    #[serde(default)]
    pub parent: Option<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

fn target_form(headers: &HeaderMap, body: &[u8]) -> Result<TargetForm, ApiError> {
    if is_json(headers) {
        return parse_form(headers, body);
    }
    let mut form = TargetForm::default();
    for (key, value) in form_pairs(body)? {
        match key.as_str() {
            "name" => form.name = value,
            "kind" => form.kind = value,
            "owner" => form.owner = value,
            "environment" => form.environment = value,
            "criticality" => form.criticality = value,
            "regulated" => form.regulated.push(value),
            "parent" => form.parent = Some(value),
            "csrf" => form.csrf = Some(value),
            _ => {}
        }
    }
    Ok(form)
}

/// Register a target (manager or admin): the same as `POST /api/v1/targets`, then back to the
/// targets page.
#[utoipa::path(post, path = "/admin/targets", tag = "portal",
    request_body(content = TargetForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "registered: back to the targets page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not register targets"),
        (status = 409, description = "a target of that name exists"),
        (status = 422, description = "a bad field: the page names each")))]
pub async fn create_target(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form = target_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let manager = viewer.caller.may::<ManageTargets>(&state)?;
        let form = form?;
        let trimmed = |s: String| s.trim().to_owned();
        let created = register_target(
            &manager,
            CreateTarget {
                name: trimmed(form.name),
                kind: trimmed(form.kind),
                owner: trimmed(form.owner),
                environment: trimmed(form.environment),
                criticality: trimmed(form.criticality),
                regulated: form.regulated,
                parent: given(form.parent).map(trimmed),
            },
        )
        .await?;
        let query = serde_urlencoded::to_string([("created", created.view.name.as_str())])
            .map_err(anyhow::Error::from)?;
        see_other(&format!("/admin/targets?{query}"), &[])
    };
    answer(&state, html, result.await)
}
