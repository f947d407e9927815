//! Where sessions live: in memory (one instance) or in Redis (several instances, restarts).

use std::sync::Arc;

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
    static STORE_FAILED: std::cell::Cell<bool>;
}

/// Runs `request` (one request's handling) and says whether any session store operation in it
/// failed: only then is a 5xx answered as "sessions are unavailable".
pub async fn run_noting_store_failures<F: std::future::Future>(request: F) -> (F::Output, bool) {
    STORE_FAILED
        .scope(std::cell::Cell::new(false), async {
            let output = request.await;
            (output, STORE_FAILED.with(std::cell::Cell::get))
        })
        .await
}

fn noted<T>(result: Result<T>) -> Result<T> {
    if result.is_err() {
        // Outside a request (tests, tools) there is nobody to tell.
        let _ = STORE_FAILED.try_with(|failed| failed.set(true));
    }
    result
}
