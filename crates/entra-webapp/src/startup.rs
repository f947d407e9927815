//! Builds the app from a validated config: the same code path for `serve`, `demo` and tests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::Request as AxumRequest;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use entra_auth::axum::{AuthRoutes, DEFAULT_SESSION_COOKIE_NAME, require_access};
use entra_auth::{EntraClient, SessionKeys};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::LatencyUnit;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::map_response_body::MapResponseBodyLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::{AppConfig, OwnRoutes, SessionStoreConfig};
use crate::error::{ErrorPagesLayer, not_found};
use crate::guard::GuardLayer;
use crate::pages::{access_denied_response, error_response, sign_out_response};
use crate::proxy::identity::{IdentityHeaderCache, PrincipalOptions};
use crate::proxy::{self, Proxy};
use crate::routes;
use crate::sessions::{AppSessionStore, MemoryStore, RedisStore};
use crate::state::{AppState, Shared};

/// No request may take longer than this end to end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Forms here are tiny; refuse anything big.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Headers beyond these are refused (431) before any handler runs.
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADER_COUNT: usize = 64;

/// The session cookie's name in proxy mode (`__Host-` prefixed over https).
const PROXY_SESSION_COOKIE: &str = "entra-session";
/// Users whose identity headers are kept built (a few KB each; more with many groups).
const IDENTITY_HEADER_CACHE_USERS: usize = 1024;

/// A built, bound app.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// In proxy mode, the paths of `router` and what every other request needs.
    proxied: Option<(Arc<[String]>, AppState)>,
    /// Served over https (HSTS is sent).
    https: bool,
    /// Where our routes are, for the error pages' links.
    routes: OwnRoutes,
    client: Arc<EntraClient>,
    limits: crate::config::ServerLimits,
}

impl Application {
    /// Binds `BIND_ADDRESS:PORT` and builds the app.
    pub async fn build(config: AppConfig) -> anyhow::Result<Self> {
        let address = SocketAddr::new(config.listener.bind_address, config.listener.port);
        let listener = TcpListener::bind(address)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {address}: {err} (check PORT and BIND_ADDRESS)"))?;
        Self::with_listener(config, listener)
    }

