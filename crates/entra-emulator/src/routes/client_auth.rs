//! Who is calling the token endpoint: `client_secret_basic`, `client_secret_post` or
//! `private_key_jwt` (a signed client assertion checked against the registered public key).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::Digest;

use crate::config::{CertificateCredential, ClientRegistration, Platform};
use crate::error::OAuthError;
use crate::state::EmulatorState;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Authenticates the client of a token request.
pub(crate) fn authenticate(
    state: &EmulatorState,
    tenant: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    platform: Option<Platform>,
) -> Result<ClientRegistration, OAuthError> {
    if let Some((client_id, secret)) = basic_credentials(headers) {
        return check_secret(state, &client_id, &secret);
    }
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request(
                50027,
                format!("Invalid client_assertion_type; expected '{JWT_BEARER}'."),
            ));
        }
        return check_assertion(state, tenant, assertion, form.get("client_id"));
    }
    let Some(client_id) = form.get("client_id") else {
        return Err(OAuthError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    match form.get("client_secret") {
        Some(secret) => check_secret(state, client_id, secret),
        // A SPA or a desktop app is a public client: it has no secret to send.
        None if matches!(platform, Some(Platform::Spa | Platform::PublicClient)) => {
            state.client(client_id).ok_or_else(|| unknown_client(client_id))
        }
        None => Err(OAuthError::invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 2.3.1: both parts are form-urlencoded before base64.
    let unescape = |s: &str| form_urlencoded_decode(s);
    Some((unescape(id), unescape(secret)))
}

fn form_urlencoded_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, decoded)| decoded.into_owned())
        .unwrap_or_default()
}

fn unknown_client(client_id: &str) -> OAuthError {
    OAuthError::new(
        "unauthorized_client",
        700016,
        format!("Application with identifier '{client_id}' was not found in the directory."),
    )
}

fn check_secret(state: &EmulatorState, client_id: &str, secret: &str) -> Result<ClientRegistration, OAuthError> {
    let client = state.client(client_id).ok_or_else(|| unknown_client(client_id))?;
    let matches = client
        .client_secret
        .as_deref()
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), secret.as_bytes()));
    if !matches {
        return Err(OAuthError::invalid_client(
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ));
    }
    Ok(client)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    jti: Option<String>,
}

fn bad_assertion(message: &str) -> OAuthError {
    OAuthError::invalid_client(700027, format!("Client assertion failed signature validation. {message}"))
}

/// A client assertion: the app's own (`iss` = its client id, signed with a registered certificate
/// or key), or a federated one (a token from a trusted issuer about a subject the app trusts).
fn check_assertion(
    state: &EmulatorState,
    tenant: &str,
    assertion: &str,
    form_client_id: Option<&String>,
) -> Result<ClientRegistration, OAuthError> {
    let claimed_issuer = unverified_issuer(assertion).ok_or_else(|| bad_assertion("The assertion is not a JWT."))?;
    match form_client_id {
        Some(client_id) if *client_id != claimed_issuer => check_federated_assertion(state, assertion, client_id),
        _ => check_own_assertion(state, tenant, assertion, &claimed_issuer),
    }
}

fn check_own_assertion(
    state: &EmulatorState,
    tenant: &str,
    assertion: &str,
    claimed_client: &str,
) -> Result<ClientRegistration, OAuthError> {
    let client = state.client(claimed_client).ok_or_else(|| unknown_client(claimed_client))?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad_assertion("The assertion is not a JWT."))?;
    let pem = if header.x5t.is_some() || header.x5t_s256.is_some() {
        let certificate = client
            .certificates
            .iter()
            .find(|certificate| thumbprints_match(certificate, header.x5t.as_deref(), header.x5t_s256.as_deref()))
            .ok_or_else(|| {
                bad_assertion(&format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application {}.",
                    client.client_id
                ))
            })?;
        certificate.public_key_pem.clone()
    } else {
        client
            .assertion_public_key_pem
            .clone()
            .ok_or_else(|| bad_assertion("No key is registered for this application."))?
    };
    let key =
        DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| bad_assertion("The registered key is unusable."))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256, Algorithm::PS256];
    validation.set_audience(&[
        format!("{}/{tenant}/oauth2/v2.0/token", state.base()),
        format!("{}/{}/oauth2/v2.0/token", state.base(), state.tenant_id),
    ]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 300;
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation).map_err(|err| {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
                OAuthError::invalid_client(700024, "Client assertion is not within its valid time range.")
            }
            ErrorKind::InvalidAudience => {
                OAuthError::invalid_client(700021, "Client assertion audience claim does not match the token endpoint.")
            }
            _ => bad_assertion("The signature does not verify with the registered key."),
        }
    })?;
    if data.claims.iss != client.client_id || data.claims.sub != client.client_id {
        return Err(OAuthError::invalid_client(700023, "Client assertion iss and sub must both be the client id."));
    }
    if let Some(jti) = data.claims.jti
        && state.grants().used_assertion_ids.insert(jti, state.clock.now()).is_some()
    {
        return Err(OAuthError::invalid_client(700027, "Client assertion was already used (jti replay)."));
    }
    Ok(client)
}

fn thumbprints_match(certificate: &CertificateCredential, x5t: Option<&str>, x5t_s256: Option<&str>) -> bool {
    let Some(der) = pem_der(&certificate.certificate_pem, "CERTIFICATE") else { return false };
    let sha1 = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der));
    let sha256 = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der));
    x5t_s256.is_some_and(|t| t == sha256) || x5t.is_some_and(|t| t == sha1)
}

fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find("-----END")? + start;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).ok()
}

#[derive(Deserialize)]
struct FederatedClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(aud) => aud == wanted,
            Audience::Many(auds) => auds.iter().any(|aud| aud == wanted),
        }
    }
}

/// A federated credential: a token this tenant issued (a managed identity's) whose issuer,
/// subject and audience match one of the app's federated identity credentials.
fn check_federated_assertion(
    state: &EmulatorState,
    assertion: &str,
    client_id: &str,
) -> Result<ClientRegistration, OAuthError> {
    let client = state.client(client_id).ok_or_else(|| unknown_client(client_id))?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad_assertion("The assertion is not a JWT."))?;
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| state.keys().find(kid).map(|key| key.decoding.clone()))
        .ok_or_else(|| bad_assertion("The assertion is not signed by a key of a trusted issuer."))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<FederatedClaims>(assertion, &key, &validation)
        .map_err(|_| bad_assertion("The signature does not verify."))?
        .claims;
    // Assertions are made on wall time, whatever the emulator's clock says.
    if claims.exp <= state.clock.wall() {
        return Err(OAuthError::invalid_client(700024, "Client assertion is not within its valid time range."));
    }
    let by_issuer: Vec<_> = client.federated_credentials.iter().filter(|fic| fic.issuer == claims.iss).collect();
    if by_issuer.is_empty() {
        return Err(OAuthError::invalid_client(
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{}'.", claims.iss),
        ));
    }
    let by_subject: Vec<_> = by_issuer.into_iter().filter(|fic| fic.subject == claims.sub).collect();
    if by_subject.is_empty() {
        return Err(OAuthError::invalid_client(
            700213,
            format!("No matching federated identity record found for presented assertion subject '{}'.", claims.sub),
        ));
    }
    if !by_subject.iter().any(|fic| fic.audiences.iter().any(|aud| claims.aud.contains(aud))) {
        return Err(OAuthError::invalid_client(
            700212,
            "No matching federated identity record found for presented assertion audience.",
        ));
    }
    Ok(client)
}

/// The `iss` of a JWT, read without verifying: only to find which key verifies it.
fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}
