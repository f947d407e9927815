//! The proxy's connections to the app behind: each HTTP/1.1 client connection has one of its
//! own, reused for each of its requests and closed with it; one the app behind closes is
//! replaced; HTTP/2 clients, whose requests run side by side, share the pool.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::upstream;

/// The app in front of `upstream`, letting anonymous requests through (the connections are the
/// subject here, not sign-in), with extra settings.
async fn proxy_allowing_anonymous(
    upstream_url: String,
    change: impl FnOnce(&mut entra_webapp::config::Settings) + Send + 'static,
) -> TestApp {
    spawn_app_with(Options {
        settings_change: Some(Box::new(move |settings, _| {
            settings.upstream_url = Some(upstream_url);
            settings.proxy_unauthenticated_action = "allow".into();
            change(settings);
        })),
        ..Options::default()
    })
    .await
}

/// A client with a connection pool of its own, speaking HTTP/1.1.
fn http1_client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

/// The port the upstream saw `client`'s request come from, through the proxy.
async fn upstream_port_of(app: &TestApp, client: &reqwest::Client) -> u64 {
    let response = client.get(app.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    echoed["peer_port"].as_u64().expect("the upstream's peer port")
}

/// Waits (at most 5 s) for `condition`; whether it came true.
async fn eventually(condition: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    condition()
}

#[tokio::test]
async fn each_client_connection_keeps_its_own_upstream_connection_and_closes_it() {
    let upstream = upstream::start().await;
    let app = proxy_allowing_anonymous(upstream.url.clone(), |_| {}).await;
    let (first, second) = (http1_client(), http1_client());
    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push(upstream_port_of(&app, &first).await);
    }
    assert!(ports.iter().all(|port| *port == ports[0]), "one client connection, one upstream connection: {ports:?}");
    let other = upstream_port_of(&app, &second).await;
    assert_ne!(other, ports[0], "another client never shares that connection");
    assert_eq!(upstream_port_of(&app, &first).await, ports[0]);
    assert!(eventually(|| upstream.open_connections() == 2).await, "{} open", upstream.open_connections());
    // A client that goes away takes its upstream connection with it.
    drop(first);
    assert!(eventually(|| upstream.open_connections() == 1).await, "{} open", upstream.open_connections());
    drop(second);
    assert!(eventually(|| upstream.open_connections() == 0).await, "{} open", upstream.open_connections());
}

#[tokio::test]
async fn the_upstream_gets_a_path_in_the_request_line_and_a_host() {
    let upstream = upstream::start().await;
    let app = proxy_allowing_anonymous(upstream.url.clone(), |_| {}).await;
    let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    // An absolute URI there is read as a path by many servers (Python's `http.server` among them).
    for (client, version) in [(http1_client(), "HTTP/1.1, its own connection"), (http2, "HTTP/2, the pool")] {
        let echoed: Value = client.get(app.url("/echo?q=1")).send().await.unwrap().json().await.unwrap();
        assert_eq!(echoed["target"], "/echo?q=1", "{version}");
        assert_eq!(echoed["headers"]["host"][0], app.base_url.trim_start_matches("http://"), "{version}");
    }
    // HTTP/1.0 may leave `Host` out; HTTP/1.1, which the upstream is spoken to in, may not.
    let address = app.base_url.trim_start_matches("http://").replace("localhost", "127.0.0.1");
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"GET /echo HTTP/1.0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let echoed: Value = serde_json::from_str(body).unwrap();
    assert_eq!(echoed["target"], "/echo");
    assert_eq!(echoed["headers"]["host"][0], upstream.url.trim_start_matches("http://"), "the upstream's own");
    assert!(echoed["headers"]["x-forwarded-host"].is_null(), "the client named no host: {echoed}");
}

