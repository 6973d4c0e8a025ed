//! The emulator's state, shared by every connection, the admin API and the [`crate::Emulator`]
//! handle: the object store, fault rules, counters, the trigger notifier, the accepted
//! credentials and the restore delay.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use transfer::oss::Credentials;

use crate::faults::FaultSet;
use crate::notify::Notifier;
use crate::stats::Stats;
use crate::store::Store;
use crate::util::lock;

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct State {
    /// The region signatures must be scoped to.
    pub(crate) region: String,
    /// Buckets, objects and uploads.
    pub(crate) store: Store,
    /// The live fault rules.
    pub(crate) faults: FaultSet,
    /// Delivers trigger events.
    pub(crate) notifier: Notifier,
    credentials: RwLock<Vec<Credentials>>,
    stats: Arc<Mutex<Stats>>,
    restore_delay: Mutex<Duration>,
}

impl State {
    /// State around a store and a notifier; `stats` is the notifier's counter set too.
    pub(crate) fn new(
        region: String,
        credentials: Vec<Credentials>,
        store: Store,
        faults: FaultSet,
        stats: Arc<Mutex<Stats>>,
        notifier: Notifier,
        restore_delay: Duration,
    ) -> Self {
        Self {
            region,
            store,
            faults,
            notifier,
            credentials: RwLock::new(credentials),
            stats,
            restore_delay: Mutex::new(restore_delay),
        }
    }

    /// The accepted credentials with this access key ID.
    pub(crate) fn credentials(&self, access_key_id: &str) -> Option<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|c| c.access_key_id == access_key_id)
            .cloned()
    }

    /// Replaces the accepted credentials.
    pub(crate) fn set_credentials(&self, credentials: Vec<Credentials>) {
        *self
            .credentials
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = credentials;
    }

    /// How long a RestoreObject started now takes.
    pub(crate) fn restore_delay(&self) -> Duration {
        *lock(&self.restore_delay)
    }

    /// Changes how long future restores take.
    pub(crate) fn set_restore_delay(&self, delay: Duration) {
        *lock(&self.restore_delay) = delay;
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }

    /// Changes the counters.
    pub(crate) fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }

    /// Zeroes the counters.
    pub(crate) fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
    }

    /// Drops every object, upload, counter and fault rule.
    pub(crate) fn reset(&self) {
        self.store.clear();
        self.faults.set(Vec::new());
        self.reset_stats();
    }
}
