//! Wire types of the inventory's model endpoints: models (as lists show them, and whole, with
//! where they run, their lineage, the change that approved them and their history), versions,
//! and the metadata templates. What scans found is in [`super::inventory_scan_views`]; the
//! report and the export in [`super::inventory_report_views`].
//!
//! Like [`super::views`], these mirror the domain types on purpose and keep their keys: the CLI
//! reads them, and `steward_core::inventory` may change shape without breaking them. Each
//! constructor takes its domain record apart field by field, so a field added to the domain does
//! not compile until it is given (or refused) a place on the wire. A `serde_json::Value` is left
//! only where the content is free-form: a model's field values (a field's kind is checked when a
//! person states it, not when a scan discovers it), what a scan read from an artifact (a
//! version's `metadata`), and what a model's audit events recorded (`changed`, `version` in its
//! history).

use super::inventory_scan_views::InventoryDeploymentView;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::inventory::{
    Approval, Completeness, Lineage, LineageEdge, LineageNode, Model, ModelSummary, ModelVersion,
    Provenance, Templates,
};
use steward_store::{AuditEvent, Registered};
use utoipa::ToSchema;

/// How complete a model's record is against its templates.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletenessView {
    /// 0–100: the share of mandatory fields present.
    pub score: u32,
    pub required: Vec<String>,
    pub missing: Vec<String>,
    /// Incomplete records are flagged for manual review.
    pub needs_review: bool,
}

impl From<&Completeness> for CompletenessView {
    fn from(c: &Completeness) -> Self {
        let Completeness {
            score,
            required,
            missing,
            needs_review,
        } = c;
        CompletenessView {
            score: *score,
            required: required.clone(),
            missing: missing.clone(),
            needs_review: *needs_review,
        }
    }
}

/// The change that put a model version into service, and who approved it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelApprovalView {
    /// `CHG-<n>`
    pub change: String,
    pub title: String,
    pub state: String,
    /// The version the change names; null when it names only the model.
    pub version: Option<String>,
    /// Everyone who approved it, in order.
    pub approvers: Vec<String>,
    pub approved_at: Option<DateTime<Utc>>,
    /// When its implementation actually began; null when that was not recorded.
    pub implemented_at: Option<DateTime<Utc>>,
}

impl From<&Approval> for ModelApprovalView {
    fn from(a: &Approval) -> Self {
        let Approval {
            change,
            title,
            state,
            version,
            approvers,
            approved_at,
            implemented_at,
        } = a;
        ModelApprovalView {
            change: change.clone(),
            title: title.clone(),
            state: state.as_str().to_owned(),
            version: version.clone(),
            approvers: approvers.clone(),
            approved_at: *approved_at,
            implemented_at: *implemented_at,
        }
    }
}

/// A model as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelSummaryView {
    pub name: String,
    /// development, validation, production or retired
    pub status: String,
    /// The version the registry marks as serving production.
    pub production_version: Option<String>,
    /// The `title`, `risk_tier` and `owner` fields as recorded (text), null when unset.
    #[schema(value_type = Option<String>)]
    pub title: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub risk_tier: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub owner: Option<Value>,
    /// The versions' names.
    pub versions: Vec<String>,
    pub completeness: CompletenessView,
    pub validation_current: bool,
    pub updated_at: DateTime<Utc>,
    /// Only with `at`: the change that had approved the model into service then (null: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ModelApprovalView>)]
    pub approval: Option<Option<ModelApprovalView>>,
}

impl ModelSummaryView {
    pub fn new(model: &ModelSummary, templates: &Templates, day: NaiveDate) -> ModelSummaryView {
        ModelSummaryView {
            name: model.name.clone(),
            status: model.status().to_owned(),
            production_version: model.production_version().map(str::to_owned),
            title: model.fields.get("title").cloned(),
            risk_tier: model.fields.get("risk_tier").cloned(),
            owner: model.fields.get("owner").cloned(),
            versions: model.versions.iter().map(|v| v.version.clone()).collect(),
            completeness: (&model.completeness(templates)).into(),
            validation_current: model.validation_current(day),
            updated_at: model.updated_at,
            approval: None,
        }
    }
}

