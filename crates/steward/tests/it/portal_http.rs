//! The web portal over HTTP, as a browser speaks it (form posts, the session cookie, `Origin`),
//! without a browser: sign-in with a token, the home page's approvals, the decision form and
//! its CSRF token, segregation of duties on the page, sign-out, and tenants. (Real Chromium
//! drives the same pages in the browser tests.)

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast, change, id};
use crate::tenants::Tenant;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::json;

/// A browser of one person: keeps the session cookie, follows no redirects, asks for HTML.
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookie: Option<String>,
}

/// An answer: status, headers, body.
pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').expect("closing quote")].to_owned()
    }

    pub fn header(&self, name: reqwest::header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser {
            app,
            http,
            cookie: None,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header(ACCEPT, "text/html,application/xhtml+xml");
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, format!("steward_session={cookie}"));
        }
        let response = request.send().await.expect("request sent");
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.app.base)))
            .await
    }

    /// Posts a form as a page of Steward's does (with Steward's `Origin`).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_from(Some(&self.app.base), path, fields).await
    }

    pub async fn post_from(
        &self,
        origin: Option<&str>,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.app.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish(),
            );
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        self.send(request).await
    }

    /// Signs in through the form; returns the answer to the post.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let answer = self.post("/signin", &[("token", token)]).await;
        if answer.status == StatusCode::SEE_OTHER {
            let cookie = answer.header(SET_COOKIE);
            let value = cookie
                .strip_prefix("steward_session=")
                .and_then(|rest| rest.split(';').next())
                .expect("a session cookie");
            self.cookie = Some(value.to_owned());
        }
        answer
    }
}

