//! The access token the app behind is given (`PROXY_PASS_TOKENS=true`) for an API of its own
//! (`PROXY_ACCESS_TOKEN_SCOPES`), as App Service authentication's `scope=` login parameter gives
//! it: got through the refresh token, kept while valid, renewed by `/.auth/refresh`, consent
//! asked of a browser that has not given it. Over TCP against the emulator.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::proxy::{echo, header, proxy_with_options};
use crate::upstream::{self, Upstream};

fn api_scope() -> String {
    format!("api://{}/access_as_user", entra_emulator::DEFAULT_CLIENT_ID)
}

/// The proxy passing tokens for the app's own API; `admin_consent` pre-consents everything.
async fn proxy_passing_api_tokens(upstream: &Upstream, admin_consent: bool) -> TestApp {
    let options = Options {
        emulator_setup: Some(Box::new(move |config, _| config.admin_consent = admin_consent)),
        ..Options::default()
    };
    proxy_with_options(upstream, passing_api_tokens, options).await
}

fn passing_api_tokens(settings: &mut entra_webapp::config::Settings) {
    settings.proxy_pass_tokens = "true".into();
    // As Easy Auth's `scope=` login parameter is usually written: the sign-in's own scopes too.
    settings.proxy_access_token_scopes = Some(format!("openid profile email offline_access {}", api_scope()));
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Refresh tokens the emulator issued: one per token request.
fn token_requests(app: &TestApp) -> usize {
    app.emulator.issued_secrets().iter().filter(|secret| secret.starts_with("1.emu-rt.")).count()
}

fn access_token(echoed: &Value) -> String {
    header(echoed, "x-ms-token-aad-access-token").expect("the access token").to_owned()
}

#[tokio::test]
async fn the_app_behind_gets_a_token_for_its_api_kept_while_valid_and_renewed_by_auth_refresh() {
    let upstream = upstream::start().await;
    let app = proxy_passing_api_tokens(&upstream, true).await;
    app.sign_in_adele().await;
    let before = token_requests(&app);
    let echoed = echo(&app, "/api/orders", &[]).await;
    let token = access_token(&echoed);
    let claims_of_token = claims(&token);
    assert_eq!(claims_of_token["aud"], format!("api://{}", entra_emulator::DEFAULT_CLIENT_ID), "for the API");
    assert_eq!(claims_of_token["scp"], "access_as_user");
    assert_eq!(claims_of_token["oid"].as_str(), header(&echoed, "x-ms-client-principal-id"), "as the user");
    let expires_on = header(&echoed, "x-ms-token-aad-expires-on").expect("its expiry");
    assert_eq!(expires_on.parse::<u64>().unwrap(), claims_of_token["exp"].as_u64().unwrap(), "this token's expiry");
    let id_token = claims(header(&echoed, "x-ms-token-aad-id-token").expect("the ID token"));
    assert_eq!(id_token["aud"], entra_emulator::DEFAULT_CLIENT_ID.to_string(), "the sign-in's ID token");
    assert_eq!(token_requests(&app), before + 1, "one token request for the API, silent (consented)");

    // Kept in the session: the next request needs no token request.
    assert_eq!(access_token(&echo(&app, "/api/orders", &[]).await), token);
    assert_eq!(token_requests(&app), before + 1);

    // `/.auth/refresh` renews it too (and the sign-in's): one request each.
    let refreshed = app.get("/.auth/refresh").await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(token_requests(&app), before + 3);
    let renewed = access_token(&echo(&app, "/api/orders", &[]).await);
    assert_ne!(renewed, token, "a new token");
    assert_eq!(claims(&renewed)["aud"], claims_of_token["aud"]);
    assert!(app.emulator.issued_secrets().contains(&renewed));

    // Neither reached the browser.
    let me = app.page("/.auth/me").await;
    assert!(!me.contains(&token) && !me.contains(&renewed));
}

#[tokio::test]
async fn without_consent_a_browser_is_asked_for_it_and_other_requests_get_a_401() {
    let upstream = upstream::start().await;
    let app = proxy_passing_api_tokens(&upstream, false).await;
    app.sign_in_adele().await;

    // A script's call is not forwarded without the token the app expects, and not redirected; the
    // scripts of a page that keep calling do not each send Entra a token request that can only fail.
    let before = app.emulator.token_requests_received();
    for _ in 0..3 {
        let call = app.browser.get(app.url("/api/orders")).header("accept", "application/json").send().await.unwrap();
        assert_eq!(call.status(), StatusCode::UNAUTHORIZED);
        assert!(call.headers().contains_key("www-authenticate"));
        assert!(call.text().await.unwrap().contains("Consent needed"));
    }
    assert_eq!(app.emulator.token_requests_received(), before + 1, "Entra asked once, its answer remembered");
    let refresh = app.get("/.auth/refresh").await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh.json::<Value>().await.unwrap()["error"], "consent needed");

    // A navigation is sent to consent to exactly the API's scope, and comes back.
    let navigation = app.browser.get(app.url("/orders?page=2")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(navigation.status(), StatusCode::SEE_OTHER);
    let consent = location(&navigation);
    assert_eq!(consent, format!("/login?scopes={}&return_to=%2Forders%3Fpage%3D2", urlencoding(&api_scope())));
    let authorize = app.start_sign_in(&consent).await;
    let scope = query_param(&authorize, "scope").unwrap();
    assert!(scope.split(' ').any(|scope| scope == api_scope()), "{scope}");
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let back = app.browser.get(callback).send().await.unwrap();
    assert_eq!(location(&back), "/orders?page=2");
    let echoed = echo(&app, "/orders?page=2", &[("accept", "text/html")]).await;
    assert_eq!(claims(&access_token(&echoed))["scp"], "access_as_user");
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE), "the same user");
}

