//! The single sign-on tests' harness: a real OpenID Connect provider (`node provider.js`, one per
//! test on a port of its own, killed when dropped), a cookie-keeping client that plays the
//! browser through the provider's development forms, Steward configured for the provider, and
//! ways to bend a token (a changed payload, a made-up key id, no signature, an HMAC signature)
//! for the refusal tests.

use crate::helpers::{TestApp, TestDb, config};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use steward_core::TenantId;
use steward_server::sso::OidcConfig;

pub(super) const AUDIENCE: &str = "urn:steward:api";

/// One running `node provider.js`.
#[derive(Debug)]
pub(super) struct Provider {
    pub(super) issuer: String,
    http: reqwest::Client,
    child: Child,
}

fn provider_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc").to_owned()
}

impl Provider {
    /// A provider on a free port.
    pub(super) async fn start(args: &[&str]) -> Provider {
        Provider::start_on(0, args).await
    }

    pub(super) async fn start_on(port: u16, args: &[&str]) -> Provider {
        let dir = provider_dir();
        assert!(
            std::path::Path::new(&dir)
                .join("node_modules/oidc-provider")
                .is_dir(),
            "oidc-provider is not installed: run scripts/test.sh (it runs `npm ci` in tests/oidc)"
        );
        let node = std::env::var("STEWARD_TEST_NODE").unwrap_or_else(|_| "node".into());
        let mut child = Command::new(&node)
            .arg("provider.js")
            .arg(port.to_string())
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("Node is needed for this test ({node}: {e})"));
        let stdout = child.stdout.take().expect("stdout");
        let (first_line, line) = tokio::sync::oneshot::channel();
        // Reads the first line, then drains the rest until the provider exits.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = first_line.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = tokio::time::timeout(Duration::from_secs(30), line)
            .await
            .expect("the provider starts within 30 s")
            .expect("the provider's first line");
        let first: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the provider said {line:?}: {e}"));
        Provider {
            issuer: first["issuer"].as_str().expect("issuer").to_owned(),
            http: reqwest::Client::new(),
            child,
        }
    }

    pub(super) fn port(&self) -> u16 {
        self.issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// Sets an account's `groups` claim.
    pub(super) async fn groups(&self, account: &str, groups: &[&str]) {
        let response = self
            .http
            .put(format!("{}/test/accounts/{account}", self.issuer))
            .json(&json!({ "groups": groups }))
            .send()
            .await
            .expect("provider");
        assert!(response.status().is_success());
    }

    /// Sets an account's `groups` claim and the `preferred_username` the provider gives it (a
    /// person renamed at the provider).
    pub(super) async fn rename(&self, account: &str, preferred_username: &str, groups: &[&str]) {
        let response = self
            .http
            .put(format!("{}/test/accounts/{account}", self.issuer))
            .json(&json!({ "groups": groups, "preferred_username": preferred_username }))
            .send()
            .await
            .expect("provider");
        assert!(response.status().is_success());
    }

    /// The provider's public signing keys (its JWKS document).
    pub(super) async fn jwks(&self) -> Value {
        self.http
            .get(format!("{}/jwks", self.issuer))
            .send()
            .await
            .expect("provider")
            .json()
            .await
            .expect("json")
    }

    /// An access token (a JWT) for `client_id` by the client credentials grant, for `resource`.
    pub(super) async fn client_token(&self, client_id: &str, resource: &str) -> String {
        let response = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(format!("{client_id}-test-secret")))
            .form(&[("grant_type", "client_credentials"), ("resource", resource)])
            .send()
            .await
            .expect("provider");
        let body: Value = response.json().await.expect("json");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {body}"))
            .to_owned()
    }

    /// How many times the provider's keys were fetched.
    pub(super) async fn key_fetches(&self) -> u64 {
        let body: Value = self
            .http
            .get(format!("{}/test/stats", self.issuer))
            .send()
            .await
            .expect("provider")
            .json()
            .await
            .expect("json");
        body["jwks_requests"].as_u64().expect("count")
    }

    pub(super) fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Steward with the provider configured, on a fresh database.
pub(super) async fn steward(db: &TestDb, provider: &Provider) -> TestApp {
    steward_at(db, provider, None).await
}

/// The same, reached by browsers at `public_url` (a load balancer's address).
pub(super) async fn steward_at(
    db: &TestDb,
    provider: &Provider,
    public_url: Option<&str>,
) -> TestApp {
    let mut config = config(db);
    config.public_url = public_url.map(str::to_owned);
    config.oidc = Some(OidcConfig {
        issuer: provider.issuer.clone(),
        client_id: "steward".into(),
        client_secret: "steward-test-secret".into(),
        audience: AUDIENCE.into(),
        scopes: vec!["profile".into(), "groups".into()],
    });
    TestApp::spawn_with(config, Default::default()).await
}

/// Maps `group` to `roles` in the token's tenant through the API.
pub(super) async fn map(app: &TestApp, token: &str, group: &str, roles: &[&str]) {
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/groups/{group}"),
            Some(token),
            Some(json!({ "roles": roles })),
        )
        .await;
    match status {
        StatusCode::OK => {}
        // A privileged role waits for a second admin of the tenant (dual control).
        StatusCode::ACCEPTED => {
            let id = body["id"].as_str().expect("operation id");
            if token == crate::helpers::ADMIN_TOKEN {
                app.approve_operation(id).await;
            } else {
                // The tenant's only admin makes its first second admin (a bootstrap grant).
                let (status, second) = app
                    .post(
                        "/api/v1/users",
                        token,
                        json!({"name": "second-admin", "roles": ["admin"]}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{second}");
                app.approve_as(id, second["token"].as_str().expect("token"))
                    .await;
            }
        }
        other => panic!("mapping {group}: {other} {body}"),
    }
}

/// A client that keeps cookies and follows redirects by hand, like a browser.
pub(super) struct Browser {
    pub(super) http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

/// What a response said, with the cookies it set (whole `Set-Cookie` lines).
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) location: Option<String>,
    pub(super) set_cookies: Vec<String>,
    pub(super) body: String,
}

