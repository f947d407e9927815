//! Redirect URIs by platform: a single-page app redeems its code from the browser (cross-origin,
//! PKCE, no secret, 24-hour refresh tokens), a desktop app without a secret, a web app only from
//! its server. <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const SPA_URI: &str = "http://localhost:3000/";
const SPA_ORIGIN: &str = "http://localhost:3000";
const DESKTOP_URI: &str = "http://localhost/desktop";

async fn emulator_with_platforms() -> entra_emulator::Emulator {
    emulator_with(|config| {
        config.clients[0].spa_redirect_uris = vec![SPA_URI.to_owned()];
        config.clients[0].public_client_redirect_uris = vec![DESKTOP_URI.to_owned()];
    })
    .await
}

/// Signs Adele in with `redirect_uri` and returns (code, verifier).
async fn code_at(emulator: &entra_emulator::Emulator, request: AuthorizeRequest) -> (String, String) {
    let response = sign_in_as(&browser(), emulator, &request, ADELE, ADELE_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let code = query_param(&location(&response), "code").expect("a code");
    (code, request.verifier)
}

/// A token request without any client credential, as a public client sends it.
async fn public_token_request(
    emulator: &entra_emulator::Emulator,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let client_id = client_id();
    let mut body: Vec<(&str, &str)> = vec![("client_id", &client_id)];
    body.extend_from_slice(form);
    let mut request = http().post(token_url(emulator)).form(&body);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

fn redeem_form<'a>(code: &'a str, verifier: &'a str, redirect_uri: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("scope", "openid profile offline_access User.Read"),
    ]
}

#[tokio::test]
async fn a_spa_redeems_cross_origin_without_a_secret_and_the_answer_is_readable_by_the_page() {
    let emulator = emulator_with_platforms().await;
    let (code, verifier) = code_at(&emulator, AuthorizeRequest::new().set("redirect_uri", SPA_URI)).await;

    let (status, headers, body) =
        public_token_request(&emulator, Some(SPA_ORIGIN), &redeem_form(&code, &verifier, SPA_URI)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string() && body["id_token"].is_string());
    assert_eq!(headers["access-control-allow-origin"], "*", "the page may read the answer");

    // The refresh token works from the browser too, and only from there.
    let refresh_token = body["refresh_token"].as_str().unwrap();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let (status, _, body) = public_token_request(&emulator, None, &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_request", 9002327);
    let (status, _, body) = public_token_request(&emulator, Some(SPA_ORIGIN), &refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_spa_code_redeemed_from_a_server_or_without_pkce_is_refused() {
    let emulator = emulator_with_platforms().await;
    let (code, verifier) = code_at(&emulator, AuthorizeRequest::new().set("redirect_uri", SPA_URI)).await;
    let (status, _, body) = public_token_request(&emulator, None, &redeem_form(&code, &verifier, SPA_URI)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_request", 9002327);

    let request = AuthorizeRequest::new().set("redirect_uri", SPA_URI).without("code_challenge");
    let (code, _) = code_at(&emulator, request.without("code_challenge_method")).await;
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", SPA_URI)];
    let (status, _, body) = public_token_request(&emulator, Some(SPA_ORIGIN), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_request", 9002325);
}

#[tokio::test]
async fn a_web_code_is_not_redeemable_from_a_browser_nor_without_the_secret() {
    let emulator = emulator_with_platforms().await;
    let (code, verifier) = code_at(&emulator, AuthorizeRequest::new()).await;
    let form = redeem_form(&code, &verifier, REDIRECT_URI);

    let (status, _, body) = public_token_request(&emulator, None, &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_entra_error(&body, "invalid_client", 7000218);

    // What a SPA registered on the Web platform by mistake meets; a secret does not help.
    let mut with_secret = form.to_vec();
    with_secret.push(("client_secret", entra_emulator::DEFAULT_CLIENT_SECRET));
    for form in [&form[..], &with_secret[..]] {
        let (status, _, body) = public_token_request(&emulator, Some("https://evil.example"), form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_entra_error(&body, "invalid_request", 9002326);
        assert!(body["error_description"].as_str().unwrap().contains("'https://evil.example'"));
    }

    // Neither refusal spent the code: the server redeems it.
    let (status, body) = redeem(&emulator, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_desktop_app_redeems_without_a_secret_on_any_localhost_port() {
    let emulator = emulator_with_platforms().await;
    let redirect_uri = "http://localhost:49152/desktop";
    let (code, verifier) = code_at(&emulator, AuthorizeRequest::new().set("redirect_uri", redirect_uri)).await;
    let (status, _, body) = public_token_request(&emulator, None, &redeem_form(&code, &verifier, redirect_uri)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let refresh = [("grant_type", "refresh_token"), ("refresh_token", body["refresh_token"].as_str().unwrap())];
    let (status, _, body) = public_token_request(&emulator, Some(SPA_ORIGIN), &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a desktop app's refresh token is not for browsers");
    assert_entra_error(&body, "invalid_request", 9002326);
    let (status, _, body) = public_token_request(&emulator, None, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_spa_refresh_token_lasts_24_hours_from_sign_in_however_often_renewed() {
    let emulator = emulator_with_platforms().await;
    let (code, verifier) = code_at(&emulator, AuthorizeRequest::new().set("redirect_uri", SPA_URI)).await;
    let (_, _, body) = public_token_request(&emulator, Some(SPA_ORIGIN), &redeem_form(&code, &verifier, SPA_URI)).await;
    let mut refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // Renewed every 10 hours: the second renewal still works (20 h), the third does not (30 h).
    for hours in [10, 20] {
        emulator.advance_clock(Duration::from_secs(10 * 3600));
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
        let (status, _, body) = public_token_request(&emulator, Some(SPA_ORIGIN), &refresh).await;
        assert_eq!(status, StatusCode::OK, "after {hours} h: {body}");
        refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    }
    emulator.advance_clock(Duration::from_secs(10 * 3600));
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    let (status, _, body) = public_token_request(&emulator, Some(SPA_ORIGIN), &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_entra_error(&body, "invalid_grant", 700084);
}

#[tokio::test]
async fn browsers_may_read_metadata_keys_and_graph_and_preflights_are_answered() {
    let emulator = emulator_with_platforms().await;
    let discovery = format!("{}/v2.0/.well-known/openid-configuration", emulator.authority());
    let keys = format!("{}/discovery/v2.0/keys", emulator.authority());
    for url in [discovery, keys] {
        let response = http().get(&url).header("origin", SPA_ORIGIN).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], "*", "{url}");
    }
    // Graph is called with an Authorization header: the browser asks first.
    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{}/v1.0/me", emulator.graph_endpoint()))
        .header("origin", SPA_ORIGIN)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    // The sign-in pages are navigated to, never fetched: no CORS there.
    let authorize = http().get(AuthorizeRequest::new().url(&emulator)).header("origin", SPA_ORIGIN).send().await;
    assert!(authorize.unwrap().headers().get("access-control-allow-origin").is_none());
}
