//! The proxy in front of apps served by Python's standard library (`python_upstream.py`): a
//! server that is not hyper reads the request line, the headers and the body its own way, and
//! keeps or closes connections its own way. (The first version of the proxy's own upstream
//! connections sent an absolute URI in the request line: hyper, and so the tests' Rust upstream,
//! took it; Python's server took it for a path.) A WSGI server also shows the headers as a Flask
//! or Django app reads them, with `_` and `-` both becoming `_` in `HTTP_*` names.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

/// A running `python_upstream.py`; dropping it stops it.
struct PythonUpstream {
    url: String,
    _process: Child,
}

/// Starts `python_upstream.py` in `mode` (`http` or `wsgi`) on a free loopback port.
async fn start(mode: &str) -> PythonUpstream {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/python_upstream.py");
    let mut process = Command::new("python3")
        .arg(script)
        .arg(mode)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 (scripts/test.sh installs it)");
    let stdout = process.stdout.take().unwrap();
    let (mut port, mut stdout) = (String::new(), BufReader::new(stdout));
    let read = stdout.read_line(&mut port);
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.unwrap().unwrap();
    PythonUpstream { url: format!("http://127.0.0.1:{}", port.trim()), _process: process }
}

/// The app in front of `upstream`, letting anonymous requests through with no identity.
async fn proxy_to(upstream: &PythonUpstream) -> TestApp {
    let url = upstream.url.clone();
    spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(url);
            settings.proxy_unauthenticated_action = "allow".into();
        })),
        ..Options::default()
    })
    .await
}

/// A client with a connection of its own, speaking HTTP/1.1.
fn http1_client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

async fn json(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_python_server_gets_the_path_the_users_identity_and_whole_bodies_on_kept_connections() {
    let upstream = start("http").await;
    let app = proxy_to(&upstream).await;
    let signed_in = app.sign_in(ADELE, ADELE_PASSWORD).await;
    let session = cookie_pair(&set_cookie(&signed_in, "entra-session=").expect("the proxy's session cookie"));

    let echoed = json(
        app.browser
            .get(app.url("/orders/7?view=full&q=a%20b"))
            .header("x-ms-client-principal-name", "mallory@evil.example")
            .header("cookie", format!("theirs=1; {session}"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(echoed["target"], "/orders/7?view=full&q=a%20b", "a path in the request line, as sent");
    let header = |name: &str| echoed["headers"][name].as_array().cloned().unwrap_or_default();
    assert_eq!(header("x-ms-client-principal-name"), [ADELE], "ours, once");
    assert_eq!(header("host"), [app.base_url.trim_start_matches("http://")]);
    assert_eq!(header("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(header("cookie"), ["theirs=1"], "the app's cookie, not ours");

    // A body the client gave a length: Python reads exactly that length, and gets all of it.
    let client = http1_client();
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let checksum = body.iter().map(|&b| u64::from(b)).sum::<u64>() % 65521;
    let posted = json(client.post(app.url("/upload")).body(body).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!((posted["body_length"].as_u64(), posted["body_checksum"].as_u64()), (Some(1_000_000), Some(checksum)));

    // One client connection: one upstream connection while Python keeps it, a new one once it
    // closes, and the app's own 404 passed on as it is.
    let port_of = |echoed: &Value| echoed["peer_port"].as_u64().unwrap();
    let first = json(client.get(app.url("/a")).send().await.unwrap(), StatusCode::OK).await;
    let second = json(client.get(app.url("/b")).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(port_of(&first), port_of(&second), "the kept connection");
    let closing = json(client.get(app.url("/close")).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(port_of(&closing), port_of(&second));
    let after = client.get(app.url("/missing")).send().await.unwrap();
    assert_eq!(after.headers()["content-type"], "application/json", "the app's 404, not our error page");
    let after = json(after, StatusCode::NOT_FOUND).await;
    assert_ne!(port_of(&after), port_of(&closing), "a new connection after Python closed the last");
}

#[tokio::test]
async fn a_wsgi_app_reads_our_identity_and_never_a_spoofed_one_in_either_spelling() {
    let upstream = start("wsgi").await;
    let app = proxy_to(&upstream).await;
    let spoofed = [
        ("x-ms-client-principal-name", "mallory@evil.example"),
        ("x_ms_client_principal_name", "mallory@evil.example"),
        ("x_ms_client_principal_id", "00000000-0000-0000-0000-000000000bad"),
        ("x_forwarded_for", "6.6.6.6"),
    ];
    let visit = |path: &'static str| {
        let mut request = app.browser.get(app.url(path));
        for (name, value) in spoofed {
            request = request.header(name, value);
        }
        async move { json(request.send().await.unwrap(), StatusCode::OK).await }
    };

    // Anonymous: the app reads no identity at all, under either spelling of any name.
    let anonymous = visit("/whoami?x=1").await;
    assert_eq!((anonymous["path_info"].as_str(), anonymous["query_string"].as_str()), (Some("/whoami"), Some("x=1")));
    let environ = anonymous["environ"].as_object().unwrap();
    assert!(environ.keys().all(|key| !key.starts_with("HTTP_X_MS_CLIENT_PRINCIPAL")), "{environ:?}");
    assert_eq!(environ["HTTP_X_FORWARDED_FOR"], "127.0.0.1");

    // Signed in: what the app reads is ours.
    app.sign_in_adele().await;
    let oid = app.emulator.user_object_id(ADELE).unwrap().to_string();
    let signed_in = visit("/whoami").await;
    let environ = &signed_in["environ"];
    assert_eq!(environ["HTTP_X_MS_CLIENT_PRINCIPAL_NAME"], ADELE);
    assert_eq!(environ["HTTP_X_MS_CLIENT_PRINCIPAL_ID"], oid.as_str());
    assert_eq!(environ["HTTP_X_MS_CLIENT_PRINCIPAL_IDP"], "aad");
    assert_eq!(environ["HTTP_X_FORWARDED_FOR"], "127.0.0.1");

    // wsgiref answers in HTTP/1.0 and closes each connection: every request gets a new one.
    let client = http1_client();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let echoed = json(client.get(app.url("/again")).send().await.unwrap(), StatusCode::OK).await;
        ports.push(echoed["peer_port"].as_u64().unwrap());
    }
    ports.dedup();
    assert_eq!(ports.len(), 3, "{ports:?}");
}
