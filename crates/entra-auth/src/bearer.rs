//! Access tokens issued for this app as an API, presented by other applications as
//! `Authorization: Bearer` (what App Service authentication accepts besides its sign-in cookie):
//! RS256 only, signature against the tenant's JWKS, issuer for the token's tenant in the token's
//! version (v1.0 `https://sts.windows.net/{tid}/` or v2.0 the authority's), allowed tenant, one
//! of our audiences, lifetime with leeway, and the calling application (`azp`/`appid`) allowed.
//! See `docs/ENTRA.md`, "Access tokens for this app".

use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::config::EntraConfig;
use crate::discovery::ProviderMetadata;
use crate::jwks::{JwksCache, JwksError};
use crate::jwt::{self, JwtFailure};

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
    /// Entra's pointer to the groups it left out (`{"groups": "src1"}`): the groups overage.
    #[serde(default, rename = "_claim_names")]
    claim_names: Option<serde_json::Map<String, serde_json::Value>>,
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

    /// Whether the user is in more groups than the token carries (Entra then lists none and
    /// points elsewhere): ask Graph ([`EntraClient::user_group_ids`](crate::EntraClient::user_group_ids)).
    pub fn has_groups_overage(&self) -> bool {
        self.claim_names.as_ref().is_some_and(|names| names.contains_key("groups"))
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

impl From<JwtFailure> for BearerError {
    fn from(failure: JwtFailure) -> Self {
        match failure {
            JwtFailure::Malformed => BearerError::Malformed,
            JwtFailure::UnsupportedAlgorithm(alg) => BearerError::UnsupportedAlgorithm(alg),
            JwtFailure::MissingKeyId => BearerError::MissingKeyId,
            JwtFailure::Key(error) => BearerError::Key(error),
            JwtFailure::BadSignature => BearerError::BadSignature,
            JwtFailure::Expired => BearerError::Expired,
            JwtFailure::NotYetValid => BearerError::NotYetValid,
            JwtFailure::WrongAudience => BearerError::WrongAudience,
            JwtFailure::MissingClaims(claims) => BearerError::MissingClaims(claims),
        }
    }
}

impl BearerError {
    /// Whether the token was refused (the caller's to fix) rather than not checkable now (the
    /// tenant's keys or metadata are unreachable: try again later).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, BearerError::Unavailable(_) | BearerError::Key(JwksError::Unavailable { .. }))
    }
}

/// Validates `token` and returns who calls.
pub(crate) async fn verify(
    token: &str,
    provider: &ProviderMetadata,
    jwks: &JwksCache,
    policy: &BearerPolicy,
    config: &EntraConfig,
) -> Result<AccessTokenClaims, BearerError> {
    let key = jwt::signing_key(token, jwks).await?;
    verify_with_key(token, &key.key, key.issuer.as_deref(), provider, policy, config)
}

