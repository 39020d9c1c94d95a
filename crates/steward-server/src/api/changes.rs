//! Change requests: submit, list, show, decide, and move through the lifecycle.
//!
//! Each write handler follows one shape: authorize, load the facts, let the core decide, save the
//! new state with its audit events in one transaction. Saves are guarded by the change's version;
//! when another server saved first, the handler reloads and decides again (a few times), so two
//! concurrent approvals of one change are decided once, in some order, never both against the
//! same old state.

use super::body::{JsonBody, QueryParams};
use super::created::Created;
use super::page::{Page, PageQuery, PageRequest, Paged};
use super::views::{ChangeSummaryView, ChangeView, HistoryEntryView, SuspectedInView};
use crate::AppState;
use crate::auth::{
    ApproveChanges, Caller, CancelChanges, FulfilObligations, ImplementChanges, Permit,
    ReadRecords, RunOrder, SubmitChanges,
};
use crate::error::{ApiError, ErrorBody};
use crate::execution;
use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_core::approval::Decision;
use steward_core::change::{Change, DecisionRequest, Facts, Governance, Step};
use steward_core::classify::ChangeType;
use steward_core::execution::StepStatus;
use steward_core::role::Role;
use steward_core::schedule::{self, ScheduleCheck};
use steward_core::state::ChangeState;
use steward_core::submission::{ChangeRequest, FieldError, Window};
use steward_core::target::Target;
use steward_core::{ChangeId, TargetName, UserName};
use steward_store::AuditRecord;
use steward_store::{ChangeFilter, StoreError, TenantStore};
use utoipa::{IntoParams, ToSchema};

/// How often a write is retried when another server saved the same change first.
const MAX_ATTEMPTS: usize = 8;

