//! The REST API under `/api/v1`, and the OpenAPI document generated from its handlers.

pub mod account_views;
pub mod accounts;
pub mod admin;
pub mod alerts;
pub mod audit;
pub mod body;
pub mod calendar;
pub mod calendar_period;
pub mod catalog;
pub mod change_metrics;
pub mod change_views;
pub mod changes;
pub mod created;
pub mod deployments;
pub mod detectors;
pub mod github;
pub mod gitlab;
pub mod groups;
pub mod health;
pub mod incident_views;
pub mod incidents;
pub mod inventory;
pub mod inventory_report_views;
pub mod inventory_reports;
pub mod inventory_scan_views;
pub mod inventory_scans;
pub mod inventory_views;
pub mod metrics;
mod named;
pub mod notifications;
pub mod page;
pub mod plan_views;
pub mod policy;
pub mod policy_modules;
pub mod problems;
mod signals;
pub mod sso;
pub mod targets;
pub mod tenants;
pub mod users;
pub mod views;

use crate::AppState;
use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Steward", description = "Governance for ML infrastructure: change management, compliance policy, the change calendar, audit."),
    modifiers(&TokenAuth)
)]
struct ApiDoc;

struct TokenAuth;

impl Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// A 405 with the JSON error body every other error has (axum adds the `Allow` header).
async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> (axum::http::StatusCode, Json<crate::error::ErrorBody>) {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        Json(crate::error::ErrorBody {
            error: format!(
                "{method} is not allowed on {}: the Allow header and /api/v1/openapi.json list what is",
                uri.path()
            ),
            details: serde_json::json!({ "method": method.as_str() }),
        }),
    )
}

/// The whole HTTP surface, with `/api/v1/openapi.json` describing it.
pub fn router(state: AppState) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(sso::login))
        .routes(routes!(sso::callback))
        .routes(routes!(sso::logout))
        .routes(routes!(groups::list_groups))
        .routes(routes!(groups::set_group, groups::delete_group))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::get_user))
        .routes(routes!(users::whoami))
        .routes(routes!(accounts::disable_user))
        .routes(routes!(accounts::enable_user))
        .routes(routes!(accounts::set_roles))
        .routes(routes!(accounts::issue_token))
        .routes(routes!(accounts::revoke_tokens))
        .routes(routes!(accounts::rotate_token))
        .routes(routes!(targets::create_target, targets::list_targets))
        .routes(routes!(targets::get_target))
        .routes(routes!(catalog::list_catalog))
        .routes(routes!(catalog::put_catalog_item))
        .routes(routes!(admin::list))
        .routes(routes!(admin::get))
        .routes(routes!(admin::approve))
        .routes(routes!(admin::reject))
        .routes(routes!(changes::submit_change, changes::list_changes))
        .routes(routes!(changes::get_change))
        .routes(routes!(changes::approve_change))
        .routes(routes!(changes::reject_change))
        .routes(routes!(changes::submit_draft))
        .routes(routes!(changes::transition_change))
        .routes(routes!(changes::fulfil_obligation))
        .routes(routes!(changes::gate))
        .routes(routes!(changes::rollback_change))
        .routes(routes!(changes::override_window))
        .routes(routes!(change_metrics::change_metrics))
        .routes(routes!(deployments::report))
        .routes(routes!(notifications::inbox))
        .routes(routes!(alerts::alertmanager))
        .routes(routes!(alerts::pagerduty_event))
        .routes(routes!(alerts::pagerduty_change))
        .routes(routes!(incidents::list, incidents::open))
        .routes(routes!(incidents::get))
        .routes(routes!(incidents::act))
        .routes(routes!(incidents::propose))
        .routes(routes!(incidents::approve))
        .routes(routes!(incidents::review))
        .routes(routes!(incidents::metrics))
        .routes(routes!(detectors::put_detector))
        .routes(routes!(detectors::list_detectors))
        .routes(routes!(detectors::put_playbook))
        .routes(routes!(problems::put_problem, problems::get_problem))
        .routes(routes!(problems::fix_problem))
        .routes(routes!(inventory::list))
        .routes(routes!(inventory::get, inventory::attest))
        .routes(routes!(inventory::get_templates, inventory::put_templates))
        .routes(routes!(inventory_scans::scan, inventory_scans::scans))
        .routes(routes!(inventory_scans::scan_report))
        .routes(routes!(inventory_scans::reconciliation))
        .routes(routes!(inventory_scans::deployments))
        .routes(routes!(inventory_scans::datasets))
        .routes(routes!(inventory_scans::runs))
        .routes(routes!(inventory::register_version))
        .routes(routes!(inventory_reports::report))
        .routes(routes!(inventory_reports::export))
        .routes(routes!(metrics::push, metrics::query))
        .routes(routes!(github::deployment_protection))
        .routes(routes!(gitlab::deployment))
        .routes(routes!(policy::policy_set))
        .routes(routes!(policy::evaluate))
        .routes(routes!(policy::stored_inputs))
        .routes(routes!(policy_modules::list_modules))
        .routes(routes!(
            policy_modules::get_module,
            policy_modules::put_module,
            policy_modules::delete_module
        ))
        .routes(routes!(tenants::create_tenant, tenants::list_tenants))
        .routes(routes!(tenants::get_tenant))
        .routes(routes!(tenants::approve_for_tenant))
        .routes(routes!(calendar::create_window, calendar::list_windows))
        .routes(routes!(calendar::get_window, calendar::delete_window))
        .routes(routes!(calendar::feed))
        .routes(routes!(audit::public_key))
        .routes(routes!(audit::checkpoint))
        .routes(routes!(audit::checkpoints))
        .routes(routes!(audit::leaves))
        .routes(routes!(audit::inclusion))
        .routes(routes!(audit::consistency))
        .routes(routes!(audit::erase))
        .routes(routes!(audit::hold, audit::release))
        .routes(routes!(audit::retention))
        // The web portal's pages (tag `portal`), on the same port.
        .merge(crate::portal::router())
        .split_for_parts();
    let openapi = std::sync::Arc::new(openapi);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        // Under /api/ an unknown path is the API's JSON 404; elsewhere it is a portal page.
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/api/") {
                axum::response::IntoResponse::into_response(crate::error::ApiError::NotFound(
                    "no such endpoint: see /api/v1/openapi.json".into(),
                ))
            } else {
                crate::portal::not_found_page(uri.path())
            }
        })
        // After every route: it applies to the routes added before it.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .with_state(state)
}
