//! Maintenance windows and freezes, and the change calendar as an RFC 5545 (iCalendar) feed.
//!
//! The feed expands recurring windows into their occurrences in UTC rather than emitting RRULEs
//! with TZIDs: every calendar client then shows the same instants Steward enforces, across DST
//! changes, without needing VTIMEZONE definitions it might interpret differently.

use super::body::{JsonBody, QueryParams};
use super::calendar_period::{CalendarChange, calendar_period, calendar_scope};
use super::created::Created;
use super::page::{Page, PageQuery, PageRequest, Paged};
use crate::AppState;
use crate::auth::{Caller, KeepCalendar, Permit, ReadRecords};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use steward_core::WindowName;
use steward_core::schedule::{CalendarWindow, Scope, WindowKind};
use steward_core::submission::FieldError;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    /// A slug: `quarter-end-freeze`.
    pub name: String,
    /// maintenance or freeze
    pub kind: String,
    /// `everywhere`, `environment:production` or `target:<name>` (covers its children too).
    pub scope: String,
    /// IANA time zone of `starts`/`ends`: `Europe/London`, `Asia/Kolkata`, `UTC`.
    pub timezone: String,
    /// Start of the first occurrence: local wall-clock time in `timezone` (`2026-12-24T18:00`,
    /// `2026-12-24 18:00`, `2026-12-24`), or RFC 3339 with an offset, converted into `timezone`.
    pub starts: String,
    /// End of the first occurrence, written as `starts`.
    pub ends: String,
    /// RFC 5545 recurrence: `FREQ=WEEKLY;BYDAY=SA,SU`. Absent for a one-off window.
    pub rrule: Option<String>,
    /// Why: shown to requesters whose changes it refuses.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WindowView {
    pub name: String,
    pub kind: String,
    pub scope: String,
    pub timezone: String,
    pub starts: String,
    pub ends: String,
    pub rrule: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The next occurrence that has not ended yet, in UTC.
    pub next: Option<OccurrenceView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OccurrenceView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A window's wall-clock time in its own zone, read by the parser every typed time goes through
/// (`steward_core::time`): a local time as written, a date at midnight, a time with an offset
/// converted into the zone.
fn local_time(
    field: &str,
    text: &str,
    timezone: &str,
    errors: &mut Vec<FieldError>,
) -> Option<NaiveDateTime> {
    // An unknown zone is named by `CalendarWindow::validate`; the local forms need none.
    let zone = steward_core::time::parse_zone(timezone).unwrap_or(steward_core::time::Tz::UTC);
    steward_core::time::parse_wall_clock(text, zone)
        .map_err(|e| {
            errors.push(FieldError::new(
                field,
                format!("{e} (without an offset it is read in `timezone`)"),
            ))
        })
        .ok()
}

fn view(w: &CalendarWindow, now: DateTime<Utc>) -> WindowView {
    let next = w
        .occurrences(now, now + Duration::days(3660))
        .into_iter()
        .next()
        .map(|o| OccurrenceView {
            start: o.start,
            end: o.end,
        });
    WindowView {
        name: w.name.to_string(),
        kind: w.kind.to_string(),
        scope: w.scope.to_string(),
        timezone: w.timezone.clone(),
        starts: w.starts.format("%Y-%m-%dT%H:%M").to_string(),
        ends: w.ends.format("%Y-%m-%dT%H:%M").to_string(),
        rrule: w.rrule.clone(),
        reason: w.reason.clone(),
        created_by: w.created_by.to_string(),
        created_at: w.created_at,
        next,
    }
}

