//! A shared cache in front of the proxy (nginx's `proxy_cache`, standing for a CDN or Azure Front
//! Door): what the app behind answered a signed-in user is never handed to anyone else, while
//! what anyone may see stays cacheable.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::nginx::Nginx;
use crate::upstream;

/// The proxy in front of the tests' upstream (`/public/*` anonymous), and a caching nginx in
/// front of the proxy, keyed by URL as CDNs are, saying whether it answered from its cache.
async fn behind_a_shared_cache() -> (upstream::Upstream, TestApp, Nginx, tempfile::TempDir) {
    let upstream = upstream::start().await;
    let upstream_url = upstream.url.clone();
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(upstream_url);
            settings.proxy_anonymous_paths = Some("/public/*".into());
        })),
        ..Options::default()
    })
    .await;
    let proxy = app.base_url.trim_start_matches("http://").replace("localhost", "127.0.0.1");
    let cache = tempfile::tempdir().unwrap();
    let cache_path = cache.path().display().to_string();
    let nginx = Nginx::start(|port| {
        format!(
            "proxy_cache_path {cache_path} keys_zone=shared:1m;\n\
             server {{\n listen 127.0.0.1:{port};\n location / {{\n  proxy_pass http://{proxy};\n  proxy_set_header Host $host;\n  \
             proxy_cache shared;\n  add_header X-Cache-Status $upstream_cache_status always;\n }}\n}}\n"
        )
    });
    (upstream, app, nginx, cache)
}

#[tokio::test]
async fn a_shared_cache_never_hands_a_signed_in_users_page_to_someone_else() {
    let (_upstream, app, nginx, _cache) = behind_a_shared_cache().await;
    // The app behind lets caches keep the page an hour, as a static file server would.
    let page = nginx.url("/reports/q3?cache-control=max-age%3D3600");
    app.sign_in_adele().await;
    let adeles = app.browser.get(&page).send().await.unwrap();
    assert_eq!(adeles.status(), StatusCode::OK);
    assert_eq!(adeles.headers()["cache-control"], "private, max-age=3600", "her browser may keep it");
    assert!(adeles.text().await.unwrap().contains(ADELE));

    // Someone not signed in asks for the same URL: the cache has nothing to give, sign-in asks.
    let stranger = browser().get(&page).header("accept", "text/html").send().await.unwrap();
    assert_eq!(stranger.headers()["x-cache-status"], "MISS");
    assert_eq!(stranger.status(), StatusCode::SEE_OTHER, "sent to sign in, not served Adele's page");
    assert!(!stranger.text().await.unwrap().contains(ADELE));

    // What anyone may see is cached as the app allows: the cache in front does work.
    let logo = nginx.url("/public/logo?cache-control=max-age%3D3600");
    for cache_status in ["MISS", "HIT"] {
        let anonymous = browser().get(&logo).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::OK);
        assert_eq!(anonymous.headers()["x-cache-status"], cache_status);
        assert_eq!(anonymous.headers()["cache-control"], "max-age=3600");
    }
}
