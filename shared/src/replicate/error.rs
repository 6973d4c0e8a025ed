//! Why a replication failed, and whether trying again can help.

use std::fmt;
use std::time::Duration;

use crate::store::{BoxError, StoreError, StoreErrorKind};

/// What kind of failure a [`ReplicationError`] is. The function maps retryable kinds to an SQS
/// retry (`batchItemFailures`) and permanent kinds to the DLQ with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// Retryable: a store throttled the requests.
    Throttled,
    /// Retryable: the source store failed or could not be reached.
    SourceUnavailable,
    /// Retryable: the destination store failed or could not be reached.
    DestinationUnavailable,
    /// Retryable: the bytes copied did not match the source's CRC-64 (nothing was written).
    ChecksumMismatch,
    /// Retryable: the source object kept changing during the copy.
    SourceChanged,
    /// Retryable: another writer kept changing the destination object during the copy.
    DestinationChanged,
    /// Retryable: the invocation's deadline came before a single PUT finished (nothing was
    /// written).
    DeadlineReached,
    /// Retryable: the source object is archived and being restored; retry after `retry_after`.
    RestoreInProgress,
    /// Retryable: the source rejected the credentials; refresh them and retry once.
    Credentials,
    /// Permanent: the key cannot be used on the destination (too long, or outside the source
    /// prefix).
    InvalidKey,
    /// Permanent: the user metadata is larger than the destination allows.
    MetadataTooLarge,
    /// Permanent: a store denied access.
    AccessDenied,
    /// Permanent: the source object is archived and restoring is disabled.
    ArchivedNoRestore,
    /// Permanent: the object is larger than the destination allows.
    ObjectTooLarge,
    /// Permanent: the task itself is unusable (such as a malformed continuation).
    InvalidTask,
    /// Permanent: the task names a source bucket the engine is not configured to read.
    BucketNotAllowed,
    /// Permanent: a store refused a request or answered with something unreadable.
    Rejected,
}

impl FailureKind {
    /// Whether a later attempt of the same task may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled
                | Self::SourceUnavailable
                | Self::DestinationUnavailable
                | Self::ChecksumMismatch
                | Self::SourceChanged
                | Self::DestinationChanged
                | Self::DeadlineReached
                | Self::RestoreInProgress
                | Self::Credentials
        )
    }

    /// Whether the failure is a race with another writer, which a fresh look can settle.
    pub fn is_race(self) -> bool {
        matches!(self, Self::SourceChanged | Self::DestinationChanged)
    }

    /// A stable name, for metrics dimensions and DLQ message attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "Throttled",
            Self::SourceUnavailable => "SourceUnavailable",
            Self::DestinationUnavailable => "DestinationUnavailable",
            Self::ChecksumMismatch => "ChecksumMismatch",
            Self::SourceChanged => "SourceChanged",
            Self::DestinationChanged => "DestinationChanged",
            Self::DeadlineReached => "DeadlineReached",
            Self::RestoreInProgress => "RestoreInProgress",
            Self::Credentials => "Credentials",
            Self::InvalidKey => "InvalidKey",
            Self::MetadataTooLarge => "MetadataTooLarge",
            Self::AccessDenied => "AccessDenied",
            Self::ArchivedNoRestore => "ArchivedNoRestore",
            Self::ObjectTooLarge => "ObjectTooLarge",
            Self::InvalidTask => "InvalidTask",
            Self::BucketNotAllowed => "BucketNotAllowed",
            Self::Rejected => "Rejected",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`Replicator::replicate`](super::Replicator::replicate) failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct ReplicationError {
    /// The kind, which decides retry or DLQ.
    pub kind: FailureKind,
    /// A human-readable reason, naming the object and the store's error.
    pub reason: String,
    /// How long to wait before retrying, when known (throttling, restores).
    pub retry_after: Option<Duration>,
    /// The underlying error.
    #[source]
    pub source: Option<BoxError>,
}

impl ReplicationError {
    /// An error of `kind` with `reason`.
    pub fn new(kind: FailureKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Sets how long to wait before retrying.
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Whether a later attempt of the same task may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Maps an error from the source store.
    pub(crate) fn from_source(error: StoreError) -> Self {
        let kind = match error.kind() {
            StoreErrorKind::Throttled => FailureKind::Throttled,
            StoreErrorKind::InvalidCredentials => FailureKind::Credentials,
            StoreErrorKind::AccessDenied => FailureKind::AccessDenied,
            StoreErrorKind::ChecksumMismatch => FailureKind::ChecksumMismatch,
            StoreErrorKind::PreconditionFailed => FailureKind::SourceChanged,
            StoreErrorKind::InvalidObjectState => FailureKind::RestoreInProgress,
            StoreErrorKind::InvalidKey => FailureKind::InvalidKey,
            StoreErrorKind::Unavailable | StoreErrorKind::NotFound => {
                FailureKind::SourceUnavailable
            }
            _ => FailureKind::Rejected,
        };
        Self::wrap(kind, "source", error)
    }

    /// Maps an error from the destination store.
    pub(crate) fn from_sink(error: StoreError) -> Self {
        let kind = match error.kind() {
            StoreErrorKind::Throttled => FailureKind::Throttled,
            StoreErrorKind::AccessDenied | StoreErrorKind::InvalidCredentials => {
                FailureKind::AccessDenied
            }
            StoreErrorKind::ChecksumMismatch => FailureKind::ChecksumMismatch,
            StoreErrorKind::MetadataTooLarge => FailureKind::MetadataTooLarge,
            StoreErrorKind::InvalidKey => FailureKind::InvalidKey,
            StoreErrorKind::TooLarge => FailureKind::ObjectTooLarge,
            StoreErrorKind::PreconditionFailed => FailureKind::DestinationChanged,
            StoreErrorKind::Unavailable | StoreErrorKind::NotFound => {
                FailureKind::DestinationUnavailable
            }
            _ => FailureKind::Rejected,
        };
        Self::wrap(kind, "destination", error)
    }

    fn wrap(kind: FailureKind, side: &str, error: StoreError) -> Self {
        Self {
            kind,
            reason: format!("{side}: {error}"),
            retry_after: error.retry_after(),
            source: Some(Box::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_and_permanent_kinds_are_split() {
        use FailureKind::*;
        for kind in [
            Throttled,
            SourceUnavailable,
            DestinationUnavailable,
            ChecksumMismatch,
            SourceChanged,
            DestinationChanged,
            DeadlineReached,
            RestoreInProgress,
            Credentials,
        ] {
            assert!(kind.is_retryable(), "{kind}");
        }
        for kind in [
            InvalidKey,
            MetadataTooLarge,
            AccessDenied,
            ArchivedNoRestore,
            ObjectTooLarge,
            InvalidTask,
            BucketNotAllowed,
            Rejected,
        ] {
            assert!(!kind.is_retryable(), "{kind}");
        }
    }

    #[test]
    fn store_errors_map_by_side() {
        let denied = || StoreError::new(StoreErrorKind::InvalidCredentials, "GetObject", "x", "");
        assert_eq!(
            ReplicationError::from_source(denied()).kind,
            FailureKind::Credentials
        );
        assert_eq!(
            ReplicationError::from_sink(denied()).kind,
            FailureKind::AccessDenied
        );
        let busy = StoreError::new(StoreErrorKind::Unavailable, "PutObject", "s3://b/k", "503");
        let error = ReplicationError::from_sink(busy);
        assert_eq!(error.kind, FailureKind::DestinationUnavailable);
        assert!(error.reason.contains("s3://b/k"), "{}", error.reason);
    }
}
