//! The policies page: the policy set the tenant's changes are judged by (`GET /api/v1/policy`'s
//! function), the source of every module, read-only, and two tools.
//!
//! *Test* judges a change document as `POST /api/v1/policy/evaluate` does (its function,
//! `api::policy::evaluate_request`, and its view), storing nothing. *Backtest* replays the
//! stored submission inputs (`GET /api/v1/policy/inputs`'s function) through the tenant's set
//! with a candidate module added or replaced — built by the same check a module write makes
//! (`api::policy_modules::check_module`) — with `steward_policy::backtest`, the implementation
//! `steward policy backtest` runs, and lists the past changes whose verdict it would change.
//! Writing a module stays with `steward policy module put` (dual control): the page shows
//! what is in force and what a candidate would do, and changes nothing.

use super::super::{Viewer, Visitor, parse_form};
use crate::AppState;
use crate::api::change_views::RuleVerdictView;
use crate::api::page::{MAX_LIMIT, PageRequest};
use crate::api::policy::{EvaluationView, evaluate_request, inputs_page, policy_set_view};
use crate::api::policy_modules::{check_module, parse_name};
use crate::auth::{ReadPolicyInputs, ReadRecords};
use crate::error::ApiError;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::submission::ChangeRequest;
use steward_policy::backtest::{Backtest, Replay, Report};
use utoipa::ToSchema;

/// The most stored changes one backtest replays (the newest first): a page must answer in
/// seconds; `steward policy backtest` has no such limit.
const MAX_REPLAYED: usize = 5_000;

#[derive(Template)]
#[template(path = "admin/policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    version: String,
    rules: Vec<RuleRow>,
    installation: Vec<ModuleRow>,
    tenant: Vec<ModuleRow>,
    /// The test form's document (the example, or what was posted).
    change: String,
    test: Option<TestResult>,
    /// The viewer may backtest (reads every change's stored policy input).
    may_backtest: bool,
    candidate_name: String,
    candidate_source: String,
    since: String,
    backtest: Option<BacktestResult>,
    /// Why the posted test or backtest could not run.
    problem: Option<String>,
}

struct RuleRow {
    name: String,
    title: String,
    controls: String,
}

struct ModuleRow {
    path: String,
    /// The path as an element id: `module-builtin-maintenance_window-rego`.
    anchor: String,
    /// `by ivy, 2026-12-01 10:00 UTC · sha256 ab12…` for a tenant module.
    about: String,
    source: String,
}

struct TestResult {
    denied: bool,
    policy_set: String,
    change_type: String,
    risk_score: u32,
    denials: Vec<String>,
    warnings: Vec<String>,
    approvals: Vec<String>,
    rules: Vec<VerdictRow>,
}

struct VerdictRow {
    rule: String,
    verdict: String,
    messages: Vec<String>,
}

impl From<&RuleVerdictView> for VerdictRow {
    fn from(v: &RuleVerdictView) -> Self {
        let mut messages: Vec<String> = v.deny.iter().chain(&v.warn).cloned().collect();
        messages.extend(
            v.approvals
                .iter()
                .map(|a| format!("needs an approval: {}", a.role)),
        );
        messages.extend(v.obligations.iter().map(|o| format!("owes: {o}")));
        VerdictRow {
            rule: v.rule.clone(),
            verdict: v.verdict.clone(),
            messages,
        }
    }
}

struct BacktestResult {
    policy_set: String,
    since: String,
    replayed: u64,
    /// Only the newest [`MAX_REPLAYED`] were replayed.
    cut: bool,
    would_deny: usize,
    would_warn: usize,
    denied_that_failed: u64,
    allowed_failure_rate: String,
    actual_failure_rate: String,
    changed: Vec<ChangedRow>,
}

struct ChangedRow {
    id: String,
    change_type: String,
    state: String,
    outcome: String,
    before: &'static str,
    after: &'static str,
    reasons: String,
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(
        || "n/a (none finished)".to_owned(),
        |r| format!("{:.1}%", r * 100.0),
    )
}

/// An example candidate module: what a compliance officer would start from.
const EXAMPLE_MODULE: &str = "package steward.rules.candidate\n\nimport rego.v1\n\ntitle := \"Retraining in production waits for the quarterly review\"\n\ndeny contains \"retraining a production model waits for the quarterly model review\" if {\n\tinput.change.category == \"model-retrain\"\n\tinput.change.environment == \"production\"\n}\n";

/// An example change document for the test form, on one of the tenant's own targets when it
/// has one (so the example judges as a real request would).
async fn example_change(viewer: &Viewer, state: &AppState) -> Result<String, ApiError> {
    let reader = viewer.caller.may::<ReadRecords>(state)?;
    let first = reader.store().list_targets_after(None, 1).await?;
    let (target, environment) = match first.first() {
        Some(t) => (t.name.to_string(), t.environment.to_string()),
        None => ("your-target".to_owned(), "staging".to_owned()),
    };
    let document = json!({
        "title": "Example: promote a model version",
        "description": "What changes and why",
        "category": "model-deployment",
        "targets": [target],
        "environment": environment,
        "impact": {"data": "low", "availability": "low", "compliance": "low"},
        "implementation_plan": "move the champion alias to the new version",
        "rollback_plan": "move the champion alias back",
    });
    Ok(serde_json::to_string_pretty(&document).map_err(anyhow::Error::from)?)
}

