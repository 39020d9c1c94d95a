//! The users page: the tenant's accounts as `GET /api/v1/users` lists them (its function and
//! cursor, so the two never disagree), and for admins the forms that create an account, set
//! its roles, disable and enable it — each calling the API handler's own function.
//!
//! Creating an account answers with its first token, shown once, on the page the post renders
//! (a token never travels in an address); every other form redirects back (303) with a notice
//! the page reads from the store. A grant of a privileged role waits for a second admin: the
//! page says so and names the operation, as the API's 202 does.

use super::super::signin::see_other;
use super::super::{Viewer, Visitor, is_json, parse_form};
use super::{Notice, form_pairs, given, next_link, operation_notice, role_names, when, when_or};
use crate::AppState;
use crate::api::accounts::{SetRoles, disable_account, enable_account, set_account_roles};
use crate::api::admin::AppliedOrWaiting;
use crate::api::page::{PageQuery, PageRequest, Paged};
use crate::api::users::{CreateUser, create_account, users_page as list_users};
use crate::api::views::UserView;
use crate::auth::{ManageUsers, ReadRecords};
use crate::error::ApiError;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    notice: Option<Notice>,
    /// The token of the account just created: shown once, on the answer to the form.
    new_token: Option<NewToken>,
    rows: Vec<UserRow>,
    next: Option<String>,
    /// The viewer may create accounts and change them.
    manage: bool,
    roles: Vec<&'static str>,
}

struct NewToken {
    user: String,
    token: String,
    /// When it stops working, or "never".
    expires: String,
    /// Waiting for a second admin: the token works once the operation is approved.
    waiting: Option<String>,
}

struct UserRow {
    name: String,
    roles: Vec<String>,
    status: String,
    source: String,
    created: String,
    last_used: String,
    /// Roles are set here (a single sign-on account's come from the group mapping).
    local: bool,
    /// The viewer's own account (they may not disable it).
    own: bool,
}

impl UserRow {
    fn holds(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The users page's query: paging, and what the last write left to say.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    /// A privileged operation a form just asked for (`OP-n`): the page says where it stands.
    pub waiting: Option<String>,
    /// An account a form just changed: the page says how it stands now.
    pub changed: Option<String>,
}

/// The accounts of the viewer's tenant, by name, a page at a time — with, for admins, the forms
/// that create and change them.
#[utoipa::path(get, path = "/admin/users", tag = "portal", params(UsersQuery, PageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the users page"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 422, description = "a bad cursor or limit: the page names it")))]
pub async fn users_page(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Paged<UsersQuery>, ApiError>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, show(&state, visitor, query).await)
}

async fn show(
    state: &AppState,
    visitor: Visitor,
    query: Result<Paged<UsersQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let Paged {
        page: request,
        filters,
    } = query?;
    let mut notice = None;
    if let Some(id) = given(filters.waiting) {
        notice = operation_notice(state, &viewer.caller, &id).await;
    }
    if let Some(name) = given(filters.changed) {
        notice = account_notice(state, &viewer, &name).await?;
    }
    let page = build(state, &viewer, &request, notice, None).await?;
    render(StatusCode::OK, &page)
}

/// How account `name` stands now, read from the store.
async fn account_notice(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
) -> Result<Option<Notice>, ApiError> {
    let reader = viewer.caller.may::<ReadRecords>(state)?;
    let Ok(name) = steward_core::UserName::parse(name) else {
        return Ok(None);
    };
    Ok(reader.store().account(&name).await?.map(|account| {
        let view = UserView::of(&account);
        Notice {
            kind: "done",
            text: format!(
                "{} is {}, with roles: {}.",
                view.name,
                view.status,
                if view.roles.is_empty() {
                    "none".to_owned()
                } else {
                    view.roles.join(", ")
                }
            ),
            operation: None,
        }
    }))
}

