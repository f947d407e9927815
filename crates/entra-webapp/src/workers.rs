//! Thread per core: accepted connections are handed round-robin to one single-threaded runtime
//! per core, and everything a connection does runs on that thread (its requests, HTTP/2 streams,
//! the proxy's pooled upstream connections, which are per thread too). A multi-threaded runtime
//! wakes tasks across threads on every proxied request (the client connection on one worker, the
//! pooled upstream connection's task on another) and moves them between cores; measured in
//! `docs/PERFORMANCE.md`, this design cost a proxied request about a quarter less CPU. Handing
//! over is once per connection, not per request.
//!
//! The trade-off: a request that computes for long holds up the other connections of its thread
//! rather than being stolen by an idle one. Nothing here computes for long (a signature check is
//! tens of microseconds); anything slow is awaited I/O.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

/// A connection accepted on the listener's runtime, for a worker to serve.
struct Accepted<C> {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    context: C,
}

/// The serving threads. Dropping it, or [`Workers::join`], closes their queues: each thread then
/// stops, and whatever its runtime still runs is dropped with it (the server joins only once
/// every connection has closed).
pub struct Workers<C> {
    queues: Vec<mpsc::UnboundedSender<Accepted<C>>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl<C: Send + 'static> Workers<C> {
    /// One thread per core the process may use (`available_parallelism` reads cgroup CPU quotas,
    /// as a container has), each serving connections with `serve(stream, peer, context)`.
    pub fn start<F, Fut>(serve: F) -> std::io::Result<Self>
    where
        F: Fn(tokio::net::TcpStream, SocketAddr, C) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let count = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mut workers = Self { queues: Vec::with_capacity(count), threads: Vec::with_capacity(count), next: 0 };
        for index in 0..count {
            // Built here, so that a failure is the caller's error rather than a dead thread.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (queue, mut incoming) = mpsc::unbounded_channel::<Accepted<C>>();
            let serve = serve.clone();
            let thread = std::thread::Builder::new().name(format!("http-worker-{index}")).spawn(move || {
                runtime.block_on(async move {
                    while let Some(accepted) = incoming.recv().await {
                        match tokio::net::TcpStream::from_std(accepted.stream) {
                            Ok(stream) => {
                                tokio::spawn(serve(stream, accepted.peer, accepted.context));
                            }
                            Err(err) => tracing::warn!(error = %err, "cannot serve an accepted connection"),
                        }
                    }
                });
            })?;
            workers.queues.push(queue);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Hands `stream` to the next worker in turn.
    pub fn dispatch(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr, context: C) {
        // Leaves this runtime's reactor; the worker registers it with its own.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "cannot hand over an accepted connection");
                return;
            }
        };
        let index = self.next % self.queues.len();
        self.next = self.next.wrapping_add(1);
        // A worker's queue closes only when its thread ended, which it does only once `self` is
        // dropped: sending cannot fail while `self` lives.
        let _ = self.queues[index].send(Accepted { stream, peer, context });
    }

    /// Stops handing out connections and waits until every thread has ended (the caller has
    /// already waited for the connections to close).
    pub async fn join(self) {
        let Self { queues, threads, .. } = self;
        drop(queues);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_round_robin_to_one_thread_each_and_join_waits_for_the_threads() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (served, mut served_on) = mpsc::unbounded_channel::<(usize, String)>();
        // Each thread's copy of the serving function lets go of its sender slowly, so that a
        // `join` that did not wait for the threads would return while they still hold it.
        #[derive(Clone)]
        struct SlowToDrop(mpsc::UnboundedSender<(usize, String)>);
        impl Drop for SlowToDrop {
            fn drop(&mut self) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        let served = SlowToDrop(served);
        let mut workers = Workers::start(move |_stream, _peer, order: usize| {
            let served = served.0.clone();
            async move {
                let thread = std::thread::current().name().unwrap_or_default().to_owned();
                let _ = served.send((order, thread));
            }
        })
        .unwrap();
        let count = workers.queues.len();
        assert_eq!(count, std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
        for order in 0..2 * count {
            let _client = tokio::net::TcpStream::connect(address).await.unwrap();
            let (stream, peer) = listener.accept().await.unwrap();
            workers.dispatch(stream, peer, order);
        }
        let mut threads = vec![String::new(); 2 * count];
        for _ in 0..2 * count {
            let (order, thread) = served_on.recv().await.unwrap();
            threads[order] = thread;
        }
        let expected: Vec<String> = (0..2 * count).map(|order| format!("http-worker-{}", order % count)).collect();
        assert_eq!(threads, expected);
        workers.join().await;
        // Joined: every thread has ended, and with it its clone of the sender, by now.
        assert_eq!(served_on.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
    }
}
