//! The portal's inventory pages over HTTP, checked against the API's answers on the same
//! records: the model list and its filter and paging, a model's page (each field's provenance,
//! the mandatory fields it lacks, versions with who registered them, deployments, findings, and
//! the lineage as an SVG graph with a node per dataset, run, version and deployment and a path
//! per edge, plus the same lineage as a table), the reconciliation page, and tenants.

mod xml;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, Cast, TestApp, TestDb, cast};
use crate::portal_http::Browser;
use crate::tenants::Tenant;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use xml::parse_xml;

const MLFLOW: &str = "mlflow:http://mlflow.test";
const CLUSTER: &str = "kubernetes:prod-eu";

fn version(v: &str, run: &str, aliases: &[&str]) -> Value {
    json!({"version": v, "artifact_uri": format!("s3://models/fraud/{v}"),
           "digest": format!("sha256:{}", v.repeat(64)), "framework": "sklearn",
           "source": MLFLOW, "first_seen": "2026-11-01T00:00:00Z", "last_seen": "2026-11-01T00:00:00Z",
           "run_id": run, "aliases": aliases})
}

fn run(id: &str, datasets: &[&str]) -> Value {
    json!({"id": id, "found_by": MLFLOW, "name": format!("train-{id}"), "experiment": "fraud",
           "user": "dana", "started_at": "2026-10-30T00:00:00Z", "datasets": datasets,
           "first_seen": "2026-11-01T00:00:00Z", "last_seen": "2026-11-01T00:00:00Z"})
}

fn dataset(name: &str, digest: &str) -> Value {
    json!({"key": format!("{name}@{digest}"), "name": name, "digest": digest,
           "uri": format!("s3://data/{name}"), "source_type": "s3", "found_by": MLFLOW,
           "first_seen": "2026-11-01T00:00:00Z", "last_seen": "2026-11-01T00:00:00Z"})
}

fn deployment(name: &str, model: &str, version: Option<&str>) -> Value {
    json!({"key": format!("{CLUSTER}/kserve/ml-prod/{name}"), "found_by": CLUSTER, "kind": "kserve",
           "namespace": "ml-prod", "name": name, "model": model, "version": version,
           "format": "sklearn", "runtime": null, "storage_uri": null, "digest": null, "url": null,
           "ready": true, "labels": {}, "images": [], "running": true,
           "first_seen": "2026-11-01T00:00:00Z", "last_seen": "2026-11-01T00:00:00Z"})
}

