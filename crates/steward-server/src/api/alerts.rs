//! Alert intake: Prometheus Alertmanager webhooks and PagerDuty Events API v2-compatible alert
//! and change events, turned into signals that open, join or resolve incidents (see
//! [`crate::incidents`]), or, for a change event, into an audit record the incident timeline
//! can show.
//!
//! Each endpoint validates the whole payload before acting on any of it, so a bad payload is a
//! 4xx naming what is wrong and creates nothing. The payloads are the senders' formats, so they
//! arrive as JSON and are checked field by field here rather than through serde.

use super::body::JsonBody;
use super::incident_views::{AlertmanagerReceipt, PagerDutyReceipt};
use super::signals::{TARGET_LABELS, fresh_signal_key};
use crate::AppState;
use crate::auth::{Caller, SendSignals};
use crate::error::{ApiError, ErrorBody};
use crate::incidents::{self, find_target, update};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use steward_core::incident::{IncidentState, Severity, Signal};
use steward_core::submission::FieldError;
use steward_store::{AuditRecord, TenantStore};

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
    responses((status = 200, body = AlertmanagerReceipt), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn alertmanager(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<AlertmanagerReceipt>, ApiError> {
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
    Ok(Json(AlertmanagerReceipt {
        incidents: touched.iter().map(ToString::to_string).collect(),
        firing,
        resolved,
    }))
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
    responses((status = 202, body = PagerDutyReceipt), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pagerduty_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<PagerDutyReceipt>), ApiError> {
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
    let key = dedup.unwrap_or_else(|| fresh_signal_key(now));
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
        Json(PagerDutyReceipt::success("Event processed", Some(key))),
    ))
}

/// log so the incident timeline can show it.
#[utoipa::path(post, path = "/api/v1/integrations/pagerduty/v2/change/enqueue", tag = "incidents",
    request_body(content = Object, description = "PagerDuty Events API v2 change event"),
    responses((status = 202, body = PagerDutyReceipt), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pagerduty_change(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<PagerDutyReceipt>), ApiError> {
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
            subject_id: fresh_signal_key(now),
            outcome: "success",
            correlation_id: None,
            details: json!({"summary": summary, "at": at, "payload": payload, "links": body.get("links")}),
        }])
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PagerDutyReceipt::success("Change event processed", None)),
    ))
}
