//! App Service authentication's own routes, so apps written for Easy Auth work unchanged:
//! `/.auth/login/aad`, `/.auth/logout`, `/.auth/me`, `/.auth/refresh`; and `/.auth/verify`, the
//! forward-auth endpoint for nginx `auth_request`, Traefik ForwardAuth and Caddy `forward_auth`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use entra_auth::LocalPath;
use entra_auth::axum::{
    AccessTokenError, SignedInUser, access_token, expire_access_token, expire_access_token_for, resource_token,
};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use crate::bearer_header::bearer_token;
use crate::error::AppError;
use crate::proxy::bearer;
use crate::proxy::cross_origin;
use crate::proxy::handler::current_user;
use crate::proxy::identity;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LoginQuery {
    /// Also spelt `post_login_redirect_url` in App Service's older documentation, which apps use.
    #[serde(alias = "post_login_redirect_url")]
    post_login_redirect_uri: Option<String>,
    /// Passed on to our sign-in, which checks them and hands them to Entra, as App Service passes
    /// its login parameters: a sign-in name, a domain (to skip home realm discovery), `prompt`.
    login_hint: Option<String>,
    domain_hint: Option<String>,
    prompt: Option<String>,
}

/// `GET /.auth/login/aad?post_login_redirect_uri=/path`: sign in, then back to that path, or to
/// that URL when it is on this site (`REDIRECT_URI`'s origin); anywhere else, the root. With
/// `login_hint`, `domain_hint` or `prompt`, which our sign-in checks (a bad one is its 400 page).
pub async fn login(State(state): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    let sign_in = sign_in_returning_to(&state, query.post_login_redirect_uri.as_deref());
    let hints = [("login_hint", &query.login_hint), ("domain_hint", &query.domain_hint), ("prompt", &query.prompt)];
    let hints = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(hints.iter().filter_map(|(name, value)| Some((name, value.as_deref()?))))
        .finish();
    // After the sign-in path's own query (`return_to`); what comes out is checked as a path.
    let to = match hints.is_empty() {
        true => sign_in,
        false => LocalPath::parse(&format!("{sign_in}&{hints}")).unwrap_or(sign_in),
    };
    Redirect::to(to.as_str()).into_response()
}

/// Our sign-in path, coming back to `return_to` when it is on this site, else to the root.
fn sign_in_returning_to(state: &AppState, return_to: Option<&str>) -> LocalPath {
    let site = &state.client.config().redirect_uri;
    let return_to = return_to.and_then(|raw| LocalPath::parse_on_site(raw, site)).unwrap_or_else(LocalPath::root);
    state.auth.sign_in_path(&return_to, None)
}

/// Where the browser lands after signing out unless `/.auth/logout` named a page: App Service
/// authentication's path for it.
pub const SIGNED_OUT_PATH: &str = "/.auth/logout/complete";

/// [`SIGNED_OUT_PATH`] as a path to redirect to.
pub fn signed_out_path() -> LocalPath {
    LocalPath::parse(SIGNED_OUT_PATH).unwrap_or_else(LocalPath::root)
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    post_logout_redirect_uri: Option<String>,
}

/// `GET /.auth/logout?post_logout_redirect_uri=/path`: the sign-out confirmation (a GET that
/// signed out would let any page sign the user out; the form is CSRF-protected), whose form
/// carries the page to land on once signed out, when it is on this site; else
/// [`SIGNED_OUT_PATH`].
pub async fn logout(State(state): State<AppState>, Query(query): Query<LogoutQuery>) -> Response {
    let site = &state.client.config().redirect_uri;
    let land_on = query.post_logout_redirect_uri.as_deref().and_then(|raw| LocalPath::parse_on_site(raw, site));
    Redirect::to(state.auth.sign_out_path(&land_on.unwrap_or_else(signed_out_path)).as_str()).into_response()
}

