//! A tenant's own Rego modules: listed and read by anyone in the tenant (policy is code people
//! should be able to read), written and deleted by its admins. A module joins the tenant's
//! policy set only if the set still compiles with it; otherwise the write is a 422 carrying the
//! Rego error. Policy is a privileged change: a write or deletion waits for a second admin
//! (dual control, [`crate::dual_control`]) and is checked again when approved.

use super::admin::{PendingView, waiting};
use super::body::JsonBody;
use super::created::Accepted;
use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::auth::{Caller, ManagePolicies, ReadRecords};
use crate::dual_control;
use crate::error::{ApiError, ErrorBody};
use crate::policies::ModuleRefused;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_policy::PolicySet;
use steward_store::PolicyModuleRecord;
use steward_store::pending::Operation;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyModuleView {
    pub name: String,
    /// Where the module sits in the policy set (`tenant/<name>.rego`), as errors name it.
    pub path: String,
    /// The Rego source.
    pub source: String,
    /// Hex SHA-256 of the source.
    pub digest: String,
    /// Who wrote this version, and when.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<PolicyModuleRecord> for PolicyModuleView {
    fn from(m: PolicyModuleRecord) -> Self {
        PolicyModuleView {
            path: format!("tenant/{}.rego", m.name),
            name: m.name,
            source: m.source,
            digest: m.digest,
            created_by: m.created_by,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutModule {
    /// The Rego source: one module, `package steward.rules.<name>` for a rule.
    pub source: String,
}

/// A module's name: a lowercase identifier, so its path reads like a Rego file's.
pub(crate) fn parse_name(name: &str) -> Result<&str, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(
            "must be 1-64 lowercase letters, digits and '_', starting with a letter".into(),
        );
    }
    if name.ends_with("_test") {
        return Err(
            "names ending in _test hold tests, which run locally (`steward policy test`) and never judge changes"
                .into(),
        );
    }
    Ok(name)
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no policy module '{name}' in your tenant: see `steward policy module list`"
    ))
}

/// Your tenant's own policy modules, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/policy/modules", tag = "policy", params(PageQuery),
    responses((status = 200, body = Page<PolicyModuleView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_modules(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<PolicyModuleView>>, ApiError> {
    let after: Option<String> = page.after("policy_modules")?;
    let modules = caller
        .may::<ReadRecords>(&state)?
        .store()
        .list_policy_modules(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("policy_modules", modules, |m| m.name.clone());
    Ok(Json(page.map(PolicyModuleView::from)))
}

/// One of your tenant's policy modules.
#[utoipa::path(get, path = "/api/v1/policy/modules/{name}", tag = "policy",
    params(("name" = String, Path, description = "the module's name")),
    responses((status = 200, body = PolicyModuleView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get_module(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PolicyModuleView>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let found = store
        .list_policy_modules(None, i64::MAX)
        .await?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| missing(&name))?;
    Ok(Json(found.into()))
}

/// Ask to add or replace one of your tenant's Rego modules (admin). A module is policy, so it
/// takes effect only when a second admin approves it (`POST /admin/pending/{id}/approve`); from
/// then on it judges your tenant's changes on top of the installation's policy set. A module
/// that does not compile with the set, or reopens one of the installation's packages, is refused
/// now (422, with the Rego error), and checked again when approved.
#[utoipa::path(put, path = "/api/v1/policy/modules/{name}", tag = "policy", request_body = PutModule,
    params(("name" = String, Path, description = "the module's name: lowercase letters, digits and '_'")),
    responses((status = 202, body = PendingView, headers(("Location" = String, description = "the waiting operation"))),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_module(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PutModule>,
) -> Result<Accepted<PendingView>, ApiError> {
    let admin = caller.may::<ManagePolicies>(&state)?;
    let name = parse_name(&name).map_err(|e| ApiError::invalid_field("name", e))?;
    if body.source.trim().is_empty() {
        return Err(ApiError::invalid_field("source", "must not be empty"));
    }
    let current = admin.store().policy_modules().await?;
    check_module(&state, &current, name, Some(&body.source))?;
    let before = current
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.digest.clone());
    let digest = steward_audit::hash::sha256(body.source.as_bytes()).to_hex();
    if before.as_deref() == Some(digest.as_str()) {
        return Err(ApiError::Conflict {
            message: format!(
                "policy module {name} already has exactly this source: nothing to approve"
            ),
            details: serde_json::Value::Null,
        });
    }
    let operation = Operation::PutPolicyModule {
        name: name.to_owned(),
        before,
        source: body.source,
    };
    waiting(dual_control::request(&admin, operation).await?)
}

/// Whether the tenant's set compiles with `name` given `source` (or without it): the set it
/// makes, or 422 naming the Rego error. Checked when a change is asked for and again when it is
/// approved; the portal's backtest judges past changes with the set it returns.
pub(crate) fn check_module(
    state: &AppState,
    current: &[PolicyModuleRecord],
    name: &str,
    source: Option<&str>,
) -> Result<PolicySet, ApiError> {
    state
        .policies
        .check(current, name, source)
        .map_err(|refused| match source {
            Some(_) => ApiError::invalid_field(
                "source",
                match refused {
                    ModuleRefused::Broken(rego) => {
                        format!("does not compile with your tenant's policy set: {rego}")
                    }
                    reopens => reopens.to_string(),
                },
            ),
            None => ApiError::invalid_field(
                "name",
                format!("your tenant's other modules do not compile without it: {refused}"),
            ),
        })
}

/// Ask to delete one of your tenant's Rego modules (admin): once a second admin approves, your
/// tenant's changes are no longer judged by it.
#[utoipa::path(delete, path = "/api/v1/policy/modules/{name}", tag = "policy",
    params(("name" = String, Path, description = "the module's name")),
    responses((status = 202, body = PendingView, headers(("Location" = String, description = "the waiting operation"))),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn delete_module(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Accepted<PendingView>, ApiError> {
    let admin = caller.may::<ManagePolicies>(&state)?;
    let current = admin.store().policy_modules().await?;
    let Some(module) = current.iter().find(|m| m.name == name) else {
        return Err(missing(&name));
    };
    // Another module may use what this one defines: the set must still compile without it.
    check_module(&state, &current, &name, None)?;
    let operation = Operation::DeletePolicyModule {
        name: name.clone(),
        before: module.digest.clone(),
    };
    waiting(dual_control::request(&admin, operation).await?)
}
