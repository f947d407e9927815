//! WebSockets where one side speaks HTTP/2. HTTP/2 has no `Upgrade`: RFC 8441 opens a WebSocket
//! as one stream of an extended `CONNECT` (`:protocol: websocket`), which a server allows by
//! sending `SETTINGS_ENABLE_CONNECT_PROTOCOL`. Both ways are translated here:
//!
//! - an HTTP/1.1 client's upgrade to an upstream spoken to in HTTP/2
//!   (`UPSTREAM_HTTP_VERSION=2`, [`Handshake`]): the client's `Sec-WebSocket-Key` stays here, and
//!   the upstream's 2xx becomes the `101` with the `Sec-WebSocket-Accept` that key asks for. Each
//!   such WebSocket has an HTTP/2 connection of its own, so one that reads slowly never holds up
//!   another client's requests in a shared flow-control window;
//! - an HTTP/2 client's extended `CONNECT` (the proxy offers it to its HTTP/2 clients) to an
//!   HTTP/1.1 upstream ([`UpgradeOfConnect`]): the proxy sends an upgrade with a key of its own,
//!   checks the upstream's `Sec-WebSocket-Accept`, and answers the client's stream with a `200`.
//!
//! Then the frames pass untouched both ways.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::body::Incoming;
use hyper::ext::Protocol;
use sha1::{Digest, Sha1};

use crate::proxy::multiplexed;
use crate::proxy::upstream_error::UpstreamError;
use crate::proxy::upstream_tls::{self, UpstreamConnector};

/// How long a new connection waits for the upstream's `SETTINGS` to allow WebSockets: the server
/// sends them first, one round trip after the connection, so this is room for a slow network, not
/// a delay (a server that allows them answers at once). One that does not is not told apart from
/// one whose `SETTINGS` are late (h2 says only whether the setting was seen): after this wait
/// the client gets a 502 that says so.
const SETTINGS_WAIT: Duration = Duration::from_secs(1);

/// RFC 6455 §1.3: appended to the client's key before hashing it into `Sec-WebSocket-Accept`.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A client's WebSocket handshake, to be sent on as an extended `CONNECT`.
pub(crate) struct Handshake {
    /// What the `101` answers the client's `Sec-WebSocket-Key` with.
    accept: HeaderValue,
}

impl Handshake {
    /// The handshake of an upgrade to `protocol` with these headers; only WebSocket passes
    /// through HTTP/2, and only with a key the `101` can answer.
    pub(crate) fn of(protocol: &HeaderValue, headers: &HeaderMap) -> Result<Self, UpstreamError> {
        if !protocol.as_bytes().eq_ignore_ascii_case(b"websocket") {
            return Err(UpstreamError::UpgradeOverHttp2);
        }
        // RFC 6455 §4.1: the key is 16 random bytes in base64.
        let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(UpstreamError::NotAWebSocketHandshake)?;
        match STANDARD.decode(key.as_bytes()) {
            Ok(bytes) if bytes.len() == 16 => Ok(Self { accept: accept_of(key) }),
            _ => Err(UpstreamError::NotAWebSocketHandshake),
        }
    }

    /// Makes `parts` (a `GET` with the client's headers, hop-by-hop ones gone) the extended
    /// `CONNECT` of RFC 8441 §4: the key stays here, the version, subprotocols, extensions and
    /// `Origin` go on.
    pub(crate) fn to_connect(&self, parts: &mut Parts) {
        parts.method = Method::CONNECT;
        parts.extensions.insert(Protocol::from_static("websocket"));
        parts.headers.remove(header::SEC_WEBSOCKET_KEY);
        // A handshake has no body; a length would have the app read the first frames as one.
        parts.headers.remove(header::CONTENT_LENGTH);
    }

