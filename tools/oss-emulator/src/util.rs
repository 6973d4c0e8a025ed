//! Small building blocks that know nothing of the emulator's state: poison-tolerant locking,
//! the time formats OSS writes, and request IDs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// Locks a mutex, recovering from poisoning: the emulator's state stays usable after a panic
/// in another request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh 24-hex-digit request ID, shaped like OSS's: 8 random digits, then a counter.
pub(crate) fn new_request_id() -> String {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:08X}{:016X}", rand::random::<u32>(), n)
}

/// Now, in milliseconds since the epoch (the unit object metadata keeps times in).
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Milliseconds since the epoch as an HTTP date (`Last-Modified`, `x-oss-restore`).
pub(crate) fn http_date(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Milliseconds since the epoch as the ISO 8601 time OSS writes in XML
/// (`2024-01-01T00:00:00.000Z`).
pub(crate) fn iso_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_24_hex_digits() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn times_in_oss_formats() {
        assert_eq!(iso_time(1_654_842_095_123), "2022-06-10T06:21:35.123Z");
        assert_eq!(
            http_date(1_654_842_095_123),
            "Fri, 10 Jun 2022 06:21:35 GMT"
        );
    }
}
