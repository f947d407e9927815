//! The stylesheet, compiled into the binary: no CDN, no file system at run time.

use axum::http::header;
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("../../static/style.css");

/// `/.auth/style.css` (under App Service authentication's reserved prefix, so that in proxy mode
/// it cannot shadow a path of the app behind), and `/static/style.css` for older pages.
pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
}
