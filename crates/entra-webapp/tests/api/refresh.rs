//! Tokens that stay fresh: refresh, rotation, one refresh for concurrent requests, revocation,
//! Graph throttling and claims challenges.

use std::time::Duration;

use crate::helpers::*;
use entra_emulator::GraphFailure;
use reqwest::StatusCode;

const SHORT_LIFETIME: Duration = Duration::from_secs(2);

fn refresh_tokens_issued(app: &TestApp) -> usize {
    app.emulator.issued_secrets().iter().filter(|s| s.starts_with("1.emu-rt.")).count()
}

/// Strict rotation: a refresh token the app failed to replace would be refused.
async fn short_lived_app() -> TestApp {
    spawn_app_with(Options {
        access_token_lifetime: Some(SHORT_LIFETIME),
        strict_refresh_token_rotation: true,
        ..Options::default()
    })
    .await
}

async fn wait_for_expiry() {
    tokio::time::sleep(SHORT_LIFETIME + Duration::from_millis(1200)).await;
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_transparently_and_the_refresh_token_rotates() {
    let app = short_lived_app().await;
    app.sign_in_adele().await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert!(profile.text().await.unwrap().contains("Adele Vance"));
    let before = refresh_tokens_issued(&app);

    wait_for_expiry().await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK, "the user notices nothing");
    assert_eq!(refresh_tokens_issued(&app), before + 1, "refreshed once, with a new refresh token");

    wait_for_expiry().await;
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK, "the rotated refresh token was stored and works");
    assert_eq!(refresh_tokens_issued(&app), before + 2);
}

#[tokio::test]
async fn concurrent_requests_cause_one_refresh() {
    let app = short_lived_app().await;
    app.sign_in_adele().await;
    let before = refresh_tokens_issued(&app);
    wait_for_expiry().await;
    let requests = (0..6).map(|_| app.browser.get(app.url("/profile")).send());
    let responses = futures::future::join_all(requests).await;
    for response in responses {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(refresh_tokens_issued(&app), before + 1, "one refresh for all of them");
}

#[tokio::test]
async fn a_revoked_refresh_token_sends_the_user_to_sign_in_again() {
    let app = short_lived_app().await;
    app.sign_in_adele().await;
    app.emulator.revoke_refresh_tokens(ADELE).unwrap();
    wait_for_expiry().await;
    let response = app.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?return_to=%2Fprofile", "back to sign-in, keeping the destination");
}

#[tokio::test]
async fn a_transient_refresh_failure_is_a_503_page_once_and_the_next_request_refreshes() {
    let app = short_lived_app().await;
    app.sign_in_adele().await;
    wait_for_expiry().await;
    let before = refresh_tokens_issued(&app);
    app.emulator.faults().fail_token_requests(1, entra_emulator::TokenFailure::new("temporarily_unavailable", 50001));
    let failed = app.get("/profile").await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE, "Entra was down for that request");
    assert!(failed.text().await.unwrap().contains("id=\"request-id\""), "the app's error page");
    // Entra is back: the very next request refreshes; the failure is not remembered.
    let recovered = app.get("/profile").await;
    let status = recovered.status();
    assert_eq!(status, StatusCode::OK, "{}", recovered.text().await.unwrap());
    assert_eq!(refresh_tokens_issued(&app), before + 1, "refreshed once, after the failure");
}

#[tokio::test]
async fn graph_throttling_is_retried_and_endless_throttling_is_a_503_page() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    app.emulator.faults().throttle_graph(2, 1);
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK, "retried after Retry-After");

    app.emulator.faults().throttle_graph(u32::MAX, 1);
    let started = std::time::Instant::now();
    let response = app.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text().await.unwrap().contains("Microsoft Graph is busy"));
    assert!(started.elapsed() < Duration::from_secs(20), "the wait is bounded");
    app.emulator.faults().clear();
}

#[tokio::test]
async fn a_claims_challenge_sends_the_user_to_sign_in_with_the_claims() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, claims);
    app.emulator
        .faults()
        .fail_graph_requests(1, GraphFailure { status: 401, retry_after_secs: None, claims_challenge: Some(encoded) });
    let response = app.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let login = location(&response);
    assert!(login.starts_with("/login?return_to=%2Fprofile&claims="), "{login}");
    let authorize = app.start_sign_in(&login).await;
    // The challenge reaches Entra whole, with the app's declared capability (cp1) merged in.
    let sent: serde_json::Value = serde_json::from_str(&query_param(&authorize, "claims").unwrap()).unwrap();
    let expected = serde_json::json!({ "access_token": {
        "nbf": { "essential": true, "value": "1700000000" },
        "xms_cc": { "values": ["cp1"] },
    } });
    assert_eq!(sent, expected);
}

#[tokio::test]
async fn a_standing_claims_challenge_is_met_by_signing_in_again_with_the_claims() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    // Conditional Access now requires authentication context c1 for Graph: the emulator refuses
    // every token without it until the user signs in again with the challenge's claims, so only
    // an app that really sends them gets its page back.
    app.emulator.faults().require_auth_context("c1");
    let response = app.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let authorize = app.start_sign_in(&location(&response)).await;
    let step_up = app.browser.get(&authorize).send().await.unwrap();
    assert_eq!(step_up.status(), StatusCode::OK, "the password is asked again, the SSO session is not enough");
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let back = app.browser.get(callback).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&back), "/profile", "back where the challenge came from");
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert!(profile.text().await.unwrap().contains("Adele Vance"));
}

#[tokio::test]
async fn the_photo_is_served_through_the_app_with_a_placeholder_when_missing() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    let photo = app.get("/profile/photo").await;
    assert_eq!(photo.status(), StatusCode::OK);
    assert_eq!(photo.headers()["content-type"], "image/svg+xml");
    assert!(photo.text().await.unwrap().starts_with("<svg"));
}

#[tokio::test]
async fn after_a_claims_challenge_the_refused_access_token_is_not_used_again() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    let before = refresh_tokens_issued(&app);
    let claims = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, r#"{"access_token":{}}"#);
    app.emulator
        .faults()
        .fail_graph_requests(1, GraphFailure { status: 401, retry_after_secs: None, claims_challenge: Some(claims) });
    assert_eq!(app.get("/profile").await.status(), StatusCode::SEE_OTHER, "to sign-in with the challenge");
    // The user comes back without signing in: the token Graph refused is gone, so a new one is
    // fetched before Graph is called again.
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    assert_eq!(refresh_tokens_issued(&app), before + 1, "the refused token was replaced, not reused");
}
