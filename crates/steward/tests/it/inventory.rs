//! The model inventory as a user drives it: `steward inventory scan --files` over model files the
//! test writes (one with a truncated header, which makes no model), rescans that change nothing,
//! fields stated with provenance, models created only when asked, a known artifact joining its
//! version, completeness against the templates, point-in-time answers from the audit log, and
//! "approved in CHG-n" said only of the version that change promoted.

use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id, join_all, run_steward,
};
use crate::mlflow::MlflowServer;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_discovery::samples::{self, GgufValue};

fn write_models(root: &std::path::Path) {
    let dir = root.join("fraud-scoring");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("model.safetensors"),
        samples::safetensors(&[("dense.weight", "F32", &[4, 8])], &[("format", "pt")]),
    )
    .expect("write");
    let llm = root.join("llm");
    std::fs::create_dir_all(&llm).expect("dir");
    std::fs::write(
        llm.join("tiny.gguf"),
        samples::gguf(
            3,
            &[
                ("general.name", GgufValue::String("Tiny Llama".into())),
                ("general.architecture", GgufValue::String("llama".into())),
                ("general.license", GgufValue::String("apache-2.0".into())),
            ],
            &[("token_embd.weight", &[8, 4], 0)],
        ),
    )
    .expect("write");
    let broken = root.join("broken");
    std::fs::create_dir_all(&broken).expect("dir");
    let whole = samples::safetensors(&[("w", "F32", &[2, 2])], &[]);
    std::fs::write(broken.join("model.safetensors"), &whole[..12]).expect("write");
    std::fs::write(root.join("README.md"), "not a model").expect("write");
}

