//! `/`: the sign-in button, or "Welcome {name}" with the email and the sign-out button.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use entra_auth::axum::{AccessTokenError, SignedInUser, sign_out_csrf_token, signed_in_user_refreshed};
use entra_auth::{LocalPath, RefreshFailure, SignInError};
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
    // With an access policy, decide on memberships as fresh as the tokens (refreshed when due),
    // as the protected pages do; a session that must sign in again is shown as signed out.
    let user = match (&user, state.policy.is_empty()) {
        (Some(_), false) => match signed_in_user_refreshed(&state.client, &session).await {
            Ok(user) => user,
            Err(AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_))) => None,
            Err(AccessTokenError::Session(error)) => return Err(AppError::SignIn(error)),
            Err(error) => return Err(AppError::SignIn(SignInError::RefreshUnavailable(error.to_string()))),
        },
        _ => user,
    };
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