/// `GET /.auth/logout/complete`: where a sign-out ends unless it named a page; for someone still
/// signed in, the sign-out confirmation.
pub async fn signed_out(State(state): State<AppState>, session: Session) -> Response {
    match current_user(&state, &session).await {
        Ok(Some(_)) => Redirect::to(state.auth.sign_out_path(&signed_out_path()).as_str()).into_response(),
        Ok(None) => {
            let routes = state.proxy.as_ref().map_or_else(Default::default, |proxy| proxy.config.own_routes);
            let sign_in_path = routes.sign_in().to_owned();
            let (action, csrf_token) = (routes.sign_out().to_owned(), String::new());
            crate::pages::SignOutPage { signed_in: false, csrf_token, return_to: None, action, sign_in_path }
                .into_response()
        }
        Err(response) => response,
    }
}

fn not_signed_in() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "error": "not signed in" })))
        .into_response()
}

/// `GET /.auth/me`: the signed-in user, in Easy Auth's shape, without the tokens (they stay on
/// the server). An application calling with an access token (`PROXY_BEARER_CLIENTS`) is answered
/// for its token, as every request with one is judged by it alone.
pub async fn me(State(state): State<AppState>, session: Session, headers: HeaderMap) -> Response {
    let bearer_policy = state.proxy.as_ref().and_then(|proxy| proxy.config.bearer.as_ref());
    if let Some(policy) = bearer_policy
        && let Some(token) = bearer_token(&headers)
    {
        return match bearer::caller(&state, token, policy, false, Some("/.auth/me")).await {
            Ok(Some((user, claims))) => me_answer(&state, &user, Some(claims.exp)),
            Ok(None) => not_signed_in(),
            Err(response) => response,
        };
    }
    let user = match current_user(&state, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => return not_signed_in(),
        Err(response) => return response,
    };
    let expires_on = match entra_auth::axum::tokens(&session).await {
        Ok(Some(tokens)) => Some(tokens.expires_at),
        _ => None,
    };
    me_answer(&state, &user, expires_on)
}

fn me_answer(state: &AppState, user: &SignedInUser, expires_on: Option<u64>) -> Response {
    let user_id = identity::principal_name(user).unwrap_or_default();
    let entry = json!({
        "provider_name": "aad",
        "user_id": user_id,
        "user_claims": state.identity_headers.claims(user),
        "expires_on": expires_on,
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(json!([entry]))).into_response()
}

/// `GET /.auth/refresh`: renews the session's tokens now (and with them the user's memberships),
/// and the access token passed to the app behind when it is for `PROXY_ACCESS_TOKEN_SCOPES`.
pub async fn refresh(State(state): State<AppState>, session: Session) -> Response {
    let scopes = state.proxy.as_ref().and_then(|proxy| proxy.config.access_token_scopes.as_ref());
    let mut expired = expire_access_token(&session).await;
    if let (Ok(()), Some(scopes)) = (&expired, scopes) {
        expired = expire_access_token_for(&session, scopes).await;
    }
    if let Err(error) = expired {
        return AppError::SignIn(error).into_response();
    }
    if let Err(error) = access_token(&state.client, &session).await {
        return refresh_failed(error, "not signed in");
    }
    if let Some(scopes) = scopes
        && let Err(error) = resource_token(&state.client, &session, scopes).await
    {
        return refresh_failed(error, "consent needed");
    }
    ([(header::CACHE_CONTROL, "no-store")], StatusCode::OK).into_response()
}

/// A refresh that failed: 401 with `needs` when the user must sign in (or consent), else the
/// error's page.
fn refresh_failed(error: AccessTokenError, needs: &'static str) -> Response {
    match error {
        AccessTokenError::NotSignedIn | AccessTokenError::Refresh(entra_auth::RefreshFailure::NeedsSignIn(_)) => {
            (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "error": needs })))
                .into_response()
        }
        error => AppError::SignIn(entra_auth::SignInError::RefreshUnavailable(error.to_string())).into_response(),
    }
}

/// Where forward auth's 401 says to sign in: the front end's `X-Forwarded-Uri` (the path and query
/// the request was for, as Traefik and Caddy send it and `docs/PROXY.md`'s nginx example sets it)
/// is the way back, encoded in our sign-in URL, which nginx cannot do itself (its `$request_uri`
/// in a query is cut at the first `&`). Checked as any return path: the root unless it is a local
/// path.
const SIGN_IN_URL: &str = "x-sign-in-url";
const FORWARDED_URI: &str = "x-forwarded-uri";
/// The method and host of the request the front end asks about (see
/// [`forwarded_from_another_origin`]).
const FORWARDED_METHOD: &str = "x-forwarded-method";
const FORWARDED_HOST: &str = "x-forwarded-host";

