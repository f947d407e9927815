//! The proxy tests' upstream: a small app of our own that says what it received (`/echo/...`)
//! and from which connection, counts its open connections, streams large bodies both ways without
//! holding them, answers slowly on request, redirects where asked, and echoes WebSocket messages; and a page whose script
//! uses the app as the user (a socket and a form), served through the proxy or, as another
//! origin's page would be, straight from here. On loopback, port 0.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::json;

/// A running upstream; dropping it stops it.
pub struct Upstream {
    pub url: String,
    open_connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// The connections open to it now.
    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Each header's values, by name (as JSON shows them).
fn headers_of(headers: &axum::http::HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        by_name
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    by_name
}

/// HTTP version, method, the request target as it came (a path, or a whole URI), path, query, every header
/// (all values), the body's length, the connection's remote port (the proxy's end of it) and the
/// subject of the certificate the proxy presented (over mutual TLS), as JSON; with each `cache-control` query parameter as a `Cache-Control` header of the answer (how
/// the app behind says whether caches may keep it).
async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts.extensions.get::<ConnectInfo<PeerAddress>>().map(|info| info.0.clone());
    let peer_port = peer.as_ref().map(|peer| peer.address.port());
    let client_certificate = peer.and_then(|peer| peer.client_certificate);
    let headers = headers_of(&parts.headers);
    let body = axum::body::to_bytes(body, 1 << 20).await.map(|b| b.len()).unwrap_or(usize::MAX);
    let mut response = axum::Json(json!({
        "version": format!("{:?}", parts.version),
        "method": parts.method.as_str(),
        "target": parts.uri.to_string(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_length": body,
        "peer_port": peer_port,
        "client_certificate": client_certificate,
    }))
    .into_response();
    for (name, value) in url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
        if name == "cache-control" {
            response.headers_mut().append("cache-control", value.parse().unwrap());
        }
    }
    response
}

/// As a gRPC server answers: the request's body back, then trailers (`grpc-status: 0`), and the
/// `TE` it received in `x-received-te`.
async fn trailers(request: Request) -> Response {
    let received_te = request.headers().get("te").cloned();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap();
    let mut trailers = axum::http::HeaderMap::new();
    trailers.insert("grpc-status", axum::http::HeaderValue::from_static("0"));
    trailers.insert("grpc-message", axum::http::HeaderValue::from_static("done"));
    let frames =
        [Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(body)), Ok(hyper::body::Frame::trailers(trailers))];
    let mut response = Body::new(http_body_util::StreamBody::new(futures::stream::iter(frames))).into_response();
    if let Some(te) = received_te {
        response.headers_mut().insert("x-received-te", te);
    }
    response
}

