//! CLI and API habits a script relies on: the gate's exit statuses, JSON errors with
//! `--output json`, hints that name flags which exist, 405 and 201 answers, and every time flag
//! and change-file time read by the one parser.

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Run, TestApp, TestDb, cast, change, id, run_steward, run_steward_with,
};
use chrono::{Duration, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The one line of JSON a failed `--output json` run wrote to stderr.
fn json_error(run: &Run) -> Value {
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    let body: Value = serde_json::from_str(&run.stderr)
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", run.stderr));
    assert!(body["error"].is_string(), "{body}");
    assert!(body.get("details").is_some(), "{body}");
    body
}

fn stdout_json(run: &Run) -> Value {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

/// 0 allowed, 1 refused, 2 for anything that is not an answer.
async fn the_gate_exits_0_allowed_1_refused_2_error(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ci = app.user("ci-deployer", &["pipeline"]).await;
    let open_now = json!({"start": at(Duration::hours(-1)), "end": at(Duration::hours(1))});
    let change_id = id(&app
        .submit_ok(&c.rita, change(json!({"window": open_now})))
        .await);
    let ask = |server: &str, token: &str, change: &str, environment: &str, extra: &[&str]| {
        let mut args = vec![
            "gate",
            "--change",
            change,
            "--target",
            "fraud-scoring",
            "--environment",
            environment,
        ];
        args.extend(extra);
        run_steward(server, token, &args)
    };
    let gate = |server: &str, token: &str, extra: &[&str]| {
        ask(server, token, &change_id, "staging", extra)
    };

    let refused = gate(&app.base, &ci, &[]);
    assert_eq!(
        refused.code, 1,
        "pending approval is a refusal: {}",
        refused.stderr
    );
    app.decide(&c.mia, &change_id, "approve", "ok").await;
    let allowed = gate(&app.base, &ci, &[]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert!(
        allowed.stdout.starts_with("allowed: "),
        "{}",
        allowed.stdout
    );

    // Not answers: an unknown change, a bad token, a server that is not there, bad input.
    let unknown = ask(&app.base, &ci, "CHG-999", "staging", &[]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no change CHG-999"),
        "{}",
        unknown.stderr
    );
    let bad_token = gate(&app.base, "stw_not_a_token", &[]);
    assert_eq!(bad_token.code, 2, "{}", bad_token.stderr);
    let down = gate("http://127.0.0.1:9", &ci, &[]);
    assert_eq!(down.code, 2, "{}", down.stderr);
    assert!(
        down.stderr.contains("cannot reach the Steward server"),
        "{}",
        down.stderr
    );
    let bad_value = ask(&app.base, &ci, &change_id, "prod", &[]);
    assert_eq!(bad_value.code, 2, "{}", bad_value.stderr);
    let missing_flag = run_steward(&app.base, &ci, &["gate", "--change", &change_id]);
    assert_eq!(
        missing_flag.code, 2,
        "clap's usage error: {}",
        missing_flag.stderr
    );
    let unknown_flag = gate(&app.base, &ci, &["--frobnicate"]);
    assert_eq!(unknown_flag.code, 2, "{}", unknown_flag.stderr);

    // The same statuses with --output json; what is not an answer is a JSON error on stderr.
    let allowed = gate(&app.base, &ci, &["--output", "json"]);
    assert_eq!(stdout_json(&allowed)["allowed"], true);
    let down = gate("http://127.0.0.1:9", &ci, &["--output", "json"]);
    assert_eq!(down.code, 2);
    assert!(
        json_error(&down)["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach the Steward server")),
        "{}",
        down.stderr
    );
    let bad_token = gate(&app.base, "stw_not_a_token", &["--output", "json"]);
    assert_eq!(bad_token.code, 2);
    json_error(&bad_token);
    let missing_flag = run_steward(
        &app.base,
        &ci,
        &["gate", "--change", &change_id, "--output", "json"],
    );
    assert_eq!(missing_flag.code, 2);
    let usage = json_error(&missing_flag);
    assert_eq!(
        usage["error"],
        "the following required arguments were not provided: --target <TARGET> --environment <ENVIRONMENT>"
    );
}

/// With `--output json`, every error is one line of JSON on stderr: the server's own error body
/// when it refused (with its details), and `{"error", "details"}` for the CLI's own.
async fn json_output_makes_errors_json(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;

    // A 404 from the server: its own body.
    let missing = run_steward(
        &app.base,
        &c.rita,
        &["change", "show", "CHG-999", "-o", "json"],
    );
    assert_eq!(missing.code, 1);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    let body = json_error(&missing);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no change CHG-999")),
        "{body}"
    );
    // A 422 keeps its fields.
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "title: x\nenvironment: prod\n").expect("write");
    let bad = bad.to_str().expect("path");
    let invalid = run_steward(
        &app.base,
        &c.rita,
        &["change", "submit", bad, "--output=json"],
    );
    assert_eq!(invalid.code, 1);
    let body = json_error(&invalid);
    let fields: Vec<&str> = body["details"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(fields.contains(&"environment"), "{body}");
    // The CLI's own errors: a missing file, a bad time, a bad zone.
    for args in [
        vec!["change", "submit", "/no/such/file.yaml"],
        vec!["calendar", "--from", "next tuesday"],
        vec!["calendar", "--from", "2026-12-01", "--tz", "Mars/Olympus"],
    ] {
        let mut args = args;
        args.extend(["--output", "json"]);
        let run = run_steward(&app.base, &c.rita, &args);
        assert_eq!(run.code, 1, "{args:?}");
        assert_eq!(json_error(&run)["details"], Value::Null, "{args:?}");
    }
    // A scan with a source that cannot be read: the report on stdout, only the error on stderr.
    let scan = run_steward(
        &app.base,
        &c.mia,
        &[
            "inventory",
            "scan",
            "--mlflow",
            "http://127.0.0.1:9",
            "--output",
            "json",
        ],
    );
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    assert!(
        json_error(&scan)["error"]
            .as_str()
            .is_some_and(|e| e.contains("could not be scanned")),
        "{}",
        scan.stderr
    );
    // Without --output json the same error stays one readable line.
    let text = run_steward(&app.base, &c.rita, &["change", "show", "CHG-999"]);
    assert!(text.stderr.starts_with("error: "), "{}", text.stderr);
    assert!(serde_json::from_str::<Value>(&text.stderr).is_err());
}

/// The conflict hint names `--acknowledge-conflict`, and `change schedule` takes it; its
/// `--start`/`--end` are read in `--tz`.
async fn scheduling_acknowledges_conflicts_from_the_cli(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let ivan = app.user("ivan", &["requester"]).await;
    let window = json!({"start": "2027-02-01T22:00:00Z", "end": "2027-02-01T23:00:00Z"});
    let first = id(&app
        .submit_ok(&c.rita, change(json!({"window": window})))
        .await);
    app.decide(&c.mia, &first, "approve", "ok").await;
    let second = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    app.decide(&c.mia, &second, "approve", "ok").await;
    // 22:35–22:45 UTC, written as local time in Kolkata.
    let schedule = |extra: &[&str]| {
        let mut args = vec![
            "change",
            "schedule",
            &second,
            "--start",
            "2027-02-02 04:05",
            "--end",
            "2027-02-02T04:15",
            "--tz",
            "Asia/Kolkata",
        ];
        args.extend(extra);
        run_steward(&app.base, &ivan, &args)
    };
    let refused = schedule(&[]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--acknowledge-conflict CHG-n"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(&first), "{}", refused.stderr);
    let scheduled = schedule(&["--acknowledge-conflict", &first, "--output", "json"]);
    let scheduled = stdout_json(&scheduled);
    assert_eq!(scheduled["state"], "scheduled", "{scheduled}");
    for (key, expected) in [
        ("start", "2027-02-01T22:35:00Z"),
        ("end", "2027-02-01T22:45:00Z"),
    ] {
        let got = scheduled["scheduled_window"][key].as_str().expect("time");
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(got).expect("rfc 3339"),
            chrono::DateTime::parse_from_rfc3339(expected).expect("rfc 3339"),
            "{scheduled}"
        );
    }
}

/// A 405 carries the JSON error body; every 201 carries a `Location` that answers a GET.
async fn method_not_allowed_is_json_and_created_has_a_location(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;

    let response = app
        .http
        .delete(format!("{}/api/v1/changes", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");
    let body: Value = response.json().await.expect("a JSON body");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("DELETE")),
        "{body}"
    );

    let created = [
        (
            "/api/v1/users",
            ADMIN_TOKEN.to_owned(),
            json!({"name": "nina", "roles": ["requester"]}),
            "name",
        ),
        (
            "/api/v1/targets",
            ADMIN_TOKEN.to_owned(),
            json!({"name": "ledger", "kind": "data_source", "owner": "mia", "environment": "staging", "criticality": "low"}),
            "name",
        ),
        (
            "/api/v1/windows",
            ADMIN_TOKEN.to_owned(),
            json!({"name": "patching", "kind": "maintenance", "scope": "everywhere", "timezone": "UTC",
                   "starts": "2027-03-06T01:00", "ends": "2027-03-06T05:00", "reason": "patching"}),
            "name",
        ),
        ("/api/v1/changes", c.rita.clone(), change(json!({})), "id"),
        (
            "/api/v1/incidents",
            c.mia.clone(),
            json!({"title": "scores drift", "severity": "sev3", "targets": ["fraud-scoring"]}),
            "id",
        ),
    ];
    for (path, token, body, key) in created {
        let response = app
            .http
            .post(format!("{}{path}", app.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED, "{path}");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no Location"))
            .to_owned();
        let created: Value = response.json().await.expect("body");
        let name = created[key].as_str().expect("name or id");
        assert_eq!(location, format!("{path}/{name}"));
        let (status, fetched) = app.call(Method::GET, &location, Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "GET {location}: {fetched}");
        assert_eq!(fetched[key], name, "{fetched}");
    }
}

/// `calendar --from/--to`, `window create --starts/--ends` and a change file's window take a
/// date, a local time (in `--tz` or the window's zone) or RFC 3339 with an offset.
async fn every_time_is_read_by_the_one_parser(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let run = |token: &str, args: &[&str]| run_steward(&app.base, token, args);

    let feed = run(&c.rita, &["calendar", "--from", "2026-12-01"]);
    assert_eq!(feed.code, 0, "{}", feed.stderr);
    assert!(
        feed.stdout.starts_with("BEGIN:VCALENDAR"),
        "{}",
        feed.stdout
    );
    let feed = run(
        &c.rita,
        &[
            "calendar",
            "--from",
            "2026-12-01 08:00",
            "--to",
            "2027-01-01",
            "--tz",
            "Europe/London",
        ],
    );
    assert_eq!(feed.code, 0, "{}", feed.stderr);
    let bad = run(&c.rita, &["calendar", "--from", "01/12/2026"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .contains("--from '01/12/2026' is not a time: write 2026-12-01T22:00:00Z"),
        "{}",
        bad.stderr
    );

    // A window: a local time in its zone, or an offset converted into it.
    let window = |name: &str, starts: &str, ends: &str| {
        run(
            ADMIN_TOKEN,
            &[
                "window",
                "create",
                name,
                "--kind",
                "freeze",
                "--timezone",
                "America/New_York",
                "--starts",
                starts,
                "--ends",
                ends,
                "--reason",
                "books close",
                "--output",
                "json",
            ],
        )
    };
    let local = stdout_json(&window("q4-local", "2026-12-28 00:00", "2027-01-04T00:00"));
    let offset = stdout_json(&window(
        "q4-offset",
        "2026-12-28T05:00:00Z",
        "2027-01-04T00:00-05:00",
    ));
    for created in [&local, &offset] {
        assert_eq!(created["starts"], "2026-12-28T00:00", "{created}");
        assert_eq!(created["ends"], "2027-01-04T00:00", "{created}");
        assert_eq!(created["timezone"], "America/New_York");
    }
    let dated = stdout_json(&window("q4-dates", "2026-12-28", "2027-01-04"));
    assert_eq!(dated["starts"], "2026-12-28T00:00", "{dated}");
    // Without --timezone, the window is in --tz.
    let in_tz = stdout_json(&run_steward_with(
        &app.base,
        ADMIN_TOKEN,
        &[
            "window",
            "create",
            "kolkata",
            "--kind",
            "maintenance",
            "--start",
            "2026-12-05 01:00",
            "--end",
            "2026-12-05 05:00",
            "--reason",
            "patching",
            "--output",
            "json",
        ],
        &[("STEWARD_TZ", "Asia/Kolkata")],
    ));
    assert_eq!(in_tz["timezone"], "Asia/Kolkata", "{in_tz}");
    assert_eq!(in_tz["starts"], "2026-12-05T01:00", "{in_tz}");

    // A change file with a local window, read in --tz.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("change.yaml");
    let mut doc =
        change(json!({"window": {"start": "2027-03-01 22:00", "end": "2027-03-01 23:30"}}));
    doc["window"]["end"] = json!("2027-03-01T23:30");
    std::fs::write(&file, serde_json::to_string(&doc).expect("json")).expect("write");
    let file = file.to_str().expect("path");
    let submitted = stdout_json(&run(
        &c.rita,
        &[
            "change",
            "submit",
            file,
            "--tz",
            "Asia/Kolkata",
            "--output",
            "json",
        ],
    ));
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time")).expect("rfc 3339")
    };
    assert_eq!(
        instant(&submitted["window"]["start"]),
        instant(&json!("2027-03-01T16:30:00Z")),
        "{submitted}"
    );
    assert_eq!(
        instant(&submitted["window"]["end"]),
        instant(&json!("2027-03-01T18:00:00Z"))
    );
    let eval = run(
        &c.rita,
        &["policy", "eval", "--change", file, "--tz", "Asia/Kolkata"],
    );
    assert_eq!(eval.code, 0, "{}", eval.stderr);
}

both_backends!(
    the_gate_exits_0_allowed_1_refused_2_error,
    json_output_makes_errors_json,
    scheduling_acknowledges_conflicts_from_the_cli,
    method_not_allowed_is_json_and_created_has_a_location,
    every_time_is_read_by_the_one_parser,
);