    /// Makes the upstream's answer to the `CONNECT`, a 2xx (RFC 8441 §5: the stream is the
    /// WebSocket now), the `101` of RFC 6455 §4.2.2 for the client, keeping the upstream's headers
    /// (the subprotocol and extensions it chose, its cookies) but for those of a body.
    pub(crate) fn switch_protocols(&self, parts: &mut axum::http::response::Parts) {
        parts.status = StatusCode::SWITCHING_PROTOCOLS;
        parts.version = Version::HTTP_11;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        parts.headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept.clone());
    }
}

/// Whether an HTTP/2 client's extended `CONNECT` is for a WebSocket, the only tunnel the proxy
/// passes on (WebTransport and others are refused).
pub(crate) fn websocket_connect(protocol: &Protocol) -> Result<(), UpstreamError> {
    match protocol.as_str().eq_ignore_ascii_case("websocket") {
        true => Ok(()),
        false => Err(UpstreamError::ConnectOtherThanWebSocket),
    }
}

/// An HTTP/2 client's WebSocket, RFC 8441's extended `CONNECT`, to be sent to an HTTP/1.1
/// upstream as RFC 6455's upgrade, with a key of the proxy's own.
pub(crate) struct UpgradeOfConnect {
    key: HeaderValue,
    /// What the upstream's `101` must answer `key` with.
    accept: HeaderValue,
}

impl UpgradeOfConnect {
    /// The upgrade for an extended `CONNECT` to `protocol`: only WebSocket has an HTTP/1.1
    /// handshake to translate it into.
    pub(crate) fn of(protocol: &Protocol) -> Result<Self, UpstreamError> {
        websocket_connect(protocol)?;
        // RFC 6455 §4.1: 16 random bytes in base64, new for each handshake.
        let key = HeaderValue::try_from(STANDARD.encode(rand::random::<[u8; 16]>())).expect("base64 is a header value");
        Ok(Self { accept: accept_of(&key), key })
    }

    /// Makes `parts` (the client's `CONNECT`, hop-by-hop headers gone) the `GET` with `Upgrade` of
    /// RFC 6455 §4.1; the version, subprotocols, extensions and `Origin` the client sent go on.
    pub(crate) fn to_upgrade(&self, parts: &mut Parts) {
        parts.method = Method::GET;
        parts.extensions.remove::<Protocol>();
        // A handshake has no body; a length would have the app read the first frames as one.
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        parts.headers.insert(header::SEC_WEBSOCKET_KEY, self.key.clone());
        parts.headers.entry(header::SEC_WEBSOCKET_VERSION).or_insert(HeaderValue::from_static("13"));
    }

    /// Whether the upstream's answer opened the WebSocket: a `101`, which must carry the
    /// `Sec-WebSocket-Accept` of the key it was sent (RFC 6455 §4.1: else the client fails the
    /// connection). An error status is the upstream's refusal, passed on; a success that is not
    /// a `101` (a page where no socket is) is an error here, since any 2xx to a `CONNECT` tells the
    /// client its tunnel is open (RFC 9110 §9.3.6).
    pub(crate) fn opened(&self, status: StatusCode, headers: &HeaderMap) -> Result<bool, UpstreamError> {
        if status.is_success() {
            return Err(UpstreamError::Unreachable(format!(
                "the upstream answered a WebSocket handshake with {status} instead of switching protocols"
            )));
        }
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(false);
        }
        match headers.get(header::SEC_WEBSOCKET_ACCEPT) == Some(&self.accept) {
            true => Ok(true),
            false => Err(UpstreamError::Unreachable(
                "the upstream switched to WebSocket without the Sec-WebSocket-Accept of the key it was sent".into(),
            )),
        }
    }

    /// Makes the upstream's `101` (hop-by-hop headers gone) the `200` that opens the client's
    /// stream (RFC 8441 §5), keeping what the upstream chose (subprotocol, extensions).
    pub(crate) fn stream_opened(&self, parts: &mut axum::http::response::Parts) {
        parts.status = StatusCode::OK;
        parts.version = Version::HTTP_2;
        parts.headers.remove(header::SEC_WEBSOCKET_ACCEPT);
    }
}

