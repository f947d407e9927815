//! Sessions in Redis, for several instances and restarts. Nothing in Redis is a credential:
//! - key names are keyed hashes (HMAC-SHA-256 under a key derived from `SESSION_SECRET`) of the
//!   session id, and the front-channel logout index is named by a keyed hash of the Entra issuer
//!   and `sid`, its members being record key names; a dump names no session and no Entra session;
//! - every record is sealed (AES-256-GCM) and bound to its session id;
//! - a key's TTL is the session's expiry, or its absolute end if sooner.
//!
//! Writes to an existing record are update-only (`SET ... XX`): a request that loaded a session
//! before it was ended cannot bring it back. With several secrets (rotation) lookups try every
//! secret's name and writes use the first; a record keeps its name until it expires, so an old
//! secret may be dropped once `SESSION_MAX_HOURS` have passed. Our own store rather than
//! tower-sessions-redis-store, which is tied to an older tower-sessions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use entra_auth::{Sealer, SessionKeys};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

use entra_auth::axum::EntraSession;

use crate::sessions::record::{entra_session_of, expires_at};

const KEY_PREFIX: &str = "entra-webapp:session:";
/// A set of record key names per Entra session, for front-channel logout.
const ENTRA_SESSION_PREFIX: &str = "entra-webapp:entra-session:";
/// A Redis that does not answer within this is treated as down (pages answer 503 at once
/// instead of hanging).
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The Redis session store.
pub struct RedisStore {
    connection: ConnectionManager,
    keys: Arc<SessionKeys>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("keys", &self.keys).finish_non_exhaustive()
    }
}

fn backend(err: redis::RedisError) -> Error {
    Error::Backend(format!("redis: {err}"))
}

