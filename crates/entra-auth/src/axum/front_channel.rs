//! Front-channel logout: when the user signs out of Entra elsewhere, Entra's signed-out page loads
//! our logout URL with `sid` (and `iss`) in an iframe, and every session signed in with that Entra
//! session ends here. Sessions are found through [`EntraSessionIndex`], which the app's session
//! store implements (it learns each record's Entra session from
//! [`RecordFacts`](crate::axum::RecordFacts)). See `docs/ENTRA.md`, "Front-channel logout".

use async_trait::async_trait;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::client::EntraClient;

/// Longest `sid` accepted (Entra's are GUIDs).
const MAX_SID_LEN: usize = 128;

/// An Entra session as front-channel logout names it: the issuer and Entra's `sid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntraSession {
    /// The ID token's `iss`.
    pub issuer: String,
    /// The ID token's `sid`.
    pub sid: String,
}

/// Finds and ends the sessions signed in with one Entra session: what a session store must offer
/// for front-channel logout.
#[async_trait]
pub trait EntraSessionIndex: Send + Sync + 'static {
    /// Ends every session signed in with `entra_session`; returns how many ended.
    async fn end_entra_session(&self, entra_session: &EntraSession) -> tower_sessions::session_store::Result<usize>;
}

/// `GET {logout path}?sid=...&iss=...`. Only sessions whose `sid` *and* issuer match end; a
/// foreign `iss` is refused. The sid is Entra's unguessable session id: knowing it is the
/// authority to end it, as Entra's own signed-out page does.
pub(crate) async fn end_entra_session(
    client: &EntraClient,
    index: &dyn EntraSessionIndex,
    sid: String,
    iss: Option<&str>,
) -> Response {
    if sid.is_empty() || sid.len() > MAX_SID_LEN {
        return (StatusCode::BAD_REQUEST, "sid is malformed").into_response();
    }
    let issuer = match client.front_channel_issuer(iss).await {
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
    match index.end_entra_session(&EntraSession { issuer, sid }).await {
        Ok(ended) => {
            tracing::info!(ended, "front-channel logout");
            // Entra loads this URL in an iframe of its signed-out page: let it frame us.
            let frame_ancestors = format!("frame-ancestors {}", client.config().authority.origin());
            ([(header::CONTENT_SECURITY_POLICY, frame_ancestors)], "signed out").into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "front-channel logout failed");
            (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable").into_response()
        }
    }
}
