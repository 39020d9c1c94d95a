//! Incident handling on the server: signals in (from the alert endpoints and the detectors),
//! grouped into incidents, correlated with recent changes, and contained by approved plans run
//! through the change executors.
//!
//! Intake is serialized within a process (one signal at a time decides whether it joins an open
//! incident or opens one); the store's unique signal keys keep a resend from opening a second
//! incident even across servers. Correlation reads the tenant's targets (for the dependency
//! graph) and recent changes, and ranks them with `steward_core::incident::correlate`.

use crate::AppState;
use crate::auth::RunOrder;
use crate::error::ApiError;
use crate::execution;
use chrono::Duration;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use steward_core::change::Change;
use steward_core::incident::{
    ActionRun, ContainmentAction, Incident, IncidentEvent, IncidentId, Signal, correlate,
};
use steward_core::{TargetName, UserName};
use steward_store::{ChangeFilter, IncidentFilter, Notice, StoreError, TenantStore};

/// How signals group and how far back changes are suspected.
#[derive(Debug, Clone)]
pub struct IncidentConfig {
    /// A signal on a target joins an open incident on that target opened this recently.
    pub grouping: Duration,
    /// Changes implemented this long before an anomaly began are suspects.
    pub correlation: Duration,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            grouping: Duration::minutes(30),
            correlation: Duration::hours(24),
        }
    }
}

const MAX_ATTEMPTS: usize = 8;

pub(crate) async fn load(store: &TenantStore<'_>, id: &IncidentId) -> Result<Incident, ApiError> {
    store
        .get_incident(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))
}

