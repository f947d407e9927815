//! Micro-benchmarks of the per-sign-in hot paths: ID token validation and pending sign-in creation.

#![allow(clippy::unwrap_used, reason = "fixtures fail the run on the spot")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use entra_auth::Tenant;
use entra_auth::oidc::ProviderMetadata;
use entra_auth::oidc::{Expectations, verify_with_key};
use entra_auth::oidc::{PendingSignIn, authorization_url};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use url::Url;
use uuid::Uuid;

const CLIENT_ID: &str = "3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41";

fn provider(tenant: Uuid) -> ProviderMetadata {
    let base = "https://login.microsoftonline.com";
    ProviderMetadata {
        issuer: format!("{base}/{tenant}/v2.0"),
        authorization_endpoint: Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/authorize")).unwrap(),
        token_endpoint: Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/token")).unwrap(),
        jwks_uri: Url::parse(&format!("{base}/{tenant}/discovery/v2.0/keys")).unwrap(),
        end_session_endpoint: None,
    }
}

fn id_token_validation(c: &mut Criterion) {
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let encoding = EncodingKey::from_rsa_pem(private.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let public_pem = rsa::RsaPublicKey::from(&private).to_public_key_pem(LineEnding::LF).unwrap();
    let decoding = DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
    let tenant = Uuid::new_v4();
    let provider = provider(tenant);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "aud": CLIENT_ID, "iss": provider.issuer, "iat": now, "nbf": now, "exp": now + 3600,
        "tid": tenant, "oid": Uuid::new_v4(), "sub": "pairwise-subject", "name": "Adele Vance",
        "preferred_username": "adele@contoso.example", "nonce": "the-nonce", "ver": "2.0",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("kid-1".to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    let tenant_setting = Tenant::Id(tenant);
    let expected = Expectations {
        client_id: CLIENT_ID,
        tenant: &tenant_setting,
        nonce: "the-nonce",
        leeway: Duration::from_secs(120),
    };
    verify_with_key(&token, &decoding, None, &provider, &expected).expect("a valid token");
    c.bench_function("id_token/verify_rs256", |b| {
        b.iter(|| verify_with_key(black_box(&token), &decoding, None, &provider, &expected).unwrap())
    });
}

fn pending_sign_in(c: &mut Criterion) {
    let provider = provider(Uuid::new_v4());
    let redirect_uri = Url::parse("https://app.example/callback").unwrap();
    c.bench_function("sign_in/pending_and_authorize_url", |b| {
        b.iter(|| {
            let pending = PendingSignIn::new(
                black_box(entra_auth::LocalPath::parse("/profile").unwrap()),
                Duration::from_secs(600),
            );
            authorization_url(
                &provider.authorization_endpoint,
                CLIENT_ID,
                &redirect_uri,
                "openid profile offline_access User.Read",
                &pending,
                &entra_auth::SignInOptions::default(),
            )
        })
    });
}

criterion_group!(benches, id_token_validation, pending_sign_in);
criterion_main!(benches);
