//! The model inventory: each model's governance fields with where every value came from, its
//! versions as discovered, and how complete its record is against the templates compliance
//! officers keep.
//!
//! A model's fields are a map from a known field name ([`FIELDS`]) to a JSON value, checked by
//! the field's kind, so a template can name any of them and a report can list what is missing.
//! Every value carries its [`Provenance`]: discovered by a scan, attested by a person, or derived.
//! Versions are keyed by version name and matched by content digest, so re-scanning the same
//! files changes nothing but "last seen".

use crate::names::UserName;
use crate::submission::FieldError;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub mod cyclonedx;
mod reconcile;
mod records;
pub mod report;
pub use reconcile::{
    Approval, Finding, FindingKind, VersionRef, approval_at, change_covers, completed, names_model,
    names_version, reconcile,
};
pub use records::{
    Dataset, Deployment, FoundVersion, Lineage, LineageEdge, LineageNode, Run, ScanProblem,
    SourceKind, SourceReport, lineage, match_deployment,
};

/// What kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A list of strings.
    List,
    /// `YYYY-MM-DD`.
    Date,
    /// A number of days.
    Days,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
    /// The model card: Markdown text.
    Markdown,
}

/// The lifecycle statuses a model moves through.
pub const STATUSES: &[&str] = &["development", "validation", "production", "retired"];
/// Risk tiers, which pick the template a model is checked against.
pub const TIERS: &[&str] = &["low", "medium", "high"];

/// Every field a model record may carry, with its kind and meaning.
pub const FIELDS: &[(&str, Kind, &str)] = &[
    ("title", Kind::Text, "a human name for the model"),
    ("purpose", Kind::Text, "the business purpose it serves"),
    (
        "intended_use",
        Kind::Text,
        "how and by whom it is meant to be used",
    ),
    (
        "restrictions",
        Kind::Text,
        "uses it must not be put to, known limitations",
    ),
    ("inputs", Kind::Text, "the data it takes"),
    (
        "outputs",
        Kind::Text,
        "what it produces and how that is used",
    ),
    ("risk_tier", Kind::OneOf(TIERS), "low, medium or high"),
    (
        "regulatory_tags",
        Kind::List,
        "e.g. sox, gdpr, dpdpa, eu-ai-act-high-risk",
    ),
    (
        "owner",
        Kind::Text,
        "the accountable manager (a Steward user)",
    ),
    ("developers", Kind::List, "who built it"),
    ("validators", Kind::List, "who validated it independently"),
    ("validation_last", Kind::Date, "when it was last validated"),
    (
        "validation_next",
        Kind::Date,
        "when its validation falls due",
    ),
    (
        "expected_validity",
        Kind::Days,
        "how long a validation stays current, in days",
    ),
    (
        "status",
        Kind::OneOf(STATUSES),
        "development, validation, production or retired",
    ),
    ("model_card", Kind::Markdown, "the model card"),
    (
        "provider",
        Kind::Text,
        "the provider (EU AI Act Annex VIII)",
    ),
    (
        "contact",
        Kind::Text,
        "a contact for the system (EU AI Act Annex VIII)",
    ),
    (
        "markets",
        Kind::List,
        "where it is placed on the market or put into service",
    ),
    (
        "architecture",
        Kind::Text,
        "the model family or architecture",
    ),
    ("framework", Kind::Text, "the framework it is built with"),
    ("license", Kind::Text, "its licence"),
    ("base_model", Kind::Text, "the model it was fine-tuned from"),
];

/// The mandatory fields of every model: the SR 11-7 inventory fields.
pub const SR_11_7: &[&str] = &[
    "purpose",
    "intended_use",
    "restrictions",
    "inputs",
    "outputs",
    "risk_tier",
    "owner",
    "developers",
    "validators",
    "validation_last",
    "validation_next",
    "status",
];

/// Added for models tagged `eu-ai-act-high-risk`: EU AI Act Annex VIII registration fields.
pub const EU_AI_ACT_ANNEX_VIII: &[&str] = &[
    "provider",
    "contact",
    "markets",
    "model_card",
    "expected_validity",
];

