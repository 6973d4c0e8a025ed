//! One retry policy for every retry loop in the crate: the OSS client's requests, the SQS
//! sender's batches and the copy engine's source reads. Each names its own default.
//!
//! Delays grow exponentially from `base_delay`, doubling up to `max_delay`, with jitter; a store
//! that asks for a longer pause (OSS's `x-oss-qos-delay-time`) raises the next delay, and the
//! caller caps that at `max_delay` where a deadline matters.

use std::time::Duration;

/// How often, and how far apart, an operation is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The total number of attempts, including the first; `1` disables retries.
    pub max_attempts: u32,
    /// The delay before the first retry.
    pub base_delay: Duration,
    /// The largest delay between attempts, before jitter.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts, `base_delay` doubling up to `max_delay`.
    pub const fn new(max_attempts: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            max_attempts,
            base_delay,
            max_delay,
        }
    }

    /// This policy with exactly one attempt.
    #[must_use]
    pub const fn no_retries(self) -> Self {
        Self {
            max_attempts: 1,
            ..self
        }
    }

    /// The backoff schedule (backon's): `base_delay` doubling up to `max_delay`, with jitter,
    /// for `max_attempts - 1` retries.
    #[cfg(any(feature = "oss", feature = "s3", feature = "sqs", feature = "engine"))]
    pub fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay.max(self.base_delay))
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }

    /// The delays before each retry, in order (jittered): `max_attempts - 1` of them.
    #[cfg(any(feature = "oss", feature = "s3", feature = "sqs", feature = "engine"))]
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        use backon::BackoffBuilder as _;
        self.backoff().build()
    }
}

#[cfg(all(
    test,
    any(feature = "oss", feature = "s3", feature = "sqs", feature = "engine")
))]
mod tests {
    use backon::BackoffBuilder as _;

    use super::*;

    #[test]
    fn backoff_gives_one_delay_per_retry_within_the_bounds() {
        let policy = RetryPolicy::new(4, Duration::from_millis(10), Duration::from_millis(25));
        let delays: Vec<Duration> = policy.backoff().build().collect();
        assert_eq!(delays.len(), 3);
        for delay in delays {
            // Jitter adds up to the delay itself.
            assert!(delay >= Duration::from_millis(10) && delay <= Duration::from_millis(50));
        }
        assert_eq!(policy.no_retries().backoff().build().count(), 0);
    }
}