/// Whether the request the front end asks about is one that a page of another origin made and
/// that could change something (see `cross_origin.rs`). The front end's `X-Forwarded-Method`
/// (Traefik and Caddy send it; `docs/PROXY.md`'s nginx example sets it) is the request's method,
/// since the question itself is a `GET`; its `X-Forwarded-Host`, when sent, the request's host.
fn forwarded_from_another_origin(state: &AppState, method: &Method, headers: &HeaderMap) -> bool {
    let forwarded_method = headers.get(FORWARDED_METHOD).and_then(|value| Method::from_bytes(value.as_bytes()).ok());
    let request = cross_origin::Request {
        method: forwarded_method.as_ref().unwrap_or(method),
        headers,
        host: headers.get(FORWARDED_HOST).or_else(|| headers.get(header::HOST)),
    };
    let trusted = state.proxy.as_ref().map(|proxy| proxy.config.trusted_origins.as_slice()).unwrap_or_default();
    cross_origin::check(&request, trusted).is_some()
}

/// `GET /.auth/verify`: forward auth. 200 with the identity headers for a session the access
/// policy lets in, 401 without a session (with [`SIGN_IN_URL`]), 403 for a user the policy
/// refuses or a request of another origin's page that could change something. Never the
/// tokens, even with `PROXY_PASS_TOKENS`: in proxy mode this route answers browsers too, and a
/// page's script could read them from the answer's headers (tokens reach an upstream only through
/// the proxy forwarding the request itself).
pub async fn verify(State(state): State<AppState>, method: Method, headers: HeaderMap, session: Session) -> Response {
    // An access token (the front end passes the request's `Authorization`) is judged alone, as
    // when the proxy forwards (see `bearer.rs`).
    let policy = state.proxy.as_ref().and_then(|proxy| proxy.config.bearer.as_ref());
    if let Some((policy, token)) = policy.and_then(|policy| Some((policy, bearer_token(&headers)?))) {
        return match bearer::caller(&state, token, policy, false, forwarded_path(&headers)).await {
            Ok(Some((user, _))) => verified(&state, &user, &headers),
            Ok(None) => not_signed_in(),
            Err(response) => response,
        };
    }
    if forwarded_from_another_origin(&state, &method, &headers) {
        return AppError::CrossOrigin.into_response();
    }
    let user = match current_user(&state, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            let return_to = headers.get(FORWARDED_URI).and_then(|value| value.to_str().ok());
            let mut response = not_signed_in();
            if let Ok(url) = HeaderValue::from_str(sign_in_returning_to(&state, return_to).as_str()) {
                response.headers_mut().insert(SIGN_IN_URL, url);
            }
            return response;
        }
        Err(response) => return response,
    };
    verified(&state, &user, &headers)
}

/// The path forward auth is asked about: `X-Forwarded-Uri`'s (`/admin?x=1`, as the nginx example,
/// Traefik and Caddy send it); `None` for anything else, which is not known (every rule applies).
fn forwarded_path(headers: &HeaderMap) -> Option<&str> {
    let uri = headers.get(FORWARDED_URI).and_then(|value| value.to_str().ok())?;
    uri.starts_with('/').then(|| uri.split(['?', '#']).next().unwrap_or_default())
}

/// Forward auth's answer about someone who is who they say: 200 with their identity headers if
/// the access policy and the path rules of the path asked about (`X-Forwarded-Uri`; without it,
/// every rule) let them in, else 403 saying why.
fn verified(state: &AppState, user: &SignedInUser, headers: &HeaderMap) -> Response {
    if let Err(denied) = state.may_reach(forwarded_path(headers), user) {
        return (StatusCode::FORBIDDEN, [(header::CACHE_CONTROL, "no-store")], format!("{}\n", denied.reason()))
            .into_response();
    }
    let mut response = ([(header::CACHE_CONTROL, "no-store")], StatusCode::OK).into_response();
    identity::set_headers(response.headers_mut(), &state.identity_headers, user, None);
    response
}
