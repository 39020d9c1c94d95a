//! MLflow registry discovery (`steward_discovery::mlflow::scan`) against a real MLflow server.
//!
//! The server is shared with other tests, so each test registers models under a prefix of its
//! own and scans with that prefix: what it asserts — request counts included — is about its
//! models only.

use crate::mlflow::MlflowServer;
use steward_discovery::mlflow::{
    self, MlflowOptions, MlflowProgress, MlflowScan, MlflowScanError, MlflowStage,
};

fn unique_prefix(test: &str) -> String {
    format!("discovery-{test}-{}", uuid::Uuid::now_v7().simple())
}

async fn scan(url: &str, prefix: &str, page_size: u32) -> (MlflowScan, Vec<MlflowProgress>) {
    let options = MlflowOptions {
        page_size,
        name_prefix: Some(prefix.to_owned()),
        ..MlflowOptions::default()
    };
    let mut reports = Vec::new();
    let scan = mlflow::scan(url, &options, &mut |p| reports.push(p))
        .await
        .unwrap_or_else(|e| panic!("scan of {url}: {e}"));
    (scan, reports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_versions_come_through_every_page_with_their_aliases_and_tags() {
    let server = MlflowServer::get().await;
    let prefix = unique_prefix("paging");
    let mut names = vec![
        server.model(&prefix, 11).await,
        server.model(&prefix, 2).await,
    ];
    for _ in 0..5 {
        names.push(server.model(&prefix, 0).await);
    }
    let main = names[0].clone();
    server.set_alias(&main, "champion", "10").await;
    server.set_alias(&main, "stable", "10").await;
    server.set_alias(&main, "challenger", "11").await;
    server.set_model_tag(&main, "team", "fraud").await;
    server
        .set_version_tag(&main, "10", "validated", "true")
        .await;
    server.set_description(&main, "scores card payments").await;
    names.sort();

    // 7 models and 13 versions at 3 a page: 3 + 5 requests.
    let (first, reports) = scan(&server.url, &prefix, 3).await;
    assert_eq!(first.tracking_uri, server.url);
    let scanned: Vec<&str> = first.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(scanned, names, "every model, sorted by name");
    assert_eq!(first.requests, 8, "3 pages of models, 5 of versions");
    let last = reports.last().expect("progress reports");
    assert_eq!(
        (last.models, last.versions, last.runs, last.requests),
        (7, 13, 0, 8)
    );
    assert_eq!(reports.len(), 8, "one report a request");
    assert_eq!(reports[0].stage, MlflowStage::Models);
    assert_eq!(last.stage, MlflowStage::Versions);

    let model = first
        .models
        .iter()
        .find(|m| m.name == main)
        .expect("the model with aliases");
    assert_eq!(model.description.as_deref(), Some("scores card payments"));
    assert_eq!(model.tags, [("team".to_owned(), "fraud".to_owned())].into());
    assert_eq!(
        model.aliases,
        [
            ("challenger".to_owned(), "11".to_owned()),
            ("champion".to_owned(), "10".to_owned()),
            ("stable".to_owned(), "10".to_owned()),
        ]
        .into()
    );
    assert!(model.created_at.is_some() && model.updated_at >= model.created_at);
    let versions: Vec<&str> = model.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(
        versions,
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"],
        "in numeric order"
    );
    let ten = &model.versions[9];
    assert_eq!(ten.aliases, ["champion", "stable"]);
    assert_eq!(
        ten.tags,
        [("validated".to_owned(), "true".to_owned())].into()
    );
    assert_eq!(ten.source, format!("s3://models/{main}/10"));
    assert_eq!(ten.status, "READY");
    assert_eq!((ten.stage.as_deref(), ten.run_id.as_deref()), (None, None));
    assert!(ten.run.is_none() && ten.created_at.is_some());
    assert_eq!(model.versions[10].aliases, ["challenger"]);
    assert!(model.versions[0].aliases.is_empty() && model.versions[0].tags.is_empty());
    assert!(first.models.iter().skip(1).all(|m| m.aliases.is_empty()));

    let (second, _) = scan(&server.url, &prefix, 3).await;
    assert_eq!(
        second.models, first.models,
        "a second scan of an unchanged registry reads the same"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_carry_their_runs_found_in_a_few_batched_requests() {
    let server = MlflowServer::get().await;
    let prefix = unique_prefix("runs");
    let training = server.experiment(&prefix).await;
    let tuning = server.experiment(&prefix).await;
    let trained = server
        .run(
            &training,
            &[("learning_rate", "0.1"), ("max_depth", "6")],
            &[("auc", 0.91), ("auc", 0.93), ("loss", 0.2)],
            &[("team", "fraud")],
        )
        .await;
    let tuned = server
        .run(&tuning, &[("learning_rate", "0.05")], &[("auc", 0.94)], &[])
        .await;
    let deleted = server
        .run(&training, &[("learning_rate", "0.3")], &[], &[])
        .await;
    server.delete_run(&deleted).await;

    let fraud = server.model(&prefix, 0).await;
    for i in 0..12 {
        let run = if i % 2 == 0 { &trained } else { &tuned };
        server.version_of_run(&fraud, run).await;
    }
    let churn = server.model(&prefix, 0).await;
    server.version_of_run(&churn, &deleted).await;
    let elsewhere = "0123456789abcdef0123456789abcdef";
    server.version_of_run(&churn, elsewhere).await;
    let plain = server.model(&prefix, 1).await;

    let (scan, reports) = scan(&server.url, &prefix, 1000).await;
    let versions: usize = scan.models.iter().map(|m| m.versions.len()).sum();
    assert_eq!(versions, 15);
    // One page of models, one of versions, one of experiments (while the server has fewer than
    // 1000), one batch of runs: a fixed handful however many versions there are.
    assert!(
        scan.requests <= 5,
        "{} requests for {versions} versions and 3 runs",
        scan.requests
    );
    let last = reports.last().expect("progress reports");
    assert_eq!((last.stage, last.runs), (MlflowStage::Runs, 3));

    let fraud = scan
        .models
        .iter()
        .find(|m| m.name == fraud)
        .expect("fraud model");
    let first = fraud.versions[0].run.as_ref().expect("the training run");
    assert_eq!(fraud.versions[0].run_id.as_deref(), Some(trained.as_str()));
    assert_eq!(first.run_id, trained);
    assert_eq!(first.experiment_id, training);
    assert_eq!(
        first.params,
        [
            ("learning_rate".to_owned(), "0.1".to_owned()),
            ("max_depth".to_owned(), "6".to_owned()),
        ]
        .into()
    );
    assert_eq!(
        first.metrics,
        [("auc".to_owned(), 0.93), ("loss".to_owned(), 0.2)].into(),
        "each metric at its latest value"
    );
    assert_eq!(first.tags.get("team").map(String::as_str), Some("fraud"));
    assert!(first.start_time.is_some());
    let second = fraud.versions[1].run.as_ref().expect("the tuning run");
    assert_eq!(
        (second.run_id.as_str(), second.experiment_id.as_str()),
        (tuned.as_str(), tuning.as_str())
    );
    assert_eq!(second.metrics.get("auc"), Some(&0.94));
    assert!(
        fraud.versions.iter().all(|v| v.run.is_some()),
        "every version that shares a run gets it"
    );

    let churn = scan
        .models
        .iter()
        .find(|m| m.name == churn)
        .expect("churn model");
    let from_deleted = churn.versions[0]
        .run
        .as_ref()
        .expect("a deleted run is still read");
    assert_eq!(from_deleted.params["learning_rate"], "0.3");
    assert_eq!(
        (churn.versions[1].run_id.as_deref(), &churn.versions[1].run),
        (Some(elsewhere), &None),
        "a run the server does not have keeps its id, without details"
    );
    let plain = scan
        .models
        .iter()
        .find(|m| m.name == plain)
        .expect("plain model");
    assert_eq!(
        (&plain.versions[0].run_id, &plain.versions[0].run),
        (&None, &None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_its_scan_naming_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    // The listener is closed again: nothing answers on that port.
    let url = format!("http://127.0.0.1:{port}");
    let error = mlflow::scan(&url, &MlflowOptions::default(), &mut |_| {})
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(&error, MlflowScanError::Unreachable { url: u, .. } if *u == url),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(message.contains("check the URL"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_mlflow_answers_is_reported_with_its_code() {
    let server = MlflowServer::get().await;
    let options = MlflowOptions {
        page_size: 1001,
        name_prefix: Some(unique_prefix("error")),
        ..MlflowOptions::default()
    };
    let error = mlflow::scan(&server.url, &options, &mut |_| {})
        .await
        .expect_err("MLflow takes at most 1000 models a page");
    match &error {
        MlflowScanError::Api {
            status,
            code,
            endpoint,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "INVALID_PARAMETER_VALUE");
            assert_eq!(endpoint, "registered-models/search");
        }
        other => panic!("not an API error: {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("INVALID_PARAMETER_VALUE"), "{message}");
    assert!(
        message.contains("max_results"),
        "MLflow's own words: {message}"
    );
    assert!(message.contains("page size"), "what to change: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_is_not_the_tracking_server_says_so() {
    let server = MlflowServer::get().await;
    let url = format!("{}/not-mlflow", server.url);
    let error = mlflow::scan(&url, &MlflowOptions::default(), &mut |_| {})
        .await
        .expect_err("no MLflow API under that path");
    assert!(
        matches!(&error, MlflowScanError::NotMlflow { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&url) && message.contains("404"),
        "{message}"
    );
}
