//! Request counting, for the cost benchmarks and for tests that assert how a client behaves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests per operation name (`GetObject`, `PutObject`, …), including failed ones.
    pub requests: BTreeMap<String, u64>,
    /// TCP connections accepted: with keep-alive, far fewer than requests.
    #[serde(default)]
    pub connections: u64,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent (object data and XML).
    pub bytes_out: u64,
    /// Faults injected.
    pub faults_injected: u64,
    /// Trigger POSTs attempted, retries included.
    pub notification_attempts: u64,
    /// Trigger batches that a target accepted.
    pub notifications_delivered: u64,
    /// Trigger batches given up after the last retry.
    pub notifications_failed: u64,
}

impl Stats {
    /// How many requests of `op` were seen.
    pub fn count(&self, op: &str) -> u64 {
        self.requests.get(op).copied().unwrap_or(0)
    }

    /// How many requests were seen in all.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}
