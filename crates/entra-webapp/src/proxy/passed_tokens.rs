//! The tokens the app behind gets with `PROXY_PASS_TOKENS=true`, in App Service authentication's
//! `X-MS-TOKEN-AAD-*` headers: the sign-in's access and ID tokens, or, with
//! `PROXY_ACCESS_TOKEN_SCOPES`, an access token for those scopes (an API of the app's own, as Easy
//! Auth's `scope=` login parameter gives) beside the sign-in's ID token. That one is got through
//! the session's refresh token, kept in the session while valid and renewed before it expires;
//! when the user has not consented to it, they are asked. An application calling with a user's
//! token gets the same token for the app behind on behalf of that user (no ID token then).

use axum::response::{IntoResponse, Response};
use entra_auth::axum::{AccessTokenError, resource_token, tokens};
use entra_auth::{RefreshFailure, ResourceScopes, SignInError};
use tower_sessions::Session;

use crate::error::AppError;
use crate::proxy::identity::PassedTokens;
use crate::state::AppState;

/// Why no tokens can be passed now.
pub(crate) enum Unavailable {
    /// The user must consent to these scopes first (or sign in again).
    ConsentNeeded(ResourceScopes),
    /// The store or Entra failed: this answer says so.
    Failed(Response),
}

/// The tokens for the signed-in user of `session`; `scopes`: what the access token must be for
/// (`None`: the sign-in's).
pub(crate) async fn for_upstream(
    state: &AppState,
    scopes: Option<&ResourceScopes>,
    session: &Session,
) -> Result<Option<PassedTokens>, Unavailable> {
    let failed = |error: SignInError| Unavailable::Failed(AppError::SignIn(error).into_response());
    let Some(sign_in) = tokens(session).await.map_err(failed)? else { return Ok(None) };
    let Some(scopes) = scopes else {
        let passed = PassedTokens {
            access_token: sign_in.access_token,
            expires_at: sign_in.expires_at,
            id_token: sign_in.id_token,
        };
        return Ok(Some(passed));
    };
    match resource_token(&state.client, session, scopes).await {
        Ok(token) => Ok(Some(PassedTokens {
            access_token: token.access_token,
            expires_at: token.expires_at,
            id_token: sign_in.id_token,
        })),
        Err(AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_))) => {
            Err(Unavailable::ConsentNeeded(scopes.clone()))
        }
        Err(AccessTokenError::Session(error)) => Err(failed(error)),
        Err(error) => Err(failed(SignInError::RefreshUnavailable(error.to_string()))),
    }
}

/// The token for `scopes` on behalf of the user whose access token (`token`) the caller sent:
/// the app behind calls on as that user, as it would for a signed-in user. `Err` is the answer:
/// 403 when the user has not consented to this app having those scopes (the calling client must
/// ask for it), 503 when Entra cannot be asked.
pub(crate) async fn on_behalf_of(
    state: &AppState,
    token: &str,
    scopes: &ResourceScopes,
) -> Result<PassedTokens, Response> {
    match state.client.on_behalf_of(token, scopes).await {
        Ok(token) => {
            Ok(PassedTokens { access_token: token.access_token, expires_at: token.expires_at, id_token: None })
        }
        Err(RefreshFailure::NeedsSignIn(why)) => {
            tracing::debug!(why = %why, "no token on behalf of the caller");
            Err(crate::proxy::bearer::consent_needed())
        }
        Err(error) => Err(AppError::SignIn(SignInError::RefreshUnavailable(error.to_string())).into_response()),
    }
}
