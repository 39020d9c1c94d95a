//! The change form (`/changes/new`): every field of a change request, grouped as a requester
//! thinks of them, with a live preview of what Steward would decide.
//!
//! The form is read into the document `POST /api/v1/changes` takes (`fields`) and created by
//! `api::changes::create_change`, the API's own path, so a change made here and one made by the
//! CLI are judged alike; "Save as draft" sends `draft: true`, as the API's drafts do. A refused
//! form comes back with every value kept and each bad field's message beside it (422), or with
//! the policy's or the calendar's reason (403, 409). The preview (`preview`) is
//! `api::policy::evaluate_request`, the evaluation behind `POST /api/v1/policy/evaluate`:
//! `POST /changes/preview` answers it as an HTML fragment, which `static/portal.js` swaps into
//! the panel as the person types; without the script, the "Preview" button re-renders the page
//! with the panel filled in. Both posts also take the change document as JSON (the API's shape,
//! plus `csrf` when a session carries it), for scripts and the authorization matrix.
//!
//! Targets are checkboxes and the catalog a select, read from the tenant's records: a person
//! picks what exists instead of typing names. Steps and checks are numbered rows of fields
//! (one row to start, "Add a step" for another, blank rows ignored), each kind's fields in a
//! group the script shows only for the chosen kind: rows of labelled fields are what a person
//! fills in without learning a syntax, and they post without any script.

mod fields;
mod messages;
mod preview;
mod rows;

use super::answer::{Chrome, answer, chrome, render};
use super::signin::see_other;
use super::{Viewer, Visitor, is_json, parse_form};
use crate::AppState;
use crate::api::changes::create_change;
use crate::auth::{Permit, ReadRecords, SubmitChanges};
use crate::error::ApiError;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use fields::{Action, Built, ChangeForm};
use messages::FieldMessages;
use preview::{PreviewView, incomplete, preview_built, preview_form};
use rows::{CHECK_KINDS, CheckRow, STEP_KINDS, StepRow};
use serde_json::Value;
use steward_core::catalog::CatalogItem;
use steward_core::execution::{MAX_CHECKS, MAX_STEPS};
use steward_core::submission::ChangeRequest;
use steward_core::target::{Environment, Level, Target};

/// How many records one listing reads at a time, and at most in all: a tenant with more
/// targets than this needs a search box, not a longer list.
const PAGE: i64 = 500;
const MAX_CHOICES: usize = 5000;

/// One option of a select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>, current: &str) -> Vec<Choice> {
    values
        .into_iter()
        .map(|(value, label)| Choice {
            value: value.to_owned(),
            label: label.to_owned(),
            selected: value == current,
        })
        .collect()
}

/// A target to tick.
struct TargetChoice {
    name: String,
    /// `model_deployment · staging · criticality low · pii`
    facts: String,
    checked: bool,
}

/// A catalog item to pick, with the conditions a request must meet to match it.
struct CatalogChoice {
    name: String,
    description: String,
    conditions: String,
    selected: bool,
}

struct StepView {
    slot: String,
    number: usize,
    row: StepRow,
    kinds: Vec<Choice>,
}

struct CheckView {
    slot: String,
    number: usize,
    row: CheckRow,
    kinds: Vec<Choice>,
    directions: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "change_form.html")]
struct FormPage {
    chrome: Chrome,
    form: ChangeForm,
    errors: FieldMessages,
    /// Why the submission was refused as a whole: a policy's denial, a freeze.
    refusal: String,
    environments: Vec<Choice>,
    impact_data: Vec<Choice>,
    impact_availability: Vec<Choice>,
    impact_compliance: Vec<Choice>,
    impact_rollback: Vec<Choice>,
    targets: Vec<TargetChoice>,
    catalog: Vec<CatalogChoice>,
    categories: Vec<String>,
    steps: Vec<StepView>,
    checks: Vec<CheckView>,
    may_add_step: bool,
    may_add_check: bool,
    preview: PreviewView,
}

/// The preview alone, as `POST /changes/preview` answers it.
#[derive(Template)]
#[template(path = "change_preview.html")]
struct PreviewFragment {
    preview: PreviewView,
}

