//! An incident's page, and the containment approval form on it.
//!
//! The page renders the API's own answer (`api::incidents::incident_view`, what
//! `GET /api/v1/incidents/{id}` returns): the facts, the timeline, the signals, the suspect
//! changes with the reason each is suspected, the containment plan and its runs, the review and
//! the audit events. Whether the viewer may approve the plan is asked of the core the way the
//! approval asks it (`api::incidents::containment_refusal`: `Incident::approve_containment` on
//! a copy, after the `approve_containment` permission), so the form is shown exactly to those
//! the approval would accept, and everyone else is told why not. The form posts to
//! `/incidents/{id}/containment/approve`, which takes the API's own path
//! (`api::incidents::approve_containment`).

use super::answer::{Chrome, answer, chrome, render};
use super::signin::see_other;
use super::{Viewer, Visitor, parse_form};
use crate::AppState;
use crate::api::incident_views::{ContainmentActionView, IncidentView};
use crate::api::incidents::{
    approve_containment as approve_plan, containment_refusal, incident_view, parse_incident_id,
};
use crate::auth::{ApproveContainment, ReadRecords};
use crate::error::ApiError;
use crate::incidents::load;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use steward_core::incident::Incident;
use utoipa::ToSchema;

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: Chrome,
    id: String,
    title: String,
    severity: String,
    state: String,
    targets: String,
    owner: String,
    problem: String,
    change_related: bool,
    needs_review: bool,
    /// (label, element id, time) for started, opened, acknowledged, contained, resolved, closed.
    times: Vec<(&'static str, &'static str, String)>,
    timeline: Vec<TimelineRow>,
    signals: Vec<SignalRow>,
    suspects: Vec<SuspectRow>,
    containment: Option<ContainmentPart>,
    review: Option<ReviewPart>,
    history: Vec<HistoryRow>,
    /// The viewer may approve the containment plan now.
    may_approve: bool,
    /// Why they may not (empty when they may, or when no plan waits for approval).
    why_not: String,
}

struct TimelineRow {
    at: String,
    at_iso: String,
    actor: String,
    what: String,
}

struct SignalRow {
    source: String,
    summary: String,
    severity: String,
    target: String,
    started: String,
    received: String,
    resolved: String,
}

struct SuspectRow {
    change: String,
    title: String,
    implemented: String,
    target: String,
    relation: String,
    minutes_before: i64,
    score: String,
    reason: String,
}

struct ContainmentPart {
    actions: Vec<ActionRow>,
    proposed_by: String,
    proposed_at: String,
    /// "approved by mia, 2027-01-09 10:00 UTC", "ran as the pre-approved playbook …", or
    /// "waiting for approval …".
    approval: String,
    approved: bool,
    runs: Vec<RunRow>,
}

struct ActionRow {
    name: String,
    /// "roll back CHG-7" or the step's kind.
    what: String,
    /// The change a rollback undoes.
    change: Option<String>,
    /// A step's parameters, as JSON.
    parameters: String,
}

struct RunRow {
    name: String,
    ok: bool,
    at: String,
    result: String,
}

struct ReviewPart {
    what_happened: String,
    why: String,
    risk_assessment_missed: String,
    actions: Vec<String>,
    by: String,
    at: String,
}

struct HistoryRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
}

/// What the containment approval form posts: only the session's CSRF token.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ContainmentApprovalForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn utc_or_not_yet(t: Option<DateTime<Utc>>) -> String {
    t.map(utc).unwrap_or_else(|| "not yet".into())
}

/// Whether `viewer` may approve `incident`'s containment plan now; why not, when not (`Ok(None)`
/// when there is no plan waiting for an approval, so nothing to explain).
async fn may_approve(
    state: &AppState,
    viewer: &Viewer,
    store: &steward_store::TenantStore<'_>,
    incident: &Incident,
) -> Result<Result<(), Option<String>>, ApiError> {
    let waiting = incident
        .containment
        .as_ref()
        .is_some_and(|plan| plan.approved_by.is_none() && plan.playbook.is_none());
    if !waiting {
        return Ok(Err(None));
    }
    // The core's own rule first (proposer, owning manager, the incident's state): a person is
    // told that, whatever their roles.
    let principal = viewer.caller.principal();
    if let Some(refused) = containment_refusal(
        store,
        incident,
        &principal.name,
        &principal.roles,
        state.clock.now(),
    )
    .await?
    {
        return Ok(Err(Some(format!(
            "You cannot approve this containment plan: {refused}."
        ))));
    }
    Ok(viewer
        .caller
        .may::<ApproveContainment>(state)
        .map(|_| ())
        .map_err(|refused| Some(format!("You cannot approve containment plans: {refused}."))))
}

