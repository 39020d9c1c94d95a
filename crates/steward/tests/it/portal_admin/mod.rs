//! The portal's administration pages over HTTP, as a browser speaks them: the users page beside
//! `GET /api/v1/users`, dual control on the page (a privileged grant waits, its requester sees
//! no approve button and a forged approval is refused, a second admin approves) and the
//! lifecycle forms, here; the targets, windows and catalog forms in `records`; the policy test
//! and backtest beside the API in `policies`. Every write is checked through the API afterwards:
//! the page and the API never disagree.

mod policies;
mod records;

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, all_items, cast};
use crate::portal_http::{Browser, Page};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

/// The `id="<prefix>…"` values of a page, in order.
fn ids_with(page: &Page, prefix: &str) -> Vec<String> {
    let marker = format!(r#"id="{prefix}"#);
    page.body
        .match_indices(&marker)
        .map(|(at, _)| {
            let rest = &page.body[at + marker.len()..];
            rest[..rest.find('"').expect("closing quote")].to_owned()
        })
        .collect()
}

/// The element with `id`: its opening tag to its closing tag (elements of that tag are not
/// nested in it on these pages).
fn element<'p>(page: &'p Page, id: &str) -> &'p str {
    let at = page
        .body
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no element {id} in {}", page.body));
    let open = page.body[..at].rfind('<').expect("an opening tag");
    let tag: String = page.body[open + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let rest = &page.body[open..];
    if tag == "input" {
        return &rest[..rest.find('>').expect("tag end")];
    }
    let end = rest
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("no </{tag}> after {id}"));
    &rest[..end]
}

/// The `OP-n` a waiting notice names.
fn waiting_operation(page: &Page) -> String {
    let notice = element(page, "notice");
    assert!(
        notice.contains("waiting for a second admin"),
        "not a waiting notice: {notice}"
    );
    let at = notice.find("OP-").expect("an operation");
    notice[at..]
        .chars()
        .take_while(|c| *c == '-' || c.is_ascii_alphanumeric())
        .collect()
}

