//! `SignedInUser` and `AccessToken` as extractors: protected handlers take them (not signed in =
//! redirect to sign-in and back), public ones take `Option<SignedInUser>`. Also a middleware that
//! protects whole routers. They find the client and the sign-in path in the request extensions,
//! put there by [`AuthRoutes::layer`](crate::axum::AuthRoutes::layer).

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use tower_sessions::Session;

use crate::axum::error_page::ErrorPageRenderer;
use crate::axum::policy::AccessDeniedRenderer;
use crate::axum::session::{self, AccessTokenError, SignedInUser};
use crate::client::EntraClient;
use crate::refresh::RefreshFailure;
use crate::return_to::LocalPath;
use crate::sign_in_options::ResourceScopes;

/// The path that starts sign-in unless [`AuthRoutes::login_path`](crate::axum::AuthRoutes::login_path)
/// says otherwise.
pub const DEFAULT_LOGIN_PATH: &str = "/login";

/// What the extractors find in the request extensions, put there by
/// [`AuthRoutes::layer`](crate::axum::AuthRoutes::layer). Opaque.
#[derive(Clone)]
pub struct AuthContext {
    pub(crate) client: Arc<EntraClient>,
    pub(crate) login_path: Arc<str>,
    pub(crate) logout_path: Arc<str>,
    pub(crate) access_denied_page: AccessDeniedRenderer,
    pub(crate) error_page: ErrorPageRenderer,
}

/// Marks a response that failed because the session store is unavailable, so the app can swap in
/// its own page.
#[derive(Clone, Copy, Debug)]
pub struct SessionStoreUnavailable;

/// Rejection of [`SignedInUser`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SignInRequired {
    /// Not signed in: go here (sign-in, then back to the page asked for).
    Redirect(LocalPath),
    /// The session store failed.
    SessionUnavailable,
    /// The app did not apply [`AuthRoutes::layer`](crate::axum::AuthRoutes::layer) around this route.
    NotConfigured,
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        match self {
            SignInRequired::Redirect(location) => Redirect::to(location.as_str()).into_response(),
            SignInRequired::SessionUnavailable => session_unavailable(),
            SignInRequired::NotConfigured => {
                tracing::error!("entra-auth: the route is not behind AuthRoutes::layer");
                (StatusCode::INTERNAL_SERVER_ERROR, "Sign-in is not configured for this page.").into_response()
            }
        }
    }
}

fn session_unavailable() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [("cache-control", "no-store")],
        "Sessions are unavailable right now. Try again in a minute.",
    )
        .into_response();
    response.extensions_mut().insert(SessionStoreUnavailable);
    response
}

/// `{login_path}?return_to=...` (with a claims challenge to satisfy): where to send someone who
/// must sign in (again) before coming back to `return_to`.
pub fn sign_in_path(login_path: &str, return_to: &LocalPath, claims: Option<&str>) -> LocalPath {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("return_to", return_to.as_str());
    if let Some(claims) = claims {
        query.append_pair("claims", claims);
    }
    // Built from a route path and an encoded query, it passes; the root is the fallback a broken
    // invariant would get, never another origin.
    LocalPath::parse(&format!("{login_path}?{}", query.finish())).unwrap_or_else(LocalPath::root)
}

/// `{login_path}?scopes=...&return_to=...`: where to send a signed-in user to consent to `scopes`
/// (incremental consent) before coming back to `return_to`.
pub fn consent_path(login_path: &str, scopes: &ResourceScopes, return_to: &LocalPath) -> LocalPath {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("scopes", &scopes.to_scope_string());
    query.append_pair("return_to", return_to.as_str());
    LocalPath::parse(&format!("{login_path}?{}", query.finish())).unwrap_or_else(LocalPath::root)
}

/// The scopes a route needs, for [`TokenFor`]: one resource's, space-separated.
///
/// ```
/// struct MailRead;
/// impl entra_auth::axum::RequiredScopes for MailRead {
///     const SCOPES: &'static str = "Mail.Read";
/// }
/// ```
pub trait RequiredScopes: Send + Sync + 'static {
    /// E.g. `Mail.Read`, or `api://<app id>/access_as_user`.
    const SCOPES: &'static str;
}

/// An access token for the scopes `S` declares, like Microsoft.Identity.Web's
/// `[AuthorizeForScopes]`: from the session when it has one, through the refresh token when the
/// user consented already, else the user is sent to consent to exactly those scopes and brought
/// back to the page. Server-side only.
pub struct TokenFor<S: RequiredScopes>(SecretString, std::marker::PhantomData<S>);

impl<S: RequiredScopes> TokenFor<S> {
    /// The access token (send it to the API; never to the browser).
    pub fn into_token(self) -> SecretString {
        self.0
    }
}

/// Rejection of [`TokenFor`]: why, and where consent (or sign-in) would fix it.
#[derive(Debug)]
pub struct TokenForRejection {
    /// Why no token could be had.
    pub error: AccessTokenError,
    /// Consent to the scopes (or sign in), then back to the page asked for.
    pub fix: LocalPath,
}

impl TokenForRejection {
    /// Whether sending the user to [`Self::fix`] is the fix (nobody signed in, consent or another
    /// interaction needed); otherwise Entra or the session store is down for now.
    pub fn needs_interaction(&self) -> bool {
        matches!(self.error, AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_)))
    }
}

