//! Stopping: on SIGTERM (App Service, Docker) or Ctrl-C, stop accepting and let in-flight requests
//! finish; the caller bounds how long that may take.

/// Completes on SIGTERM or Ctrl-C.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}

/// How long in-flight requests may take to finish after the signal; App Service kills the
/// container 5 s after SIGTERM (`WEBSITES_CONTAINER_STOP_TIME_LIMIT`).
pub const GRACE_PERIOD: std::time::Duration = std::time::Duration::from_millis(4500);

/// Serves until SIGTERM/Ctrl-C, then waits at most `GRACE_PERIOD` for in-flight requests.
pub async fn serve_until_signal(app: crate::startup::Application) -> std::io::Result<()> {
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server = app.run_until(async move {
        signal().await;
        let _ = signalled.send(());
    });
    tokio::pin!(server);
    let deadline = async {
        if on_signal.await.is_ok() {
            tokio::time::sleep(GRACE_PERIOD).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = &mut server => result,
        () = deadline => {
            tracing::warn!("in-flight requests did not finish within the grace period; exiting");
            Ok(())
        }
    }
}
