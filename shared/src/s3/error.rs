//! S3 errors as neutral [`StoreError`]s.

use std::error::Error as StdError;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::store::{StoreError, StoreErrorKind};

pub(super) fn target(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("s3://{bucket}/{key}"),
        None => format!("s3://{bucket}"),
    }
}

/// Maps an SDK error to the neutral kinds.
pub(super) fn sdk_error<E>(
    operation: &'static str,
    bucket: &str,
    key: Option<&str>,
    error: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let kind = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreErrorKind::Unavailable
        }
        SdkError::ConstructionFailure(_) => StoreErrorKind::Config,
        SdkError::ServiceError(service) => classify(status, service.err().code()),
        _ => StoreErrorKind::InvalidResponse,
    };
    let message = DisplayErrorContext(&error).to_string();
    StoreError::new(kind, operation, target(bucket, key), message).with_source(error)
}

/// Whether a failed request may still have taken effect: no answer arrived (the connection
/// broke, the call timed out), the answer could not be read, or S3 answered 500, which its docs
/// say may or may not have happened. A 4xx, or a 503 `SlowDown`, was refused.
pub(super) fn may_have_taken_effect<E>(error: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status >= 500
                && classify(Some(status), service.err().code()) != StoreErrorKind::Throttled
        }
        _ => false,
    }
}

/// Chooses the kind for an S3 error response from its status and code.
pub(super) fn classify(status: Option<u16>, code: Option<&str>) -> StoreErrorKind {
    match code.unwrap_or("") {
        "NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" | "NotFound" => StoreErrorKind::NotFound,
        // 409 ConditionalRequestConflict: a conditional write raced another write to the key;
        // the writer should look again, as after a failed precondition.
        "PreconditionFailed" | "ConditionalRequestConflict" => StoreErrorKind::PreconditionFailed,
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken" => {
            StoreErrorKind::InvalidCredentials
        }
        "InvalidObjectState" => StoreErrorKind::InvalidObjectState,
        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            StoreErrorKind::Throttled
        }
        // Transient whatever the status: RequestTimeout (400, the upload was too slow),
        // OperationAborted (409, a conflicting operation on the bucket or key), and InternalError
        // (also inside a 200 CompleteMultipartUpload answer, which the SDK turns into an error
        // with status 200; https://repost.aws/knowledge-center/s3-resolve-200-internalerror).
        "RequestTimeout" | "OperationAborted" | "InternalError" | "ServiceUnavailable" => {
            StoreErrorKind::Unavailable
        }
        "BadDigest" | "InvalidDigest" | "XAmzContentChecksumMismatch" | "InvalidChecksum" => {
            StoreErrorKind::ChecksumMismatch
        }
        "MetadataTooLarge" => StoreErrorKind::MetadataTooLarge,
        "KeyTooLongError" => StoreErrorKind::InvalidKey,
        "EntityTooLarge" => StoreErrorKind::TooLarge,
        _ => match status {
            Some(404) => StoreErrorKind::NotFound,
            Some(412) => StoreErrorKind::PreconditionFailed,
            Some(403) => StoreErrorKind::AccessDenied,
            Some(429 | 503) => StoreErrorKind::Throttled,
            Some(s) if s >= 500 => StoreErrorKind::Unavailable,
            Some(s) if s >= 400 => StoreErrorKind::InvalidRequest,
            _ => StoreErrorKind::InvalidResponse,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_s3_error_codes() {
        assert_eq!(
            classify(Some(404), Some("NoSuchKey")),
            StoreErrorKind::NotFound
        );
        assert_eq!(classify(Some(404), None), StoreErrorKind::NotFound);
        assert_eq!(
            classify(Some(412), Some("PreconditionFailed")),
            StoreErrorKind::PreconditionFailed
        );
        assert_eq!(
            classify(Some(400), Some("MetadataTooLarge")),
            StoreErrorKind::MetadataTooLarge
        );
        assert_eq!(
            classify(Some(400), Some("KeyTooLongError")),
            StoreErrorKind::InvalidKey
        );
        assert_eq!(
            classify(Some(503), Some("SlowDown")),
            StoreErrorKind::Throttled
        );
        assert_eq!(
            classify(Some(500), Some("InternalError")),
            StoreErrorKind::Unavailable
        );
        assert_eq!(
            classify(Some(400), Some("BadDigest")),
            StoreErrorKind::ChecksumMismatch
        );
        assert_eq!(
            classify(Some(403), Some("AccessDenied")),
            StoreErrorKind::AccessDenied
        );
    }

    #[test]
    fn transient_s3_errors_are_retryable_whatever_their_status() {
        for (status, code) in [
            (400, "RequestTimeout"),
            (409, "OperationAborted"),
            (200, "InternalError"),
            (503, "ServiceUnavailable"),
        ] {
            let kind = classify(Some(status), Some(code));
            assert!(kind.is_retryable(), "{status} {code} is {kind:?}");
        }
        assert_eq!(
            classify(Some(409), Some("ConditionalRequestConflict")),
            StoreErrorKind::PreconditionFailed
        );
    }
}
