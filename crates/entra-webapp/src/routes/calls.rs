//! Pages that call APIs as the user with more than the sign-in asked for: `/mail` (Graph,
//! `Mail.Read`) and `/downstream` (the API of DOWNSTREAM_API_URL). Each permission is asked for
//! when its page is first opened (incremental consent), not at sign-in.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use entra_auth::LocalPath;
use entra_auth::axum::{
    AccessTokenError, AccessTokenRejection, DownstreamError, RequiredScopes, TokenFor, TokenForRejection,
};
use tower_sessions::Session;

use crate::error::AppError;
use crate::pages::{DownstreamPage, MailPage};
use crate::state::AppState;

/// What `/mail` needs beyond sign-in.
pub struct MailRead;

impl RequiredScopes for MailRead {
    const SCOPES: &'static str = "Mail.Read";
}

fn token_failure(rejection: TokenForRejection) -> Response {
    if rejection.needs_interaction() {
        return rejection.into_response();
    }
    AppError::Token(AccessTokenRejection { error: rejection.error, sign_in: rejection.fix }).into_response()
}

/// `GET /mail`: the subjects of the user's five most recent messages.
pub async fn mail(State(state): State<AppState>, token: Result<TokenFor<MailRead>, TokenForRejection>) -> Response {
    let token = match token {
        Ok(token) => token.into_token(),
        Err(rejection) => return token_failure(rejection),
    };
    match state.client.graph().recent_message_subjects(&token, 5).await {
        Ok(subjects) => MailPage { subjects }.into_response(),
        Err(error) => AppError::Graph(error).into_response(),
    }
}

/// `GET /downstream`: who the downstream API says is calling.
pub async fn downstream(State(state): State<AppState>, session: Session) -> Response {
    let Some(api) = &state.downstream else { return AppError::NotFound.into_response() };
    let here = LocalPath::parse("/downstream").unwrap_or_else(LocalPath::root);
    match api.get_json::<serde_json::Value>(&state.client, &session, "/me").await {
        Ok(answer) => DownstreamPage {
            scopes: api.scopes().to_scope_string(),
            answer: serde_json::to_string_pretty(&answer).unwrap_or_default(),
        }
        .into_response(),
        Err(DownstreamError::Token(AccessTokenError::NotSignedIn)) => {
            Redirect::to(state.auth.sign_in_path(&here, None).as_str()).into_response()
        }
        Err(DownstreamError::Token(AccessTokenError::Refresh(entra_auth::RefreshFailure::NeedsSignIn(_)))) => {
            Redirect::to(state.auth.consent_path(api.scopes(), &here).as_str()).into_response()
        }
        Err(DownstreamError::Token(error)) => {
            AppError::Token(AccessTokenRejection { error, sign_in: here }).into_response()
        }
        Err(DownstreamError::Api(error)) => AppError::Graph(error).into_response(),
        Err(_) => AppError::NotFound.into_response(),
    }
}
