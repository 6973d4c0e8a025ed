//! Byte-size units, in one place, and the conversions between sizes and lengths that the code
//! needs.

/// 1 KiB.
pub const KIB: u64 = 1024;
/// 1 MiB.
pub const MIB: u64 = 1024 * KIB;
/// 1 GiB.
pub const GIB: u64 = 1024 * MIB;
/// 1 TiB.
pub const TIB: u64 = 1024 * GIB;

/// `bytes` as a `usize` (a buffer length).
///
/// # Panics
/// On a target whose `usize` cannot hold `bytes` (never on the 64-bit targets oss2s3 builds
/// for); in a `const`, that is a compile error instead of a wrapped value.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the assert makes the cast lossless"
)]
pub const fn as_usize(bytes: u64) -> usize {
    assert!(bytes <= usize::MAX as u64, "the size does not fit in usize");
    bytes as usize
}

/// `duration` in whole milliseconds, saturating (for logs and metrics).
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
