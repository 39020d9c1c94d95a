//! What the dashboard page shows, worked out from the figures: the headline numbers, each
//! chart (with the sentence a screen reader says for it), and the rows of the tables beside
//! the charts. Numbers are written one way everywhere — rates as percentages with one
//! decimal, durations in hours with one decimal, "—" for a figure with nothing to measure —
//! so a table and the API's JSON can be compared figure by figure.

use super::charts::{self, Chart, Values};
use crate::api::incident_views::IncidentMetricsView;
use crate::error::ApiError;
use crate::portal::answer::Chrome;
use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use steward_core::inventory::report::Report;
use steward_core::measures::changes::{ChangeMetrics, TYPES, Tally};

/// Written for a figure with nothing to measure (no change implemented, no incident resolved).
pub(super) const NONE: &str = "—";

/// A share (0–1) as a percentage with one decimal.
pub(super) fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| NONE.to_owned(), |s| format!("{:.1}%", s * 100.0))
}

/// Minutes as hours with one decimal.
pub(super) fn hours(minutes: Option<f64>) -> String {
    minutes.map_or_else(|| NONE.to_owned(), |m| format!("{:.1}", m / 60.0))
}

/// What the page is made from.
pub(super) struct Figures<'a> {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub now: DateTime<Utc>,
    pub changes: &'a ChangeMetrics,
    pub incidents: &'a IncidentMetricsView,
    pub inventory: &'a Report,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(super) struct DashboardPage {
    chrome: Chrome,
    /// The period's days, `YYYY-MM-DD`, for the form.
    from: String,
    to: String,
    /// When the figures were computed.
    generated: String,
    headlines: Vec<Headline>,
    changes_by_type: Chart,
    changes_by_state: Chart,
    approval_latency: Chart,
    failure_rate: Chart,
    inventory_completeness: Chart,
    incidents_by_severity: Chart,
    time_to_restore: Chart,
    weeks: Vec<WeekRow>,
    total: WeekRow,
    states: Vec<StateRow>,
    latency: Vec<LatencyRow>,
    auto_approved: usize,
    overdue: Vec<OverdueRow>,
    tiers: Vec<TierRow>,
    severities: Vec<SeverityRow>,
}

/// One number read at a glance.
struct Headline {
    /// `kpi-…`
    id: &'static str,
    label: &'static str,
    value: String,
    detail: String,
}

/// A week (or the whole period): requests by type, implementations and failures.
struct WeekRow {
    /// The week's first day, `YYYY-MM-DD` (`total` for the period): row ids.
    key: String,
    /// "2026-03-02 to 2026-03-08"
    days: String,
    standard: usize,
    normal: usize,
    emergency: usize,
    requested: usize,
    implemented: usize,
    failed: usize,
    failure_rate: String,
    emergency_share: String,
}

struct StateRow {
    state: &'static str,
    changes: usize,
}

struct LatencyRow {
    /// `all`, `standard`, `normal`, `emergency`
    kind: &'static str,
    approved: usize,
    p50: String,
    p90: String,
    p99: String,
}

struct OverdueRow {
    id: String,
    title: String,
    kind: &'static str,
    due: String,
}

struct TierRow {
    tier: String,
    models: usize,
    complete: usize,
    incomplete: usize,
    mean_score: String,
}

struct SeverityRow {
    severity: String,
    incidents: usize,
    resolved: usize,
    median: String,
    p90: String,
}

fn week_row(tally: &Tally, key: String) -> WeekRow {
    let last_day = (tally.period.to - Duration::days(1)).date_naive();
    WeekRow {
        key,
        days: format!("{} to {last_day}", tally.period.from.date_naive()),
        standard: tally.created.standard,
        normal: tally.created.normal,
        emergency: tally.created.emergency,
        requested: tally.created.total(),
        implemented: tally.implemented,
        failed: tally.failed,
        failure_rate: percent(tally.failure_rate),
        emergency_share: percent(tally.emergency_share),
    }
}

/// `(name, values)` for a chart, values as given.
fn values(name: &'static str, data: impl IntoIterator<Item = Option<f64>>) -> Values {
    (name, data.into_iter().collect())
}

fn counts(name: &'static str, data: impl IntoIterator<Item = usize>) -> Values {
    values(name, data.into_iter().map(|n| Some(n as f64)))
}

/// Percentages (0–100) of shares (0–1).
fn percents(name: &'static str, data: impl IntoIterator<Item = Option<f64>>) -> Values {
    values(name, data.into_iter().map(|s| s.map(|s| s * 100.0)))
}