/// The fields a change request takes (documentation of what `POST /changes` parses).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Parsed by `ChangeRequest::parse`, which names every bad field; this is its schema.
pub struct SubmitChange {
    pub title: String,
    pub description: String,
    /// A slug such as `model-deployment` or `security-patch`.
    pub category: String,
    /// Names of registered targets.
    pub targets: Vec<String>,
    /// production, staging or development; every target must be in it.
    pub environment: String,
    pub impact: ImpactInput,
    pub implementation_plan: String,
    pub rollback_plan: String,
    pub verification_plan: Option<String>,
    /// A standard-change catalog item this request claims to match.
    pub catalog_item: Option<String>,
    pub emergency: Option<bool>,
    /// Required when `emergency` is true.
    pub justification: Option<String>,
    pub window: Option<WindowInput>,
    /// Commits, pipeline runs, incidents.
    pub links: Option<Vec<String>>,
    /// Keep the change in `draft` instead of sending it for approval.
    pub draft: Option<bool>,
    /// The backup or snapshot to restore from; high-risk changes need one, verified.
    pub backup: Option<BackupInput>,
    /// The CI/CD run that raised the change (`steward change submit --from-pipeline`).
    pub pipeline: Option<PipelineInput>,
    /// Typed steps the executors run in order: each `{"name", "kind": "mlflow_alias" |
    /// "mlflow_tags" | "webhook" | "command", …}` (see the README's plan section).
    #[schema(value_type = Option<Vec<Object>>)]
    pub steps: Option<Vec<serde_json::Value>>,
    /// `{"period_seconds", "checks": [{"kind": "metric" | "complaints" | "compliance" |
    /// "security_controls", …}]}`: run after the steps; a failing check rolls the change back.
    #[schema(value_type = Option<Object>)]
    pub verification: Option<serde_json::Value>,
    /// A step cannot be undone; a manager must approve the change as irreversible.
    pub irreversible: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct PipelineInput {
    /// The commit deployed, 7 to 64 hex digits.
    pub commit: String,
    /// The pipeline run's URL or id.
    pub run: String,
    /// `sha256:<64 hex>` of the artifact.
    pub artifact_digest: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct BackupInput {
    /// A snapshot id, object URI or registry version.
    pub reference: String,
    /// When a restore from it was last tested.
    pub verified_at: Option<chrono::DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ImpactInput {
    /// low, medium or high
    pub data: String,
    pub availability: String,
    pub compliance: String,
    /// How hard undoing is; `medium` when omitted.
    pub rollback_complexity: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    pub start: chrono::DateTime<Utc>,
    pub end: chrono::DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// Why: recorded with the decision and in the audit log.
    pub comment: String,
    /// Earlier overlapping changes (`CHG-<n>`) the approver checked this one can run beside.
    #[serde(default)]
    pub acknowledge_conflicts: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilInput {
    /// The review itself, or how the obligation was met.
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionInput {
    /// schedule, implement, complete, fail, rollback, close or cancel
    pub step: String,
    pub comment: Option<String>,
    /// For `schedule`: the window to run in (defaults to the requested window).
    pub window: Option<WindowInput>,
    /// For `schedule`: overlapping changes (`CHG-<n>`) checked to run beside this one.
    #[serde(default)]
    pub acknowledge_conflicts: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A lifecycle state, e.g. pending_approval.
    pub state: Option<String>,
    /// standard, normal or emergency
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub change_type: Option<String>,
    pub target: Option<String>,
    pub requester: Option<String>,
    /// Only changes past their approval SLA.
    pub overdue: Option<bool>,
}

pub(crate) fn parse_id(id: &str) -> Result<ChangeId, ApiError> {
    ChangeId::parse(id)
        .ok_or_else(|| ApiError::NotFound(format!("'{id}' is not a change id like CHG-12")))
}

pub(crate) async fn load_change(
    store: &TenantStore<'_>,
    id: &ChangeId,
) -> Result<Change, ApiError> {
    load(store, id).await
}

async fn load(store: &TenantStore<'_>, id: &ChangeId) -> Result<Change, ApiError> {
    store
        .get_change(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no change {id}")))
}

/// Everything the core needs to classify, score, route and judge a request.
pub(crate) struct LoadedFacts {
    targets: Vec<Target>,
    catalog_item: Option<steward_core::catalog::CatalogItem>,
    history: steward_core::risk::History,
    requester_roles: Vec<Role>,
    pub(crate) schedule: ScheduleCheck,
    /// The tenant's policy set.
    policy: std::sync::Arc<steward_policy::PolicySet>,
}

/// What the calendar says about `window` for a change touching `targets`.
pub(crate) async fn schedule_for(
    store: &TenantStore<'_>,
    id: &ChangeId,
    window: Option<&Window>,
    targets: &[Target],
) -> Result<ScheduleCheck, ApiError> {
    let Some(window) = window else {
        return Ok(ScheduleCheck::default());
    };
    let calendar = store.calendar_windows().await?;
    let others = store.scheduled_changes(window.start, window.end).await?;
    Ok(schedule::check(
        id,
        Some(window),
        targets,
        &calendar,
        &others,
    ))
}

/// The change's targets as they are now, in the request's order.
pub(crate) async fn targets_of(
    store: &TenantStore<'_>,
    names: &[TargetName],
) -> Result<Vec<Target>, ApiError> {
    let found = store.targets_named(names).await?;
    Ok(names
        .iter()
        .filter_map(|name| found.iter().find(|t| &t.name == name).cloned())
        .collect())
}

pub(crate) async fn load_facts(
    policies: &crate::policies::Policies,
    store: &TenantStore<'_>,
    request: &ChangeRequest,
    requester_roles: Vec<Role>,
) -> Result<LoadedFacts, ApiError> {
    // In the request's order, so factors and routing read the same way every time.
    let targets = targets_of(store, &request.targets).await?;
    let catalog_item = match &request.catalog_item {
        None => None,
        Some(name) => Some(store.catalog_item(name).await?.ok_or_else(|| {
            ApiError::Invalid(vec![FieldError::new(
                "catalog_item",
                format!("no catalog item '{name}': see `steward catalog list`"),
            )])
        })?),
    };
    let history = store.history(&request.targets, &request.category).await?;
    let schedule = schedule_for(
        store,
        &ChangeId::UNASSIGNED,
        request.window.as_ref(),
        &targets,
    )
    .await?;
    Ok(LoadedFacts {
        targets,
        catalog_item,
        history,
        requester_roles,
        schedule,
        policy: policies.of(store).await?,
    })
}

impl LoadedFacts {
    pub(crate) fn facts<'a>(&'a self, state: &'a AppState) -> Facts<'a> {
        let now = state.clock.now();
        Facts {
            targets: &self.targets,
            catalog_item: self.catalog_item.as_ref(),
            history: self.history,
            risk_policy: state.config.risk_policy,
            routing_policy: state.config.routing_policy,
            now,
            requester_roles: &self.requester_roles,
            governance: Governance {
                policy: &*self.policy,
                schedule: &self.schedule,
            },
        }
    }
}

/// Records, on each earlier change a new one overlaps, that it was flagged: both requesters and
/// their approvers see it in `change show`. Best effort after the new change is stored: the
/// conflict itself is recomputed whenever either change is read or approved.
async fn flag_conflicts(
    state: &AppState,
    store: &TenantStore<'_>,
    change: &Change,
    schedule: &ScheduleCheck,
) {
    if schedule.conflicts.is_empty() {
        return;
    }
    let records: Vec<AuditRecord> = schedule
        .conflicts
        .iter()
        .map(|c| AuditRecord {
            occurred_at: state.clock.now(),
            actor: change.requester.to_string(),
            action: "change.conflict_flagged".into(),
            subject_type: "change",
            subject_id: c.change.to_string(),
            outcome: "success",
            correlation_id: None,
            details: serde_json::json!({
                "with": change.id.to_string(),
                "via": c.via,
                "window": change.effective_window(),
            }),
        })
        .collect();
    if let Err(e) = store.record_events(&records).await {
        tracing::warn!(change = %change.id, error = %e, "could not flag the conflict on the earlier changes");
    }
}

/// Submit a change request. Every bad field is named in one 422.
#[utoipa::path(post, path = "/api/v1/changes", tag = "changes", request_body = SubmitChange, responses(
    (status = 201, body = ChangeView, headers(("Location" = String, description = "the path of what was created"))), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn submit_change(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(document): JsonBody<Value>,
) -> Result<Created<ChangeView>, ApiError> {
    let submitter = caller.may::<SubmitChanges>(&state)?;
    let change = create_change(&state, &submitter, &document).await?;
    Ok(Created::at(
        format!("/api/v1/changes/{}", change.id),
        ChangeView::new(&change, state.clock.now()),
    ))
}

/// Parses, judges and stores a change request (`draft: true` keeps it a draft): the one path
/// both `POST /api/v1/changes` and the portal's change form take. Every bad field is named in
/// one `Invalid`; a policy denial is recorded in the audit log before it is returned.
pub(crate) async fn create_change(
    state: &AppState,
    submitter: &Permit<'_, SubmitChanges>,
    document: &Value,
) -> Result<Change, ApiError> {
    let request = ChangeRequest::parse(document).map_err(ApiError::Invalid)?;
    let store = submitter.store();
    let principal = submitter.principal();
    let loaded = load_facts(
        &state.policies,
        &store,
        &request,
        principal.roles.iter().collect(),
    )
    .await?;
    let title = request.title.clone();
    let opened = Change::open(
        principal.tenant.clone(),
        principal.name.clone(),
        request,
        loaded.facts(state),
    );
    let (change, transitions) = match opened {
        Ok(opened) => opened,
        Err(refused) => {
            // Nothing is stored for a refused submission, except a denial's audit record.
            // The subject is in the tree's leaf, so it names the requester only; the title
            // goes with the receipt into the erasable payload.
            let subject = ("change_request", principal.name.to_string());
            let mut error = ApiError::from(refused);
            if let ApiError::PolicyDenied { details, .. } = &mut error {
                details["title"] = serde_json::json!(title);
            }
            return Err(record_denial(state, &store, subject, &principal.name, error).await);
        }
    };
    let change = store.insert_change(change, transitions).await?;
    flag_conflicts(state, &store, &change, &loaded.schedule).await;
    tracing::info!(change = %change.id, r#type = %change.classification.change_type, state = %change.state, "change submitted");
    Ok(change)
}

/// List changes, newest first, a page at a time: each as a summary (`GET /changes/{id}` shows
/// the whole record).
#[utoipa::path(get, path = "/api/v1/changes", tag = "changes", params(ListQuery, PageQuery), responses(
    (status = 200, body = Page<ChangeSummaryView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_changes(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<ListQuery>,
) -> Result<Json<Page<ChangeSummaryView>>, ApiError> {
    let now = state.clock.now();
    let changes = caller
        .may::<ReadRecords>(&state)?
        .store()
        .list_changes(&change_filter(&query, &page, now)?)
        .await?;
    let page = page.page("changes", changes, |c| c.id.number());
    Ok(Json(page.map(|c| ChangeSummaryView::new(&c, now))))
}

/// The store query for one page of the change list: `query`'s filters, each bad one named
/// (422), from where `page`'s cursor points. The API's list and the portal's both read it;
/// [`PageRequest::page`] with the list name `changes` and the change number as key makes
/// the page of what it returns.
pub(crate) fn change_filter(
    query: &ListQuery,
    page: &PageRequest,
    now: chrono::DateTime<Utc>,
) -> Result<ChangeFilter, ApiError> {
    let before: Option<u64> = page.after("changes")?;
    let mut errors = Vec::new();
    let state_filter = query.state.as_deref().and_then(|s| {
        let parsed = ChangeState::parse(s);
        if parsed.is_none() {
            let all: Vec<&str> = ChangeState::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(FieldError::new(
                "state",
                format!("'{s}' is not one of: {}", all.join(", ")),
            ));
        }
        parsed
    });
    let type_filter = query.change_type.as_deref().and_then(|t| {
        let parsed = ChangeType::parse(t);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "type",
                format!("'{t}' is not one of: standard, normal, emergency"),
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
    let requester = query
        .requester
        .as_deref()
        .map(UserName::parse)
        .transpose()
        .map_err(|e| errors.push(FieldError::new("requester", e.to_string())))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    Ok(ChangeFilter {
        state: state_filter,
        change_type: type_filter,
        target,
        requester,
        overdue_at: query.overdue.unwrap_or(false).then_some(now),
        before_number: before,
        limit: page.fetch(),
        ..ChangeFilter::default()
    })
}

/// Show one change with its history.
#[utoipa::path(get, path = "/api/v1/changes/{id}", tag = "changes",
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = ChangeView), (status = 404, body = ErrorBody)), security(("token" = [])))]
pub async fn get_change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChangeView>, ApiError> {
    let id = parse_id(&id)?;
    let store = caller.may::<ReadRecords>(&state)?.store();
    let change = load(&store, &id).await?;
    let history = store.audit_events_for("change", &id.to_string()).await?;
    let targets = targets_of(&store, &change.request.targets).await?;
    let schedule = schedule_for(&store, &change.id, change.effective_window(), &targets).await?;
    let mut view = ChangeView::new(&change, state.clock.now());
    view.schedule = Some((&schedule).into());
    view.history = Some(history.into_iter().map(HistoryEntryView::from).collect());
    let linked = store.incidents_linked_to(&change.id).await?;
    view.incidents = Some(
        linked
            .into_iter()
            .map(|(incident, score, strong)| SuspectedInView {
                incident: incident.to_string(),
                score,
                strong,
            })
            .collect(),
    );
    Ok(Json(view))
}

/// Loads a change, applies `decide` to it and saves it, retrying from a fresh read when another
/// writer got there first.
pub(crate) async fn update_change(
    store: &TenantStore<'_>,
    id: &ChangeId,
    decide: impl FnMut(&mut Change) -> Result<Vec<steward_core::change::Transition>, ApiError>,
) -> Result<Change, ApiError> {
    update_change_notifying(store, id, &[], decide).await
}

/// [`update_change`], delivering `notices` in the same transaction as the change.
pub(crate) async fn update_change_notifying(
    store: &TenantStore<'_>,
    id: &ChangeId,
    notices: &[steward_store::Notice],
    mut decide: impl FnMut(&mut Change) -> Result<Vec<steward_core::change::Transition>, ApiError>,
) -> Result<Change, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let mut change = load(store, id).await?;
        let transitions = decide(&mut change)?;
        match store
            .save_change_notifying(&change, &transitions, notices)
            .await
        {
            Ok(()) => {
                change.version += 1;
                return Ok(change);
            }
            Err(StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// `acknowledge_conflicts` as change ids, naming any that is not one.
fn parse_acknowledged(texts: &[String]) -> Result<Vec<ChangeId>, ApiError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            ChangeId::parse(text).ok_or_else(|| {
                ApiError::invalid_field(
                    &format!("acknowledge_conflicts[{i}]"),
                    format!("'{text}' is not a change id like CHG-12"),
                )
            })
        })
        .collect()
}

/// Records a policy denial in the audit log before it is returned: the decisions a policy
/// refuses are the ones an auditor most wants to see. Other errors pass through.
pub(crate) async fn record_denial(
    state: &AppState,
    store: &TenantStore<'_>,
    subject: (&'static str, String),
    actor: &UserName,
    error: ApiError,
) -> ApiError {
    let ApiError::PolicyDenied { message, details } = error else {
        return error;
    };
    let record = AuditRecord {
        occurred_at: state.clock.now(),
        actor: actor.to_string(),
        action: "policy.denied".into(),
        subject_type: subject.0,
        subject_id: subject.1,
        outcome: "denied",
        correlation_id: None,
        details: serde_json::json!({ "error": message, "policy": details["policy"], "title": details["title"] }),
    };
    if let Err(e) = store.record_events(&[record]).await {
        tracing::error!(error = %e, "could not record a policy denial in the audit log");
        return e.into();
    }
    ApiError::PolicyDenied { message, details }
}

/// A comment or note that is recorded in the audit log: required, bounded.
fn required_note(field: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            "must say why (it is recorded in the audit log)",
        ));
    }
    if text.chars().count() > 5000 {
        return Err(ApiError::invalid_field(
            field,
            "must be at most 5000 characters",
        ));
    }
    Ok(text)
}

async fn decide(
    state: AppState,
    caller: Caller,
    id: String,
    decision: Decision,
    body: DecisionInput,
) -> Result<Json<ChangeView>, ApiError> {
    let actor = caller.may::<ApproveChanges>(&state)?;
    let change = decide_change(&state, &actor, &id, decision, &body).await?;
    Ok(Json(ChangeView::new(&change, state.clock.now())))
}

/// Records `actor`'s decision on change `id`: the one path both the API
/// (`POST /api/v1/changes/{id}/approve|reject`) and the portal's decision form take. The core
/// decides whether this person may fill a slot (segregation of duties); a policy denial is
/// recorded in the audit log before it is returned.
pub(crate) async fn decide_change(
    state: &AppState,
    actor: &Permit<'_, ApproveChanges>,
    id: &str,
    decision: Decision,
    body: &DecisionInput,
) -> Result<Change, ApiError> {
    let comment = required_note("comment", &body.comment)?;
    let acknowledged = parse_acknowledged(&body.acknowledge_conflicts)?;
    let id = parse_id(id)?;
    let store = actor.store();
    let principal = actor.principal();
    let current = load(&store, &id).await?;
    let targets = targets_of(&store, &current.request.targets).await?;
    let schedule = schedule_for(&store, &id, current.effective_window(), &targets).await?;
    let policy = state.policies.of(&store).await?;
    let decided = update_change(&store, &id, |change| {
        Ok(change.decide(
            DecisionRequest {
                who: &principal.name,
                roles: &principal.roles,
                decision,
                comment: comment.clone(),
                acknowledged_conflicts: &acknowledged,
                now: state.clock.now(),
            },
            Governance {
                policy: &*policy,
                schedule: &schedule,
            },
        )?)
    })
    .await;
    let change = match decided {
        Ok(change) => change,
        Err(e) => {
            let subject = ("change", id.to_string());
            return Err(record_denial(state, &store, subject, &principal.name, e).await);
        }
    };
    tracing::info!(change = %change.id, by = %principal.name, decision = decision.as_str(), state = %change.state, "decision recorded");
    Ok(change)
}

/// Approve a change. Refused (403) for the requester, for someone who already decided, and for
/// anyone who does not fill one of the approvals still needed.
#[utoipa::path(post, path = "/api/v1/changes/{id}/approve", tag = "changes", request_body = DecisionInput,
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn approve_change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecisionInput>,
) -> Result<Json<ChangeView>, ApiError> {
    decide(state, caller, id, Decision::Approve, body).await
}

/// Reject a change; any required approver's rejection rejects it.
#[utoipa::path(post, path = "/api/v1/changes/{id}/reject", tag = "changes", request_body = DecisionInput,
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn reject_change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecisionInput>,
) -> Result<Json<ChangeView>, ApiError> {
    decide(state, caller, id, Decision::Reject, body).await
}

/// Submit a draft for approval (its requester only).
#[utoipa::path(post, path = "/api/v1/changes/{id}/submit", tag = "changes",
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn submit_draft(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChangeView>, ApiError> {
    let submitter = caller.may::<SubmitChanges>(&state)?;
    let change = submit_draft_change(&state, &submitter, &id).await?;
    Ok(Json(ChangeView::new(&change, state.clock.now())))
}

/// Sends draft `id` for approval, judged against today's facts: the one path both
/// `POST /api/v1/changes/{id}/submit` and the portal's button on a draft take. The core
/// refuses anyone but the requester; a policy denial is recorded in the audit log.
pub(crate) async fn submit_draft_change(
    state: &AppState,
    submitter: &Permit<'_, SubmitChanges>,
    id: &str,
) -> Result<Change, ApiError> {
    let id = parse_id(id)?;
    let store = submitter.store();
    let draft = load(&store, &id).await?;
    let loaded = load_facts(
        &state.policies,
        &store,
        &draft.request,
        submitter.principal().roles.iter().collect(),
    )
    .await?;
    let who = submitter.principal().name.clone();
    let submitted = update_change(&store, &id, |change| {
        Ok(change.submit_draft(&who, loaded.facts(state))?)
    })
    .await;
    let change = match submitted {
        Ok(change) => change,
        Err(e) => {
            return Err(record_denial(state, &store, ("change", id.to_string()), &who, e).await);
        }
    };
    flag_conflicts(state, &store, &change, &loaded.schedule).await;
    Ok(change)
}

/// Move a change one step: schedule, implement, complete, fail, rollback, close or cancel.
/// Illegal steps get a 409 naming the current state.
#[utoipa::path(post, path = "/api/v1/changes/{id}/transitions", tag = "changes", request_body = TransitionInput,
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn transition_change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TransitionInput>,
) -> Result<Json<ChangeView>, ApiError> {
    let step = Step::parse(&body.step).filter(|s| *s != Step::Submit).ok_or_else(|| {
        ApiError::invalid_field(
            "step",
            format!("'{}' is not one of: schedule, implement, complete, fail, rollback, close, cancel", body.step),
        )
    })?;
    // Withdrawing is the requester's (a pipeline's too); every other step is a person's work.
    // Only an implementer's permit makes the order that runs or undoes a change's steps.
    let (principal, store, order) = if step == Step::Cancel {
        let permit = caller.may::<CancelChanges>(&state)?;
        (permit.principal(), permit.store(), None)
    } else {
        let permit = caller.may::<ImplementChanges>(&state)?;
        (permit.principal(), permit.store(), Some(permit.order()))
    };
    let order = || {
        order.clone().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "every step but cancel is taken under an implementer's permit"
            ))
        })
    };
    let window = match body.window {
        Some(w) if w.end <= w.start => {
            return Err(ApiError::invalid_field(
                "window.end",
                "must be after window.start",
            ));
        }
        Some(w) => Some(Window {
            start: w.start,
            end: w.end,
        }),
        None => None,
    };
    let id = parse_id(&id)?;
    // Nothing is scheduled into, or started inside, a freeze.
    let current = load(&store, &id).await?;
    let now = state.clock.now();
    let checked_window = match step {
        Step::Schedule => window.clone().or_else(|| current.request.window.clone()),
        Step::Implement => Some(Window {
            start: now,
            end: now + chrono::Duration::minutes(1),
        }),
        _ => None,
    };
    let schedule = match &checked_window {
        Some(w) => {
            let targets = targets_of(&store, &current.request.targets).await?;
            schedule_for(&store, &id, Some(w), &targets).await?
        }
        None => ScheduleCheck::default(),
    };
    let acknowledged = parse_acknowledged(&body.acknowledge_conflicts)?;
    let planned = !current.request.steps.is_empty();
    if planned {
        match step {
            Step::Complete | Step::Fail => {
                return Err(ApiError::Conflict {
                    message: format!(
                        "{id} runs its steps itself: its executor reports the outcome, and `steward change rollback {id} --reason …` undoes it"
                    ),
                    details: serde_json::Value::Null,
                });
            }
            Step::Rollback => {
                let reason = body.comment.clone().ok_or_else(|| {
                    ApiError::invalid_field("comment", "say why the change is rolled back")
                })?;
                return rollback_now(
                    &state,
                    &order()?,
                    &id,
                    &principal.name,
                    &principal.roles,
                    &reason,
                )
                .await;
            }
            _ => {}
        }
    }
    // Stepped or not, a change starts only when the gate the worker and pipelines ask allows it
    // now: approved, window open (or an emergency's override of it), no freeze — unless a
    // pipeline already deployed it as the gate allowed, and a person records that after the fact.
    let recording_a_deployment = !planned && current.deployed_as_allowed();
    if step == Step::Implement
        && !recording_a_deployment
        && let Some(reason) = execution::refuse_start(&state, &store, &current).await?
    {
        return Err(ApiError::Conflict {
            message: format!("{id} cannot start now: {reason}"),
            details: serde_json::json!({ "reason": "gate" }),
        });
    }
    let grace = state.config.execution.lease_grace;
    let change = update_change(&store, &id, |change| {
        let mut out = Vec::new();
        if checked_window.is_some() && change.state.can_become(step.target_state()) {
            out.extend(change.check_schedule(
                &schedule,
                &principal.name,
                &acknowledged,
                step == Step::Schedule,
            )?);
        }
        out.push(change.advance(
            step,
            &principal.name,
            &principal.roles,
            window.clone(),
            body.comment.clone(),
            state.clock.now(),
        )?);
        if step == Step::Implement && planned {
            execution::begin(change, &principal.name, state.clock.now(), grace);
        }
        Ok(out)
    })
    .await?;
    if step == Step::Implement && planned {
        spawn_run(&state, order()?, &change);
    }
    Ok(Json(ChangeView::new(&change, state.clock.now())))
}

