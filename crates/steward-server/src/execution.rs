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

use crate::AppState;
use crate::api::changes::{gate_now, load_change, targets_of, update_change};
use crate::error::ApiError;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use steward_connectors::command::{CommandStep, Invocation as CommandInvocation};
use steward_connectors::executor::{ExecError, Executor, Outcome};
use steward_connectors::mlflow::{AliasStep, Mlflow, TagsStep};
use steward_connectors::webhook::WebhookStep;
use steward_core::change::{Change, Step, Transition};
use steward_core::execution::{
    Action, Check, CheckState, CheckStatus, Execution, PlanStep, Reading, Resume, RollbackRun,
    StepStatus, VerificationRun,
};
use steward_core::execution::{judge_complaints, judge_metric, judge_security};
use steward_core::state::ChangeState;
use steward_core::{ChangeId, Roles, TenantId, UserName};
use steward_store::{Notice, SampleQuery, TenantStore};

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
    for change in state.store.execution_candidates(now).await? {
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
        tokio::spawn(async move {
            let _claim = claim;
            let result = match change.state {
                ChangeState::Completed => verify(&state, &change).await,
                ChangeState::Implementing => run(&state, &change.tenant, &change.id).await,
                _ => start_at_window(&state, &change).await,
            };
            if let Err(e) = result {
                tracing::warn!(change = %change.id, error = %e, "execution step failed");
            }
        });
    }
    Ok(())
}

