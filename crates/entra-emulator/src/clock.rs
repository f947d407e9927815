//! Time as the emulator sees it: the wall clock plus an offset that tests can advance, so expiry
//! can be exercised without sleeping. The emulator judges the age of what it issued by its own
//! time; the tokens it issues carry wall-clock times, so a client on wall time accepts them
//! however far the clock was advanced.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The emulator's clock.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    /// Seconds since the Unix epoch, offset included.
    pub(crate) fn now(&self) -> i64 {
        wall_clock() + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Seconds since the Unix epoch on the wall clock: the times tokens carry.
    pub(crate) fn wall(&self) -> i64 {
        wall_clock()
    }

    /// A moment of the emulator's time on the wall clock (as a token states it).
    pub(crate) fn to_wall(&self, emulator_time: i64) -> i64 {
        emulator_time - self.offset_secs.load(Ordering::Relaxed)
    }

    pub(crate) fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

fn wall_clock() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs() as i64).unwrap_or_default()
}

/// `2026-11-28 20:48:04Z`, the format of Entra's `timestamp` field.
pub(crate) fn entra_timestamp() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(format).unwrap_or_default()
}

/// `2026-11-28T20:48:04`, the format of Graph's `innerError.date`.
pub(crate) fn graph_date() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::OffsetDateTime::now_utc().format(format).unwrap_or_default()
}
