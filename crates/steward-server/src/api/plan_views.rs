//! Wire types for a change's plan — its backup, the pipeline that raised it, the typed steps
//! executors run and the checks that verify them — and the journal of running it (each step's
//! status and outcome, the verification checks' results, the rollback).
//!
//! Like [`super::views`], these mirror the domain types on purpose and keep their keys: the CLI
//! and integrations read them, and `steward_core` may change shape without breaking them. Each
//! constructor takes its domain record apart field by field, so a field added to the domain does
//! not compile until it is given (or refused) a place on the wire. A `serde_json::Value` is left
//! only where the content is a document someone else wrote: a webhook step's body, and what an
//! executor recorded (a step's snapshot, result and undo).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use steward_core::execution::{
    Action, Check, CheckState, CheckStatus, ComplianceWebhook, Direction, Execution, Invocation,
    PlanStep, PrometheusSource, RollbackRun, StepRun, StepStatus, Verification, VerificationRun,
};
use steward_core::submission::{Backup, PipelineRef};
use utoipa::ToSchema;

/// The backup or snapshot a change can be restored from.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BackupView {
    /// A snapshot id, an object URI, a registry version.
    pub reference: String,
    /// When a restore from it was last tested; null: never verified.
    pub verified_at: Option<DateTime<Utc>>,
}

impl From<&Backup> for BackupView {
    fn from(b: &Backup) -> Self {
        let Backup {
            reference,
            verified_at,
        } = b;
        BackupView {
            reference: reference.clone(),
            verified_at: *verified_at,
        }
    }
}

/// The CI/CD run a change came from.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PipelineView {
    pub commit: String,
    /// A URL, or the CI system's run id.
    pub run: String,
    /// `sha256:<64 hex>`, when the pipeline knows it.
    pub artifact_digest: Option<String>,
}

impl From<&PipelineRef> for PipelineView {
    fn from(p: &PipelineRef) -> Self {
        let PipelineRef {
            commit,
            run,
            artifact_digest,
        } = p;
        PipelineView {
            commit: commit.clone(),
            run: run.clone(),
            artifact_digest: artifact_digest.clone(),
        }
    }
}

/// A program with arguments, run without a shell.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvocationView {
    pub program: String,
    pub args: Vec<String>,
}

impl From<&Invocation> for InvocationView {
    fn from(i: &Invocation) -> Self {
        let Invocation { program, args } = i;
        InvocationView {
            program: program.clone(),
            args: args.clone(),
        }
    }
}

/// One step of a change's plan: its name, and its `kind` with that kind's parameters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanStepView {
    /// Unique within the change: `promote`, `tag-release`.
    pub name: String,
    #[serde(flatten)]
    pub action: StepActionView,
}

/// What one step does.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepActionView {
    /// Points a registered model's alias at a version.
    MlflowAlias {
        tracking_uri: String,
        model: String,
        alias: String,
        version: String,
    },
    /// Sets tags on a registered model, or on one of its versions.
    MlflowTags {
        tracking_uri: String,
        model: String,
        version: Option<String>,
        tags: BTreeMap<String, String>,
    },
    /// A signed three-phase webhook call; `secret` names a secret the server holds.
    Webhook {
        url: String,
        secret: String,
        /// What the requester asked to send (free-form).
        body: Value,
        timeout_seconds: u64,
        retries: u32,
    },
    /// A program with arguments; `undo` is its declared rollback.
    Command {
        program: String,
        args: Vec<String>,
        undo: Option<InvocationView>,
        timeout_seconds: u64,
    },
}

impl From<&PlanStep> for PlanStepView {
    fn from(s: &PlanStep) -> Self {
        let PlanStep { name, action } = s;
        let action = match action {
            Action::MlflowAlias {
                tracking_uri,
                model,
                alias,
                version,
            } => StepActionView::MlflowAlias {
                tracking_uri: tracking_uri.clone(),
                model: model.clone(),
                alias: alias.clone(),
                version: version.clone(),
            },
            Action::MlflowTags {
                tracking_uri,
                model,
                version,
                tags,
            } => StepActionView::MlflowTags {
                tracking_uri: tracking_uri.clone(),
                model: model.clone(),
                version: version.clone(),
                tags: tags.clone(),
            },
            Action::Webhook {
                url,
                secret,
                body,
                timeout_seconds,
                retries,
            } => StepActionView::Webhook {
                url: url.clone(),
                secret: secret.clone(),
                body: body.clone(),
                timeout_seconds: *timeout_seconds,
                retries: *retries,
            },
            Action::Command {
                program,
                args,
                undo,
                timeout_seconds,
            } => StepActionView::Command {
                program: program.clone(),
                args: args.clone(),
                undo: undo.as_ref().map(InvocationView::from),
                timeout_seconds: *timeout_seconds,
            },
        };
        PlanStepView {
            name: name.clone(),
            action,
        }
    }
}