async fn build(
    state: &AppState,
    viewer: &Viewer,
    request: &PageRequest,
    notice: Option<Notice>,
    new_token: Option<NewToken>,
) -> Result<UsersPage, ApiError> {
    let reader = viewer.caller.may::<ReadRecords>(state)?;
    let page = list_users(&reader, request).await?;
    let me = viewer.caller.name().as_str();
    Ok(UsersPage {
        chrome: chrome(viewer),
        notice,
        new_token,
        next: next_link("/admin/users", request, page.next_cursor.as_ref()),
        rows: page
            .items
            .into_iter()
            .map(|u| UserRow {
                own: u.name == me,
                local: u.source == "local",
                created: when(u.created_at),
                last_used: when_or(u.last_used_at, "never"),
                name: u.name,
                roles: u.roles,
                status: u.status,
                source: u.source,
            })
            .collect(),
        manage: viewer.caller.holds::<ManageUsers>(),
        roles: role_names(),
    })
}

/// What the create-user form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewUserForm {
    pub name: String,
    /// The roles to hold; the key repeats, once per checked box.
    #[serde(default)]
    pub roles: Vec<String>,
    /// When the first token stops working (`90d`, an RFC 3339 time); blank: never.
    #[serde(default)]
    pub expires: Option<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// What the roles form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RolesForm {
    /// The roles to hold from now on; the key repeats, once per checked box.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// What the disable and enable buttons post.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ButtonForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

fn new_user_form(headers: &HeaderMap, body: &[u8]) -> Result<NewUserForm, ApiError> {
    if is_json(headers) {
        return parse_form(headers, body);
    }
    let mut form = NewUserForm::default();
    for (key, value) in form_pairs(body)? {
        match key.as_str() {
            "name" => form.name = value,
            "roles" => form.roles.push(value),
            "expires" => form.expires = Some(value),
            "csrf" => form.csrf = Some(value),
            _ => {}
        }
    }
    Ok(form)
}

fn roles_form(headers: &HeaderMap, body: &[u8]) -> Result<RolesForm, ApiError> {
    if is_json(headers) {
        return parse_form(headers, body);
    }
    let mut form = RolesForm::default();
    for (key, value) in form_pairs(body)? {
        match key.as_str() {
            "roles" => form.roles.push(value),
            "csrf" => form.csrf = Some(value),
            _ => {}
        }
    }
    Ok(form)
}

/// Create an account (admin): the same as `POST /api/v1/users`. The answer is the users page
/// with the account's first token, shown once — 201 when the account exists now, 202 when it
/// holds a privileged role and waits for a second admin (the page names the operation).
#[utoipa::path(post, path = "/admin/users", tag = "portal",
    request_body(content = NewUserForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 201, content_type = "text/html", body = String, description = "created: the users page with its token, shown once"),
        (status = 202, content_type = "text/html", body = String, description = "waiting for a second admin: the page names the operation"),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not manage users"),
        (status = 409, description = "the account exists"),
        (status = 422, description = "a bad name, role or expiry: the page names it")))]
pub async fn create_user(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    answer(&state, html, create(&state, visitor, &headers, &body).await)
}

async fn create(
    state: &AppState,
    visitor: Visitor,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let form = new_user_form(headers, body);
    viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
    let admin = viewer.caller.may::<ManageUsers>(state)?;
    let form = form?;
    let input = CreateUser {
        name: form.name.trim().to_owned(),
        roles: form.roles,
        expires: given(form.expires).map(|e| e.trim().to_owned()),
    };
    let (status, notice, token) = match create_account(state, &admin, input).await? {
        AppliedOrWaiting::Applied(created) => {
            let user = created.view;
            let token = NewToken {
                user: user.name.clone(),
                token: user.token.clone().unwrap_or_default(),
                expires: when_or(user.token_expires_at, "never"),
                waiting: None,
            };
            let notice = Notice {
                kind: "done",
                text: format!(
                    "{} was created with roles: {}.",
                    user.name,
                    user.roles.join(", ")
                ),
                operation: None,
            };
            (StatusCode::CREATED, notice, token)
        }
        AppliedOrWaiting::Waiting(accepted) => {
            let waiting = accepted.view;
            let notice = Notice {
                kind: "waiting",
                text: format!(
                    "waiting for a second admin: {} ({}). {} does not exist until another admin approves it.",
                    waiting.pending_approval, waiting.operation.summary, waiting.name
                ),
                operation: Some(waiting.pending_approval.clone()),
            };
            let token = NewToken {
                user: waiting.name,
                token: waiting.token,
                expires: when_or(waiting.token_expires_at, "never"),
                waiting: Some(waiting.pending_approval),
            };
            (StatusCode::ACCEPTED, notice, token)
        }
    };
    let page = build(
        state,
        &viewer,
        &PageRequest::default(),
        Some(notice),
        Some(token),
    )
    .await?;
    render(status, &page)
}

