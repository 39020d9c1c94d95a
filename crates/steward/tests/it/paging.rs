//! Pagination: every list answers `{"items", "next_cursor"}`, takes `cursor` and `limit`, and pages
//! by key, so walking a list to its end returns every item exactly once even while new ones arrive;
//! bad limits, cursors and unknown parameters are 422s naming them; the CLI's `--limit` / `--all`.

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, field_names, id, items, join_all,
    run_steward,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Submits `n` changes as `token`, `concurrency` at a time (the submission path group-commits);
/// their ids.
async fn submit_many(app: &TestApp, token: &str, n: usize, concurrency: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let batch = left.min(concurrency);
        let submissions = (0..batch)
            .map(|_| app.submit(token, change(json!({}))))
            .collect();
        for (status, body) in join_all(submissions).await {
            assert_eq!(status, StatusCode::CREATED, "{body}");
            ids.push(id(&body));
        }
        left -= batch;
    }
    ids
}

fn number(id: &str) -> u64 {
    id.trim_start_matches("CHG-").parse().expect("CHG-n")
}

/// Walks `/api/v1/changes` with `limit`, calling `between` after the first page; the ids in the
/// order the pages gave them.
async fn walk_changes(
    app: &TestApp,
    token: &str,
    limit: usize,
    between: impl AsyncFnOnce(),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut between = Some(between);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/changes?limit={limit}&cursor={c}"),
            None => format!("/api/v1/changes?limit={limit}"),
        };
        let (status, page) = app.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let page_items = items(&page);
        assert!(page_items.len() <= limit, "{} > {limit}", page_items.len());
        seen.extend(page_items.iter().map(id));
        if let Some(between) = between.take() {
            between().await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(page_items.len(), limit, "only the last page is short");
                cursor = Some(next.to_owned());
            }
            None => return seen,
        }
    }
}

async fn paging_through_a_thousand_changes_returns_each_exactly_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let submitted = submit_many(&app, &c.rita, 1000, 25).await;
    let expected: BTreeSet<String> = submitted.iter().cloned().collect();
    assert_eq!(expected.len(), 1000);

    // Changes submitted while someone pages do not shift the pages: they are newer than the
    // first page, so the walk neither repeats nor skips anything that was there when it began.
    let mut late = Vec::new();
    let seen = walk_changes(&app, &c.rita, 37, async || {
        late.extend(submit_many(&app, &c.rita, 5, 5).await);
    })
    .await;
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no change twice");
    assert_eq!(
        unique, expected,
        "every change once, none of the later ones"
    );
    assert!(
        seen.windows(2).all(|w| number(&w[0]) > number(&w[1])),
        "newest first"
    );

    let seen = walk_changes(&app, &c.rita, 500, async || {}).await;
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), unique.len()), (1005, 1005));
    assert!(expected.iter().chain(&late).all(|id| unique.contains(id)));
    app.stop().await;
}

/// Every GET that answers a list, with what it needs to answer at all.
const LISTS: &[&str] = &[
    "/api/v1/changes",
    "/api/v1/incidents",
    "/api/v1/models",
    "/api/v1/targets",
    "/api/v1/users",
    "/api/v1/catalog",
    "/api/v1/windows",
    "/api/v1/detectors",
    "/api/v1/inventory/scans",
    "/api/v1/inventory/deployments",
    "/api/v1/inventory/datasets",
    "/api/v1/inventory/runs",
    "/api/v1/inventory/reconciliation",
    "/api/v1/notifications",
    "/api/v1/policy/inputs?since=2020-01-01T00:00:00Z",
    "/api/v1/audit/checkpoints",
    "/api/v1/audit/leaves",
    "/api/v1/metrics?name=error_rate",
];

fn with(path: &str, query: &str) -> String {
    let join = if path.contains('?') { '&' } else { '?' };
    format!("{path}{join}{query}")
}

