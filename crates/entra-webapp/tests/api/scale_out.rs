//! Several instances, restarts and a Redis outage: the session follows the user.

use crate::helpers::*;
use crate::redis_server::RedisServer;
use base64::Engine;
use reqwest::StatusCode;

const SECRET: &str = "scale-out-secret-scale-out-secret-0123456789";

async fn instance(redis: &RedisServer, site: Option<&TestApp>, port: Option<u16>) -> TestApp {
    spawn_app_with(Options {
        session_store: Some(redis.url()),
        session_secret: Some(SECRET.to_owned()),
        emulator: site.map(|a| a.emulator.clone()),
        site_url: site.map(|a| a.base_url.clone()),
        port,
        ..Options::default()
    })
    .await
}

/// The same browser, talking to another instance (the cookie jar is per host: it follows).
fn on(instance: &TestApp, browser: &reqwest::Client) -> TestApp {
    let mut app = instance.with_new_browser();
    app.browser = browser.clone();
    app
}

#[tokio::test]
async fn a_session_is_shared_by_instances_and_survives_a_restart() {
    let redis = RedisServer::start();
    let mut a = instance(&redis, None, None).await;
    let b = instance(&redis, Some(&a), None).await;
    a.sign_in_adele().await;
    assert!(on(&b, &a.browser).is_signed_in().await, "signed in through A, signed in on B");

    let browser = a.browser.clone();
    let port = a.port();
    a.stop().await;
    let restarted = spawn_app_with(Options {
        session_store: Some(redis.url()),
        session_secret: Some(SECRET.to_owned()),
        emulator: Some(b.emulator.clone()),
        port: Some(port),
        ..Options::default()
    })
    .await;
    assert!(on(&restarted, &browser).is_signed_in().await, "still signed in on A after its restart");
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_finishes_on_another() {
    let redis = RedisServer::start();
    let a = instance(&redis, None, None).await;
    let b = instance(&redis, Some(&a), None).await;
    let authorize = a.start_sign_in("/login?return_to=/profile").await;
    let callback = a.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let on_b = callback.replace(&a.base_url, &b.base_url);
    let response = a.browser.get(&on_b).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "B finished A's sign-in");
    assert_eq!(location(&response), "/profile");
    assert!(a.is_signed_in().await);
}

#[tokio::test]
async fn a_redis_dump_holds_no_token_no_session_id_and_no_sid_in_any_encoding() {
    let redis = RedisServer::start();
    let app = instance(&redis, None, None).await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    let sid = query_param(&callback, "session_state").expect("Entra's session id");
    let signed_in = app.browser.get(&callback).send().await.unwrap();
    let session_id =
        cookie_pair(&set_cookie(&signed_in, "session=").unwrap()).trim_start_matches("session=").to_owned();
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK);
    // Every key name, value and set member.
    let values = redis.raw_values().await;
    assert_eq!(values.len(), 2, "the session record and its Entra-session index: {values:?}");
    let mut secrets: Vec<String> = app
        .emulator
        .issued_secrets()
        .into_iter()
        .filter(|s| !s.starts_with("ctx.") && !s.starts_with("sso."))
        .collect();
    assert!(secrets.len() >= 4, "code, access, ID and refresh tokens were issued");
    secrets.push(session_id);
    secrets.push(sid);
    for (key, value) in &values {
        for token in &secrets {
            assert!(!key.contains(token.as_str()), "{key} names a secret");
            for encoded in [
                token.clone(),
                base64::engine::general_purpose::STANDARD.encode(token),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token),
            ] {
                let needle = &encoded.as_bytes()[..encoded.len().min(40)];
                assert!(!value.windows(needle.len()).any(|w| w == needle), "a token is readable in {key}");
            }
        }
    }
}

#[tokio::test]
async fn a_redis_outage_answers_503_and_recovers_without_a_restart() {
    let mut redis = RedisServer::start();
    let app = instance(&redis, None, None).await;
    app.sign_in_adele().await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    redis.stop();
    let page = app.get("/").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.unwrap().contains("Sessions are unavailable"));
    let profile = app.get("/profile").await;
    assert_eq!(profile.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text().await.unwrap(), "not ready: session store unreachable");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    redis.start_again();
    let mut signed_in = false;
    for _ in 0..150 {
        if app.get("/").await.status() == StatusCode::OK && app.is_signed_in().await {
            signed_in = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(signed_in, "the session came back with Redis, no app restart");
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn front_channel_logout_ends_sessions_kept_in_redis() {
    let redis = RedisServer::start();
    let app = instance(&redis, None, None).await;
    app.assert_front_channel_logout_ends_the_session().await;
    let keys: Vec<String> = redis.raw_values().await.into_iter().map(|(k, _)| k).collect();
    assert!(!keys.iter().any(|k| k.starts_with("entra-webapp:sid:")), "the sid index went with the sessions: {keys:?}");
}

/// A WebSocket through one instance closes when its user signs out on another: the instances
/// share nothing but Redis.
#[tokio::test]
async fn a_websocket_on_one_instance_closes_when_its_session_ends_on_another() {
    let redis = RedisServer::start();
    let upstream = crate::upstream::start().await;
    let proxy = |site: Option<&TestApp>| {
        let upstream_url = upstream.url.clone();
        spawn_app_with(Options {
            session_store: Some(redis.url()),
            session_secret: Some(SECRET.to_owned()),
            emulator: site.map(|a| a.emulator.clone()),
            site_url: site.map(|a| a.base_url.clone()),
            settings_change: Some(Box::new(move |settings, _| {
                settings.upstream_url = Some(upstream_url);
                settings.proxy_websocket_check_seconds = "1".into();
            })),
            ..Options::default()
        })
    };
    let a = proxy(None).await;
    let b = proxy(Some(&a)).await;
    let cookie = crate::proxy::sign_in_keeping_proxy_cookie(&a).await;
    let mut socket = crate::proxy::open_websocket(&b, &cookie).await;
    assert!(crate::proxy::echoes(&mut socket, "through B").await);

    assert_eq!(a.sign_out().await.status(), StatusCode::SEE_OTHER);
    assert!(
        crate::proxy::closes_within(&mut socket, std::time::Duration::from_secs(10)).await,
        "B closed it after the sign-out on A"
    );
}
