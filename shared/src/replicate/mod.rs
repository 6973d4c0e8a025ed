//! The copy engine: makes the destination hold the source object's current state, streamed in
//! bounded memory and verified end to end. It knows stores only through the seam in
//! [`store`](crate::store), so the same engine copies OSS → S3 and S3 → OSS.
//!
//! | step | module |
//! |---|---|
//! | task → source HEAD, key candidates, marker check, single PUT | `engine` |
//! | first deliveries in two requests, repeated ones in one | `fresh` |
//! | pinned, retried reads | `read` |
//! | part plan, parts in flight, verify, complete | `multipart` |
//! | continuation state between invocations | `continuation`, `resume` |
//! | no upload left behind | `guard` |
//! | delete tasks | `delete` |
//! | destination marker | `marker` |
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
//! | [`MARKER_SOURCE`] `oss2s3-src` | `oss://<bucket>/<key>`, the key percent-encoded (UTF-8, all but `A-Za-z0-9-_.~/`); longer than [`MAX_PLAIN_URL`] (256) bytes, `sha256:<hex>` of that URL |
//! | [`MARKER_ETAG`] `oss2s3-src-etag` | the source ETag without quotes |
//! | [`MARKER_CRC64`] `oss2s3-src-crc64` | the source CRC-64/XZ, decimal (absent if the source reports none) |
//! | [`MARKER_SIZE`] `oss2s3-src-size` | the source size in bytes, decimal |
//! | [`MARKER_META`] `oss2s3-src-meta` | [`metadata_digest`]: 32 hex digits of SHA-256 over the source's content headers and user metadata |
//! | [`MARKER_SYMLINK_TARGET`] `oss2s3-symlink-target` | for a copied symlink: the key it points to, encoded like the source key |
//!
//! A destination whose marker names the same source, ETag, CRC-64, size and metadata digest is
//! skipped without reading the body (and before any restore of an archived source); a
//! metadata-only change (OSS `UpdateObjectMeta`) changes the digest, so the object is copied
//! again with its new metadata. Deletes remove only destinations whose `oss2s3-src` names the
//! deleted key.
//!
//! # Racing writers
//! Every write is conditional on the destination state the copy saw (see `engine`), and a
//! delete is conditional on the ETag whose marker was checked; where a sink cannot enforce a
//! condition, the source is checked again after the write.
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

mod continuation;
mod delete;
mod engine;
mod error;
mod fresh;
mod guard;
mod marker;
mod multipart;
mod outcome;
mod read;
mod resume;
mod settings;
mod stop;

pub use continuation::{Continuation, ContinuedPart};
pub use engine::Replicator;
pub use error::{FailureKind, ReplicationError};
pub use fresh::{Delivery, FRESH_COPY_MAX};
pub use marker::{
    MARKER_CRC64, MARKER_ETAG, MARKER_META, MARKER_SIZE, MARKER_SOURCE, MARKER_SYMLINK_TARGET,
    MAX_PLAIN_URL, marker_matches, metadata_digest, source_marker, source_url,
};
pub use outcome::{Outcome, SkipReason};
pub use settings::{CopySettings, RestoreSettings};
pub use stop::StopSignal;
