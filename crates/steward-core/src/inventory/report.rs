//! The model inventory report: what an ML manager hands a regulator or an auditor. [`build`]
//! gathers, from the inventory as it stands, the counts by status and by risk tier, the records
//! that are incomplete against the templates, the reconciliation findings by kind, the overdue
//! validations, where each production model runs and the recent changes to each model, into a
//! [`Report`], whose serialised form is the JSON report. [`to_markdown`] and [`to_html`] render the
//! same report for people; both are written from one list of blocks, so the two cannot say
//! different things. Everything is sorted, never left in input order, so the same inventory gives
//! byte-identical output and two runs of a report can be compared.

use super::{
    Deployment, Finding, FindingKind, Model, Provenance, STATUSES, TIERS, Templates,
    match_deployment,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// How many changes per model the report lists, newest first.
pub const RECENT_CHANGES: usize = 5;

/// The risk-tier row for models whose tier nobody has stated.
pub const UNSTATED: &str = "unstated";

/// A change touching a model, for the recent changes per model (the server finds them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelChange {
    pub model: String,
    /// The change's id: `CHG-12`.
    pub change: String,
    pub title: String,
    /// Its lifecycle state, as a word (`approved`, `closed`).
    pub state: String,
    /// When it touched the model: the time changes are ordered by.
    pub at: DateTime<Utc>,
}

/// What a report is built from: the inventory and its surroundings, as the server read them.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    pub models: &'a [Model],
    /// Every deployment known; only those still running count.
    pub deployments: &'a [Deployment],
    /// The latest reconciliation's findings.
    pub findings: &'a [Finding],
    pub changes: &'a [ModelChange],
    pub templates: &'a Templates,
    /// The day the report speaks for: validations are judged against it.
    pub today: NaiveDate,
    pub generated_at: DateTime<Utc>,
    pub tenant: &'a str,
    /// When the inventory was last scanned, if it ever was.
    pub last_scan: Option<DateTime<Utc>>,
}

/// The model inventory report. Serialised, this is its JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tenant: String,
    pub generated_at: DateTime<Utc>,
    /// The day the report speaks for ([`ReportInput::today`]).
    pub as_of: NaiveDate,
    pub last_scan: Option<DateTime<Utc>>,
    pub totals: Totals,
    /// Every status of [`STATUSES`] in lifecycle order, zero included; then, by name, any other
    /// value a scan recorded, so the rows always add up to the number of models.
    pub by_status: Vec<Count>,
    /// Every tier of [`TIERS`], then [`UNSTATED`], zero included; then, by name, any other value
    /// a scan recorded.
    pub by_tier: Vec<Count>,
    /// How complete the records of each risk tier are, in `by_tier`'s order.
    #[serde(default)]
    pub completeness_by_tier: Vec<TierCompleteness>,
    /// Records missing fields their templates require, least complete first.
    pub incomplete: Vec<IncompleteModel>,
    /// One group per kind of finding, every kind present, in [`FindingKind`] order.
    pub findings: Vec<FindingGroup>,
    /// Validations past due, most overdue first.
    pub overdue: Vec<OverdueValidation>,
    /// Models with the status `production`, by name.
    pub production: Vec<ProductionModel>,
    /// The recent changes of each model that has any, by model name.
    pub recent_changes: Vec<ModelChanges>,
}

/// The headline numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub models: usize,
    /// Models with the status `production`.
    pub production: usize,
    /// Records missing a field their templates require.
    pub incomplete: usize,
    pub findings: usize,
    pub overdue_validations: usize,
    /// Deployments the latest scans found running.
    pub running_deployments: usize,
}

/// How many models have one status, or one risk tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub name: String,
    pub models: usize,
}

/// How complete the records of one risk tier are against their templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierCompleteness {
    /// The tier, as [`Report::by_tier`] names it (`unstated` included).
    pub tier: String,
    pub models: usize,
    /// Of those, the records missing no field their templates require.
    pub complete: usize,
    /// 0–100: the mean completeness score, rounded; `None` when the tier has no models.
    pub mean_score: Option<u32>,
}

/// A record missing fields its templates require.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncompleteModel {
    pub model: String,
    pub status: String,
    pub owner: Option<String>,
    /// 0–100: the share of required fields present.
    pub score: u32,
    /// In the template's order.
    pub missing: Vec<String>,
}

/// The findings of one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingGroup {
    pub kind: FindingKind,
    /// By model, version, deployment and detail.
    pub findings: Vec<Finding>,
}

/// A model whose validation is past due. Retired models are not judged: they are out of use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverdueValidation {
    pub model: String,
    pub status: String,
    pub owner: Option<String>,
    /// `None`: never validated.
    pub validation_last: Option<NaiveDate>,
    /// The earliest day the validation fell due and was not done: its `validation_next` when that
    /// is before the report's day; for a production model never validated, the day its status
    /// was set (a model is validated before it goes into production).
    pub due: NaiveDate,
    /// Days from `due` to the report's day.
    pub days_overdue: i64,
}

