//! One request to the upstream and its answer back: bodies streamed both ways (never buffered),
//! hop-by-hop headers removed, `X-Forwarded-*` set, the original `Host` kept, connections kept
//! (each HTTP/1.1 client connection's own, see `dedicated.rs`; a pool per thread for the rest;
//! to an HTTP/2 upstream, each client connection's own HTTP/2 connection, `multiplexed.rs`),
//! WebSocket (any HTTP/1.1 upgrade; from HTTP/2 clients and to an HTTP/2 upstream, WebSocket as
//! RFC 8441 has it, see `websocket_over_http2.rs`) passed through, connect and response timeouts; HTTP/1.1 to the
//! upstream, or HTTP/2 (`UPSTREAM_HTTP_VERSION=2`, for gRPC), whatever the client spoke.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use hyper::ext::Protocol;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use thread_local::ThreadLocal;

use crate::proxy::dedicated::DedicatedConnection;
use crate::proxy::multiplexed::MultiplexedConnection;
use crate::proxy::request_body;
pub use crate::proxy::upstream_error::UpstreamError;
use crate::proxy::upstream_tls::{self, UpstreamConnector};
use crate::proxy::websocket_over_http2::{self, Handshake, UpgradeOfConnect};

/// Connecting to the upstream, a TLS handshake included, may take this long (then 502).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle pooled connections are closed after this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded.
/// (Names, not strings: a string is parsed into a name at every lookup.)
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The proxy's parts, shared by every request.
pub struct Proxy {
    /// Its settings.
    pub config: crate::config::ProxyConfig,
    /// The app behind, with its connection pool.
    pub upstream: Upstream,
}

impl Proxy {
    /// A proxy to `config.upstream`; fails only if TLS cannot be set up for an `https://` one.
    pub fn new(config: crate::config::ProxyConfig) -> Result<Self, rustls::Error> {
        let upstream = Upstream::new(&config)?;
        Ok(Self { config, upstream })
    }
}

/// Where the request came from, for the `X-Forwarded-*` headers.
pub struct Forwarded {
    /// The IP address of the peer that connected to us.
    pub peer: Option<HeaderValue>,
    /// Trust the `X-Forwarded-*` a front end (App Service) already set: extend them rather than
    /// replace them.
    pub trust_incoming: bool,
}

/// A client's request on its way to the upstream, stripped of what a client may not say: its
/// hop-by-hop headers, and what only a proxy knows about the connection (see
/// [`remove_connection_facts`]). Everything the proxy adds (identity, `X-Forwarded-*`) is set
/// on it afterwards, so no header of the client's can remove or disguise it: a proxy that removed
/// the headers named in `Connection` last let clients delete the ones the app behind relies on
/// (Fabio's CVE-2025-48865).
pub struct Outbound {
    request: Request,
    /// The two-way channel (WebSocket) asked for, if any.
    upgrade: Option<ClientUpgrade>,
    /// The client said it reads trailers (`TE: trailers`, a header just removed).
    accepts_trailers: bool,
    client_upgrade: Option<OnUpgrade>,
    forwarded: Forwarded,
    /// Completes when an upgraded connection must close (its session has ended).
    tunnel_ends: Option<TunnelEnd>,
}

/// The `:protocol` of an HTTP/2 client's extended `CONNECT` (RFC 8441), if `request` is one: only
/// hyper's HTTP/2 server puts one there, for a client it offered RFC 8441 to. (Looked up only
/// for a `CONNECT`: every proxied request asks.)
pub fn extended_connect(request: &Request) -> Option<&Protocol> {
    match *request.method() {
        Method::CONNECT => request.extensions().get::<Protocol>(),
        _ => None,
    }
}

/// How a client asks to turn its request into a two-way channel (a WebSocket).
enum ClientUpgrade {
    /// HTTP/1.1's `Connection: upgrade` with this `Upgrade` protocol (headers just removed).
    Http11(HeaderValue),
    /// HTTP/2's extended `CONNECT` (RFC 8441) with this `:protocol`.
    ExtendedConnect(Protocol),
}

