//! Session lifecycle, attacked: a request in flight across sign-out cannot revive the session
//! (both stores, `POST /logout` and front-channel logout), a busy stolen cookie still dies at the
//! absolute lifetime, and anonymous traffic creates nothing and evicts nobody.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::redis_server::RedisServer;

const SECRET: &str = "lifecycle-secret-lifecycle-secret-0123456789";
/// Long enough that a refreshed token outlives the slow Graph call (expiry has whole seconds).
const SHORT_LIFETIME: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug)]
enum Store {
    Memory,
    Redis,
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    SignOut,
    FrontChannel,
}

async fn app_on(store: Store, redis: &RedisServer, options: Options) -> TestApp {
    let options = match store {
        Store::Memory => options,
        Store::Redis => {
            Options { session_store: Some(redis.url()), session_secret: Some(SECRET.to_owned()), ..options }
        }
    };
    spawn_app_with(options).await
}

async fn session_keys(redis: &RedisServer) -> usize {
    redis.raw_values().await.iter().filter(|(key, _)| key.starts_with("entra-webapp:session:")).count()
}

/// A `/profile` request loads the session, refreshes the expired access token (so it will save
/// the session) and waits inside a slow Graph call while the session is ended; when it finishes,
/// the session must still be dead.
async fn a_request_in_flight_cannot_revive_an_ended_session(store: Store, ending: Ending) {
    let redis = RedisServer::start();
    let app =
        app_on(store, &redis, Options { access_token_lifetime: Some(SHORT_LIFETIME), ..Options::default() }).await;
    app.register_front_channel_logout_url();
    let cookie = app.sign_in_adele_keeping_cookie().await;
    let csrf = app.csrf_token().await;
    tokio::time::sleep(SHORT_LIFETIME + Duration::from_millis(1200)).await;

    app.emulator.faults().set_graph_latency(Duration::from_millis(1500));
    let graph_calls = app.emulator.graph_requests_received();
    let in_flight = {
        let request = browser().get(app.url("/profile")).header("cookie", &cookie).send();
        tokio::spawn(request)
    };
    // Deterministic overlap: the request has loaded the session and refreshed the token once
    // Graph sees it.
    while app.emulator.graph_requests_received() == graph_calls {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match ending {
        Ending::SignOut => {
            let response =
                app.browser.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed out");
        }
        Ending::FrontChannel => {
            let logout = format!("{}/oauth2/v2.0/logout", app.emulator.authority());
            assert_eq!(app.sign_out_of_entra_loading_frames(&logout).await, vec![StatusCode::OK]);
        }
    }
    let finished = in_flight.await.unwrap().unwrap();
    let status = finished.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "the request in flight completes: {}",
        finished.text().await.unwrap_or_default()
    );
    app.emulator.faults().set_graph_latency(Duration::ZERO);

    assert!(!app.is_signed_in_with(&cookie).await, "{store:?}/{ending:?}: the session stays dead");
    if let Store::Redis = store {
        assert_eq!(session_keys(&redis).await, 0, "no record was written back");
    }
}

#[tokio::test]
async fn memory_a_request_in_flight_across_sign_out_cannot_revive_the_session() {
    a_request_in_flight_cannot_revive_an_ended_session(Store::Memory, Ending::SignOut).await;
}

#[tokio::test]
async fn redis_a_request_in_flight_across_sign_out_cannot_revive_the_session() {
    a_request_in_flight_cannot_revive_an_ended_session(Store::Redis, Ending::SignOut).await;
}

#[tokio::test]
async fn memory_a_request_in_flight_across_front_channel_logout_cannot_revive_the_session() {
    a_request_in_flight_cannot_revive_an_ended_session(Store::Memory, Ending::FrontChannel).await;
}

#[tokio::test]
async fn redis_a_request_in_flight_across_front_channel_logout_cannot_revive_the_session() {
    a_request_in_flight_cannot_revive_an_ended_session(Store::Redis, Ending::FrontChannel).await;
}

