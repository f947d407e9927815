//! The proxy's request path: gate a request (cross-origin check, session, access policy,
//! unauthenticated action), then forward it with the user's identity headers.

use std::convert::Infallible;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use entra_auth::axum::{AccessTokenError, SignedInUser, signed_in_user_refreshed};
use entra_auth::{LocalPath, RefreshFailure, ResourceScopes, SignInError};
use tower_sessions::Session;

use crate::bearer_header::bearer_token;
use crate::config::{UnauthenticatedAction, guards, may_reach};
use crate::error::AppError;
use crate::proxy::bearer;
use crate::proxy::cross_origin;
use crate::proxy::forward::{Forwarded, Outbound, Proxy, UpstreamError, extended_connect};
use crate::proxy::identity;
use crate::proxy::passed_tokens::{self, Unavailable};
use crate::proxy::redirects;
use crate::proxy::shared_caches;
use crate::server::Peer;
use crate::state::AppState;

/// Whether the request is a CORS preflight: a browser asking, before a page of another origin
/// sends a request with a token or custom headers, whether the app accepts it. A preflight never
/// carries credentials (Fetch standard, "CORS-preflight fetch"), so requiring a session would
/// refuse every such call; it goes to the app behind as nobody, which answers as its CORS policy
/// says.
fn is_cors_preflight(request: &Request) -> bool {
    let headers = request.headers();
    request.method() == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Whether the request is a browser navigating (it may be sent to sign-in); anything else (a
/// script's `fetch`, an API client) gets status codes, never a redirect.
fn is_browser_navigation(request: &Request) -> bool {
    let headers = request.headers();
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or_default();
    matches!(*request.method(), Method::GET | Method::HEAD)
        && text(header::ACCEPT.as_str()).contains("text/html")
        && !text("x-requested-with").eq_ignore_ascii_case("XMLHttpRequest")
        && matches!(text("sec-fetch-mode"), "" | "navigate")
}

/// The path and query asked for, to come back to after sign-in.
fn here(request: &Request) -> LocalPath {
    request.uri().path_and_query().and_then(|pq| LocalPath::parse(pq.as_str())).unwrap_or_else(LocalPath::root)
}

/// The signed-in user with memberships as fresh as the tokens; `None` when nobody is, or the
/// session needs a new sign-in.
pub(crate) async fn current_user(state: &AppState, session: &Session) -> Result<Option<SignedInUser>, Response> {
    match signed_in_user_refreshed(&state.client, session).await {
        Ok(user) => Ok(user),
        Err(AccessTokenError::NotSignedIn | AccessTokenError::Refresh(RefreshFailure::NeedsSignIn(_))) => Ok(None),
        Err(AccessTokenError::Session(error)) => Err(AppError::SignIn(error).into_response()),
        Err(error) => Err(AppError::SignIn(SignInError::RefreshUnavailable(error.to_string())).into_response()),
    }
}

/// No session: sign-in for a browser (with `redirect`), else 401 with the challenge App Service
/// authentication sends.
fn unauthenticated(state: &AppState, action: UnauthenticatedAction, request: &Request) -> Response {
    if action == UnauthenticatedAction::Redirect && is_browser_navigation(request) {
        return Redirect::to(state.auth.sign_in_path(&here(request), None).as_str()).into_response();
    }
    challenge(state, request, "Sign-in required.\n")
}

/// Signed in, but without consent to what the app behind is to be given a token for: the browser
/// is asked for it (with `redirect`) and comes back; any other request gets the sign-in challenge.
fn consent_needed(
    state: &AppState,
    action: UnauthenticatedAction,
    scopes: &ResourceScopes,
    request: &Request,
) -> Response {
    if action == UnauthenticatedAction::Redirect && is_browser_navigation(request) {
        return Redirect::to(state.auth.consent_path(scopes, &here(request)).as_str()).into_response();
    }
    challenge(state, request, "Consent needed: open a page of the app in the browser to give it.\n")
}

/// 401 with `WWW-Authenticate` naming where to sign in, as App Service authentication sends it.
fn challenge(state: &AppState, request: &Request, body: &'static str) -> Response {
    let authority = state.client.config().authority.url();
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')).collect();
    let challenge = format!("Bearer realm=\"{host}\", authorization_uri=\"{authority}/oauth2/v2.0/authorize\"");
    let mut response = (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// What proves who a request comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// The session cookie (or nothing).
    Session,
    /// An access token (`Authorization: Bearer`), valid this long from now.
    Token { valid_for: std::time::Duration },
}

/// Who the request comes from, and what proves it; `None`: nobody (no session, or where anyone may
/// come, a proof that failed). A request with an access token, when tokens are accepted, is
/// judged by the token alone (see `bearer.rs`); any other by its session, once the cross-origin
/// check let it through. `Err` is the answer for a request that goes no further. (The request's
/// method and headers, not the request: its body is not `Sync`.)
async fn caller(
    state: &AppState,
    proxy: &Proxy,
    (method, path, headers): (&Method, &str, &HeaderMap),
    session: &Session,
    may_be_anonymous: bool,
) -> Result<Option<(SignedInUser, Proof)>, Response> {
    if let Some(policy) = &proxy.config.bearer
        && let Some(token) = bearer_token(headers)
    {
        let caller = bearer::caller(state, token, policy, may_be_anonymous, Some(path)).await?;
        return Ok(caller.map(|(user, claims)| (user, Proof::Token { valid_for: claims.remaining() })));
    }
    let checked = cross_origin::Request { method, headers, host: headers.get(header::HOST) };
    let user = match cross_origin::check(&checked, &proxy.config.trusted_origins) {
        // Another origin's page never acts as the user: where anyone may come, it comes as
        // nobody; elsewhere it is refused (its session is not even read).
        Some(_) if may_be_anonymous => None,
        Some(why) => {
            tracing::debug!(?why, %method, "cross-origin request refused");
            return Err(AppError::CrossOrigin.into_response());
        }
        None => current_user(state, session).await?,
    };
    Ok(user.map(|user| (user, Proof::Session)))
}

/// Every request that is not one of our routes, as a tower service behind the session layer
/// (`dispatch.rs` sends those here without crossing axum's router).
pub fn forward_service(
    state: AppState,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future = impl Send> + Clone + Send + Sync {
    tower::service_fn(move |request| {
        let state = state.clone();
        async move { Ok(forward_request(state, request).await) }
    })
}

/// Gates a request, then forwards it.
async fn forward_request(state: AppState, request: Request) -> Response {
    // Put there by the session layer this service sits behind.
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        tracing::error!("proxy: no session layer in front of the forwarding service");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (peer, dedicated) = match request.extensions().get::<Peer>() {
        Some(peer) => (Some(peer.ip_header.clone()), Some(peer.upstream.clone())),
        None => (None, None),
    };
    let Some(proxy) = state.proxy.as_ref() else { return AppError::NotFound.into_response() };
    // TRACE makes many servers echo the request back, our identity and token headers included
    // (with a stolen cookie, a way to read the user's tokens); CONNECT asks for a tunnel, not a
    // page. Neither is forwarded, but for RFC 8441's extended CONNECT (with a `:protocol`), an
    // HTTP/2 client's WebSocket.
    if *request.method() == Method::TRACE
        || (*request.method() == Method::CONNECT && extended_connect(&request).is_none())
    {
        let allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
        let headers = [(header::ALLOW, allow), (header::CACHE_CONTROL, "no-store")];
        return (StatusCode::METHOD_NOT_ALLOWED, headers, "TRACE and CONNECT are not forwarded.\n").into_response();
    }
    if proxy.upstream.came_back(request.headers()) {
        tracing::error!("a request came back to this proxy: UPSTREAM_URL leads to the proxy itself");
        return AppError::Upstream(UpstreamError::Loop).into_response();
    }
    let anonymous_path = proxy.config.is_anonymous(request.uri().path());
    // Preflights only where pages of other origins are expected to call (with tokens, or from
    // trusted origins): elsewhere nothing unauthenticated reaches the app behind.
    let cross_origin_callers = proxy.config.bearer.is_some() || !proxy.config.trusted_origins.is_empty();
    // "Allow anonymous" lets visitors without a session through, but not onto a path a rule
    // guards: the rule names who may reach it, and nobody known is not among them. There they
    // are sent to sign in, as by default.
    let (allowed_anonymously, action) = match proxy.config.unauthenticated {
        UnauthenticatedAction::Allow => match guards(&proxy.config.path_rules, request.uri().path()) {
            true => (false, UnauthenticatedAction::Redirect),
            false => (true, UnauthenticatedAction::Allow),
        },
        other => (false, other),
    };
    let may_be_anonymous =
        anonymous_path || allowed_anonymously || (cross_origin_callers && is_cors_preflight(&request));
    let asked = (request.method(), request.uri().path(), request.headers());
    let caller = match caller(&state, proxy, asked, &session, may_be_anonymous).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if let (Some((user, _)), Some(span)) = (&caller, request.extensions().get::<tracing::Span>()) {
        user.record_in(span);
    }
    let identity = match caller {
        Some((user, proof)) => {
            match state.may_reach(Some(request.uri().path()), &user) {
                Ok(()) => Some((user, proof)),
                // Anyone may reach an anonymous path; a user the policy refuses just has no identity there.
                Err(_) if anonymous_path => None,
                Err(denied) if proof == Proof::Session && is_browser_navigation(&request) => {
                    return state.auth.access_denied(&session, &user, denied, &here(&request)).await;
                }
                Err(denied) => {
                    return (
                        StatusCode::FORBIDDEN,
                        [(header::CACHE_CONTROL, "no-store")],
                        format!("{}\n", denied.reason()),
                    )
                        .into_response();
                }
            }
        }
        None if may_be_anonymous => None,
        None => return unauthenticated(&state, action, &request),
    };
    let passed_tokens = match &identity {
        Some((_, Proof::Session)) if proxy.config.pass_tokens => {
            match passed_tokens::for_upstream(&state, proxy.config.access_token_scopes.as_ref(), &session).await {
                Ok(tokens) => tokens,
                // Where anyone may come, a token that cannot be had now is just not sent.
                Err(_) if may_be_anonymous => None,
                Err(Unavailable::ConsentNeeded(scopes)) => return consent_needed(&state, action, &scopes, &request),
                Err(Unavailable::Failed(response)) => return response,
            }
        }
        // The scopes are only ever set with PROXY_PASS_TOKENS (see `config/proxy.rs`).
        Some((_, Proof::Token { .. })) => match (&proxy.config.access_token_scopes, bearer_token(request.headers())) {
            (Some(scopes), Some(token)) => match passed_tokens::on_behalf_of(&state, token, scopes).await {
                Ok(tokens) => Some(tokens),
                Err(_) if may_be_anonymous => None,
                Err(response) => return response,
            },
            _ => None,
        },
        _ => None,
    };
    // First what the client may not send goes (hop-by-hop headers and those `Connection` names,
    // connection facts, identity headers, our cookies), then ours are set: no header of the
    // client's can remove or disguise them.
    let forwarded = Forwarded { peer, trust_incoming: state.trust_forwarded_headers };
    let mut outbound = Outbound::new(request, forwarded);
    identity::strip_inbound(outbound.headers_mut(), &state.auth);
    if let Some((user, _)) = &identity {
        identity::set_headers(outbound.headers_mut(), &state.identity_headers, user, passed_tokens.as_ref());
    }
    if outbound.is_upgrade() {
        // A WebSocket keeps its connection's place among MAX_CONNECTIONS, or on an HTTP/2 stream
        // takes one of its own, and closes on shutdown.
        if let Some(slot) = outbound.extensions().get::<Peer>().map(|peer| peer.slot.clone()) {
            let slot = match outbound.shares_its_connection() {
                true => match slot.another() {
                    Some(slot) => slot,
                    None => return AppError::Busy.into_response(),
                },
                false => slot,
            };
            outbound.end_tunnel_when(slot.held_until_stopping());
        }
        // One opened as the user lasts no longer than what it was opened with: a cookie captured
        // before sign-out must not keep a socket that speaks as the user, nor a token past its end.
        match identity {
            Some((_, Proof::Session)) => {
                if let Some(id) = session.id() {
                    // Nor past a refresh after which the access policy (or a path rule of its path)
                    // would refuse its user.
                    let (policy, rules) = (state.policy.clone(), proxy.config.path_rules.clone());
                    let path = outbound.path().to_owned();
                    let admits = move |record: &_| {
                        SignedInUser::of_record(record)
                            .is_some_and(|user| may_reach(&policy, &rules, Some(&path), &user).is_ok())
                    };
                    outbound.end_tunnel_when(state.store.clone().session_ended(id, proxy.config.session_check, admits));
                }
            }
            Some((_, Proof::Token { valid_for })) => outbound.end_tunnel_when(tokio::time::sleep(valid_for)),
            None => {}
        }
    }
    match proxy.upstream.forward(outbound, dedicated.as_ref()).await {
        Ok(mut response) => {
            identity::strip_own_set_cookies(response.headers_mut(), &state.auth);
            redirects::keep_on_the_proxy(response.headers_mut(), &proxy.config.upstream);
            if identity.is_some() {
                shared_caches::keep_out_of_shared_caches(response.headers_mut());
            }
            response
        }
        // A client that stops sending is the client's doing, not the upstream's.
        Err(error @ UpstreamError::ClientStalled(_)) => {
            tracing::debug!(error = %error, "request body stalled");
            AppError::Upstream(error).into_response()
        }
        Err(error) => {
            tracing::warn!(error = %error, "upstream failed");
            AppError::Upstream(error).into_response()
        }
    }
}
