//! The webhook executor: signed HTTP calls (Standard Webhooks) in three phases. The receiver gets
//! `{"phase": "snapshot" | "apply" | "undo", "step": …, "snapshot": …}`: it answers `snapshot` with
//! the prior state undoing will need, performs the change on `apply`, and restores on `undo` from
//! the snapshot it returned. Each phase has a stable `webhook-id` (`<step id>.<phase>`) so a
//! receiver can ignore a retry it already handled; transport errors and 5xx answers are retried
//! with backoff, 4xx answers are final.

use crate::executor::{ExecError, Executor, Outcome, bounded};
use crate::standard_webhooks::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Clone, Serialize, Deserialize)]
pub struct WebhookStep {
    /// Unique per change and step (`CHG-7.2`): the `webhook-id` prefix.
    pub id: String,
    pub url: String,
    /// `whsec_…`
    pub secret: String,
    /// What the receiver needs to know to do the step.
    pub body: Value,
    pub timeout_seconds: u64,
    /// Further attempts after the first, on transport errors and 5xx answers.
    pub retries: u32,
}

impl std::fmt::Debug for WebhookStep {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookStep")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout_seconds", &self.timeout_seconds)
            .field("retries", &self.retries)
            .finish()
    }
}

impl WebhookStep {
    async fn call(
        &self,
        phase: &str,
        snapshot: Option<&Value>,
    ) -> Result<(Outcome, Value), ExecError> {
        let secret = Secret::parse(&self.secret).map_err(|e| ExecError::Invalid(e.to_string()))?;
        let message = json!({"phase": phase, "step": self.body, "snapshot": snapshot});
        let body = serde_json::to_vec(&message).map_err(|e| ExecError::Invalid(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(self.timeout_seconds.max(1)))
            .build()
            .map_err(|e| ExecError::Invalid(e.to_string()))?;
        let id = format!("{}.{phase}", self.id);
        let mut last_error = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt.min(6)))).await;
            }
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let sent = client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", secret.sign(&id, timestamp, &body))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Err(e) => last_error = format!("cannot reach {}: {e}", self.url),
                Ok(response) if response.status().is_server_error() => {
                    last_error = format!("{} answered {}", self.url, response.status());
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
                    return Ok((
                        Outcome {
                            ok: status.is_success(),
                            output: bounded(&text),
                            detail: json!({"status": status.as_u16(), "attempts": attempt + 1}),
                        },
                        answer,
                    ));
                }
            }
        }
        Err(ExecError::Unreachable(format!(
            "{last_error} (after {} attempts)",
            self.retries + 1
        )))
    }
}

impl Executor for WebhookStep {
    async fn snapshot(&self) -> Result<Value, ExecError> {
        let (outcome, answer) = self.call("snapshot", None).await?;
        if !outcome.ok {
            return Err(ExecError::Unreachable(format!(
                "the receiver refused the snapshot: {}",
                outcome.output
            )));
        }
        Ok(answer)
    }

    async fn apply(&self) -> Result<Outcome, ExecError> {
        Ok(self.call("apply", None).await?.0)
    }

    async fn undo(&self, snapshot: &Value) -> Result<Outcome, ExecError> {
        Ok(self.call("undo", Some(snapshot)).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// A receiver holding one value: it verifies every signature, fails the first `flaky`
    /// requests with 503, and records the phases it handled.
    async fn receiver(flaky: usize) -> (String, Arc<Mutex<Vec<String>>>) {
        use axum::routing::post;
        let seen: Arc<Mutex<Vec<String>>> = Default::default();
        let state = Arc::new(Mutex::new((String::from("v6"), flaky)));
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (state, log) = (state.clone(), log.clone());
                    async move {
                        let h = |n: &str| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs() as i64)
                            .unwrap_or_default();
                        let secret = Secret::parse(SECRET).expect("secret");
                        if secret
                            .verify(
                                h("webhook-id").as_deref(),
                                h("webhook-timestamp").as_deref(),
                                h("webhook-signature").as_deref(),
                                &body,
                                now,
                            )
                            .is_err()
                        {
                            return (axum::http::StatusCode::UNAUTHORIZED, String::new());
                        }
                        let mut guard = state.lock().expect("lock");
                        if guard.1 > 0 {
                            guard.1 -= 1;
                            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
                        }
                        let message: Value = serde_json::from_slice(&body).expect("json");
                        let phase = message["phase"].as_str().unwrap_or("").to_owned();
                        log.lock()
                            .expect("lock")
                            .push(format!("{phase} {}", h("webhook-id").unwrap_or_default()));
                        let answer = match phase.as_str() {
                            "snapshot" => json!({"alias": guard.0}),
                            "apply" => {
                                guard.0 =
                                    message["step"]["alias"].as_str().unwrap_or("").to_owned();
                                json!({"alias": guard.0})
                            }
                            _ => {
                                guard.0 = message["snapshot"]["alias"]
                                    .as_str()
                                    .unwrap_or("")
                                    .to_owned();
                                json!({"alias": guard.0})
                            }
                        };
                        (axum::http::StatusCode::OK, answer.to_string())
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn step(url: &str, retries: u32) -> WebhookStep {
        WebhookStep {
            id: "CHG-7.1".into(),
            url: url.into(),
            secret: SECRET.into(),
            body: json!({"alias": "v7"}),
            timeout_seconds: 5,
            retries,
        }
    }

    #[tokio::test]
    async fn snapshot_apply_undo_with_signed_retried_calls() {
        let (url, seen) = receiver(1).await;
        let step = step(&url, 2);
        let snapshot = step.snapshot().await.expect("snapshot after one retry");
        assert_eq!(snapshot, json!({"alias": "v6"}));
        let applied = step.apply().await.expect("applies");
        assert!(applied.ok);
        assert_eq!(applied.detail["attempts"], 1);
        assert_eq!(applied.output, r#"{"alias":"v7"}"#);
        let undone = step.undo(&snapshot).await.expect("undoes");
        assert_eq!(undone.output, r#"{"alias":"v6"}"#);
        assert_eq!(
            *seen.lock().expect("lock"),
            [
                "snapshot CHG-7.1.snapshot",
                "apply CHG-7.1.apply",
                "undo CHG-7.1.undo"
            ]
        );
        assert!(!format!("{step:?}").contains("whsec_"));
    }

    #[tokio::test]
    async fn gives_up_after_its_retries_and_reports_refusals() {
        let (url, _) = receiver(10).await;
        let err = step(&url, 1).apply().await.expect_err("still unavailable");
        assert!(
            err.to_string().contains("503") && err.to_string().contains("after 2 attempts"),
            "{err}"
        );
        let mut wrong = step(&url, 0);
        wrong.secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAA".into();
        let outcome = wrong.apply().await.expect("answered");
        assert!(!outcome.ok);
        assert_eq!(outcome.detail["status"], 401);
        let err = step("http://127.0.0.1:9/hook", 0)
            .apply()
            .await
            .expect_err("nothing listens");
        assert!(err.to_string().contains("cannot reach"), "{err}");
    }
}
