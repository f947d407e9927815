//! An API of the organisation's own, as an app registration exposes it (`api://<app id>`): it
//! accepts only tokens issued for its own audience, so clients are tested against a resource
//! that is not Graph. `GET /api/{app id}/me` answers who called and with which permissions (a
//! user's delegated `scp`, or an application's own `roles`);
//! `POST /api/{app id}/echo` sends a JSON body back.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::state::EmulatorState;

#[derive(Deserialize)]
struct ApiClaims {
    oid: Uuid,
    tid: Uuid,
    #[serde(default)]
    name: String,
    /// Delegated permissions (a user signed in to the caller).
    #[serde(default)]
    scp: String,
    /// Application permissions (an application calling for itself).
    #[serde(default)]
    roles: Vec<String>,
    /// `app` for an application's own token.
    #[serde(default)]
    idtyp: String,
    #[serde(default)]
    uti: String,
}

fn unauthorized(message: &str) -> Response {
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{message}\"");
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], Json(json!({ "error": message })))
        .into_response()
}

/// `POST /api/{app}/echo`: the JSON body back, with who sent it.
pub(crate) async fn echo(
    State(state): State<Arc<EmulatorState>>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let caller = match caller(&state, &app, &headers) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "the body is not JSON" }))).into_response();
    };
    Json(json!({ "from": caller.name, "received": body })).into_response()
}

pub(crate) async fn me(
    State(state): State<Arc<EmulatorState>>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    let claims = match caller(&state, &app, &headers) {
        Ok(claims) => claims,
        Err(response) => return *response,
    };
    let audience = format!("api://{app}");
    if claims.idtyp == "app" {
        return Json(json!({ "oid": claims.oid, "tid": claims.tid, "aud": audience, "roles": claims.roles }))
            .into_response();
    }
    Json(json!({ "name": claims.name, "oid": claims.oid, "tid": claims.tid, "aud": audience, "scp": claims.scp }))
        .into_response()
}

/// The verified caller of the API `app` exposes, or the answer that refuses them.
fn caller(state: &EmulatorState, app: &str, headers: &HeaderMap) -> Result<ApiClaims, Box<Response>> {
    if state.client(app).is_none() {
        return Err(Box::new((StatusCode::NOT_FOUND, Json(json!({ "error": "no such API" }))).into_response()));
    }
    let audience = format!("api://{app}");
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return Err(Box::new(unauthorized("no bearer token")));
    };
    let Some(key) = jsonwebtoken::decode_header(token).ok().and_then(|header| header.kid).and_then(|kid| {
        let keys = state.keys();
        keys.find(&kid).map(|key| key.decoding.clone())
    }) else {
        return Err(Box::new(unauthorized("unknown signing key")));
    };
    let mut validation = Validation::new(Algorithm::RS256);
    // v1.0 tokens name the API by its Application ID URI, v2.0 ones by its client id.
    validation.set_audience(&[audience.as_str(), app]);
    validation.set_issuer(&crate::tokens::api_token_issuers(state));
    validation.validate_exp = false;
    let claims = match jsonwebtoken::decode::<ApiClaims>(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return Err(Box::new(unauthorized("the token is not for this API"))),
    };
    if !state.access_token_is_live(&claims.uti) {
        return Err(Box::new(unauthorized("the token has expired")));
    }
    // A user's token needs the API's delegated permission; an application's own, an application
    // permission (any app role granted to it).
    let (allowed, required) = match claims.idtyp.as_str() {
        "app" => (!claims.roles.is_empty(), "an application permission is required"),
        _ => (claims.scp.split_whitespace().any(|scope| scope == "access_as_user"), "access_as_user is required"),
    };
    if !allowed {
        return Err(Box::new((StatusCode::FORBIDDEN, Json(json!({ "error": required }))).into_response()));
    }
    Ok(claims)
}
