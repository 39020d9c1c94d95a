//! The change form's step and check rows: what each row holds as typed, and the document entry
//! (`steps[i]`, `verification.checks[i]`) each kind makes of it. A kind reads only its own
//! fields, so what a person typed into another kind's fields (visible without the script) is
//! left out rather than refused as unknown. The small readers below (`put_text`, `put_whole`,
//! …) are the form's too: an empty field is absent, so the core's default applies.

use serde_json::{Map, Value, json};
use steward_core::submission::FieldError;
use steward_core::time::{Tz, parse_instant};

/// What a step can do, as the kind select offers it.
pub(in crate::portal::change_form) const STEP_KINDS: &[(&str, &str)] = &[
    ("command", "Run a command"),
    ("webhook", "Call a signed webhook"),
    ("mlflow_alias", "Move an MLflow model alias"),
    ("mlflow_tags", "Set MLflow tags"),
];

/// What a verification check can watch.
pub(in crate::portal::change_form) const CHECK_KINDS: &[(&str, &str)] = &[
    ("metric", "A metric against its pre-change baseline"),
    ("complaints", "User complaints per hour"),
    ("compliance", "A compliance test (command or webhook)"),
    ("security_controls", "Security controls still report"),
];

/// One step row, as typed. Each kind reads only its own fields.
#[derive(Debug, Clone, Default)]
pub(in crate::portal::change_form) struct StepRow {
    pub name: String,
    pub kind: String,
    pub program: String,
    /// One argument per line.
    pub args: String,
    pub undo_program: String,
    pub undo_args: String,
    pub timeout_seconds: String,
    pub url: String,
    pub secret: String,
    /// JSON sent as the webhook's body.
    pub body: String,
    pub retries: String,
    pub tracking_uri: String,
    pub model: String,
    pub alias: String,
    pub version: String,
    /// One `key=value` per line.
    pub tags: String,
}

/// One verification check row, as typed.
#[derive(Debug, Clone, Default)]
pub(in crate::portal::change_form) struct CheckRow {
    pub kind: String,
    /// The metric's name (`metric`), or the series counted (`complaints`, `security_controls`).
    pub metric: String,
    /// One `key=value` per line.
    pub labels: String,
    pub direction: String,
    pub max_degradation_percent: String,
    pub baseline_seconds: String,
    pub prometheus_url: String,
    pub prometheus_query: String,
    pub max_per_hour: String,
    pub program: String,
    pub args: String,
    pub webhook_url: String,
    pub webhook_secret: String,
    pub timeout_seconds: String,
    pub max_silence_seconds: String,
}

impl StepRow {
    pub(super) fn field(&mut self, name: &str) -> Option<&mut String> {
        Some(match name {
            "name" => &mut self.name,
            "kind" => &mut self.kind,
            "program" => &mut self.program,
            "args" => &mut self.args,
            "undo_program" => &mut self.undo_program,
            "undo_args" => &mut self.undo_args,
            "timeout_seconds" => &mut self.timeout_seconds,
            "url" => &mut self.url,
            "secret" => &mut self.secret,
            "body" => &mut self.body,
            "retries" => &mut self.retries,
            "tracking_uri" => &mut self.tracking_uri,
            "model" => &mut self.model,
            "alias" => &mut self.alias,
            "version" => &mut self.version,
            "tags" => &mut self.tags,
            _ => return None,
        })
    }

    pub(super) fn is_blank(&self) -> bool {
        let mut copy = self.clone();
        [
            "name",
            "kind",
            "program",
            "args",
            "undo_program",
            "undo_args",
        ]
        .iter()
        .chain(&["timeout_seconds", "url", "secret", "body", "retries"])
        .chain(&["tracking_uri", "model", "alias", "version", "tags"])
        .all(|f| copy.field(f).is_none_or(|v| v.trim().is_empty()))
    }

