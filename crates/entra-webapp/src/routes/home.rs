//! `/` and the sign-out confirmation page.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use entra_auth::axum::{SignedInUser, sign_out_csrf_token};
use tower_sessions::Session;

use serde::Deserialize;

use crate::pages::{HomePage, SignOutPage, error_response};
use crate::startup::AppState;

/// The sign-out form's CSRF token (only signed-in pages show the form).
async fn csrf_token(signed_in: bool, session: &Session, headers: &HeaderMap) -> Result<String, Response> {
    if !signed_in {
        return Ok(String::new());
    }
    sign_out_csrf_token(session)
        .await
        .map_err(|err| error_response(err.page("", &entra_auth::axum::request_id(headers))))
}

/// Signed out: the sign-in button. Signed in: "Welcome {name}", the email, the sign-out button.
pub async fn home(user: Option<SignedInUser>, session: Session, headers: HeaderMap) -> Response {
    match csrf_token(user.is_some(), &session, &headers).await {
        Ok(csrf_token) => HomePage { user, csrf_token }.into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    /// Present when Entra calls our front-channel logout URL.
    sid: Option<String>,
}

/// `GET /logout`: a small page with the (CSRF-protected) sign-out form; or, called by Entra with
/// `sid` (front-channel logout: the user signed out of Entra elsewhere), ends every session signed
/// in with that Entra session. The sid is Entra's unguessable session id.
pub async fn sign_out_page(
    State(state): State<AppState>,
    Query(query): Query<LogoutQuery>,
    user: Option<SignedInUser>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    if let Some(sid) = query.sid.filter(|sid| !sid.is_empty() && sid.len() <= 128) {
        return match state.store.end_sessions_with_sid(&sid).await {
            Ok(ended) => {
                tracing::info!(ended, "front-channel logout");
                (StatusCode::OK, "signed out").into_response()
            }
            Err(reason) => {
                tracing::error!(%reason, "front-channel logout failed");
                (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable").into_response()
            }
        };
    }
    match csrf_token(user.is_some(), &session, &headers).await {
        Ok(csrf_token) => SignOutPage { signed_in: user.is_some(), csrf_token }.into_response(),
        Err(response) => response,
    }
}
