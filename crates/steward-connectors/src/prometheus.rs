//! A Prometheus HTTP API client: one series over a time range (`/api/v1/query_range`), for the
//! verification checks that read their metric from Prometheus rather than from samples pushed to
//! Steward. Answers the points as (time, value); the caller decides what they mean.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// What went wrong asking Prometheus, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("cannot reach Prometheus at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("Prometheus at {url} answered no JSON: {cause}")]
    NotJson { url: String, cause: String },
    #[error("Prometheus refused the query: {0}")]
    Refused(String),
    #[error("the query returns {0} series; aggregate it to one (e.g. avg(...))")]
    SeveralSeries(usize),
}

/// Reads one series from a Prometheus-compatible `query_range` endpoint at about 250 points over
/// the range (never finer than 15 s). Points whose value is not a finite number are skipped.
pub async fn query_range(
    url: &str,
    query: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, f64)>, PrometheusError> {
    let step = ((to - from).num_seconds() / 250).max(15);
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/query_range", url.trim_end_matches('/')))
        .query(&[
            ("query", query.to_owned()),
            ("start", from.timestamp().to_string()),
            ("end", to.timestamp().to_string()),
            ("step", format!("{step}s")),
        ])
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| PrometheusError::Unreachable {
            url: url.to_owned(),
            cause: e.to_string(),
        })?;
    let body: Value = response
        .json()
        .await
        .map_err(|e| PrometheusError::NotJson {
            url: url.to_owned(),
            cause: e.to_string(),
        })?;
    points(&body)
}

/// The points of a `query_range` answer (`{"status": "success", "data": {"resultType":
/// "matrix", "result": [{"metric": {…}, "values": [[<unix seconds>, "<value>"], …]}]}}`).
fn points(body: &Value) -> Result<Vec<(DateTime<Utc>, f64)>, PrometheusError> {
    if body["status"] != "success" {
        return Err(PrometheusError::Refused(
            body["error"].as_str().unwrap_or("unknown error").to_owned(),
        ));
    }
    let series = body["data"]["result"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if series.len() > 1 {
        return Err(PrometheusError::SeveralSeries(series.len()));
    }
    let mut out = Vec::new();
    for point in series
        .first()
        .and_then(|s| s["values"].as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let (Some(t), Some(v)) = (point[0].as_f64(), point[1].as_str()) else {
            continue;
        };
        let (Some(at), Ok(value)) = (
            DateTime::from_timestamp_millis((t * 1000.0) as i64),
            v.parse::<f64>(),
        ) else {
            continue;
        };
        if value.is_finite() {
            out.push((at, value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_matrix_answer_becomes_points_and_errors_say_what_to_fix() {
        // The shape Prometheus 2.x answers query_range with (values are strings; NaN skipped).
        let body = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "fraud"}, "values": [[1764633600, "0.91"], [1764633615.5, "0.89"], [1764633630, "NaN"]]}
        ]}});
        let got = points(&body).expect("points");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.timestamp(), 1764633600);
        assert_eq!(got[1].0.timestamp_millis(), 1764633615500);
        assert_eq!(got[1].1, 0.89);
        let refused =
            json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 4"});
        assert_eq!(
            points(&refused).expect_err("refused").to_string(),
            "Prometheus refused the query: parse error at char 4"
        );
        let two = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"a": "1"}, "values": []}, {"metric": {"a": "2"}, "values": []}
        ]}});
        assert!(matches!(
            points(&two),
            Err(PrometheusError::SeveralSeries(2))
        ));
        let empty = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert_eq!(points(&empty).expect("empty"), []);
    }

    #[tokio::test]
    async fn asks_the_range_over_http() {
        use axum::extract::Query;
        use std::collections::HashMap;
        let app = axum::Router::new().route(
            "/api/v1/query_range",
            axum::routing::get(|Query(q): Query<HashMap<String, String>>| async move {
                axum::Json(json!({"status": "success", "data": {"resultType": "matrix", "result": [
                    {"metric": {}, "values": [[q["start"].parse::<f64>().unwrap_or(0.0), q["step"].trim_end_matches('s')]]}
                ]}}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let from = DateTime::from_timestamp(1_764_633_600, 0).expect("time");
        let got = query_range(
            &url,
            "avg(accuracy)",
            from,
            from + chrono::Duration::hours(1),
        )
        .await
        .expect("answer");
        assert_eq!(got, [(from, 15.0)], "start sent, 15 s step for an hour");
        let unreachable = query_range("http://127.0.0.1:1", "x", from, from).await;
        assert!(matches!(
            unreachable,
            Err(PrometheusError::Unreachable { .. })
        ));
    }
}
