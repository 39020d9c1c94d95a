//! The change calendar: a month grid or a week of seven days, with the maintenance windows,
//! freezes and changes that fall on each day, in UTC.
//!
//! What is on it comes from `api::calendar_period::calendar_period`, the function the iCalendar feed
//! (`GET /api/v1/calendar.ics`) publishes from — recurring windows expanded the same way, the
//! same changes left out (drafts, rejected, cancelled) — so the page and the feed never
//! disagree. The `target` and `environment` filters are the feed's own (`calendar_scope`).
//! Days are UTC days and weeks start on Monday (ISO 8601); an entry that spans days is listed
//! on each day it touches, with the part of that day it covers.
//!
//! The feed takes the session in a browser (the download link), but calendar apps that
//! subscribe to a URL send neither a session nor a bearer token, and Steward has no feed tokens:
//! the page says so, and how to fetch the feed with an API token instead.

use super::Visitor;
use super::answer::{Chrome, answer, chrome, render};
use crate::AppState;
use crate::api::calendar_period::{CalendarPeriod, calendar_period, calendar_scope};
use crate::auth::ReadRecords;
use crate::error::ApiError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::Deserialize;
use steward_core::schedule::WindowKind;
use steward_core::target::Environment;
use utoipa::IntoParams;

/// The calendar page's query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// `month` (the default) or `week`.
    pub view: Option<String>,
    /// A day of the month or week to show, `YYYY-MM-DD` (default: today, UTC).
    pub date: Option<String>,
    /// Only changes touching this target, and the windows that cover it.
    pub target: Option<String>,
    /// Only changes in this environment, and the windows that apply to it.
    pub environment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Month,
    Week,
}

impl View {
    fn as_str(self) -> &'static str {
        match self {
            View::Month => "month",
            View::Week => "week",
        }
    }
}

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage {
    chrome: Chrome,
    month: bool,
    /// "January 2027" or "Week of 4 January 2027".
    heading: String,
    weekdays: [&'static str; 7],
    /// The month's weeks (each seven days, Monday first), or the one week.
    weeks: Vec<Vec<DayCell>>,
    prev: String,
    next: String,
    today: String,
    month_link: String,
    week_link: String,
    /// The filters, for the form.
    target: String,
    environments: Vec<Choice>,
    view: &'static str,
    date: String,
    changes: Vec<ChangeRow>,
    windows: Vec<WindowRow>,
    /// The feed over the shown period (the browser's session opens it).
    ics: String,
    /// The feed's address for a script or proxy with an API token.
    feed_url: String,
}

struct Choice {
    value: &'static str,
    selected: bool,
}

struct DayCell {
    /// `YYYY-MM-DD`: the cell's `data-date`.
    date: String,
    /// The day of the month.
    day: u32,
    /// "Mon 4 Jan", for narrow screens where the grid becomes a list.
    label: String,
    /// A day of the month before or after the one shown.
    outside: bool,
    is_today: bool,
    entries: Vec<Entry>,
}

struct Entry {
    /// `change`, `maintenance` or `freeze`: the entry's class and `data-kind`.
    kind: &'static str,
    /// The entry's kind in words, shown before it (not colour alone).
    marker: &'static str,
    /// The part of the day it covers: "09:00–11:00", "from 22:00", "until 06:00", "all day".
    time: String,
    /// The change's id and title, or the window's name.
    label: String,
    /// The change's page.
    href: Option<String>,
    /// The change's state (and "awaiting approval" when it is not yet approved), or what the
    /// window applies to.
    detail: String,
    /// Sorts the day's entries: by start, freezes first at the same start.
    order: (DateTime<Utc>, u8),
}

struct ChangeRow {
    id: String,
    state: String,
    tentative: bool,
    title: String,
    when: String,
}

struct WindowRow {
    freeze: bool,
    name: String,
    scope: String,
    local: String,
    repeats: String,
    reason: String,
    occurrences: usize,
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The month (or week) of changes, maintenance windows and freezes, day by day in UTC, with
/// links to the previous and next month (week) and to the iCalendar feed.
#[utoipa::path(get, path = "/calendar", tag = "portal", params(CalendarQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the calendar"),
        (status = 400, description = "`view` or `date` is not valid: the page says the expected form"),
        (status = 401, description = "signed out: the sign-in form"),
        (status = 404, description = "`target` names no target in your tenant"),
        (status = 422, description = "`environment` is not valid")))]
pub async fn calendar(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Query<CalendarQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let html = visitor.html;
    let query = query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("the calendar's query could not be read: {e}")));
    answer(&state, html, show(&state, visitor, query).await)
}

/// An empty value (a form's "any") is no filter.
fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse_view(text: Option<&str>) -> Result<View, ApiError> {
    match text {
        None | Some("month") => Ok(View::Month),
        Some("week") => Ok(View::Week),
        Some(other) => Err(ApiError::BadRequest(format!(
            "view must be month or week, not '{other}': /calendar?view=week&date=2027-01-09"
        ))),
    }
}

