//! A model's page: its fields with where each value came from (attested by a person,
//! discovered by a scan of a named source, derived from other fields) and when; its
//! completeness against the template of its risk tier and tags, with the mandatory fields it
//! lacks; its versions with who or what registered them; the deployments serving it; the
//! reconciliation's findings about it; and its lineage, drawn as a graph ([`super::lineage`])
//! with the same lineage as a table beside it.
//!
//! Everything but the findings is the API's `GET /api/v1/models/{name}` view
//! (`api::inventory::model_detail`); the findings are the API's reconciliation list
//! (`api::inventory_scans::findings_now`) narrowed to this model. Another tenant's model is not
//! found, as in the API.

use super::lineage::{LineageGraph, lay_out};
use super::{utc, value_text};
use crate::AppState;
use crate::api::inventory::{ModelQuery, model_detail};
use crate::api::inventory_scans::findings_now;
use crate::api::inventory_views::{ModelDetailView, ProvenanceView};
use crate::auth::ReadRecords;
use crate::error::ApiError;
use crate::portal::Visitor;
use crate::portal::answer::{Chrome, answer, chrome, render};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::BTreeSet;
use steward_core::inventory::FIELDS;

#[derive(Template)]
#[template(path = "model.html")]
struct ModelPage {
    chrome: Chrome,
    name: String,
    title: String,
    status: String,
    risk_tier: String,
    owner: String,
    production_version: String,
    approval: Option<ApprovalRow>,
    validation_current: bool,
    updated: String,
    completeness: CompletenessBlock,
    fields: Vec<FieldRow>,
    versions: Vec<VersionRow>,
    deployments: Vec<DeploymentRow>,
    findings: Vec<FindingRow>,
    graph: Option<LineageGraph>,
    /// What the graph says about its lineage, the table beside it.
    graph_title: String,
    lineage: Vec<LineageRow>,
}

struct ApprovalRow {
    change: String,
    version: String,
    approvers: String,
    approved_at: String,
    implemented_at: String,
}

struct CompletenessBlock {
    score: u32,
    needs_review: bool,
    /// What the template is: the risk tier's, or the standard set when none is stated.
    template: String,
    required: Vec<RequiredRow>,
    missing: Vec<String>,
}

struct RequiredRow {
    name: String,
    present: bool,
}

struct FieldRow {
    name: String,
    value: String,
    /// attested, discovered, derived — or "unknown" for a value recorded without provenance.
    by: &'static str,
    /// The person, the scanned source, or the fields it was derived from.
    who: String,
    at: String,
    required: bool,
}

struct VersionRow {
    anchor: String,
    version: String,
    /// Who or what put it in the inventory: a person's registration or a scan's source.
    registered: String,
    first_seen: String,
    last_seen: String,
    digest: String,
    run: String,
    marks: String,
    production: bool,
    problems: String,
}

struct DeploymentRow {
    anchor: String,
    place: String,
    kind: String,
    serves: String,
    running: bool,
    ready: bool,
    found_by: String,
    last_seen: String,
}

struct FindingRow {
    kind: String,
    version: String,
    deployment: String,
    detail: String,
}

struct LineageRow {
    kind: String,
    label: String,
    href: Option<String>,
    comes_from: String,
    feeds: String,
}

/// A model of the viewer's tenant: fields and their provenance, completeness, versions,
/// deployments, findings and lineage.
#[utoipa::path(get, path = "/models/{name}", tag = "portal", params(("name" = String, Path)),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the model's page"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 403, description = "the viewer may not read records"),
        (status = 404, description = "no such model in the viewer's tenant")))]
pub async fn model_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Response {
    let html = visitor.html;
    answer(&state, html, page(&state, visitor, &name).await)
}

/// The order the lineage flows in, for the table.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "dataset" => 0,
        "run" => 1,
        "version" => 2,
        "deployment" => 3,
        _ => 4,
    }
}

async fn page(state: &AppState, visitor: Visitor, name: &str) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let now_query = ModelQuery {
        at: None,
        history: false,
    };
    let view = model_detail(state, &store, name, &now_query).await?;
    let findings = findings_now(state, &store).await?;
    let findings = (findings.iter())
        .filter(|f| f.model.as_deref() == Some(name))
        .map(|f| FindingRow {
            kind: f.kind.as_str().to_owned(),
            version: f.version.clone().unwrap_or_default(),
            deployment: f.deployment.clone().unwrap_or_default(),
            detail: f.detail.clone(),
        })
        .collect();
    let page = build(view, findings, chrome(&viewer));
    render(StatusCode::OK, &page)
}

