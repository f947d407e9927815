//! Why a proxied request got no answer from the upstream: each becomes an error page
//! (`error.rs`) that says so.

use std::time::Duration;

/// Why the upstream gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Refused, unreachable, or the connection broke before an answer.
    #[error("the upstream is unreachable: {0}")]
    Unreachable(String),
    /// No response headers within the timeout.
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The client stopped sending its request body for this long (then the request is dropped).
    #[error("the client sent nothing of its request body for {0:?}")]
    ClientStalled(Duration),
    /// The request came back to this proxy: `UPSTREAM_URL` leads to the proxy itself.
    #[error("the request came back to this proxy: UPSTREAM_URL leads to the proxy itself")]
    Loop,
    /// An upgrade to another protocol than WebSocket, for an upstream spoken to in HTTP/2, which
    /// has no upgrades (WebSocket goes as RFC 8441's extended `CONNECT`).
    #[error("an upgrade other than WebSocket cannot reach an upstream spoken to in HTTP/2 (UPSTREAM_HTTP_VERSION=2)")]
    UpgradeOverHttp2,
    /// An HTTP/2 client's extended `CONNECT` (RFC 8441) for another protocol than WebSocket
    /// (WebTransport, say), which the proxy does not pass on.
    #[error("an extended CONNECT for another protocol than WebSocket")]
    ConnectOtherThanWebSocket,
    /// A WebSocket handshake without the `Sec-WebSocket-Key` of RFC 6455 §4.1, which the proxy
    /// must answer itself when the upstream is spoken to in HTTP/2.
    #[error("a WebSocket handshake without a valid Sec-WebSocket-Key")]
    NotAWebSocketHandshake,
    /// The upstream, spoken to in HTTP/2, did not say it takes WebSockets (RFC 8441's
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL`).
    #[error(
        "the upstream does not take WebSockets over HTTP/2 (it did not send SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441)"
    )]
    NoWebSocketOverHttp2,
}
