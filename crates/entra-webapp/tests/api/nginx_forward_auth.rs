//! docs/PROXY.md's nginx forward-auth example, run as written: a real nginx (scripts/test.sh
//! installs it) with the documented server block, only its ports changed, in front of the tests'
//! upstream, asking the proxy's `/.auth/verify`. In that setup nginx, not the proxy, forwards the
//! client's request, so the example itself must keep a client from posing as someone else.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::nginx::Nginx;
use crate::upstream;

/// The fenced nginx block of docs/PROXY.md's "Behind nginx" section.
fn documented_server_block() -> String {
    let doc = include_str!("../../../../docs/PROXY.md");
    let section = &doc[doc.find("## Behind nginx").expect("docs/PROXY.md has a 'Behind nginx' section")..];
    let start = section.find("```nginx\n").expect("an nginx block") + "```nginx\n".len();
    section[start..][..section[start..].find("```").unwrap()].to_owned()
}

/// nginx running the documented block with its ports replaced: nginx on a free loopback port,
/// the proxy at `proxy` (`host:port`), the app at `app`.
fn documented_nginx(proxy: &str, app: &str) -> Nginx {
    let block = documented_server_block();
    Nginx::start(|port| {
        let server = replace_once(&block, "listen 443 ssl;", &format!("listen 127.0.0.1:{port};"));
        let server = replace_once(&server, "server 127.0.0.1:5001;", &format!("server {proxy};"));
        replace_once(&server, "proxy_pass http://127.0.0.1:8000;", &format!("proxy_pass http://{app};"))
    })
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the documented block has `{from}` once");
    text.replace(from, to)
}

/// Every identity header the proxy sends, as a client would forge them, with and without
/// underscores.
const FORGED: [(&str, &str); 10] = [
    ("x-ms-client-principal", "eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W119"),
    ("x-ms-client-principal-name", "admin@evil.test"),
    ("x-ms-client-principal-id", "00000000-0000-0000-0000-000000000000"),
    ("x-ms-client-principal-idp", "evil"),
    ("x-forwarded-user", "admin"),
    ("x-forwarded-email", "admin@evil.test"),
    ("x-ms-token-aad-access-token", "forged"),
    ("x-ms-token-aad-id-token", "forged"),
    ("x_ms_client_principal_id", "00000000-0000-0000-0000-000000000000"),
    ("x_forwarded_user", "admin"),
];

/// The tests' upstream, the proxy, and nginx with the documented block in front of both.
async fn nginx_in_front() -> (upstream::Upstream, TestApp, Nginx) {
    nginx_in_front_with(Options::default()).await
}

async fn nginx_in_front_with(options: Options) -> (upstream::Upstream, TestApp, Nginx) {
    let upstream = upstream::start().await;
    let app_address = upstream.url.trim_start_matches("http://").to_owned();
    let app = spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(format!("http://{app_address}"))
        })),
        ..options
    })
    .await;
    let proxy_address = app.base_url.trim_start_matches("http://").replace("localhost", "127.0.0.1");
    let nginx = documented_nginx(&proxy_address, upstream.url.trim_start_matches("http://"));
    (upstream, app, nginx)
}

#[tokio::test]
async fn the_documented_nginx_example_passes_only_the_proxys_identity() {
    let (_upstream, app, nginx) = nginx_in_front().await;
    let get = |path: &str| {
        let mut request = app.browser.get(nginx.url(path));
        for (name, value) in FORGED {
            request = request.header(name, value);
        }
        request.send()
    };

    // Anonymous, forged headers or not: sent to sign in, coming back to the whole path and query
    // (`&` included), and nothing reaches the app.
    let anonymous = get("/reports?year=2026&team=a%20b").await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::FOUND);
    let sign_in = location(&anonymous);
    assert!(sign_in.starts_with(&nginx.url("/login?")), "{sign_in}");
    assert_eq!(query_param(&sign_in, "return_to").as_deref(), Some("/reports?year=2026&team=a%20b"));

    app.sign_in_adele().await;
    let response = get("/reports").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    let one = |name: &str| -> Option<String> {
        let values = echoed["headers"][name].as_array()?;
        assert_eq!(values.len(), 1, "{name} once: {echoed}");
        values[0].as_str().map(str::to_owned)
    };
    let oid = app.emulator.user_object_id(ADELE).unwrap().to_string();
    assert_eq!(one("x-ms-client-principal-id"), Some(oid), "{echoed}");
    assert_eq!(one("x-ms-client-principal-name").as_deref(), Some(ADELE));
    assert_eq!(one("x-ms-client-principal-idp").as_deref(), Some("aad"));
    assert_eq!(one("x-forwarded-user").as_deref(), Some(ADELE));
    assert_eq!(one("x-forwarded-email").as_deref(), Some("adele.vance@emulator.test"));
    let principal = one("x-ms-client-principal").unwrap();
    assert_ne!(principal, FORGED[0].1, "the proxy's principal, not the forged one");
    let names: Vec<&String> = echoed["headers"].as_object().unwrap().keys().collect();
    assert!(!names.iter().any(|name| name.starts_with("x-ms-token-") || name.contains('_')), "{names:?}");
}

/// nginx asks forward auth with a `GET` whatever the request was: the documented block passes the
/// method (`X-Forwarded-Method`), so a post that another origin's page had the browser send is
/// refused there too, before it reaches the app.
#[tokio::test]
async fn through_the_documented_nginx_example_another_origins_pages_cannot_post_as_the_user() {
    let (_upstream, app, nginx) = nginx_in_front().await;
    app.sign_in_adele().await;
    let post = |site: &'static str| {
        app.browser
            .post(nginx.url("/transfer"))
            .header("sec-fetch-site", site)
            .header("origin", "http://localhost:1")
            .body("amount=100")
            .send()
    };
    assert_eq!(post("same-site").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post("cross-site").await.unwrap().status(), StatusCode::FORBIDDEN);
    let own = post("same-origin").await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let echoed: Value = own.json().await.unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["headers"]["x-ms-client-principal-name"][0], ADELE);
}

/// nginx reads forward auth's answer into one buffer (`proxy_buffer_size`, 4 KB by default), so a
/// principal listing a few dozen groups failed the whole request (nginx: "upstream sent too big
/// header"; the user gets a 500). The documented block gives the answer room for the largest
/// principal the proxy sends (PROXY_PRINCIPAL_MAX_BYTES).
#[tokio::test]
async fn a_user_in_many_groups_gets_through_the_documented_nginx_example() {
    let (_upstream, app, nginx) =
        nginx_in_front_with(Options { emulator_setup: Some(adele_in_many_groups(60)), ..Options::default() }).await;
    app.sign_in_adele().await;
    let response = app.browser.get(nginx.url("/reports")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    let principal = echoed["headers"]["x-ms-client-principal"][0].as_str().unwrap();
    let principal: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(principal).unwrap()).unwrap();
    let groups = principal["claims"].as_array().unwrap().iter().filter(|claim| claim["typ"] == "groups").count();
    assert_eq!(groups, 61, "Sales and the 60 others, listed");
}
