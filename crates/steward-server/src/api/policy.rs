//! The policy set: what is loaded, what it says about a change before it is submitted, and the
//! stored inputs a candidate policy set can be backtested against.

use super::body::JsonBody;
use super::change_views::{RuleVerdictView, ScheduleView};
use super::changes::load_facts;
use super::page::{Page, PageQuery, PageRequest, Paged};
use crate::AppState;
use crate::auth::{Caller, Permit, ReadPolicyInputs, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_core::approval::describe;
use steward_core::change::{Change, Preview, Refused};
use steward_core::policy::{PolicyEvaluator, Stage};
use steward_core::schedule::ScheduleCheck;
use steward_core::submission::ChangeRequest;
use steward_store::{ChangeFilter, Principal, TenantStore};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleInfo {
    pub name: String,
    pub title: Option<String>,
    pub controls: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicySetView {
    /// `sha256:…` over the modules (the installation's and your tenant's own); every decision
    /// receipt names it.
    pub version: String,
    pub rules: Vec<RuleInfo>,
    /// The files the rules came from (`builtin/…` for the shipped pack, `tenant/…` for your
    /// tenant's own modules).
    pub modules: Vec<String>,
}

/// The policy set your tenant's changes are judged by: the installation's modules and your
/// tenant's own.
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy",
    responses((status = 200, body = PolicySetView)), security(("token" = [])))]