/// Where a field's value came from, by `by`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum ProvenanceView {
    /// Read by a scan of `source`.
    Discovered { source: String, at: DateTime<Utc> },
    /// Stated by a person.
    Attested { user: String, at: DateTime<Utc> },
    /// Computed from other fields.
    Derived { from: String, at: DateTime<Utc> },
}

impl From<&Provenance> for ProvenanceView {
    fn from(p: &Provenance) -> Self {
        match p {
            Provenance::Discovered { source, at } => ProvenanceView::Discovered {
                source: source.clone(),
                at: *at,
            },
            Provenance::Attested { user, at } => ProvenanceView::Attested {
                user: user.to_string(),
                at: *at,
            },
            Provenance::Derived { from, at } => ProvenanceView::Derived {
                from: from.clone(),
                at: *at,
            },
        }
    }
}

/// One version of a model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelVersionView {
    pub version: String,
    pub artifact_uri: String,
    /// `sha256:<64 hex digits>`
    pub digest: Option<String>,
    pub framework: Option<String>,
    pub trained_at: Option<DateTime<Utc>>,
    pub metrics: BTreeMap<String, f64>,
    /// The source that discovered it, or `attested:<user>` for a registration.
    pub source: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// What the scan read (format metadata, tags, run parameters), or what the registration
    /// gave.
    pub metadata: Value,
    /// Problems the scan found with the artifact.
    pub problems: Vec<String>,
    /// The training run that produced it; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Registry aliases pointing at it (`champion`); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The registry's (legacy) stage; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

impl From<&ModelVersion> for ModelVersionView {
    fn from(v: &ModelVersion) -> Self {
        let ModelVersion {
            version,
            artifact_uri,
            digest,
            framework,
            trained_at,
            metrics,
            source,
            first_seen,
            last_seen,
            metadata,
            problems,
            run_id,
            aliases,
            stage,
        } = v;
        ModelVersionView {
            version: version.clone(),
            artifact_uri: artifact_uri.clone(),
            digest: digest.clone(),
            framework: framework.clone(),
            trained_at: *trained_at,
            metrics: metrics.clone(),
            source: source.clone(),
            first_seen: *first_seen,
            last_seen: *last_seen,
            metadata: metadata.clone(),
            problems: problems.clone(),
            run_id: run_id.clone(),
            aliases: aliases.clone(),
            stage: stage.clone(),
        }
    }
}

/// A model's record: its fields with where each came from, its versions, and how complete it
/// is. What `PUT /models/{name}` answers; `GET /models/{name}` adds to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    pub name: String,
    /// Field → value (text, a list of text, a date, a number of days), as recorded.
    pub fields: BTreeMap<String, Value>,
    /// Field → where its value came from.
    pub provenance: BTreeMap<String, ProvenanceView>,
    pub versions: Vec<ModelVersionView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The record's revision, bumped on every save.
    pub version: i64,
    pub completeness: CompletenessView,
    /// Validated, and not past `validation_next`, on the day asked about.
    pub validation_current: bool,
}

impl ModelView {
    pub fn new(model: &Model, templates: &Templates, day: NaiveDate) -> ModelView {
        let Model {
            name,
            fields,
            provenance,
            versions,
            created_at,
            updated_at,
            version,
        } = model;
        ModelView {
            name: name.clone(),
            fields: fields.clone(),
            provenance: provenance
                .iter()
                .map(|(field, p)| (field.clone(), p.into()))
                .collect(),
            versions: versions.iter().map(ModelVersionView::from).collect(),
            created_at: *created_at,
            updated_at: *updated_at,
            version: *version,
            completeness: (&model.completeness(templates)).into(),
            validation_current: model.validation_current(day),
        }
    }
}

