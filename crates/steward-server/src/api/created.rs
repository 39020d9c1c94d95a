//! The answer to a request that created something: `201 Created`, a `Location` header naming
//! the new resource, and its view as the body — the same shape for every POST that creates.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A created resource: where it lives (a path under `/api/v1`) and its view.
#[derive(Debug)]
pub struct Created<T> {
    pub location: String,
    pub view: T,
}

impl<T> Created<T> {
    pub fn at(location: impl Into<String>, view: T) -> Created<T> {
        Created {
            location: location.into(),
            view,
        }
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (
            StatusCode::CREATED,
            [(header::LOCATION, self.location)],
            Json(self.view),
        )
            .into_response()
    }
}

/// A request that waits for someone else before it takes effect (dual control): `202 Accepted`,
/// a `Location` naming what waits, and its view.
#[derive(Debug)]
pub struct Accepted<T> {
    pub location: String,
    pub view: T,
}

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (
            StatusCode::ACCEPTED,
            [(header::LOCATION, self.location)],
            Json(self.view),
        )
            .into_response()
    }
}
