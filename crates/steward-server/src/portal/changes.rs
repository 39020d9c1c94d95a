//! A change's page, and the decision form on it.
//!
//! Besides the approvals, the page shows the change's whole record (`change_record`): the
//! request, the policy receipts, the plan and its execution journal, verification, the history
//! from the audit log and the incidents that suspect it.
//!
//! The page shows whether the viewer may decide now by asking the core the same question the
//! decision itself asks (`approval::check_decider`, after the `approve_changes` permit), and says
//! why not when they may not: segregation of duties shown, not just enforced. When the change
//! overlaps earlier ones an approval must acknowledge (the calendar check `decide_change` makes),
//! the form lists each as a checkbox; the checked ones are the decision's
//! `acknowledge_conflicts`. The form posts to
//! `/changes/{id}/decision`, which takes the API's own path (`api::changes::decide_change`).

use super::answer::{Chrome, answer, chrome, render};
use super::change_record::{ChangeRecord, FactorRow, factor_rows, record, when};
use super::home::due_text;
use super::signin::see_other;
use super::{Viewer, Visitor, is_json, parse_form};
use crate::AppState;
use crate::api::changes::{
    DecisionInput, decide_change, load_change, parse_id, schedule_for, submit_draft_change,
    targets_of,
};
use crate::auth::{ApproveChanges, ReadRecords, SubmitChanges};
use crate::error::ApiError;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use steward_core::approval::{self, Decision};
use steward_core::change::Change;
use steward_core::state::ChangeState;
use utoipa::ToSchema;

#[derive(Template)]
#[template(path = "change.html")]
struct ChangePage {
    chrome: Chrome,
    id: String,
    title: String,
    state: String,
    change_type: String,
    requester: String,
    due: String,
    risk_score: u32,
    risk_level: String,
    factors: Vec<FactorRow>,
    /// Whether the viewer may submit this draft (its requester).
    may_submit_draft: bool,
    record: ChangeRecord,
    given: Vec<GivenRow>,
    open_slots: Vec<SlotRow>,
    /// Earlier overlapping changes an approval must acknowledge (checkboxes on the form).
    conflicts: Vec<ConflictRow>,
    /// Whether any of them needs an approver's acknowledgement.
    to_acknowledge: bool,
    may_decide: bool,
    /// Why the viewer may not decide (empty when they may).
    why_not: String,
}

struct GivenRow {
    by: String,
    decision: &'static str,
    slot: String,
    at: String,
    comment: String,
}

struct ConflictRow {
    id: String,
    state: String,
    /// How the two meet, and when the other runs.
    how: String,
    /// An approver must confirm this one can run beside the change.
    needs_ack: bool,
}

struct SlotRow {
    who: String,
    reason: String,
}

/// What the decision form posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DecisionForm {
    /// approve or reject
    pub decision: Option<String>,
    /// Why: recorded with the decision and in the audit log.
    #[serde(default)]
    pub comment: String,
    /// Earlier overlapping changes (`CHG-<n>`) checked to run beside this one: the key
    /// repeats, once per checked box.
    #[serde(default)]
    pub acknowledge_conflicts: Vec<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// The decision form's fields. Browsers repeat `acknowledge_conflicts` once per checked box,
/// which `serde_urlencoded` does not read into a struct, so form bodies are read as pairs.
fn decision_form(headers: &HeaderMap, body: &[u8]) -> Result<DecisionForm, ApiError> {
    if is_json(headers) {
        return parse_form(headers, body);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))?;
    let mut form = DecisionForm {
        decision: None,
        comment: String::new(),
        acknowledge_conflicts: Vec::new(),
        csrf: None,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "decision" => form.decision = Some(value),
            "comment" => form.comment = value,
            "csrf" => form.csrf = Some(value),
            "acknowledge_conflicts" => form.acknowledge_conflicts.push(value),
            _ => {}
        }
    }
    Ok(form)
}

/// Whether `viewer` may decide on `change` now; why not, when not.
fn may_decide(state: &AppState, viewer: &Viewer, change: &Change) -> Result<(), String> {
    if change.state != ChangeState::PendingApproval {
        return Err(format!(
            "This change is {}: it is not waiting for approvals.",
            change.state
        ));
    }
    // Segregation of duties first: a requester is told that, whatever their roles.
    let principal = viewer.caller.principal();
    approval::check_decider(
        &change.required_approvals,
        &change.decisions,
        &change.requester,
        &principal.name,
        &principal.roles,
    )
    .map_err(|refused| {
        format!("You cannot decide on this change: {refused} (segregation of duties).")
    })?;
    viewer
        .caller
        .may::<ApproveChanges>(state)
        .map(|_| ())
        .map_err(|refused| format!("You cannot decide on changes: {refused}."))
}

/// A change: its state, type, risk and the factors behind it, the approvals given and still
/// needed, and — for those who may give one now — the form to approve or reject it.
#[utoipa::path(get, path = "/changes/{id}", tag = "portal",
    params(("id" = String, Path, description = "CHG-<n>")),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the change's page"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 404, description = "no such change in your tenant")))]
pub async fn change_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, show(&state, visitor, &id).await)
}

