//! Sessions in this process's memory, bounded: past the limit the least recently saved session is
//! evicted, so a flood of new sessions (or `/login` calls) cannot exhaust memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use entra_auth::axum::session::sid_of_record;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Result;

#[derive(Debug, Default)]
struct Records {
    by_id: HashMap<Id, (Record, u64)>,
    /// Save sequence number → id: the first entry is the least recently saved.
    by_age: BTreeMap<u64, Id>,
    /// Entra session id → our sessions signed in with it (front-channel logout).
    by_sid: HashMap<String, HashSet<Id>>,
    next_sequence: u64,
}

impl Records {
    fn remove(&mut self, id: &Id) {
        if let Some((record, sequence)) = self.by_id.remove(id) {
            self.by_age.remove(&sequence);
            if let Some(sid) = sid_of_record(&record.data)
                && let Some(ids) = self.by_sid.get_mut(sid) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.by_sid.remove(sid);
                    }
                }
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

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).by_id.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(&self, record: &Record) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.remove(&record.id);
        let sequence = records.next_sequence;
        records.next_sequence += 1;
        if let Some(sid) = sid_of_record(&record.data) {
            records.by_sid.entry(sid.to_owned()).or_default().insert(record.id);
        }
        records.by_id.insert(record.id, (record.clone(), sequence));
        records.by_age.insert(sequence, record.id);
        while records.by_id.len() > self.limit {
            let Some((_, oldest)) = records.by_age.first_key_value().map(|(s, id)| (*s, *id)) else { break };
            records.remove(&oldest);
        }
    }

    /// Deletes every session signed in with Entra session `sid`; returns how many.
    pub fn end_sessions_with_sid(&self, sid: &str) -> usize {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let ids: Vec<Id> = records.by_sid.get(sid).map(|ids| ids.iter().copied().collect()).unwrap_or_default();
        for id in &ids {
            records.remove(id);
        }
        ids.len()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        {
            let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            while records.by_id.contains_key(&record.id) {
                record.id = Id::default();
            }
        }
        self.put(record);
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.put(record);
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((record, _)) = records.by_id.get(id) else {
            return Ok(None);
        };
        if record.expiry_date > time::OffsetDateTime::now_utc() {
            return Ok(Some(record.clone()));
        }
        records.remove(id);
        Ok(None)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        Ok(())
    }
}