/// Loads an incident, applies `decide`, saves it with the events, retrying on a concurrent save.
pub(crate) async fn update(
    store: &TenantStore<'_>,
    id: &IncidentId,
    mut decide: impl FnMut(&mut Incident) -> Result<Vec<IncidentEvent>, ApiError>,
) -> Result<Incident, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let mut incident = load(store, id).await?;
        let events = decide(&mut incident)?;
        if events.is_empty() {
            return Ok(incident);
        }
        match store.save_incident(&incident, &events).await {
            Ok(()) => {
                incident.version += 1;
                return Ok(incident);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// The target a signal is about: the first of `candidates` (label values, a PagerDuty
/// component, …) that names a registered target.
pub(crate) async fn find_target(
    store: &TenantStore<'_>,
    candidates: &[&str],
) -> Result<Option<TargetName>, ApiError> {
    let names: Vec<TargetName> = candidates
        .iter()
        .filter_map(|c| TargetName::parse(c).ok())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let found = store.targets_named(&names).await?;
    Ok(names
        .into_iter()
        .find(|n| found.iter().any(|t| &t.name == n)))
}

/// Takes a firing signal: a resend changes nothing, a signal on a target with an open incident
/// joins it, anything else opens an incident with its suspect changes. Returns the incident.
pub async fn raise(
    state: &AppState,
    store: &TenantStore<'_>,
    signal: Signal,
) -> Result<IncidentId, ApiError> {
    let _one_at_a_time = state.intake.lock().await;
    let now = state.clock.now();
    if let Some(id) = store
        .incident_for_signal(&signal.source, &signal.key)
        .await?
    {
        update(store, &id, |incident| {
            Ok(incident.add_signal(signal.clone(), now))
        })
        .await?;
        return Ok(id);
    }
    if let Some(target) = &signal.target {
        let open = store
            .list_incidents(&IncidentFilter {
                open_only: true,
                opened_since: Some(now - state.config.incidents.grouping),
                limit: 500,
                ..IncidentFilter::default()
            })
            .await?;
        if let Some(joined) = open.iter().find(|i| i.targets.contains(target)) {
            let id = joined.id.clone();
            update(store, &id, |incident| {
                Ok(incident.add_signal(signal.clone(), now))
            })
            .await?;
            return Ok(id);
        }
    }
    let affected: Vec<TargetName> = signal.target.iter().cloned().collect();
    let suspects = suspects_for(state, store, &affected, signal.started_at).await?;
    let (incident, events) =
        Incident::open(store.tenant().clone(), signal, affected, suspects, now);
    let incident = store.insert_incident(incident, &events).await?;
    let owners = owners(store, &incident.targets).await?;
    let notices: Vec<Notice> = owners
        .into_iter()
        .map(|recipient| Notice {
            recipient,
            subject: format!(
                "{} opened ({}): {}",
                incident.id, incident.severity, incident.title
            ),
            body: match incident.suspects.first() {
                Some(top) => format!(
                    "{} on {}. Top suspect: {}",
                    incident.title,
                    incident
                        .targets
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    top.reason
                ),
                None => format!(
                    "{}; no change on the affected targets is suspected",
                    incident.title
                ),
            },
            change: incident.suspects.first().map(|s| s.change.clone()),
            // A title someone typed (an incident opened by hand) is theirs: sealed under their key.
            about: incident
                .signals
                .first()
                .and_then(|s| s.labels.get("reported_by"))
                .and_then(|name| steward_core::UserName::parse(name).ok()),
        })
        .collect();
    store.notify(&notices, now).await?;
    Ok(incident.id)
}

/// The owning managers of `targets`.
pub(crate) async fn owners(
    store: &TenantStore<'_>,
    targets: &[TargetName],
) -> Result<Vec<UserName>, ApiError> {
    let found = store.targets_named(targets).await?;
    Ok(found
        .into_iter()
        .map(|t| t.owner)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// Changes implemented shortly before `began` on the affected targets or related ones, ranked.
async fn suspects_for(
    state: &AppState,
    store: &TenantStore<'_>,
    affected: &[TargetName],
    began: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<steward_core::incident::Suspect>, ApiError> {
    if affected.is_empty() {
        return Ok(Vec::new());
    }
    let targets = store.list_targets().await?;
    let window = state.config.incidents.correlation;
    // A change is created before it is implemented; one created long before the window can
    // still have run inside it, so look back further for candidates.
    let candidates = changes_created_since(store, began - window - LOOKBACK).await?;
    Ok(correlate(began, affected, &targets, &candidates, window))
}

/// How long before the period in question a change may have been requested and still have been
/// implemented in it (a window booked a quarter ahead).
pub(crate) const LOOKBACK: Duration = Duration::days(90);

/// Every change created since `since`, read a page at a time: no cap, so a busy tenant's
/// suspects (or failure rate) are never cut off at some count.
pub(crate) async fn changes_created_since(
    store: &TenantStore<'_>,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Change>, ApiError> {
    const PAGE: i64 = 500;
    let mut out: Vec<Change> = Vec::new();
    loop {
        let page = store
            .list_changes(&ChangeFilter {
                created_since: Some(since),
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

/// Marks a signal resolved, if Steward knows it.
pub async fn resolve_signal(
    state: &AppState,
    store: &TenantStore<'_>,
    source: &str,
    key: &str,
) -> Result<Option<IncidentId>, ApiError> {
    let now = state.clock.now();
    let Some(id) = store.incident_for_signal(source, key).await? else {
        return Ok(None);
    };
    update(store, &id, |incident| {
        Ok(incident.resolve_signal(source, key, now))
    })
    .await?;
    Ok(Some(id))
}

/// Runs an approved containment plan's actions in order through the change executors, records
/// each result, and marks the incident contained when all succeeded.
pub async fn run_containment(
    state: &AppState,
    order: &RunOrder,
    id: &IncidentId,
) -> Result<Incident, ApiError> {
    let store = &order.store();
    let incident = load(store, id).await?;
    let Some(plan) = incident.containment.clone() else {
        return Ok(incident);
    };
    let approver = plan
        .approved_by
        .clone()
        .unwrap_or_else(steward_core::incident::system);
    let mut all_ok = true;
    for action in &plan.actions {
        if plan.runs.iter().any(|r| r.name == action.name() && r.ok) {
            continue;
        }
        let (ok, result) = match action {
            ContainmentAction::RollbackChange { change, .. } => {
                let reason = format!("{id}: containment approved by {approver}");
                let planned = store
                    .get_change(change)
                    .await?
                    .is_some_and(|c| c.execution.is_some());
                let rolled = if planned {
                    execution::rollback(state, order, change, "incident", &reason, None).await
                } else {
                    Err(ApiError::Conflict {
                        message: format!(
                            "{change} has no steps Steward can undo: roll it back by hand, then record it with `steward change rollback {change} --reason …`"
                        ),
                        details: Value::Null,
                    })
                };
                match rolled {
                    Ok(()) => {
                        let after = store.get_change(change).await?;
                        let state_now = after.as_ref().map(|c| c.state.to_string());
                        (
                            state_now.as_deref() == Some("rolled_back"),
                            json!({"change": change, "state": state_now}),
                        )
                    }
                    Err(e) => (false, json!({"change": change, "error": e.to_string()})),
                }
            }
            ContainmentAction::Step { step } => {
                execution::run_action(state, order, ("incident", &id.to_string()), step).await
            }
        };
        all_ok &= ok;
        let now = state.clock.now();
        let run = ActionRun {
            name: action.name().to_owned(),
            ok,
            result: result.clone(),
            at: now,
        };
        update(store, id, |incident| {
            Ok(incident.record_action(run.clone(), now))
        })
        .await?;
        if !ok {
            break;
        }
    }
    let now = state.clock.now();
    update(store, id, |incident| {
        if all_ok
            && incident.state.is_open()
            && incident.state != steward_core::incident::IncidentState::Contained
        {
            Ok(incident.contain(
                &steward_core::incident::system(),
                Some("every containment action succeeded".into()),
                now,
            )?)
        } else {
            Ok(Vec::new())
        }
    })
    .await
}
