//! Reconciliation: what the registry says against what runs. After every scan the inventory
//! compares running deployments with registered models and reports orphans (running, not
//! registered), production models that run nowhere, models running — or marked for
//! production — without a completed change that names them, expired validations, and running
//! artifacts whose digest differs from the registered version's.
//!
//! Attribution ("approved in CHG-7 by mia") follows one rule, [`change_covers`]: the change
//! reached `completed` (and was not rolled back or closed as failed since), and it names that
//! version — an MLflow step on that model and version, or a pipeline artifact digest equal to
//! the version's. A change that names only the model (a target of its name) vouches for no
//! version; it counts only where no version is known at all.

use super::{Deployment, Model, PRODUCTION_ALIASES, match_deployment, name_from};
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
    /// Running, but no completed change names that model version.
    Unapproved,
    /// Marked for production in the registry (a production alias or stage), but no completed
    /// change names that version or its digest.
    InProductionWithoutChange,
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
            FindingKind::InProductionWithoutChange => "in_production_without_change",
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

/// A model version as a change can name it: by its name in the registry, or by the digest of
/// its artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRef<'a> {
    pub version: &'a str,
    pub digest: Option<&'a str>,
}

/// The change that put a model version into service, and who approved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub change: String,
    pub title: String,
    pub state: ChangeState,
    /// The version the change names; `None` when it names only the model, which is said only
    /// of a model no version of which is known to be in production.
    pub version: Option<String>,
    /// Everyone who approved it, in order.
    pub approvers: Vec<String>,
    /// When it was approved (the last approval, or its submission for a pre-approved change).
    pub approved_at: Option<DateTime<Utc>>,
    /// When its implementation actually began; `None` when that was not recorded.
    pub implemented_at: Option<DateTime<Utc>>,
}

impl Approval {
    pub fn of(change: &Change, version: Option<&str>) -> Approval {
        let approvers: Vec<&crate::approval::GivenDecision> = change
            .decisions
            .iter()
            .filter(|d| d.decision == crate::approval::Decision::Approve)
            .collect();
        Approval {
            change: change.id.to_string(),
            title: change.request.title.clone(),
            state: change.state,
            version: version.map(str::to_owned),
            approvers: approvers.iter().map(|d| d.by.to_string()).collect(),
            approved_at: approvers.iter().map(|d| d.at).max().or(change.submitted_at),
            implemented_at: change.implemented_at(),
        }
    }
}

/// Whether `change` reached `completed` and still stands: completed, or closed with the outcome
/// `succeeded`. Approved, scheduled or implementing changes have not put anything in service
/// yet; failed or rolled-back ones took it out again.
pub fn completed(change: &Change) -> bool {
    match change.state {
        ChangeState::Completed => true,
        ChangeState::Closed => change.outcome.as_deref() == Some("succeeded"),
        _ => false,
    }
}

/// Whether `change` vouches for `model` at `version`: it [`completed`], and it names that
/// version ([`names_version`]). With no version (a deployment whose version is not known), a
/// change naming the model ([`names_model`]) is the best there is.
pub fn change_covers(change: &Change, model: &str, version: Option<VersionRef<'_>>) -> bool {
    completed(change)
        && match version {
            Some(version) => names_version(change, model, version),
            None => names_model(change, model),
        }
}

/// Whether `change` puts `version` of `model` into production: an `mlflow_alias` step that points
/// a production alias (`PRODUCTION_ALIASES`: champion, production …) of the model at it, or a
/// change that names the model and whose pipeline built exactly this artifact (its digest).
/// Moving a `challenger` alias or tagging a version vouches for nothing in production; a target
/// named after the model names no version. The change's declared environment is not asked: the
/// step that moved the production alias is what put the version there.
pub fn names_version(change: &Change, model: &str, version: VersionRef<'_>) -> bool {
    let by_step = change.request.steps.iter().any(|s| match &s.action {
        Action::MlflowAlias {
            model: m,
            version: v,
            alias,
            ..
        } => {
            name_from(m) == model
                && v == version.version
                && PRODUCTION_ALIASES.contains(&alias.to_ascii_lowercase().as_str())
        }
        _ => false,
    });
    let by_digest = match (
        version.digest,
        change
            .request
            .pipeline
            .as_ref()
            .and_then(|p| p.artifact_digest.as_deref()),
    ) {
        (Some(own), Some(built)) => own.eq_ignore_ascii_case(built) && names_model(change, model),
        _ => false,
    };
    by_step || by_digest
}

