//! Field errors placed beside the inputs they are about. Errors name document paths
//! (`impact.data`, `steps[0].undo`, `targets[2]`); each is mapped to the form field that holds
//! it (rows by the form's own numbering, which skips no blank row), and to the element id the
//! error summary atop the form links to.

use super::fields::Built;
use std::collections::BTreeMap;
use steward_core::submission::FieldError;

/// Field errors placed next to the inputs they are about: the key is the form field (or the
/// row, `step-0`, `check-2`) and each message is prefixed with what in it is wrong when the
/// document's path goes deeper (`tracking_uri: must be an http(s) URL`).
#[derive(Debug, Default)]
pub(super) struct FieldMessages {
    by_field: BTreeMap<String, Vec<String>>,
    /// Every message in order, with the field it belongs to, for the summary atop the form.
    pub summary: Vec<Summary>,
}

/// One line of the error summary: a link to the input, what it is called, and the message.
#[derive(Debug)]
pub(super) struct Summary {
    /// The input's element id, when the form has one.
    pub anchor: String,
    pub label: String,
    pub message: String,
}

impl FieldMessages {
    pub(super) fn new(errors: &[FieldError], built: &Built) -> FieldMessages {
        let mut messages = FieldMessages::default();
        for error in errors {
            let (field, detail) = form_field(&error.field, built);
            let message = if detail.is_empty() {
                error.message.clone()
            } else {
                format!("{detail}: {}", error.message)
            };
            messages.summary.push(Summary {
                anchor: anchor(&field),
                label: label(&field),
                message: message.clone(),
            });
            messages.by_field.entry(field).or_default().push(message);
        }
        messages
    }

    /// The messages about `field` (empty when it is fine).
    pub(super) fn of(&self, field: &str) -> &[String] {
        self.by_field.get(field).map_or(&[], Vec::as_slice)
    }

    /// Whether `field` has a message (its input is marked `aria-invalid`).
    pub(super) fn has(&self, field: &str) -> bool {
        self.by_field.contains_key(field)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_field.is_empty()
    }
}

/// The form field a document path is about, and the rest of the path below it.
fn form_field(path: &str, built: &Built) -> (String, String) {
    // `steps[k]…` and `verification.checks[k]…` are rows; the index is the document's, which
    // skips blank rows, so it is mapped back to the form's row.
    let row = |rest: &str, rows: &[usize], prefix: &str| -> Option<(String, String)> {
        let (index, below) = rest.split_once(']')?;
        let k: usize = index.parse().ok()?;
        let row = rows.get(k).copied().unwrap_or(k);
        Some((
            format!("{prefix}-{row}"),
            below.trim_start_matches('.').to_owned(),
        ))
    };
    if let Some(rest) = path.strip_prefix("steps[")
        && let Some(found) = row(rest, &built.step_rows, "step")
    {
        return found;
    }
    if let Some(rest) = path.strip_prefix("verification.checks[")
        && let Some(found) = row(rest, &built.check_rows, "check")
    {
        return found;
    }
    let head = path.split(['[', '.']).next().unwrap_or(path);
    let field = match path {
        "impact.data" | "impact.availability" | "impact.compliance" => path.replace('.', "_"),
        "impact.rollback_complexity" => "impact_rollback_complexity".into(),
        "window.start" | "window" => "window_start".into(),
        "window.end" => "window_end".into(),
        "backup.verified_at" => "backup_verified_at".into(),
        "verification.period_seconds" => "verification_period_seconds".into(),
        _ if head == "backup" => "backup_reference".into(),
        _ if head == "pipeline" => match path {
            "pipeline.run" => "pipeline_run".into(),
            "pipeline.artifact_digest" => "pipeline_artifact_digest".into(),
            _ => "pipeline_commit".into(),
        },
        _ if head == "impact" => "impact_data".into(),
        _ if matches!(
            head,
            "title"
                | "description"
                | "category"
                | "environment"
                | "targets"
                | "catalog_item"
                | "emergency"
                | "justification"
                | "implementation_plan"
                | "rollback_plan"
                | "verification_plan"
                | "links"
                | "irreversible"
                | "steps"
                | "verification"
        ) =>
        {
            head.to_owned()
        }
        _ => "form".into(),
    };
    // `targets[2]` says which target; the message names it already.
    (field, String::new())
}

/// The element id of a form field (what the summary links to).
fn anchor(field: &str) -> String {
    match field {
        "form" => String::new(),
        f if f.starts_with("step-") || f.starts_with("check-") => f.to_owned(),
        f => format!("change-{}", f.replace('_', "-")),
    }
}

/// What a form field is called on the form, for the summary and the preview.
fn label(field: &str) -> String {
    let row = |prefix: &str, what: &str| {
        field
            .strip_prefix(prefix)
            .and_then(|i| i.parse::<usize>().ok())
            .map(|i| format!("{what} {}", i + 1))
    };
    if let Some(label) = row("step-", "Step").or_else(|| row("check-", "Check")) {
        return label;
    }
    match field {
        "title" => "Title",
        "description" => "Description",
        "category" => "Category",
        "environment" => "Environment",
        "targets" => "Targets",
        "catalog_item" => "Catalog item",
        "emergency" => "Emergency",
        "justification" => "Justification",
        "impact_data" => "Impact on data",
        "impact_availability" => "Impact on availability",
        "impact_compliance" => "Impact on compliance",
        "impact_rollback_complexity" => "Rollback complexity",
        "window_start" => "Window start",
        "window_end" => "Window end",
        "implementation_plan" => "Implementation plan",
        "rollback_plan" => "Rollback plan",
        "verification_plan" => "Verification plan",
        "links" => "Links",
        "backup_reference" => "Backup",
        "backup_verified_at" => "Backup verified at",
        "pipeline_commit" => "Pipeline commit",
        "pipeline_run" => "Pipeline run",
        "pipeline_artifact_digest" => "Artifact digest",
        "irreversible" => "Irreversible",
        "steps" => "Steps",
        "verification" | "verification_period_seconds" => "Verification",
        _ => "The form",
    }
    .to_owned()
}
