//! The CycloneDX export against the official 1.6 JSON schema: a realistic inventory is exported
//! and validated with `jsonschema`, the schema's cross-file references (SPDX licence ids, JSF
//! signatures) answered from the vendored copies in `tests/fixtures/cyclonedx/` (see its README),
//! never from the network. Broken copies of the export must fail, so a validator that accepted
//! anything could not pass these tests.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use steward_core::inventory::cyclonedx::{BomInput, ml_bom};
use steward_core::inventory::{
    Dataset, Deployment, Model, ModelVersion, Run, Templates, check_fields,
};
use steward_core::names::UserName;

#[path = "support/cyclonedx_schema.rs"]
mod cyclonedx_schema;
use cyclonedx_schema::{errors, validator};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    at("2026-11-29T12:00:00Z")
}

const MLFLOW: &str = "mlflow:https://mlflow.bank.example";
const CLUSTER: &str = "kubernetes:prod-eu";

fn mlflow_version(number: &str, digest: &str, run: &str, auc: f64) -> ModelVersion {
    ModelVersion {
        version: number.into(),
        artifact_uri: format!("s3://ml-artifacts/fraud-scoring/{number}/model"),
        digest: Some(format!("sha256:{digest}")),
        framework: Some("xgboost".into()),
        trained_at: Some(at("2026-11-20T02:00:00Z")),
        metrics: BTreeMap::from([
            ("auc".to_owned(), auc),
            ("precision_at_1pct".to_owned(), 0.62),
        ]),
        source: MLFLOW.into(),
        first_seen: now(),
        last_seen: now(),
        metadata: json!({"registered_name": "Fraud Scoring", "status": "READY",
                         "tags": {"task": "tabular-classification"}}),
        problems: vec![],
        run_id: Some(run.into()),
        aliases: if number == "3" {
            vec!["champion".into()]
        } else {
            vec![]
        },
        stage: None,
    }
}

