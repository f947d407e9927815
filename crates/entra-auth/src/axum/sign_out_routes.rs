//! `GET {logout}` (the confirmation form, or front-channel logout) and `POST {logout}` (sign out
//! here, then of Entra).

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tower_sessions::Session;

use crate::axum::error_page::SignOutForm;
use crate::axum::front_channel;
use crate::axum::own_cookies::with_cookies;
use crate::axum::route_config::RouteConfig;
use crate::axum::session;
use crate::error::SignInError;
use crate::return_to::LocalPath;

#[derive(Deserialize)]
pub(crate) struct SignOutFields {
    #[serde(default)]
    csrf_token: String,
    /// Where to land once signed out of Entra too (see `after_sign_out`).
    return_to: Option<String>,
}

pub(crate) async fn sign_out(
    State(routes): State<RouteConfig>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<SignOutFields>,
) -> Response {
    let result = async {
        let user = session::signed_in_user(&session).await?;
        let Some(user) = user else {
            // Nobody to sign out here; still end any Entra session the browser may have.
            return routes.client.end_session_url(None).await;
        };
        if !session::csrf_matches(&session, &form.csrf_token).await? {
            return Err(SignInError::BadSignOutForm);
        }
        session::destroy(&session).await?;
        tracing::info!(oid = %user.object_id, "signed out");
        routes.client.end_session_url(user.login_hint.as_deref()).await
    }
    .await;
    match result {
        Ok(url) => {
            // A page asked for by an earlier sign-out that never came back is forgotten.
            let cookie = match form.return_to.as_deref().and_then(LocalPath::parse) {
                Some(path) => Some(routes.after_sign_out_cookie().remember(&path)),
                None => routes.after_sign_out_cookie().take(&headers).1,
            };
            with_cookies(Redirect::to(url.as_str()).into_response(), cookie.into_iter().collect())
        }
        Err(error) => routes.fail(error, &headers),
    }
}

#[derive(Deserialize)]
pub(crate) struct SignOutQuery {
    /// Present when Entra calls our front-channel logout URL.
    sid: Option<String>,
    /// The issuer of that Entra session, when Entra sends it.
    iss: Option<String>,
    /// Where to land after signing out (the form carries it on).
    return_to: Option<String>,
}

/// `GET {logout}`: the sign-out confirmation form (for someone not signed in, the page `return_to`
/// names, if any); or, called by Entra with `sid`, front-channel logout.
pub(crate) async fn sign_out_page(
    State(routes): State<RouteConfig>,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<SignOutQuery>,
) -> Response {
    if let Some(sid) = query.sid {
        let Some(index) = &routes.front_channel else {
            tracing::warn!("front-channel logout called but not enabled (AuthRoutes::front_channel_logout)");
            return (StatusCode::NOT_FOUND, "front-channel logout is not enabled").into_response();
        };
        return front_channel::end_entra_session(&routes.client, index.as_ref(), sid, query.iss.as_deref()).await;
    }
    let form = async {
        let signed_in = session::signed_in_user(&session).await?.is_some();
        let csrf_token =
            if signed_in { session::csrf_token(&session).await?.expose_secret().to_owned() } else { String::new() };
        Ok::<_, SignInError>(SignOutForm {
            signed_in,
            csrf_token,
            action: routes.logout_path.to_string(),
            sign_in_path: routes.login_path.to_string(),
            return_to: query.return_to.as_deref().and_then(LocalPath::parse).map(|path| path.as_str().to_owned()),
        })
    }
    .await;
    match form {
        // Nobody to sign out here: straight on to the page the sign-out would have ended on.
        Ok(SignOutForm { signed_in: false, return_to: Some(path), .. }) => Redirect::to(&path).into_response(),
        Ok(form) => (routes.sign_out_page)(form),
        Err(error) => routes.fail(error, &headers),
    }
}

/// The CSRF token a sign-out form must carry (as the `csrf_token` field); created on first use.
/// Pages other than the confirmation page that show a sign-out button need it.
pub async fn sign_out_csrf_token(session: &Session) -> Result<String, SignInError> {
    session::csrf_token(session).await.map(|token| token.expose_secret().to_owned())
}
