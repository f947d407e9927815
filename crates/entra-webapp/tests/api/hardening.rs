//! Hardening: limits, https-only cookie attributes, the open-redirect corpus end to end, metrics.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn oversized_headers_and_bodies_are_refused_before_any_handler() {
    let app = spawn_app().await;
    let huge = "x".repeat(20 * 1024);
    let response = app.browser.get(app.url("/")).header("x-padding", huge).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let mut request = app.browser.get(app.url("/"));
    for i in 0..80 {
        request = request.header(format!("x-h{i}"), "1");
    }
    assert_eq!(request.send().await.unwrap().status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body = "csrf_token=".to_owned() + &"a".repeat(64 * 1024);
    let response = app
        .browser
        .post(app.url("/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// The status a raw HTTP/1.1 request with exactly these headers (after `Host`) gets.
async fn status_with_headers(app: &TestApp, headers: &[(String, String)]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = app.base_url.trim_start_matches("http://");
    let mut head = format!("GET /healthz HTTP/1.1\r\nhost: {authority}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).await.unwrap();
    std::str::from_utf8(&answer[9..12]).unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_header_limits_are_exact_64_headers_and_16_kib_pass_one_more_is_refused() {
    let app = spawn_app().await;
    let numbered = |count: usize| (0..count).map(|i| (format!("x-h{i:02}"), "1".to_owned())).collect::<Vec<_>>();
    // `Host` is the 64th.
    assert_eq!(status_with_headers(&app, &numbered(63)).await, 200);
    assert_eq!(status_with_headers(&app, &numbered(64)).await, 431);
    // Names and values count, byte for byte: `host` and its value, then `x-pad` and the padding.
    let host = app.base_url.trim_start_matches("http://");
    let padding = |length: usize| vec![("x-pad".to_owned(), "p".repeat(length))];
    let fits = 16 * 1024 - ("host".len() + host.len()) - "x-pad".len();
    assert_eq!(status_with_headers(&app, &padding(fits)).await, 200);
    assert_eq!(status_with_headers(&app, &padding(fits + 1)).await, 431);
}

#[tokio::test]
async fn over_https_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent() {
    let app = spawn_app_with(Options { https_site: true, ..Options::default() }).await;
    let response = app.get("/login").await;
    let set_cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(set_cookies.len(), 1, "only the pending sign-in cookie, no session: {set_cookies:?}");
    let pending = &set_cookies[0];
    assert!(pending.starts_with("__Host-entra-signin."), "{pending}");
    assert!(response.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));

    // The cookie jar will not send a Secure cookie over this test's plain http: carry it by hand.
    let callback = app.sign_in_at_emulator(&location(&response), ADELE, ADELE_PASSWORD, true).await;
    let callback = callback.replacen("https://", "http://", 1);
    let signed_in = browser().get(&callback).header("cookie", cookie_pair(pending)).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(&signed_in, "__Host-session=").expect("a __Host- session cookie after sign-in");
    for cookie in [pending, &session] {
        for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(!cookie.contains("Domain="), "__Host- cookies have no Domain");
    }

    let plain = spawn_app().await.get("/").await;
    assert!(plain.headers().get("strict-transport-security").is_none(), "no HSTS over plain http");
}

#[tokio::test]
async fn the_open_redirect_corpus_never_leaves_the_site_after_sign_in() {
    let app = spawn_app().await;
    let corpus = include_str!("../../../entra-auth/tests/open_redirect_corpus.txt");
    let attacks: Vec<&str> = corpus.lines().filter(|l| !l.is_empty() && !l.starts_with("# ")).collect();
    assert!(attacks.len() >= 40);
    for attack in attacks {
        let encoded: String = url::form_urlencoded::byte_serialize(attack.as_bytes()).collect();
        let authorize = app.start_sign_in(&format!("/login?return_to={encoded}")).await;
        let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
        let response = app.browser.get(&callback).send().await.unwrap();
        assert_eq!(location(&response), "/", "{attack:?}");
    }
}

const METRICS_TOKEN: &str = "m3tr1cs-t0ken-for-the-scraper-0123456789";

#[tokio::test]
async fn metrics_count_sign_ins_refusals_and_graph_calls_for_the_scraper_with_the_token_only() {
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(|settings, _| settings.metrics_token = Some(METRICS_TOKEN.into()))),
        ..Options::default()
    })
    .await;
    app.sign_in_adele().await;
    app.get("/callback?state=forged&code=x").await;
    let scrape = |authorization: Option<String>| {
        let request = app.browser.get(app.url("/metrics"));
        let request = match authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    // Signed in or not, without the token (or with another, or almost it) nobody reads them.
    for authorization in [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}", &METRICS_TOKEN[..METRICS_TOKEN.len() - 1])),
        Some(format!("Bearer {METRICS_TOKEN}x")),
        Some(format!("Basic {METRICS_TOKEN}")),
        Some(METRICS_TOKEN.to_owned()),
    ] {
        let response = scrape(authorization.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="metrics""#);
        let body = response.text().await.unwrap();
        assert!(!body.contains("entra_"), "{authorization:?}: {body}");
    }
    let response = scrape(Some(format!("bearer {METRICS_TOKEN}"))).await;
    assert_eq!(response.status(), StatusCode::OK, "the scheme's name in any case");
    let response = scrape(Some(format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = response.text().await.unwrap();
    for name in [
        "entra_sign_ins_started_total",
        "entra_sign_ins_completed_total",
        "entra_sign_ins_failed_total{reason=\"unknown_state\"}",
        "entra_graph_requests_total{status=\"200\"}",
        "entra_graph_request_duration_seconds_bucket",
        "entra_webapp_sessions_active",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
}

#[tokio::test]
async fn without_a_metrics_token_there_are_no_metrics() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!response.text().await.unwrap().contains("entra_"));
}
