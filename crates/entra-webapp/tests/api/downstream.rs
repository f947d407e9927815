//! Calling APIs as the user: a second resource's token through the refresh token, incremental
//! consent for a page that needs more, consent declined, one fetch for concurrent requests, and
//! tokens that stay on the server. Over TCP against the emulator.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

fn resource_tokens_issued(app: &TestApp) -> usize {
    app.emulator.issued_secrets().iter().filter(|s| s.starts_with("1.emu-rt.")).count()
}

/// The app with the emulator's API as its downstream API; `admin_consent` pre-consents everything.
async fn app_with_api(admin_consent: bool) -> TestApp {
    spawn_app_with(Options {
        emulator_setup: Some(Box::new(move |config, _| config.admin_consent = admin_consent)),
        settings_change: Some(Box::new(|settings, emulator| {
            let client_id = settings.client_id.clone().unwrap();
            settings.downstream_api_url = Some(emulator.api_endpoint(&client_id));
            settings.downstream_api_scopes = Some(format!("api://{client_id}/access_as_user"));
        })),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_consented_api_is_called_with_its_own_token_got_silently_through_the_refresh_token() {
    let app = app_with_api(true).await;
    app.sign_in_adele().await;
    let before = resource_tokens_issued(&app);
    let page = app.get("/downstream").await;
    assert_eq!(page.status(), StatusCode::OK, "no sign-in, no consent page");
    let html = page.text().await.unwrap();
    let client_id = entra_emulator::DEFAULT_CLIENT_ID;
    // What the API itself saw: a token for its own audience, not Graph's.
    assert!(html.contains(&format!("&#34;aud&#34;: &#34;api://{client_id}&#34;")), "{html}");
    assert!(html.contains("&#34;scp&#34;: &#34;access_as_user&#34;"), "{html}");
    assert!(html.contains("Adele Vance"), "the API saw the user: {html}");
    assert_eq!(resource_tokens_issued(&app), before + 1, "one token request for the new resource");
    // Kept for the resource: the next call needs no token request; the profile still works (its
    // own Graph token, and the rotated refresh token kept).
    assert_eq!(app.get("/downstream").await.status(), StatusCode::OK);
    assert_eq!(resource_tokens_issued(&app), before + 1, "the API's token is reused while valid");
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    // No token of any kind reached the browser.
    let pages = [app.page("/downstream").await, app.page("/profile").await];
    for secret in app.emulator.issued_secrets() {
        assert!(pages.iter().all(|page| !page.contains(&secret)), "a token reached a page");
    }
}

#[tokio::test]
async fn a_page_needing_an_unconsented_permission_asks_for_it_and_comes_back_with_data() {
    let app = spawn_app().await;
    let session_before = app.sign_in_adele_keeping_cookie().await;
    let response = app.get("/mail").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let consent = location(&response);
    assert_eq!(consent, "/login?scopes=Mail.Read&return_to=%2Fmail");
    let authorize = app.start_sign_in(&consent).await;
    let scope = query_param(&authorize, "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "Mail.Read"), "exactly the missing permission: {scope}");
    assert!(!scope.split(' ').any(|s| s == "User.Read"), "{scope}");
    // The emulator's SSO session: no password, just the consent page.
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let back = app.browser.get(callback).send().await.unwrap();
    assert_eq!(location(&back), "/mail");
    // The same user: the token joins the session, which keeps its id.
    if let Some(cookie) = set_cookie(&back, "session=") {
        assert_eq!(cookie_pair(&cookie), session_before, "the same session, not a new one");
    }
    let mail = app.get("/mail").await;
    assert_eq!(mail.status(), StatusCode::OK);
    let html = mail.text().await.unwrap();
    assert_eq!(html.matches("<li class=\"subject\">").count(), 5, "{html}");
    assert!(app.page("/").await.contains("Welcome Adele Vance"), "still the same session");
}

#[tokio::test]
async fn declining_consent_is_a_clear_page_and_the_user_stays_signed_in() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    let consent = location(&app.get("/mail").await);
    let authorize = app.start_sign_in(&consent).await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, false).await;
    let answer = app.browser.get(callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let html = answer.text().await.unwrap();
    assert!(html.contains("You declined the permissions this app asked for"), "{html}");
    assert!(app.is_signed_in().await, "nothing the user had is lost");
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_requests_share_one_token_request_per_resource() {
    let app = app_with_api(true).await;
    app.sign_in_adele().await;
    let before = resource_tokens_issued(&app);
    // Every token request takes a while, so the six overlap for sure.
    app.emulator.faults().set_token_latency(Duration::from_millis(400));
    let requests = (0..6).map(|_| app.get("/downstream"));
    let answers = futures::future::join_all(requests).await;
    app.emulator.faults().set_token_latency(Duration::ZERO);
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::OK);
    }
    assert_eq!(resource_tokens_issued(&app), before + 1, "one token request for all six");
}

#[tokio::test]
async fn bad_scopes_in_a_consent_link_are_refused() {
    let app = spawn_app().await;
    for bad in ["scopes=Mail.Read%20api%3A%2F%2Fx%2Fy", "scopes=openid", "scopes=%3Cscript%3E"] {
        let response = app.get(&format!("/login?{bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn entra_down_while_a_page_needs_a_new_token_is_a_503_not_a_consent_loop() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    // The token request for Mail.Read meets an outage, not a missing consent.
    app.emulator.faults().fail_token_requests(1, entra_emulator::TokenFailure::new("temporarily_unavailable", 50001));
    let response = app.get("/mail").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("location").is_none(), "an error page, not a trip to consent");
    // The outage over, the same page asks for the consent it really needs.
    let response = app.get("/mail").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?scopes=Mail.Read&return_to=%2Fmail");
}

#[tokio::test]
async fn another_account_consenting_gets_a_session_of_its_own_and_never_joins_the_first() {
    let app = spawn_app().await;
    let adeles_session = app.sign_in_adele_keeping_cookie().await;
    let consent = location(&app.get("/mail").await);
    let authorize = app.start_sign_in(&consent).await;
    // At Entra, someone else signs in (prompt=login shows the form despite Adele's SSO session).
    let callback = app.sign_in_at_emulator(&format!("{authorize}&prompt=login"), MALLORY, MALLORY_PASSWORD, true).await;
    let back = app.browser.get(callback).send().await.unwrap();
    assert_eq!(location(&back), "/mail");
    let new_session = cookie_pair(&set_cookie(&back, "session=").expect("a new session cookie"));
    assert_ne!(new_session, adeles_session, "a session of its own");
    let home = app.page("/").await;
    assert!(
        home.contains(r#"id="welcome""#) && home.contains("&#60;/script&#62; Mallory"),
        "Mallory is signed in: {home}"
    );
    assert!(!home.contains("Adele"), "nothing of Adele's session is left in it: {home}");
}
