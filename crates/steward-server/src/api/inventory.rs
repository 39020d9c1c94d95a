//! The model inventory's records over HTTP: models with their fields, provenance, versions and
//! completeness; point-in-time reads from the audit history (`?at=`); attestations by people;
//! versions registered by pipelines; and the metadata templates completeness is judged by.
//! What scans found lives in [`super::inventory_scans`]; the report and the CycloneDX export in
//! [`super::inventory_reports`].

use super::body::{JsonBody, QueryParams};
use super::inventory_views::{
    InventoryTemplatesView, ModelApprovalView, ModelDetailView, ModelHistoryEntryView,
    ModelSummaryView, ModelView, RegisteredVersionView, ServingDeploymentView,
};
use super::page::{Page, PageQuery, PageRequest, Paged};
use crate::AppState;
use crate::auth::{AttestModels, Caller, KeepTemplates, ReadRecords, RegisterVersions};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use steward_core::inventory::{
    self, Dataset, Deployment, Model, ModelSummary, ModelVersion, Run, Templates,
};
use steward_store::{NamedKind, RecordKind, StoreError, TenantStore};
use utoipa::{IntoParams, ToSchema};

/// The metadata templates the tenant keeps, else the standard ones.
pub(super) async fn templates(store: &TenantStore<'_>) -> Result<Templates, ApiError> {
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
pub(super) fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if inventory::valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be 1–128 lowercase letters, digits, '-', '_' or '.'",
        ))
    }
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
    responses((status = 200, body = Page<ModelSummaryView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<ModelsQuery>,
) -> Result<Json<Page<ModelSummaryView>>, ApiError> {
    check_models_query(&query)?;
    let store = caller.may::<ReadRecords>(&state)?.store();
    Ok(Json(list_models(&state, &store, &page, &query).await?))
}

/// Refuses a models filter the list cannot apply (a 422 naming it).
pub(crate) fn check_models_query(query: &ModelsQuery) -> Result<(), ApiError> {
    if let Some(s) = &query.status
        && !inventory::STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid_field(
            "status",
            "must be development, validation, production or retired",
        ));
    }
    Ok(())
}

/// One page of the models list, as `GET /api/v1/models` answers it (the portal's `/models`
/// shows the same page); `query` has passed [`check_models_query`].
pub(crate) async fn list_models(
    state: &AppState,
    store: &TenantStore<'_>,
    page: &PageRequest,
    query: &ModelsQuery,
) -> Result<Page<ModelSummaryView>, ApiError> {
    let templates = templates(store).await?;
    let after: Option<String> = page.after("models")?;
    let Some(at) = query.at else {
        let models = store
            .model_summaries_after(query.status.as_deref(), after.as_deref(), page.fetch())
            .await?;
        let day = state.clock.now().date_naive();
        let page = page.page("models", models, |m| m.name.clone());
        return Ok(page.map(|m| ModelSummaryView::new(&m, &templates, day)));
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
    let changes = crate::inventory::approvable_changes(store).await?;
    let day = at.date_naive();
    Ok(page.map(|m| {
        let version = m.production().map(|v| v.reference());
        let approval = inventory::approval_at(&changes, &m.name, version, at);
        ModelSummaryView {
            approval: Some(approval.as_ref().map(ModelApprovalView::from)),
            ..ModelSummaryView::new(&m, &templates, day)
        }
    }))
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
    responses((status = 200, body = ModelDetailView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ModelQuery>,
) -> Result<Json<ModelDetailView>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    Ok(Json(model_detail(&state, &store, &name, &query).await?))
}

/// One model as `GET /api/v1/models/{name}` answers it (the portal's `/models/{name}` shows
/// the same view); a name the tenant does not have is a 404.
pub(crate) async fn model_detail(
    state: &AppState,
    store: &TenantStore<'_>,
    name: &str,
    query: &ModelQuery,
) -> Result<ModelDetailView, ApiError> {
    let templates = templates(store).await?;
    let (model, day) = match query.at {
        None => (store.get_model(name).await?, state.clock.now().date_naive()),
        Some(at) => (store.model_at(name, at).await?, at.date_naive()),
    };
    let model = model.ok_or_else(|| match query.at {
        Some(at) => ApiError::NotFound(format!("the inventory had no model {name} at {at}")),
        None => ApiError::NotFound(format!("no model {name}")),
    })?;
    let changes = crate::inventory::approvable_changes(store).await?;
    let production = model.production_version();
    let approval = inventory::approval_at(
        &changes,
        &model.name,
        production.map(|v| v.reference()),
        query.at.unwrap_or_else(|| state.clock.now()),
    );
    let mut view = ModelDetailView {
        model: ModelView::new(&model, &templates, day),
        production_version: production.map(|v| v.version.clone()),
        approval: approval.as_ref().map(ModelApprovalView::from),
        deployments: None,
        lineage: None,
        history: None,
    };
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
        view.deployments = Some(
            deployments
                .iter()
                .filter_map(|d| {
                    let (m, version) = inventory::match_deployment(d, &models)?;
                    (m.name == model.name).then(|| ServingDeploymentView {
                        deployment: d.into(),
                        serves_version: version,
                    })
                })
                .collect(),
        );
        view.lineage =
            Some((&inventory::lineage(&model, &models, &runs, &datasets, &deployments)).into());
    }
    if query.history {
        let history = store.audit_events_for("model", name).await?;
        view.history = Some(
            history
                .iter()
                .filter(|e| query.at.is_none_or(|at| e.occurred_at <= at))
                .map(ModelHistoryEntryView::from)
                .collect(),
        );
    }
    Ok(view)
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
    responses((status = 200, body = ModelView), (status = 201, body = ModelView), (status = 403, body = ErrorBody),
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
    let body = Json(ModelView::new(
        &model,
        &templates,
        state.clock.now().date_naive(),
    ));
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
    responses((status = 200, body = InventoryTemplatesView)), security(("token" = [])))]
pub async fn get_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<InventoryTemplatesView>, ApiError> {
    let t = templates(&caller.may::<ReadRecords>(&state)?.store()).await?;
    Ok(Json((&t).into()))
}

/// Replace the metadata templates (compliance officers and admins).
#[utoipa::path(put, path = "/api/v1/inventory/templates", tag = "inventory",
    request_body(content = Object, description = "{\"tiers\": {\"high\": [fields]}, \"tags\": {\"eu-ai-act-high-risk\": [fields]}}"),
    responses((status = 200, body = InventoryTemplatesView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_templates(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<InventoryTemplatesView>, ApiError> {
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
    Ok(Json((&t).into()))
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
    responses((status = 200, body = RegisteredVersionView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn register_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<VersionInput>,
) -> Result<Json<RegisteredVersionView>, ApiError> {
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
    Ok(Json(RegisteredVersionView::new(&name, &registered)))
}
