//! The policy set: what is loaded, what it says about a change before it is submitted, and the
//! stored inputs a candidate policy set can be backtested against.

use super::body::JsonBody;
use super::change_views::{RuleVerdictView, ScheduleView};
use super::changes::load_facts;
use super::page::{Page, PageQuery, Paged};
use crate::AppState;
use crate::auth::{Caller, ReadPolicyInputs, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_core::approval::describe;
use steward_core::change::{Change, Preview, Refused};
use steward_core::policy::{PolicyEvaluator, Stage};
use steward_core::submission::ChangeRequest;
use steward_store::ChangeFilter;
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
    let store = caller.may::<ReadRecords>(&state)?.store();
    let policy = state.policies.of(&store).await?;
    // Titles and controls are constants in each rule, so an empty input yields them.
    let verdicts = policy
        .evaluate(&json!({}))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    Ok(Json(PolicySetView {
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
    }))
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
    let principal = caller.principal();
    let loaded = load_facts(
        &state.policies,
        &store,
        &request,
        principal.roles.iter().collect(),
    )
    .await?;
    let Preview {
        change,
        receipt,
        refusals,
    } = match Change::preview(
        principal.tenant.clone(),
        principal.name.clone(),
        request,
        loaded.facts(&state),
    ) {
        Ok(preview) => preview,
        Err(Refused::Invalid(fields)) => return Err(ApiError::Invalid(fields)),
        Err(other) => return Err(other.into()),
    };
    Ok(Json(EvaluationView {
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
        schedule: ScheduleView::from(&loaded.schedule),
    }))
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
    let before: Option<u64> = page.after("policy_inputs")?;
    let changes = permit
        .store()
        .list_changes(&ChangeFilter {
            created_since: Some(query.since),
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
    Ok(Json(Page { items, next_cursor }))
}
