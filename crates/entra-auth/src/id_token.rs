//! Full ID token validation: RS256 only, signature against the tenant's JWKS, issuer for the
//! token's tenant, allowed tenant, audience, expiry with leeway, nonce. See `docs/ENTRA.md`,
//! "ID token (v2)" and "Issuer validation".

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::authority::Tenant;
use crate::discovery::ProviderMetadata;
use crate::jwks::{JwksCache, JwksError};
use crate::jwt::{self, JwtFailure};
use crate::secret::constant_time_eq;

/// The claims the app uses. Users are keyed by `tid` + `oid`, never by email or UPN.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// Object id: the user, immutable.
    pub oid: Uuid,
    /// Tenant id.
    pub tid: Uuid,
    /// Pairwise subject.
    pub sub: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Sign-in name; mutable, for display only.
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// Email, when the `email` scope and the account have one.
    #[serde(default)]
    pub email: Option<String>,
    /// Entra session id (front-channel logout).
    #[serde(default)]
    pub sid: Option<String>,
    /// Opaque hint for `logout_hint`, when configured as an optional claim.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// The issuer, checked exactly against the token's tenant.
    pub iss: String,
    /// App role values assigned to the user.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Group object ids, when the app registration asks for group claims and they fit.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Directory role template ids.
    #[serde(default)]
    pub wids: Vec<String>,
    /// `_claim_names`: names `groups` when the user has more groups than the token can carry.
    #[serde(default, rename = "_claim_names", skip_serializing_if = "Option::is_none")]
    pub claim_names: Option<serde_json::Map<String, serde_json::Value>>,
    /// `hasgroups`: the implicit flow's overage signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hasgroups: Option<bool>,
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(flatten)]
    claims: IdTokenClaims,
    #[serde(default)]
    nonce: Option<String>,
    /// Required: jsonwebtoken's required-claims list does not cover `iat`, so serde does.
    #[expect(dead_code, reason = "present is what is checked; its value is not used")]
    iat: u64,
}

/// What a token must match.
pub struct Expectations<'a> {
    /// Our client id (`aud`).
    pub client_id: &'a str,
    /// The configured tenant (which `tid`s are allowed).
    pub tenant: &'a Tenant,
    /// The nonce sent to /authorize.
    pub nonce: &'a str,
    /// Clock skew allowed on `exp`/`nbf`/`iat`.
    pub leeway: Duration,
}

/// Why an ID token was refused. Shaped after the checks, so pages and logs can say which failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not three base64url parts with a JSON header.
    #[error("the ID token is malformed")]
    Malformed,
    /// `alg` other than RS256 (`none`, HS256 key confusion...).
    #[error("the ID token uses algorithm '{0}'; only RS256 is accepted")]
    UnsupportedAlgorithm(String),
    /// No `kid` in the header.
    #[error("the ID token header has no key id")]
    MissingKeyId,
    /// The key could not be found or fetched.
    #[error(transparent)]
    Key(#[from] JwksError),
    /// The signature does not verify.
    #[error("the ID token signature is invalid")]
    BadSignature,
    /// `exp` is past (beyond leeway).
    #[error("the ID token has expired")]
    Expired,
    /// `nbf` is in the future (beyond leeway).
    #[error("the ID token is not valid yet")]
    NotYetValid,
    /// `aud` is not our client id.
    #[error("the ID token was issued to another application")]
    WrongAudience,
    /// `iss` is not the issuer for the token's tenant.
    #[error("the ID token was issued by '{0}', not by the configured authority")]
    WrongIssuer(String),
    /// The signing key was published for another issuer than the token's.
    #[error("the ID token from '{0}' is signed with a key published for another issuer")]
    KeyIssuerMismatch(String),
    /// `tid` is not allowed for the configured tenant.
    #[error("the ID token comes from tenant {0}, which this app does not accept")]
    WrongTenant(Uuid),
    /// `nonce` does not match the one sent.
    #[error("the ID token nonce does not match this sign-in")]
    NonceMismatch,
    /// A required claim is absent.
    #[error("the ID token lacks required claims: {0}")]
    MissingClaims(String),
    /// A refreshed ID token names another user or tenant than the session's.
    #[error("the refreshed ID token is about another user than the session's")]
    SubjectChanged,
}

impl From<JwtFailure> for IdTokenError {
    fn from(failure: JwtFailure) -> Self {
        match failure {
            JwtFailure::Malformed => IdTokenError::Malformed,
            JwtFailure::UnsupportedAlgorithm(alg) => IdTokenError::UnsupportedAlgorithm(alg),
            JwtFailure::MissingKeyId => IdTokenError::MissingKeyId,
            JwtFailure::Key(error) => IdTokenError::Key(error),
            JwtFailure::BadSignature => IdTokenError::BadSignature,
            JwtFailure::Expired => IdTokenError::Expired,
            JwtFailure::NotYetValid => IdTokenError::NotYetValid,
            JwtFailure::WrongAudience => IdTokenError::WrongAudience,
            JwtFailure::MissingClaims(claims) => IdTokenError::MissingClaims(claims),
        }
    }
}