/// A production model: the version it should run, where it runs, and whether it may.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionModel {
    pub model: String,
    pub owner: Option<String>,
    pub risk_tier: Option<String>,
    /// The version the registry marks as serving production ([`Model::production_version`]).
    pub version: Option<String>,
    /// The running deployments serving it ([`match_deployment`]), by key.
    pub running: Vec<Placement>,
    /// Validated, and not past `validation_next`, on the report's day.
    pub validation_current: bool,
    pub validation_last: Option<NaiveDate>,
    pub validation_next: Option<NaiveDate>,
}

/// A running deployment serving a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The deployment's key.
    pub deployment: String,
    /// The scan source that found it (`kubernetes:prod`).
    pub found_by: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The version it serves, where the resource or its artifact tells.
    pub version: Option<String>,
    pub ready: bool,
}

/// A model's newest changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelChanges {
    pub model: String,
    /// At most [`RECENT_CHANGES`], newest first.
    pub changes: Vec<ModelChange>,
    /// How many older changes were left out.
    pub earlier: usize,
}

/// The kinds of finding in report order. [`kind_title`] matches on every kind, so a new kind
/// does not compile until it has a title — and then belongs here too.
const FINDING_KINDS: [FindingKind; 6] = [
    FindingKind::Orphan,
    FindingKind::NotRunning,
    FindingKind::Unapproved,
    FindingKind::InProductionWithoutChange,
    FindingKind::ValidationExpired,
    FindingKind::DigestMismatch,
];

fn kind_title(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Orphan => "Orphans: running, not registered",
        FindingKind::NotRunning => "Registered for production, not running",
        FindingKind::Unapproved => "Running without a completed change that names it",
        FindingKind::InProductionWithoutChange => {
            "Marked for production without a completed change that names it"
        }
        FindingKind::ValidationExpired => "Running with a validation missing or expired",
        FindingKind::DigestMismatch => "Running an artifact other than the registered one",
    }
}

/// A text field's value, trimmed; `None` when absent, blank or not text.
fn text(model: &Model, field: &str) -> Option<String> {
    model
        .fields
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn date(model: &Model, field: &str) -> Option<NaiveDate> {
    model
        .fields
        .get(field)
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
}

/// The day the model's status was last set, or its record created.
fn status_since(model: &Model) -> NaiveDate {
    match model.provenance.get("status") {
        Some(
            Provenance::Discovered { at, .. }
            | Provenance::Attested { at, .. }
            | Provenance::Derived { at, .. },
        ) => at.date_naive(),
        None => model.created_at.date_naive(),
    }
}

/// Counts `values` into a row per name of `order` (zero included), then a row per other value.
fn tally(order: &[&str], values: impl Iterator<Item = String>) -> Vec<Count> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for v in values {
        *seen.entry(v).or_default() += 1;
    }
    let mut out: Vec<Count> = order
        .iter()
        .map(|name| Count {
            name: (*name).to_owned(),
            models: seen.remove(*name).unwrap_or(0),
        })
        .collect();
    out.extend(
        seen.into_iter()
            .map(|(name, models)| Count { name, models }),
    );
    out
}

