//! HTTP/2 with prior knowledge (h2c), as App Service's front end speaks it to a container with
//! HTTP/2 proxying on: pages, a signed-in session and the proxy work as over HTTP/1.1, the host
//! coming from `:authority`.

use reqwest::{StatusCode, Version};
use serde_json::Value;

use crate::helpers::*;
use crate::upstream;

/// The session cookie of the proxy mode (named so as not to clash with the upstream's own).
const PROXY_COOKIE: &str = "entra-session=";

fn http2_client() -> reqwest::Client {
    client_builder().http2_prior_knowledge().build().expect("client")
}

#[tokio::test]
async fn pages_and_a_signed_in_session_are_served_over_http2() {
    let app = spawn_app().await;
    let cookie = app.sign_in_adele_keeping_cookie().await;
    let http2 = http2_client();

    let health = http2.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.version(), Version::HTTP_2);
    assert_eq!(health.status(), StatusCode::OK);

    let home = http2.get(app.url("/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(home.version(), Version::HTTP_2);
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("id=\"welcome\""), "the session works over HTTP/2");

    // The same limits hold: too large headers are refused before any handler.
    let padded = http2.get(app.url("/")).header("x-padding", "x".repeat(20 * 1024)).send().await.unwrap();
    assert_eq!(padded.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // Signing in over HTTP/2 too: the sign-in redirect is built from :authority.
    let login = http2.get(app.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let authorize = location(&login);
    let redirect_uri = query_param(&authorize, "redirect_uri").unwrap();
    assert!(redirect_uri.ends_with("/callback"), "{redirect_uri}");
}

#[tokio::test]
async fn through_the_proxy_an_http2_request_reaches_the_upstream_with_its_host() {
    let upstream = upstream::start().await;
    let url = upstream.url.clone();
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| settings.upstream_url = Some(url))),
        ..Options::default()
    })
    .await;
    let signed_in = app.sign_in(ADELE, ADELE_PASSWORD).await;
    let cookie = cookie_pair(&set_cookie(&signed_in, PROXY_COOKIE).expect("the proxy's session cookie"));
    let response = http2_client()
        .get(app.url("/reports?q=2"))
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["path"], "/reports");
    let host = app.base_url.trim_start_matches("http://");
    assert_eq!(echoed["headers"]["host"][0], host, "the original host, from :authority");
    assert_eq!(echoed["headers"]["x-forwarded-host"][0], host);
    assert_eq!(echoed["headers"]["x-ms-client-principal-name"][0], ADELE);
    assert!(echoed["headers"].get("cookie").is_none(), "our cookie never reaches the upstream");
}