/// The checks once the key is chosen; `config` says the authority (its tenant, and its host for
/// v1.0 issuers), the tenants allowed and the clock leeway.
fn verify_with_key(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    key_issuer: Option<&str>,
    provider: &ProviderMetadata,
    policy: &BearerPolicy,
    config: &EntraConfig,
) -> Result<AccessTokenClaims, BearerError> {
    let claims: AccessTokenClaims =
        jwt::decode(token, key, &policy.audiences, config.clock_leeway, &["exp", "aud", "iss"], "oid, tid, exp")?;
    // Exact, for the token's own tenant and version: v1.0 tokens (the default for an app's API
    // unless its manifest asks for v2.0) come from the STS host, v2.0 ones from the authority.
    let v2_issuer = provider.issuer_for(claims.tid);
    let issuer = match claims.ver.as_deref() {
        Some("1.0") => config.authority.v1_issuer_for(claims.tid),
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
    if !config.authority.tenant().accepts(claims.tid) || !config.allows_tenant(claims.tid) {
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
    use std::sync::OnceLock;

    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use serde_json::{Value, json};
    use url::Url;

    use super::*;
    use crate::authority::{Authority, Tenant};

    const API: &str = "5e7f0a3c-1d2b-4c8e-9f6a-0b1c2d3e4f50";
    const CALLER: &str = "c0ffee00-0000-4000-8000-00000000ca11";

    /// The tenant's key, and another that signs with the same `kid` but is not published.
    fn keys() -> &'static (EncodingKey, DecodingKey, EncodingKey) {
        static KEYS: OnceLock<(EncodingKey, DecodingKey, EncodingKey)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let pem = |key: &rsa::RsaPrivateKey| key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
            let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
            let impostor = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
            let public = rsa::RsaPublicKey::from(&private).to_public_key_pem(LineEnding::LF).unwrap();
            (
                EncodingKey::from_rsa_pem(pem(&private).as_bytes()).unwrap(),
                DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
                EncodingKey::from_rsa_pem(pem(&impostor).as_bytes()).unwrap(),
            )
        })
    }

    fn tid() -> Uuid {
        Uuid::from_u128(0x7e6b1c4a_2f0d_4a8e_9c3b_5d1e8f2a6b90)
    }

    fn provider() -> ProviderMetadata {
        let base = "https://login.microsoftonline.com/{tenantid}";
        let url = |path: &str| Url::parse(&format!("https://login.microsoftonline.com/common{path}")).unwrap();
        ProviderMetadata {
            issuer: format!("{base}/v2.0"),
            authorization_endpoint: url("/oauth2/v2.0/authorize"),
            token_endpoint: url("/oauth2/v2.0/token"),
            jwks_uri: url("/discovery/v2.0/keys"),
            end_session_endpoint: None,
        }
    }

    fn now() -> u64 {
        crate::clock::unix_now()
    }

    /// A valid v1.0 token for the API, from `CALLER`, with Adele signed in.
    fn v1() -> Value {
        json!({
            "aud": format!("api://{API}"), "iss": format!("https://sts.windows.net/{}/", tid()), "ver": "1.0",
            "iat": now(), "nbf": now(), "exp": now() + 3600, "tid": tid(), "oid": Uuid::new_v4(),
            "appid": CALLER, "scp": "access_as_user", "upn": "adele@contoso.example", "name": "Adele Vance",
        })
    }

    /// The same as a v2.0 token.
    fn v2() -> Value {
        let mut claims = v1();
        let object = claims.as_object_mut().unwrap();
        object.insert("aud".into(), json!(API));
        object.insert("iss".into(), json!(format!("https://login.microsoftonline.com/{}/v2.0", tid())));
        object.insert("ver".into(), json!("2.0"));
        let caller = object.remove("appid").unwrap();
        object.insert("azp".into(), caller);
        claims
    }

    fn with(mut claims: Value, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        change(claims.as_object_mut().unwrap());
        claims
    }

    fn signed_by(claims: &Value, key: &EncodingKey) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("kid-1".into());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    /// The app's configuration at `authority`, allowing `allowed_tenants` when listed.
    fn config(authority: &Authority, allowed_tenants: Option<&[Uuid]>) -> EntraConfig {
        let secret = secrecy::SecretString::from("secret");
        let config =
            EntraConfig::new(authority.clone(), API, secret, Url::parse("https://app.example/callback").unwrap());
        match allowed_tenants {
            Some(tenants) => config.with_allowed_tenants(tenants.iter().copied()),
            None => config,
        }
    }

    /// `claims` signed by the tenant's key, checked as the app at `authority` would.
    fn check_as(
        claims: &Value,
        authority: &Authority,
        allowed_tenants: Option<&[Uuid]>,
        key_issuer: Option<&str>,
        policy: &BearerPolicy,
    ) -> Result<AccessTokenClaims, BearerError> {
        let token = signed_by(claims, &keys().0);
        verify_with_key(&token, &keys().1, key_issuer, &provider(), policy, &config(authority, allowed_tenants))
    }

    fn policy() -> BearerPolicy {
        BearerPolicy::new(API, Vec::new(), Some(vec![CALLER.to_owned()]))
    }

    fn check(claims: &Value) -> Result<AccessTokenClaims, BearerError> {
        check_as(claims, &Authority::public_cloud(Tenant::Id(tid())), None, None, &policy())
    }

    #[test]
    fn the_client_id_and_its_api_uri_are_always_audiences() {
        let policy = BearerPolicy::new("c1", vec!["https://api.contoso.example".into(), "api://c1".into()], None);
        assert_eq!(policy.audiences, ["c1", "api://c1", "https://api.contoso.example"]);
    }

    #[test]
    fn v1_and_v2_tokens_for_the_api_from_an_allowed_caller_pass() {
        for claims in [v1(), v2()] {
            let caller = check(&claims).unwrap();
            assert_eq!((caller.tid, caller.client_id()), (tid(), Some(CALLER)));
            assert!(caller.is_delegated());
            assert!(caller.remaining() > Duration::from_secs(3500));
        }
        let app_only = with(v2(), |claims| {
            claims.remove("scp");
            claims.insert("roles".into(), json!(["Orders.Read"]));
        });
        let caller = check(&app_only).unwrap();
        assert!(!caller.is_delegated());
        assert_eq!(caller.roles, ["Orders.Read"]);
    }

    #[test]
    fn each_check_refuses_with_its_reason() {
        let other_tenant = Uuid::new_v4();
        let refused = |claims: Value| check(&claims).unwrap_err();
        // Issuer: exact, for the token's version.
        let v1_claiming_v2 = with(v1(), |c| drop(c.insert("iss".into(), v2()["iss"].clone())));
        assert!(matches!(refused(v1_claiming_v2), BearerError::WrongIssuer(_)));
        let v2_claiming_v1 = with(v2(), |c| drop(c.insert("iss".into(), v1()["iss"].clone())));
        assert!(matches!(refused(v2_claiming_v1), BearerError::WrongIssuer(_)));
        let another_tenants_issuer = with(v2(), |c| {
            drop(c.insert("iss".into(), json!(format!("https://login.microsoftonline.com/{other_tenant}/v2.0"))))
        });
        assert!(matches!(refused(another_tenants_issuer), BearerError::WrongIssuer(_)));
        // Audience, caller, lifetime.
        let for_graph = with(v2(), |c| drop(c.insert("aud".into(), json!("https://graph.microsoft.com"))));
        assert!(matches!(refused(for_graph), BearerError::WrongAudience));
        let another_caller = with(v2(), |c| drop(c.insert("azp".into(), json!(Uuid::new_v4()))));
        assert!(matches!(refused(another_caller), BearerError::ClientNotAllowed(_)));
        let no_caller = with(v2(), |c| drop(c.remove("azp")));
        assert!(matches!(refused(no_caller), BearerError::ClientNotAllowed(_)));
        let expired = with(v2(), |c| drop(c.insert("exp".into(), json!(now() - 600))));
        assert!(matches!(refused(expired), BearerError::Expired));
        let early = with(v2(), |c| drop(c.insert("nbf".into(), json!(now() + 600))));
        assert!(matches!(refused(early), BearerError::NotYetValid));
        let anonymous = with(v2(), |c| drop(c.remove("oid")));
        assert!(matches!(refused(anonymous), BearerError::MissingClaims(_)));
        // Signature: the right `kid`, another key.
        let config = config(&Authority::public_cloud(Tenant::Id(tid())), None);
        let forged = signed_by(&v2(), &keys().2);
        let forged = verify_with_key(&forged, &keys().1, None, &provider(), &policy(), &config);
        assert!(matches!(forged, Err(BearerError::BadSignature)));
    }

    #[test]
    fn tenants_callers_and_key_issuers_are_as_configured() {
        let other_tenant = Uuid::new_v4();
        let elsewhere = Authority::public_cloud(Tenant::Id(other_tenant));
        assert!(matches!(check_as(&v2(), &elsewhere, None, None, &policy()), Err(BearerError::WrongTenant(_))));
        let organizations = Authority::public_cloud(Tenant::Organizations);
        assert!(check_as(&v2(), &organizations, None, None, &policy()).is_ok());
        let listed = [other_tenant];
        let refused = check_as(&v2(), &organizations, Some(&listed), None, &policy());
        assert!(matches!(refused, Err(BearerError::WrongTenant(_))));
        assert!(check_as(&v2(), &organizations, Some(&[tid()]), None, &policy()).is_ok());
        // Any application, when the policy lists none.
        let any = BearerPolicy::new(API, Vec::new(), None);
        let another_caller = with(v2(), |c| drop(c.insert("azp".into(), json!(Uuid::new_v4()))));
        assert!(check_as(&another_caller, &organizations, None, None, &any).is_ok());
        // A key published for the token's tenant (its `issuer` member) verifies; one for another does not.
        let own = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(check_as(&v1(), &organizations, None, Some(own), &policy()).is_ok());
        let foreign = format!("https://login.microsoftonline.com/{other_tenant}/v2.0");
        let mismatch = check_as(&v1(), &organizations, None, Some(&foreign), &policy());
        assert!(matches!(mismatch, Err(BearerError::KeyIssuerMismatch)));
        // Another Application ID URI, when listed.
        let custom = with(v2(), |c| drop(c.insert("aud".into(), json!("https://api.contoso.example"))));
        assert!(matches!(check(&custom), Err(BearerError::WrongAudience)));
        let also = BearerPolicy::new(API, vec!["https://api.contoso.example".into()], Some(vec![CALLER.into()]));
        assert!(check_as(&custom, &organizations, None, None, &also).is_ok());
    }

    #[test]
    fn v1_tokens_of_the_cloud_operated_by_21vianet_come_from_its_sts() {
        let china = Authority::new(Url::parse("https://login.chinacloudapi.cn").unwrap(), Tenant::Id(tid()));
        assert_eq!(china.v1_issuer_for(tid()), format!("https://sts.chinacloudapi.cn/{}/", tid()));
        assert_eq!(
            Authority::public_cloud(Tenant::Common).v1_issuer_for(tid()),
            format!("https://sts.windows.net/{}/", tid())
        );
    }

    #[test]
    fn a_refusal_is_the_callers_and_unavailable_keys_are_not() {
        assert!(BearerError::Expired.is_refusal());
        assert!(BearerError::Key(JwksError::UnknownKey("k".into())).is_refusal());
        assert!(!BearerError::Unavailable("down".into()).is_refusal());
        assert!(!BearerError::Key(JwksError::Unavailable { uri: "u".into(), reason: "r".into() }).is_refusal());
    }

    #[test]
    fn the_groups_overage_is_entras_pointer_for_groups() {
        let claims = |extra: Value| {
            let mut base = json!({ "oid": Uuid::nil(), "tid": Uuid::nil(), "iss": "i", "exp": 1 });
            base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<AccessTokenClaims>(base).unwrap()
        };
        assert!(claims(json!({ "_claim_names": { "groups": "src1" } })).has_groups_overage());
        assert!(!claims(json!({ "_claim_names": { "other": "src1" } })).has_groups_overage());
        assert!(!claims(json!({ "groups": ["g"] })).has_groups_overage());
    }
}