/// A redirect to the `to` query parameter, as written.
async fn redirect(axum::extract::Query(query): axum::extract::Query<BTreeMap<String, String>>) -> Response {
    let to = query.get("to").cloned().unwrap_or_default();
    (axum::http::StatusCode::FOUND, [("location", to)]).into_response()
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
    let name = principal_name(request.headers()).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
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

/// Answers, then closes the connection (as an upstream does at its keep-alive limit).
async fn close() -> Response {
    ([("connection", "close")], "closing").into_response()
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

/// The name the proxy sent, `nobody` without one.
fn principal_name(headers: &axum::http::HeaderMap) -> String {
    headers.get("x-ms-client-principal-name").and_then(|value| value.to_str().ok()).unwrap_or("nobody").to_owned()
}

/// A socket that says who the proxy said opened it.
async fn websocket_whoami(upgrade: WebSocketUpgrade, headers: axum::http::HeaderMap) -> Response {
    let name = principal_name(&headers);
    upgrade.on_upgrade(|mut socket| async move {
        let _ = socket.send(Message::Text(format!("hello {name}").into())).await;
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
}

#[derive(serde::Deserialize)]
struct ActingPage {
    /// The proxy's port (the page's script reaches the proxy on the page's own host name).
    port: u16,
}

/// A page whose script opens `/ws/whoami` on the proxy and shows what the socket said (or
/// `refused`), with a form that posts to the proxy. Through the proxy it is the app's own page;
/// served by this upstream directly, it is another origin's page on the same site (another port
/// of 127.0.0.1), as a sibling subdomain's would be.
async fn acting_page(axum::extract::Query(page): axum::extract::Query<ActingPage>) -> axum::response::Html<String> {
    let port = page.port;
    axum::response::Html(format!(
        r#"<!doctype html><title>Acting as the user</title>
<p id="socket">pending</p>
<form method="post" action="http://" id="transfer"><input name="amount" value="100"><button id="send">Send</button></form>
<script>
const proxy = location.hostname + ":{port}";
document.getElementById("transfer").action = "http://" + proxy + "/transfer";
const socket = new WebSocket("ws://" + proxy + "/ws/whoami");
const show = text => {{ document.getElementById("socket").textContent = text; }};
socket.onmessage = event => show(event.data);
socket.onerror = () => show("refused");
</script>"#
    ))
}

async fn websocket(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo_messages)
}

/// Answers each text message with `echo: ` and the text, other messages with themselves.
async fn echo_messages(mut socket: axum::extract::ws::WebSocket) {
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
}

/// A socket whose first message says what its handshake carried (JSON: the HTTP version, method,
/// RFC 8441's `:protocol` for an extended CONNECT, the headers), then echoes as `/ws` does. It
/// speaks `chat.v2` when the client offers it.
async fn websocket_received(upgrade: WebSocketUpgrade, request: axum::http::request::Parts) -> Response {
    let headers = headers_of(&request.headers);
    let received = json!({
        "version": format!("{:?}", request.version),
        "method": request.method.as_str(),
        "protocol": request.extensions.get::<hyper::ext::Protocol>().map(|protocol| protocol.as_str().to_owned()),
        "headers": headers,
    });
    upgrade.protocols(["chat.v2"]).on_upgrade(|mut socket| async move {
        if socket.send(Message::Text(received.to_string().into())).await.is_ok() {
            echo_messages(socket).await;
        }
    })
}

/// Starts the upstream on a free loopback port.
pub async fn start() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let open_connections = Arc::new(AtomicUsize::new(0));
    let listener = CountingListener { listener, open: open_connections.clone() };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router().into_make_service_with_connect_info::<PeerAddress>()).await;
    });
    Upstream { url, open_connections, task }
}

/// Starts the same upstream speaking HTTP/2 only, with prior knowledge (h2c), without allowing
/// WebSockets over HTTP/2 (RFC 8441's `SETTINGS_ENABLE_CONNECT_PROTOCOL` is not sent), as many
/// HTTP/2 servers are by default. (Its open connections are not counted.)
pub async fn start_http2_without_websockets() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = hyper_util::service::TowerToHyperService::new(router());
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                let server = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = server.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    Upstream { url, open_connections: Arc::new(AtomicUsize::new(0)), task }
}

/// Starts the same upstream speaking TLS only (`https://127.0.0.1:port`), its certificate for
/// `names` signed by a CA of its own, whose certificate (PEM) it writes to `ca_file`.
pub async fn start_tls(names: &[&str], ca_file: &std::path::Path) -> Upstream {
    start_with_tls(server_tls(names, ca_file, None, rustls::DEFAULT_VERSIONS)).await
}

/// The same at `url` (`https://host:port`, given up by an upstream stopped before): the same
/// server with a certificate of another CA, as after a move to a new CA.
pub async fn start_tls_at(url: &str, names: &[&str], ca_file: &std::path::Path) -> Upstream {
    let address = url.trim_start_matches("https://");
    start_with_tls_at(server_tls(names, ca_file, None, rustls::DEFAULT_VERSIONS), address).await
}

/// The same, asking every client for a certificate signed by a CA of `client_ca_file` (PEM), and
/// refusing the handshake without one (mutual TLS).
pub async fn start_mutual_tls(names: &[&str], ca_file: &std::path::Path, client_ca_file: &std::path::Path) -> Upstream {
    start_with_tls(server_tls(names, ca_file, Some(client_ca_file), rustls::DEFAULT_VERSIONS)).await
}

/// The same in TLS 1.2 only (where the client's certificate is part of the handshake proper).
pub async fn start_mutual_tls_1_2(
    names: &[&str],
    ca_file: &std::path::Path,
    client_ca_file: &std::path::Path,
) -> Upstream {
    start_with_tls(server_tls(names, ca_file, Some(client_ca_file), &[&rustls::version::TLS12])).await
}

/// An upstream that completes each TLS handshake (TLS 1.3, no session tickets) and then hangs up
/// at once, saying so (`close_notify`): as a server does that refuses a client after the
/// handshake without an alert. Its URL; it stops when the task is aborted.
pub async fn start_hanging_up_after_the_handshake(
    names: &[&str],
    ca_file: &std::path::Path,
) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let mut tls = server_tls(names, ca_file, None, &[&rustls::version::TLS13]);
    tls.send_tls13_tickets = 0;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(mut stream) = acceptor.accept(stream).await {
                let _ = stream.shutdown().await;
            }
        }
    });
    (url, task)
}