/// Every record of a paged listing, up to [`MAX_CHOICES`].
async fn read_all<T, F, Fut>(mut page: F, key: fn(&T) -> String) -> Result<Vec<T>, ApiError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, steward_store::StoreError>>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let items = page(after.take()).await?;
        let full = items.len() as i64 >= PAGE;
        after = items.last().map(key);
        all.extend(items);
        if !full || all.len() >= MAX_CHOICES {
            return Ok(all);
        }
    }
}

fn target_facts(t: &Target) -> String {
    let mut facts = vec![
        t.kind.to_string(),
        t.environment.to_string(),
        format!("criticality {}", t.criticality),
    ];
    facts.extend(t.regulated.iter().map(|r| r.to_string()));
    if let Some(parent) = &t.parent {
        facts.push(format!("runs on {parent}"));
    }
    facts.join(" · ")
}

fn catalog_conditions(item: &CatalogItem) -> String {
    let mut conditions = Vec::new();
    if !item.categories.is_empty() {
        conditions.push(format!("category {}", item.categories.join(" or ")));
    }
    if !item.target_kinds.is_empty() {
        let kinds: Vec<&str> = item.target_kinds.iter().map(|k| k.as_str()).collect();
        conditions.push(format!("targets of kind {}", kinds.join(" or ")));
    }
    if !item.environments.is_empty() {
        let envs: Vec<&str> = item.environments.iter().map(|e| e.as_str()).collect();
        conditions.push(format!("in {}", envs.join(" or ")));
    }
    conditions.push(format!("impact at most {}", item.max_impact));
    if !item.allow_regulated_production {
        conditions.push("no regulated data in production".into());
    }
    conditions.join("; ")
}

fn levels(current: &str, blank: &str) -> Vec<Choice> {
    let mut all = vec![("", blank)];
    all.extend(Level::ALL.iter().map(|l| (l.as_str(), l.as_str())));
    choices(all, current)
}

/// Renders the form page with `status`.
#[allow(clippy::too_many_arguments)]
async fn page(
    viewer: &Viewer,
    submitter: &Permit<'_, SubmitChanges>,
    form: ChangeForm,
    errors: FieldMessages,
    refusal: String,
    preview: PreviewView,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let store = submitter.also::<ReadRecords>()?.store();
    let targets = read_all(
        |after| {
            let store = store.clone();
            async move { store.list_targets_after(after.as_deref(), PAGE).await }
        },
        |t: &Target| t.name.to_string(),
    )
    .await?;
    let catalog = read_all(
        |after| {
            let store = store.clone();
            async move { store.list_catalog(after.as_deref(), PAGE).await }
        },
        |item: &CatalogItem| item.name.clone(),
    )
    .await?;
    let mut target_choices: Vec<TargetChoice> = (targets.iter())
        .map(|t| TargetChoice {
            name: t.name.to_string(),
            facts: target_facts(t),
            checked: form.targets.iter().any(|n| n == t.name.as_str()),
        })
        .collect();
    // A ticked target that is gone (or never was) stays ticked, so its message has a place.
    for name in &form.targets {
        if !target_choices.iter().any(|t| &t.name == name) {
            target_choices.push(TargetChoice {
                name: name.clone(),
                facts: "not a target of your tenant".into(),
                checked: true,
            });
        }
    }
    let mut categories: Vec<String> = (catalog.iter())
        .flat_map(|item| item.categories.iter().cloned())
        .chain(["model-deployment".to_owned()])
        .collect();
    categories.sort();
    categories.dedup();
    let mut catalog_choices = vec![CatalogChoice {
        name: String::new(),
        description: "none: a normal change, routed by its risk".into(),
        conditions: String::new(),
        selected: form.catalog_item.is_empty(),
    }];
    catalog_choices.extend(catalog.iter().map(|item| CatalogChoice {
        name: item.name.clone(),
        description: item.description.clone(),
        conditions: catalog_conditions(item),
        selected: item.name == form.catalog_item,
    }));
    let environments = {
        let mut all = vec![("", "— choose —")];
        all.extend(Environment::ALL.iter().map(|e| (e.as_str(), e.as_str())));
        choices(all, &form.environment)
    };
    let steps = (form.steps.iter().enumerate())
        .map(|(i, row)| StepView {
            slot: format!("step-{i}"),
            number: i + 1,
            kinds: choices(
                std::iter::once(("", "— choose —")).chain(STEP_KINDS.iter().copied()),
                &row.kind,
            ),
            row: row.clone(),
        })
        .collect();
    let checks = (form.checks.iter().enumerate())
        .map(|(i, row)| CheckView {
            slot: format!("check-{i}"),
            number: i + 1,
            kinds: choices(
                std::iter::once(("", "— choose —")).chain(CHECK_KINDS.iter().copied()),
                &row.kind,
            ),
            directions: choices(
                [
                    ("", "higher is better (default)"),
                    ("higher_is_better", "higher is better"),
                    ("lower_is_better", "lower is better"),
                ],
                &row.direction,
            ),
            row: row.clone(),
        })
        .collect();
    let page = FormPage {
        chrome: chrome(viewer),
        environments,
        impact_data: levels(&form.impact_data, "— choose —"),
        impact_availability: levels(&form.impact_availability, "— choose —"),
        impact_compliance: levels(&form.impact_compliance, "— choose —"),
        impact_rollback: levels(
            &form.impact_rollback_complexity,
            "not assessed (counts as medium)",
        ),
        targets: target_choices,
        catalog: catalog_choices,
        categories,
        steps,
        checks,
        may_add_step: form.steps.len() < MAX_STEPS,
        may_add_check: form.checks.len() < MAX_CHECKS,
        form,
        errors,
        refusal,
        preview,
    };
    render(status, &page)
}

