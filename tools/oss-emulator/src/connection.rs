//! The kill switch a connection shares with its requests, so that a `reset` fault can tear the
//! TCP connection down without an answer. The accept loop ([`crate::server`]) owns the socket;
//! the request pipeline ([`crate::protocol`]) only pulls the switch.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Per-connection control shared by the connection task and its requests.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    reset: AtomicBool,
    killed: Notify,
}

impl ConnControl {
    /// Drops the connection with a TCP RST, without sending a response.
    pub(crate) fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.killed.notify_one();
    }

    /// Whether [`reset`](Self::reset) was called: the socket must then close with a RST.
    pub(crate) fn was_reset(&self) -> bool {
        self.reset.load(Ordering::SeqCst)
    }

    /// Completes once [`reset`](Self::reset) is called.
    pub(crate) async fn killed(&self) {
        self.killed.notified().await;
    }
}
