//! Verification after implementation: each check of a completed change's verification plan is
//! judged over readings (samples pushed by monitoring, or a Prometheus query), compliance tests
//! re-run, and the audit log's continuity; the first failing check rolls the change back.

use super::runner::{journal, rollback, secret};
use super::{COMPLIANCE_INTERVAL_SECONDS, system};
use crate::AppState;
use crate::api::changes::update_change;
use crate::auth::RunOrder;
use crate::error::ApiError;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use steward_connectors::command::{CommandStep, Invocation as CommandInvocation};
use steward_connectors::executor::Executor;
use steward_connectors::prometheus;
use steward_connectors::webhook::WebhookStep;
use steward_core::change::Change;
use steward_core::execution::{
    Check, CheckState, CheckStatus, Execution, Reading, VerificationRun,
};
use steward_core::execution::{judge_complaints, judge_metric, judge_security};
use steward_store::{SampleQuery, TenantStore};

/// Runs the checks of a change under verification: any failure rolls it back; the end of the
/// period with none verifies it.
pub async fn verify(state: &AppState, order: &RunOrder, change: &Change) -> Result<(), ApiError> {
    let store = order.store();
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
    let (status, detail) = match order.audit_gap(run.audit_size_at_start).await? {
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
        return rollback(state, order, &change.id, trigger, &reason, None).await;
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
                    Some(p) => prometheus::query_range(&p.url, &p.query, from, soon)
                        .await
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .map(|(at, value)| Reading { at, value })
                        .collect(),
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