    /// The step as the document's `steps[i]`; what cannot be carried is an error at `path`.
    pub(super) fn document(&self, path: &str, errors: &mut Vec<FieldError>) -> Value {
        let mut step = Map::new();
        put_text(&mut step, "name", &self.name);
        put_text(&mut step, "kind", &self.kind);
        match self.kind.as_str() {
            "command" => {
                put_text(&mut step, "program", &self.program);
                put_lines(&mut step, "args", &self.args);
                if !blank(&self.undo_program) || !blank(&self.undo_args) {
                    let mut undo = Map::new();
                    put_text(&mut undo, "program", &self.undo_program);
                    put_lines(&mut undo, "args", &self.undo_args);
                    step.insert("undo".into(), Value::Object(undo));
                }
                put_whole(
                    &mut step,
                    "timeout_seconds",
                    &self.timeout_seconds,
                    path,
                    errors,
                );
            }
            "webhook" => {
                put_text(&mut step, "url", &self.url);
                put_text(&mut step, "secret", &self.secret);
                if !blank(&self.body) {
                    match serde_json::from_str::<Value>(&self.body) {
                        Ok(body) => {
                            step.insert("body".into(), body);
                        }
                        Err(e) => errors.push(FieldError::new(
                            format!("{path}.body"),
                            format!("must be JSON ({e})"),
                        )),
                    }
                }
                put_whole(
                    &mut step,
                    "timeout_seconds",
                    &self.timeout_seconds,
                    path,
                    errors,
                );
                put_whole(&mut step, "retries", &self.retries, path, errors);
            }
            "mlflow_alias" => {
                put_text(&mut step, "tracking_uri", &self.tracking_uri);
                put_text(&mut step, "model", &self.model);
                put_text(&mut step, "alias", &self.alias);
                put_text(&mut step, "version", &self.version);
            }
            "mlflow_tags" => {
                put_text(&mut step, "tracking_uri", &self.tracking_uri);
                put_text(&mut step, "model", &self.model);
                put_text(&mut step, "version", &self.version);
                let tags = pairs(&self.tags, &format!("{path}.tags"), errors);
                step.insert("tags".into(), Value::Object(tags));
            }
            // No kind (or one the select does not offer): the core names what is missing.
            _ => {}
        }
        Value::Object(step)
    }
}

impl CheckRow {
    pub(super) fn field(&mut self, name: &str) -> Option<&mut String> {
        Some(match name {
            "kind" => &mut self.kind,
            "metric" => &mut self.metric,
            "labels" => &mut self.labels,
            "direction" => &mut self.direction,
            "max_degradation_percent" => &mut self.max_degradation_percent,
            "baseline_seconds" => &mut self.baseline_seconds,
            "prometheus_url" => &mut self.prometheus_url,
            "prometheus_query" => &mut self.prometheus_query,
            "max_per_hour" => &mut self.max_per_hour,
            "program" => &mut self.program,
            "args" => &mut self.args,
            "webhook_url" => &mut self.webhook_url,
            "webhook_secret" => &mut self.webhook_secret,
            "timeout_seconds" => &mut self.timeout_seconds,
            "max_silence_seconds" => &mut self.max_silence_seconds,
            _ => return None,
        })
    }

    pub(super) fn is_blank(&self) -> bool {
        let mut copy = self.clone();
        [
            "kind",
            "metric",
            "labels",
            "max_degradation_percent",
            "baseline_seconds",
        ]
        .iter()
        .chain(&[
            "prometheus_url",
            "prometheus_query",
            "max_per_hour",
            "program",
        ])
        .chain(&["args", "webhook_url", "webhook_secret", "timeout_seconds"])
        .chain(&["max_silence_seconds"])
        .all(|f| copy.field(f).is_none_or(|v| v.trim().is_empty()))
    }

