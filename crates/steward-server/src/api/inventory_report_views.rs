//! Wire types of the inventory report (its JSON form; Markdown and HTML are rendered from the
//! same domain report) and of the CycloneDX export.
//!
//! Like [`super::inventory_views`], these mirror `steward_core::inventory::report` on purpose,
//! field by field, keeping its keys. The CycloneDX document stays a `serde_json::Value`: its
//! schema is the standard's, and Steward's output is validated against it.

use super::inventory_scan_views::FindingView;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use steward_core::inventory::report::{
    Count, FindingGroup, IncompleteModel, ModelChange, ModelChanges, OverdueValidation, Placement,
    ProductionModel, Report, TierCompleteness, Totals,
};
use utoipa::ToSchema;

/// The inventory report for a regulator or an auditor (its JSON form).
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryReportView {
    pub tenant: String,
    pub generated_at: DateTime<Utc>,
    /// The day the report speaks for.
    pub as_of: NaiveDate,
    pub last_scan: Option<DateTime<Utc>>,
    pub totals: ReportTotalsView,
    /// Every status in lifecycle order, zero included; then any other value a scan recorded.
    pub by_status: Vec<ReportCountView>,
    /// Every risk tier, then `unstated`, zero included; then any other value a scan recorded.
    pub by_tier: Vec<ReportCountView>,
    /// How complete the records of each risk tier are, in `by_tier`'s order.
    pub completeness_by_tier: Vec<TierCompletenessView>,
    /// Records missing fields their templates require, least complete first.
    pub incomplete: Vec<IncompleteModelView>,
    /// One group per kind of finding, every kind present.
    pub findings: Vec<FindingGroupView>,
    /// Validations past due, most overdue first.
    pub overdue: Vec<OverdueValidationView>,
    /// Models with the status `production`, by name.
    pub production: Vec<ProductionModelView>,
    /// The recent changes of each model that has any, by model name.
    pub recent_changes: Vec<ModelChangesView>,
}

/// The report's headline numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportTotalsView {
    pub models: usize,
    pub production: usize,
    pub incomplete: usize,
    pub findings: usize,
    pub overdue_validations: usize,
    /// Deployments the latest scans found running.
    pub running_deployments: usize,
}

/// How many models have one status, or one risk tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportCountView {
    pub name: String,
    pub models: usize,
}

/// How complete the records of one risk tier are against their templates.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierCompletenessView {
    /// The tier, as `by_tier` names it (`unstated` included).
    pub tier: String,
    pub models: usize,
    /// Of those, the records missing no field their templates require.
    pub complete: usize,
    /// 0–100: the mean completeness score, rounded; null when the tier has no models.
    pub mean_score: Option<u32>,
}

impl From<&TierCompleteness> for TierCompletenessView {
    fn from(t: &TierCompleteness) -> Self {
        let TierCompleteness {
            tier,
            models,
            complete,
            mean_score,
        } = t;
        TierCompletenessView {
            tier: tier.clone(),
            models: *models,
            complete: *complete,
            mean_score: *mean_score,
        }
    }
}

/// A record missing fields its templates require.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncompleteModelView {
    pub model: String,
    pub status: String,
    pub owner: Option<String>,
    /// 0–100: the share of required fields present.
    pub score: u32,
    pub missing: Vec<String>,
}

/// The findings of one kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingGroupView {
    pub kind: String,
    pub findings: Vec<FindingView>,
}

/// A model whose validation is past due.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueValidationView {
    pub model: String,
    pub status: String,
    pub owner: Option<String>,
    /// Null: never validated.
    pub validation_last: Option<NaiveDate>,
    /// The earliest day the validation fell due and was not done.
    pub due: NaiveDate,
    pub days_overdue: i64,
}

/// A production model: the version it should run, where it runs, and whether it may.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductionModelView {
    pub model: String,
    pub owner: Option<String>,
    pub risk_tier: Option<String>,
    pub version: Option<String>,
    /// The running deployments serving it, by key.
    pub running: Vec<PlacementView>,
    pub validation_current: bool,
    pub validation_last: Option<NaiveDate>,
    pub validation_next: Option<NaiveDate>,
}

/// A running deployment serving a production model.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlacementView {
    /// The deployment's key.
    pub deployment: String,
    pub found_by: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
    pub ready: bool,
}

/// A model's newest changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelChangesView {
    pub model: String,
    /// Newest first.
    pub changes: Vec<ModelChangeView>,
    /// How many older changes were left out.
    pub earlier: usize,
}

/// A change touching a model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelChangeView {
    pub model: String,
    /// `CHG-<n>`
    pub change: String,
    pub title: String,
    pub state: String,
    /// When it touched the model.
    pub at: DateTime<Utc>,
}

