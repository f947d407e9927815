//! `AuthRoutes`' options, served on loopback against the emulator: paths (and that `paths()` names
//! them: the first test serves exactly those), the app's own pages,
//! the session cookie's idle timeout and the absolute lifetime.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a failed step fails the test on the spot")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use entra_auth::axum::{AuthRoutes, SignedInUser};
use entra_auth::{EntraClient, EntraConfig};
use reqwest::StatusCode;
use support::{location, serve};
use tower_sessions::MemoryStore;

/// `/private` behind sign-in, with every option of `AuthRoutes` changed.
fn customised(config: EntraConfig, max_lifetime: Duration) -> Result<Router, reqwest::Error> {
    let auth = AuthRoutes::new(Arc::new(EntraClient::new(config)?))
        .login_path("/auth/sign-in")
        .logout_path("/auth/sign-out")
        .session_idle_timeout(Duration::from_secs(90))
        .session_max_lifetime(max_lifetime)
        .error_page(|page| (page.status, format!("our error page: {} ({})", page.kind, page.title)).into_response())
        .sign_out_page(|form| {
            format!("our sign-out page: signed_in={} action={} token={}", form.signed_in, form.action, form.csrf_token)
                .into_response()
        });
    assert_eq!(auth.paths(), ["/auth/sign-in", "/callback", "/auth/sign-out"]);
    Ok(Router::new()
        .route("/private", get(|user: SignedInUser| async move { format!("Welcome {}", user.name) }))
        .merge(auth.router())
        .layer(auth.layer(MemoryStore::default())))
}

#[tokio::test]
async fn paths_and_pages_are_the_apps_own() {
    let running = serve(|config| customised(config, Duration::from_secs(3600))).await;
    let url = |path: &str| format!("{}{path}", running.app_url);

    assert_eq!(running.get(&url("/login")).await.status(), StatusCode::NOT_FOUND, "the default path is not served");
    let (status, page) = running.visit_signing_in_at("/private", "/auth/sign-in").await;
    assert_eq!((status, page.as_str()), (StatusCode::OK, "Welcome Adele Vance"));

    let forged = running.get(&url("/callback?state=forged&code=x")).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let body = forged.text().await.unwrap();
    assert_eq!(body, "our error page: unknown_state (This sign-in cannot be completed)");

    let form = running.get(&url("/auth/sign-out")).await.text().await.unwrap();
    assert!(form.starts_with("our sign-out page: signed_in=true action=/auth/sign-out token="), "{form}");
    let token = form.rsplit("token=").next().unwrap().to_owned();
    assert!(token.len() >= 40, "a real CSRF token: {token}");
    let signed_out =
        running.browser.post(url("/auth/sign-out")).form(&[("csrf_token", token.as_str())]).send().await.unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert!(location(&signed_out).starts_with(&running.emulator.authority()), "on to Entra's sign-out");
    let after = running.get(&url("/auth/sign-out")).await.text().await.unwrap();
    assert_eq!(after, "our sign-out page: signed_in=false action=/auth/sign-out token=");
    assert_eq!(running.get(&url("/logout")).await.status(), StatusCode::NOT_FOUND);

    // Front-channel logout is served only when the app gives an index of its sessions.
    let front_channel = running.get(&url("/auth/sign-out?sid=abc")).await;
    assert_eq!(front_channel.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_session_cookie_lives_as_long_as_the_idle_timeout() {
    let running = serve(|config| customised(config, Duration::from_secs(3600))).await;
    let callback = running.sign_in_from("/private", "/auth/sign-in").await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<String> =
        callback.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("session=")).expect("a session cookie at sign-in");
    assert!(session.contains("Max-Age=90"), "{session}");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "plain http on localhost: {session}");
}

#[tokio::test]
async fn a_sign_in_ends_at_its_absolute_lifetime_however_active() {
    let running = serve(|config| customised(config, Duration::from_secs(2))).await;
    let (status, _) = running.visit_signing_in_at("/private", "/auth/sign-in").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = running.get(&format!("{}/private", running.app_url)).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER, "signed out by the absolute lifetime");
    assert_eq!(location(&again), "/auth/sign-in?return_to=%2Fprivate");
}