/// One model, whole: its record, the change that approved its production version, and — for
/// the model as it is now — where it runs and its lineage; its history on request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDetailView {
    #[serde(flatten)]
    pub model: ModelView,
    /// The version the registry marks as serving production.
    pub production_version: Option<String>,
    /// The change that had approved that version (or the model) into service; null: none.
    pub approval: Option<ModelApprovalView>,
    /// Deployments serving the model, each with the version it serves. Absent with `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<ServingDeploymentView>>,
    /// Absent with `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<LineageView>,
    /// Only with `history=true`: the model's audit events, oldest first (up to `at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ModelHistoryEntryView>>,
}

/// A deployment serving a model, with the version it serves (null: not known).
#[derive(Debug, Serialize, ToSchema)]
pub struct ServingDeploymentView {
    #[serde(flatten)]
    pub deployment: InventoryDeploymentView,
    pub serves_version: Option<String>,
}

/// One audit event about a model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelHistoryEntryView {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `model.created`, `model.updated`, `model.status_changed`, `model.version_registered` …
    pub action: String,
    /// The fields the event changed, as it recorded them; null when it recorded none.
    #[schema(value_type = Option<Vec<String>>)]
    pub changed: Option<Value>,
    /// The version the event was about, as it recorded it; null when none.
    #[schema(value_type = Option<String>)]
    pub version: Option<Value>,
}

impl From<&AuditEvent> for ModelHistoryEntryView {
    fn from(e: &AuditEvent) -> Self {
        ModelHistoryEntryView {
            at: e.occurred_at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            changed: e.details.get("changed").cloned(),
            version: e.details.pointer("/version/version").cloned(),
        }
    }
}

/// A node of a model's lineage graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageNodeView {
    /// dataset, run, version or deployment
    pub kind: String,
    /// `kind:key`, what edges name.
    pub key: String,
    pub label: String,
}

/// `from` fed `to`: dataset → run, run → version, version → deployment.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageEdgeView {
    pub from: String,
    pub to: String,
}

/// A model's lineage: its versions, the runs that produced them, the datasets those read and
/// the deployments serving each version.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageView {
    pub nodes: Vec<LineageNodeView>,
    pub edges: Vec<LineageEdgeView>,
}

impl From<&Lineage> for LineageView {
    fn from(l: &Lineage) -> Self {
        let Lineage { nodes, edges } = l;
        LineageView {
            nodes: nodes
                .iter()
                .map(|n| {
                    let LineageNode { kind, key, label } = n;
                    LineageNodeView {
                        kind: kind.clone(),
                        key: key.clone(),
                        label: label.clone(),
                    }
                })
                .collect(),
            edges: edges
                .iter()
                .map(|e| {
                    let LineageEdge { from, to } = e;
                    LineageEdgeView {
                        from: from.clone(),
                        to: to.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// What registering a version did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredVersionView {
    pub model: String,
    /// The version as the inventory now holds it.
    pub version: ModelVersionView,
    /// Whether the model was created by this registration.
    pub created: bool,
    /// False when the same version was registered before with the same content.
    pub changed: bool,
    /// The artifact's digest was known already: the registration joined that version.
    pub joined: bool,
}

impl RegisteredVersionView {
    pub fn new(model: &str, registered: &Registered) -> RegisteredVersionView {
        let Registered {
            version,
            created,
            changed,
            joined,
        } = registered;
        RegisteredVersionView {
            model: model.to_owned(),
            version: version.into(),
            created: *created,
            changed: *changed,
            joined: *joined,
        }
    }
}

/// The mandatory fields per risk tier and per regulatory tag.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryTemplatesView {
    /// `low` / `medium` / `high` → fields.
    pub tiers: BTreeMap<String, Vec<String>>,
    /// A regulatory tag → the fields it adds.
    pub tags: BTreeMap<String, Vec<String>>,
}

impl From<&Templates> for InventoryTemplatesView {
    fn from(t: &Templates) -> Self {
        let Templates { tiers, tags } = t;
        InventoryTemplatesView {
            tiers: tiers.clone(),
            tags: tags.clone(),
        }
    }
}
