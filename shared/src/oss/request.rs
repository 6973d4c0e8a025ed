//! The options and outputs of OSS client operations.

use std::collections::BTreeMap;

use super::body::ObjectBody;
use super::meta::{ContentRange, ObjectMeta, StorageClass};
use crate::store::ContentHeaders;

/// A byte range for a ranged GET: `first` to `last` inclusive, or to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte offset.
    pub first: u64,
    /// The last byte offset (inclusive), or `None` for "to the end".
    pub last: Option<u64>,
}

impl ByteRange {
    /// The bytes `first..=last`.
    pub fn inclusive(first: u64, last: u64) -> Self {
        Self {
            first,
            last: Some(last),
        }
    }

    /// The bytes from `first` to the end of the object.
    pub fn from_offset(first: u64) -> Self {
        Self { first, last: None }
    }

    /// The `Range` header value.
    pub(super) fn header(&self) -> String {
        match self.last {
            Some(last) => format!("bytes={}-{last}", self.first),
            None => format!("bytes={}-", self.first),
        }
    }
}

/// Options for [`OssClient::get_object`].
#[derive(Debug, Clone, Default)]
pub struct GetObjectOptions {
    /// Only these bytes (answered with 206).
    pub range: Option<ByteRange>,
    /// Only if the ETag still equals this (quoted, as OSS sends it); otherwise 412.
    pub if_match: Option<String>,
    /// Only if the ETag differs from this; otherwise 304.
    pub if_none_match: Option<String>,
}

/// Headers for [`OssClient::put_object`] and [`OssClient::initiate_multipart_upload`].
#[derive(Debug, Clone, Default)]
pub struct PutObjectOptions {
    /// The content headers to store with the object.
    pub content: ContentHeaders,
    /// User metadata, names without the `x-oss-meta-` prefix.
    pub user_metadata: BTreeMap<String, String>,
    /// The storage class; the bucket's default when `None`.
    pub storage_class: Option<StorageClass>,
    /// Refuse to replace an existing object (`x-oss-forbid-overwrite: true`): OSS answers 409
    /// `FileAlreadyExists`, an [`ErrorKind::PreconditionFailed`](super::ErrorKind) here.
    pub forbid_overwrite: bool,
}

/// Options for [`OssClient::complete_multipart_upload`](super::OssClient::complete_multipart_upload).
#[derive(Debug, Clone, Copy, Default)]
pub struct CompleteOptions {
    /// Refuse to replace an existing object, as [`PutObjectOptions::forbid_overwrite`].
    pub forbid_overwrite: bool,
}

/// The result of [`OssClient::get_object`].
#[derive(Debug)]
pub struct GetObjectOutput {
    /// The object's metadata (its `size` is the whole object's, also for ranged GETs).
    pub meta: ObjectMeta,
    /// The range returned, for a 206 answer.
    pub content_range: Option<ContentRange>,
    /// The bytes.
    pub body: ObjectBody,
}

/// The result of a successful upload (PutObject, UploadPart, CompleteMultipartUpload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutObjectOutput {
    /// The new ETag as OSS sent it (quoted).
    pub etag: String,
    /// The CRC-64 OSS computed (`x-oss-hash-crc64ecma`), checked against the bytes sent.
    pub crc64: Option<u64>,
    /// The OSS request ID.
    pub request_id: Option<String>,
}

/// The result of [`OssClient::upload_part`].
pub type UploadPartOutput = PutObjectOutput;
/// The result of [`OssClient::complete_multipart_upload`].
pub type CompleteMultipartUploadOutput = PutObjectOutput;

/// A part to name in [`OssClient::complete_multipart_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// The part number, 1 to 10,000.
    pub part_number: u32,
    /// The ETag UploadPart returned for it.
    pub etag: String,
}

/// Parameters of one ListObjectsV2 request.
#[derive(Debug, Clone, Default)]
pub struct ListObjectsV2Request {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// The token from the previous page.
    pub continuation_token: Option<String>,
    /// Page size, 1 to 1000; OSS's default (100) when `None`.
    pub max_keys: Option<u32>,
    /// Only keys after this one.
    pub start_after: Option<String>,
    /// Group keys up to this character into common prefixes.
    pub delimiter: Option<String>,
}

/// What [`OssClient::restore_object`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// 202: the restore was started.
    Started,
    /// 200: the object is already restored (the restored copy's lifetime was extended).
    AlreadyRestored,
    /// 409 `RestoreAlreadyInProgress`: a restore is already running.
    AlreadyInProgress,
}
