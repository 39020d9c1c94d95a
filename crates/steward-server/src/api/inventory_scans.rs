//! What inventory scans found, over HTTP: recording a scan (`steward inventory scan` uploads
//! one report per source), the kept scan reports, the reconciliation of the inventory against
//! what runs, and the deployments, datasets and training runs scans found.

use super::body::JsonBody;
use super::inventory::check_name;
use super::inventory_scan_views::{
    DatasetView, FindingView, InventoryDeploymentView, RunView, ScanReportView,
};
use super::page::{Page, PageQuery, PageRequest, Paged};
use crate::AppState;
use crate::auth::{Caller, ReadRecords, RecordScans};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use steward_core::inventory::{self, Dataset, Deployment, Finding, Run, SourceReport};
use steward_store::{RecordKind, TenantStore};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanInput {
    /// One report per source, as `steward inventory scan` makes them; a failed source carries
    /// its `error` and leaves what it found before alone.
    #[schema(value_type = Vec<Object>)]
    pub sources: Vec<SourceReport>,
}

/// Record a scan of one or more sources (managers, compliance officers, admins): models and
/// versions (created in `development` if new), runs, datasets and deployments, last seen;
/// deployments a source no longer shows are marked gone. Then the inventory is reconciled
/// against what runs, and the scan's report is kept and returned. Re-sending the same scan
/// changes nothing but "last seen".
#[utoipa::path(post, path = "/api/v1/inventory/scans", tag = "inventory", request_body = ScanInput,
    responses((status = 200, body = ScanReportView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ScanInput>,
) -> Result<Json<ScanReportView>, ApiError> {
    let keeper = caller.may::<RecordScans>(&state)?;
    if body.sources.is_empty() {
        return Err(ApiError::invalid_field(
            "sources",
            "give at least one source report",
        ));
    }
    for (i, r) in body.sources.iter().enumerate() {
        if r.source.trim().is_empty() || r.source.len() > 1000 {
            return Err(ApiError::invalid_field(
                &format!("sources[{i}].source"),
                "name where it was found (at most 1000 characters)",
            ));
        }
        for (j, v) in r.versions.iter().enumerate() {
            check_name(&format!("sources[{i}].versions[{j}].model"), &v.model)?;
            if v.version.version.trim().is_empty() {
                return Err(ApiError::invalid_field(
                    &format!("sources[{i}].versions[{j}].version.version"),
                    "must not be empty",
                ));
            }
        }
    }
    let store = keeper.store();
    let who = keeper.principal().name.to_string();
    let _one_at_a_time = state.scans.lock().await;
    let report = crate::inventory::record(&store, body.sources, &who, state.clock.now()).await?;
    Ok(Json(ScanReportView::from_stored(report)?))
}

/// Kept scan reports, newest first, a page at a time: sources, what each did, problems,
/// reconciliation findings.
#[utoipa::path(get, path = "/api/v1/inventory/scans", tag = "inventory", params(PageQuery),
    responses((status = 200, body = Page<ScanReportView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn scans(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<ScanReportView>>, ApiError> {
    let before: Option<(String, String)> = page.after("scans")?;
    let scans = caller
        .may::<ReadRecords>(&state)?
        .store()
        .scans_before(
            before.as_ref().map(|(at, id)| (at.as_str(), id.as_str())),
            page.fetch(),
        )
        .await?;
    let page = page.page("scans", scans, |(key, _)| key.clone());
    let next_cursor = page.next_cursor;
    let items = page
        .items
        .into_iter()
        .map(|(_, scan)| ScanReportView::from_stored(scan))
        .collect::<Result<_, _>>()?;
    Ok(Json(Page { items, next_cursor }))
}

/// One kept scan report.
#[utoipa::path(get, path = "/api/v1/inventory/scans/{id}", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = ScanReportView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn scan_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ScanReportView>, ApiError> {
    let scan = caller
        .may::<ReadRecords>(&state)?
        .store()
        .scan(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no scan {id}")))?;
    Ok(Json(ScanReportView::from_stored(scan)?))
}

/// A finding's place in the reconciliation list: findings are computed, not stored, so the list
/// is sorted by this and paged in memory (with the same cursor contract as stored lists).
type FindingKey = (
    inventory::FindingKind,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

fn finding_key(f: &Finding) -> FindingKey {
    (
        f.kind,
        f.model.clone(),
        f.version.clone(),
        f.deployment.clone(),
        f.detail.clone(),
    )
}

/// The inventory against what runs, now, a page at a time: orphans, production models running
/// nowhere, versions running or marked for production without a completed change that names
/// them, expired validations, digest mismatches. Computed on each call and paged in memory.
#[utoipa::path(get, path = "/api/v1/inventory/reconciliation", tag = "inventory", params(PageQuery),
    responses((status = 200, body = Page<FindingView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<FindingView>>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let findings = findings_now(&state, &store).await?;
    let page = findings_page(&page, findings)?;
    Ok(Json(page.map(|f| FindingView::from(&f))))
}

/// The reconciliation's findings now, in the list's order (the portal's model page and its
/// reconciliation page read the same list).
pub(crate) async fn findings_now(
    state: &AppState,
    store: &TenantStore<'_>,
) -> Result<Vec<Finding>, ApiError> {
    let mut findings = crate::inventory::reconciliation(store, false, state.clock.now()).await?;
    findings.sort_by_key(finding_key);
    Ok(findings)
}

/// The page of `findings` (from [`findings_now`]) that `page` asks for, with the list's cursor.
pub(crate) fn findings_page(
    page: &PageRequest,
    findings: Vec<Finding>,
) -> Result<Page<Finding>, ApiError> {
    page.page_in_memory("reconciliation", findings, finding_key, false)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeploymentsQuery {
    /// Include deployments no longer seen running.
    #[serde(default)]
    pub all: bool,
}

/// Where models run, as the latest scans found them, by key, a page at a time.
#[utoipa::path(get, path = "/api/v1/inventory/deployments", tag = "inventory", params(DeploymentsQuery, PageQuery),
    responses((status = 200, body = Page<InventoryDeploymentView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn deployments(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<DeploymentsQuery>,
) -> Result<Json<Page<InventoryDeploymentView>>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    // `running` is in the document, not a column: walk the keys from the cursor until the page
    // is full of the deployments asked for.
    let mut kept: Vec<(String, Deployment)> = Vec::new();
    let mut scanned: Option<String> = page.after("deployments")?;
    loop {
        let batch: Vec<(String, Deployment)> = store
            .records_after(RecordKind::Deployment, scanned.as_deref(), page.fetch())
            .await?;
        let exhausted = batch.len() < page.fetch() as usize;
        scanned = batch.last().map(|(key, _)| key.clone());
        kept.extend(batch.into_iter().filter(|(_, d)| query.all || d.running));
        if exhausted || kept.len() > page.limit() {
            break;
        }
    }
    let page = page.page("deployments", kept, |(key, _)| key.clone());
    Ok(Json(page.map(|(_, d)| InventoryDeploymentView::from(&d))))
}

/// Datasets training runs read, by key, a page at a time.
#[utoipa::path(get, path = "/api/v1/inventory/datasets", tag = "inventory", params(PageQuery),
    responses((status = 200, body = Page<DatasetView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn datasets(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<DatasetView>>, ApiError> {
    let after: Option<String> = page.after("datasets")?;
    let rows: Vec<(String, Dataset)> = caller
        .may::<ReadRecords>(&state)?
        .store()
        .records_after(RecordKind::Dataset, after.as_deref(), page.fetch())
        .await?;
    let page = page.page("datasets", rows, |(key, _)| key.clone());
    Ok(Json(page.map(|(_, d)| DatasetView::from(&d))))
}

/// Training runs behind registered versions, by key, a page at a time.
#[utoipa::path(get, path = "/api/v1/inventory/runs", tag = "inventory", params(PageQuery),
    responses((status = 200, body = Page<RunView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn runs(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<RunView>>, ApiError> {
    let after: Option<String> = page.after("runs")?;
    let rows: Vec<(String, Run)> = caller
        .may::<ReadRecords>(&state)?
        .store()
        .records_after(RecordKind::Run, after.as_deref(), page.fetch())
        .await?;
    let page = page.page("runs", rows, |(key, _)| key.clone());
    Ok(Json(page.map(|(_, r)| RunView::from(&r))))
}