/// How long verification runs after the steps, and what it checks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerificationView {
    pub period_seconds: u64,
    pub checks: Vec<CheckView>,
}

/// Which way a metric is good.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectionView {
    HigherIsBetter,
    LowerIsBetter,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PrometheusSourceView {
    pub url: String,
    /// PromQL returning one series.
    pub query: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ComplianceWebhookView {
    pub url: String,
    /// The name of a server-held secret the call is signed with.
    pub secret: String,
}

/// One check run while the change is under verification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckView {
    /// A metric against its pre-change baseline.
    Metric {
        name: String,
        labels: BTreeMap<String, String>,
        direction: DirectionView,
        max_degradation_percent: f64,
        baseline_seconds: u64,
        prometheus: Option<PrometheusSourceView>,
    },
    /// User complaints per hour.
    Complaints {
        metric: String,
        labels: BTreeMap<String, String>,
        max_per_hour: f64,
    },
    /// A compliance test: a command (exit 0 passes) or a webhook.
    Compliance {
        command: Option<InvocationView>,
        webhook: Option<ComplianceWebhookView>,
        timeout_seconds: u64,
    },
    /// Security controls still report from every target.
    SecurityControls {
        metric: String,
        max_silence_seconds: u64,
    },
}

impl From<&Check> for CheckView {
    fn from(c: &Check) -> Self {
        match c {
            Check::Metric {
                name,
                labels,
                direction,
                max_degradation_percent,
                baseline_seconds,
                prometheus,
            } => CheckView::Metric {
                name: name.clone(),
                labels: labels.clone(),
                direction: match direction {
                    Direction::HigherIsBetter => DirectionView::HigherIsBetter,
                    Direction::LowerIsBetter => DirectionView::LowerIsBetter,
                },
                max_degradation_percent: *max_degradation_percent,
                baseline_seconds: *baseline_seconds,
                prometheus: prometheus.as_ref().map(|p| {
                    let PrometheusSource { url, query } = p;
                    PrometheusSourceView {
                        url: url.clone(),
                        query: query.clone(),
                    }
                }),
            },
            Check::Complaints {
                metric,
                labels,
                max_per_hour,
            } => CheckView::Complaints {
                metric: metric.clone(),
                labels: labels.clone(),
                max_per_hour: *max_per_hour,
            },
            Check::Compliance {
                command,
                webhook,
                timeout_seconds,
            } => CheckView::Compliance {
                command: command.as_ref().map(InvocationView::from),
                webhook: webhook.as_ref().map(|w| {
                    let ComplianceWebhook { url, secret } = w;
                    ComplianceWebhookView {
                        url: url.clone(),
                        secret: secret.clone(),
                    }
                }),
                timeout_seconds: *timeout_seconds,
            },
            Check::SecurityControls {
                metric,
                max_silence_seconds,
            } => CheckView::SecurityControls {
                metric: metric.clone(),
                max_silence_seconds: *max_silence_seconds,
            },
        }
    }
}

impl From<&Verification> for VerificationView {
    fn from(v: &Verification) -> Self {
        let Verification {
            period_seconds,
            checks,
        } = v;
        VerificationView {
            period_seconds: *period_seconds,
            checks: checks.iter().map(CheckView::from).collect(),
        }
    }
}

/// The journal of running a change's steps, verifying and rolling back.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecutionView {
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub steps: Vec<StepRunView>,
    /// Until when the server running it holds it; after that another may resume it.
    pub lease_until: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub verification: Option<VerificationRunView>,
    pub rollback: Option<RollbackRunView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatusView {
    Pending,
    /// Its snapshot is taken and it was sent; whether it finished is not yet recorded.
    Started,
    Applied,
    Failed,
    /// The server stopped while it ran: its effect is unknown.
    Interrupted,
    Undone,
    UndoFailed,
}

