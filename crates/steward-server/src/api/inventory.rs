//! The model inventory over HTTP: models with their fields, provenance, versions and
//! completeness; point-in-time reads from the audit history (`?at=`); attestations by people;
//! metadata templates; and scan results uploaded by `steward inventory scan`.

use super::body::{JsonBody, QueryParams};
use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::auth::{
    AttestModels, Caller, KeepTemplates, ReadRecords, RecordScans, RegisterVersions,
};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use steward_core::inventory::{
    self, Dataset, Deployment, Finding, Model, ModelSummary, ModelVersion, Run, SourceReport,
    Templates,
};
use steward_store::{NamedKind, RecordKind, StoreError, TenantStore};
use utoipa::{IntoParams, ToSchema};

async fn templates(store: &TenantStore<'_>) -> Result<Templates, ApiError> {
    Ok(
        match store
            .named_one(NamedKind::InventoryTemplates, "default")
            .await?
        {
            Some(doc) => serde_json::from_value(doc).unwrap_or_else(|_| Templates::standard()),
            None => Templates::standard(),
        },
    )
}

/// A model name, or a 422 naming `field`.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if inventory::valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be 1–128 lowercase letters, digits, '-', '_' or '.'",
        ))
    }
}

fn summary(model: &ModelSummary, templates: &Templates, day: NaiveDate) -> Value {
    json!({
        "name": model.name,
        "status": model.status(),
        "production_version": model.production_version(),
        "title": model.fields.get("title"),
        "risk_tier": model.fields.get("risk_tier"),
        "owner": model.fields.get("owner"),
        "versions": model.versions.iter().map(|v| &v.version).collect::<Vec<_>>(),
        "completeness": model.completeness(templates),
        "validation_current": model.validation_current(day),
        "updated_at": model.updated_at,
    })
}

