//! The slice of Microsoft Graph a sign-in app needs: `/v1.0/me`, `/v1.0/me/photo/$value` and
//! `/oidc/userinfo`, a user's groups (`/v1.0/me/transitiveMemberOf`, and any user's with an
//! application's own token), each checking the bearer token as Graph does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::directory::DirectoryUser;
use crate::error::GraphError;
use crate::scopes::GRAPH_AUDIENCE;
use crate::state::EmulatorState;
use crate::tokens::{granted_graph_scopes, graph_signed_form, graph_token_issuer};

/// Permissions that allow reading the signed-in user's mail.
const MAIL_PERMISSIONS: [&str; 3] = ["Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic"];
/// Permissions that allow reading the signed-in user's profile.
const PROFILE_PERMISSIONS: [&str; 4] = ["User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All"];
/// Properties `/me` returns by default, in Graph's order.
const ME_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

#[derive(Deserialize)]
struct AccessClaims {
    oid: Uuid,
    /// Delegated permissions (a user's token).
    #[serde(default)]
    scp: String,
    /// Application permissions (an application's own token).
    #[serde(default)]
    roles: Vec<String>,
    /// `app` for an application's own token.
    #[serde(default)]
    idtyp: String,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    uti: String,
    /// Authentication contexts the sign-in satisfied.
    #[serde(default)]
    acrs: Vec<String>,
}

/// [`authorize_token`], for a user's token: the signed-in user (`/me`). An application's own
/// token has no user: Graph answers 400.
async fn authorize(state: &EmulatorState, headers: &HeaderMap) -> Result<(AccessClaims, DirectoryUser), Response> {
    let claims = authorize_token(state, headers).await?;
    if claims.idtyp == "app" {
        let message = "/me request is only valid with delegated authentication flow.";
        return Err(GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message).into_response());
    }
    let user = state.user_by_oid(claims.oid).cloned().ok_or_else(|| {
        GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", "The user does not exist.").into_response()
    })?;
    Ok((claims, user))
}

/// Fault switches first, then the bearer token: what every Graph handler starts with.
async fn authorize_token(state: &EmulatorState, headers: &HeaderMap) -> Result<AccessClaims, Response> {
    state.graph_requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let latency = state.faults.graph_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(failure) = state.faults.take_graph_failure() {
        return Err(injected_failure(failure));
    }
    let claims = verify_bearer(state, headers).map_err(IntoResponse::into_response)?;
    if let Some(revoked_at) = revoked_at(state, &claims) {
        let demanded = json!({ "access_token": { "nbf": { "essential": true, "value": revoked_at.to_string() } } });
        let message = "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp";
        return Err(claims_challenge(state, &demanded, message));
    }
    if let Some(context) = state.faults.required_auth_context()
        && !claims.acrs.contains(&context)
    {
        let demanded = json!({ "access_token": { "acrs": { "essential": true, "value": context } } });
        let message =
            "Conditional Access requires the authentication context of this operation: sign in again with the claims.";
        return Err(claims_challenge(state, &demanded, message));
    }
    Ok(claims)
}

/// When the token's user was revoked, if the token is CAE-capable and issued before that.
fn revoked_at(state: &EmulatorState, claims: &AccessClaims) -> Option<i64> {
    let grants = state.grants();
    grants.revoked_token_ids.contains(&claims.uti).then(|| grants.revoked_at.get(&claims.oid).copied()).flatten()
}

