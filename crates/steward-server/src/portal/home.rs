//! The home page: what waits for the viewer — changes awaiting an approval they may give (with
//! their SLA), their own open changes, and the incidents they own.

use super::Viewer;
use super::answer::{Chrome, chrome, render};
use crate::AppState;
use crate::auth::{ApproveChanges, ReadRecords};
use crate::error::ApiError;
use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use steward_core::approval;
use steward_core::change::Change;
use steward_core::state::ChangeState;
use steward_store::ChangeFilter;
use steward_store::IncidentFilter;

/// How many records each list reads: the home page is a to-do list, not an archive.
const LIST_LIMIT: i64 = 200;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    approvals: Vec<ChangeItem>,
    my_changes: Vec<ChangeItem>,
    my_incidents: Vec<IncidentItem>,
}

struct ChangeItem {
    id: String,
    title: String,
    change_type: String,
    risk: u32,
    state: String,
    /// "due in 5 h 20 min (2026-12-01 14:00 UTC)", "overdue since …", or empty.
    due: String,
    overdue: bool,
}

struct IncidentItem {
    id: String,
    title: String,
    severity: String,
    state: String,
}

/// When a change's approval is due, said as a countdown.
pub(super) fn due_text(deadline: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(due) = deadline else {
        return String::new();
    };
    let at = due.format("%Y-%m-%d %H:%M UTC");
    let left = due - now;
    let span = |d: chrono::Duration| {
        let minutes = d.num_minutes().abs();
        match (minutes / (24 * 60), minutes / 60 % 24, minutes % 60) {
            (0, 0, m) => format!("{m} min"),
            (0, h, m) => format!("{h} h {m} min"),
            (days, h, _) => format!("{days} d {h} h"),
        }
    };
    if left < chrono::Duration::zero() {
        format!("overdue by {} (was due {at})", span(left))
    } else {
        format!("due in {} ({at})", span(left))
    }
}

fn item(change: &Change, now: DateTime<Utc>) -> ChangeItem {
    let due = if change.state == ChangeState::PendingApproval {
        due_text(change.approval_deadline, now)
    } else {
        String::new()
    };
    ChangeItem {
        id: change.id.to_string(),
        title: change.request.title.clone(),
        change_type: change.classification.change_type.to_string(),
        risk: change.risk.score,
        state: change.state.to_string(),
        due,
        overdue: change.is_overdue(now),
    }
}

/// Every change `filter` selects, newest first, read a page at a time.
async fn every_change(
    store: &steward_store::TenantStore<'_>,
    mut filter: ChangeFilter,
) -> Result<Vec<Change>, ApiError> {
    let mut all = Vec::new();
    loop {
        let page = store.list_changes(&filter).await?;
        let full = page.len() as i64 >= filter.limit;
        filter.before_number = page.last().map(|c| c.id.number());
        all.extend(page);
        if !full || filter.before_number.is_none() {
            return Ok(all);
        }
    }
}

/// Every open incident, newest first, read a page at a time.
async fn every_open_incident(
    store: &steward_store::TenantStore<'_>,
) -> Result<Vec<steward_core::incident::Incident>, ApiError> {
    let filter = IncidentFilter {
        open_only: true,
        limit: LIST_LIMIT,
        ..IncidentFilter::default()
    };
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_incidents_before(&filter, before).await?;
        let full = page.len() as i64 >= filter.limit;
        before = page.last().map(|i| i.id.number());
        all.extend(page);
        if !full || before.is_none() {
            return Ok(all);
        }
    }
}

pub(super) async fn page(state: &AppState, viewer: &Viewer) -> Result<Response, ApiError> {
    let reader = viewer.caller.may::<ReadRecords>(state)?;
    let store = reader.store();
    let principal = reader.principal();
    let now = state.clock.now();
    // Approvals: only for those whose roles approve at all; then the core's own check says
    // which changes this person may decide now (never their own, never twice).
    let approvals = match reader.also::<ApproveChanges>() {
        Err(_) => Vec::new(),
        Ok(_) => {
            // Every change awaiting approval, page by page: the oldest are the most overdue.
            let waiting = every_change(
                &store,
                ChangeFilter {
                    state: Some(ChangeState::PendingApproval),
                    limit: LIST_LIMIT,
                    ..ChangeFilter::default()
                },
            )
            .await?;
            let mut mine: Vec<&Change> = waiting
                .iter()
                .filter(|c| {
                    approval::check_decider(
                        &c.required_approvals,
                        &c.decisions,
                        &c.requester,
                        &principal.name,
                        &principal.roles,
                    )
                    .is_ok()
                })
                .collect();
            // The most urgent first.
            mine.sort_by_key(|c| c.approval_deadline);
            mine.into_iter().map(|c| item(c, now)).collect()
        }
    };
    let my_changes = store
        .list_changes(&ChangeFilter {
            requester: Some(principal.name.clone()),
            limit: LIST_LIMIT,
            ..ChangeFilter::default()
        })
        .await?
        .iter()
        .filter(|c| {
            !matches!(
                c.state,
                ChangeState::Rejected | ChangeState::Closed | ChangeState::Cancelled
            )
        })
        .map(|c| item(c, now))
        .collect();
    let my_incidents = every_open_incident(&store)
        .await?
        .into_iter()
        .filter(|i| i.owner.as_ref() == Some(&principal.name))
        .map(|i| IncidentItem {
            id: i.id.to_string(),
            title: i.title,
            severity: i.severity.to_string(),
            state: i.state.to_string(),
        })
        .collect();
    render(
        StatusCode::OK,
        &HomePage {
            chrome: chrome(viewer),
            approvals,
            my_changes,
            my_incidents,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::due_text;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn deadlines_read_as_countdowns() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .single()
            .expect("time");
        assert_eq!(due_text(None, now), "");
        assert_eq!(
            due_text(Some(now + Duration::minutes(90)), now),
            "due in 1 h 30 min (2026-12-01 13:30 UTC)"
        );
        assert_eq!(
            due_text(Some(now + Duration::days(2) + Duration::hours(3)), now),
            "due in 2 d 3 h (2026-12-03 15:00 UTC)"
        );
        assert!(due_text(Some(now - Duration::minutes(5)), now).starts_with("overdue by 5 min"));
    }
}