fn detail(model: &Model, templates: &Templates, day: NaiveDate) -> Value {
    let mut value = serde_json::to_value(model).unwrap_or(Value::Null);
    value["completeness"] = json!(model.completeness(templates));
    value["validation_current"] = json!(model.validation_current(day));
    value
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModelsQuery {
    /// development, validation, production or retired.
    pub status: Option<String>,
    /// As the inventory recorded it at this time (from the audit history).
    pub at: Option<DateTime<Utc>>,
}

/// Models by name, a page at a time, each with its status, completeness and whether its
/// validation is current — now, or as recorded at `at`.
#[utoipa::path(get, path = "/api/v1/models", tag = "inventory", params(ModelsQuery, PageQuery),
    responses((status = 200, body = Page<Value>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<ModelsQuery>,
) -> Result<Json<Page<Value>>, ApiError> {
    if let Some(s) = &query.status
        && !inventory::STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid_field(
            "status",
            "must be development, validation, production or retired",
        ));
    }
    let store = caller.may::<ReadRecords>(&state)?.store();
    let templates = templates(&store).await?;
    let after: Option<String> = page.after("models")?;
    let Some(at) = query.at else {
        let models = store
            .model_summaries_after(query.status.as_deref(), after.as_deref(), page.fetch())
            .await?;
        let day = state.clock.now().date_naive();
        let page = page.page("models", models, |m| m.name.clone());
        return Ok(Json(page.map(|m| summary(&m, &templates, day))));
    };
    // As recorded at `at`: each model's record then comes from its history, so the status
    // filter applies after the query. Walk today's models by name from the cursor until the
    // page is full; the cursor is a name either way.
    let mut then = Vec::new();
    let mut scanned = after;
    loop {
        let batch = store
            .model_summaries_after(None, scanned.as_deref(), page.fetch())
            .await?;
        let exhausted = batch.len() < page.fetch() as usize;
        for m in &batch {
            if then.len() > page.limit() {
                break;
            }
            if let Some(old) = store.model_at(&m.name, at).await? {
                let old = ModelSummary::from(&old);
                if query.status.as_deref().is_none_or(|s| old.status() == s) {
                    then.push(old);
                }
            }
        }
        scanned = batch.last().map(|m| m.name.clone());
        if exhausted || then.len() > page.limit() {
            break;
        }
    }
    let page = page.page("models", then, |m| m.name.clone());
    // As of a past time, say who had approved each model into service then.
    let changes = crate::inventory::approvable_changes(&store).await?;
    let day = at.date_naive();
    Ok(Json(page.map(|m| {
        let mut v = summary(&m, &templates, day);
        let version = m.production().map(|v| v.reference());
        v["approval"] = json!(inventory::approval_at(&changes, &m.name, version, at));
        v
    })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModelQuery {
    pub at: Option<DateTime<Utc>>,
    /// Include the model's audit history (every create, update and status change).
    #[serde(default)]
    pub history: bool,
}

/// One model: fields with provenance, versions, completeness, where it runs, its lineage and
/// the change that approved it — now, or as recorded at `at` — and its audit history on request.
#[utoipa::path(get, path = "/api/v1/models/{name}", tag = "inventory", params(("name" = String, Path), ModelQuery),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ModelQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let templates = templates(&store).await?;
    let (model, day) = match query.at {
        None => (
            store.get_model(&name).await?,
            state.clock.now().date_naive(),
        ),
        Some(at) => (store.model_at(&name, at).await?, at.date_naive()),
    };
    let model = model.ok_or_else(|| match query.at {
        Some(at) => ApiError::NotFound(format!("the inventory had no model {name} at {at}")),
        None => ApiError::NotFound(format!("no model {name}")),
    })?;
    let mut value = detail(&model, &templates, day);
    let changes = crate::inventory::approvable_changes(&store).await?;
    let production = model.production_version();
    value["production_version"] = json!(production.map(|v| &v.version));
    value["approval"] = json!(inventory::approval_at(
        &changes,
        &model.name,
        production.map(|v| v.reference()),
        query.at.unwrap_or_else(|| state.clock.now())
    ));
    if query.at.is_none() {
        // Read only what this model's lineage can need.
        let deployments: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
        let models = if deployments.is_empty() {
            vec![model.clone()]
        } else {
            store.list_models().await?
        };
        let mut run_ids: Vec<String> = model
            .versions
            .iter()
            .filter_map(|v| v.run_id.clone())
            .collect();
        run_ids.sort();
        run_ids.dedup();
        let runs: Vec<Run> = store.records_by_key(RecordKind::Run, &run_ids).await?;
        let mut dataset_keys: Vec<String> = runs
            .iter()
            .flat_map(|r| r.datasets.iter().cloned())
            .collect();
        dataset_keys.sort();
        dataset_keys.dedup();
        let datasets: Vec<Dataset> = store
            .records_by_key(RecordKind::Dataset, &dataset_keys)
            .await?;
        let serving: Vec<Value> = deployments
            .iter()
            .filter_map(|d| {
                let (m, version) = inventory::match_deployment(d, &models)?;
                (m.name == model.name).then(|| {
                    let mut v = json!(d);
                    v["serves_version"] = json!(version);
                    v
                })
            })
            .collect();
        value["deployments"] = json!(serving);
        value["lineage"] = json!(inventory::lineage(
            &model,
            &models,
            &runs,
            &datasets,
            &deployments
        ));
    }
    if query.history {
        let history = store.audit_events_for("model", &name).await?;
        value["history"] = json!(history
            .into_iter()
            .filter(|e| query.at.is_none_or(|at| e.occurred_at <= at))
            .map(|e| json!({"at": e.occurred_at, "actor": e.actor, "action": e.action, "changed": e.details.get("changed"),
                            "version": e.details.pointer("/version/version")}))
            .collect::<Vec<_>>());
    }
    Ok(Json(value))
}

async fn save(
    store: &TenantStore<'_>,
    model: &Model,
    created: bool,
    status_before: &str,
    actor: &str,
    changed: &[String],
) -> Result<(), StoreError> {
    let action = if created {
        "model.created"
    } else if model.status() != status_before {
        "model.status_changed"
    } else {
        "model.updated"
    };
    store.save_model(model, Some(action), actor, changed).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttestQuery {
    /// Create the model if the inventory does not have it. Without it, an unknown name is a
    /// 404, so a misspelt name never becomes a second model.
    #[serde(default)]
    pub create: bool,
}

/// State a model's fields (managers, compliance officers, admins): each a known field of its
/// kind, recorded as attested by the caller; `null` clears one. An unknown model is a 404 unless
/// `?create=true` asks to create it (201 with its `Location`).
#[utoipa::path(put, path = "/api/v1/models/{name}", tag = "inventory",
    request_body(content = Object, description = "field → value, e.g. {\"purpose\": \"…\", \"risk_tier\": \"high\"}"),
    params(("name" = String, Path), AttestQuery),
    responses((status = 200, body = Object), (status = 201, body = Object), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn attest(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<AttestQuery>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let keeper = caller.may::<AttestModels>(&state)?;
    check_name("name", &name)?;
    let values = inventory::check_fields(&body).map_err(ApiError::Invalid)?;
    let store = keeper.store();
    let who = keeper.principal().name.clone();
    let mut created_it = false;
    for _ in 0..8 {
        let now = state.clock.now();
        let existing = store.get_model(&name).await?;
        let created = existing.is_none();
        if created && !query.create {
            return Err(ApiError::NotFound(format!(
                "no model {name}: check the name (`steward inventory list`), or create it with \
                 `steward inventory set {name} --create field=value …` (PUT \
                 /api/v1/models/{name}?create=true)"
            )));
        }
        let mut model = existing.unwrap_or_else(|| Model::new(&name, now));
        let before = model.status().to_owned();
        let changed = model.attest(values.clone(), &who, now);
        if changed.is_empty() && !created {
            break;
        }
        match save(&store, &model, created, &before, who.as_str(), &changed).await {
            Ok(()) => {
                created_it = created;
                break;
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let templates = templates(&store).await?;
    let model = store
        .get_model(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no model {name}")))?;
    let body = Json(detail(&model, &templates, state.clock.now().date_naive()));
    Ok(if created_it {
        (
            axum::http::StatusCode::CREATED,
            [(
                axum::http::header::LOCATION,
                format!("/api/v1/models/{name}"),
            )],
            body,
        )
            .into_response()
    } else {
        body.into_response()
    })
}

/// The metadata templates: mandatory fields per risk tier and per regulatory tag.
#[utoipa::path(get, path = "/api/v1/inventory/templates", tag = "inventory",
    responses((status = 200, body = Object)), security(("token" = [])))]
pub async fn get_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let t = templates(&caller.may::<ReadRecords>(&state)?.store()).await?;
    Ok(Json(json!(t)))
}

/// Replace the metadata templates (compliance officers and admins).
#[utoipa::path(put, path = "/api/v1/inventory/templates", tag = "inventory",
    request_body(content = Object, description = "{\"tiers\": {\"high\": [fields]}, \"tags\": {\"eu-ai-act-high-risk\": [fields]}}"),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_templates(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let officer = caller.may::<KeepTemplates>(&state)?;
    let t: Templates = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid_field("(body)", e.to_string()))?;
    t.validate().map_err(ApiError::Invalid)?;
    officer
        .store()
        .put_named(
            NamedKind::InventoryTemplates,
            "default",
            &json!(t),
            officer.principal().name.as_str(),
            state.clock.now(),
        )
        .await?;
    Ok(Json(json!(t)))
}

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
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ScanInput>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(report))
}

/// Kept scan reports, newest first, a page at a time: sources, what each did, problems,
/// reconciliation findings.
#[utoipa::path(get, path = "/api/v1/inventory/scans", tag = "inventory", params(PageQuery),
    responses((status = 200, body = Page<Value>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn scans(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<Value>>, ApiError> {
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
    Ok(Json(page.map(|(_, scan)| scan)))
}

/// One kept scan report.
#[utoipa::path(get, path = "/api/v1/inventory/scans/{id}", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn scan_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller
        .may::<ReadRecords>(&state)?
        .store()
        .scan(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no scan {id}")))
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
    responses((status = 200, body = Page<Value>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<Finding>>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let mut findings = crate::inventory::reconciliation(&store, false, state.clock.now()).await?;
    findings.sort_by_key(finding_key);
    Ok(Json(page.page_in_memory(
        "reconciliation",
        findings,
        finding_key,
        false,
    )?))
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
    responses((status = 200, body = Page<Value>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn deployments(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<DeploymentsQuery>,
) -> Result<Json<Page<Deployment>>, ApiError> {
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
    Ok(Json(page.map(|(_, d)| d)))
}

/// Datasets training runs read, by key, a page at a time.
#[utoipa::path(get, path = "/api/v1/inventory/datasets", tag = "inventory", params(PageQuery),
    responses((status = 200, body = Page<Value>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn datasets(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<Dataset>>, ApiError> {
    let after: Option<String> = page.after("datasets")?;
    let rows: Vec<(String, Dataset)> = caller
        .may::<ReadRecords>(&state)?
        .store()
        .records_after(RecordKind::Dataset, after.as_deref(), page.fetch())
        .await?;
    let page = page.page("datasets", rows, |(key, _)| key.clone());
    Ok(Json(page.map(|(_, d)| d)))
}

/// Training runs behind registered versions, by key, a page at a time.
#[utoipa::path(get, path = "/api/v1/inventory/runs", tag = "inventory", params(PageQuery),
    responses((status = 200, body = Page<Value>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn runs(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<Run>>, ApiError> {
    let after: Option<String> = page.after("runs")?;
    let rows: Vec<(String, Run)> = caller
        .may::<ReadRecords>(&state)?
        .store()
        .records_after(RecordKind::Run, after.as_deref(), page.fetch())
        .await?;
    let page = page.page("runs", rows, |(key, _)| key.clone());
    Ok(Json(page.map(|(_, r)| r)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionInput {
    /// The version's name (`3`, `2026-11-29`), unique within the model.
    pub version: String,
    pub artifact_uri: String,
    /// `sha256:<64 hex digits>`.
    pub digest: Option<String>,
    pub framework: Option<String>,
    pub trained_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    pub run_id: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Anything else worth keeping (tags, parameters).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// Register a version of a model (managers, compliance officers, admins; e.g. a training
/// pipeline's account): recorded as stated by the caller. Creates the model if new. Registering
/// the same version again with the same content changes nothing; an artifact whose digest the
/// model holds already joins that version (`joined`, and `version` names it) instead of becoming
/// a second version.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions", tag = "inventory", request_body = VersionInput,
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn register_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<VersionInput>,
) -> Result<Json<Value>, ApiError> {
    let keeper = caller.may::<RegisterVersions>(&state)?;
    check_name("name", &name)?;
    if body.version.trim().is_empty() || body.version.len() > 128 {
        return Err(ApiError::invalid_field(
            "version",
            "must be 1–128 characters",
        ));
    }
    if body.artifact_uri.trim().is_empty() {
        return Err(ApiError::invalid_field("artifact_uri", "must not be empty"));
    }
    if let Some(d) = &body.digest
        && !d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::invalid_field(
            "digest",
            "must be sha256: followed by 64 hex digits",
        ));
    }
    let store = keeper.store();
    let who = keeper.principal().name.to_string();
    let now = state.clock.now();
    let version = ModelVersion {
        version: body.version.trim().to_owned(),
        artifact_uri: body.artifact_uri.trim().to_owned(),
        digest: body.digest,
        framework: body.framework,
        trained_at: body.trained_at,
        metrics: body.metrics,
        source: format!("attested:{who}"),
        first_seen: now,
        last_seen: now,
        metadata: body.metadata,
        problems: Vec::new(),
        run_id: body.run_id,
        aliases: body.aliases,
        stage: None,
    };
    // A conflict means a scan or a person saved the model between our read and our write.
    let mut attempt = 0;
    let registered = loop {
        match store
            .register_version(&name, version.clone(), &who, now)
            .await
        {
            Err(StoreError::Conflict) if attempt < 8 => attempt += 1,
            result => break result?,
        }
    };
    Ok(Json(json!({
        "model": name,
        "version": registered.version,
        "created": registered.created,
        "changed": registered.changed,
        "joined": registered.joined,
    })))
}

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
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<FormatQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    use steward_core::inventory::report::{self, ModelChange, ReportInput};
    let format = query.format.as_deref().unwrap_or("json");
    if !["json", "markdown", "html"].contains(&format) {
        return Err(ApiError::invalid_field(
            "format",
            "must be json, markdown or html",
        ));
    }
    let store = caller.may::<ReadRecords>(&state)?.store();
    let now = state.clock.now();
    let models = store.list_models().await?;
    let deployments: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
    let findings = crate::inventory::reconciliation(&store, false, now).await?;
    let all_changes = crate::inventory::approvable_changes(&store).await?;
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
    let templates = templates(&store).await?;
    let built = report::build(&ReportInput {
        models: &models,
        deployments: &deployments,
        findings: &findings,
        changes: &changes,
        templates: &templates,
        today: now.date_naive(),
        generated_at: now,
        tenant: store.tenant_id(),
        last_scan,
    });
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
        _ => Json(built).into_response(),
    })
}

/// The inventory as a CycloneDX 1.6 ML-BOM (JSON): model versions as `machine-learning-model`
/// components with model cards, datasets as `data` components, lineage as dependencies, and
/// Steward's governance fields as properties.
#[utoipa::path(get, path = "/api/v1/inventory/export", tag = "inventory", params(FormatQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<FormatQuery>,
) -> Result<Json<Value>, ApiError> {
    if query.format.as_deref().unwrap_or("cyclonedx") != "cyclonedx" {
        return Err(ApiError::invalid_field("format", "must be cyclonedx"));
    }
    let store = caller.may::<ReadRecords>(&state)?.store();
    let models = store.list_models().await?;
    let datasets: Vec<Dataset> = store.records(RecordKind::Dataset).await?;
    let runs: Vec<Run> = store.records(RecordKind::Run).await?;
    let deployments: Vec<Deployment> = store.records(RecordKind::Deployment).await?;
    let templates = templates(&store).await?;
    Ok(Json(inventory::cyclonedx::ml_bom(
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
    )))
}