/// Two models: a high-risk one under the EU AI Act with every field attested by cora and three
/// MLflow versions, and a low-risk one a file scan found, with only what the scan could read.
fn inventory() -> (Vec<Model>, Vec<Dataset>, Vec<Run>, Vec<Deployment>) {
    let cora = UserName::parse("cora").expect("user");
    let mut fraud = Model::new("fraud-scoring", now());
    let fields = check_fields(
        json!({
            "title": "Card fraud scoring",
            "purpose": "Scores card payments for the likelihood of fraud before authorisation.",
            "intended_use": "Payments operations hold high-scoring payments for analyst review.",
            "restrictions": "Not for credit decisions or customer profiling; not validated for corporate cards.",
            "inputs": "payment amount, merchant category, device and account history",
            "outputs": "a score from 0 to 1; above 0.8 the payment is held",
            "risk_tier": "high",
            "regulatory_tags": ["sox", "eu-ai-act-high-risk"],
            "owner": "mia",
            "developers": ["ana", "raj"],
            "validators": ["val"],
            "validation_last": "2026-06-01",
            "expected_validity": 365,
            "status": "production",
            "model_card": "# Card fraud scoring\n\nGradient-boosted trees over 90 days of payments.",
            "provider": "Example Bank AG",
            "contact": "ml-governance@bank.example",
            "markets": ["DE", "FR", "NL"],
            "architecture": "gradient-boosted trees",
            "framework": "xgboost",
            "license": "Proprietary",
        })
        .as_object()
        .expect("object"),
    )
    .expect("valid fields");
    fraud.attest(fields, &cora, now());
    fraud.see_version(mlflow_version("1", &"1a".repeat(32), "run-1", 0.88), now());
    fraud.see_version(mlflow_version("2", &"2b".repeat(32), "run-2", 0.9), now());
    fraud.see_version(mlflow_version("3", &"3C".repeat(32), "run-3", 0.931), now());

    let mut churn = Model::new("churn-forecast", now());
    churn.discover("license", json!("Apache-2.0"), "files:ml-01:/models", now());
    churn.discover(
        "architecture",
        json!("LlamaForCausalLM"),
        "files:ml-01:/models",
        now(),
    );
    churn.see_version(
        ModelVersion {
            version: "4e07408562be".into(),
            artifact_uri: "file:///models/churn/model.safetensors".into(),
            digest: Some(format!("sha256:4e07408562be{}", "0".repeat(52))),
            framework: Some("pytorch".into()),
            trained_at: None,
            metrics: BTreeMap::new(),
            source: "files:ml-01:/models".into(),
            first_seen: now(),
            last_seen: now(),
            metadata: json!({"format": "safetensors", "size": 1024,
                             "path": "churn/model.safetensors",
                             "metadata": {"architecture": "LlamaForCausalLM", "framework": "pytorch"}}),
            problems: vec!["header declares 3 tensors, found 2".into()],
            run_id: None,
            aliases: vec![],
            stage: None,
        },
        now(),
    );

    let dataset = |name: &str, digest: &str, uri: &str, kind: &str| Dataset {
        key: Dataset::key_for(name, Some(digest)),
        name: name.into(),
        digest: Some(digest.into()),
        uri: Some(uri.into()),
        source_type: Some(kind.into()),
        found_by: MLFLOW.into(),
        first_seen: now(),
        last_seen: now(),
    };
    let datasets = vec![
        // MLflow's own digest: eight hex characters, not a hash of the data.
        dataset(
            "payments-2026q3",
            "3f2a9b1c",
            "s3://ml-data/payments/2026q3.parquet",
            "s3",
        ),
        // A dataset whose source states a SHA-256 of its content; its location is a table.
        dataset(
            "chargebacks",
            &format!("sha256:{}", "c4".repeat(32)),
            "main.risk.chargebacks",
            "delta_table",
        ),
    ];
    let run = |id: &str, datasets: &[&Dataset]| Run {
        id: id.into(),
        found_by: MLFLOW.into(),
        name: Some(format!("nightly-{id}")),
        experiment: Some("fraud-scoring".into()),
        user: Some("ana".into()),
        started_at: Some(at("2026-11-20T01:00:00Z")),
        params: BTreeMap::from([
            ("max_depth".to_owned(), "6".to_owned()),
            ("eta".to_owned(), "0.1".to_owned()),
        ]),
        metrics: BTreeMap::from([("auc".to_owned(), 0.93)]),
        datasets: datasets.iter().map(|d| d.key.clone()).collect(),
        first_seen: now(),
        last_seen: now(),
    };
    let runs = vec![
        run("run-3", &[&datasets[0], &datasets[1]]),
        run("run-2", &[&datasets[0]]),
    ];

    let deployments = vec![
        Deployment {
            key: Deployment::key_for(CLUSTER, "kserve", "fraud", "fraud-scoring"),
            found_by: CLUSTER.into(),
            kind: "kserve".into(),
            namespace: "fraud".into(),
            name: "fraud-scoring".into(),
            model: None,
            version: None,
            format: Some("xgboost".into()),
            runtime: Some("kserve-xgbserver".into()),
            // Matched to version 3 by its artifact: the resource does not name the model.
            storage_uri: Some("s3://ml-artifacts/fraud-scoring/3/model/".into()),
            digest: None,
            url: Some("https://fraud-scoring.fraud.svc.cluster.local".into()),
            ready: true,
            labels: BTreeMap::new(),
            images: vec!["kserve/xgbserver:v0.14.0".into()],
            running: true,
            first_seen: now(),
            last_seen: now(),
        },
        Deployment {
            key: Deployment::key_for(CLUSTER, "kserve", "fraud", "fraud-scoring-canary"),
            found_by: CLUSTER.into(),
            kind: "kserve".into(),
            namespace: "fraud".into(),
            name: "fraud-scoring-canary".into(),
            model: Some("fraud-scoring".into()),
            version: Some("2".into()),
            format: None,
            runtime: None,
            storage_uri: None,
            digest: None,
            url: None,
            ready: false,
            labels: BTreeMap::new(),
            images: vec![],
            // Gone: the latest scan no longer found it, so it serves nothing.
            running: false,
            first_seen: now(),
            last_seen: now(),
        },
    ];
    (vec![fraud, churn], datasets, runs, deployments)
}