/// Starts a change whose window opened, when the gate allows it now.
async fn start_at_window(state: &AppState, change: &Change) -> Result<(), ApiError> {
    let store = state.store.tenant(&change.tenant);
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
        Ok(_) => run(state, &change.tenant, &change.id).await,
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

/// Why an execution cannot start now, or `None` when the gate allows it.
pub(crate) async fn refuse_start(
    state: &AppState,
    store: &TenantStore<'_>,
    change: &Change,
) -> Result<Option<String>, ApiError> {
    if change.request.steps.is_empty() {
        return Ok(None);
    }
    let verdict = gate_now(state, store, change, None, change.request.environment).await?;
    Ok((!verdict.allowed).then_some(verdict.reason))
}

/// The executor for one step.
enum Runnable {
    Alias(AliasStep),
    Tags(TagsStep),
    Webhook(WebhookStep),
    Command(CommandStep),
}

fn secret(state: &AppState, name: &str) -> Result<String, ExecError> {
    state
        .config
        .execution
        .secrets
        .get(name)
        .cloned()
        .ok_or_else(|| {
            ExecError::Invalid(format!(
                "the server holds no secret named {name}: start it with STEWARD_SECRET_{name} set"
            ))
        })
}

/// The executor for `step`, run on behalf of `subject` (`("change", "CHG-7")` or
/// `("incident", "INC-3")`), which names the webhook calls and their ids.
fn runnable(
    state: &AppState,
    subject: (&str, &str),
    step: &PlanStep,
) -> Result<Runnable, ExecError> {
    let (kind, subject) = subject;
    Ok(match &step.action {
        Action::MlflowAlias {
            tracking_uri,
            model,
            alias,
            version,
        } => Runnable::Alias(AliasStep {
            mlflow: Mlflow::new(tracking_uri)?,
            model: model.clone(),
            alias: alias.clone(),
            version: version.clone(),
        }),
        Action::MlflowTags {
            tracking_uri,
            model,
            version,
            tags,
        } => Runnable::Tags(TagsStep {
            mlflow: Mlflow::new(tracking_uri)?,
            model: model.clone(),
            version: version.clone(),
            tags: tags.clone(),
        }),
        Action::Webhook {
            url,
            secret: name,
            body,
            timeout_seconds,
            retries,
        } => Runnable::Webhook(WebhookStep {
            id: format!("{subject}.{}", step.name),
            url: url.clone(),
            secret: secret(state, name)?,
            body: json!({kind: subject, "step": step.name, "body": body}),
            timeout_seconds: *timeout_seconds,
            retries: *retries,
        }),
        Action::Command {
            program,
            args,
            undo,
            timeout_seconds,
        } => Runnable::Command(CommandStep {
            run: CommandInvocation {
                program: program.clone(),
                args: args.clone(),
            },
            undo: undo.as_ref().map(|u| CommandInvocation {
                program: u.program.clone(),
                args: u.args.clone(),
            }),
            timeout_seconds: *timeout_seconds,
        }),
    })
}

impl Runnable {
    async fn snapshot(&self) -> Result<Value, ExecError> {
        match self {
            Runnable::Alias(s) => s.snapshot().await,
            Runnable::Tags(s) => s.snapshot().await,
            Runnable::Webhook(s) => s.snapshot().await,
            Runnable::Command(s) => s.snapshot().await,
        }
    }
    async fn apply(&self) -> Result<Outcome, ExecError> {
        match self {
            Runnable::Alias(s) => s.apply().await,
            Runnable::Tags(s) => s.apply().await,
            Runnable::Webhook(s) => s.apply().await,
            Runnable::Command(s) => s.apply().await,
        }
    }
    async fn undo(&self, snapshot: &Value) -> Result<Outcome, ExecError> {
        match self {
            Runnable::Alias(s) => s.undo(snapshot).await,
            Runnable::Tags(s) => s.undo(snapshot).await,
            Runnable::Webhook(s) => s.undo(snapshot).await,
            Runnable::Command(s) => s.undo(snapshot).await,
        }
    }
}

fn outcome_json(result: &Result<Outcome, ExecError>) -> (bool, Value) {
    match result {
        Ok(o) => (
            o.ok,
            json!({"ok": o.ok, "output": o.output, "detail": o.detail}),
        ),
        Err(e) => (false, json!({"ok": false, "error": e.to_string()})),
    }
}

fn journal(change: &mut Change) -> Result<&mut Execution, ApiError> {
    change.execution.as_mut().ok_or_else(|| ApiError::Conflict {
        message: format!("{} has no execution", change.id),
        details: Value::Null,
    })
}

/// Runs (or resumes) the steps of an implementing change, then completes it or rolls it back.
pub async fn run(state: &AppState, tenant: &TenantId, id: &ChangeId) -> Result<(), ApiError> {
    let store = state.store.tenant(tenant);
    loop {
        let change = load_change(&store, id).await?;
        let Some(execution) = &change.execution else {
            return Ok(());
        };
        if change.state != ChangeState::Implementing || execution.rollback.is_some() {
            return Ok(());
        }
        let steps = &change.request.steps;
        match steward_core::execution::resume(execution, steps) {
            Resume::Done => return finish(state, &store, id).await,
            Resume::Interrupted { index } => return interrupted(state, &store, id, index).await,
            Resume::From { index, repeat } => {
                let step = &steps[index];
                let ok = run_step(state, &store, &change, index, step, repeat).await?;
                if !ok {
                    let reason = format!("step '{}' failed", step.name);
                    return rollback(state, &store, id, "step_failed", &reason, None).await;
                }
            }
        }
    }
}

/// Runs step `index`: snapshot, journal `started`, apply, journal the result. Returns whether
/// it applied.
async fn run_step(
    state: &AppState,
    store: &TenantStore<'_>,
    change: &Change,
    index: usize,
    step: &PlanStep,
    repeat: bool,
) -> Result<bool, ApiError> {
    let actor = system();
    let grace = state.config.execution.lease_grace;
    let prepared = runnable(state, ("change", &change.id.to_string()), step);
    let existing = change
        .execution
        .as_ref()
        .and_then(|e| e.steps[index].snapshot.clone());
    // A repeated step keeps the snapshot taken before its first attempt.
    let snapshot = match (&prepared, existing) {
        (Err(e), _) => Err(ExecError::Invalid(e.to_string())),
        (Ok(_), Some(s)) if repeat => Ok(s),
        (Ok(r), _) => r.snapshot().await,
    };
    let snapshot =
        match snapshot {
            Ok(s) => s,
            Err(e) => {
                let now = state.clock.now();
                update_change(store, &change.id, |c| {
                    let run = &mut journal(c)?.steps[index];
                    run.status = StepStatus::Failed;
                    run.finished_at = Some(now);
                    run.result = Some(json!({"ok": false, "error": format!("no snapshot: {e}")}));
                    c.updated_at = now;
                    Ok(vec![c.note(
                    "step_failed",
                    &actor,
                    Some(format!("{}: cannot take the snapshot undoing needs: {e}", step.name)),
                    json!({"step": step.name, "kind": step.action.kind(), "error": e.to_string()}),
                )])
                })
                .await?;
                return Ok(false);
            }
        };
    let now = state.clock.now();
    update_change(store, &change.id, |c| {
        let execution = journal(c)?;
        execution.lease_until = now + Duration::seconds(step.action.timeout_seconds() as i64) + grace;
        let run = &mut execution.steps[index];
        run.status = StepStatus::Started;
        run.snapshot = Some(snapshot.clone());
        run.started_at = Some(now);
        run.attempts += 1;
        c.updated_at = now;
        Ok(vec![c.note(
            "step_started",
            &actor,
            Some(format!(
                "{} ({}){}",
                step.name,
                step.action.kind(),
                if repeat { ", sent again after an interruption" } else { "" }
            )),
            json!({"step": step.name, "kind": step.action.kind(), "snapshot": snapshot, "repeat": repeat}),
        )])
    })
    .await?;
    let result = match &prepared {
        Ok(r) => r.apply().await,
        Err(e) => Err(ExecError::Invalid(e.to_string())),
    };
    let (ok, recorded) = outcome_json(&result);
    let now = state.clock.now();
    update_change(store, &change.id, |c| {
        let execution = journal(c)?;
        execution.lease_until = now + grace;
        let run = &mut execution.steps[index];
        run.status = if ok {
            StepStatus::Applied
        } else {
            StepStatus::Failed
        };
        run.finished_at = Some(now);
        run.result = Some(recorded.clone());
        c.updated_at = now;
        Ok(vec![c.note(
            if ok { "step_applied" } else { "step_failed" },
            &actor,
            Some(step.name.clone()),
            json!({"step": step.name, "kind": step.action.kind(), "result": recorded}),
        )])
    })
    .await?;
    Ok(ok)
}

/// A step whose effect is unknown and that may not run twice: the change fails, and its owners
/// are told to check and roll back.
async fn interrupted(
    state: &AppState,
    store: &TenantStore<'_>,
    id: &ChangeId,
    index: usize,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let actor = system();
    let change = load_change(store, id).await?;
    let name = change.request.steps[index].name.clone();
    let message = format!(
        "{id}: step '{name}' was interrupted by a server stop and may or may not have taken effect; it is not run twice. Check it, then roll back with `steward change rollback {id} --reason …`"
    );
    let notices = owners_notices(
        store,
        &change,
        &format!("{id} failed: step interrupted"),
        &message,
    )
    .await?;
    crate::api::changes::update_change_notifying(store, id, &notices, |c| {
        let execution = journal(c)?;
        execution.steps[index].status = StepStatus::Interrupted;
        execution.steps[index].finished_at = Some(now);
        execution.finished_at = Some(now);
        c.updated_at = now;
        let note = c.note(
            "step_interrupted",
            &actor,
            Some(message.clone()),
            json!({"step": name}),
        );
        let failed = c.advance(
            Step::Fail,
            &actor,
            &system_roles(),
            None,
            Some(message.clone()),
            now,
        )?;
        Ok(vec![note, failed])
    })
    .await?;
    Ok(())
}

/// All steps applied: the change completes, and verification begins when it has checks.
async fn finish(state: &AppState, store: &TenantStore<'_>, id: &ChangeId) -> Result<(), ApiError> {
    let now = state.clock.now();
    let audit_size = state.store.audit_size().await?;
    let actor = system();
    update_change(store, id, |c| {
        let verification = c.request.verification.clone();
        let execution = journal(c)?;
        match &verification {
            Some(v) => {
                execution.verification = Some(VerificationRun {
                    from: now,
                    until: now + Duration::seconds(v.period_seconds as i64),
                    audit_size_at_start: audit_size,
                    checks: Vec::new(),
                    passed_at: None,
                });
            }
            None => execution.finished_at = Some(now),
        }
        let comment = match &verification {
            Some(v) => format!(
                "every step applied; verifying for {}s with {} check(s)",
                v.period_seconds,
                v.checks.len()
            ),
            None => "every step applied".into(),
        };
        Ok(vec![c.advance(
            Step::Complete,
            &actor,
            &system_roles(),
            None,
            Some(comment),
            now,
        )?])
    })
    .await?;
    Ok(())
}

/// Runs the checks of a change under verification: any failure rolls it back; the end of the
/// period with none verifies it.
pub async fn verify(state: &AppState, change: &Change) -> Result<(), ApiError> {
    let store = state.store.tenant(&change.tenant);
    let Some(execution) = &change.execution else {
        return Ok(());
    };
    let Some(run) = &execution.verification else {
        return Ok(());
    };
    let now = state.clock.now();
    let checks = change
        .request
        .verification
        .as_ref()
        .map(|v| v.checks.clone())
        .unwrap_or_default();
    let mut results = Vec::with_capacity(checks.len() + 1);
    for (i, check) in checks.iter().enumerate() {
        let previous = run.checks.get(i);
        let (status, detail) =
            judge(state, &store, change, execution, run, check, previous, now).await;
        results.push(CheckState {
            check: check.label(),
            status,
            detail,
            at: now,
        });
    }
    let (status, detail) = match state.store.audit_gap(run.audit_size_at_start).await? {
        Some(gap) => (CheckStatus::Failed, gap),
        None => (CheckStatus::Passing, "the audit log is whole".to_owned()),
    };
    results.push(CheckState {
        check: "audit log".into(),
        status,
        detail,
        at: now,
    });
    if let Some((i, failed)) = results
        .iter()
        .enumerate()
        .find(|(_, r)| r.status == CheckStatus::Failed)
    {
        let trigger = checks.get(i).map(Check::kind).unwrap_or("audit_gap");
        let reason = format!("{} failed: {}", failed.check, failed.detail);
        let recorded = results.clone();
        update_change(&store, &change.id, |c| {
            let actor = system();
            let verification =
                journal(c)?
                    .verification
                    .as_mut()
                    .ok_or_else(|| ApiError::Conflict {
                        message: "no verification".into(),
                        details: Value::Null,
                    })?;
            verification.checks = recorded.clone();
            c.updated_at = now;
            Ok(vec![c.note(
                "verification_failed",
                &actor,
                Some(reason.clone()),
                json!({"trigger": trigger, "checks": recorded}),
            )])
        })
        .await?;
        return rollback(state, &store, &change.id, trigger, &reason, None).await;
    }
    let ended = now >= run.until;
    let changed = run.checks.len() != results.len()
        || run
            .checks
            .iter()
            .zip(&results)
            .any(|(a, b)| a.status != b.status);
    if !ended && !changed {
        return Ok(());
    }
    update_change(&store, &change.id, |c| {
        let actor = system();
        let execution = journal(c)?;
        let Some(verification) = execution.verification.as_mut() else {
            return Ok(vec![]);
        };
        verification.checks = results.clone();
        if ended {
            verification.passed_at = Some(now);
            execution.finished_at = Some(now);
        }
        c.updated_at = now;
        if ended {
            Ok(vec![c.note(
                "verified",
                &actor,
                Some("the verification period ended with every check passing".into()),
                json!({"checks": results}),
            )])
        } else {
            Ok(vec![c.note(
                "verification_progress",
                &actor,
                None,
                json!({"checks": results}),
            )])
        }
    })
    .await?;
    Ok(())
}

fn readings(samples: &[steward_core::metrics::Sample]) -> Vec<Reading> {
    samples
        .iter()
        .map(|s| Reading {
            at: s.time,
            value: s.value,
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn judge(
    state: &AppState,
    store: &TenantStore<'_>,
    change: &Change,
    execution: &Execution,
    run: &VerificationRun,
    check: &Check,
    previous: Option<&CheckState>,
    now: DateTime<Utc>,
) -> (CheckStatus, String) {
    let soon = now + Duration::seconds(1);
    let result: Result<(CheckStatus, String), String> = async {
        match check {
            Check::Metric {
                name,
                labels,
                direction,
                max_degradation_percent,
                baseline_seconds,
                prometheus,
            } => {
                let from = execution.started_at - Duration::seconds(*baseline_seconds as i64);
                let all = match prometheus {
                    Some(p) => prometheus_range(&p.url, &p.query, from, soon).await?,
                    None => readings(
                        &store
                            .samples(&SampleQuery {
                                name: name.clone(),
                                labels: labels.clone(),
                                from,
                                to: soon,
                                limit: 100_000,
                            })
                            .await
                            .map_err(|e| e.to_string())?,
                    ),
                };
                let baseline: Vec<Reading> = all
                    .iter()
                    .copied()
                    .filter(|r| r.at < execution.started_at)
                    .collect();
                let after: Vec<Reading> =
                    all.iter().copied().filter(|r| r.at >= run.from).collect();
                Ok(judge_metric(
                    *direction,
                    *max_degradation_percent,
                    &baseline,
                    &after,
                ))
            }
            Check::Complaints {
                metric,
                labels,
                max_per_hour,
            } => {
                let samples = store
                    .samples(&SampleQuery {
                        name: metric.clone(),
                        labels: labels.clone(),
                        from: now - Duration::hours(1),
                        to: soon,
                        limit: 100_000,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(judge_complaints(*max_per_hour, &readings(&samples), now))
            }
            Check::SecurityControls {
                metric,
                max_silence_seconds,
            } => {
                let mut last = Vec::new();
                for target in &change.request.targets {
                    let samples = store
                        .samples(&SampleQuery {
                            name: metric.clone(),
                            labels: BTreeMap::from([("target".to_owned(), target.to_string())]),
                            from: run.from - Duration::seconds(*max_silence_seconds as i64),
                            to: soon,
                            limit: 100_000,
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    last.push((target.to_string(), samples.iter().map(|s| s.time).max()));
                }
                Ok(judge_security(*max_silence_seconds, &last, run.from, now))
            }
            Check::Compliance {
                command,
                webhook,
                timeout_seconds,
            } => {
                if let Some(p) = previous
                    && p.status == CheckStatus::Passing
                    && now - p.at < Duration::seconds(COMPLIANCE_INTERVAL_SECONDS)
                    && now < run.until
                {
                    return Ok((p.status, p.detail.clone()));
                }
                compliance(
                    state,
                    change,
                    command.as_ref(),
                    webhook.as_ref(),
                    *timeout_seconds,
                )
                .await
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| (CheckStatus::Inconclusive, format!("could not check: {e}")))
}

async fn compliance(
    state: &AppState,
    change: &Change,
    command: Option<&steward_core::execution::Invocation>,
    webhook: Option<&steward_core::execution::ComplianceWebhook>,
    timeout_seconds: u64,
) -> Result<(CheckStatus, String), String> {
    if let Some(call) = command {
        let step = CommandStep {
            run: CommandInvocation {
                program: call.program.clone(),
                args: call.args.clone(),
            },
            undo: None,
            timeout_seconds,
        };
        let outcome = step.apply().await.map_err(|e| e.to_string())?;
        let tail: String = outcome
            .output
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Ok(if outcome.ok {
            (
                CheckStatus::Passing,
                format!("the compliance test passed: {tail}"),
            )
        } else {
            (
                CheckStatus::Failed,
                format!("the compliance test failed ({}): {tail}", outcome.detail),
            )
        });
    }
    let Some(hook) = webhook else {
        return Err("no compliance test configured".into());
    };
    let call = WebhookStep {
        id: format!("{}.compliance.{}", change.id, state.clock.now().timestamp()),
        url: hook.url.clone(),
        secret: secret(state, &hook.secret).map_err(|e| e.to_string())?,
        body: json!({"change": change.id.to_string(), "check": "compliance"}),
        timeout_seconds,
        retries: 1,
    };
    let outcome = call.apply().await.map_err(|e| e.to_string())?;
    if !outcome.ok {
        return Err(format!("the compliance webhook failed: {}", outcome.output));
    }
    let answer: Value = serde_json::from_str(&outcome.output).map_err(|_| {
        format!(
            "the compliance webhook must answer {{\"pass\": true|false}}, not {}",
            outcome.output
        )
    })?;
    let detail = answer["detail"].as_str().unwrap_or("").to_owned();
    match answer["pass"].as_bool() {
        Some(true) => Ok((
            CheckStatus::Passing,
            format!("the compliance webhook passed {detail}"),
        )),
        Some(false) => Ok((
            CheckStatus::Failed,
            format!("the compliance webhook failed the change: {detail}"),
        )),
        None => Err("the compliance webhook's answer has no boolean \"pass\"".into()),
    }
}

/// Reads one series from a Prometheus-compatible `query_range` endpoint.
async fn prometheus_range(
    url: &str,
    query: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Reading>, String> {
    let step = ((to - from).num_seconds() / 250).max(15);
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/query_range", url.trim_end_matches('/')))
        .query(&[
            ("query", query.to_owned()),
            ("start", from.timestamp().to_string()),
            ("end", to.timestamp().to_string()),
            ("step", format!("{step}s")),
        ])
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("cannot reach Prometheus at {url}: {e}"))?;
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("Prometheus at {url} answered no JSON: {e}"))?;
    if body["status"] != "success" {
        return Err(format!(
            "Prometheus refused the query: {}",
            body["error"].as_str().unwrap_or("unknown error")
        ));
    }
    let series = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if series.len() > 1 {
        return Err(format!(
            "the query returns {} series; aggregate it to one (e.g. avg(...))",
            series.len()
        ));
    }
    let mut out = Vec::new();
    for point in series
        .first()
        .and_then(|s| s["values"].as_array())
        .cloned()
        .unwrap_or_default()
    {
        let (Some(t), Some(v)) = (point[0].as_f64(), point[1].as_str()) else {
            continue;
        };
        let (Some(at), Ok(value)) = (
            DateTime::from_timestamp_millis((t * 1000.0) as i64),
            v.parse::<f64>(),
        ) else {
            continue;
        };
        if value.is_finite() {
            out.push(Reading { at, value });
        }
    }
    Ok(out)
}

/// The people a change's outcome is reported to: its targets' owners and its requester.
async fn owners_notices(
    store: &TenantStore<'_>,
    change: &Change,
    subject: &str,
    body: &str,
) -> Result<Vec<Notice>, ApiError> {
    let mut people = BTreeSet::new();
    for target in targets_of(store, &change.request.targets).await? {
        people.insert(target.owner);
    }
    people.insert(change.requester.clone());
    Ok(people
        .into_iter()
        .map(|recipient| Notice {
            recipient,
            subject: subject.to_owned(),
            body: body.to_owned(),
            change: Some(change.id.clone()),
        })
        .collect())
}

/// Runs one step outside a change (a containment action): snapshot, then apply. Returns whether
/// it succeeded and what happened, snapshot included.
pub async fn run_action(state: &AppState, subject: (&str, &str), step: &PlanStep) -> (bool, Value) {
    let runnable = match runnable(state, subject, step) {
        Ok(r) => r,
        Err(e) => return (false, json!({"error": e.to_string()})),
    };
    let snapshot = match runnable.snapshot().await {
        Ok(s) => s,
        Err(e) => return (false, json!({"error": format!("no snapshot: {e}")})),
    };
    let result = runnable.apply().await;
    let (ok, recorded) = outcome_json(&result);
    (ok, json!({"snapshot": snapshot, "result": recorded}))
}

/// Who asked for a rollback, when a person did.
#[derive(Debug)]
pub struct Requested<'a> {
    pub who: &'a UserName,
    pub roles: &'a Roles,
}

/// Rolls a change back: every step that ran (or may have), last first, from its snapshot. Ends
/// `rolled_back` when every undo succeeded; otherwise the change is left for a person to finish,
/// the failure recorded and the owners told.
pub async fn rollback(
    state: &AppState,
    store: &TenantStore<'_>,
    id: &ChangeId,
    trigger: &str,
    reason: &str,
    by: Option<Requested<'_>>,
) -> Result<(), ApiError> {
    let (who, roles) = match &by {
        Some(r) => (r.who.clone(), r.roles.clone()),
        None => (system(), system_roles()),
    };
    let now = state.clock.now();
    // Refuse up front what the final transition would refuse (segregation, state).
    let current = load_change(store, id).await?;
    current
        .clone()
        .advance(Step::Rollback, &who, &roles, None, None, now)?;
    update_change(store, id, |c| {
        let execution = journal(c)?;
        execution.rollback = Some(RollbackRun {
            trigger: trigger.to_owned(),
            reason: reason.to_owned(),
            by: who.clone(),
            at: now,
            finished_at: None,
            ok: None,
        });
        c.updated_at = now;
        Ok(vec![c.note(
            "rollback_started",
            &who,
            Some(reason.to_owned()),
            json!({"trigger": trigger, "reason": reason}),
        )])
    })
    .await?;
    let change = load_change(store, id).await?;
    let execution = change
        .execution
        .clone()
        .unwrap_or_else(|| Execution::new(&[], &who, now));
    let mut all_ok = true;
    let mut undone = Vec::new();
    for index in execution.undo_order() {
        let step = &change.request.steps[index];
        let snapshot = execution.steps[index]
            .snapshot
            .clone()
            .unwrap_or(Value::Null);
        let result = match runnable(state, ("change", &id.to_string()), step) {
            Ok(r) => r.undo(&snapshot).await,
            Err(e) => Err(e),
        };
        let (ok, recorded) = outcome_json(&result);
        all_ok &= ok;
        undone.push(json!({"step": step.name, "ok": ok}));
        let now = state.clock.now();
        update_change(store, id, |c| {
            let run = &mut journal(c)?.steps[index];
            run.status = if ok {
                StepStatus::Undone
            } else {
                StepStatus::UndoFailed
            };
            run.undo = Some(recorded.clone());
            c.updated_at = now;
            Ok(vec![c.note(
                if ok { "step_undone" } else { "step_undo_failed" },
                &who,
                Some(step.name.clone()),
                json!({"step": step.name, "kind": step.action.kind(), "snapshot": snapshot, "result": recorded}),
            )])
        })
        .await?;
    }
    let now = state.clock.now();
    let (subject, body) = if all_ok {
        (
            format!("{id} was rolled back"),
            format!(
                "{id} ({}) was rolled back ({trigger}): {reason}. Every step was undone; see `steward change show {id}`.",
                change.request.title
            ),
        )
    } else {
        (
            format!("{id}: rollback incomplete, action needed"),
            format!(
                "{id} ({}) was being rolled back ({trigger}: {reason}) but some steps could not be undone: {}. Fix them, then run `steward change rollback {id} --reason …` again.",
                change.request.title,
                serde_json::to_string(&undone).unwrap_or_default()
            ),
        )
    };
    let notices = owners_notices(store, &change, &subject, &body).await?;
    crate::api::changes::update_change_notifying(store, id, &notices, |c| {
        let state_before = c.state;
        let execution = journal(c)?;
        execution.finished_at = Some(now);
        if let Some(r) = execution.rollback.as_mut() {
            r.finished_at = Some(now);
            r.ok = Some(all_ok);
        }
        c.updated_at = now;
        let mut out: Vec<Transition> = Vec::new();
        if all_ok {
            let mut t = c.advance(Step::Rollback, &who, &roles, None, Some(reason.to_owned()), now)?;
            t.details = Some(json!({"trigger": trigger, "undone": undone, "notified": notices.iter().map(|n| n.recipient.to_string()).collect::<Vec<_>>()}));
            out.push(t);
        } else {
            out.push(c.note(
                "rollback_failed",
                &who,
                Some(body.clone()),
                json!({"trigger": trigger, "undone": undone}),
            ));
            if state_before == ChangeState::Implementing {
                out.push(c.advance(Step::Fail, &system(), &system_roles(), None, Some("rollback incomplete".into()), now)?);
            }
        }
        Ok(out)
    })
    .await?;
    Ok(())
}
