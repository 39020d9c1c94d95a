//! The dashboard: the figures an ML manager and a compliance officer read at a glance, over a
//! period of days (the last 90 by default) — changes requested per week by type and the states
//! they are in, approval latency percentiles, the change failure rate and the emergency share
//! per week, the approvals overdue now, how complete the model inventory is per risk tier, and
//! incidents by severity with their time to restore.
//!
//! Every figure comes from the function its API answers from: `crate::measures::change_metrics`
//! (`GET /api/v1/change-metrics`), `api::incidents::incident_metrics`
//! (`GET /api/v1/incident-metrics`) and `api::inventory_reports::inventory_report`
//! (`GET /api/v1/inventory/report`), so the page and the API never disagree. Each chart
//! (`charts`) has a table of its numbers beside it, so nothing is only in a picture.

mod charts;
mod view;

use super::Visitor;
use super::answer::{answer, chrome, render};
use crate::AppState;
use crate::auth::ReadRecords;
use crate::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Days, NaiveDate, NaiveTime};
use serde::Deserialize;
use steward_core::measures::Period;
use utoipa::IntoParams;

/// How many days the dashboard shows when no period is asked for.
const DEFAULT_DAYS: u64 = 90;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// The first day, UTC, `YYYY-MM-DD` (default: 89 days before `to`, so 90 days in all).
    pub from: Option<String>,
    /// The last day, UTC, included, `YYYY-MM-DD` (default: today).
    pub to: Option<String>,
}

/// The days a dashboard covers, both included, and the period they make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayRange {
    first: NaiveDate,
    last: NaiveDate,
    period: Period,
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

/// The days `query` asks for (an empty field is its default), judged against `today`; a 400
/// naming what is wrong otherwise.
fn days(query: &DashboardQuery, today: NaiveDate) -> Result<DayRange, ApiError> {
    let date = |name: &str, value: &Option<String>| -> Result<Option<NaiveDate>, ApiError> {
        match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    bad(format!(
                        "`{name}` is '{text}', which is not a date: write it as YYYY-MM-DD, e.g. {today}"
                    ))
                }),
        }
    };
    let last = date("to", &query.to)?.unwrap_or(today);
    let first = match date("from", &query.from)? {
        Some(first) => first,
        None => last
            .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
            .ok_or_else(|| bad("`to` is too early a date".into()))?,
    };
    if first > last {
        return Err(bad(format!(
            "the period starts on {first}, after it ends on {last}: pick a `from` on or before `to`"
        )));
    }
    let start = first.and_time(NaiveTime::MIN).and_utc();
    let end = last
        .checked_add_days(Days::new(1))
        .ok_or_else(|| bad("`to` is too late a date".into()))?
        .and_time(NaiveTime::MIN)
        .and_utc();
    let period = Period::new(start, end).map_err(|e| bad(e.to_string()))?;
    Ok(DayRange {
        first,
        last,
        period,
    })
}

/// The dashboard over the days asked for (default: the last 90, by the server's clock, in
/// UTC), in weekly buckets from the first day.
#[utoipa::path(get, path = "/dashboard", tag = "portal", params(DashboardQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "the dashboard"),
        (status = 400, description = "a date is not a date, or the period is empty or too long: the page says which"),
        (status = 401, description = "signed out: the sign-in form")))]
pub async fn dashboard(
    State(state): State<AppState>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Response {
    let html = visitor.html;
    answer(&state, html, page(&state, visitor, query).await)
}

async fn page(
    state: &AppState,
    visitor: Visitor,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let viewer = visitor.signed_in()?;
    let store = viewer.caller.may::<ReadRecords>(state)?.store();
    let query: DashboardQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| bad(format!("the dashboard's query could not be read: {e}")))?;
    let now = state.clock.now();
    let days = days(&query, now.date_naive())?;
    let changes = crate::measures::change_metrics(&store, days.period, now).await?;
    let incidents =
        crate::api::incidents::incident_metrics(&store, days.period.from, days.period.to).await?;
    let inventory = crate::api::inventory_reports::inventory_report(&store, now).await?;
    let page = view::DashboardPage::new(
        chrome(&viewer),
        view::Figures {
            first: days.first,
            last: days.last,
            now,
            changes: &changes,
            incidents: &incidents,
            inventory: &inventory,
        },
    )?;
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn ask(from: Option<&str>, to: Option<&str>) -> Result<DayRange, ApiError> {
        days(
            &DashboardQuery {
                from: from.map(str::to_owned),
                to: to.map(str::to_owned),
            },
            day("2026-03-31"),
        )
    }

    #[test]
    fn the_default_is_the_last_ninety_days_today_included() {
        for blank in [None, Some(""), Some("  ")] {
            let d = ask(blank, blank).expect("default");
            assert_eq!((d.first, d.last), (day("2026-01-01"), day("2026-03-31")));
            assert_eq!(d.period.to - d.period.from, chrono::Duration::days(90));
            assert_eq!(d.period.weeks().len(), 13);
        }
        let d = ask(None, Some("2026-02-28")).expect("to only");
        assert_eq!(d.first, day("2025-12-01"));
    }

    #[test]
    fn a_period_is_whole_utc_days_both_included() {
        let d = ask(Some("2026-03-02"), Some("2026-03-02")).expect("one day");
        assert_eq!(d.period.from.to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(d.period.to.to_rfc3339(), "2026-03-03T00:00:00+00:00");
    }

    #[test]
    fn bad_dates_and_periods_are_400s_saying_why() {
        let said = |r: Result<DayRange, ApiError>| match r {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("expected a 400, got {other:?}"),
        };
        assert!(said(ask(Some("2026-13-01"), None)).contains("`from` is '2026-13-01'"));
        assert!(said(ask(None, Some("yesterday"))).contains("YYYY-MM-DD"));
        assert!(said(ask(Some("2026-03-05"), Some("2026-03-01"))).contains("after it ends"));
        assert!(said(ask(Some("2020-01-01"), Some("2026-03-01"))).contains("longer than"));
    }
}
