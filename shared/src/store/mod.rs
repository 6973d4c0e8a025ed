//! The seam between the copy engine and object stores: direction-neutral traits and types.
//!
//! Every store implements [`ObjectStore`] (HEAD, DELETE). A store that can be read from also
//! implements [`ObjectSource`] (ranged GET pinned by `If-Match`, restore, symlinks); a store that
//! can be written to implements [`ObjectSink`] (PUT and multipart uploads). Today
//! [`OssClient`](crate::oss::OssClient) is a source and [`S3Store`] a sink (and a source); the
//! reverse direction adds the other two implementations without touching the engine.
//!
//! The traits use `-> impl Future + Send` rather than `async-trait`: the engine is generic over
//! its stores, so no boxing or dynamic dispatch is needed.

mod oss;
pub mod s3;

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

pub use crate::oss::ContentHeaders;
pub use s3::{S3Store, s3_config};

/// A boxed error, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A streamed object body. It ends with an error (never silently short) when the transfer
/// breaks.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// Whether an object can be read now, or must be restored from an archive tier first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchiveState {
    /// Not archived: readable.
    #[default]
    Online,
    /// Archived and not restored: a restore must be requested before it can be read.
    Archived,
    /// Archived, and a restore is running.
    Restoring,
    /// Archived, with a readable restored copy.
    Restored,
}

impl ArchiveState {
    /// Whether the object's bytes can be read now.
    pub fn is_readable(self) -> bool {
        matches!(self, Self::Online | Self::Restored)
    }
}

/// An object's attributes, as a HEAD (or the headers of a GET) reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectAttributes {
    /// The whole object's size in bytes.
    pub size: u64,
    /// The ETag exactly as the store sent it (quoted); use it for `If-Match`.
    pub etag: String,
    /// The CRC-64/XZ of the object, when the store reports one (OSS always does).
    pub crc64: Option<u64>,
    /// The standard content headers.
    pub content: ContentHeaders,
    /// User metadata, names without the store's prefix (`x-oss-meta-`, `x-amz-meta-`).
    pub user_metadata: BTreeMap<String, String>,
    /// The storage class in the store's own spelling (`IA`, `STANDARD_IA`, …), when reported.
    pub storage_class: Option<String>,
    /// The store's object type, when it has one (OSS: `Normal`, `Multipart`, `Appendable`,
    /// `Symlink`).
    pub object_type: Option<String>,
    /// Whether the object must be restored before it can be read.
    pub archive: ArchiveState,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
}

impl ObjectAttributes {
    /// The ETag without quotes (and without a weak `W/` marker).
    pub fn etag_unquoted(&self) -> &str {
        crate::oss::meta::unquote_etag(&self.etag)
    }

    /// Whether the object is a symbolic link (its HEAD and GET describe the target's bytes).
    pub fn is_symlink(&self) -> bool {
        self.object_type.as_deref() == Some("Symlink")
    }
}

/// What to read with [`ObjectSource::get_object`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetRequest {
    /// Only these bytes (half-open, must not be empty); the whole object when `None`.
    pub range: Option<Range<u64>>,
    /// Only if the ETag still equals this (quoted, as HEAD returned it); otherwise
    /// [`StoreErrorKind::PreconditionFailed`].
    pub if_match: Option<String>,
}

/// The answer to [`ObjectSource::get_object`].
pub struct GetOutput {
    /// The object's attributes (`size` is the whole object's, also for ranged reads).
    pub attributes: ObjectAttributes,
    /// The requested bytes.
    pub body: ByteStream,
}

impl fmt::Debug for GetOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetOutput")
            .field("attributes", &self.attributes)
            .finish_non_exhaustive()
    }
}

/// How fast an archived object should be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestoreTier {
    /// The fastest and most expensive tier.
    Expedited,
    /// The default tier.
    #[default]
    Standard,
    /// The slowest and cheapest tier.
    Bulk,
}

/// What [`ObjectSource::restore_object`] should ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreRequest {
    /// How many days the restored copy stays readable.
    pub days: u32,
    /// The retrieval tier; stores apply it where their archive class supports tiers.
    pub tier: RestoreTier,
}

