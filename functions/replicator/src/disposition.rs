//! [`Disposition`]: what happens to one message after its tasks ran.

use std::time::Duration;

/// What should happen to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Finished; SQS may delete it.
    Done,
    /// Try again later; `delay` sets the visibility timeout first.
    Retry {
        kind: String,
        reason: String,
        delay: Option<Duration>,
    },
    /// Never retry: dead-letter it with the reason.
    Permanent { kind: String, reason: String },
    /// Not started: send a copy to the queue (so no receive is counted) and finish this one.
    Requeue { reason: String },
}
