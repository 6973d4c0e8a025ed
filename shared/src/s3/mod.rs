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
//! Read, HeadObject asks for checksums (`x-amz-checksum-mode: ENABLED`), and the attributes
//! carry what lets the engine verify the bytes it copies out of S3:
//! - the full-object CRC-64/NVME (`x-amz-checksum-type: FULL_OBJECT`), which S3 keeps for
//!   every object uploaded without another checksum since December 2024, in one PUT or in
//!   parts;
//! - else the MD5 the ETag is, for an object of one PUT (no `-N` suffix) without SSE-KMS or
//!   SSE-C, whose ETags are not MD5s.
//!
//! Objects with only a composite checksum (per part, `…-N`) or another algorithm (CRC-32,
//! CRC-32C, SHA-1, SHA-256), and multipart objects without one, have neither; the engine then
//! copies them without a whole-object check on the S3 side (the OSS side still checks its
//! CRC-64 of what it stored against the bytes sent). GETs do not ask for checksums: ranged
//! GETs get none, and the HEAD before the copy has them already.
//!
//! # Payload signing
//! PutObject and UploadPart bodies are sent with `x-amz-content-sha256: UNSIGNED-PAYLOAD`: the
//! signature covers the headers, including the CRC-64/NVME that S3 checks the body against, but
//! not a SHA-256 of the body. Hashing every byte with SHA-256 only for the signature was the
//! largest CPU cost of a copy (more than half of the copy path's instructions in a profile).
//!
//! # Storage classes
//! | S3 | neutral |
//! |---|---|
//! | `STANDARD` | [`StorageClass::Standard`] |
//! | `REDUCED_REDUNDANCY` | [`StorageClass::ReducedRedundancy`] |
//! | `STANDARD_IA` | [`StorageClass::InfrequentAccess`] |
//! | `ONEZONE_IA` | [`StorageClass::OneZoneInfrequentAccess`] |
//! | `INTELLIGENT_TIERING` | [`StorageClass::IntelligentTiering`] |
//! | `GLACIER_IR` | [`StorageClass::InstantRetrievalArchive`] |
//! | `GLACIER` | [`StorageClass::Archive`] |
//! | `DEEP_ARCHIVE` | [`StorageClass::DeepArchive`] (and [`StorageClass::ColdArchive`] when writing) |
//! | `EXPRESS_ONEZONE` | [`StorageClass::ExpressOneZone`] |
//! | anything else | [`StorageClass::Other`], spelled as S3 does |

mod compat;
mod error;
mod sink;

use std::collections::BTreeMap;

use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::StorageClass as S3Class;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;

pub use compat::S3Compat;
use error::{sdk_error, target};

use crate::retry::RetryPolicy;
use crate::store::{
    ArchiveState, ContentHeaders, GetOutput, GetRequest, ListPage, ListRequest, ListedObject,
    ObjectAttributes, ObjectKind, ObjectSink, ObjectSource, ObjectStore, PartLimits,
    RestoreArchived, RestoreRequest, RestoreStatus, RestoreTier, StorageClass, StoreError,
    StoreErrorKind, Unsupported, unquote_etag,
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
    compat: S3Compat,
}

