//! Metric samples pushed to Steward: the raw material of post-change verification and of the
//! anomaly detectors.
//!
//! A sample is a Prometheus-style series (a metric name plus labels) with one value at one time.
//! [`parse_samples`] accepts one sample or `{"samples": [...]}`, names every bad field by its
//! path, and refuses values that are not finite numbers and times far in the future.

use crate::submission::FieldError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most samples one request may carry.
pub const MAX_SAMPLES: usize = 10_000;
/// Most labels one sample may carry.
pub const MAX_LABELS: usize = 20;
/// How far ahead of the server's clock a sample's time may be (clock skew).
pub const MAX_FUTURE: Duration = Duration::minutes(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `error_rate`, `latency_seconds`, `complaints_total` (Prometheus naming).
    pub name: String,
    /// Kept sorted, so a series has one spelling: `{"model": "fraud-scoring"}`.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub time: DateTime<Utc>,
}

impl Sample {
    /// The labels as stored and compared: canonical JSON (keys sorted).
    pub fn labels_key(&self) -> String {
        serde_json::to_string(&self.labels).unwrap_or_default()
    }
}

/// Prometheus metric and label names: `[a-zA-Z_:][a-zA-Z0-9_:]*` (labels without `:`).
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    name.len() <= 200 && chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

fn parse_one(
    item: &Value,
    path: &str,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> Option<Sample> {
    let Value::Object(map) = item else {
        errors.push(FieldError::new(
            path,
            "must be an object with name, labels, value and time",
        ));
        return None;
    };
    let before = errors.len();
    for key in map.keys() {
        if !["name", "labels", "value", "time"].contains(&key.as_str()) {
            errors.push(FieldError::new(format!("{path}.{key}"), "unknown field"));
        }
    }
    let name = match map.get("name") {
        Some(Value::String(n)) if valid_name(n, true) => Some(n.clone()),
        Some(Value::String(n)) => {
            errors.push(FieldError::new(
                format!("{path}.name"),
                format!("'{n}' is not a metric name: letters, digits, '_' and ':', not starting with a digit"),
            ));
            None
        }
        _ => {
            errors.push(FieldError::new(
                format!("{path}.name"),
                "is required (a string)",
            ));
            None
        }
    };
    let mut labels = BTreeMap::new();
    match map.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            if given.len() > MAX_LABELS {
                errors.push(FieldError::new(
                    format!("{path}.labels"),
                    format!("at most {MAX_LABELS} labels"),
                ));
            }
            for (k, v) in given {
                match v {
                    Value::String(v) if valid_name(k, false) && v.len() <= 1000 => {
                        labels.insert(k.clone(), v.clone());
                    }
                    Value::String(_) if !valid_name(k, false) => errors.push(FieldError::new(
                        format!("{path}.labels.{k}"),
                        "is not a label name: letters, digits and '_', not starting with a digit",
                    )),
                    _ => errors.push(FieldError::new(
                        format!("{path}.labels.{k}"),
                        "must be a string of at most 1000 characters",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            format!("{path}.labels"),
            "must be an object of strings",
        )),
    }
    let value = match map.get("value").and_then(Value::as_f64) {
        Some(v) if v.is_finite() => Some(v),
        _ => {
            errors.push(FieldError::new(
                format!("{path}.value"),
                "is required: a finite number",
            ));
            None
        }
    };
    let time = match map.get("time") {
        None | Some(Value::Null) => Some(now),
        Some(Value::String(t)) => match DateTime::parse_from_rfc3339(t) {
            Ok(t) if t.with_timezone(&Utc) > now + MAX_FUTURE => {
                errors.push(FieldError::new(
                    format!("{path}.time"),
                    "is more than 5 minutes in the future: check the sender's clock",
                ));
                None
            }
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(
                    format!("{path}.time"),
                    "must be an RFC 3339 timestamp such as 2026-12-01T22:00:00Z",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                format!("{path}.time"),
                "must be an RFC 3339 timestamp",
            ));
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(Sample {
        name: name?,
        labels,
        value: value?,
        time: time?,
    })
}

/// Parses one sample, or `{"samples": [...]}`. Samples without a time are taken at `now`.
pub fn parse_samples(document: &Value, now: DateTime<Utc>) -> Result<Vec<Sample>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let samples = match document {
        Value::Object(map) if map.contains_key("samples") => {
            let Some(items) = map["samples"].as_array() else {
                return Err(vec![FieldError::new(
                    "samples",
                    "must be a list of samples",
                )]);
            };
            if items.is_empty() {
                return Err(vec![FieldError::new("samples", "must not be empty")]);
            }
            if items.len() > MAX_SAMPLES {
                return Err(vec![FieldError::new(
                    "samples",
                    format!(
                        "holds {} samples; send at most {MAX_SAMPLES} per request",
                        items.len()
                    ),
                )]);
            }
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| parse_one(item, &format!("samples[{i}]"), now, &mut errors))
                .collect()
        }
        other => parse_one(other, "(body)", now, &mut errors)
            .into_iter()
            .collect(),
    };
    if errors.is_empty() {
        Ok(samples)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .expect("t")
            .with_timezone(&Utc)
    }

    #[test]
    fn one_sample_or_many_with_sorted_labels() {
        let one = parse_samples(&json!({"name": "error_rate", "labels": {"model": "fraud", "env": "prod"}, "value": 0.02}), now())
            .expect("valid");
        assert_eq!(one[0].time, now());
        assert_eq!(one[0].labels_key(), r#"{"env":"prod","model":"fraud"}"#);
        let many = parse_samples(
            &json!({"samples": [{"name": "a", "value": 1, "time": "2026-11-23T09:00:00Z"}, {"name": "b:rate5m", "value": -2.5}]}),
            now(),
        )
        .expect("valid");
        assert_eq!(many.len(), 2);
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = parse_samples(
            &json!({"samples": [
                {"name": "9lives", "value": 1},
                {"name": "ok", "value": "high", "labels": {"bad-label": "x", "n": 3}},
                {"name": "ok", "value": 1, "time": "2026-11-23T11:00:00Z", "extra": true},
            ]}),
            now(),
        )
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "samples[0].name",
                "samples[1].labels.bad-label",
                "samples[1].labels.n",
                "samples[1].value",
                "samples[2].extra",
                "samples[2].time",
            ]
        );
        assert!(parse_samples(&json!({"samples": []}), now()).is_err());
        assert!(parse_samples(&json!([1]), now()).is_err());
    }
}