/// Where a field's value came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Provenance {
    /// Read by a scan of `source` (`files:/models`, `mlflow:http://…`).
    Discovered { source: String, at: DateTime<Utc> },
    /// Stated by a person.
    Attested { user: UserName, at: DateTime<Utc> },
    /// Computed from other fields (`validation_next` from the last validation and validity).
    Derived { from: String, at: DateTime<Utc> },
}

/// One version of a model, as found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub version: String,
    pub artifact_uri: String,
    pub digest: Option<String>,
    pub framework: Option<String>,
    pub trained_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The source that discovered it.
    pub source: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// What the scan read (format metadata, tags, run parameters).
    #[serde(default)]
    pub metadata: Value,
    /// Problems the scan found with the artifact (a truncated header).
    #[serde(default)]
    pub problems: Vec<String>,
    /// The training run that produced it (an MLflow run id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Registry aliases pointing at it (`champion`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The registry's (legacy) stage: `Production`, `Staging`, `Archived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// Aliases that mean "this is the version serving production".
pub const PRODUCTION_ALIASES: &[&str] = &["production", "prod", "champion", "live"];

impl ModelVersion {
    /// Whether the registry marks it as the production version (a production alias or stage).
    pub fn marked_production(&self) -> bool {
        marked_production(&self.aliases, self.stage.as_deref())
    }

    /// Whether `found` is this version: the same name, or the same digest from the same source
    /// (a file renamed, or a registry version found again under another name).
    pub fn same_as(&self, found: &ModelVersion) -> bool {
        self.version == found.version
            || (found.digest.is_some()
                && self.digest == found.digest
                && self.source == found.source)
    }

    /// Whether its artifact has this digest. Registrations join a version by digest from any
    /// source ([`Model::register_version`]); scans only from their own source
    /// ([`ModelVersion::same_as`]), or two sources that each see one artifact would take the
    /// version over from each other on every scan.
    fn holds_digest(&self, digest: &str) -> bool {
        self.digest
            .as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(digest))
    }

    /// How changes name this version: its name and its content digest.
    pub fn reference(&self) -> VersionRef<'_> {
        VersionRef {
            version: &self.version,
            digest: self.digest.as_deref(),
        }
    }
}

fn marked_production(aliases: &[String], stage: Option<&str>) -> bool {
    aliases
        .iter()
        .any(|a| PRODUCTION_ALIASES.contains(&a.to_ascii_lowercase().as_str()))
        || stage.is_some_and(|s| s.eq_ignore_ascii_case("production"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Unique in the tenant: a slug (`fraud-scoring`).
    pub name: String,
    pub fields: BTreeMap<String, Value>,
    pub provenance: BTreeMap<String, Provenance>,
    pub versions: Vec<ModelVersion>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: i64,
}

/// A model as lists show it: its fields and its versions' names and registry marks, read from a
/// whole model document without building what a list does not show (each version's metadata,
/// metrics and dates, the fields' provenance), so listing costs little however many versions
/// the models have.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelSummary {
    pub name: String,
    pub fields: BTreeMap<String, Value>,
    pub versions: Vec<VersionSummary>,
    pub updated_at: DateTime<Utc>,
}

/// A version's name, digest, aliases and stage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionSummary {
    pub version: String,
    /// Its artifact's digest: a change may name the version by it.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub stage: Option<String>,
}

impl VersionSummary {
    /// As [`ModelVersion::reference`].
    pub fn reference(&self) -> VersionRef<'_> {
        VersionRef {
            version: &self.version,
            digest: self.digest.as_deref(),
        }
    }
}

impl ModelSummary {
    pub fn status(&self) -> &str {
        status(&self.fields)
    }

    /// As [`Model::completeness`].
    pub fn completeness(&self, templates: &Templates) -> Completeness {
        completeness(&self.fields, templates)
    }

    /// As [`Model::validation_current`].
    pub fn validation_current(&self, day: NaiveDate) -> bool {
        validation_current(&self.fields, day)
    }

    /// The name of the version the registry marks as serving production, as
    /// [`Model::production_version`].
    pub fn production_version(&self) -> Option<&str> {
        self.production().map(|v| v.version.as_str())
    }

