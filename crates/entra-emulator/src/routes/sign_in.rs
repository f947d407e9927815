//! The sign-in and consent form posts that follow /authorize.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::OAuthError;
use crate::pages::ErrorPage;
use crate::routes::authorize::{ReplyTo, continue_signed_in, sign_in_page, store_pending};
use crate::routes::sso;
use crate::state::{AuthorizeRequest, EmulatorState};

/// Pending sign-ins older than this are refused, as Entra's flow tokens expire.
const PENDING_LIFETIME_SECS: i64 = 15 * 60;

#[derive(Deserialize)]
pub(crate) struct CredentialsForm {
    #[serde(default)]
    ctx: String,
    #[serde(default)]
    loginfmt: String,
    #[serde(default)]
    passwd: String,
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    #[serde(default)]
    ctx: String,
    #[serde(default)]
    accept: String,
}

fn take_pending(state: &EmulatorState, ctx: &str) -> Option<AuthorizeRequest> {
    let request = state.grants().pending.remove(ctx)?;
    (state.clock.now() - request.created_at <= PENDING_LIFETIME_SECS).then_some(request)
}

fn expired_page() -> Response {
    ErrorPage::response(
        50058,
        "This sign-in page has expired or was already used. Go back to the application and sign in again.",
    )
}

pub(crate) async fn submit_credentials(
    State(state): State<Arc<EmulatorState>>,
    Path(tenant): Path<String>,
    Form(form): Form<CredentialsForm>,
) -> Response {
    let Some(request) = take_pending(&state, &form.ctx) else {
        return expired_page();
    };
    let username = form.loginfmt.trim().to_owned();
    let Some(user) = state.user_by_upn(&username) else {
        let error = if username.is_empty() {
            "Enter a valid email address, phone number, or Skype name."
        } else {
            "This username may be incorrect. Make sure you typed it correctly. (AADSTS50034)"
        };
        let ctx = store_pending(&state, request.clone());
        return sign_in_page(&state, &tenant, &ctx, &request, None, Some(error.to_owned())).into_response();
    };
    if !state.may_sign_in_at(&tenant, user.oid) {
        let error = format!(
            "AADSTS50020: User account '{}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{tenant}' and cannot access the application in that tenant.",
            user.user.user_principal_name, user.tenant_id
        );
        let ctx = store_pending(&state, request.clone());
        return sign_in_page(&state, &tenant, &ctx, &request, None, Some(error)).into_response();
    }
    if form.passwd.is_empty() || form.passwd != user.user.password {
        let error =
            (!form.passwd.is_empty()).then(|| "Your account or password is incorrect. (AADSTS50126)".to_owned());
        let upn = user.user.user_principal_name.clone();
        let ctx = store_pending(&state, request.clone());
        return sign_in_page(&state, &tenant, &ctx, &request, Some(upn), error).into_response();
    }
    let (sign_in, cookie) = sso::start(&state, user.oid);
    let mut response = continue_signed_in(&state, &tenant, request, sign_in, false);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

pub(crate) async fn submit_consent(
    State(state): State<Arc<EmulatorState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let Some(request) = take_pending(&state, &form.ctx) else {
        return expired_page();
    };
    let Some(sign_in) = sso::current(&state, &headers) else {
        return expired_page();
    };
    if form.accept != "true" {
        return ReplyTo::of(&request).error(&OAuthError::new(
            "access_denied",
            65004,
            "User declined to consent to access the app.",
        ));
    }
    state.grant_consent(sign_in.user_oid, &request.client_id, &request.scopes);
    let mut request = request;
    request.force_consent = false;
    continue_signed_in(&state, &tenant, request, sign_in, false)
}
