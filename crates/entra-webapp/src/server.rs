//! The HTTP server: hyper's connections with a timer, because `axum::serve` sets none and
//! hyper's header-read timeout is then off (a client dribbling its request head holds a connection
//! for ever). Each connection must send its request head within `header_read_timeout`: hyper starts
//! that timer whenever a connection waits for a request, so silent new connections and idle
//! kept-alive ones close too. At most `max_connections` are served at once, the rest wait in the
//! kernel's backlog. On shutdown, listening stops and in-flight requests finish. Connections are
//! accepted here and served on the serving threads of `workers.rs`, one per core.
//!
//! HTTP/1.1, and HTTP/2 with prior knowledge (h2c: what App Service's front end speaks to a
//! container with HTTP/2 proxying on, and gRPC clients). The protocol is told by the connection's
//! first bytes, read within the same `header_read_timeout` (hyper-util's own detection waits for
//! them for ever).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;
use tower::util::MapRequest;
use tower_http::add_extension::AddExtension;

use crate::config::ServerLimits;
use crate::workers::Workers;

/// What an HTTP/2 connection with prior knowledge starts with (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Requests one HTTP/2 connection may have in flight (hyper's default is 200; a browser opens
/// about 100).
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// The decoded headers one HTTP/2 request may carry; the app's own header limits are lower.
const HTTP2_MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` completes, then waits for open connections to
/// finish their requests (the caller bounds how long).
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let mut http1 = http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    // An HTTP/2 connection that stops answering pings is closed, as an idle HTTP/1.1 one is.
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout)
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
        // Bounds what HPACK decodes before the header limits (431) look at a request.
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_SIZE);
    if limits.websockets_over_http2 {
        http2.enable_connect_protocol();
    }
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let connections = Arc::new(Semaphore::new(max_connections));
    // Tells open connections to finish their request in flight and close.
    let (stop_connections, stopping) = tokio::sync::watch::channel(false);
    let header_read_timeout = limits.header_read_timeout;
    let places = connections.clone();
    let serve_connection = move |stream: TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit| {
        let slot = ConnectionSlot { _permit: Arc::new(permit), places: places.clone(), stopping: stopping.clone() };
        // The peer for handlers (e.g. the proxy's X-Forwarded-For), and HTTP/2's `:authority` as
        // the `Host` everything after reads.
        let service = TowerToHyperService::new(AddExtension::new(
            MapRequest::new(app.clone(), into_app_request),
            Peer::new(peer, slot.clone()),
        ));
        let (http1, http2) = (http1.clone(), http2.clone());
        let mut stopping = stopping.clone();
        async move {
            // Runs a connection until it ends, or asks it to finish its requests on shutdown.
            macro_rules! until_stopped {
                ($connection:expr) => {{
                    let mut connection = std::pin::pin!($connection);
                    tokio::select! {
                        ended = connection.as_mut() => ended,
                        () = async move { let _ = stopping.wait_for(|stop| *stop).await; } => {
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    }
                }};
            }
            let ended = match starts_with_http2_preface(&stream, header_read_timeout).await {
                // Silent, or gone, before saying which protocol: closed like a slow request head.
                None => Ok(()),
                Some(true) => until_stopped!(http2.serve_connection(TokioIo::new(stream), service)),
                // Upgrades (WebSocket) are passed through by the proxy. (hyper-util's graceful
                // watcher does not take upgradeable connections: done by hand.)
                Some(false) => until_stopped!(http1.serve_connection(TokioIo::new(stream), service).with_upgrades()),
            };
            // A client that goes away or times out is not our error.
            if let Err(err) = ended {
                tracing::debug!(error = %err, "connection ended");
            }
            // Its place is free once the connection and whatever took its socket over are done.
            drop(slot);
        }
    };
    let mut workers = Workers::start(serve_connection)?;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        workers.dispatch(stream, peer, permit);
    }
    drop(listener);
    let _ = stop_connections.send(true);
    // Every connection (upgraded ones included, which close on `stop_connections`) holds a
    // permit until it has closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = connections.acquire_many(all).await;
    workers.join().await;
    Ok(())
}

/// The client a connection comes from, in each of its requests' extensions.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Its address.
    pub address: SocketAddr,
    /// Its IP address as a header value, written once per connection rather than per request
    /// (the proxy's `X-Forwarded-For`).
    pub ip_header: HeaderValue,
    /// In proxy mode, the connection's own connection to the app behind.
    pub(crate) upstream: crate::proxy::dedicated::DedicatedConnection,
    /// The connection's place among `max_connections`.
    pub(crate) slot: ConnectionSlot,
}

impl Peer {
    fn new(address: SocketAddr, slot: ConnectionSlot) -> Self {
        let ip_header = HeaderValue::try_from(address.ip().to_string()).unwrap_or(HeaderValue::from_static("unknown"));
        Self { address, ip_header, upstream: crate::proxy::dedicated::DedicatedConnection::default(), slot }
    }
}

/// A connection's place among the `max_connections` served at once. An upgraded connection (the
/// proxy's WebSocket) outlives its HTTP connection, which hands its socket over: it keeps the
/// place, so that upgrades count against the cap like any connection (else a client could hold
/// sockets, and connections to the app behind, without bound), and closes when the server stops.
/// A WebSocket on an HTTP/2 stream (RFC 8441) leaves its connection serving others: it takes a
/// place of its own ([`another`](Self::another)).
#[derive(Clone, Debug)]
pub(crate) struct ConnectionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
    /// Every place, for [`another`](Self::another).
    places: Arc<Semaphore>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl ConnectionSlot {
    /// A place of its own for what shares this connection (a WebSocket on an HTTP/2 stream), or
    /// `None` when every place is taken: refused at once, since the connection it came on is
    /// served meanwhile and cannot wait in the kernel's queue.
    pub(crate) fn another(&self) -> Option<ConnectionSlot> {
        let permit = self.places.clone().try_acquire_owned().ok()?;
        Some(ConnectionSlot { _permit: Arc::new(permit), places: self.places.clone(), stopping: self.stopping.clone() })
    }

    /// Holds the place until the server stops (then completes): for what took the socket over.
    pub(crate) async fn held_until_stopping(mut self) {
        let _ = self.stopping.wait_for(|stop| *stop).await;
    }
}

/// Whether the connection opens with the HTTP/2 preface (`None`: nothing conclusive arrived
/// within `timeout`, or the peer left). Looks without consuming, so the chosen protocol reads
/// the bytes itself.
async fn starts_with_http2_preface(stream: &TcpStream, timeout: std::time::Duration) -> Option<bool> {
    let mut start = [0u8; HTTP2_PREFACE.len()];
    let decide = async {
        loop {
            let read = stream.peek(&mut start).await.ok()?;
            if read == 0 {
                return None;
            }
            if !HTTP2_PREFACE.starts_with(&start[..read]) {
                return Some(false);
            }
            if read == HTTP2_PREFACE.len() {
                return Some(true);
            }
            // A preface still arriving: peek answers at once with what is there, so wait a bit.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(timeout, decide).await.ok().flatten()
}

/// hyper's request as the app's, its body as axum's. HTTP/2 requests carry their host in the URI's
/// authority and need not send `Host`: they are given one, so that the routes, the proxy's
/// forwarded `Host` and absolute URLs work the same on both.
fn into_app_request(request: axum::http::Request<Incoming>) -> Request {
    let mut request = request.map(Body::new);
    if !request.headers().contains_key(axum::http::header::HOST)
        && let Some(value) = request.uri().authority().and_then(|authority| authority.as_str().parse().ok())
    {
        request.headers_mut().insert(axum::http::header::HOST, value);
    }
    request
}
