//! OpenID discovery and the JWKS, in Entra's v2.0 layout.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::OAuthError;
use crate::state::EmulatorState;

/// Entra serves both documents with a one-day cache lifetime.
const CACHE_ONE_DAY: (&str, &str) = ("cache-control", "max-age=86400, private");

/// `/{tenant}/v2.0/.well-known/openid-configuration`. For `common` and `organizations` the issuer
/// is the literal `{tenantid}` template, exactly as Entra publishes it.
pub(crate) async fn openid_configuration(
    State(state): State<Arc<EmulatorState>>,
    Path(tenant): Path<String>,
) -> Response {
    let consumers = crate::state::is_consumers(&tenant);
    if !state.accepts_tenant(&tenant) && !consumers {
        return unknown_tenant(&tenant).into_response();
    }
    let (segment, issuer) = match state.tenant_of_segment(&tenant) {
        Some(tenant_id) => (tenant_id.to_string(), state.issuer_for(tenant_id)),
        None if consumers => ("consumers".to_owned(), consumers_issuer(&state)),
        None => (tenant.to_lowercase(), format!("{}/{{tenantid}}/v2.0", state.base())),
    };
    let base = state.base();
    let document = json!({
        "token_endpoint": format!("{base}/{segment}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{segment}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/graph/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{segment}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/{segment}/kerberos"),
        // Entra: a region for a tenant, null for common and organizations.
        "tenant_region_scope": if state.tenant_of_segment(&tenant).is_some() { json!("EU") } else { Value::Null },
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    ([CACHE_ONE_DAY], Json(document)).into_response()
}

/// `/{tenant}/discovery/v2.0/keys`: the RS256 keys, each with its `kid`.
pub(crate) async fn keys(State(state): State<Arc<EmulatorState>>, Path(tenant): Path<String>) -> Response {
    let consumers = crate::state::is_consumers(&tenant);
    if !state.accepts_tenant(&tenant) && !consumers {
        return unknown_tenant(&tenant).into_response();
    }
    if state.faults.take_jwks_failure() {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "keys unavailable (injected by the emulator)")
            .into_response();
    }
    let issuer = match state.tenant_of_segment(&tenant) {
        Some(tenant_id) => state.issuer_for(tenant_id),
        None if consumers => consumers_issuer(&state),
        None => format!("{}/{{tenantid}}/v2.0", state.base()),
    };
    let jwks = state.keys().jwks(&issuer);
    ([CACHE_ONE_DAY], Json(jwks)).into_response()
}

/// `/consumers` speaks for the personal accounts' tenant.
fn consumers_issuer(state: &EmulatorState) -> String {
    format!("{}/{}/v2.0", state.base(), crate::state::CONSUMERS_TENANT_ID)
}

pub(crate) fn unknown_tenant(tenant: &str) -> OAuthError {
    OAuthError::invalid_request(
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}