/// Graph's 401 with a claims challenge: what the token lacks (issued after a revocation, an
/// authentication context), for the client to ask Entra for with `claims=`.
fn claims_challenge(state: &EmulatorState, demanded: &Value, message: &str) -> Response {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(demanded.to_string());
    let mut response = GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).into_response();
    let challenge = format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", error=\"insufficient_claims\", claims=\"{encoded}\"",
        state.base()
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn injected_failure(failure: crate::faults::GraphFailure) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        429 => ("TooManyRequests", "Too many requests. Retry after the time given in Retry-After."),
        503 => ("serviceNotAvailable", "The service is temporarily unavailable."),
        401 => (
            "InvalidAuthenticationToken",
            "Continuous access evaluation resulted in challenge with result: InteractionRequired.",
        ),
        403 => ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
        _ => ("generalException", "An unexpected error occurred (injected by the emulator)."),
    };
    let mut response = GraphError::new(status, code, message).into_response();
    if let Some(secs) = failure.retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(claims) = failure.claims_challenge {
        let challenge = format!(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", error=\"insufficient_claims\", claims=\"{claims}\""
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

fn verify_bearer(state: &EmulatorState, headers: &HeaderMap) -> Result<AccessClaims, GraphError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| GraphError::invalid_token("Access token is empty."))?;
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| GraphError::invalid_token("IDX14100: JWT is not well formed."))?;
    if header.alg != Algorithm::RS256 {
        return Err(GraphError::invalid_token("Invalid signature algorithm."));
    }
    let keys = state.keys();
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.find(kid))
        .ok_or_else(|| GraphError::invalid_token("Signing key not found."))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[GRAPH_AUDIENCE]);
    let issuers: Vec<String> = state.tenants.iter().map(|tenant| graph_token_issuer(*tenant)).collect();
    validation.set_issuer(&issuers);
    // Expiry is checked against the emulator's clock below, which tests can advance.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    let signed =
        graph_signed_form(token).ok_or_else(|| GraphError::invalid_token("IDX14100: JWT is not well formed."))?;
    let claims = jsonwebtoken::decode::<AccessClaims>(&signed, &key.decoding, &validation)
        .map_err(|_| GraphError::invalid_token("Access token validation failure. Invalid audience or signature."))?
        .claims;
    if !state.access_token_is_live(&claims.uti) {
        return Err(GraphError::invalid_token("Lifetime validation failed, the token is expired."));
    }
    Ok(claims)
}

/// [`authorize`], then one of `permissions` must be granted (else Graph's 403).
async fn authorize_for(
    state: &EmulatorState,
    headers: &HeaderMap,
    permissions: &[&str],
) -> Result<(AccessClaims, DirectoryUser), Response> {
    let (claims, user) = authorize(state, headers).await?;
    let granted = granted_graph_scopes(&claims.scp);
    if !granted.iter().any(|s| permissions.iter().any(|p| p.eq_ignore_ascii_case(s))) {
        return Err(insufficient_privileges());
    }
    Ok((claims, user))
}

fn insufficient_privileges() -> Response {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
    .into_response()
}

fn user_resource(user: &DirectoryUser) -> Map<String, Value> {
    let profile = &user.user;
    let mut resource = Map::new();
    resource.insert("businessPhones".into(), json!([]));
    resource.insert("displayName".into(), json!(profile.display_name));
    resource.insert("givenName".into(), json!(profile.given_name));
    resource.insert("jobTitle".into(), json!(profile.job_title));
    resource.insert("mail".into(), json!(profile.mail));
    resource.insert("mobilePhone".into(), Value::Null);
    resource.insert("officeLocation".into(), Value::Null);
    resource.insert("preferredLanguage".into(), Value::Null);
    resource.insert("surname".into(), json!(profile.surname));
    resource.insert("userPrincipalName".into(), json!(profile.user_principal_name));
    resource.insert("id".into(), json!(user.oid));
    resource
}