fn export() -> Value {
    let (models, datasets, runs, deployments) = inventory();
    let templates = Templates::standard();
    ml_bom(&BomInput {
        models: &models,
        datasets: &datasets,
        runs: &runs,
        deployments: &deployments,
        templates: &templates,
        serial: "urn:uuid:0195e3a4-7c1d-7a2b-9c3d-4e5f60718293".into(),
        now: now(),
        tool_version: "0.1.0",
    })
}

fn component<'b>(bom: &'b Value, bom_ref: &str) -> &'b Value {
    bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["bom-ref"] == bom_ref)
        .unwrap_or_else(|| panic!("no component {bom_ref} in {bom:#}"))
}

fn property<'b>(component: &'b Value, name: &str) -> Vec<&'b str> {
    component["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .filter(|p| p["name"] == name)
        .filter_map(|p| p["value"].as_str())
        .collect()
}

#[test]
fn the_export_of_a_realistic_inventory_is_a_valid_cyclonedx_1_6_bom() {
    let bom = export();
    if let Ok(path) = std::env::var("STEWARD_WRITE_BOM") {
        std::fs::write(&path, format!("{bom:#}")).expect("write the BOM");
    }
    let errors = errors(&validator(), &bom);
    assert!(
        errors.is_empty(),
        "the export breaks the CycloneDX 1.6 schema:\n{}\n\n{bom:#}",
        errors.join("\n")
    );
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(
        bom["serialNumber"],
        "urn:uuid:0195e3a4-7c1d-7a2b-9c3d-4e5f60718293"
    );
    assert_eq!(bom["version"], 1);
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "Steward");
    let kinds: Vec<(&str, &str)> = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default(),
                c["bom-ref"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let chargebacks = format!("dataset:chargebacks@sha256:{}", "c4".repeat(32));
    assert_eq!(
        kinds,
        [
            (
                "machine-learning-model",
                "model:churn-forecast@4e07408562be"
            ),
            ("machine-learning-model", "model:fraud-scoring@1"),
            ("machine-learning-model", "model:fraud-scoring@2"),
            ("machine-learning-model", "model:fraud-scoring@3"),
            ("data", chargebacks.as_str()),
            ("data", "dataset:payments-2026q3@3f2a9b1c"),
        ]
    );
}

#[test]
fn the_high_risk_model_carries_its_card_governance_and_lineage() {
    let bom = export();
    let v3 = component(&bom, "model:fraud-scoring@3");
    assert_eq!(
        v3["hashes"],
        json!([{"alg": "SHA-256", "content": "3c".repeat(32)}])
    );
    assert_eq!(
        v3["externalReferences"][0],
        json!({"type": "distribution", "url": "s3://ml-artifacts/fraud-scoring/3/model", "comment": "the model artifact"})
    );
    assert_eq!(v3["supplier"], json!({"name": "Example Bank AG"}));
    assert_eq!(
        v3["licenses"],
        json!([{"license": {"name": "Proprietary"}}])
    );
    assert_eq!(v3["tags"], json!(["sox", "eu-ai-act-high-risk"]));
    let card = &v3["modelCard"];
    assert_eq!(
        card["modelParameters"],
        json!({
            "task": "tabular-classification",
            "modelArchitecture": "gradient-boosted trees",
            "datasets": [
                {"ref": "dataset:payments-2026q3@3f2a9b1c"},
                {"ref": format!("dataset:chargebacks@sha256:{}", "c4".repeat(32))},
            ],
        })
    );
    assert_eq!(
        card["quantitativeAnalysis"]["performanceMetrics"],
        json!([{"type": "auc", "value": "0.931"}, {"type": "precision_at_1pct", "value": "0.62"}])
    );
    assert_eq!(
        card["considerations"]["useCases"],
        json!(["Payments operations hold high-scoring payments for analyst review."])
    );
    for (name, value) in [
        ("steward:risk_tier", "high"),
        ("steward:status", "production"),
        ("steward:owner", "mia"),
        ("steward:validation_last", "2026-06-01"),
        ("steward:validation_next", "2027-06-01"),
        ("steward:validation_current", "true"),
        ("steward:completeness", "100"),
        ("steward:needs_review", "false"),
        (
            "steward:provenance:risk_tier",
            "attested by cora at 2026-11-29T12:00:00Z",
        ),
        (
            "steward:provenance:validation_next",
            "derived from validation_last + expected_validity at 2026-11-29T12:00:00Z",
        ),
        (
            "steward:deployment",
            "kubernetes:prod-eu/kserve/fraud/fraud-scoring",
        ),
        ("steward:run:id", "run-3"),
    ] {
        assert_eq!(property(v3, name), [value], "{name}");
    }
    assert_eq!(property(v3, "steward:markets"), ["DE", "FR", "NL"]);
    assert!(property(v3, "steward:missing_fields").is_empty());
    let v2 = component(&bom, "model:fraud-scoring@2");
    assert!(
        property(v2, "steward:deployment").is_empty(),
        "the canary is gone"
    );

    let dependencies = bom["dependencies"].as_array().expect("dependencies");
    assert_eq!(
        dependencies,
        &[
            json!({"ref": "model:fraud-scoring@2", "dependsOn": ["dataset:payments-2026q3@3f2a9b1c"]}),
            json!({"ref": "model:fraud-scoring@3", "dependsOn": [
                "dataset:payments-2026q3@3f2a9b1c",
                format!("dataset:chargebacks@sha256:{}", "c4".repeat(32)),
            ]}),
        ],
        "version 1's run is not in the inventory, so its lineage is unknown"
    );
}

