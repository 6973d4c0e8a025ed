//! [`S3Store`] as an [`ObjectSink`]: PUT and multipart uploads with CRC-64/NVME checksums that
//! S3 verifies.

use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, ServerSideEncryption,
};
use bytes::Bytes;

use super::compat::{ListPartsRootFix, S3Compat};
use super::error::{may_have_taken_effect, sdk_error, target};
use super::{S3Store, checksum_b64, s3_class};
use crate::store::{
    BodyChecksums, CompletedPart, ConditionalWrites, Encryption, ObjectSink, PartInfo, PartLimits,
    StoreError, StoreErrorKind, WriteCondition, WriteOutput, WriteRequest, unquote_etag,
};

/// Applies a [`WriteCondition`] to a PutObject or CompleteMultipartUpload builder: S3's
/// conditional writes, `If-None-Match: *` and `If-Match: <ETag>`
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>). A failed
/// condition is 412 `PreconditionFailed`; a write racing another conditional write is 409
/// `ConditionalRequestConflict`; both arrive as [`StoreErrorKind::PreconditionFailed`].
macro_rules! apply_condition {
    ($call:expr, $condition:expr) => {{
        let call = $call;
        match $condition {
            WriteCondition::None => call,
            WriteCondition::IfAbsent => call.if_none_match("*"),
            WriteCondition::IfMatch(etag) => call.if_match(quoted(etag)),
        }
    }};
}

fn quoted(etag: &str) -> String {
    format!("\"{}\"", unquote_etag(etag))
}

/// `If-Match` on a key that no longer exists is 404 `NoSuchKey` on S3: for a conditional write
/// that is a failed precondition (the object changed), not a missing bucket.
fn condition_error(error: StoreError, condition: &WriteCondition) -> StoreError {
    if matches!(condition, WriteCondition::IfMatch(_)) && error.is_not_found() {
        StoreError::new(
            StoreErrorKind::PreconditionFailed,
            error.operation(),
            error.target().to_owned(),
            format!("the object to replace is gone: {}", error.message()),
        )
        .with_source(error)
    } else {
        error
    }
}

/// Applies a [`WriteRequest`] to a PutObject or CreateMultipartUpload builder.
macro_rules! apply_write_request {
    ($call:expr, $request:expr) => {{
        let request: &WriteRequest = $request;
        let c = &request.content;
        let mut call = $call
            .set_content_type(c.content_type.clone())
            .set_content_encoding(c.content_encoding.clone())
            .set_content_disposition(c.content_disposition.clone())
            .set_content_language(c.content_language.clone())
            .set_cache_control(c.cache_control.clone())
            .set_expires(
                c.expires
                    .as_deref()
                    .and_then(|e| httpdate::parse_http_date(e).ok())
                    .map(aws_sdk_s3::primitives::DateTime::from),
            );
        for (name, value) in &request.user_metadata {
            call = call.metadata(name, value);
        }
        if let Some(class) = &request.storage_class {
            call = call.storage_class(s3_class(class));
        }
        match &request.encryption {
            Some(Encryption::Aes256) => {
                call = call.server_side_encryption(ServerSideEncryption::Aes256);
            }
            Some(Encryption::Kms { key_id }) => {
                call = call
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .set_ssekms_key_id(key_id.clone());
            }
            None => {}
        }
        call
    }};
}

impl ObjectSink for S3Store {
    fn limits(&self) -> PartLimits {
        self.limits
    }

