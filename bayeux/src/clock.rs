//! The two clocks the engine reads: the session clock (milliseconds since
//! the process started, monotonic: expiry and deadlines) and the wall clock
//! (milliseconds since the Unix epoch: what the timesync extension tells
//! clients). May use: nothing else in the crate.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the process started; the session clock.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
