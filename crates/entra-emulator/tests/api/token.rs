use std::time::Duration;

use crate::helpers::*;
use base64::Engine;
use entra_emulator::{DEFAULT_CLIENT_SECRET, EmulatorConfig};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn code_redeems_for_tokens_with_entra_v2_claims() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (status, body) = token_request(
        &emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
            ("client_info", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    // Entra's lifetime: random between 60 and 90 minutes, and what the token itself says.
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((3600..=5400).contains(&expires_in), "{expires_in}");
    let access = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(), expires_in);
    assert!(body["refresh_token"].is_string());

    // The ID token verifies with the published JWKS and carries Entra's claims.
    let id_token = body["id_token"].as_str().unwrap();
    let header = header_of(id_token);
    assert_eq!(header["alg"], "RS256");
    let jwks: Value =
        http().get(format!("{}/discovery/v2.0/keys", emulator.authority())).send().await.unwrap().json().await.unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    assert_eq!(jwk.common.key_id.as_deref(), header["kid"].as_str());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[client_id()]);
    validation.set_issuer(&[emulator.issuer()]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation).unwrap().claims;
    let oid = emulator.user_object_id(ADELE).unwrap().to_string();
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["tid"], emulator.tenant_id().to_string());
    assert_eq!(claims["oid"], oid);
    assert_eq!(claims["name"], "Adele Vance");
    assert_eq!(claims["preferred_username"], ADELE);
    assert_eq!(claims["nonce"], "nonce-456");
    for claim in ["sub", "iat", "nbf", "exp", "sid", "uti"] {
        assert!(!claims[claim].is_null(), "{claim} in {claims}");
    }

    // client_info is MSAL's {"uid": oid, "utid": tid}.
    let info = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body["client_info"].as_str().unwrap()).unwrap();
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info, json!({"uid": oid, "utid": emulator.tenant_id().to_string()}));
}

#[tokio::test]
async fn replayed_code_is_rejected_with_aadsts54005() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    assert_eq!(redeem(&emulator, &code, &verifier).await.0, StatusCode::OK);
    let (status, body) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 54005);
}

#[tokio::test]
async fn wrong_code_verifier_is_rejected_with_aadsts501481() {
    let emulator = emulator().await;
    let (code, _) = code_for_adele(&browser(), &emulator).await;
    let (wrong_verifier, _) = pkce();
    let (status, body) = redeem(&emulator, &code, &wrong_verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 501481);
}

#[tokio::test]
async fn missing_code_verifier_is_rejected() {
    let emulator = emulator().await;
    let (code, _) = code_for_adele(&browser(), &emulator).await;
    let (status, body) = token_request(
        &emulator,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT_URI)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 501481);
}

#[tokio::test]
async fn redirect_uri_must_equal_the_authorize_one() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (status, body) = token_request(
        &emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:5001/callback"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 500112);
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_with_aadsts7000215() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let response = http()
        .post(token_url(&emulator))
        .form(&[
            ("client_id", client_id().as_str()),
            ("client_secret", "not-the-secret"),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_entra_error(&response.json().await.unwrap(), "invalid_client", 7000215);
}

#[tokio::test]
async fn expired_code_is_rejected_with_aadsts70008() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    emulator.advance_clock(Duration::from_secs(11 * 60));
    let (status, body) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 70008);
}

