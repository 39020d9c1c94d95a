//! The HTTP client the CLI commands use to talk to a Steward server.

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

/// A refusal from the server: one readable line for people, and the answer's JSON error body
/// (`{"error", "details"}`) for `--output json`.
#[derive(Debug)]
pub struct ServerRefused {
    pub line: String,
    pub body: Value,
}

impl ServerRefused {
    fn new(status: StatusCode, text: String) -> ServerRefused {
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let line = refusal_line(status, &value);
        // A body that is not Steward's error shape (a proxy's HTML page, say) is wrapped in it.
        let body = if value.get("error").is_some_and(Value::is_string) {
            value
        } else {
            serde_json::json!({
                "error": line,
                "details": {"status": status.as_u16(), "body": value},
            })
        };
        ServerRefused { line, body }
    }
}

impl std::fmt::Display for ServerRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.call_with_query(method, path, &[], body).await
    }

    pub async fn call_with_query(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, text) = self.exchange(method, path, query, body).await?;
        if status.is_success() {
            Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
        } else {
            Err(ServerRefused::new(status, text).into())
        }
    }

    /// A GET whose answer is not JSON (the iCalendar feed).
    pub async fn get_text(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<String> {
        let (status, text) = self.exchange(Method::GET, path, query, None).await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(ServerRefused::new(status, text).into())
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, String)> {
        let url = format!("{}{path}", self.server);
        let mut request = self.http.request(method, &url).query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the Steward server at {}: {} (start it with `steward serve`, or set --server / STEWARD_URL)",
                self.server,
                root_cause(&e)
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("cannot read the server's answer")?;
        Ok((status, text))
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// One line from an error body: the message, then each bad field with its reason.
fn refusal_line(status: StatusCode, body: &Value) -> String {
    let message = body
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the server answered {status}"));
    let fields: Vec<String> = body
        .pointer("/details/fields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.get("field").and_then(Value::as_str).unwrap_or("?"),
                        f.get("message").and_then(Value::as_str).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        format!("{message} ({})", status.as_u16())
    } else {
        format!(
            "{} ({}): {}",
            message.split(':').next().unwrap_or(&message),
            status.as_u16(),
            fields.join("; ")
        )
    }
}

impl std::error::Error for ServerRefused {}
