//! Probes for App Service and load balancers: never behind sign-in, never a redirect.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::startup::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> impl IntoResponse {
    ([("cache-control", "no-store")], "ok")
}

/// Readiness: the tenant's metadata is loaded and the session store answers.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let ready = match state.client.readiness().await {
        Ok(()) => state.store.readiness().await,
        Err(reason) => Err(reason),
    };
    match ready {
        Ok(()) => (StatusCode::OK, [("cache-control", "no-store")], "ready".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("cache-control", "no-store")],
            format!("not ready: {reason}"),
        ),
    }
}