/// The `user` properties outside the default set that `$select` may ask for (Graph's v1.0
/// `user` resource), with what the emulated directory knows of them.
fn selectable_property(user: &DirectoryUser, name: &str) -> Option<(&'static str, Value)> {
    let profile = &user.user;
    let nickname = profile.user_principal_name.split('@').next().unwrap_or_default();
    let value = match name.to_ascii_lowercase().as_str() {
        "accountenabled" => ("accountEnabled", json!(true)),
        "usertype" => ("userType", json!("Member")),
        "mailnickname" => ("mailNickname", json!(nickname)),
        "othermails" => ("otherMails", json!([])),
        "proxyaddresses" => {
            ("proxyAddresses", json!(profile.mail.iter().map(|mail| format!("SMTP:{mail}")).collect::<Vec<_>>()))
        }
        "department" => ("department", Value::Null),
        "companyname" => ("companyName", Value::Null),
        "employeeid" => ("employeeId", Value::Null),
        "city" => ("city", Value::Null),
        "country" => ("country", Value::Null),
        "usagelocation" => ("usageLocation", Value::Null),
        "onpremisessyncenabled" => ("onPremisesSyncEnabled", Value::Null),
        "onpremisessamaccountname" => ("onPremisesSamAccountName", Value::Null),
        "createddatetime" => ("createdDateTime", json!("2024-01-01T00:00:00Z")),
        _ => return None,
    };
    Some(value)
}

pub(crate) async fn me(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, user) = match authorize_for(&state, &headers, &PROFILE_PERMISSIONS).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let resource = user_resource(&user);
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!("https://graph.microsoft.com/v1.0/$metadata#users/$entity"));
    match query.get("$select") {
        None => body.extend(resource),
        Some(select) => {
            body.insert(
                "@odata.context".into(),
                json!(format!("https://graph.microsoft.com/v1.0/$metadata#users({select})/$entity")),
            );
            for property in select.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if let Some(name) = ME_PROPERTIES.iter().find(|known| known.eq_ignore_ascii_case(property)) {
                    body.insert((*name).to_owned(), resource[*name].clone());
                } else if let Some((name, value)) = selectable_property(&user, property) {
                    body.insert(name.to_owned(), value);
                } else {
                    return GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("Could not find a property named '{property}' on type 'microsoft.graph.user'."),
                    )
                    .into_response();
                }
            }
        }
    }
    Json(Value::Object(body)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    #[serde(rename = "$top")]
    top: Option<usize>,
    #[serde(rename = "$skiptoken")]
    skip_token: Option<String>,
}

/// `GET /v1.0/me/transitiveMemberOf`: the user's groups and directory roles, paged like Graph
/// (`@odata.nextLink` with a `$skiptoken` until the last page; `$top` up to 999).
pub(crate) async fn transitive_member_of(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let (_, user) = match authorize_for(&state, &headers, &PROFILE_PERMISSIONS).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    member_of_page(&state, &user, &query, "me")
}

/// Permissions that allow reading any user's group memberships.
const MEMBERSHIP_PERMISSIONS: [&str; 3] = ["GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"];

/// `GET /v1.0/users/{id}/transitiveMemberOf`: a user's groups and directory roles, by object id or
/// sign-in name, for a token with a membership permission: an application's own (`roles`, as a
/// web API resolving a caller's groups overage does) or a user's (`scp`).
pub(crate) async fn user_transitive_member_of(
    State(state): State<Arc<EmulatorState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let claims = match authorize_token(&state, &headers).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let granted = match claims.idtyp.as_str() {
        "app" => claims.roles.clone(),
        _ => granted_graph_scopes(&claims.scp),
    };
    if !granted.iter().any(|held| MEMBERSHIP_PERMISSIONS.iter().any(|p| p.eq_ignore_ascii_case(held))) {
        return insufficient_privileges();
    }
    let user = match id.parse::<Uuid>() {
        Ok(oid) => state.user_by_oid(oid).cloned(),
        Err(_) => state.user_by_upn(&id).cloned(),
    };
    let Some(user) = user else {
        let message =
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present.");
        return GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &message).into_response();
    };
    member_of_page(&state, &user, &query, &format!("users/{id}"))
}