    /// S3 enforces every condition. moto (5.x) ignores `If-Match` on CompleteMultipartUpload.
    fn conditional_writes(&self) -> ConditionalWrites {
        match self.compat {
            S3Compat::Aws => ConditionalWrites::ALL,
            S3Compat::Moto => ConditionalWrites {
                complete_if_match: false,
                ..ConditionalWrites::ALL
            },
        }
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        checksums: BodyChecksums,
        request: &WriteRequest,
        condition: &WriteCondition,
    ) -> Result<WriteOutput, StoreError> {
        let len = i64::try_from(body.len()).unwrap_or(i64::MAX);
        let call = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(SdkByteStream::from(body))
            .content_length(len)
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_crc64_nvme(checksum_b64(checksums.crc64_nvme));
        let output = apply_condition!(apply_write_request!(call, request), condition)
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| {
                condition_error(sdk_error("PutObject", bucket, Some(key), e), condition)
            })?;
        Ok(WriteOutput {
            etag: output.e_tag().unwrap_or_default().to_owned(),
        })
    }

    /// S3 creates an upload for every CreateMultipartUpload it receives, so an attempt whose
    /// answer is lost (the connection broke, the call timed out, a 500) may have left one that
    /// nobody knows the ID of, and a blind retry would leave it open for good. So this call is
    /// retried here rather than by the SDK, and after each such attempt the uploads it may have
    /// created are found and aborted (see [`S3Store::abort_uploads_since`]).
    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> Result<String, StoreError> {
        let mut delays = self.sdk_retry_policy().delays();
        loop {
            let started = std::time::SystemTime::now();
            let call = self
                .client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                .checksum_type(ChecksumType::FullObject);
            let result = apply_write_request!(call, request)
                .customize()
                .config_override(
                    aws_sdk_s3::config::Builder::default()
                        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()),
                )
                .send()
                .await;
            let sdk = match result {
                Ok(output) => {
                    return output.upload_id().map(str::to_owned).ok_or_else(|| {
                        StoreError::new(
                            StoreErrorKind::InvalidResponse,
                            "CreateMultipartUpload",
                            target(bucket, Some(key)),
                            "the answer has no UploadId",
                        )
                    });
                }
                Err(e) => e,
            };
            let ambiguous = may_have_taken_effect(&sdk);
            let error = sdk_error("CreateMultipartUpload", bucket, Some(key), sdk);
            if ambiguous && let Err(cleanup) = self.abort_uploads_since(bucket, key, started).await
            {
                tracing::error!(
                    bucket, key, error = %cleanup,
                    "could not look for the upload a failed CreateMultipartUpload may have \
                     created; the bucket's AbortIncompleteMultipartUpload rule must remove it"
                );
            }
            match delays.next() {
                Some(delay) if error.is_retryable() => tokio::time::sleep(delay).await,
                _ => return Err(error),
            }
        }
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        checksums: BodyChecksums,
    ) -> Result<PartInfo, StoreError> {
        let len = body.len() as u64;
        let output = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(i32::try_from(part_number).unwrap_or(i32::MAX))
            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
            .body(SdkByteStream::from(body))
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_crc64_nvme(checksum_b64(checksums.crc64_nvme))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| sdk_error("UploadPart", bucket, Some(key), e))?;
        Ok(PartInfo {
            part_number,
            etag: output.e_tag().unwrap_or_default().to_owned(),
            size: len,
        })
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        whole: BodyChecksums,
        condition: &WriteCondition,
    ) -> Result<WriteOutput, StoreError> {
        let parts = parts
            .iter()
            .map(|p| {
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(i32::try_from(p.part_number).unwrap_or(i32::MAX))
                    .e_tag(&p.etag)
                    .checksum_crc64_nvme(checksum_b64(p.checksums.crc64_nvme))
                    .build()
            })
            .collect();
        let call = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .checksum_type(ChecksumType::FullObject)
            .checksum_crc64_nvme(checksum_b64(whole.crc64_nvme));
        let output = apply_condition!(call, condition)
            .send()
            .await
            .map_err(|e| sdk_error("CompleteMultipartUpload", bucket, Some(key), e))?;
        Ok(WriteOutput {
            etag: output.e_tag().unwrap_or_default().to_owned(),
        })
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = sdk_error("AbortMultipartUpload", bucket, Some(key), e);
                if error.is_not_found() {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, StoreError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let call = self
                .client
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .customize();
            let call = match self.compat {
                S3Compat::Moto => call.interceptor(ListPartsRootFix),
                S3Compat::Aws => call,
            };
            let page = call
                .send()
                .await
                .map_err(|e| sdk_error("ListParts", bucket, Some(key), e))?;
            for part in page.parts() {
                parts.push(PartInfo {
                    part_number: part
                        .part_number()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0),
                    etag: part.e_tag().unwrap_or_default().to_owned(),
                    size: part.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                });
            }
            match (page.is_truncated(), page.next_part_number_marker()) {
                (Some(true), Some(next)) if marker.as_deref() != Some(next) => {
                    marker = Some(next.to_owned());
                }
                (Some(true), _) => {
                    return Err(StoreError::new(
                        StoreErrorKind::InvalidResponse,
                        "ListParts",
                        target(bucket, Some(key)),
                        "a truncated page has no usable NextPartNumberMarker",
                    ));
                }
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }
}