impl S3Store {
    /// A store on `client`, with S3's limits.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self {
            client,
            limits: PartLimits::S3,
            compat: S3Compat::Aws,
        }
    }

    /// A store with a client built from `sdk` by [`s3_config`].
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_s3::Client::from_conf(s3_config(sdk)))
    }

    /// The same store, working around the quirks of the S3-compatible server `compat` names.
    /// Only tests and local stacks need anything but [`S3Compat::Aws`].
    #[must_use]
    pub fn with_compat(mut self, compat: S3Compat) -> Self {
        self.compat = compat;
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The client's own retry settings as a [`RetryPolicy`], for the calls this store retries
    /// itself.
    fn sdk_retry_policy(&self) -> RetryPolicy {
        let config = self.client.config().retry_config();
        let standard = aws_sdk_s3::config::retry::RetryConfig::standard();
        let config = config.unwrap_or(&standard);
        RetryPolicy::new(
            config.max_attempts(),
            config.initial_backoff(),
            config.max_backoff(),
        )
    }

    /// Aborts the uploads of exactly `key` that S3 says were initiated at or after `since`
    /// (less [`CLOCK_SLACK`], for the difference between this machine's clock and S3's): the
    /// ones a CreateMultipartUpload sent at `since`, whose answer was lost, may have created.
    /// Returns how many it aborted.
    ///
    /// An upload that another delivery of the same key created in the same seconds is aborted
    /// too; that copy then fails with `NoSuchUpload` and is retried, which costs time but
    /// never a wrong object. moto reports one fixed `Initiated` time for every upload, so on
    /// [`S3Compat::Moto`] every upload of the key counts.
    pub(crate) async fn abort_uploads_since(
        &self,
        bucket: &str,
        key: &str,
        since: std::time::SystemTime,
    ) -> Result<usize, StoreError> {
        let since = DateTime::<Utc>::from(since) - CLOCK_SLACK;
        let mut markers: (Option<String>, Option<String>) = (None, None);
        let mut aborted = 0;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(key)
                .set_key_marker(markers.0.clone())
                .set_upload_id_marker(markers.1.clone())
                .send()
                .await
                .map_err(|e| sdk_error("ListMultipartUploads", bucket, Some(key), e))?;
            for upload in page.uploads() {
                let recent = match self.compat {
                    S3Compat::Moto => true,
                    S3Compat::Aws => upload
                        .initiated()
                        .and_then(to_chrono)
                        .is_none_or(|initiated| initiated >= since),
                };
                let (Some(id), true) = (upload.upload_id(), upload.key() == Some(key) && recent)
                else {
                    continue;
                };
                self.abort_multipart_upload(bucket, key, id).await?;
                tracing::warn!(
                    bucket,
                    key,
                    upload_id = id,
                    "aborted an upload that a CreateMultipartUpload whose answer was lost may have created"
                );
                aborted += 1;
            }
            let next = (
                page.next_key_marker().map(str::to_owned),
                page.next_upload_id_marker().map(str::to_owned),
            );
            if page.is_truncated() != Some(true) || next == markers || next.0.is_none() {
                return Ok(aborted);
            }
            markers = next;
        }
    }
}

/// How far this machine's clock may be from S3's when it looks for uploads by their
/// `Initiated` time. Lambda and S3 both keep NTP time; S3 refuses requests signed more than 15
/// minutes off, but anything near that is a broken clock, not a difference to allow for.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(15);

/// The neutral class of an S3 storage class.
pub fn neutral_class(class: &S3Class) -> StorageClass {
    match class {
        S3Class::Standard => StorageClass::Standard,
        S3Class::ReducedRedundancy => StorageClass::ReducedRedundancy,
        S3Class::StandardIa => StorageClass::InfrequentAccess,
        S3Class::OnezoneIa => StorageClass::OneZoneInfrequentAccess,
        S3Class::IntelligentTiering => StorageClass::IntelligentTiering,
        S3Class::GlacierIr => StorageClass::InstantRetrievalArchive,
        S3Class::Glacier => StorageClass::Archive,
        S3Class::DeepArchive => StorageClass::DeepArchive,
        S3Class::ExpressOnezone => StorageClass::ExpressOneZone,
        other => StorageClass::Other(other.as_str().to_owned()),
    }
}

/// The S3 storage class for a neutral class.
pub fn s3_class(class: &StorageClass) -> S3Class {
    match class {
        StorageClass::Standard => S3Class::Standard,
        StorageClass::ReducedRedundancy => S3Class::ReducedRedundancy,
        StorageClass::InfrequentAccess => S3Class::StandardIa,
        StorageClass::OneZoneInfrequentAccess => S3Class::OnezoneIa,
        StorageClass::IntelligentTiering => S3Class::IntelligentTiering,
        StorageClass::InstantRetrievalArchive => S3Class::GlacierIr,
        StorageClass::Archive => S3Class::Glacier,
        StorageClass::ColdArchive | StorageClass::DeepArchive => S3Class::DeepArchive,
        StorageClass::ExpressOneZone => S3Class::ExpressOnezone,
        StorageClass::Other(name) => S3Class::from(name.as_str()),
    }
}