/// A session store that is down: every operation fails, as Redis does in an outage.
#[derive(Clone, Debug)]
struct UnavailableStore;

#[async_trait::async_trait]
impl tower_sessions::SessionStore for UnavailableStore {
    async fn save(&self, _: &tower_sessions::session::Record) -> tower_sessions::session_store::Result<()> {
        Err(tower_sessions::session_store::Error::Backend("down".to_owned()))
    }

    async fn load(
        &self,
        _: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<Option<tower_sessions::session::Record>> {
        Err(tower_sessions::session_store::Error::Backend("down".to_owned()))
    }

    async fn delete(&self, _: &tower_sessions::session::Id) -> tower_sessions::session_store::Result<()> {
        Err(tower_sessions::session_store::Error::Backend("down".to_owned()))
    }
}

#[tokio::test]
async fn a_session_store_outage_is_a_503_marked_for_the_app_never_a_sign_in_loop() {
    let running = serve(|config| {
        let auth = AuthRoutes::new(Arc::new(EntraClient::new(config)?));
        Ok(Router::new()
            .route("/private", get(|user: SignedInUser| async move { user.name }))
            .route("/token", get(|_: entra_auth::axum::AccessToken| async { "token" }))
            .merge(auth.router())
            .layer(auth.layer(UnavailableStore)))
    })
    .await;
    // A browser that has a session cookie: its session cannot be read.
    let cookie = format!("session={}", tower_sessions::session::Id::default());
    for path in ["/private", "/token"] {
        let url = format!("{}{path}", running.app_url);
        let response = running.browser.get(url).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}: not a redirect to sign in");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        let body = response.text().await.unwrap();
        assert_eq!(body, "Sessions are unavailable right now. Try again in a minute.", "{path}");
    }
}

#[tokio::test]
async fn an_access_token_is_refreshed_and_a_dead_refresh_token_sends_the_user_to_sign_in_again() {
    let running = support::serve_with(
        |config| {
            let auth = AuthRoutes::new(Arc::new(EntraClient::new(config)?));
            Ok(Router::new()
                .route(
                    "/token",
                    get(|entra_auth::axum::AccessToken(token): entra_auth::axum::AccessToken| async move {
                        use secrecy::ExposeSecret;
                        format!("a token of {} characters", token.expose_secret().len())
                    }),
                )
                .merge(auth.router())
                .layer(auth.layer(MemoryStore::default())))
        },
        |emulator| emulator.access_token_lifetime = Some(Duration::from_secs(2)),
    )
    .await;
    let url = format!("{}/token", running.app_url);
    let (status, page) = running.visit_signing_in("/token").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.starts_with("a token of "), "{page}");

    tokio::time::sleep(Duration::from_millis(3000)).await;
    let refreshed = running.get(&url).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "the expired access token was refreshed");

    running.emulator.revoke_refresh_tokens(support::ADELE).unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let dead = running.get(&url).await;
    assert_eq!(dead.status(), StatusCode::SEE_OTHER, "a dead refresh token means signing in again");
    assert_eq!(location(&dead), "/login?return_to=%2Ftoken");
}