/// How a client's upgrade goes to the upstream, by the HTTP versions of both.
enum Bridge {
    /// HTTP/1.1 both ways: the client's `Upgrade`, passed on.
    Http11(HeaderValue),
    /// From an HTTP/1.1 client to an HTTP/2 upstream: an extended `CONNECT`, the handshake
    /// answered here.
    Http11ToConnect(Handshake),
    /// From an HTTP/2 client to an HTTP/1.1 upstream: an upgrade with a key of the proxy's.
    ConnectToHttp11(UpgradeOfConnect),
    /// HTTP/2 both ways: the extended `CONNECT`, passed on.
    ExtendedConnect,
}

/// What ends an upgraded connection early (boxed: upgrades are rare, and the type is the caller's).
type TunnelEnd = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Outbound {
    /// `request`, come from where `forwarded` says, made fit to leave for the upstream.
    pub fn new(mut request: Request, forwarded: Forwarded) -> Self {
        let upgrade = match extended_connect(&request).cloned() {
            Some(protocol) => {
                let protocol = ClientUpgrade::ExtendedConnect(protocol);
                // What the client sends on its stream belongs to the tunnel, not to the request.
                *request.body_mut() = Body::empty();
                Some(protocol)
            }
            _ => upgrade_protocol(request.headers()).map(ClientUpgrade::Http11),
        };
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let accepts_trailers = request.headers().get(header::TE).is_some_and(|te| {
            te.as_bytes().split(|&b| b == b',').any(|option| option.trim_ascii().eq_ignore_ascii_case(b"trailers"))
        });
        remove_hop_by_hop(request.headers_mut());
        remove_connection_facts(request.headers_mut(), forwarded.trust_incoming);
        Self { request, upgrade, accepts_trailers, client_upgrade, forwarded, tunnel_ends: None }
    }

    /// Its headers, for the identity to be set on.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.request.headers_mut()
    }

    /// Its path, as the upstream gets it.
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// Its extensions (what the server and the layers put there, such as the connection's peer).
    pub fn extensions(&self) -> &axum::http::Extensions {
        self.request.extensions()
    }

    /// Whether it asks for an upgrade (WebSocket): a connection that outlives the request.
    pub fn is_upgrade(&self) -> bool {
        self.upgrade.is_some()
    }

    /// Whether the channel it asks for is one stream of a connection that goes on serving others
    /// (an HTTP/2 client's extended `CONNECT`), rather than the whole connection.
    pub fn shares_its_connection(&self) -> bool {
        matches!(self.upgrade, Some(ClientUpgrade::ExtendedConnect(_)))
    }

    /// Once upgraded, the connection is closed when `ends` completes (the identity it was opened
    /// with is no longer good, the server stops), or when either side closes it; `ends` lives as
    /// long as the upgraded connection. Each call adds a reason.
    pub fn end_tunnel_when(&mut self, ends: impl Future<Output = ()> + Send + 'static) {
        self.tunnel_ends = Some(match self.tunnel_ends.take() {
            Some(earlier) => Box::pin(async move {
                futures_util::future::select(earlier, Box::pin(ends)).await;
            }),
            None => Box::pin(ends),
        });
    }
}