    /// The version the registry marks as serving production, as [`Model::production_version`].
    pub fn production(&self) -> Option<&VersionSummary> {
        self.versions
            .iter()
            .rev()
            .find(|v| marked_production(&v.aliases, v.stage.as_deref()))
    }
}

impl From<&Model> for ModelSummary {
    fn from(model: &Model) -> ModelSummary {
        ModelSummary {
            name: model.name.clone(),
            fields: model.fields.clone(),
            versions: model
                .versions
                .iter()
                .map(|v| VersionSummary {
                    version: v.version.clone(),
                    digest: v.digest.clone(),
                    aliases: v.aliases.clone(),
                    stage: v.stage.clone(),
                })
                .collect(),
            updated_at: model.updated_at,
        }
    }
}

/// How complete a record is against its template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    /// 0–100: the share of mandatory fields present.
    pub score: u32,
    pub required: Vec<String>,
    pub missing: Vec<String>,
    /// Incomplete records are flagged for manual review.
    pub needs_review: bool,
}

/// The mandatory fields per risk tier and per regulatory tag, as compliance officers keep them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Templates {
    /// `low` / `medium` / `high` → fields.
    #[serde(default)]
    pub tiers: BTreeMap<String, Vec<String>>,
    /// A regulatory tag → the fields it adds.
    #[serde(default)]
    pub tags: BTreeMap<String, Vec<String>>,
}

impl Templates {
    /// SR 11-7 fields for every tier; EU AI Act Annex VIII for `eu-ai-act-high-risk`.
    pub fn standard() -> Templates {
        let sr: Vec<String> = SR_11_7.iter().map(|s| s.to_string()).collect();
        Templates {
            tiers: TIERS.iter().map(|t| (t.to_string(), sr.clone())).collect(),
            tags: BTreeMap::from([(
                "eu-ai-act-high-risk".to_owned(),
                EU_AI_ACT_ANNEX_VIII.iter().map(|s| s.to_string()).collect(),
            )]),
        }
    }

