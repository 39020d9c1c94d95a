//! Running changes: the execution worker, the step runner, verification and rollback.
//!
//! A background worker wakes every [`ExecutionConfig::tick`] and, in every tenant, starts the
//! approved changes with steps whose window has opened, resumes executions whose lease ran out
//! (their server stopped), and runs the verification checks of changes completed recently.
//! Every step boundary is saved on the change — `started` with its snapshot *before* the step is
//! sent, `applied`/`failed` after — with an audit event, so a restart knows exactly where it
//! stopped: an interrupted idempotent step (MLflow) is sent again, any other fails the change
//! rather than run twice. A failed step or check rolls back what ran, last step first, from the
//! snapshots; the change ends `rolled_back` and its owners are notified in the same transaction.
//! The system acts as the reserved user `steward`.

mod runner;
mod verify;

pub use runner::{Requested, rollback, run, run_action};
pub use verify::verify;

use crate::AppState;
use crate::api::changes::{gate_now, update_change};
use crate::error::ApiError;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use steward_core::change::{Change, Step};
use steward_core::execution::Execution;
use steward_core::state::ChangeState;
use steward_core::{ChangeId, Roles, TenantId, UserName};
use steward_store::TenantStore;

/// The reserved name the system acts under in the audit log.
pub const SYSTEM_ACTOR: &str = "steward";

/// How often compliance tests re-run while a change is under verification.
const COMPLIANCE_INTERVAL_SECONDS: i64 = 30;

/// How the worker runs.
#[derive(Clone)]
pub struct ExecutionConfig {
    /// How often the worker looks for work.
    pub tick: std::time::Duration,
    /// Added to a step's timeout for its lease: how long another server waits before it takes
    /// over an execution whose server stopped.
    pub lease_grace: Duration,
    /// Secrets steps and checks name (`STEWARD_SECRET_<NAME>` in the environment of `serve`).
    pub secrets: BTreeMap<String, String>,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            tick: std::time::Duration::from_secs(5),
            lease_grace: Duration::seconds(60),
            secrets: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for ExecutionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionConfig")
            .field("tick", &self.tick)
            .field("lease_grace", &self.lease_grace)
            .field("credentials", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The changes this process is running now, so a tick never starts a second run of one.
#[derive(Debug, Clone, Default)]
pub struct Running(Arc<Mutex<HashSet<(String, u64)>>>);

/// Holds a change for this process until dropped.
#[derive(Debug)]
pub struct Claim {
    running: Running,
    key: (String, u64),
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut set) = self.running.0.lock() {
            set.remove(&self.key);
        }
    }
}

impl Running {
    pub fn claim(&self, tenant: &TenantId, id: &ChangeId) -> Option<Claim> {
        let key = (tenant.as_str().to_owned(), id.number());
        let mut set = self.0.lock().ok()?;
        set.insert(key.clone()).then(|| Claim {
            running: self.clone(),
            key,
        })
    }
}

fn system() -> UserName {
    UserName::parse(SYSTEM_ACTOR).expect("the system actor's name is valid")
}

fn system_roles() -> Roles {
    Roles::parse_list("admin").expect("roles")
}

/// The worker: runs until the task is aborted.
pub async fn worker(state: AppState) {
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "execution worker tick failed");
        }
        tokio::time::sleep(state.config.execution.tick).await;
    }
}

/// One pass over everything the worker may have to do.
pub async fn tick(state: &AppState) -> Result<(), ApiError> {
    let now = state.clock.now();
    for change in crate::auth::System::of(state)
        .store()
        .execution_candidates(now)
        .await?
    {
        if change.request.steps.is_empty() {
            continue;
        }
        let due = match (change.state, &change.execution) {
            (ChangeState::Approved | ChangeState::Scheduled, None) => true,
            (ChangeState::Implementing, Some(e)) => e.lease_expired(now),
            (ChangeState::Completed, Some(e)) => e.verifying(),
            _ => false,
        };
        if !due {
            continue;
        }
        let Some(claim) = state.running.claim(&change.tenant, &change.id) else {
            continue;
        };
        let state = state.clone();
        let order = crate::auth::System::of(&state).order(&change.tenant);
        tokio::spawn(async move {
            let _claim = claim;
            let result = match change.state {
                ChangeState::Completed => verify(&state, &order, &change).await,
                ChangeState::Implementing => run(&state, &order, &change.id).await,
                _ => start_at_window(&state, &order, &change).await,
            };
            if let Err(e) = result {
                tracing::warn!(change = %change.id, error = %e, "execution step failed");
            }
        });
    }
    Ok(())
}

/// Starts a change whose window opened, when the gate allows it now.
async fn start_at_window(
    state: &AppState,
    order: &crate::auth::RunOrder,
    change: &Change,
) -> Result<(), ApiError> {
    let store = order.store();
    let verdict = gate_now(state, &store, change, None, change.request.environment).await?;
    if !verdict.allowed {
        tracing::info!(change = %change.id, reason = %verdict.reason, "not starting");
        return Ok(());
    }
    let grace = state.config.execution.lease_grace;
    let now = state.clock.now();
    let started = update_change(&store, &change.id, |c| {
        if c.execution.is_some()
            || !matches!(c.state, ChangeState::Approved | ChangeState::Scheduled)
        {
            return Err(ApiError::Conflict {
                message: format!("{} already started", c.id),
                details: Value::Null,
            });
        }
        let mut out = Vec::new();
        if c.state == ChangeState::Approved {
            out.push(c.advance(
                Step::Schedule,
                &system(),
                &system_roles(),
                None,
                Some("scheduled into its requested window".into()),
                now,
            )?);
        }
        out.push(c.advance(
            Step::Implement,
            &system(),
            &system_roles(),
            None,
            Some("its window opened".into()),
            now,
        )?);
        begin(c, &system(), now, grace);
        Ok(out)
    })
    .await;
    match started {
        Ok(_) => run(state, order, &change.id).await,
        // Another server (or an implementer) got there first.
        Err(ApiError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Puts a fresh journal on a change that is becoming `implementing`.
pub(crate) fn begin(change: &mut Change, by: &UserName, now: DateTime<Utc>, grace: Duration) {
    let mut execution = Execution::new(&change.request.steps, by, now);
    execution.lease_until = now + grace;
    change.execution = Some(execution);
}

/// Why a change (with steps or without) cannot start now, or `None` when the gate allows it.
pub(crate) async fn refuse_start(
    state: &AppState,
    store: &TenantStore<'_>,
    change: &Change,
) -> Result<Option<String>, ApiError> {
    let verdict = gate_now(state, store, change, None, change.request.environment).await?;
    Ok((!verdict.allowed).then_some(verdict.reason))
}