async fn show(state: &AppState, visitor: Visitor, id: &str) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let id = parse_id(id)?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let change = load_change(&store, &id).await?;
    let now = state.clock.now();
    let decision = may_decide(state, &viewer, &change);
    // The same calendar question the approval asks (`decide_change`): which changes overlap
    // this one, and which of them an approver must acknowledge. Shown to every viewer; the
    // checkboxes only to one who may decide.
    let conflicts = {
        let targets = targets_of(&store, &change.request.targets).await?;
        let schedule =
            schedule_for(&store, &change.id, change.effective_window(), &targets).await?;
        (schedule.conflicts.iter())
            .map(|c| ConflictRow {
                needs_ack: c.needs_acknowledgement,
                id: c.change.to_string(),
                state: c.state.to_string(),
                how: format!(
                    "{}, {} – {}",
                    c.via.join(", "),
                    c.start.format("%Y-%m-%d %H:%M"),
                    c.end.format("%Y-%m-%d %H:%M UTC")
                ),
            })
            .collect::<Vec<_>>()
    };
    let open_slots = change
        .required_approvals
        .iter()
        .filter(|slot| !change.decisions.iter().any(|d| d.slot == slot.id))
        .map(|slot| SlotRow {
            who: approval::describe(&slot.eligibility),
            reason: slot.reason.clone(),
        })
        .collect();
    let page = ChangePage {
        chrome: chrome(&viewer),
        id: change.id.to_string(),
        title: change.request.title.clone(),
        state: change.state.to_string(),
        change_type: change.classification.change_type.to_string(),
        requester: change.requester.to_string(),
        due: match due_text(change.approval_deadline, now) {
            due if due.is_empty() => "no deadline".into(),
            due => due,
        },
        risk_score: change.risk.score,
        risk_level: change.risk.level.to_string(),
        factors: factor_rows(&change.risk),
        may_submit_draft: change.state == ChangeState::Draft
            && change.requester == viewer.caller.principal().name
            && viewer.caller.holds::<SubmitChanges>(),
        record: record(&store, &change).await?,
        given: (change.decisions.iter())
            .map(|d| GivenRow {
                by: d.by.to_string(),
                decision: match d.decision {
                    Decision::Approve => "approved",
                    Decision::Reject => "rejected",
                },
                slot: d.slot.clone(),
                at: when(d.at),
                comment: d.comment.clone(),
            })
            .collect(),
        open_slots,
        to_acknowledge: conflicts.iter().any(|c| c.needs_ack),
        conflicts,
        may_decide: decision.is_ok(),
        why_not: decision.err().unwrap_or_default(),
    };
    render(StatusCode::OK, &page)
}

/// Approve or reject a change from its page: the same decision as
/// `POST /api/v1/changes/{id}/approve|reject`, then back to the change. A form without this
/// session's CSRF token is refused (403), as is a decision the change's rules refuse.
#[utoipa::path(post, path = "/changes/{id}/decision", tag = "portal",
    params(("id" = String, Path, description = "CHG-<n>")),
    request_body(content = DecisionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "decided: back to the change's page", headers(("Location" = String))),
        (status = 401, description = "signed out"),
        (status = 403, description = "the form's CSRF token is wrong, or the decision is refused"),
        (status = 404, description = "no such change in your tenant")))]
pub async fn decision(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    answer(
        &state,
        html,
        decide(&state, visitor, &id, &headers, &body).await,
    )
}

async fn decide(
    state: &AppState,
    visitor: Visitor,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    // A form that is not this session's is refused before anything else is looked at.
    let form = decision_form(headers, body);
    viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
    let approver = viewer.caller.may::<ApproveChanges>(state)?;
    let form = form?;
    let decision = match form.decision.as_deref() {
        Some("approve") => Decision::Approve,
        Some("reject") => Decision::Reject,
        _ => {
            return Err(ApiError::invalid_field(
                "decision",
                "must be approve or reject",
            ));
        }
    };
    let input = DecisionInput {
        comment: form.comment,
        acknowledge_conflicts: form.acknowledge_conflicts,
    };
    let change = decide_change(state, &approver, id, decision, &input).await?;
    see_other(&format!("/changes/{}", change.id), &[])
}

/// What the button on a draft posts: only the session's CSRF token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubmitDraftForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// Send a draft for approval from its page: the same step as
/// `POST /api/v1/changes/{id}/submit` (its requester only, judged by today's policies), then
/// back to the change.
#[utoipa::path(post, path = "/changes/{id}/submit", tag = "portal",
    params(("id" = String, Path, description = "CHG-<n>")),
    request_body(content = SubmitDraftForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "submitted: back to the change's page", headers(("Location" = String))),
        (status = 401, description = "signed out"),
        (status = 403, description = "the form's CSRF token is wrong, the viewer is not the requester, or a policy denies it"),
        (status = 404, description = "no such change in your tenant"),
        (status = 409, description = "the change is no draft, or its window falls in a freeze")))]
pub async fn submit_draft(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    answer(
        &state,
        html,
        send_draft(&state, visitor, &id, &headers, &body).await,
    )
}

async fn send_draft(
    state: &AppState,
    visitor: Visitor,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let form = parse_form::<SubmitDraftForm>(headers, body);
    viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
    let submitter = viewer.caller.may::<SubmitChanges>(state)?;
    form?;
    let change = submit_draft_change(state, &submitter, id).await?;
    see_other(&format!("/changes/{}", change.id), &[])
}