fn json_of(run: &crate::helpers::Run) -> Value {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

async fn a_scan_records_models_and_the_inventory_answers_for_past_dates(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let cora = app.user("cora", &["compliance_officer"]).await;
    let root = db.dir.path().join("models");
    write_models(&root);
    let root_arg = root.display().to_string();
    let run = |token: &str, args: &[&str]| run_steward(&app.base, token, args);

    // A requester may not record scans.
    assert_eq!(
        run(&c.rita, &["inventory", "scan", "--files", &root_arg]).code,
        1
    );
    let scanned = json_of(&run(
        &c.mia,
        &[
            "inventory",
            "scan",
            "--files",
            &root_arg,
            "--output",
            "json",
        ],
    ));
    let files = &scanned["sources"][0];
    assert_eq!(files["versions"], 3, "{scanned:#}");
    assert_eq!(
        files["created"],
        json!(["fraud-scoring", "tiny-llama"]),
        "a file whose header is corrupt makes no model: {scanned:#}"
    );
    let problems: Vec<&str> = files["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["problem"].as_str())
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("truncated"))
            && problems.iter().any(|p| p.contains("not recorded")),
        "the corrupt header is reported and the scan goes on: {scanned:#}"
    );
    let (status, _) = app.get("/api/v1/models/broken", &c.rita).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(scanned["findings"], json!([]), "nothing runs anywhere yet");
    let again = json_of(&run(
        &c.mia,
        &[
            "inventory",
            "scan",
            "--files",
            &root_arg,
            "--output",
            "json",
        ],
    ));
    let again = &again["sources"][0];
    assert_eq!(again["created"], json!([]));
    assert_eq!(again["unchanged"], json!(["fraud-scoring", "tiny-llama"]));

    let (_, llm) = app.get("/api/v1/models/tiny-llama", &c.rita).await;
    assert_eq!(llm["fields"]["architecture"], "llama");
    assert_eq!(llm["provenance"]["architecture"]["by"], "discovered");
    assert!(
        llm["versions"][0]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(llm["fields"]["status"], "development");
    assert_eq!(llm["completeness"]["needs_review"], true);

    let before_production = app.clock.now();
    app.clock.advance(Duration::days(1));
    let set = run(
        &c.mia,
        &[
            "inventory",
            "set",
            "fraud-scoring",
            "purpose=Score card transactions for fraud",
            "intended_use=Real-time authorisation decisions",
            "restrictions=Not for credit decisions",
            "inputs=Transaction features",
            "outputs=Fraud probability",
            "risk_tier=high",
            "owner=mia",
            r#"developers=["ana"]"#,
            r#"validators=["val"]"#,
            "validation_last=2026-06-01",
            "expected_validity=365",
            "status=production",
            "--output",
            "json",
        ],
    );
    let model = json_of(&set);
    assert_eq!(
        model["completeness"]["score"], 100,
        "{:#}",
        model["completeness"]
    );
    assert_eq!(model["fields"]["validation_next"], "2027-06-01");
    assert_eq!(model["provenance"]["purpose"]["by"], "attested");
    assert_eq!(model["provenance"]["purpose"]["user"], "mia");
    assert_eq!(model["provenance"]["validation_next"]["by"], "derived");

    // Bad values are refused field by field.
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/models/fraud-scoring",
            Some(&c.mia),
            Some(json!({"risk_tier": "extreme", "colour": "red"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(crate::helpers::field_names(&body), ["colour", "risk_tier"]);

    // What was in production, then and now.
    let now = json_of(&run(
        &c.rita,
        &["inventory", "list", "--in-production", "--output", "json"],
    ));
    let names: Vec<&str> = rows(&now)
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["fraud-scoring"]);
    let then = json_of(&run(
        &c.rita,
        &[
            "inventory",
            "list",
            "--in-production",
            "--at",
            &before_production.to_rfc3339(),
            "--output",
            "json",
        ],
    ));
    assert_eq!(
        then,
        json!({"items": [], "next_cursor": null}),
        "nothing was in production before it was promoted"
    );
    let old = json_of(&run(
        &c.rita,
        &[
            "inventory",
            "show",
            "fraud-scoring",
            "--at",
            &before_production.to_rfc3339(),
            "--output",
            "json",
        ],
    ));
    assert_eq!(old["fields"]["status"], "development");
    let missing = run(
        &c.rita,
        &["inventory", "show", "fraud-scoring", "--at", "2020-01-01"],
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("had no model fraud-scoring"),
        "{}",
        missing.stderr
    );
    let text = run(
        &c.rita,
        &["inventory", "show", "fraud-scoring", "--history"],
    );
    assert!(
        text.stdout.contains("model.status_changed") && text.stdout.contains("by mia: "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("attested by mia") && text.stdout.contains("discovered by files:"),
        "{}",
        text.stdout
    );

    // Templates: compliance officers add mandatory fields; the score follows.
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/inventory/templates",
            Some(&c.mia),
            Some(json!({"tiers": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/inventory/templates",
            Some(&cora),
            Some(json!({"tiers": {"high": ["purpose", "favourite_colour"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .call(reqwest::Method::PUT, "/api/v1/inventory/templates", Some(&cora),
              Some(json!({"tiers": {"high": ["purpose", "model_card"], "medium": [], "low": []}, "tags": {}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, fraud) = app.get("/api/v1/models/fraud-scoring", &c.rita).await;
    assert_eq!(fraud["completeness"]["missing"], json!(["model_card"]));
    assert_eq!(fraud["completeness"]["score"], 50);
    app.stop().await;
}

async fn bad_inventory_input_is_refused_with_what_to_fix(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let post = |path: &'static str, token: String, body: Value| {
        let app = &app;
        async move {
            app.call(reqwest::Method::POST, path, Some(&token), Some(body))
                .await
        }
    };
    let (status, body) = post(
        "/api/v1/inventory/scans",
        c.mia.clone(),
        json!({"sources": []}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(crate::helpers::field_names(&body), ["sources"]);
    let bad_version = json!({"sources": [{"source": "files:h:/m", "kind": "files",
        "scanned_at": "2026-11-29T00:00:00Z",
        "versions": [{"model": "Not A Slug", "version": {"version": "1", "artifact_uri": "file:///m/a",
            "digest": null, "framework": null, "trained_at": null, "source": "files:h:/m",
            "first_seen": "2026-11-29T00:00:00Z", "last_seen": "2026-11-29T00:00:00Z"}}]}]});
    let (status, body) = post("/api/v1/inventory/scans", c.mia.clone(), bad_version).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        crate::helpers::field_names(&body),
        ["sources[0].versions[0].model"]
    );
    let (status, body) = post(
        "/api/v1/inventory/scans",
        c.mia.clone(),
        json!({"sources": [{"source": "x", "kind": "ftp", "scanned_at": "2026-11-29T00:00:00Z"}]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown kind: {body}"
    );

    let version =
        json!({"version": "3", "artifact_uri": "s3://models/fraud/3", "digest": "sha256:abc"});
    let (status, _) = post(
        "/api/v1/models/fraud/versions",
        c.rita.clone(),
        version.clone(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "requesters do not register versions"
    );
    let (status, body) = post("/api/v1/models/fraud/versions", c.mia.clone(), version).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(crate::helpers::field_names(&body), ["digest"]);
    let good = json!({"version": "3", "artifact_uri": "s3://models/fraud/3",
                      "digest": format!("sha256:{}", "ab".repeat(32)), "aliases": ["champion"]});
    let (status, body) = post("/api/v1/models/fraud/versions", c.mia.clone(), good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"]["source"], "attested:mia");
    assert_eq!(
        (body["created"].clone(), body["changed"].clone()),
        (json!(true), json!(true))
    );
    let (_, again) = post("/api/v1/models/fraud/versions", c.mia.clone(), good).await;
    assert_eq!(
        (again["version"].clone(), again["changed"].clone()),
        (body["version"].clone(), json!(false)),
        "registering the same version again changes nothing"
    );
    let (_, fraud) = app.get("/api/v1/models/fraud", &c.rita).await;
    assert_eq!(fraud["production_version"], "3", "the champion alias");

    let (status, body) = app
        .get("/api/v1/inventory/report?format=pdf", &c.rita)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .get("/api/v1/inventory/export?format=spdx", &c.rita)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app.get("/api/v1/inventory/scans/scan-nope", &c.rita).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// Versions registered at once (written together by group commit) are each kept with an audit
/// event that holds the version, and past dates are answered by folding those events onto the
/// last whole record.
async fn versions_registered_at_once_are_all_kept_and_answer_for_past_dates(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/models/churn?create=true",
            Some(&c.mia),
            Some(json!({"risk_tier": "low", "owner": "mia"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stated = app.clock.now();
    app.clock.advance(Duration::hours(1));
    let register = |model: &str, version: String, aliases: Vec<&str>| {
        let app = &app;
        let token = c.mia.clone();
        let path = format!("/api/v1/models/{model}/versions");
        let body = json!({"version": version, "artifact_uri": format!("s3://models/{model}/{version}"),
                          "metrics": {"auc": 0.9}, "aliases": aliases,
                          "metadata": {"tags": {"team": "risk", "version": version}}});
        async move { app.post(&path, &token, body).await }
    };
    let (status, first) = register("churn", "1".into(), vec!["champion"]).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["created"].clone(), first["changed"].clone()),
        (json!(false), json!(true))
    );
    let one_version = app.clock.now();
    app.clock.advance(Duration::hours(1));

    let mut burst = Vec::new();
    for n in 2..=9 {
        burst.push(register("churn", n.to_string(), vec![]));
        burst.push(register("fresh-a", n.to_string(), vec![]));
        burst.push(register("fresh-b", n.to_string(), vec![]));
    }
    let answers = join_all(burst).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["changed"], true, "{body}");
    }
    for model in ["fresh-a", "fresh-b"] {
        let created = answers
            .iter()
            .filter(|(_, b)| b["model"] == model && b["created"] == true)
            .count();
        assert_eq!(created, 1, "{model} is created by exactly one registration");
    }
    let (status, again) = register("churn", "1".into(), vec!["champion"]).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["changed"], false,
        "the same content again changes nothing"
    );
    assert_eq!(
        again["version"], first["version"],
        "and answers the version as kept"
    );

    let names = |model: &Value| -> Vec<String> {
        model["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| match &v["version"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    };
    let all: Vec<String> = (1..=9).map(|n| n.to_string()).collect();
    let (_, churn) = app.get("/api/v1/models/churn?history=true", &c.rita).await;
    assert_eq!(names(&churn), all);
    assert_eq!(
        churn["fields"]["risk_tier"], "low",
        "registering keeps what people stated"
    );
    assert_eq!(churn["versions"][4]["metadata"]["tags"]["version"], "5");
    assert_eq!(churn["production_version"], "1");
    let actions: Vec<(&str, &Value)> = churn["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| (e["action"].as_str().expect("action"), &e["version"]))
        .collect();
    assert_eq!(actions.len(), 10, "{actions:?}");
    assert_eq!(actions[0], ("model.created", &Value::Null));
    assert_eq!(actions[1], ("model.version_registered", &json!("1")));
    let mut later: Vec<&str> = actions[2..]
        .iter()
        .map(|(action, v)| {
            assert_eq!(*action, "model.version_registered");
            v.as_str().expect("version")
        })
        .collect();
    later.sort();
    assert_eq!(later, ["2", "3", "4", "5", "6", "7", "8", "9"]);
    for model in ["fresh-a", "fresh-b"] {
        let (_, fresh) = app
            .get(&format!("/api/v1/models/{model}?history=true"), &c.rita)
            .await;
        assert_eq!(names(&fresh), all[1..]);
        let history = fresh["history"].as_array().expect("history");
        assert_eq!(history.len(), 8, "one event per registration: {history:?}");
        assert_eq!(history[0]["action"], "model.created");
    }

    // The past, from the audit history: the whole record then, plus the versions registered
    // after it up to that time.
    let at = |t: chrono::DateTime<chrono::Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .replace('+', "%2B")
    };
    let (_, then) = app
        .get(
            &format!("/api/v1/models/churn?at={}", at(one_version)),
            &c.rita,
        )
        .await;
    assert_eq!(names(&then), ["1"]);
    assert_eq!(then["fields"]["owner"], "mia");
    assert_eq!(then["production_version"], "1");
    assert_eq!(then["versions"][0]["metrics"]["auc"], 0.9);
    let (_, before) = app
        .get(&format!("/api/v1/models/churn?at={}", at(stated)), &c.rita)
        .await;
    assert_eq!(names(&before), Vec::<String>::new());
    let (status, _) = app
        .get(
            &format!("/api/v1/models/fresh-a?at={}", at(one_version)),
            &c.rita,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "fresh-a did not exist yet");

    let (_, list) = app.get("/api/v1/models", &c.rita).await;
    let listed: Vec<(&str, usize, &Value)> = rows(&list)
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("name"),
                m["versions"].as_array().expect("versions").len(),
                &m["production_version"],
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("churn", 9, &json!("1")),
            ("fresh-a", 8, &Value::Null),
            ("fresh-b", 8, &Value::Null)
        ]
    );
    assert_eq!(rows(&list)[0]["risk_tier"], "low");
    let (_, list_then) = app
        .get(&format!("/api/v1/models?at={}", at(one_version)), &c.rita)
        .await;
    assert_eq!(rows(&list_then).len(), 1, "{list_then}");
    assert_eq!(rows(&list_then)[0]["versions"], json!(["1"]));

    // Once a person's audit payloads are erased, what the record said after their changes is
    // unknown: a past answer is refused rather than pieced together from the rest.
    app.clock.advance(Duration::hours(1));
    let put = |token: String, fields: Value| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::PUT,
                "/api/v1/models/kept?create=true",
                Some(&token),
                Some(fields),
            )
            .await
        }
    };
    assert_eq!(
        put(c.max.clone(), json!({"owner": "max"})).await.0,
        StatusCode::CREATED
    );
    app.clock.advance(Duration::hours(1));
    assert_eq!(
        put(c.mia.clone(), json!({"owner": "mia"})).await.0,
        StatusCode::OK
    );
    app.clock.advance(Duration::hours(1));
    let (status, body) = app
        .post(
            "/api/v1/models/kept/versions",
            &c.max,
            json!({"version": "1", "artifact_uri": "s3://models/kept/1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = app.clock.now();
    let (_, kept) = app
        .get(&format!("/api/v1/models/kept?at={}", at(now)), &c.rita)
        .await;
    assert_eq!(
        (kept["fields"]["owner"].clone(), names(&kept)),
        (json!("mia"), vec!["1".to_owned()])
    );
    let officer = app.user("olga", &["compliance_officer"]).await;
    let (status, body) = app
        .post(
            "/api/v1/audit/subjects/mia/erase",
            &officer,
            json!({"basis": "GDPR Art. 17"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .get(&format!("/api/v1/models/kept?at={}", at(now)), &c.rita)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "not max's older record with the version: {body}"
    );
    let (_, kept) = app.get("/api/v1/models/kept", &c.rita).await;
    assert_eq!(kept["fields"]["owner"], "mia", "the current record stays");

    // The log with all those events still verifies offline.
    let (_, key) = app.get("/api/v1/audit/public-key", ADMIN_TOKEN).await;
    let key = key["key"].as_str().expect("key").to_owned();
    let run = run_steward(
        &app.base,
        ADMIN_TOKEN,
        &["audit", "verify", "--public-key", &key],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    app.stop().await;
}

/// A list answer's rows: a page's `items`, or a bare array.
fn rows(list: &Value) -> &[Value] {
    list.get("items")
        .unwrap_or(list)
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("a list: {list:#}"))
}

/// A statement about a model the inventory does not have is refused rather than made into a
/// second model; creating one is explicit; an artifact registered again under another version
/// name joins the version that holds it.
async fn models_are_created_only_when_asked_and_a_known_artifact_joins_its_version(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let run = |token: &str, args: &[&str]| run_steward(&app.base, token, args);

    let typo = run(&c.mia, &["inventory", "set", "fraud-scorng", "owner=mia"]);
    assert_eq!(typo.code, 1, "{}", typo.stdout);
    assert!(
        typo.stderr.contains("no model fraud-scorng") && typo.stderr.contains("--create"),
        "the refusal says how to create it: {}",
        typo.stderr
    );
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/models/fraud-scorng",
            Some(&c.mia),
            Some(json!({"owner": "mia"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("?create=true")),
        "{body}"
    );
    let (_, models) = app.get("/api/v1/models", &c.rita).await;
    assert!(rows(&models).is_empty(), "nothing was created: {models}");

    let created = json_of(&run(
        &c.mia,
        &[
            "inventory",
            "set",
            "fraud-scoring",
            "--create",
            "owner=mia",
            "--output",
            "json",
        ],
    ));
    assert_eq!(created["fields"]["owner"], "mia");
    let response = app
        .http
        .put(format!("{}/api/v1/models/churn?create=true", app.base))
        .bearer_auth(&c.mia)
        .json(&json!({"owner": "max"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok()),
        Some("/api/v1/models/churn")
    );
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/models/churn?create=true",
            Some(&c.mia),
            Some(json!({"owner": "mia"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an existing model is updated: {body}"
    );

    // The same artifact under another version name joins the version that holds it.
    let digest = format!("sha256:{}", "7a".repeat(32));
    let register = |version: &str, aliases: Vec<&str>| {
        let body = json!({"version": version, "artifact_uri": format!("s3://models/fraud/{version}"),
                          "digest": digest, "aliases": aliases});
        let app = &app;
        let token = c.mia.clone();
        async move {
            app.post("/api/v1/models/fraud-scoring/versions", &token, body)
                .await
        }
    };
    let (status, first) = register("7", vec![]).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["joined"], false);
    let (status, again) = register("8", vec!["champion"]).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["joined"].clone(), again["version"]["version"].clone()),
        (json!(true), json!("7")),
        "{again}"
    );
    let cli = run(
        &c.mia,
        &[
            "inventory",
            "register",
            "fraud-scoring",
            "--version",
            "9",
            "--artifact-uri",
            "s3://models/fraud/9",
            "--digest",
            &digest,
        ],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert!(cli.stdout.contains("joined v7"), "{}", cli.stdout);
    let (_, fraud) = app
        .get("/api/v1/models/fraud-scoring?history=true", &c.rita)
        .await;
    let versions: Vec<&Value> = fraud["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(versions, [&json!("7")], "no duplicate version: {fraud:#}");
    let registered: Vec<&Value> = fraud["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["action"] == "model.version_registered")
        .map(|e| &e["version"])
        .collect();
    assert_eq!(registered, [&json!("7"), &json!("7"), &json!("7")]);
    app.stop().await;
}

/// The issue's case, exactly: CHG-1 promotes v7 with an `mlflow_alias` step and completes;
/// later v8 is made the champion in the registry with no change at all. The inventory must not
/// say v8 was approved in CHG-1, and reconciliation must report it.
async fn a_version_promoted_without_a_change_is_not_credited_to_an_earlier_one(backend: Backend) {
    let mlflow = MlflowServer::get().await;
    let registered = mlflow.model("fraud", 8).await;
    let db = TestDb::new(backend).await;
    let mut config = crate::helpers::config(&db);
    config.execution.tick = std::time::Duration::from_millis(50);
    let app = TestApp::spawn_with(config, steward_server::Clock::default()).await;
    let c = cast(&app).await;
    let run = |token: &str, args: &[&str]| run_steward(&app.base, token, args);
    let model = registered.as_str(); // `fraud-<hex>`: already an inventory name
    let scan = || {
        json_of(&run(
            &c.mia,
            &[
                "inventory",
                "scan",
                "--mlflow",
                &mlflow.url,
                "--mlflow-prefix",
                &registered,
                "--output",
                "json",
            ],
        ))
    };
    let unattributed = |findings: &Value| -> Vec<String> {
        rows(findings)
            .iter()
            .filter(|f| f["kind"] == "in_production_without_change" && f["model"] == model)
            .map(|f| f["version"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let first = scan();
    assert_eq!(first["sources"][0]["created"], json!([model]), "{first:#}");
    let set = run(&c.mia, &["inventory", "set", model, "status=production"]);
    assert_eq!(set.code, 0, "{}", set.stderr);

    // CHG-1 moves the champion alias to v7, approved by mia, and completes. Its target is named
    // after the model, as a deployment target often is: that names the model, not a version.
    app.target(model, "mia", "staging", "low", &[]).await;
    let now = app.clock.now();
    let submitted = app
        .submit_ok(
            &c.rita,
            change(json!({
                "targets": [model],
                "window": {"start": (now + Duration::minutes(5)).to_rfc3339(),
                           "end": (now + Duration::hours(2)).to_rfc3339()},
                "steps": [{"name": "promote", "kind": "mlflow_alias", "tracking_uri": mlflow.url,
                           "model": registered, "alias": "champion", "version": 7}],
            })),
        )
        .await;
    let chg1 = id(&submitted);
    assert_eq!(chg1, "CHG-1");
    let (status, body) = app.decide(&c.mia, &chg1, "approve", "ok").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock
        .advance(Duration::minutes(5) + Duration::seconds(1));
    crate::execution::wait_for_state(&app, &c.rita, &chg1, "completed").await;
    assert_eq!(
        mlflow.alias(&registered, "champion").await.as_deref(),
        Some("7")
    );
    let promoted = scan();
    assert_eq!(
        unattributed(&promoted["findings"]),
        Vec::<String>::new(),
        "v7 was promoted by a completed change: {:#}",
        promoted["findings"]
    );
    let v7_time = app.clock.now();

    // A day later v8 becomes the champion in the registry, with no change at all.
    app.clock.advance(Duration::days(1));
    mlflow.set_alias(&registered, "champion", "8").await;
    let after = scan();
    assert_eq!(
        unattributed(&after["findings"]),
        ["8"],
        "the scan reports it: {:#}",
        after["findings"]
    );
    let v8_time = app.clock.now();

    let list = |at: chrono::DateTime<chrono::Utc>, json: bool| {
        let at = at.to_rfc3339();
        let mut args = vec!["inventory", "list", "--in-production", "--at", &at];
        if json {
            args.extend(["--output", "json"]);
        }
        run(&c.rita, &args)
    };
    let then = json_of(&list(v7_time, true));
    let then = &rows(&then)[0];
    assert_eq!(then["production_version"], "7", "{then:#}");
    assert_eq!(then["approval"]["change"], "CHG-1");
    assert_eq!(then["approval"]["version"], "7");
    let text = list(v7_time, false).stdout;
    assert!(
        text.contains("v7 in production, approved in CHG-1 by mia"),
        "{text}"
    );

    let now = json_of(&list(v8_time, true));
    let now = &rows(&now)[0];
    assert_eq!(now["production_version"], "8", "{now:#}");
    assert_eq!(now["approval"], Value::Null, "{now:#}");
    let text = list(v8_time, false).stdout;
    assert!(
        text.contains("v8 in production, no completed change names it") && !text.contains("CHG-1"),
        "{text}"
    );
    let shown = json_of(&run(
        &c.rita,
        &["inventory", "show", model, "--output", "json"],
    ));
    assert_eq!(shown["production_version"], "8");
    assert_eq!(shown["approval"], Value::Null);

    let findings = json_of(&run(
        &c.rita,
        &["inventory", "reconcile", "--output", "json"],
    ));
    let finding = rows(&findings)
        .iter()
        .find(|f| f["kind"] == "in_production_without_change")
        .unwrap_or_else(|| panic!("a finding for v8: {findings:#}"));
    assert_eq!(
        (finding["model"].as_str(), finding["version"].as_str()),
        (Some(model), Some("8"))
    );
    assert!(
        finding["detail"]
            .as_str()
            .is_some_and(|d| d.contains("raise a change")),
        "it says what to do: {finding}"
    );
    let text = run(&c.rita, &["inventory", "reconcile"]).stdout;
    assert!(text.contains("in_production_without_change"), "{text}");
    app.stop().await;
}

crate::both_backends!(
    a_scan_records_models_and_the_inventory_answers_for_past_dates,
    bad_inventory_input_is_refused_with_what_to_fix,
    versions_registered_at_once_are_all_kept_and_answer_for_past_dates,
    models_are_created_only_when_asked_and_a_known_artifact_joins_its_version,
    a_version_promoted_without_a_change_is_not_credited_to_an_earlier_one
);
