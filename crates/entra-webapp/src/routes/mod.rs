//! The app's routes around entra-auth's sign-in routes.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

mod assets;
mod health;
mod home;
mod profile;
mod setup;

pub use assets::stylesheet;
pub use health::{healthz, readyz};
pub use home::{home, sign_out_page};
pub use profile::{photo, profile};
pub use setup::setup;

use crate::pages::error_response;

/// Any path we do not serve.
pub async fn not_found(headers: HeaderMap) -> Response {
    error_response(entra_auth::ErrorPage {
        status: StatusCode::NOT_FOUND,
        title: "Page not found".to_owned(),
        message: "There is nothing at this address.".to_owned(),
        hint: "Go back to the home page.".to_owned(),
        request_id: entra_auth::axum::request_id(&headers),
    })
}
