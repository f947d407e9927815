//! Where sessions live: in memory (one instance) or in Redis (several instances, restarts).

use std::sync::Arc;

use async_trait::async_trait;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Result;

mod memory_store;
mod redis_store;

pub use memory_store::MemoryStore;
pub use redis_store::{RedisStore, decode_record};

/// An Entra session as front-channel logout names it: the issuer and Entra's `sid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntraSession {
    /// The ID token's `iss`.
    pub issuer: String,
    /// The ID token's `sid`.
    pub sid: String,
}

/// The Entra session a record is signed in with, if any.
pub(crate) fn entra_session_of(record: &Record) -> Option<EntraSession> {
    entra_auth::axum::session::entra_session_of_record(&record.data)
        .map(|(issuer, sid)| EntraSession { issuer: issuer.to_owned(), sid: sid.to_owned() })
}

/// When a record must be gone: its idle expiry, or its sign-in's absolute end if sooner.
pub(crate) fn expires_at(record: &Record) -> time::OffsetDateTime {
    let absolute = entra_auth::axum::session::session_end_of_record(&record.data)
        .and_then(|end| i64::try_from(end).ok())
        .and_then(|end| time::OffsetDateTime::from_unix_timestamp(end).ok());
    match absolute {
        Some(end) if end < record.expiry_date => end,
        _ => record.expiry_date,
    }
}

/// The configured store; cheap to clone.
#[derive(Clone, Debug)]
pub enum AppSessionStore {
    /// `SESSION_STORE=memory`.
    Memory(Arc<MemoryStore>),
    /// `SESSION_STORE=redis://...` or `rediss://...`.
    Redis(Arc<RedisStore>),
}

impl AppSessionStore {
    /// Ends every session signed in with this Entra session (front-channel logout).
    pub async fn end_entra_session(&self, entra_session: &EntraSession) -> Result<usize> {
        match self {
            AppSessionStore::Memory(store) => Ok(store.end_entra_session(entra_session)),
            AppSessionStore::Redis(store) => store.end_entra_session(entra_session).await,
        }
    }

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

/// Seconds until the record's sign-in ends at the latest (its idle expiry may slide until then).
pub(crate) fn index_lifetime_secs(record: &Record) -> u64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0).unsigned_abs();
    entra_auth::axum::session::session_end_of_record(&record.data).map_or(1, |end| end.saturating_sub(now).max(1))
}