    /// Builds the app on an already bound listener (tests bind port 0 first).
    pub fn with_listener(config: AppConfig, listener: TcpListener) -> anyhow::Result<Self> {
        let keys = Arc::new(SessionKeys::from_secrets(&config.sessions.secrets));
        if keys.ephemeral {
            tracing::info!("SESSION_SECRET not set: sign-ins in progress do not survive a restart of this process");
        }
        let store = match &config.sessions.store {
            SessionStoreConfig::Memory { max_sessions } => {
                AppSessionStore::Memory(Arc::new(MemoryStore::new(*max_sessions)))
            }
            SessionStoreConfig::Redis { url } => {
                use secrecy::ExposeSecret;
                let client = redis::Client::open(url.expose_secret())
                    .map_err(|err| anyhow::anyhow!("SESSION_STORE: not a usable Redis URL: {err}"))?;
                AppSessionStore::Redis(Arc::new(RedisStore::new(client, keys.clone())?))
            }
        };
        let client = Arc::new(EntraClient::new(config.entra.clone())?);
        // In front of another app, our session cookie must not share a name with one of its own.
        let session_cookie = if config.proxy.is_some() { PROXY_SESSION_COOKIE } else { DEFAULT_SESSION_COOKIE_NAME };
        let routes = config.own_routes();
        if routes == OwnRoutes::UnderAuth && !config.entra.redirect_uri.path().starts_with("/.auth/") {
            tracing::warn!(
                redirect_uri = %config.entra.redirect_uri,
                "PROXY_OWN_ROUTES=/.auth, but REDIRECT_URI's path is not under /.auth/: that path is ours, not the app \
                 behind's; App Service authentication's https://<site>/.auth/login/aad/callback keeps every other path the app's"
            );
        }
        let auth = AuthRoutes::new(client.clone())
            .login_path(routes.sign_in())
            .logout_path(routes.sign_out())
            .session_cookie_name(session_cookie)
            .session_keys(keys)
            .error_page(move |page| error_response(page, routes))
            .sign_out_page(sign_out_response)
            .access_denied_page(access_denied_response)
            .session_idle_timeout(config.sessions.idle)
            .session_max_lifetime(config.sessions.max_lifetime)
            .front_channel_logout(Arc::new(store.clone()));
        let entra = &config.entra;
        let (landing, callback) = (&entra.post_logout_redirect_uri, &entra.redirect_uri);
        if landing.origin() != callback.origin() || landing.path() != callback.path() {
            // Deliberate or left from a deployment made before the callback became the landing.
            tracing::warn!(
                post_logout_redirect_uri = %entra.post_logout_redirect_uri,
                "POST_LOGOUT_REDIRECT_URI is not REDIRECT_URI: after sign-out Entra sends the browser there, so \
                 /logout's return_to (and the proxy's /.auth/logout/complete) go unused; unset it to use them"
            );
        }
        // In front of an app whose root may need sign-in, signing out ends on a page of ours that
        // says so, as App Service authentication's does, not on a sign-in page.
        let auth = match config.proxy {
            Some(_) => auth.after_sign_out(proxy::signed_out_path()),
            None => auth,
        };
        let proxy = config.proxy.clone().map(Proxy::new).transpose().context("cannot set up TLS to UPSTREAM_URL")?;
        let state = AppState::new(Shared {
            client: client.clone(),
            auth,
            store,
            trust_forwarded_headers: config.listener.trust_forwarded_headers,
            policy: Arc::new(config.access.policy.clone()),
            proxy,
            caller_groups: Default::default(),
            identity_headers: IdentityHeaderCache::new(
                IDENTITY_HEADER_CACHE_USERS,
                PrincipalOptions::new(config.proxy.as_ref(), &config.entra.graph_endpoint),
            ),
            downstream: config
                .downstream_api
                .clone()
                .map(|(url, scopes)| entra_auth::axum::DownstreamApi::new(&client, url, scopes)),
        });
        let (router, own_paths) = router(&config, state.clone())?;
        let proxied = state.proxy.is_some().then(|| (own_paths.into(), state));
        Ok(Self {
            listener,
            router,
            proxied,
            https: config.is_https(),
            routes,
            client,
            limits: crate::config::ServerLimits {
                websockets_over_http2: config.proxy.is_some(),
                ..config.listener.server_limits
            },
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tokio::spawn(self.client.clone().load_provider_with_backoff());
        let Self { listener, router, proxied, https, routes, limits, .. } = self;
        match proxied {
            Some((own_paths, state)) => {
                // The app behind's answers pass as they are: streamed, no body limit or overall
                // timeout (uploads, downloads, WebSockets), and its own headers.
                let proxied = state.auth.layer(state.store.clone()).layer(proxy::forward_service(state));
                let app = proxy::OwnOrProxied::new(router, own_paths, proxied);
                crate::server::serve(listener, front(app, https, routes), limits, shutdown).await
            }
            None => crate::server::serve(listener, front(router, https, routes), limits, shutdown).await,
        }
    }
}

/// Our routes, and the paths they serve (in proxy mode every other path is the app behind's).
fn router(config: &AppConfig, state: AppState) -> anyhow::Result<(Router, Vec<String>)> {
    crate::metrics::install();
    let mut paths = Vec::new();
    let own_pages = match &state.proxy {
        // Proxy mode: our sign-in routes and App Service authentication's; the rest is the app
        // behind's.
        Some(_) => with_routes(
            [
                ("/.auth/login/aad", get(proxy::login)),
                ("/.auth/logout", get(proxy::logout)),
                (proxy::SIGNED_OUT_PATH, get(proxy::signed_out)),
                ("/.auth/me", get(proxy::me)),
                ("/.auth/refresh", get(proxy::refresh)),
                ("/.auth/verify", get(proxy::verify)),
            ],
            &mut paths,
        ),
        None => {
            // Every page with the user's data sits behind the access policy (an empty one lets
            // every signed-in user in); the home page checks it itself, as it also serves
            // anonymous visitors.
            let protected = with_routes(
                [
                    ("/profile", get(routes::profile)),
                    ("/profile/photo", get(routes::photo)),
                    ("/mail", get(routes::mail)),
                    ("/downstream", get(routes::downstream)),
                ],
                &mut paths,
            )
            .route_layer(middleware::from_fn_with_state(state.policy.clone(), require_access));
            with_routes([("/", get(routes::home))], &mut paths).merge(protected)
        }
    };
    let own_routes = config.own_routes();
    let mut probes = vec![
        (own_routes.healthz(), get(routes::healthz)),
        (own_routes.readyz(), get(routes::readyz)),
        ("/.auth/style.css", get(routes::stylesheet)),
    ];
    // Without a token there is no `/metrics` (in proxy mode the path is the app behind's).
    if let Some(token) = &config.metrics_token {
        probes.push((own_routes.metrics(), crate::metrics::route(token)));
    }
    if state.proxy.is_none() {
        probes.push(("/setup", get(routes::setup)));
        // `/static/` belongs to the app behind in proxy mode.
        probes.push(("/static/style.css", get(routes::stylesheet)));
    }
    let probes = with_routes(probes, &mut paths);
    for path in state.auth.paths() {
        // Sign-in and sign-out have fixed paths of their own; the callback's is REDIRECT_URI's.
        if paths.contains(&path) {
            anyhow::bail!(
                "REDIRECT_URI: its path {path} is also one of this app's own routes; register a callback URL with a path of its own, e.g. https://<site>/callback, on the app registration and set REDIRECT_URI to it"
            );
        }
        paths.push(path);
    }
    // Our own answers: small bodies, bounded time, our security headers.
    let own = own_pages.merge(state.auth.router()).layer(state.auth.layer(state.store.clone())).merge(probes);
    // One `layer` call: each call boxes the routes again, and that box is cloned per request.
    let own = own.with_state(state.clone()).layer(
        ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                content_security_policy(config)?,
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            // Pages are per user: never cached, so Back after sign-out shows nothing private.
            .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, REQUEST_TIMEOUT))
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
    );
    // In proxy mode only our paths reach the router (see `proxy/dispatch.rs`).
    Ok((own.fallback(not_found), paths))
}

