//! `SignedInUser` as an extractor: protected handlers take it (not signed in = redirect to
//! sign-in), public ones take `Option<SignedInUser>`. Also a layer that protects whole routers.

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::axum::session::{self, SignedInUser};
use crate::return_to::LocalPath;

/// The path that starts sign-in.
pub const LOGIN_PATH: &str = "/login";

/// Marks a response that failed because the session store is unavailable.
#[derive(Clone, Copy, Debug)]
pub struct SessionStoreUnavailable;

/// Rejection of `SignedInUser`.
#[derive(Debug)]
pub enum SignInRequired {
    /// Not signed in: go to sign-in, then come back here.
    Redirect(LocalPath),
    /// The session layer is missing or the store failed.
    SessionUnavailable,
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        match self {
            SignInRequired::Redirect(return_to) => {
                Redirect::to(sign_in_path(&return_to, None).as_str()).into_response()
            }
            SignInRequired::SessionUnavailable => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("cache-control", "no-store")],
                    "Sessions are unavailable right now. Try again in a minute.",
                )
                    .into_response();
                // Lets the app swap in its own page.
                response.extensions_mut().insert(SessionStoreUnavailable);
                response
            }
        }
    }
}

/// `/login?return_to=...` (with a claims challenge to satisfy): where to send someone who must
/// sign in (again) before coming back to `return_to`.
pub fn sign_in_path(return_to: &LocalPath, claims: Option<&str>) -> LocalPath {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("return_to", return_to.as_str());
    if let Some(claims) = claims {
        query.append_pair("claims", claims);
    }
    // Built from a constant path and an encoded query, it always passes; the root is the fallback
    // a broken invariant would get, never another origin.
    LocalPath::parse(&format!("{LOGIN_PATH}?{}", query.finish())).unwrap_or_else(LocalPath::root)
}

fn path_and_query(parts: &Parts) -> LocalPath {
    parts.uri.path_and_query().and_then(|pq| LocalPath::parse(pq.as_str())).unwrap_or_else(LocalPath::root)
}

async fn load(parts: &mut Parts) -> Result<Option<SignedInUser>, SignInRequired> {
    let session = Session::from_request_parts(parts, &()).await.map_err(|_| SignInRequired::SessionUnavailable)?;
    session::signed_in_user(&session).await.map_err(|err| {
        tracing::error!(error = %err, "cannot read the session");
        SignInRequired::SessionUnavailable
    })
}

impl<S: Send + Sync> FromRequestParts<S> for SignedInUser {
    type Rejection = SignInRequired;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match load(parts).await? {
            Some(user) => Ok(user),
            None => Err(SignInRequired::Redirect(path_and_query(parts))),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for SignedInUser {
    type Rejection = SignInRequired;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        load(parts).await
    }
}

/// Middleware for `axum::middleware::from_fn`: every route behind it requires sign-in.
pub async fn require_sign_in(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match <SignedInUser as FromRequestParts<()>>::from_request_parts(&mut parts, &()).await {
        Ok(_) => next.run(Request::from_parts(parts, body)).await,
        Err(rejection) => rejection.into_response(),
    }
}
