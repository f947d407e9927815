use crate::helpers::*;
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn signed_out_home_offers_sign_in() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer", "no URL of ours leaks to another site");
    assert_eq!(headers["x-frame-options"], "DENY");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(html.contains("Sign in with Microsoft"));
    assert!(!html.contains("<script"), "no script at all");
}

#[tokio::test]
async fn full_sign_in_shows_welcome_and_email_then_sign_out_ends_both_sessions() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login").await;
    assert_eq!(query_param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    assert!(query_param(&authorize, "nonce").is_some());
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&response, "session=").expect("a session cookie once signed in");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http on localhost: no Secure");

    let html = app.page("/").await;
    assert!(html.contains("Welcome Adele Vance"), "{html}");
    assert!(html.contains("adele.vance@emulator.test"), "{html}");

    let response = app.sign_out().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let end_session = location(&response);
    assert!(end_session.starts_with(&format!("{}/oauth2/v2.0/logout", app.emulator.authority())), "{end_session}");
    // The callback is the post-logout redirect URI too: nothing more to register.
    assert_eq!(query_param(&end_session, "post_logout_redirect_uri"), Some(app.url("/callback")));
    assert!(!app.is_signed_in().await, "signed out of the app");

    let back = app.browser.get(&end_session).send().await.unwrap();
    assert_eq!(location(&back), app.url("/callback"), "Entra sends the browser back to the app");
    let onward = app.browser.get(location(&back)).send().await.unwrap();
    assert_eq!((onward.status(), location(&onward)), (StatusCode::SEE_OTHER, "/".to_owned()), "then home");

    let authorize = app.start_sign_in("/login").await;
    let page = app.browser.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "signed out of Entra too: the password is asked again");
    assert!(page.text().await.unwrap().contains("idSIButton9"));
}

#[tokio::test]
async fn signing_out_lands_on_the_page_it_names_when_that_is_on_this_site() {
    let app = spawn_app().await;
    // Nobody signed in: nothing to confirm, straight there (a foreign one is the page as always).
    assert_eq!(location(&app.get("/logout?return_to=%2Fprofile%3Ftab%3D2").await), "/profile?tab=2");
    let page = app.get("/logout?return_to=%2F%2Fevil.example%2F").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("You are signed out"));
    app.sign_in_adele().await;
    let page = app.page("/logout?return_to=%2Fprofile%3Ftab%3D2").await;
    assert_eq!(hidden_input(&page, "return_to").as_deref(), Some("/profile?tab=2"), "the form carries it on");
    assert_eq!(app.sign_out_from("/logout?return_to=%2Fprofile%3Ftab%3D2").await, "/profile?tab=2");
    assert!(!app.is_signed_in().await);
    // The page is remembered for one landing only.
    let again = app.get("/callback").await;
    assert_eq!(location(&again), "/");
    // And for one sign-out: one abandoned at Entra leaves nothing for the next.
    app.sign_in_adele().await;
    let csrf = app.csrf_token().await;
    let form = [("csrf_token", csrf.as_str()), ("return_to", "/profile")];
    let abandoned = app.browser.post(app.url("/logout")).form(&form).send().await.unwrap();
    assert!(set_cookie(&abandoned, "entra-signed-out=").is_some());
    app.sign_in_adele().await;
    assert_eq!(app.sign_out_from("/logout").await, "/");

    // Another site's address, in the link or posted to the form by hand, lands on the root.
    app.sign_in_adele().await;
    let page = app.page("/logout?return_to=https%3A%2F%2Fevil.example%2F").await;
    assert_eq!(hidden_input(&page, "return_to"), None);
    let csrf = app.csrf_token().await;
    for planted in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let form = [("csrf_token", csrf.as_str()), ("return_to", planted)];
        let response = app.browser.post(app.url("/logout")).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(set_cookie(&response, "entra-signed-out="), None, "{planted}");
    }
    assert_eq!(location(&app.get("/callback").await), "/");
}

