//! Probes for App Service and load balancers: never behind sign-in, never a redirect.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> impl IntoResponse {
    ([("cache-control", "no-store")], "ok")
}

/// Readiness: the tenant's metadata is loaded, the client credential can be had (a managed
/// identity token, a readable token file), the session store answers and, in proxy mode, the
/// upstream accepts connections. When not, says which
/// dependency is down (the cause is in the logs, not in the answer).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let credential = state.client.check_credential().await;
    if let Err(err) = &credential {
        tracing::warn!(error = %err, "client credential unavailable");
    }
    let down = if !state.client.is_ready().await {
        Some("identity provider metadata not loaded")
    } else if credential.is_err() {
        Some("client credential unavailable")
    } else if !state.store.is_ready().await {
        Some("session store unreachable")
    } else if let Some(proxy) = &state.proxy
        && let Err(reason) = proxy.upstream.reachable().await
    {
        tracing::warn!(error = %reason, "upstream unreachable");
        Some("upstream unreachable")
    } else {
        None
    };
    match down {
        None => (StatusCode::OK, [("cache-control", "no-store")], "ready".to_owned()),
        Some(dependency) => {
            (StatusCode::SERVICE_UNAVAILABLE, [("cache-control", "no-store")], format!("not ready: {dependency}"))
        }
    }
}