/// Runs a change's steps in the background, held so the worker does not run them too.
fn spawn_run(state: &AppState, order: RunOrder, change: &Change) {
    let Some(claim) = state.running.claim(&change.tenant, &change.id) else {
        return;
    };
    let state = state.clone();
    let id = change.id.clone();
    tokio::spawn(async move {
        let _claim = claim;
        if let Err(e) = execution::run(&state, &order, &id).await {
            tracing::warn!(change = %id, error = %e, "execution failed");
        }
    });
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    /// Why: kept on the change, in the audit log and in the owners' notification.
    pub reason: String,
}

/// Roll a change back: undo every step that ran, last first, from the snapshots taken before
/// each ran, and end `rolled_back`. A change without steps is marked rolled back (its
/// implementer undid it by hand). Refused while one of its steps is running.
#[utoipa::path(post, path = "/api/v1/changes/{id}/rollback", tag = "changes", request_body = RollbackInput,
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn rollback_change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RollbackInput>,
) -> Result<Json<ChangeView>, ApiError> {
    let actor = caller.may::<ImplementChanges>(&state)?;
    let reason = required_note("reason", &body.reason)?;
    let id = parse_id(&id)?;
    let principal = actor.principal();
    rollback_now(
        &state,
        &actor.order(),
        &id,
        &principal.name,
        &principal.roles,
        &reason,
    )
    .await
}

