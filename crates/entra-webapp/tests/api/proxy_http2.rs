//! The proxy speaking HTTP/2 to the app behind (`UPSTREAM_HTTP_VERSION=2`), as gRPC services
//! need: with prior knowledge to an `http://` upstream, negotiated by TLS (ALPN) to an
//! `https://` one; the client's `Host` as `:authority`, `TE: trailers` passed, trailers back;
//! WebSocket as RFC 8441's extended CONNECT, and pages that say why when it cannot go.

use std::time::Duration;

use axum::body::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::proxy::{
    closes_within, echo, echoes, header, open_websocket, proxy_with_options, sign_in_keeping_proxy_cookie,
    websocket_request,
};
use crate::upstream::{self, Upstream};

/// The app in front of `upstream`, speaking HTTP/2 to it, `/public/*` and `/trailers` open to
/// anyone.
async fn proxy_http2(
    upstream: &Upstream,
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
) -> TestApp {
    proxy_with_options(
        upstream,
        move |settings| {
            settings.upstream_http_version = "2".into();
            settings.proxy_anonymous_paths = Some("/public/*, /trailers".into());
            change(settings);
        },
        Options::default(),
    )
    .await
}

/// The app's `host:port`, as its clients name it.
fn host_of(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn an_http2_upstream_gets_every_request_in_http2_with_the_clients_host_as_its_authority() {
    let upstream = upstream::start().await;
    let app = proxy_http2(&upstream, |_| {}).await;
    assert_eq!(app.readiness().await, (StatusCode::OK, "ready".to_owned()));

    // An HTTP/1.1 client, signed in: the identity, in HTTP/2.
    sign_in_keeping_proxy_cookie(&app).await;
    let echoed = echo(&app, "/reports?q=1", &[]).await;
    assert_eq!(echoed["version"], "HTTP/2.0");
    assert_eq!(header(&echoed, "x-ms-client-principal-name"), Some(ADELE));
    let authority = format!("http://{}/reports?q=1", host_of(&app));
    assert_eq!(echoed["target"], authority, "the client's Host, as :authority");
    assert_eq!(header(&echoed, "host"), None, "and no Host header besides (RFC 9113 §8.3.1)");
    assert_eq!(header(&echoed, "x-forwarded-host"), Some(host_of(&app).as_str()));
    let upload = app.browser.post(app.url("/echo")).body(vec![b'x'; 1 << 20]).send().await.unwrap();
    assert_eq!(upload.json::<Value>().await.unwrap()["body_length"], 1 << 20, "a body, whole");

    // Requests side by side, from clients of both versions.
    let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let answers = futures::future::join_all((0..20).map(|n| {
        let client = if n % 2 == 0 { &http2 } else { &app.browser };
        client.get(app.url(&format!("/public/{n}"))).send()
    }))
    .await;
    for (n, answer) in answers.into_iter().enumerate() {
        let echoed: Value = answer.unwrap().json().await.unwrap();
        assert_eq!(
            (echoed["version"].as_str(), echoed["path"].as_str()),
            (Some("HTTP/2.0"), Some(format!("/public/{n}").as_str()))
        );
    }

    // The upstream's own name, when asked.
    let own = proxy_http2(&upstream, |settings| settings.proxy_pass_host_header = "false".into()).await;
    let echoed: Value = own.browser.get(own.url("/public/x")).send().await.unwrap().json().await.unwrap();
    assert_eq!(echoed["target"], format!("{}/public/x", upstream.url));
    assert_eq!(header(&echoed, "x-forwarded-host"), Some(host_of(&own).as_str()));
}

/// What a gRPC call needs of the proxy: `TE: trailers` to the server, the trailers (the call's
/// status) back to the client.
#[tokio::test]
async fn a_grpc_like_call_passes_te_trailers_one_way_and_the_trailers_the_other() {
    let upstream = upstream::start().await;
    let app = proxy_http2(&upstream, |_| {}).await;
    let tcp = tokio::net::TcpStream::connect(app.base_url.trim_start_matches("http://")).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::post(app.url("/trailers"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x05hello")))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("x-received-te").map(|v| v.to_str().unwrap()),
        Some("trailers"),
        "TE: trailers reached the server: {response:?}"
    );
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("the trailers came back");
    assert_eq!(
        (&trailers["grpc-status"], &trailers["grpc-message"]),
        (&"0".parse().unwrap(), &"done".parse().unwrap())
    );
    assert_eq!(collected.to_bytes(), Bytes::from_static(b"\0\0\0\0\x05hello"));
}

/// HTTP/2 has no `Upgrade`: a browser's WebSocket reaches an HTTP/2 upstream as RFC 8441's
/// extended CONNECT, the handshake answered by the proxy (the `Sec-WebSocket-Accept` the client
/// checks), the subprotocol the app chose passed back, the user's identity on it; and the socket
/// still ends with its session.
#[tokio::test]
async fn a_websocket_reaches_an_http2_upstream_as_an_extended_connect_and_ends_with_its_session() {
    let upstream = upstream::start().await;
    let app = proxy_http2(&upstream, |settings| settings.proxy_websocket_check_seconds = "1".into()).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let offered = [("cookie", cookie.as_str()), ("sec-websocket-protocol", "chat.v1, chat.v2")];
    let opened = tokio_tungstenite::connect_async(websocket_request(&app, "/ws/received", &offered)).await;
    let (mut socket, response) = opened.expect("upgraded through the proxy");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2", "the app's choice");

    let received = socket.next().await.unwrap().unwrap();
    let received: Value = serde_json::from_str(received.to_text().unwrap()).unwrap();
    assert_eq!(
        (received["version"].as_str(), received["method"].as_str(), received["protocol"].as_str()),
        (Some("HTTP/2.0"), Some("CONNECT"), Some("websocket")),
        "{received}"
    );
    assert_eq!(header(&received, "x-ms-client-principal-name"), Some(ADELE));
    assert_eq!(header(&received, "sec-websocket-version"), Some("13"));
    assert_eq!(header(&received, "sec-websocket-protocol"), Some("chat.v1, chat.v2"));
    for name in ["sec-websocket-key", "upgrade", "connection", "host", "cookie"] {
        assert_eq!(header(&received, name), None, "{name} stays with the proxy: {received}");
    }
    for text in ["hello", "again"] {
        assert!(echoes(&mut socket, text).await, "{text}");
    }

    assert_eq!(app.sign_out().await.status(), StatusCode::SEE_OTHER);
    assert!(closes_within(&mut socket, Duration::from_secs(10)).await, "closed after sign-out");
}

/// What cannot go through says why: a WebSocket to an HTTP/2 upstream that does not take them
/// (502, with no wait beyond its SETTINGS), an upgrade to another protocol (501), a WebSocket
/// handshake without its key (400); and the app's own refusal of a handshake reaches the client as
/// the app gave it.
#[tokio::test]
async fn what_cannot_reach_an_http2_upstream_as_a_websocket_gets_an_answer_that_says_why() {
    let without_websockets = upstream::start_http2_without_websockets().await;
    let app = proxy_http2(&without_websockets, |_| {}).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let refused = tokio_tungstenite::connect_async(websocket_request(&app, "/ws", &[("cookie", &cookie)])).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else { panic!("not upgraded") };
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let page = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
    assert!(page.contains("RFC 8441") && page.contains("UPSTREAM_HTTP_VERSION=1.1"), "{page}");
    let echoed = echo(&app, "/still-there", &[]).await;
    assert_eq!(echoed["version"], "HTTP/2.0", "its other requests still go");

    let upstream = upstream::start().await;
    let app = proxy_http2(&upstream, |_| {}).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    // The app has no socket at /page: its 405 to the CONNECT is the client's answer.
    let refused = tokio_tungstenite::connect_async(websocket_request(&app, "/page", &[("cookie", &cookie)])).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else { panic!("not upgraded") };
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let upgrade = |protocol: &'static str, key: Option<&'static str>| {
        let request = app
            .browser
            .get(app.url("/ws"))
            .header("connection", "upgrade")
            .header("upgrade", protocol)
            .header("sec-websocket-version", "13");
        let request = match key {
            Some(key) => request.header("sec-websocket-key", key),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, page) = upgrade("foo/1", Some("dGhlIHNhbXBsZSBub25jZQ==")).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(page.contains("UPSTREAM_HTTP_VERSION=1.1"), "{page}");
    for key in [None, Some("c2hvcnQ=")] {
        let (status, page) = upgrade("websocket", key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key:?}");
        assert!(page.contains("Sec-WebSocket-Key"), "{page}");
    }
}

#[tokio::test]
async fn an_https_upstream_is_spoken_to_in_http2_once_tls_agreed_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let upstream = upstream::start_tls(&["127.0.0.1"], &ca_file).await;
    let ca = ca_file.to_string_lossy().into_owned();
    let app = proxy_http2(&upstream, move |settings| settings.upstream_ca_file = Some(ca)).await;
    assert_eq!(app.readiness().await, (StatusCode::OK, "ready".to_owned()));
    let echoed: Value = app.browser.get(app.url("/public/x")).send().await.unwrap().json().await.unwrap();
    assert_eq!(echoed["version"], "HTTP/2.0", "ALPN h2");
    assert_eq!(echoed["target"], format!("https://{}/public/x", host_of(&app)));
    // A WebSocket too, on a TLS connection of its own.
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let mut socket = open_websocket(&app, &cookie).await;
    assert!(echoes(&mut socket, "over TLS").await);
}

/// Each request names its own `Host`, so its own `:authority`: a pool, keyed by it, would open an
/// upstream connection per made-up name. A client connection's requests share its one upstream
/// connection, whatever they name, and another client connection has its own.
#[tokio::test]
async fn requests_naming_many_hosts_share_their_client_connections_upstream_connection() {
    let upstream = upstream::start().await;
    let app = proxy_http2(&upstream, |_| {}).await;
    for client in [
        reqwest::Client::builder().http1_only().build().unwrap(),
        reqwest::Client::builder().http2_prior_knowledge().build().unwrap(),
    ] {
        let mut upstream_ports = std::collections::BTreeSet::new();
        for n in 0..20 {
            let request = client.get(app.url("/public/x")).header("host", format!("made-up-{n}.example"));
            let echoed: Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(echoed["target"], format!("http://made-up-{n}.example/public/x"));
            upstream_ports.insert(echoed["peer_port"].as_u64().unwrap());
        }
        assert_eq!(upstream_ports.len(), 1, "one upstream connection for the client connection: {upstream_ports:?}");
    }
    let (first, second, app) = (reqwest::Client::new(), reqwest::Client::new(), &app);
    let port = |client: &reqwest::Client| {
        let request = client.get(app.url("/public/x")).send();
        async move { request.await.unwrap().json::<Value>().await.unwrap()["peer_port"].as_u64().unwrap() }
    };
    assert_ne!(port(&first).await, port(&second).await, "each client connection its own");
}

/// `TE` is hop-by-hop: an HTTP/1.1 upstream never gets the client's; an HTTP/2 one gets
/// `TE: trailers` when, and only when, the client said it reads trailers.
#[tokio::test]
async fn te_trailers_reaches_an_http2_upstream_only_from_a_client_that_sent_it() {
    let upstream = upstream::start().await;
    let http11 = proxy_with_options(
        &upstream,
        |settings| settings.proxy_anonymous_paths = Some("/public/*".into()),
        Options::default(),
    )
    .await;
    let http2 = proxy_http2(&upstream, |_| {}).await;
    for (app, te, expected) in [
        (&http11, Some("trailers"), None),
        (&http2, None, None),
        (&http2, Some("gzip"), None),
        (&http2, Some("gzip, trailers"), Some("trailers")),
    ] {
        let request = app.browser.get(app.url("/public/x"));
        let request = match te {
            Some(te) => request.header("te", te),
            None => request,
        };
        let echoed: Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(header(&echoed, "te"), expected, "TE {te:?} to HTTP/{}", echoed["version"]);
    }
}
