use std::time::Duration;

use crate::helpers::*;
use entra_emulator::{BadIdToken, GraphFailure, TokenFailure};
use reqwest::StatusCode;

/// Asserts an error page: its status, a phrase, a request id, and that nobody got signed in.
async fn assert_error_page(app: &TestApp, response: reqwest::Response, status: StatusCode, phrase: &str) -> String {
    assert_eq!(response.status(), status);
    assert!(response.headers().get("location").is_none(), "an error page, not a redirect");
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let html = response.text().await.unwrap();
    assert!(html.contains(phrase), "expected {phrase:?} in {html}");
    assert!(html.contains("id=\"request-id\""), "the page quotes a request id");
    assert!(html.contains(&request_id), "the page quotes this request's id {request_id}: {html}");
    assert!(!app.is_signed_in().await, "nobody is left half signed in");
    html
}

#[tokio::test]
async fn tampered_state_is_refused() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let tampered = with_query_param(&callback, "state", "forged-state");
    let response = app.browser.get(tampered).send().await.unwrap();
    assert_error_page(
        &app,
        response,
        StatusCode::BAD_REQUEST,
        "does not belong to a sign-in in progress in this browser",
    )
    .await;
}

#[tokio::test]
async fn replayed_callback_is_refused() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    assert_eq!(app.browser.get(&callback).send().await.unwrap().status(), StatusCode::SEE_OTHER);

    // The same callback again, in the same browser: refused, and the user stays signed in.
    let again = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(app.is_signed_in().await, "nothing the user has is lost");

    // In an attacker's browser: refused, not signed in.
    let attacker = app.with_new_browser();
    let response = attacker.browser.get(&callback).send().await.unwrap();
    assert_error_page(&attacker, response, StatusCode::BAD_REQUEST, "cannot be completed").await;
}

#[tokio::test]
async fn callback_without_a_pending_sign_in_or_state_is_refused() {
    let app = spawn_app().await;
    let response = app.get("/callback?code=abc&state=def").await;
    assert_error_page(&app, response, StatusCode::BAD_REQUEST, "cannot be completed").await;
    let response = app.get("/callback?code=abc").await;
    assert_error_page(&app, response, StatusCode::BAD_REQUEST, "cannot be completed").await;
    let response = app.get("/callback?code=abc&error=").await;
    assert_error_page(&app, response, StatusCode::BAD_REQUEST, "cannot be completed").await;
    // With none of state, code and error, it is where Entra sends the browser after sign-out.
    let response = app.get("/callback").await;
    assert_eq!((response.status(), location(&response)), (StatusCode::SEE_OTHER, "/".to_owned()));
}

#[tokio::test]
async fn declined_consent_shows_access_denied() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, false).await;
    assert_eq!(query_param(&callback, "error").as_deref(), Some("access_denied"));
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_error_page(&app, response, StatusCode::FORBIDDEN, "You declined the permissions").await;
}

#[tokio::test]
async fn expired_pending_sign_in_is_refused() {
    let app =
        spawn_app_with(Options { pending_sign_in_lifetime: Some(Duration::from_secs(1)), ..Options::default() }).await;
    let login = app.get("/login").await;
    let pending_cookie = set_cookie(&login, "entra-signin.").expect("the pending sign-in cookie");
    assert!(pending_cookie.contains("Max-Age=1"), "the cookie lives as long as the sign-in may take: {pending_cookie}");
    let callback = app.sign_in_at_emulator(&location(&login), ADELE, ADELE_PASSWORD, true).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // The browser dropped the cookie with its Max-Age: the callback belongs to no sign-in.
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_error_page(&app, response, StatusCode::BAD_REQUEST, "took longer than a sign-in may take").await;

    // A client that kept the cookie anyway: the sealed expiry inside it refuses it too.
    let response = browser().get(&callback).header("cookie", cookie_pair(&pending_cookie)).send().await.unwrap();
    assert_error_page(&app, response, StatusCode::BAD_REQUEST, "This sign-in expired").await;
}