/// What a restore request achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreStatus {
    /// A restore was started.
    Started,
    /// A restore was already running.
    InProgress,
    /// The object is already restored (and readable).
    Restored,
}

/// Server-side encryption for written objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// Store-managed keys (`AES256` on S3).
    Aes256,
    /// A KMS key (`aws:kms` on S3); the store's default key when `key_id` is `None`.
    Kms {
        /// The KMS key ID or ARN.
        key_id: Option<String>,
    },
}

/// The attributes of an object to write ([`ObjectSink::put_object`],
/// [`ObjectSink::create_multipart_upload`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteRequest {
    /// The content headers to store.
    pub content: ContentHeaders,
    /// User metadata, names without the store's prefix.
    pub user_metadata: BTreeMap<String, String>,
    /// The storage class in the sink's own spelling; the bucket's default when `None`.
    pub storage_class: Option<String>,
    /// Server-side encryption; the bucket's default when `None`.
    pub encryption: Option<Encryption>,
}

/// Checksums of a body (a single PUT, a part, or a whole multipart object), computed by the
/// caller over the bytes it sends. Each sink sends the one its service verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyChecksums {
    /// CRC-64/XZ (OSS's `x-oss-hash-crc64ecma`).
    pub crc64_xz: u64,
    /// CRC-64/NVME (S3's `x-amz-checksum-crc64nvme`).
    pub crc64_nvme: u64,
    /// The number of bytes the checksums cover.
    pub len: u64,
}

impl BodyChecksums {
    /// The checksums of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            crc64_xz: crate::crc64::checksum(bytes),
            crc64_nvme: crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, bytes),
            len: bytes.len() as u64,
        }
    }

    /// The checksums of no bytes.
    pub fn empty() -> Self {
        Self {
            crc64_xz: 0,
            crc64_nvme: 0,
            len: 0,
        }
    }

    /// The checksums of `self ++ next`: how the checksums of parts become the whole object's.
    pub fn then(self, next: Self) -> Self {
        if next.len == 0 {
            return self;
        }
        Self {
            crc64_xz: crate::crc64::combine(self.crc64_xz, next.crc64_xz, next.len),
            crc64_nvme: crc_fast::checksum_combine(
                crc_fast::CrcAlgorithm::Crc64Nvme,
                self.crc64_nvme,
                next.crc64_nvme,
                next.len,
            ),
            len: self.len + next.len,
        }
    }
}

/// The answer to a write (PUT or CompleteMultipartUpload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutput {
    /// The new object's ETag as the store sent it.
    pub etag: String,
}

/// A part the store holds for a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// The part number, from 1.
    pub part_number: u32,
    /// The part's ETag as the store sent it.
    pub etag: String,
    /// The part's size in bytes.
    pub size: u64,
}

/// A part to name in [`ObjectSink::complete_multipart_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// The part number, from 1.
    pub part_number: u32,
    /// The ETag the upload of the part returned.
    pub etag: String,
    /// The part's checksums.
    pub checksums: BodyChecksums,
}

/// A sink's size limits for single and multipart writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    /// The smallest part but the last, in bytes.
    pub min_part_size: u64,
    /// The largest part, in bytes.
    pub max_part_size: u64,
    /// The most parts one upload may have.
    pub max_parts: u32,
    /// The largest object a single PUT may write, in bytes.
    pub max_single_put: u64,
    /// The largest object, in bytes.
    pub max_object_size: u64,
    /// The largest user metadata (names and values, UTF-8 bytes), if the sink limits it.
    pub max_user_metadata: Option<usize>,
    /// The longest key, in UTF-8 bytes.
    pub max_key_len: usize,
}

impl PartLimits {
    /// Amazon S3's limits: parts of 5 MiB to 5 GiB, at most 10,000 of them; objects up to 5 TiB,
    /// a single PUT up to 5 GiB; user metadata up to 2 KB; keys up to 1,024 bytes.
    pub const S3: Self = Self {
        min_part_size: 5 * MIB,
        max_part_size: 5 * GIB,
        max_parts: 10_000,
        max_single_put: 5 * GIB,
        max_object_size: 5 * 1024 * GIB,
        max_user_metadata: Some(2 * 1024),
        max_key_len: 1024,
    };