/// A module's path as an element id.
fn anchor(path: &str) -> String {
    let safe: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("module-{safe}")
}

/// The page with the policy set and the tools' forms (results are added by the posts).
async fn build(state: &AppState, viewer: &Viewer) -> Result<PoliciesPage, ApiError> {
    let reader = viewer.caller.may::<ReadRecords>(state)?;
    let set = policy_set_view(state, &reader).await?;
    let judged_by = state.policies.of(&reader.store()).await?;
    let tenant = reader.store().policy_modules().await?;
    let installation = judged_by
        .modules()
        .iter()
        .filter(|m| !m.path.starts_with("tenant/"))
        .map(|m| ModuleRow {
            anchor: anchor(&m.path),
            path: m.path.clone(),
            about: String::new(),
            source: m.text.clone(),
        })
        .collect();
    let tenant = tenant
        .into_iter()
        .map(|m| ModuleRow {
            anchor: anchor(&format!("tenant/{}.rego", m.name)),
            path: format!("tenant/{}.rego", m.name),
            about: format!(
                "by {}, {} · sha256 {}",
                m.created_by,
                super::when(m.created_at),
                &m.digest[..m.digest.len().min(12)]
            ),
            source: m.source,
        })
        .collect();
    Ok(PoliciesPage {
        chrome: chrome(viewer),
        version: set.version,
        rules: set
            .rules
            .into_iter()
            .map(|r| RuleRow {
                name: r.name,
                title: r.title.unwrap_or_default(),
                controls: r.controls.join("; "),
            })
            .collect(),
        installation,
        tenant,
        change: example_change(viewer, state).await?,
        test: None,
        may_backtest: viewer.caller.holds::<ReadPolicyInputs>(),
        candidate_name: "candidate".into(),
        candidate_source: EXAMPLE_MODULE.into(),
        since: (state.clock.now() - Duration::days(90))
            .format("%Y-%m-%d")
            .to_string(),
        backtest: None,
        problem: None,
    })
}

/// The policy set the viewer's tenant is judged by — its rules, and every module's source — with
/// a tool to test a change against it and, for those who read policy inputs, a backtest.
#[utoipa::path(get, path = "/admin/policies", tag = "portal", responses(
    (status = 200, content_type = "text/html", body = String, description = "the policies page"),
    (status = 401, description = "signed out: the sign-in form")))]
pub async fn policies_page(State(state): State<AppState>, visitor: Visitor) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        render(StatusCode::OK, &build(&state, &viewer).await?)
    };
    answer(&state, html, result.await)
}

/// What the test form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TestForm {
    /// The change document, JSON (as `POST /api/v1/policy/evaluate` takes it).
    #[serde(default)]
    pub change: String,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// A problem with what was posted, said the way the API's 422 names fields.
fn problem_text(error: &ApiError) -> Option<String> {
    match error {
        ApiError::Invalid(fields) => Some(
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ApiError::BadRequest(message) => Some(message.clone()),
        _ => None,
    }
}

/// Test a change document against the policy set: the same judgement as
/// `POST /api/v1/policy/evaluate` (nothing is stored), shown on the policies page. A document
/// that is not a valid change request is answered 422 with the page naming each bad field.
#[utoipa::path(post, path = "/admin/policies/test", tag = "portal",
    request_body(content = TestForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the policies page with every rule's verdict"),
        (status = 403, description = "the form's CSRF token is wrong"),
        (status = 422, content_type = "text/html", body = String, description = "the document is not a valid change request: the page names why")))]
pub async fn test(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form: Result<TestForm, _> = parse_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let reader = viewer.caller.may::<ReadRecords>(&state)?;
        let form = form?;
        let mut page = build(&state, &viewer).await?;
        page.change = form.change.clone();
        let evaluated = async {
            let document: Value = serde_json::from_str(&form.change).map_err(|e| {
                ApiError::BadRequest(format!("the change document is not JSON: {e}"))
            })?;
            let request = ChangeRequest::parse(&document).map_err(ApiError::Invalid)?;
            evaluate_request(&state, &reader.store(), reader.principal(), request).await
        };
        match evaluated.await {
            Ok(evaluation) => {
                let view = EvaluationView::of(evaluation);
                page.test = Some(TestResult {
                    denied: view.denied,
                    policy_set: view.policy_set,
                    change_type: view.change_type,
                    risk_score: view.risk_score,
                    denials: view.denials,
                    warnings: view.warnings,
                    approvals: view.required_approvals,
                    rules: view.rules.iter().map(VerdictRow::from).collect(),
                });
                render(StatusCode::OK, &page)
            }
            Err(error) => match problem_text(&error) {
                Some(problem) => {
                    page.problem = Some(problem);
                    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
                }
                None => Err(error),
            },
        }
    };
    answer(&state, html, result.await)
}