/// An app that answers only to its own name (another site, an ingress routing by name) gets it,
/// with the client's in `X-Forwarded-Host`.
#[tokio::test]
async fn with_pass_host_header_off_the_upstream_gets_its_own_host() {
    let upstream = upstream::start().await;
    let app = proxy_allowing_anonymous(upstream.url.clone(), |settings| {
        settings.proxy_pass_host_header = "false".into();
    })
    .await;
    let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    for (client, version) in [(http1_client(), "HTTP/1.1, its own connection"), (http2, "HTTP/2, the pool")] {
        let echoed: Value = client
            .get(app.url("/echo"))
            .header("x-forwarded-host", "forged.example")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            echoed["headers"]["host"],
            serde_json::json!([upstream.url.trim_start_matches("http://")]),
            "{version}"
        );
        let client_host = app.base_url.trim_start_matches("http://");
        assert_eq!(echoed["headers"]["x-forwarded-host"], serde_json::json!([client_host]), "{version}");
    }
}

#[tokio::test]
async fn an_upstream_named_by_a_host_name_is_reached() {
    // `localhost` resolves to `::1` and `127.0.0.1`; the upstream listens on the second only.
    let upstream = upstream::start().await;
    let app = proxy_allowing_anonymous(upstream.url.replace("127.0.0.1", "localhost"), |_| {}).await;
    let client = http1_client();
    let first = upstream_port_of(&app, &client).await;
    assert_eq!(upstream_port_of(&app, &client).await, first, "kept for the next request");
}

#[tokio::test]
async fn a_connection_the_app_behind_closes_is_replaced() {
    let upstream = upstream::start().await;
    let app = proxy_allowing_anonymous(upstream.url.clone(), |_| {}).await;
    let client = http1_client();
    let before = upstream_port_of(&app, &client).await;
    let closing = client.get(app.url("/close")).send().await.unwrap();
    assert_eq!(closing.status(), StatusCode::OK);
    assert_eq!(closing.text().await.unwrap(), "closing");
    // The next request, at once, on the same client connection.
    let after = upstream_port_of(&app, &client).await;
    assert_ne!(after, before, "a new upstream connection");
}

/// An upstream that answers one request per connection, then closes it after `linger` without
/// saying so (as a server does at its keep-alive timeout). Its address.
async fn one_request_per_connection_upstream(linger: Duration) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                tokio::time::sleep(linger).await;
            });
        }
    });
    (format!("http://{address}"), task)
}

#[tokio::test]
async fn a_connection_the_app_behind_drops_silently_is_replaced() {
    let (url, upstream) = one_request_per_connection_upstream(Duration::from_millis(50)).await;
    let app = proxy_allowing_anonymous(url, |_| {}).await;
    let client = http1_client();
    for round in 0..3 {
        let response = client.get(app.url("/page")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
        assert_eq!(response.text().await.unwrap(), "ok");
        // Past the upstream's close.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    upstream.abort();
}

#[tokio::test]
async fn after_a_timeout_the_late_answer_never_reaches_the_next_request() {
    let upstream = upstream::start().await;
    let app = proxy_allowing_anonymous(upstream.url.clone(), |settings| {
        settings.upstream_timeout_seconds = "1".into();
    })
    .await;
    let client = http1_client();
    let before = upstream_port_of(&app, &client).await;
    let slow = client.get(app.url("/slow")).send().await.unwrap();
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
    let _ = slow.text().await;
    // The connection that still owes "late" is not used again: the next request gets its own answer.
    let response = client.get(app.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["path"], "/echo");
    assert_ne!(echoed["peer_port"].as_u64().unwrap(), before);
}

#[tokio::test]
async fn http2_requests_side_by_side_do_not_wait_for_each_other() {
    let upstream = upstream::start().await;
    let app = proxy_allowing_anonymous(upstream.url.clone(), |_| {}).await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    // One HTTP/2 connection: the slow answer (5 s) is still on its way when the quick one arrives.
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), app.url("/slow"));
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let quick = client.get(app.url("/echo")).send().await.unwrap();
    assert_eq!(quick.version(), reqwest::Version::HTTP_2);
    assert_eq!(quick.status(), StatusCode::OK);
    assert!(!slow.is_finished(), "the quick request did not wait behind the slow one");
    assert_eq!(slow.await.unwrap(), "late");
}