    /// Alibaba Cloud OSS's limits: parts of 100 KB to 5 GiB, at most 10,000; single PUT up to
    /// 5 GiB; objects up to 48.8 TB; user metadata up to 8 KB; keys up to 1,023 bytes.
    pub const OSS: Self = Self {
        min_part_size: 100 * 1024,
        max_part_size: 5 * GIB,
        max_parts: 10_000,
        max_single_put: 5 * GIB,
        max_object_size: 48_800_000_000_000,
        max_user_metadata: Some(8 * 1024),
        max_key_len: 1023,
    };
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

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
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets how long the store asked the client to wait.
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

/// Operations every store offers.
pub trait ObjectStore: Send + Sync {
    /// A short name of the store for URLs in logs and metadata: `oss` or `s3`.
    fn scheme(&self) -> &'static str;

    /// HeadObject: the object's attributes, or [`StoreErrorKind::NotFound`].
    fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<ObjectAttributes, StoreError>> + Send;

    /// DeleteObject. Succeeds also when the object does not exist.
    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A store objects are copied from.
pub trait ObjectSource: ObjectStore {
    /// GetObject: the attributes and a streamed body, optionally a range pinned by `If-Match`.
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        request: &GetRequest,
    ) -> impl Future<Output = Result<GetOutput, StoreError>> + Send;

    /// Requests that an archived object be made readable.
    fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        request: &RestoreRequest,
    ) -> impl Future<Output = Result<RestoreStatus, StoreError>> + Send;

    /// The key a symbolic link points to, or `None` when the object is not a link.
    fn symlink_target(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// A store objects are copied to.
pub trait ObjectSink: ObjectStore {
    /// The store's size limits.
    fn limits(&self) -> PartLimits;

    /// PutObject with an in-memory body whose checksums the caller computed.
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        checksums: BodyChecksums,
        request: &WriteRequest,
    ) -> impl Future<Output = Result<WriteOutput, StoreError>> + Send;

    /// CreateMultipartUpload: returns the upload ID.
    fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// UploadPart with an in-memory body whose checksums the caller computed.
    fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        checksums: BodyChecksums,
    ) -> impl Future<Output = Result<PartInfo, StoreError>> + Send;

    /// CompleteMultipartUpload with `parts` (in part-number order) and the whole object's
    /// checksums.
    fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        whole: BodyChecksums,
    ) -> impl Future<Output = Result<WriteOutput, StoreError>> + Send;

    /// AbortMultipartUpload: discards the upload and its parts. Succeeds when the upload is
    /// already gone.
    fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// ListParts: the parts the upload holds, in part-number order.
    fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Vec<PartInfo>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_part_checksums_equal_whole_checksums() {
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 7 % 253) as u8).collect();
        let whole = BodyChecksums::of(&data);
        let combined = data
            .chunks(65_536)
            .map(BodyChecksums::of)
            .fold(BodyChecksums::empty(), BodyChecksums::then);
        assert_eq!(combined, whole);
        assert_eq!(whole.then(BodyChecksums::empty()), whole);
    }

    #[test]
    fn crc64_nvme_matches_the_published_check_value() {
        // CRC-64/NVME check value for "123456789".
        assert_eq!(
            BodyChecksums::of(b"123456789").crc64_nvme,
            0xAE8B_1486_0A79_9888
        );
    }

    #[test]
    fn only_transient_kinds_are_retryable() {
        assert!(StoreErrorKind::Throttled.is_retryable());
        assert!(StoreErrorKind::Unavailable.is_retryable());
        assert!(!StoreErrorKind::NotFound.is_retryable());
        assert!(!StoreErrorKind::PreconditionFailed.is_retryable());
        assert!(!StoreErrorKind::MetadataTooLarge.is_retryable());
    }
}
