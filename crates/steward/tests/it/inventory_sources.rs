//! One inventory scan over every kind of source at once — a directory of model files, a real
//! MLflow registry, a Kubernetes cluster, and an MLflow address nothing answers — then
//! reconciliation, lineage, "who approved it" now and on a past date, and a rescan in which a
//! deployment has gone.
//!
//! No Kubernetes API server can run on this machine: the cluster is a local HTTP server that
//! answers the list requests the `kube` client makes with response bodies shaped as a real API
//! server's (see `steward-discovery/tests/kubernetes.rs` for paging, errors and CRDs that are not
//! installed).

use crate::helpers::{Backend, TestApp, TestDb, cast, change, id, run_steward};
use crate::mlflow::MlflowServer;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use chrono::Duration;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use steward_discovery::samples;

/// The InferenceServices the fake cluster serves; the test changes them between scans.
type Isvcs = Arc<Mutex<Vec<Value>>>;

async fn api(State(isvcs): State<Isvcs>, uri: Uri) -> axum::response::Response {
    let list = |kind: &str, api_version: &str, items: Vec<Value>| {
        axum::Json(json!({"apiVersion": api_version, "kind": kind,
                          "metadata": {"resourceVersion": "48211", "continue": ""}, "items": items}))
        .into_response()
    };
    let path = uri.path();
    if path.ends_with("/inferenceservices") {
        let items = isvcs.lock().expect("lock").clone();
        list("InferenceServiceList", "serving.kserve.io/v1beta1", items)
    } else if path.ends_with("/pods") {
        list("PodList", "v1", Vec::new())
    } else {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "the server could not find the requested resource",
                            "reason": "NotFound", "details": {}, "code": 404});
        (StatusCode::NOT_FOUND, axum::Json(status)).into_response()
    }
}

fn isvc(name: &str, labels: Value, storage_uri: &str, format: &str) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name, "namespace": "ml-prod", "uid": uuid::Uuid::now_v7().to_string(),
            "resourceVersion": "48190", "generation": 1,
            "creationTimestamp": "2026-11-02T09:14:51Z",
            "labels": labels,
            "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
        },
        "spec": {"predictor": {"model": {"modelFormat": {"name": format},
                                          "runtime": format!("kserve-{format}server"),
                                          "storageUri": storage_uri}}},
        "status": {
            "url": format!("http://{name}.ml-prod.example.com"),
            "address": {"url": format!("http://{name}.ml-prod.svc.cluster.local")},
            "conditions": [
                {"type": "IngressReady", "status": "True", "lastTransitionTime": "2026-11-02T09:15:40Z"},
                {"type": "PredictorReady", "status": "True", "lastTransitionTime": "2026-11-02T09:15:39Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-02T09:15:40Z"}
            ],
            "modelStatus": {"states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                            "transitionStatus": "UpToDate"},
            "observedGeneration": 1
        }
    })
}

/// Starts the fake API server; returns its kubeconfig path.
async fn fake_cluster(dir: &std::path::Path, isvcs: Isvcs) -> std::path::PathBuf {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(api).with_state(isvcs);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: other\n\
             clusters:\n- name: prod\n  cluster:\n    server: http://{addr}\n\
             - name: other\n  cluster:\n    server: http://127.0.0.1:1\n\
             users:\n- name: scanner\n  user:\n    token: not-a-secret\n\
             contexts:\n- name: prod-eu\n  context:\n    cluster: prod\n    user: scanner\n\
             - name: other\n  context:\n    cluster: other\n    user: scanner\n"
        ),
    )
    .expect("kubeconfig");
    kubeconfig
}

fn json_of(run: &crate::helpers::Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

fn kinds(findings: &Value) -> Vec<(String, String)> {
    // A page's items, or a scan report's bare array.
    let mut out: Vec<(String, String)> = findings
        .get("items")
        .unwrap_or(findings)
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let kind = f["kind"].as_str().unwrap_or("").to_owned();
            // An orphan's model is whatever the resource calls it, if anything.
            let model = match kind.as_str() {
                "orphan" => String::new(),
                _ => f["model"].as_str().unwrap_or("").to_owned(),
            };
            (kind, model)
        })
        .collect();
    out.sort();
    out
}

