//! What a client may cost the server: a client dribbling its request head (slowloris) or
//! holding an idle connection is cut off after the header-read timeout while others are served;
//! request ids are ours; a huge `Retry-After` from Graph is a 503 page, not a panic.

use std::time::{Duration, Instant};

use entra_webapp::config::ServerLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

async fn app_with_short_header_timeout() -> TestApp {
    let limits = ServerLimits { header_read_timeout: HEADER_TIMEOUT, ..ServerLimits::default() };
    spawn_app_with(Options { server_limits: Some(limits), ..Options::default() }).await
}

/// Reads until the server closes the connection; returns when it did (or panics after `limit`).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off_while_others_are_served() {
    let app = app_with_short_header_timeout().await;
    let mut slow = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let dribble = tokio::spawn(async move {
        // One header byte every 200 ms: never a complete head.
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    // Meanwhile the site answers everyone else.
    for _ in 0..3 {
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
    let mut slow = dribble.await.unwrap();
    let closed_after = closed_within(&mut slow, Duration::from_secs(5)).await;
    assert!(closed_after < Duration::from_secs(5), "cut off, not served: {closed_after:?}");
}

#[tokio::test]
async fn a_connection_stalling_inside_the_http2_preface_is_closed() {
    let app = app_with_short_header_timeout().await;
    let mut stalling = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    // The first half of HTTP/2's preface, then nothing: the protocol is never told.
    stalling.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "others are served meanwhile");
    let closed_after = closed_within(&mut stalling, Duration::from_secs(5)).await;
    assert!(closed_after < Duration::from_secs(5), "closed, not held: {closed_after:?}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let app = app_with_short_header_timeout().await;
    let mut silent = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    closed_within(&mut silent, HEADER_TIMEOUT * 4).await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = app_with_short_header_timeout().await;
    let mut idle = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut response = vec![0u8; 4096];
    let read = idle.read(&mut response).await.unwrap();
    assert!(String::from_utf8_lossy(&response[..read]).starts_with("HTTP/1.1 200"), "served first");
    // Then nothing: the connection waits for a request head that never comes.
    closed_within(&mut idle, HEADER_TIMEOUT * 4).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_frees() {
    let limits = ServerLimits { header_read_timeout: HEADER_TIMEOUT, max_connections: 1, ..ServerLimits::default() };
    let app = spawn_app_with(Options { server_limits: Some(limits), ..Options::default() }).await;
    // The one connection allowed, held idle: the next one is not served until it is cut off.
    let mut holder = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    holder.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let waiting = tokio::spawn({
        let url = app.url("/healthz");
        async move { browser().get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(HEADER_TIMEOUT / 2).await;
    assert!(!waiting.is_finished(), "over the cap: not served while the only slot is taken");
    closed_within(&mut holder, HEADER_TIMEOUT * 4).await;
    assert_eq!(waiting.await.unwrap().unwrap(), StatusCode::OK, "served once the slot freed");
}

#[tokio::test]
async fn request_ids_are_always_ours() {
    let app = spawn_app().await;
    for client_id in ["abc-123", "forged id with spaces", "<script>alert(1)</script>"] {
        let response = app.browser.get(app.url("/nowhere")).header("x-request-id", client_id).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let ours = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(ours, client_id);
        assert!(uuid::Uuid::parse_str(&ours).is_ok(), "a UUID we generated: {ours}");
        let page = response.text().await.unwrap();
        assert!(page.contains(&ours) && !page.contains(client_id), "the page quotes our id only");
    }
}

#[tokio::test]
async fn a_huge_retry_after_from_graph_is_a_503_page_not_a_panic() {
    let app = spawn_app().await;
    app.sign_in_adele().await;
    app.emulator.faults().throttle_graph(1, u64::MAX);
    let response = app.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text().await.unwrap().contains("id=\"request-id\""), "the app's error page");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "the server is still up");
}
