//! Access tokens issued for this app as an API, presented by other applications as
//! `Authorization: Bearer` (what App Service authentication accepts besides its sign-in cookie):
//! RS256 only, signature against the tenant's JWKS, issuer for the token's tenant in the token's
//! version (v1.0 `https://sts.windows.net/{tid}/` or v2.0 the authority's), allowed tenant, one
//! of our audiences, lifetime with leeway, and the calling application (`azp`/`appid`) allowed.
//! See `docs/ENTRA.md`, "Access tokens for this app".

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use uuid::Uuid;

use crate::authority::{Authority, Tenant};
use crate::discovery::ProviderMetadata;
use crate::id_token::header_alg_and_kid;
use crate::jwks::{JwksCache, JwksError};

/// Which access tokens are accepted, besides being valid, for the tenant, and for this app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BearerPolicy {
    /// `aud` values accepted: the client id and `api://{client id}` are always among them (see
    /// [`BearerPolicy::new`]), plus any other Application ID URI the app registration has.
    pub audiences: Vec<String>,
    /// Applications (client ids, the token's `azp` or `appid`) that may call; `None`: any
    /// application of an accepted tenant (App Service's "Allow requests from any application").
    pub clients: Option<Vec<String>>,
}

impl BearerPolicy {
    /// Tokens for `client_id` (as its client id or `api://{client_id}`, plus `more_audiences`),
    /// obtained by one of `clients` (`None`: any application).
    pub fn new(client_id: &str, more_audiences: Vec<String>, clients: Option<Vec<String>>) -> Self {
        let mut audiences = vec![client_id.to_owned(), format!("api://{client_id}")];
        audiences
            .extend(more_audiences.into_iter().filter(|audience| !audiences.contains(audience)).collect::<Vec<_>>());
        Self { audiences, clients }
    }
}

/// The claims of an accepted access token that say who calls.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessTokenClaims {
    /// Object id of the user, or of the calling application's service principal (app-only).
    pub oid: Uuid,
    /// Tenant id.
    pub tid: Uuid,
    /// The issuer, checked exactly for the token's tenant and version.
    pub iss: String,
    /// Unix seconds when the token expires (checked, with the leeway).
    pub exp: u64,
    /// Display name (user tokens).
    #[serde(default)]
    pub name: Option<String>,
    /// Sign-in name (v2.0 user tokens).
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// Sign-in name (v1.0 user tokens).
    #[serde(default)]
    pub upn: Option<String>,
    /// The calling application (v2.0).
    #[serde(default)]
    pub azp: Option<String>,
    /// The calling application (v1.0).
    #[serde(default)]
    pub appid: Option<String>,
    /// Delegated permissions, space-separated: present when a user is signed in to the caller.
    #[serde(default)]
    pub scp: Option<String>,
    /// App roles: the user's (delegated) or the calling application's (app-only).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Group object ids, when the app registration asks for them and they fit.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Directory role template ids.
    #[serde(default)]
    pub wids: Vec<String>,
    /// Token version: `1.0` or `2.0`.
    #[serde(default)]
    pub ver: Option<String>,
}

impl AccessTokenClaims {
    /// The calling application's client id (`azp` in v2.0 tokens, `appid` in v1.0).
    pub fn client_id(&self) -> Option<&str> {
        self.azp.as_deref().or(self.appid.as_deref())
    }

    /// How long the token stays valid from now (zero once expired; the check allows the leeway).
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(self.exp.saturating_sub(crate::clock::unix_now()))
    }

    /// Whether a user is signed in to the caller (delegated permissions), not the app alone.
    pub fn is_delegated(&self) -> bool {
        self.scp.as_deref().is_some_and(|scp| !scp.trim().is_empty())
    }
}

/// Why an access token was refused. Shaped after the checks, so an answer and a log can say which.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// Not three base64url parts with a JSON header.
    #[error("the access token is malformed")]
    Malformed,
    /// `alg` other than RS256.
    #[error("the access token uses algorithm '{0}'; only RS256 is accepted")]
    UnsupportedAlgorithm(String),
    /// No `kid` in the header.
    #[error("the access token header has no key id")]
    MissingKeyId,
    /// The key could not be found or fetched.
    #[error(transparent)]
    Key(#[from] JwksError),
    /// The signature does not verify (Microsoft Graph's tokens, among others, never do here).
    #[error("the access token signature is invalid")]
    BadSignature,
    /// `exp` is past (beyond leeway).
    #[error("the access token has expired")]
    Expired,
    /// `nbf` is in the future (beyond leeway).
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// `aud` is not this app.
    #[error("the access token is for another audience than this app")]
    WrongAudience,
    /// `iss` is not the issuer of the token's tenant in the token's version.
    #[error("the access token was issued by '{0}', not by the configured authority")]
    WrongIssuer(String),
    /// The signing key was published for another issuer than the token's tenant's.
    #[error("the access token is signed with a key published for another issuer")]
    KeyIssuerMismatch,
    /// `tid` is not allowed.
    #[error("the access token comes from tenant {0}, which this app does not accept")]
    WrongTenant(Uuid),
    /// The calling application is not among those allowed.
    #[error("application {0} may not call this app")]
    ClientNotAllowed(String),
    /// A required claim is absent.
    #[error("the access token lacks required claims: {0}")]
    MissingClaims(String),
    /// The tenant's metadata cannot be loaded now: no token can be checked (not the caller's fault).
    #[error("access tokens cannot be checked now: {0}")]
    Unavailable(String),
}

