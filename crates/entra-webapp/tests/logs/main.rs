//! Logs never contain tokens, secrets, codes, state, nonces or session ids: a whole sign-in,
//! profile, refresh and sign-out with every log line captured, at debug level everywhere. And
//! they say what to fix: a warning given once at start-up, an upstream's TLS alert.

#![allow(unreachable_pub, reason = "items of integration-test modules are crate-private by nature")]
#![allow(clippy::unwrap_used, reason = "test helpers fail the test on the spot, like the tests they serve")]

#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/upstream.rs"]
#[allow(dead_code, reason = "the proxy's upstream, of which these tests use one kind")]
mod upstream;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpers::*;
use reqwest::StatusCode;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_value_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        // cookie_store is the test browser's cookie jar (it logs what it stores), not the app.
        .with_env_filter("debug,cookie_store=off")
        .with_writer(move || writer.clone())
        .init();

    // Two seconds, not one: the emulator counts whole seconds, so a one-second token issued late
    // in a second was already expired when the page used it right after the refresh (a 502).
    const METRICS_TOKEN: &str = "m3tr1cs-t0ken-for-the-scraper-0123456789";
    let app = spawn_app_with(Options {
        access_token_lifetime: Some(Duration::from_secs(2)),
        settings_change: Some(Box::new(|settings, _| settings.metrics_token = Some(METRICS_TOKEN.into()))),
        ..Options::default()
    })
    .await;
    let mut observed = vec![METRICS_TOKEN.to_owned()];
    let authorize = app.start_sign_in("/login?return_to=/profile").await;
    for name in ["state", "nonce", "code_challenge"] {
        observed.push(query_param(&authorize, name).unwrap());
    }
    let callback = app.sign_in_at_emulator(&authorize, ADELE, ADELE_PASSWORD, true).await;
    observed.push(query_param(&callback, "code").unwrap());
    let response = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    observed.push(cookie.split(';').next().unwrap().trim_start_matches("session=").to_owned());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(app.get("/profile").await.status(), StatusCode::OK, "a refresh happened too");
    let csrf = app.csrf_token().await;
    observed.push(csrf.clone());
    app.browser.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    let scraped = app.browser.get(app.url("/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("signed in") && logs.contains("access token refreshed"), "the capture works: {logs}");
    let mut secrets: Vec<String> = app.emulator.issued_secrets();
    secrets.push(entra_emulator::DEFAULT_CLIENT_SECRET.to_owned());
    secrets.extend(observed);
    for secret in secrets {
        if let Some(at) = logs.find(&secret) {
            panic!("a secret value reached the logs: {}", &logs[at.saturating_sub(300)..at + 20]);
        }
    }

    // Each request's lines say whose it was once it is known: the user's object and tenant ids,
    // pseudonymous (entra-auth notes them on the request span).
    let adele = app.emulator.user_object_id(ADELE).unwrap().to_string();
    let profile = request_spans(&logs, "/profile");
    assert!(!profile.is_empty(), "{logs}");
    for span in profile {
        assert_eq!(
            (span["oid"].as_str(), span["tid"].as_str()),
            (Some(adele.as_str()), Some(app.emulator.tenant_id().to_string().as_str()))
        );
    }
    let login = request_spans(&logs, "/login");
    assert!(!login.is_empty() && login.iter().all(|span| span.get("oid").is_none()), "nobody signed in yet: {login:?}");

    // Sign-out landing elsewhere than the callback (as deployments before it became the landing
    // set it) is said once at start-up: return_to and the signed-out page then go unused.
    const ELSEWHERE: &str = "POST_LOGOUT_REDIRECT_URI is not REDIRECT_URI";
    assert!(!logs.contains(ELSEWHERE), "not by default");
    let root: SettingsChange = Box::new(|settings, _| {
        settings.post_logout_redirect_uri = Some("http://localhost:5001/".to_owned());
    });
    let _elsewhere = spawn_app_with(Options { settings_change: Some(root), ..Options::default() }).await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(ELSEWHERE), "{logs}");

    // An upstream that refuses the proxy for want of a client certificate: the 502's log line and
    // /readyz's name the alert it sent, not just "connection error".
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, client_ca_file) = (dir.path().join("ca.pem"), dir.path().join("client-ca.pem"));
    let client_ca = rcgen::generate_simple_self_signed(vec!["clients.test".to_owned()]).unwrap();
    std::fs::write(&client_ca_file, client_ca.cert.pem()).unwrap();
    let upstream = upstream::start_mutual_tls(&["127.0.0.1"], &ca_file, &client_ca_file).await;
    let (url, ca) = (upstream.url.clone(), ca_file.to_string_lossy().into_owned());
    let proxy: SettingsChange = Box::new(move |settings, _| {
        settings.upstream_url = Some(url);
        settings.upstream_ca_file = Some(ca);
        settings.proxy_anonymous_paths = Some("/public/*".into());
    });
    let proxy = spawn_app_with(Options { settings_change: Some(proxy), ..Options::default() }).await;
    assert_eq!(proxy.get("/public/page").await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(proxy.readiness().await.0, StatusCode::SERVICE_UNAVAILABLE);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for message in ["upstream failed", "upstream unreachable"] {
        let said =
            logs.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()).find_map(|line| {
                let fields = &line["fields"];
                (fields["message"] == message).then(|| fields["error"].as_str().unwrap_or_default().to_owned())
            });
        let said = said.unwrap_or_else(|| panic!("no '{message}' line in {logs}"));
        assert!(said.contains("received fatal alert: CertificateRequired"), "{message}: {said}");
    }

    // Through the proxy too, a request's lines say whose it was.
    let upstream = upstream::start().await;
    let url = upstream.url.clone();
    let proxy: SettingsChange = Box::new(move |settings, _| settings.upstream_url = Some(url));
    let proxy = spawn_app_with(Options { settings_change: Some(proxy), ..Options::default() }).await;
    assert_eq!(proxy.sign_in(ADELE, ADELE_PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(proxy.get("/reports/proxied").await.status(), StatusCode::OK);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let proxied = request_spans(&logs, "/reports/proxied");
    assert_eq!(proxied.len(), 1, "{logs}");
    assert_eq!(proxied[0]["oid"].as_str(), Some(adele.as_str()));
}

/// The span of each request to `path` (its `finished processing request` lines) in `logs`.
fn request_spans(logs: &str, path: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "finished processing request" && line["span"]["path"] == path)
        .map(|line| line["span"].clone())
        .collect()
}
