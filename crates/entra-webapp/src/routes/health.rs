//! Probes for App Service and load balancers: never behind sign-in, never a redirect.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use entra_auth::EntraClient;

/// Liveness: the process answers.
pub async fn healthz() -> impl IntoResponse {
    ([("cache-control", "no-store")], "ok")
}

/// Readiness: the tenant's metadata is loaded (sign-in can work).
pub async fn readyz(State(client): State<Arc<EntraClient>>) -> impl IntoResponse {
    match client.readiness().await {
        Ok(()) => (StatusCode::OK, [("cache-control", "no-store")], "ready".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("cache-control", "no-store")],
            format!("not ready: {reason}"),
        ),
    }
}
