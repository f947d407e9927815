//! Everything that can go wrong while signing someone in, shaped after the step that failed, with
//! the HTTP status and a stable machine-readable kind. The words a page shows are in
//! `axum::error_page`; the app may render its own from [`SignInError::kind`].

use axum::http::StatusCode;

use crate::discovery::DiscoveryError;
use crate::graph::GraphError;
use crate::id_token::IdTokenError;
use crate::jwks::JwksError;
use crate::token_endpoint::{EntraError, TokenError};

/// A failed sign-in, sign-out or token refresh.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The tenant's OpenID configuration could not be loaded.
    #[error("the identity provider's configuration is unavailable: {0}")]
    ProviderUnavailable(#[from] DiscoveryError),
    /// The callback carries no `state`.
    #[error("the callback has no state parameter")]
    MissingState,
    /// No pending sign-in has this state: forged, tampered, replayed, or from another browser.
    #[error("no pending sign-in matches the callback's state")]
    UnknownState,
    /// The pending sign-in is older than its lifetime.
    #[error("the pending sign-in expired")]
    Expired,
    /// Entra sent the browser back with `error=...`.
    #[error("the identity provider returned an error: {0}")]
    Denied(#[source] EntraError),
    /// The callback carries no `code`.
    #[error("the callback has no authorization code")]
    MissingCode,
    /// The token endpoint failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token response had no ID token.
    #[error("the token response has no ID token")]
    MissingIdToken,
    /// The ID token failed validation.
    #[error(transparent)]
    InvalidIdToken(#[from] IdTokenError),
    /// Graph failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The session store failed.
    #[error("the session store failed: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// A token refresh could not reach Entra or was refused for a reason that is not the user's.
    #[error("token refresh unavailable: {0}")]
    RefreshUnavailable(String),
    /// The client credential (managed identity token, token file) could not be had.
    #[error(transparent)]
    Credential(#[from] crate::credential::error::CredentialError),
    /// A pending sign-in could not be sealed into its cookie.
    #[error("cannot seal the pending sign-in: {0}")]
    Seal(#[source] crate::keys::SealError),
    /// The sign-out form's CSRF token did not match.
    #[error("the sign-out form is stale or forged")]
    BadSignOutForm,
    /// The user's tenant is not among [`EntraConfig::allowed_tenants`](crate::EntraConfig).
    #[error("users of tenant {0} may not sign in to this app")]
    TenantNotAllowed(uuid::Uuid),
    /// `/login` was asked for a hint or prompt that is not valid.
    #[error(transparent)]
    InvalidHint(#[from] crate::sign_in_options::InvalidHint),
}

impl SignInError {
    /// The HTTP status: 4xx for what the request got wrong, 502/503 for an upstream failure.
    pub fn status(&self) -> StatusCode {
        match self {
            SignInError::ProviderUnavailable(_) | SignInError::Session(_) | SignInError::RefreshUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SignInError::Seal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            SignInError::Credential(_) => StatusCode::SERVICE_UNAVAILABLE,
            SignInError::MissingState
            | SignInError::UnknownState
            | SignInError::Expired
            | SignInError::MissingCode
            | SignInError::BadSignOutForm
            | SignInError::InvalidHint(_) => StatusCode::BAD_REQUEST,
            SignInError::TenantNotAllowed(_) => StatusCode::FORBIDDEN,
            SignInError::Denied(error) if error.error == "access_denied" => StatusCode::FORBIDDEN,
            SignInError::Denied(_) => StatusCode::BAD_REQUEST,
            SignInError::Token(TokenError::Rejected(error)) if error.error == "invalid_grant" => {
                StatusCode::BAD_REQUEST
            }
            SignInError::Token(_) | SignInError::MissingIdToken => StatusCode::BAD_GATEWAY,
            SignInError::InvalidIdToken(IdTokenError::Key(JwksError::Unavailable { .. })) => StatusCode::BAD_GATEWAY,
            SignInError::InvalidIdToken(_) => StatusCode::UNAUTHORIZED,
            SignInError::Graph(GraphError::Throttled { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            SignInError::Graph(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short stable kind (`unknown_state`, `token_endpoint`, ...), for metrics, logs and apps
    /// that word their own pages.
    pub fn kind(&self) -> &'static str {
        match self {
            SignInError::ProviderUnavailable(_) => "provider_unavailable",
            SignInError::MissingState => "missing_state",
            SignInError::UnknownState => "unknown_state",
            SignInError::Expired => "expired",
            SignInError::Denied(_) => "denied",
            SignInError::MissingCode => "missing_code",
            SignInError::Token(_) => "token_endpoint",
            SignInError::MissingIdToken => "missing_id_token",
            SignInError::InvalidIdToken(_) => "invalid_id_token",
            SignInError::Graph(_) => "graph",
            SignInError::Session(_) => "session_store",
            SignInError::RefreshUnavailable(_) => "refresh_unavailable",
            SignInError::BadSignOutForm => "bad_sign_out_form",
            SignInError::Seal(_) => "seal",
            SignInError::Credential(_) => "credential",
            SignInError::TenantNotAllowed(_) => "tenant_not_allowed",
            SignInError::InvalidHint(_) => "invalid_sign_in_hint",
        }
    }
}
