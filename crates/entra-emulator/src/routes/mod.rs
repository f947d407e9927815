//! The HTTP surface: Entra's v2.0 endpoints, the sign-in pages, Graph, and the admin routes.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::state::EmulatorState;

mod admin;
mod api;
pub(crate) mod authorize;
mod client_auth;
pub(crate) mod discovery;
mod graph;
mod identity;
mod logout;
mod sign_in;
mod sso;
mod token;

pub(crate) fn router(state: Arc<EmulatorState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route("/{tenant}/login", post(sign_in::submit_credentials))
        .route("/{tenant}/consent", post(sign_in::submit_consent))
        .route("/{tenant}/oauth2/v2.0/logout", get(logout::logout).post(logout::logout_form))
        .route("/_identity/token", get(identity::token))
        .nest("/_emulator", admin::router())
        .merge(called_from_browsers())
        .layer(axum::middleware::from_fn(request_ids))
        .with_state(state)
}

/// What a single-page app calls with `fetch`: metadata, keys, the token endpoint, Graph and the
/// API. Like Entra and Graph, they answer cross-origin requests from any origin (no cookies are
/// involved); which redemptions are allowed cross-origin is the token endpoint's decision.
fn called_from_browsers() -> Router<Arc<EmulatorState>> {
    use axum::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowHeaders, Any, CorsLayer};
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::WWW_AUTHENTICATE, HeaderName::from_static("request-id")]);
    Router::new()
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys))
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route("/graph/v1.0/me", get(graph::me))
        .route("/graph/v1.0/me/photo/$value", get(graph::photo))
        .route("/graph/v1.0/me/transitiveMemberOf", get(graph::transitive_member_of))
        .route("/graph/v1.0/users/{id}/transitiveMemberOf", get(graph::user_transitive_member_of))
        .route("/graph/v1.0/me/messages", get(graph::messages))
        .route("/api/{app}/me", get(api::me))
        .route("/api/{app}/echo", post(api::echo))
        .route("/graph/oidc/userinfo", get(graph::userinfo).post(graph::userinfo))
        .route("/graph/{*rest}", axum::routing::any(graph::unknown))
        .layer(cors)
}

/// Request ids as Entra and Graph send them: Graph answers `request-id`, the token service
/// `x-ms-request-id`; both echo the caller's `client-request-id` (or give one).
async fn request_ids(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::HeaderValue;
    let graph = request.uri().path().starts_with("/graph/");
    let client_request_id = request.headers().get("client-request-id").cloned();
    let mut response = next.run(request).await;
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = HeaderValue::from_str(&id) {
        let headers = response.headers_mut();
        headers.insert(if graph { "request-id" } else { "x-ms-request-id" }, value.clone());
        headers.insert("client-request-id", client_request_id.unwrap_or(value));
    }
    response
}
