//! `/profile` and its photo: Graph called live with the session's access token, refreshed as
//! needed, so a user sees refresh working. The token never leaves the server.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use entra_auth::GraphError;
use entra_auth::axum::{AccessToken, AccessTokenRejection, SignedInUser, expire_access_token, tokens};
use entra_auth::{LocalPath, Photo};
use tower_sessions::Session;

use crate::error::AppError;
use crate::pages::ProfilePage;
use crate::state::AppState;

const PLACEHOLDER_PHOTO: &str = include_str!("../../static/placeholder-photo.svg");

/// No access token: sign in again (back to `/profile`) when that is the fix, the app's error page
/// otherwise.
fn token_unavailable(state: &AppState, rejection: AccessTokenRejection) -> Response {
    if rejection.needs_sign_in() {
        tracing::info!("refresh token no longer usable: signing in again");
        return sign_in_again(state, None);
    }
    AppError::Token(rejection).into_response()
}

fn sign_in_again(state: &AppState, claims: Option<&str>) -> Response {
    let return_to = LocalPath::parse("/profile").unwrap_or_else(LocalPath::root);
    Redirect::to(state.auth.sign_in_path(&return_to, claims).as_str()).into_response()
}

/// A Graph failure: a claims challenge means this token will not do, so sign in again
/// satisfying the claims; anything else is an error page.
async fn graph_failure(state: &AppState, session: &Session, error: GraphError) -> Response {
    match error {
        GraphError::Unauthorized { claims: Some(claims) } => match expire_access_token(session).await {
            Ok(()) => sign_in_again(state, Some(&claims)),
            Err(error) => AppError::SignIn(error).into_response(),
        },
        error => AppError::Graph(error).into_response(),
    }
}

/// `GET /profile`.
pub async fn profile(
    State(state): State<AppState>,
    session: Session,
    access_token: Result<AccessToken, AccessTokenRejection>,
    user: SignedInUser,
) -> Response {
    let token = match access_token {
        Ok(AccessToken(token)) => token,
        Err(rejection) => return token_unavailable(&state, rejection),
    };
    match state.client.graph().me(&token).await {
        Ok(profile) => {
            let token_note = match tokens(&session).await {
                Ok(Some(tokens)) => format!("expires in {} s and is refreshed before it does", tokens.seconds_left()),
                _ => "is kept on the server".to_owned(),
            };
            let downstream = state.downstream.is_some();
            ProfilePage { profile, memberships: user.memberships, token_note, downstream }.into_response()
        }
        Err(error) => graph_failure(&state, &session, error).await,
    }
}

/// `GET /profile/photo`: the Graph photo through the app, or a placeholder when there is none.
pub async fn photo(
    State(state): State<AppState>,
    _user: SignedInUser,
    session: Session,
    access_token: Result<AccessToken, AccessTokenRejection>,
) -> Response {
    let token = match access_token {
        Ok(AccessToken(token)) => token,
        Err(rejection) => return token_unavailable(&state, rejection),
    };
    match state.client.graph().photo(&token).await {
        Ok(Some(Photo { content_type, bytes, .. })) => {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "private, no-store".to_owned())], bytes)
                .into_response()
        }
        Ok(None) => {
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, no-store")], PLACEHOLDER_PHOTO)
                .into_response()
        }
        Err(error) => graph_failure(&state, &session, error).await,
    }
}