/// Gathers the report. Pure: the same input gives the same report, whatever its order.
pub fn build(input: &ReportInput) -> Report {
    let today = input.today;
    let mut models: Vec<&Model> = input.models.iter().collect();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    let mut running: Vec<&Deployment> = input.deployments.iter().filter(|d| d.running).collect();
    running.sort_by(|a, b| a.key.cmp(&b.key));

    let by_status = tally(STATUSES, models.iter().map(|m| m.status().to_owned()));
    let tier_order: Vec<&str> = TIERS.iter().copied().chain([UNSTATED]).collect();
    let by_tier = tally(
        &tier_order,
        models
            .iter()
            .map(|m| text(m, "risk_tier").unwrap_or_else(|| UNSTATED.to_owned())),
    );

    let completeness_by_tier = by_tier
        .iter()
        .map(|count| {
            let scores: Vec<super::Completeness> = models
                .iter()
                .filter(|m| {
                    text(m, "risk_tier").unwrap_or_else(|| UNSTATED.to_owned()) == count.name
                })
                .map(|m| m.completeness(input.templates))
                .collect();
            let total: usize = scores.iter().map(|c| c.score as usize).sum();
            TierCompleteness {
                tier: count.name.clone(),
                models: scores.len(),
                complete: scores.iter().filter(|c| !c.needs_review).count(),
                mean_score: (!scores.is_empty())
                    .then(|| ((total + scores.len() / 2) / scores.len()) as u32),
            }
        })
        .collect();

    let mut incomplete: Vec<IncompleteModel> = models
        .iter()
        .filter_map(|m| {
            let c = m.completeness(input.templates);
            c.needs_review.then(|| IncompleteModel {
                model: m.name.clone(),
                status: m.status().to_owned(),
                owner: text(m, "owner"),
                score: c.score,
                missing: c.missing,
            })
        })
        .collect();
    incomplete.sort_by(|a, b| {
        a.score
            .cmp(&b.score)
            .then(b.missing.len().cmp(&a.missing.len()))
            .then_with(|| a.model.cmp(&b.model))
    });

    let findings = FINDING_KINDS
        .iter()
        .map(|&kind| {
            let mut list: Vec<Finding> = input
                .findings
                .iter()
                .filter(|f| f.kind == kind)
                .cloned()
                .collect();
            list.sort_by(|a, b| {
                (&a.model, &a.version, &a.deployment, &a.detail).cmp(&(
                    &b.model,
                    &b.version,
                    &b.deployment,
                    &b.detail,
                ))
            });
            FindingGroup {
                kind,
                findings: list,
            }
        })
        .collect();

    let mut overdue: Vec<OverdueValidation> = models
        .iter()
        .filter(|m| m.status() != "retired")
        .filter_map(|m| {
            let last = date(m, "validation_last");
            let lapsed = date(m, "validation_next").filter(|next| *next < today);
            let unvalidated = (m.status() == "production" && last.is_none())
                .then(|| status_since(m))
                .filter(|since| *since <= today);
            let due = lapsed.into_iter().chain(unvalidated).min()?;
            Some(OverdueValidation {
                model: m.name.clone(),
                status: m.status().to_owned(),
                owner: text(m, "owner"),
                validation_last: last,
                due,
                days_overdue: (today - due).num_days(),
            })
        })
        .collect();
    overdue.sort_by(|a, b| {
        b.days_overdue
            .cmp(&a.days_overdue)
            .then_with(|| a.model.cmp(&b.model))
    });

    // Each running deployment matched once, in key order.
    let serving: Vec<(&str, Placement)> = running
        .iter()
        .filter_map(|d| {
            let (model, version) = match_deployment(d, input.models)?;
            Some((
                model.name.as_str(),
                Placement {
                    deployment: d.key.clone(),
                    found_by: d.found_by.clone(),
                    kind: d.kind.clone(),
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                    version,
                    ready: d.ready,
                },
            ))
        })
        .collect();
    let production: Vec<ProductionModel> = models
        .iter()
        .filter(|m| m.status() == "production")
        .map(|m| ProductionModel {
            model: m.name.clone(),
            owner: text(m, "owner"),
            risk_tier: text(m, "risk_tier"),
            version: m.production_version().map(|v| v.version.clone()),
            running: serving
                .iter()
                .filter(|(name, _)| *name == m.name)
                .map(|(_, p)| p.clone())
                .collect(),
            validation_current: m.validation_current(today),
            validation_last: date(m, "validation_last"),
            validation_next: date(m, "validation_next"),
        })
        .collect();

    let mut per_model: BTreeMap<&str, Vec<&ModelChange>> = BTreeMap::new();
    for c in input.changes {
        per_model.entry(&c.model).or_default().push(c);
    }
    let recent_changes = per_model
        .into_iter()
        .map(|(model, mut list)| {
            list.sort_by(|a, b| {
                b.at.cmp(&a.at)
                    .then_with(|| a.change.cmp(&b.change))
                    .then_with(|| a.title.cmp(&b.title))
                    .then_with(|| a.state.cmp(&b.state))
            });
            list.dedup();
            let earlier = list.len().saturating_sub(RECENT_CHANGES);
            list.truncate(RECENT_CHANGES);
            ModelChanges {
                model: model.to_owned(),
                changes: list.into_iter().cloned().collect(),
                earlier,
            }
        })
        .collect();

    Report {
        tenant: input.tenant.to_owned(),
        generated_at: input.generated_at,
        as_of: today,
        last_scan: input.last_scan,
        totals: Totals {
            models: models.len(),
            production: production.len(),
            incomplete: incomplete.len(),
            findings: input.findings.len(),
            overdue_validations: overdue.len(),
            running_deployments: running.len(),
        },
        by_status,
        by_tier,
        completeness_by_tier,
        incomplete,
        findings,
        overdue,
        production,
        recent_changes,
    }
}

/// One piece of the rendered report; Markdown and HTML are both written from the same blocks.
enum Block {
    Heading(usize, String),
    Text(String),
    /// An empty table renders as "None.".
    Table(Table),
}

struct Table {
    /// Each column's header, and whether it holds numbers (aligned right).
    head: Vec<(&'static str, bool)>,
    rows: Vec<Vec<String>>,
}

/// Shown in a cell for a value nobody has stated.
const NONE: &str = "—";

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn or_none(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| NONE.to_owned())
}

fn placement_text(p: &Placement) -> String {
    let mut s = format!("{} {}/{} ({})", p.kind, p.namespace, p.name, p.found_by);
    if let Some(v) = &p.version {
        s.push_str(&format!(" v{v}"));
    }
    if !p.ready {
        s.push_str(", not ready");
    }
    s
}

