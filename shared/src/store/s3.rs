//! [`S3Store`]: Amazon S3 (aws-sdk-s3) as an [`ObjectSink`] and an [`ObjectSource`].
//!
//! # Checksums
//! The client is configured with `RequestChecksumCalculation::WhenRequired` and
//! `ResponseChecksumValidation::WhenRequired` (see [`s3_config`]): the SDK neither adds its own
//! checksums (which would switch uploads to aws-chunked encoding) nor validates downloads on its
//! own. Instead every PutObject and UploadPart carries the caller's `x-amz-checksum-crc64nvme`,
//! and multipart uploads use `ChecksumType=FULL_OBJECT` with the whole object's CRC-64/NVME on
//! completion, so S3 verifies each part and the assembled object. See the
//! [`replicate`](crate::replicate) module for why CRC-64/NVME.
//!
//! # Payload signing
//! PutObject and UploadPart bodies are sent with `x-amz-content-sha256: UNSIGNED-PAYLOAD`: the
//! signature covers the headers, including the CRC-64/NVME that S3 checks the body against, but
//! not a SHA-256 of the body. Hashing every byte with SHA-256 only for the signature was the
//! largest CPU cost of a copy (more than half of the copy path's instructions in a profile).

use std::collections::BTreeMap;
use std::error::Error as StdError;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, ServerSideEncryption, StorageClass,
};
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::{
    ArchiveState, BodyChecksums, CompletedPart, ContentHeaders, Encryption, GetOutput, GetRequest,
    ObjectAttributes, ObjectSink, ObjectSource, ObjectStore, PartInfo, PartLimits, RestoreRequest,
    RestoreStatus, RestoreTier, StoreError, StoreErrorKind, WriteOutput, WriteRequest,
};

/// The S3 client configuration this crate expects: derived from `sdk`, with path-style
/// addressing when an endpoint override is set (moto, local stacks) and checksum behaviour set
/// to `WhenRequired` both ways, since [`S3Store`] sends explicit checksums itself.
pub fn s3_config(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Config {
    aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build()
}

/// Amazon S3 through an injected `aws_sdk_s3::Client` (build it with [`s3_config`]).
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    limits: PartLimits,
}

impl S3Store {
    /// A store on `client`, with S3's limits.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self {
            client,
            limits: PartLimits::S3,
        }
    }

    /// A store with a client built from `sdk` by [`s3_config`].
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_s3::Client::from_conf(s3_config(sdk)))
    }

    /// The underlying client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

fn target(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("s3://{bucket}/{key}"),
        None => format!("s3://{bucket}"),
    }
}

