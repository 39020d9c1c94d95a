//! Reconciliation: what the registry says against what runs. After every scan the inventory
//! compares running deployments with registered models and reports orphans (running, not
//! registered), production models that run nowhere, models running without an approved change
//! or with an expired validation, and running artifacts whose digest differs from the
//! registered version's.

use super::{Deployment, Model, match_deployment, name_from};
use crate::change::Change;
use crate::execution::Action;
use crate::state::ChangeState;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Running, but no registered model matches it.
    Orphan,
    /// Registered for production, but no scanned cluster runs it.
    NotRunning,
    /// Running, but no approved change put that model (version) there.
    Unapproved,
    /// Running with a validation that is missing or past due.
    ValidationExpired,
    /// The running artifact's digest is not the registered version's.
    DigestMismatch,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Orphan => "orphan",
            FindingKind::NotRunning => "not_running",
            FindingKind::Unapproved => "unapproved",
            FindingKind::ValidationExpired => "validation_expired",
            FindingKind::DigestMismatch => "digest_mismatch",
        }
    }
}

/// One discrepancy between the registry and what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub model: Option<String>,
    pub version: Option<String>,
    /// The deployment's key.
    pub deployment: Option<String>,
    pub detail: String,
}

/// The change that approved a model (version) into service, and who approved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub change: String,
    pub title: String,
    pub state: ChangeState,
    /// Everyone who approved it, in order.
    pub approvers: Vec<String>,
    /// When it was approved (the last approval, or its submission for a pre-approved change).
    pub approved_at: Option<DateTime<Utc>>,
    /// When it began to take effect, once implemented.
    pub implemented_at: Option<DateTime<Utc>>,
}

impl Approval {
    pub fn of(change: &Change) -> Approval {
        let approvers: Vec<&crate::approval::GivenDecision> = change
            .decisions
            .iter()
            .filter(|d| d.decision == crate::approval::Decision::Approve)
            .collect();
        Approval {
            change: change.id.to_string(),
            title: change.request.title.clone(),
            state: change.state,
            approvers: approvers.iter().map(|d| d.by.to_string()).collect(),
            approved_at: approvers.iter().map(|d| d.at).max().or(change.submitted_at),
            implemented_at: crate::incident::implemented_at(change),
        }
    }
}

/// Whether `change` is an approved change to `model` (and to `version`, when given): it is
/// approved or further along without having failed, and it names the model (see
/// [`names_model`]).
pub fn change_covers(change: &Change, model: &str, version: Option<&str>) -> bool {
    let approved = match change.state {
        ChangeState::Approved
        | ChangeState::Scheduled
        | ChangeState::Implementing
        | ChangeState::Completed => true,
        ChangeState::Closed => change.outcome.as_deref() != Some("failed"),
        _ => false,
    };
    approved && names_model(change, model, version)
}

/// Whether an MLflow step of `change` names the model (and the version, for an alias move,
/// when `version` is given), or one of its targets is named after the model.
pub fn names_model(change: &Change, model: &str, version: Option<&str>) -> bool {
    let by_step = change.request.steps.iter().any(|s| match &s.action {
        Action::MlflowAlias {
            model: m,
            version: v,
            ..
        } => name_from(m) == model && version.is_none_or(|want| want == v),
        Action::MlflowTags {
            model: m,
            version: v,
            ..
        } => name_from(m) == model && (version.is_none() || v.as_deref() == version),
        _ => false,
    });
    by_step
        || change
            .request
            .targets
            .iter()
            .any(|t| name_from(t.as_str()) == model)
}

