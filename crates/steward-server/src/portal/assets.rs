//! The portal's stylesheet and its one script, compiled into the binary: nothing is fetched
//! from elsewhere. The script only enhances pages that work without it (every form posts and
//! every page renders on the server), so a browser with scripts off loses convenience, not
//! function.

use axum::http::header;
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("../../static/portal.css");
const SCRIPT: &str = include_str!("../../static/portal.js");

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

/// The portal's script (progressive enhancement: live previews, in-browser proof checks).
#[utoipa::path(get, path = "/static/portal.js", tag = "portal", responses(
    (status = 200, content_type = "text/javascript", body = String, description = "the script")))]
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
}
