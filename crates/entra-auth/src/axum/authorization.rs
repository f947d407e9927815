//! Enforcing who may come in: [`require_access`] checks an [`AccessPolicy`] per request against
//! memberships no older than the access token, and the 403 page a user who does not qualify gets
//! (which requirement failed, sign out, use another account) instead of a redirect loop.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::axum::error_page::{ErrorPage, request_id};
use crate::axum::extract::{AuthContext, SignInRequired, sign_in_path};
use crate::axum::policy::{AccessDenied, AccessDeniedPage, AccessPolicy};
use crate::axum::session::{self, AccessTokenError, SignedInUser};
use crate::error::SignInError;
use crate::refresh::RefreshFailure;
use crate::return_to::LocalPath;
use crate::secret::random_token;
use crate::sign_in_options::Prompt;

#[derive(Template)]
#[template(path = "access_denied.html")]
struct DefaultAccessDeniedPage<'a> {
    page: &'a AccessDeniedPage,
}

/// The plain 403 page [`AuthRoutes`](crate::axum::AuthRoutes) uses unless told otherwise.
pub fn default_access_denied_page(page: AccessDeniedPage) -> Response {
    match (DefaultAccessDeniedPage { page: &page }).render() {
        Ok(body) => (StatusCode::FORBIDDEN, [("cache-control", "no-store")], Html(body)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "page failed to render");
            (StatusCode::FORBIDDEN, "You do not have access to this page.").into_response()
        }
    }
}

/// `{login}?prompt=select_account&return_to=...`: sign in with another account and come back.
pub(crate) fn switch_account_path(login_path: &str, return_to: &LocalPath) -> LocalPath {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("prompt", Prompt::SelectAccount.as_str());
    query.append_pair("return_to", return_to.as_str());
    LocalPath::parse(&format!("{login_path}?{}", query.finish())).unwrap_or_else(LocalPath::root)
}

/// The 403 response for `user`, in the look the app gave [`AuthRoutes`](crate::axum::AuthRoutes).
pub(crate) async fn deny(
    context: &AuthContext,
    session: &Session,
    user: &SignedInUser,
    denied: AccessDenied,
    return_to: &LocalPath,
) -> Response {
    tracing::info!(oid = %user.object_id, tid = %user.tenant_id, requirement = denied.requirement.as_str(), "access denied");
    metrics::counter!("entra_access_denied_total", "requirement" => denied.requirement.as_str()).increment(1);
    // Without a CSRF token the sign-out button cannot work; a fresh random one keeps the page
    // whole (the sign-out then asks again) rather than failing it.
    let csrf_token = match session::csrf_token(session).await {
        Ok(token) => secrecy::ExposeSecret::expose_secret(&token).to_owned(),
        Err(_) => secrecy::ExposeSecret::expose_secret(&random_token(32)).to_owned(),
    };
    let page = AccessDeniedPage {
        title: "You do not have access to this page".to_owned(),
        reason: denied.reason(),
        denied,
        user_name: user.name.clone(),
        sign_out_path: context.logout_path.to_string(),
        csrf_token,
        switch_account_path: switch_account_path(&context.login_path, return_to).as_str().to_owned(),
    };
    (context.access_denied_page)(page)
}

/// Middleware for `axum::middleware::from_fn_with_state(Arc::new(policy), require_access)`:
/// anonymous visitors are sent to sign in, signed-in users who do not meet the policy get the
/// 403 page, the others go through. Memberships are renewed first when the tokens are due for a
/// refresh, so removing someone from a group takes effect within one access-token lifetime (and
/// at once for a revoked user, whose refresh fails). Must sit inside
/// [`AuthRoutes::layer`](crate::axum::AuthRoutes::layer).
pub async fn require_access(State(policy): State<Arc<AccessPolicy>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(context) = parts.extensions.get::<AuthContext>().cloned() else {
        return SignInRequired::NotConfigured.into_response();
    };
    let Ok(session) = Session::from_request_parts(&mut parts, &()).await else {
        return SignInRequired::NotConfigured.into_response();
    };
    let here = parts.uri.path_and_query().and_then(|pq| LocalPath::parse(pq.as_str())).unwrap_or_else(LocalPath::root);
    let user = match session::signed_in_user_refreshed(&context.client, &session).await {
        Ok(Some(user)) => user,
        Ok(None) | Err(AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_))) => {
            return Redirect::to(sign_in_path(&context.login_path, &here, None).as_str()).into_response();
        }
        Err(AccessTokenError::Session(_)) => return SignInRequired::SessionUnavailable.into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "cannot renew memberships");
            let request_id = request_id(&parts.headers);
            let error = SignInError::RefreshUnavailable(error.to_string());
            return (context.error_page)(ErrorPage::for_sign_in_error(&error, request_id));
        }
    };
    if let Some(span) = parts.extensions.get::<tracing::Span>() {
        user.record_in(span);
    }
    if let Err(denied) = policy.check(&user) {
        return deny(&context, &session, &user, denied, &here).await;
    }
    next.run(Request::from_parts(parts, body)).await
}