/// The app behind the proxy, with its connection pools.
pub struct Upstream {
    /// One pool per serving thread: a pooled connection's task runs on the thread that opened
    /// it, so sharing one pool would wake another thread for every request (see `workers.rs`).
    clients: ThreadLocal<Client<UpstreamConnector, Body>>,
    /// Opens connections to the upstream (plain or TLS), for the pools, the connections of
    /// [`DedicatedConnection`] and the readiness probe; it holds the upstream's origin.
    connector: UpstreamConnector,
    /// The upstream's own `Host` (its authority in `UPSTREAM_URL`).
    own_host: Option<HeaderValue>,
    /// Pass the client's `Host` (`PROXY_PASS_HOST_HEADER`), else send `own_host`.
    pass_host_header: bool,
    /// Speak HTTP/2 to the upstream (`UPSTREAM_HTTP_VERSION=2`): every request on its client
    /// connection's own HTTP/2 connection (see `dedicated.rs`).
    http2: bool,
    response_timeout: Duration,
    /// What this process adds to `Via` on every request it forwards (RFC 9110 §7.6.3), with a
    /// name of its own: a request that comes back carrying it went round in a loop.
    via: HeaderValue,
}

impl Upstream {
    /// The upstream of `config`: at `upstream` (`http://host:port` or `https://host:port`, with
    /// `upstream_roots`), sent the client's `Host` when `pass_host_header`, else its own.
    pub fn new(config: &crate::config::ProxyConfig) -> Result<Self, rustls::Error> {
        let connector = UpstreamConnector::new(config, CONNECT_TIMEOUT)?;
        let own_host =
            connector.origin().authority().and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
        let name = uuid::Uuid::new_v4().simple().to_string();
        let via = HeaderValue::try_from(format!("1.1 entra-webapp-{}", &name[..12]))
            .unwrap_or(HeaderValue::from_static("1.1 entra-webapp"));
        Ok(Self {
            clients: ThreadLocal::new(),
            connector,
            own_host,
            pass_host_header: config.pass_host_header,
            http2: config.upstream_http2,
            response_timeout: config.response_timeout,
            via,
        })
    }

    /// Whether a request already went through this proxy on its way here (see `via`).
    pub fn came_back(&self, headers: &HeaderMap) -> bool {
        let own = self.via.as_bytes();
        headers
            .get_all(header::VIA)
            .iter()
            .any(|value| value.as_bytes().split(|&b| b == b',').any(|hop| hop.trim_ascii() == own))
    }

    /// This thread's client and pool.
    fn client(&self) -> &Client<UpstreamConnector, Body> {
        self.clients.get_or(|| {
            Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(self.connector.clone())
        })
    }

    /// Whether the upstream accepts a connection now, TLS handshake and client certificate
    /// included (for `/readyz`); if not, why.
    pub async fn reachable(&self) -> Result<(), String> {
        self.connector.check().await
    }

