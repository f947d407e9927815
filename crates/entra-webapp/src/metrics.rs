//! `/metrics` in Prometheus text format: sign-ins started/completed/failed by reason, token
//! refreshes, Graph calls and their latency, sessions held in memory. Counts only, no identities,
//! and still not for anyone who asks (how many people use the site, which attacks fail how):
//! served only with `METRICS_TOKEN`, to scrapers that send it as a bearer token.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::bearer_header::bearer_token;
use crate::sessions::AppSessionStore;
use crate::state::AppState;

const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (several apps in one test process share it).
pub fn install() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".to_owned()), &LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`, for a scraper sending `Authorization: Bearer {token}`; anything else gets a 401.
pub fn route(token: &SecretString) -> MethodRouter<AppState> {
    // Digests compared in constant time: neither the token's length nor where a guess goes wrong
    // shows in the time taken.
    let expected: [u8; 32] = Sha256::digest(token.expose_secret().as_bytes()).into();
    get(move |State(state): State<AppState>, headers: HeaderMap| async move {
        let presented = bearer_token(&headers).map(|token| Sha256::digest(token.as_bytes()));
        match presented {
            Some(digest) if bool::from(digest.as_slice().ct_eq(&expected)) => render(&state),
            _ => unauthorized(),
        }
    })
}

fn render(state: &AppState) -> Response {
    if let AppSessionStore::Memory(store) = &state.store {
        metrics::gauge!("entra_webapp_sessions_active").set(store.len() as f64);
    }
    let body = install().map(|handle| handle.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, r#"Bearer realm="metrics""#)],
        "/metrics needs METRICS_TOKEN as a bearer token: Authorization: Bearer <METRICS_TOKEN>\n",
    )
        .into_response()
}
