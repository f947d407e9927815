//! Where sessions live: in memory (one instance) or in Redis (several instances, restarts).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use secrecy::SecretString;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Result;

mod memory_store;
mod redis_store;
pub mod seal;

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

impl AppSessionStore {
    /// Ends every session signed in with Entra session `sid` (front-channel logout).
    pub async fn end_sessions_with_sid(&self, sid: &str) -> std::result::Result<usize, String> {
        match self {
            AppSessionStore::Memory(store) => Ok(store.end_sessions_with_sid(sid)),
            AppSessionStore::Redis(store) => store.end_sessions_with_sid(sid).await,
        }
    }

    /// `Ok` when the store answers (for `/readyz`).
    pub async fn readiness(&self) -> std::result::Result<(), String> {
        match self {
            AppSessionStore::Memory(_) => Ok(()),
            AppSessionStore::Redis(store) => store.ping().await,
        }
    }
}

#[async_trait]
impl SessionStore for AppSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        match self {
            AppSessionStore::Memory(store) => store.create(record).await,
            AppSessionStore::Redis(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        match self {
            AppSessionStore::Memory(store) => store.save(record).await,
            AppSessionStore::Redis(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match self {
            AppSessionStore::Memory(store) => store.load(id).await,
            AppSessionStore::Redis(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        match self {
            AppSessionStore::Memory(store) => store.delete(id).await,
            AppSessionStore::Redis(store) => store.delete(id).await,
        }
    }
}

/// A fresh random secret (48 bytes, base64).
pub fn random_secret() -> SecretString {
    let mut bytes = [0u8; 48];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}