/// Maps an SDK error to the neutral kinds.
fn sdk_error<E>(
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

/// Chooses the kind for an S3 error response from its status and code.
fn classify(status: Option<u16>, code: Option<&str>) -> StoreErrorKind {
    match code.unwrap_or("") {
        "NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" | "NotFound" => StoreErrorKind::NotFound,
        "PreconditionFailed" => StoreErrorKind::PreconditionFailed,
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken" => {
            StoreErrorKind::InvalidCredentials
        }
        "InvalidObjectState" => StoreErrorKind::InvalidObjectState,
        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            StoreErrorKind::Throttled
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

fn to_chrono(time: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

/// The archive state from the storage class and the `x-amz-restore` header.
fn archive_state(storage_class: Option<&StorageClass>, restore: Option<&str>) -> ArchiveState {
    let archived = matches!(
        storage_class,
        Some(StorageClass::Glacier | StorageClass::DeepArchive)
    );
    if !archived {
        return ArchiveState::Online;
    }
    match restore {
        Some(r) if r.contains("ongoing-request=\"true\"") => ArchiveState::Restoring,
        Some(r) if r.contains("ongoing-request=\"false\"") => ArchiveState::Restored,
        _ => ArchiveState::Archived,
    }
}

fn checksum_b64(value: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_be_bytes())
}

macro_rules! attributes_from {
    ($output:expr) => {{
        let o = $output;
        ObjectAttributes {
            size: o
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            etag: o.e_tag().unwrap_or_default().to_owned(),
            crc64: None,
            content: ContentHeaders {
                content_type: o.content_type().map(str::to_owned),
                content_encoding: o.content_encoding().map(str::to_owned),
                content_disposition: o.content_disposition().map(str::to_owned),
                content_language: o.content_language().map(str::to_owned),
                cache_control: o.cache_control().map(str::to_owned),
                expires: o.expires_string().map(str::to_owned),
            },
            user_metadata: o
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_else(BTreeMap::new),
            storage_class: Some(
                o.storage_class()
                    .map_or("STANDARD", |c| c.as_str())
                    .to_owned(),
            ),
            object_type: None,
            archive: archive_state(o.storage_class(), o.restore()),
            last_modified: o.last_modified().and_then(to_chrono),
        }
    }};
}

impl ObjectStore for S3Store {
    fn scheme(&self) -> &'static str {
        "s3"
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectAttributes, StoreError> {
        let output = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("HeadObject", bucket, Some(key), e))?;
        Ok(attributes_from!(&output))
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObject", bucket, Some(key), e))?;
        Ok(())
    }
}

impl ObjectSource for S3Store {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        request: &GetRequest,
    ) -> Result<GetOutput, StoreError> {
        let mut call = self.client.get_object().bucket(bucket).key(key);
        if let Some(range) = &request.range {
            call = call.range(format!(
                "bytes={}-{}",
                range.start,
                range.end.saturating_sub(1)
            ));
        }
        if let Some(etag) = &request.if_match {
            call = call.if_match(etag);
        }
        let mut output = call
            .send()
            .await
            .map_err(|e| sdk_error("GetObject", bucket, Some(key), e))?;
        let mut attributes = attributes_from!(&output);
        // For a ranged GET, Content-Length is the range's; the object's size is in Content-Range.
        if let Some(total) = output
            .content_range()
            .and_then(|r| r.rsplit_once('/'))
            .and_then(|(_, total)| total.parse().ok())
        {
            attributes.size = total;
        }
        let body = std::mem::replace(&mut output.body, SdkByteStream::from(Bytes::new()));
        let origin = target(bucket, Some(key));
        let stream = futures::stream::unfold(Some(body), move |state| {
            let origin = origin.clone();
            async move {
                let mut body = state?;
                match body.next().await {
                    Some(Ok(chunk)) => Some((Ok(chunk), Some(body))),
                    Some(Err(e)) => Some((
                        Err(StoreError::new(
                            StoreErrorKind::Unavailable,
                            "GetObject",
                            origin,
                            e.to_string(),
                        )
                        .with_source(e)),
                        None,
                    )),
                    None => None,
                }
            }
        });
        Ok(GetOutput {
            attributes,
            body: stream.boxed(),
        })
    }

    async fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        request: &RestoreRequest,
    ) -> Result<RestoreStatus, StoreError> {
        use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest as SdkRestore, Tier};
        let tier = match request.tier {
            RestoreTier::Expedited => Tier::Expedited,
            RestoreTier::Standard => Tier::Standard,
            RestoreTier::Bulk => Tier::Bulk,
        };
        let job = GlacierJobParameters::builder()
            .tier(tier)
            .build()
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Config,
                    "RestoreObject",
                    target(bucket, Some(key)),
                    e.to_string(),
                )
            })?;
        let restore = SdkRestore::builder()
            .days(i32::try_from(request.days).unwrap_or(i32::MAX))
            .glacier_job_parameters(job)
            .build();
        match self
            .client
            .restore_object()
            .bucket(bucket)
            .key(key)
            .restore_request(restore)
            .send()
            .await
        {
            // S3 answers 202 for a started restore and 200 when a restored copy exists; the SDK
            // hides the status, and both mean "HEAD again later".
            Ok(_) => Ok(RestoreStatus::Started),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => Ok(RestoreStatus::InProgress),
            Err(e) => Err(sdk_error("RestoreObject", bucket, Some(key), e)),
        }
    }

    async fn symlink_target(
        &self,
        _bucket: &str,
        _key: &str,
    ) -> Result<Option<String>, StoreError> {
        // S3 has no symbolic links.
        Ok(None)
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
            call = call.storage_class(StorageClass::from(class.as_str()));
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

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        checksums: BodyChecksums,
        request: &WriteRequest,
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
        let output = apply_write_request!(call, request)
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", bucket, Some(key), e))?;
        Ok(WriteOutput {
            etag: output.e_tag().unwrap_or_default().to_owned(),
        })
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> Result<String, StoreError> {
        let call = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_type(ChecksumType::FullObject);
        let output = apply_write_request!(call, request)
            .send()
            .await
            .map_err(|e| sdk_error("CreateMultipartUpload", bucket, Some(key), e))?;
        output.upload_id().map(str::to_owned).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::InvalidResponse,
                "CreateMultipartUpload",
                target(bucket, Some(key)),
                "the answer has no UploadId",
            )
        })
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
        let output = self
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
            .checksum_crc64_nvme(checksum_b64(whole.crc64_nvme))
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
            let page = self
                .client
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .customize()
                .interceptor(ListPartsRootFix)
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

