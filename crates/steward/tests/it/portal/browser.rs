//! A real browser for the portal's tests: Debian's headless Chromium driven through `chromedriver`
//! (the binary `STEWARD_TEST_CHROMEDRIVER` names, installed by `scripts/test.sh`) by the
//! `fantoccini` WebDriver client. Each [`Browser`] starts a chromedriver of its own on a free port
//! with a throwaway profile, and kills it (with the Chromium it started) when closed or dropped:
//! chromedriver ignores SIGTERM for seconds, so its process group gets SIGKILL and is waited for.
//! Every page a test looks at can be saved as `target/portal-screenshots/<test>-<page>.png`, and
//! [`Browser::axe`] runs axe-core (tests/portal, installed with `npm ci`) in the page. A test fails,
//! rather than skips, when chromedriver or axe-core is not installed.

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

/// The desktop window the portal is checked at; [`Browser::resize`] tries other sizes.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// A phone-sized window.
pub const PHONE: (u32, u32) = (375, 812);

pub struct Browser {
    client: Option<Client>,
    driver: Child,
    /// chromedriver's log and Chromium's profile; removed with the browser.
    dir: TempDir,
    /// Prefixes the screenshots' names.
    test: String,
}

/// The chromedriver to run: `STEWARD_TEST_CHROMEDRIVER`, else `chromedriver` on the PATH.
fn chromedriver() -> String {
    std::env::var("STEWARD_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Where the screenshots go: `target/portal-screenshots` of the workspace (or of
/// `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("portal-screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at the desktop size, for the test `test`.
    pub async fn start(test: &str) -> Browser {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let driver_bin = chromedriver();
        let log = dir.path().join("chromedriver.log");
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A group of its own: killing the group stops the Chromium it started too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver ({driver_bin}) is needed for the portal's browser tests \
                     (run scripts/test.sh, or apt-get install chromium chromium-driver): {e}"
                )
            });
        let mut browser = Browser {
            client: None,
            driver,
            test: test.to_owned(),
            dir,
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!("chromedriver exited at start ({status}): {}", browser.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}: {}",
                browser.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = browser.dir.path().join("profile");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--no-first-run",
                    "--lang=en-US",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session: {e}: {}", browser.log()));
        browser.client = Some(client);
        browser.resize(DESKTOP).await;
        browser
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("an open session")
    }

    /// Makes the viewport (what a page gets to draw on, and what a screenshot shows)
    /// `(width, height)` CSS pixels: the window is that plus whatever frame Chromium draws. Below
    /// the narrowest window Chromium allows (500 px), the device's metrics are emulated instead,
    /// as a phone (what Chromium's device toolbar does).
    pub async fn resize(&self, (width, height): (u32, u32)) {
        let client = self.client();
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
            .await;
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let frame = self
            .run("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];")
            .await;
        let extra = |i: usize| {
            frame[i]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        client
            .set_window_size(width + extra(0), height + extra(1))
            .await
            .expect("window size");
        let viewport = self
            .run("return [window.innerWidth, window.innerHeight];")
            .await;
        if viewport != json!([width, height]) {
            self.cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
            )
            .await;
            // A page without `<meta name="viewport">` is then laid out 980 px wide, as on a
            // phone: the pages themselves are checked for that.
        }
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client()
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The path (and query) of the page on show.
    pub async fn path(&self) -> String {
        let url = self.client().current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The page's HTML, for failure messages.
    pub async fn source(&self) -> String {
        self.client().source().await.unwrap_or_default()
    }

    /// Waits for an element matching `css` to be on the page.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client()
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no `{css}` on {} within {PATIENCE:?} ({e}); the page:\n{}",
                self.path().await,
                self.source().await
            ),
        }
    }

    /// Every element matching `css` on the page now (no waiting).
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("finding `{css}`: {e}"))
    }

    /// Waits until the text of `css` is `expected` (after trimming), as a page that reloads
    /// after a form posts gets there.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = match self.client().find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if found.trim() == expected {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "`{css}` on {} says {found:?}, not {expected:?}; the page:\n{}",
                    self.path().await,
                    self.source().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// Types `text` into the field `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.wait_for(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.client()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// Saves the page as `target/portal-screenshots/<test>-<page>.png` and returns the path.
    pub async fn screenshot(&self, page: &str) -> PathBuf {
        let png = self.client().screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{}-{page}.png", self.test));
        std::fs::write(&path, png).expect("the screenshot written");
        path
    }

    /// Runs axe-core in the page (all its rules: WCAG 2.x A/AA and best practices) and returns its
    /// violations.
    pub async fn axe(&self) -> Vec<Value> {
        let script = axe_script();
        if self.run("return typeof window.axe").await.as_str() != Some("object") {
            self.run(&script).await;
        }
        let result = self
            .client()
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   axe.run(document, { resultTypes: ["violations"] })
                      .then(r => done({ violations: r.violations }))
                      .catch(e => done({ error: String(e) }));"#,
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("running axe-core: {e}"));
        if let Some(error) = result.get("error") {
            panic!("axe-core failed on {}: {error}", self.path().await);
        }
        result["violations"]
            .as_array()
            .cloned()
            .expect("axe-core's violations")
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        self.kill();
    }

    fn kill(&mut self) {
        // The whole group: chromedriver and any Chromium it left behind.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Chrome DevTools Protocol command, through chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// axe-core's browser bundle, as `scripts/test.sh` installs it.
fn axe_script() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/portal/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core ({}) is needed for the accessibility checks (run scripts/test.sh, or \
             `npm ci` in tests/portal): {e}",
            path.display()
        )
    })
}

/// The violations of impact `serious` or `critical`, one readable line each.
pub fn serious(violations: &[Value]) -> Vec<String> {
    violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| {
            let targets: Vec<String> = v["nodes"]
                .as_array()
                .map(|nodes| nodes.iter().map(|n| n["target"].to_string()).collect())
                .unwrap_or_default();
            format!(
                "{} ({}): {} — at {}",
                v["id"].as_str().unwrap_or("?"),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or(""),
                targets.join(", ")
            )
        })
        .collect()
}
