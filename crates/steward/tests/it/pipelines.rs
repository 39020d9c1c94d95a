//! CI/CD pipelines: the deployment gate (`steward gate`) as a pipeline's service account runs it.

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, field_names, id, run_steward,
    run_steward_with,
};
use chrono::{Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn the_gate_answers_with_exit_status_and_reason(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ci = app.user("ci-deployer", &["pipeline"]).await;
    let gate = |change: &str, target: &str, environment: &str| {
        run_steward(
            &app.base,
            &ci,
            &[
                "gate",
                "--change",
                change,
                "--target",
                target,
                "--environment",
                environment,
            ],
        )
    };
    let open_now = json!({"start": at(Duration::hours(-1)), "end": at(Duration::hours(1))});
    let approved = app
        .submit_ok(&c.rita, change(json!({"window": open_now})))
        .await;
    let approved_id = id(&approved);
    // Waiting for approval: refused.
    let run = gate(&approved_id, "fraud-scoring", "staging");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: refused: {approved_id} is pending_approval, not approved: nothing may deploy it"
        )
    );
    // A pipeline account cannot approve.
    assert_eq!(
        app.decide(&ci, &approved_id, "approve", "lgtm").await.0,
        StatusCode::FORBIDDEN
    );
    app.decide(&c.mia, &approved_id, "approve", "ok").await;
    let run = gate(&approved_id, "fraud-scoring", "staging");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!("allowed: {approved_id} is approved (normal change, approved by mia), covers fraud-scoring in staging, its window is open until")),
        "{}",
        run.stdout
    );
    // Not this target, not this environment.
    app.target("ledger", "mia", "staging", "low", &[]).await;
    let run = gate(&approved_id, "ledger", "staging");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("does not cover target ledger (it covers fraud-scoring)"),
        "{}",
        run.stderr
    );
    let run = gate(&approved_id, "fraud-scoring", "production");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("is for staging, not production"),
        "{}",
        run.stderr
    );
    // Bad input is named.
    // Not an answer: exit 2, so a pipeline tells an error from a refusal.
    let run = gate(&approved_id, "fraud-scoring", "prod");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("environment: 'prod' is not one of"),
        "{}",
        run.stderr
    );
    let run = gate("CHG-999", "fraud-scoring", "staging");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no change CHG-999"), "{}", run.stderr);

    // A window that has not opened yet.
    let later = app
        .submit_ok(
            &c.rita,
            change(
                json!({"window": {"start": at(Duration::days(2)), "end": at(Duration::days(3))}}),
            ),
        )
        .await;
    let later_id = id(&later);
    app.decide(&c.mia, &later_id, "approve", "ok").await;
    let run = gate(&later_id, "fraud-scoring", "staging");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("window opens at"), "{}", run.stderr);

    // A freeze declared now stops the approved change; JSON output still exits 1.
    let today = Utc::now().date_naive();
    let (status, body) = app
        .post(
            "/api/v1/windows",
            ADMIN_TOKEN,
            json!({"name": "incident-freeze", "kind": "freeze", "scope": "target:fraud-scoring",
                "timezone": "UTC", "starts": format!("{}T00:00", today - chrono::Days::new(1)),
                "ends": format!("{}T00:00", today + chrono::Days::new(2)), "reason": "SEV1 in progress"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let run = run_steward(
        &app.base,
        &ci,
        &[
            "gate",
            "--change",
            &approved_id,
            "--target",
            "fraud-scoring",
            "--environment",
            "staging",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 1);
    let verdict: Value = serde_json::from_str(&run.stdout).expect("json verdict");
    assert_eq!(verdict["allowed"], false);
    assert_eq!(
        verdict["reason"],
        "fraud-scoring is inside a freeze: incident-freeze (SEV1 in progress)"
    );
}

/// A pipeline records its own deployment: a catalog (standard) change approves itself and the
/// gate lets it through; a normal one waits for its approver.
async fn a_pipeline_submits_its_deployment_as_a_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let _ = cast(&app).await;
    let ci = app.user("ci-deployer", &["pipeline"]).await;
    let (status, body) = app
        .post(
            "/api/v1/targets",
            ADMIN_TOKEN,
            json!({"name": "gpu-a", "kind": "compute_cluster", "owner": "mia", "environment": "staging", "criticality": "low", "regulated": []}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let dir = db.dir.path();
    let patch = dir.join("patch.json");
    std::fs::write(
        &patch,
        change(json!({"category": "security-patch", "catalog_item": "security-patch", "targets": ["gpu-a"],
            "title": "Patch the CUDA driver on gpu-a",
            "impact": {"data": "low", "availability": "low", "compliance": "low"}}))
        .to_string(),
    )
    .expect("write");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let github = [
        ("GITHUB_SHA", "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"),
        ("GITHUB_SERVER_URL", "https://github.example"),
        ("GITHUB_REPOSITORY", "bank/fraud-platform"),
        ("GITHUB_RUN_ID", "8812"),
        ("STEWARD_ARTIFACT_DIGEST", digest.as_str()),
    ];
    let patch_arg = patch.to_str().expect("path");
    let run = run_steward_with(
        &app.base,
        &ci,
        &[
            "change",
            "submit",
            patch_arg,
            "--from-pipeline",
            "--output",
            "json",
        ],
        &github,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let submitted: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(submitted["type"], "standard");
    assert_eq!(submitted["state"], "approved");
    assert_eq!(submitted["requester"], "ci-deployer");
    assert_eq!(
        submitted["pipeline"],
        json!({"commit": "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
            "run": "https://github.example/bank/fraud-platform/actions/runs/8812",
            "artifact_digest": digest})
    );
    let sid = id(&submitted);
    let run = run_steward(
        &app.base,
        &ci,
        &[
            "gate",
            "--change",
            &sid,
            "--target",
            "gpu-a",
            "--environment",
            "staging",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("approved by its catalog item"),
        "{}",
        run.stdout
    );

    // A normal deployment from the pipeline waits for its owner.
    let deploy = dir.join("deploy.json");
    std::fs::write(&deploy, change(json!({})).to_string()).expect("write");
    let run = run_steward_with(
        &app.base,
        &ci,
        &[
            "change",
            "submit",
            deploy.to_str().expect("path"),
            "--from-pipeline",
        ],
        &[
            ("CI_COMMIT_SHA", "0123abcd"),
            ("CI_PIPELINE_URL", "https://gitlab.example/p/-/pipelines/7"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("state pending_approval"),
        "{}",
        run.stdout
    );

    // Without the CI variables, one line says which are needed; a bad commit is a field error.
    let run = run_steward(
        &app.base,
        &ci,
        &["change", "submit", patch_arg, "--from-pipeline"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: --from-pipeline needs the commit"),
        "{}",
        run.stderr
    );
    let (status, body) = app
        .post(
            "/api/v1/changes",
            &ci,
            change(
                json!({"pipeline": {"commit": "main", "run": "42", "artifact_digest": "md5:x"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields = field_names(&body);
    assert_eq!(fields, ["pipeline.commit", "pipeline.artifact_digest"]);
}

/// Two changes whose window is open now: one approved by its owner, one still waiting.
async fn approved_and_pending(app: &TestApp, c: &crate::helpers::Cast) -> (String, String) {
    let open_now = json!({"start": at(Duration::hours(-1)), "end": at(Duration::hours(1))});
    let approved = app
        .submit_ok(&c.rita, change(json!({"window": open_now})))
        .await;
    let approved_id = id(&approved);
    app.decide(&c.mia, &approved_id, "approve", "ok").await;
    let pending = app
        .submit_ok(&c.rita, change(json!({"window": open_now})))
        .await;
    (approved_id, id(&pending))
}

/// What the stand-in for GitHub's API received: the callback path, headers and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

/// A local HTTP server standing in for api.github.com: it accepts deployment review callbacks
/// (`POST /repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule`) and records them.
async fn fake_github() -> (String, Received) {
    use axum::routing::post;
    let received: Received = Default::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule",
        post(
            move |uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  axum::Json(body): axum::Json<Value>| {
                let store = store.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    store
                        .lock()
                        .expect("lock")
                        .push((uri.path().to_owned(), auth, body));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

const SECRET: &str = "github-webhook-secret-for-tests";

/// A `deployment_protection_rule` event as GitHub sends it (trimmed to the fields Steward reads
/// plus enough context to be recognisable).
fn protection_event(github: &str, reference: &str, environment: &str) -> Value {
    json!({
        "action": "requested",
        "environment": environment,
        "event": "deployment",
        "deployment_callback_url": format!("{github}/repos/bank/fraud-platform/actions/runs/8812/deployment_protection_rule"),
        "deployment": {
            "url": "https://api.github.example/repos/bank/fraud-platform/deployments/1234",
            "id": 1234,
            "sha": "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
            "ref": reference,
            "task": "deploy",
            "payload": {},
            "environment": environment,
            "description": null,
            "creator": {"login": "octocat", "id": 1, "type": "User"}
        },
        "repository": {"id": 99, "full_name": "bank/fraud-platform", "private": true},
        "installation": {"id": 42},
        "sender": {"login": "octocat", "id": 1, "type": "User"}
    })
}

async fn deliver(
    app: &TestApp,
    event: &str,
    body: &Value,
    signature: Option<String>,
) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/integrations/github/deployment-protection",
            app.base
        ))
        .header("x-github-event", event)
        .header("content-type", "application/json")
        .body(bytes.clone());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    let response = request.send().await.expect("delivered");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn sign(body: &Value) -> Option<String> {
    let bytes = serde_json::to_vec(body).expect("json");
    Some(steward_connectors::github::sign(SECRET.as_bytes(), &bytes))
}

async fn github_deployment_protection_rules_are_answered_through_the_callback(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (github, received) = fake_github().await;
    let mut cfg = crate::helpers::config(&db);
    cfg.github = Some(steward_server::GithubConfig {
        webhook_secret: SECRET.into(),
        token: "ghs_test_installation_token".into(),
        tenant: steward_core::TenantId::default_tenant(),
    });
    let app = TestApp::spawn_with(cfg, steward_server::Clock::default()).await;
    let c = cast(&app).await;
    let (approved_id, pending_id) = approved_and_pending(&app, &c).await;

    // Approved, in its window, for this environment: GitHub is told to go ahead.
    let event = protection_event(&github, &format!("release/{approved_id}"), "staging");
    let (status, body) = deliver(&app, "deployment_protection_rule", &event, sign(&event)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "approved");
    {
        let calls = received.lock().expect("lock");
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].0,
            "/repos/bank/fraud-platform/actions/runs/8812/deployment_protection_rule"
        );
        assert_eq!(calls[0].1, "Bearer ghs_test_installation_token");
        assert_eq!(calls[0].2["state"], "approved");
        assert_eq!(calls[0].2["environment_name"], "staging");
        assert!(
            calls[0].2["comment"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("Steward: {approved_id} is approved"))
        );
    }
    // The same deployment to production: rejected, with the reason.
    let event = protection_event(&github, &format!("release/{approved_id}"), "production");
    let (_, body) = deliver(&app, "deployment_protection_rule", &event, sign(&event)).await;
    assert_eq!(body["state"], "rejected");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("is for staging, not production"),
        "{body}"
    );
    // Still waiting for approval; no change named at all.
    let mut event = protection_event(&github, "refs/heads/main", "staging");
    event["deployment"]["payload"] = json!({"steward_change": pending_id});
    let (_, body) = deliver(&app, "deployment_protection_rule", &event, sign(&event)).await;
    assert_eq!(body["state"], "rejected");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("pending_approval"),
        "{body}"
    );
    let event = protection_event(&github, "refs/heads/main", "staging");
    let (_, body) = deliver(&app, "deployment_protection_rule", &event, sign(&event)).await;
    assert_eq!(body["state"], "rejected");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("no Steward change named"),
        "{body}"
    );
    assert_eq!(received.lock().expect("lock").len(), 4);

    // Forged, tampered or unsigned requests are refused and answer nothing.
    let event = protection_event(&github, &format!("release/{approved_id}"), "staging");
    let forged = Some(steward_connectors::github::sign(
        b"not the secret",
        &serde_json::to_vec(&event).expect("json"),
    ));
    assert_eq!(
        deliver(&app, "deployment_protection_rule", &event, forged)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = event.clone();
    tampered["environment"] = json!("production");
    assert_eq!(
        deliver(&app, "deployment_protection_rule", &tampered, sign(&event))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        deliver(&app, "deployment_protection_rule", &event, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(received.lock().expect("lock").len(), 4);
    // Other events (GitHub's ping) are acknowledged and ignored.
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 7});
    let (status, body) = deliver(&app, "ping", &ping, sign(&ping)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "ignored");
    // Every review is in the change's history.
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{approved_id}"), &c.rita)
        .await;
    let reviews: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["action"].as_str())
        .filter(|a| a.starts_with("github."))
        .collect();
    assert_eq!(
        reviews,
        ["github.deployment_approved", "github.deployment_rejected"]
    );
}

/// A GitLab "Deployment Hook" event, as GitLab sends it.
fn gitlab_event(project: &str, status: &str, commit_title: &str) -> Value {
    json!({
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": "2026-11-23 10:00:00 +0000",
        "deployment_id": 15,
        "deployable_id": 796,
        "deployable_url": format!("https://gitlab.example/{project}/-/jobs/796"),
        "environment": "staging",
        "environment_tier": "staging",
        "environment_slug": "staging",
        "environment_external_url": "https://staging.example.com",
        "project": {"id": 30, "name": "fraud-platform", "path_with_namespace": project, "web_url": format!("https://gitlab.example/{project}")},
        "ref": "main",
        "short_sha": "279484c0",
        "user": {"id": 1, "name": "Dee Ployer", "username": "dee"},
        "user_url": "https://gitlab.example/dee",
        "commit_url": format!("https://gitlab.example/{project}/-/commit/279484c09fbe69ededfced8c1bb6e6d24616b468"),
        "commit_title": commit_title
    })
}

async fn gitlab_deployments_are_linked_to_their_change_or_recorded_as_one(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut cfg = crate::helpers::config(&db);
    cfg.gitlab = Some(steward_server::GitlabConfig {
        webhook_token: "gl-webhook-token".into(),
        account: steward_core::UserName::parse("gitlab").expect("name"),
        projects: [(
            "bank/fraud-platform".to_owned(),
            steward_core::TargetName::parse("fraud-scoring").expect("name"),
        )]
        .into(),
        tenant: steward_core::TenantId::default_tenant(),
    });
    let app = TestApp::spawn_with(cfg, steward_server::Clock::default()).await;
    let c = cast(&app).await;
    app.user("gitlab", &["pipeline"]).await;
    let send = |event: Value, token: Option<&'static str>, kind: &'static str| {
        let base = app.base.clone();
        async move {
            let mut request = reqwest::Client::new()
                .post(format!("{base}/api/v1/integrations/gitlab/deployments"))
                .header("x-gitlab-event", kind)
                .json(&event);
            if let Some(token) = token {
                request = request.header("x-gitlab-token", token);
            }
            let response = request.send().await.expect("sent");
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (approved_id, pending_id) = approved_and_pending(&app, &c).await;
    let token = Some("gl-webhook-token");

    // Named and approved: linked.
    let event = gitlab_event(
        "bank/fraud-platform",
        "running",
        &format!("Deploy v7 ({approved_id})"),
    );
    let (status, body) = send(event, token, "Deployment Hook").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "linked");
    assert_eq!(body["change"], approved_id.as_str());
    // Named but not approved: linked, and recorded as unapproved.
    let event = gitlab_event(
        "bank/fraud-platform",
        "success",
        &format!("Deploy v8 ({pending_id})"),
    );
    let (_, body) = send(event, token, "Deployment Hook").await;
    assert_eq!(body["outcome"], "linked");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("recorded an unapproved deployment"),
        "{body}"
    );
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{pending_id}"), &c.rita)
        .await;
    let linked = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["action"] == "gitlab.deployment_success")
        .expect("the deployment is in the change's history");
    assert_eq!(linked["details"]["gate"]["allowed"], false);
    // Naming no change: recorded as a change on the project's target, waiting for approval.
    let (_, body) = send(
        gitlab_event("bank/fraud-platform", "running", "Hotfix"),
        token,
        "Deployment Hook",
    )
    .await;
    assert_eq!(body["outcome"], "created", "{body}");
    let created = body["change"].as_str().expect("a change id").to_owned();
    let (_, shown) = app
        .get(&format!("/api/v1/changes/{created}"), &c.rita)
        .await;
    assert_eq!(shown["requester"], "gitlab");
    assert_eq!(shown["state"], "pending_approval");
    assert_eq!(shown["targets"], json!(["fraud-scoring"]));
    assert_eq!(shown["pipeline"]["commit"], "279484c0");
    // An unmapped project is recorded against the project, not silently dropped.
    let (_, body) = send(
        gitlab_event("bank/other", "running", "Hotfix"),
        token,
        "Deployment Hook",
    )
    .await;
    assert_eq!(body["outcome"], "unmatched");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("maps to no target"),
        "{body}"
    );
    // Wrong or missing token: refused; other events: ignored.
    let event = gitlab_event("bank/fraud-platform", "running", "Hotfix");
    assert_eq!(
        send(event.clone(), Some("guess"), "Deployment Hook")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(event.clone(), None, "Deployment Hook").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = send(json!({"object_kind": "push"}), token, "Push Hook").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["outcome"], "ignored");
}

both_backends!(
    the_gate_answers_with_exit_status_and_reason,
    a_pipeline_submits_its_deployment_as_a_change,
    github_deployment_protection_rules_are_answered_through_the_callback,
    gitlab_deployments_are_linked_to_their_change_or_recorded_as_one,
);
