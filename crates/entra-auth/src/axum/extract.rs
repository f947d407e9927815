//! `SignedInUser` as an extractor: protected handlers take it (not signed in = redirect to
//! sign-in), public ones take `Option<SignedInUser>`. Also a layer that protects whole routers.

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::axum::session::{self, SignedInUser};

/// The path that starts sign-in.
pub const LOGIN_PATH: &str = "/login";

/// Marks a response that failed because the session store is unavailable.
#[derive(Clone, Copy, Debug)]
pub struct SessionStoreUnavailable;

/// Rejection of `SignedInUser`.
#[derive(Debug)]
pub enum SignInRequired {
    /// Not signed in: go to sign-in, then come back here.
    Redirect(String),
    /// The session layer is missing or the store failed.
    SessionUnavailable,
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        match self {
            SignInRequired::Redirect(return_to) => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &return_to)
                    .finish();
                Redirect::to(&format!("{LOGIN_PATH}?{query}")).into_response()
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

fn path_and_query(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned())
}

async fn load(parts: &mut Parts) -> Result<Option<SignedInUser>, SignInRequired> {
    let session = Session::from_request_parts(parts, &())
        .await
        .map_err(|_| SignInRequired::SessionUnavailable)?;
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