/// What Entra said of consent is kept in the session, so instances sharing sessions (Redis) ask it
/// once between them: each instance's own single-flight memory would not.
#[tokio::test]
async fn instances_sharing_sessions_ask_entra_once_for_a_consent_it_said_is_missing() {
    const SECRET: &str = "passed-tokens-secret-passed-tokens-secret-01";
    let upstream = upstream::start().await;
    let redis = crate::redis_server::RedisServer::start();
    let shared = |emulator: Option<&TestApp>| Options {
        session_store: Some(redis.url()),
        session_secret: Some(SECRET.to_owned()),
        emulator: emulator.map(|a| a.emulator.clone()),
        site_url: emulator.map(|a| a.base_url.clone()),
        ..Options::default()
    };
    let a = proxy_with_options(&upstream, passing_api_tokens, shared(None)).await;
    let b = proxy_with_options(&upstream, passing_api_tokens, shared(Some(&a))).await;
    a.sign_in_adele().await;
    let before = a.emulator.token_requests_received();
    for instance in [&a, &b, &a, &b] {
        let call = a.browser.get(instance.url("/api/orders")).header("accept", "application/json").send().await;
        assert_eq!(call.unwrap().status(), StatusCode::UNAUTHORIZED, "{}", instance.base_url);
    }
    assert_eq!(a.emulator.token_requests_received(), before + 1, "B knew from the session");
}

#[tokio::test]
async fn where_anyone_may_come_a_missing_consent_only_means_no_token() {
    let upstream = upstream::start().await;
    let app = {
        let options = Options::default();
        let settings = |settings: &mut entra_webapp::config::Settings| {
            settings.proxy_pass_tokens = "true".into();
            settings.proxy_access_token_scopes = Some(api_scope());
            settings.proxy_anonymous_paths = Some("/public/*".into());
        };
        proxy_with_options(&upstream, settings, options).await
    };
    app.sign_in_adele().await;
    let echoed = echo(&app, "/public/page", &[("accept", "text/html")]).await;
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE), "the identity still");
    assert!(header(&echoed, "x-ms-token-aad-access-token").is_none());
}

fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn concurrent_requests_share_one_token_request() {
    let upstream = upstream::start().await;
    let app = proxy_passing_api_tokens(&upstream, true).await;
    app.sign_in_adele().await;
    let before = token_requests(&app);
    // Every token request takes a while, so the six overlap for sure.
    app.emulator.faults().set_token_latency(std::time::Duration::from_millis(400));
    let answers = futures::future::join_all((0..6).map(|_| echo(&app, "/api/orders", &[]))).await;
    app.emulator.faults().set_token_latency(std::time::Duration::ZERO);
    let tokens: std::collections::HashSet<String> = answers.iter().map(access_token).collect();
    assert_eq!(tokens.len(), 1, "the same token for all six");
    assert_eq!(token_requests(&app), before + 1, "one token request for all six");
}
