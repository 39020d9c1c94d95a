//! What the change calendar holds over a period: the changes whose window falls in it and the
//! maintenance windows and freezes that apply, recurring ones expanded into UTC occurrences.
//! The iCalendar feed (`GET /api/v1/calendar.ics`) publishes it and the portal's calendar page
//! shows it, so the two read one answer and never disagree.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use steward_core::TargetName;
use steward_core::change::Change;
use steward_core::schedule::{CalendarWindow, Occurrence, Scope};
use steward_core::state::ChangeState;
use steward_core::target::{Environment, Target};
use steward_store::{ChangeFilter, TenantStore};

/// Which part of the calendar a question asks about: changes touching a target and the windows
/// that cover it, or changes in an environment and the windows that apply to it.
#[derive(Debug, Default)]
pub(crate) struct CalendarScope {
    pub target: Option<Target>,
    pub environment: Option<Environment>,
}

/// The scope named by a query's `target` and `environment` (an unknown target is a 404, a bad
/// environment a 422 naming the field). The feed and the portal's calendar both read it.
pub(crate) async fn calendar_scope(
    store: &TenantStore<'_>,
    target: Option<&str>,
    environment: Option<&str>,
) -> Result<CalendarScope, ApiError> {
    let environment = environment
        .map(str::parse::<Environment>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("environment", e))?;
    let target = match target {
        None => None,
        Some(name) => {
            let name = TargetName::parse(name)
                .map_err(|e| ApiError::invalid_field("target", e.to_string()))?;
            Some(
                store
                    .targets_named(std::slice::from_ref(&name))
                    .await?
                    .pop()
                    .ok_or_else(|| ApiError::NotFound(format!("no target '{name}'")))?,
            )
        }
    };
    Ok(CalendarScope {
        target,
        environment,
    })
}

/// A change on the calendar, at its effective window (the scheduled one, else the requested).
#[derive(Debug)]
pub(crate) struct CalendarChange {
    pub change: Change,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Submitted or waiting for approval: asked for, not yet approved.
    pub tentative: bool,
}

/// What the change calendar holds over a period.
#[derive(Debug, Default)]
pub(crate) struct CalendarPeriod {
    /// The changes whose window overlaps the period, oldest first; drafts, rejected and
    /// cancelled changes are not on the calendar.
    pub changes: Vec<CalendarChange>,
    /// The maintenance windows and freezes that apply, each with its occurrences in the period
    /// in UTC (recurring ones expanded, in their own zone); those with none are left out.
    pub windows: Vec<(CalendarWindow, Vec<Occurrence>)>,
}

/// The calendar over `[from, to)` within `scope`: what the iCalendar feed publishes and the
/// portal's calendar page shows, so the two never disagree.
pub(crate) async fn calendar_period(
    store: &TenantStore<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: &CalendarScope,
) -> Result<CalendarPeriod, ApiError> {
    let CalendarScope {
        target,
        environment,
    } = scope;
    // Every change in the period, a page at a time.
    let mut changes = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_changes(&ChangeFilter {
                target: target.as_ref().map(|t| t.name.clone()),
                window_overlaps: Some((from, to)),
                before_number: before,
                limit: 1000,
                ..ChangeFilter::default()
            })
            .await?;
        let full = page.len() == 1000;
        before = page.last().map(|c| c.id.number());
        changes.extend(page);
        if !full {
            break;
        }
    }
    let windows = store.calendar_windows().await?;
    // Target-scoped windows belong to their target's environment.
    let scoped: Vec<TargetName> = windows
        .iter()
        .filter_map(|w| match &w.scope {
            Scope::Target(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let scoped_targets = store.targets_named(&scoped).await?;

    let mut period = CalendarPeriod::default();
    for change in changes.into_iter().rev() {
        if matches!(
            change.state,
            ChangeState::Draft | ChangeState::Rejected | ChangeState::Cancelled
        ) || environment.is_some_and(|e| e != change.request.environment)
        {
            continue;
        }
        let Some(w) = change.effective_window() else {
            continue;
        };
        let (start, end) = (w.start, w.end);
        let tentative = matches!(
            change.state,
            ChangeState::Submitted | ChangeState::PendingApproval
        );
        period.changes.push(CalendarChange {
            change,
            start,
            end,
            tentative,
        });
    }
    for window in windows {
        let applies = match (target, environment) {
            (Some(t), _) => window.scope.covers(t),
            (None, Some(env)) => match &window.scope {
                Scope::Everywhere => true,
                Scope::Environment(e) => e == env,
                Scope::Target(name) => scoped_targets
                    .iter()
                    .any(|t| &t.name == name && t.environment == *env),
            },
            (None, None) => true,
        };
        if !applies {
            continue;
        }
        let occurrences = window.occurrences(from, to);
        if !occurrences.is_empty() {
            period.windows.push((window, occurrences));
        }
    }
    Ok(period)
}
