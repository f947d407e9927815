//! `/` and the sign-out confirmation page.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use entra_auth::axum::{SignedInUser, sign_out_csrf_token};
use tower_sessions::Session;

use serde::Deserialize;

use crate::pages::{HomePage, SignOutPage, error_response};
use crate::sessions::EntraSession;
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
    /// The issuer of that Entra session, when Entra sends it.
    iss: Option<String>,
}

/// `GET /logout`: a small page with the (CSRF-protected) sign-out form; or, called by Entra with
/// `sid` (front-channel logout: the user signed out of Entra elsewhere, and Entra's signed-out
/// page loads this URL in an iframe), ends every session signed in with that Entra session. Only
/// sessions whose `sid` *and* issuer match end; a foreign `iss` is refused. The sid is Entra's
/// unguessable session id.
pub async fn sign_out_page(
    State(state): State<AppState>,
    Query(query): Query<LogoutQuery>,
    user: Option<SignedInUser>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    if let Some(sid) = query.sid {
        return front_channel_logout(&state, sid, query.iss.as_deref()).await;
    }
    match csrf_token(user.is_some(), &session, &headers).await {
        Ok(csrf_token) => SignOutPage { signed_in: user.is_some(), csrf_token }.into_response(),
        Err(response) => response,
    }
}

async fn front_channel_logout(state: &AppState, sid: String, iss: Option<&str>) -> Response {
    if sid.is_empty() || sid.len() > 128 {
        return (StatusCode::BAD_REQUEST, "sid is malformed").into_response();
    }
    let issuer = match state.client.front_channel_issuer(iss).await {
        Ok(Some(issuer)) => issuer,
        Ok(None) => {
            tracing::warn!("front-channel logout for a foreign or missing issuer refused");
            return (StatusCode::BAD_REQUEST, "iss is not this app's identity provider").into_response();
        }
        Err(err) => {
            tracing::error!(error = %err, "front-channel logout: tenant metadata unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "identity provider metadata unavailable").into_response();
        }
    };
    match state.store.end_entra_session(&EntraSession { issuer, sid }).await {
        Ok(ended) => {
            tracing::info!(ended, "front-channel logout");
            // Entra loads this URL in an iframe of its signed-out page: let it frame us.
            let frame_ancestors = format!("frame-ancestors {}", state.client.config().authority.origin());
            ([(header::CONTENT_SECURITY_POLICY, frame_ancestors)], "signed out").into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "front-channel logout failed");
            (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable").into_response()
        }
    }
}
