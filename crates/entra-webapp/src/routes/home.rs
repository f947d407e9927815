//! `/` and the sign-out confirmation page.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use entra_auth::axum::{SignedInUser, sign_out_csrf_token};
use tower_sessions::Session;

use crate::pages::{HomePage, SignOutPage, error_response};

/// Signed out: the sign-in button. Signed in: "Welcome {name}", the email, the sign-out button.
pub async fn home(user: Option<SignedInUser>, session: Session, headers: HeaderMap) -> Response {
    let csrf_token = match &user {
        Some(_) => match sign_out_csrf_token(&session).await {
            Ok(token) => token,
            Err(err) => return error_response(err.page("", &entra_auth::axum::request_id(&headers))),
        },
        None => String::new(),
    };
    HomePage { user, csrf_token }.into_response()
}

/// `GET /logout`: a small page with the (CSRF-protected) sign-out form.
pub async fn sign_out_page(user: Option<SignedInUser>, session: Session, headers: HeaderMap) -> Response {
    let csrf_token = match &user {
        Some(_) => match sign_out_csrf_token(&session).await {
            Ok(token) => token,
            Err(err) => return error_response(err.page("", &entra_auth::axum::request_id(&headers))),
        },
        None => String::new(),
    };
    SignOutPage { signed_in: user.is_some(), csrf_token }.into_response()
}
