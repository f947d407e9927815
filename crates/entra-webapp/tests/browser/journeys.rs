//! What a person does in the browser, and what an attacker would look for there.

use crate::chromium::Chromium;
use crate::helpers::*;

/// Signs in by typing into the emulator's pages (Entra's field names and ids) and clicking.
async fn sign_in(browser: &Chromium, app: &TestApp, upn: &str, password: &str) {
    browser.goto(&app.url("/")).await;
    browser.click("#sign-in").await;
    complete_sign_in(browser, upn, password).await;
}

/// From the emulator's sign-in page to the app's welcome.
async fn complete_sign_in(browser: &Chromium, upn: &str, password: &str) {
    browser.type_into("input[name=loginfmt][type=email]", upn).await;
    browser.click("#idSIButton9").await;
    browser.type_into("input[name=passwd][type=password]", password).await;
    browser.click("#idSIButton9").await;
    if browser.wait_for_any(&["#idBtn_Accept", "#welcome"]).await == 0 {
        browser.click("#idBtn_Accept").await;
    }
    browser.wait_for("#welcome").await;
}

/// The tests' upstream, and the app as a proxy in front of it.
async fn proxy_in_front_of_an_upstream() -> (crate::upstream::Upstream, TestApp) {
    let upstream = crate::upstream::start().await;
    let url = upstream.url.clone();
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| settings.upstream_url = Some(url))),
        ..Options::default()
    })
    .await;
    (upstream, app)
}

/// From the emulator's sign-in page back to the upstream page the browser was going to.
async fn complete_proxied_sign_in(browser: &Chromium) {
    browser.type_into("input[name=loginfmt][type=email]", ADELE).await;
    browser.click("#idSIButton9").await;
    browser.type_into("input[name=passwd][type=password]", ADELE_PASSWORD).await;
    browser.click("#idSIButton9").await;
    let consent = browser.wait_for_any(&["#idBtn_Accept", "#hello", "#socket"]).await;
    if consent == 0 {
        browser.click("#idBtn_Accept").await;
    }
}

async fn sign_out(browser: &Chromium, app: &TestApp) {
    browser.goto(&app.url("/")).await;
    browser.click("#sign-out").await;
    browser.wait_for("#sign-in").await;
    assert!(browser.url().await.starts_with(&app.url("/")), "back at the app after Entra's sign-out");
}

#[tokio::test]
async fn sign_in_by_typing_shows_the_profile_and_sign_out_ends_both_sessions() {
    let app = spawn_app().await;
    let browser = Chromium::launch().await;
    browser.goto(&app.url("/")).await;
    browser.wait_for("#sign-in").await;
    browser.screenshot("signed-out.png").await;

    sign_in(&browser, &app, ADELE, ADELE_PASSWORD).await;
    assert_eq!(browser.text_of("#welcome").await, "Welcome Adele Vance");
    assert_eq!(browser.text_of("#email").await, "adele.vance@emulator.test");
    browser.screenshot("signed-in.png").await;

    browser.goto(&app.url("/profile")).await;
    assert_eq!(browser.text_of("#profile-name").await, "Adele Vance");
    browser.screenshot("profile.png").await;

    sign_out(&browser, &app).await;
    browser.click("#sign-in").await;
    browser.wait_for("input[name=loginfmt][type=email]").await;
    assert!(
        browser.source().await.contains("idSIButton9"),
        "signed out of the emulator too: the next sign-in asks for the account again"
    );
    browser.close().await;
}

#[tokio::test]
async fn an_html_display_name_is_shown_as_text_and_no_script_runs() {
    let app = spawn_app().await;
    let browser = Chromium::launch().await;
    sign_in(&browser, &app, MALLORY, MALLORY_PASSWORD).await;
    assert_eq!(browser.text_of("#welcome").await, "Welcome <script>alert(1)</script> Mallory");
    assert!(browser.client.get_alert_text().await.is_err(), "no dialog opened");
    let scripts =
        browser.client.execute("return document.getElementsByTagName('script').length", vec![]).await.unwrap();
    assert_eq!(scripts, serde_json::json!(0), "no injected element");
    assert_eq!(browser.text_of("#email").await, "mallory@emulator.test");
    browser.close().await;
}

#[tokio::test]
async fn back_after_sign_out_shows_no_profile() {
    let app = spawn_app().await;
    let browser = Chromium::launch().await;
    sign_in(&browser, &app, ADELE, ADELE_PASSWORD).await;
    browser.goto(&app.url("/profile")).await;
    browser.wait_for("#profile-name").await;
    sign_out(&browser, &app).await;
    browser.client.back().await.unwrap();
    browser.client.back().await.unwrap();
    // WebDriver's Back returns once the page has loaded: what is shown now is one of these.
    let shown = browser.wait_for_any(&["#profile-name", "input[name=loginfmt]", "#sign-in"]).await;
    assert_ne!(shown, 0, "no profile after Back: {}", browser.url().await);
    assert!(!browser.source().await.contains("Adele Vance"), "no profile after Back: {}", browser.url().await);
    browser.close().await;
}

