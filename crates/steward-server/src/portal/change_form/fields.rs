//! The change form's fields: what a browser posts, read back into the change document the API
//! takes (`POST /api/v1/changes`), and the core's field errors mapped back onto the inputs they
//! are about.
//!
//! The form is flat, as HTML forms are: `impact_data` for `impact.data`, one target per checked
//! box (the key repeats), links one per line, and steps and verification checks as numbered
//! rows (`step-0-name`, `check-1-kind`, …) whose blank rows are left out. Turning it into the
//! document is all this module does: it judges nothing the core judges (`ChangeRequest::parse`
//! names every bad field, with the document's paths), and only says what the document cannot
//! carry at all — a time it cannot read, a number that is not one, a `key=value` line without
//! `=`. Those are reported under the document path they would have filled, so one mapping
//! (`messages::FieldMessages`) puts every message next to its input.

use super::rows::{CheckRow, StepRow, blank, put_lines, put_text, put_time, put_whole};
use crate::error::ApiError;
use serde_json::{Map, Value, json};
use steward_core::execution::{MAX_CHECKS, MAX_STEPS};
use steward_core::submission::FieldError;

/// Which button sent the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(in crate::portal::change_form) enum Action {
    /// Create the change and send it for approval.
    #[default]
    Submit,
    /// Create the change as a draft.
    Draft,
    /// Show the form again with the preview filled in (the script does this without a reload).
    Preview,
    /// Show the form again with one more empty step row.
    AddStep,
    /// Show the form again with one more empty check row.
    AddCheck,
}

/// The change form as posted: every value kept as typed, so a refused form comes back as it was.
#[derive(Debug, Clone)]
pub(in crate::portal::change_form) struct ChangeForm {
    pub title: String,
    pub description: String,
    pub category: String,
    pub environment: String,
    pub targets: Vec<String>,
    pub catalog_item: String,
    pub emergency: bool,
    pub justification: String,
    pub impact_data: String,
    pub impact_availability: String,
    pub impact_compliance: String,
    pub impact_rollback_complexity: String,
    /// UTC, as a `datetime-local` input sends it (`2026-12-01T22:00`); an offset is honoured.
    pub window_start: String,
    pub window_end: String,
    pub implementation_plan: String,
    pub rollback_plan: String,
    pub verification_plan: String,
    /// One per line.
    pub links: String,
    pub backup_reference: String,
    pub backup_verified_at: String,
    pub pipeline_commit: String,
    pub pipeline_run: String,
    pub pipeline_artifact_digest: String,
    pub irreversible: bool,
    pub steps: Vec<StepRow>,
    pub verification_period_seconds: String,
    pub checks: Vec<CheckRow>,
    pub csrf: Option<String>,
    pub action: Action,
}

impl Default for ChangeForm {
    /// An empty form: one step row and one check row to start from.
    fn default() -> Self {
        ChangeForm {
            title: String::new(),
            description: String::new(),
            category: String::new(),
            environment: String::new(),
            targets: Vec::new(),
            catalog_item: String::new(),
            emergency: false,
            justification: String::new(),
            impact_data: String::new(),
            impact_availability: String::new(),
            impact_compliance: String::new(),
            impact_rollback_complexity: String::new(),
            window_start: String::new(),
            window_end: String::new(),
            implementation_plan: String::new(),
            rollback_plan: String::new(),
            verification_plan: String::new(),
            links: String::new(),
            backup_reference: String::new(),
            backup_verified_at: String::new(),
            pipeline_commit: String::new(),
            pipeline_run: String::new(),
            pipeline_artifact_digest: String::new(),
            irreversible: false,
            steps: vec![StepRow::default()],
            verification_period_seconds: String::new(),
            checks: vec![CheckRow::default()],
            csrf: None,
            action: Action::Submit,
        }
    }
}

