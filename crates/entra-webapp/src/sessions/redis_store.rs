//! Sessions in Redis, for several instances and restarts: every record sealed (AES-256-GCM), the
//! key's TTL equal to the session's expiry, no `KEYS` scans. Our own store rather than
//! tower-sessions-redis-store, which is tied to an older tower-sessions (`STACK.md`).

use std::time::Duration;

use async_trait::async_trait;
use entra_auth::axum::session::sid_of_record;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

use crate::sessions::seal::Sealer;

const KEY_PREFIX: &str = "entra-webapp:session:";
/// A set of our session ids per Entra session id, for front-channel logout.
const SID_PREFIX: &str = "entra-webapp:sid:";
/// A Redis that does not answer within this is treated as down (pages answer 503 at once
/// instead of hanging).
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The Redis session store.
pub struct RedisStore {
    connection: ConnectionManager,
    sealer: Sealer,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("sealer", &self.sealer).finish_non_exhaustive()
    }
}

fn backend(err: redis::RedisError) -> Error {
    Error::Backend(format!("redis: {err}"))
}

fn key(id: &Id) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// The sid is Entra's; hash it so the key holds nothing it did not choose.
fn sid_key(sid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(sid.as_bytes());
    format!("{SID_PREFIX}{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl RedisStore {
    /// Connects lazily: a Redis that is down at start-up is retried on every request, so the app
    /// starts anyway and recovers without a restart.
    pub fn new(client: redis::Client, sealer: Sealer) -> redis::RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection, sealer })
    }

    /// Adds a signed-in record to its Entra session's index (created sessions; saves do it in the
    /// same round trip as the record).
    async fn index_by_sid(&self, record: &Record) -> Result<()> {
        let Some(sid) = sid_of_record(&record.data) else { return Ok(()) };
        let mut connection = self.connection.clone();
        let index = sid_key(sid);
        redis::pipe()
            .sadd(&index, record.id.to_string())
            .ignore()
            .expire(&index, Self::ttl_secs(record) as i64)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
            .map_err(backend)
    }

    /// Deletes every session signed in with Entra session `sid`; returns how many.
    pub async fn end_sessions_with_sid(&self, sid: &str) -> std::result::Result<usize, String> {
        let mut connection = self.connection.clone();
        let index = sid_key(sid);
        let ids: Vec<String> = connection.smembers(&index).await.map_err(|err| err.to_string())?;
        let mut pipeline = redis::pipe();
        for id in &ids {
            pipeline.del(format!("{KEY_PREFIX}{id}")).ignore();
        }
        pipeline.del(&index).ignore();
        pipeline.query_async::<()>(&mut connection).await.map_err(|err| err.to_string())?;
        Ok(ids.len())
    }

    /// `PING`, for `/readyz`.
    pub async fn ping(&self) -> std::result::Result<(), String> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|err| format!("Redis session store unreachable: {err}"))
    }

    fn seal(&self, record: &Record) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(record).map_err(|err| Error::Encode(err.to_string()))?;
        Ok(self.sealer.seal(record.id.to_string().as_bytes(), &plain))
    }

    fn ttl_secs(record: &Record) -> u64 {
        let left = record.expiry_date - time::OffsetDateTime::now_utc();
        left.whole_seconds().max(1) as u64
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let mut connection = self.connection.clone();
        loop {
            let sealed = self.seal(record)?;
            let created: bool = redis::cmd("SET")
                .arg(key(&record.id))
                .arg(sealed)
                .arg("NX")
                .arg("EX")
                .arg(Self::ttl_secs(record))
                .query_async::<Option<String>>(&mut connection)
                .await
                .map_err(backend)?
                .is_some();
            if created {
                return self.index_by_sid(record).await;
            }
            // An id collision (2^-128, but cheap to handle): pick another.
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let mut connection = self.connection.clone();
        let sealed = self.seal(record)?;
        let ttl = Self::ttl_secs(record);
        // One round trip: the record, and its place in the sid index.
        let mut pipeline = redis::pipe();
        pipeline.set_ex(key(&record.id), sealed, ttl).ignore();
        if let Some(sid) = sid_of_record(&record.data) {
            let index = sid_key(sid);
            pipeline.sadd(&index, record.id.to_string()).ignore();
            pipeline.expire(&index, ttl as i64).ignore();
        }
        pipeline.query_async::<()>(&mut connection).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut connection = self.connection.clone();
        let Some(sealed): Option<Vec<u8>> = connection.get(key(id)).await.map_err(backend)? else {
            return Ok(None);
        };
        Ok(decode_record(&self.sealer, &id.to_string(), &sealed))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut connection = self.connection.clone();
        connection.del::<_, ()>(key(id)).await.map_err(backend)
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
        Ok(record) if record.expiry_date > time::OffsetDateTime::now_utc() => Some(record),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, "session record unreadable");
            None
        }
    }
}