/// The address of the "Next page" link.
fn next_page(page: &Page) -> String {
    let marker = r#"id="next-page" href=""#;
    let at = page.body.find(marker).expect("a next page");
    let href = &page.body[at + marker.len()..];
    href[..href.find('"').expect("quote")]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The value of the input with `id`.
fn value_of(page: &Page, id: &str) -> String {
    let tag = element(page, id);
    let marker = r#"value=""#;
    let at = tag
        .find(marker)
        .unwrap_or_else(|| panic!("no value in {tag}"));
    let value = &tag[at + marker.len()..];
    value[..value.find('"').expect("quote")].to_owned()
}

async fn signed_in<'a>(app: &'a TestApp, token: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    let answer = browser.sign_in(token).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    browser
}
async fn the_users_page_lists_accounts_as_the_api_does(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let admin = signed_in(&app, ADMIN_TOKEN).await;

    // Linked from the administration index, which links what the viewer may open.
    let index = admin.get("/admin").await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.body);
    for link in [
        "admin-users",
        "admin-pending",
        "admin-targets",
        "admin-catalog",
        "admin-windows",
        "admin-policies",
    ] {
        assert!(index.body.contains(&format!(r#"id="{link}""#)), "{link}");
    }

    let page = admin.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let api: Vec<String> = all_items(&app, "/api/v1/users", ADMIN_TOKEN)
        .await
        .iter()
        .map(|u| u["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        ids_with(&page, "user-"),
        api,
        "the page lists what the API lists"
    );
    let rita = element(&page, "user-rita");
    for shown in ["requester", "active", "local", "UTC"] {
        assert!(rita.contains(shown), "{shown} missing: {rita}");
    }
    // The admin's own row has no disable button; others' do. Paged as the API pages.
    assert!(!page.body.contains(r#"id="disable-admin""#));
    assert!(page.body.contains(r#"id="disable-rita""#));
    assert!(page.body.contains(r#"id="create-user""#));
    let first = admin.get("/admin/users?limit=2").await;
    assert_eq!(ids_with(&first, "user-"), api[..2]);
    let second = admin.get(&next_page(&first)).await;
    assert_eq!(ids_with(&second, "user-"), api[2..4.min(api.len())]);

    // A requester reads the accounts (as the API lets them) but gets no form, and a forged
    // post is refused by the API's permission.
    let requester = signed_in(&app, &c.rita).await;
    let theirs = requester.get("/admin/users").await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(ids_with(&theirs, "user-"), api);
    for form in ["create-user", "disable-mia", "roles-mia"] {
        assert!(!theirs.body.contains(&format!(r#"id="{form}""#)), "{form}");
    }
    let forged = requester
        .post(
            "/admin/users",
            &[
                ("csrf", &theirs.csrf()),
                ("name", "mallory"),
                ("roles", "requester"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("manage_users"), "{}", forged.body);
    let (status, _) = app.get("/api/v1/users/mallory", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Privileged operations are for admins and auditors only.
    let index = requester.get("/admin").await;
    assert!(!index.body.contains(r#"id="admin-pending""#));
    assert_eq!(
        requester.get("/admin/pending").await.status,
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}

async fn a_privileged_account_waits_for_a_second_admin_who_approves_on_the_page(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let second_token = app.second_admin().await.to_owned();
    let admin = signed_in(&app, ADMIN_TOKEN).await;
    let users = admin.get("/admin/users").await;

    // Without the session's CSRF token the form is refused, and nothing is asked.
    let no_csrf = admin
        .post("/admin/users", &[("name", "ivy"), ("roles", "admin")])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.body);
    let (_, waiting) = app.get("/api/v1/admin/pending", ADMIN_TOKEN).await;
    assert_eq!(waiting["items"].as_array().map(Vec::len), Some(0));

    let created = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &users.csrf()),
                ("name", "ivy"),
                ("roles", "admin"),
                ("roles", "cab_member"),
                ("expires", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let op = waiting_operation(&created);
    assert!(
        element(&created, "notice").contains("ivy does not exist until another admin approves it"),
        "{}",
        created.body
    );
    // The token is shown once; it opens nothing while the account waits.
    let token = value_of(&created, "new-token");
    assert!(token.starts_with("stw_"), "{token}");
    let (status, _) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/v1/users/ivy", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing applied");

    // The requester sees it waiting, with no approve button, and a forged approval is refused.
    let pending = admin.get("/admin/pending").await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.body);
    let row = element(&pending, &format!("op-{op}"));
    assert!(row.contains("create_user") && row.contains("ivy"), "{row}");
    assert!(!pending.body.contains(&format!(r#"id="approve-{op}""#)));
    assert!(
        element(&pending, &format!("own-{op}")).contains("a second admin must approve it"),
        "{}",
        pending.body
    );
    assert!(
        pending.body.contains(&format!(r#"id="reject-{op}""#)),
        "may withdraw"
    );
    let forged = admin
        .post(
            &format!("/admin/pending/{op}/approve"),
            &[("csrf", &pending.csrf())],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("dual control"), "{}", forged.body);
    let (_, still) = app
        .get(&format!("/api/v1/admin/pending/{op}"), ADMIN_TOKEN)
        .await;
    assert_eq!(still["status"], "pending", "{still}");

    // The second admin approves on the page, with the form's CSRF token only.
    let second = signed_in(&app, &second_token).await;
    let theirs = second.get("/admin/pending").await;
    assert!(
        theirs.body.contains(&format!(r#"id="approve-{op}""#)),
        "{}",
        theirs.body
    );
    let no_csrf = second
        .post(&format!("/admin/pending/{op}/approve"), &[])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let approved = second
        .post(
            &format!("/admin/pending/{op}/approve"),
            &[("csrf", &theirs.csrf())],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let after = second.get(approved.header(LOCATION)).await;
    assert!(
        element(&after, "notice").contains("was approved by second-admin"),
        "{}",
        after.body
    );
    assert!(element(&after, &format!("op-{op}")).contains("approved"));
    let (status, ivy) = app.get("/api/v1/users/ivy", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{ivy}");
    assert_eq!(ivy["roles"], json!(["cab_member", "admin"]));
    let (status, _) = app.get("/api/v1/whoami", &token).await;
    assert_eq!(status, StatusCode::OK, "the token works once approved");

    // Rejecting (withdrawing) on the page: the API says rejected, with the reason.
    let users = admin.get("/admin/users").await;
    let asked = admin
        .post(
            "/admin/users",
            &[("csrf", &users.csrf()), ("name", "cy"), ("roles", "ciso")],
        )
        .await;
    let op = waiting_operation(&asked);
    let pending = admin.get("/admin/pending").await;
    let withdrawn = admin
        .post(
            &format!("/admin/pending/{op}/reject"),
            &[("csrf", &pending.csrf()), ("reason", "asked by mistake")],
        )
        .await;
    assert_eq!(
        withdrawn.status,
        StatusCode::SEE_OTHER,
        "{}",
        withdrawn.body
    );
    let (_, decided) = app
        .get(&format!("/api/v1/admin/pending/{op}"), ADMIN_TOKEN)
        .await;
    assert_eq!(decided["status"], "rejected");
    assert_eq!(decided["reason"], "asked by mistake");
    app.stop().await;
}

async fn the_lifecycle_forms_disable_enable_and_set_roles(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let admin = signed_in(&app, ADMIN_TOKEN).await;
    let csrf = admin.get("/admin/users").await.csrf();

    let disabled = admin
        .post("/admin/users/rita/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    let page = admin.get(disabled.header(LOCATION)).await;
    assert!(
        element(&page, "notice").contains("rita is disabled"),
        "{}",
        page.body
    );
    assert!(element(&page, "user-rita").contains("enable-rita"));
    let (_, rita) = app.get("/api/v1/users/rita", ADMIN_TOKEN).await;
    assert_eq!(rita["status"], "disabled");
    let (status, _) = app.get("/api/v1/whoami", &c.rita).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A requester holds no privileged role: enabling applies at once.
    let enabled = admin
        .post("/admin/users/rita/enable", &[("csrf", &csrf)])
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER, "{}", enabled.body);
    assert!(enabled.header(LOCATION).contains("changed=rita"));
    let (_, rita) = app.get("/api/v1/users/rita", ADMIN_TOKEN).await;
    assert_eq!(rita["status"], "active");

    // Roles: a person's role applies; a privileged one waits, and the account keeps its roles.
    let set = admin
        .post(
            "/admin/users/rita/roles",
            &[
                ("csrf", &csrf),
                ("roles", "requester"),
                ("roles", "manager"),
            ],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    let (_, rita) = app.get("/api/v1/users/rita", ADMIN_TOKEN).await;
    assert_eq!(rita["roles"], json!(["requester", "manager"]));
    let grant = admin
        .post(
            "/admin/users/mia/roles",
            &[
                ("csrf", &csrf),
                ("roles", "manager"),
                ("roles", "cab_member"),
            ],
        )
        .await;
    assert_eq!(grant.status, StatusCode::SEE_OTHER, "{}", grant.body);
    assert!(
        grant.header(LOCATION).contains("waiting=OP-"),
        "{}",
        grant.header(LOCATION)
    );
    let page = admin.get(grant.header(LOCATION)).await;
    let op = waiting_operation(&page);
    assert!(element(&page, "notice").contains("mia"), "{}", page.body);
    let (_, mia) = app.get("/api/v1/users/mia", ADMIN_TOKEN).await;
    assert_eq!(
        mia["roles"],
        json!(["manager"]),
        "not applied while waiting"
    );
    let (_, waiting) = app
        .get(&format!("/api/v1/admin/pending/{op}"), ADMIN_TOKEN)
        .await;
    assert_eq!(waiting["kind"], "set_roles");

    // The rules of the lifecycle are the API's: the last admin cannot be disabled by anyone,
    // and the refusal is a page saying why.
    let own = admin
        .post("/admin/users/admin/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(own.status, StatusCode::CONFLICT, "{}", own.body);
    // A made-up notice says nothing: the page reads the store.
    let made_up = admin.get("/admin/users?waiting=OP-999").await;
    assert_eq!(made_up.status, StatusCode::OK);
    assert!(!made_up.body.contains(r#"id="notice""#));
    app.stop().await;
}

both_backends!(
    the_users_page_lists_accounts_as_the_api_does,
    a_privileged_account_waits_for_a_second_admin_who_approves_on_the_page,
    the_lifecycle_forms_disable_enable_and_set_roles,
);
