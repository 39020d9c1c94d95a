//! Incidents over HTTP: alert intake (Prometheus Alertmanager webhooks, PagerDuty Events API
//! v2-compatible alert and change events), the incident lifecycle, containment plans and their
//! approval, reviews, detector rules and playbooks, and the response metrics.
//!
//! Intake endpoints validate the whole payload before acting on any of it, so a bad payload is a
//! 4xx naming what is wrong and creates nothing.

use super::body::{JsonBody, QueryParams};
use super::created::Created;
use super::page::{Page, PageQuery, Paged};
use super::views::IncidentSummaryView;
use crate::AppState;
use crate::auth::{
    ApproveContainment, Caller, HandleIncidents, KeepDetectors, ReadRecords, SendSignals,
};
use crate::error::{ApiError, ErrorBody};
use crate::incidents::{self, events_json, find_target, load, owners, update};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use steward_core::detect::{Detector, DetectorConfig};
use steward_core::incident::{
    Incident, IncidentId, IncidentState, Review, Severity, Signal, parse_actions,
};
use steward_core::metrics::Sample;
use steward_core::submission::FieldError;
use steward_store::{AuditRecord, IncidentFilter, NamedKind, SampleQuery, TenantStore};
use utoipa::{IntoParams, ToSchema};

fn parse_incident_id(text: &str) -> Result<IncidentId, ApiError> {
    IncidentId::parse(text)
        .ok_or_else(|| ApiError::NotFound(format!("'{text}' is not an incident id like INC-3")))
}

/// What every action on one incident starts from: who acts (not an auditor), on which incident,
/// through the caller's tenant, at what time.
struct Acting<'s> {
    who: steward_core::UserName,
    id: IncidentId,
    store: TenantStore<'s>,
    now: DateTime<Utc>,
}

impl<'s> Acting<'s> {
    fn new(state: &'s AppState, caller: &'s Caller, id: &str) -> Result<Acting<'s>, ApiError> {
        let permit = caller.may::<HandleIncidents>(state)?;
        Ok(Acting {
            who: permit.who().clone(),
            id: parse_incident_id(id)?,
            store: permit.store(),
            now: state.clock.now(),
        })
    }
}

fn view(incident: &Incident) -> Value {
    let mut value = serde_json::to_value(incident).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("needs_review".into(), json!(incident.needs_review()));
    }
    value
}

