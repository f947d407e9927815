//! Sessions in this process's memory, bounded: past the limit the least recently *used* session
//! (loaded or saved) is evicted. Only signed-in sessions are ever stored (pending sign-ins live in
//! sealed cookies), so anonymous traffic cannot evict anyone.
//!
//! Writes to an existing session are update-only: once a session is deleted (sign-out,
//! front-channel logout, absolute lifetime) a request that loaded it earlier cannot bring it back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Result;

use entra_auth::axum::EntraSession;

use crate::sessions::record::{entra_session_of, expires_at};

/// A stored record with when it must be gone (worked out once when stored, not at every load:
/// it reads the user out of the record) and its place in the use order.
#[derive(Debug)]
struct Stored {
    record: Record,
    expires_at: time::OffsetDateTime,
    used: u64,
}

impl Stored {
    fn new(record: Record, used: u64) -> Self {
        Self { expires_at: expires_at(&record), record, used }
    }
}

#[derive(Debug, Default)]
struct Records {
    by_id: HashMap<Id, Stored>,
    /// Use sequence number → id: the first entry is the least recently used.
    by_use: BTreeMap<u64, Id>,
    /// Entra session (issuer, sid) → our sessions signed in with it (front-channel logout).
    by_entra_session: HashMap<EntraSession, HashSet<Id>>,
    next_sequence: u64,
}

impl Records {
    fn remove(&mut self, id: &Id) {
        let Some(Stored { record, used, .. }) = self.by_id.remove(id) else { return };
        self.by_use.remove(&used);
        if let Some(entra_session) = entra_session_of(&record)
            && let Some(ids) = self.by_entra_session.get_mut(&entra_session)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_entra_session.remove(&entra_session);
            }
        }
    }

    fn next_use(&mut self) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        sequence
    }

    /// Adds a record as the most recently used.
    fn insert(&mut self, record: Record) {
        let sequence = self.next_use();
        self.by_use.insert(sequence, record.id);
        self.by_id.insert(record.id, Stored::new(record, sequence));
    }

    /// Marks a held record as just used.
    fn touch(&mut self, id: Id) {
        let sequence = self.next_use();
        if let Some(Stored { used, .. }) = self.by_id.get_mut(&id) {
            self.by_use.remove(used);
            *used = sequence;
            self.by_use.insert(sequence, id);
        }
    }
}

/// The bounded in-memory store.
#[derive(Debug)]
pub struct MemoryStore {
    records: Mutex<Records>,
    limit: usize,
}

impl MemoryStore {
    /// A store holding at most `limit` sessions.
    pub fn new(limit: usize) -> Self {
        Self { records: Mutex::new(Records::default()), limit: limit.max(1) }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.records().by_id.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Deletes every session signed in with this Entra session; returns how many.
    pub fn end_entra_session(&self, entra_session: &EntraSession) -> usize {
        let mut records = self.records();
        let ids: Vec<Id> =
            records.by_entra_session.get(entra_session).map(|ids| ids.iter().copied().collect()).unwrap_or_default();
        for id in &ids {
            records.remove(id);
        }
        ids.len()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let mut records = self.records();
        while records.by_id.contains_key(&record.id) {
            record.id = Id::default();
        }
        if let Some(entra_session) = entra_session_of(record) {
            records.by_entra_session.entry(entra_session).or_default().insert(record.id);
        }
        records.insert(record.clone());
        while records.by_id.len() > self.limit {
            let Some(oldest) = records.by_use.first_key_value().map(|(_, id)| *id) else { break };
            records.remove(&oldest);
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let mut records = self.records();
        // Update-only: a session that is gone stays gone.
        if let Some(stored) = records.by_id.get_mut(&record.id) {
            *stored = Stored::new(record.clone(), stored.used);
            records.touch(record.id);
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut records = self.records();
        let Some(stored) = records.by_id.get(id) else {
            return Ok(None);
        };
        if stored.expires_at > time::OffsetDateTime::now_utc() {
            let record = stored.record.clone();
            records.touch(*id);
            return Ok(Some(record));
        }
        records.remove(id);
        Ok(None)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.records().remove(id);
        Ok(())
    }
}
