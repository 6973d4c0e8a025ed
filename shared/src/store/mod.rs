//! The seam between the copy engine and object stores: direction-neutral traits and types.
//!
//! Every store implements [`ObjectStore`] (HEAD, DELETE, listing). A store that can be read from
//! also implements [`ObjectSource`] (ranged GET pinned by `If-Match`); a store that can be
//! written to implements [`ObjectSink`] (PUT and multipart uploads). `OssClient` (feature `oss`)
//! and `S3Store` (feature `s3`) are both, so either direction is the same engine with the stores
//! swapped; [`MemoryStore`] (feature `memory`) is the reference implementation the others are
//! held to by the conformance suite (`tools/store-conformance`).
//!
//! # Optional capabilities
//! Some stores can do things others cannot: restore archived objects ([`RestoreArchived`]),
//! hold symbolic links ([`Symlinks`]). A store names its implementation in an associated type
//! and hands it out from [`ObjectStore::archive_restore`] / [`ObjectStore::symlinks`]; a store
//! without the capability names [`Unsupported`], a type with no values, and returns `None`, so
//! there is no stub to call by mistake. (This is rclone's optional-interface idea, checked at
//! compile time.)
//!
//! The traits use `-> impl Future + Send` rather than `async-trait`: the engine is generic over
//! its stores, so no boxing or dynamic dispatch is needed.
//!
//! Nothing in this module knows a protocol: `store` imports nothing from `oss` or `s3`.

mod error;
#[cfg(feature = "memory")]
pub mod memory;
mod types;

use std::future::Future;

use bytes::Bytes;

pub use error::{BoxError, StoreError, StoreErrorKind};
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
pub use types::{
    ArchiveState, BodyChecksums, ByteStream, CompletedPart, ConditionalWrites, ContentHeaders,
    Encryption, GetOutput, GetRequest, ListPage, ListRequest, ListedObject, ObjectAttributes,
    ObjectKind, PartInfo, PartLimits, RestoreRequest, RestoreStatus, RestoreTier, StorageClass,
    WriteCondition, WriteOutput, WriteRequest, same_etag, unquote_etag,
};

/// Operations every store offers.
pub trait ObjectStore: Send + Sync {
    /// The store's archive restores, or [`Unsupported`].
    type Restore: RestoreArchived;
    /// The store's symbolic links, or [`Unsupported`].
    type Symlinks: Symlinks;

    /// A short name of the store for URLs in logs and metadata: `oss`, `s3` or `mem`.
    fn scheme(&self) -> &'static str;

    /// The capability to restore archived objects, when the store has it.
    fn archive_restore(&self) -> Option<&Self::Restore>;

    /// The capability to read and write symbolic links, when the store has it.
    fn symlinks(&self) -> Option<&Self::Symlinks>;

    /// HeadObject: the object's attributes, or [`StoreErrorKind::NotFound`].
    fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<ObjectAttributes, StoreError>> + Send;

    /// DeleteObject. Succeeds also when the object does not exist. With `if_match`, only if the
    /// object still has that ETag (where [`ConditionalWrites::delete_if_match`] says the service
    /// enforces it): otherwise [`StoreErrorKind::PreconditionFailed`].
    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One page of ListObjectsV2: keys in UTF-8 byte order.
    fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> impl Future<Output = Result<ListPage, StoreError>> + Send;
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
}

/// A store objects are copied to.
pub trait ObjectSink: ObjectStore {
    /// The store's size limits.
    fn limits(&self) -> PartLimits;

    /// Which write conditions the service enforces.
    fn conditional_writes(&self) -> ConditionalWrites;

    /// PutObject with an in-memory body whose checksums the caller computed, if `condition`
    /// holds. A body that does not match the checksums is refused with
    /// [`StoreErrorKind::ChecksumMismatch`] where the service verifies (S3) or reports (OSS)
    /// checksums.
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        checksums: BodyChecksums,
        request: &WriteRequest,
        condition: &WriteCondition,
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
    /// checksums, if `condition` holds (the upload stays when it does not).
    fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        whole: BodyChecksums,
        condition: &WriteCondition,
    ) -> impl Future<Output = Result<WriteOutput, StoreError>> + Send;

    /// AbortMultipartUpload: discards the upload and its parts. Succeeds when the upload is
    /// already gone.
    fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// ListParts: every part the upload holds (all pages), in part-number order.
    fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Vec<PartInfo>, StoreError>> + Send;
}

/// The optional capability of restoring archived objects so that they can be read.
pub trait RestoreArchived: Send + Sync {
    /// Requests that an archived object be made readable for `request.days`.
    fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        request: &RestoreRequest,
    ) -> impl Future<Output = Result<RestoreStatus, StoreError>> + Send;
}

/// The optional capability of symbolic links: objects that name another key.
pub trait Symlinks: Send + Sync {
    /// The key the link `key` points to, or `None` when `key` is an ordinary object;
    /// [`StoreErrorKind::NotFound`] when it does not exist.
    fn symlink_target(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Makes `key` a link to `target` (which need not exist).
    fn put_symlink(
        &self,
        bucket: &str,
        key: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The capability a store does not have. It has no values, so its methods can never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {}

impl RestoreArchived for Unsupported {
    async fn restore_object(
        &self,
        _bucket: &str,
        _key: &str,
        _request: &RestoreRequest,
    ) -> Result<RestoreStatus, StoreError> {
        match *self {}
    }
}

impl Symlinks for Unsupported {
    async fn symlink_target(
        &self,
        _bucket: &str,
        _key: &str,
    ) -> Result<Option<String>, StoreError> {
        match *self {}
    }

    async fn put_symlink(
        &self,
        _bucket: &str,
        _key: &str,
        _target: &str,
    ) -> Result<(), StoreError> {
        match *self {}
    }
}

/// The whole of a small object (a report or a summary), read into memory.
pub async fn read_all<S: ObjectSource>(
    store: &S,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, StoreError> {
    use futures::TryStreamExt as _;
    let output = store
        .get_object(bucket, key, &GetRequest::default())
        .await?;
    output
        .body
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
}

/// Writes a small object (a report or a summary) in one unconditional PUT.
pub async fn put_small<S: ObjectSink>(
    store: &S,
    bucket: &str,
    key: &str,
    body: bytes::Bytes,
    content_type: &str,
) -> Result<(), StoreError> {
    let mut request = WriteRequest::default();
    request.content.content_type = Some(content_type.to_owned());
    store
        .put_object(
            bucket,
            key,
            body.clone(),
            BodyChecksums::of(&body),
            &request,
            &WriteCondition::None,
        )
        .await
        .map(|_| ())
}
