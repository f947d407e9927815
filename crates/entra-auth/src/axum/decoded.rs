//! Values decoded from the JSON text a session keeps them as, kept by that text: every signed-in
//! request reads the user, and decoding it was the largest single cost of reading a session (see
//! `docs/PERFORMANCE.md`). Decoding is a function of the text alone, so a hit gives exactly what
//! decoding would; the key is the whole text, hashed and compared in full, so a user whose
//! memberships changed is a new entry, never a stale one. Only texts this library stored are ever
//! looked up (a client cannot choose one), and the cache is bounded: when full it starts over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::DeserializeOwned;

/// foldhash rather than SipHash: the text is hashed on every signed-in request, and its keys are
/// not values a client picks (foldhash is seeded per process all the same).
type Entries<T> = HashMap<Box<str>, Arc<T>, foldhash::fast::RandomState>;

/// Values by the text they decode from, at most `limit` of them.
pub(crate) struct DecodedCache<T> {
    entries: Mutex<Entries<T>>,
    limit: usize,
}

impl<T: DeserializeOwned> DecodedCache<T> {
    /// A cache of at most `limit` values.
    pub(crate) fn new(limit: usize) -> Self {
        Self { entries: Mutex::new(Entries::default()), limit: limit.max(1) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<T>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value `text` decodes to, decoded at most once while it is kept.
    pub(crate) fn decode(&self, text: &str) -> serde_json::Result<Arc<T>> {
        if let Some(value) = self.entries().get(text) {
            return Ok(value.clone());
        }
        // Decoded outside the lock: two first requests with one text may both decode; either is
        // right.
        let value = Arc::new(serde_json::from_str::<T>(text)?);
        let mut entries = self.entries();
        if entries.len() >= self.limit {
            entries.clear();
        }
        entries.insert(text.into(), value.clone());
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct User {
        name: String,
    }

    fn user_text(name: &str) -> String {
        format!(r#"{{"object_id":"00000000-0000-0000-0000-000000000001","name":"{name}"}}"#)
    }

    #[test]
    fn a_kept_user_is_the_decoded_one_and_a_changed_text_is_decoded_anew() {
        let users = DecodedCache::<User>::new(8);
        let first = users.decode(&user_text("Ada")).unwrap();
        assert_eq!(first.name, "Ada");
        let again = users.decode(&user_text("Ada")).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second read is the kept value");
        let renamed = users.decode(&user_text("Grace")).unwrap();
        assert_eq!(renamed.name, "Grace");
        assert!(!Arc::ptr_eq(&first, &renamed));
        // Both are kept while there is room.
        assert!(Arc::ptr_eq(&first, &users.decode(&user_text("Ada")).unwrap()));
        assert!(Arc::ptr_eq(&renamed, &users.decode(&user_text("Grace")).unwrap()));
        assert!(users.decode("{not json").is_err());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let users = DecodedCache::<User>::new(4);
        for index in 0..10 {
            let user = users.decode(&user_text(&format!("user {index}"))).unwrap();
            assert_eq!(user.name, format!("user {index}"));
            assert!(users.entries().len() <= 4);
        }
    }
}
