//! The proxy tests' upstream: a small app of our own that says what it received (`/echo/...`),
//! streams large bodies both ways without holding them, answers slowly on request, and echoes
//! WebSocket messages. On loopback, port 0.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::json;

/// A running upstream; dropping it stops it.
pub struct Upstream {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Method, path, query, every header (all values) and the body's length, as JSON.
async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let body = axum::body::to_bytes(body, 1 << 20).await.map(|b| b.len()).unwrap_or(usize::MAX);
    axum::Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_length": body,
    }))
    .into_response()
}

/// Counts the bytes of an upload as they stream by; holds none of them.
async fn upload(request: Request) -> String {
    let mut stream = request.into_body().into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => total += chunk.len(),
            Err(_) => return "broken".to_owned(),
        }
    }
    total.to_string()
}

/// `megabytes` MiB of zeros, produced a chunk at a time.
async fn download(Path(megabytes): Path<usize>) -> Response {
    let chunk = bytes_chunk();
    let stream = futures::stream::iter((0..megabytes * 16).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    ([("content-type", "application/octet-stream")], Body::from_stream(stream)).into_response()
}

fn bytes_chunk() -> axum::body::Bytes {
    axum::body::Bytes::from(vec![0u8; 64 * 1024])
}

/// A page of the app behind: who the proxy says is signed in, and Easy Auth's sign-out link.
async fn page(request: Request) -> axum::response::Html<String> {
    let name = request
        .headers()
        .get("x-ms-client-principal-name")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("nobody")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    axum::response::Html(format!(
        "<!doctype html><title>Upstream</title><h1 id=\"hello\">Hello {name}</h1><a id=\"upstream-sign-out\" href=\"/.auth/logout\">Sign out</a>"
    ))
}

/// Sets a cookie of its own, and tries to set the proxy's session cookie.
async fn set_cookies() -> Response {
    let mut response = "cookies".into_response();
    for cookie in ["theirs=1; Path=/", "entra-session=chosen-by-the-app; Path=/; HttpOnly", "entra-signin.x=1"] {
        response.headers_mut().append("set-cookie", cookie.parse().unwrap());
    }
    response
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

async fn websocket(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            let reply = match message {
                Message::Text(text) => Message::Text(format!("echo: {text}").into()),
                Message::Close(_) => break,
                other => other,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

/// Starts the upstream on a free loopback port.
pub async fn start() -> Upstream {
    let router = Router::new()
        .route("/upload", post(upload))
        .route("/download/{megabytes}", get(download))
        .route("/slow", get(slow))
        .route("/set-cookies", get(set_cookies))
        .route("/page", get(page))
        .route("/ws", get(websocket))
        .fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Upstream { url, task }
}
