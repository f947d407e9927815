//! An HTTP/2 connection to the upstream (`UPSTREAM_HTTP_VERSION=2`), a client connection's own
//! (see `dedicated.rs`): its requests go on it side by side, each with the `:authority` its URI
//! names (the client's `Host`). A pool, which keys its connections by that authority, would open
//! one per `Host` a client cares to send: a flood of made-up names, a flood of upstream
//! connections. Opened at the first request, opened again once closed (the upstream's idle
//! timeout, a `GOAWAY`).

use std::sync::{Mutex, PoisonError};

use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::TokioExecutor;

use crate::proxy::upstream_tls::{self, UpstreamConnector, UpstreamStream};

/// The connection, once there is one (a handle to it: clones send on the same connection).
#[derive(Debug, Default)]
pub(crate) struct MultiplexedConnection(Mutex<Option<SendRequest<Body>>>);

impl MultiplexedConnection {
    /// Sends `request` (an absolute URI: its authority is the `:authority` sent) on the
    /// connection, opening one (by `connector`) if there is none or it closed. A request the
    /// connection turned away unsent (it was closing) goes on a new one, once.
    pub(crate) async fn send(
        &self,
        request: Request,
        connector: &UpstreamConnector,
    ) -> Result<axum::http::Response<Incoming>, String> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).clone().filter(|sender| !sender.is_closed());
        let request = match kept {
            Some(sender) => match Self::send_on(sender, request).await {
                Err(Unsent::Returned(request)) => *request,
                sent => return sent.map_err(Unsent::into_reason),
            },
            None => request,
        };
        // Boxed: opening is rare, and its state (a TLS connection being set up) would otherwise
        // be part of every request's future (docs/PERFORMANCE.md).
        let sender = Box::pin(self.open(connector)).await?;
        Self::send_on(sender, request).await.map_err(Unsent::into_reason)
    }

    async fn send_on(
        mut sender: SendRequest<Body>,
        request: Request,
    ) -> Result<axum::http::Response<Incoming>, Unsent> {
        // Waits while the upstream's limit of concurrent streams is reached.
        if sender.ready().await.is_err() {
            return Err(Unsent::Returned(Box::new(request)));
        }
        sender.try_send_request(request).await.map_err(|mut error| match error.take_message() {
            Some(request) => Unsent::Returned(Box::new(request)),
            None => Unsent::Failed(upstream_tls::reason(&error.into_error())),
        })
    }

    /// A new connection, which becomes this one; its task runs on this thread.
    async fn open(&self, connector: &UpstreamConnector) -> Result<SendRequest<Body>, String> {
        let (sender, connection) = handshake(connector).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "upstream HTTP/2 connection ended");
            }
        });
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }
}

/// A new HTTP/2 connection to the upstream: the handle requests are sent with, and the
/// connection, which must be polled (run as a task) for them to go.
pub(crate) async fn handshake(
    connector: &UpstreamConnector,
) -> Result<(SendRequest<Body>, http2::Connection<UpstreamStream, Body, TokioExecutor>), String> {
    let stream = connector.connect().await?;
    http2::handshake(TokioExecutor::new(), stream).await.map_err(|error| upstream_tls::reason(&error))
}

/// Why a request is not on its way.
pub(crate) enum Unsent {
    /// Turned away before it was written (the connection had closed, or was closing): the
    /// request, to try again.
    Returned(Box<Request>),
    /// The connection broke once the request was on its way.
    Failed(String),
}

impl Unsent {
    pub(crate) fn into_reason(self) -> String {
        match self {
            Self::Returned(_) => "the upstream closed the connection".to_owned(),
            Self::Failed(reason) => reason,
        }
    }
}
