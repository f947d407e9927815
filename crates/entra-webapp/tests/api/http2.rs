//! HTTP/2 with prior knowledge (h2c), as App Service's front end speaks it to a container with
//! HTTP/2 proxying on: pages, a signed-in session and the proxy work as over HTTP/1.1, the host
//! coming from `:authority`; the proxy's HTTP/2 clients open WebSockets as RFC 8441 has it.

use std::time::Duration;

use axum::body::Bytes;
use futures::StreamExt;
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::{StatusCode, Version};
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::helpers::*;
use crate::proxy::{closes_within, echoes, header, proxy_with, proxy_with_options, sign_in_keeping_proxy_cookie};
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

/// An HTTP/2 connection to `app` (h2c), and whether the app's `SETTINGS` offered RFC 8441's
/// extended CONNECT (read once a first answer has come: the server sends its `SETTINGS` first).
async fn h2c(app: &TestApp) -> (SendRequest<Empty<Bytes>>, bool) {
    let stream = tokio::net::TcpStream::connect(app.base_url.trim_start_matches("http://")).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    let mut connection = Box::pin(connection);
    let health = hyper::Request::get(app.url("/healthz")).body(Empty::new()).unwrap();
    let answered = tokio::select! {
        answered = sender.send_request(health) => answered.unwrap(),
        ended = &mut connection => panic!("the connection ended first: {ended:?}"),
    };
    assert_eq!(answered.status(), StatusCode::OK);
    let offered = connection.is_extended_connect_protocol_enabled();
    tokio::spawn(connection);
    (sender, offered)
}

type Http2WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Opens a WebSocket to `path` of `app` as a browser does over HTTP/2: an extended CONNECT with
/// `:protocol: websocket` (RFC 8441 §4) and `headers`. The answer, and the socket when it opened.
async fn connect_websocket(
    sender: &mut SendRequest<Empty<Bytes>>,
    app: &TestApp,
    path: &str,
    protocol: &'static str,
    headers: &[(&str, &str)],
) -> (hyper::http::response::Parts, Option<Http2WebSocket>) {
    let mut request = hyper::Request::connect(app.url(path)).header("sec-websocket-version", "13");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Empty::new()).unwrap();
    request.extensions_mut().insert(hyper::ext::Protocol::from_static(protocol));
    let mut response = sender.send_request(request).await.expect("an answer to the CONNECT");
    let socket = match response.status().is_success() {
        true => {
            let upgraded = hyper::upgrade::on(&mut response).await.expect("the stream is the tunnel");
            Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await)
        }
        false => None,
    };
    (response.into_parts().0, socket)
}

