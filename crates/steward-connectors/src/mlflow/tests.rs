//! The client's HTTP layer against a fake server on port 0: what MLflow's answers, a page that
//! is not MLflow's, and a closed port turn into. The real MLflow runs in the integration tests
//! (`crates/steward/tests/it/{discovery,execution}.rs`).

use super::*;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::Deserialize;

/// A server that answers every path from `answer(path and query, body)`.
async fn fake(answer: fn(&str, &str) -> (StatusCode, &'static str, String)) -> String {
    let app = axum::Router::new().fallback(move |uri: Uri, body: String| async move {
        let path = uri.path_and_query().map_or("", |p| p.as_str()).to_owned();
        let (status, content_type, text) = answer(&path, &body);
        (status, [(header::CONTENT_TYPE, content_type)], text).into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[test]
fn tracking_uris_are_http_and_lose_what_the_browser_adds() {
    let check = |uri: &str, expected: Option<&str>| {
        assert_eq!(tracking_uri_base(uri).ok().as_deref(), expected, "{uri}");
    };
    check("http://127.0.0.1:5000", Some("http://127.0.0.1:5000"));
    check("http://127.0.0.1:5000/", Some("http://127.0.0.1:5000"));
    check(
        "https://mlflow.example/#/models",
        Some("https://mlflow.example"),
    );
    check(
        "https://example.com/mlflow/?x=1",
        Some("https://example.com/mlflow"),
    );
    check("file:///mlruns", None);
    check("databricks", None);
    check("127.0.0.1:5000", None);
}

#[test]
fn a_tracking_uri_that_is_not_http_makes_a_step_not_runnable() {
    let error = Mlflow::new("file:///mlruns").expect_err("not http");
    assert!(
        matches!(ExecError::from(error), ExecError::Invalid(m) if m.contains("file:///mlruns"))
    );
}

#[tokio::test]
async fn mlflow_errors_keep_their_code_and_message() {
    let url = fake(|_, _| {
        (
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=x not found"}"#.to_owned(),
        )
    })
    .await;
    let error = Mlflow::new(&url)
        .expect("client")
        .registered_model("x")
        .await
        .expect_err("404");
    match &error {
        MlflowError::Api {
            status,
            code,
            endpoint,
            ..
        } => {
            assert_eq!(
                (*status, code.as_str(), endpoint.as_str()),
                (404, "RESOURCE_DOES_NOT_EXIST", "registered-models/get")
            );
        }
        other => panic!("not an API error: {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "MLflow answered 404 RESOURCE_DOES_NOT_EXIST: Registered Model with name=x not found"
    );
}

#[tokio::test]
async fn an_answer_that_is_not_mlflow_says_so() {
    let url = fake(|path, _| {
        if path.contains("registered-models/get") {
            (
                StatusCode::OK,
                "text/html",
                "<html>models</html>".to_owned(),
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                "text/html",
                "<html>no</html>".to_owned(),
            )
        }
    })
    .await;
    let mlflow = Mlflow::new(&format!("{url}/#/models")).expect("client");
    assert_eq!(mlflow.tracking_uri(), url);
    for error in [
        mlflow.registered_model("x").await.expect_err("html"),
        mlflow.delete_alias("x", "a").await.expect_err("html 404"),
    ] {
        assert!(matches!(&error, MlflowError::NotMlflow { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&url) && message.contains("text/html"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable_by_its_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let error = Mlflow::new(&url)
        .expect("client")
        .alias_version("x", "champion")
        .await
        .expect_err("nothing listens");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot reach MLflow at {url}: ")),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[derive(Deserialize)]
struct Numbers {
    #[serde(default)]
    numbers: Vec<u32>,
    next_page_token: Option<String>,
}

impl Page for Numbers {
    type Item = u32;
    fn into_parts(self) -> (Vec<u32>, Option<String>) {
        (self.numbers, self.next_page_token)
    }
}

/// Pages of GET listings take the token in the query, of POST listings in the body; the last
/// page has no token, and an empty page ends the listing whatever token it carries.
#[tokio::test]
async fn pages_follow_the_token_until_the_last() {
    let url = fake(|path, body| {
        let token = path
            .split("page_token=")
            .nth(1)
            .map(str::to_owned)
            .or_else(|| {
                serde_json::from_str::<Value>(body).ok()?["page_token"]
                    .as_str()
                    .map(str::to_owned)
            });
        let page = match token.as_deref() {
            None => json!({"numbers": [1, 2], "next_page_token": "b"}),
            Some("b") => json!({"numbers": [3], "next_page_token": "c"}),
            // An empty page that still offers a next one.
            Some(_) => json!({"numbers": [], "next_page_token": "c"}),
        };
        (StatusCode::OK, "application/json", page.to_string())
    })
    .await;
    let mlflow = Mlflow::new(&url).expect("client");
    for (method, body) in [
        (Method::GET, None),
        (Method::POST, Some(json!({"max_results": 2}))),
    ] {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        let mut requests = 0;
        loop {
            requests += 1;
            let (items, next) = mlflow
                .page::<Numbers>(
                    method.clone(),
                    "numbers/search",
                    &[("max_results", "2")],
                    body.as_ref(),
                    token.as_deref(),
                )
                .await
                .expect("page");
            all.extend(items);
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!((all, requests), (vec![1, 2, 3], 3), "{method}");
    }
}