/// The journal of one step. Snapshot, result and undo are what the executor recorded.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepRunView {
    pub name: String,
    pub status: StepStatusView,
    /// What undoing needs, taken before the step ran.
    pub snapshot: Option<Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The apply phase's outcome (output, exit status, HTTP status).
    pub result: Option<Value>,
    /// The undo phase's outcome.
    pub undo: Option<Value>,
    /// How many times the step was sent.
    pub attempts: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatusView {
    Passing,
    /// Not enough data to judge yet.
    Inconclusive,
    Failed,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckStateView {
    pub check: String,
    pub status: CheckStatusView,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// Verification after the steps ran.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerificationRunView {
    /// When the steps finished: samples after this are "after the change".
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The audit log's size when verification began.
    pub audit_size_at_start: u64,
    pub checks: Vec<CheckStateView>,
    /// Set when the period ended with no trigger.
    pub passed_at: Option<DateTime<Utc>>,
}

/// Why and how the change was rolled back.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RollbackRunView {
    /// `manual`, `metric`, `complaints`, `compliance`, `security_controls`, `audit_gap`,
    /// `step_failed`.
    pub trigger: String,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether every undo succeeded.
    pub ok: Option<bool>,
}

impl From<&StepRun> for StepRunView {
    fn from(s: &StepRun) -> Self {
        let StepRun {
            name,
            status,
            snapshot,
            started_at,
            finished_at,
            result,
            undo,
            attempts,
        } = s;
        StepRunView {
            name: name.clone(),
            status: match status {
                StepStatus::Pending => StepStatusView::Pending,
                StepStatus::Started => StepStatusView::Started,
                StepStatus::Applied => StepStatusView::Applied,
                StepStatus::Failed => StepStatusView::Failed,
                StepStatus::Interrupted => StepStatusView::Interrupted,
                StepStatus::Undone => StepStatusView::Undone,
                StepStatus::UndoFailed => StepStatusView::UndoFailed,
            },
            snapshot: snapshot.clone(),
            started_at: *started_at,
            finished_at: *finished_at,
            result: result.clone(),
            undo: undo.clone(),
            attempts: *attempts,
        }
    }
}

impl From<&VerificationRun> for VerificationRunView {
    fn from(v: &VerificationRun) -> Self {
        let VerificationRun {
            from,
            until,
            audit_size_at_start,
            checks,
            passed_at,
        } = v;
        VerificationRunView {
            from: *from,
            until: *until,
            audit_size_at_start: *audit_size_at_start,
            checks: checks
                .iter()
                .map(|c| {
                    let CheckState {
                        check,
                        status,
                        detail,
                        at,
                    } = c;
                    CheckStateView {
                        check: check.clone(),
                        status: match status {
                            CheckStatus::Passing => CheckStatusView::Passing,
                            CheckStatus::Inconclusive => CheckStatusView::Inconclusive,
                            CheckStatus::Failed => CheckStatusView::Failed,
                        },
                        detail: detail.clone(),
                        at: *at,
                    }
                })
                .collect(),
            passed_at: *passed_at,
        }
    }
}

impl From<&RollbackRun> for RollbackRunView {
    fn from(r: &RollbackRun) -> Self {
        let RollbackRun {
            trigger,
            reason,
            by,
            at,
            finished_at,
            ok,
        } = r;
        RollbackRunView {
            trigger: trigger.clone(),
            reason: reason.clone(),
            by: by.to_string(),
            at: *at,
            finished_at: *finished_at,
            ok: *ok,
        }
    }
}

impl From<&Execution> for ExecutionView {
    fn from(e: &Execution) -> Self {
        let Execution {
            started_at,
            started_by,
            steps,
            lease_until,
            finished_at,
            verification,
            rollback,
        } = e;
        ExecutionView {
            started_at: *started_at,
            started_by: started_by.to_string(),
            steps: steps.iter().map(StepRunView::from).collect(),
            lease_until: *lease_until,
            finished_at: *finished_at,
            verification: verification.as_ref().map(VerificationRunView::from),
            rollback: rollback.as_ref().map(RollbackRunView::from),
        }
    }
}
