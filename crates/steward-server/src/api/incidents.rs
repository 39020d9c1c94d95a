//! Incidents over HTTP: listing and opening them, their lifecycle (acknowledge, contain,
//! resolve, close, link a problem record), containment plans and their approval, the
//! post-incident review, and the response metrics.
//!
//! Signals from monitors arrive through [`super::alerts`] and [`super::detectors`].
//! `steward_core::incident` decides each step and `crate::incidents` loads, saves and runs;
//! every answer about one incident is an [`IncidentView`] with its audit history.

use super::body::{JsonBody, QueryParams};
use super::created::Created;
use super::incident_views::{IncidentMetricsView, IncidentView, SeverityMetricsView};
use super::page::{Page, PageQuery, PageRequest, Paged};
use super::signals::fresh_signal_key;
use super::views::IncidentSummaryView;
use crate::AppState;
use crate::auth::{ApproveContainment, Caller, HandleIncidents, Permit, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use crate::incidents::{self, find_target, load, owners, update};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::TargetName;
use steward_core::incident::{
    Incident, IncidentId, IncidentState, Review, Severity, Signal, parse_actions,
};
use steward_core::submission::FieldError;
use steward_store::{IncidentFilter, NamedKind, TenantStore};
use utoipa::{IntoParams, ToSchema};

pub(crate) fn parse_incident_id(text: &str) -> Result<IncidentId, ApiError> {
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

/// The incident as the API answers it: the record, whether it owes a review, its history.
pub(crate) async fn incident_view(
    store: &TenantStore<'_>,
    incident: &Incident,
) -> Result<IncidentView, ApiError> {
    let history = store
        .audit_events_for("incident", &incident.id.to_string())
        .await?;
    Ok(IncidentView::new(incident, history))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentListQuery {
    /// Only triggered, acknowledged or contained incidents.
    pub open: Option<bool>,
    /// Only incidents in this state: triggered, acknowledged, contained, resolved or closed.
    pub state: Option<String>,
    /// Only incidents of this severity: sev1, sev2, sev3 or sev4.
    pub severity: Option<String>,
    /// Only incidents affecting this target (a model or deployment).
    pub target: Option<String>,
}

/// The store query for one page of the incident list and the number the page starts below:
/// `query`'s filters, each bad one named (422), from where `page`'s cursor points. The API's
/// list and the portal's both read it; [`PageRequest::page`] with the list name `incidents` and
/// the incident number as key makes the page of what it returns.
pub(crate) fn incident_filter(
    query: &IncidentListQuery,
    page: &PageRequest,
) -> Result<(IncidentFilter, Option<u64>), ApiError> {
    let before: Option<u64> = page.after("incidents")?;
    let mut errors = Vec::new();
    let state = query.state.as_deref().and_then(|s| {
        let parsed = IncidentState::parse(s);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "state",
                format!(
                    "'{s}' is not one of: triggered, acknowledged, contained, resolved, closed"
                ),
            ));
        }
        parsed
    });
    let severity = query.severity.as_deref().and_then(|s| {
        let parsed = Severity::parse(s);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "severity",
                format!("'{s}' is not one of: sev1, sev2, sev3, sev4"),
            ));
        }
        parsed
    });
    let target = query
        .target
        .as_deref()
        .map(TargetName::parse)
        .transpose()
        .map_err(|e| errors.push(FieldError::new("target", e.to_string())))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    Ok((
        IncidentFilter {
            open_only: query.open.unwrap_or(false),
            state,
            severity,
            target,
            opened_since: None,
            limit: page.fetch(),
        },
        before,
    ))
}

/// List incidents, newest first, a page at a time: each as a summary (`GET /incidents/{id}`
/// shows the whole record). Filters combine: `open`, `state`, `severity`, `target`.
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
    let (filter, before) = incident_filter(&query, &page)?;
    let incidents = caller
        .may::<ReadRecords>(&state)?
        .store()
        .list_incidents_before(&filter, before)
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
    responses((status = 201, body = IncidentView, headers(("Location" = String, description = "the path of what was created"))), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn open(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<OpenInput>,
) -> Result<Created<IncidentView>, ApiError> {
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
        key: fresh_signal_key(now),
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
        incident_view(&store, &incident).await?,
    ))
}