/// `Sec-WebSocket-Accept` for `key`: the base64 of SHA-1 over the key and the GUID.
fn accept_of(key: &HeaderValue) -> HeaderValue {
    let digest = Sha1::new().chain_update(key.as_bytes()).chain_update(WEBSOCKET_GUID).finalize();
    HeaderValue::try_from(STANDARD.encode(digest)).expect("base64 is a header value")
}

/// Sends `request` (an extended `CONNECT`) on a new HTTP/2 connection of its own, once the
/// upstream has said it takes them.
pub(crate) async fn send(
    request: Request,
    connector: &UpstreamConnector,
) -> Result<axum::http::Response<Incoming>, UpstreamError> {
    let (mut sender, connection) = multiplexed::handshake(connector).await.map_err(UpstreamError::Unreachable)?;
    let mut connection = Box::pin(connection);
    // h2 reads the server's SETTINGS when the connection is polled: poll it here until they
    // allow WebSockets, before it runs as a task of its own.
    let allowed = std::future::poll_fn(|cx| {
        if connection.is_extended_connect_protocol_enabled() {
            return Poll::Ready(Ok(()));
        }
        match connection.as_mut().poll(cx) {
            Poll::Ready(ended) => Poll::Ready(Err(ended.err().map_or_else(
                || "the upstream closed the connection".to_owned(),
                |error| upstream_tls::reason(&error),
            ))),
            Poll::Pending if connection.is_extended_connect_protocol_enabled() => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    });
    match tokio::time::timeout(SETTINGS_WAIT, allowed).await {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(UpstreamError::Unreachable(reason)),
        Err(_) => return Err(UpstreamError::NoWebSocketOverHttp2),
    }
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "upstream HTTP/2 connection of a WebSocket ended");
        }
    });
    sender.send_request(request).await.map_err(|error| UpstreamError::Unreachable(upstream_tls::reason(&error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_is_rfc_6455s_for_its_key() {
        // RFC 6455 §1.3's own example.
        let key = HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(accept_of(&key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn only_a_websocket_with_a_sixteen_byte_key_is_a_handshake() {
        let websocket = HeaderValue::from_static("WebSocket");
        let with_key = |key: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static(key));
            headers
        };
        assert!(Handshake::of(&websocket, &with_key("dGhlIHNhbXBsZSBub25jZQ==")).is_ok());
        for key in ["", "not base64!", "c2hvcnQ=", "dGhlIHNhbXBsZSBub25jZQ==dGhl"] {
            assert!(
                matches!(Handshake::of(&websocket, &with_key(key)), Err(UpstreamError::NotAWebSocketHandshake)),
                "{key:?}"
            );
        }
        assert!(matches!(Handshake::of(&websocket, &HeaderMap::new()), Err(UpstreamError::NotAWebSocketHandshake)));
        let h2c = HeaderValue::from_static("h2c");
        assert!(matches!(
            Handshake::of(&h2c, &with_key("dGhlIHNhbXBsZSBub25jZQ==")),
            Err(UpstreamError::UpgradeOverHttp2)
        ));
    }

    #[test]
    fn an_http2_clients_websocket_is_an_upgrade_with_a_key_whose_answer_is_checked() {
        let upgrade = UpgradeOfConnect::of(&Protocol::from_static("websocket")).unwrap();
        let (mut parts, ()) = axum::http::Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("http://app.example/chat")
            .header(header::SEC_WEBSOCKET_PROTOCOL, "chat")
            .header(header::CONTENT_LENGTH, "5")
            .extension(Protocol::from_static("websocket"))
            .body(())
            .unwrap()
            .into_parts();
        upgrade.to_upgrade(&mut parts);
        assert_eq!(parts.method, Method::GET);
        assert!(parts.extensions.get::<Protocol>().is_none());
        assert_eq!(parts.headers[header::UPGRADE], "websocket");
        assert_eq!(parts.headers[header::CONNECTION], "upgrade");
        assert_eq!(parts.headers[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(parts.headers[header::SEC_WEBSOCKET_PROTOCOL], "chat");
        assert!(!parts.headers.contains_key(header::CONTENT_LENGTH), "no body");
        let key = parts.headers[header::SEC_WEBSOCKET_KEY].clone();
        assert_eq!(STANDARD.decode(key.as_bytes()).unwrap().len(), 16);
        let another = UpgradeOfConnect::of(&Protocol::from_static("websocket")).unwrap();
        assert_ne!(another.key, key, "a key of its own for each handshake");

        let answer = |status: StatusCode, accept: Option<HeaderValue>| {
            let mut headers = HeaderMap::new();
            if let Some(accept) = accept {
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            }
            upgrade.opened(status, &headers)
        };
        assert!(answer(StatusCode::SWITCHING_PROTOCOLS, Some(accept_of(&key))).unwrap());
        assert!(answer(StatusCode::SWITCHING_PROTOCOLS, Some(accept_of(&another.key))).is_err(), "another key's");
        assert!(answer(StatusCode::SWITCHING_PROTOCOLS, None).is_err());
        assert!(answer(StatusCode::OK, None).is_err(), "a 2xx would tell the client its tunnel is open");
        assert!(!answer(StatusCode::FORBIDDEN, None).unwrap(), "a refusal is passed on");

        let (mut opened, ()) = axum::http::Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::SEC_WEBSOCKET_ACCEPT, accept_of(&key))
            .header(header::SEC_WEBSOCKET_PROTOCOL, "chat")
            .body(())
            .unwrap()
            .into_parts();
        upgrade.stream_opened(&mut opened);
        assert_eq!((opened.status, opened.version), (StatusCode::OK, Version::HTTP_2));
        assert!(!opened.headers.contains_key(header::SEC_WEBSOCKET_ACCEPT));
        assert_eq!(opened.headers[header::SEC_WEBSOCKET_PROTOCOL], "chat");
        assert!(matches!(
            UpgradeOfConnect::of(&Protocol::from_static("webtransport")),
            Err(UpstreamError::ConnectOtherThanWebSocket)
        ));
    }

    #[test]
    fn an_http11_clients_handshake_becomes_an_extended_connect_without_key_or_body() {
        let (mut parts, ()) = axum::http::Request::builder()
            .uri("http://app.example/chat")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::CONTENT_LENGTH, "5")
            .body(())
            .unwrap()
            .into_parts();
        let handshake = Handshake::of(&HeaderValue::from_static("websocket"), &parts.headers).unwrap();
        handshake.to_connect(&mut parts);
        assert_eq!(parts.method, Method::CONNECT);
        assert_eq!(parts.extensions.get::<Protocol>().map(Protocol::as_str), Some("websocket"));
        assert!(!parts.headers.contains_key(header::SEC_WEBSOCKET_KEY), "the key stays with the proxy");
        assert!(!parts.headers.contains_key(header::CONTENT_LENGTH), "no body");
        assert_eq!(parts.headers[header::SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn the_upstreams_success_becomes_the_switch_the_client_asked_for() {
        let mut headers = HeaderMap::new();
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        let handshake = Handshake::of(&HeaderValue::from_static("websocket"), &headers).unwrap();
        let (mut opened, ()) = axum::http::Response::builder()
            .status(StatusCode::OK)
            .header(header::SEC_WEBSOCKET_PROTOCOL, "chat")
            .header(header::CONTENT_LENGTH, "0")
            .body(())
            .unwrap()
            .into_parts();
        handshake.switch_protocols(&mut opened);
        assert_eq!(opened.status, StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(opened.headers[header::SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(opened.headers[header::SEC_WEBSOCKET_PROTOCOL], "chat");
        assert_eq!(opened.headers[header::UPGRADE], "websocket");
        assert_eq!(opened.headers[header::CONNECTION], "upgrade");
        assert!(!opened.headers.contains_key(header::CONTENT_LENGTH));
    }
}
