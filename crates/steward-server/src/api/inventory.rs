//! The model inventory over HTTP: models with their fields, provenance, versions and
//! completeness; point-in-time reads from the audit history (`?at=`); attestations by people;
//! metadata templates; and scan results uploaded by `steward inventory scan`.

use super::body::{JsonBody, QueryParams};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use steward_core::inventory::{self, Model, ModelVersion, Templates};
use steward_store::{NamedKind, StoreError, TenantStore};
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

fn summary(model: &Model, templates: &Templates, day: NaiveDate) -> Value {
    json!({
        "name": model.name,
        "status": model.status(),
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
pub struct ModelsQuery {
    /// development, validation, production or retired.
    pub status: Option<String>,
    /// As the inventory recorded it at this time (from the audit history).
    pub at: Option<DateTime<Utc>>,
}

/// Every model with its status, completeness and whether its validation is current — now, or
/// as recorded at `at`.
#[utoipa::path(get, path = "/api/v1/models", tag = "inventory", params(ModelsQuery),
    responses((status = 200, body = [Object])), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ModelsQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    if let Some(s) = &query.status
        && !inventory::STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid_field(
            "status",
            "must be development, validation, production or retired",
        ));
    }
    let store = caller.store(&state.store);
    let templates = templates(&store).await?;
    let current = store.list_models().await?;
    let (models, day) = match query.at {
        None => (current, state.clock.now().date_naive()),
        Some(at) => {
            let mut then = Vec::new();
            for m in &current {
                if let Some(old) = store.model_at(&m.name, at).await? {
                    then.push(old);
                }
            }
            (then, at.date_naive())
        }
    };
    Ok(Json(
        models
            .iter()
            .filter(|m| query.status.as_deref().is_none_or(|s| m.status() == s))
            .map(|m| summary(m, &templates, day))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelQuery {
    pub at: Option<DateTime<Utc>>,
}

/// One model: fields with provenance, versions, completeness, and its audit history.
#[utoipa::path(get, path = "/api/v1/models/{name}", tag = "inventory", params(("name" = String, Path), ModelQuery),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ModelQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = caller.store(&state.store);
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
    if query.at.is_none() {
        let history = store.audit_events_for("model", &name).await?;
        value["history"] = json!(history
            .into_iter()
            .map(|e| json!({"at": e.occurred_at, "actor": e.actor, "action": e.action, "changed": e.details.get("changed")}))
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
    store.save_model(model, action, actor, changed).await
}

/// State a model's fields (managers, compliance officers, admins): each a known field of its
/// kind, recorded as attested by the caller; `null` clears one. Creates the model if new.
#[utoipa::path(put, path = "/api/v1/models/{name}", tag = "inventory",
    request_body(content = Object, description = "field → value, e.g. {\"purpose\": \"…\", \"risk_tier\": \"high\"}"),
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn attest(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let keeper = caller.as_incident_keeper()?;
    if !inventory::valid_name(&name) {
        return Err(ApiError::invalid_field(
            "name",
            "must be 1–128 lowercase letters, digits, '-', '_' or '.'",
        ));
    }
    let values = inventory::check_fields(&body).map_err(ApiError::Invalid)?;
    let store = caller.store(&state.store);
    let who = keeper.principal().name.clone();
    for _ in 0..8 {
        let now = state.clock.now();
        let existing = store.get_model(&name).await?;
        let created = existing.is_none();
        let mut model = existing.unwrap_or_else(|| Model::new(&name, now));
        let before = model.status().to_owned();
        let changed = model.attest(values.clone(), &who, now);
        if changed.is_empty() && !created {
            break;
        }
        match save(&store, &model, created, &before, who.as_str(), &changed).await {
            Ok(()) => break,
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let templates = templates(&store).await?;
    let model = store
        .get_model(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no model {name}")))?;
    Ok(Json(detail(
        &model,
        &templates,
        state.clock.now().date_naive(),
    )))
}

/// The metadata templates: mandatory fields per risk tier and per regulatory tag.
#[utoipa::path(get, path = "/api/v1/inventory/templates", tag = "inventory",
    responses((status = 200, body = Object)), security(("token" = [])))]
pub async fn get_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let t = templates(&caller.store(&state.store)).await?;
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
    let officer = caller.as_privacy_officer()?;
    let t: Templates = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid_field("(body)", e.to_string()))?;
    t.validate().map_err(ApiError::Invalid)?;
    caller
        .store(&state.store)
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
    /// Where the artifacts were found: `files:<host>:<dir>`.
    pub source: String,
    /// The scanned root, for artifact URIs.
    pub root: String,
    /// The artifacts as `steward-discovery` reports them.
    #[schema(value_type = Vec<Object>)]
    pub artifacts: Vec<steward_discovery::Artifact>,
}

/// Record what a file scan found: each artifact becomes a version of the model it names (its
/// metadata's name, else its folder's, else its file's), created in `development` if new;
/// re-sending the same scan changes nothing but "last seen".
#[utoipa::path(post, path = "/api/v1/inventory/scans", tag = "inventory", request_body = ScanInput,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ScanInput>,
) -> Result<Json<Value>, ApiError> {
    let keeper = caller.as_incident_keeper()?;
    if body.source.trim().is_empty() || body.source.len() > 1000 {
        return Err(ApiError::invalid_field(
            "source",
            "name where the artifacts were found (at most 1000 characters)",
        ));
    }
    let store = caller.store(&state.store);
    let who = keeper.principal().name.to_string();
    let mut grouped: BTreeMap<String, Vec<&steward_discovery::Artifact>> = BTreeMap::new();
    for a in &body.artifacts {
        let named = a
            .metadata
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let folder = a
            .path
            .parent()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned());
        let stem = a
            .path
            .file_stem()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = inventory::name_from(&named.or(folder).unwrap_or(stem));
        grouped.entry(name).or_default().push(a);
    }
    let (mut created, mut updated, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    let mut problems = Vec::new();
    for (name, artifacts) in grouped {
        for _ in 0..8 {
            let now = state.clock.now();
            let existing = store.get_model(&name).await?;
            let is_new = existing.is_none();
            let mut model = existing.unwrap_or_else(|| Model::new(&name, now));
            let before = model.status().to_owned();
            let mut changed = Vec::new();
            for a in &artifacts {
                let version = ModelVersion {
                    version: a
                        .digest
                        .as_deref()
                        .map(|d| d.trim_start_matches("sha256:").chars().take(12).collect())
                        .unwrap_or_else(|| a.path.display().to_string()),
                    artifact_uri: format!(
                        "file://{}/{}",
                        body.root.trim_end_matches('/'),
                        a.path.display()
                    ),
                    digest: a.digest.clone(),
                    framework: a
                        .metadata
                        .get("framework")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    trained_at: None,
                    metrics: BTreeMap::new(),
                    source: body.source.clone(),
                    first_seen: now,
                    last_seen: now,
                    metadata: json!({"format": a.format, "size": a.size, "path": a.path, "metadata": a.metadata}),
                    problems: a.problems.clone(),
                };
                if model.see_version(version, now) {
                    changed.push("versions".to_owned());
                }
                for field in ["architecture", "framework", "license", "base_model"] {
                    if let Some(v) = a.metadata.get(field).cloned()
                        && model.discover(field, v, &body.source, now)
                    {
                        changed.push(field.to_owned());
                    }
                }
                for p in &a.problems {
                    problems.push(json!({"path": a.path, "problem": p}));
                }
            }
            changed.sort();
            changed.dedup();
            if changed.is_empty() && !is_new {
                // Only "last seen" moved: recorded, so the inventory knows it is still there.
                match store.save_model(&model, "model.seen", &who, &[]).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
                unchanged.push(name.clone());
                break;
            }
            match save(&store, &model, is_new, &before, &who, &changed).await {
                Ok(()) => {
                    if is_new {
                        created.push(name.clone())
                    } else {
                        updated.push(name.clone())
                    }
                    break;
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Json(
        json!({"source": body.source, "artifacts": body.artifacts.len(), "created": created,
                   "updated": updated, "unchanged": unchanged, "problems": problems}),
    ))
}
