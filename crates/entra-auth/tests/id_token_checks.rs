//! Every ID token check, one at a time, with the reason it refuses: each test breaks exactly one
//! thing in an otherwise valid token, so removing any single check (the signature included) fails
//! a test here. Keys are real RSA keys; the JWKS is served over TCP on loopback.

#![allow(clippy::unwrap_used, reason = "fixtures fail the test on the spot")]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_auth::CONSUMERS_TENANT_ID;
use entra_auth::Tenant;
use entra_auth::oidc::JwksCache;
use entra_auth::oidc::ProviderMetadata;
use entra_auth::oidc::{Expectations, IdTokenClaims, IdTokenError, verify, verify_with_key};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

const CLIENT_ID: &str = "3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41";
const NONCE: &str = "the-nonce-sent-to-authorize";
const KID: &str = "kid-1";
const LEEWAY: Duration = Duration::from_secs(120);

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Another key pair: signs with the right `kid` but is not the published key.
    impostor: EncodingKey,
    public_pem: String,
    n: String,
    e: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let impostor = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let public = rsa::RsaPublicKey::from(&private);
        let public_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
        Keys {
            encoding: EncodingKey::from_rsa_pem(private.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap(),
            decoding: DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap(),
            impostor: EncodingKey::from_rsa_pem(impostor.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap(),
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            public_pem,
        }
    })
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn tenant_provider(tid: Uuid) -> ProviderMetadata {
    let base = format!("https://login.microsoftonline.com/{tid}");
    ProviderMetadata {
        issuer: format!("{base}/v2.0"),
        authorization_endpoint: Url::parse(&format!("{base}/oauth2/v2.0/authorize")).unwrap(),
        token_endpoint: Url::parse(&format!("{base}/oauth2/v2.0/token")).unwrap(),
        jwks_uri: Url::parse(&format!("{base}/discovery/v2.0/keys")).unwrap(),
        end_session_endpoint: None,
    }
}

fn template_provider() -> ProviderMetadata {
    ProviderMetadata {
        issuer: "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
        ..tenant_provider(Uuid::nil())
    }
}

/// Valid claims for tenant `tid`.
fn claims(tid: Uuid) -> Value {
    let now = now();
    json!({
        "aud": CLIENT_ID, "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600, "tid": tid, "oid": Uuid::new_v4(), "sub": "pairwise",
        "name": "Adele Vance", "nonce": NONCE, "ver": "2.0", "sid": "entra-session",
    })
}

fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(&header, claims, &keys().encoding).unwrap()
}

fn with(mut claims: Value, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    change(claims.as_object_mut().unwrap());
    claims
}

fn check(token: &str, provider: &ProviderMetadata, tenant: &Tenant) -> Result<IdTokenClaims, IdTokenError> {
    let expected = Expectations { client_id: CLIENT_ID, tenant, nonce: NONCE, leeway: LEEWAY };
    verify_with_key(token, &keys().decoding, None, provider, &expected)
}

fn single_tenant() -> (Uuid, ProviderMetadata, Tenant) {
    let tid = Uuid::new_v4();
    (tid, tenant_provider(tid), Tenant::Id(tid))
}

#[test]
fn a_valid_token_passes_and_yields_its_claims() {
    let (tid, provider, tenant) = single_tenant();
    let claims = check(&sign(&claims(tid)), &provider, &tenant).unwrap();
    assert_eq!(claims.tid, tid);
    assert_eq!(claims.iss, provider.issuer);
    assert_eq!(claims.sid.as_deref(), Some("entra-session"));
}

#[test]
fn a_signature_by_another_key_is_refused_as_a_bad_signature() {
    let (tid, provider, tenant) = single_tenant();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    let forged = jsonwebtoken::encode(&header, &claims(tid), &keys().impostor).unwrap();
    assert!(matches!(check(&forged, &provider, &tenant), Err(IdTokenError::BadSignature)));
}

