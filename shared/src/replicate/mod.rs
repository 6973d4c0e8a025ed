//! The copy engine: makes the destination hold the source object's current state, streamed in
//! bounded memory and verified end to end.
//!
//! [`Replicator::replicate`] takes one [`ReplicationTask`](crate::task::ReplicationTask) and returns an [`Outcome`] or a
//! [`ReplicationError`] whose [`FailureKind`] says whether the message should be retried (SQS
//! retry) or is permanent (DLQ, with the reason).
//!
//! # Destination marker
//! Every object the engine writes carries the source object's identity as user metadata (S3
//! shows it as `x-amz-meta-<name>`):
//!
//! | name | value |
//! |---|---|
//! | [`MARKER_SOURCE`] `oss2s3-src` | `oss://<bucket>/<key>`, the key percent-encoded (UTF-8, all but `A-Za-z0-9-_.~/`) |
//! | [`MARKER_ETAG`] `oss2s3-src-etag` | the source ETag without quotes |
//! | [`MARKER_CRC64`] `oss2s3-src-crc64` | the source CRC-64/XZ, decimal (absent if the source reports none) |
//! | [`MARKER_SIZE`] `oss2s3-src-size` | the source size in bytes, decimal |
//! | [`MARKER_SYMLINK_TARGET`] `oss2s3-symlink-target` | for a copied symlink: the key it points to, encoded like the source key |
//!
//! A destination whose marker names the same source, ETag, CRC-64 and size is skipped without
//! reading the body. Deletes remove only destinations whose `oss2s3-src` names the deleted key.
//!
//! # Integrity
//! The CRC-64/XZ of every byte copied is computed per part, combined, and compared with the
//! source's `x-oss-hash-crc64ecma` before CompleteMultipartUpload (or before the single PUT):
//! a mismatch writes nothing and fails retryably. Every ranged GET carries
//! `If-Match: <source ETag>`, so parts of two versions are never stitched together.
//!
//! S3-side, each PUT and part carries `x-amz-checksum-crc64nvme`, and multipart uploads are
//! created with `ChecksumAlgorithm=CRC64NVME, ChecksumType=FULL_OBJECT` and completed with the
//! whole object's CRC-64/NVME (combined from the parts): S3 verifies every part and the whole
//! object it assembles. CRC-64/NVME was chosen over CRC32C because it is S3's default algorithm,
//! has 64 bits like the source's CRC, and is the only algorithm whose full-object checksum S3
//! supports for every upload; `crc-fast` computes it at memory speed, and CRCs combine, so no
//! second pass over the data is needed. (moto stores but does not verify these checksums.)

mod engine;
mod error;
mod settings;

pub use engine::{Outcome, Replicator, SkipReason};
pub use error::{FailureKind, ReplicationError};
pub use settings::{Continuation, ContinuedPart, CopySettings, RestoreSettings};

/// Marker metadata name: the source object, `oss://<bucket>/<percent-encoded key>`.
pub const MARKER_SOURCE: &str = "oss2s3-src";
/// Marker metadata name: the source ETag without quotes.
pub const MARKER_ETAG: &str = "oss2s3-src-etag";
/// Marker metadata name: the source CRC-64/XZ, decimal.
pub const MARKER_CRC64: &str = "oss2s3-src-crc64";
/// Marker metadata name: the source size in bytes, decimal.
pub const MARKER_SIZE: &str = "oss2s3-src-size";
/// Marker metadata name: the key a copied symlink pointed to (percent-encoded).
pub const MARKER_SYMLINK_TARGET: &str = "oss2s3-symlink-target";
