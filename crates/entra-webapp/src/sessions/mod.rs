//! Where sessions live: in memory (one instance) or in Redis (several instances, restarts).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use entra_auth::axum::{EntraSession, EntraSessionIndex};
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Result;

mod memory_store;
mod record;
mod redis_store;

pub use memory_store::MemoryStore;
pub use redis_store::{RedisStore, decode_record};

/// The configured store; cheap to clone.
#[derive(Clone, Debug)]
pub enum AppSessionStore {
    /// `SESSION_STORE=memory`.
    Memory(Arc<MemoryStore>),
    /// `SESSION_STORE=redis://...` or `rediss://...`.
    Redis(Arc<RedisStore>),
}

#[async_trait]
impl EntraSessionIndex for AppSessionStore {
    async fn end_entra_session(&self, entra_session: &EntraSession) -> Result<usize> {
        noted(match self {
            AppSessionStore::Memory(store) => Ok(store.end_entra_session(entra_session)),
            AppSessionStore::Redis(store) => store.end_entra_session(entra_session).await,
        })
    }
}

impl AppSessionStore {
    /// Whether the store answers (for `/readyz`; why not is logged).
    pub async fn is_ready(&self) -> bool {
        match self {
            AppSessionStore::Memory(_) => true,
            AppSessionStore::Redis(store) => store.ping().await.is_ok(),
        }
    }

    /// Completes once session `id` has ended (signed out here or on another instance, ended by
    /// front-channel logout, expired) or its record no longer `admits` (the access policy refuses
    /// the memberships a refresh brought), looking every `every`: for what outlives the request
    /// that checked the session, such as a proxied WebSocket. Both stores load live records only
    /// (an ended session's is deleted, an expired one is not answered), and only signed-in
    /// sessions are stored. A store that does not answer ends nothing (as for requests, an outage
    /// is not a sign-out); reading does not count as activity, so it does not keep the session
    /// alive.
    pub async fn session_ended(self, id: Id, every: std::time::Duration, admits: impl Fn(&Record) -> bool) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.load(&id).await {
                Ok(Some(record)) if admits(&record) => {}
                Ok(Some(_)) => {
                    tracing::info!("an upgraded connection's user is no longer let in: closing it");
                    return;
                }
                Ok(None) => return,
                Err(error) => tracing::warn!(error = %error, "could not check an upgraded connection's session"),
            }
        }
    }
}

#[async_trait]
impl SessionStore for AppSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        noted(match self {
            AppSessionStore::Memory(store) => store.create(record).await,
            AppSessionStore::Redis(store) => store.create(record).await,
        })
    }

    async fn save(&self, record: &Record) -> Result<()> {
        noted(match self {
            AppSessionStore::Memory(store) => store.save(record).await,
            AppSessionStore::Redis(store) => store.save(record).await,
        })
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        noted(match self {
            AppSessionStore::Memory(store) => store.load(id).await,
            AppSessionStore::Redis(store) => store.load(id).await,
        })
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        noted(match self {
            AppSessionStore::Memory(store) => store.delete(id).await,
            AppSessionStore::Redis(store) => store.delete(id).await,
        })
    }
}

tokio::task_local! {
    /// Set when a store operation of the request running in this task failed.
    static STORE_FAILED: Cell<bool>;
}

/// One request's handling, run where its store failures are noted (see [`noting_store_failures`]).
pub type NotingStoreFailures<F> = tokio::task::futures::TaskLocalFuture<Cell<bool>, WithStoreFailed<F>>;

/// Runs `request` (one request's handling) and says whether any session store operation in it
/// failed: only then is a 5xx answered as "sessions are unavailable". A named future rather than
/// an `async fn`, so that the error-pages layer wrapping every request need not box it.
pub fn noting_store_failures<F: Future>(request: F) -> NotingStoreFailures<F> {
    STORE_FAILED.scope(Cell::new(false), WithStoreFailed { request })
}

pin_project_lite::pin_project! {
    /// `request`'s output with whether a store operation failed while it ran (read inside the
    /// scope of [`noting_store_failures`]).
    pub struct WithStoreFailed<F> {
        #[pin]
        request: F,
    }
}

impl<F: Future> Future for WithStoreFailed<F> {
    type Output = (F::Output, bool);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let output = std::task::ready!(self.project().request.poll(cx));
        Poll::Ready((output, STORE_FAILED.with(Cell::get)))
    }
}

fn noted<T>(result: Result<T>) -> Result<T> {
    if result.is_err() {
        // Outside a request (tests, tools) there is nobody to tell.
        let _ = STORE_FAILED.try_with(|failed| failed.set(true));
    }
    result
}
