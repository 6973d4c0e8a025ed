//! What one replication did: [`Outcome`] and [`SkipReason`].

use crate::task::ReplicationTask;

/// What [`Replicator::replicate`] did.
// One `Outcome` is returned per object, so its size does not matter; the task stays unboxed so
// callers can match and move it directly.
#[expect(
    clippy::large_enum_variant,
    reason = "one outcome per object; boxing the task would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The object was copied.
    Copied {
        /// The object's size in bytes.
        bytes: u64,
        /// Whether a multipart upload was used.
        multipart: bool,
        /// How many parts the object has (1 for a single PUT).
        parts: u32,
    },
    /// Nothing needed doing.
    Skipped(SkipReason),
    /// The destination object was deleted.
    Deleted,
    /// The copy was interrupted (by the deadline, or by a transient failure after some parts
    /// were done): enqueue `task`, which carries a
    /// [`Continuation`](super::Continuation), after `delay`; the original message is done.
    Continue {
        /// The continuation task.
        task: ReplicationTask,
        /// How long to wait before it runs: zero after a deadline, growing after transient
        /// failures.
        delay: std::time::Duration,
    },
}

/// Why a task needed no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The destination's marker shows it already holds this version of the source.
    AlreadyReplicated,
    /// The source object no longer exists (under any of the task's key candidates).
    SourceGone,
    /// A delete task, but the destination object was not written from this source key.
    DeleteNotOwned,
    /// A delete task, and the destination object does not exist.
    DestinationAbsent,
    /// A delete task, and deletes are not replicated.
    DeletesDisabled,
    /// The source object is itself a replica of the destination object (its marker names it):
    /// in two-way mode, the copy the other direction wrote. Copying it back would loop.
    ReplicaOfDestination,
}

impl SkipReason {
    /// A stable name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyReplicated => "AlreadyReplicated",
            Self::SourceGone => "SourceGone",
            Self::DeleteNotOwned => "DeleteNotOwned",
            Self::DestinationAbsent => "DestinationAbsent",
            Self::DeletesDisabled => "DeletesDisabled",
            Self::ReplicaOfDestination => "ReplicaOfDestination",
        }
    }
}
