//! Front-channel logout (`GET /logout?sid=...&iss=...`, loaded by Entra in an iframe): only the
//! sessions of that Entra session, named by `sid` *and* issuer, end; a foreign issuer is refused.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::cookie::CookieStore;

use crate::helpers::*;

fn front_channel_url(app: &TestApp, sid: &str, iss: Option<&str>) -> String {
    let mut url = url::Url::parse(&app.url("/logout")).unwrap();
    url.query_pairs_mut().append_pair("sid", sid);
    if let Some(iss) = iss {
        url.query_pairs_mut().append_pair("iss", iss);
    }
    url.to_string()
}

/// Signs Adele in; returns the session cookie and Entra's session id (`session_state` = `sid`).
async fn sign_in_with_sid(app: &TestApp) -> (String, String) {
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let sid = query_param(&callback, "session_state").expect("Entra's session id");
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    (cookie_pair(&set_cookie(&response, "session=").unwrap()), sid)
}

#[tokio::test]
async fn a_foreign_issuer_is_refused_and_ends_nothing() {
    let app = spawn_app().await;
    let (cookie, sid) = sign_in_with_sid(&app).await;
    let foreign = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0";
    let response = browser().get(front_channel_url(&app, &sid, Some(foreign))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(app.is_signed_in_with(&cookie).await, "still signed in");
}

#[tokio::test]
async fn our_issuer_or_none_ends_the_session_and_the_answer_may_be_framed_by_entra() {
    let app = spawn_app().await;
    for iss in [Some(app.emulator.issuer()), None] {
        let (cookie, sid) = sign_in_with_sid(&app).await;
        let response = browser().get(front_channel_url(&app, &sid, iss.as_deref())).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()["content-security-policy"].to_str().unwrap();
        let emulator_origin = url::Url::parse(&app.emulator.base_url()).unwrap().origin().ascii_serialization();
        assert_eq!(csp, format!("frame-ancestors {emulator_origin}"), "Entra's page may frame it, nobody else");
        assert!(!app.is_signed_in_with(&cookie).await, "iss {iss:?}: signed out");
    }
}

#[tokio::test]
async fn every_session_of_the_entra_session_ends_and_no_other() {
    let app = spawn_app().await;
    app.register_front_channel_logout_url();

    // Browser A signs in; browser B shares A's Entra session (its SSO cookie) but not A's app
    // session: two app sessions on one Entra session.
    let jar_a = Arc::new(reqwest::cookie::Jar::default());
    let mut a = app.with_new_browser();
    a.browser = client_builder().cookie_provider(jar_a.clone()).build().unwrap();
    let (cookie_a, sid) = sign_in_with_sid(&a).await;
    let emulator_url = url::Url::parse(&app.emulator.base_url()).unwrap();
    let jar_b = Arc::new(reqwest::cookie::Jar::default());
    let sso = jar_a.cookies(&emulator_url).expect("the emulator's SSO cookie");
    for pair in sso.to_str().unwrap().split("; ") {
        jar_b.add_cookie_str(pair, &emulator_url);
    }
    let mut b = app.with_new_browser();
    b.browser = client_builder().cookie_provider(jar_b).build().unwrap();
    let (cookie_b, sid_b) = sign_in_with_sid(&b).await;
    assert_eq!(sid, sid_b, "one Entra session");
    assert_ne!(cookie_a, cookie_b, "two app sessions");
    // Someone else entirely.
    let c = app.with_new_browser();
    let (cookie_c, sid_c) = sign_in_with_sid(&c).await;
    assert_ne!(sid, sid_c);

    let logout = format!("{}/oauth2/v2.0/logout", app.emulator.authority());
    assert_eq!(a.sign_out_of_entra_loading_frames(&logout).await, vec![StatusCode::OK]);
    assert!(!app.is_signed_in_with(&cookie_a).await);
    assert!(!app.is_signed_in_with(&cookie_b).await);
    assert!(app.is_signed_in_with(&cookie_c).await, "another Entra session is untouched");
}

#[tokio::test]
async fn a_missing_empty_or_oversized_sid_is_refused_and_the_longest_allowed_is_served() {
    let app = spawn_app().await;
    for (sid, expected) in [
        (String::new(), StatusCode::BAD_REQUEST),
        ("s".repeat(129), StatusCode::BAD_REQUEST),
        ("s".repeat(128), StatusCode::OK),
        ("s".to_owned(), StatusCode::OK),
    ] {
        let response = browser().get(front_channel_url(&app, &sid, None)).send().await.unwrap();
        assert_eq!(response.status(), expected, "sid of {} characters", sid.len());
        let body = response.text().await.unwrap();
        let want = if expected == StatusCode::OK { "signed out" } else { "sid is malformed" };
        assert_eq!(body, want, "sid of {} characters", sid.len());
    }
}
