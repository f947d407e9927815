//! `/{tenant}/oauth2/v2.0/token`: the authorization-code and refresh-token grants.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::claims_request;
use crate::config::{ClientRegistration, Platform};
use crate::error::OAuthError;
use crate::routes::client_auth;
use crate::scopes::{self, Resource};
use crate::state::{EmulatorState, RefreshGrant, RefreshStatus, SignIn};
use crate::tokens::{self, Issue};

pub(crate) async fn token(
    State(state): State<Arc<EmulatorState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.token_requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let latency = state.faults.token_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match handle(&state, &tenant, &headers, &body) {
        Ok(json) => ([("cache-control", "no-store"), ("pragma", "no-cache")], Json(json)).into_response(),
        Err(error) => error.into_response(),
    }
}

fn handle(
    state: &EmulatorState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, OAuthError> {
    if crate::state::is_consumers(tenant) {
        return Err(OAuthError::not_enabled_for_consumers());
    }
    if !state.accepts_tenant(tenant) {
        return Err(super::discovery::unknown_tenant(tenant));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if let Some(failure) = state.faults.take_token_failure() {
        return Err(OAuthError::new(&failure.error, failure.code, failure.message));
    }
    let grant_type = form.get("grant_type").map(String::as_str);
    let platform = platform_of_grant(state, grant_type, &form);
    check_origin(headers, platform)?;
    let client = client_auth::authenticate(state, tenant, headers, &form, platform)?;
    let client_info = form.get("client_info").is_some_and(|v| v == "1");
    match grant_type {
        Some("authorization_code") => redeem_code(state, tenant, &client, &form, client_info),
        Some("refresh_token") => redeem_refresh_token(state, &client, &form, client_info),
        Some("client_credentials") => client_credentials(state, tenant, &client, &form),
        Some(JWT_BEARER_GRANT) => on_behalf_of(state, &client, &form, client_info),
        Some(other) => Err(OAuthError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
        None => Err(OAuthError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )),
    }
}

/// The platform of the sign-in a grant continues (`None` when the code or refresh token is
/// unknown: the grant then fails on its own).
fn platform_of_grant(
    state: &EmulatorState,
    grant_type: Option<&str>,
    form: &HashMap<String, String>,
) -> Option<Platform> {
    let grants = state.grants();
    match grant_type {
        Some("authorization_code") => Some(grants.codes.get(form.get("code")?)?.request.platform),
        Some("refresh_token") => Some(grants.refresh_tokens.get(form.get("refresh_token")?)?.platform),
        _ => None,
    }
}

/// A SPA's grants are redeemed from the browser, cross-origin (the request has an `Origin`);
/// any other platform's never are.
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#redirect-uris-for-single-page-apps-spas>
fn check_origin(headers: &HeaderMap, platform: Option<Platform>) -> Result<(), OAuthError> {
    let origin = headers.get(header::ORIGIN).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    match (platform, origin) {
        (Some(Platform::Spa), None) => Err(OAuthError::invalid_request(
            9002327,
            "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
        )),
        (Some(Platform::Web | Platform::PublicClient), Some(origin)) => Err(OAuthError::invalid_request(
            9002326,
            format!(
                "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '{origin}'."
            ),
        )),
        _ => Ok(()),
    }
}

fn redeem_code(
    state: &EmulatorState,
    tenant: &str,
    client: &ClientRegistration,
    form: &HashMap<String, String>,
    client_info: bool,
) -> Result<serde_json::Value, OAuthError> {
    let code = form.get("code").ok_or_else(|| {
        OAuthError::invalid_request(900144, "The request body must contain the following parameter: 'code'.")
    })?;
    let grant = {
        let mut grants = state.grants();
        let grant = grants.codes.get_mut(code).ok_or_else(|| {
            OAuthError::invalid_grant(70000, "The provided value for the 'code' parameter is not valid.")
        })?;
        if grant.redeemed {
            return Err(OAuthError::invalid_grant(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if state.clock.now() - grant.issued_at > state.code_lifetime {
            return Err(OAuthError::invalid_grant(
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            ));
        }
        if grant.request.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(70000, "The code was issued to a different client."));
        }
        if grant.request.authority != state.authority_of(tenant) {
            return Err(OAuthError::invalid_grant(
                700005,
                "Provided Authorization Code is intended to use against other tenant, thus rejected.",
            ));
        }
        let redirect_uri = form.get("redirect_uri").map(String::as_str).unwrap_or_default();
        if redirect_uri != grant.request.redirect_uri {
            return Err(OAuthError::invalid_grant(
                500112,
                format!(
                    "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
                    grant.request.redirect_uri
                ),
            ));
        }
        if grant.request.platform == Platform::Spa && grant.request.code_challenge.is_none() {
            return Err(OAuthError::invalid_request(
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
            ));
        }
        if let Some(challenge) = &grant.request.code_challenge {
            let verifier = form.get("code_verifier").map(String::as_str).unwrap_or_default();
            let computed = match grant.request.code_challenge_plain {
                true => verifier.to_owned(),
                false => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            };
            if verifier.is_empty() || computed != *challenge {
                return Err(OAuthError::invalid_grant(
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
        }
        grant.redeemed = true;
        grant.clone()
    };
    let request = &grant.request;
    let cae = claims_request::declares_cp1(form.get("claims").map(String::as_str))
        || claims_request::declares_cp1(request.claims.as_deref());
    // A SPA's refresh tokens last 24 hours from this sign-in, renewals included.
    let refresh_expires_at =
        (request.platform == Platform::Spa).then(|| state.clock.now() + SPA_REFRESH_TOKEN_LIFETIME_SECS);
    // A sign-in made with a claims challenge for authentication contexts satisfied them.
    let auth_contexts = claims_request::required_auth_contexts(request.claims.as_deref());
    let continues = Continues { platform: request.platform, refresh_expires_at, auth_contexts };
    let options = IssueOptions { nonce: request.nonce.as_deref(), client_info, cae, continues };
    issue_for(state, &client.client_id, &request.scopes, &grant.sign_in, options)
}

/// The on-behalf-of grant's `grant_type`.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The claims of an on-behalf-of `assertion` the emulator reads: the user it acts for.
#[derive(serde::Deserialize)]
struct Assertion {
    oid: uuid::Uuid,
    #[serde(default)]
    sid: String,
    #[serde(default)]
    scp: String,
    #[serde(default)]
    uti: String,
}

/// On behalf of a user (a web API calling another API as the user who called it): `assertion`
/// is the access token the API received, issued here, live, for this client's API
/// (`api://<client id>` or its client id) and a user's (delegated); the answer is a token for
/// `scope` (one resource) as that user, if the user or an admin consented to this client having
/// those scopes (AADSTS65001 otherwise), with a refresh token when `offline_access` is asked.
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-on-behalf-of-flow>
fn on_behalf_of(
    state: &EmulatorState,
    client: &ClientRegistration,
    form: &HashMap<String, String>,
    client_info: bool,
) -> Result<serde_json::Value, OAuthError> {
    if form.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
        return Err(OAuthError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'requested_token_use' with the value 'on_behalf_of'.",
        ));
    }
    let assertion = form.get("assertion").ok_or_else(|| {
        OAuthError::invalid_request(900144, "The request body must contain the following parameter: 'assertion'.")
    })?;
    let invalid =
        |message: &str| OAuthError::invalid_grant(50013, format!("Assertion failed signature validation. {message}"));
    let kid = jsonwebtoken::decode_header(assertion)
        .ok()
        .and_then(|header| header.kid)
        .ok_or_else(|| invalid("[Reason - The key was not found.]"))?;
    let key = state
        .keys()
        .find(&kid)
        .map(|key| key.decoding.clone())
        .ok_or_else(|| invalid("[Reason - The key was not found.]"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    let api = format!("api://{}", client.client_id);
    validation.set_audience(&[api.as_str(), client.client_id.as_str()]);
    validation.set_issuer(&crate::tokens::api_token_issuers(state));
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Assertion>(assertion, &key, &validation)
        .map_err(|_| invalid("[Reason - The assertion is not a token for this application.]"))?
        .claims;
    if !state.access_token_is_live(&claims.uti) {
        return Err(OAuthError::invalid_grant(500133, "Assertion is not within its valid time range."));
    }
    if claims.scp.trim().is_empty() {
        return Err(invalid("[Reason - An application's own token cannot act on behalf of a user.]"));
    }
    let requested = scopes::parse(form.get("scope").map(String::as_str).unwrap_or_default())?;
    scopes::resource_of(&requested)?;
    state.check_permissions_exist(&client.client_id, &requested)?;
    if !state.has_consent(claims.oid, &client.client_id, &requested) {
        return Err(OAuthError::new(
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application with the requested scopes. Send an interactive authorization request for this user and resource.",
        )
        .with_suberror("consent_required"));
    }
    let sign_in = SignIn { user_oid: claims.oid, sid: claims.sid, auth_time: state.clock.now() };
    let continues = Continues { platform: Platform::Web, refresh_expires_at: None, auth_contexts: Vec::new() };
    let options = IssueOptions { nonce: None, client_info, cae: false, continues };
    issue_for(state, &client.client_id, &requested, &sign_in, options)
}

/// An application's own token (client credentials): at a tenant's authority (not `common` or
/// `organizations`), for one resource's `/.default`, the client authenticated by a secret or an
/// assertion (a public client has neither: `authenticate` refused it already).
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>
fn client_credentials(
    state: &EmulatorState,
    tenant: &str,
    client: &ClientRegistration,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let Some(tenant) = state.tenant_of_segment(tenant) else {
        return Err(OAuthError::invalid_request(
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        ));
    };
    let resource = scopes::default_scope_resource(form.get("scope").map(String::as_str).unwrap_or_default())?;
    if let Resource::Api(uri) = &resource
        && state.client(uri.trim_start_matches("api://")).is_none()
    {
        return Err(OAuthError::new(
            "invalid_resource",
            500011,
            format!("The resource principal named {uri} was not found in the tenant."),
        ));
    }
    let proof = match form.contains_key("client_assertion") {
        true => tokens::ClientProof::Assertion,
        false => tokens::ClientProof::Secret,
    };
    let issued = tokens::issue_app_only(state, client, &resource, tenant, proof)
        .map_err(|err| OAuthError::new("temporarily_unavailable", 90033, format!("Token signing failed: {err}")))?;
    Ok(issued.to_json())
}

fn redeem_refresh_token(
    state: &EmulatorState,
    client: &ClientRegistration,
    form: &HashMap<String, String>,
    client_info: bool,
) -> Result<serde_json::Value, OAuthError> {
    let token = form.get("refresh_token").ok_or_else(|| {
        OAuthError::invalid_request(900144, "The request body must contain the following parameter: 'refresh_token'.")
    })?;
    let grant = {
        let mut grants = state.grants();
        let grant = grants.refresh_tokens.get_mut(token).ok_or_else(|| {
            OAuthError::invalid_grant(9002313, "Invalid request. The refresh token is malformed or not valid.")
        })?;
        if grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(70000, "The refresh token was issued to a different client."));
        }
        if let Some(expires_at) = grant.expires_at
            && state.clock.now() >= expires_at
        {
            return Err(OAuthError::invalid_grant(
                700084,
                format!(
                    "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on {}.",
                    expires_at - SPA_REFRESH_TOKEN_LIFETIME_SECS
                ),
            ));
        }
        if state.clock.now() - grant.issued_at > crate::state::REFRESH_TOKEN_LIFETIME_SECS {
            return Err(OAuthError::invalid_grant(
                700082,
                "The refresh token has expired due to inactivity. The token was issued more than 90 days ago and was not used since.",
            )
            .with_suberror("bad_token"));
        }
        match grant.status {
            RefreshStatus::Active => {}
            RefreshStatus::Rotated if !state.strict_refresh_token_rotation => {}
            RefreshStatus::Rotated => {
                return Err(OAuthError::invalid_grant(
                    70000,
                    "The refresh token was already redeemed. Every use returns a new refresh token: store it and discard the old one.",
                ));
            }
            RefreshStatus::Revoked => {
                return Err(OAuthError::invalid_grant(
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
                ));
            }
        }
        grant.clone()
    };
    // Entra's refresh tokens are multi-resource: any scope the user consented to, of any one
    // resource, can be had with one; anything else needs consent first (AADSTS65001).
    let scopes = match form.get("scope") {
        Some(raw) => {
            let requested = scopes::parse(raw)?;
            scopes::resource_of(&requested)?;
            state.check_permissions_exist(&client.client_id, &requested)?;
            if !state.has_consent(grant.sign_in.user_oid, &client.client_id, &requested) {
                return Err(OAuthError::new(
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application with the requested scopes. Send an interactive authorization request for this user and resource.",
                )
                .with_suberror("consent_required"));
            }
            requested
        }
        None => grant.scopes.clone(),
    };
    // An authentication context is met by signing in (step-up), never by a refresh.
    let demanded = claims_request::required_auth_contexts(form.get("claims").map(String::as_str));
    if demanded.iter().any(|context| !grant.auth_contexts.contains(context)) {
        return Err(OAuthError::invalid_grant(
            50076,
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access this resource.",
        )
        .with_suberror("basic_action"));
    }
    // Spent only by a refresh that succeeds: a refused one leaves the token as it was.
    if let Some(grant) = state.grants().refresh_tokens.get_mut(token) {
        grant.status = RefreshStatus::Rotated;
    }
    let cae = claims_request::declares_cp1(form.get("claims").map(String::as_str));
    let continues = Continues {
        platform: grant.platform,
        refresh_expires_at: grant.expires_at,
        auth_contexts: grant.auth_contexts,
    };
    let options = IssueOptions { nonce: None, client_info, cae, continues };
    issue_for(state, &client.client_id, &scopes, &grant.sign_in, options)
}

/// Entra's fixed lifetime of a SPA's refresh tokens.
const SPA_REFRESH_TOKEN_LIFETIME_SECS: i64 = 24 * 3600;

/// What a token request asks of the tokens besides its scopes.
struct IssueOptions<'a> {
    nonce: Option<&'a str>,
    client_info: bool,
    cae: bool,
    continues: Continues,
}

/// What the issued refresh token inherits from the sign-in it continues.
struct Continues {
    platform: Platform,
    refresh_expires_at: Option<i64>,
    auth_contexts: Vec<String>,
}

fn issue_for(
    state: &EmulatorState,
    client_id: &str,
    scopes: &[String],
    sign_in: &SignIn,
    options: IssueOptions<'_>,
) -> Result<serde_json::Value, OAuthError> {
    let IssueOptions { nonce, client_info, cae, continues } = options;
    if let Resource::Api(uri) = scopes::resource_of(scopes)?
        && state.client(uri.trim_start_matches("api://")).is_none()
    {
        return Err(OAuthError::new(
            "invalid_resource",
            500011,
            format!("The resource principal named {uri} was not found in the tenant."),
        ));
    }
    let user = state
        .user_by_oid(sign_in.user_oid)
        .ok_or_else(|| OAuthError::invalid_grant(50034, "The user account does not exist in the directory."))?;
    let auth_contexts = &continues.auth_contexts;
    let issued =
        tokens::issue(state, Issue { client_id, scopes, sign_in, user, nonce, client_info, cae, auth_contexts })
            .map_err(|err| OAuthError::new("temporarily_unavailable", 90033, format!("Token signing failed: {err}")))?;
    if let Some(refresh_token) = &issued.refresh_token {
        state.grants().refresh_tokens.insert(
            refresh_token.clone(),
            RefreshGrant {
                issued_at: state.clock.now(),
                platform: continues.platform,
                expires_at: continues.refresh_expires_at,
                auth_contexts: continues.auth_contexts.clone(),
                client_id: client_id.to_owned(),
                scopes: scopes.to_vec(),
                sign_in: sign_in.clone(),
                status: RefreshStatus::Active,
            },
        );
    }
    Ok(issued.to_json())
}
