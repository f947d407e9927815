//! One error path: handlers return `Result<_, AppError>` and use `?`; [`ErrorPagesLayer`] turns
//! every failure into the app's error page with the request's id, and answers a 5xx as "sessions
//! are unavailable" only when a session store operation of that request really failed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use entra_auth::axum::{AccessTokenError, AccessTokenRejection, ErrorPage};
use entra_auth::{GraphError, SignInError};
use tower_http::request_id::RequestId;

use crate::config::OwnRoutes;
use crate::pages::error_response;

/// A failure a handler cannot answer itself.
#[derive(Debug)]
pub enum AppError {
    /// Signing in, out, or keeping the session failed.
    SignIn(SignInError),
    /// No access token could be had (signing in again is not the fix; see [`AccessTokenRejection`]).
    Token(AccessTokenRejection),
    /// Microsoft Graph failed.
    Graph(GraphError),
    /// Proxy mode: the app behind did not answer.
    Upstream(crate::proxy::forward::UpstreamError),
    /// Proxy mode: a page of another origin asked for something only the app's own pages may
    /// (see `proxy/cross_origin.rs`).
    CrossOrigin,
    /// Nothing at this path.
    NotFound,
    /// Every connection place is taken (`max_connections`), by WebSockets among others.
    Busy,
}

impl From<SignInError> for AppError {
    fn from(error: SignInError) -> Self {
        AppError::SignIn(error)
    }
}

impl From<GraphError> for AppError {
    fn from(error: GraphError) -> Self {
        AppError::Graph(error)
    }
}

/// Marks a response whose page [`ErrorPagesLayer`] must render (it knows the request id).
#[derive(Clone)]
struct PageToRender(ErrorPage);

impl AppError {
    fn into_page(self) -> ErrorPage {
        let error = match self {
            AppError::SignIn(error) => error,
            AppError::Token(rejection) => match rejection.error {
                AccessTokenError::Refresh(failure) => SignInError::RefreshUnavailable(failure.to_string()),
                AccessTokenError::Session(error) => error,
                _ => return internal_error_page(),
            },
            AppError::Graph(error) => {
                tracing::warn!(error = %error, "Graph call failed");
                SignInError::Graph(error)
            }
            AppError::Upstream(error) => {
                let (status, kind, title, message) = match error {
                    crate::proxy::forward::UpstreamError::Timeout(_) => (
                        StatusCode::GATEWAY_TIMEOUT,
                        "upstream_timeout",
                        "The app is taking too long",
                        "The app behind this sign-in did not answer in time.",
                    ),
                    crate::proxy::forward::UpstreamError::Unreachable(_) => (
                        StatusCode::BAD_GATEWAY,
                        "upstream_unreachable",
                        "The app is not answering",
                        "The app behind this sign-in cannot be reached right now.",
                    ),
                    crate::proxy::forward::UpstreamError::ClientStalled(idle) => {
                        return ErrorPage::new(
                            StatusCode::REQUEST_TIMEOUT,
                            "request_body_stalled",
                            "The upload stopped",
                            format!(
                                "Nothing more of this request arrived for {} seconds, so it was not passed on to the app.",
                                idle.as_secs()
                            ),
                            "Check the connection and send it again.",
                            "-",
                        );
                    }
                    crate::proxy::forward::UpstreamError::UpgradeOverHttp2 => {
                        return ErrorPage::new(
                            StatusCode::NOT_IMPLEMENTED,
                            "upstream_upgrade_over_http2",
                            "This upgrade is not available here",
                            "The app behind this sign-in is spoken to in HTTP/2, through which this sign-in passes WebSockets but no other upgrade.",
                            "The site's administrator can set UPSTREAM_HTTP_VERSION=1.1 if the app needs this protocol.",
                            "-",
                        );
                    }
                    crate::proxy::forward::UpstreamError::ConnectOtherThanWebSocket => {
                        return ErrorPage::new(
                            StatusCode::NOT_IMPLEMENTED,
                            "connect_other_than_websocket",
                            "This protocol is not available here",
                            "This request asks for a tunnel for another protocol than WebSocket, which this sign-in does not pass to the app.",
                            "Use WebSocket, or plain HTTP requests.",
                            "-",
                        );
                    }
                    crate::proxy::forward::UpstreamError::NotAWebSocketHandshake => {
                        return ErrorPage::new(
                            StatusCode::BAD_REQUEST,
                            "websocket_handshake",
                            "Not a WebSocket handshake",
                            "This request asks for a WebSocket without the Sec-WebSocket-Key every WebSocket client sends.",
                            "Open the WebSocket with a WebSocket client (a browser's WebSocket API, for one).",
                            "-",
                        );
                    }
                    crate::proxy::forward::UpstreamError::NoWebSocketOverHttp2 => {
                        return ErrorPage::new(
                            StatusCode::BAD_GATEWAY,
                            "upstream_no_websocket_over_http2",
                            "WebSocket is not available here",
                            "The app behind this sign-in is spoken to in HTTP/2 and does not take WebSockets that way (RFC 8441).",
                            "The site's administrator can turn on WebSockets over HTTP/2 in the app, or set UPSTREAM_HTTP_VERSION=1.1.",
                            "-",
                        );
                    }
                    crate::proxy::forward::UpstreamError::Loop => {
                        return ErrorPage::new(
                            StatusCode::LOOP_DETECTED,
                            "upstream_loop",
                            "This sign-in is set up in a loop",
                            "The address of the app behind this sign-in leads back to the sign-in itself.",
                            "The site's administrator must set UPSTREAM_URL to the app's own address.",
                            "-",
                        );
                    }
                };
                return ErrorPage::new(status, kind, title, message, "Try again in a minute.", "-");
            }
            AppError::CrossOrigin => {
                return ErrorPage::new(
                    StatusCode::FORBIDDEN,
                    "cross_origin",
                    "Refused: sent from another site's page",
                    "A page of another origin (another site or subdomain) had your browser send this request, so it was not passed on to the app as you.",
                    "If you meant to do this, go back to the app and do it from its own pages.",
                    "-",
                );
            }
            AppError::NotFound => {
                return ErrorPage::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "Page not found",
                    "There is nothing at this address.",
                    "Go back to the home page.",
                    "-",
                );
            }
            AppError::Busy => {
                return ErrorPage::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_connections",
                    "Too many open connections",
                    "This server holds as many connections and WebSockets as it may, so this one was not opened.",
                    "Try again in a minute, or close other tabs of this site.",
                    "-",
                );
            }
        };
        ErrorPage::for_sign_in_error(&error, "-")
    }
}