#[tokio::test]
async fn extractors_outside_the_layer_are_a_configuration_error_not_a_redirect_loop() {
    let running = serve(|config| {
        let auth = AuthRoutes::new(Arc::new(EntraClient::new(config)?));
        Ok(Router::new()
            .route("/user", get(|user: SignedInUser| async move { user.name }))
            .route("/token", get(|_: entra_auth::axum::AccessToken| async { "token" }))
            .merge(auth.router()))
    })
    .await;
    for path in ["/user", "/token"] {
        let response = running.get(&format!("{}{path}", running.app_url)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(response.text().await.unwrap(), "Sign-in is not configured for this page.", "{path}");
    }
}

#[tokio::test]
async fn by_default_a_session_is_idle_for_eight_hours_and_signed_in_for_a_day_at_most() {
    use tower_sessions::SessionStore;
    let store = MemoryStore::default();
    let held = store.clone();
    let running = serve(move |config| {
        let auth = AuthRoutes::new(Arc::new(EntraClient::new(config)?));
        Ok(Router::new()
            .route("/private", get(|user: SignedInUser| async move { user.name }))
            .merge(auth.router())
            .layer(auth.layer(store)))
    })
    .await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let callback = running.sign_in_from("/private", "/login").await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER);
    let cookie = callback
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("session="))
        .expect("a session cookie");
    assert!(cookie.contains("Max-Age=28800"), "eight hours idle: {cookie}");
    let id: tower_sessions::session::Id =
        cookie.trim_start_matches("session=").split(';').next().unwrap().parse().unwrap();
    let record = held.load(&id).await.unwrap().expect("the signed-in session is stored");
    let ends_at = entra_auth::axum::RecordFacts::of(&record).ends_at.expect("an absolute end");
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!((before + 86_400..=after + 86_400).contains(&ends_at), "a day after sign-in: {ends_at}");
}

/// A page that posts JSON to the emulator's own API as the signed-in user.
fn with_downstream_api(config: EntraConfig) -> Result<Router, reqwest::Error> {
    use entra_auth::axum::DownstreamApi;
    let base = config.graph_endpoint.as_str().trim_end_matches('/').trim_end_matches("/graph").to_owned();
    let api_url = format!("{base}/api/{}", config.client_id).parse().unwrap();
    let scopes = format!("api://{}/access_as_user", config.client_id).parse().unwrap();
    let client = Arc::new(EntraClient::new(config)?);
    let api = DownstreamApi::new(&client, api_url, scopes);
    let routes = AuthRoutes::new(client.clone());
    let echo = move |_: SignedInUser, session: tower_sessions::Session| {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let body = serde_json::json!({ "note": "hello" });
            match api.post_json::<_, serde_json::Value>(&client, &session, "/echo", &body).await {
                Ok(answer) => answer.to_string(),
                Err(err) => format!("failed: {err}"),
            }
        }
    };
    Ok(Router::new().route("/echo", get(echo)).merge(routes.router()).layer(routes.layer(MemoryStore::default())))
}

#[tokio::test]
async fn a_downstream_api_gets_json_in_and_out_with_a_token_of_its_own() {
    let running = support::serve_with(with_downstream_api, |config| config.admin_consent = true).await;
    let (status, page) = running.visit_signing_in("/echo").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, r#"{"from":"Adele Vance","received":{"note":"hello"}}"#);
}

#[tokio::test]
async fn a_user_the_policy_refuses_gets_the_default_403_page_with_the_failed_requirement() {
    use entra_auth::axum::{AccessPolicy, require_access};
    let running = serve(|config| {
        let auth = AuthRoutes::new(Arc::new(EntraClient::new(config)?));
        let policy = Arc::new(AccessPolicy::new().require_any_role(["Reports.Admin"]));
        let protected = Router::new()
            .route("/reports", get(|user: SignedInUser| async move { format!("Reports for {}", user.name) }))
            .route_layer(axum::middleware::from_fn_with_state(policy, require_access));
        Ok(protected.merge(auth.router()).layer(auth.layer(MemoryStore::default())))
    })
    .await;
    let (status, page) = running.visit_signing_in("/reports").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains(r#"<h1 id="access-denied">"#), "the library's own 403 page: {page}");
    assert!(page.contains("Reports.Admin"), "names the failed requirement: {page}");
    assert!(page.contains("Signed in as Adele Vance."), "{page}");
    assert!(page.contains(r#"href="/login?prompt=select_account&#38;return_to=%2Freports""#), "switch account: {page}");
    assert!(!page.contains("Reports for"), "the page itself is not served");
}