#[tokio::test]
async fn every_bad_id_token_is_rejected() {
    let app = spawn_app().await;
    for kind in BadIdToken::ALL {
        let authorize = app.start_sign_in("/login").await;
        let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
        app.emulator.faults().issue_bad_id_token(kind);
        let response = app.browser.get(&callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{kind:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains("The sign-in could not be verified"), "{kind:?}: {html}");
        assert!(!app.is_signed_in().await, "{kind:?} left someone signed in");
    }
}

#[tokio::test]
async fn graph_failures_answer_502() {
    let app = spawn_app().await;
    for status in [401, 500] {
        let authorize = app.start_sign_in("/login").await;
        let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
        app.emulator
            .faults()
            .fail_graph_requests(1, GraphFailure { status, retry_after_secs: None, claims_challenge: None });
        let response = app.browser.get(&callback).send().await.unwrap();
        assert_error_page(&app, response, StatusCode::BAD_GATEWAY, "Your profile could not be loaded").await;
    }
}

#[tokio::test]
async fn token_endpoint_invalid_client_answers_502_with_the_fix() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    app.emulator.faults().fail_token_requests(1, TokenFailure::new("invalid_client", 7000215));
    let response = app.browser.get(&callback).send().await.unwrap();
    let html =
        assert_error_page(&app, response, StatusCode::BAD_GATEWAY, "the secret&#39;s Value (not its Secret ID)").await;
    assert!(html.contains("check the app setting CLIENT_SECRET"), "the app names its own setting: {html}");
}

#[tokio::test]
async fn a_token_endpoint_that_does_not_answer_in_time_is_a_502_page_not_a_hang() {
    let app = spawn_app_with(Options { http_timeout: Some(Duration::from_secs(1)), ..Options::default() }).await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    // The token endpoint now takes longer than the app waits for any call.
    app.emulator.faults().set_token_latency(Duration::from_secs(3));
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_error_page(&app, response, StatusCode::BAD_GATEWAY, "Microsoft sign-in is not answering properly").await;
}

#[tokio::test]
async fn unreachable_tenant_answers_503_and_readiness_says_why() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_host = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(Options { authority_host: Some(dead_host), ..Options::default() }).await;
    let response = app.get("/login").await;
    let html =
        assert_error_page(&app, response, StatusCode::SERVICE_UNAVAILABLE, "Microsoft sign-in is unreachable").await;
    assert!(html.contains("check the app setting AUTHORITY_HOST and TENANT_ID"), "{html}");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.text().await.unwrap(),
        "not ready: identity provider metadata not loaded",
        "which dependency, not its raw error"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn sign_out_with_a_forged_csrf_token_is_refused_and_keeps_the_user_signed_in() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    let response = app.browser.post(app.url("/logout")).form(&[("csrf_token", "forged")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(app.is_signed_in().await);
}

#[tokio::test]
async fn unknown_paths_get_a_404_page() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn the_app_starts_without_its_tenant_and_recovers_when_it_becomes_reachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app =
        spawn_app_with(Options { authority_host: Some(format!("http://127.0.0.1:{port}")), ..Options::default() })
            .await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "started anyway");
    assert_eq!(app.get("/login").await.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Entra becomes reachable (network up): no restart needed.
    let options = entra_emulator::ListenOptions { bind: ([127, 0, 0, 1], port).into(), ..Default::default() };
    let late = entra_emulator::Emulator::start_with(entra_emulator::EmulatorConfig::default(), options).await.unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz").await.status() == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the metadata load was retried with backoff and succeeded");
    let login = app.get("/login").await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert!(location(&login).starts_with(&late.authority()));
}

#[tokio::test]
async fn an_unreachable_jwks_is_a_502_page_and_the_next_sign_in_works() {
    let app = spawn_app().await;
    app.emulator.faults().fail_jwks_requests(1);
    let response = app.sign_in(ADELE, ADELE_PASSWORD).await;
    assert_error_page(&app, response, StatusCode::BAD_GATEWAY, "Microsoft sign-in is not answering properly").await;
    // The keys were never loaded: the next sign-in fetches them (no budget applies to a first fetch).
    app.sign_in_adele().await;
    assert!(app.is_signed_in().await);
}

#[tokio::test]
async fn entra_error_codes_in_the_callback_are_read_bracketed_as_entra_sends_them() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login").await;
    let state = query_param(&authorize, "state").expect("state");
    // Only the bracketed error_codes name the AADSTS code: the description does not.
    let callback = format!(
        "{}/callback?state={state}&error=access_denied&error_description=declined&error_codes=%5B65004%5D",
        app.base_url
    );
    let response = app.browser.get(callback).send().await.unwrap();
    assert_error_page(&app, response, StatusCode::FORBIDDEN, "You declined the permissions this app asked for").await;
}
