//! In proxy mode a request is either for one of our routes or for the app behind. Those go
//! straight to the proxy's stack (the session layer and the forwarding service) rather than
//! through axum's router, which would find no route and call its fallback: a route lookup, a
//! path-parameter map, a cloned boxed service and a boxed future on every proxied request
//! (`scripts/proxy_cost.sh`, see docs/PERFORMANCE.md).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use futures_util::future::Either;
use tower::Service;

/// Our routes for the paths they serve, `proxied` for every other path.
#[derive(Clone)]
pub struct OwnOrProxied<P> {
    own: Router,
    /// Exactly the paths `own` has routes for (its routes are all plain paths: no parameter, no
    /// wildcard, so equal strings are what its lookup matches; `REDIRECT_URI`, the one path a
    /// setting gives, is refused when the router would read it as a parameter).
    own_paths: Arc<[String]>,
    proxied: P,
}

impl<P> OwnOrProxied<P> {
    /// `own` for `own_paths`, `proxied` for the rest.
    pub fn new(own: Router, own_paths: Arc<[String]>, proxied: P) -> Self {
        Self { own, own_paths, proxied }
    }

    fn is_own(&self, path: &str) -> bool {
        self.own_paths.iter().any(|own| own == path)
    }
}

impl<P> Service<Request> for OwnOrProxied<P>
where
    P: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<<Router as Service<Request>>::Future, P::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are ready at once and reserve nothing (axum's router, tower-sessions' layer and a
        // service function), so one call may go to either.
        std::task::ready!(self.proxied.poll_ready(cx))?;
        <Router as Service<Request>>::poll_ready(&mut self.own, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.is_own(request.uri().path()) {
            Either::Left(self.own.call(request))
        } else {
            Either::Right(self.proxied.call(request))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn answer(path: &str) -> String {
        let own = Router::new().route("/healthz", get(|| async { "own" })).route("/.auth/me", get(|| async { "me" }));
        let proxied = tower::service_fn(|request: Request| async move {
            Ok::<_, Infallible>(Response::new(Body::from(format!("proxied {}", request.uri().path()))))
        });
        let paths: Arc<[String]> = ["/healthz".to_owned(), "/.auth/me".to_owned()].into();
        let service = OwnOrProxied::new(own, paths, proxied);
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = service.oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn our_paths_are_routed_and_every_other_is_proxied() {
        assert_eq!(answer("/healthz").await, "own");
        assert_eq!(answer("/.auth/me?x=1").await, "me");
        for path in ["/", "/healthz/", "/Healthz", "/.auth/me/x", "/%2Eauth/me", "//healthz"] {
            assert_eq!(answer(path).await, format!("proxied {path}"), "{path}");
        }
    }
}