#[test]
fn datasets_keep_short_mlflow_digests_as_properties_and_real_hashes_as_hashes() {
    let bom = export();
    let payments = component(&bom, "dataset:payments-2026q3@3f2a9b1c");
    assert!(payments.get("hashes").is_none());
    assert_eq!(property(payments, "steward:digest"), ["3f2a9b1c"]);
    assert_eq!(
        payments["data"][0]["contents"]["url"],
        "s3://ml-data/payments/2026q3.parquet"
    );
    let chargebacks = component(
        &bom,
        &format!("dataset:chargebacks@sha256:{}", "c4".repeat(32)),
    );
    assert_eq!(chargebacks["hashes"][0]["alg"], "SHA-256");
    assert_eq!(
        property(chargebacks, "steward:location"),
        ["main.risk.chargebacks"]
    );
}

/// Makes a valid BOM invalid in one way.
type Breaks = fn(&mut Value);

#[test]
fn broken_boms_fail_validation_so_the_validator_is_known_to_work() {
    let validator = validator();
    let valid = export();
    assert!(errors(&validator, &valid).is_empty());

    let broken: [(&str, Breaks); 7] = [
        ("a component type outside the enum", |bom| {
            bom["components"][0]["type"] = json!("ml-model");
        }),
        ("a hash algorithm outside the enum", |bom| {
            bom["components"][1]["hashes"][0]["alg"] = json!("sha256");
        }),
        (
            "a licence id that SPDX does not list (the spdx file is used)",
            |bom| {
                bom["components"][1]["licenses"] = json!([{"license": {"id": "Not-A-Licence"}}]);
            },
        ),
        ("a metric value that is a number", |bom| {
            bom["components"][1]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"][0]["value"] =
                json!(0.9);
        }),
        ("a field CycloneDX does not have", |bom| {
            bom["components"][1]["riskTier"] = json!("high");
        }),
        ("a reference URL that is not an IRI", |bom| {
            bom["components"][1]["externalReferences"][0]["url"] = json!("s3://bucket/with space");
        }),
        ("a timestamp that is not a date-time", |bom| {
            bom["metadata"]["timestamp"] = json!("29/11/2026");
        }),
    ];
    for (what, breaks) in broken {
        let mut bom = valid.clone();
        breaks(&mut bom);
        assert!(
            !errors(&validator, &bom).is_empty(),
            "{what}: the validator accepted it"
        );
    }

    let mut signed = valid.clone();
    signed["signature"] = json!({"algorithm": "RS256"});
    assert!(
        !errors(&validator, &signed).is_empty(),
        "a JSF signature without a value (the jsf file is used)"
    );
}