#[tokio::test]
async fn client_secret_basic_is_accepted() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let response = http()
        .post(token_url(&emulator))
        .basic_auth(client_id(), Some(DEFAULT_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_rotates_and_by_default_a_redeemed_token_stays_usable_as_on_entra() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, first) = redeem(&emulator, &code, &verifier).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let (status, second) =
        token_request(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", first_refresh)]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(first_refresh, second["refresh_token"].as_str().unwrap(), "every use returns a new refresh token");
    let (status, again) =
        token_request(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", first_refresh)]).await;
    assert_eq!(status, StatusCode::OK, "Entra keeps a redeemed refresh token usable: {again}");
}

#[tokio::test]
async fn with_strict_rotation_a_rotated_token_cannot_be_reused() {
    let emulator = emulator_with(|config| config.strict_refresh_token_rotation = true).await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, first) = redeem(&emulator, &code, &verifier).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let (status, second) =
        token_request(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", first_refresh)]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(first_refresh, second_refresh, "every use returns a new refresh token");
    assert_ne!(first["access_token"], second["access_token"]);
    assert!(claims_of(second["id_token"].as_str().unwrap()).get("nonce").is_none());

    let (status, reused) =
        token_request(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", first_refresh)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&reused, "invalid_grant", 70000);

    let (status, _) =
        token_request(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", second_refresh)]).await;
    assert_eq!(status, StatusCode::OK, "the newest refresh token still works");
}

#[tokio::test]
async fn refresh_cannot_widen_scopes() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, tokens) = redeem(&emulator, &code, &verifier).await;
    let (status, body) = token_request(
        &emulator,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "Mail.Read offline_access"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 65001);
}

#[tokio::test]
async fn revoked_refresh_token_is_rejected_with_aadsts50173() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, tokens) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(emulator.revoke_refresh_tokens(ADELE), Some(1));
    let (status, body) = token_request(
        &emulator,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 50173);
}

#[tokio::test]
async fn malformed_token_requests_get_entra_errors_not_5xx() {
    let emulator = emulator().await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, u64);
    let cases: Vec<Case> = vec![
        (vec![], "invalid_request", 900144),
        (vec![("grant_type", "password")], "unsupported_grant_type", 70003),
        (vec![("grant_type", "authorization_code")], "invalid_request", 900144),
        (vec![("grant_type", "authorization_code"), ("code", "garbage")], "invalid_grant", 70000),
        (vec![("grant_type", "refresh_token"), ("refresh_token", "garbage")], "invalid_grant", 9002313),
    ];
    for (form, error, code) in cases {
        let (status, body) = token_request(&emulator, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_entra_error(&body, error, code);
    }
    let raw = http()
        .post(token_url(&emulator))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'%', b'%', 0x00])
        .send()
        .await
        .unwrap();
    assert!(raw.status().is_client_error(), "{}", raw.status());
    let unknown_client = http()
        .post(token_url(&emulator))
        .form(&[("client_id", "nope"), ("client_secret", "x"), ("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_client.status(), StatusCode::BAD_REQUEST);
    assert_entra_error(&unknown_client.json().await.unwrap(), "unauthorized_client", 700016);
}

fn assertion_key() -> (EncodingKey, String) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let public_pem = rsa::RsaPublicKey::from(&private).to_public_key_pem(LineEnding::LF).unwrap();
    let private_pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
    (EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(), public_pem)
}

#[tokio::test]
async fn private_key_jwt_client_assertion_is_checked_against_the_registered_key() {
    let (signing_key, public_pem) = assertion_key();
    let emulator = emulator_with(|config: &mut EmulatorConfig| {
        config.clients[0].assertion_public_key_pem = Some(public_pem);
    })
    .await;
    let assertion_for = |key: &EncodingKey, aud: &str, jti: &str| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let claims = json!({"aud": aud, "iss": client_id(), "sub": client_id(), "jti": jti, "nbf": now, "iat": now, "exp": now + 600});
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key).unwrap()
    };
    let emulator = &emulator;
    let send = |assertion: String| {
        let url = token_url(emulator);
        async move {
            let browser = browser();
            let (code, verifier) = code_for_adele(&browser, emulator).await;
            http()
                .post(url)
                .form(&[
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", assertion.as_str()),
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let good = assertion_for(&signing_key, &token_url(emulator), "jti-1");
    assert_eq!(send(good.clone()).await.status(), StatusCode::OK);

    let replayed = send(good).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    assert_entra_error(&replayed.json().await.unwrap(), "invalid_client", 700027);

    let (other_key, _) = assertion_key();
    let forged = send(assertion_for(&other_key, &token_url(emulator), "jti-2")).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_entra_error(&forged.json().await.unwrap(), "invalid_client", 700027);

    let wrong_audience = send(assertion_for(&signing_key, "https://elsewhere.example/token", "jti-3")).await;
    assert_eq!(wrong_audience.status(), StatusCode::UNAUTHORIZED);
    assert_entra_error(&wrong_audience.json().await.unwrap(), "invalid_client", 700021);
}