/// A router of `routes`, their paths noted in `paths`.
fn with_routes(
    routes: impl IntoIterator<Item = (&'static str, MethodRouter<AppState>)>,
    paths: &mut Vec<String>,
) -> Router<AppState> {
    routes.into_iter().fold(Router::new(), |router, (path, method_router)| {
        paths.push(path.to_owned());
        router.route(path, method_router)
    })
}

/// The layers every request crosses, ours and the app behind's alike, wrapped around the whole
/// router as one service. (Not added with `Router::layer`, which boxes the service inside again
/// for each layer and clones that box on every request: measured with `scripts/proxy_cost.sh`,
/// see docs/PERFORMANCE.md.)
fn front<S>(
    app: S,
    https: bool,
    routes: OwnRoutes,
) -> impl Service<AxumRequest, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + Sync + 'static
where
    S: Service<AxumRequest, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let hsts = https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    let request_id = HeaderName::from_static("x-request-id");
    ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, move |_: &Response| hsts.clone()))
        // The limits measure what the client sent: checked before our request id is added (a 431
        // carries none, and an oversized flood writes no access log).
        .layer(GuardLayer::new(limit_headers))
        .layer(GuardLayer::new(crate::request_id::take_client_request_id))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        // Back to one body type for the layers outside the trace (as `into_response` would).
        .layer(MapResponseBodyLayer::new(Body::new))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            // The path only: queries carry codes and state.
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            let client_id = request.extensions().get::<crate::request_id::ClientRequestId>().map(|c| c.0.as_str());
            // `oid` and `tid`: the signed-in user's, filled in once known (entra-auth's
            // `SignedInUser::record_in`, on the span put in the request's extensions below).
            tracing::info_span!("request", request_id = %id, client_request_id = client_id, method = %request.method(), path = %request.uri().path(), oid = tracing::field::Empty, tid = tracing::field::Empty)
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Millis)))
        .layer(GuardLayer::new(keep_request_span))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(ErrorPagesLayer::new(routes))
        .service(app)
}

/// The Content-Security-Policy: no inline script or style; forms may post here and be
/// redirected to the authority (the sign-out redirect to Entra's end-session endpoint).
fn content_security_policy(config: &AppConfig) -> anyhow::Result<HeaderValue> {
    let authority_origin = url::Url::parse(&config.entra.authority.url())?.origin().ascii_serialization();
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' {authority_origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    Ok(HeaderValue::from_str(&csp)?)
}

/// Puts the request's span (the current one here, inside the trace layer) in its extensions,
/// for entra-auth to note the signed-in user on (`oid`, `tid`): in a handler the current span
/// may be a layer's own. Nothing when the span is off (logs above `info`: then not even a look
/// at the current span, which costs more than the rest of this layer).
fn keep_request_span(request: &mut AxumRequest) -> Option<Response> {
    if tracing::level_enabled!(Level::INFO) {
        let span = tracing::Span::current();
        if !span.is_disabled() {
            request.extensions_mut().insert(span);
        }
    }
    None
}

/// Refuses requests with too many or too large headers: 431 Request Header Fields Too Large.
fn limit_headers(request: &mut AxumRequest) -> Option<Response> {
    let headers = request.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    (headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES)
        .then(|| (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request headers too large.").into_response())
}
