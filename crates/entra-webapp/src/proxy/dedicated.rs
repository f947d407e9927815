//! Each HTTP/1.1 client connection's own upstream connection: opened at its first proxied
//! request, reused for each next one (an HTTP/1.1 connection carries one request at a time, so it
//! is always free), closed with it, and never used for another connection's request. HAProxy
//! keeps a client's server connection the same way (`http-reuse safe`). A pool would hash its
//! key, look up an idle connection and return it on every request; measured in
//! `docs/PERFORMANCE.md`, a connection of one's own costs the proxy less CPU per request.
//!
//! The cost: an idle kept-alive client holds an idle upstream connection (at most one per client
//! connection). HTTP/2 clients multiplex requests on one connection and use the thread's pool
//! instead, as do upgrades (WebSocket), which take a connection for good.
//!
//! To an HTTP/2 upstream (`UPSTREAM_HTTP_VERSION=2`) every client connection, of either version,
//! has its own HTTP/2 connection (`multiplexed.rs`) the same way: its requests side by side on it,
//! and no other client's. A client that reads its answers slowly then holds up only its own (an
//! HTTP/2 connection's flow-control window is shared by its streams), and the `:authority` of each
//! request, the client's `Host`, never opens another connection (a pool keys by it).

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};

use crate::proxy::multiplexed::{MultiplexedConnection, Unsent};
use crate::proxy::upstream_tls::{self, UpstreamConnector};

/// A client connection's upstream connection, once it has one: HTTP/1.1, or HTTP/2 to an HTTP/2
/// upstream. Shared by the clones of the connection's per-request extension; only one request of
/// an HTTP/1.1 connection runs at a time.
#[derive(Clone, Debug, Default)]
pub struct DedicatedConnection(Arc<Own>);

#[derive(Debug, Default)]
struct Own {
    http1: Mutex<Option<SendRequest<Body>>>,
    http2: MultiplexedConnection,
}

impl DedicatedConnection {
    /// Sends `request` on this client connection's HTTP/2 upstream connection (see
    /// `multiplexed.rs`).
    pub(crate) async fn send_multiplexed(
        &self,
        request: Request,
        connector: &UpstreamConnector,
    ) -> Result<axum::http::Response<Incoming>, String> {
        self.0.http2.send(request, connector).await
    }

    /// Sends `request` on this connection's upstream connection, opening one (by `connector`)
    /// if there is none or the last one closed. A kept connection that turns out to
    /// be closed before the request is written (the upstream's idle timeout) is replaced, once.
    pub(crate) async fn send(
        &self,
        request: Request,
        connector: &UpstreamConnector,
    ) -> Result<axum::http::Response<Incoming>, String> {
        let request = match self.take().filter(|sender| !sender.is_closed()) {
            Some(kept) => match self.send_on(kept, request).await {
                Err(Unsent::Returned(request)) => *request,
                sent => return sent.map_err(Unsent::into_reason),
            },
            None => request,
        };
        // Boxed: opening is rare (once per client connection), and its state (a TLS connection
        // being set up, kilobytes) would otherwise be part of every request's future, which the
        // layers around it move (docs/PERFORMANCE.md).
        let sender = Box::pin(open(connector)).await?;
        self.send_on(sender, request).await.map_err(Unsent::into_reason)
    }

    /// Sends `request` on `sender`, which becomes this connection's for the next request.
    async fn send_on(
        &self,
        mut sender: SendRequest<Body>,
        request: Request,
    ) -> Result<axum::http::Response<Incoming>, Unsent> {
        // Waits for the previous answer's body to have been read to its end.
        if sender.ready().await.is_err() {
            return Err(Unsent::Returned(Box::new(request)));
        }
        match sender.try_send_request(request).await {
            Ok(response) => {
                // Reusable once this answer's body has been read; `ready` waits for that.
                self.put_back(sender);
                Ok(response)
            }
            Err(mut error) => match error.take_message() {
                Some(request) => Err(Unsent::Returned(Box::new(request))),
                None => Err(Unsent::Failed(upstream_tls::reason(&error.into_error()))),
            },
        }
    }

    fn take(&self) -> Option<SendRequest<Body>> {
        self.0.http1.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put_back(&self, sender: SendRequest<Body>) {
        *self.0.http1.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender);
    }
}

/// A new HTTP/1.1 connection to the upstream, its task running on this thread (see `workers.rs`)
/// until the sender is dropped or the upstream closes it.
async fn open(connector: &UpstreamConnector) -> Result<SendRequest<Body>, String> {
    let stream = connector.connect().await?;
    let (sender, connection) = http1::handshake(stream).await.map_err(|error| upstream_tls::reason(&error))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "upstream connection ended");
        }
    });
    Ok(sender)
}
