//! The sign-in routes: `GET /login`, `GET {callback}` and `POST /logout`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tower_sessions::Session;

use crate::axum::pending::{PendingCookies, with_cookies};
use crate::axum::session;
use crate::client::EntraClient;
use crate::error::{ErrorPage, SignInError};
use crate::keys::SessionKeys;
use crate::return_to::LocalPath;
use crate::token::EntraError;

/// Renders an error page; the app supplies one in its own look.
pub type ErrorPageRenderer = Arc<dyn Fn(ErrorPage) -> Response + Send + Sync>;

/// State of the sign-in routes.
#[derive(Clone)]
pub struct AuthRoutes {
    /// The relying party.
    pub client: Arc<EntraClient>,
    /// Renders failures.
    pub error_page: ErrorPageRenderer,
    /// Seal pending sign-in cookies (and the app's session records).
    pub keys: Arc<SessionKeys>,
    /// A sign-in lasts at most this long, however active the user is.
    pub session_max_lifetime: Duration,
}

impl AuthRoutes {
    /// The router, to merge into the app's (it needs the tower-sessions layer around it).
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let callback_path = self.client.config().redirect_uri.path().to_owned();
        Router::new()
            .route(crate::axum::LOGIN_PATH, get(start_sign_in))
            .route(&callback_path, get(finish_sign_in))
            .route("/logout", post(sign_out))
            .with_state(self)
    }

    fn pending_cookies(&self) -> PendingCookies<'_> {
        let config = self.client.config();
        PendingCookies {
            sealer: &self.keys.pending_sign_ins,
            secure: config.redirect_uri.scheme() == "https",
            lifetime: config.pending_sign_in_lifetime,
        }
    }

    fn fail(&self, error: SignInError, headers: &HeaderMap) -> Response {
        let request_id = request_id(headers);
        let status = error.status();
        if status.is_server_error() {
            tracing::error!(%request_id, reason = error.reason(), error = %error, "sign-in failed");
        } else {
            tracing::warn!(%request_id, reason = error.reason(), error = %error, "sign-in refused");
        }
        metrics::counter!("entra_sign_ins_failed_total", "reason" => error.reason()).increment(1);
        let page = error.page(self.client.config().redirect_uri.as_str(), &request_id);
        (self.error_page)(page)
    }
}

/// The request id set by the app's request-id layer (`x-request-id`).
pub fn request_id(headers: &HeaderMap) -> String {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned()
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn start_sign_in(State(routes): State<AuthRoutes>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let return_to = first(&pairs, "return_to").and_then(LocalPath::parse).unwrap_or_else(LocalPath::root);
    let claims = first(&pairs, "claims");
    let result = async {
        let (pending, url) = routes.client.begin_sign_in(return_to, claims).await?;
        let cookies = routes
            .pending_cookies()
            .issue(&headers, &pending)
            .map_err(|_| SignInError::Session("cannot seal the pending sign-in".to_owned()))?;
        Ok::<_, SignInError>((url, cookies))
    }
    .await;
    match result {
        Ok((url, cookies)) => {
            metrics::counter!("entra_sign_ins_started_total").increment(1);
            with_cookies(([("cache-control", "no-store")], Redirect::to(url.as_str())).into_response(), cookies)
        }
        Err(error) => routes.fail(error, &headers),
    }
}

async fn finish_sign_in(
    State(routes): State<AuthRoutes>,
    session: Session,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let state = first(&pairs, "state").filter(|s| !s.is_empty());
    // The pending sign-in is taken out first, and its cookie removed whatever happens next:
    // success, a refusal, or a 5xx from Entra, the JWKS or Graph.
    let (pending, removal) = match state {
        Some(state) => {
            let (pending, removal) = routes.pending_cookies().take(&headers, state);
            (pending, vec![removal])
        }
        None => (None, Vec::new()),
    };
    let outcome = match (state, pending) {
        (None, _) => Err(SignInError::MissingState),
        (Some(_), None) => Err(SignInError::UnknownState),
        (Some(_), Some(pending)) => complete(&routes, &session, &pairs, pending).await,
    };
    let response = match outcome {
        Ok(return_to) => {
            metrics::counter!("entra_sign_ins_completed_total").increment(1);
            Redirect::to(return_to.as_str()).into_response()
        }
        Err(error) => routes.fail(error, &headers),
    };
    with_cookies(response, removal)
}

/// The callback after the pending sign-in was found: check its age, look at what Entra said,
/// redeem the code and verify the ID token, then cycle the session id.
async fn complete(
    routes: &AuthRoutes,
    session: &Session,
    pairs: &[(String, String)],
    pending: crate::client::PendingSignIn,
) -> Result<LocalPath, SignInError> {
    if pending.is_expired() {
        return Err(SignInError::Expired);
    }
    if let Some(error) = first(pairs, "error") {
        let description = first(pairs, "error_description").unwrap_or_default().to_owned();
        let error_codes = first(pairs, "error_codes")
            .map(|codes| {
                codes.trim_matches(|c| c == '[' || c == ']').split(',').filter_map(|c| c.trim().parse().ok()).collect()
            })
            .unwrap_or_default();
        return Err(SignInError::Denied(EntraError {
            error: error.to_owned(),
            error_description: description,
            error_codes,
            correlation_id: first(pairs, "correlation_id").map(str::to_owned),
        }));
    }
    let code = first(pairs, "code").filter(|c| !c.is_empty()).ok_or(SignInError::MissingCode)?;
    let signed_in = routes.client.finish_sign_in(&pending, code).await?;
    let user = session::complete_sign_in(session, signed_in, routes.session_max_lifetime).await?;
    tracing::info!(oid = %user.object_id, tid = %user.tenant_id, "signed in");
    Ok(pending.return_to)
}

#[derive(Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf_token: String,
}

async fn sign_out(
    State(routes): State<AuthRoutes>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
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
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(error) => routes.fail(error, &headers),
    }
}

/// The CSRF token a sign-out form must carry (as the `csrf_token` field).
pub async fn sign_out_csrf_token(session: &Session) -> Result<String, SignInError> {
    session::csrf_token(session).await.map(|token| token.expose_secret().to_owned())
}
