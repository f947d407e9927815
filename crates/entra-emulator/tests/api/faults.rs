use std::time::{Duration, Instant};

use crate::helpers::*;
use entra_emulator::{BadIdToken, TokenFailure};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn token_failures_are_injected_for_the_next_n_requests() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    emulator.faults().fail_token_requests(1, TokenFailure::new("temporarily_unavailable", 90033));
    let (status, body) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "temporarily_unavailable", 90033);
    assert_eq!(redeem(&emulator, &code, &verifier).await.0, StatusCode::OK, "only one failure was asked for");
}

#[tokio::test]
async fn graph_throttling_answers_429_with_retry_after() {
    let emulator = emulator().await;
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, tokens) = redeem(&emulator, &code, &verifier).await;
    let token = tokens["access_token"].as_str().unwrap();
    emulator.faults().throttle_graph(1, 2);
    let me = format!("{}/v1.0/me", emulator.graph_endpoint());
    let throttled = http().get(&me).bearer_auth(token).send().await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "2");
    let ok = http().get(&me).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_bad_id_token_kind_is_bad_in_its_own_way() {
    let emulator = emulator().await;
    let browser = browser();
    for kind in BadIdToken::ALL {
        let (code, verifier) = code_for_adele(&browser, &emulator).await;
        emulator.faults().issue_bad_id_token(kind);
        let (status, body) = redeem(&emulator, &code, &verifier).await;
        assert_eq!(status, StatusCode::OK);
        let id_token = body["id_token"].as_str().unwrap();
        let header = header_of(id_token);
        let claims = claims_of(id_token);
        match kind {
            BadIdToken::WrongNonce => assert_ne!(claims["nonce"], "nonce-456"),
            BadIdToken::WrongAudience => assert_ne!(claims["aud"], client_id()),
            BadIdToken::WrongIssuer => assert_ne!(claims["iss"], emulator.issuer()),
            BadIdToken::WrongTenant => {
                assert_ne!(claims["tid"], emulator.tenant_id().to_string());
                assert!(claims["iss"].as_str().unwrap().contains(claims["tid"].as_str().unwrap()));
            }
            BadIdToken::Expired => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
                let exp = claims["exp"].as_i64().unwrap();
                assert!(exp < now - 600, "expired well beyond any clock leeway: exp {exp}, now {now}");
            }
            BadIdToken::UnknownKid => {
                assert_ne!(header["kid"], header_of(&first_good_id_token(&emulator, &browser).await)["kid"])
            }
            BadIdToken::AlgNone => {
                assert_eq!(header["alg"], "none");
                assert!(id_token.ends_with('.'));
            }
            BadIdToken::Hs256WithPublicKey => assert_eq!(header["alg"], "HS256"),
        }
    }
    // The switch is one-shot: the next token is good again.
    let good = first_good_id_token(&emulator, &browser).await;
    assert_eq!(claims_of(&good)["nonce"], "nonce-456");
}

async fn first_good_id_token(emulator: &entra_emulator::Emulator, browser: &reqwest::Client) -> String {
    let (code, verifier) = code_for_adele(browser, emulator).await;
    let (_, body) = redeem(emulator, &code, &verifier).await;
    body["id_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn admin_routes_drive_the_same_switches_over_http() {
    let emulator = emulator().await;
    let admin = format!("{}/_emulator", emulator.base_url());
    let http = http();

    let summary: Value = http.get(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["tenant_id"], emulator.tenant_id().to_string());

    let status = http
        .post(format!("{admin}/faults/token"))
        .json(&json!({"count": 1, "error": "invalid_client", "code": 7000222}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (status, body) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 7000222);

    let rotated: Value = http.post(format!("{admin}/keys/rotate")).send().await.unwrap().json().await.unwrap();
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, body) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(header_of(body["id_token"].as_str().unwrap())["kid"], rotated["kid"]);

    let revoked: Value = http.post(format!("{admin}/users/{ADELE}/revoke")).send().await.unwrap().json().await.unwrap();
    assert_eq!(revoked["revoked"], 1);

    http.post(format!("{admin}/faults/id-token")).json(&json!({"kind": "alg-none"})).send().await.unwrap();
    let (code, verifier) = code_for_adele(&browser(), &emulator).await;
    let (_, body) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(header_of(body["id_token"].as_str().unwrap())["alg"], "none");

    http.post(format!("{admin}/faults/jwks")).json(&json!({"count": 1})).send().await.unwrap();
    let keys = format!("{}/discovery/v2.0/keys", emulator.authority());
    assert_eq!(
        http.get(&keys).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the JWKS is down once"
    );
    assert_eq!(http.get(&keys).send().await.unwrap().status(), StatusCode::OK, "then back");

    http.post(format!("{admin}/faults/latency")).json(&json!({"token_ms": 300})).send().await.unwrap();
    let started = Instant::now();
    token_request(&emulator, &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    assert!(started.elapsed() >= Duration::from_millis(300), "latency applied");
    http.post(format!("{admin}/faults/clear")).send().await.unwrap();

    let bad = http.post(format!("{admin}/faults/id-token")).json(&json!({"kind": "nonsense"})).send().await.unwrap();
    assert!(bad.status().is_client_error());
}
