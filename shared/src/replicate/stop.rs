//! [`StopSignal`]: tells running copies to wrap up now, as if the deadline had come.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Asks every copy of an engine to stop as it would at the deadline's stop margin: no new part
/// starts, parts in flight are cancelled and a continuation carries the parts done, and a
/// single PUT in flight fails retryably without writing anything. The replicator raises it on
/// SIGTERM, so a restart hands its work on instead of orphaning it.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    inner: Arc<(AtomicBool, Notify)>,
}

impl StopSignal {
    /// A signal that has not been raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the signal (for good).
    pub fn stop(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }

    /// Whether the signal has been raised.
    pub fn is_stopped(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }

    /// Completes once the signal is raised.
    pub async fn stopped(&self) {
        loop {
            let notified = self.inner.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_wake_when_the_signal_is_raised() {
        let signal = StopSignal::new();
        assert!(!signal.is_stopped());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.stopped().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        signal.stop();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
        // Raised already: returns at once.
        signal.stopped().await;
    }
}