    /// Every field named must be a known one.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (group, map) in [("tiers", &self.tiers), ("tags", &self.tags)] {
            for (key, fields) in map {
                if group == "tiers" && !TIERS.contains(&key.as_str()) {
                    errors.push(FieldError::new(
                        format!("tiers.{key}"),
                        "is not a risk tier (low, medium, high)",
                    ));
                }
                for (i, f) in fields.iter().enumerate() {
                    if kind_of(f).is_none() {
                        errors.push(FieldError::new(
                            format!("{group}.{key}[{i}]"),
                            format!("'{f}' is not a model field"),
                        ));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The kind of a known field.
pub fn kind_of(field: &str) -> Option<Kind> {
    FIELDS
        .iter()
        .find(|(n, _, _)| *n == field)
        .map(|(_, k, _)| *k)
}

/// A model name: 1–128 lowercase letters, digits, `-`, `_`, `.`, starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Turns free text (a file stem, an MLflow name) into a model name.
pub fn name_from(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.' || c == '_');
    let mut name: String = trimmed.chars().take(128).collect();
    if name.is_empty() {
        name = "model".into();
    }
    name
}

/// Checks attested values: each key a known field, each value of its kind. Returns the values
/// normalised (trimmed text, dates as `YYYY-MM-DD`).
pub fn check_fields(
    values: &Map<String, Value>,
) -> Result<BTreeMap<String, Value>, Vec<FieldError>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (key, value) in values {
        let Some(kind) = kind_of(key) else {
            let known: Vec<&str> = FIELDS.iter().map(|(n, _, _)| *n).collect();
            errors.push(FieldError::new(
                key.clone(),
                format!("unknown field (known: {})", known.join(", ")),
            ));
            continue;
        };
        let checked = match (kind, value) {
            (_, Value::Null) => Ok(Value::Null),
            (Kind::Text | Kind::Markdown, Value::String(s)) if !s.trim().is_empty() => {
                Ok(json!(s.trim()))
            }
            (Kind::Text | Kind::Markdown, _) => Err("must be non-empty text".to_owned()),
            (Kind::List, Value::Array(items))
                if items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())) =>
            {
                Ok(Value::Array(
                    items
                        .iter()
                        .map(|i| json!(i.as_str().unwrap_or_default().trim()))
                        .collect(),
                ))
            }
            (Kind::List, _) => Err("must be a list of non-empty strings".to_owned()),
            (Kind::Date, Value::String(s)) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(|d| json!(d.to_string()))
                .map_err(|_| "must be a date, YYYY-MM-DD".to_owned()),
            (Kind::Date, _) => Err("must be a date, YYYY-MM-DD".to_owned()),
            (Kind::Days, Value::Number(n)) if n.as_u64().is_some_and(|d| d > 0 && d <= 36_500) => {
                Ok(value.clone())
            }
            (Kind::Days, _) => Err("must be a whole number of days, 1 to 36500".to_owned()),
            (Kind::OneOf(allowed), Value::String(s)) if allowed.contains(&s.as_str()) => {
                Ok(value.clone())
            }
            (Kind::OneOf(allowed), _) => Err(format!("must be one of: {}", allowed.join(", "))),
        };
        match checked {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err(message) => errors.push(FieldError::new(key.clone(), message)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

impl Model {
    pub fn new(name: &str, now: DateTime<Utc>) -> Model {
        Model {
            name: name.to_owned(),
            fields: BTreeMap::from([("status".to_owned(), json!("development"))]),
            provenance: BTreeMap::from([(
                "status".to_owned(),
                Provenance::Derived {
                    from: "a new record starts in development".into(),
                    at: now,
                },
            )]),
            versions: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn status(&self) -> &str {
        status(&self.fields)
    }

    pub fn tags(&self) -> Vec<String> {
        tags(&self.fields)
    }

    /// Sets fields a person states; a `null` clears one. Returns the names that changed.
    pub fn attest(
        &mut self,
        values: BTreeMap<String, Value>,
        who: &UserName,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let mut changed = Vec::new();
        for (key, value) in values {
            if self.fields.get(&key) == Some(&value)
                || (value.is_null() && !self.fields.contains_key(&key))
            {
                continue;
            }
            if value.is_null() {
                self.fields.remove(&key);
                self.provenance.remove(&key);
            } else {
                self.fields.insert(key.clone(), value);
                self.provenance.insert(
                    key.clone(),
                    Provenance::Attested {
                        user: who.clone(),
                        at: now,
                    },
                );
            }
            changed.push(key);
        }
        if changed
            .iter()
            .any(|k| k == "validation_last" || k == "expected_validity")
        {
            self.derive_next_validation(now);
        }
        if !changed.is_empty() {
            self.updated_at = now;
        }
        changed
    }

    /// A discovered value fills a field no person has stated.
    pub fn discover(&mut self, key: &str, value: Value, source: &str, now: DateTime<Utc>) -> bool {
        if !present(Some(&value)) || kind_of(key).is_none() {
            return false;
        }
        if matches!(self.provenance.get(key), Some(Provenance::Attested { .. }))
            || self.fields.get(key) == Some(&value)
        {
            return false;
        }
        self.fields.insert(key.to_owned(), value);
        self.provenance.insert(
            key.to_owned(),
            Provenance::Discovered {
                source: source.to_owned(),
                at: now,
            },
        );
        self.updated_at = now;
        true
    }

    /// `validation_next` = `validation_last` + `expected_validity`, unless a person stated it.
    fn derive_next_validation(&mut self, now: DateTime<Utc>) {
        if matches!(
            self.provenance.get("validation_next"),
            Some(Provenance::Attested { .. })
        ) {
            return;
        }
        let last = self
            .fields
            .get("validation_last")
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        let days = self.fields.get("expected_validity").and_then(Value::as_u64);
        if let (Some(last), Some(days)) = (last, days) {
            let next = last + chrono::Days::new(days);
            self.fields
                .insert("validation_next".into(), json!(next.to_string()));
            self.provenance.insert(
                "validation_next".into(),
                Provenance::Derived {
                    from: "validation_last + expected_validity".into(),
                    at: now,
                },
            );
        }
    }

    /// Records a discovered version (matched by name, or by digest from the same source),
    /// returning whether anything but `last_seen` changed.
    pub fn see_version(&mut self, found: ModelVersion, now: DateTime<Utc>) -> bool {
        let existing = self.versions.iter().position(|v| v.same_as(&found));
        self.record_version(existing, found, now)
    }

    /// Records a registered version, returning the name it is kept under and whether anything
    /// but `last_seen` changed. An artifact the model holds already (the same digest, from any
    /// source) joins that version, under that version's name; otherwise the version of the same
    /// name is replaced, or a new one added.
    pub fn register_version(
        &mut self,
        registered: ModelVersion,
        now: DateTime<Utc>,
    ) -> (String, bool) {
        let existing = self.registered_as(&registered);
        let name = existing.map_or_else(
            || registered.version.clone(),
            |i| self.versions[i].version.clone(),
        );
        let changed = self.record_version(existing, registered, now);
        (name, changed)
    }

    /// Which version `registered` would join: the one holding its digest, else the one of its
    /// name. A digest match wins, so a known artifact is never given a second name.
    pub fn registered_as(&self, registered: &ModelVersion) -> Option<usize> {
        registered
            .digest
            .as_deref()
            .and_then(|d| self.versions.iter().position(|v| v.holds_digest(d)))
            .or_else(|| {
                self.versions
                    .iter()
                    .position(|v| v.version == registered.version)
            })
    }

    fn record_version(
        &mut self,
        existing: Option<usize>,
        mut found: ModelVersion,
        now: DateTime<Utc>,
    ) -> bool {
        if let Some(existing) = existing.and_then(|i| self.versions.get_mut(i)) {
            existing.last_seen = now;
            let changed = existing.artifact_uri != found.artifact_uri
                || existing.digest != found.digest
                || existing.metadata != found.metadata
                || existing.problems != found.problems
                || existing.run_id != found.run_id
                || existing.aliases != found.aliases
                || existing.stage != found.stage
                || existing.metrics != found.metrics;
            if changed {
                found.first_seen = existing.first_seen;
                found.last_seen = now;
                found.version = existing.version.clone();
                *existing = found;
                self.updated_at = now;
            }
            return changed;
        }
        found.first_seen = now;
        found.last_seen = now;
        self.put_version(found, now);
        true
    }

    /// Puts `version` in as it is (an audit event recorded it so): in place of the version of
    /// the same name, else among the others in order.
    pub fn put_version(&mut self, version: ModelVersion, at: DateTime<Utc>) {
        match self
            .versions
            .iter_mut()
            .find(|v| v.version == version.version)
        {
            Some(existing) => *existing = version,
            None => {
                self.versions.push(version);
                self.versions
                    .sort_by(|a, b| version_order(&a.version, &b.version));
            }
        }
        self.updated_at = at;
    }

    /// How complete the record is against `templates`: the tier's fields (the standard SR 11-7
    /// set when its tier is not stated yet) and those of each regulatory tag.
    pub fn completeness(&self, templates: &Templates) -> Completeness {
        completeness(&self.fields, templates)
    }

    /// The version the registry marks as serving production (the newest such), if any.
    pub fn production_version(&self) -> Option<&ModelVersion> {
        self.versions.iter().rev().find(|v| v.marked_production())
    }

    /// Whether its validation is current on `day`: validated, and not past `validation_next`.
    pub fn validation_current(&self, day: NaiveDate) -> bool {
        validation_current(&self.fields, day)
    }
}

// What a model's fields say, for a whole record and for a summary alike.

fn status(fields: &BTreeMap<String, Value>) -> &str {
    fields
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("development")
}

fn tags(fields: &BTreeMap<String, Value>) -> Vec<String> {
    fields
        .get("regulatory_tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn completeness(fields: &BTreeMap<String, Value>, templates: &Templates) -> Completeness {
    let tier = fields
        .get("risk_tier")
        .and_then(Value::as_str)
        .unwrap_or("high");
    let mut required: Vec<String> = templates
        .tiers
        .get(tier)
        .cloned()
        .unwrap_or_else(|| SR_11_7.iter().map(|s| s.to_string()).collect());
    for tag in tags(fields) {
        for f in templates.tags.get(&tag).into_iter().flatten() {
            if !required.contains(f) {
                required.push(f.clone());
            }
        }
    }
    let missing: Vec<String> = required
        .iter()
        .filter(|f| !present(fields.get(*f)))
        .cloned()
        .collect();
    let score = if required.is_empty() {
        100
    } else {
        ((required.len() - missing.len()) * 100 / required.len()) as u32
    };
    Completeness {
        score,
        needs_review: !missing.is_empty(),
        required,
        missing,
    }
}

fn validation_current(fields: &BTreeMap<String, Value>, day: NaiveDate) -> bool {
    let date = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    };
    match (date("validation_last"), date("validation_next")) {
        (Some(last), Some(next)) => last <= day && day <= next,
        _ => false,
    }
}

/// Orders versions numerically when both are numbers (`2` before `10`), else as text.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc)
    }

    /// A bare version as a source finds it.
    fn found(name: &str, uri: &str, digest: Option<&str>, source: &str) -> ModelVersion {
        ModelVersion {
            version: name.into(),
            artifact_uri: uri.into(),
            digest: digest.map(str::to_owned),
            framework: None,
            trained_at: None,
            metrics: BTreeMap::new(),
            source: source.into(),
            first_seen: now(),
            last_seen: now(),
            metadata: json!({}),
            problems: vec![],
            run_id: None,
            aliases: vec![],
            stage: None,
        }
    }

    #[test]
    fn attested_fields_are_checked_by_kind() {
        let values = json!({"purpose": "  score card fraud  ", "risk_tier": "extreme", "validation_last": "2026-13-01",
                            "developers": ["ana", ""], "expected_validity": 365, "colour": "red"});
        let errors = check_fields(values.as_object().expect("object")).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["colour", "developers", "risk_tier", "validation_last"]
        );
        let ok = check_fields(
            json!({"purpose": "  score card fraud  ", "validation_last": "2026-06-01"})
                .as_object()
                .expect("o"),
        )
        .expect("valid");
        assert_eq!(ok["purpose"], "score card fraud");
    }

    #[test]
    fn completeness_follows_the_tier_and_the_tags() {
        let mut model = Model::new("fraud-scoring", now());
        let templates = Templates::standard();
        let empty = model.completeness(&templates);
        assert_eq!(empty.required.len(), SR_11_7.len());
        assert!(empty.needs_review && empty.score < 10, "{empty:?}");
        let who = UserName::parse("cora").expect("user");
        let values = check_fields(
            json!({"purpose": "p", "intended_use": "u", "restrictions": "r", "inputs": "i", "outputs": "o",
                   "risk_tier": "high", "owner": "mia", "developers": ["ana"], "validators": ["val"],
                   "validation_last": "2026-06-01", "expected_validity": 365,
                   "regulatory_tags": ["eu-ai-act-high-risk"]})
            .as_object()
            .expect("o"),
        )
        .expect("valid");
        model.attest(values, &who, now());
        assert_eq!(model.fields["validation_next"], "2027-06-01", "derived");
        assert!(matches!(
            model.provenance["validation_next"],
            Provenance::Derived { .. }
        ));
        let c = model.completeness(&templates);
        assert_eq!(c.missing, ["provider", "contact", "markets", "model_card"]);
        assert!(model.validation_current(NaiveDate::from_ymd_opt(2026, 12, 1).expect("d")));
        assert!(!model.validation_current(NaiveDate::from_ymd_opt(2027, 7, 1).expect("d")));
    }

    #[test]
    fn a_summary_read_from_the_document_says_what_the_record_says() {
        let mut model = Model::new("m", now());
        let who = UserName::parse("cora").expect("user");
        let values = check_fields(
            json!({"risk_tier": "low", "validation_last": "2026-06-01", "expected_validity": 365})
                .as_object()
                .expect("o"),
        )
        .expect("valid");
        model.attest(values, &who, now());
        for (name, aliases, stage) in [
            ("10", vec![], None),
            ("2", vec!["champion".to_owned()], None),
            ("3", vec![], Some("Staging".to_owned())),
        ] {
            let v = ModelVersion {
                version: name.into(),
                artifact_uri: format!("s3://models/m/{name}"),
                digest: None,
                framework: Some("sklearn".into()),
                trained_at: Some(now()),
                metrics: BTreeMap::from([("auc".to_owned(), 0.9)]),
                source: "attested:cora".into(),
                first_seen: now(),
                last_seen: now(),
                metadata: json!({"tags": {"team": "risk"}}),
                problems: vec![],
                run_id: Some("r1".into()),
                aliases,
                stage,
            };
            model.see_version(v, now());
        }
        let document = serde_json::to_string(&model).expect("json");
        let read: ModelSummary = serde_json::from_str(&document).expect("summary");
        assert_eq!(read, ModelSummary::from(&model));
        let names: Vec<&str> = read.versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(names, ["2", "3", "10"]);
        assert_eq!(read.production_version(), Some("2"));
        assert_eq!(
            read.production_version(),
            model.production_version().map(|v| v.version.as_str())
        );
        assert_eq!(read.status(), model.status());
        let templates = Templates::standard();
        assert_eq!(
            read.completeness(&templates),
            model.completeness(&templates)
        );
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("d");
        assert!(read.validation_current(day) && model.validation_current(day));
    }

    #[test]
    fn discovery_never_overwrites_what_a_person_stated_and_rescans_change_nothing() {
        let mut model = Model::new("m", now());
        assert!(model.discover("architecture", json!("bert"), "files:/models", now()));
        let who = UserName::parse("cora").expect("user");
        model.attest(
            BTreeMap::from([("architecture".to_owned(), json!("BertModel"))]),
            &who,
            now(),
        );
        assert!(!model.discover("architecture", json!("bert"), "files:/models", now()));
        assert_eq!(model.fields["architecture"], "BertModel");
        let version = found(
            "1",
            "file:///models/m.safetensors",
            Some("sha256:ab"),
            "files:/models",
        );
        assert!(model.see_version(version.clone(), now()));
        assert!(!model.see_version(version, now() + chrono::Duration::hours(1)));
        assert_eq!(
            model.versions[0].last_seen,
            now() + chrono::Duration::hours(1)
        );
    }

    #[test]
    fn a_registered_artifact_the_model_holds_joins_its_version() {
        let version = |name: &str, digest: Option<&str>, source: &str| {
            found(name, &format!("s3://models/m/{name}"), digest, source)
        };
        let (d7, d8) = ("sha256:77", "sha256:88");
        let mut model = Model::new("m", now());
        model.see_version(version("7", Some(d7), "mlflow:http://mlflow"), now());
        model.see_version(version("8", Some(d8), "mlflow:http://mlflow"), now());
        let later = now() + chrono::Duration::hours(1);
        let names =
            |m: &Model| -> Vec<String> { m.versions.iter().map(|v| v.version.clone()).collect() };
        // (registered name, digest) → (kept as, versions after)
        let cases: [(&str, Option<&str>, &str, &[&str]); 4] = [
            ("9", Some(d7), "7", &["7", "8"]),
            (
                "8",
                Some(&"SHA256:77".to_ascii_lowercase()),
                "7",
                &["7", "8"],
            ),
            ("8", None, "8", &["7", "8"]),
            ("9", Some("sha256:99"), "9", &["7", "8", "9"]),
        ];
        for (name, digest, kept_as, after) in cases {
            let mut m = model.clone();
            let (kept, changed) = m.register_version(version(name, digest, "attested:mia"), later);
            assert_eq!(
                (kept.as_str(), changed),
                (kept_as, true),
                "{name} {digest:?}"
            );
            assert_eq!(names(&m), after, "{name} {digest:?}");
        }
        // Scans still match a digest only from their own source.
        let mut scanned = model.clone();
        assert!(scanned.see_version(version("9", Some(d7), "files:h:/m"), later));
        assert_eq!(names(&scanned), ["7", "8", "9"]);
    }

    #[test]
    fn names_come_from_free_text() {
        assert_eq!(name_from("All-MiniLM L6 v2"), "all-minilm-l6-v2");
        assert_eq!(name_from("__"), "model");
        assert!(valid_name(&name_from("Fraud Scoring (EU)")));
        assert_eq!(version_order("2", "10"), std::cmp::Ordering::Less);
    }
}