/// What a post to the form carried: the form's fields, or the change document as JSON.
enum Input {
    Form(Box<ChangeForm>),
    Document(Value),
}

/// The post's fields and its CSRF token.
fn read_input(headers: &HeaderMap, body: &[u8]) -> Result<(Input, Option<String>), ApiError> {
    if is_json(headers) {
        let mut document: Value = parse_form(headers, body)?;
        let csrf = (document.as_object_mut())
            .and_then(|o| o.remove("csrf"))
            .and_then(|c| c.as_str().map(str::to_owned));
        Ok((Input::Document(document), csrf))
    } else {
        let form = ChangeForm::from_pairs(body)?;
        let csrf = form.csrf.clone();
        Ok((Input::Form(Box::new(form)), csrf))
    }
}

/// The empty change form.
#[utoipa::path(get, path = "/changes/new", tag = "portal",
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the change form"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer may not submit changes")))]
pub async fn new_change(State(state): State<AppState>, visitor: Visitor) -> Response {
    let html = visitor.html;
    answer(&state, html, blank_form(&state, visitor).await)
}

async fn blank_form(state: &AppState, visitor: Visitor) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let submitter = viewer.caller.may::<SubmitChanges>(state)?;
    let form = ChangeForm::default();
    let (errors, preview) = (FieldMessages::default(), PreviewView::empty());
    page(
        &viewer,
        &submitter,
        form,
        errors,
        String::new(),
        preview,
        StatusCode::OK,
    )
    .await
}

/// Create the change the form describes (`action=submit`, or `action=draft` to keep it a
/// draft) through the API's own path, then go to it; or show the form again with the preview
/// (`action=preview`) or another step or check row (`add_step`, `add_check`). JSON is the
/// change document `POST /api/v1/changes` takes.
#[utoipa::path(post, path = "/changes/new", tag = "portal",
    request_body(content = crate::api::changes::SubmitChange, content_type = "application/x-www-form-urlencoded",
        description = "the form's fields (or, as JSON, the change document of `POST /api/v1/changes`)"),
    responses(
        (status = 303, description = "created: to the change's page", headers(("Location" = String))),
        (status = 200, content_type = "text/html", body = String, description = "the form again, with the preview or another row"),
        (status = 401, description = "signed out"),
        (status = 403, description = "the form's CSRF token is wrong, the viewer may not submit changes, or a policy denies the change (the form again, saying why)"),
        (status = 409, description = "the window falls in a freeze (the form again, saying why)"),
        (status = 422, description = "bad fields: the form again, each message beside its field")))]
pub async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    answer(
        &state,
        html,
        post_form(&state, visitor, &headers, &body).await,
    )
}