async fn start_with_tls(tls: rustls::ServerConfig) -> Upstream {
    start_with_tls_at(tls, "127.0.0.1:0").await
}

async fn start_with_tls_at(tls: rustls::ServerConfig, address: &str) -> Upstream {
    // An upstream stopped just before gives its port up once its task has been dropped.
    let mut listener = tokio::net::TcpListener::bind(address).await;
    for _ in 0..50 {
        if listener.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        listener = tokio::net::TcpListener::bind(address).await;
    }
    let listener = listener.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let open_connections = Arc::new(AtomicUsize::new(0));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TlsListener { counting: CountingListener { listener, open: open_connections.clone() }, acceptor };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router().into_make_service_with_connect_info::<PeerAddress>()).await;
    });
    Upstream { url, open_connections, task }
}

/// A CA of its own (written to `ca_file`) and a server certificate for `names` it signed; clients
/// must present a certificate signed by a CA of `client_ca_file` when it is given; TLS `versions`.
fn server_tls(
    names: &[&str],
    ca_file: &std::path::Path,
    client_ca_file: Option<&std::path::Path>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use rustls::pki_types::pem::PemObject;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "proxy tests' upstream CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(names).unwrap().signed_by(&server_key, &ca).unwrap();
    std::fs::write(ca_file, ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions).unwrap();
    let builder = match client_ca_file {
        None => builder.with_no_client_auth(),
        Some(client_ca_file) => {
            let mut client_roots = rustls::RootCertStore::empty();
            for certificate in rustls::pki_types::CertificateDer::pem_file_iter(client_ca_file).unwrap() {
                client_roots.add(certificate.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut tls = builder.with_single_cert(vec![server_cert.der().clone()], key).unwrap();
    // HTTP/2 for a client that offers it (ALPN), else HTTP/1.1.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tls
}

/// The upstream's routes.
fn router() -> Router {
    Router::new()
        .route("/upload", post(upload))
        .route("/download/{megabytes}", get(download))
        .route("/slow", get(slow))
        .route("/close", get(close))
        .route("/set-cookies", get(set_cookies))
        .route("/page", get(page))
        // GET for HTTP/1.1's upgrade, CONNECT for HTTP/2's (RFC 8441).
        .route("/ws", get(websocket).connect(websocket))
        .route("/ws/whoami", get(websocket_whoami).connect(websocket_whoami))
        .route("/ws/received", get(websocket_received).connect(websocket_received))
        .route("/acting-page", get(acting_page))
        .route("/redirect", get(redirect))
        .route("/trailers", post(trailers))
        .fallback(echo)
}

/// Where a connection comes from (axum knows it for its own listener only).
#[derive(Clone)]
struct PeerAddress {
    address: SocketAddr,
    /// The subject of the client's certificate (mutual TLS).
    client_certificate: Option<String>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CountingListener>> for PeerAddress {
    fn connect_info(stream: axum::serve::IncomingStream<'_, CountingListener>) -> Self {
        Self { address: *stream.remote_addr(), client_certificate: None }
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for PeerAddress {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        let certificates = stream.io().get_ref().1.peer_certificates();
        let client_certificate = certificates
            .and_then(|chain| chain.first())
            .map(|certificate| p12_keystore::Certificate::from_der(certificate).unwrap().subject().to_owned());
        Self { address: *stream.remote_addr(), client_certificate }
    }
}

/// A counting listener whose connections have been through a TLS handshake.
struct TlsListener {
    counting: CountingListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<CountedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, address) = axum::serve::Listener::accept(&mut self.counting).await;
            // A client that refuses the certificate ends the handshake: on to the next one.
            let handshake = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await;
            if let Ok(Ok(stream)) = handshake {
                return (stream, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.counting.local_addr()
    }
}

/// A listener whose connections count themselves open until dropped.
struct CountingListener {
    listener: tokio::net::TcpListener,
    open: Arc<AtomicUsize>,
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.listener).await;
        self.open.fetch_add(1, Ordering::SeqCst);
        (CountedStream { stream, open: self.open.clone() }, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

struct CountedStream {
    stream: tokio::net::TcpStream,
    open: Arc<AtomicUsize>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl tokio::io::AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
