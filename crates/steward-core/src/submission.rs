//! Parsing a submitted change request, naming every bad field at once.
//!
//! The request arrives as a JSON document (the CLI turns YAML into the same JSON). Rather than
//! stop at the first serde error, [`ChangeRequest::parse`] checks each field and collects a
//! [`FieldError`] for every one that is missing, malformed or unknown, so a requester fixes their
//! file in one round trip. A `ChangeRequest` that exists is valid.

use crate::execution::{self, PlanStep, Verification};
use crate::names::TargetName;
use crate::target::{Environment, Level};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::str::FromStr;

/// One problem with one field, by its JSON path (`impact.data`, `targets[2]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub data: Level,
    pub availability: Level,
    pub compliance: Level,
    /// How hard undoing the change is. Optional in a request; `medium` when not stated, because
    /// an unassessed rollback should not score as the easiest kind.
    pub rollback_complexity: Level,
}

/// The backup or snapshot a change can be restored from, and whether a restore was proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Where it is: a snapshot id, an object URI, a registry version.
    pub reference: String,
    /// When a restore from it was last tested; absent means taken but never verified.
    pub verified_at: Option<DateTime<Utc>>,
}

/// The CI/CD run a change came from: what was built, where, and the artifact it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRef {
    /// The commit deployed (7 to 64 hex digits).
    pub commit: String,
    /// The pipeline run: a URL, or the CI system's run id.
    pub run: String,
    /// The artifact's content digest, `sha256:<64 hex>`, when the pipeline knows it.
    pub artifact_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A valid change request as the requester wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub title: String,
    pub description: String,
    pub category: String,
    pub targets: Vec<TargetName>,
    pub environment: Environment,
    pub impact: Impact,
    pub implementation_plan: String,
    pub rollback_plan: String,
    pub verification_plan: Option<String>,
    pub catalog_item: Option<String>,
    pub emergency: bool,
    pub justification: Option<String>,
    pub window: Option<Window>,
    pub links: Vec<String>,
    /// Stay in `draft` instead of entering approval.
    pub draft: bool,
    #[serde(default)]
    pub backup: Option<Backup>,
    /// Set when a pipeline raised the change (`steward change submit --from-pipeline`).
    #[serde(default)]
    pub pipeline: Option<PipelineRef>,
    /// The typed steps that implement the change, run by executors (empty: done by hand).
    #[serde(default)]
    pub steps: Vec<PlanStep>,
    /// Checks that run after the steps and roll the change back when one fails.
    #[serde(default)]
    pub verification: Option<Verification>,
    /// Declared when a step cannot be undone; such a change needs a manager's approval of it.
    #[serde(default)]
    pub irreversible: bool,
}

/// Every top-level field a submission may carry; anything else is refused as a likely typo.
pub const SUBMISSION_FIELDS: &[&str] = &[
    "title",
    "description",
    "category",
    "targets",
    "environment",
    "impact",
    "implementation_plan",
    "rollback_plan",
    "verification_plan",
    "catalog_item",
    "emergency",
    "justification",
    "window",
    "links",
    "draft",
    "backup",
    "pipeline",
    "steps",
    "verification",
    "irreversible",
];
/// Most targets one change may name; a larger change should be split so approvers can judge it.
pub const MAX_TARGETS: usize = 100;
const IMPACT_FIELDS: &[&str] = &["data", "availability", "compliance", "rollback_complexity"];
const WINDOW_FIELDS: &[&str] = &["start", "end"];
const BACKUP_FIELDS: &[&str] = &["reference", "verified_at"];
const PIPELINE_FIELDS: &[&str] = &["commit", "run", "artifact_digest"];