/// One page of `user`'s groups and directory roles, the next page's link under `/v1.0/{owner}`.
fn member_of_page(state: &EmulatorState, user: &DirectoryUser, query: &PageQuery, owner: &str) -> Response {
    let mut objects: Vec<Value> = state
        .memberships()
        .groups_of(user.oid)
        .into_iter()
        .map(|group| {
            json!({
                "@odata.type": "#microsoft.graph.group",
                "id": group.id,
                "displayName": group.display_name,
                "securityEnabled": group.security_enabled,
            })
        })
        .collect();
    objects.extend(
        user.user
            .directory_roles
            .iter()
            .map(|role| json!({ "@odata.type": "#microsoft.graph.directoryRole", "id": role, "roleTemplateId": role })),
    );
    let page_size = query.top.unwrap_or(state.graph_page_size).clamp(1, 999);
    let start = match query.skip_token.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(start)) if start <= objects.len() => start,
        Some(_) => {
            return GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", "Invalid $skiptoken.")
                .into_response();
        }
    };
    let end = (start + page_size).min(objects.len());
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
        "value": objects[start..end],
    });
    if end < objects.len() {
        body["@odata.nextLink"] =
            json!(format!("{}/graph/v1.0/{owner}/transitiveMemberOf?$top={page_size}&$skiptoken={end}", state.base()));
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
pub(crate) struct MessagesQuery {
    #[serde(rename = "$top")]
    top: Option<usize>,
}

/// `GET /v1.0/me/messages`: the user's sample messages, newest first (`Mail.Read`).
pub(crate) async fn messages(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    Query(query): Query<MessagesQuery>,
) -> Response {
    let (_, user) = match authorize_for(&state, &headers, &MAIL_PERMISSIONS).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let subjects = [
        "Quarterly numbers are in",
        "Lunch on Friday?",
        "Your expense report was approved",
        "Design review moved to 3 pm",
        "Welcome to the team",
        "Security reminder: report phishing",
        "Offsite agenda",
    ];
    let top = query.top.unwrap_or(10).clamp(1, 1000);
    let value: Vec<Value> = subjects
        .iter()
        .enumerate()
        .take(top)
        .map(|(index, subject)| {
            json!({
                "id": format!("{}-{index}", user.oid),
                "subject": subject,
                "receivedDateTime": format!("2026-11-{:02}T09:00:00Z", 28 - index),
                "from": { "emailAddress": { "name": "Megan Bowen", "address": "megan@emulator.test" } },
            })
        })
        .collect();
    Json(json!({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/messages", "value": value }))
        .into_response()
}

pub(crate) async fn photo(State(state): State<Arc<EmulatorState>>, headers: HeaderMap) -> Response {
    let (claims, user) = match authorize(&state, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if granted_graph_scopes(&claims.scp).is_empty() {
        return insufficient_privileges();
    }
    match user.photo {
        Some(bytes) => {
            let content_type = if bytes.starts_with(b"\x89PNG") { "image/png" } else { "image/jpeg" };
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => GraphError::new(
            StatusCode::NOT_FOUND,
            "ImageNotFound",
            "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.",
        )
        .into_response(),
    }
}

pub(crate) async fn userinfo(State(state): State<Arc<EmulatorState>>, headers: HeaderMap) -> Response {
    let (claims, user) = match authorize(&state, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !claims.scp.split_whitespace().any(|s| s == "openid") {
        return GraphError::invalid_token("The token does not grant the openid scope.").into_response();
    }
    let profile = &user.user;
    let mut body = json!({
        "sub": crate::tokens::pairwise_subject(user.oid, &claims.appid),
        "name": profile.display_name,
        "family_name": profile.surname,
        "given_name": profile.given_name,
        "picture": "https://graph.microsoft.com/v1.0/me/photo/$value",
    });
    if let Some(mail) = &profile.mail {
        body["email"] = json!(mail);
    }
    Json(body).into_response()
}

/// Any other Graph path: Graph's own error body, as v1.0 answers an unknown segment.
pub(crate) async fn unknown(axum::extract::Path(rest): axum::extract::Path<String>) -> Response {
    let segment = rest.trim_start_matches("v1.0/").split('/').next().unwrap_or_default().to_owned();
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", format!("Resource not found for the segment '{segment}'."))
        .into_response()
}
