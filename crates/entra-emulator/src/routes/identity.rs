//! An App Service-style managed identity endpoint (`IDENTITY_ENDPOINT`): `GET` with `resource`,
//! `api-version=2019-08-01`, `client_id` of a user-assigned identity, and the `X-IDENTITY-HEADER`
//! secret; it answers a token for that identity signed by the tenant's key, as Entra issues them
//! (`iss` the tenant's v2.0 issuer, `sub` the identity's object id, `aud` the resource).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::EmulatorState;

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "statusCode": status.as_u16(), "message": message }))).into_response()
}

pub(crate) async fn token(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let presented = headers.get("x-identity-header").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), state.identity_header.as_bytes())) {
        return refuse(StatusCode::UNAUTHORIZED, "X-IDENTITY-HEADER is missing or wrong.");
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return refuse(StatusCode::BAD_REQUEST, "api-version must be 2019-08-01.");
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "resource is required.");
    };
    let identity = match query.get("client_id") {
        Some(client_id) => state.managed_identities.iter().find(|mi| &mi.client_id == client_id),
        None if state.managed_identities.len() == 1 => state.managed_identities.first(),
        None => None,
    };
    let Some(identity) = identity else {
        return refuse(StatusCode::BAD_REQUEST, "No managed identity with this client_id is assigned to the app.");
    };
    let now = state.clock.wall();
    let expires_on = now + state.managed_identity_token_lifetime;
    let claims = json!({
        "aud": resource,
        "iss": state.issuer(),
        "sub": identity.object_id,
        "oid": identity.object_id,
        "azp": identity.client_id,
        "tid": state.tenant_id.to_string(),
        "iat": now,
        "nbf": now,
        "exp": expires_on,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let token = match crate::tokens::sign(&state, &claims) {
        Ok(token) => token,
        Err(err) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot sign: {err}")),
    };
    state.identity_tokens_issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    state.record_issued(token.clone());
    Json(json!({
        "access_token": token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }))
    .into_response()
}