fn parse_date(text: Option<&str>, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    let Some(text) = text else {
        return Ok(today);
    };
    let expected = "write the day as YYYY-MM-DD, like 2027-01-09";
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("date '{text}' is not a day: {expected}")))?;
    if !(1970..=9999).contains(&date.year()) {
        return Err(ApiError::BadRequest(format!(
            "date '{text}' is outside the years 1970 to 9999: {expected}"
        )));
    }
    Ok(date)
}

/// The Monday on or before `date`.
fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// `/calendar?…` with the view, the day and the filters.
fn link(
    view: View,
    date: Option<NaiveDate>,
    target: &Option<String>,
    env: &Option<String>,
) -> String {
    let mut pairs: Vec<(&str, String)> = vec![("view", view.as_str().to_owned())];
    if let Some(date) = date {
        pairs.push(("date", date.format("%Y-%m-%d").to_string()));
    }
    if let Some(target) = target {
        pairs.push(("target", target.clone()));
    }
    if let Some(env) = env {
        pairs.push(("environment", env.clone()));
    }
    format!(
        "/calendar?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

/// The part of the day `[day, day + 1)` that `[start, end)` covers, in words.
fn part_of_day(start: DateTime<Utc>, end: DateTime<Utc>, day: DateTime<Utc>) -> String {
    let next = day + chrono::Duration::days(1);
    match (start > day, end < next) {
        (false, false) => "all day".into(),
        (true, false) => format!("from {}", start.format("%H:%M")),
        (false, true) => format!("until {}", end.format("%H:%M")),
        (true, true) => format!("{}–{}", start.format("%H:%M"), end.format("%H:%M")),
    }
}

/// Each day's entries: everything in `period` that overlaps the day.
fn days(
    period: &CalendarPeriod,
    first: NaiveDate,
    count: u64,
    month: Option<u32>,
    today: NaiveDate,
) -> Vec<DayCell> {
    (0..count)
        .map(|offset| {
            let date = first + Days::new(offset);
            let day = midnight(date);
            let next = day + chrono::Duration::days(1);
            let mut entries = Vec::new();
            for c in &period.changes {
                if c.start < next && c.end > day {
                    entries.push(Entry {
                        kind: "change",
                        marker: "Change",
                        time: part_of_day(c.start, c.end, day),
                        label: format!("{} {}", c.change.id, c.change.request.title),
                        href: Some(format!("/changes/{}", c.change.id)),
                        detail: if c.tentative {
                            format!("{}, awaiting approval", c.change.state)
                        } else {
                            c.change.state.to_string()
                        },
                        order: (c.start.max(day), 2),
                    });
                }
            }
            for (window, occurrences) in &period.windows {
                let freeze = window.kind == WindowKind::Freeze;
                for o in occurrences.iter().filter(|o| o.start < next && o.end > day) {
                    entries.push(Entry {
                        kind: if freeze { "freeze" } else { "maintenance" },
                        marker: if freeze {
                            "Freeze"
                        } else {
                            "Maintenance window"
                        },
                        time: part_of_day(o.start, o.end, day),
                        label: window.name.to_string(),
                        href: None,
                        detail: window.scope.to_string(),
                        order: (o.start.max(day), u8::from(!freeze)),
                    });
                }
            }
            entries.sort_by_key(|e| e.order);
            DayCell {
                date: date.format("%Y-%m-%d").to_string(),
                day: date.day(),
                label: date.format("%a %-d %b").to_string(),
                outside: month.is_some_and(|m| m != date.month()),
                is_today: date == today,
                entries,
            }
        })
        .collect()
}

async fn show(
    state: &AppState,
    visitor: Visitor,
    query: Result<CalendarQuery, ApiError>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let query = query?;
    let view = parse_view(given(query.view).as_deref())?;
    let now = state.clock.now();
    let today = now.date_naive();
    let date = parse_date(given(query.date).as_deref(), today)?;
    let target = given(query.target);
    let environment = given(query.environment);
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let scope = calendar_scope(&store, target.as_deref(), environment.as_deref()).await?;

    // The days shown: whole weeks, Monday first.
    let (first, count, month, heading, prev, next) = match view {
        View::Month => {
            let first_of_month = date.with_day(1).unwrap_or(date);
            let next_month = first_of_month + Months::new(1);
            let first = monday_of(first_of_month);
            let last = next_month - Days::new(1);
            let weeks = (last - first).num_days() / 7 + 1;
            (
                first,
                (weeks * 7) as u64,
                Some(date.month()),
                first_of_month.format("%B %Y").to_string(),
                first_of_month - Months::new(1),
                next_month,
            )
        }
        View::Week => {
            let first = monday_of(date);
            let last = first + Days::new(6);
            (
                first,
                7,
                None,
                format!(
                    "Week of {} – {}",
                    first.format("%-d %B %Y"),
                    last.format("%-d %B %Y")
                ),
                first - Days::new(7),
                first + Days::new(7),
            )
        }
    };
    let from = midnight(first);
    let to = midnight(first + Days::new(count));
    let period = calendar_period(&store, from, to, &scope).await?;
    let cells = days(&period, first, count, month, today);
    let weeks: Vec<Vec<DayCell>> = {
        let mut weeks = Vec::new();
        let mut cells = cells.into_iter().peekable();
        while cells.peek().is_some() {
            weeks.push(cells.by_ref().take(7).collect());
        }
        weeks
    };

    let utc = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let changes = (period.changes.iter())
        .map(|c| ChangeRow {
            id: c.change.id.to_string(),
            state: c.change.state.to_string(),
            tentative: c.tentative,
            title: c.change.request.title.clone(),
            when: format!("{} – {} UTC", utc(c.start), utc(c.end)),
        })
        .collect();
    let windows = (period.windows.iter())
        .map(|(w, occurrences)| WindowRow {
            freeze: w.kind == WindowKind::Freeze,
            name: w.name.to_string(),
            scope: w.scope.to_string(),
            local: format!(
                "{} – {} ({})",
                w.starts.format("%Y-%m-%d %H:%M"),
                w.ends.format("%Y-%m-%d %H:%M"),
                w.timezone
            ),
            repeats: w.rrule.clone().unwrap_or_else(|| "once".into()),
            reason: w.reason.clone(),
            occurrences: occurrences.len(),
        })
        .collect();
    let feed_query = {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(target) = &target {
            pairs.push(("target", target.clone()));
        }
        if let Some(env) = &environment {
            pairs.push(("environment", env.clone()));
        }
        pairs
    };
    let ics = {
        let mut pairs = vec![
            (
                "from",
                from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("to", to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ];
        pairs.extend(feed_query.iter().cloned());
        format!(
            "/api/v1/calendar.ics?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let feed_url = match serde_urlencoded::to_string(&feed_query).unwrap_or_default() {
        q if q.is_empty() => format!("{}/api/v1/calendar.ics", state.public.origin()),
        q => format!("{}/api/v1/calendar.ics?{q}", state.public.origin()),
    };
    let page = CalendarPage {
        chrome: chrome(&viewer),
        month: view == View::Month,
        heading,
        weekdays: WEEKDAYS,
        weeks,
        prev: link(view, Some(prev), &target, &environment),
        next: link(view, Some(next), &target, &environment),
        today: link(view, None, &target, &environment),
        month_link: link(View::Month, Some(date), &target, &environment),
        week_link: link(View::Week, Some(date), &target, &environment),
        environments: (Environment::ALL.iter())
            .map(|e| Choice {
                value: e.as_str(),
                selected: scope.environment == Some(*e),
            })
            .collect(),
        target: target.unwrap_or_default(),
        view: view.as_str(),
        date: date.format("%Y-%m-%d").to_string(),
        changes,
        windows,
        ics,
        feed_url,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, d, h, m, 0)
            .single()
            .expect("a time")
    }

    #[test]
    fn an_entry_says_which_part_of_each_day_it_covers() {
        let day = at(9, 0, 0);
        assert_eq!(part_of_day(at(9, 9, 0), at(9, 11, 30), day), "09:00–11:30");
        assert_eq!(part_of_day(at(8, 22, 0), at(10, 2, 0), day), "all day");
        assert_eq!(part_of_day(at(9, 22, 0), at(10, 2, 0), day), "from 22:00");
        assert_eq!(part_of_day(at(8, 22, 0), at(9, 6, 0), day), "until 06:00");
        // Midnight to midnight is the whole day.
        assert_eq!(part_of_day(at(9, 0, 0), at(10, 0, 0), day), "all day");
    }

    #[test]
    fn weeks_start_on_monday_and_bad_input_names_the_expected_form() {
        let saturday = NaiveDate::from_ymd_opt(2027, 1, 9).expect("a day");
        assert_eq!(
            monday_of(saturday),
            NaiveDate::from_ymd_opt(2027, 1, 4).expect("a day")
        );
        assert_eq!(monday_of(monday_of(saturday)), monday_of(saturday));
        let today = saturday;
        assert_eq!(parse_date(None, today).ok(), Some(today));
        for bad in ["2027-13-01", "9 Jan 2027", "1969-12-31", ""] {
            let error = parse_date(Some(bad), today).expect_err(bad).to_string();
            assert!(error.contains("YYYY-MM-DD"), "{bad}: {error}");
        }
        assert!(parse_view(Some("day")).is_err());
        assert_eq!(parse_view(None).ok(), Some(View::Month));
    }
}
