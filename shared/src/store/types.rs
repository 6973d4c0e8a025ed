//! The neutral vocabulary of the seam: what an object is, what to read and write, and the
//! limits of a store. Nothing here knows OSS or S3; each store maps its own spelling onto it.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Utc};

use super::error::StoreError;
use crate::size::{GIB, MIB};

/// A streamed object body. It ends with an error (never silently short) when the transfer
/// breaks.
pub type ByteStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>>;

/// The standard content headers that travel with an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentHeaders {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`, as sent (OSS keeps it as text; S3 as an HTTP date).
    pub expires: Option<String>,
}

impl ContentHeaders {
    /// The headers that are set, as (lower-case HTTP header name, value) pairs.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("content-type", &self.content_type),
            ("content-encoding", &self.content_encoding),
            ("content-disposition", &self.content_disposition),
            ("content-language", &self.content_language),
            ("cache-control", &self.cache_control),
            ("expires", &self.expires),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// An ETag without surrounding quotes (and without a weak `W/` marker), as OSS trigger events
/// and S3 event notifications spell it.
pub fn unquote_etag(etag: &str) -> &str {
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

/// Whether two ETags name the same version, ignoring quotes and hex case.
pub fn same_etag(a: &str, b: &str) -> bool {
    unquote_etag(a).eq_ignore_ascii_case(unquote_etag(b))
}

/// How an object was written, which says what its ETag means and how it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ObjectKind {
    /// Written in one request (PutObject, CopyObject); the ETag is usually the body's MD5.
    #[default]
    Normal,
    /// Written by a multipart upload; the ETag is opaque.
    Multipart,
    /// Written by appends (OSS AppendObject); it may still grow.
    Appendable,
    /// A symbolic link: HEAD and GET describe the target's bytes (OSS symlinks).
    Symlink,
}

impl ObjectKind {
    /// A stable name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Multipart => "Multipart",
            Self::Appendable => "Appendable",
            Self::Symlink => "Symlink",
        }
    }
}

/// A storage class, named by what it does rather than by one service's spelling. Each store maps
/// its own classes onto these and back (see the store's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StorageClass {
    /// Frequently read data: S3 `STANDARD`, OSS `Standard`.
    #[default]
    Standard,
    /// S3 `REDUCED_REDUNDANCY`.
    ReducedRedundancy,
    /// Infrequent access: S3 `STANDARD_IA`, OSS `IA`.
    InfrequentAccess,
    /// Infrequent access in one zone: S3 `ONEZONE_IA`.
    OneZoneInfrequentAccess,
    /// S3 `INTELLIGENT_TIERING`.
    IntelligentTiering,
    /// An archive that reads without a restore: S3 `GLACIER_IR`.
    InstantRetrievalArchive,
    /// An archive that must be restored before it is read: S3 `GLACIER`, OSS `Archive`.
    Archive,
    /// A colder archive, restored in hours: OSS `ColdArchive`.
    ColdArchive,
    /// The coldest archive: S3 `DEEP_ARCHIVE`, OSS `DeepColdArchive`.
    DeepArchive,
    /// S3 `EXPRESS_ONEZONE`.
    ExpressOneZone,
    /// A class this crate does not know, spelled as the store sent it.
    Other(String),
}

impl StorageClass {
    /// A stable name, for logs and messages (the store's spelling for [`Self::Other`]).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Standard => "Standard",
            Self::ReducedRedundancy => "ReducedRedundancy",
            Self::InfrequentAccess => "InfrequentAccess",
            Self::OneZoneInfrequentAccess => "OneZoneInfrequentAccess",
            Self::IntelligentTiering => "IntelligentTiering",
            Self::InstantRetrievalArchive => "InstantRetrievalArchive",
            Self::Archive => "Archive",
            Self::ColdArchive => "ColdArchive",
            Self::DeepArchive => "DeepArchive",
            Self::ExpressOneZone => "ExpressOneZone",
            Self::Other(name) => name,
        }
    }

    /// Whether objects of this class must be restored before they can be read.
    pub fn needs_restore(&self) -> bool {
        matches!(self, Self::Archive | Self::ColdArchive | Self::DeepArchive)
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The whole object's CRC-64/NVME, when the store reports one: S3 keeps it for every
    /// object uploaded without another checksum since December 2024 (`x-amz-checksum-crc64nvme`
    /// with `x-amz-checksum-type: FULL_OBJECT`).
    pub crc64_nvme: Option<u64>,
    /// The MD5 of the object's bytes, when the store vouches that its ETag is one (S3: objects
    /// uploaded in one PUT, without SSE-KMS or SSE-C).
    pub content_md5: Option<[u8; 16]>,
    /// The standard content headers.
    pub content: ContentHeaders,
    /// User metadata, names without the store's prefix (`x-oss-meta-`, `x-amz-meta-`).
    pub user_metadata: BTreeMap<String, String>,
    /// The storage class, when the store reports one.
    pub storage_class: Option<StorageClass>,
    /// How the object was written.
    pub kind: ObjectKind,
    /// Whether the object must be restored before it can be read.
    pub archive: ArchiveState,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
}

impl ObjectAttributes {
    /// The ETag without quotes (and without a weak `W/` marker).
    pub fn etag_unquoted(&self) -> &str {
        unquote_etag(&self.etag)
    }