#[tokio::test]
async fn two_tabs_starting_sign_in_at_once_both_finish() {
    let app = spawn_app().await;
    let browser = Chromium::launch().await;
    let first_tab = browser.client.window().await.unwrap();
    browser.goto(&app.url("/login?return_to=/profile")).await;
    browser.wait_for("input[name=loginfmt][type=email]").await;
    let second = browser.client.new_window(true).await.unwrap();
    browser.client.switch_to_window(second.handle).await.unwrap();
    browser.goto(&app.url("/login?return_to=/")).await;
    complete_sign_in(&browser, ADELE, ADELE_PASSWORD).await;

    browser.client.switch_to_window(first_tab).await.unwrap();
    browser.type_into("input[name=loginfmt][type=email]", ADELE).await;
    browser.click("#idSIButton9").await;
    browser.type_into("input[name=passwd][type=password]", ADELE_PASSWORD).await;
    browser.click("#idSIButton9").await;
    assert_eq!(browser.text_of("#profile-name").await, "Adele Vance", "the first tab finished too");
    browser.close().await;
}

#[tokio::test]
async fn a_cookie_captured_before_sign_out_no_longer_works() {
    let app = spawn_app().await;
    let browser = Chromium::launch().await;
    sign_in(&browser, &app, ADELE, ADELE_PASSWORD).await;
    let cookie = browser.client.get_named_cookie("session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Lax)");
    let captured = format!("session={}", cookie.value());
    sign_out(&browser, &app).await;

    let thief = client_builder().build().unwrap();
    let page = thief.get(app.url("/")).header("cookie", captured).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Welcome Adele"), "the captured cookie is dead");
    browser.close().await;
}

#[tokio::test]
async fn no_token_reaches_a_cookie_page_url_or_web_storage() {
    let app = spawn_app().await;
    let browser = Chromium::launch().await;
    let mut seen = String::new();
    sign_in(&browser, &app, ADELE, ADELE_PASSWORD).await;
    for path in ["/", "/profile", "/logout"] {
        browser.goto(&app.url(path)).await;
        seen.push_str(&browser.url().await);
        seen.push_str(&browser.source().await);
        let storage = browser
            .client
            .execute("return JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])", vec![])
            .await
            .unwrap();
        seen.push_str(&storage.to_string());
        for cookie in browser.client.get_all_cookies().await.unwrap() {
            seen.push_str(cookie.value());
        }
    }
    browser.goto(&format!("{}/v2.0/.well-known/openid-configuration", app.emulator.authority())).await;
    for cookie in browser.client.get_all_cookies().await.unwrap() {
        seen.push_str(cookie.value());
    }
    let tokens: Vec<String> = app
        .emulator
        .issued_secrets()
        .into_iter()
        .filter(|s| !s.starts_with("1.emu-code.") && !s.starts_with("ctx.") && !s.starts_with("sso."))
        .collect();
    assert!(tokens.len() >= 3, "access, ID and refresh tokens were issued");
    for token in &tokens {
        assert!(!seen.contains(token.as_str()), "a token the emulator issued is visible to the browser");
    }
    browser.close().await;
}

#[tokio::test]
async fn signing_out_of_entra_elsewhere_ends_the_app_session_through_the_emulators_iframe() {
    let app = spawn_app().await;
    app.register_front_channel_logout_url();
    let browser = Chromium::launch().await;
    sign_in(&browser, &app, ADELE, ADELE_PASSWORD).await;
    let session = browser.client.get_named_cookie("session").await.expect("the app's session cookie");
    let cookie = format!("session={}", session.value());
    assert!(app.is_signed_in_with(&cookie).await);

    // Signing out at Entra directly (another app's sign-out would land here too): the signed-out
    // page loads our front-channel logout URL in an iframe, in this browser.
    browser.goto(&format!("{}/oauth2/v2.0/logout", app.emulator.authority())).await;
    browser.wait_for("iframe.front-channel-logout").await;
    let mut signed_in = true;
    for _ in 0..100 {
        signed_in = app.is_signed_in_with(&cookie).await;
        if !signed_in {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!signed_in, "the iframe's request ended the app's session");
    browser.goto(&app.url("/")).await;
    browser.wait_for("#sign-in").await;
    browser.close().await;
}

#[tokio::test]
async fn a_user_without_the_required_role_sees_the_403_page_and_switches_account() {
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(|settings, _| settings.allowed_roles = Some("Reader".into()))),
        ..Options::default()
    })
    .await;
    let browser = Chromium::launch().await;
    browser.goto(&app.url("/")).await;
    browser.click("#sign-in").await;
    browser.type_into("input[name=loginfmt][type=email]", MALLORY).await;
    browser.click("#idSIButton9").await;
    browser.type_into("input[name=passwd][type=password]", MALLORY_PASSWORD).await;
    browser.click("#idSIButton9").await;
    if browser.wait_for_any(&["#idBtn_Accept", "#access-denied"]).await == 0 {
        browser.click("#idBtn_Accept").await;
    }
    browser.wait_for("#access-denied").await;
    assert!(
        browser.text_of("#access-denied-reason").await.contains("one of these roles"),
        "says which requirement failed"
    );
    assert_eq!(browser.text_of("#signed-in-as").await, "<script>alert(1)</script> Mallory", "escaped, as text");
    browser.screenshot("access-denied.png").await;

    // "Use another account": Entra's account picker (here: the sign-in page), then back in.
    browser.click("#switch-account").await;
    complete_sign_in(&browser, ADELE, ADELE_PASSWORD).await;
    assert_eq!(browser.text_of("#welcome").await, "Welcome Adele Vance");
    browser.close().await;
}

