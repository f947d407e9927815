//! Signing keys: for multi-tenant authorities a key's `issuer` member must match the token's
//! issuer; the JWKS is fetched again periodically and, for unknown `kid`s, within one global
//! budget. The JWKS is served over real TCP on loopback.

#![allow(clippy::unwrap_used, reason = "fixtures fail the run on the spot")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use entra_auth::Tenant;
use entra_auth::oidc::ProviderMetadata;
use entra_auth::oidc::{Expectations, IdTokenError, verify_with_key};
use entra_auth::oidc::{JwksCache, JwksError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use url::Url;
use uuid::Uuid;

const CLIENT_ID: &str = "3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41";
const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

fn multi_tenant_provider() -> ProviderMetadata {
    let base = "https://login.microsoftonline.com/organizations";
    ProviderMetadata {
        issuer: TEMPLATE.to_owned(),
        authorization_endpoint: Url::parse(&format!("{base}/oauth2/v2.0/authorize")).unwrap(),
        token_endpoint: Url::parse(&format!("{base}/oauth2/v2.0/token")).unwrap(),
        jwks_uri: Url::parse(&format!("{base}/discovery/v2.0/keys")).unwrap(),
        end_session_endpoint: None,
    }
}

#[test]
fn a_key_published_for_another_issuer_does_not_verify_a_multi_tenant_token() {
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let encoding = EncodingKey::from_rsa_pem(private.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let public_pem = rsa::RsaPublicKey::from(&private).to_public_key_pem(LineEnding::LF).unwrap();
    let decoding = DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
    let tid = Uuid::new_v4();
    let issuer = TEMPLATE.replace("{tenantid}", &tid.to_string());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "aud": CLIENT_ID, "iss": issuer, "iat": now, "nbf": now, "exp": now + 3600,
        "tid": tid, "oid": Uuid::new_v4(), "sub": "s", "nonce": "n", "ver": "2.0",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k".to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let provider = multi_tenant_provider();
    let tenant = Tenant::Organizations;
    let expected = Expectations { client_id: CLIENT_ID, tenant: &tenant, nonce: "n", leeway: Duration::from_secs(120) };

    assert!(
        verify_with_key(&token, &decoding, None, &provider, &expected).is_ok(),
        "no issuer member: nothing to check"
    );
    assert!(
        verify_with_key(&token, &decoding, Some(TEMPLATE), &provider, &expected).is_ok(),
        "the template, filled with tid"
    );
    assert!(verify_with_key(&token, &decoding, Some(&issuer), &provider, &expected).is_ok(), "the exact issuer");
    let other_cloud = "https://login.partner.microsoftonline.cn/{tenantid}/v2.0";
    assert!(matches!(
        verify_with_key(&token, &decoding, Some(other_cloud), &provider, &expected),
        Err(IdTokenError::KeyIssuerMismatch(_))
    ));
    let other_tenant = TEMPLATE.replace("{tenantid}", &Uuid::new_v4().to_string());
    assert!(matches!(
        verify_with_key(&token, &decoding, Some(&other_tenant), &provider, &expected),
        Err(IdTokenError::KeyIssuerMismatch(_))
    ));
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// A JWKS endpoint on loopback that counts its requests.
async fn jwks_server() -> (Url, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                axum::Json(serde_json::json!({"keys": [{
                    "kty": "RSA", "use": "sig", "kid": "known", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
                    "e": "AQAB", "issuer": TEMPLATE
                }]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (Url::parse(&format!("http://{address}/keys")).unwrap(), fetches)
}

#[tokio::test]
async fn unknown_kids_share_one_refetch_budget() {
    let (uri, fetches) = jwks_server().await;
    let cache = JwksCache::with_intervals(http(), uri, Duration::from_secs(3600), Duration::from_secs(3600));
    let key = cache.key("known").await.unwrap();
    assert_eq!(key.issuer.as_deref(), Some(TEMPLATE), "the key's issuer member is kept");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    for kid in ["forged-1", "forged-2", "forged-3", "forged-1"] {
        assert!(matches!(cache.key(kid).await, Err(JwksError::UnknownKey(_))));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "a flood of unknown kids right after a fetch fetches nothing");
    assert!(cache.key("known").await.is_ok());
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unknown_kid_after_the_interval_refetches_once() {
    let (uri, fetches) = jwks_server().await;
    let cache = JwksCache::with_intervals(http(), uri, Duration::from_secs(3600), Duration::from_millis(200));
    cache.key("known").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let flood = futures_lite_join(&cache, &["new-1", "new-2", "new-3"]).await;
    assert!(flood.iter().all(Result::is_err));
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "one refetch for the whole burst");
}

#[tokio::test]
async fn the_key_set_is_refreshed_periodically_even_when_every_kid_is_known() {
    let (uri, fetches) = jwks_server().await;
    let cache = JwksCache::with_intervals(http(), uri, Duration::from_millis(200), Duration::from_millis(100));
    cache.key("known").await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    cache.key("known").await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    cache.key("known").await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "refetched once the set was older than the refresh period");
}

async fn futures_lite_join(cache: &JwksCache, kids: &[&str]) -> Vec<Result<entra_auth::oidc::SigningKey, JwksError>> {
    let mut results = Vec::new();
    let futures: Vec<_> = kids.iter().map(|kid| cache.key(kid)).collect();
    for future in futures {
        results.push(future.await);
    }
    results
}