    /// Whether the object is a symbolic link (its HEAD and GET describe the target's bytes).
    pub fn is_symlink(&self) -> bool {
        self.kind == ObjectKind::Symlink
    }
}

/// What to read with [`ObjectSource::get_object`](super::ObjectSource::get_object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetRequest {
    /// Only these bytes (half-open, must not be empty); the whole object when `None`.
    pub range: Option<Range<u64>>,
    /// Only if the ETag still equals this (quoted, as HEAD returned it); otherwise
    /// [`StoreErrorKind::PreconditionFailed`](super::StoreErrorKind::PreconditionFailed).
    pub if_match: Option<String>,
}

/// The answer to [`ObjectSource::get_object`](super::ObjectSource::get_object).
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

/// One page of a listing request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Only keys that start with this.
    pub prefix: String,
    /// Only keys after this one (in UTF-8 byte order); used to start a key range.
    pub start_after: Option<String>,
    /// The token of the previous page's [`ListPage::next`].
    pub continuation: Option<String>,
    /// At most this many keys (the store caps it, 1,000 on S3 and OSS); `None` for the store's
    /// default.
    pub max_keys: Option<u32>,
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The key, decoded.
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// The ETag as the store lists it (quoted).
    pub etag: String,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
    /// The storage class, when listed.
    pub storage_class: Option<StorageClass>,
}

/// One page of a listing, keys in UTF-8 byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects of this page.
    pub objects: Vec<ListedObject>,
    /// The token for the next page, or `None` when this was the last.
    pub next: Option<String>,
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

/// What a restore should ask for.
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

/// The attributes of an object to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteRequest {
    /// The content headers to store.
    pub content: ContentHeaders,
    /// User metadata, names without the store's prefix.
    pub user_metadata: BTreeMap<String, String>,
    /// The storage class; the bucket's default when `None`.
    pub storage_class: Option<StorageClass>,
    /// Server-side encryption; the bucket's default when `None`.
    pub encryption: Option<Encryption>,
}

/// Checksums of a body (a single PUT, a part, or a whole multipart object), computed by the
/// caller over the bytes it sends. Each sink sends or checks the one its service verifies.
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
    #[must_use]
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

/// A condition on a write (PutObject, CompleteMultipartUpload): the write happens only if the
/// destination is still as the writer last saw it, so a slow writer never replaces a newer
/// object. A failed condition is [`StoreErrorKind::PreconditionFailed`](super::StoreErrorKind).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteCondition {
    /// Write unconditionally.
    #[default]
    None,
    /// Only if no object exists at the key (S3 `If-None-Match: *`, OSS
    /// `x-oss-forbid-overwrite: true`).
    IfAbsent,
    /// Only if the object at the key still has this ETag (S3 `If-Match`).
    IfMatch(String),
}

/// Which conditions a sink's service enforces (see [`WriteCondition`]). The engine protects
/// every write it can, and re-checks the source after a write it cannot protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "four independent capabilities of a service, not the states of one"
)]
pub struct ConditionalWrites {
    /// [`WriteCondition::IfAbsent`] on PutObject and CompleteMultipartUpload.
    pub if_absent: bool,
    /// [`WriteCondition::IfMatch`] on PutObject.
    pub put_if_match: bool,
    /// [`WriteCondition::IfMatch`] on CompleteMultipartUpload.
    pub complete_if_match: bool,
    /// `If-Match` on DeleteObject.
    pub delete_if_match: bool,
}

impl ConditionalWrites {
    /// A service that enforces no condition at all.
    pub const NONE: Self = Self {
        if_absent: false,
        put_if_match: false,
        complete_if_match: false,
        delete_if_match: false,
    };

    /// A service that enforces every condition (S3).
    pub const ALL: Self = Self {
        if_absent: true,
        put_if_match: true,
        complete_if_match: true,
        delete_if_match: true,
    };

    /// Whether `condition` is enforced on a PUT (`multipart`: on CompleteMultipartUpload).
    pub fn enforces(&self, condition: &WriteCondition, multipart: bool) -> bool {
        match condition {
            WriteCondition::None => true,
            WriteCondition::IfAbsent => self.if_absent,
            WriteCondition::IfMatch(_) if multipart => self.complete_if_match,
            WriteCondition::IfMatch(_) => self.put_if_match,
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

/// A part to name when completing a multipart upload.
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

    /// The bytes user metadata takes against [`Self::max_user_metadata`]: the UTF-8 bytes of
    /// every name and value.
    pub fn user_metadata_size(metadata: &BTreeMap<String, String>) -> usize {
        metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
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
    fn etags_compare_without_quotes_or_case() {
        assert_eq!(unquote_etag("\"ABC\""), "ABC");
        assert_eq!(unquote_etag("W/\"abc\""), "abc");
        assert_eq!(unquote_etag("abc"), "abc");
        assert!(same_etag("\"AbC\"", "abc"));
        assert!(!same_etag("\"abc\"", "abd"));
    }

    #[test]
    fn only_cold_classes_need_a_restore() {
        assert!(StorageClass::Archive.needs_restore());
        assert!(StorageClass::DeepArchive.needs_restore());
        assert!(!StorageClass::InstantRetrievalArchive.needs_restore());
        assert!(!StorageClass::Other("X".into()).needs_restore());
    }
}