#[tokio::test]
async fn through_the_proxy_a_user_signs_in_to_a_protected_upstream_page_and_signs_out() {
    let (_upstream, app) = proxy_in_front_of_an_upstream().await;
    let browser = Chromium::launch().await;
    // Straight to the app behind: the proxy sends the browser to sign in, then back there.
    browser.goto(&app.url("/page")).await;
    complete_proxied_sign_in(&browser).await;
    assert_eq!(browser.text_of("#hello").await, format!("Hello {ADELE}"));
    assert_eq!(browser.url().await, app.url("/page"));
    browser.screenshot("proxy-upstream-page.png").await;

    // Easy Auth's sign-out link leads to our confirmation; signing out ends both sessions and
    // ends on a page that says so (the app's pages would ask for sign-in at once).
    browser.click("#upstream-sign-out").await;
    browser.click("#sign-out").await;
    browser.wait_for("#signed-out").await;
    assert_eq!(browser.url().await, app.url("/.auth/logout/complete"));
    browser.goto(&app.url("/page")).await;
    browser.wait_for("input[name=loginfmt][type=email]").await;
    assert!(!browser.source().await.contains("Hello"), "the upstream page needs a new sign-in");
    browser.close().await;
}

/// The session cookie is `SameSite=Lax`, so another *site*'s page cannot use it; but a page of
/// another origin on the same site (a sibling subdomain, another port of the host) can: the
/// browser sends the cookie with its form posts and WebSocket handshakes. Here such a page (the
/// upstream's own port, on localhost like the proxy) tries both, and neither reaches the app as the
/// user; the same page through the proxy, the app's own origin, can.
#[tokio::test]
async fn a_page_of_another_origin_on_the_same_site_cannot_act_as_the_user_through_the_proxy() {
    let (upstream, app) = proxy_in_front_of_an_upstream().await;
    let browser = Chromium::launch().await;
    let port = app.base_url.rsplit(':').next().unwrap().to_owned();
    let acting_page = format!("/acting-page?port={port}");
    browser.goto(&app.url(&acting_page)).await;
    complete_proxied_sign_in(&browser).await;
    browser.wait_for("#socket").await;

    // Another origin: the socket is refused, the form's post is answered by the proxy alone.
    // The upstream's own port, on the proxy's host name (localhost): same site, another origin.
    let other_origin = upstream.url.replace("127.0.0.1", "localhost");
    browser.goto(&format!("{other_origin}{acting_page}")).await;
    assert_eq!(socket_says(&browser).await, "refused");
    browser.click("#send").await;
    browser.wait_for("#error-message").await;
    let page = browser.source().await;
    assert!(page.contains("another site"), "{page}");
    assert!(!page.contains("x-ms-client-principal"), "the post reached the app: {page}");

    // The app's own origin, same page: both act as her.
    browser.goto(&app.url(&acting_page)).await;
    assert_eq!(socket_says(&browser).await, format!("hello {ADELE}"));
    browser.click("#send").await;
    // The upstream's JSON, which Chromium shows in a `pre` (the acting page has none: waiting for
    // it waits for the navigation).
    let echoed = browser.text_of("pre").await;
    assert!(echoed.contains("\"x-ms-client-principal-name\":[\"adele"), "{echoed}");
    browser.close().await;
}

/// What the acting page's socket said, once it said something.
async fn socket_says(browser: &Chromium) -> String {
    for _ in 0..150 {
        let text = browser.text_of("#socket").await;
        if text != "pending" {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the socket never said anything");
}

#[tokio::test]
async fn opening_a_page_that_needs_more_permission_asks_for_consent_and_returns_to_it() {
    let app = spawn_app().await;
    let browser = Chromium::launch().await;
    sign_in(&browser, &app, ADELE, ADELE_PASSWORD).await;
    browser.goto(&app.url("/profile")).await;
    browser.click("#mail-link").await;
    // Entra asks for exactly the new permission; signed in already, no password.
    browser.wait_for("#idBtn_Accept").await;
    assert!(browser.source().await.contains("Mail.Read"), "the consent page names the permission");
    browser.screenshot("incremental-consent.png").await;
    browser.click("#idBtn_Accept").await;
    browser.wait_for("#mail-subjects").await;
    assert_eq!(browser.url().await, app.url("/mail"), "back on the page that asked");
    assert!(browser.text_of("#mail-subjects").await.contains("Quarterly numbers are in"));
    browser.close().await;
}
