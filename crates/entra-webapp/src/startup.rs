//! Builds the app from a validated config: the same code path for `serve`, `demo` and tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request as AxumRequest;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use entra_auth::axum::AuthRoutes;
use entra_auth::{EntraClient, EntraConfig};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tracing::Level;

use crate::config::{AppConfig, SessionStoreConfig};
use crate::pages::error_response;
use crate::routes;
use crate::sessions::{AppSessionStore, MemoryStore, RedisStore};
use entra_auth::keys::SessionKeys;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The relying party.
    pub client: Arc<EntraClient>,
    /// The session store.
    pub store: AppSessionStore,
    /// `TRUST_FORWARDED_HEADERS`.
    pub trust_forwarded_headers: bool,
}

/// ID tokens may be this far off our clock (MSAL uses the same).
const CLOCK_LEEWAY: Duration = Duration::from_secs(120);
/// No request may take longer than this end to end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Forms here are tiny; refuse anything big.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Headers beyond these are refused (431) before any handler runs.
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADER_COUNT: usize = 64;

/// A built, bound app.
pub struct Application {
    listener: TcpListener,
    router: Router,
    client: Arc<EntraClient>,
    limits: crate::config::ServerLimits,
}

impl Application {
    /// Binds `BIND_ADDRESS:PORT` and builds the app.
    pub async fn build(config: AppConfig) -> anyhow::Result<Self> {
        let address = SocketAddr::new(config.bind_address, config.port);
        let listener = TcpListener::bind(address)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {address}: {err} (check PORT and BIND_ADDRESS)"))?;
        Self::with_listener(config, listener)
    }

    /// Builds the app on an already bound listener (tests bind port 0 first).
    pub fn with_listener(config: AppConfig, listener: TcpListener) -> anyhow::Result<Self> {
        let keys = Arc::new(SessionKeys::from_secrets(&config.session_secrets));
        if keys.ephemeral {
            tracing::info!("SESSION_SECRET not set: sign-ins in progress do not survive a restart of this process");
        }
        let store = match &config.session_store {
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
        let entra_config = EntraConfig {
            authority: config.authority.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            redirect_uri: config.redirect_uri.clone(),
            scopes: config.scopes.clone(),
            graph_endpoint: config.graph_endpoint.clone(),
            post_logout_redirect_uri: config.post_logout_redirect_uri.clone(),
            clock_leeway: CLOCK_LEEWAY,
            pending_sign_in_lifetime: config.pending_sign_in_lifetime,
            jwks_refetch_interval: config.jwks_refetch_interval,
        };
        let client = Arc::new(EntraClient::new(entra_config)?);
        let state = AppState { client: client.clone(), store, trust_forwarded_headers: config.trust_forwarded_headers };
        let router = router(&config, state, keys)?;
        Ok(Self { listener, router, client, limits: config.server_limits })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tokio::spawn(self.client.clone().load_provider_with_backoff());
        crate::server::serve(self.listener, self.router, self.limits, shutdown).await
    }
}

fn router(config: &AppConfig, state: AppState, keys: Arc<SessionKeys>) -> anyhow::Result<Router> {
    let https = config.is_https();
    let session_layer = SessionManagerLayer::new(state.store.clone())
        .with_name(if https { "__Host-session" } else { "session" })
        .with_http_only(true)
        .with_secure(https)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::seconds(
            config.session_idle.as_secs() as i64,
        )));
    let auth = AuthRoutes {
        client: state.client.clone(),
        error_page: Arc::new(error_response),
        keys,
        session_max_lifetime: config.session_max_lifetime,
    };
    let signed_in_pages = Router::new()
        .route("/", get(routes::home))
        .route("/logout", get(routes::sign_out_page))
        .route("/profile", get(routes::profile))
        .route("/profile/photo", get(routes::photo))
        .merge(auth.router())
        .layer(session_layer)
        .layer(middleware::from_fn(session_store_failures))
        .with_state(state.clone());
    crate::metrics::install();
    let probes = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(crate::metrics::endpoint))
        .route("/setup", get(routes::setup))
        .with_state(state);
    let hsts = https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    let request_id = HeaderName::from_static("x-request-id");
    let app = Router::new()
        .merge(signed_in_pages)
        .merge(probes)
        .route("/static/style.css", get(routes::stylesheet))
        .fallback(routes::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(crate::request_id::take_client_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    // The path only: queries carry codes and state.
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let client_id = request.extensions().get::<crate::request_id::ClientRequestId>().map(|c| c.0.as_str());
                    tracing::info_span!("request", request_id = %id, client_request_id = client_id, method = %request.method(), path = %request.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Millis)))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn(limit_headers))
                .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::GATEWAY_TIMEOUT, REQUEST_TIMEOUT))
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        )
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, content_security_policy(config)?))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // Pages are per user: never cached, so Back after sign-out shows nothing private.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, move |_: &axum::response::Response| hsts.clone()));
    Ok(app)
}

/// The Content-Security-Policy: no inline script or style; forms may post here and be
/// redirected to the authority (the sign-out redirect to Entra's end-session endpoint).
fn content_security_policy(config: &AppConfig) -> anyhow::Result<HeaderValue> {
    let authority_origin = url::Url::parse(&config.authority.url())?.origin().ascii_serialization();
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' {authority_origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    Ok(HeaderValue::from_str(&csp)?)
}

/// tower-sessions answers a bare 500 when it cannot save a session, and our extractor marks a
/// store failure: both become the app's 503 page, the only 5xx a store outage may cause.
async fn session_store_failures(request: AxumRequest, next: Next) -> Response {
    let request_id = entra_auth::axum::request_id(request.headers());
    let response = next.run(request).await;
    let store_failed = response.status() == StatusCode::INTERNAL_SERVER_ERROR
        || response.extensions().get::<entra_auth::axum::SessionStoreUnavailable>().is_some();
    if !store_failed {
        return response;
    }
    tracing::error!(%request_id, "session store unavailable");
    error_response(entra_auth::SignInError::Session("unavailable".to_owned()).page("", &request_id))
}

/// Refuses requests with too many or too large headers: 431 Request Header Fields Too Large.
async fn limit_headers(request: AxumRequest, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request headers too large.").into_response();
    }
    next.run(request).await
}