async fn post_form(
    state: &AppState,
    visitor: Visitor,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    // A form that is not this session's is refused before anything else is looked at.
    let input = read_input(headers, body);
    viewer.check_form(input.as_ref().ok().and_then(|(_, csrf)| csrf.as_deref()))?;
    let submitter = viewer.caller.may::<SubmitChanges>(state)?;
    let mut form = match input?.0 {
        Input::Document(document) => {
            let change = create_change(state, &submitter, &document).await?;
            return see_other(&format!("/changes/{}", change.id), &[]);
        }
        Input::Form(form) => *form,
    };
    let store = submitter.store();
    let principal = submitter.principal();
    let again = |form, errors, refusal, preview, status| {
        page(&viewer, &submitter, form, errors, refusal, preview, status)
    };
    let draft = match form.action {
        Action::AddStep | Action::AddCheck => {
            if form.action == Action::AddStep && form.steps.len() < MAX_STEPS {
                form.steps.push(StepRow::default());
            }
            if form.action == Action::AddCheck && form.checks.len() < MAX_CHECKS {
                form.checks.push(CheckRow::default());
            }
            let (preview, _) = preview_form(state, &store, principal, &form).await?;
            let errors = FieldMessages::default();
            return again(form, errors, String::new(), preview, StatusCode::OK).await;
        }
        Action::Preview => {
            let (preview, problems) = preview_form(state, &store, principal, &form).await?;
            let errors = FieldMessages::new(&problems, &form.document(true));
            return again(form, errors, String::new(), preview, StatusCode::OK).await;
        }
        Action::Draft => true,
        Action::Submit => false,
    };
    let built = form.document(draft);
    if !built.errors.is_empty() {
        // What the form could not carry would be missing from the change: nothing is created.
        let core = ChangeRequest::parse(&built.document)
            .err()
            .unwrap_or_default();
        return refused_fields(form, &built, core, again).await;
    }
    let refusal = match create_change(state, &submitter, &built.document).await {
        Ok(change) => return see_other(&format!("/changes/{}", change.id), &[]),
        Err(ApiError::Invalid(fields)) => return refused_fields(form, &built, fields, again).await,
        Err(ApiError::PolicyDenied { message, .. }) => (message, StatusCode::FORBIDDEN),
        Err(ApiError::Conflict { message, .. }) => (message, StatusCode::CONFLICT),
        Err(other) => return Err(other),
    };
    // Refused as a whole: the preview says which rules and freezes refused it.
    let (preview, _) = preview_built(state, &store, principal, &built).await?;
    let (message, status) = refusal;
    again(form, FieldMessages::default(), message, preview, status).await
}

/// The form again (422), each bad field's message beside it.
async fn refused_fields<F, Fut>(
    form: ChangeForm,
    built: &Built,
    core: Vec<steward_core::submission::FieldError>,
    again: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(ChangeForm, FieldMessages, String, PreviewView, StatusCode) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let (preview, errors) = incomplete(built, core);
    let errors = FieldMessages::new(&errors, built);
    again(
        form,
        errors,
        String::new(),
        preview,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// What Steward would decide about the form as it stands, as an HTML fragment for the form's
/// preview panel: classification and routing, risk score and factors, each rule's verdict,
/// obligations, the calendar. Stores nothing. JSON is the change document
/// `POST /api/v1/policy/evaluate` takes.
#[utoipa::path(post, path = "/changes/preview", tag = "portal",
    request_body(content = crate::api::changes::SubmitChange, content_type = "application/x-www-form-urlencoded",
        description = "the change form's fields (or, as JSON, the change document)"),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the preview, a fragment of HTML"),
        (status = 401, description = "signed out"),
        (status = 403, description = "the form's CSRF token is wrong, or the viewer may not submit changes")))]
pub async fn live_preview(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = visitor.html;
    answer(
        &state,
        html,
        fragment(&state, visitor, &headers, &body).await,
    )
}

async fn fragment(
    state: &AppState,
    visitor: Visitor,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let input = read_input(headers, body);
    viewer.check_form(input.as_ref().ok().and_then(|(_, csrf)| csrf.as_deref()))?;
    let submitter = viewer.caller.may::<SubmitChanges>(state)?;
    let store = submitter.store();
    let principal = submitter.principal();
    let (preview, _) = match input?.0 {
        Input::Form(form) => preview_form(state, &store, principal, &form).await?,
        Input::Document(document) => {
            let built = Built::of_document(document);
            preview_built(state, &store, principal, &built).await?
        }
    };
    render(StatusCode::OK, &PreviewFragment { preview })
}