fn to_chrono(time: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

/// The archive state from the storage class and the `x-amz-restore` header.
fn archive_state(storage_class: Option<&S3Class>, restore: Option<&str>) -> ArchiveState {
    let archived = matches!(storage_class, Some(S3Class::Glacier | S3Class::DeepArchive));
    if !archived {
        return ArchiveState::Online;
    }
    match restore {
        Some(r) if r.contains("ongoing-request=\"true\"") => ArchiveState::Restoring,
        Some(r) if r.contains("ongoing-request=\"false\"") => ArchiveState::Restored,
        _ => ArchiveState::Archived,
    }
}

/// S3 has no object types, but a multipart object's ETag ends in `-<parts>`.
fn kind_of(etag: &str) -> ObjectKind {
    if crate::store::unquote_etag(etag).contains('-') {
        ObjectKind::Multipart
    } else {
        ObjectKind::Normal
    }
}

/// A full-object CRC-64/NVME from its header (base64 of 8 big-endian bytes); `None` for a
/// composite checksum (`…-N`) or anything malformed.
fn full_object_crc64_nvme(
    value: Option<&str>,
    kind: Option<&aws_sdk_s3::types::ChecksumType>,
) -> Option<u64> {
    if matches!(kind, Some(k) if *k != aws_sdk_s3::types::ChecksumType::FullObject) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value?)
        .ok()?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The MD5 an ETag is: a single-part object's (32 hex digits) that is not encrypted with
/// SSE-KMS (or DSSE-KMS) or SSE-C, whose ETags are something else.
fn md5_etag(
    etag: &str,
    sse: Option<&aws_sdk_s3::types::ServerSideEncryption>,
    sse_customer: Option<&str>,
) -> Option<[u8; 16]> {
    use aws_sdk_s3::types::ServerSideEncryption as Sse;
    if sse_customer.is_some() || matches!(sse, Some(s) if *s != Sse::Aes256) {
        return None;
    }
    let hex_digits = unquote_etag(etag);
    if hex_digits.len() != 32 {
        return None;
    }
    hex::decode(hex_digits).ok()?.try_into().ok()
}

fn checksum_b64(value: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_be_bytes())
}

macro_rules! attributes_from {
    ($output:expr) => {{
        let o = $output;
        let etag = o.e_tag().unwrap_or_default().to_owned();
        ObjectAttributes {
            size: o
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            kind: kind_of(&etag),
            crc64: None,
            crc64_nvme: full_object_crc64_nvme(o.checksum_crc64_nvme(), o.checksum_type()),
            content_md5: md5_etag(
                &etag,
                o.server_side_encryption(),
                o.sse_customer_algorithm(),
            ),
            etag,
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
            // S3 leaves the header out for STANDARD objects.
            storage_class: Some(
                o.storage_class()
                    .map_or(StorageClass::Standard, neutral_class),
            ),
            archive: archive_state(o.storage_class(), o.restore()),
            last_modified: o.last_modified().and_then(to_chrono),
        }
    }};
}

impl ObjectStore for S3Store {
    type Restore = Self;
    type Symlinks = Unsupported;

