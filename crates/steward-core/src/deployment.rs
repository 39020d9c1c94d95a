//! Deployments a pipeline reports for a change: evidence of when the change really took effect.
//!
//! A pipeline account never implements or completes a change — people do — but when a CI job
//! deploys an approved change, the moment the deployment started and finished *is* when the
//! change took effect, and incident correlation and the inventory must know it. So a pipeline (or
//! a verified GitLab webhook) records each deployment on the change as evidence: its status, the
//! target and environment, and the gate's verdict at that moment, so a deployment the gate would
//! have refused is recorded as the unapproved deployment it was rather than lost. Each record is
//! stamped with the server's clock when the report arrived; a pipeline's own idea of the time is
//! not trusted. [`Change::implemented_at`](crate::change::Change::implemented_at) takes the
//! earliest of the recorded start and the first deployment, and a person's later `implement`
//! keeps that earlier time.

use crate::change::{Change, Refused, Transition};
use crate::names::{TargetName, UserName};
use crate::target::Environment;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many deployment reports one change keeps; a pipeline stuck in a retry loop is refused
/// past this rather than growing the record without end.
pub const MAX_DEPLOYMENTS: usize = 200;

/// Where a reported deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Started,
    Succeeded,
    Failed,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Started => "started",
            DeploymentStatus::Succeeded => "succeeded",
            DeploymentStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeploymentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "started" => Ok(DeploymentStatus::Started),
            "succeeded" => Ok(DeploymentStatus::Succeeded),
            "failed" => Ok(DeploymentStatus::Failed),
            other => Err(format!(
                "'{other}' is not one of started, succeeded, failed"
            )),
        }
    }
}

/// One deployment report, as recorded on the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub status: DeploymentStatus,
    /// The target deployed to, when the report named one.
    pub target: Option<TargetName>,
    pub environment: Environment,
    /// The account or integration that reported it (`ci-deployer`, `gitlab`).
    pub by: UserName,
    /// When the report reached Steward: the server's clock.
    pub at: DateTime<Utc>,
    /// The gate's verdict for this change, target and environment at `at`.
    pub allowed: bool,
    pub reason: String,
    /// The pipeline run or job, as a link.
    pub run: Option<String>,
    /// The deployment's own id where the reporter has one (GitLab's `deployment_id`): a resent
    /// report with the same id and status is recorded once.
    #[serde(default)]
    pub external_id: Option<String>,
}

impl Change {
    /// Records a pipeline's deployment report. Every report is kept, allowed or not (an
    /// unapproved deployment is a fact an auditor must see); the returned transition leaves the
    /// state as it is and carries the report into the audit log. A resent report (same external
    /// id and status) is already recorded: `None`.
    pub fn record_deployment(
        &mut self,
        deployment: Deployment,
    ) -> Result<Option<Transition>, Refused> {
        if deployment.external_id.is_some()
            && self
                .deployments
                .iter()
                .any(|d| d.external_id == deployment.external_id && d.status == deployment.status)
        {
            return Ok(None);
        }
        if self.deployments.len() >= MAX_DEPLOYMENTS {
            return Err(Refused::Unmet(format!(
                "{} already holds {MAX_DEPLOYMENTS} deployment reports; record further deployments on a new change",
                self.id
            )));
        }
        let transition = Transition {
            action: format!("change.deployment_{}", deployment.status.as_str()),
            from: Some(self.state),
            to: self.state,
            actor: deployment.by.clone(),
            comment: None,
            policy: None,
            details: Some(serde_json::json!({
                "status": deployment.status,
                "target": deployment.target,
                "environment": deployment.environment,
                "allowed": deployment.allowed,
                "reason": deployment.reason,
                "run": deployment.run,
                "external_id": deployment.external_id,
            })),
        };
        self.deployments.push(deployment);
        Ok(Some(transition))
    }

    /// Whether a report is about this change taking effect where it was meant to: its own
    /// environment and (when the report names one) one of its own targets. A staging run of a
    /// production change is kept as evidence, but it is not when the change happened.
    fn deploys_this_change(&self, d: &Deployment) -> bool {
        d.environment == self.request.environment
            && d.target
                .as_ref()
                .is_none_or(|t| self.request.targets.contains(t))
    }

    /// When a pipeline first put this change into effect: the earliest report for its own
    /// environment and targets that started or succeeded (a success without a start report is
    /// known to have begun by then), allowed by the gate or not — an unapproved deployment still
    /// took effect.
    pub fn first_deployed_at(&self) -> Option<DateTime<Utc>> {
        self.deployments
            .iter()
            .filter(|d| d.status != DeploymentStatus::Failed && self.deploys_this_change(d))
            .map(|d| d.at)
            .min()
    }

    /// Whether the pipeline deployed this change as the gate allowed and it stands: an allowed
    /// start or success for its own environment and targets, and the latest such report is not a
    /// failure. A person recording `implement` afterwards is then not starting it late.
    pub fn deployed_as_allowed(&self) -> bool {
        let mut own = self
            .deployments
            .iter()
            .filter(|d| self.deploys_this_change(d));
        let latest_failed = own
            .clone()
            .next_back()
            .is_some_and(|d| d.status == DeploymentStatus::Failed);
        !latest_failed && own.any(|d| d.allowed && d.status != DeploymentStatus::Failed)
    }

    /// The start this report finishes: the latest `started` report for the same environment,
    /// target and external id with no finish after it. A finish is judged as its start was (a
    /// deployment that began inside the window and ended after it was not an unapproved one).
    pub fn open_start(
        &self,
        target: Option<&TargetName>,
        environment: Environment,
        external_id: Option<&str>,
    ) -> Option<&Deployment> {
        let same = |d: &&Deployment| {
            d.environment == environment
                && d.target.as_ref() == target
                && (external_id.is_none() || d.external_id.as_deref() == external_id)
        };
        let last = self.deployments.iter().rfind(same)?;
        (last.status == DeploymentStatus::Started).then_some(last)
    }

    /// When implementation ended, as recorded: the `complete`/`fail`/`rollback` step, else the
    /// last finish a pipeline reported for this change's environment and targets, once it had
    /// started.
    pub fn implementation_ended(&self) -> Option<DateTime<Utc>> {
        if self.implementation_ended_at.is_some() {
            return self.implementation_ended_at;
        }
        let started = self.first_deployed_at()?;
        self.deployments
            .iter()
            .filter(|d| d.status != DeploymentStatus::Started && self.deploys_this_change(d))
            .map(|d| d.at)
            .filter(|at| *at >= started)
            .max()
    }
}