/// A stolen cookie kept busy with requests still dies when the sign-in reaches its absolute
/// lifetime, and the record goes with it.
async fn a_busy_session_ends_at_its_absolute_lifetime(store: Store) {
    let redis = RedisServer::start();
    let lifetime = Duration::from_secs(3);
    let app = app_on(store, &redis, Options { session_max_lifetime: Some(lifetime), ..Options::default() }).await;
    // The end is a whole Unix second set during sign-in, so it is more than `lifetime` - 1 s
    // after this instant: the checks stop half a second before that.
    let started = std::time::Instant::now();
    let cookie = app.sign_in_adele_keeping_cookie().await;
    while started.elapsed() < lifetime - Duration::from_millis(1500) {
        assert!(app.is_signed_in_with(&cookie).await, "active and within the lifetime: signed in");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(!app.is_signed_in_with(&cookie).await, "{store:?}: past the absolute lifetime, however active");
    if let Store::Redis = store {
        assert_eq!(session_keys(&redis).await, 0, "the record is gone too");
    }
}

#[tokio::test]
async fn memory_a_busy_session_ends_at_its_absolute_lifetime() {
    a_busy_session_ends_at_its_absolute_lifetime(Store::Memory).await;
}

#[tokio::test]
async fn redis_a_busy_session_ends_at_its_absolute_lifetime() {
    a_busy_session_ends_at_its_absolute_lifetime(Store::Redis).await;
}

#[tokio::test]
async fn anonymous_sign_in_starts_create_no_session_and_evict_nobody() {
    let redis = RedisServer::start();
    // Memory store room for exactly one session: the signed-in user's.
    let memory = app_on(Store::Memory, &redis, Options { max_sessions: Some(1), ..Options::default() }).await;
    let on_redis = app_on(Store::Redis, &redis, Options::default()).await;
    let memory_cookie = memory.sign_in_adele_keeping_cookie().await;
    let redis_cookie = on_redis.sign_in_adele_keeping_cookie().await;
    let keys_before = redis.raw_values().await.len();

    let anonymous = client_builder().build().unwrap();
    for app in [&memory, &on_redis] {
        let requests = (0..400).map(|i| {
            let path = if i % 2 == 0 { "/login?return_to=/profile" } else { "/" };
            anonymous.get(app.url(path)).send()
        });
        for response in futures::future::join_all(requests).await {
            let response = response.unwrap();
            assert!(response.status() == StatusCode::SEE_OTHER || response.status() == StatusCode::OK);
            assert!(set_cookie(&response, "session=").is_none(), "no session for anonymous requests");
        }
    }
    assert_eq!(redis.raw_values().await.len(), keys_before, "Redis gained no key");
    assert!(memory.is_signed_in_with(&memory_cookie).await, "the signed-in user was not evicted");
    assert!(on_redis.is_signed_in_with(&redis_cookie).await);
}

#[tokio::test]
async fn the_pending_sign_in_cookie_is_cleared_when_the_callback_fails_upstream() {
    let app = spawn_app().await;
    let authorize = app.start_sign_in("/login").await;
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    // The token endpoint fails with a 5xx: a 502/503 page, and the pending sign-in is spent.
    app.emulator.faults().fail_token_requests(1, entra_emulator::TokenFailure::new("temporarily_unavailable", 50001));
    let failed = app.browser.get(&callback).send().await.unwrap();
    assert!(failed.status().is_server_error(), "{}", failed.status());
    let removal = set_cookie(&failed, "entra-signin.").expect("the pending cookie is removed on a 5xx too");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let again = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "the same callback cannot be retried");
    assert!(!app.is_signed_in().await);
}

#[tokio::test]
async fn a_browser_keeps_at_most_five_pending_sign_ins_and_the_oldest_goes() {
    let app = spawn_app().await;
    let bound = entra_auth::axum::MAX_PENDING_SIGN_INS;
    assert_eq!(bound, 5);
    let mut authorize_urls = Vec::new();
    for _ in 0..=bound {
        authorize_urls.push(app.start_sign_in("/login").await);
    }
    let oldest = app.sign_in_at_emulator(&authorize_urls[0], ADELE, ADELE_PASSWORD, true).await;
    let response = app.browser.get(&oldest).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "the sixth sign-in pushed the first out");
    for authorize in &authorize_urls[1..] {
        let callback = app.sign_in_at_emulator(authorize, ADELE, ADELE_PASSWORD, true).await;
        let response = app.browser.get(&callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "the five newest still finish");
    }
}

/// The activity mark in the stored record (unix seconds).
async fn activity_mark(redis: &RedisServer, session_id: &str) -> Option<u64> {
    let keys = entra_auth::SessionKeys::from_secrets(&[secrecy::SecretString::from(SECRET.to_owned())]);
    let values = redis.raw_values().await;
    let (_, sealed) = values.iter().find(|(key, _)| key.starts_with("entra-webapp:session:"))?;
    let record = entra_webapp::sessions::decode_record(&keys.records, session_id, sealed)?;
    record.data.get("entra.seen")?.as_u64()
}

#[tokio::test]
async fn reading_pages_writes_the_activity_mark_at_most_once_a_minute() {
    let redis = RedisServer::start();
    let app = app_on(Store::Redis, &redis, Options::default()).await;
    let cookie = app.sign_in_adele_keeping_cookie().await;
    let session_id = cookie.trim_start_matches("session=").to_owned();
    let at_sign_in = activity_mark(&redis, &session_id).await.expect("marked at sign-in");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        assert!(app.is_signed_in_with(&cookie).await);
    }
    assert_eq!(activity_mark(&redis, &session_id).await, Some(at_sign_in), "no store write per page view");
}