    /// The check as the document's `verification.checks[i]`.
    pub(super) fn document(&self, path: &str, errors: &mut Vec<FieldError>) -> Value {
        let mut check = Map::new();
        put_text(&mut check, "kind", &self.kind);
        let labels = |errors: &mut Vec<FieldError>| {
            Value::Object(pairs(&self.labels, &format!("{path}.labels"), errors))
        };
        match self.kind.as_str() {
            "metric" => {
                put_text(&mut check, "name", &self.metric);
                check.insert("labels".into(), labels(errors));
                put_text(&mut check, "direction", &self.direction);
                put_number(
                    &mut check,
                    "max_degradation_percent",
                    &self.max_degradation_percent,
                    path,
                    errors,
                );
                put_whole(
                    &mut check,
                    "baseline_seconds",
                    &self.baseline_seconds,
                    path,
                    errors,
                );
                if !blank(&self.prometheus_url) || !blank(&self.prometheus_query) {
                    let mut prometheus = Map::new();
                    put_text(&mut prometheus, "url", &self.prometheus_url);
                    put_text(&mut prometheus, "query", &self.prometheus_query);
                    check.insert("prometheus".into(), Value::Object(prometheus));
                }
            }
            "complaints" => {
                put_text(&mut check, "metric", &self.metric);
                check.insert("labels".into(), labels(errors));
                put_number(&mut check, "max_per_hour", &self.max_per_hour, path, errors);
            }
            "compliance" => {
                if !blank(&self.program) || !blank(&self.args) {
                    let mut command = Map::new();
                    put_text(&mut command, "program", &self.program);
                    put_lines(&mut command, "args", &self.args);
                    check.insert("command".into(), Value::Object(command));
                }
                if !blank(&self.webhook_url) || !blank(&self.webhook_secret) {
                    let mut webhook = Map::new();
                    put_text(&mut webhook, "url", &self.webhook_url);
                    put_text(&mut webhook, "secret", &self.webhook_secret);
                    check.insert("webhook".into(), Value::Object(webhook));
                }
                put_whole(
                    &mut check,
                    "timeout_seconds",
                    &self.timeout_seconds,
                    path,
                    errors,
                );
            }
            "security_controls" => {
                put_text(&mut check, "metric", &self.metric);
                put_whole(
                    &mut check,
                    "max_silence_seconds",
                    &self.max_silence_seconds,
                    path,
                    errors,
                );
            }
            _ => {}
        }
        Value::Object(check)
    }
}

pub(super) fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// A text field: absent when left empty (the core refuses an empty optional field).
pub(super) fn put_text(map: &mut Map<String, Value>, key: &str, text: &str) {
    if !blank(text) {
        map.insert(key.into(), Value::String(text.trim().to_owned()));
    }
}

/// One value per non-empty line.
pub(super) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn put_lines(map: &mut Map<String, Value>, key: &str, text: &str) {
    let lines = lines(text);
    if !lines.is_empty() {
        map.insert(key.into(), json!(lines));
    }
}

/// A whole number of seconds, retries…: absent when empty (the core's default applies).
pub(super) fn put_whole(
    map: &mut Map<String, Value>,
    key: &str,
    text: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if blank(text) {
        return;
    }
    match text.trim().parse::<u64>() {
        Ok(n) => {
            map.insert(key.into(), json!(n));
        }
        Err(_) => errors.push(FieldError::new(
            format!("{path}.{key}"),
            "must be a whole number (0 or more)",
        )),
    }
}

/// A number that may have a fraction (percentages, rates).
pub(super) fn put_number(
    map: &mut Map<String, Value>,
    key: &str,
    text: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if blank(text) {
        return;
    }
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => {
            map.insert(key.into(), json!(n));
        }
        _ => errors.push(FieldError::new(
            format!("{path}.{key}"),
            "must be a number such as 20 or 2.5",
        )),
    }
}

/// `key=value` lines as an object; a line without `=` is an error at `path`.
pub(super) fn pairs(text: &str, path: &str, errors: &mut Vec<FieldError>) -> Map<String, Value> {
    let mut map = Map::new();
    for line in lines(text) {
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                map.insert(key.trim().into(), Value::String(value.trim().to_owned()));
            }
            _ => errors.push(FieldError::new(
                path,
                format!("'{line}' is not key=value: write one key=value per line"),
            )),
        }
    }
    map
}

/// A time typed into the form: UTC unless it names an offset.
pub(super) fn put_time(
    map: &mut Map<String, Value>,
    key: &str,
    text: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if blank(text) {
        return;
    }
    match parse_instant(text, Tz::UTC) {
        Ok(t) => {
            map.insert(key.into(), json!(t.to_rfc3339()));
        }
        Err(e) => errors.push(FieldError::new(format!("{path}.{key}"), e.to_string())),
    }
}