impl ChangeForm {
    /// Reads a form-encoded body. Keys repeat (`targets`), and rows are numbered, which
    /// `serde_urlencoded` cannot read into a struct, so the body is read as pairs.
    pub(super) fn from_pairs(body: &[u8]) -> Result<ChangeForm, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::BadRequest(format!("the form could not be read: {e}")))?;
        let mut form = ChangeForm {
            steps: Vec::new(),
            checks: Vec::new(),
            ..ChangeForm::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "title" => form.title = value,
                "description" => form.description = value,
                "category" => form.category = value,
                "environment" => form.environment = value,
                "targets" => form.targets.push(value),
                "catalog_item" => form.catalog_item = value,
                "emergency" => form.emergency = !value.is_empty(),
                "justification" => form.justification = value,
                "impact_data" => form.impact_data = value,
                "impact_availability" => form.impact_availability = value,
                "impact_compliance" => form.impact_compliance = value,
                "impact_rollback_complexity" => form.impact_rollback_complexity = value,
                "window_start" => form.window_start = value,
                "window_end" => form.window_end = value,
                "implementation_plan" => form.implementation_plan = value,
                "rollback_plan" => form.rollback_plan = value,
                "verification_plan" => form.verification_plan = value,
                "links" => form.links = value,
                "backup_reference" => form.backup_reference = value,
                "backup_verified_at" => form.backup_verified_at = value,
                "pipeline_commit" => form.pipeline_commit = value,
                "pipeline_run" => form.pipeline_run = value,
                "pipeline_artifact_digest" => form.pipeline_artifact_digest = value,
                "irreversible" => form.irreversible = !value.is_empty(),
                "verification_period_seconds" => form.verification_period_seconds = value,
                "csrf" => form.csrf = Some(value),
                "action" => {
                    form.action = match value.as_str() {
                        "draft" => Action::Draft,
                        "preview" => Action::Preview,
                        "add_step" => Action::AddStep,
                        "add_check" => Action::AddCheck,
                        _ => Action::Submit,
                    }
                }
                other => form.row_field(other, value)?,
            }
        }
        if form.steps.is_empty() {
            form.steps.push(StepRow::default());
        }
        if form.checks.is_empty() {
            form.checks.push(CheckRow::default());
        }
        Ok(form)
    }

    /// `step-<i>-<field>` or `check-<i>-<field>`; anything else is ignored, as browsers send
    /// only what the page has.
    fn row_field(&mut self, key: &str, value: String) -> Result<(), ApiError> {
        let Some((row, rest)) = key.split_once('-') else {
            return Ok(());
        };
        let Some((index, field)) = rest.split_once('-') else {
            return Ok(());
        };
        let Ok(index) = index.parse::<usize>() else {
            return Ok(());
        };
        let too_many =
            |what: &str, max: usize| ApiError::BadRequest(format!("at most {max} {what} rows"));
        match row {
            "step" => {
                if index >= MAX_STEPS {
                    return Err(too_many("step", MAX_STEPS));
                }
                if self.steps.len() <= index {
                    self.steps.resize_with(index + 1, StepRow::default);
                }
                if let Some(slot) = self.steps[index].field(field) {
                    *slot = value;
                }
            }
            "check" => {
                if index >= MAX_CHECKS {
                    return Err(too_many("check", MAX_CHECKS));
                }
                if self.checks.len() <= index {
                    self.checks.resize_with(index + 1, CheckRow::default);
                }
                if let Some(slot) = self.checks[index].field(field) {
                    *slot = value;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether nothing has been typed yet (the preview says so rather than list every field).
    pub(super) fn is_untouched(&self) -> bool {
        let texts = [
            &self.title,
            &self.description,
            &self.category,
            &self.environment,
            &self.catalog_item,
            &self.justification,
            &self.impact_data,
            &self.impact_availability,
            &self.impact_compliance,
            &self.window_start,
            &self.window_end,
            &self.implementation_plan,
            &self.rollback_plan,
        ];
        texts.iter().all(|t| blank(t))
            && self.targets.is_empty()
            && self.steps.iter().all(StepRow::is_blank)
            && self.checks.iter().all(CheckRow::is_blank)
    }

    /// The change document `POST /api/v1/changes` takes, and what the form holds that no
    /// document could (an unreadable time, a number that is not one), by document path. The
    /// rows that were filled in, in order: `steps[k]` is form row `step_rows[k]`.
    pub(super) fn document(&self, draft: bool) -> Built {
        let mut errors = Vec::new();
        let mut doc = Map::new();
        for (key, text) in [
            ("title", &self.title),
            ("description", &self.description),
            ("category", &self.category),
            ("environment", &self.environment),
            ("catalog_item", &self.catalog_item),
            ("justification", &self.justification),
            ("implementation_plan", &self.implementation_plan),
            ("rollback_plan", &self.rollback_plan),
            ("verification_plan", &self.verification_plan),
        ] {
            put_text(&mut doc, key, text);
        }
        doc.insert("targets".into(), json!(self.targets));
        if self.emergency {
            doc.insert("emergency".into(), json!(true));
        }
        if self.irreversible {
            doc.insert("irreversible".into(), json!(true));
        }
        if draft {
            doc.insert("draft".into(), json!(true));
        }
        let mut impact = Map::new();
        put_text(&mut impact, "data", &self.impact_data);
        put_text(&mut impact, "availability", &self.impact_availability);
        put_text(&mut impact, "compliance", &self.impact_compliance);
        put_text(
            &mut impact,
            "rollback_complexity",
            &self.impact_rollback_complexity,
        );
        doc.insert("impact".into(), Value::Object(impact));
        if !blank(&self.window_start) || !blank(&self.window_end) {
            let mut window = Map::new();
            put_time(
                &mut window,
                "start",
                &self.window_start,
                "window",
                &mut errors,
            );
            put_time(&mut window, "end", &self.window_end, "window", &mut errors);
            doc.insert("window".into(), Value::Object(window));
        }
        put_lines(&mut doc, "links", &self.links);
        if !blank(&self.backup_reference) || !blank(&self.backup_verified_at) {
            let mut backup = Map::new();
            put_text(&mut backup, "reference", &self.backup_reference);
            put_time(
                &mut backup,
                "verified_at",
                &self.backup_verified_at,
                "backup",
                &mut errors,
            );
            doc.insert("backup".into(), Value::Object(backup));
        }
        let pipeline = [
            &self.pipeline_commit,
            &self.pipeline_run,
            &self.pipeline_artifact_digest,
        ];
        if pipeline.iter().any(|t| !blank(t)) {
            let mut map = Map::new();
            put_text(&mut map, "commit", &self.pipeline_commit);
            put_text(&mut map, "run", &self.pipeline_run);
            put_text(&mut map, "artifact_digest", &self.pipeline_artifact_digest);
            doc.insert("pipeline".into(), Value::Object(map));
        }
        let step_rows: Vec<usize> = (0..self.steps.len())
            .filter(|&i| !self.steps[i].is_blank())
            .collect();
        if !step_rows.is_empty() {
            let steps: Vec<Value> = (step_rows.iter().enumerate())
                .map(|(k, &i)| self.steps[i].document(&format!("steps[{k}]"), &mut errors))
                .collect();
            doc.insert("steps".into(), Value::Array(steps));
        }
        let check_rows: Vec<usize> = (0..self.checks.len())
            .filter(|&i| !self.checks[i].is_blank())
            .collect();
        if !check_rows.is_empty() || !blank(&self.verification_period_seconds) {
            let mut verification = Map::new();
            put_whole(
                &mut verification,
                "period_seconds",
                &self.verification_period_seconds,
                "verification",
                &mut errors,
            );
            let checks: Vec<Value> = (check_rows.iter().enumerate())
                .map(|(k, &i)| {
                    let path = format!("verification.checks[{k}]");
                    self.checks[i].document(&path, &mut errors)
                })
                .collect();
            verification.insert("checks".into(), Value::Array(checks));
            doc.insert("verification".into(), Value::Object(verification));
        }
        Built {
            document: Value::Object(doc),
            errors,
            step_rows,
            check_rows,
        }
    }
}

/// A form read into a document.
pub(in crate::portal::change_form) struct Built {
    pub document: Value,
    /// What the form holds that the document could not carry, by document path.
    pub errors: Vec<FieldError>,
    pub step_rows: Vec<usize>,
    pub check_rows: Vec<usize>,
}

impl Built {
    /// A change document posted as JSON: nothing to map, its paths are the rows'.
    pub(super) fn of_document(document: Value) -> Built {
        Built {
            document,
            errors: Vec::new(),
            step_rows: Vec::new(),
            check_rows: Vec::new(),
        }
    }

    /// The core's errors joined to the form's own, one message per path (the form's own first:
    /// an unreadable value is left out of the document, which the core would call missing).
    pub(super) fn with(&self, core: Vec<FieldError>) -> Vec<FieldError> {
        let mut all = self.errors.clone();
        for error in core {
            if !all.iter().any(|e| e.field == error.field) {
                all.push(error);
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::super::messages::FieldMessages;
    use super::*;

    fn form(body: &str) -> ChangeForm {
        ChangeForm::from_pairs(body.as_bytes()).expect("form")
    }

    #[test]
    fn a_filled_form_becomes_the_apis_document() {
        let f = form(
            "title=T&description=D&category=model-deployment&environment=staging\
             &targets=a&targets=b&impact_data=low&impact_availability=medium\
             &impact_compliance=high&implementation_plan=I&rollback_plan=R\
             &window_start=2026-12-01T22%3A00&window_end=2026-12-01T23%3A30\
             &links=https%3A%2F%2Fx%0D%0A%0D%0Ahttps%3A%2F%2Fy\
             &step-0-name=&step-0-kind=\
             &step-1-name=promote&step-1-kind=mlflow_alias&step-1-tracking_uri=http%3A%2F%2Fm\
             &step-1-model=fraud&step-1-alias=champion&step-1-version=7&step-1-program=ignored\
             &check-0-kind=metric&check-0-metric=accuracy&check-0-labels=model%3Dfraud\
             &verification_period_seconds=600&action=draft",
        );
        assert_eq!(f.action, Action::Draft);
        let built = f.document(true);
        assert!(built.errors.is_empty(), "{:?}", built.errors);
        assert_eq!(
            built.document,
            json!({
                "title": "T", "description": "D", "category": "model-deployment",
                "environment": "staging", "targets": ["a", "b"], "draft": true,
                "impact": {"data": "low", "availability": "medium", "compliance": "high"},
                "implementation_plan": "I", "rollback_plan": "R",
                "window": {"start": "2026-12-01T22:00:00+00:00", "end": "2026-12-01T23:30:00+00:00"},
                "links": ["https://x", "https://y"],
                "steps": [{"name": "promote", "kind": "mlflow_alias", "tracking_uri": "http://m",
                           "model": "fraud", "alias": "champion", "version": "7"}],
                "verification": {"period_seconds": 600, "checks": [
                    {"kind": "metric", "name": "accuracy", "labels": {"model": "fraud"}}]},
            })
        );
        assert_eq!(built.step_rows, vec![1]);
    }

    #[test]
    fn errors_land_next_to_their_inputs() {
        let f = form(
            "step-0-kind=&step-1-name=x&step-1-kind=command&step-1-timeout_seconds=soon\
             &window_start=tomorrow",
        );
        let built = f.document(false);
        let core = vec![
            FieldError::new("steps[0].undo", "no rollback path"),
            FieldError::new("steps[0].timeout_seconds", "is required"),
            FieldError::new("impact.data", "is required"),
            FieldError::new("targets[1]", "unknown target 'x'"),
            FieldError::new("(body)", "odd"),
        ];
        let all = built.with(core);
        let messages = FieldMessages::new(&all, &built);
        assert_eq!(
            messages.of("step-1"),
            [
                "timeout_seconds: must be a whole number (0 or more)",
                "undo: no rollback path"
            ]
        );
        assert!(messages.of("window_start")[0].contains("'tomorrow' is not a time"));
        assert_eq!(messages.of("impact_data"), ["is required"]);
        assert_eq!(messages.of("targets"), ["unknown target 'x'"]);
        assert_eq!(messages.of("form"), ["odd"]);
        assert_eq!(messages.summary[0].anchor, "change-window-start");
        assert_eq!(messages.summary[1].anchor, "step-1");
        assert_eq!(messages.summary[1].label, "Step 2");
        assert!(messages.has("targets") && !messages.has("title"));
    }

    #[test]
    fn forged_row_numbers_are_refused() {
        assert!(ChangeForm::from_pairs(b"step-9999999-name=x").is_err());
        assert!(form("").is_untouched());
        assert!(!form("title=x").is_untouched());
    }
}