impl IntoResponse for TokenForRejection {
    fn into_response(self) -> Response {
        if self.needs_interaction() {
            return Redirect::to(self.fix.as_str()).into_response();
        }
        AccessTokenRejection { error: self.error, sign_in: self.fix }.into_response()
    }
}

impl<S: Send + Sync, R: RequiredScopes> FromRequestParts<S> for TokenFor<R> {
    type Rejection = TokenForRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let not_configured = |fix| TokenForRejection { error: AccessTokenError::NotConfigured, fix };
        let Some(context) = context(parts).cloned() else { return Err(not_configured(LocalPath::root())) };
        let Ok(scopes) = R::SCOPES.parse::<ResourceScopes>() else {
            tracing::error!(scopes = R::SCOPES, "RequiredScopes::SCOPES is not one resource's scopes");
            return Err(not_configured(LocalPath::root()));
        };
        let Ok(session) = session(parts).await else { return Err(not_configured(LocalPath::root())) };
        let here = here(parts);
        match crate::axum::resource_tokens::access_token_for(&context.client, &session, &scopes).await {
            Ok(token) => Ok(TokenFor(token, std::marker::PhantomData)),
            Err(AccessTokenError::NotSignedIn) => Err(TokenForRejection {
                error: AccessTokenError::NotSignedIn,
                fix: sign_in_path(&context.login_path, &here, None),
            }),
            Err(error) => Err(TokenForRejection { error, fix: consent_path(&context.login_path, &scopes, &here) }),
        }
    }
}

fn context(parts: &Parts) -> Option<&AuthContext> {
    parts.extensions.get::<AuthContext>()
}

/// Where the request was going (to come back to after sign-in).
fn here(parts: &Parts) -> LocalPath {
    parts.uri.path_and_query().and_then(|pq| LocalPath::parse(pq.as_str())).unwrap_or_else(LocalPath::root)
}

fn sign_in_location(parts: &Parts, context: &AuthContext) -> LocalPath {
    sign_in_path(&context.login_path, &here(parts), None)
}

async fn session(parts: &mut Parts) -> Result<Session, SignInRequired> {
    Session::from_request_parts(parts, &()).await.map_err(|_| SignInRequired::NotConfigured)
}

async fn load(parts: &mut Parts) -> Result<Option<SignedInUser>, SignInRequired> {
    let session = session(parts).await?;
    let user = session::signed_in_user(&session).await.map_err(|err| {
        tracing::error!(error = %err, "cannot read the session");
        SignInRequired::SessionUnavailable
    })?;
    if let (Some(user), Some(span)) = (&user, parts.extensions.get::<tracing::Span>()) {
        user.record_in(span);
    }
    Ok(user)
}

impl<S: Send + Sync> FromRequestParts<S> for SignedInUser {
    type Rejection = SignInRequired;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = context(parts).cloned().ok_or(SignInRequired::NotConfigured)?;
        match load(parts).await? {
            Some(user) => Ok(user),
            None => Err(SignInRequired::Redirect(sign_in_location(parts, &context))),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for SignedInUser {
    type Rejection = SignInRequired;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        load(parts).await
    }
}

/// A valid access token of the signed-in user for the configured scopes, refreshed as needed
/// (single-flight per refresh token). Server-side only: send it to APIs, never to the browser.
pub struct AccessToken(pub SecretString);

/// Rejection of [`AccessToken`]: the error, and where to send the user when signing in again
/// fixes it.
#[derive(Debug)]
pub struct AccessTokenRejection {
    /// Why no token could be had.
    pub error: AccessTokenError,
    /// Sign-in, then back to the page asked for.
    pub sign_in: LocalPath,
}

impl AccessTokenRejection {
    /// Whether signing in again is the fix (nobody signed in, refresh token dead, interaction
    /// required); otherwise Entra or the session store is down for now.
    pub fn needs_sign_in(&self) -> bool {
        matches!(self.error, AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_)))
    }
}

impl IntoResponse for AccessTokenRejection {
    fn into_response(self) -> Response {
        if self.needs_sign_in() {
            return Redirect::to(self.sign_in.as_str()).into_response();
        }
        match self.error {
            AccessTokenError::Session(_) => session_unavailable(),
            AccessTokenError::NotConfigured => SignInRequired::NotConfigured.into_response(),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                [("cache-control", "no-store")],
                "Microsoft Entra ID could not provide a fresh access token right now. Try again in a minute.",
            )
                .into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AccessToken {
    type Rejection = AccessTokenRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(context) = context(parts).cloned() else {
            return Err(AccessTokenRejection { error: AccessTokenError::NotConfigured, sign_in: LocalPath::root() });
        };
        let sign_in = sign_in_location(parts, &context);
        let Ok(session) = session(parts).await else {
            return Err(AccessTokenRejection { error: AccessTokenError::NotConfigured, sign_in });
        };
        session::access_token(&context.client, &session)
            .await
            .map(AccessToken)
            .map_err(|error| AccessTokenRejection { error, sign_in })
    }
}

/// Middleware for `axum::middleware::from_fn`: every route behind it requires sign-in. It must
/// sit inside [`AuthRoutes::layer`](crate::axum::AuthRoutes::layer).
pub async fn require_sign_in(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match <SignedInUser as FromRequestParts<()>>::from_request_parts(&mut parts, &()).await {
        Ok(_) => next.run(Request::from_parts(parts, body)).await,
        Err(rejection) => rejection.into_response(),
    }
}
