//! Wall-clock time as the protocol counts it (unix seconds), and a finer one to order events.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix nanoseconds now (a `u64` lasts until 2554).
pub(crate) fn unix_now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}