/// Whether `change` names `model` at all: an MLflow step on it, or a target named after it.
pub fn names_model(change: &Change, model: &str) -> bool {
    let by_step = change.request.steps.iter().any(|s| match &s.action {
        Action::MlflowAlias { model: m, .. } | Action::MlflowTags { model: m, .. } => {
            name_from(m) == model
        }
        _ => false,
    });
    by_step
        || change
            .request
            .targets
            .iter()
            .any(|t| name_from(t.as_str()) == model)
}

/// Who put `model` at `version` into service, as it stood at `at`: among the changes that cover
/// it ([`change_covers`]) and had taken effect by `at`, the one implemented last. A change takes
/// effect when its implementation actually began ([`Change::implemented_at`]); for one whose
/// start was not recorded, its last update is the latest it can have completed, so it counts
/// from then. `None` when no change covers it: the version is in production without one.
pub fn approval_at(
    changes: &[Change],
    model: &str,
    version: Option<VersionRef<'_>>,
    at: DateTime<Utc>,
) -> Option<Approval> {
    changes
        .iter()
        .filter(|c| change_covers(c, model, version))
        .map(|c| (c.implemented_at().unwrap_or(c.updated_at), c))
        .filter(|(effective, _)| *effective <= at)
        .max_by_key(|(effective, c)| (*effective, c.id.number()))
        .map(|(_, c)| Approval::of(c, version.map(|v| v.version)))
}

