//! How the proxy connects to the app behind: TCP for `http://`, TLS (rustls) for `https://`, the
//! server's certificate checked against `UPSTREAM_CA_FILE`'s CAs alone when it is set (a private
//! CA, trusted for the upstream and nothing else), else the same roots as the app's calls to Entra
//! and Graph (reqwest's): the system's (or `SSL_CERT_FILE`'s) and Mozilla's; presenting
//! `UPSTREAM_CLIENT_CERTIFICATE_PATH`'s certificate, renewed in place, to an upstream that asks for
//! one (mutual TLS).
//! One connector serves the pooled client and each client connection's own upstream connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncRead;
use tower::{Service, ServiceExt};

use crate::config::ProxyConfig;
use crate::proxy::client_certificate::RenewableClientCertificate;
use crate::proxy::trusted_cas::RenewableTrustedCas;

/// A connection to the upstream, plain or TLS.
pub(crate) type UpstreamStream = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long the readiness check waits after a TLS 1.3 handshake for the upstream to accept or
/// refuse the client (see [`UpstreamConnector::check`]): a round trip, with room, and well within
/// the 1 s a Kubernetes readiness probe allows by default.
const REFUSAL_WAIT: Duration = Duration::from_millis(500);

/// Opens connections to the upstream, plain or TLS as its URL says, each within a time limit
/// that covers the TLS handshake too: an upstream that accepts TCP and then says nothing is
/// "not answering" (502) after it, not after the response timeout.
#[derive(Clone)]
pub(crate) struct UpstreamConnector {
    inner: HttpsConnector<HttpConnector>,
    /// The upstream's scheme and authority, parsed once: where every connection goes, and what
    /// every pooled request's URI starts with.
    origin: Uri,
    timeout: Duration,
}

impl UpstreamConnector {
    /// A connector for `config`'s upstream: TLS for `https`, trusting `upstream_roots` when
    /// given (the system's roots are read, once, here only for `https` without them), presenting
    /// `upstream_client_certificate` when the upstream asks for one. Each connection is made within
    /// `timeout`, without Nagle's delay.
    pub(crate) fn new(config: &ProxyConfig, timeout: Duration) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
        let tls = match &config.upstream_roots {
            // The file's CAs, read again when it changes.
            Some(roots) => tls.dangerous().with_custom_certificate_verifier(Arc::new(RenewableTrustedCas::new(roots)?)),
            None => tls.with_root_certificates(public_roots(config)),
        };
        let tls = match &config.upstream_client_certificate {
            Some(certificate) => {
                let mut tls = tls.with_client_cert_resolver(Arc::new(RenewableClientCertificate::new(certificate)));
                // A resumed session presents no certificate: the server goes by the one of the
                // session's first handshake, renewed or not, revoked or not. Full handshakes only
                // (TLS 1.3 resumption saves a signature and a chain check, not the key exchange).
                tls.resumption = rustls::client::Resumption::disabled();
                tls
            }
            None => tls.with_no_client_auth(),
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        // One version, whatever the client spoke: HTTP/1.1 (no ALPN), or HTTP/2 (ALPN `h2` over
        // TLS, prior knowledge without).
        let builder = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
        let inner = match config.upstream_http2 {
            true => builder.enable_http2().wrap_connector(tcp),
            false => builder.enable_http1().wrap_connector(tcp),
        };
        let origin = config.upstream.as_str().parse::<Uri>().unwrap_or_default();
        Ok(Self { inner, origin, timeout })
    }

    /// Whether the upstream accepts a connection now, TLS handshake included; if not, why. In TLS 1.3
    /// the client's side of the handshake is over before the server has read the client's
    /// certificate (or its absence), so a server that refuses it says so only just after: its
    /// answer is awaited, the server's session tickets (sent once it accepted) or its alert, for up
    /// to [`REFUSAL_WAIT`] (a server that sends neither is taken as accepting), or `/readyz` would
    /// call ready an upstream that refuses every request.
    pub(crate) async fn check(&self) -> Result<(), String> {
        let MaybeHttpsStream::Https(tls) = self.connect().await? else { return Ok(()) };
        let mut tls = tls.into_inner();
        if tls.get_ref().1.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return Ok(());
        }
        let accepted_or_refused = std::future::poll_fn(|cx| {
            let mut byte = [0; 1];
            let mut buffer = tokio::io::ReadBuf::new(&mut byte);
            let read = Pin::new(&mut tls).poll_read(cx, &mut buffer);
            if tls.get_ref().1.tls13_tickets_received() > 0 {
                return Poll::Ready(Ok(()));
            }
            match read {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(())) if buffer.filled().is_empty() => {
                    Poll::Ready(Err("the upstream closed the connection after the TLS handshake".to_owned()))
                }
                Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                Poll::Ready(Err(error)) => Poll::Ready(Err(reason(&error))),
            }
        });
        tokio::time::timeout(REFUSAL_WAIT, accepted_or_refused).await.unwrap_or(Ok(()))
    }

    /// The upstream's scheme and authority.
    pub(crate) fn origin(&self) -> &Uri {
        &self.origin
    }

    /// A connection to the upstream, TLS handshake included.
    pub(crate) async fn connect(&self) -> Result<UpstreamStream, String> {
        self.clone().oneshot(self.origin.clone()).await.map_err(|error| reason(&*error))
    }
}

/// The CAs trusted for an `https://` upstream without `UPSTREAM_CA_FILE`: the system's (or
/// `SSL_CERT_FILE`'s) and Mozilla's, read once (none for `http://`).
fn public_roots(config: &ProxyConfig) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    if config.upstream.scheme() == "https" {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(error = %error, "cannot read a trusted certificate (SSL_CERT_FILE or the system's store)");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "the system's trusted certificates, for the upstream");
    }
    roots
}

impl Service<Uri> for UpstreamConnector {
    type Response = UpstreamStream;
    type Error = BoxError;
    // Boxed once per connection opened, never per request.
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    /// A connection to the upstream, for the pool (whose requests' URIs name its origin).
    fn call(&mut self, _destination: Uri) -> Self::Future {
        let (connecting, timeout) = (self.inner.call(self.origin.clone()), self.timeout);
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(format!("connecting took longer than {timeout:?}").into()),
            }
        })
    }
}

/// An error and its causes, `: `-separated: hyper's outermost words ("client error (Connect)")
/// say little, the cause ("invalid peer certificate: UnknownIssuer") says what to fix.
pub(crate) fn reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut words = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !words.contains(&text) {
            words.push_str(": ");
            words.push_str(&text);
        }
        cause = next.source();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_reason_names_every_cause_once() {
        let inner = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(reason(&Outer(inner)), "client error (Connect): invalid peer certificate: UnknownIssuer");
        let plain = std::io::Error::other("connection refused");
        assert_eq!(reason(&plain), "connection refused");
    }
}