/// Where a form that changed account `name` returns: the users page, saying how it stands or
/// which operation waits.
fn back<T>(name: &str, outcome: AppliedOrWaiting<T>) -> Result<Response, ApiError> {
    let query = match outcome {
        AppliedOrWaiting::Applied(_) => serde_urlencoded::to_string([("changed", name)]),
        AppliedOrWaiting::Waiting(waiting) => {
            serde_urlencoded::to_string([("waiting", waiting.view.id.as_str())])
        }
    }
    .map_err(anyhow::Error::from)?;
    see_other(&format!("/admin/users?{query}"), &[])
}

/// Set an account's roles (admin): the same as `PUT /api/v1/users/{name}/roles`, then back to
/// the users page — saying the grant waits for a second admin when it is a privileged one.
#[utoipa::path(post, path = "/admin/users/{name}/roles", tag = "portal",
    params(("name" = String, Path, description = "the user name")),
    request_body(content = RolesForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "set, or waiting for a second admin: back to the users page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not manage users"),
        (status = 404, description = "no such user in your tenant"),
        (status = 409, description = "refused by the account's rules (the last admin, a single sign-on account)")))]
pub async fn set_roles(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form = roles_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let admin = viewer.caller.may::<ManageUsers>(&state)?;
        let form = form?;
        let outcome =
            set_account_roles(&state, &admin, &name, SetRoles { roles: form.roles }).await?;
        back(&name, outcome)
    };
    answer(&state, html, result.await)
}

/// Disable an account (admin): the same as `POST /api/v1/users/{name}/disable`, then back to
/// the users page.
#[utoipa::path(post, path = "/admin/users/{name}/disable", tag = "portal",
    params(("name" = String, Path, description = "the user name")),
    request_body(content = ButtonForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "disabled: back to the users page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not manage users"),
        (status = 404, description = "no such user in your tenant"),
        (status = 409, description = "refused: oneself, or the last active admin")))]
pub async fn disable_user(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form: Result<ButtonForm, _> = parse_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let admin = viewer.caller.may::<ManageUsers>(&state)?;
        disable_account(&state, &admin, &name).await?;
        let query = serde_urlencoded::to_string([("changed", name.as_str())])
            .map_err(anyhow::Error::from)?;
        see_other(&format!("/admin/users?{query}"), &[])
    };
    answer(&state, html, result.await)
}

/// Enable an account again (admin): the same as `POST /api/v1/users/{name}/enable`, then back
/// to the users page — which says the operation waits for a second admin when the account
/// holds a privileged role.
#[utoipa::path(post, path = "/admin/users/{name}/enable", tag = "portal",
    params(("name" = String, Path, description = "the user name")),
    request_body(content = ButtonForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "enabled, or waiting for a second admin: back to the users page", headers(("Location" = String))),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not manage users"),
        (status = 404, description = "no such user in your tenant"),
        (status = 409, description = "the account is active already")))]
pub async fn enable_user(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form: Result<ButtonForm, _> = parse_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let admin = viewer.caller.may::<ManageUsers>(&state)?;
        let outcome = enable_account(&state, &admin, &name).await?;
        back(&name, outcome)
    };
    answer(&state, html, result.await)
}