/// Create a maintenance window or a freeze. Changes whose window falls in a freeze are refused
/// (emergencies need the CISO); changes already approved are refused when they try to run in it.
#[utoipa::path(post, path = "/api/v1/windows", tag = "calendar", request_body = WindowInput,
    responses((status = 201, body = WindowView, headers(("Location" = String, description = "the path of what was created"))), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create_window(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<WindowInput>,
) -> Result<Created<WindowView>, ApiError> {
    create_calendar_window(&state, &caller.may::<KeepCalendar>(&state)?, input).await
}

/// Creates a maintenance window or freeze: what `POST /api/v1/windows` and the portal's windows
/// page both do.
pub(crate) async fn create_calendar_window(
    state: &AppState,
    keeper: &Permit<'_, KeepCalendar>,
    input: WindowInput,
) -> Result<Created<WindowView>, ApiError> {
    let mut errors = Vec::new();
    let name = WindowName::parse(&input.name)
        .map_err(|e| errors.push(FieldError::new("name", e.to_string())))
        .ok();
    let kind = input
        .kind
        .parse::<WindowKind>()
        .map_err(|e| errors.push(FieldError::new("kind", e)))
        .ok();
    let scope = input
        .scope
        .parse::<Scope>()
        .map_err(|e| errors.push(FieldError::new("scope", e)))
        .ok();
    let starts = local_time("starts", &input.starts, &input.timezone, &mut errors);
    let ends = local_time("ends", &input.ends, &input.timezone, &mut errors);
    let (Some(name), Some(kind), Some(scope), Some(starts), Some(ends)) =
        (name, kind, scope, starts, ends)
    else {
        return Err(ApiError::Invalid(errors));
    };
    let now = state.clock.now();
    let window = CalendarWindow {
        name,
        kind,
        scope,
        timezone: input.timezone.trim().to_owned(),
        starts,
        ends,
        rrule: input
            .rrule
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        reason: input.reason.trim().to_owned(),
        created_by: keeper.principal().name.clone(),
        created_at: now,
    };
    window.validate().map_err(ApiError::Invalid)?;
    if let Scope::Target(target) = &window.scope {
        let store = keeper.store();
        if store
            .targets_named(std::slice::from_ref(target))
            .await?
            .is_empty()
        {
            return Err(ApiError::invalid_field(
                "scope",
                format!("unknown target '{target}': create it first with `steward target create`"),
            ));
        }
    }
    keeper.store().insert_window(&window).await?;
    tracing::info!(window = %window.name, kind = %window.kind, scope = %window.scope, "calendar window created");
    Ok(Created::at(
        format!("/api/v1/windows/{}", window.name),
        view(&window, now),
    ))
}

/// The maintenance windows and freezes by name, each with its next occurrence, a page at a time.
#[utoipa::path(get, path = "/api/v1/windows", tag = "calendar", params(PageQuery),
    responses((status = 200, body = Page<WindowView>), (status = 422, body = ErrorBody)), security(("token" = [])))]
pub async fn list_windows(
    State(state): State<AppState>,
    caller: Caller,
    Paged { page, .. }: Paged,
) -> Result<Json<Page<WindowView>>, ApiError> {
    Ok(Json(
        windows_page(&state, &caller.may::<ReadRecords>(&state)?, &page).await?,
    ))
}

/// A page of the tenant's windows and freezes, by name, each with its next occurrence: the
/// API's list and the portal's windows page.
pub(crate) async fn windows_page(
    state: &AppState,
    reader: &Permit<'_, ReadRecords>,
    page: &PageRequest,
) -> Result<Page<WindowView>, ApiError> {
    let now = state.clock.now();
    let after: Option<String> = page.after("windows")?;
    let windows = reader
        .store()
        .calendar_windows_after(after.as_deref(), page.fetch())
        .await?;
    let page = page.page("windows", windows, |w| w.name.to_string());
    Ok(page.map(|w| view(&w, now)))
}

