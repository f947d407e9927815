//! What the stores read off a session record, through entra-auth's [`RecordFacts`] (the record's
//! layout is the library's business): its Entra session and when it must be gone.

use entra_auth::axum::{EntraSession, RecordFacts};
use tower_sessions::session::Record;

/// The Entra session a record is signed in with, if any.
pub(crate) fn entra_session_of(record: &Record) -> Option<EntraSession> {
    RecordFacts::of(record).entra_session
}

/// When a record must be gone: its idle expiry, or its sign-in's absolute end if sooner.
pub(crate) fn expires_at(record: &Record) -> time::OffsetDateTime {
    let absolute = RecordFacts::of(record)
        .ends_at
        .and_then(|end| i64::try_from(end).ok())
        .and_then(|end| time::OffsetDateTime::from_unix_timestamp(end).ok());
    match absolute {
        Some(end) if end < record.expiry_date => end,
        _ => record.expiry_date,
    }
}

/// Seconds until the record's sign-in ends at the latest (its idle expiry may slide until then).
pub(crate) fn index_lifetime_secs(record: &Record) -> u64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0).unsigned_abs();
    RecordFacts::of(record).ends_at.map_or(1, |end| end.saturating_sub(now).max(1))
}