/// Reads fields out of one JSON object, recording an error for each bad one.
struct Reader<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
    errors: &'a mut Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn refuse_unknown(&mut self, known: &[&str]) {
        for key in self.object.keys() {
            if !known.contains(&key.as_str()) {
                let path = self.path(key);
                self.errors.push(FieldError::new(path, "unknown field"));
            }
        }
    }

    fn fail(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path(key);
        self.errors.push(FieldError::new(path, message));
    }

    fn optional_text(&mut self, key: &str, max_chars: usize) -> Option<String> {
        match self.object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.fail(key, "must not be empty");
                None
            }
            Some(Value::String(s)) if s.chars().count() > max_chars => {
                self.fail(key, format!("must be at most {max_chars} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => {
                self.fail(key, "must be a string");
                None
            }
        }
    }

    fn required_text(&mut self, key: &str, max_chars: usize) -> Option<String> {
        let present = !matches!(self.object.get(key), None | Some(Value::Null));
        let value = self.optional_text(key, max_chars);
        if !present {
            self.fail(key, "is required");
        }
        value
    }

    fn required_parsed<T: FromStr<Err = String>>(&mut self, key: &str) -> Option<T> {
        let text = self.required_text(key, 64)?;
        match text.parse() {
            Ok(value) => Some(value),
            Err(message) => {
                self.fail(key, message);
                None
            }
        }
    }

    fn optional_bool(&mut self, key: &str) -> bool {
        match self.object.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.fail(key, "must be true or false");
                false
            }
        }
    }

    fn timestamp(&mut self, key: &str) -> Option<DateTime<Utc>> {
        let text = self.required_text(key, 64)?;
        match DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.fail(
                    key,
                    "must be an RFC 3339 timestamp such as 2026-12-01T22:00:00Z",
                );
                None
            }
        }
    }

    fn object(&mut self, key: &str, required: bool) -> Option<&'a Map<String, Value>> {
        match self.object.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(key, "is required");
                }
                None
            }
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                self.fail(key, "must be an object");
                None
            }
        }
    }

    /// Each element as (its path, the string or `None` when it is not one), in order.
    fn string_list(&mut self, key: &str, required: bool) -> Option<Vec<(String, Option<String>)>> {
        match self.object.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(key, "is required");
                }
                None
            }
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{}[{i}]", self.path(key));
                    match item {
                        Value::String(s) => out.push((path, Some(s.clone()))),
                        _ => out.push((path, None)),
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.fail(key, "must be a list of strings");
                None
            }
        }
    }
}

impl ChangeRequest {
    /// Parses a submission document. On failure, returns one error per bad field.
    pub fn parse(document: &Value) -> Result<ChangeRequest, Vec<FieldError>> {
        let Value::Object(object) = document else {
            return Err(vec![FieldError::new(
                "(body)",
                "must be a JSON object with the change's fields",
            )]);
        };
        let mut errors = Vec::new();
        let mut r = Reader {
            object,
            prefix: "",
            errors: &mut errors,
        };
        r.refuse_unknown(SUBMISSION_FIELDS);

        let title = r.required_text("title", 200);
        let description = r.required_text("description", 20_000);
        let category = r.required_text("category", 64);
        if let Some(c) = &category
            && !c
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_')
        {
            r.fail(
                "category",
                "may contain only lowercase letters, digits, '-' and '_' (e.g. model-deployment)",
            );
        }
        let environment = r.required_parsed::<Environment>("environment");
        let implementation_plan = r.required_text("implementation_plan", 50_000);
        let rollback_plan = r.required_text("rollback_plan", 50_000);
        let verification_plan = r.optional_text("verification_plan", 50_000);
        let catalog_item = r.optional_text("catalog_item", 128);
        let emergency = r.optional_bool("emergency");
        let justification = r.optional_text("justification", 20_000);
        let draft = r.optional_bool("draft");
        let irreversible = r.optional_bool("irreversible");
        let steps = match object.get("steps") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => execution::parse_steps(value, r.errors),
        };
        let verification = match object.get("verification") {
            None | Some(Value::Null) => None,
            Some(value) => execution::parse_verification(value, r.errors),
        };
        for (i, step) in steps.iter().enumerate() {
            if !step.action.reversible() && !irreversible {
                r.errors.push(FieldError::new(
                    format!("steps[{i}].undo"),
                    format!(
                        "step '{}' has no rollback path: declare an undo command, or mark the change `irreversible: true` so approvers accept that explicitly",
                        step.name
                    ),
                ));
            }
        }
        if verification.is_some() && steps.is_empty() {
            r.fail(
                "verification",
                "needs steps: checks verify what the steps changed",
            );
        }
        if irreversible && catalog_item.is_some() {
            r.fail(
                "irreversible",
                "a standard catalog change must be reversible: drop catalog_item so approvers see it",
            );
        }
        if emergency && justification.is_none() {
            r.fail(
                "justification",
                "is required for an emergency change: say why it cannot wait (outage, zero-day, breach)",
            );
        }
        if emergency && catalog_item.is_some() {
            r.fail(
                "catalog_item",
                "an emergency change cannot also be a standard catalog change: drop one of them",
            );
        }

