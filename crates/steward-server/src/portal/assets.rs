//! The portal's one stylesheet, compiled into the binary: nothing is fetched from elsewhere.

use axum::http::header;
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("../../static/portal.css");

/// The portal's stylesheet.
#[utoipa::path(get, path = "/static/portal.css", tag = "portal", responses(
    (status = 200, content_type = "text/css", body = String, description = "the stylesheet")))]
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}