fn validation_text(p: &ProductionModel, as_of: NaiveDate) -> String {
    match (p.validation_last, p.validation_next) {
        (Some(_), Some(next)) if p.validation_current => format!("current, due {next}"),
        (None, _) => "never validated".to_owned(),
        (Some(_), Some(next)) if next < as_of => format!("expired, was due {next}"),
        (Some(last), None) => format!("not current: validated {last}, no next date"),
        (Some(last), Some(_)) => format!("not current: validated {last}"),
    }
}

fn blocks(r: &Report) -> Vec<Block> {
    use Block::{Heading, Text};
    let table = |head: &[(&'static str, bool)], rows: Vec<Vec<String>>| {
        Block::Table(Table {
            head: head.to_vec(),
            rows,
        })
    };
    let mut out = vec![
        Heading(
            1,
            format!("Model inventory report: {}, {}", r.tenant, r.as_of),
        ),
        Text(format!(
            "Tenant {}, as of {}. Generated {}. Last inventory scan: {}.",
            r.tenant,
            r.as_of,
            stamp(r.generated_at),
            r.last_scan
                .map(stamp)
                .unwrap_or_else(|| "none recorded".into())
        )),
        Heading(2, "Summary".into()),
    ];
    let t = &r.totals;
    out.push(table(
        &[("Measure", false), ("Count", true)],
        [
            ("Models in the inventory", t.models),
            ("In production", t.production),
            ("Incomplete records", t.incomplete),
            ("Reconciliation findings", t.findings),
            ("Overdue validations", t.overdue_validations),
            ("Deployments running", t.running_deployments),
        ]
        .iter()
        .map(|(name, n)| vec![(*name).to_owned(), n.to_string()])
        .collect(),
    ));
    for (title, column, counts) in [
        ("Models by status", "Status", &r.by_status),
        ("Models by risk tier", "Risk tier", &r.by_tier),
    ] {
        out.push(Heading(2, title.into()));
        out.push(table(
            &[(column, false), ("Models", true)],
            counts
                .iter()
                .map(|c| vec![c.name.clone(), c.models.to_string()])
                .collect(),
        ));
    }

    out.push(Heading(2, "Incomplete records".into()));
    out.push(Text(
        "Records missing fields their templates require, least complete first.".into(),
    ));
    out.push(table(
        &[
            ("Model", false),
            ("Status", false),
            ("Owner", false),
            ("Complete", true),
            ("Missing fields", false),
        ],
        r.incomplete
            .iter()
            .map(|m| {
                vec![
                    m.model.clone(),
                    m.status.clone(),
                    or_none(&m.owner),
                    format!("{}%", m.score),
                    m.missing.join(", "),
                ]
            })
            .collect(),
    ));

    out.push(Heading(2, "Reconciliation findings".into()));
    out.push(Text(
        "What the registry says against what runs, as of the last scan.".into(),
    ));
    for group in &r.findings {
        out.push(Heading(
            3,
            format!("{} ({})", kind_title(group.kind), group.findings.len()),
        ));
        out.push(table(
            &[
                ("Model", false),
                ("Version", false),
                ("Deployment", false),
                ("Detail", false),
            ],
            group
                .findings
                .iter()
                .map(|f| {
                    vec![
                        or_none(&f.model),
                        or_none(&f.version),
                        or_none(&f.deployment),
                        f.detail.clone(),
                    ]
                })
                .collect(),
        ));
    }

    out.push(Heading(2, "Overdue validations".into()));
    out.push(Text(
        "Models past their validation date, and production models never validated (due from the \
         day their status was set), most overdue first. Retired models are not listed."
            .into(),
    ));
    out.push(table(
        &[
            ("Model", false),
            ("Status", false),
            ("Owner", false),
            ("Last validated", false),
            ("Due", false),
            ("Days overdue", true),
        ],
        r.overdue
            .iter()
            .map(|o| {
                vec![
                    o.model.clone(),
                    o.status.clone(),
                    or_none(&o.owner),
                    o.validation_last
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "never".into()),
                    o.due.to_string(),
                    o.days_overdue.to_string(),
                ]
            })
            .collect(),
    ));

    out.push(Heading(2, "Production models".into()));
    out.push(table(
        &[
            ("Model", false),
            ("Owner", false),
            ("Risk tier", false),
            ("Production version", false),
            ("Runs on", false),
            ("Validation", false),
        ],
        r.production
            .iter()
            .map(|p| {
                vec![
                    p.model.clone(),
                    or_none(&p.owner),
                    or_none(&p.risk_tier),
                    or_none(&p.version),
                    if p.running.is_empty() {
                        "no running deployment found".to_owned()
                    } else {
                        p.running
                            .iter()
                            .map(placement_text)
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                    validation_text(p, r.as_of),
                ]
            })
            .collect(),
    ));

    out.push(Heading(2, "Recent changes".into()));
    out.push(Text(format!(
        "The {RECENT_CHANGES} newest changes per model, newest first."
    )));
    if r.recent_changes.is_empty() {
        out.push(table(&[], Vec::new()));
    }
    for m in &r.recent_changes {
        out.push(Heading(3, m.model.clone()));
        out.push(table(
            &[
                ("Change", false),
                ("Title", false),
                ("State", false),
                ("When", false),
            ],
            m.changes
                .iter()
                .map(|c| {
                    vec![
                        c.change.clone(),
                        c.title.clone(),
                        c.state.clone(),
                        stamp(c.at),
                    ]
                })
                .collect(),
        ));
        if m.earlier > 0 {
            out.push(Text(format!(
                "{} earlier change{} not shown.",
                m.earlier,
                if m.earlier == 1 { "" } else { "s" }
            )));
        }
    }
    out
}

/// Escapes text for Markdown: `|` cannot end a table cell, `<` cannot open raw HTML, and links,
/// emphasis, code and entities cannot start; line breaks become spaces so a cell stays one line.
/// A `&` is escaped only where it would start an entity (`&amp;`), so "R&D" stays readable.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        match c {
            '\\' | '|' | '<' | '>' | '[' | ']' | '*' | '`' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '&' if starts_entity(&text[i + 1..]) => out.push_str("\\&"),
            '\n' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether the text after a `&` makes it an entity reference: `#`, then letters or digits, `;`.
fn starts_entity(rest: &str) -> bool {
    let name = rest.strip_prefix('#').unwrap_or(rest);
    let len = name
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(name.len());
    len > 0 && name[len..].starts_with(';')
}

/// Escapes text for HTML, in content and in quoted attributes alike.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The report as Markdown (GitHub-flavoured tables), every interpolated text escaped.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    for block in blocks(report) {
        match block {
            Block::Heading(level, text) => {
                out.push_str(&format!("{} {}\n\n", "#".repeat(level), md(&text)));
            }
            Block::Text(text) => out.push_str(&format!("{}\n\n", md(&text))),
            Block::Table(t) if t.rows.is_empty() => out.push_str("None.\n\n"),
            Block::Table(t) => {
                let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
                out.push_str(&line(t.head.iter().map(|(h, _)| md(h)).collect()));
                out.push_str(&line(
                    t.head
                        .iter()
                        .map(|(_, numeric)| if *numeric { "---:" } else { "---" }.to_owned())
                        .collect(),
                ));
                for row in &t.rows {
                    out.push_str(&line(row.iter().map(|c| md(c)).collect()));
                }
                out.push('\n');
            }
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

const CSS: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;\
color:#1a1a1a;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.25rem}h2{font-size:1.25rem;margin-top:2rem;\
border-bottom:1px solid #ccc;padding-bottom:.2rem}h3{font-size:1.05rem;margin-top:1.25rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.92rem}\
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f2f2f2}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
p.none{color:#555;font-style:italic}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}";

/// The report as one self-contained HTML5 document: inline CSS, no scripts, no external
/// resources (its content security policy forbids both), every interpolated text escaped.
pub fn to_html(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        html(&format!(
            "Model inventory report: {}, {}",
            report.tenant, report.as_of
        ))
    ));
    for block in blocks(report) {
        match block {
            Block::Heading(level, text) => {
                out.push_str(&format!("<h{level}>{}</h{level}>\n", html(&text)));
            }
            Block::Text(text) => out.push_str(&format!("<p>{}</p>\n", html(&text))),
            Block::Table(t) if t.rows.is_empty() => {
                out.push_str("<p class=\"none\">None.</p>\n");
            }
            Block::Table(t) => {
                let class = |numeric: bool| if numeric { " class=\"num\"" } else { "" };
                out.push_str("<table>\n<thead><tr>");
                for (h, numeric) in &t.head {
                    out.push_str(&format!("<th{}>{}</th>", class(*numeric), html(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in &t.rows {
                    out.push_str("<tr>");
                    for (cell, (_, numeric)) in row.iter().zip(&t.head) {
                        out.push_str(&format!("<td{}>{}</td>", class(*numeric), html(cell)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ModelVersion;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    const TODAY: &str = "2026-11-29";

    /// A model created on 2026-01-01 with `fields` set as they stand (status set that day too).
    fn model(name: &str, fields: Value) -> Model {
        let mut m = Model::new(name, at("2026-01-01T09:00:00Z"));
        for (k, v) in fields.as_object().expect("object") {
            m.fields.insert(k.clone(), v.clone());
        }
        m
    }

    fn version(model: &str, v: &str, production: bool) -> ModelVersion {
        let now = at("2026-01-01T09:00:00Z");
        ModelVersion {
            version: v.into(),
            artifact_uri: format!("s3://models/{model}/{v}"),
            digest: Some(format!("sha256:{model}{v}")),
            framework: None,
            trained_at: None,
            metrics: BTreeMap::new(),
            source: "mlflow:http://mlflow".into(),
            first_seen: now,
            last_seen: now,
            metadata: json!({}),
            problems: vec![],
            run_id: None,
            aliases: if production {
                vec!["champion".into()]
            } else {
                vec![]
            },
            stage: None,
        }
    }

    fn deployment(name: &str, uri: &str, running: bool) -> Deployment {
        let now = at("2026-11-28T03:00:00Z");
        Deployment {
            key: Deployment::key_for("kubernetes:prod", "kserve", "ml", name),
            found_by: "kubernetes:prod".into(),
            kind: "kserve".into(),
            namespace: "ml".into(),
            name: name.into(),
            model: None,
            version: None,
            format: None,
            runtime: None,
            storage_uri: Some(uri.into()),
            digest: None,
            url: None,
            ready: true,
            labels: BTreeMap::new(),
            images: vec![],
            running,
            first_seen: now,
            last_seen: now,
        }
    }

    fn finding(kind: FindingKind, model: &str, detail: &str) -> Finding {
        Finding {
            kind,
            model: Some(model.into()),
            version: None,
            deployment: None,
            detail: detail.into(),
        }
    }

    fn change(model: &str, id: &str, when: &str) -> ModelChange {
        ModelChange {
            model: model.into(),
            change: id.into(),
            title: format!("{id} title"),
            state: "closed".into(),
            at: at(when),
        }
    }

    struct Fixture {
        models: Vec<Model>,
        deployments: Vec<Deployment>,
        findings: Vec<Finding>,
        changes: Vec<ModelChange>,
        templates: Templates,
    }

    impl Fixture {
        fn new(models: Vec<Model>) -> Fixture {
            Fixture {
                models,
                deployments: vec![],
                findings: vec![],
                changes: vec![],
                templates: Templates::standard(),
            }
        }

        fn input(&self) -> ReportInput<'_> {
            ReportInput {
                models: &self.models,
                deployments: &self.deployments,
                findings: &self.findings,
                changes: &self.changes,
                templates: &self.templates,
                today: day(TODAY),
                generated_at: at("2026-11-29T12:00:00Z"),
                tenant: "acme",
                last_scan: Some(at("2026-11-28T03:00:00Z")),
            }
        }

        fn report(&self) -> Report {
            build(&self.input())
        }
    }

    fn counts(rows: &[Count]) -> Vec<(&str, usize)> {
        rows.iter().map(|c| (c.name.as_str(), c.models)).collect()
    }

    #[test]
    fn counts_list_every_status_and_tier_with_zeros() {
        let fx = Fixture::new(vec![
            model("a", json!({"status": "development"})),
            model("b", json!({"status": "production", "risk_tier": "high"})),
            model("c", json!({"risk_tier": "high"})),
            // A scan may record a value no person would be allowed to state.
            model("d", json!({"status": "staging", "risk_tier": "critical"})),
        ]);
        let r = fx.report();
        assert_eq!(
            counts(&r.by_status),
            [
                ("development", 2),
                ("validation", 0),
                ("production", 1),
                ("retired", 0),
                ("staging", 1),
            ]
        );
        assert_eq!(
            counts(&r.by_tier),
            [
                ("low", 0),
                ("medium", 0),
                ("high", 2),
                ("unstated", 1),
                ("critical", 1)
            ]
        );
        assert_eq!(r.totals.models, 4);
        assert_eq!(r.totals.production, 1);
        let md = to_markdown(&r);
        assert!(md.contains("| validation | 0 |"), "{md}");
        assert!(md.contains("| unstated | 1 |"), "{md}");
    }

    #[test]
    fn completeness_is_summed_up_per_tier_in_the_tier_order() {
        let mut templates = Templates::standard();
        templates
            .tiers
            .insert("low".into(), vec!["risk_tier".into(), "owner".into()]);
        let mut fx = Fixture::new(vec![
            model("a", json!({"risk_tier": "low", "owner": "mia"})),
            model("b", json!({"risk_tier": "low"})),
            model("c", json!({"risk_tier": "high"})),
            model("d", json!({})),
        ]);
        fx.templates = templates.clone();
        let r = fx.report();
        let rows: Vec<(&str, usize, usize, Option<u32>)> = r
            .completeness_by_tier
            .iter()
            .map(|t| (t.tier.as_str(), t.models, t.complete, t.mean_score))
            .collect();
        let high = fx.models[2].completeness(&templates).score;
        let unstated = fx.models[3].completeness(&templates).score;
        assert_eq!(
            rows,
            [
                ("low", 2, 1, Some(75)),
                ("medium", 0, 0, None),
                ("high", 1, 0, Some(high)),
                ("unstated", 1, 0, Some(unstated)),
            ]
        );
    }

    #[test]
    fn overdue_and_never_validated_production_models_appear_with_their_days() {
        let mut unvalidated = model("never", json!({"status": "production"}));
        // Its status was set to production on 2026-10-30: validation was due that day.
        unvalidated.provenance.insert(
            "status".into(),
            Provenance::Derived {
                from: "test".into(),
                at: at("2026-10-30T15:00:00Z"),
            },
        );
        let fx = Fixture::new(vec![
            model(
                "lapsed",
                json!({"status": "validation", "owner": "mia",
                       "validation_last": "2025-11-19", "validation_next": "2026-11-19"}),
            ),
            unvalidated,
            // Not overdue: due today, never validated but not in production, retired.
            model(
                "due-today",
                json!({"status": "production", "validation_last": "2025-11-29",
                       "validation_next": TODAY}),
            ),
            model("dev", json!({"status": "development"})),
            model(
                "old",
                json!({"status": "retired", "validation_last": "2020-01-01",
                       "validation_next": "2021-01-01"}),
            ),
        ]);
        let r = fx.report();
        let rows: Vec<(&str, Option<NaiveDate>, NaiveDate, i64)> = r
            .overdue
            .iter()
            .map(|o| (o.model.as_str(), o.validation_last, o.due, o.days_overdue))
            .collect();
        assert_eq!(
            rows,
            [
                ("never", None, day("2026-10-30"), 30),
                ("lapsed", Some(day("2025-11-19")), day("2026-11-19"), 10),
            ]
        );
        assert_eq!(r.totals.overdue_validations, 2);
        let md = to_markdown(&r);
        assert!(
            md.contains("| never | production | — | never | 2026-10-30 | 30 |"),
            "{md}"
        );
        assert!(
            md.contains("| lapsed | validation | mia | 2025-11-19 | 2026-11-19 | 10 |"),
            "{md}"
        );
    }

    #[test]
    fn findings_are_grouped_by_kind_in_order_with_empty_groups_said() {
        let mut fx = Fixture::new(vec![]);
        fx.findings = vec![
            finding(FindingKind::DigestMismatch, "fraud", "runs sha256:ff"),
            finding(FindingKind::Orphan, "shadow-b", "nobody registered b"),
            finding(FindingKind::Unapproved, "churn", "no approved change"),
            finding(FindingKind::Orphan, "shadow-a", "nobody registered a"),
        ];
        let r = fx.report();
        let groups: Vec<(FindingKind, Vec<&str>)> = r
            .findings
            .iter()
            .map(|g| {
                (
                    g.kind,
                    g.findings.iter().map(|f| f.detail.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                (
                    FindingKind::Orphan,
                    vec!["nobody registered a", "nobody registered b"]
                ),
                (FindingKind::NotRunning, vec![]),
                (FindingKind::Unapproved, vec!["no approved change"]),
                (FindingKind::InProductionWithoutChange, vec![]),
                (FindingKind::ValidationExpired, vec![]),
                (FindingKind::DigestMismatch, vec!["runs sha256:ff"]),
            ]
        );
        assert_eq!(r.totals.findings, 4);
        let md = to_markdown(&r);
        assert!(
            md.contains("### Registered for production, not running (0)\n\nNone.\n"),
            "{md}"
        );
        assert!(
            md.contains("| shadow-a | — | — | nobody registered a |"),
            "{md}"
        );
    }

    #[test]
    fn production_models_show_their_version_where_they_run_and_validation() {
        let mut fraud = model(
            "fraud",
            json!({"status": "production", "owner": "mia", "risk_tier": "high",
                   "validation_last": "2026-01-01", "validation_next": "2027-01-01"}),
        );
        fraud.versions = vec![version("fraud", "2", false), version("fraud", "3", true)];
        let mut fx = Fixture::new(vec![fraud]);
        fx.deployments = vec![
            deployment("fraud-b", "s3://models/fraud/3", true),
            deployment("fraud-a", "s3://models/fraud/2", true),
            // Gone: a scan no longer finds it.
            deployment("fraud-old", "s3://models/fraud/3", false),
        ];
        let r = fx.report();
        assert_eq!(r.production.len(), 1);
        let p = &r.production[0];
        assert_eq!(p.version.as_deref(), Some("3"));
        assert!(p.validation_current);
        let runs: Vec<(&str, Option<&str>)> = p
            .running
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_deref()))
            .collect();
        assert_eq!(runs, [("fraud-a", Some("2")), ("fraud-b", Some("3"))]);
        assert_eq!(r.totals.running_deployments, 2);
        let md = to_markdown(&r);
        assert!(
            md.contains(
                "| fraud | mia | high | 3 | kserve ml/fraud-a (kubernetes:prod) v2; \
                 kserve ml/fraud-b (kubernetes:prod) v3 | current, due 2027-01-01 |"
            ),
            "{md}"
        );
    }

    #[test]
    fn hostile_text_is_escaped_in_html_and_markdown() {
        let name = "x<script>alert('1')</script>|y";
        let mut fx = Fixture::new(vec![model(name, json!({"status": "production"}))]);
        let mut titled = change(name, "CHG-1", "2026-11-01T00:00:00Z");
        titled.title = "R&D &amp; [ops](javascript:x) *now*".into();
        fx.changes = vec![titled];
        let r = fx.report();

        let html = to_html(&r);
        assert!(html.starts_with("<!DOCTYPE html>\n"), "{html}");
        assert!(html.ends_with("</html>\n"));
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("x&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;|y"),
            "{html}"
        );
        assert!(!html.contains("src=") && !html.contains("href="), "{html}");
        assert!(
            html.contains("<td>R&amp;D &amp;amp; [ops](javascript:x) *now*</td>"),
            "{html}"
        );

        let md = to_markdown(&r);
        let escaped = "x\\<script\\>alert('1')\\</script\\>\\|y";
        assert!(md.contains(&format!("### {escaped}\n")), "{md}");
        assert!(md.contains(&format!("| {escaped} | production |")), "{md}");
        assert!(
            md.contains("| R&D \\&amp; \\[ops\\](javascript:x) \\*now\\* |"),
            "{md}"
        );
        // No `<` or `|` of the name is left bare: every table row keeps its column count.
        assert!(!md.replace("\\<", "").contains('<'), "{md}");
        for line in md.lines().filter(|l| l.contains("script")) {
            if line.starts_with('|') {
                let bare = line.replace("\\|", "").matches('|').count();
                let header = md
                    .lines()
                    .rev()
                    .skip_while(|l| *l != line)
                    .find(|l| l.starts_with("| ---") || l.starts_with("|---"))
                    .expect("a table above");
                assert_eq!(bare, header.matches('|').count(), "{line}");
            }
        }
    }

    #[test]
    fn recent_changes_are_the_five_newest_per_model_newest_first() {
        let mut fx = Fixture::new(vec![model("fraud", json!({}))]);
        fx.changes = vec![
            change("fraud", "CHG-3", "2026-11-03T00:00:00Z"),
            change("fraud", "CHG-7", "2026-11-07T00:00:00Z"),
            change("fraud", "CHG-1", "2026-11-01T00:00:00Z"),
            change("churn", "CHG-4", "2026-11-04T00:00:00Z"),
            change("fraud", "CHG-5", "2026-11-05T00:00:00Z"),
            change("fraud", "CHG-2", "2026-11-02T00:00:00Z"),
            change("fraud", "CHG-6", "2026-11-06T00:00:00Z"),
            change("fraud", "CHG-4", "2026-11-04T00:00:00Z"),
        ];
        let r = fx.report();
        let per: Vec<(&str, Vec<&str>, usize)> = r
            .recent_changes
            .iter()
            .map(|m| {
                (
                    m.model.as_str(),
                    m.changes.iter().map(|c| c.change.as_str()).collect(),
                    m.earlier,
                )
            })
            .collect();
        assert_eq!(
            per,
            [
                ("churn", vec!["CHG-4"], 0),
                (
                    "fraud",
                    vec!["CHG-7", "CHG-6", "CHG-5", "CHG-4", "CHG-3"],
                    2
                ),
            ]
        );
        let md = to_markdown(&r);
        assert!(md.contains("2 earlier changes not shown."), "{md}");
        let empty = to_markdown(&Fixture::new(vec![]).report());
        assert!(
            empty.contains(
                "## Recent changes\n\nThe 5 newest changes per model, newest first.\n\nNone.\n"
            ),
            "{empty}"
        );
    }

    #[test]
    fn the_same_inventory_in_any_order_gives_identical_output() {
        let mut a = model(
            "alpha",
            json!({"status": "production", "risk_tier": "low", "owner": "ana"}),
        );
        a.versions = vec![version("alpha", "1", true)];
        let b = model(
            "beta",
            json!({"status": "validation", "validation_last": "2025-01-01",
                   "validation_next": "2026-01-01"}),
        );
        let c = model("gamma", json!({"status": "production"}));
        let mut fx = Fixture::new(vec![a, b, c]);
        fx.deployments = vec![
            deployment("alpha-2", "s3://models/alpha/1", true),
            deployment("alpha-1", "s3://models/alpha/1", true),
        ];
        fx.findings = vec![
            finding(FindingKind::NotRunning, "gamma", "gamma runs nowhere"),
            finding(FindingKind::Orphan, "z", "z is unknown"),
            finding(FindingKind::Orphan, "y", "y is unknown"),
        ];
        fx.changes = vec![
            ModelChange {
                title: "A title sorting first".into(),
                ..change("alpha", "CHG-2", "2026-11-02T00:00:00Z")
            },
            change("alpha", "CHG-1", "2026-11-02T00:00:00Z"),
            change("beta", "CHG-3", "2026-11-03T00:00:00Z"),
        ];
        let first = fx.report();
        fx.models.reverse();
        fx.deployments.reverse();
        fx.findings.reverse();
        fx.changes.reverse();
        let second = fx.report();
        assert_eq!(first, second);
        assert_eq!(to_markdown(&first), to_markdown(&second));
        assert_eq!(to_html(&first), to_html(&second));
        let json = |r: &Report| serde_json::to_string(r).expect("json");
        assert_eq!(json(&first), json(&second));
        // And the JSON form reads back as the same report.
        let back: Report = serde_json::from_str(&json(&first)).expect("parse");
        assert_eq!(back, first);
        // The tie on time is broken by the change id, not by input order.
        let alpha: Vec<&str> = first.recent_changes[0]
            .changes
            .iter()
            .map(|c| c.change.as_str())
            .collect();
        assert_eq!(alpha, ["CHG-1", "CHG-2"]);
    }
}