impl Answer {
    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::String(self.body.clone()))
    }

    pub(super) fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }
}

impl Browser {
    pub(super) fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        let cookies = self.cookies.lock().expect("cookies");
        cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(super) fn session(&self) -> Option<String> {
        self.cookies
            .lock()
            .expect("cookies")
            .get("steward_session")
            .cloned()
    }

    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let request = request.header(COOKIE, self.cookie_header());
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        {
            let mut jar = self.cookies.lock().expect("cookies");
            for line in &set_cookies {
                let pair = line.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    let expired = line.to_ascii_lowercase().contains("max-age=0")
                        || line
                            .to_ascii_lowercase()
                            .contains("expires=thu, 01 jan 1970");
                    if expired || value.is_empty() {
                        jar.remove(name);
                    } else {
                        jar.insert(name.to_owned(), value.to_owned());
                    }
                }
            }
        }
        Answer {
            status,
            location,
            set_cookies,
            body: response.text().await.unwrap_or_default(),
        }
    }

    pub(super) async fn get(&self, url: &str) -> Answer {
        self.send(self.http.get(url)).await
    }

    /// Goes to Steward's `/auth/login` (with `query`), through the provider's forms as
    /// `account`, and stops at the redirect back to Steward's callback, which it returns
    /// unvisited (with the `/auth/login` answer).
    pub(super) async fn authorize(
        &self,
        app: &TestApp,
        query: &str,
        account: &str,
    ) -> (Answer, String) {
        let login = self.get(&format!("{}/auth/login{query}", app.base)).await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
        let mut url = login.location.clone().expect("to the provider");
        let callback = format!("{}/auth/callback", app.base);
        for _ in 0..20 {
            if url.starts_with(&callback) {
                return (login, url);
            }
            let answer = self.get(&url).await;
            let answer = if answer.status == StatusCode::OK && answer.body.contains("<form") {
                self.submit(&url, &answer.body, account).await
            } else {
                answer
            };
            assert!(
                answer.status.is_redirection(),
                "{url}: {} {}",
                answer.status,
                answer.body
            );
            url = absolute(&url, answer.location.as_deref().expect("Location"));
        }
        panic!("no redirect back to Steward after 20 steps");
    }

    /// Submits the page's first form, filling the login form's fields.
    async fn submit(&self, page_url: &str, html: &str, account: &str) -> Answer {
        let form = &html[html.find("<form").expect("a form")..];
        let action = attribute(form, "action").expect("form action");
        let mut fields: Vec<(String, String)> = Vec::new();
        for input in form.split("<input").skip(1) {
            let Some(name) = attribute(input, "name") else {
                continue;
            };
            let value = match name.as_str() {
                "login" => account.to_owned(),
                "password" => "any password".to_owned(),
                _ => attribute(input, "value").unwrap_or_default(),
            };
            fields.push((name, value));
        }
        let url = absolute(page_url, &action);
        self.send(self.http.post(url).form(&fields)).await
    }

    /// A whole sign-in; the callback's answer.
    pub(super) async fn sign_in(&self, app: &TestApp, query: &str, account: &str) -> Answer {
        let (_, callback) = self.authorize(app, query, account).await;
        self.get(&callback).await
    }

    pub(super) async fn whoami(&self, app: &TestApp) -> (StatusCode, Value) {
        let answer = self.get(&format!("{}/api/v1/whoami", app.base)).await;
        (answer.status, answer.json())
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let end = tag.find('>').unwrap_or(tag.len());
    let tag = &tag[..end];
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let value = &tag[start..];
    Some(value[..value.find('"')?].replace("&amp;", "&"))
}

fn absolute(base: &str, location: &str) -> String {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("url")
        .to_string()
}

pub(super) fn roles(whoami: &Value) -> Vec<&str> {
    whoami["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The audit actions about account `name` in the default tenant.
pub(super) async fn actions(app: &TestApp, name: &str) -> Vec<(String, Value)> {
    app.store
        .tenant(&TenantId::default_tenant())
        .audit_events_for("user", name)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.action, e.details))
        .collect()
}

/// The token with its payload changed by `change`, its header and signature kept.
pub(super) fn tamper(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64")).expect("json");
    change(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// The token's header with `kid` replaced (signature kept, so it verifies under no key).
pub(super) fn with_kid(token: &str, kid: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64")).expect("json");
    header["kid"] = json!(kid);
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("json"));
    format!("{header}.{}.{}", parts[1], parts[2])
}

/// The token's header, decoded.
fn header(token: &str) -> Value {
    let first = token.split('.').next().expect("a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).expect("base64")).expect("json")
}

/// The token's claims under a header saying `alg: none`, without a signature.
pub(super) fn unsigned(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a payload");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{payload}.")
}

/// The token's claims signed with HS256 under `secret` (the classic confusion: a verifier that
/// takes the algorithm from the token would check it with the public key as an HMAC secret).
pub(super) fn hs256(token: &str, secret: &[u8]) -> String {
    let mut header = header(token);
    header["alg"] = json!("HS256");
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("json"));
    let payload = token.split('.').nth(1).expect("a payload");
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// HMAC-SHA-256 (RFC 2104), enough for forging a test token.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use steward_audit::hash::sha256;
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key).0);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = sha256(&[pad(0x36), message.to_vec()].concat());
    sha256(&[pad(0x5c), inner.0.to_vec()].concat()).0
}