async fn a_token_signs_in_through_the_form(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let mut rita = Browser::new(&app);

    let form = rita.get("/").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.header(CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(form.body.contains(r#"<html lang="en">"#), "{}", form.body);
    assert!(
        form.body
            .contains(r#"<form id="signin" method="post" action="/signin""#)
            && form.body.contains(r#"id="token" type="password""#)
            && form.body.contains(r#"id="signin-submit""#),
        "{}",
        form.body
    );
    assert!(
        !form.body.contains("single sign-on"),
        "no provider configured"
    );

    // A wrong token: 401, the form again, saying why.
    let wrong = rita.sign_in("stw_not_a_token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("unknown API token"), "{}", wrong.body);
    assert!(wrong.headers.get(SET_COOKIE).is_none());
    // A page elsewhere may not sign this browser in.
    let elsewhere = rita
        .post_from(
            Some("https://evil.example"),
            "/signin",
            &[("token", &c.rita)],
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    assert!(elsewhere.headers.get(SET_COOKIE).is_none());

    let signed_in = rita.sign_in(&c.rita).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.header(LOCATION), "/");
    let cookie = signed_in.header(SET_COOKIE);
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let home = rita.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("<h1>Waiting for you</h1>"),
        "{}",
        home.body
    );
    assert!(
        home.body
            .contains(r#"<form id="signout" method="post" action="/signout">"#)
    );
    // The session is an ordinary session: the API reads it too.
    let who = rita
        .send(rita.http.get(format!("{}/api/v1/whoami", app.base)))
        .await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.body);
    assert!(who.body.contains("rita"), "{}", who.body);

    // A disabled account's token opens nothing.
    let (status, body) = app
        .post(
            "/api/v1/users/max/disable",
            crate::helpers::ADMIN_TOKEN,
            serde_json::json!({}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let mut max = Browser::new(&app);
    let refused = max.sign_in(&c.max).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("disabled"), "{}", refused.body);

    // The stylesheet comes from the binary; unknown pages are pages, unknown API paths JSON.
    let css = rita.get("/static/portal.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header(CONTENT_TYPE).starts_with("text/css"));
    let missing = rita.get("/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header(CONTENT_TYPE), "text/html; charset=utf-8");
    let api = rita.get("/api/v1/no-such-endpoint").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.header(CONTENT_TYPE).starts_with("application/json"));
    app.stop().await;
}

async fn an_approval_is_given_on_the_page_with_its_form_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let submitted = app
        .submit_ok(
            &c.rita,
            change(serde_json::json!({"title": "Retrain <fraud> model"})),
        )
        .await;
    let chg = id(&submitted);
    assert_eq!(submitted["state"], "pending_approval", "{submitted}");
    let page_path = format!("/changes/{chg}");
    let decision_path = format!("/changes/{chg}/decision");

    // The owning manager sees it waiting, with its SLA, linked; the requester sees it as theirs.
    let mut mia = Browser::new(&app);
    mia.sign_in(&c.mia).await;
    let home = mia.get("/").await;
    let approvals = &home.body[home.body.find(r#"id="approvals""#).expect("approvals")..];
    let approvals = &approvals[..approvals.find("</section>").expect("section end")];
    assert!(
        approvals.contains(&format!(r#"<a href="/changes/{chg}">{chg}</a>"#)),
        "{}",
        home.body
    );
    assert!(approvals.contains("due in"), "{approvals}");
    // Titles are escaped, never markup.
    assert!(
        approvals.contains("Retrain &#60;fraud&#62; model")
            || approvals.contains("Retrain &lt;fraud&gt; model"),
        "{approvals}"
    );
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    let rita_home = rita.get("/").await;
    let mine = &rita_home.body[rita_home
        .body
        .find(r#"id="my-changes""#)
        .expect("my-changes")..];
    assert!(
        mine.contains(&format!("/changes/{chg}")),
        "{}",
        rita_home.body
    );
    let theirs = &rita_home.body[rita_home.body.find(r#"id="approvals""#).expect("approvals")..];
    let theirs = &theirs[..theirs.find("</section>").expect("section end")];
    assert!(
        !theirs.contains(&chg),
        "a requester approves nothing: {theirs}"
    );

    // The requester's own change: no decision form, and the reason shown.
    let own = rita.get(&page_path).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(
        own.body.contains(r#"id="state">pending_approval<"#),
        "{}",
        own.body
    );
    assert!(!own.body.contains(r#"id="decide""#), "{}", own.body);
    assert!(
        own.body
            .contains("may not approve or reject their own change"),
        "{}",
        own.body
    );
    // ...and her forged decision, with a valid form of hers, is refused.
    let forged = rita
        .post(
            &decision_path,
            &[
                ("decision", "approve"),
                ("comment", "mine"),
                ("csrf", &own.csrf()),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A manager's own change: he holds approve_changes, and the change's rules still refuse him.
    let his = id(&app.submit_ok(&c.max, change(serde_json::json!({}))).await);
    let mut max = Browser::new(&app);
    max.sign_in(&c.max).await;
    let his_page = max.get(&format!("/changes/{his}")).await;
    assert!(
        !his_page.body.contains(r#"id="decide""#),
        "{}",
        his_page.body
    );
    assert!(
        his_page.body.contains("segregation of duties"),
        "{}",
        his_page.body
    );
    let forged = max
        .post(
            &format!("/changes/{his}/decision"),
            &[
                ("decision", "approve"),
                ("comment", "mine"),
                ("csrf", &his_page.csrf()),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("their own change"), "{}", forged.body);
    let (_, his_change) = app.get(&format!("/api/v1/changes/{his}"), &c.max).await;
    assert_eq!(his_change["state"], "pending_approval", "{his_change}");

    // The manager's page has the form.
    let page = mia.get(&page_path).await;
    assert!(
        page.body.contains(&format!(
            r#"<form id="decide" method="post" action="/changes/{chg}/decision""#
        )) && page.body.contains(r#"id="approve""#)
            && page.body.contains(r#"id="reject""#)
            && page
                .body
                .contains(r#"<textarea name="comment" id="comment""#),
        "{}",
        page.body
    );
    let csrf = page.csrf();

    // Without the CSRF field, with another session's, or from another origin: refused, and
    // the change still waits.
    let without = mia
        .post(
            &decision_path,
            &[("decision", "approve"), ("comment", "lgtm")],
        )
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert!(
        without
            .body
            .contains("the form expired or did not come from Steward"),
        "{}",
        without.body
    );
    let others = mia
        .post(
            &decision_path,
            &[
                ("decision", "approve"),
                ("comment", "lgtm"),
                ("csrf", &own.csrf()),
            ],
        )
        .await;
    assert_eq!(others.status, StatusCode::FORBIDDEN);
    let cross = mia
        .post_from(
            Some("https://evil.example"),
            &decision_path,
            &[
                ("decision", "approve"),
                ("comment", "lgtm"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let no_origin = mia
        .post_from(
            None,
            &decision_path,
            &[
                ("decision", "approve"),
                ("comment", "lgtm"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
    let (_, still) = app.get(&format!("/api/v1/changes/{chg}"), &c.mia).await;
    assert_eq!(still["state"], "pending_approval", "{still}");

    // With it: approved, through the API's own path (the same record, the same audit event).
    let approved = mia
        .post(
            &decision_path,
            &[
                ("decision", "approve"),
                ("comment", "looks right"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert_eq!(approved.header(LOCATION), page_path);
    let (_, now) = app.get(&format!("/api/v1/changes/{chg}"), &c.mia).await;
    assert_eq!(now["state"], "approved", "{now}");
    assert_eq!(now["approvals"]["given"][0]["by"], "mia", "{now}");
    assert_eq!(
        now["approvals"]["given"][0]["comment"], "looks right",
        "{now}"
    );
    let after = mia.get(&page_path).await;
    assert!(
        after.body.contains(r#"id="state">approved<"#),
        "{}",
        after.body
    );
    assert!(!after.body.contains(r#"id="decide""#));
    app.stop().await;
}

async fn signing_out_ends_the_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    let home = rita.get("/").await;
    let csrf = home.csrf();
    // Not without the form's token.
    let forged = rita.post("/signout", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(rita.get("/").await.body.contains("Waiting for you"));

    let out = rita.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(out.header(LOCATION), "/");
    assert!(
        out.header(SET_COOKIE).contains("Max-Age=0"),
        "{}",
        out.header(SET_COOKIE)
    );
    // The old cookie opens nothing any more: the sign-in form, and 401 from the API.
    let after = rita.get("/").await;
    assert!(
        after.body.contains(r#"<form id="signin""#),
        "{}",
        after.body
    );
    let page = rita.get("/changes/CHG-1").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let who = rita
        .send(rita.http.get(format!("{}/api/v1/whoami", app.base)))
        .await;
    assert_eq!(who.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn another_tenants_change_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let chg = id(&app.submit_ok(&c.rita, change(serde_json::json!({}))).await);
    let b = Tenant::create(&app, "tenant-b").await;
    let b_manager = b.user(&app, "b-manager", &["manager"]).await;
    let mut outsider = Browser::new(&app);
    outsider.sign_in(&b_manager).await;
    let page = outsider.get(&format!("/changes/{chg}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    assert_eq!(page.header(CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(!page.body.contains("Promote fraud model"), "{}", page.body);
    let home = outsider.get("/").await;
    assert!(
        !home.body.contains(&format!("/changes/{chg}")),
        "{}",
        home.body
    );
    let csrf = home.csrf();
    let decided = outsider
        .post(
            &format!("/changes/{chg}/decision"),
            &[("decision", "approve"), ("comment", "x"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(decided.status, StatusCode::NOT_FOUND, "{}", decided.body);
    let (_, still) = app.get(&format!("/api/v1/changes/{chg}"), &c.mia).await;
    assert_eq!(still["state"], "pending_approval", "{still}");
    app.stop().await;
}

async fn a_session_never_outlives_its_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // A session opened with a token that expires in an hour ends with it.
    let (status, short) = app
        .post(
            "/api/v1/users",
            ADMIN_TOKEN,
            json!({"name": "temp", "roles": ["requester"], "expires": "1h"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let mut temp = Browser::new(&app);
    let signed = temp.sign_in(short["token"].as_str().expect("token")).await;
    let max_age: i64 = signed
        .header(SET_COOKIE)
        .split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .expect("Max-Age");
    assert!(max_age <= 3600, "{}", signed.header(SET_COOKIE));

    // Pages are never framed, load nothing from elsewhere, and are kept in no cache; the
    // stylesheet may be cached.
    let home = temp.get("/").await;
    assert!(
        home.header(reqwest::header::CONTENT_SECURITY_POLICY)
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(home.header(reqwest::header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(home.header(reqwest::header::CACHE_CONTROL), "no-store");
    let css = temp.get("/static/portal.css").await;
    assert!(
        css.header(reqwest::header::CACHE_CONTROL)
            .contains("max-age")
    );

    // Rotating the token ends the sessions opened with it (a leaked token's session too).
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    assert!(rita.get("/").await.body.contains("Waiting for you"));
    let (status, rotated) = app.post("/api/v1/tokens/rotate", &c.rita, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let after = rita.get("/").await;
    assert!(
        after.body.contains(r#"<form id="signin""#),
        "{}",
        after.body
    );

    // Signing in again ends the browser's earlier session.
    let mut again = Browser::new(&app);
    let token = rotated["token"].as_str().expect("token").to_owned();
    again.sign_in(&token).await;
    let first = again.cookie.clone().expect("cookie");
    again.sign_in(&token).await;
    let stale = Browser {
        app: &app,
        http: again.http.clone(),
        cookie: Some(first),
    };
    let page = stale.get("/changes/CHG-1").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn the_oldest_approval_is_never_cut_off(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    // More changes wait than one page of the store holds: the oldest (the most overdue) is still
    // listed for its approver.
    let submissions: Vec<_> = (0..205)
        .map(|_| app.submit_ok(&c.rita, change(json!({}))))
        .collect();
    crate::helpers::join_all(submissions).await;
    let mut mia = Browser::new(&app);
    mia.sign_in(&c.mia).await;
    let home = mia.get("/").await;
    assert!(
        home.body.contains(r#"<a href="/changes/CHG-1">CHG-1</a>"#),
        "CHG-1 missing from the approvals"
    );
    assert!(
        home.body
            .contains(r#"<a href="/changes/CHG-205">CHG-205</a>"#)
    );
    app.stop().await;
}

/// The address of the "Next page" link, as a browser reads it.
fn next_page(page: &Page) -> Option<String> {
    let at = page.body.find(r#"id="next-page" href=""#)?;
    let rest = &page.body[at + r#"id="next-page" href=""#.len()..];
    let href = &rest[..rest.find('"').expect("closing quote")];
    Some(href.replace("&#38;", "&").replace("&amp;", "&"))
}

/// The change ids the list's table shows, in order.
fn listed(page: &Page) -> Vec<String> {
    let Some(at) = page.body.find(r#"<table id="change-list">"#) else {
        return Vec::new();
    };
    page.body[at..]
        .split(r#"<a href="/changes/"#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').expect("quote")].to_owned())
        .collect()
}

async fn the_change_list_filters_and_pages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let first = id(&app
        .submit_ok(
            &c.rita,
            change(json!({"title": "First <b>bold</b> change"})),
        )
        .await);
    let second = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let third = id(&app.submit_ok(&c.rita, change(json!({}))).await);
    let (_, approved) = app.decide(&c.mia, &second, "approve", "ok").await;
    assert_eq!(approved["state"], "approved", "{approved}");
    let mut mia = Browser::new(&app);
    mia.sign_in(&c.mia).await;
    // Linked from every page's navigation.
    let home = mia.get("/").await;
    assert!(
        home.body
            .contains(r#"<a href="/changes" id="nav-changes">"#),
        "{}",
        home.body
    );

    // Newest first, each row linking to its change, titles escaped, with the filter form.
    let all = mia.get("/changes").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        listed(&all),
        [third.as_str(), second.as_str(), first.as_str()]
    );
    assert!(
        all.body
            .contains("First &#60;b&#62;bold&#60;/b&#62; change")
            || all.body.contains("First &lt;b&gt;bold&lt;/b&gt; change"),
        "{}",
        all.body
    );
    assert!(!all.body.contains("<b>bold</b>"));
    assert!(
        all.body
            .contains(r#"<label for="filter-state">State</label>"#)
            && all
                .body
                .contains(r#"<select name="state" id="filter-state">"#)
            && all
                .body
                .contains(r#"<label for="filter-type">Type</label>"#)
            && all
                .body
                .contains(r#"<select name="type" id="filter-type">"#),
        "{}",
        all.body
    );
    assert!(all.body.contains("<td>rita</td>"), "{}", all.body);
    assert_eq!(next_page(&all), None, "one page holds three");

    // Filtered by state: the pending changes are absent; the choice stays selected.
    let only_approved = mia.get("/changes?state=approved&type=").await;
    assert_eq!(
        only_approved.status,
        StatusCode::OK,
        "{}",
        only_approved.body
    );
    assert_eq!(listed(&only_approved), [second.as_str()]);
    assert!(
        only_approved
            .body
            .contains(r#"<option value="approved" selected>"#),
        "{}",
        only_approved.body
    );
    let pending = mia.get("/changes?state=pending_approval").await;
    assert_eq!(listed(&pending), [third.as_str(), first.as_str()]);
    let emergencies = mia.get("/changes?type=emergency").await;
    assert!(listed(&emergencies).is_empty());
    assert!(emergencies.body.contains("No change matches"));

    // A page at a time: "Next page" carries the cursor (and the filters and page size).
    let page_one = mia.get("/changes?limit=2").await;
    assert_eq!(listed(&page_one), [third.as_str(), second.as_str()]);
    let next = next_page(&page_one).expect("a next page");
    let page_two = mia.get(&next).await;
    assert_eq!(page_two.status, StatusCode::OK, "{}", page_two.body);
    assert_eq!(listed(&page_two), [first.as_str()]);
    assert_eq!(next_page(&page_two), None);
    let pending_one = mia.get("/changes?state=pending_approval&limit=1").await;
    let next = next_page(&pending_one).expect("a next page");
    assert!(next.contains("state=pending_approval"), "{next}");
    assert_eq!(listed(&mia.get(&next).await), [first.as_str()]);

    // A bad filter or cursor: 422, naming it.
    let bad = mia.get("/changes?state=bogus").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.header(CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(
        bad.body.contains("state: &#39;bogus&#39;")
            || bad.body.contains("state: 'bogus'")
            || bad.body.contains("state: &#x27;bogus&#x27;"),
        "{}",
        bad.body
    );
    let bad = mia.get("/changes?cursor=not-a-cursor").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("cursor: is not a cursor"), "{}", bad.body);
    // Signed out: the sign-in form.
    let stranger = Browser::new(&app);
    assert_eq!(
        stranger.get("/changes").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

async fn a_conflict_is_acknowledged_on_the_form(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let window = json!({"start": "2027-02-01T22:00:00Z", "end": "2027-02-01T23:00:00Z"});
    let earlier = id(&app
        .submit_ok(&c.rita, change(json!({"window": window})))
        .await);
    let later = id(&app
        .submit_ok(&c.rita, change(json!({"window": window})))
        .await);
    let mut mia = Browser::new(&app);
    mia.sign_in(&c.mia).await;
    // The earlier change needs no acknowledgement: no checkbox.
    let earlier_page = mia.get(&format!("/changes/{earlier}")).await;
    assert!(
        earlier_page.body.contains(r#"id="decide""#),
        "{}",
        earlier_page.body
    );
    assert!(
        !earlier_page.body.contains("acknowledge_conflicts"),
        "{}",
        earlier_page.body
    );

    // The later one lists the earlier as a labelled checkbox.
    let path = format!("/changes/{later}");
    let page = mia.get(&path).await;
    assert!(
        page.body.contains(&format!(
            r#"<input type="checkbox" name="acknowledge_conflicts" value="{earlier}" id="ack-{earlier}">"#
        )) && page.body.contains(&format!(r#"<label class="check" for="ack-{earlier}">"#)),
        "{}",
        page.body
    );
    // Everyone sees the overlap, even the requester, who decides nothing: without checkboxes.
    let mut rita = Browser::new(&app);
    rita.sign_in(&c.rita).await;
    let theirs = rita.get(&path).await;
    assert!(
        theirs.body.contains(r#"id="overlaps""#)
            && theirs
                .body
                .contains(&format!(r#"<a href="/changes/{earlier}">{earlier}</a>"#)),
        "{}",
        theirs.body
    );
    assert!(
        !theirs.body.contains("acknowledge_conflicts"),
        "{}",
        theirs.body
    );
    let csrf = page.csrf();
    let decision_path = format!("{path}/decision");
    // Unchecked: refused, saying which conflict; the change still waits.
    let refused = mia
        .post(
            &decision_path,
            &[("decision", "approve"), ("comment", "ok"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(&format!("{earlier} (pending_approval")),
        "{}",
        refused.body
    );
    let (_, still) = app.get(&format!("/api/v1/changes/{later}"), &c.mia).await;
    assert_eq!(still["state"], "pending_approval", "{still}");

    // Checked: approved, the acknowledgement recorded with the decision.
    let approved = mia
        .post(
            &decision_path,
            &[
                ("decision", "approve"),
                ("comment", "checked: they can run together"),
                ("acknowledge_conflicts", &earlier),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let (_, now) = app.get(&format!("/api/v1/changes/{later}"), &c.mia).await;
    assert_eq!(now["state"], "approved", "{now}");
    assert_eq!(
        now["approvals"]["given"][0]["acknowledged_conflicts"][0],
        earlier.as_str(),
        "{now}"
    );
    app.stop().await;
}

both_backends!(
    the_change_list_filters_and_pages,
    a_conflict_is_acknowledged_on_the_form,
    the_oldest_approval_is_never_cut_off,
    a_session_never_outlives_its_token,
    a_token_signs_in_through_the_form,
    an_approval_is_given_on_the_page_with_its_form_only,
    signing_out_ends_the_session,
    another_tenants_change_is_not_found,
);

/// Behind https the session cookie is `__Host-steward_session` (Secure, `Path=/`, no `Domain`:
/// no sibling subdomain can plant one), and a cookie under the plain name opens nothing.
#[tokio::test]
async fn under_https_the_session_cookie_is_host_prefixed() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = crate::helpers::config(&db);
    config.public_url = Some("https://steward.example".into());
    let app = TestApp::spawn_with(config, Default::default()).await;
    let c = cast(&app).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed_in = http
        .post(format!("{}/signin", app.base))
        .header(ORIGIN, "https://steward.example")
        .header(ACCEPT, "text/html")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={}", c.rita))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    let session = cookie
        .strip_prefix("__Host-steward_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("a __Host- cookie: {cookie}"));
    for flag in ["Secure", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let home = |name: &str| {
        http.get(format!("{}/", app.base))
            .header(ACCEPT, "text/html")
            .header(COOKIE, format!("{name}={session}"))
            .send()
    };
    let opened = home("__Host-steward_session").await.expect("home");
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(
        opened
            .text()
            .await
            .expect("body")
            .contains("<h1>Waiting for you</h1>")
    );
    // The unprefixed name is what a planted cookie would use: it is not read.
    let planted = home("steward_session").await.expect("home");
    assert!(
        planted
            .text()
            .await
            .expect("body")
            .contains(r#"<form id="signin""#),
        "an unprefixed cookie must not open the session"
    );
    app.stop().await;
}
