//! The change form's preview: what Steward would decide about the request as it stands —
//! classification, routing, risk score and its factors, each policy rule's verdict, obligations,
//! and the calendar's view of the window — computed by `api::policy::evaluate_request`, the
//! evaluation `POST /api/v1/policy/evaluate` answers with, so the two never disagree.

use super::fields::{Built, ChangeForm};
use super::messages::FieldMessages;
use crate::AppState;
use crate::api::policy::{Evaluation, evaluate_request};
use crate::error::ApiError;
use crate::portal::change_record::{FactorRow, RuleRow, factor_rows};
use steward_core::approval::describe;
use steward_core::change::Preview;
use steward_core::submission::{ChangeRequest, FieldError};
use steward_store::{Principal, TenantStore};

/// The preview panel's content (`templates/change_preview.html`).
#[derive(Debug, Default)]
pub(in crate::portal) struct PreviewView {
    /// `empty` (nothing typed yet), `incomplete` (fields to fix first) or `ready`.
    pub status: &'static str,
    /// What to fix before Steward can judge the request: `Title: is required`.
    pub problems: Vec<String>,
    pub change_type: String,
    pub classification_reason: String,
    pub risk_score: u32,
    pub risk_level: String,
    pub factors: Vec<FactorRow>,
    /// Where it would go: auto-approved, or waiting for the approvals listed.
    pub routing: String,
    pub approvals: Vec<String>,
    /// Whether submitting now would be refused, and why (policy denials, freezes).
    pub denied: bool,
    pub denials: Vec<String>,
    pub warnings: Vec<String>,
    /// Obligations the change would owe before it may close, with the rule that imposed each.
    pub obligations: Vec<String>,
    /// Rules that said something (deny, warn, an approval, an obligation).
    pub rules: Vec<RuleRow>,
    /// Rules that passed without adding anything, by name.
    pub passed: Vec<String>,
    /// The policy-set version that judged it.
    pub policy_set: String,
    /// The calendar: freezes, maintenance windows, overlapping changes.
    pub schedule: Vec<String>,
}

impl PreviewView {
    pub(super) fn empty() -> PreviewView {
        PreviewView {
            status: "empty",
            ..PreviewView::default()
        }
    }

    fn incomplete(messages: &FieldMessages) -> PreviewView {
        PreviewView {
            status: "incomplete",
            problems: (messages.summary.iter())
                .map(|s| format!("{}: {}", s.label, s.message))
                .collect(),
            ..PreviewView::default()
        }
    }

    fn ready(evaluation: &Evaluation) -> PreviewView {
        let Preview {
            change,
            receipt,
            refusals,
        } = &evaluation.preview;
        let schedule = &evaluation.schedule;
        let (rules, passed): (Vec<_>, Vec<_>) = receipt
            .rules
            .iter()
            .map(RuleRow::from)
            .partition(RuleRow::said_something);
        let approvals: Vec<String> = (change.required_approvals.iter())
            .map(|s| format!("{} ({}): {}", s.id, describe(&s.eligibility), s.reason))
            .collect();
        PreviewView {
            status: "ready",
            change_type: change.classification.change_type.to_string(),
            classification_reason: change.classification.reason.clone(),
            risk_score: change.risk.score,
            risk_level: change.risk.level.to_string(),
            factors: factor_rows(&change.risk),
            routing: if approvals.is_empty() {
                "approved at once: no approval needed".into()
            } else {
                format!("waits for {} approval(s)", approvals.len())
            },
            approvals,
            denied: !refusals.is_empty(),
            denials: refusals.clone(),
            warnings: receipt.warnings(),
            obligations: (change.obligations.iter())
                .map(|o| format!("{} (from {})", o.name, o.rule))
                .collect(),
            rules,
            passed: passed.into_iter().map(|r| r.rule).collect(),
            policy_set: receipt.policy_set.clone(),
            schedule: (schedule.freezes.iter())
                .map(|f| format!("in the freeze {}: {}", f.name, f.reason))
                .chain(
                    (schedule.outside_maintenance.iter())
                        .map(|t| format!("{t}: outside its maintenance windows")),
                )
                .chain(schedule.conflicts.iter().map(|c| {
                    format!(
                        "overlaps {} ({}) via {}",
                        c.change,
                        c.state,
                        c.via.join(", ")
                    )
                }))
                .collect(),
            problems: Vec::new(),
        }
    }
}

/// The preview of `form` as `principal` would submit it now, and the fields to fix (by
/// document path) when it cannot be judged yet. Such fields make an `incomplete` preview
/// listing them, not an error: a form being filled in is incomplete most of the time.
pub(super) async fn preview_form(
    state: &AppState,
    store: &TenantStore<'_>,
    principal: &Principal,
    form: &ChangeForm,
) -> Result<(PreviewView, Vec<FieldError>), ApiError> {
    if form.is_untouched() {
        return Ok((PreviewView::empty(), Vec::new()));
    }
    preview_built(state, store, principal, &form.document(true)).await
}

/// The preview of a change document (the form's, or one posted as JSON).
pub(super) async fn preview_built(
    state: &AppState,
    store: &TenantStore<'_>,
    principal: &Principal,
    built: &Built,
) -> Result<(PreviewView, Vec<FieldError>), ApiError> {
    let request = match ChangeRequest::parse(&built.document) {
        Ok(request) if built.errors.is_empty() => request,
        Ok(_) => return Ok(incomplete(built, Vec::new())),
        Err(fields) => return Ok(incomplete(built, fields)),
    };
    match evaluate_request(state, store, principal, request).await {
        Ok(evaluation) => Ok((PreviewView::ready(&evaluation), Vec::new())),
        Err(ApiError::Invalid(fields)) => Ok(incomplete(built, fields)),
        Err(other) => Err(other),
    }
}

/// An incomplete preview naming every field to fix, and those fields.
pub(super) fn incomplete(built: &Built, core: Vec<FieldError>) -> (PreviewView, Vec<FieldError>) {
    let errors = built.with(core);
    let view = PreviewView::incomplete(&FieldMessages::new(&errors, built));
    (view, errors)
}
