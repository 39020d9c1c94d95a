//! The inventory for regulators and auditors, over HTTP: the inventory report (JSON, Markdown
//! or a self-contained HTML page) and the CycloneDX 1.6 ML-BOM export.

use super::body::QueryParams;
use super::inventory::templates;
use super::inventory_report_views::{CycloneDxBomView, InventoryReportView};
use crate::AppState;
use crate::auth::{Caller, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use steward_core::inventory::report::Report;
use steward_core::inventory::{self, Dataset, Deployment, Run};
use steward_store::{RecordKind, TenantStore};
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// The report: `json` (default), `markdown` or `html`; the export: `cyclonedx`.
    pub format: Option<String>,
}

/// The inventory report for a regulator or an auditor: counts by status and tier, incomplete
/// models with their missing fields, reconciliation findings, overdue validations, production
/// models and where they run, and the recent changes per model — as JSON, Markdown or a
/// self-contained HTML page.
#[utoipa::path(get, path = "/api/v1/inventory/report", tag = "inventory", params(FormatQuery),
    responses((status = 200, description = "the report, in the format asked for", content(
            (InventoryReportView = "application/json"),
            (String = "text/markdown"),
            (String = "text/html"))),
        (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<FormatQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    use steward_core::inventory::report;
    let format = query.format.as_deref().unwrap_or("json");
    if !["json", "markdown", "html"].contains(&format) {
        return Err(ApiError::invalid_field(
            "format",
            "must be json, markdown or html",
        ));
    }
    let store = caller.may::<ReadRecords>(&state)?.store();
    let built = inventory_report(&store, state.clock.now()).await?;
    Ok(match format {
        "markdown" => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            report::to_markdown(&built),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report::to_html(&built),
        )
            .into_response(),
        _ => Json(InventoryReportView::from(&built)).into_response(),
    })
}

/// The inventory report as it stands at `now`: what `GET /inventory/report` answers (in any
/// format) and the portal's dashboard sums up.
pub(crate) async fn inventory_report(
    store: &TenantStore<'_>,
    now: DateTime<Utc>,
) -> Result<Report, ApiError> {
    use steward_core::inventory::report::{self, ModelChange, ReportInput};
    let models = store.list_models().await?;
    let deployments: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
    let findings = crate::inventory::reconciliation(store, false, now).await?;
    let all_changes = crate::inventory::approvable_changes(store).await?;
    let changes: Vec<ModelChange> = models
        .iter()
        .flat_map(|m| {
            all_changes
                .iter()
                .filter(|c| inventory::names_model(c, &m.name))
                .map(|c| ModelChange {
                    model: m.name.clone(),
                    change: c.id.to_string(),
                    title: c.request.title.clone(),
                    state: c.state.as_str().to_owned(),
                    // When it was actually implemented; a change not implemented (or stored
                    // before that was recorded) by its last update, never its planned window.
                    at: c.implemented_at().unwrap_or(c.updated_at),
                })
        })
        .collect();
    let last_scan = store
        .scans(1)
        .await?
        .first()
        .and_then(|s| serde_json::from_value(s["recorded_at"].clone()).ok());
    let templates = templates(store).await?;
    Ok(report::build(&ReportInput {
        models: &models,
        deployments: &deployments,
        findings: &findings,
        changes: &changes,
        templates: &templates,
        today: now.date_naive(),
        generated_at: now,
        tenant: store.tenant_id(),
        last_scan,
    }))
}

/// The inventory as a CycloneDX 1.6 ML-BOM (JSON): model versions as `machine-learning-model`
/// components with model cards, datasets as `data` components, lineage as dependencies, and
/// Steward's governance fields as properties.
#[utoipa::path(get, path = "/api/v1/inventory/export", tag = "inventory", params(FormatQuery),
    responses((status = 200, body = CycloneDxBomView), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<FormatQuery>,
) -> Result<Json<CycloneDxBomView>, ApiError> {
    if query.format.as_deref().unwrap_or("cyclonedx") != "cyclonedx" {
        return Err(ApiError::invalid_field("format", "must be cyclonedx"));
    }
    let store = caller.may::<ReadRecords>(&state)?.store();
    let models = store.list_models().await?;
    let datasets: Vec<Dataset> = store.records(RecordKind::Dataset).await?;
    let runs: Vec<Run> = store.records(RecordKind::Run).await?;
    let deployments: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
    let templates = templates(&store).await?;
    Ok(Json(CycloneDxBomView(inventory::cyclonedx::ml_bom(
        &inventory::cyclonedx::BomInput {
            models: &models,
            datasets: &datasets,
            runs: &runs,
            deployments: &deployments,
            templates: &templates,
            serial: format!("urn:uuid:{}", uuid::Uuid::now_v7()),
            now: state.clock.now(),
            tool_version: env!("CARGO_PKG_VERSION"),
        },
    ))))
}
