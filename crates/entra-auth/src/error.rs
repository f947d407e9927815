//! Everything that can go wrong while signing someone in, shaped after the step that failed, with
//! the status and the words a page should use.

use axum::http::StatusCode;

use crate::aadsts;
use crate::discovery::DiscoveryError;
use crate::graph::GraphError;
use crate::id_token::IdTokenError;
use crate::jwks::JwksError;
use crate::token::{EntraError, TokenError};

/// A failed sign-in, sign-out or token refresh.
#[derive(Debug, thiserror::Error)]
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
    Denied(EntraError),
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
    Session(String),
    /// A token refresh could not reach Entra or was refused for a reason that is not the user's.
    #[error("token refresh unavailable: {0}")]
    RefreshUnavailable(String),
    /// The sign-out form's CSRF token did not match.
    #[error("the sign-out form is stale or forged")]
    BadSignOutForm,
}

/// The words of an error page.
#[derive(Clone, Debug)]
pub struct ErrorPage {
    /// HTTP status.
    pub status: StatusCode,
    /// A short headline.
    pub title: String,
    /// What happened, in plain language.
    pub message: String,
    /// What the user can do now.
    pub hint: String,
    /// The request id to quote.
    pub request_id: String,
}

impl SignInError {
    /// The HTTP status: 4xx for what the request got wrong, 502/503 for an upstream failure.
    pub fn status(&self) -> StatusCode {
        match self {
            SignInError::ProviderUnavailable(_) | SignInError::Session(_) | SignInError::RefreshUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SignInError::MissingState
            | SignInError::UnknownState
            | SignInError::Expired
            | SignInError::MissingCode
            | SignInError::BadSignOutForm => StatusCode::BAD_REQUEST,
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

    /// A short machine-friendly reason, for metrics and logs.
    pub fn reason(&self) -> &'static str {
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
        }
    }

    /// The page to show. `redirect_uri` lets AADSTS50011 name the exact URI to register.
    pub fn page(&self, redirect_uri: &str, request_id: &str) -> ErrorPage {
        let sign_in_again = "Sign in again.".to_owned();
        let entra_explanation = |error: &EntraError| {
            error
                .code()
                .or_else(|| aadsts::code_in_description(&error.error_description))
                .and_then(|code| aadsts::explain(code, redirect_uri))
        };
        let (title, message, hint) = match self {
            SignInError::ProviderUnavailable(_) => (
                "Microsoft sign-in is unreachable",
                "This app cannot reach Microsoft Entra ID right now, so nobody can sign in.".to_owned(),
                "Try again in a minute. If it persists, the operator should check the app's network and AUTHORITY_HOST / TENANT_ID.".to_owned(),
            ),
            SignInError::MissingState | SignInError::UnknownState => (
                "This sign-in cannot be completed",
                "The sign-in response does not belong to a sign-in in progress in this browser: it was already used, was altered, took longer than a sign-in may take, or comes from another browser.".to_owned(),
                sign_in_again,
            ),
            SignInError::Expired => (
                "This sign-in expired",
                "More than 10 minutes passed between starting the sign-in and coming back.".to_owned(),
                sign_in_again,
            ),
            SignInError::Denied(error) => (
                if error.error == "access_denied" { "Sign-in was cancelled" } else { "Microsoft could not sign you in" },
                entra_explanation(error).unwrap_or_else(|| format!("Microsoft Entra ID answered '{}'.", error.error)),
                sign_in_again,
            ),
            SignInError::MissingCode => (
                "This sign-in cannot be completed",
                "The sign-in response carries no authorization code.".to_owned(),
                sign_in_again,
            ),
            SignInError::Token(TokenError::Rejected(error)) => (
                "Microsoft refused to complete the sign-in",
                entra_explanation(error).unwrap_or_else(|| format!("The token endpoint answered '{error}'.")),
                if error.error == "invalid_grant" { sign_in_again } else { "The app's operator must fix its configuration.".to_owned() },
            ),
            SignInError::Token(_) | SignInError::MissingIdToken => (
                "Microsoft sign-in is not answering properly",
                "The app could not redeem the sign-in with Microsoft Entra ID.".to_owned(),
                "Try again in a minute.".to_owned(),
            ),
            SignInError::InvalidIdToken(IdTokenError::Key(JwksError::Unavailable { .. })) => (
                "Microsoft sign-in is not answering properly",
                "The app could not fetch Microsoft Entra ID's signing keys to verify the sign-in.".to_owned(),
                "Try again in a minute.".to_owned(),
            ),
            SignInError::InvalidIdToken(error) => (
                "The sign-in could not be verified",
                format!("The identity token was rejected: {error}. You have not been signed in."),
                sign_in_again,
            ),
            SignInError::Graph(GraphError::Throttled { .. }) => (
                "Microsoft Graph is busy",
                "Microsoft Graph is limiting requests and did not recover in time.".to_owned(),
                "Try again in a minute.".to_owned(),
            ),
            SignInError::Graph(_) => (
                "Your profile could not be loaded",
                "Microsoft Graph did not return your profile.".to_owned(),
                "Try again in a minute.".to_owned(),
            ),
            SignInError::RefreshUnavailable(_) => (
                "Microsoft sign-in is not answering properly",
                "Your session needs a fresh access token and Microsoft Entra ID could not provide one right now.".to_owned(),
                "Try again in a minute.".to_owned(),
            ),
            SignInError::Session(_) => (
                "Sessions are unavailable",
                "The app cannot reach its session store right now.".to_owned(),
                "Try again in a minute.".to_owned(),
            ),
            SignInError::BadSignOutForm => (
                "Sign-out could not be confirmed",
                "The sign-out form was stale or did not come from this app.".to_owned(),
                "Open the sign-out page again and press Sign out.".to_owned(),
            ),
        };
        ErrorPage { status: self.status(), title: title.to_owned(), message, hint, request_id: request_id.to_owned() }
    }
}
