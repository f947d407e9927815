//! A middleware that looks at a request first, may change it, and may answer it at once (header
//! limits, the client's request id). The same as axum's `middleware::from_fn` for a synchronous
//! check, without what `from_fn` costs on every request: a boxed clone of the whole inner stack
//! and a boxed future (measured with `scripts/proxy_cost.sh`, see docs/PERFORMANCE.md).

use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::Either;
use tower::{Layer, Service};

/// Wraps a service in [`Guard`] with `check`: `Some(response)` answers the request with it,
/// `None` passes the (possibly changed) request on. (A check that never answers can be generic
/// over the response body, and then sits anywhere in the stack.)
#[derive(Clone, Copy)]
pub struct GuardLayer<F> {
    check: F,
}

impl<F> GuardLayer<F> {
    /// A layer running `check` on every request.
    pub fn new(check: F) -> Self {
        Self { check }
    }
}

impl<S, F: Clone> Layer<S> for GuardLayer<F> {
    type Service = Guard<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard { inner, check: self.check.clone() }
    }
}

/// See [`GuardLayer`].
#[derive(Clone, Copy)]
pub struct Guard<S, F> {
    inner: S,
    check: F,
}

impl<S, F, B> Service<Request> for Guard<S, F>
where
    S: Service<Request, Response = Response<B>>,
    F: Fn(&mut Request) -> Option<Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<B>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner services here (axum's router and tower-http's layers) are always ready and
        // reserve nothing, so a request answered here leaves nothing held.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match (self.check)(&mut request) {
            Some(response) => Either::Left(ready(Ok(response))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn check(request: &mut Request) -> Option<Response> {
        if request.headers().contains_key("x-refuse") {
            return Some(StatusCode::IM_A_TEAPOT.into_response());
        }
        request.headers_mut().insert("x-seen", HeaderValue::from_static("yes"));
        None
    }

    async fn answer(request: axum::http::Request<Body>) -> (StatusCode, String) {
        let echo = |request: Request| async move {
            request.headers().get("x-seen").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
        };
        let app = Router::new().route("/", get(echo)).layer(GuardLayer::new(check));
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_check_answers_at_once_or_passes_the_changed_request_on() {
        let refused = axum::http::Request::builder().uri("/").header("x-refuse", "1").body(Body::empty()).unwrap();
        assert_eq!(answer(refused).await, (StatusCode::IM_A_TEAPOT, String::new()));
        let passed = axum::http::Request::builder().uri("/").body(Body::empty()).unwrap();
        assert_eq!(answer(passed).await, (StatusCode::OK, "yes".to_owned()));
    }
}