/// One window or freeze, by name, with its next occurrence.
#[utoipa::path(get, path = "/api/v1/windows/{name}", tag = "calendar",
    params(("name" = String, Path, description = "the window's name")),
    responses((status = 200, body = WindowView), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub async fn get_window(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<WindowView>, ApiError> {
    let reader = caller.may::<ReadRecords>(&state)?;
    let now = state.clock.now();
    let windows = reader.store().calendar_windows().await?;
    let window = windows
        .iter()
        .find(|w| w.name.as_str() == name)
        .ok_or_else(|| ApiError::NotFound(format!("no window '{name}'")))?;
    Ok(Json(view(window, now)))
}

/// Delete a maintenance window or freeze (audited with what it was).
#[utoipa::path(delete, path = "/api/v1/windows/{name}", tag = "calendar",
    params(("name" = String, Path, description = "the window's name")),
    responses((status = 200, body = WindowView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub async fn delete_window(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<WindowView>, ApiError> {
    let keeper = caller.may::<KeepCalendar>(&state)?;
    let name =
        WindowName::parse(&name).map_err(|_| ApiError::NotFound(format!("no window '{name}'")))?;
    let now = state.clock.now();
    let deleted = keeper
        .store()
        .delete_window(&name, keeper.principal().name.as_str(), now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no window '{name}'")))?;
    Ok(Json(view(&deleted, now)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Only changes touching this target, and windows that cover it.
    pub target: Option<String>,
    /// Only changes in this environment, and windows that apply to it.
    pub environment: Option<String>,
    /// Start of the period (default: 30 days ago).
    pub from: Option<DateTime<Utc>>,
    /// End of the period (default: a year from now; at most five years after `from`).
    pub to: Option<DateTime<Utc>>,
}

/// The change calendar as an RFC 5545 feed: scheduled changes, maintenance windows and freezes.
#[utoipa::path(get, path = "/api/v1/calendar.ics", tag = "calendar", params(FeedQuery),
    responses((status = 200, description = "text/calendar", body = String), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<FeedQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let now = state.clock.now();
    let from = query.from.unwrap_or(now - Duration::days(30));
    let to = query.to.unwrap_or(now + Duration::days(365));
    if to <= from {
        return Err(ApiError::invalid_field("to", "must be after from"));
    }
    if to - from > Duration::days(5 * 366) {
        return Err(ApiError::invalid_field(
            "to",
            "the period may span at most five years",
        ));
    }
    let store = caller.may::<ReadRecords>(&state)?.store();
    let scope = calendar_scope(
        &store,
        query.target.as_deref(),
        query.environment.as_deref(),
    )
    .await?;
    let period = calendar_period(&store, from, to, &scope).await?;

    let mut cal = Calendar::new(now);
    for CalendarChange {
        change,
        start,
        end,
        tentative,
    } in &period.changes
    {
        let summary = format!("{} [{}] {}", change.id, change.state, change.request.title);
        let description = format!(
            "{} change by {} on {} ({}), risk {} ({}).\nRollback: {}",
            change.classification.change_type,
            change.requester,
            change
                .request
                .targets
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            change.request.environment,
            change.risk.score,
            change.risk.level,
            change.request.rollback_plan
        );
        cal.event(&Event {
            uid: format!("{}@{}.steward", change.id, change.tenant),
            start: *start,
            end: *end,
            summary: &summary,
            description: &description,
            categories: &format!("CHANGE,{}", change.classification.change_type),
            status: if *tentative { "TENTATIVE" } else { "CONFIRMED" },
            busy: true,
        });
    }
    for (window, occurrences) in &period.windows {
        let freeze = window.kind == WindowKind::Freeze;
        let summary = if freeze {
            format!("FREEZE {} ({})", window.name, window.scope)
        } else {
            format!("Maintenance window {} ({})", window.name, window.scope)
        };
        for o in occurrences {
            cal.event(&Event {
                uid: format!(
                    "{}-{}-{}@{}.steward",
                    window.kind,
                    window.name,
                    o.start.format("%Y%m%dT%H%M%SZ"),
                    caller.principal().tenant
                ),
                start: o.start,
                end: o.end,
                summary: &summary,
                description: &window.reason,
                categories: if freeze { "FREEZE" } else { "MAINTENANCE" },
                status: "CONFIRMED",
                busy: freeze,
            });
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"steward.ics\"",
            ),
        ],
        cal.finish(),
    ))
}

struct Event<'a> {
    uid: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    summary: &'a str,
    description: &'a str,
    categories: &'a str,
    status: &'static str,
    /// Opaque (blocks time) or transparent.
    busy: bool,
}

/// An RFC 5545 writer: CRLF line ends, text escaped (§3.3.11), lines folded at 75 octets
/// without splitting a UTF-8 character (§3.1).
struct Calendar {
    out: String,
    stamp: String,
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

impl Calendar {
    fn new(now: DateTime<Utc>) -> Calendar {
        let mut cal = Calendar {
            out: String::new(),
            stamp: utc(now),
        };
        for line in [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Steward//Change calendar//EN",
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            "X-WR-CALNAME:Steward change calendar",
        ] {
            cal.line(line);
        }
        cal
    }

    fn line(&mut self, line: &str) {
        let mut width = 0;
        for c in line.chars() {
            let len = c.len_utf8();
            if width + len > 75 {
                self.out.push_str("\r\n ");
                width = 1;
            }
            self.out.push(c);
            width += len;
        }
        self.out.push_str("\r\n");
    }

    fn event(&mut self, e: &Event<'_>) {
        let mut lines = String::new();
        let _ = write!(
            lines,
            "BEGIN:VEVENT\nUID:{}\nDTSTAMP:{}\nDTSTART:{}\nDTEND:{}\nSUMMARY:{}\nDESCRIPTION:{}\nCATEGORIES:{}\nSTATUS:{}\nTRANSP:{}\nEND:VEVENT",
            escape(&e.uid),
            self.stamp,
            utc(e.start),
            utc(e.end),
            escape(e.summary),
            escape(e.description),
            // Commas separate categories; each category is escaped on its own.
            e.categories
                .split(',')
                .map(escape)
                .collect::<Vec<_>>()
                .join(","),
            e.status,
            if e.busy { "OPAQUE" } else { "TRANSPARENT" },
        );
        for line in lines.split('\n') {
            self.line(line);
        }
    }

    fn finish(mut self) -> String {
        self.line("END:VCALENDAR");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_long_lines_fold_between_characters() {
        assert_eq!(escape("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
        let mut cal = Calendar {
            out: String::new(),
            stamp: String::new(),
        };
        let long = format!("SUMMARY:{}", "é".repeat(60));
        cal.line(&long);
        for line in cal.out.split("\r\n") {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        let unfolded = cal.out.replace("\r\n ", "");
        assert_eq!(unfolded.trim_end(), long);
    }
}