#[tokio::test]
async fn html_in_a_display_name_comes_back_escaped() {
    let app = spawn_app().await;
    let response = app.sign_in(MALLORY, MALLORY_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = app.page("/").await;
    assert!(!html.contains("<script>alert(1)</script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Mallory") || html.contains("&#60;script&#62;"),
        "{html}"
    );
    assert!(html.contains("mallory@emulator.test"), "no mail: the UPN is shown");
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in_and_an_old_cookie_is_dead_after_sign_out() {
    let app = spawn_app().await;
    let login = app.get("/login").await;
    assert!(set_cookie(&login, "session=").is_none(), "starting a sign-in creates no session");
    let pending_cookie = cookie_pair(&set_cookie(&login, "entra-signin.").expect("the pending sign-in cookie"));
    let authorize = location(&login);
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let response = app.browser.get(&callback).send().await.unwrap();
    let signed_in_cookie = cookie_pair(&set_cookie(&response, "session=").expect("a session once signed in"));
    let pending_name = pending_cookie.split('=').next().unwrap();
    let removal = set_cookie(&response, &format!("{pending_name}=")).expect("the callback removes the pending cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");

    let thief = client_builder().build().unwrap();
    let stolen = thief.get(app.url("/")).header("cookie", &signed_in_cookie).send().await.unwrap();
    assert!(stolen.text().await.unwrap().contains("Welcome Adele Vance"), "the cookie works while signed in");

    app.sign_out().await;

    let replayed = thief.get(app.url("/")).header("cookie", &signed_in_cookie).send().await.unwrap();
    let html = replayed.text().await.unwrap();
    assert!(!html.contains("Welcome Adele"), "a cookie captured before sign-out no longer works");
}

#[tokio::test]
async fn return_to_is_honoured_for_same_origin_paths_only() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login?return_to=%2Flogout%3Fx%3D1").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(location(&response), "/logout?x=1");

    for attack in ["//evil.example", "https://evil.example/", "/\\evil.example"] {
        let path =
            format!("/login?return_to={}", url::form_urlencoded::byte_serialize(attack.as_bytes()).collect::<String>());
        let authorize = app.start_sign_in(&path).await;
        let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
        let response = app.browser.get(&callback).send().await.unwrap();
        assert_eq!(location(&response), "/", "{attack}");
    }
}

#[tokio::test]
async fn two_tabs_signing_in_at_once_both_finish() {
    let app = spawn_app().await;
    let first = app.start_sign_in("/login?return_to=/first").await;
    let second = app.start_sign_in("/login?return_to=/second").await;
    let second_callback = app.sign_in_at_emulator(&second, ADELE, ADELE_PASSWORD, true).await;
    let first_callback = app.sign_in_at_emulator(&first, ADELE, ADELE_PASSWORD, true).await;
    let response = app.browser.get(&second_callback).send().await.unwrap();
    assert_eq!(location(&response), "/second");
    let response = app.browser.get(&first_callback).send().await.unwrap();
    assert_eq!(location(&response), "/first", "the other tab's sign-in was not clobbered");
}

#[tokio::test]
async fn no_token_the_emulator_issued_reaches_the_browser() {
    let app = spawn_app().await;
    let mut seen = String::new();
    let authorize = app.start_sign_in("/login").await;
    seen.push_str(&authorize);
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let response = app.browser.get(&callback).send().await.unwrap();
    seen.push_str(&format!("{:?}", response.headers()));
    // Every page a signed-in user can reach, the photo and an error page included.
    for path in ["/", "/logout", "/profile", "/profile/photo", "/callback?state=forged&code=x", "/nowhere"] {
        let response = app.get(path).await;
        seen.push_str(&format!("{:?}", response.headers()));
        seen.push_str(&response.text().await.unwrap());
    }
    let issued = app.emulator.issued_secrets();
    let tokens: Vec<&String> = issued
        .iter()
        .filter(|s| !s.starts_with("1.emu-code.") && !s.starts_with("ctx.") && !s.starts_with("sso."))
        .collect();
    assert!(tokens.len() >= 3, "access, ID and refresh tokens were issued: {}", tokens.len());
    for token in tokens {
        assert!(!seen.contains(token.as_str()), "a token reached the browser");
    }
}

#[tokio::test]
async fn key_rotation_is_followed_by_refetching_the_jwks() {
    // Unknown-kid refetches are rate-limited globally (a minute in production); a rollover after
    // the interval is followed.
    let app = spawn_app_with(Options { jwks_refetch_interval: Some(Duration::ZERO), ..Options::default() }).await;
    app.sign_in_adele().await;
    app.emulator.rotate_signing_key().unwrap();
    let other = app.with_new_browser();
    let response = other.sign_in(MALLORY, MALLORY_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a token signed with the new key verifies");
}

#[tokio::test]
async fn health_and_readiness_answer_without_sign_in() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().get("set-cookie").is_none(), "probes get no session");
    // Readiness follows the background metadata load.
    let mut ready = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        ready = app.get("/readyz").await.status();
        if ready == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_of_entra_elsewhere_ends_the_session_through_front_channel_logout() {
    spawn_app().await.assert_front_channel_logout_ends_the_session().await;
}

#[tokio::test]
async fn the_home_pages_sign_out_button_carries_the_sessions_csrf_token_and_works() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    let home = app.page("/").await;
    let token = hidden_input(&home, "csrf_token").expect("a sign-out form on the home page");
    assert_eq!(token, app.csrf_token().await, "the same token as the sign-out page's");
    assert!(token.len() >= 40, "a real token: {token}");
    let response = app.browser.post(app.url("/logout")).form(&[("csrf_token", token.as_str())]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!app.is_signed_in().await);
}