fn internal_error_page() -> ErrorPage {
    ErrorPage::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Something went wrong",
        "The app failed to answer this request.",
        "Try again in a minute.",
        "-",
    )
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let page = self.into_page();
        let mut response = page.status.into_response();
        response.extensions_mut().insert(PageToRender(page));
        response
    }
}

/// Renders [`AppError`] pages with the request id, and turns a 5xx into the "sessions are
/// unavailable" page when (and only when) the session store failed during this request:
/// tower-sessions answers a bare 500 when it cannot save. (A tower layer rather than
/// `middleware::from_fn`, which boxes a clone of the whole inner stack on every request.)
#[derive(Clone, Copy)]
pub struct ErrorPagesLayer {
    /// Where the pages' sign-in links go.
    routes: OwnRoutes,
}

impl ErrorPagesLayer {
    /// Pages whose sign-in links go to `routes`' sign-in.
    pub fn new(routes: OwnRoutes) -> Self {
        Self { routes }
    }
}

impl<S> tower::Layer<S> for ErrorPagesLayer {
    type Service = ErrorPages<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorPages { inner, routes: self.routes }
    }
}

/// See [`ErrorPagesLayer`].
#[derive(Clone)]
pub struct ErrorPages<S> {
    inner: S,
    routes: OwnRoutes,
}

impl<S> tower::Service<Request> for ErrorPages<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ErrorPagesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let request_id = request.extensions().get::<RequestId>().map(|id| id.header_value().clone());
        // Store operations run when the future is polled: inside the scope that notes failures.
        let answer = crate::sessions::noting_store_failures(self.inner.call(request));
        ErrorPagesFuture { answer, request_id, routes: self.routes }
    }
}

pin_project_lite::pin_project! {
    /// The answer of the service inside [`ErrorPages`], rendered once it is there. (Named rather
    /// than boxed: a boxed future would move the whole inner stack's future on every request.)
    pub struct ErrorPagesFuture<F> {
        #[pin]
        answer: crate::sessions::NotingStoreFailures<F>,
        request_id: Option<HeaderValue>,
        routes: OwnRoutes,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for ErrorPagesFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (Ok(response), store_failed) = std::task::ready!(this.answer.poll(cx));
        let request_id = this.request_id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or("-");
        Poll::Ready(Ok(render_error_page(response, store_failed, request_id, *this.routes)))
    }
}

fn render_error_page(response: Response, store_failed: bool, request_id: &str, routes: OwnRoutes) -> Response {
    if store_failed && response.status().is_server_error() {
        tracing::error!(%request_id, "session store unavailable");
        let error = SignInError::Session(tower_sessions::session::Error::Store(
            tower_sessions::session_store::Error::Backend("unavailable".to_owned()),
        ));
        return error_response(ErrorPage::for_sign_in_error(&error, request_id), routes);
    }
    let Some(PageToRender(mut page)) = response.extensions().get::<PageToRender>().cloned() else {
        return response;
    };
    if page.status.is_server_error() {
        tracing::error!(%request_id, kind = page.kind, "request failed");
    }
    page.request_id = request_id.to_owned();
    error_response(page, routes)
}

/// Any path we do not serve.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use entra_auth::SessionKeys;
    use tower::ServiceExt;
    use tower_sessions::SessionStore;
    use tower_sessions::session::Id;

    use super::*;
    use crate::sessions::{AppSessionStore, RedisStore};

    async fn answer(handler: Router) -> (StatusCode, String) {
        let app = handler.layer(ErrorPagesLayer::new(OwnRoutes::Root));
        let response = app.oneshot(axum::http::Request::new(Body::empty())).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_500_without_a_store_failure_is_not_called_a_session_outage() {
        let (status, body) =
            answer(Router::new().route("/", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("Sessions are unavailable"), "{body}");
    }

    #[tokio::test]
    async fn a_500_after_a_failed_store_operation_is_the_sessions_page() {
        let handler = || async {
            // Nothing listens on port 1: the load fails, as tower-sessions' would in an outage.
            let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
            let store = RedisStore::new(client, Arc::new(SessionKeys::from_secrets(&[]))).unwrap();
            assert!(AppSessionStore::Redis(Arc::new(store)).load(&Id::default()).await.is_err());
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let (status, body) = answer(Router::new().route("/", get(handler))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("Sessions are unavailable"), "{body}");
    }

    #[tokio::test]
    async fn an_app_error_is_rendered_as_the_apps_page() {
        let (status, body) = answer(Router::new().route("/", get(not_found))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("Page not found") && body.contains("id=\"request-id\""), "{body}");
    }
}