async fn rollback_now(
    state: &AppState,
    order: &RunOrder,
    id: &ChangeId,
    who: &UserName,
    roles: &steward_core::Roles,
    reason: &str,
) -> Result<Json<ChangeView>, ApiError> {
    let store = &order.store();
    let current = load(store, id).await?;
    let busy = || ApiError::Conflict {
        message: format!(
            "{id} is running a step now; wait for it to finish (a failing step rolls the change back by itself), then try again"
        ),
        details: serde_json::Value::Null,
    };
    if current.execution.is_some() {
        let running = current.state == ChangeState::Implementing
            && current
                .execution
                .as_ref()
                .is_some_and(|e| !e.lease_expired(state.clock.now()));
        let Some(_claim) = state.running.claim(&current.tenant, id) else {
            return Err(busy());
        };
        if running
            && current
                .execution
                .as_ref()
                .is_some_and(|e| e.rollback.is_none())
        {
            // Leased by another server that may be mid-step.
            let steps_running = current
                .execution
                .as_ref()
                .is_some_and(|e| e.steps.iter().any(|s| s.status == StepStatus::Started));
            if steps_running {
                return Err(busy());
            }
        }
        execution::rollback(
            state,
            order,
            id,
            "manual",
            reason,
            Some(execution::Requested { who, roles }),
        )
        .await?;
    } else {
        update_change(store, id, |change| {
            Ok(vec![change.advance(
                Step::Rollback,
                who,
                roles,
                None,
                Some(reason.to_owned()),
                state.clock.now(),
            )?])
        })
        .await?;
    }
    let change = load(store, id).await?;
    Ok(Json(ChangeView::new(&change, state.clock.now())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowOverrideInput {
    /// Why the emergency cannot wait for its window: kept on the change and in the audit log.
    pub reason: String,
}

/// Agree to let an emergency change start outside its window: only those who approved it (its
/// CISO and VP Engineering), each with a reason. The first agreement is recorded as
/// `change.window_override_agreed` and opens nothing; the last opens the override
/// (`change.window_override`), and the gate then allows starting it for the next two hours.
/// Agreements lapse after two hours. Normal and standard changes have no override.
#[utoipa::path(post, path = "/api/v1/changes/{id}/window-override", tag = "changes", request_body = WindowOverrideInput,
    params(("id" = String, Path, description = "CHG-<n>")),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn override_window(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<WindowOverrideInput>,
) -> Result<Json<ChangeView>, ApiError> {
    let approver = caller.may::<ApproveChanges>(&state)?;
    let reason = required_note("reason", &body.reason)?;
    let id = parse_id(&id)?;
    let store = approver.store();
    let who = &approver.principal().name;
    let change = update_change(&store, &id, |change| {
        Ok(vec![change.override_window(
            who,
            reason.clone(),
            state.clock.now(),
        )?])
    })
    .await?;
    tracing::info!(change = %change.id, by = %who, opened = change.window_override.is_some(), "window override agreed");
    Ok(Json(ChangeView::new(&change, state.clock.now())))
}

/// Record that an obligation is met: the post-implementation review (its text is the note), or
/// whatever else a policy imposed. A change cannot close while it owes one.
#[utoipa::path(post, path = "/api/v1/changes/{id}/obligations/{name}", tag = "changes", request_body = FulfilInput,
    params(("id" = String, Path, description = "CHG-<n>"), ("name" = String, Path, description = "e.g. post_implementation_review")),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub async fn fulfil_obligation(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<FulfilInput>,
) -> Result<Json<ChangeView>, ApiError> {
    let actor = caller.may::<FulfilObligations>(&state)?;
    let note = required_note("note", &body.note)?;
    let id = parse_id(&id)?;
    let store = actor.store();
    let principal = actor.principal();
    let change = update_change(&store, &id, |change| {
        Ok(vec![change.fulfil(
            &name,
            &principal.name,
            &principal.roles,
            note.clone(),
            state.clock.now(),
        )?])
    })
    .await?;
    Ok(Json(ChangeView::new(&change, state.clock.now())))
}

/// The deployment gate, now, for `only` or else every target of `change`: the first refusal, or
/// the first target's allowance. Shared by `steward gate` and the GitHub and GitLab endpoints.
pub(crate) async fn gate_now(
    state: &AppState,
    store: &TenantStore<'_>,
    change: &Change,
    only: Option<&TargetName>,
    environment: steward_core::target::Environment,
) -> Result<steward_core::gate::GateVerdict, ApiError> {
    let now = state.clock.now();
    let targets = targets_of(store, &change.request.targets).await?;
    let this_moment = Window {
        start: now,
        end: now + chrono::Duration::seconds(1),
    };
    let schedule = schedule_for(store, &change.id, Some(&this_moment), &targets).await?;
    let asked: Vec<&TargetName> = match only {
        Some(target) => vec![target],
        None => change.request.targets.iter().collect(),
    };
    let mut verdicts = asked
        .into_iter()
        .map(|t| steward_core::gate::check(change, t, environment, now, &schedule));
    let first = verdicts.next().unwrap_or(steward_core::gate::GateVerdict {
        allowed: false,
        reason: format!("{} names no target", change.id),
    });
    Ok(if first.allowed {
        verdicts.find(|v| !v.allowed).unwrap_or(first)
    } else {
        first
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GateQuery {
    /// The target the pipeline is about to deploy to.
    pub target: String,
    /// production, staging or development
    pub environment: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GateView {
    pub change: String,
    pub state: String,
    /// Whether the deployment may go ahead now.
    pub allowed: bool,
    pub reason: String,
}

/// The deployment gate for pipelines: may this change be deployed to this target now? Always 200
/// with `allowed` and the reason; `steward gate` turns a refusal into exit status 1.
#[utoipa::path(get, path = "/api/v1/changes/{id}/gate", tag = "changes", params(("id" = String, Path, description = "CHG-<n>"), GateQuery),
    responses((status = 200, body = GateView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn gate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<GateQuery>,
) -> Result<Json<GateView>, ApiError> {
    let target = TargetName::parse(&query.target)
        .map_err(|e| ApiError::invalid_field("target", e.to_string()))?;
    let environment = query
        .environment
        .parse::<steward_core::target::Environment>()
        .map_err(|e| ApiError::invalid_field("environment", e))?;
    let id = parse_id(&id)?;
    let store = caller.may::<ReadRecords>(&state)?.store();
    let change = load(&store, &id).await?;
    let verdict = gate_now(&state, &store, &change, Some(&target), environment).await?;
    tracing::info!(change = %id, target = %target, allowed = verdict.allowed, by = %caller.name(), "deployment gate asked");
    Ok(Json(GateView {
        change: id.to_string(),
        state: change.state.to_string(),
        allowed: verdict.allowed,
        reason: verdict.reason,
    }))
}