async fn every_list_pages_and_refuses_what_it_does_not_take(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    app.submit_ok(&c.rita, change(json!({}))).await;
    for list in LISTS {
        let (status, page) = app.get(list, ADMIN_TOKEN).await;
        assert_eq!(status, StatusCode::OK, "{list}: {page}");
        items(&page);
        for limit in ["0", "501", "x", "-1"] {
            let (status, body) = app
                .get(&with(list, &format!("limit={limit}")), ADMIN_TOKEN)
                .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{list} limit={limit}"
            );
            assert_eq!(field_names(&body), ["limit"], "{list}: {body}");
        }
        for (bad, hint) in [
            ("sate=closed", "takes"),
            ("offset=10", "cursor"),
            ("page=2", "cursor"),
        ] {
            let (status, body) = app.get(&with(list, bad), ADMIN_TOKEN).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{list}?{bad}");
            let name = bad.split('=').next().unwrap_or_default();
            assert_eq!(field_names(&body), [name], "{list}: {body}");
            assert!(
                body["details"]["fields"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(hint)),
                "{list}?{bad}: {body}"
            );
        }
        let (status, body) = app
            .get(&with(list, "cursor=bm90LWEtY3Vyc29y"), ADMIN_TOKEN)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{list}: {body}");
        assert_eq!(field_names(&body), ["cursor"], "{list}: {body}");
    }

    // A misspelt filter is named, not ignored, beside the ones the list does take.
    let (status, body) = app.get("/api/v1/changes?sate=closed", &c.rita).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_names(&body), ["sate"]);
    let message = body["details"]["fields"][0]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        message.contains("state") && message.contains("cursor"),
        "{message}"
    );
    // Endpoints that are not lists refuse unknown parameters too.
    let (status, body) = app
        .get(
            "/api/v1/changes/CHG-1/gate?target=fraud-scoring&environment=staging&bogus=1",
            &c.rita,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), ["bogus"]);

    // `GET /targets` takes a page size now, and its cursor leads on to the rest.
    for i in 0..11 {
        app.target(&format!("extra-{i:02}"), "mia", "staging", "low", &[])
            .await;
    }
    let (status, first) = app.get("/api/v1/targets?limit=5", &c.rita).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(items(&first).len(), 5);
    let cursor = first["next_cursor"].as_str().expect("a cursor: 12 targets");
    let (_, second) = app
        .get(&format!("/api/v1/targets?limit=5&cursor={cursor}"), &c.rita)
        .await;
    let names = |page: &Value| -> Vec<String> {
        items(page)
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    };
    let (first_names, second_names) = (names(&first), names(&second));
    assert!(
        first_names.iter().all(|n| !second_names.contains(n)),
        "no overlap"
    );
    assert!(first_names.last() < second_names.first(), "by name");
    // A cursor belongs to its list.
    let (status, body) = app
        .get(&format!("/api/v1/changes?cursor={cursor}"), &c.rita)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), ["cursor"]);

    // Lists carry summaries; `show` has the whole record.
    let (_, changes) = app.get("/api/v1/changes", &c.rita).await;
    let summary = &items(&changes)[0];
    for key in [
        "id",
        "title",
        "state",
        "type",
        "risk_level",
        "requester",
        "targets",
        "created_at",
    ] {
        assert!(summary.get(key).is_some(), "{key} missing from {summary}");
    }
    assert!(summary.get("implementation_plan").is_none(), "{summary}");
    let (_, whole) = app
        .get(&format!("/api/v1/changes/{}", id(summary)), &c.rita)
        .await;
    assert!(whole["implementation_plan"].is_string(), "{whole}");

    // The OpenAPI document describes the page and its parameters.
    let (_, doc) = app.get("/api/v1/openapi.json", ADMIN_TOKEN).await;
    let get = &doc["paths"]["/api/v1/targets"]["get"];
    let params: Vec<&str> = get["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(params, ["cursor", "limit"], "{get:#}");
    let schema = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap_or_default();
    let name = schema.rsplit('/').next().unwrap_or_default();
    let page = &doc["components"]["schemas"][name]["properties"];
    assert!(
        page.get("items").is_some() && page.get("next_cursor").is_some(),
        "{schema}: {page:#}"
    );
    app.stop().await;
}

async fn the_cli_pages_and_says_how_to_get_the_rest(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let submitted = submit_many(&app, &c.rita, 7, 7).await;
    let run = |args: &[&str]| run_steward(&app.base, &c.rita, args);

    let page = run(&["change", "list", "--limit", "3"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    let lines: Vec<&str> = page.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 3 + 1,
        "header, three rows, the hint:\n{}",
        page.stdout
    );
    assert!(
        lines[4].contains("--all") && lines[4].contains("--limit 500"),
        "{}",
        page.stdout
    );
    let whole = run(&["change", "list"]);
    assert!(
        !whole.stdout.contains("--all"),
        "a whole list has no hint:\n{}",
        whole.stdout
    );

    let json_page = run(&["change", "list", "--limit", "3", "--output", "json"]);
    let json_page: Value = serde_json::from_str(&json_page.stdout).expect("json");
    assert_eq!(items(&json_page).len(), 3);
    assert!(
        json_page["next_cursor"].is_string(),
        "as the API answered: {json_page}"
    );

    let all = run(&[
        "change", "list", "--all", "--limit", "2", "--output", "json",
    ]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let all: Value = serde_json::from_str(&all.stdout).expect("json");
    assert_eq!(all["next_cursor"], Value::Null);
    let ids: BTreeSet<String> = items(&all).iter().map(id).collect();
    assert_eq!(ids, submitted.iter().cloned().collect::<BTreeSet<_>>());
    let text = run(&["change", "list", "--all", "--limit", "2"]);
    assert_eq!(text.stdout.lines().count(), 1 + 7, "{}", text.stdout);

    for limit in ["0", "501"] {
        let refused = run(&["change", "list", "--limit", limit]);
        assert_eq!(
            refused.code, 2,
            "clap refuses --limit {limit}: {}",
            refused.stderr
        );
    }
    let targets = run_steward(&app.base, ADMIN_TOKEN, &["target", "list", "--limit", "1"]);
    assert_eq!(targets.code, 0, "{}", targets.stderr);
    assert!(
        targets
            .stdout
            .lines()
            .last()
            .is_some_and(|l| !l.contains("--all")),
        "one target, one page: {}",
        targets.stdout
    );
    app.target("second-model", "mia", "staging", "low", &[])
        .await;
    let targets = run_steward(&app.base, ADMIN_TOKEN, &["target", "list", "--limit", "1"]);
    assert!(
        targets
            .stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains("--all")),
        "{}",
        targets.stdout
    );
    app.stop().await;
}

both_backends!(
    paging_through_a_thousand_changes_returns_each_exactly_once,
    every_list_pages_and_refuses_what_it_does_not_take,
    the_cli_pages_and_says_how_to_get_the_rest,
);