    fn scheme(&self) -> &'static str {
        "s3"
    }

    fn archive_restore(&self) -> Option<&Self> {
        Some(self)
    }

    fn symlinks(&self) -> Option<&Unsupported> {
        None
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectAttributes, StoreError> {
        let output = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| sdk_error("HeadObject", bucket, Some(key), e))?;
        Ok(attributes_from!(&output))
    }

    /// With `if_match`, S3 deletes only while the object has that ETag: 412 otherwise, and 404
    /// `NoSuchKey` when it is already gone, which counts as deleted
    /// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html>; the
    /// caller needs `s3:GetObject` as well as `s3:DeleteObject`).
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(if_match.map(|etag| format!("\"{}\"", unquote_etag(etag))))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = sdk_error("DeleteObject", bucket, Some(key), e);
                if if_match.is_some() && error.is_not_found() {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&request.prefix)
            .set_start_after(request.start_after.clone())
            .set_continuation_token(request.continuation.clone())
            // Keys travel URL-encoded: XML 1.0 cannot carry every character a key may hold
            // (U+0001 to U+001F but TAB, LF and CR), and a parser would reject the whole page.
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .max_keys(
                i32::try_from(request.max_keys.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000),
            )
            .send()
            .await
            .map_err(|e| sdk_error("ListObjectsV2", bucket, None, e))?;
        let next = match (output.is_truncated(), output.next_continuation_token()) {
            (Some(true), Some(token)) => Some(token.to_owned()),
            (Some(true), None) => {
                return Err(StoreError::new(
                    StoreErrorKind::InvalidResponse,
                    "ListObjectsV2",
                    target(bucket, None),
                    "a truncated page has no NextContinuationToken",
                ));
            }
            _ => None,
        };
        let encoded = output.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
        let objects = output
            .contents()
            .iter()
            .map(|o| {
                let key = o.key().unwrap_or_default();
                let key = if encoded {
                    url_decoded_key(key).map_err(|reason| {
                        StoreError::new(
                            StoreErrorKind::InvalidResponse,
                            "ListObjectsV2",
                            target(bucket, None),
                            reason,
                        )
                    })?
                } else {
                    key.to_owned()
                };
                Ok(ListedObject {
                    key,
                    size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    etag: o.e_tag().unwrap_or_default().to_owned(),
                    last_modified: o.last_modified().and_then(to_chrono),
                    storage_class: o
                        .storage_class()
                        .map(|c| neutral_class(&S3Class::from(c.as_str()))),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(ListPage { objects, next })
    }
}

/// A key from a listing made with `encoding-type=url`: S3 form-encodes it (a space may come
/// as `+`, a `+` always as `%2B`), so `+` is a space and `%XX` a byte.
fn url_decoded_key(key: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(&key.replace('+', " "))
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| format!("a listed key is not UTF-8 once decoded: {key:?}"))
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
        } else {
            // A whole-object GET answers with the checksums a HEAD would (the copy of a small
            // object reads no HEAD), and the SDK checks the body against them as it streams.
            call = call.checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
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
}

impl RestoreArchived for S3Store {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BodyChecksums, ObjectSink, WriteCondition, WriteRequest};

    #[test]
    fn url_encoded_listing_keys_decode_as_s3_and_moto_encode_them() {
        // S3 form-encodes (a space as `+`); moto percent-encodes (`%20`); both send `+` as `%2B`.
        for (listed, key) in [
            ("a+b", "a b"),
            ("a%20b", "a b"),
            ("a%2Bb", "a+b"),
            ("a%252Bb", "a%2Bb"),
            ("bell%07", "bell\u{7}"),
            ("%E6%96%87/x", "文/x"),
            ("dir/file", "dir/file"),
        ] {
            assert_eq!(url_decoded_key(listed).as_deref(), Ok(key), "{listed}");
        }
        assert!(url_decoded_key("%FF").is_err());
    }

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
                let mut buf = vec![0u8; 64 * 1024];
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
            .put_object(
                "b",
                "k",
                body.clone(),
                checksums,
                &request,
                &WriteCondition::None,
            )
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
    fn glacier_restore_header_sets_archive_state() {
        let glacier = S3Class::Glacier;
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
            archive_state(Some(&S3Class::StandardIa), None),
            ArchiveState::Online
        );
    }

    #[test]
    fn heads_yield_a_full_object_crc64_nvme_and_md5_etags_only_where_they_are_ones() {
        use aws_sdk_s3::types::{ChecksumType, ServerSideEncryption as Sse};
        let value = checksum_b64(0x0102_0304_0506_0708);
        assert_eq!(
            full_object_crc64_nvme(Some(&value), None),
            Some(0x0102_0304_0506_0708)
        );
        assert_eq!(
            full_object_crc64_nvme(Some(&value), Some(&ChecksumType::FullObject)),
            Some(0x0102_0304_0506_0708)
        );
        assert_eq!(
            full_object_crc64_nvme(Some(&value), Some(&ChecksumType::Composite)),
            None
        );
        assert_eq!(
            full_object_crc64_nvme(Some("AQID"), None),
            None,
            "not 8 bytes"
        );
        assert_eq!(full_object_crc64_nvme(Some("!!"), None), None);
        assert_eq!(full_object_crc64_nvme(None, None), None);

        let etag = "\"d41d8cd98f00b204e9800998ecf8427e\"";
        let md5 = hex::decode("d41d8cd98f00b204e9800998ecf8427e").unwrap();
        assert_eq!(md5_etag(etag, None, None).map(Vec::from), Some(md5.clone()));
        assert_eq!(
            md5_etag(etag, Some(&Sse::Aes256), None).map(Vec::from),
            Some(md5)
        );
        assert_eq!(md5_etag(etag, Some(&Sse::AwsKms), None), None);
        assert_eq!(md5_etag(etag, Some(&Sse::AwsKmsDsse), None), None);
        assert_eq!(md5_etag(etag, None, Some("AES256")), None, "SSE-C");
        assert_eq!(
            md5_etag("\"d41d8cd98f00b204e9800998ecf8427e-2\"", None, None),
            None
        );
        assert_eq!(
            md5_etag("\"not-hex-not-hex-not-hex-not-hex!\"", None, None),
            None
        );
    }

    #[test]
    fn checksum_header_is_base64_of_big_endian_bytes() {
        assert_eq!(checksum_b64(0), "AAAAAAAAAAA=");
        assert_eq!(checksum_b64(0x0102_0304_0506_0708), "AQIDBAUGBwg=");
    }

    #[test]
    fn storage_classes_round_trip_through_the_neutral_names() {
        for class in [
            S3Class::Standard,
            S3Class::ReducedRedundancy,
            S3Class::StandardIa,
            S3Class::OnezoneIa,
            S3Class::IntelligentTiering,
            S3Class::GlacierIr,
            S3Class::Glacier,
            S3Class::DeepArchive,
            S3Class::ExpressOnezone,
            S3Class::from("SNOW"),
        ] {
            assert_eq!(s3_class(&neutral_class(&class)), class);
        }
    }

    #[test]
    fn multipart_etags_mark_multipart_objects() {
        assert_eq!(kind_of("\"abc-3\""), ObjectKind::Multipart);
        assert_eq!(kind_of("\"abc\""), ObjectKind::Normal);
    }
}
