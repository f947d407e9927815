//! Admin routes under `/_emulator/` (off Entra's paths): fault switches, key rotation, refresh-token
//! revocation and the clock, for tests written in any language. Loopback callers only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::Group;
use crate::faults::{BadIdToken, GraphFailure, TokenFailure};
use crate::state::EmulatorState;

pub(crate) fn router() -> Router<Arc<EmulatorState>> {
    Router::new()
        .route("/", get(summary))
        .route("/faults/token", post(fail_tokens))
        .route("/faults/latency", post(latency))
        .route("/faults/graph", post(fail_graph))
        .route("/faults/id-token", post(bad_id_token))
        .route("/faults/jwks", post(fail_jwks))
        .route("/faults/auth-context", post(require_auth_context))
        .route("/faults/clear", post(clear))
        .route("/keys/rotate", post(rotate_key))
        .route("/users/{upn}/revoke", post(revoke))
        .route("/users/{upn}/groups", put(set_groups))
        .route("/users/{upn}/app-roles", put(set_app_roles))
        .route("/groups", post(put_group))
        .route("/clock/advance", post(advance_clock))
        .layer(middleware::from_fn(loopback_only))
}

/// The admin surface changes how every client is treated: refuse anyone not on this machine.
async fn loopback_only(request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    match peer {
        Some(ip) if ip.is_loopback() => next.run(request).await,
        _ => (StatusCode::FORBIDDEN, "the emulator's admin routes answer loopback callers only").into_response(),
    }
}

async fn summary(State(state): State<Arc<EmulatorState>>) -> Response {
    Json(json!({
        "tenant_id": state.tenant_id,
        "authority": format!("{}/{}", state.base(), state.tenant_id),
        "graph_endpoint": format!("{}/graph", state.base()),
        "clients": state.clients().iter().map(|c| &c.client_id).cloned().collect::<Vec<_>>(),
        "users": state.users.iter().map(|u| u.user.user_principal_name.clone()).collect::<Vec<_>>(),
        "tenants": state.tenants,
        "groups": state.memberships().groups(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct TokenFault {
    count: u32,
    #[serde(flatten)]
    failure: TokenFailure,
}

async fn fail_tokens(State(state): State<Arc<EmulatorState>>, Json(fault): Json<TokenFault>) -> StatusCode {
    state.faults.fail_token_requests(fault.count, fault.failure);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Latency {
    #[serde(default)]
    token_ms: u64,
    #[serde(default)]
    graph_ms: u64,
}

async fn latency(State(state): State<Arc<EmulatorState>>, Json(latency): Json<Latency>) -> StatusCode {
    state.faults.set_token_latency(Duration::from_millis(latency.token_ms));
    state.faults.set_graph_latency(Duration::from_millis(latency.graph_ms));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct GraphFault {
    count: u32,
    #[serde(flatten)]
    failure: GraphFailure,
}

async fn fail_graph(State(state): State<Arc<EmulatorState>>, Json(fault): Json<GraphFault>) -> StatusCode {
    state.faults.fail_graph_requests(fault.count, fault.failure);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct JwksFault {
    count: u32,
}

async fn fail_jwks(State(state): State<Arc<EmulatorState>>, Json(fault): Json<JwksFault>) -> StatusCode {
    state.faults.fail_jwks_requests(fault.count);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct AuthContextFault {
    id: String,
}

async fn require_auth_context(
    State(state): State<Arc<EmulatorState>>,
    Json(fault): Json<AuthContextFault>,
) -> StatusCode {
    state.faults.require_auth_context(&fault.id);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct IdTokenFault {
    kind: BadIdToken,
}

async fn bad_id_token(State(state): State<Arc<EmulatorState>>, Json(fault): Json<IdTokenFault>) -> StatusCode {
    state.faults.issue_bad_id_token(fault.kind);
    StatusCode::NO_CONTENT
}

async fn clear(State(state): State<Arc<EmulatorState>>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn rotate_key(State(state): State<Arc<EmulatorState>>) -> Response {
    match state.rotate_signing_key() {
        Ok(kid) => Json(json!({ "kid": kid })).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn revoke(State(state): State<Arc<EmulatorState>>, Path(upn): Path<String>) -> Response {
    match state.revoke_refresh_tokens(&upn) {
        Some(count) => Json(json!({ "revoked": count })).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no user {upn}")).into_response(),
    }
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(state): State<Arc<EmulatorState>>, Json(advance): Json<Advance>) -> StatusCode {
    state.clock.advance(advance.seconds);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct GroupIds {
    groups: Vec<uuid::Uuid>,
}

/// `PUT /users/{upn}/groups`: the user's group memberships from now on (tokens issued later, and
/// Graph's answers at once, reflect them).
async fn set_groups(
    State(state): State<Arc<EmulatorState>>,
    Path(upn): Path<String>,
    Json(body): Json<GroupIds>,
) -> Response {
    let Some(oid) = state.user_by_upn(&upn).map(|user| user.oid) else {
        return (StatusCode::NOT_FOUND, format!("no user {upn}")).into_response();
    };
    match state.memberships_mut().set_groups(oid, &body.groups) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct AppRoles {
    roles: Vec<String>,
}

/// `PUT /users/{upn}/app-roles`: the app role values assigned to the user from now on.
async fn set_app_roles(
    State(state): State<Arc<EmulatorState>>,
    Path(upn): Path<String>,
    Json(body): Json<AppRoles>,
) -> Response {
    let Some(oid) = state.user_by_upn(&upn).map(|user| user.oid) else {
        return (StatusCode::NOT_FOUND, format!("no user {upn}")).into_response();
    };
    state.memberships_mut().set_app_roles(oid, body.roles);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /groups`: adds a group (or renames the one with that id).
async fn put_group(State(state): State<Arc<EmulatorState>>, Json(group): Json<Group>) -> Response {
    state.memberships_mut().put_group(group.clone());
    (StatusCode::CREATED, Json(group)).into_response()
}