/// Hours of minutes.
fn in_hours(name: &'static str, data: impl IntoIterator<Item = Option<f64>>) -> Values {
    values(name, data.into_iter().map(|m| m.map(|m| m / 60.0)))
}

impl DashboardPage {
    pub(super) fn new(chrome: Chrome, f: Figures<'_>) -> Result<DashboardPage, ApiError> {
        let c = f.changes;
        let period = format!("{} to {}", f.first, f.last);
        let weeks: Vec<WeekRow> = c
            .weeks
            .iter()
            .map(|w| week_row(w, w.period.from.date_naive().to_string()))
            .collect();
        let week_labels: Vec<String> = c
            .weeks
            .iter()
            .map(|w| w.period.from.format("%d %b").to_string())
            .collect();
        let total = week_row(&c.totals, "total".to_owned());

        let changes_by_type = charts::count_bars(
            "chart-changes-by-type",
            &format!(
                "Changes requested per week by type, {period}: {} standard, {} normal, {} emergency in all. The numbers are in the table below.",
                total.standard, total.normal, total.emergency
            ),
            week_labels.clone(),
            TYPES
                .iter()
                .map(|t| counts(t.as_str(), c.weeks.iter().map(|w| w.created.get(*t))))
                .collect(),
            true,
        )?;

        let states: Vec<StateRow> = c
            .by_state
            .iter()
            .map(|(state, changes)| StateRow {
                state: state.as_str(),
                changes: *changes,
            })
            .collect();
        let said: Vec<String> = states
            .iter()
            .filter(|s| s.changes > 0)
            .map(|s| format!("{} {}", s.state, s.changes))
            .collect();
        let changes_by_state = charts::count_rows(
            "chart-changes-by-state",
            &format!(
                "Changes requested {period}, by their state now: {}. The numbers are in the table below.",
                if said.is_empty() {
                    "none".to_owned()
                } else {
                    said.join(", ")
                }
            ),
            states.iter().map(|s| s.state.to_owned()).collect(),
            vec![counts("changes", states.iter().map(|s| s.changes))],
        )?;

        let latency: Vec<LatencyRow> = c
            .approval_latency
            .iter()
            .map(|l| LatencyRow {
                kind: l.change_type.map_or("all", |t| t.as_str()),
                approved: l.latency.count,
                p50: hours(l.latency.p50_minutes),
                p90: hours(l.latency.p90_minutes),
                p99: hours(l.latency.p99_minutes),
            })
            .collect();
        let approval_latency = charts::value_bars(
            "chart-approval-latency",
            &format!(
                "Hours from submission to approval, {period}, by type: median, 90th and 99th percentile. {} The numbers are in the table below.",
                match c.approval_latency.first() {
                    Some(a) if a.latency.count > 0 => format!(
                        "For all {} changes approved by people: median {} h, 90th percentile {} h.",
                        a.latency.count,
                        hours(a.latency.p50_minutes),
                        hours(a.latency.p90_minutes)
                    ),
                    _ => "No change was approved by people in the period.".to_owned(),
                }
            ),
            latency.iter().map(|l| l.kind.to_owned()).collect(),
            vec![
                in_hours(
                    "median",
                    c.approval_latency.iter().map(|l| l.latency.p50_minutes),
                ),
                in_hours(
                    "90th percentile",
                    c.approval_latency.iter().map(|l| l.latency.p90_minutes),
                ),
                in_hours(
                    "99th percentile",
                    c.approval_latency.iter().map(|l| l.latency.p99_minutes),
                ),
            ],
            " h",
        )?;

        let failure_rate = charts::percent_lines(
            "chart-failure-rate",
            &format!(
                "Change failure rate and emergency share per week, {period}, in percent: {} of changes implemented failed, {} of changes requested were emergencies. Weeks with nothing to measure are gaps. The numbers are in the table below.",
                total.failure_rate, total.emergency_share
            ),
            week_labels,
            vec![
                percents(
                    "change failure rate",
                    c.weeks.iter().map(|w| w.failure_rate),
                ),
                percents("emergency share", c.weeks.iter().map(|w| w.emergency_share)),
            ],
        )?;

        let overdue: Vec<OverdueRow> = c
            .overdue
            .iter()
            .map(|o| OverdueRow {
                id: o.id.to_string(),
                title: o.title.clone(),
                kind: o.change_type.as_str(),
                due: crate::portal::home::due_text(Some(o.due), f.now),
            })
            .collect();

        let tiers: Vec<TierRow> = f
            .inventory
            .completeness_by_tier
            .iter()
            .map(|t| TierRow {
                tier: t.tier.clone(),
                models: t.models,
                complete: t.complete,
                incomplete: t.models - t.complete,
                mean_score: t
                    .mean_score
                    .map_or_else(|| NONE.to_owned(), |s| format!("{s}%")),
            })
            .collect();
        let models = f.inventory.totals.models;
        let complete_models: usize = tiers.iter().map(|t| t.complete).sum();
        let inventory_completeness = charts::count_bars(
            "chart-inventory-completeness",
            &format!(
                "Model records by risk tier, complete or missing required fields, as of {}: {complete_models} of {models} complete. The numbers are in the table below.",
                f.inventory.as_of
            ),
            tiers.iter().map(|t| t.tier.clone()).collect(),
            vec![
                counts("complete", tiers.iter().map(|t| t.complete)),
                counts("incomplete", tiers.iter().map(|t| t.incomplete)),
            ],
            true,
        )?;

        let i = f.incidents;
        let severities: Vec<SeverityRow> = i
            .by_severity
            .iter()
            .map(|s| SeverityRow {
                severity: s.severity.clone(),
                incidents: s.incidents,
                resolved: s.resolved,
                median: hours(s.median_minutes_to_restore),
                p90: hours(s.p90_minutes_to_restore),
            })
            .collect();
        let incidents_by_severity = charts::count_bars(
            "chart-incidents-by-severity",
            &format!(
                "Incidents opened {period} by severity: {}. The numbers are in the table below.",
                severities
                    .iter()
                    .map(|s| format!("{} {}", s.severity, s.incidents))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            severities.iter().map(|s| s.severity.clone()).collect(),
            vec![counts("incidents", severities.iter().map(|s| s.incidents))],
            false,
        )?;
        let time_to_restore = charts::value_bars(
            "chart-time-to-restore",
            &format!(
                "Hours from opening to resolution of the incidents opened {period}, by severity: median and 90th percentile. The numbers are in the table below."
            ),
            severities.iter().map(|s| s.severity.clone()).collect(),
            vec![
                in_hours(
                    "median",
                    i.by_severity.iter().map(|s| s.median_minutes_to_restore),
                ),
                in_hours(
                    "90th percentile",
                    i.by_severity.iter().map(|s| s.p90_minutes_to_restore),
                ),
            ],
            " h",
        )?;

        let headlines = vec![
            Headline {
                id: "kpi-failure-rate",
                label: "Change failure rate",
                value: total.failure_rate.clone(),
                detail: format!(
                    "{} of {} changes implemented failed",
                    total.failed, total.implemented
                ),
            },
            Headline {
                id: "kpi-emergency-share",
                label: "Emergency changes",
                value: total.emergency_share.clone(),
                detail: format!(
                    "{} of {} changes requested",
                    total.emergency, total.requested
                ),
            },
            Headline {
                id: "kpi-approval-median",
                label: "Median time to approve",
                value: match latency.first() {
                    Some(l) if l.approved > 0 => format!("{} h", l.p50),
                    _ => NONE.to_owned(),
                },
                detail: format!(
                    "{} approved by people, {} standard approved at once",
                    latency.first().map_or(0, |l| l.approved),
                    c.auto_approved
                ),
            },
            Headline {
                id: "kpi-overdue-approvals",
                label: "Approvals overdue now",
                value: overdue.len().to_string(),
                detail: "past their SLA, still waiting".to_owned(),
            },
            Headline {
                id: "kpi-incidents",
                label: "Incidents opened",
                value: i.incidents.to_string(),
                detail: format!(
                    "mean time to resolve {} h",
                    hours(i.mean_minutes_to_resolve)
                ),
            },
            Headline {
                id: "kpi-complete-records",
                label: "Complete model records",
                value: format!("{complete_models} of {models}"),
                detail: format!("{} need review", f.inventory.totals.incomplete),
            },
        ];

        Ok(DashboardPage {
            chrome,
            from: f.first.to_string(),
            to: f.last.to_string(),
            generated: f.now.format("%Y-%m-%d %H:%M UTC").to_string(),
            headlines,
            changes_by_type,
            changes_by_state,
            approval_latency,
            failure_rate,
            inventory_completeness,
            incidents_by_severity,
            time_to_restore,
            weeks,
            total,
            states,
            latency,
            auto_approved: c.auto_approved,
            overdue,
            tiers,
            severities,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_one_way() {
        assert_eq!(percent(None), "—");
        assert_eq!(percent(Some(0.25)), "25.0%");
        assert_eq!(percent(Some(1.0 / 3.0)), "33.3%");
        assert_eq!(hours(None), "—");
        assert_eq!(hours(Some(90.0)), "1.5");
        assert_eq!(hours(Some(20.0)), "0.3");
    }
}