#[test]
fn altered_claims_under_a_valid_signature_are_refused_as_a_bad_signature() {
    let (tid, provider, tenant) = single_tenant();
    let token = sign(&claims(tid));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let altered = with(claims(tid), |c| {
        c.insert("name".into(), json!("Mallory"));
    });
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered).unwrap());
    assert!(matches!(check(&parts.join("."), &provider, &tenant), Err(IdTokenError::BadSignature)));
}

#[test]
fn expired_beyond_the_leeway_is_refused_within_it_accepted() {
    let (tid, provider, tenant) = single_tenant();
    let long_ago = with(claims(tid), |c| {
        c.insert("exp".into(), json!(now() - LEEWAY.as_secs() - 60));
    });
    assert!(matches!(check(&sign(&long_ago), &provider, &tenant), Err(IdTokenError::Expired)));
    let just = with(claims(tid), |c| {
        c.insert("exp".into(), json!(now() - LEEWAY.as_secs() / 2));
    });
    assert!(check(&sign(&just), &provider, &tenant).is_ok(), "within the clock leeway");
}

#[test]
fn not_valid_yet_beyond_the_leeway_is_refused() {
    let (tid, provider, tenant) = single_tenant();
    let future = with(claims(tid), |c| {
        c.insert("nbf".into(), json!(now() + LEEWAY.as_secs() + 60));
    });
    assert!(matches!(check(&sign(&future), &provider, &tenant), Err(IdTokenError::NotYetValid)));
}

#[test]
fn another_audience_is_refused() {
    let (tid, provider, tenant) = single_tenant();
    let other = with(claims(tid), |c| {
        c.insert("aud".into(), json!(Uuid::new_v4().to_string()));
    });
    assert!(matches!(check(&sign(&other), &provider, &tenant), Err(IdTokenError::WrongAudience)));
}

#[test]
fn another_issuer_is_refused() {
    let (tid, provider, tenant) = single_tenant();
    let other = with(claims(tid), |c| {
        c.insert("iss".into(), json!("https://evil.example/v2.0"));
    });
    assert!(
        matches!(check(&sign(&other), &provider, &tenant), Err(IdTokenError::WrongIssuer(iss)) if iss == "https://evil.example/v2.0")
    );
}

#[test]
fn a_tenant_the_authority_does_not_accept_is_refused_even_with_its_own_exact_issuer() {
    // `consumers` accepts personal accounts only: a work tenant's token, with that tenant's
    // correct issuer, passes the issuer check and must fail the tenant check.
    let work_tenant = Uuid::new_v4();
    let refused = check(&sign(&claims(work_tenant)), &template_provider(), &Tenant::Consumers);
    assert!(matches!(refused, Err(IdTokenError::WrongTenant(tid)) if tid == work_tenant), "{refused:?}");
    assert!(check(&sign(&claims(CONSUMERS_TENANT_ID)), &template_provider(), &Tenant::Consumers).is_ok());
    // `organizations` is the reverse.
    let personal = check(&sign(&claims(CONSUMERS_TENANT_ID)), &template_provider(), &Tenant::Organizations);
    assert!(matches!(personal, Err(IdTokenError::WrongTenant(_))), "{personal:?}");
    assert!(check(&sign(&claims(work_tenant)), &template_provider(), &Tenant::Organizations).is_ok());
}

#[test]
fn a_multi_tenant_issuer_must_name_the_tokens_own_tenant() {
    let tid = Uuid::new_v4();
    let other_tenants_issuer = with(claims(tid), |c| {
        c.insert("iss".into(), json!(format!("https://login.microsoftonline.com/{}/v2.0", Uuid::new_v4())));
    });
    assert!(matches!(
        check(&sign(&other_tenants_issuer), &template_provider(), &Tenant::Common),
        Err(IdTokenError::WrongIssuer(_))
    ));
    let own = check(&sign(&claims(tid)), &template_provider(), &Tenant::Common).unwrap();
    assert_eq!(own.iss, format!("https://login.microsoftonline.com/{tid}/v2.0"), "its own tenant's issuer passes");
}

