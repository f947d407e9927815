//! `/`: the sign-in button, or "Welcome {name}" with the email and the sign-out button.

use axum::response::{IntoResponse, Response};
use entra_auth::axum::{SignedInUser, sign_out_csrf_token};
use tower_sessions::Session;

use crate::error::AppError;
use crate::pages::HomePage;

/// Signed out: the sign-in button. Signed in: "Welcome {name}", the email, the sign-out button
/// (its form carries the session's CSRF token).
pub async fn home(user: Option<SignedInUser>, session: Session) -> Result<Response, AppError> {
    let csrf_token = match &user {
        Some(_) => sign_out_csrf_token(&session).await?,
        None => String::new(),
    };
    Ok(HomePage { user, csrf_token }.into_response())
}
