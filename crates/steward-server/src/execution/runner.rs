//! The step runner: runs a change's steps in order through the executors, saving the journal at
//! every step boundary (a snapshot and "started" before a step is sent, its outcome after), resumes
//! interrupted executions, finishes them, and rolls back what ran — for a failed step, a failed
//! verification, a person's `change rollback` or an incident's containment.

use super::{system, system_roles};
use crate::AppState;
use crate::api::changes::{load_change, targets_of, update_change};
use crate::auth::RunOrder;
use crate::error::ApiError;
use chrono::Duration;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use steward_connectors::command::{CommandStep, Invocation as CommandInvocation};
use steward_connectors::executor::{ExecError, Executor, Outcome};
use steward_connectors::mlflow::{AliasStep, Mlflow, TagsStep};
use steward_connectors::webhook::WebhookStep;
use steward_core::change::{Change, Step, Transition};
use steward_core::execution::{
    Action, Execution, PlanStep, Resume, RollbackRun, StepStatus, VerificationRun,
};
use steward_core::state::ChangeState;
use steward_core::{ChangeId, Roles, UserName};
use steward_store::{Notice, TenantStore};

/// The executor for one step.
enum Runnable {
    Alias(AliasStep),
    Tags(TagsStep),
    Webhook(WebhookStep),
    Command(CommandStep),
}

pub(super) fn secret(state: &AppState, name: &str) -> Result<String, ExecError> {
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

pub(super) fn journal(change: &mut Change) -> Result<&mut Execution, ApiError> {
    change.execution.as_mut().ok_or_else(|| ApiError::Conflict {
        message: format!("{} has no execution", change.id),
        details: Value::Null,
    })
}

/// Runs (or resumes) the steps of an implementing change, then completes it or rolls it back.
pub async fn run(state: &AppState, order: &RunOrder, id: &ChangeId) -> Result<(), ApiError> {
    let store = order.store();
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
            Resume::Done => return finish(state, order, id).await,
            Resume::Interrupted { index } => return interrupted(state, &store, id, index).await,
            Resume::From { index, repeat } => {
                let step = &steps[index];
                let ok = run_step(state, &store, &change, index, step, repeat).await?;
                if !ok {
                    let reason = format!("step '{}' failed", step.name);
                    return rollback(state, order, id, "step_failed", &reason, None).await;
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
async fn finish(state: &AppState, order: &RunOrder, id: &ChangeId) -> Result<(), ApiError> {
    let store = &order.store();
    let now = state.clock.now();
    let audit_size = order.audit_size().await?;
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
            // The text quotes the request: sealed under the requester's key.
            about: Some(change.requester.clone()),
        })
        .collect())
}

/// Runs one step outside a change (a containment action): snapshot, then apply. Returns whether
/// it succeeded and what happened, snapshot included.
pub async fn run_action(
    state: &AppState,
    order: &RunOrder,
    subject: (&str, &str),
    step: &PlanStep,
) -> (bool, Value) {
    tracing::info!(subject = %subject.1, step = %step.name, ordered_by = %order.ordered_by(), "running an action");
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
    order: &RunOrder,
    id: &ChangeId,
    trigger: &str,
    reason: &str,
    by: Option<Requested<'_>>,
) -> Result<(), ApiError> {
    let (who, roles) = match &by {
        Some(r) => (r.who.clone(), r.roles.clone()),
        None => (system(), system_roles()),
    };
    let store = &order.store();
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