/// Who approved `model` (`version`) into service, as it stood at `at`: among the changes naming
/// it that had been approved by then, the one implemented last before `at`, else the one
/// approved last. A change rolled back after `at` still counts: it was the approval then.
pub fn approval_at(
    changes: &[Change],
    model: &str,
    version: Option<&str>,
    at: DateTime<Utc>,
) -> Option<Approval> {
    let approvals: Vec<Approval> = changes
        .iter()
        .filter(|c| {
            !matches!(
                c.state,
                ChangeState::Draft
                    | ChangeState::Submitted
                    | ChangeState::PendingApproval
                    | ChangeState::Rejected
                    | ChangeState::Cancelled
            )
        })
        .filter(|c| names_model(c, model, version))
        .map(Approval::of)
        .filter(|a| a.approved_at.is_some_and(|t| t <= at))
        .collect();
    approvals
        .iter()
        .filter(|a| a.implemented_at.is_some_and(|t| t <= at))
        .max_by_key(|a| a.implemented_at)
        .or_else(|| approvals.iter().max_by_key(|a| a.approved_at))
        .cloned()
}

/// Compares the registry with what runs. `running` holds the deployments the latest scans found
/// running; `runtime_scanned` says whether any source that tells where models run was scanned
/// (without one, "registered but not running" cannot be judged). `approved` answers whether an
/// approved change covers a model (version).
pub fn reconcile(
    models: &[Model],
    running: &[Deployment],
    runtime_scanned: bool,
    approved: &dyn Fn(&str, Option<&str>) -> bool,
    today: NaiveDate,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut serving: Vec<&str> = Vec::new();
    for d in running.iter().filter(|d| d.running) {
        let place = format!("{} {}/{}", d.kind, d.namespace, d.name);
        let Some((model, version)) = match_deployment(d, models) else {
            findings.push(Finding {
                kind: FindingKind::Orphan,
                model: d.model.clone(),
                version: d.version.clone(),
                deployment: Some(d.key.clone()),
                detail: format!(
                    "{place} serves {} which the inventory does not have",
                    d.model
                        .as_deref()
                        .or(d.storage_uri.as_deref())
                        .unwrap_or("a model")
                ),
            });
            continue;
        };
        serving.push(&model.name);
        let finding = |kind, detail: String| Finding {
            kind,
            model: Some(model.name.clone()),
            version: version.clone(),
            deployment: Some(d.key.clone()),
            detail,
        };
        let registered = version
            .as_deref()
            .and_then(|v| model.versions.iter().find(|mv| mv.version == v));
        if let Some(v) = version.as_deref()
            && registered.is_none()
        {
            findings.push(finding(
                FindingKind::Orphan,
                format!(
                    "{place} serves version {v} of {}, which the inventory does not have",
                    model.name
                ),
            ));
        }
        if !approved(&model.name, version.as_deref()) {
            findings.push(finding(
                FindingKind::Unapproved,
                format!(
                    "{place} runs {}{} without an approved change",
                    model.name,
                    version
                        .as_deref()
                        .map(|v| format!(" v{v}"))
                        .unwrap_or_default()
                ),
            ));
        }
        if !model.validation_current(today) {
            let due = model
                .fields
                .get("validation_next")
                .and_then(|v| v.as_str())
                .map(|d| format!("was due {d}"))
                .unwrap_or_else(|| "has never been recorded".to_owned());
            findings.push(finding(
                FindingKind::ValidationExpired,
                format!("{place} runs {} whose validation {due}", model.name),
            ));
        }
        if let (Some(running), Some(registered)) = (
            d.digest.as_deref(),
            registered.and_then(|v| v.digest.as_deref()),
        ) && running != registered
        {
            findings.push(finding(
                FindingKind::DigestMismatch,
                format!(
                    "{place} runs {running}, but {} v{} is registered as {registered}",
                    model.name,
                    version.as_deref().unwrap_or("?")
                ),
            ));
        }
    }
    if runtime_scanned {
        for m in models
            .iter()
            .filter(|m| m.status() == "production" && !serving.contains(&m.name.as_str()))
        {
            findings.push(Finding {
                kind: FindingKind::NotRunning,
                model: Some(m.name.clone()),
                version: m.production_version().map(|v| v.version.clone()),
                deployment: None,
                detail: format!(
                    "{} is registered for production but no scanned cluster runs it",
                    m.name
                ),
            });
        }
    }
    findings
        .sort_by(|a, b| (a.kind, &a.model, &a.deployment).cmp(&(b.kind, &b.model, &b.deployment)));
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ModelVersion, Provenance};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("t")
            .with_timezone(&Utc)
    }

    fn model(name: &str, status: &str, digest: &str, validated: Option<(&str, &str)>) -> Model {
        let now = at("2026-11-01T00:00:00Z");
        let mut m = Model::new(name, now);
        m.fields.insert("status".into(), json!(status));
        if let Some((last, next)) = validated {
            m.fields.insert("validation_last".into(), json!(last));
            m.fields.insert("validation_next".into(), json!(next));
            m.provenance.insert(
                "validation_next".into(),
                Provenance::Derived {
                    from: "test".into(),
                    at: now,
                },
            );
        }
        m.versions.push(ModelVersion {
            version: "3".into(),
            artifact_uri: format!("s3://models/{name}/3"),
            digest: Some(digest.into()),
            framework: None,
            trained_at: None,
            metrics: BTreeMap::new(),
            source: "mlflow:http://mlflow".into(),
            first_seen: now,
            last_seen: now,
            metadata: json!({}),
            problems: vec![],
            run_id: None,
            aliases: vec!["champion".into()],
            stage: None,
        });
        m
    }

    fn deployment(name: &str, model: Option<&str>, uri: &str, digest: Option<&str>) -> Deployment {
        let now = at("2026-11-20T00:00:00Z");
        Deployment {
            key: Deployment::key_for("kubernetes:prod", "kserve", "ml", name),
            found_by: "kubernetes:prod".into(),
            kind: "kserve".into(),
            namespace: "ml".into(),
            name: name.into(),
            model: model.map(str::to_owned),
            version: None,
            format: None,
            runtime: None,
            storage_uri: Some(uri.into()),
            digest: digest.map(str::to_owned),
            url: None,
            ready: true,
            labels: BTreeMap::new(),
            images: vec![],
            running: true,
            first_seen: now,
            last_seen: now,
        }
    }

    #[test]
    fn every_kind_of_discrepancy_is_found() {
        let models = vec![
            model(
                "fraud",
                "production",
                "sha256:aa",
                Some(("2026-01-01", "2027-01-01")),
            ),
            model(
                "churn",
                "production",
                "sha256:bb",
                Some(("2025-01-01", "2025-12-31")),
            ),
            model(
                "credit",
                "production",
                "sha256:cc",
                Some(("2026-01-01", "2027-01-01")),
            ),
        ];
        let running = vec![
            // Matched by its storage URI, but pinned to another artifact.
            deployment("fraud-isvc", None, "s3://models/fraud/3", Some("sha256:ff")),
            // Named by its labels; validation lapsed; no approved change.
            deployment("churn-isvc", Some("churn"), "s3://elsewhere", None),
            // Nobody registered it.
            deployment("shadow", Some("shadow-model"), "s3://tmp/x", None),
        ];
        let approved = |m: &str, _v: Option<&str>| m != "churn";
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).expect("d");
        let findings = reconcile(&models, &running, true, &approved, today);
        let kinds: Vec<(FindingKind, Option<&str>)> = findings
            .iter()
            .map(|f| (f.kind, f.model.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                (FindingKind::Orphan, Some("shadow-model")),
                (FindingKind::NotRunning, Some("credit")),
                (FindingKind::Unapproved, Some("churn")),
                (FindingKind::ValidationExpired, Some("churn")),
                (FindingKind::DigestMismatch, Some("fraud")),
            ]
        );
        assert!(
            findings[4].detail.contains("sha256:ff"),
            "{:?}",
            findings[4]
        );
        assert_eq!(findings[1].version.as_deref(), Some("3"));
        // Without a runtime source, "not running" cannot be judged.
        let without = reconcile(&models, &running, false, &approved, today);
        assert!(without.iter().all(|f| f.kind != FindingKind::NotRunning));
        // A deployment that is gone is not judged at all.
        let mut gone = running.clone();
        gone.iter_mut().for_each(|d| d.running = false);
        let quiet = reconcile(&models, &gone, false, &approved, today);
        assert!(quiet.is_empty(), "{quiet:?}");
    }
}