/// Accepts `ListPartsResponse` as the root element of a ListParts answer, as moto (5.x) sends it;
/// S3 sends `ListPartsResult`, which the SDK requires. Applied to ListParts calls only, whose
/// answers are small XML documents, so buffering the body is harmless.
#[derive(Debug)]
struct ListPartsRootFix;

impl aws_sdk_s3::config::Intercept for ListPartsRootFix {
    fn name(&self) -> &'static str {
        "ListPartsRootFix"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), Box<dyn StdError + Send + Sync>> {
        use aws_sdk_s3::primitives::SdkBody;
        let response = context.response_mut();
        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
        let fixed = futures::stream::once(async move {
            let bytes = http_body_util::BodyExt::collect(body).await?.to_bytes();
            let bytes = match std::str::from_utf8(&bytes) {
                Ok(text) if text.contains("<ListPartsResponse") => Bytes::from(
                    text.replacen("<ListPartsResponse", "<ListPartsResult", 1)
                        .replacen("</ListPartsResponse>", "</ListPartsResult>", 1),
                ),
                _ => bytes,
            };
            Ok::<_, Box<dyn StdError + Send + Sync>>(http_body::Frame::data(bytes))
        });
        response.headers_mut().remove("content-length");
        *response.body_mut() = SdkBody::from_body_1_x(http_body_util::StreamBody::new(fixed));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `requests` HTTP requests on 127.0.0.1 with 200 and an ETag, one per connection,
    /// and returns the request heads (lower-cased) in order.
    async fn recording_server(requests: usize) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let mut heads = Vec::new();
            for _ in 0..requests {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut data = Vec::new();
                let mut buf = [0u8; 64 * 1024];
                let head_end = loop {
                    let n = socket.read(&mut buf).await.expect("read");
                    assert!(n > 0, "connection closed mid-request");
                    data.extend_from_slice(&buf[..n]);
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().expect("content-length"));
                while data.len() < head_end + len {
                    let n = socket.read(&mut buf).await.expect("read body");
                    assert!(n > 0, "connection closed mid-body");
                    data.extend_from_slice(&buf[..n]);
                }
                socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await
                    .expect("answer");
                heads.push(head);
            }
            heads
        });
        (url, server)
    }

    #[tokio::test]
    async fn uploads_are_not_hashed_for_the_signature_but_carry_their_crc() {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
        let (url, server) = recording_server(2).await;
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "ak", "sk", None, None, "test",
            )))
            .build();
        let store = S3Store::from_sdk_config(&sdk);
        let body = Bytes::from(vec![7u8; 100_000]);
        let checksums = BodyChecksums::of(&body);
        let request = WriteRequest::default();
        store
            .put_object("b", "k", body.clone(), checksums, &request)
            .await
            .expect("put");
        store
            .upload_part("b", "k", "u", 1, body, checksums)
            .await
            .expect("upload part");
        let heads = server.await.expect("server");
        let crc = checksum_b64(checksums.crc64_nvme).to_lowercase();
        for head in &heads {
            assert!(
                head.contains("x-amz-content-sha256: unsigned-payload"),
                "payload was hashed: {head}"
            );
            assert!(
                head.contains(&format!("x-amz-checksum-crc64nvme: {crc}")),
                "no CRC-64/NVME header: {head}"
            );
            let authorization = head
                .lines()
                .find(|l| l.starts_with("authorization:"))
                .expect("the request is signed");
            assert!(
                authorization.contains("x-amz-checksum-crc64nvme"),
                "the CRC header is not signed: {authorization}"
            );
        }
    }

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
    fn glacier_restore_header_sets_archive_state() {
        let glacier = StorageClass::Glacier;
        assert_eq!(archive_state(Some(&glacier), None), ArchiveState::Archived);
        assert_eq!(
            archive_state(Some(&glacier), Some("ongoing-request=\"true\"")),
            ArchiveState::Restoring
        );
        assert_eq!(
            archive_state(
                Some(&glacier),
                Some("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"")
            ),
            ArchiveState::Restored
        );
        assert_eq!(
            archive_state(Some(&StorageClass::StandardIa), None),
            ArchiveState::Online
        );
    }

    #[test]
    fn checksum_header_is_base64_of_big_endian_bytes() {
        assert_eq!(checksum_b64(0), "AAAAAAAAAAA=");
        assert_eq!(checksum_b64(0x0102_0304_0506_0708), "AQIDBAUGBwg=");
    }
}