async fn every_source_in_one_scan_then_reconciliation_lineage_and_approvals(backend: Backend) {
    let mlflow = MlflowServer::get().await;
    let prefix = format!("inv{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    // MLflow: a run that read two datasets produced fraud v1; v2 is the champion.
    let experiment = mlflow.experiment(&prefix).await;
    let run_id = mlflow
        .run(
            &experiment,
            &[("max_depth", "6")],
            &[("auc", 0.91)],
            &[("mlflow.runName", "fraud-oct")],
        )
        .await;
    mlflow
        .log_dataset(
            &run_id,
            "transactions-oct",
            "a1b2c3d4",
            "s3://data/tx/2026-10",
        )
        .await;
    mlflow
        .log_dataset(
            &run_id,
            "chargebacks-oct",
            "e5f6a7b8",
            "s3://data/cb/2026-10",
        )
        .await;
    let fraud = format!("{prefix}-fraud");
    mlflow.create_model(&fraud).await;
    assert_eq!(mlflow.version_of_run(&fraud, &run_id).await, "1");
    assert_eq!(mlflow.version_of_run(&fraud, &run_id).await, "2");
    mlflow.set_alias(&fraud, "champion", "2").await;
    mlflow
        .set_model_tag(&fraud, "steward.risk_tier", "high")
        .await;
    let churn = format!("{prefix}-churn");
    mlflow.create_model(&churn).await;
    mlflow.version_of_run(&churn, &run_id).await;
    mlflow.set_model_tag(&churn, "status", "production").await;

    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // Files: a credit model on disk.
    let models = db.dir.path().join("models");
    std::fs::create_dir_all(models.join("credit")).expect("dir");
    std::fs::write(
        models.join("credit/model.safetensors"),
        samples::safetensors(&[("dense.weight", "F32", &[4, 8])], &[]),
    )
    .expect("write");
    // Kubernetes: fraud served from the registry, credit pinned to another artifact, and a
    // model nobody registered.
    let isvcs: Isvcs = Arc::default();
    let kubeconfig = fake_cluster(db.dir.path(), isvcs.clone()).await;
    let scan = || {
        run_steward(
            &app.base,
            &c.mia,
            &[
                "inventory",
                "scan",
                "--files",
                &models.display().to_string(),
                "--mlflow",
                &mlflow.url,
                "--mlflow-prefix",
                &prefix,
                "--mlflow",
                "http://127.0.0.1:9",
                "--kubeconfig",
                &kubeconfig.display().to_string(),
                "--context",
                "prod-eu",
                "--output",
                "json",
            ],
        )
    };
    let first = scan(); // no deployments yet: learn the credit version's name
    let report = json_of(&first);
    assert_eq!(first.code, 1, "one source failed: {}", first.stderr);
    assert!(
        first
            .stderr
            .contains("1 of 4 source(s) could not be scanned"),
        "{}",
        first.stderr
    );
    let sources = report["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 4);
    let failed = &sources[2];
    assert_eq!(failed["ok"], false);
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach MLflow at http://127.0.0.1:9")),
        "{failed}"
    );
    assert_eq!(sources[0]["created"], json!(["credit"]));
    assert_eq!(sources[1]["created"], json!([churn, fraud]));
    assert_eq!(sources[1]["datasets"], 2);
    assert_eq!(sources[3]["ok"], true, "{}", sources[3]);
    let (_, credit) = app.get("/api/v1/models/credit", &c.rita).await;
    let credit_version = credit["versions"][0]["version"]
        .as_str()
        .expect("a version")
        .to_owned();

    *isvcs.lock().expect("lock") = vec![
        isvc(
            "fraud",
            json!({"app.kubernetes.io/name": fraud}),
            &format!("models:/{fraud}/2"),
            "sklearn",
        ),
        isvc(
            "credit",
            json!({"app.kubernetes.io/name": "credit", "app.kubernetes.io/version": credit_version}),
            &format!(
                "oci://registry.example.com/models/credit@sha256:{}",
                "0".repeat(64)
            ),
            "pytorch",
        ),
        isvc("shadow", json!({}), "s3://scratch/shadow-model", "xgboost"),
    ];
    let second = json_of(&scan());
    assert_eq!(second["sources"][3]["deployments"], 3, "{second:#}");
    assert_eq!(
        kinds(&second["findings"]),
        [
            ("digest_mismatch", "credit"),
            ("in_production_without_change", fraud.as_str()),
            ("not_running", churn.as_str()),
            ("orphan", ""),
            ("unapproved", "credit"),
            ("unapproved", fraud.as_str()),
            ("validation_expired", "credit"),
            ("validation_expired", fraud.as_str()),
        ]
        .map(|(k, m)| (k.to_owned(), m.to_owned())),
        "{:#}",
        second["findings"]
    );
    let orphan = second["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "orphan")
        .expect("the orphan");
    assert!(
        orphan["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ml-prod/shadow")),
        "{orphan}"
    );
    // The churn model's MLflow tag stated its status: discovered, not attested.
    let (_, churn_model) = app.get(&format!("/api/v1/models/{churn}"), &c.rita).await;
    assert_eq!(churn_model["fields"]["status"], "production");
    assert_eq!(churn_model["provenance"]["status"]["by"], "discovered");

    // A completed change that promoted fraud v2 and a current validation clear its findings.
    let before_approval = app.clock.now();
    app.clock.advance(Duration::hours(1));
    let submitted = app
        .submit_ok(
            &c.rita,
            change(json!({
                "window": {"start": (app.clock.now() + Duration::days(1)).to_rfc3339(),
                           "end": (app.clock.now() + Duration::days(1) + Duration::hours(1)).to_rfc3339()},
                "steps": [{"name": "promote", "kind": "mlflow_alias", "tracking_uri": mlflow.url,
                           "model": fraud, "alias": "champion", "version": 2}],
            })),
        )
        .await;
    let change_id = id(&submitted);
    let (status, body) = app.decide(&c.mia, &change_id, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, findings) = app.get("/api/v1/inventory/reconciliation", &c.rita).await;
    assert!(
        kinds(&findings).contains(&("unapproved".to_owned(), fraud.clone())),
        "approved is not yet done: {findings:#}"
    );
    // Its window opens; the worker moves the alias and completes it.
    app.clock.advance(Duration::days(1) + Duration::seconds(1));
    crate::execution::wait_for_state(&app, &c.rita, &change_id, "completed").await;
    let today = app.clock.now().date_naive();
    let set = run_steward(
        &app.base,
        &c.mia,
        &[
            "inventory",
            "set",
            &fraud,
            &format!("validation_last={}", today - chrono::Days::new(10)),
            "expected_validity=365",
            "status=production",
        ],
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    let after_approval = app.clock.now();
    let (_, findings) = app.get("/api/v1/inventory/reconciliation", &c.rita).await;
    assert!(
        !kinds(&findings).iter().any(|(_, m)| m == &fraud),
        "fraud is approved and validated now: {findings:#}"
    );

    let shown = json_of(&run_steward(
        &app.base,
        &c.rita,
        &["inventory", "show", &fraud, "--output", "json"],
    ));
    assert_eq!(shown["production_version"], "2", "the champion alias");
    assert_eq!(shown["approval"]["change"], change_id.as_str());
    assert_eq!(shown["approval"]["approvers"], json!(["mia"]));
    assert_eq!(shown["deployments"][0]["name"], "fraud");
    assert_eq!(shown["deployments"][0]["serves_version"], "2");
    assert_eq!(shown["versions"][0]["run_id"], run_id.as_str());
    let edges: Vec<(String, String)> = shown["lineage"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap_or("").to_owned(),
                e["to"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        (
            "dataset:transactions-oct@a1b2c3d4".to_owned(),
            format!("run:{run_id}"),
        ),
        (
            "dataset:chargebacks-oct@e5f6a7b8".to_owned(),
            format!("run:{run_id}"),
        ),
        (format!("run:{run_id}"), format!("version:{fraud}/2")),
        (
            format!("version:{fraud}/2"),
            "deployment:kubernetes:prod-eu/kserve/ml-prod/fraud".to_owned(),
        ),
    ] {
        assert!(edges.contains(&expected), "{expected:?} in {edges:?}");
    }
    let text = run_steward(&app.base, &c.rita, &["inventory", "show", &fraud]);
    assert!(
        text.stdout
            .contains(&format!("approved by:       mia in {change_id}")),
        "{}",
        text.stdout
    );

    // The report and the ML-BOM, as a user writes them to files.
    let bom_path = db.dir.path().join("bom.json");
    let exported = run_steward(
        &app.base,
        &c.rita,
        &[
            "inventory",
            "export",
            "--format",
            "cyclonedx",
            "--out",
            &bom_path.display().to_string(),
        ],
    );
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let bom: Value = serde_json::from_str(&std::fs::read_to_string(&bom_path).expect("bom"))
        .expect("the BOM is JSON");
    let problems = crate::cyclonedx_schema::errors(&crate::cyclonedx_schema::validator(), &bom);
    assert!(
        problems.is_empty(),
        "not valid CycloneDX 1.6: {problems:#?}"
    );
    let components = bom["components"].as_array().expect("components");
    let fraud_v2 = components
        .iter()
        .find(|c| {
            c["type"] == "machine-learning-model"
                && c["name"] == fraud.as_str()
                && c["version"] == "2"
        })
        .expect("fraud v2 is a model component");
    assert!(
        components
            .iter()
            .any(|c| c["type"] == "data" && c["name"] == "transactions-oct"),
        "datasets are data components"
    );
    let deps = bom["dependencies"].as_array().expect("dependencies");
    assert!(
        deps.iter().any(|d| d["ref"] == fraud_v2["bom-ref"]
            && d["dependsOn"].as_array().is_some_and(|on| on.len() == 2)),
        "fraud v2 depends on the two datasets its run read: {deps:#?}"
    );
    let markdown = run_steward(&app.base, &c.rita, &["inventory", "report"]);
    assert_eq!(markdown.code, 0, "{}", markdown.stderr);
    for expected in ["credit", "registered as sha256:", "shadow", &churn] {
        assert!(
            markdown.stdout.contains(expected),
            "{expected} in\n{}",
            markdown.stdout
        );
    }
    let report = json_of(&run_steward(
        &app.base,
        &c.rita,
        &["inventory", "report", "--format", "json"],
    ));
    assert_eq!(report["totals"]["models"], 3, "{report:#}");
    let html = run_steward(
        &app.base,
        &c.rita,
        &["inventory", "report", "--format", "html"],
    );
    assert!(
        html.stdout.starts_with("<!DOCTYPE html>") || html.stdout.starts_with("<!doctype html>"),
        "{}",
        &html.stdout[..80.min(html.stdout.len())]
    );

    // In production then and now, and who approved it.
    let list = |at: chrono::DateTime<chrono::Utc>| {
        json_of(&run_steward(
            &app.base,
            &c.rita,
            &[
                "inventory",
                "list",
                "--in-production",
                "--at",
                &at.to_rfc3339(),
                "--output",
                "json",
            ],
        ))
    };
    let then = list(before_approval);
    let names: Vec<&str> = crate::helpers::items(&then)
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, [churn.as_str()], "fraud was not in production yet");
    assert_eq!(
        then["items"][0]["approval"],
        Value::Null,
        "no change approved churn"
    );
    let now = list(after_approval);
    let fraud_then = crate::helpers::items(&now)
        .iter()
        .find(|m| m["name"] == fraud.as_str())
        .expect("fraud in production");
    assert_eq!(fraud_then["production_version"], "2");
    assert_eq!(fraud_then["approval"]["approvers"], json!(["mia"]));
    assert_eq!(fraud_then["validation_current"], true);

    // The shadow model is taken down: the next scan marks it gone and the orphan clears.
    isvcs
        .lock()
        .expect("lock")
        .retain(|i| i["metadata"]["name"] != "shadow");
    let third = json_of(&scan());
    assert_eq!(
        third["sources"][3]["gone"],
        json!(["kubernetes:prod-eu/kserve/ml-prod/shadow"])
    );
    assert!(!kinds(&third["findings"]).iter().any(|(k, _)| k == "orphan"));
    let (_, running) = app.get("/api/v1/inventory/deployments", &c.rita).await;
    assert_eq!(crate::helpers::items(&running).len(), 2);
    let (_, all) = app
        .get("/api/v1/inventory/deployments?all=true", &c.rita)
        .await;
    let shadow = crate::helpers::items(&all)
        .iter()
        .find(|d| d["name"] == "shadow")
        .expect("kept");
    assert_eq!(shadow["running"], false);
    let (_, scans) = app.get("/api/v1/inventory/scans", &c.rita).await;
    assert_eq!(crate::helpers::items(&scans).len(), 3, "every scan is kept");
    // Requesters read the inventory but do not record scans.
    let refused = run_steward(
        &app.base,
        &c.rita,
        &[
            "inventory",
            "scan",
            "--files",
            &models.display().to_string(),
        ],
    );
    assert_eq!(refused.code, 1);
    app.stop().await;
}

async fn the_server_scans_its_configured_sources_on_a_schedule(backend: Backend) {
    let db = TestDb::new(backend).await;
    let models = db.dir.path().join("models");
    std::fs::create_dir_all(models.join("scoring")).expect("dir");
    std::fs::write(
        models.join("scoring/model.safetensors"),
        samples::safetensors(&[("w", "F32", &[2, 2])], &[]),
    )
    .expect("write");
    let mut config = crate::helpers::config(&db);
    config.inventory_scans = Some(steward_server::inventory::ScanSchedule {
        sources: vec![
            steward_server::inventory::SourceSpec::Files {
                dir: models.clone(),
                headers_only: false,
            },
            steward_server::inventory::SourceSpec::Mlflow {
                url: "http://127.0.0.1:9".into(),
                prefix: None,
            },
        ],
        every: std::time::Duration::from_secs(3600),
        tenant: steward_core::TenantId::default_tenant(),
    });
    let app = TestApp::spawn_with(config, steward_server::Clock::default()).await;
    let reader = app.user("rita", &["requester"]).await;
    let mut scans = Value::Null;
    for _ in 0..100 {
        scans = app.get("/api/v1/inventory/scans", &reader).await.1;
        if scans["items"].as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let scan = &scans["items"][0];
    assert_eq!(scan["actor"], "steward", "{scans:#}");
    assert_eq!(scan["sources"][0]["created"], json!(["scoring"]));
    assert_eq!(
        scan["sources"][1]["ok"], false,
        "the unreachable source failed alone"
    );
    let (_, model) = app.get("/api/v1/models/scoring", &reader).await;
    assert_eq!(model["versions"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

crate::both_backends!(
    every_source_in_one_scan_then_reconciliation_lineage_and_approvals,
    the_server_scans_its_configured_sources_on_a_schedule
);
