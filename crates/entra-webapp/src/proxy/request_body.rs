//! A client's request body on its way to the upstream, watched: it says when it has all been sent
//! (the upstream's time to answer starts then, not before: an upload on a slow link may take longer
//! than that), and it fails once nothing has arrived for `idle` (a client that stops sending
//! mid-body would otherwise hold its connection, and one to the app behind, for ever). As Envoy
//! starts its route timeout at the end of the request, and nginx bounds the gap between two reads
//! of a body (`client_body_timeout`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

/// What the forwarding side learns about a watched body.
pub(super) struct Progress {
    /// Completes when the body has all been read (or was dropped unread).
    pub(super) sent: oneshot::Receiver<()>,
    stalled: Arc<AtomicBool>,
}

impl Progress {
    /// Whether the body failed because the client stopped sending.
    pub(super) fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }
}

pin_project_lite::pin_project! {
    /// `inner`, failing after `idle` without a frame (and saying so in its [`Progress`]). Its
    /// length goes upstream in the client's `Content-Length`, so it gives no size hint of its own.
    pub(super) struct WatchedBody {
        #[pin]
        inner: Body,
        idle: Duration,
        // Allocated at the first wait, reset at each frame.
        deadline: Option<Pin<Box<Sleep>>>,
        sent: Option<oneshot::Sender<()>>,
        stalled: Arc<AtomicBool>,
    }
}

/// Watches `body`.
pub(super) fn watch(body: Body, idle: Duration) -> (WatchedBody, Progress) {
    let (sent, sent_receiver) = oneshot::channel();
    let stalled = Arc::new(AtomicBool::new(false));
    let body = WatchedBody { inner: body, idle, deadline: None, sent: Some(sent), stalled: stalled.clone() };
    (body, Progress { sent: sent_receiver, stalled })
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(frame)) => {
                if let Some(deadline) = this.deadline.as_mut() {
                    deadline.as_mut().reset(Instant::now() + *this.idle);
                }
                Poll::Ready(Some(frame))
            }
            Poll::Ready(None) => {
                if let Some(sent) = this.sent.take() {
                    let _ = sent.send(());
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = *this.idle;
                let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.stalled.store(true, Ordering::Relaxed);
                        // Which error matters little: [`Progress::stalled`] says what happened.
                        Poll::Ready(Some(Err(axum::Error::new(std::io::Error::from(std::io::ErrorKind::TimedOut)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