/// The inventory the tests read: `fraud` (two MLflow versions from two runs over three
/// datasets, v2 the champion and served in the cluster; a risk tier discovered in MLflow; owner,
/// purpose and status attested by mia; a third version registered by the pipeline `ci`),
/// `churn` (one version, nothing stated), and a deployment of a model the inventory lacks.
async fn stock(app: &TestApp, c: &Cast) {
    let (status, body) = app
        .post(
            "/api/v1/inventory/scans",
            &c.mia,
            json!({"sources": [
                {"source": MLFLOW, "kind": "mlflow", "scanned_at": "2026-11-01T00:00:00Z",
                 "versions": [
                    {"model": "fraud", "fields": {"risk_tier": "high"}, "version": version("1", "r1", &[])},
                    {"model": "fraud", "fields": {}, "version": version("2", "r2", &["champion"])},
                    {"model": "churn", "fields": {}, "version": version("7", "r7", &[])},
                 ],
                 "runs": [run("r1", &["transactions@sha256:aa"]),
                          run("r2", &["transactions@sha256:aa", "chargebacks@sha256:bb"]),
                          run("r7", &["customers@sha256:cc"])],
                 "datasets": [dataset("transactions", "sha256:aa"), dataset("chargebacks", "sha256:bb"),
                              dataset("customers", "sha256:cc")]},
                {"source": CLUSTER, "kind": "kubernetes", "scanned_at": "2026-11-01T00:00:00Z",
                 "deployments": [deployment("fraud", "fraud", Some("2")),
                                 deployment("ghost", "ghost-model", None)]}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/models/fraud",
            Some(&c.mia),
            Some(
                json!({"owner": "mia", "purpose": "score card payments", "status": "production",
                       "title": "Fraud <scoring> & review"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ci = app.user("ci", &["pipeline"]).await;
    let (status, body) = app
        .post(
            "/api/v1/models/fraud/versions",
            &ci,
            json!({"version": "3", "artifact_uri": "s3://models/fraud/3"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `text` as the templates (askama) escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The element `<tag … id="id" …>…</tag>` of `body` (the first one; no nesting of the same tag).
fn element<'b>(body: &'b str, tag: &str, id: &str) -> &'b str {
    let open = format!(r#"<{tag} id="{id}""#);
    let at = body
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag} id={id}> in {body}"));
    let close = format!("</{tag}>");
    let end = body[at..].find(&close).expect("closed") + at + close.len();
    &body[at..end]
}

/// The row of `table` whose first cell is `first`.
fn row<'b>(table: &'b str, first: &str) -> &'b str {
    table
        .split("<tr")
        .find(|r| r.contains(&format!(">{first}<")) || r.contains(&format!(">{first} <")))
        .unwrap_or_else(|| panic!("no row for {first} in {table}"))
}

async fn names_listed(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, page) = app.get(&format!("/api/v1/models{query}"), token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn the_model_list_filters_and_pages_as_the_api_does(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    stock(&app, &c).await;
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;

    let all = rita.get("/models").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.body.contains(r#"id="nav-models""#), "{}", all.body);
    let list = element(&all.body, "table", "model-list");
    let (_, api) = app.get("/api/v1/models", &c.rita).await;
    let fraud_api = api["items"]
        .as_array()
        .and_then(|items| items.iter().find(|m| m["name"] == "fraud"))
        .expect("fraud listed");
    let fraud = element(list, "tr", "model-row-fraud");
    for shown in [
        "production".to_owned(),
        "high".to_owned(),
        "mia".to_owned(),
        format!("{}%", fraud_api["completeness"]["score"]),
        "<td>3</td>".to_owned(),
        "<td>2</td>".to_owned(),
        "ml-prod/fraud".to_owned(),
        escaped("Fraud <scoring> & review"),
    ] {
        assert!(fraud.contains(&shown), "{shown} missing from {fraud}");
    }
    let churn = element(list, "tr", "model-row-churn");
    assert!(
        churn.contains("development") && churn.contains("not stated"),
        "{churn}"
    );
    assert!(churn.contains("nowhere seen"), "{churn}");
    assert!(
        !list.contains("ghost"),
        "an orphan deployment is no model: {list}"
    );

    // The status filter is the API's; the form's "any" is no filter.
    let production = rita.get("/models?status=production").await;
    let table = element(&production.body, "table", "model-list");
    assert_eq!(
        names_listed(&app, &c.rita, "?status=production").await,
        vec!["fraud"]
    );
    assert!(
        table.contains("/models/fraud") && !table.contains("/models/churn"),
        "{table}"
    );
    assert!(
        production
            .body
            .contains(r#"<option value="production" selected>"#)
    );
    let any = rita.get("/models?status=").await;
    let table = element(&any.body, "table", "model-list");
    assert!(
        table.contains("/models/fraud") && table.contains("/models/churn"),
        "{table}"
    );
    let retired = rita.get("/models?status=retired").await;
    assert!(
        retired.body.contains(r#"id="no-models""#),
        "{}",
        retired.body
    );
    let bad = rita.get("/models?status=sunset").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("status"), "{}", bad.body);
    let unknown = rita.get("/models?owner=mia").await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );

    // A page at a time, by name, with the API's cursor.
    let first = rita.get("/models?limit=1").await;
    let table = element(&first.body, "table", "model-list");
    assert!(
        table.contains("/models/churn") && !table.contains("/models/fraud"),
        "{table}"
    );
    let next = first
        .body
        .split(r#"id="next-page" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page link")
        .replace("&#38;", "&");
    assert!(next.contains("limit=1"), "{next}");
    let second = rita.get(&next).await;
    let table = element(&second.body, "table", "model-list");
    assert!(
        table.contains("/models/fraud") && !table.contains("/models/churn"),
        "{table}"
    );
    assert!(!second.body.contains(r#"id="next-page""#));

    // As the inventory recorded it at a past time: before the scan there was nothing.
    let before = rita.get("/models?at=2020-01-01T00:00:00Z").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert!(before.body.contains(r#"id="models-at""#), "{}", before.body);
    assert!(before.body.contains(r#"id="no-models""#), "{}", before.body);
    app.stop().await;
}

async fn a_models_page_says_what_the_api_says(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    stock(&app, &c).await;
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    let page = rita.get("/models/fraud").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.header(CONTENT_TYPE), "text/html; charset=utf-8");
    let body = &page.body;
    assert!(
        !body.contains("style=") && !body.contains("<style"),
        "the CSP blocks inline styles"
    );
    let (status, api) = app.get("/api/v1/models/fraud", &c.rita).await;
    assert_eq!(status, StatusCode::OK, "{api}");

    // Each field with who or what set it, and when.
    let fields = element(body, "table", "model-fields");
    let provenance = api["provenance"].as_object().expect("provenance");
    assert!(provenance.len() >= 5, "{api}");
    for (name, p) in provenance {
        let shown = element(fields, "tr", &format!("field-{name}"));
        let by = p["by"].as_str().expect("by");
        assert!(
            shown.contains(&format!("inv-prov-{by}\">{by}<")),
            "{name}: {by} missing from {shown}"
        );
        let who = p["user"]
            .as_str()
            .or(p["source"].as_str())
            .or(p["from"].as_str());
        assert!(
            shown.contains(&escaped(who.expect("who"))),
            "{name}: {p} missing from {shown}"
        );
        assert!(shown.contains(" UTC<"), "{shown}");
    }
    let owner = element(fields, "tr", "field-owner");
    assert!(
        owner.contains(">attested<") && owner.contains(">mia<"),
        "{owner}"
    );
    let tier = element(fields, "tr", "field-risk_tier");
    assert!(
        tier.contains(">discovered<") && tier.contains(MLFLOW),
        "{tier}"
    );

    // Completeness against the template, and exactly the mandatory fields the API says are
    // missing.
    let completeness = element(body, "section", "model-completeness");
    assert!(
        completeness.contains(&format!(
            r#"id="completeness-score">{}%<"#,
            api["completeness"]["score"]
        )),
        "{completeness}"
    );
    assert!(completeness.contains("risk tier high"), "{completeness}");
    let missing: Vec<&str> = api["completeness"]["missing"]
        .as_array()
        .expect("missing")
        .iter()
        .map(|f| f.as_str().expect("field"))
        .collect();
    assert!(!missing.is_empty() && !missing.contains(&"owner"), "{api}");
    let listed = element(completeness, "ul", "missing-fields");
    assert_eq!(listed.matches("<li ").count(), missing.len(), "{listed}");
    for field in &missing {
        assert!(
            listed.contains(&format!(r#"id="missing-{field}">{field}<"#)),
            "{field} missing from {listed}"
        );
    }

    // Versions with who or what registered them; deployments with the version they serve.
    let versions = element(body, "table", "model-versions");
    for v in api["versions"].as_array().expect("versions") {
        let name = v["version"].as_str().expect("version");
        assert!(versions.contains(&format!(">{name}")), "{name}: {versions}");
    }
    assert!(
        row(versions, "2").contains(&format!("discovered by {MLFLOW}"))
            && row(versions, "2").contains("champion")
            && row(versions, "2").contains("(production)"),
        "{versions}"
    );
    assert!(
        row(versions, "3").contains("registered by ci"),
        "{versions}"
    );
    let deployments = element(body, "table", "model-deployments");
    let served = api["deployments"].as_array().expect("deployments");
    assert_eq!(served.len(), 1, "{api}");
    assert!(
        deployments.contains(">ml-prod/fraud<") && deployments.contains("<td>2</td>"),
        "{deployments}"
    );

    // The reconciliation's findings about this model, as the API lists them.
    let (_, findings) = app.get("/api/v1/inventory/reconciliation", &c.rita).await;
    let mine: Vec<&Value> = findings["items"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["model"] == "fraud")
        .collect();
    assert!(mine.len() >= 2, "{findings}");
    let shown = element(body, "table", "model-findings");
    assert_eq!(shown.matches(r#"<tr class="finding"#).count(), mine.len());
    for f in &mine {
        assert!(
            shown.contains(&escaped(f["detail"].as_str().expect("detail"))),
            "{f} missing from {shown}"
        );
    }
    assert!(!shown.contains("ghost"), "another model's finding: {shown}");

    // The lineage: a valid SVG image with a node per dataset, run, version and deployment of the
    // API's lineage and a path per edge; beside it the same as a table.
    let svg = element(body, "svg", "lineage-graph");
    let parsed = parse_xml(svg).unwrap_or_else(|e| panic!("not well-formed ({e}): {svg}"));
    let root = &parsed[0];
    assert_eq!(root.name, "svg");
    assert_eq!(root.attributes["role"], "img");
    assert_eq!(root.attributes["xmlns"], "http://www.w3.org/2000/svg");
    let title = parsed
        .iter()
        .find(|n| n.attributes.get("id").map(String::as_str) == Some("lineage-graph-title"))
        .expect("a title");
    assert_eq!(root.attributes["aria-labelledby"], "lineage-graph-title");
    assert!(title.text.starts_with("Lineage of fraud"), "{title:?}");
    let keys: Vec<&str> = parsed
        .iter()
        .filter_map(|n| n.attributes.get("data-key").map(String::as_str))
        .collect();
    let nodes = api["lineage"]["nodes"].as_array().expect("nodes");
    let mut kinds: Vec<&str> = nodes
        .iter()
        .map(|n| n["kind"].as_str().expect("kind"))
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["dataset", "deployment", "run", "version"], "{api}");
    assert_eq!(keys.len(), nodes.len(), "{svg}");
    for n in nodes {
        let key = n["key"].as_str().expect("key");
        assert!(keys.contains(&key), "no node {key} in {svg}");
        let label = n["label"].as_str().expect("label");
        assert!(
            parsed.iter().any(|t| t.name == "text" && t.text == label),
            "no label {label} in {svg}"
        );
    }
    let drawn: Vec<(&str, &str)> = parsed
        .iter()
        .filter(|n| n.name == "path" && n.attributes.contains_key("data-from"))
        .map(|n| {
            (
                n.attributes["data-from"].as_str(),
                n.attributes["data-to"].as_str(),
            )
        })
        .collect();
    let edges = api["lineage"]["edges"].as_array().expect("edges");
    assert_eq!(drawn.len(), edges.len(), "{svg}");
    for e in edges {
        let edge = (
            e["from"].as_str().expect("from"),
            e["to"].as_str().expect("to"),
        );
        assert!(drawn.contains(&edge), "no edge {edge:?} in {svg}");
    }
    assert!(
        drawn.contains(&("dataset:chargebacks@sha256:bb", "run:r2"))
            && drawn.contains(&("run:r2", "version:fraud/2"))
            && drawn.contains(&(
                "version:fraud/2",
                &format!("deployment:{CLUSTER}/kserve/ml-prod/fraud")
            )),
        "{drawn:?}"
    );
    // A version's node links to its row of the versions table.
    assert!(
        parsed
            .iter()
            .any(|n| n.name == "a"
                && n.attributes.get("href").map(String::as_str) == Some("#version-1")),
        "{svg}"
    );
    let table = element(body, "table", "lineage-list");
    for n in nodes {
        let label = escaped(n["label"].as_str().expect("label"));
        assert!(table.contains(&label), "{label} missing from {table}");
    }
    let r2 = table
        .split("<tr")
        .find(|r| r.contains(">train-r2<"))
        .unwrap_or_else(|| panic!("no row for run r2 in {table}"));
    assert!(
        r2.contains("<td>dataset transactions; dataset chargebacks</td><td>version fraud v2</td>"),
        "{r2}"
    );
    app.stop().await;
}

async fn the_reconciliation_page_lists_the_apis_findings(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    stock(&app, &c).await;
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    let page = rita.get("/inventory/reconciliation").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (_, api) = app.get("/api/v1/inventory/reconciliation", &c.rita).await;
    let findings = api["items"].as_array().expect("items");
    let counts = element(&page.body, "table", "finding-counts");
    for kind in [
        "orphan",
        "not_running",
        "unapproved",
        "in_production_without_change",
        "validation_expired",
        "digest_mismatch",
    ] {
        let n = findings.iter().filter(|f| f["kind"] == kind).count();
        let shown = element(counts, "tr", &format!("count-{kind}"));
        assert!(
            shown.contains(&format!("<td>{n}</td>")),
            "{kind}: {n} expected in {shown}"
        );
    }
    assert!(findings.iter().any(|f| f["kind"] == "orphan"), "{api}");
    let table = element(&page.body, "table", "findings");
    assert_eq!(
        table.matches(r#"<tr class="finding"#).count(),
        findings.len()
    );
    for f in findings {
        assert!(
            table.contains(&escaped(f["detail"].as_str().expect("detail"))),
            "{f} missing from {table}"
        );
    }
    assert!(
        table.contains(&format!("{CLUSTER}/kserve/ml-prod/ghost")),
        "what runs but is not registered: {table}"
    );
    // Paged with the API's cursor.
    let first = rita.get("/inventory/reconciliation?limit=1").await;
    let table = element(&first.body, "table", "findings");
    assert_eq!(table.matches(r#"<tr class="finding"#).count(), 1);
    assert!(first.body.contains(r#"id="next-page""#));
    let bad = rita.get("/inventory/reconciliation?cursor=nope").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    app.stop().await;
}

async fn another_tenant_sees_none_of_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    stock(&app, &c).await;
    let b = Tenant::create(&app, "tenant-b").await;
    let b_auditor = b.user(&app, "b-auditor", &["auditor"]).await;
    let mut outsider = Browser::new(&app);
    outsider.sign_in(&b_auditor).await;
    let page = outsider.get("/models/fraud").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    assert_eq!(page.header(CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(!page.body.contains("Fraud"), "{}", page.body);
    let list = outsider.get("/models").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        !list.body.contains("fraud") && !list.body.contains("churn"),
        "{}",
        list.body
    );
    let findings = outsider.get("/inventory/reconciliation").await;
    assert_eq!(findings.status, StatusCode::OK, "{}", findings.body);
    assert!(
        !findings.body.contains("ghost") && !findings.body.contains("fraud"),
        "{}",
        findings.body
    );
    // In its own tenant, the name is simply unknown.
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    let unknown = rita.get("/models/no-such-model").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    // Signed out, each page asks for a sign-in.
    let stranger = Browser::new(&app);
    for path in ["/models", "/models/fraud", "/inventory/reconciliation"] {
        let page = stranger.get(path).await;
        assert_eq!(
            page.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains(r#"id="signin""#), "{}", page.body);
        assert!(!page.body.contains("Fraud"), "{}", page.body);
    }
    // A bearer token of the installation admin reads them as the API does (scripts).
    let (status, _) = app.get("/models/fraud", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

both_backends!(
    the_model_list_filters_and_pages_as_the_api_does,
    a_models_page_says_what_the_api_says,
    the_reconciliation_page_lists_the_apis_findings,
    another_tenant_sees_none_of_it,
);