        let mut targets = Vec::new();
        if let Some(mut items) = r.string_list("targets", true) {
            if items.is_empty() {
                r.fail("targets", "must name at least one target");
            }
            if items.len() > MAX_TARGETS {
                r.fail(
                    "targets",
                    format!(
                        "names {} targets; at most {MAX_TARGETS} per change: split the change",
                        items.len()
                    ),
                );
                items.truncate(0);
            }
            let mut seen = std::collections::HashSet::new();
            for (path, name) in items {
                let Some(name) = name else {
                    r.errors.push(FieldError::new(path, "must be a string"));
                    continue;
                };
                match TargetName::parse(&name) {
                    Ok(t) if !seen.insert(t.clone()) => r.errors.push(FieldError::new(
                        path,
                        format!("target '{t}' is listed twice"),
                    )),
                    Ok(t) => targets.push(t),
                    Err(e) => r.errors.push(FieldError::new(path, e.to_string())),
                }
            }
        }
        let mut links = Vec::new();
        for (path, link) in r.string_list("links", false).unwrap_or_default() {
            match link {
                Some(link) => links.push(link),
                None => r.errors.push(FieldError::new(path, "must be a string")),
            }
        }

        let impact = r.object("impact", true).and_then(|map| {
            let mut r = Reader {
                object: map,
                prefix: "impact",
                errors: &mut *r.errors,
            };
            r.refuse_unknown(IMPACT_FIELDS);
            let data = r.required_parsed::<Level>("data");
            let availability = r.required_parsed::<Level>("availability");
            let compliance = r.required_parsed::<Level>("compliance");
            let rollback_complexity = if map.contains_key("rollback_complexity") {
                r.required_parsed::<Level>("rollback_complexity")
            } else {
                Some(Level::Medium)
            };
            Some(Impact {
                data: data?,
                availability: availability?,
                compliance: compliance?,
                rollback_complexity: rollback_complexity?,
            })
        });

        let window = r.object("window", false).and_then(|map| {
            let mut r = Reader {
                object: map,
                prefix: "window",
                errors: &mut *r.errors,
            };
            r.refuse_unknown(WINDOW_FIELDS);
            let start = r.timestamp("start");
            let end = r.timestamp("end");
            let (start, end) = (start?, end?);
            if end <= start {
                r.fail("end", "must be after window.start");
                return None;
            }
            Some(Window { start, end })
        });

        let backup = r.object("backup", false).and_then(|map| {
            let mut r = Reader {
                object: map,
                prefix: "backup",
                errors: &mut *r.errors,
            };
            r.refuse_unknown(BACKUP_FIELDS);
            let reference = r.required_text("reference", 1000);
            let verified_at = if map.get("verified_at").is_some_and(|v| !v.is_null()) {
                Some(r.timestamp("verified_at")?)
            } else {
                None
            };
            Some(Backup {
                reference: reference?,
                verified_at,
            })
        });

        let pipeline = r.object("pipeline", false).and_then(|map| {
            let mut r = Reader {
                object: map,
                prefix: "pipeline",
                errors: &mut *r.errors,
            };
            r.refuse_unknown(PIPELINE_FIELDS);
            let commit = r.required_text("commit", 64);
            if let Some(c) = &commit
                && (c.len() < 7 || !c.chars().all(|ch| ch.is_ascii_hexdigit()))
            {
                r.fail("commit", "must be a commit hash: 7 to 64 hex digits");
            }
            let run = r.required_text("run", 2000);
            let artifact_digest = r.optional_text("artifact_digest", 200);
            if let Some(d) = &artifact_digest
                && !d.strip_prefix("sha256:").is_some_and(|hex| {
                    hex.len() == 64 && hex.chars().all(|ch| ch.is_ascii_hexdigit())
                })
            {
                r.fail(
                    "artifact_digest",
                    "must be sha256: followed by 64 hex digits",
                );
            }
            Some(PipelineRef {
                commit: commit?,
                run: run?,
                artifact_digest,
            })
        });