fn build(view: ModelDetailView, findings: Vec<FindingRow>, chrome: Chrome) -> ModelPage {
    let ModelDetailView {
        model,
        production_version,
        approval,
        deployments,
        lineage,
        history: _,
    } = view;
    let field = |name: &str| model.fields.get(name).map(value_text).unwrap_or_default();
    let required: BTreeSet<&str> = (model.completeness.required.iter())
        .map(String::as_str)
        .collect();
    // Known fields in the template's order, then any others by name.
    let mut names: Vec<&str> = (FIELDS.iter())
        .map(|(name, ..)| *name)
        .filter(|name| model.fields.contains_key(*name))
        .collect();
    names.extend(
        (model.fields.keys())
            .map(String::as_str)
            .filter(|name| !FIELDS.iter().any(|(known, ..)| known == name)),
    );
    let fields = names
        .into_iter()
        .map(|name| {
            let (by, who, at) = match model.provenance.get(name) {
                Some(ProvenanceView::Attested { user, at }) => ("attested", user.clone(), utc(at)),
                Some(ProvenanceView::Discovered { source, at }) => {
                    ("discovered", source.clone(), utc(at))
                }
                Some(ProvenanceView::Derived { from, at }) => ("derived", from.clone(), utc(at)),
                None => ("unknown", String::new(), String::new()),
            };
            FieldRow {
                name: name.to_owned(),
                value: field(name),
                by,
                who,
                at,
                required: required.contains(name),
            }
        })
        .collect();
    let tier = field("risk_tier");
    let tags = field("regulatory_tags");
    let mut template = if tier.is_empty() {
        "no risk tier is stated yet: the standard SR 11-7 set".to_owned()
    } else {
        format!("risk tier {tier}")
    };
    if !tags.is_empty() {
        template.push_str(&format!(", with regulatory tags {tags}"));
    }
    let completeness = CompletenessBlock {
        score: model.completeness.score,
        needs_review: model.completeness.needs_review,
        template,
        required: (model.completeness.required.iter())
            .map(|name| RequiredRow {
                name: name.clone(),
                present: !model.completeness.missing.contains(name),
            })
            .collect(),
        missing: model.completeness.missing.clone(),
    };
    let versions: Vec<VersionRow> = (model.versions.iter().enumerate())
        .map(|(i, v)| {
            let mut marks = v.aliases.clone();
            marks.extend(v.stage.iter().map(|s| format!("stage {s}")));
            VersionRow {
                anchor: format!("version-{i}"),
                version: v.version.clone(),
                registered: match v.source.strip_prefix("attested:") {
                    Some(user) => format!("registered by {user}"),
                    None => format!("discovered by {}", v.source),
                },
                first_seen: utc(&v.first_seen),
                last_seen: utc(&v.last_seen),
                digest: v.digest.clone().unwrap_or_default(),
                run: v.run_id.clone().unwrap_or_default(),
                marks: marks.join(", "),
                production: production_version.as_deref() == Some(v.version.as_str()),
                problems: v.problems.join("; "),
            }
        })
        .collect();
    let deployments = deployments.unwrap_or_default();
    let deployment_rows: Vec<DeploymentRow> = (deployments.iter().enumerate())
        .map(|(i, d)| DeploymentRow {
            anchor: format!("deployment-{i}"),
            place: format!("{}/{}", d.deployment.namespace, d.deployment.name),
            kind: d.deployment.kind.clone(),
            serves: d.serves_version.clone().unwrap_or_default(),
            running: d.deployment.running,
            ready: d.deployment.ready,
            found_by: d.deployment.found_by.clone(),
            last_seen: utc(&d.deployment.last_seen),
        })
        .collect();
    // A version or deployment node links to its row on this page.
    let href = |key: &str| -> Option<String> {
        if let Some(version) = key.strip_prefix(&format!("version:{}/", model.name)) {
            let i = model.versions.iter().position(|v| v.version == version)?;
            return Some(format!("#version-{i}"));
        }
        let key = key.strip_prefix("deployment:")?;
        let i = deployments.iter().position(|d| d.deployment.key == key)?;
        Some(format!("#deployment-{i}"))
    };
    let lineage = lineage.unwrap_or_else(|| crate::api::inventory_views::LineageView {
        nodes: Vec::new(),
        edges: Vec::new(),
    });
    let graph = lay_out(&lineage, href);
    let label_of = |key: &str| {
        (lineage.nodes.iter())
            .find(|n| n.key == key)
            .map(|n| format!("{} {}", n.kind, n.label))
            .unwrap_or_else(|| key.to_owned())
    };
    let mut rows: Vec<(u8, usize, LineageRow)> = (lineage.nodes.iter().enumerate())
        .map(|(i, n)| {
            let joined = |keys: Vec<&str>| {
                keys.into_iter()
                    .map(label_of)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let from = (lineage.edges.iter())
                .filter(|e| e.to == n.key)
                .map(|e| e.from.as_str())
                .collect();
            let to = (lineage.edges.iter())
                .filter(|e| e.from == n.key)
                .map(|e| e.to.as_str())
                .collect();
            let row = LineageRow {
                kind: n.kind.clone(),
                label: n.label.clone(),
                href: href(&n.key),
                comes_from: joined(from),
                feeds: joined(to),
            };
            (kind_rank(&n.kind), i, row)
        })
        .collect();
    rows.sort_by_key(|(rank, i, _)| (*rank, *i));
    let count = |kind: &str| lineage.nodes.iter().filter(|n| n.kind == kind).count();
    let graph_title = format!(
        "Lineage of {}: {} datasets, {} training runs, {} versions, {} deployments, {} links",
        model.name,
        count("dataset"),
        count("run"),
        count("version"),
        count("deployment"),
        lineage.edges.len()
    );
    ModelPage {
        chrome,
        title: field("title"),
        // The core reads a record without a status as in development, as the API list says.
        status: Some(field("status"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "development".to_owned()),
        risk_tier: tier,
        owner: field("owner"),
        production_version: production_version.unwrap_or_default(),
        approval: approval.map(|a| ApprovalRow {
            change: a.change,
            version: a.version.unwrap_or_default(),
            approvers: a.approvers.join(", "),
            approved_at: a.approved_at.as_ref().map(utc).unwrap_or_default(),
            implemented_at: a.implemented_at.as_ref().map(utc).unwrap_or_default(),
        }),
        validation_current: model.validation_current,
        updated: utc(&model.updated_at),
        completeness,
        fields,
        versions,
        deployments: deployment_rows,
        findings,
        graph,
        graph_title,
        lineage: rows.into_iter().map(|(.., row)| row).collect(),
        name: model.name,
    }
}