/// Validates `token` and returns its claims.
pub async fn verify(
    token: &str,
    provider: &ProviderMetadata,
    jwks: &JwksCache,
    expected: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    verify_checking_nonce(token, provider, jwks, expected, true).await
}

/// Validates an ID token that came with refreshed tokens: every check of [`verify`] but the nonce
/// (Entra puts none in refreshed ID tokens), and it must be about the same user and tenant.
pub(crate) async fn verify_refreshed(
    token: &str,
    provider: &ProviderMetadata,
    jwks: &JwksCache,
    expected: &Expectations<'_>,
    (object_id, tenant_id): (Uuid, Uuid),
) -> Result<IdTokenClaims, IdTokenError> {
    let claims = verify_checking_nonce(token, provider, jwks, expected, false).await?;
    same_subject(&claims, object_id, tenant_id)?;
    Ok(claims)
}

/// A refreshed ID token must name the session's user in the session's tenant.
fn same_subject(claims: &IdTokenClaims, object_id: Uuid, tenant_id: Uuid) -> Result<(), IdTokenError> {
    if claims.oid != object_id || claims.tid != tenant_id {
        return Err(IdTokenError::SubjectChanged);
    }
    Ok(())
}

async fn verify_checking_nonce(
    token: &str,
    provider: &ProviderMetadata,
    jwks: &JwksCache,
    expected: &Expectations<'_>,
    check_nonce: bool,
) -> Result<IdTokenClaims, IdTokenError> {
    let key = jwt::signing_key(token, jwks).await?;
    let raw = verify_without_nonce(token, &key.key, key.issuer.as_deref(), provider, expected)?;
    if check_nonce { nonce_matches(raw, expected) } else { Ok(raw.claims) }
}

/// The token's `nonce` is the one this sign-in sent (compared in constant time).
fn nonce_matches(raw: RawClaims, expected: &Expectations<'_>) -> Result<IdTokenClaims, IdTokenError> {
    match raw.nonce {
        Some(nonce) if constant_time_eq(&nonce, expected.nonce) => Ok(raw.claims),
        _ => Err(IdTokenError::NonceMismatch),
    }
}

/// The checks after the key is chosen: signature (RS256 only), claims, issuer (also against the
/// key's own `issuer` member when it has one), tenant, nonce.
pub fn verify_with_key(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    key_issuer: Option<&str>,
    provider: &ProviderMetadata,
    expected: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let raw = verify_without_nonce(token, key, key_issuer, provider, expected)?;
    nonce_matches(raw, expected)
}

/// Signature, lifetime, audience, issuer and tenant; the nonce is left to the caller.
fn verify_without_nonce(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    key_issuer: Option<&str>,
    provider: &ProviderMetadata,
    expected: &Expectations<'_>,
) -> Result<RawClaims, IdTokenError> {
    let required = ["exp", "iat", "aud", "iss"];
    let raw: RawClaims = jwt::decode(token, key, &[expected.client_id], expected.leeway, &required, "oid, tid, sub")?;
    let claims = &raw.claims;

    // The issuer is exact for the token's own tenant: the `{tenantid}` template of multi-tenant
    // authorities is filled with `tid`, then `tid` itself is checked against what we accept.
    if claims.iss != provider.issuer_for(claims.tid) {
        return Err(IdTokenError::WrongIssuer(claims.iss.clone()));
    }
    // Multi-tenant authorities share keys across clouds and tenants; Microsoft's guidance is to
    // check that the key was published for the token's issuer (its `issuer` member, `{tenantid}`
    // filled in with `tid`).
    if let Some(key_issuer) = key_issuer
        && key_issuer.replace("{tenantid}", &claims.tid.to_string()) != claims.iss
    {
        return Err(IdTokenError::KeyIssuerMismatch(claims.iss.clone()));
    }
    if !expected.tenant.accepts(claims.tid) {
        return Err(IdTokenError::WrongTenant(claims.tid));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(oid: u128, tid: u128) -> IdTokenClaims {
        IdTokenClaims {
            oid: Uuid::from_u128(oid),
            tid: Uuid::from_u128(tid),
            sub: "s".into(),
            name: None,
            preferred_username: None,
            email: None,
            sid: None,
            login_hint: None,
            iss: "i".into(),
            roles: Vec::new(),
            groups: Vec::new(),
            wids: Vec::new(),
            claim_names: None,
            hasgroups: None,
        }
    }

    #[test]
    fn a_refreshed_token_about_another_user_or_tenant_is_refused() {
        let (oid, tid) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(same_subject(&claims(1, 2), oid, tid).is_ok());
        for other in [claims(9, 2), claims(1, 9), claims(9, 9)] {
            assert!(matches!(same_subject(&other, oid, tid), Err(IdTokenError::SubjectChanged)), "{other:?}");
        }
    }
}