        match (
            title,
            description,
            category,
            environment,
            impact,
            implementation_plan,
            rollback_plan,
        ) {
            (
                Some(title),
                Some(description),
                Some(category),
                Some(environment),
                Some(impact),
                Some(implementation_plan),
                Some(rollback_plan),
            ) if errors.is_empty() => Ok(ChangeRequest {
                title,
                description,
                category,
                targets,
                environment,
                impact,
                implementation_plan,
                rollback_plan,
                verification_plan,
                catalog_item,
                emergency,
                justification,
                window,
                links,
                draft,
                backup,
                pipeline,
                steps,
                verification,
                irreversible,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn valid_document() -> Value {
        json!({
            "title": "Promote fraud model v7",
            "description": "Move the champion alias to v7",
            "category": "model-deployment",
            "targets": ["fraud-scoring"],
            "environment": "production",
            "impact": {"data": "low", "availability": "medium", "compliance": "low"},
            "implementation_plan": "set alias champion to 7",
            "rollback_plan": "set alias champion to 6",
        })
    }

    fn check(edit: impl FnOnce(&mut Map<String, Value>), expected: &[(&str, &str)]) {
        let mut doc = valid_document();
        edit(doc.as_object_mut().expect("object"));
        let errors = ChangeRequest::parse(&doc).expect_err("should be refused");
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_valid_document_parses_with_defaults() {
        let request = ChangeRequest::parse(&valid_document()).expect("valid");
        assert_eq!(request.impact.rollback_complexity, Level::Medium);
        assert!(!request.emergency && !request.draft);
        assert_eq!(request.targets[0].as_str(), "fraud-scoring");
    }

    #[test]
    fn every_bad_field_is_named() {
        check(
            |d| {
                d.remove("title");
                d.insert("environment".into(), json!("prod"));
                d.insert(
                    "impact".into(),
                    json!({"data": "huge", "availability": "low"}),
                );
                d.insert("rolback_plan".into(), json!("typo"));
            },
            &[
                ("rolback_plan", "unknown field"),
                ("title", "is required"),
                (
                    "environment",
                    "'prod' is not one of: production, staging, development",
                ),
                ("impact.data", "'huge' is not one of: low, medium, high"),
                ("impact.compliance", "is required"),
            ],
        );
    }

    #[test]
    fn emergency_needs_a_justification_and_excludes_catalog_items() {
        check(
            |d| {
                d.insert("emergency".into(), json!(true));
                d.insert("catalog_item".into(), json!("security-patch"));
            },
            &[
                (
                    "justification",
                    "is required for an emergency change: say why it cannot wait (outage, zero-day, breach)",
                ),
                (
                    "catalog_item",
                    "an emergency change cannot also be a standard catalog change: drop one of them",
                ),
            ],
        );
    }

    #[test]
    fn targets_and_windows_are_checked() {
        check(
            |d| {
                d.insert("targets".into(), json!(["ok", "ok", "Bad Name", 3]));
                d.insert(
                    "window".into(),
                    json!({"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T09:00:00Z"}),
                );
            },
            &[
                ("targets[1]", "target 'ok' is listed twice"),
                (
                    "targets[2]",
                    "may contain only lowercase letters, digits, '-', '_' and '.', and must start with a letter or digit",
                ),
                ("targets[3]", "must be a string"),
                ("window.end", "must be after window.start"),
            ],
        );
        check(
            |d| {
                d.insert("targets".into(), json!([]));
            },
            &[("targets", "must name at least one target")],
        );
    }

    #[test]
    fn a_non_object_body_is_refused() {
        let errors = ChangeRequest::parse(&json!([1, 2])).expect_err("not an object");
        assert_eq!(errors[0].field, "(body)");
    }
}
