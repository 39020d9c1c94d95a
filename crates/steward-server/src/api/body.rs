//! Request extractors whose failures are our JSON errors, not axum's plain text.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use steward_core::submission::FieldError;

/// Maximum request body; a change request is text, so 1 MiB is generous.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "the request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ApiError::BadRequest(format!("could not read the request body: {e}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest("the request needs a JSON body".into()));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))
        })?;
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| ApiError::Invalid(vec![FieldError::new("(body)", e.to_string())]))
    }
}

/// Query parameters of an endpoint that is not a list (lists take [`super::page::Paged`]); a
/// value of the wrong type is a 422 naming the problem, and with `#[serde(deny_unknown_fields)]`
/// on `T` (every query struct has it) an unknown parameter is a 422 naming it.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        serde_urlencoded::from_str::<T>(parts.uri.query().unwrap_or(""))
            .map(QueryParams)
            .map_err(|e| ApiError::Invalid(vec![super::page::query_error(&e.to_string(), &[])]))
    }
}