/// What the backtest form posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BacktestForm {
    /// The candidate module's name: it joins the tenant's modules as `tenant/<name>.rego`,
    /// replacing a module of that name (`package steward.rules.<name>`).
    #[serde(default)]
    pub name: String,
    /// The candidate module's Rego source.
    #[serde(default)]
    pub source: String,
    /// Replay changes created on or after this day (UTC) or RFC 3339 time.
    #[serde(default)]
    pub since: String,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// Backtest a candidate module: the tenant's policy set with it added (or replacing the module
/// of its name) judges the stored submission inputs of past changes, beside the set in force,
/// and the page lists each change whose verdict would change. Nothing is stored.
#[utoipa::path(post, path = "/admin/policies/backtest", tag = "portal",
    request_body(content = BacktestForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the policies page with the backtest's findings"),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not read policy inputs"),
        (status = 422, content_type = "text/html", body = String, description = "the module does not compile, or a bad name or date: the page says why")))]
pub async fn backtest(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    let result = async {
        let viewer = visitor.signed_in()?;
        let form: Result<BacktestForm, _> = parse_form(&headers, &body);
        viewer.check_form(form.as_ref().ok().and_then(|f| f.csrf.as_deref()))?;
        let permit = viewer.caller.may::<ReadPolicyInputs>(&state)?;
        let form = form?;
        let mut page = build(&state, &viewer).await?;
        page.candidate_name = form.name.clone();
        page.candidate_source = form.source.clone();
        page.since = form.since.clone();
        match replay(&state, &permit, &form).await {
            Ok(result) => {
                page.backtest = Some(result);
                render(StatusCode::OK, &page)
            }
            Err(error) => match problem_text(&error) {
                Some(problem) => {
                    page.problem = Some(problem);
                    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
                }
                None => Err(error),
            },
        }
    };
    answer(&state, html, result.await)
}

/// The start of a backtest's period: a day (midnight UTC), a local time in UTC, or RFC 3339.
fn since(text: &str) -> Result<DateTime<Utc>, ApiError> {
    steward_core::time::parse_instant(text.trim(), steward_core::time::Tz::UTC)
        .map_err(|e| ApiError::invalid_field("since", e.to_string()))
}

async fn replay(
    state: &AppState,
    permit: &crate::auth::Permit<'_, ReadPolicyInputs>,
    form: &BacktestForm,
) -> Result<BacktestResult, ApiError> {
    let name = parse_name(form.name.trim()).map_err(|e| ApiError::invalid_field("name", e))?;
    if form.source.trim().is_empty() {
        return Err(ApiError::invalid_field("source", "must not be empty"));
    }
    let from = since(&form.since)?;
    let store = permit.store();
    let current = store.policy_modules().await?;
    let candidate = check_module(state, &current, name, Some(&form.source))?;
    let in_force = state.policies.of(&store).await?;
    // The stored inputs, newest first, a page at a time, as `steward policy backtest` reads them.
    let mut inputs = Vec::new();
    let mut request = PageRequest::parse(None, Some(&MAX_LIMIT.to_string()))
        .map_err(|_| anyhow::anyhow!("the largest page is a valid page"))?;
    let cut = loop {
        let page = inputs_page(permit, from, &request).await?;
        inputs.extend(page.items);
        if inputs.len() >= MAX_REPLAYED {
            inputs.truncate(MAX_REPLAYED);
            break page.next_cursor.is_some();
        }
        match page.next_cursor {
            Some(cursor) => {
                request = PageRequest::parse(Some(&cursor), Some(&MAX_LIMIT.to_string()))
                    .map_err(|_| anyhow::anyhow!("a cursor this list gave out"))?;
            }
            None => break false,
        }
    };
    // Evaluation is CPU work (two sets per change): off the async workers.
    let report: Report = tokio::task::spawn_blocking(move || {
        let mut backtest = Backtest::new(&candidate).against(in_force.as_ref());
        for stored in &inputs {
            backtest.replay(Replay {
                id: &stored.id,
                state: &stored.state,
                change_type: &stored.change_type,
                outcome: stored.outcome.as_deref(),
                input: &stored.input,
            })?;
        }
        Ok::<Report, String>(backtest.report())
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(|e| ApiError::invalid_field("source", e))?;
    let verdict = |v: steward_core::policy::Verdict| v.as_str();
    Ok(BacktestResult {
        policy_set: report.policy_set.clone(),
        since: super::when(from),
        replayed: report.replayed,
        cut,
        would_deny: report.would_deny.len(),
        would_warn: report.would_warn.len(),
        denied_that_failed: report.denied_that_failed,
        allowed_failure_rate: percent(report.allowed_failure_rate()),
        actual_failure_rate: percent(report.actual_failure_rate()),
        changed: report
            .changed
            .iter()
            .map(|c| ChangedRow {
                id: c.id.clone(),
                change_type: c.change_type.clone(),
                state: c.state.clone(),
                outcome: c.outcome.clone().unwrap_or_else(|| "not finished".into()),
                before: verdict(c.before),
                after: verdict(c.after),
                reasons: c.reasons.join("; "),
            })
            .collect(),
    })
}
