//! What ID tokens (`id_token.rs`) and access tokens for this app (`bearer.rs`) check alike: the
//! algorithm, RS256 only, decided before any key is used (never the header's choice); the key by
//! `kid` from the tenant's JWKS; jsonwebtoken's signature, lifetime and audience checks, each
//! failure named. Issuer, tenant and the rest are each kind's own.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

use crate::jwks::{JwksCache, JwksError, SigningKey};

/// Why a token failed a check both kinds make; each kind's error has a variant per case.
#[derive(Debug)]
pub(crate) enum JwtFailure {
    /// Not three base64url parts with a JSON header.
    Malformed,
    /// `alg` other than RS256.
    UnsupportedAlgorithm(String),
    /// No `kid` in the header.
    MissingKeyId,
    /// The key could not be found or fetched.
    Key(JwksError),
    /// The signature does not verify.
    BadSignature,
    /// `exp` is past (beyond leeway).
    Expired,
    /// `nbf` is in the future (beyond leeway).
    NotYetValid,
    /// `aud` is none of those expected.
    WrongAudience,
    /// A required claim is absent (or not of its type).
    MissingClaims(String),
}

/// The key that must have signed `token`: RS256 only, by its `kid`.
pub(crate) async fn signing_key(token: &str, jwks: &JwksCache) -> Result<SigningKey, JwtFailure> {
    if token.split('.').count() != 3 {
        return Err(JwtFailure::Malformed);
    }
    let (alg, kid) = alg_and_kid(token).ok_or(JwtFailure::Malformed)?;
    if alg != "RS256" {
        return Err(JwtFailure::UnsupportedAlgorithm(alg));
    }
    let kid = kid.ok_or(JwtFailure::MissingKeyId)?;
    jwks.key(&kid).await.map_err(JwtFailure::Key)
}

fn alg_and_kid(token: &str) -> Option<(String, Option<String>)> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let alg = header.get("alg")?.as_str()?.to_owned();
    Some((alg, header.get("kid").and_then(|kid| kid.as_str()).map(str::to_owned)))
}

/// `token`'s claims, if signed by `key` (RS256), within its lifetime (with `leeway`; `nbf` too),
/// for one of `audiences`, with the `required` registered claims; `shape` names the claims `T`
/// requires, for when they are missing.
pub(crate) fn decode<T: DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    audiences: &[impl ToString],
    leeway: Duration,
    required: &[&str],
    shape: &str,
) -> Result<T, JwtFailure> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(audiences);
    validation.leeway = leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_required_spec_claims(required);
    jsonwebtoken::decode::<T>(token, key, &validation).map(|data| data.claims).map_err(|err| match err.kind() {
        ErrorKind::InvalidSignature => JwtFailure::BadSignature,
        ErrorKind::ExpiredSignature => JwtFailure::Expired,
        ErrorKind::ImmatureSignature => JwtFailure::NotYetValid,
        ErrorKind::InvalidAudience => JwtFailure::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => JwtFailure::MissingClaims(claim.clone()),
        ErrorKind::Json(_) => JwtFailure::MissingClaims(shape.to_owned()),
        _ => JwtFailure::Malformed,
    })
}
