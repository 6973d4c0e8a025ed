//! Retrying with exponential backoff and jitter, honouring OSS's `x-oss-qos-delay-time`.

use std::future::Future;
use std::time::Duration;

use backon::Retryable;

use super::error::OssError;
use crate::retry::RetryPolicy;

/// The delay before the next attempt: the backoff's, raised to what OSS asked for, but never
/// beyond `cap` (the policy's longest delay), so a large `x-oss-qos-delay-time` cannot stall a
/// copy past its deadline.
pub(crate) fn next_delay(
    error: &OssError,
    backoff: Option<Duration>,
    cap: Duration,
) -> Option<Duration> {
    let backoff = backoff?;
    Some(match error.retry_after() {
        Some(asked) => backoff.max(asked.min(cap)),
        None => backoff,
    })
}

/// Runs `attempt` until it succeeds, fails with an error that is not retryable, or the policy's
/// attempts are used up. Each call of `attempt` must build and sign a fresh request.
pub(crate) async fn with_retries<T, F, Fut>(policy: &RetryPolicy, attempt: F) -> Result<T, OssError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OssError>>,
{
    attempt
        .retry(policy.backoff().with_jitter_seed(rand::random()))
        .sleep(tokio::time::sleep)
        .when(OssError::is_retryable)
        .adjust(|error, backoff| next_delay(error, backoff, policy.max_delay))
        .notify(|error: &OssError, delay: Duration| {
            tracing::debug!(
                operation = error.operation(),
                key = error.key().unwrap_or(""),
                delay_ms = crate::size::millis(delay),
                error = %error,
                "retrying OSS request"
            );
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy::new(
            max_attempts,
            Duration::from_millis(1),
            Duration::from_millis(2),
        )
    }

    fn failure(kind: ErrorKind) -> OssError {
        OssError::new(kind, "GetObject", "b", Some("k"))
    }

    #[tokio::test]
    async fn retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let result = with_retries(&fast(4), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(failure(ErrorKind::ServerError))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result.expect("succeeds"), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn stops_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&fast(3), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(failure(ErrorKind::Network))
        })
        .await;
        assert_eq!(result.expect_err("fails").kind(), ErrorKind::Network);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn does_not_retry_permanent_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&fast(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(failure(ErrorKind::PreconditionFailed))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    const CAP: Duration = Duration::from_secs(10);

    /// A 503 from OSS asking for `qos_ms` of pause (`x-oss-qos-delay-time`).
    fn throttled(qos_ms: &'static str) -> OssError {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            crate::oss::error::QOS_DELAY_TIME,
            http::HeaderValue::from_static(qos_ms),
        );
        headers.insert(
            crate::oss::error::REQUEST_ID,
            http::HeaderValue::from_static("RID"),
        );
        OssError::from_response(
            "GetObject",
            "b",
            Some("k"),
            http::StatusCode::SERVICE_UNAVAILABLE,
            &headers,
            b"",
        )
    }

    #[test]
    fn qos_delay_raises_but_never_lowers_the_backoff() {
        let plain = failure(ErrorKind::Throttled);
        assert_eq!(
            next_delay(&plain, Some(Duration::from_millis(5)), CAP),
            Some(Duration::from_millis(5))
        );
        assert_eq!(
            next_delay(&plain, None, CAP),
            None,
            "exhausted stays exhausted"
        );

        let throttled = throttled("750");
        assert_eq!(
            next_delay(&throttled, Some(Duration::from_millis(5)), CAP),
            Some(Duration::from_millis(750))
        );
        assert_eq!(
            next_delay(&throttled, Some(Duration::from_secs(2)), CAP),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn qos_delay_is_capped_at_the_policy_maximum() {
        let throttled = throttled("3600000");
        assert_eq!(
            next_delay(&throttled, Some(Duration::from_millis(5)), CAP),
            Some(CAP),
            "an hour's asked delay is cut to the cap"
        );
    }
}
