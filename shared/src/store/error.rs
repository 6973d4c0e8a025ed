//! [`StoreError`]: what went wrong in a store operation, classified so the engine can decide
//! between retrying, failing permanently and treating the answer as information (not found,
//! precondition failed).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A boxed error, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The object, bucket or multipart upload does not exist.
    NotFound,
    /// An `If-Match` precondition failed: the object changed.
    PreconditionFailed,
    /// The credentials are not allowed to do this.
    AccessDenied,
    /// The credentials are wrong, unknown or expired; fresh ones may help.
    InvalidCredentials,
    /// The object must be restored before it can be read.
    InvalidObjectState,
    /// The store asked the client to slow down.
    Throttled,
    /// A 5xx answer, a broken or refused connection, a timeout or a truncated body.
    Unavailable,
    /// The bytes did not match a checksum (sent or received).
    ChecksumMismatch,
    /// The user metadata is larger than the store allows.
    MetadataTooLarge,
    /// The key is not valid on the store (too long, or a form it refuses).
    InvalidKey,
    /// The object or part is larger than the store allows.
    TooLarge,
    /// Any other refused request.
    InvalidRequest,
    /// The store answered with something the client cannot read.
    InvalidResponse,
    /// The client is configured wrongly.
    Config,
}

impl StoreErrorKind {
    /// Whether trying the same request again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Unavailable | Self::ChecksumMismatch
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::PreconditionFailed => "precondition failed",
            Self::AccessDenied => "access denied",
            Self::InvalidCredentials => "invalid credentials",
            Self::InvalidObjectState => "object must be restored first",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::MetadataTooLarge => "metadata too large",
            Self::InvalidKey => "invalid key",
            Self::TooLarge => "too large",
            Self::InvalidRequest => "invalid request",
            Self::InvalidResponse => "invalid response",
            Self::Config => "invalid configuration",
        }
    }
}

/// An error from a store operation: its kind, where it happened, and the store's own error.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    operation: &'static str,
    target: String,
    message: String,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl StoreError {
    /// An error of `kind` from `operation` on `target` (such as `s3://bucket/key`).
    pub fn new(
        kind: StoreErrorKind,
        operation: &'static str,
        target: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            operation,
            target: target.into(),
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets how long the store asked the client to wait.
    #[must_use]
    pub fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay;
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The operation that failed, such as `GetObject`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// What the operation was on, such as `s3://bucket/key`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The store's own message (error code, request ID), possibly empty.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Whether the object (or upload) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == StoreErrorKind::NotFound
    }

    /// Whether an `If-Match` precondition failed.
    pub fn is_precondition_failed(&self) -> bool {
        self.kind == StoreErrorKind::PreconditionFailed
    }

    /// How long the store asked the client to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.operation,
            self.target,
            self.kind.describe()
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_kinds_are_retryable() {
        assert!(StoreErrorKind::Throttled.is_retryable());
        assert!(StoreErrorKind::Unavailable.is_retryable());
        assert!(!StoreErrorKind::NotFound.is_retryable());
        assert!(!StoreErrorKind::PreconditionFailed.is_retryable());
        assert!(!StoreErrorKind::MetadataTooLarge.is_retryable());
    }

    #[test]
    fn display_names_operation_target_kind_and_message() {
        let error = StoreError::new(StoreErrorKind::NotFound, "HeadObject", "s3://b/k", "404");
        assert_eq!(error.to_string(), "HeadObject s3://b/k: not found: 404");
        assert_eq!(error.target(), "s3://b/k");
    }
}