impl RedisStore {
    /// Connects lazily: a Redis that is down at start-up is retried on every request, so the app
    /// starts anyway and recovers without a restart.
    pub fn new(client: redis::Client, keys: Arc<SessionKeys>) -> redis::RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection, keys })
    }

    /// The record's key name under every secret, the current one first.
    fn record_keys(&self, id: &Id) -> Vec<String> {
        self.keys.names.names(id.to_string().as_bytes()).into_iter().map(|name| format!("{KEY_PREFIX}{name}")).collect()
    }

    /// The record's key name under the current secret (for writes).
    fn record_key(&self, id: &Id) -> String {
        format!("{KEY_PREFIX}{}", self.keys.names.name(id.to_string().as_bytes()))
    }

    /// What the Entra-session index is named after: issuer and sid, joined by a byte neither can
    /// contain.
    fn entra_session_value(entra_session: &EntraSession) -> String {
        format!("{}\n{}", entra_session.issuer, entra_session.sid)
    }

    fn entra_session_keys(&self, entra_session: &EntraSession) -> Vec<String> {
        let value = Self::entra_session_value(entra_session);
        self.keys
            .names
            .names(value.as_bytes())
            .into_iter()
            .map(|name| format!("{ENTRA_SESSION_PREFIX}{name}"))
            .collect()
    }

    /// The Entra-session index's name under the current secret (for writes).
    fn entra_session_key(&self, entra_session: &EntraSession) -> String {
        let value = Self::entra_session_value(entra_session);
        format!("{ENTRA_SESSION_PREFIX}{}", self.keys.names.name(value.as_bytes()))
    }

    /// Deletes every session signed in with this Entra session; returns how many.
    pub async fn end_entra_session(&self, entra_session: &EntraSession) -> Result<usize> {
        let mut connection = self.connection.clone();
        let mut ended = 0;
        for index in self.entra_session_keys(entra_session) {
            let records: Vec<String> =
                redis::cmd("SMEMBERS").arg(&index).query_async(&mut connection).await.map_err(backend)?;
            let mut pipeline = redis::pipe();
            pipeline.cmd("DEL").arg(&index);
            if !records.is_empty() {
                pipeline.cmd("DEL").arg(&records);
            }
            let deleted: Vec<usize> = pipeline.query_async(&mut connection).await.map_err(backend)?;
            ended += deleted.get(1).copied().unwrap_or_default();
        }
        Ok(ended)
    }

    /// `PING`, for `/readyz`.
    pub async fn ping(&self) -> std::result::Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<String>(&mut connection).await.map(|_| ()).inspect_err(|err| {
            tracing::warn!(error = %err, "Redis session store unreachable");
        })
    }

    fn seal(&self, record: &Record) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(record).map_err(|err| Error::Encode(err.to_string()))?;
        self.keys.records.seal(record.id.to_string().as_bytes(), &plain).map_err(|err| Error::Encode(err.to_string()))
    }

    /// Whole seconds for Redis' `EX`, rounded up: the key must not go before the record expires
    /// (a load checks the exact instant, so the fraction of a second over is never served).
    fn ttl_secs(record: &Record) -> u64 {
        let left = expires_at(record) - time::OffsetDateTime::now_utc();
        let rounded_up = left.whole_seconds() + i64::from(left.subsec_nanoseconds() > 0);
        rounded_up.max(1).unsigned_abs()
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let mut connection = self.connection.clone();
        loop {
            let sealed = self.seal(record)?;
            let ttl = Self::ttl_secs(record);
            let key = self.record_key(&record.id);
            let created = redis::cmd("SET")
                .arg(&key)
                .arg(sealed)
                .arg("NX")
                .arg("EX")
                .arg(ttl)
                .query_async::<Option<String>>(&mut connection)
                .await
                .map_err(backend)?
                .is_some();
            if !created {
                // An id collision (2^-128, but cheap to handle): pick another.
                record.id = Id::default();
                continue;
            }
            let Some(entra_session) = entra_session_of(record) else { return Ok(()) };
            // Every session of this Entra session ends by the newest one's absolute end: the
            // index may expire with it.
            let index = self.entra_session_key(&entra_session);
            return redis::pipe()
                .cmd("SADD")
                .arg(&index)
                .arg(&key)
                .ignore()
                .cmd("EXPIRE")
                .arg(&index)
                .arg(ttl.max(crate::sessions::record::index_lifetime_secs(record)))
                .ignore()
                .query_async::<()>(&mut connection)
                .await
                .map_err(backend);
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let mut connection = self.connection.clone();
        let sealed = self.seal(record)?;
        let ttl = Self::ttl_secs(record);
        // Update-only, under whichever secret's name the record has (one of them exists).
        let mut pipeline = redis::pipe();
        for key in self.record_keys(&record.id) {
            pipeline.cmd("SET").arg(key).arg(&sealed).arg("XX").arg("EX").arg(ttl).ignore();
        }
        pipeline.query_async::<()>(&mut connection).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut connection = self.connection.clone();
        let found: Vec<Option<Vec<u8>>> =
            redis::cmd("MGET").arg(self.record_keys(id)).query_async(&mut connection).await.map_err(backend)?;
        let Some(sealed) = found.into_iter().flatten().next() else {
            return Ok(None);
        };
        Ok(decode_record(&self.keys.records, &id.to_string(), &sealed))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL").arg(self.record_keys(id)).query_async::<()>(&mut connection).await.map_err(backend)
    }
}

/// Opens and parses a stored record. Anything that does not open, parse or is expired is no
/// session: logged, never an error (a tampered or rotated-out record must not cause a 500).
pub fn decode_record(sealer: &Sealer, id: &str, sealed: &[u8]) -> Option<Record> {
    let plain = match sealer.open(id.as_bytes(), sealed) {
        Ok(plain) => plain,
        Err(err) => {
            tracing::warn!(error = %err, "session record rejected");
            return None;
        }
    };
    match serde_json::from_slice::<Record>(&plain) {
        Ok(record) if expires_at(&record) > time::OffsetDateTime::now_utc() => Some(record),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, "session record unreadable");
            None
        }
    }
}
