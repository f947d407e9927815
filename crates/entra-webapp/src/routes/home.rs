//! `/`: the sign-in button, or "Welcome {name}" with the email and the sign-out button.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use entra_auth::LocalPath;
use entra_auth::axum::{SignedInUser, sign_out_csrf_token};
use tower_sessions::Session;

use crate::error::AppError;
use crate::pages::HomePage;
use crate::state::AppState;

/// Signed out: the sign-in button. Signed in: "Welcome {name}", the email, the sign-out button
/// (its form carries the session's CSRF token); or the 403 page for a user the access policy
/// (ALLOWED_TENANTS/ROLES/GROUPS) does not let in.
pub async fn home(
    State(state): State<AppState>,
    user: Option<SignedInUser>,
    session: Session,
) -> Result<Response, AppError> {
    if let Some(user) = &user
        && let Err(denied) = state.policy.check(user)
    {
        return Ok(state.auth.access_denied(&session, user, denied, &LocalPath::root()).await);
    }
    let csrf_token = match &user {
        Some(_) => sign_out_csrf_token(&session).await?,
        None => String::new(),
    };
    Ok(HomePage { user, csrf_token }.into_response())
}