/// One incident with its timeline, suspects, containment, review and audit history.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "INC-<n>")),
    responses((status = 200, body = IncidentView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = parse_incident_id(&id)?;
    let store = caller.may::<ReadRecords>(&state)?.store();
    let incident = load(&store, &id).await?;
    Ok(Json(incident_view(&store, &incident).await?))
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
    responses((status = 200, body = IncidentView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ActInput>,
) -> Result<Json<IncidentView>, ApiError> {
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
    Ok(Json(incident_view(&store, &incident).await?))
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
    responses((status = 200, body = IncidentView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn propose(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ContainmentInput>,
) -> Result<Json<IncidentView>, ApiError> {
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
            Ok(Json(incident_view(&store, &incident).await?))
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
            // The playbook was approved when it was written; the core let it run (SEV1 only).
            let order = caller.may::<HandleIncidents>(&state)?.playbook_order();
            let incident = incidents::run_containment(&state, &order, &id).await?;
            Ok(Json(incident_view(&store, &incident).await?))
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
    responses((status = 200, body = IncidentView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    let actor = caller.may::<ApproveContainment>(&state)?;
    let incident = approve_containment(&state, &actor, &id).await?;
    Ok(Json(incident_view(&actor.store(), &incident).await?))
}

/// Approves incident `id`'s containment plan as `actor` (the core decides whether they may:
/// [`containment_refusal`]) and runs it. `POST /incidents/{id}/containment/approve` and the
/// portal's approval form both take this path.
pub(crate) async fn approve_containment(
    state: &AppState,
    actor: &Permit<'_, ApproveContainment>,
    id: &str,
) -> Result<Incident, ApiError> {
    let principal = actor.principal();
    let id = parse_incident_id(id)?;
    let store = actor.store();
    let now = state.clock.now();
    let current = load(&store, &id).await?;
    let owners = owners(&store, &current.targets).await?;
    update(&store, &id, |incident| {
        Ok(incident.approve_containment(&principal.name, &principal.roles, &owners, now)?)
    })
    .await?;
    incidents::run_containment(state, &actor.order(), &id).await
}

/// Why `who` (with `roles`) may not approve `incident`'s containment plan now, as the core
/// would refuse it (`Incident::approve_containment` asked of a copy, so nothing is recorded);
/// `None` when they may. Pages ask it to show the approval form only to those it would accept.
pub(crate) async fn containment_refusal(
    store: &TenantStore<'_>,
    incident: &Incident,
    who: &steward_core::UserName,
    roles: &steward_core::role::Roles,
    now: DateTime<Utc>,
) -> Result<Option<ApiError>, ApiError> {
    let owners = owners(store, &incident.targets).await?;
    Ok(incident
        .clone()
        .approve_containment(who, roles, &owners, now)
        .err()
        .map(ApiError::from))
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
    responses((status = 200, body = IncidentView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReviewInput>,
) -> Result<Json<IncidentView>, ApiError> {
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
    Ok(Json(incident_view(&store, &incident).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Incidents opened since (default: 30 days ago).
    pub since: Option<DateTime<Utc>>,
    /// Incidents opened before (default: now).
    pub until: Option<DateTime<Utc>>,
}

fn mean_minutes(spans: &[Duration]) -> Option<f64> {
    (!spans.is_empty()).then(|| {
        spans.iter().map(|d| d.num_seconds() as f64).sum::<f64>() / spans.len() as f64 / 60.0
    })
}

/// Mean time to acknowledge, contain and resolve; incidents per target; the share that is
/// change-related; the change failure rate (changes implemented in the period that failed,
/// were rolled back, or are a strong suspect of an incident); and, per severity, how many
/// incidents opened and the median and 90th percentile of their time to restore.
#[utoipa::path(get, path = "/api/v1/incident-metrics", tag = "incidents", params(MetricsQuery),
    responses((status = 200, body = IncidentMetricsView), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<MetricsQuery>,
) -> Result<Json<IncidentMetricsView>, ApiError> {
    let store = caller.may::<ReadRecords>(&state)?.store();
    let now = state.clock.now();
    let since = query.since.unwrap_or_else(|| now - Duration::days(30));
    let until = query.until.unwrap_or(now);
    if until <= since {
        return Err(ApiError::invalid_field("until", "must be later than since"));
    }
    Ok(Json(incident_metrics(&store, since, until).await?))
}

/// The incident metrics of incidents opened in `[since, until)` and changes implemented then:
/// what `GET /incident-metrics` answers and the portal's dashboard shows.
pub(crate) async fn incident_metrics(
    store: &TenantStore<'_>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<IncidentMetricsView, ApiError> {
    let incidents: Vec<Incident> = store
        .list_incidents(&IncidentFilter {
            open_only: false,
            opened_since: Some(since),
            limit: 5000,
            ..IncidentFilter::default()
        })
        .await?
        .into_iter()
        .filter(|i| i.opened_at < until)
        .collect();
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
    let changes = incidents::changes_created_since(store, since - incidents::LOOKBACK).await?;
    let implemented: Vec<_> = changes
        .iter()
        .filter(|c| c.implemented_at().is_some_and(|t| since <= t && t < until))
        .collect();
    let failed = crate::measures::failed_changes(store, &implemented)
        .await?
        .len();
    Ok(IncidentMetricsView {
        since,
        until,
        incidents: incidents.len(),
        mean_minutes_to_acknowledge: mean_minutes(&span(|i| i.acknowledged_at)),
        mean_minutes_to_contain: mean_minutes(&span(|i| i.contained_at)),
        mean_minutes_to_resolve: mean_minutes(&span(|i| i.resolved_at)),
        incidents_per_target: per_target,
        change_related_share: (!incidents.is_empty())
            .then(|| related as f64 / incidents.len() as f64),
        changes_implemented: implemented.len(),
        change_failure_rate: (!implemented.is_empty())
            .then(|| failed as f64 / implemented.len() as f64),
        by_severity: steward_core::measures::incidents::by_severity(&incidents)
            .iter()
            .map(SeverityMetricsView::from)
            .collect(),
    })
}
