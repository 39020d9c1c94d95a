//! The portal's audit log viewer over HTTP, checked against the API it reads: the list's indexes
//! are `GET /api/v1/audit/leaves`'s, its filters narrow it as the API's do, the checkpoint shown
//! is `GET /api/v1/audit/checkpoint`'s, an event's proof is `GET /api/v1/audit/proofs/inclusion`'s
//! and says verified, and the export downloads as a tar of the bundle `steward audit export`
//! writes, which `steward audit verify` accepts offline. Tenants: a tenant's auditor reads its
//! own entries and sees every other one withheld. Both backends.

mod export;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id};
use crate::portal_http::{Browser, Page};
use crate::tenants::Tenant;
use export::{download, unpack, verify_offline};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A log with some history: the cast, a target, three changes approved by mia.
async fn history(app: &TestApp) -> Vec<String> {
    let c = cast(app).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let changed = app.submit_ok(&c.rita, change(json!({}))).await;
        let (status, body) = app.decide(&c.mia, &id(&changed), "approve", "ok").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id(&changed));
    }
    ids
}

/// The leaf indexes of the list's rows, in page order.
fn row_indexes(page: &Page) -> Vec<u64> {
    page.body
        .split(r#"<tr id="event-"#)
        .skip(1)
        .map(|rest| {
            rest[..rest.find('"').expect("closing quote")]
                .parse()
                .expect("an index")
        })
        .collect()
}

/// The indexes of a page of `GET /api/v1/audit/leaves` with `query`.
async fn api_indexes(app: &TestApp, token: &str, query: &str) -> Vec<u64> {
    let (status, page) = app
        .get(&format!("/api/v1/audit/leaves?{query}"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["index"].as_u64().expect("index"))
        .collect()
}

/// The text of the element with `id`, up to its first child element, as the browser reads it.
fn text_of(page: &Page, id: &str) -> String {
    let marker = format!(r#"id="{id}""#);
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let rest = &page.body[at..];
    let start = rest.find('>').expect("tag end") + 1;
    let end = rest[start..].find('<').expect("next tag") + start;
    unescape(&rest[start..end])
}

/// The value of attribute `name` on the element with `id`.
fn attribute<'a>(page: &'a Page, id: &str, name: &str) -> &'a str {
    let marker = format!(r#"id="{id}""#);
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let tag = &page.body[page.body[..at].rfind('<').expect("tag start")..];
    let tag = &tag[..tag.find('>').expect("tag end")];
    let attr = format!(r#"{name}=""#);
    let from = tag
        .find(&attr)
        .unwrap_or_else(|| panic!("no {name} on #{id}: {tag}"))
        + attr.len();
    &tag[from..from + tag[from..].find('"').expect("closing quote")]
}

/// HTML text or an attribute value as the browser reads it (askama escapes these five).
fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// The cells of a row (`event-<index>`) with `class`, e.g. the actor's.
fn cells<'a>(page: &'a Page, class: &str) -> Vec<&'a str> {
    let marker = format!(r#"<td class="{class}">"#);
    page.body
        .split(&marker)
        .skip(1)
        .map(|rest| &rest[..rest.find("</td>").expect("cell end")])
        .collect()
}

async fn signed_in<'a>(app: &'a TestApp, token: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    let answer = browser.sign_in(token).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}

async fn the_list_shows_the_apis_leaves_filtered_as_the_api_filters(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let changes = history(&app).await;
    let auditor = app.user("audra", &["auditor"]).await;
    let browser = signed_in(&app, &auditor).await;

    let list = browser.get("/audit").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    for id in [
        "audit-events",
        "audit-checkpoint",
        "audit-export",
        "audit-filters",
        "nav-audit",
    ] {
        assert!(list.body.contains(&format!(r#"id="{id}""#)), "#{id}");
    }
    // The checkpoint shown is the API's (read after the page: nothing was written since).
    let (_, checkpoint) = app.get("/api/v1/audit/checkpoint", &auditor).await;
    let size = checkpoint["size"].as_u64().expect("size");
    let root = checkpoint["root"].as_str().expect("root");
    assert_eq!(
        attribute(&list, "audit-checkpoint", "data-size"),
        size.to_string()
    );
    assert_eq!(attribute(&list, "audit-checkpoint", "data-root"), root);
    assert_eq!(text_of(&list, "checkpoint-root"), root);
    assert_eq!(
        text_of(&list, "checkpoint-signature"),
        "verified with the log's public key"
    );
    let (_, key) = app.get("/api/v1/audit/public-key", &auditor).await;
    assert_eq!(
        text_of(&list, "audit-public-key"),
        key["key"].as_str().expect("key")
    );
    assert_eq!(
        attribute(&list, "audit-public-key-link", "href"),
        "/api/v1/audit/public-key"
    );

    // Newest first, every leaf, with the API's indexes.
    let shown = row_indexes(&list);
    let mut every = api_indexes(&app, &auditor, "limit=500").await;
    every.reverse();
    assert_eq!(shown, every);
    assert_eq!(
        shown,
        api_indexes(&app, &auditor, "order=newest&limit=100").await
    );
    assert!(shown.len() > 10, "{shown:?}");

    // Filters narrow it exactly as the API's do.
    let by_mia = browser.get("/audit?actor=mia").await;
    assert_eq!(by_mia.status, StatusCode::OK, "{}", by_mia.body);
    let mia = row_indexes(&by_mia);
    assert_eq!(
        mia,
        api_indexes(&app, &auditor, "order=newest&actor=mia").await
    );
    assert_eq!(mia.len(), 3, "mia approved three changes: {mia:?}");
    assert!(cells(&by_mia, "audit-actor").iter().all(|a| *a == "mia"));
    assert_eq!(attribute(&by_mia, "filter-actor", "value"), "mia");

    let first = &changes[0];
    let about = browser
        .get(&format!("/audit?subject={first}&subject_type=change"))
        .await;
    let about_first = row_indexes(&about);
    assert_eq!(
        about_first,
        api_indexes(
            &app,
            &auditor,
            &format!("order=newest&subject={first}&subject_type=change")
        )
        .await
    );
    assert!(
        about_first.len() >= 2,
        "submitted and approved: {about_first:?}"
    );
    assert!(
        cells(&about, "audit-subject")
            .iter()
            .all(|s| *s == format!("change {first}"))
    );
    let approvals = browser
        .get(&format!("/audit?subject={first}&action=change.approved"))
        .await;
    assert_eq!(row_indexes(&approvals).len(), 1, "{}", approvals.body);
    assert!(cells(&approvals, "audit-action") == ["change.approved"]);
    let nobody = browser.get("/audit?actor=nobody-at-all").await;
    assert!(nobody.body.contains(r#"id="no-events""#), "{}", nobody.body);
    // The form's empty fields are no filter.
    let blank = browser
        .get("/audit?actor=&subject=&subject_type=&action=")
        .await;
    assert_eq!(row_indexes(&blank), shown);

    // Paging: the next page carries the filters and continues where the first stopped.
    let two = browser.get("/audit?limit=2").await;
    assert_eq!(row_indexes(&two), shown[..2]);
    let next = unescape(attribute(&two, "next-page", "href"));
    let after = browser.get(&next).await;
    assert_eq!(row_indexes(&after), shown[2..4]);
    let mia_page = browser.get("/audit?actor=mia&limit=2").await;
    let next = unescape(attribute(&mia_page, "next-page", "href"));
    assert!(next.contains("actor=mia"), "{next}");
    assert_eq!(row_indexes(&browser.get(&next).await), mia[2..]);

    // A bad filter is named.
    let bad = browser.get("/audit?order=sideways").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("order"), "{}", bad.body);
    app.stop().await;
}

async fn an_events_proof_is_the_apis_and_verifies(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    history(&app).await;
    let auditor = app.user("audra", &["auditor"]).await;
    let browser = signed_in(&app, &auditor).await;
    let approvals = api_indexes(&app, &auditor, "action=change.approved").await;
    let index = approvals[1];

    let page = browser.get(&format!("/audit/{index}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (status, proof) = app
        .get(
            &format!("/api/v1/audit/proofs/inclusion?index={index}"),
            &auditor,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let (_, checkpoint) = app.get("/api/v1/audit/checkpoint", &auditor).await;
    let size = proof["size"].as_u64().expect("size");
    let root = checkpoint["root"].as_str().expect("root");
    assert_eq!(checkpoint["size"], size);
    let path: Vec<&str> = proof["proof"]
        .as_array()
        .expect("path")
        .iter()
        .map(|h| h.as_str().expect("hex"))
        .collect();
    assert!(!path.is_empty());
    assert_eq!(attribute(&page, "proof", "data-index"), index.to_string());
    assert_eq!(attribute(&page, "proof", "data-size"), size.to_string());
    assert_eq!(attribute(&page, "proof", "data-root"), root);
    assert_eq!(attribute(&page, "proof", "data-path"), path.join(" "));
    assert_eq!(
        attribute(&page, "proof", "data-leaf-hash"),
        proof["leaf_hash"].as_str().expect("leaf hash")
    );
    assert_eq!(
        text_of(&page, "event-leaf-hash"),
        proof["leaf_hash"].as_str().expect("leaf hash")
    );
    for hash in &path {
        assert!(page.body.contains(hash), "{hash} listed");
    }
    assert_eq!(
        text_of(&page, "proof-verified"),
        format!(
            "Steward's check: Included in the checkpoint of size {size} with root {root}: verified"
        )
    );
    assert_eq!(attribute(&page, "proof-verified", "data-verified"), "true");
    assert!(page.body.contains(r#"id="proof-browser-check""#));
    assert_eq!(text_of(&page, "event-actor"), "mia");
    assert_eq!(text_of(&page, "event-action"), "change.approved");
    // The entry shown is the leaf's, byte for byte (escaped as HTML).
    let (_, leaf) = app
        .get(
            &format!("/api/v1/audit/leaves?from={index}&limit=1"),
            &auditor,
        )
        .await;
    let entry = leaf["items"][0]["entry"].as_str().expect("entry");
    assert_eq!(text_of(&page, "audit-entry"), entry);

    // No such event: 404; not a number: 404.
    for path in ["/audit/100000", "/audit/first"] {
        let missing = browser.get(path).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert!(missing.body.contains("no audit event"), "{}", missing.body);
    }
    app.stop().await;
}

async fn only_readers_of_the_log_open_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let rita = signed_in(&app, &c.rita).await;
    for path in ["/audit", "/audit/0", "/audit/export"] {
        let refused = rita.get(path).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(refused.body.contains("read_audit_log"), "{}", refused.body);
    }
    let home = rita.get("/").await;
    assert!(
        !home.body.contains(r#"id="nav-audit""#),
        "no link to a page she may not open"
    );
    app.stop().await;
}

async fn a_tenants_auditor_sees_no_other_tenants_entries(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    history(&app).await;
    let risk = Tenant::create(&app, "risk").await;
    let theirs = risk.user(&app, "risk-auditor", &["auditor"]).await;
    let browser = signed_in(&app, &theirs).await;
    // Words only the installation tenant's entries hold.
    let foreign = ["rita", "mia", "fraud-scoring", "CHG-1"];

    let list = browser.get("/audit").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    for word in foreign {
        assert!(
            !list.body.contains(word),
            "tenant risk's auditor sees {word}"
        );
    }
    // Every leaf keeps its place: the others' withheld, said so, with their hashes.
    let shown = row_indexes(&list);
    let mut every = api_indexes(&app, &theirs, "limit=500").await;
    every.reverse();
    assert_eq!(shown, every);
    let (_, leaves) = app.get("/api/v1/audit/leaves?limit=500", &theirs).await;
    let withheld: Vec<&Value> = leaves["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|l| l["entry"].is_null())
        .collect();
    assert!(!withheld.is_empty());
    for leaf in &withheld {
        let index = leaf["index"].as_u64().expect("index");
        let row = &list.body[list
            .body
            .find(&format!(r#"<tr id="event-{index}""#))
            .expect("row")..];
        let row = &row[..row.find("</tr>").expect("row end")];
        assert!(row.contains("Withheld: another tenant's entry"), "{row}");
        assert!(
            row.contains(leaf["leaf_hash"].as_str().expect("hash")),
            "{row}"
        );
        assert!(!row.contains("href"), "a withheld entry has no page: {row}");
    }
    assert!(unescape(&list.body).contains("You read tenant risk's entries in full"));
    // Its own entries are shown.
    assert!(list.body.contains("risk-admin"), "{}", list.body);

    // A filter never matches another tenant's entry.
    let by_mia = browser.get("/audit?actor=mia").await;
    assert!(by_mia.body.contains(r#"id="no-events""#), "{}", by_mia.body);
    assert!(api_indexes(&app, &theirs, "actor=mia").await.is_empty());
    assert!(
        !api_indexes(&app, &theirs, "actor=risk-admin")
            .await
            .is_empty()
    );

    // Another tenant's event: 404, as if it did not exist; its own: the page.
    let other = withheld[0]["index"].as_u64().expect("index");
    let refused = browser.get(&format!("/audit/{other}")).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let own = api_indexes(&app, &theirs, "actor=risk-admin").await[0];
    let page = browser.get(&format!("/audit/{own}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(text_of(&page, "proof-verified").ends_with(": verified"));
    assert_eq!(text_of(&page, "event-tenant"), "risk");

    // Its export holds its entries only, and still verifies.
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, archive) = download(&app, &theirs, "/audit/export", dir.path()).await;
    let bytes = std::fs::read(&archive).expect("archive");
    let text = String::from_utf8_lossy(&bytes);
    for word in foreign {
        assert!(!text.contains(word), "tenant risk's export holds {word}");
    }
    let bundle = unpack(&archive, dir.path());
    let (_, key) = app.get("/api/v1/audit/public-key", ADMIN_TOKEN).await;
    let verified = verify_offline(&bundle, key["key"].as_str().expect("key"));
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    assert!(
        verified.stdout.contains("withheld as leaf hashes only"),
        "{}",
        verified.stdout
    );
    // Naming another tenant is refused to it.
    let (status, _) = app.get("/audit/export?tenant=default", &theirs).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The installation's auditor reads every tenant's entries, and may take tenant risk's view.
    let installation = app.user("audra", &["auditor"]).await;
    let all = signed_in(&app, &installation).await;
    let everything = all.get("/audit").await;
    assert!(everything.body.contains("risk-admin") && everything.body.contains("mia"));
    assert!(!everything.body.contains("Withheld"));
    let their_view = all.get("/audit?tenant=risk").await;
    let mut as_theirs = api_indexes(&app, &theirs, "limit=500").await;
    as_theirs.reverse();
    assert_eq!(row_indexes(&their_view), as_theirs);
    assert_eq!(
        api_indexes(&app, &installation, "tenant=risk&limit=500").await,
        api_indexes(&app, &theirs, "limit=500").await
    );
    assert!(!their_view.body.contains("mia"), "{}", their_view.body);
    assert_eq!(
        attribute(&their_view, "audit-export", "href"),
        "/audit/export?tenant=risk"
    );
    app.stop().await;
}

/// The API's filters: an empty value and a bad order are named; `from` reads forward only.
async fn the_apis_leaf_filters_refuse_what_they_cannot_read(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    history(&app).await;
    for (query, field) in [
        ("actor=", "actor"),
        ("subject=%20", "subject"),
        ("order=sideways", "order"),
        ("order=newest&from=3", "from"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/audit/leaves?{query}"), ADMIN_TOKEN)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(
            crate::helpers::field_names(&body),
            [field],
            "{query}: {body}"
        );
    }
    // Oldest first from an index, filtered: the matching entries from there on.
    let mia = api_indexes(&app, ADMIN_TOKEN, "actor=mia").await;
    assert_eq!(
        api_indexes(&app, ADMIN_TOKEN, &format!("actor=mia&from={}", mia[1])).await,
        mia[1..]
    );
    // A cursor of one order is not the other's.
    let (_, page) = app.get("/api/v1/audit/leaves?limit=1", ADMIN_TOKEN).await;
    let cursor = page["next_cursor"].as_str().expect("more");
    let (status, _) = app
        .get(
            &format!("/api/v1/audit/leaves?order=newest&cursor={cursor}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

both_backends!(
    the_list_shows_the_apis_leaves_filtered_as_the_api_filters,
    an_events_proof_is_the_apis_and_verifies,
    only_readers_of_the_log_open_it,
    a_tenants_auditor_sees_no_other_tenants_entries,
    the_apis_leaf_filters_refuse_what_they_cannot_read,
);
