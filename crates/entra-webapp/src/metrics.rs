//! `/metrics` in Prometheus text format: sign-ins started/completed/failed by reason, token
//! refreshes, Graph calls and their latency, sessions held in memory. Counts only, no identities.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

/// `GET /metrics`.
pub async fn endpoint(State(state): State<AppState>) -> impl IntoResponse {
    if let AppSessionStore::Memory(store) = &state.store {
        metrics::gauge!("entra_webapp_sessions_active").set(store.len() as f64);
    }
    let body = install().map(|handle| handle.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