fn page_of(
    view: IncidentView,
    decision: Result<(), Option<String>>,
    viewer: &Viewer,
) -> IncidentPage {
    let times = vec![
        ("Began", "incident-started", utc(view.started_at)),
        ("Opened", "incident-opened", utc(view.opened_at)),
        (
            "Acknowledged",
            "incident-acknowledged",
            utc_or_not_yet(view.acknowledged_at),
        ),
        (
            "Contained",
            "incident-contained",
            utc_or_not_yet(view.contained_at),
        ),
        (
            "Resolved",
            "incident-resolved",
            utc_or_not_yet(view.resolved_at),
        ),
        ("Closed", "incident-closed", utc_or_not_yet(view.closed_at)),
    ];
    let containment = view.containment.map(|c| {
        let approved = c.approved_by.is_some() || c.playbook.is_some();
        let approval = match (&c.approved_by, c.approved_at, &c.playbook) {
            (Some(by), Some(at), _) => format!("Approved by {by}, {}.", utc(at)),
            (Some(by), None, _) => format!("Approved by {by}."),
            (None, _, Some(playbook)) => format!(
                "Ran as the pre-approved playbook {playbook}, without waiting for a manager (SEV1)."
            ),
            (None, _, None) => "Waiting for approval by a manager who owns an affected model or deployment (not its proposer).".into(),
        };
        ContainmentPart {
            actions: (c.actions.iter())
                .map(|a| match a {
                    ContainmentActionView::RollbackChange { name, change } => ActionRow {
                        name: name.clone(),
                        what: format!("roll back {change}"),
                        change: Some(change.clone()),
                        parameters: String::new(),
                    },
                    ContainmentActionView::Step { step } => ActionRow {
                        name: step["name"].as_str().unwrap_or_default().to_owned(),
                        what: step["kind"].as_str().unwrap_or("step").to_owned(),
                        change: None,
                        parameters: step.to_string(),
                    },
                })
                .collect(),
            proposed_by: c.proposed_by.clone(),
            proposed_at: utc(c.proposed_at),
            approval,
            approved,
            runs: (c.runs.iter())
                .map(|r| RunRow {
                    name: r.name.clone(),
                    ok: r.ok,
                    at: utc(r.at),
                    result: r.result.to_string(),
                })
                .collect(),
        }
    });
    IncidentPage {
        chrome: chrome(viewer),
        targets: view.targets.join(", "),
        owner: view.owner.unwrap_or_else(|| "no one yet".into()),
        problem: view.problem.unwrap_or_default(),
        change_related: view.change_related,
        needs_review: view.needs_review,
        times,
        timeline: (view.timeline.iter())
            .map(|e| TimelineRow {
                at: utc(e.at),
                at_iso: e.at.to_rfc3339(),
                actor: e.actor.clone(),
                what: e.what.clone(),
            })
            .collect(),
        signals: (view.signals.iter())
            .map(|s| SignalRow {
                source: s.source.clone(),
                summary: s.summary.clone(),
                severity: s.severity.clone(),
                target: s.target.clone().unwrap_or_default(),
                started: utc(s.started_at),
                received: utc(s.received_at),
                resolved: utc_or_not_yet(s.resolved_at),
            })
            .collect(),
        suspects: (view.suspects.iter())
            .map(|s| SuspectRow {
                change: s.change.clone(),
                title: s.title.clone(),
                implemented: utc(s.implemented_at),
                target: s.target.clone(),
                relation: s.relation.clone(),
                minutes_before: s.minutes_before,
                score: format!("{:.2}", s.score),
                reason: s.reason.clone(),
            })
            .collect(),
        containment,
        review: view.review.map(|r| ReviewPart {
            what_happened: r.what_happened,
            why: r.why,
            risk_assessment_missed: r.risk_assessment_missed,
            actions: r.actions,
            by: r.by,
            at: utc(r.at),
        }),
        history: (view.history.iter())
            .map(|h| HistoryRow {
                seq: h.seq,
                at: utc(h.at),
                actor: h.actor.clone(),
                action: h.action.clone(),
            })
            .collect(),
        may_approve: decision.is_ok(),
        why_not: decision.err().flatten().unwrap_or_default(),
        id: view.id,
        title: view.title,
        severity: view.severity,
        state: view.state,
    }
}

/// An incident: its facts and times, timeline, signals, suspect changes with their reasons, the
/// containment plan and its approval, the review and the audit events — and, for the manager the
/// core would let approve it, the form to approve the containment plan.
#[utoipa::path(get, path = "/incidents/{id}", tag = "portal",
    params(("id" = String, Path, description = "INC-<n>")),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the incident's page"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 404, description = "no such incident in your tenant")))]
pub async fn incident_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, show(&state, visitor, &id).await)
}

async fn show(state: &AppState, visitor: Visitor, id: &str) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let id = parse_incident_id(id)?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let incident = load(&store, &id).await?;
    let decision = may_approve(state, &viewer, &store, &incident).await?;
    let view = incident_view(&store, &incident).await?;
    render(StatusCode::OK, &page_of(view, decision, &viewer))
}

/// Approve an incident's containment plan from its page: the same approval as
/// `POST /api/v1/incidents/{id}/containment/approve` (the plan then runs), then back to the
/// incident. A form without this session's CSRF token is refused (403), as is an approval the
/// core refuses (the proposer, a manager who owns no affected target).
#[utoipa::path(post, path = "/incidents/{id}/containment/approve", tag = "portal",
    params(("id" = String, Path, description = "INC-<n>")),
    request_body(content = ContainmentApprovalForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "approved (and run): back to the incident's page", headers(("Location" = String))),
        (status = 401, description = "signed out"),
        (status = 403, description = "the form's CSRF token is wrong, or the approval is refused"),
        (status = 404, description = "no such incident in your tenant"),
        (status = 409, description = "no plan waits for approval, or the incident is past containment")))]
pub async fn approve_containment(
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
        approve(&state, visitor, &id, &headers, &body).await,
    )
}

async fn approve(
    state: &AppState,
    visitor: Visitor,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    // A form that is not this session's is refused before anything else is looked at.
    let form = parse_form::<ContainmentApprovalForm>(headers, body);
    viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
    let approver = viewer.caller.may::<ApproveContainment>(state)?;
    form?;
    let incident = approve_plan(state, &approver, id).await?;
    see_other(&format!("/incidents/{}", incident.id), &[])
}
