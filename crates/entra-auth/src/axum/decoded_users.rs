//! Users decoded from the JSON text the session keeps them as, kept by that text: every
//! signed-in request reads the user, and decoding it was the largest single cost of reading a
//! session (see `docs/PERFORMANCE.md`). Decoding is a function of the text alone, so a hit gives
//! exactly what decoding would; the key is the whole text, hashed and compared in full, so a user
//! whose memberships changed is a new entry, never a stale one. Only texts this library stored
//! for a signed-in user are ever looked up (a client cannot choose one), and the cache is bounded:
//! when full it starts over.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::axum::session::SignedInUser;

/// Users kept decoded (a few KB each, text and value).
const LIMIT: usize = 1024;

/// foldhash rather than SipHash: the text is hashed on every signed-in request, and its keys are
/// not values a client picks (foldhash is seeded per process all the same).
type Entries = HashMap<Box<str>, Arc<SignedInUser>, foldhash::fast::RandomState>;

/// The process's decoded users.
pub(crate) static DECODED_USERS: LazyLock<DecodedUsers> = LazyLock::new(|| DecodedUsers::new(LIMIT));

/// Users by the text they decode from, at most `limit` of them.
pub(crate) struct DecodedUsers {
    entries: Mutex<Entries>,
    limit: usize,
}

impl DecodedUsers {
    fn new(limit: usize) -> Self {
        Self { entries: Mutex::default(), limit: limit.max(1) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user `text` decodes to, decoded at most once while it is kept.
    pub(crate) fn decode(&self, text: &str) -> serde_json::Result<Arc<SignedInUser>> {
        if let Some(user) = self.entries().get(text) {
            return Ok(user.clone());
        }
        // Decoded outside the lock: two first requests of one user may both decode; either is
        // right.
        let user = Arc::new(serde_json::from_str::<SignedInUser>(text)?);
        let mut entries = self.entries();
        if entries.len() >= self.limit {
            entries.clear();
        }
        entries.insert(text.into(), user.clone());
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_text(name: &str) -> String {
        format!(
            r#"{{"object_id":"00000000-0000-0000-0000-000000000001","tenant_id":"00000000-0000-0000-0000-000000000002","name":"{name}","email":null,"sid":null,"login_hint":null}}"#
        )
    }

    #[test]
    fn a_kept_user_is_the_decoded_one_and_a_changed_text_is_decoded_anew() {
        let users = DecodedUsers::new(8);
        let first = users.decode(&user_text("Ada")).unwrap();
        assert_eq!(first.name, "Ada");
        let again = users.decode(&user_text("Ada")).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second read is the kept value");
        let renamed = users.decode(&user_text("Grace")).unwrap();
        assert_eq!(renamed.name, "Grace");
        assert!(!Arc::ptr_eq(&first, &renamed));
        assert!(users.decode("{not json").is_err());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let users = DecodedUsers::new(4);
        for index in 0..10 {
            let user = users.decode(&user_text(&format!("user {index}"))).unwrap();
            assert_eq!(user.name, format!("user {index}"));
            assert!(users.entries().len() <= 4);
        }
    }
}