    /// Forwards `outbound` (identity headers already set) and returns the upstream's answer,
    /// body streaming. An HTTP/1.1 client's request goes on its connection's `dedicated` one
    /// when there is one; others (HTTP/2, upgrades) through this thread's pool. To an HTTP/2
    /// upstream, every request goes on its client connection's own HTTP/2 connection.
    pub async fn forward(
        &self,
        outbound: Outbound,
        dedicated: Option<&DedicatedConnection>,
    ) -> Result<Response, UpstreamError> {
        let Outbound { request, upgrade, accepts_trailers, client_upgrade, forwarded, tunnel_ends } = outbound;
        // A WebSocket crosses between HTTP/1.1's upgrade and HTTP/2's extended CONNECT here.
        let bridge = match (upgrade, self.http2) {
            (None, _) => None,
            (Some(ClientUpgrade::Http11(protocol)), false) => Some(Bridge::Http11(protocol)),
            (Some(ClientUpgrade::Http11(protocol)), true) => {
                Some(Bridge::Http11ToConnect(Handshake::of(&protocol, request.headers())?))
            }
            (Some(ClientUpgrade::ExtendedConnect(protocol)), false) => {
                Some(Bridge::ConnectToHttp11(UpgradeOfConnect::of(&protocol)?))
            }
            (Some(ClientUpgrade::ExtendedConnect(protocol)), true) => {
                websocket_over_http2::websocket_connect(&protocol)?;
                Some(Bridge::ExtendedConnect)
            }
        };
        let (mut parts, body) = request.into_parts();
        let one_at_a_time = parts.version <= axum::http::Version::HTTP_11 && bridge.is_none();
        let dedicated = dedicated.filter(|_| one_at_a_time || self.http2);
        let path_and_query = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        // The upstream is spoken to in one version, whatever the client spoke.
        parts.version = match self.http2 {
            true => axum::http::Version::HTTP_2,
            false => axum::http::Version::HTTP_11,
        };
        match &bridge {
            Some(Bridge::Http11(protocol)) => {
                parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(header::UPGRADE, protocol.clone());
            }
            Some(Bridge::Http11ToConnect(handshake)) => handshake.to_connect(&mut parts),
            Some(Bridge::ConnectToHttp11(upgrade)) => upgrade.to_upgrade(&mut parts),
            Some(Bridge::ExtendedConnect) | None => {}
        }
        // HTTP/2 allows `TE: trailers` alone, and gRPC servers want it (it says the client reads
        // the trailers that carry a call's status).
        if self.http2 && accepts_trailers {
            parts.headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        // `X-Forwarded-Host` says the client's `Host` before it may be replaced here.
        set_forwarded_headers(&mut parts.headers, &forwarded);
        // A request without `Host` (HTTP/1.0) gets the upstream's too, as HTTP/1.1 requires.
        if let Some(own) = &self.own_host
            && (!self.pass_host_header || !parts.headers.contains_key(header::HOST))
        {
            parts.headers.insert(header::HOST, own.clone());
        }
        parts.uri = match (dedicated, self.http2) {
            // The request line of a request on a connection carries the path only (origin form):
            // many servers (Python's among them) take an absolute URI there for a path.
            (Some(_), false) => Uri::from(path_and_query),
            // The pool picks a connection by the URI's origin, then sends the path likewise.
            (None, false) => self.upstream_uri(self.connector.origin().authority().cloned(), path_and_query)?,
            // HTTP/2 names the host in `:authority`, from the URI, and no other in `Host`
            // (RFC 9113 §8.3.1); the connection is the upstream's whatever it names.
            (_, true) => {
                let host = parts.headers.remove(header::HOST);
                let host = host.and_then(|host| Authority::try_from(host.as_bytes()).ok());
                self.upstream_uri(host.or_else(|| self.connector.origin().authority().cloned()), path_and_query)?
            }
        };
        parts.headers.append(header::VIA, self.via.clone());
        // The upstream's time to answer starts once it has the whole request (see
        // `request_body.rs`); a request without a body has all been sent at once.
        let (body, progress) = match body.is_end_stream() {
            true => (body, None),
            false => {
                let (body, progress) = request_body::watch(body, self.response_timeout);
                (Body::new(body), Some(progress))
            }
        };
        let outbound = Request::from_parts(parts, body);
        let send = async {
            if matches!(bridge, Some(Bridge::Http11ToConnect(_) | Bridge::ExtendedConnect)) {
                // Boxed: rare, and its state would otherwise be part of every request's future.
                return Box::pin(websocket_over_http2::send(outbound, &self.connector)).await;
            }
            match (dedicated, self.http2) {
                (Some(connection), false) => connection.send(outbound, &self.connector).await,
                (Some(connection), true) => connection.send_multiplexed(outbound, &self.connector).await,
                // Not from a client connection of ours: a connection for this request alone.
                (None, true) => MultiplexedConnection::default().send(outbound, &self.connector).await,
                (None, false) => self.client().request(outbound).await.map_err(|error| upstream_tls::reason(&error)),
            }
            .map_err(UpstreamError::Unreachable)
        };
        let timed_out = UpstreamError::Timeout(self.response_timeout);
        let mut response = match progress {
            None => tokio::time::timeout(self.response_timeout, send).await.map_err(|_| timed_out)??,
            Some(mut progress) => {
                tokio::pin!(send);
                let sent = tokio::select! {
                    sent = &mut send => sent,
                    _ = &mut progress.sent => {
                        tokio::time::timeout(self.response_timeout, &mut send).await.map_err(|_| timed_out)?
                    }
                };
                match sent {
                    Err(_) if progress.stalled() => return Err(UpstreamError::ClientStalled(self.response_timeout)),
                    sent => sent?,
                }
            }
        };
        // Upgraded: the upstream switched (HTTP/1.1's 101), or opened the stream (HTTP/2's 2xx to
        // a CONNECT); any other answer is passed on (the handshake failed, and the client sees why).
        let opened = match &bridge {
            None => false,
            Some(Bridge::Http11(_)) => response.status() == StatusCode::SWITCHING_PROTOCOLS,
            Some(Bridge::Http11ToConnect(_) | Bridge::ExtendedConnect) => response.status().is_success(),
            Some(Bridge::ConnectToHttp11(upgrade)) => upgrade.opened(response.status(), response.headers())?,
        };
        if opened && let Some(client_upgrade) = client_upgrade {
            tunnel(client_upgrade, hyper::upgrade::on(&mut response), tunnel_ends);
            let (mut parts, _) = response.into_parts();
            let protocol = parts.headers.get(header::UPGRADE).cloned();
            remove_hop_by_hop(&mut parts.headers);
            match &bridge {
                Some(Bridge::Http11(_)) => {
                    parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                    if let Some(protocol) = protocol {
                        parts.headers.insert(header::UPGRADE, protocol);
                    }
                }
                Some(Bridge::Http11ToConnect(handshake)) => handshake.switch_protocols(&mut parts),
                Some(Bridge::ConnectToHttp11(upgrade)) => upgrade.stream_opened(&mut parts),
                Some(Bridge::ExtendedConnect) | None => {}
            }
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// The upstream's scheme, `authority` and the request's path and query (already parsed:
    /// reused as is).
    fn upstream_uri(&self, authority: Option<Authority>, path_and_query: PathAndQuery) -> Result<Uri, UpstreamError> {
        let authority = authority.ok_or_else(|| UpstreamError::Unreachable("no upstream host".into()))?;
        Uri::builder()
            .scheme(self.connector.origin().scheme().cloned().unwrap_or(Scheme::HTTP))
            .authority(authority)
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| UpstreamError::Unreachable("bad request URI".into()))
    }
}

/// Carries bytes both ways between the client's upgraded connection and the upstream's (an
/// upgraded HTTP/1.1 connection, or an HTTP/2 stream) once both are ready, until either closes or
/// `ends` completes.
fn tunnel(client: OnUpgrade, upstream: OnUpgrade, ends: Option<TunnelEnd>) {
    tokio::spawn(async move {
        let (Ok(client), Ok(upstream)) = tokio::join!(client, upstream) else {
            tracing::debug!("upgrade did not complete");
            return;
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        let ends = async {
            match ends {
                Some(ends) => ends.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                if let Err(err) = copied {
                    tracing::debug!(error = %err, "upgraded connection ended");
                }
            }
            () = ends => tracing::info!("upgraded connection closed: its session has ended, or the server stops"),
        }
    });
}

/// The options the `Connection` headers list (RFC 9110 §7.6.1), trimmed.
fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

/// The protocol asked for by an HTTP/1.1 upgrade request (`Connection: upgrade` + `Upgrade`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = connection_options(headers).any(|option| option.eq_ignore_ascii_case("upgrade"));
    connection_upgrade.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Removes the hop-by-hop headers and every header the `Connection` header names. (By looking
/// at the few names a message has rather than removing each of the eight, each a hash lookup.)
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> =
        connection_options(headers).filter_map(|option| HeaderName::from_bytes(option.as_bytes()).ok()).collect();
    remove_headers_named(headers, |name| HOP_BY_HOP.contains(name) || named.contains(name));
}

/// Removes what only a proxy can say about the client's connection and request: `Forwarded`
/// (RFC 7239), every `X-Forwarded-*` (the three we set are set afresh; others such as `-Prefix`
/// or `-Uri` make apps build links or route by what the client wrote), `X-Real-IP` (read as the
/// client's address), and `X-Original-URL` / `X-Rewrite-URL` (some frameworks route by them,
/// past a path the proxy let through anonymously), as Traefik does for an untrusted peer. A
/// trusted front end's values stay, but their underscore spellings never do (see [`folded`]).
fn remove_connection_facts(headers: &mut HeaderMap, trust_incoming: bool) {
    let fact = |name: &str| {
        name.starts_with("x-forwarded-")
            || matches!(name, "forwarded" | "x-real-ip" | "x-original-url" | "x-rewrite-url")
    };
    remove_headers_where(headers, |name| match (trust_incoming, name.contains('_')) {
        (_, true) => fact(&folded(name)),
        (false, false) => fact(name),
        (true, false) => false,
    });
}

/// Removes every header (all its values) whose name `doomed` picks.
pub(crate) fn remove_headers_where(headers: &mut HeaderMap, doomed: impl Fn(&str) -> bool) {
    remove_headers_named(headers, |name| doomed(name.as_str()));
}

fn remove_headers_named(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    let names: Vec<HeaderName> = headers.keys().filter(|name| doomed(name)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// A header name as the servers that fold `_` into `-` read it: CGI's `HTTP_*` variables (WSGI,
/// ASGI, Rack, PHP) are the same for `x_forwarded_for` and `x-forwarded-for`, so to the app behind
/// the first *is* the second (oauth2-proxy's CVE-2025-64484). Header names are lowercase already.
pub(crate) fn folded(name: &str) -> Cow<'_, str> {
    match name.contains('_') {
        true => Cow::Owned(name.replace('_', "-")),
        false => Cow::Borrowed(name),
    }
}

/// `X-Forwarded-For` (the peer appended), `-Proto` and `-Host` (the original `Host`, which is
/// also passed on as it came). Without a trusted front end, what the client sent is replaced.
fn set_forwarded_headers(headers: &mut HeaderMap, forwarded: &Forwarded) {
    // Values are passed as they came (no copy) when they are visible ASCII; others count as absent.
    let text = |value: &&HeaderValue| value.to_str().is_ok();
    let incoming =
        |name: &HeaderName| forwarded.trust_incoming.then(|| headers.get(name).filter(text).cloned()).flatten();
    let chain = match (incoming(&X_FORWARDED_FOR), forwarded.peer.as_ref()) {
        (Some(chain), Some(peer)) => {
            let (chain, peer) = (chain.to_str().unwrap_or_default(), peer.to_str().unwrap_or_default());
            HeaderValue::from_str(&format!("{chain}, {peer}")).ok()
        }
        (Some(chain), None) => Some(chain),
        (None, peer) => peer.cloned(),
    };
    let proto = incoming(&X_FORWARDED_PROTO).unwrap_or(HeaderValue::from_static("http"));
    let host = incoming(&X_FORWARDED_HOST).or_else(|| headers.get(header::HOST).filter(text).cloned());
    for (name, value) in [(X_FORWARDED_FOR, chain), (X_FORWARDED_PROTO, Some(proto)), (X_FORWARDED_HOST, host)] {
        // `insert` replaces every value the client sent under that name.
        match value {
            Some(value) => headers.insert(name, value),
            None => headers.remove(name),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "keep-alive, X-Secret-Hop".parse().unwrap());
        headers.append("connection", "x-other-hop".parse().unwrap());
        headers.insert("x-secret-hop", "1".parse().unwrap());
        headers.append("x-secret-hop", "2".parse().unwrap());
        headers.insert("x-other-hop", "1".parse().unwrap());
        for name in &HOP_BY_HOP[1..] {
            headers.insert(name, "1".parse().unwrap());
        }
        headers.insert("x-kept", "1".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), vec!["x-kept"]);
    }

    #[test]
    fn forwarded_headers_are_replaced_unless_a_front_end_is_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "app.example".parse().unwrap());
        headers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let peer = Some(HeaderValue::from_static("10.0.0.9"));
        let mut untrusted = headers.clone();
        set_forwarded_headers(&mut untrusted, &Forwarded { peer: peer.clone(), trust_incoming: false });
        assert_eq!(untrusted["x-forwarded-for"], "10.0.0.9");
        assert_eq!(untrusted["x-forwarded-proto"], "http");
        assert_eq!(untrusted["x-forwarded-host"], "app.example");
        set_forwarded_headers(&mut headers, &Forwarded { peer: peer.clone(), trust_incoming: true });
        assert_eq!(headers["x-forwarded-for"], "6.6.6.6, 10.0.0.9");
        assert_eq!(headers["x-forwarded-proto"], "https");
        // Every value a client sent goes; one that is not visible ASCII counts as absent.
        let mut repeated = HeaderMap::new();
        repeated.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        repeated.append("x-forwarded-for", "7.7.7.7".parse().unwrap());
        set_forwarded_headers(&mut repeated, &Forwarded { peer: peer.clone(), trust_incoming: false });
        assert_eq!(repeated.get_all("x-forwarded-for").iter().collect::<Vec<_>>(), ["10.0.0.9"]);
        let mut opaque = HeaderMap::new();
        opaque.insert("x-forwarded-for", HeaderValue::from_bytes(b"6.6.6.6\xff").unwrap());
        set_forwarded_headers(&mut opaque, &Forwarded { peer: peer.clone(), trust_incoming: true });
        assert_eq!(opaque["x-forwarded-for"], "10.0.0.9");
    }

    #[test]
    fn connection_facts_go_unless_a_front_end_is_trusted_and_underscore_spellings_always() {
        let mut headers = HeaderMap::new();
        for name in [
            "x-forwarded-for",
            "x-forwarded-prefix",
            "x-real-ip",
            "forwarded",
            "x-original-url",
            "x-rewrite-url",
            "x_forwarded_for",
            "x_real_ip",
            "x-original_url",
            "x-app_flag",
            "x-forwardedness",
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("6.6.6.6"));
        }
        let names = |headers: &HeaderMap| {
            let mut names: Vec<String> = headers.keys().map(|name| name.as_str().to_owned()).collect();
            names.sort();
            names
        };
        let mut untrusted = headers.clone();
        remove_connection_facts(&mut untrusted, false);
        assert_eq!(names(&untrusted), ["x-app_flag", "x-forwardedness"]);
        remove_connection_facts(&mut headers, true);
        assert_eq!(
            names(&headers),
            [
                "forwarded",
                "x-app_flag",
                "x-forwarded-for",
                "x-forwarded-prefix",
                "x-forwardedness",
                "x-original-url",
                "x-real-ip",
                "x-rewrite-url"
            ]
        );
    }

    #[test]
    fn headers_set_after_an_outbound_is_made_survive_what_connection_names() {
        let request = Request::builder()
            .header("connection", "x-forwarded-user, x-hop")
            .header("x-hop", "1")
            .body(Body::empty())
            .unwrap();
        let mut outbound = Outbound::new(request, Forwarded { peer: None, trust_incoming: true });
        assert!(outbound.headers_mut().is_empty(), "connection and what it names are gone");
        outbound.headers_mut().insert("x-forwarded-user", HeaderValue::from_static("adele"));
        assert_eq!(outbound.request.headers()["x-forwarded-user"], "adele");
    }

    #[test]
    fn only_a_connection_upgrade_with_a_protocol_is_an_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert("upgrade", "websocket".parse().unwrap());
        assert!(upgrade_protocol(&headers).is_none());
        headers.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert_eq!(upgrade_protocol(&headers).unwrap(), "websocket");
    }
}