/// Compares the registry with what runs. `running` holds the deployments the latest scans found
/// running; `runtime_scanned` says whether any source that tells where models run was scanned
/// (without one, "registered but not running" cannot be judged). `changes` are the tenant's
/// changes: a version running or marked for production needs one that covers it
/// ([`change_covers`]).
pub fn reconcile(
    models: &[Model],
    running: &[Deployment],
    runtime_scanned: bool,
    changes: &[Change],
    today: NaiveDate,
) -> Vec<Finding> {
    let covered = |model: &str, version: Option<VersionRef<'_>>| {
        changes.iter().any(|c| change_covers(c, model, version))
    };
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
        let named = version.as_deref().map(|v| match registered {
            Some(r) => r.reference(),
            None => VersionRef {
                version: v,
                digest: d.digest.as_deref(),
            },
        });
        if !covered(&model.name, named) {
            findings.push(finding(
                FindingKind::Unapproved,
                match version.as_deref() {
                    Some(v) => format!(
                        "{place} runs {} v{v}, but no completed change names that version: \
                         raise a change that deploys it, or stop it",
                        model.name
                    ),
                    None => format!(
                        "{place} runs {}, but no completed change names the model: raise a \
                         change that deploys it, or stop it",
                        model.name
                    ),
                },
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
    for m in models {
        for v in m.versions.iter().filter(|v| v.marked_production()) {
            if covered(&m.name, Some(v.reference())) {
                continue;
            }
            let mark = v
                .aliases
                .iter()
                .filter(|a| PRODUCTION_ALIASES.contains(&a.to_ascii_lowercase().as_str()))
                .map(|a| format!("alias {a}"))
                .chain(
                    v.stage
                        .iter()
                        .filter(|s| s.eq_ignore_ascii_case("production"))
                        .map(|s| format!("stage {s}")),
                )
                .collect::<Vec<_>>()
                .join(", ");
            findings.push(Finding {
                kind: FindingKind::InProductionWithoutChange,
                model: Some(m.name.clone()),
                version: Some(v.version.clone()),
                deployment: None,
                detail: format!(
                    "{} v{} is marked for production ({mark}), but no completed change names \
                     that version or its digest: raise a change that promotes it (an \
                     mlflow_alias step to version {}), or move the mark back to the version \
                     a change promoted",
                    m.name, v.version, v.version
                ),
            });
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
    findings.sort_by(|a, b| {
        (a.kind, &a.model, &a.deployment, &a.version).cmp(&(
            b.kind,
            &b.model,
            &b.deployment,
            &b.version,
        ))
    });
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ModelVersion, Provenance};
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("t")
            .with_timezone(&Utc)
    }

    const DIGEST_7: &str =
        "sha256:7777777777777777777777777777777777777777777777777777777777777777";
    const DIGEST_8: &str =
        "sha256:8888888888888888888888888888888888888888888888888888888888888888";

    fn alias_step(model: &str, version: &str) -> Value {
        json!({"name": "promote", "kind": "mlflow_alias", "tracking_uri": "http://mlflow:5000",
               "model": model, "alias": "champion", "version": version})
    }

    /// A change `CHG-n` in `state` (with the outcome that state leaves), its request edited by
    /// `request`, approved by mia, implemented at `implemented` when given.
    fn change(n: u64, state: &str, request: Value, implemented: Option<&str>) -> Change {
        let mut doc = crate::submission::tests::valid_document();
        for (k, v) in request.as_object().expect("object") {
            doc[k] = v.clone();
        }
        let request = crate::submission::ChangeRequest::parse(&doc).expect("valid");
        let state = ChangeState::parse(state).expect("state");
        let mut change: Change = serde_json::from_value(json!({
            "id": format!("CHG-{n}"), "tenant": "default", "requester": "rita",
            "request": request, "classification": {"type": "normal", "reason": "x"},
            "risk": {"score": 10, "level": "low", "factors": []}, "state": state,
            "required_approvals": [],
            "decisions": [{"slot": "manager", "by": "mia", "decision": "approve",
                           "comment": "ok", "at": "2026-11-01T09:00:00Z"}],
            "approval_deadline": null, "scheduled_window": null, "implementer": null,
            "created_at": "2026-11-01T08:00:00Z", "submitted_at": "2026-11-01T08:00:00Z",
            "updated_at": "2026-11-20T00:00:00Z", "version": 1,
            "implementation_started_at": implemented,
        }))
        .expect("change");
        change.outcome = state.outcome().map(str::to_owned);
        change
    }

    /// Closes a change as its outcome left it.
    fn closed(mut change: Change) -> Change {
        change.state = ChangeState::Closed;
        change
    }

    /// Checks whether `change` covers `fraud-scoring` at `version` (with v7's or v8's digest).
    fn check(cases: &[(&str, Change, Option<&str>, bool)]) {
        for (what, change, version, expected) in cases {
            let version = version.map(|v| VersionRef {
                version: v,
                digest: Some(if v == "7" { DIGEST_7 } else { DIGEST_8 }),
            });
            assert_eq!(
                change_covers(change, "fraud-scoring", version),
                *expected,
                "{what}"
            );
        }
    }

    #[test]
    fn only_a_completed_change_naming_the_version_covers_it() {
        let promotes_7 = json!({"steps": [alias_step("Fraud Scoring", "7")]});
        let done = |request: &Value| change(1, "completed", request.clone(), None);
        check(&[
            (
                "an alias step to v7 covers v7",
                done(&promotes_7),
                Some("7"),
                true,
            ),
            ("and not v8", done(&promotes_7), Some("8"), false),
            (
                "a target named after the model names no version",
                done(&json!({})),
                Some("8"),
                false,
            ),
            (
                "but it names the model, when no version is known",
                done(&json!({})),
                None,
                true,
            ),
            (
                "a step on another model",
                done(&json!({"steps": [alias_step("churn", "7")]})),
                Some("7"),
                false,
            ),
            (
                "tags on v8 do not put v8 in production",
                done(&json!({"steps": [{"name": "label", "kind": "mlflow_tags",
                    "tracking_uri": "http://mlflow:5000", "model": "fraud-scoring",
                    "version": "8", "tags": {"validated": "yes"}}]})),
                Some("8"),
                false,
            ),
            (
                "moving the challenger alias to v8 does not either",
                done(&json!({"steps": [{"name": "try", "kind": "mlflow_alias",
                    "tracking_uri": "http://mlflow:5000", "model": "fraud-scoring",
                    "alias": "challenger", "version": "8"}]})),
                Some("8"),
                false,
            ),
            (
                "tags on the model name no version",
                done(&json!({"steps": [{"name": "label", "kind": "mlflow_tags",
                    "tracking_uri": "http://mlflow:5000", "model": "fraud-scoring",
                    "tags": {"team": "risk"}}]})),
                Some("8"),
                false,
            ),
            (
                "a pipeline that built v8's artifact names v8",
                done(&json!({"pipeline": {"commit": "abcdef1", "run": "ci/42",
                                          "artifact_digest": DIGEST_8}})),
                Some("8"),
                true,
            ),
            (
                "a pipeline that built v8's artifact for another model",
                done(
                    &json!({"targets": ["churn"], "pipeline": {"commit": "abcdef1", "run": "ci/42",
                                          "artifact_digest": DIGEST_8}}),
                ),
                Some("8"),
                false,
            ),
            (
                "a pipeline that built another artifact",
                done(&json!({"pipeline": {"commit": "abcdef1", "run": "ci/42",
                                          "artifact_digest": DIGEST_7}})),
                Some("8"),
                false,
            ),
            (
                "approved is not completed",
                change(1, "approved", promotes_7.clone(), None),
                Some("7"),
                false,
            ),
            (
                "implementing is not completed",
                change(
                    1,
                    "implementing",
                    promotes_7.clone(),
                    Some("2026-11-10T00:00:00Z"),
                ),
                Some("7"),
                false,
            ),
            (
                "failed",
                change(1, "failed", promotes_7.clone(), None),
                Some("7"),
                false,
            ),
            (
                "rolled back",
                change(1, "rolled_back", promotes_7.clone(), None),
                Some("7"),
                false,
            ),
            (
                "closed after completing",
                closed(done(&promotes_7)),
                Some("7"),
                true,
            ),
            (
                "closed after rolling back",
                closed(change(1, "rolled_back", promotes_7.clone(), None)),
                Some("7"),
                false,
            ),
        ]);
    }

    #[test]
    fn the_approval_then_is_the_covering_change_implemented_last_before_then() {
        let v7 = Some(VersionRef {
            version: "7",
            digest: Some(DIGEST_7),
        });
        let v8 = Some(VersionRef {
            version: "8",
            digest: Some(DIGEST_8),
        });
        let promotes = |n, v: &str, when: Option<&str>| {
            change(
                n,
                "completed",
                json!({"steps": [alias_step("fraud-scoring", v)]}),
                when,
            )
        };
        let changes = vec![
            promotes(1, "7", Some("2026-11-10T00:00:00Z")),
            // Named the model only: it vouches for no version.
            change(2, "completed", json!({}), Some("2026-11-15T00:00:00Z")),
            promotes(3, "7", Some("2026-11-12T00:00:00Z")),
            // Its start was not recorded: it counts from its last update.
            promotes(4, "8", None),
        ];
        let who = |version, when| {
            approval_at(&changes, "fraud-scoring", version, at(when)).map(|a| a.change)
        };
        assert_eq!(who(v7, "2026-11-09T00:00:00Z"), None, "not yet implemented");
        assert_eq!(who(v7, "2026-11-11T00:00:00Z").as_deref(), Some("CHG-1"));
        assert_eq!(who(v7, "2026-11-30T00:00:00Z").as_deref(), Some("CHG-3"));
        assert_eq!(
            who(v8, "2026-11-16T00:00:00Z"),
            None,
            "CHG-2 names no version"
        );
        assert_eq!(who(v8, "2026-11-20T00:00:00Z").as_deref(), Some("CHG-4"));
        let approval = approval_at(&changes, "fraud-scoring", v7, at("2026-11-11T00:00:00Z"))
            .expect("approved");
        assert_eq!(approval.approvers, ["mia"]);
        assert_eq!(approval.version.as_deref(), Some("7"));
        assert_eq!(approval.implemented_at, Some(at("2026-11-10T00:00:00Z")));
        let model_only = approval_at(&changes, "fraud-scoring", None, at("2026-11-16T00:00:00Z"))
            .expect("the model is named");
        assert_eq!(
            (model_only.change.as_str(), model_only.version),
            ("CHG-2", None)
        );
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
            // Named by its labels; validation lapsed; no change names it.
            deployment("churn-isvc", Some("churn"), "s3://elsewhere", None),
            // Nobody registered it.
            deployment("shadow", Some("shadow-model"), "s3://tmp/x", None),
        ];
        let promotes = |n, model: &str| {
            change(
                n,
                "completed",
                json!({"steps": [alias_step(model, "3")]}),
                Some("2026-11-02T00:00:00Z"),
            )
        };
        // churn's change only names the model, which covers its deployment of unknown version
        // but not its champion v3.
        let changes = vec![
            promotes(1, "fraud"),
            promotes(2, "credit"),
            change(3, "completed", json!({"targets": ["churn"]}), None),
        ];
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).expect("d");
        let findings = reconcile(&models, &running, true, &changes, today);
        let kinds: Vec<(FindingKind, Option<&str>)> = findings
            .iter()
            .map(|f| (f.kind, f.model.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                (FindingKind::Orphan, Some("shadow-model")),
                (FindingKind::NotRunning, Some("credit")),
                (FindingKind::InProductionWithoutChange, Some("churn")),
                (FindingKind::ValidationExpired, Some("churn")),
                (FindingKind::DigestMismatch, Some("fraud")),
            ]
        );
        assert!(
            findings[2].detail.contains("alias champion")
                && findings[2].detail.contains("raise a change"),
            "{:?}",
            findings[2]
        );
        assert!(
            findings[4].detail.contains("sha256:ff"),
            "{:?}",
            findings[4]
        );
        assert_eq!(findings[1].version.as_deref(), Some("3"));
        // Without churn's change, its deployment runs unapproved too.
        let fewer = reconcile(&models, &running, true, &changes[..2], today);
        assert!(
            fewer
                .iter()
                .any(|f| f.kind == FindingKind::Unapproved && f.model.as_deref() == Some("churn")),
            "{fewer:?}"
        );
        // Without a runtime source, "not running" cannot be judged.
        let without = reconcile(&models, &running, false, &changes, today);
        assert!(without.iter().all(|f| f.kind != FindingKind::NotRunning));
        // A deployment that is gone is not judged at all; the registry's marks still are.
        let mut gone = running.clone();
        gone.iter_mut().for_each(|d| d.running = false);
        let quiet = reconcile(&models, &gone, false, &changes, today);
        let kinds: Vec<FindingKind> = quiet.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::InProductionWithoutChange], "{quiet:?}");
    }

    /// The case: CHG-1 promoted v7 and completed; v8 was registered later, without a
    /// change, and marked production.
    #[test]
    fn a_version_promoted_without_a_change_is_not_attributed_to_the_last_one() {
        let mut fraud = model(
            "fraud-scoring",
            "production",
            DIGEST_7,
            Some(("2026-01-01", "2027-01-01")),
        );
        fraud.versions[0].version = "7".into();
        fraud.versions[0].aliases.clear();
        let mut v8 = fraud.versions[0].clone();
        v8.version = "8".into();
        v8.digest = Some(DIGEST_8.into());
        v8.aliases = vec!["champion".into()];
        fraud.versions.push(v8);
        let chg1 = change(
            1,
            "completed",
            json!({"steps": [alias_step("fraud-scoring", "7")]}),
            Some("2026-11-10T00:00:00Z"),
        );
        let changes = [chg1];
        let production = fraud.production_version().expect("v8").reference();
        assert_eq!(production.version, "8");
        assert_eq!(
            approval_at(
                &changes,
                "fraud-scoring",
                Some(production),
                at("2026-11-30T00:00:00Z")
            ),
            None
        );
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).expect("d");
        let findings = reconcile(std::slice::from_ref(&fraud), &[], false, &changes, today);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].kind, FindingKind::InProductionWithoutChange);
        assert_eq!(findings[0].version.as_deref(), Some("8"));
    }
}