async fn view_with_history(
    store: &TenantStore<'_>,
    incident: &Incident,
) -> Result<Value, ApiError> {
    let mut value = view(incident);
    let history = store
        .audit_events_for("incident", &incident.id.to_string())
        .await?;
    value["history"] = events_json(history);
    Ok(value)
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn string_map(value: Option<&Value>) -> Option<BTreeMap<String, String>> {
    match value {
        None | Some(Value::Null) => Some(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect(),
        _ => None,
    }
}

fn timestamp(value: Option<&Value>) -> Option<DateTime<Utc>> {
    value
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// One Alertmanager alert, checked.
struct AlertIn {
    firing: bool,
    key: String,
    summary: String,
    severity: Severity,
    labels: BTreeMap<String, String>,
    started_at: DateTime<Utc>,
}

fn parse_alertmanager(body: &Value) -> Result<Vec<AlertIn>, Vec<FieldError>> {
    let Some(map) = body.as_object() else {
        return Err(vec![FieldError::new(
            "(body)",
            "must be an Alertmanager webhook payload (a JSON object)",
        )]);
    };
    let mut errors = Vec::new();
    if map.get("version").and_then(Value::as_str) != Some("4") {
        errors.push(FieldError::new(
            "version",
            "must be \"4\" (Alertmanager's webhook payload version)",
        ));
    }
    let group = text(map, "groupKey");
    if group.is_none() {
        errors.push(FieldError::new("groupKey", "is required"));
    }
    let common = string_map(map.get("commonLabels")).unwrap_or_default();
    let mut alerts = Vec::new();
    match map.get("alerts").and_then(Value::as_array) {
        None => errors.push(FieldError::new("alerts", "must be a list of alerts")),
        Some(list) if list.is_empty() => {
            errors.push(FieldError::new("alerts", "must not be empty"))
        }
        Some(list) => {
            for (i, alert) in list.iter().enumerate() {
                let path = |f: &str| format!("alerts[{i}].{f}");
                let Some(a) = alert.as_object() else {
                    errors.push(FieldError::new(format!("alerts[{i}]"), "must be an object"));
                    continue;
                };
                let status = a.get("status").and_then(Value::as_str);
                if !matches!(status, Some("firing" | "resolved")) {
                    errors.push(FieldError::new(
                        path("status"),
                        "must be firing or resolved",
                    ));
                }
                let Some(labels) = string_map(a.get("labels")) else {
                    errors.push(FieldError::new(
                        path("labels"),
                        "must map label names to strings",
                    ));
                    continue;
                };
                let annotations = string_map(a.get("annotations")).unwrap_or_default();
                let fingerprint = text(a, "fingerprint");
                if fingerprint.is_none() {
                    errors.push(FieldError::new(path("fingerprint"), "is required"));
                }
                let started = timestamp(a.get("startsAt"));
                if started.is_none() {
                    errors.push(FieldError::new(
                        path("startsAt"),
                        "must be an RFC 3339 timestamp",
                    ));
                }
                let (Some(fingerprint), Some(started_at), Some(group)) =
                    (fingerprint, started, group)
                else {
                    continue;
                };
                let mut all = common.clone();
                all.extend(labels);
                let summary = annotations
                    .get("summary")
                    .or_else(|| annotations.get("description"))
                    .or_else(|| all.get("alertname"))
                    .cloned()
                    .unwrap_or_else(|| format!("alert {fingerprint}"));
                alerts.push(AlertIn {
                    firing: status == Some("firing"),
                    key: format!("{group}/{fingerprint}"),
                    summary,
                    severity: Severity::from_external(
                        all.get("severity").map(String::as_str).unwrap_or("warning"),
                    ),
                    labels: all,
                    started_at,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(alerts)
    } else {
        Err(errors)
    }
}

/// Label names whose value may name the affected target, in order of preference.
const TARGET_LABELS: &[&str] = &["target", "deployment", "model", "service", "job"];

async fn target_of(
    store: &TenantStore<'_>,
    labels: &BTreeMap<String, String>,
) -> Result<Option<steward_core::TargetName>, ApiError> {
    let candidates: Vec<&str> = TARGET_LABELS
        .iter()
        .filter_map(|l| labels.get(*l).map(String::as_str))
        .collect();
    find_target(store, &candidates).await
}

/// Receive a Prometheus Alertmanager webhook (payload version 4). Alerts are de-duplicated on
/// group key and fingerprint, so a resend changes nothing; `resolved` alerts resolve their signal.
/// Authenticate with a `monitor` account's token (`http_config.authorization` in Alertmanager).
#[utoipa::path(post, path = "/api/v1/integrations/alertmanager", tag = "incidents",
    request_body(content = Object, description = "Alertmanager webhook payload, version 4"),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn alertmanager(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let permit = caller.may::<SendSignals>(&state)?;
    let alerts = parse_alertmanager(&body).map_err(ApiError::Invalid)?;
    let store = permit.store();
    let now = state.clock.now();
    let mut touched = Vec::new();
    let (mut firing, mut resolved) = (0, 0);
    for alert in alerts {
        if alert.firing {
            firing += 1;
            let signal = Signal {
                source: "alertmanager".into(),
                key: alert.key,
                summary: alert.summary,
                severity: alert.severity,
                target: target_of(&store, &alert.labels).await?,
                labels: alert.labels,
                started_at: alert.started_at,
                received_at: now,
                resolved_at: None,
            };
            touched.push(incidents::raise(&state, &store, signal).await?);
        } else {
            resolved += 1;
            if let Some(id) =
                incidents::resolve_signal(&state, &store, "alertmanager", &alert.key).await?
            {
                touched.push(id);
            }
        }
    }
    touched.sort();
    touched.dedup();
    Ok(Json(
        json!({"incidents": touched, "firing": firing, "resolved": resolved}),
    ))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// PagerDuty clients authenticate with the `routing_key` in the body; a Bearer header works too.
async fn pagerduty_caller(
    state: &AppState,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Caller, ApiError> {
    let token = bearer(headers)
        .or_else(|| body.get("routing_key").and_then(Value::as_str))
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "send a monitor account's token as `routing_key` (or `Authorization: Bearer`)"
                    .into(),
            )
        })?;
    Caller::from_token(state, token).await
}

/// A PagerDuty Events API v2 alert event: `trigger`, `acknowledge` or `resolve`, de-duplicated
/// on `dedup_key`. Answers like PagerDuty: 202 with the `dedup_key`.
#[utoipa::path(post, path = "/api/v1/integrations/pagerduty/v2/enqueue", tag = "incidents",
    request_body(content = Object, description = "PagerDuty Events API v2 event"),
    responses((status = 202, body = Object), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pagerduty_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = pagerduty_caller(&state, &headers, &body).await?;
    let source = caller.may::<SendSignals>(&state)?;
    let who = source.principal().name.clone();
    let Some(map) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "(body)",
            "must be a PagerDuty Events API v2 event object",
        ));
    };
    let mut errors = Vec::new();
    let action = map
        .get("event_action")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        errors.push(FieldError::new(
            "event_action",
            "must be trigger, acknowledge or resolve",
        ));
    }
    let dedup = map
        .get("dedup_key")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if dedup
        .as_ref()
        .is_some_and(|d| d.is_empty() || d.len() > 255)
    {
        errors.push(FieldError::new("dedup_key", "must be 1 to 255 characters"));
    }
    if action != "trigger" && dedup.is_none() {
        errors.push(FieldError::new(
            "dedup_key",
            "is required to acknowledge or resolve",
        ));
    }
    let payload = map.get("payload").and_then(Value::as_object);
    let mut trigger = None;
    if action == "trigger" {
        match payload {
            None => errors.push(FieldError::new("payload", "is required for a trigger")),
            Some(p) => {
                let summary = text(p, "summary");
                if summary.is_none_or(|s| s.len() > 1024) {
                    errors.push(FieldError::new(
                        "payload.summary",
                        "is required (at most 1024 characters)",
                    ));
                }
                if text(p, "source").is_none() {
                    errors.push(FieldError::new("payload.source", "is required"));
                }
                let severity = p.get("severity").and_then(Value::as_str);
                if !matches!(severity, Some("critical" | "error" | "warning" | "info")) {
                    errors.push(FieldError::new(
                        "payload.severity",
                        "must be critical, error, warning or info",
                    ));
                }
                if p.get("timestamp").is_some_and(|t| !t.is_null())
                    && timestamp(p.get("timestamp")).is_none()
                {
                    errors.push(FieldError::new(
                        "payload.timestamp",
                        "must be an RFC 3339 timestamp",
                    ));
                }
                trigger = Some(p);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let store = source.store();
    let now = state.clock.now();
    let key = dedup.unwrap_or_else(|| uuid_key(now));
    match (action, trigger) {
        ("trigger", Some(p)) => {
            let details = p.get("custom_details").and_then(Value::as_object);
            let mut labels = BTreeMap::new();
            for field in ["source", "component", "group", "class"] {
                if let Some(v) = text(p, field) {
                    labels.insert(field.to_owned(), v.to_owned());
                }
            }
            let mut candidates: Vec<&str> = Vec::new();
            if let Some(t) = details.and_then(|d| text(d, "target")) {
                candidates.push(t);
            }
            for field in ["component", "source", "group"] {
                if let Some(v) = text(p, field) {
                    candidates.push(v);
                }
            }
            let signal = Signal {
                source: "pagerduty".into(),
                key: key.clone(),
                summary: text(p, "summary").unwrap_or_default().to_owned(),
                severity: Severity::from_external(
                    p.get("severity")
                        .and_then(Value::as_str)
                        .unwrap_or("warning"),
                ),
                target: find_target(&store, &candidates).await?,
                labels,
                started_at: timestamp(p.get("timestamp")).unwrap_or(now),
                received_at: now,
                resolved_at: None,
            };
            incidents::raise(&state, &store, signal).await?;
        }
        ("acknowledge", _) => {
            if let Some(id) = store.incident_for_signal("pagerduty", &key).await? {
                update(&store, &id, |incident| {
                    if incident.state == IncidentState::Triggered {
                        Ok(incident.acknowledge(&who, now)?)
                    } else {
                        Ok(Vec::new())
                    }
                })
                .await?;
            }
        }
        _ => {
            incidents::resolve_signal(&state, &store, "pagerduty", &key).await?;
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": key})),
    ))
}

fn uuid_key(now: DateTime<Utc>) -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!(
        "{}-{}",
        now.timestamp_millis(),
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A PagerDuty Events API v2 change event (a deploy someone else did), recorded in the audit
/// log so the incident timeline can show it.
#[utoipa::path(post, path = "/api/v1/integrations/pagerduty/v2/change/enqueue", tag = "incidents",
    request_body(content = Object, description = "PagerDuty Events API v2 change event"),
    responses((status = 202, body = Object), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pagerduty_change(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = pagerduty_caller(&state, &headers, &body).await?;
    let source = caller.may::<SendSignals>(&state)?;
    let payload = body.get("payload").and_then(Value::as_object);
    let summary = payload.and_then(|p| text(p, "summary"));
    let Some(summary) = summary.filter(|s| s.len() <= 1024) else {
        return Err(ApiError::invalid_field(
            "payload.summary",
            "is required (at most 1024 characters)",
        ));
    };
    let now = state.clock.now();
    let at = payload
        .and_then(|p| timestamp(p.get("timestamp")))
        .unwrap_or(now);
    let store = source.store();
    store
        .record_events(&[AuditRecord {
            occurred_at: now,
            actor: source.principal().name.to_string(),
            action: "external_change.recorded".into(),
            subject_type: "external_change",
            subject_id: uuid_key(now),
            outcome: "success",
            correlation_id: None,
            details: json!({"summary": summary, "at": at, "payload": payload, "links": body.get("links")}),
        }])
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Change event processed"})),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentListQuery {
    /// Only triggered, acknowledged or contained incidents.
    pub open: Option<bool>,
}

/// List incidents, newest first, a page at a time: each as a summary (`GET /incidents/{id}`
/// shows the whole record).
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(IncidentListQuery, PageQuery),
    responses((status = 200, body = Page<IncidentSummaryView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<IncidentListQuery>,
) -> Result<Json<Page<IncidentSummaryView>>, ApiError> {
    let before: Option<u64> = page.after("incidents")?;
    let incidents = caller
        .may::<ReadRecords>(&state)?
        .store()
        .list_incidents_before(
            &IncidentFilter {
                open_only: query.open.unwrap_or(false),
                opened_since: None,
                limit: page.fetch(),
            },
            before,
        )
        .await?;
    let page = page.page("incidents", incidents, |i| i.id.number());
    Ok(Json(page.map(|i| IncidentSummaryView::from(&i))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenInput {
    pub title: String,
    /// sev1 … sev4
    pub severity: String,
    /// The affected models or deployments (registered targets).
    pub targets: Vec<String>,
    /// When the problem began (default: now).
    pub started_at: Option<DateTime<Utc>>,
}

/// Open an incident by hand (a person noticed before any monitor did).
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = OpenInput,
    responses((status = 201, body = Object, headers(("Location" = String, description = "the path of what was created"))), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn open(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<OpenInput>,
) -> Result<Created<Value>, ApiError> {
    let actor = caller.may::<HandleIncidents>(&state)?;
    let severity = Severity::parse(&body.severity)
        .ok_or_else(|| ApiError::invalid_field("severity", "must be sev1, sev2, sev3 or sev4"))?;
    if body.title.trim().is_empty() {
        return Err(ApiError::invalid_field("title", "must not be empty"));
    }
    let store = actor.store();
    let names: Vec<&str> = body.targets.iter().map(String::as_str).collect();
    let target = find_target(&store, &names).await?;
    if target.is_none() {
        return Err(ApiError::invalid_field(
            "targets",
            "must name at least one registered target",
        ));
    }
    let now = state.clock.now();
    let signal = Signal {
        source: "manual".into(),
        key: uuid_key(now),
        summary: body.title.trim().to_owned(),
        severity,
        target,
        labels: BTreeMap::from([("reported_by".to_owned(), actor.principal().name.to_string())]),
        started_at: body.started_at.unwrap_or(now),
        received_at: now,
        resolved_at: None,
    };
    let id = incidents::raise(&state, &store, signal).await?;
    let incident = load(&store, &id).await?;
    Ok(Created::at(
        format!("/api/v1/incidents/{id}"),
        view_with_history(&store, &incident).await?,
    ))
}

/// One incident with its timeline, suspects, containment, review and audit history.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "INC-<n>")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_incident_id(&id)?;
    let store = caller.may::<ReadRecords>(&state)?.store();
    let incident = load(&store, &id).await?;
    Ok(Json(view_with_history(&store, &incident).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActInput {
    #[serde(default)]
    pub action: String,
    pub comment: Option<String>,
    /// For `problem`: the problem record's name.
    pub problem: Option<String>,
}

/// Move an incident: `acknowledge`, `contain` (by hand), `resolve`, `close` (refused while a
/// SEV1/SEV2 or change-related incident owes its review), or `problem` (link a problem record).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/actions", tag = "incidents", request_body = ActInput,
    params(("id" = String, Path, description = "INC-<n>")),
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ActInput>,
) -> Result<Json<Value>, ApiError> {
    let Acting {
        who,
        id,
        store,
        now,
    } = Acting::new(&state, &caller, &id)?;
    let problems: Vec<String> = if body.action == "problem" {
        store
            .named(NamedKind::Problem)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    } else {
        Vec::new()
    };
    let incident = update(&store, &id, |incident| {
        Ok(match body.action.as_str() {
            "acknowledge" => incident.acknowledge(&who, now)?,
            "contain" => incident.contain(&who, body.comment.clone(), now)?,
            "resolve" => incident.resolve(&who, body.comment.clone(), now)?,
            "close" => incident.close(&who, now)?,
            "problem" => {
                let problem = body
                    .problem
                    .as_deref()
                    .map(str::trim)
                    .filter(|p| !p.is_empty() && p.len() <= 128)
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "problem",
                            "name the problem record (at most 128 characters)",
                        )
                    })?;
                if !problems.contains(&problem.to_owned()) {
                    return Err(ApiError::invalid_field(
                        "problem",
                        format!("no problem record '{problem}': create it with `steward problem create {problem} --title …`"),
                    ));
                }
                incident.link_problem(problem, &who, now)
            }
            other => {
                return Err(ApiError::invalid_field(
                    "action",
                    format!(
                        "'{other}' is not one of: acknowledge, contain, resolve, close, problem"
                    ),
                ));
            }
        })
    })
    .await?;
    Ok(Json(view_with_history(&store, &incident).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainmentInput {
    /// The actions, in order: `{"name", "kind": "rollback_change", "change": "CHG-n"}` or any step
    /// kind (`mlflow_alias`, `webhook`, `command`, …).
    #[schema(value_type = Option<Vec<Object>>)]
    pub actions: Option<Value>,
    /// A pre-approved playbook's name instead (SEV1 only: it runs at once).
    pub playbook: Option<String>,
}

/// Propose a containment plan for a manager who owns an affected target to approve, or run a
/// pre-approved playbook at once (SEV1).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/containment", tag = "incidents", request_body = ContainmentInput,
    params(("id" = String, Path, description = "INC-<n>")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn propose(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ContainmentInput>,
) -> Result<Json<Value>, ApiError> {
    let Acting {
        who,
        id,
        store,
        now,
    } = Acting::new(&state, &caller, &id)?;
    match (&body.actions, &body.playbook) {
        (Some(actions), None) => {
            let actions = parse_actions(actions).map_err(ApiError::Invalid)?;
            let incident = update(&store, &id, |incident| {
                Ok(incident.propose(actions.clone(), &who, now)?)
            })
            .await?;
            Ok(Json(view_with_history(&store, &incident).await?))
        }
        (None, Some(name)) => {
            let playbooks = store.named(NamedKind::Playbook).await?;
            let (_, doc) = playbooks
                .into_iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| {
                    ApiError::invalid_field("playbook", format!("no playbook named '{name}'"))
                })?;
            let actions = parse_actions(&doc["actions"]).map_err(ApiError::Invalid)?;
            update(&store, &id, |incident| {
                Ok(incident.run_playbook(name, actions.clone(), &who, now)?)
            })
            .await?;
            let incident = incidents::run_containment(&state, &store, &id).await?;
            Ok(Json(view_with_history(&store, &incident).await?))
        }
        _ => Err(ApiError::invalid_field(
            "actions",
            "give either actions or playbook",
        )),
    }
}

/// Approve the proposed containment plan — an ML manager who owns an affected model or
/// deployment, not its proposer — and run it: each action through the change executors, each
/// result an audit event; the incident is contained when all succeed.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/containment/approve", tag = "incidents",
    params(("id" = String, Path, description = "INC-<n>")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let actor = caller.may::<ApproveContainment>(&state)?;
    let principal = actor.principal();
    let id = parse_incident_id(&id)?;
    let store = actor.store();
    let now = state.clock.now();
    let current = load(&store, &id).await?;
    let owners = owners(&store, &current.targets).await?;
    update(&store, &id, |incident| {
        Ok(incident.approve_containment(&principal.name, &principal.roles, &owners, now)?)
    })
    .await?;
    let incident = incidents::run_containment(&state, &store, &id).await?;
    Ok(Json(view_with_history(&store, &incident).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    pub what_happened: String,
    pub why: String,
    /// What the change's risk assessment missed (required when the incident is change-related).
    #[serde(default)]
    pub risk_assessment_missed: String,
    /// Follow-up actions.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// Record the post-incident review of a resolved incident.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/review", tag = "incidents", request_body = ReviewInput,
    params(("id" = String, Path, description = "INC-<n>")),
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReviewInput>,
) -> Result<Json<Value>, ApiError> {
    let Acting {
        who,
        id,
        store,
        now,
    } = Acting::new(&state, &caller, &id)?;
    let incident = update(&store, &id, |incident| {
        Ok(incident.record_review(
            Review {
                what_happened: body.what_happened.trim().to_owned(),
                why: body.why.trim().to_owned(),
                risk_assessment_missed: body.risk_assessment_missed.trim().to_owned(),
                actions: body.actions.clone(),
                by: who.clone(),
                at: now,
            },
            now,
        )?)
    })
    .await?;
    Ok(Json(view_with_history(&store, &incident).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Incidents opened since (default: 30 days ago).
    pub since: Option<DateTime<Utc>>,
}

fn mean_minutes(spans: &[Duration]) -> Option<f64> {
    (!spans.is_empty()).then(|| {
        spans.iter().map(|d| d.num_seconds() as f64).sum::<f64>() / spans.len() as f64 / 60.0
    })
}

/// Mean time to acknowledge, contain and resolve; incidents per target; the share that is
/// change-related; and the change failure rate (changes implemented in the period that failed,
/// were rolled back, or are a strong suspect of an incident).
#[utoipa::path(get, path = "/api/v1/incident-metrics", tag = "incidents", params(MetricsQuery),
    responses((status = 200, body = Object)), security(("token" = [])))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<MetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let since = query
        .since
        .unwrap_or_else(|| state.clock.now() - Duration::days(30));
    let incidents = store
        .list_incidents(&IncidentFilter {
            open_only: false,
            opened_since: Some(since),
            limit: 5000,
        })
        .await?;
    let span = |f: fn(&Incident) -> Option<DateTime<Utc>>| -> Vec<Duration> {
        incidents
            .iter()
            .filter_map(|i| f(i).map(|t| t - i.opened_at))
            .collect()
    };
    let mut per_target: BTreeMap<String, u64> = BTreeMap::new();
    for i in &incidents {
        for t in &i.targets {
            *per_target.entry(t.to_string()).or_default() += 1;
        }
    }
    let related = incidents.iter().filter(|i| i.change_related).count();
    let changes = store
        .list_changes(&steward_store::ChangeFilter {
            created_since: Some(since - Duration::days(90)),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let implemented: Vec<_> = changes
        .iter()
        .filter(|c| c.implemented_at().is_some_and(|t| t >= since))
        .collect();
    let mut failed = 0;
    for c in &implemented {
        let linked = store.incidents_linked_to(&c.id).await?;
        if c.outcome.as_deref() == Some("failed") || linked.iter().any(|(_, _, strong)| *strong) {
            failed += 1;
        }
    }
    Ok(Json(json!({
        "since": since,
        "incidents": incidents.len(),
        "mean_minutes_to_acknowledge": mean_minutes(&span(|i| i.acknowledged_at)),
        "mean_minutes_to_contain": mean_minutes(&span(|i| i.contained_at)),
        "mean_minutes_to_resolve": mean_minutes(&span(|i| i.resolved_at)),
        "incidents_per_target": per_target,
        "change_related_share": if incidents.is_empty() { None } else { Some(related as f64 / incidents.len() as f64) },
        "changes_implemented": implemented.len(),
        "change_failure_rate": if implemented.is_empty() { None } else { Some(failed as f64 / implemented.len() as f64) },
    })))
}

/// A detector rule: which metric series it watches and what it raises.
#[derive(Debug, Clone, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectorRule {
    pub metric: String,
    /// Labels a series must carry to be watched (others may be present).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `{"detector": "robust_z" | "page_hinkley", …params}`.
    #[schema(value_type = Object)]
    pub config: Value,
    /// The affected target; default: the series' `target`, `deployment` or `model` label.
    pub target: Option<String>,
    /// sev1 … sev4 (default sev3).
    pub severity: Option<String>,
}

/// Create or replace a detector rule (managers, compliance officers, admins). Every pushed sample
/// of a watched series is scored; an anomaly raises a `detector` signal, which opens or joins an
/// incident; its end resolves the signal.
#[utoipa::path(put, path = "/api/v1/detectors/{name}", tag = "incidents", request_body = DetectorRule,
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_detector(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(rule): JsonBody<DetectorRule>,
) -> Result<Json<Value>, ApiError> {
    let keeper = caller.may::<KeepDetectors>(&state)?;
    check_name(&name)?;
    let config: DetectorConfig = serde_json::from_value(rule.config.clone())
        .map_err(|e| ApiError::invalid_field("config", e.to_string()))?;
    config
        .validate()
        .map_err(|e| ApiError::invalid_field("config", e))?;
    if let Some(s) = &rule.severity
        && Severity::parse(s).is_none()
    {
        return Err(ApiError::invalid_field(
            "severity",
            "must be sev1, sev2, sev3 or sev4",
        ));
    }
    let document = serde_json::to_value(&rule).unwrap_or_default();
    keeper
        .store()
        .put_named(
            NamedKind::DetectorRule,
            &name,
            &document,
            keeper.principal().name.as_str(),
            state.clock.now(),
        )
        .await?;
    state
        .detectors
        .forget_rule(caller.principal().tenant.as_str(), &name);
    Ok(Json(json!({"name": name, "rule": document})))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid_field(
            "name",
            "must be 1 to 64 lowercase letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}

/// A detector rule with its name, as `PUT /detectors/{name}` answers it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DetectorRuleView {
    pub name: String,
    #[schema(value_type = Object)]
    pub rule: Value,
}

/// The tenant's detector rules by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/detectors", tag = "incidents", params(PageQuery),
    responses((status = 200, body = Page<DetectorRuleView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_detectors(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<DetectorRuleView>>, ApiError> {
    let after: Option<String> = page.after("detectors")?;
    let rules = caller
        .may::<ReadRecords>(&state)?
        .store()
        .named_after(NamedKind::DetectorRule, after.as_deref(), page.fetch())
        .await?;
    let page = page.page("detectors", rules, |(name, _)| name.clone());
    Ok(Json(
        page.map(|(name, rule)| DetectorRuleView { name, rule }),
    ))
}

#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookInput {
    /// The containment actions it runs (see `POST /incidents/{id}/containment`).
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    pub description: Option<String>,
}

/// Create or replace a pre-approved containment playbook (managers, compliance officers,
/// admins): it may run at once for SEV1 incidents, recorded as such.
#[utoipa::path(put, path = "/api/v1/playbooks/{name}", tag = "incidents", request_body = PlaybookInput,
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put_playbook(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PlaybookInput>,
) -> Result<Json<Value>, ApiError> {
    let keeper = caller.may::<KeepDetectors>(&state)?;
    check_name(&name)?;
    parse_actions(&body.actions).map_err(ApiError::Invalid)?;
    let document = serde_json::to_value(&body).unwrap_or_default();
    keeper
        .store()
        .put_named(
            NamedKind::Playbook,
            &name,
            &document,
            keeper.principal().name.as_str(),
            state.clock.now(),
        )
        .await?;
    Ok(Json(json!({"name": name, "playbook": document})))
}

/// Detector state per (tenant, rule, series), kept in memory; a new series warms up from its
/// stored history.
#[derive(Debug, Clone, Default)]
pub struct DetectorStates(Arc<Mutex<HashMap<SeriesKey, Series>>>);

/// (tenant, rule, series labels).
type SeriesKey = (String, String, String);

#[derive(Debug, Clone)]
struct Series {
    detector: Detector,
    /// The open episode's signal key, while the series is anomalous.
    episode: Option<String>,
    last: DateTime<Utc>,
}

impl DetectorStates {
    fn forget_rule(&self, tenant: &str, rule: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|(t, r, _), _| !(t == tenant && r == rule));
        }
    }
}

/// What a batch of samples did to the detectors: signals to raise and to resolve.
enum Outcome {
    Raise(Signal),
    Resolve(String),
}

/// Feeds pushed samples to the tenant's detector rules; anomalies raise signals.
pub async fn detect(
    state: &AppState,
    store: &TenantStore<'_>,
    samples: &[Sample],
) -> Result<(), ApiError> {
    let rules = store.named(NamedKind::DetectorRule).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let tenant = store.tenant_id().to_owned();
    let mut outcomes = Vec::new();
    for (name, doc) in rules {
        let Ok(rule) = serde_json::from_value::<DetectorRule>(doc) else {
            continue;
        };
        let Ok(config) = serde_json::from_value::<DetectorConfig>(rule.config.clone()) else {
            continue;
        };
        let mut series: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
        for s in samples {
            if s.name == rule.metric && rule.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
            {
                series.entry(s.labels_key()).or_default().push(s);
            }
        }
        for (labels_key, mut points) in series {
            points.sort_by_key(|s| s.time);
            let key = (tenant.clone(), name.clone(), labels_key.clone());
            let known = state
                .detectors
                .0
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            let mut current = match known {
                Some(s) => s,
                None => {
                    // Warm up on the stored history before this batch.
                    let first = points[0].time;
                    let history = store
                        .samples(&SampleQuery {
                            name: rule.metric.clone(),
                            labels: points[0].labels.clone(),
                            from: first - Duration::days(1),
                            to: first,
                            limit: 5000,
                        })
                        .await?;
                    let mut detector = config.build();
                    for h in history.iter().filter(|h| h.labels_key() == labels_key) {
                        detector.update(h.time.timestamp_millis() as f64 / 1000.0, h.value);
                    }
                    Series {
                        detector,
                        episode: None,
                        last: first - Duration::milliseconds(1),
                    }
                }
            };
            for p in points {
                if p.time <= current.last {
                    continue; // a resend or an older sample: already scored
                }
                current.last = p.time;
                let d = current
                    .detector
                    .update(p.time.timestamp_millis() as f64 / 1000.0, p.value);
                if d.onset && current.episode.is_none() {
                    let signal_key = format!("{name}/{labels_key}/{}", p.time.timestamp_millis());
                    current.episode = Some(signal_key.clone());
                    let mut candidates: Vec<&str> =
                        rule.target.iter().map(String::as_str).collect();
                    candidates.extend(
                        TARGET_LABELS
                            .iter()
                            .filter_map(|l| p.labels.get(*l).map(String::as_str)),
                    );
                    let target = find_target(store, &candidates).await?;
                    outcomes.push(Outcome::Raise(Signal {
                        source: "detector".into(),
                        key: signal_key,
                        summary: format!(
                            "{} anomalous on {} (rule {name}, score {:.2})",
                            rule.metric, labels_key, d.score
                        ),
                        severity: rule
                            .severity
                            .as_deref()
                            .and_then(Severity::parse)
                            .unwrap_or(Severity::Sev3),
                        target,
                        labels: p.labels.clone(),
                        started_at: p.time,
                        received_at: state.clock.now(),
                        resolved_at: None,
                    }));
                } else if !d.anomaly
                    && let Some(open) = current.episode.take()
                {
                    outcomes.push(Outcome::Resolve(open));
                }
            }
            if let Ok(mut map) = state.detectors.0.lock() {
                map.insert(key, current);
            }
        }
    }
    for outcome in outcomes {
        match outcome {
            Outcome::Raise(signal) => {
                incidents::raise(state, store, signal).await?;
            }
            Outcome::Resolve(key) => {
                incidents::resolve_signal(state, store, "detector", &key).await?;
            }
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemInput {
    pub title: String,
    pub description: Option<String>,
}

/// Create or retitle a problem record: the root cause behind recurring incidents.
#[utoipa::path(put, path = "/api/v1/problems/{name}", tag = "incidents", request_body = ProblemInput,
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn put_problem(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ProblemInput>,
) -> Result<Json<Value>, ApiError> {
    let actor = caller.may::<HandleIncidents>(&state)?;
    check_name(&name)?;
    if body.title.trim().is_empty() {
        return Err(ApiError::invalid_field("title", "must not be empty"));
    }
    let store = actor.store();
    let fix = store
        .named_one(NamedKind::Problem, &name)
        .await?
        .and_then(|d| d.get("fix_change").cloned())
        .unwrap_or(Value::Null);
    let document =
        json!({"title": body.title.trim(), "description": body.description, "fix_change": fix});
    store
        .put_named(
            NamedKind::Problem,
            &name,
            &document,
            actor.principal().name.as_str(),
            state.clock.now(),
        )
        .await?;
    problem_view(&store, &name).await.map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixInput {
    /// The change that fixes the problem for good, `CHG-<n>`.
    pub change: String,
}

/// Link the change raised as the problem's permanent fix.
#[utoipa::path(post, path = "/api/v1/problems/{name}/fix", tag = "incidents", request_body = FixInput,
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn fix_problem(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<FixInput>,
) -> Result<Json<Value>, ApiError> {
    let actor = caller.may::<HandleIncidents>(&state)?;
    let store = actor.store();
    let mut document = store
        .named_one(NamedKind::Problem, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no problem record '{name}'")))?;
    let change = steward_core::ChangeId::parse(&body.change)
        .ok_or_else(|| ApiError::invalid_field("change", "must be a change id like CHG-12"))?;
    if store.get_change(&change).await?.is_none() {
        return Err(ApiError::invalid_field(
            "change",
            format!("no change {change}: raise the fix as a change first"),
        ));
    }
    document["fix_change"] = json!(change);
    store
        .put_named(
            NamedKind::Problem,
            &name,
            &document,
            actor.principal().name.as_str(),
            state.clock.now(),
        )
        .await?;
    problem_view(&store, &name).await.map(Json)
}

/// A problem record with its incidents and its fix's state.
#[utoipa::path(get, path = "/api/v1/problems/{name}", tag = "incidents",
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get_problem(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    problem_view(&caller.may::<ReadRecords>(&state)?.store(), &name)
        .await
        .map(Json)
}

async fn problem_view(store: &TenantStore<'_>, name: &str) -> Result<Value, ApiError> {
    let mut document = store
        .named_one(NamedKind::Problem, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no problem record '{name}'")))?;
    let incidents = store
        .list_incidents(&IncidentFilter {
            open_only: false,
            opened_since: None,
            limit: 5000,
        })
        .await?;
    // Oldest first: the problem's history in order.
    let linked: Vec<Value> = incidents
        .iter()
        .rev()
        .filter(|i| i.problem.as_deref() == Some(name))
        .map(|i| json!({"id": i.id, "state": i.state, "severity": i.severity, "title": i.title, "opened_at": i.opened_at}))
        .collect();
    let fix_state = match document
        .get("fix_change")
        .and_then(Value::as_str)
        .and_then(steward_core::ChangeId::parse)
    {
        Some(change) => store
            .get_change(&change)
            .await?
            .map(|c| c.state.to_string()),
        None => None,
    };
    document["name"] = json!(name);
    document["incidents"] = Value::Array(linked);
    document["fix_state"] = json!(fix_state);
    Ok(document)
}