pub async fn policy_set(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PolicySetView>, ApiError> {
    let reader = caller.may::<ReadRecords>(&state)?;
    policy_set_view(&state, &reader).await.map(Json)
}

/// The policy set the reader's tenant is judged by: `GET /api/v1/policy` and the portal's
/// policies page.
pub(crate) async fn policy_set_view(
    state: &AppState,
    reader: &Permit<'_, ReadRecords>,
) -> Result<PolicySetView, ApiError> {
    let policy = state.policies.of(&reader.store()).await?;
    // Titles and controls are constants in each rule, so an empty input yields them.
    let verdicts = policy
        .evaluate(&json!({}))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    Ok(PolicySetView {
        version: policy.version().to_owned(),
        rules: verdicts
            .into_iter()
            .map(|v| RuleInfo {
                name: v.rule,
                title: v.title,
                controls: v.controls,
            })
            .collect(),
        modules: policy.modules().iter().map(|m| m.path.clone()).collect(),
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EvaluationView {
    pub policy_set: String,
    /// Whether submitting now would be refused: by policy, or by a freeze.
    pub denied: bool,
    /// Why: each policy denial (`rule: message`) and each freeze.
    pub denials: Vec<String>,
    pub warnings: Vec<String>,
    /// standard, normal or emergency
    #[serde(rename = "type")]
    pub change_type: String,
    pub risk_score: u32,
    /// Every approval the change would need, including those policies add.
    pub required_approvals: Vec<String>,
    /// Each rule's verdict, messages, approvals, obligations and the inputs it looked at.
    pub rules: Vec<RuleVerdictView>,
    /// Freezes, maintenance windows and conflicts for the requested window.
    pub schedule: ScheduleView,
}

/// What every rule says about a change request, without submitting it.
#[utoipa::path(post, path = "/api/v1/policy/evaluate", tag = "policy", request_body = super::changes::SubmitChange,
    responses((status = 200, body = EvaluationView), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn evaluate(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(document): JsonBody<Value>,
) -> Result<Json<EvaluationView>, ApiError> {
    let request = ChangeRequest::parse(&document).map_err(ApiError::Invalid)?;
    let store = caller.may::<ReadRecords>(&state)?.store();
    let evaluation = evaluate_request(&state, &store, caller.principal(), request).await?;
    Ok(Json(EvaluationView::of(evaluation)))
}

impl EvaluationView {
    /// An evaluation as `POST /api/v1/policy/evaluate` answers it (and the portal's policy test
    /// shows it).
    pub(crate) fn of(evaluation: Evaluation) -> EvaluationView {
        let Evaluation {
            preview:
                Preview {
                    change,
                    receipt,
                    refusals,
                },
            schedule,
        } = evaluation;
        EvaluationView {
            policy_set: receipt.policy_set.clone(),
            denied: !refusals.is_empty(),
            denials: refusals,
            warnings: receipt.warnings(),
            change_type: change.classification.change_type.to_string(),
            risk_score: change.risk.score,
            required_approvals: change
                .required_approvals
                .iter()
                .map(|s| format!("{} ({}): {}", s.id, describe(&s.eligibility), s.reason))
                .collect(),
            rules: receipt.rules.iter().map(RuleVerdictView::from).collect(),
            schedule: ScheduleView::from(&schedule),
        }
    }
}

/// What submitting a request now would lead to, and the calendar's view of its window.
pub(crate) struct Evaluation {
    pub(crate) preview: Preview,
    pub(crate) schedule: ScheduleCheck,
}

/// Classifies, scores, routes and judges `request` as `principal` would submit it, storing
/// nothing: the one evaluation behind `POST /api/v1/policy/evaluate` and the portal's live
/// preview of the change form.
pub(crate) async fn evaluate_request(
    state: &AppState,
    store: &TenantStore<'_>,
    principal: &Principal,
    request: ChangeRequest,
) -> Result<Evaluation, ApiError> {
    let loaded = load_facts(
        &state.policies,
        store,
        &request,
        principal.roles.iter().collect(),
    )
    .await?;
    let preview = match Change::preview(
        principal.tenant.clone(),
        principal.name.clone(),
        request,
        loaded.facts(state),
    ) {
        Ok(preview) => preview,
        Err(Refused::Invalid(fields)) => return Err(ApiError::Invalid(fields)),
        Err(other) => return Err(other.into()),
    };
    Ok(Evaluation {
        preview,
        schedule: loaded.schedule,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InputsQuery {
    /// Changes created at or after this time (RFC 3339).
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredInput {
    pub id: String,
    pub state: String,
    #[serde(rename = "type")]
    pub change_type: String,
    pub created_at: DateTime<Utc>,
    /// `succeeded` or `failed` (failed or rolled back) once implementation ended; absent before.
    pub outcome: Option<String>,
    /// The policy set that judged it at submission, and what it said.
    pub policy_set: Option<String>,
    pub warned: bool,
    /// The exact input the policy set saw at submission.
    #[schema(value_type = Object)]
    pub input: Value,
}

/// The submission-time policy inputs of stored changes, newest first, a page at a time, for
/// `steward policy backtest`. Drafts and changes stored before policies existed have none and
/// are left out of their page, so a page may hold fewer than `limit`.
#[utoipa::path(get, path = "/api/v1/policy/inputs", tag = "policy", params(InputsQuery, PageQuery),
    responses((status = 200, body = Page<StoredInput>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn stored_inputs(
    State(state): State<AppState>,
    caller: Caller,
    Paged {
        page,
        filters: query,
    }: Paged<InputsQuery>,
) -> Result<Json<Page<StoredInput>>, ApiError> {
    let permit = caller.may::<ReadPolicyInputs>(&state)?;
    Ok(Json(inputs_page(&permit, query.since, &page).await?))
}

/// A page of the submission-time policy inputs of changes created since `since`, newest first:
/// `GET /api/v1/policy/inputs` (which `steward policy backtest` reads) and the portal's
/// backtest.
pub(crate) async fn inputs_page(
    permit: &Permit<'_, ReadPolicyInputs>,
    since: DateTime<Utc>,
    page: &PageRequest,
) -> Result<Page<StoredInput>, ApiError> {
    let before: Option<u64> = page.after("policy_inputs")?;
    let changes = permit
        .store()
        .list_changes(&ChangeFilter {
            created_since: Some(since),
            before_number: before,
            limit: page.fetch(),
            ..ChangeFilter::default()
        })
        .await?;
    let page = page.page("policy_inputs", changes, |c| c.id.number());
    let next_cursor = page.next_cursor;
    let items = page
        .items
        .into_iter()
        .filter_map(|c| {
            let submission = c
                .policy_receipts
                .iter()
                .find(|r| r.stage == Stage::Submission);
            Some(StoredInput {
                id: c.id.to_string(),
                state: c.state.to_string(),
                change_type: c.classification.change_type.to_string(),
                created_at: c.created_at,
                outcome: c.outcome.clone(),
                policy_set: submission.map(|r| r.policy_set.clone()),
                warned: submission.is_some_and(|r| !r.warnings().is_empty()),
                input: c.policy_input?,
            })
        })
        .collect();
    Ok(Page { items, next_cursor })
}
