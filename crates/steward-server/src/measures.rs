//! The delivery figures on the server: reads what `steward_core::measures` needs from a
//! tenant's store and hands it over. `GET /api/v1/change-metrics`, `GET /api/v1/incident-metrics`
//! (its change failure rate) and the portal's dashboard all come through here, so a figure has
//! one reading and one definition.

use crate::error::ApiError;
use crate::incidents::{LOOKBACK, changes_created_since};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use steward_core::ChangeId;
use steward_core::change::Change;
use steward_core::measures::Period;
use steward_core::measures::changes::{ChangeFacts, ChangeMetrics, summarize};
use steward_core::state::ChangeState;
use steward_store::{ChangeFilter, TenantStore};

/// Of `implemented`, the changes that failed: their outcome was `failed` (failed or rolled
/// back), or they are a strong suspect of an incident. The change failure rate's one test.
pub(crate) async fn failed_changes(
    store: &TenantStore<'_>,
    implemented: &[&Change],
) -> Result<BTreeSet<ChangeId>, ApiError> {
    let mut failed = BTreeSet::new();
    for change in implemented {
        let is_failed = change.outcome.as_deref() == Some("failed")
            || store
                .incidents_linked_to(&change.id)
                .await?
                .iter()
                .any(|(_, _, strong)| *strong);
        if is_failed {
            failed.insert(change.id.clone());
        }
    }
    Ok(failed)
}

/// Every change waiting for approval now, read a page at a time.
async fn waiting_for_approval(store: &TenantStore<'_>) -> Result<Vec<Change>, ApiError> {
    const PAGE: i64 = 500;
    let mut out: Vec<Change> = Vec::new();
    loop {
        let page = store
            .list_changes(&ChangeFilter {
                state: Some(ChangeState::PendingApproval),
                before_number: out.last().map(|c| c.id.number()),
                limit: PAGE,
                ..ChangeFilter::default()
            })
            .await?;
        let full = page.len() as i64 == PAGE;
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The change figures of `period`, with the approvals overdue at `now`.
pub(crate) async fn change_metrics(
    store: &TenantStore<'_>,
    period: Period,
    now: DateTime<Utc>,
) -> Result<ChangeMetrics, ApiError> {
    // A change approved or implemented in the period may have been requested well before it
    // (a window booked a quarter ahead), as incident correlation assumes.
    let changes = changes_created_since(store, period.from - LOOKBACK).await?;
    let implemented: Vec<&Change> = changes
        .iter()
        .filter(|c| c.implemented_at().is_some_and(|at| period.contains(at)))
        .collect();
    let failed = failed_changes(store, &implemented).await?;
    let waiting = waiting_for_approval(store).await?;
    Ok(summarize(&ChangeFacts {
        period,
        changes: &changes,
        failed: &failed,
        waiting: &waiting,
        now,
    }))
}
