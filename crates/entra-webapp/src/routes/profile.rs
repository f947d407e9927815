//! `/profile` and its photo: Graph called live with the session's access token, refreshed as
//! needed, so a user sees refresh working. The token never leaves the server.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use entra_auth::axum::{AccessTokenError, SignedInUser, access_token, expire_access_token, request_id, sign_in_path};
use entra_auth::refresh::RefreshFailure;
use entra_auth::return_to::LocalPath;
use entra_auth::{GraphError, SignInError};
use tower_sessions::Session;

use crate::pages::{ProfilePage, error_response};
use crate::startup::AppState;

const PLACEHOLDER_PHOTO: &str = include_str!("../../static/placeholder-photo.svg");

/// `/login?return_to=...` (plus a claims challenge to satisfy).
fn sign_in_again(return_to: &str, claims: Option<&str>) -> Response {
    let return_to = LocalPath::parse(return_to).unwrap_or_else(LocalPath::root);
    Redirect::to(sign_in_path(&return_to, claims).as_str()).into_response()
}

/// What to answer when Graph or the token could not be had.
async fn failure(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    return_to: &str,
    error: ProfileError,
) -> Response {
    let request_id = request_id(headers);
    let redirect_uri = state.client.config().redirect_uri.as_str();
    match error {
        ProfileError::Token(
            AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_)),
        ) => {
            tracing::info!(%request_id, "refresh token no longer usable: signing in again");
            sign_in_again(return_to, None)
        }
        ProfileError::Token(AccessTokenError::Refresh(RefreshFailure::Unavailable(reason))) => {
            tracing::warn!(%request_id, %reason, "token refresh failed");
            error_response(SignInError::RefreshUnavailable(reason).page(redirect_uri, &request_id))
        }
        ProfileError::Token(AccessTokenError::Session(error)) => error_response(error.page(redirect_uri, &request_id)),
        ProfileError::Graph(GraphError::Unauthorized { claims: Some(claims) }) => {
            // A claims challenge: this token will not do; sign in again satisfying the claims.
            if let Err(err) = expire_access_token(session).await {
                return error_response(err.page(redirect_uri, &request_id));
            }
            sign_in_again(return_to, Some(&claims))
        }
        ProfileError::Graph(error) => {
            tracing::warn!(%request_id, error = %error, "Graph call failed");
            error_response(SignInError::Graph(error).page(redirect_uri, &request_id))
        }
    }
}

enum ProfileError {
    Token(AccessTokenError),
    Graph(GraphError),
}

/// `GET /profile`.
pub async fn profile(
    State(state): State<AppState>,
    _user: SignedInUser,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let token = match access_token(&state.client, &session).await {
        Ok(token) => token,
        Err(err) => return failure(&state, &session, &headers, "/profile", ProfileError::Token(err)).await,
    };
    match state.client.graph().me(&token).await {
        Ok(profile) => {
            let token_note = match entra_auth::axum::session::tokens(&session).await {
                Ok(Some(tokens)) => format!("expires in {} s and is refreshed before it does", tokens.seconds_left()),
                _ => "is kept on the server".to_owned(),
            };
            ProfilePage { profile, token_note }.into_response()
        }
        Err(err) => failure(&state, &session, &headers, "/profile", ProfileError::Graph(err)).await,
    }
}

/// `GET /profile/photo`: the Graph photo through the app, or a placeholder when there is none.
pub async fn photo(
    State(state): State<AppState>,
    _user: SignedInUser,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let token = match access_token(&state.client, &session).await {
        Ok(token) => token,
        Err(err) => return failure(&state, &session, &headers, "/profile", ProfileError::Token(err)).await,
    };
    match state.client.graph().photo(&token).await {
        Ok(Some(photo)) => (
            [(header::CONTENT_TYPE, photo.content_type), (header::CACHE_CONTROL, "private, no-store".to_owned())],
            photo.bytes,
        )
            .into_response(),
        Ok(None) => {
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, no-store")], PLACEHOLDER_PHOTO)
                .into_response()
        }
        Err(err) => failure(&state, &session, &headers, "/profile", ProfileError::Graph(err)).await,
    }
}