impl From<&Report> for InventoryReportView {
    fn from(r: &Report) -> Self {
        let Report {
            tenant,
            generated_at,
            as_of,
            last_scan,
            totals,
            by_status,
            by_tier,
            completeness_by_tier,
            incomplete,
            findings,
            overdue,
            production,
            recent_changes,
        } = r;
        let Totals {
            models,
            production: production_total,
            incomplete: incomplete_total,
            findings: findings_total,
            overdue_validations,
            running_deployments,
        } = totals;
        let count = |c: &Count| {
            let Count { name, models } = c;
            ReportCountView {
                name: name.clone(),
                models: *models,
            }
        };
        InventoryReportView {
            tenant: tenant.clone(),
            generated_at: *generated_at,
            as_of: *as_of,
            last_scan: *last_scan,
            totals: ReportTotalsView {
                models: *models,
                production: *production_total,
                incomplete: *incomplete_total,
                findings: *findings_total,
                overdue_validations: *overdue_validations,
                running_deployments: *running_deployments,
            },
            by_status: by_status.iter().map(count).collect(),
            by_tier: by_tier.iter().map(count).collect(),
            completeness_by_tier: completeness_by_tier
                .iter()
                .map(TierCompletenessView::from)
                .collect(),
            incomplete: incomplete.iter().map(IncompleteModelView::from).collect(),
            findings: findings
                .iter()
                .map(|g| {
                    let FindingGroup { kind, findings } = g;
                    FindingGroupView {
                        kind: kind.as_str().to_owned(),
                        findings: findings.iter().map(FindingView::from).collect(),
                    }
                })
                .collect(),
            overdue: overdue.iter().map(OverdueValidationView::from).collect(),
            production: production.iter().map(ProductionModelView::from).collect(),
            recent_changes: recent_changes.iter().map(ModelChangesView::from).collect(),
        }
    }
}

impl From<&IncompleteModel> for IncompleteModelView {
    fn from(m: &IncompleteModel) -> Self {
        let IncompleteModel {
            model,
            status,
            owner,
            score,
            missing,
        } = m;
        IncompleteModelView {
            model: model.clone(),
            status: status.clone(),
            owner: owner.clone(),
            score: *score,
            missing: missing.clone(),
        }
    }
}

impl From<&OverdueValidation> for OverdueValidationView {
    fn from(o: &OverdueValidation) -> Self {
        let OverdueValidation {
            model,
            status,
            owner,
            validation_last,
            due,
            days_overdue,
        } = o;
        OverdueValidationView {
            model: model.clone(),
            status: status.clone(),
            owner: owner.clone(),
            validation_last: *validation_last,
            due: *due,
            days_overdue: *days_overdue,
        }
    }
}

impl From<&ProductionModel> for ProductionModelView {
    fn from(p: &ProductionModel) -> Self {
        let ProductionModel {
            model,
            owner,
            risk_tier,
            version,
            running,
            validation_current,
            validation_last,
            validation_next,
        } = p;
        ProductionModelView {
            model: model.clone(),
            owner: owner.clone(),
            risk_tier: risk_tier.clone(),
            version: version.clone(),
            running: running
                .iter()
                .map(|p| {
                    let Placement {
                        deployment,
                        found_by,
                        kind,
                        namespace,
                        name,
                        version,
                        ready,
                    } = p;
                    PlacementView {
                        deployment: deployment.clone(),
                        found_by: found_by.clone(),
                        kind: kind.clone(),
                        namespace: namespace.clone(),
                        name: name.clone(),
                        version: version.clone(),
                        ready: *ready,
                    }
                })
                .collect(),
            validation_current: *validation_current,
            validation_last: *validation_last,
            validation_next: *validation_next,
        }
    }
}

impl From<&ModelChanges> for ModelChangesView {
    fn from(m: &ModelChanges) -> Self {
        let ModelChanges {
            model,
            changes,
            earlier,
        } = m;
        ModelChangesView {
            model: model.clone(),
            changes: changes
                .iter()
                .map(|c| {
                    let ModelChange {
                        model,
                        change,
                        title,
                        state,
                        at,
                    } = c;
                    ModelChangeView {
                        model: model.clone(),
                        change: change.clone(),
                        title: title.clone(),
                        state: state.clone(),
                        at: *at,
                    }
                })
                .collect(),
            earlier: *earlier,
        }
    }
}

/// The inventory as a CycloneDX 1.6 ML-BOM (JSON): its schema is the standard's
/// (<https://cyclonedx.org/docs/1.6/json/>), which Steward's output is validated against.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct CycloneDxBomView(pub Value);
