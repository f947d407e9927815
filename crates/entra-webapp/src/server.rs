//! The HTTP server: hyper's HTTP/1.1 connection with a timer, because `axum::serve` sets none and
//! hyper's header-read timeout is then off (a client dribbling its request head holds a connection
//! for ever). Each connection must send its request head within `header_read_timeout`: hyper starts
//! that timer whenever a connection waits for a request, so silent new connections and idle
//! kept-alive ones close too. At most `max_connections` are served at once, the rest wait in the
//! kernel's backlog. On shutdown, listening stops and in-flight requests finish.
//!
//! HTTP/1.1 only: App Service's front end and every reverse proxy speak it to the app, and
//! hyper-util's HTTP/1-or-2 detection reads the first bytes with no timeout at all.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::add_extension::AddExtension;

use crate::config::ServerLimits;

/// Serves `router` on `listener` until `shutdown` completes, then waits for open connections to
/// finish their requests (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let connections = Arc::new(Semaphore::new(max_connections));
    // Tells open connections to finish their request in flight and close.
    let (stop_connections, stopping) = tokio::sync::watch::channel(false);
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
        // The peer's address for handlers (`ConnectInfo`, e.g. the proxy's X-Forwarded-For).
        let service = TowerToHyperService::new(AddExtension::new(router.clone(), ConnectInfo(peer)));
        // Upgrades (WebSocket) are passed through by the proxy.
        // (hyper-util's graceful watcher does not take upgradeable connections: done by hand.)
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async move { let _ = stopping.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // A client that goes away or times out is not our error.
            if let Err(err) = ended {
                tracing::debug!(error = %err, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_connections.send(true);
    // Every connection holds a permit until it has closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = connections.acquire_many(all).await;
    Ok(())
}