impl BearerError {
    /// Whether the token was refused (the caller's to fix) rather than not checkable now (the
    /// tenant's keys or metadata are unreachable: try again later).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, BearerError::Unavailable(_) | BearerError::Key(JwksError::Unavailable { .. }))
    }
}

/// What a token is checked against, besides the policy.
pub(crate) struct Expected<'a> {
    pub(crate) authority: &'a Authority,
    pub(crate) tenant: &'a Tenant,
    pub(crate) allowed_tenants: Option<&'a [Uuid]>,
    pub(crate) leeway: Duration,
}

/// Validates `token` and returns who calls.
pub(crate) async fn verify(
    token: &str,
    provider: &ProviderMetadata,
    jwks: &JwksCache,
    policy: &BearerPolicy,
    expected: &Expected<'_>,
) -> Result<AccessTokenClaims, BearerError> {
    if token.split('.').count() != 3 {
        return Err(BearerError::Malformed);
    }
    // Decided before any key is touched: the header's choice is never trusted.
    let (alg, kid) = header_alg_and_kid(token).map_err(|_| BearerError::Malformed)?;
    if alg != "RS256" {
        return Err(BearerError::UnsupportedAlgorithm(alg));
    }
    let kid = kid.ok_or(BearerError::MissingKeyId)?;
    let key = jwks.key(&kid).await?;
    verify_with_key(token, &key.key, key.issuer.as_deref(), provider, policy, expected)
}

/// The checks once the key is chosen.
fn verify_with_key(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    key_issuer: Option<&str>,
    provider: &ProviderMetadata,
    policy: &BearerPolicy,
    expected: &Expected<'_>,
) -> Result<AccessTokenClaims, BearerError> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&policy.audiences);
    validation.leeway = expected.leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, key, &validation)
        .map_err(|err| match err.kind() {
            ErrorKind::InvalidSignature => BearerError::BadSignature,
            ErrorKind::ExpiredSignature => BearerError::Expired,
            ErrorKind::ImmatureSignature => BearerError::NotYetValid,
            ErrorKind::InvalidAudience => BearerError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => BearerError::MissingClaims(claim.clone()),
            ErrorKind::Json(_) => BearerError::MissingClaims("oid, tid".to_owned()),
            _ => BearerError::Malformed,
        })?
        .claims;
    // Exact, for the token's own tenant and version: v1.0 tokens (the default for an app's API
    // unless its manifest asks for v2.0) come from the STS host, v2.0 ones from the authority.
    let v2_issuer = provider.issuer_for(claims.tid);
    let issuer = match claims.ver.as_deref() {
        Some("1.0") => expected.authority.v1_issuer_for(claims.tid),
        _ => v2_issuer.clone(),
    };
    if claims.iss != issuer {
        return Err(BearerError::WrongIssuer(claims.iss.clone()));
    }
    // The key must be one published for the token's tenant (see `id_token.rs`).
    if let Some(key_issuer) = key_issuer
        && key_issuer.replace("{tenantid}", &claims.tid.to_string()) != v2_issuer
    {
        return Err(BearerError::KeyIssuerMismatch);
    }
    if !expected.tenant.accepts(claims.tid) || expected.allowed_tenants.is_some_and(|list| !list.contains(&claims.tid))
    {
        return Err(BearerError::WrongTenant(claims.tid));
    }
    if let Some(clients) = &policy.clients {
        let client = claims.client_id().unwrap_or_default();
        if !clients.iter().any(|allowed| allowed.eq_ignore_ascii_case(client)) {
            return Err(BearerError::ClientNotAllowed(client.to_owned()));
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_id_and_its_api_uri_are_always_audiences() {
        let policy = BearerPolicy::new("c1", vec!["https://api.contoso.example".into(), "api://c1".into()], None);
        assert_eq!(policy.audiences, ["c1", "api://c1", "https://api.contoso.example"]);
    }
}