/// Browsers open WebSockets over HTTP/2 where the server offers it: through the proxy the
/// extended CONNECT reaches an HTTP/1.1 app as RFC 6455's upgrade (a key of the proxy's own,
/// whose answer the proxy checks), with the user's identity and without our cookie; the stream
/// carries the frames, and the socket still ends with the session. Our own pages offer nothing.
#[tokio::test]
async fn an_http2_clients_websocket_reaches_an_http11_app_as_an_upgrade_and_ends_with_its_session() {
    let upstream = upstream::start().await;
    let app = proxy_with(&upstream, |settings| settings.proxy_websocket_check_seconds = "1".into()).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let (mut sender, offered) = h2c(&app).await;
    assert!(offered, "the proxy offers RFC 8441 to its HTTP/2 clients");
    let origin = app.base_url.clone();
    let offered_protocols = [
        ("cookie", cookie.as_str()),
        ("sec-websocket-protocol", "chat.v1, chat.v2"),
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let (opened, socket) = connect_websocket(&mut sender, &app, "/ws/received", "websocket", &offered_protocols).await;
    assert_eq!(opened.status, StatusCode::OK, "RFC 8441 §5: a 2xx opens the stream");
    assert_eq!(opened.headers["sec-websocket-protocol"], "chat.v2", "the app's choice");
    for name in ["sec-websocket-accept", "upgrade", "connection"] {
        assert!(!opened.headers.contains_key(name), "{name} is HTTP/1.1's");
    }
    let mut socket = socket.expect("opened");
    let received = socket.next().await.unwrap().unwrap();
    let received: Value = serde_json::from_str(received.to_text().unwrap()).unwrap();
    assert_eq!(
        (received["version"].as_str(), received["method"].as_str(), &received["protocol"]),
        (Some("HTTP/1.1"), Some("GET"), &Value::Null),
        "{received}"
    );
    assert_eq!(header(&received, "x-ms-client-principal-name"), Some(ADELE));
    assert_eq!(header(&received, "upgrade"), Some("websocket"));
    assert_eq!(header(&received, "sec-websocket-version"), Some("13"));
    assert_eq!(header(&received, "sec-websocket-protocol"), Some("chat.v1, chat.v2"));
    assert_eq!(header(&received, "origin"), Some(origin.as_str()));
    assert_eq!(header(&received, "sec-websocket-key").map(str::len), Some(24), "16 bytes in base64: {received}");
    assert_eq!(header(&received, "cookie"), None, "our cookie stays with the proxy");
    for text in ["hello", "again"] {
        assert!(echoes(&mut socket, text).await, "{text}");
    }
    // Other requests share the connection meanwhile.
    let (opened, _) = connect_websocket(&mut sender, &app, "/ws", "websocket", &[("cookie", &cookie)]).await;
    assert_eq!(opened.status, StatusCode::OK, "a second socket on the same connection");

    assert_eq!(app.sign_out().await.status(), StatusCode::SEE_OTHER);
    assert!(closes_within(&mut socket, Duration::from_secs(10)).await, "closed after sign-out");

    let plain = spawn_app().await;
    assert!(!h2c(&plain).await.1, "the app's own pages have no WebSocket to offer");
}

/// Over HTTP/2 both ways, the client's extended CONNECT goes on as it is; and what may not open
/// a socket gets the same answers as over HTTP/1.1: no session (401), a page of another site
/// (403), a path rule (403), another protocol than WebSocket (501), a path with no socket (the
/// app's refusal as it is; a page answering the handshake as a page, 502: any 2xx to a CONNECT
/// would tell the client its tunnel is open).
#[tokio::test]
async fn an_http2_clients_websocket_is_gated_like_any_other() {
    let upstream = upstream::start().await;
    let app = proxy_with_options(
        &upstream,
        |settings| {
            settings.upstream_http_version = "2".into();
            settings.proxy_path_roles = Some("/ws/admin=Admin".into());
        },
        Options::default(),
    )
    .await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let (mut sender, _) = h2c(&app).await;
    let (opened, socket) =
        connect_websocket(&mut sender, &app, "/ws/received", "websocket", &[("cookie", &cookie)]).await;
    assert_eq!(opened.status, StatusCode::OK);
    let mut socket = socket.unwrap();
    let received: Value = serde_json::from_str(socket.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        (received["version"].as_str(), received["method"].as_str(), received["protocol"].as_str()),
        (Some("HTTP/2.0"), Some("CONNECT"), Some("websocket")),
        "{received}"
    );
    assert_eq!(header(&received, "x-ms-client-principal-name"), Some(ADELE));
    assert!(echoes(&mut socket, "both ways HTTP/2").await);

    let mut status = async |path: &str, protocol: &'static str, headers: &[(&str, &str)]| {
        connect_websocket(&mut sender, &app, path, protocol, headers).await.0.status
    };
    assert_eq!(status("/ws", "websocket", &[]).await, StatusCode::UNAUTHORIZED, "no session");
    let cross_site =
        [("cookie", cookie.as_str()), ("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    assert_eq!(status("/ws", "websocket", &cross_site).await, StatusCode::FORBIDDEN, "another site's page");
    assert_eq!(status("/ws/admin", "websocket", &[("cookie", &cookie)]).await, StatusCode::FORBIDDEN, "a path rule");
    assert_eq!(status("/ws", "webtransport", &[("cookie", &cookie)]).await, StatusCode::NOT_IMPLEMENTED);

    let app = proxy_with(&upstream, |_| {}).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let (mut sender, _) = h2c(&app).await;
    let mut status = async |path: &str| {
        connect_websocket(&mut sender, &app, path, "websocket", &[("cookie", &cookie)]).await.0.status
    };
    assert_eq!(status("/upload").await, StatusCode::METHOD_NOT_ALLOWED, "the app's own refusal (POST only)");
    assert_eq!(status("/page").await, StatusCode::BAD_GATEWAY, "a page is no socket");
    assert_eq!(status("/ws").await, StatusCode::OK, "the connection still serves");
}

/// Many WebSockets share one HTTP/2 connection, which goes on serving: each takes a place of its
/// own among the connections served at once, so no client holds sockets (and connections to the
/// app behind) beyond the cap; over it, a 503 at once, and a place freed is taken again.
#[tokio::test]
async fn http2_websockets_each_take_a_connection_place_and_over_the_cap_get_a_503() {
    let upstream = upstream::start().await;
    // Four places: the listener's (held for the next connection it accepts), the h2c
    // connection's, and what is left for sockets (and the sign-in's connections while kept alive).
    let limits = entra_webapp::config::ServerLimits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 4,
        ..entra_webapp::config::ServerLimits::default()
    };
    let app =
        proxy_with_options(&upstream, |_| {}, Options { server_limits: Some(limits), ..Options::default() }).await;
    let cookie = sign_in_keeping_proxy_cookie(&app).await;
    let (mut sender, _) = h2c(&app).await;
    let mut open = async || connect_websocket(&mut sender, &app, "/ws", "websocket", &[("cookie", &cookie)]).await;
    // One connection may carry 100 streams: without a place each, ten sockets would open.
    let mut sockets = Vec::new();
    let refused = loop {
        match open().await {
            (opened, Some(socket)) => {
                assert_eq!(opened.status, StatusCode::OK);
                sockets.push(socket);
            }
            (refused, None) => break refused.status,
        }
        assert!(sockets.len() < 10, "the cap holds sockets on one HTTP/2 connection");
    };
    assert_eq!(refused, StatusCode::SERVICE_UNAVAILABLE, "over the cap: refused at once");
    assert!(!sockets.is_empty() && sockets.len() <= 2, "{} sockets", sockets.len());
    let mut first = sockets.remove(0);
    assert!(echoes(&mut first, "the open ones still work").await);

    first.close(None).await.unwrap();
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if let (_, Some(socket)) = open().await {
            reopened = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(echoes(&mut reopened.expect("a place freed is taken again"), "again").await);
}