#[test]
fn a_wrong_or_missing_nonce_is_refused() {
    let (tid, provider, tenant) = single_tenant();
    let wrong = with(claims(tid), |c| {
        c.insert("nonce".into(), json!("another-sign-in"));
    });
    assert!(matches!(check(&sign(&wrong), &provider, &tenant), Err(IdTokenError::NonceMismatch)));
    let missing = with(claims(tid), |c| {
        c.remove("nonce");
    });
    assert!(matches!(check(&sign(&missing), &provider, &tenant), Err(IdTokenError::NonceMismatch)));
    let prefix = with(claims(tid), |c| {
        c.insert("nonce".into(), json!(&NONCE[..NONCE.len() - 1]));
    });
    assert!(matches!(check(&sign(&prefix), &provider, &tenant), Err(IdTokenError::NonceMismatch)));
}

#[test]
fn missing_required_claims_are_refused() {
    let (tid, provider, tenant) = single_tenant();
    for claim in ["exp", "iat", "aud", "iss"] {
        let missing = with(claims(tid), |c| {
            c.remove(claim);
        });
        let refused = check(&sign(&missing), &provider, &tenant);
        assert!(matches!(refused, Err(IdTokenError::MissingClaims(_))), "{claim}: {refused:?}");
    }
    for claim in ["oid", "tid", "sub"] {
        let missing = with(claims(tid), |c| {
            c.remove(claim);
        });
        let refused = check(&sign(&missing), &provider, &tenant);
        assert!(matches!(refused, Err(IdTokenError::MissingClaims(_))), "{claim}: {refused:?}");
    }
}

/// A JWKS endpoint on loopback publishing the test key.
async fn jwks_cache() -> JwksCache {
    let keys = keys();
    let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID, "n": keys.n, "e": keys.e}]});
    let app =
        axum::Router::new().route("/keys", axum::routing::get(move || std::future::ready(axum::Json(jwks.clone()))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    JwksCache::new(http, Url::parse(&format!("http://{address}/keys")).unwrap())
}

async fn verify_online(token: &str, tid: Uuid) -> Result<IdTokenClaims, IdTokenError> {
    let provider = tenant_provider(tid);
    let tenant = Tenant::Id(tid);
    let expected = Expectations { client_id: CLIENT_ID, tenant: &tenant, nonce: NONCE, leeway: LEEWAY };
    verify(token, &provider, &jwks_cache().await, &expected).await
}

#[tokio::test]
async fn through_the_jwks_a_valid_token_passes() {
    let tid = Uuid::new_v4();
    assert!(verify_online(&sign(&claims(tid)), tid).await.is_ok());
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused_before_any_key_is_used() {
    let tid = Uuid::new_v4();
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(tid)).unwrap());
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"kid-1"}"#);
    let alg_none = format!("{none_header}.{body}.");
    assert!(
        matches!(verify_online(&alg_none, tid).await, Err(IdTokenError::UnsupportedAlgorithm(alg)) if alg == "none")
    );

    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_owned());
    let confused =
        jsonwebtoken::encode(&header, &claims(tid), &EncodingKey::from_secret(keys().public_pem.as_bytes()).unwrap())
            .unwrap();
    assert!(
        matches!(verify_online(&confused, tid).await, Err(IdTokenError::UnsupportedAlgorithm(alg)) if alg == "HS256")
    );
}

#[tokio::test]
async fn a_token_without_a_kid_or_naming_an_unpublished_key_is_refused() {
    let tid = Uuid::new_v4();
    let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(tid), &keys().encoding).unwrap();
    assert!(matches!(verify_online(&no_kid, tid).await, Err(IdTokenError::MissingKeyId)));
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("not-published".to_owned());
    let unknown = jsonwebtoken::encode(&header, &claims(tid), &keys().encoding).unwrap();
    assert!(matches!(verify_online(&unknown, tid).await, Err(IdTokenError::Key(_))));
}

#[tokio::test]
async fn malformed_tokens_are_refused_as_malformed() {
    let tid = Uuid::new_v4();
    for token in ["", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.sig"] {
        let refused = verify_online(token, tid).await;
        assert!(matches!(refused, Err(IdTokenError::Malformed)), "{token:?}: {refused:?}");
    }
}
