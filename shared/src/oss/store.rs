//! [`OssClient`] as an [`ObjectSource`] and an [`ObjectSink`], with both optional capabilities
//! (archive restores and symlinks).
//!
//! # Storage classes
//! | OSS | neutral |
//! |---|---|
//! | `Standard` | [`StorageClass::Standard`] |
//! | `IA` | [`StorageClass::InfrequentAccess`] |
//! | `Archive` | [`StorageClass::Archive`] |
//! | `ColdArchive` | [`StorageClass::ColdArchive`] |
//! | `DeepColdArchive` | [`StorageClass::DeepArchive`] |
//!
//! Writing any other neutral class fails with [`StoreErrorKind::InvalidRequest`]: OSS has no
//! equivalent, and choosing one silently would change what the user pays for.
//!
//! # Checksums
//! OSS verifies nothing a client states, but it reports the CRC-64/XZ of what it stored. So the
//! sink checks the body against the caller's checksums before sending (a mismatch sends
//! nothing), and checks OSS's reported CRC against them after. A completed multipart object
//! whose CRC differs is deleted again, so no corrupt object stays behind.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{
    ByteRange, CompleteOptions, ErrorKind, GetObjectOptions, ListObjectsV2Request, ObjectMeta,
    ObjectType, OssClient, OssError, PutBody, PutObjectOptions, RestoreOutcome, RestoreState,
};
use crate::oss;
use crate::store::{
    ArchiveState, BodyChecksums, CompletedPart, ConditionalWrites, GetOutput, GetRequest, ListPage,
    ListRequest, ListedObject, ObjectAttributes, ObjectKind, ObjectSink, ObjectSource, ObjectStore,
    PartInfo, PartLimits, RestoreArchived, RestoreRequest, RestoreStatus, RestoreTier,
    StorageClass, StoreError, StoreErrorKind, Symlinks, WriteCondition, WriteOutput, WriteRequest,
};

/// The neutral class of an OSS storage class.
pub fn neutral_class(class: &oss::StorageClass) -> StorageClass {
    match class {
        oss::StorageClass::Standard => StorageClass::Standard,
        oss::StorageClass::InfrequentAccess => StorageClass::InfrequentAccess,
        oss::StorageClass::Archive => StorageClass::Archive,
        oss::StorageClass::ColdArchive => StorageClass::ColdArchive,
        oss::StorageClass::DeepColdArchive => StorageClass::DeepArchive,
        oss::StorageClass::Other(name) => StorageClass::Other(name.clone()),
    }
}

/// The OSS storage class for a neutral class, or `None` when OSS has none.
pub fn oss_class(class: &StorageClass) -> Option<oss::StorageClass> {
    Some(match class {
        StorageClass::Standard => oss::StorageClass::Standard,
        StorageClass::InfrequentAccess => oss::StorageClass::InfrequentAccess,
        StorageClass::Archive => oss::StorageClass::Archive,
        StorageClass::ColdArchive => oss::StorageClass::ColdArchive,
        StorageClass::DeepArchive => oss::StorageClass::DeepColdArchive,
        StorageClass::Other(name) => oss::StorageClass::parse(name),
        _ => return None,
    })
}

/// The neutral attributes of an OSS object.
fn attributes(meta: ObjectMeta) -> ObjectAttributes {
    let archive = if meta.storage_class.is_archive() {
        match meta.restore {
            RestoreState::Restored { .. } => ArchiveState::Restored,
            RestoreState::InProgress => ArchiveState::Restoring,
            RestoreState::NotRequested | RestoreState::Unknown(_) => ArchiveState::Archived,
        }
    } else {
        ArchiveState::Online
    };
    let kind = match meta.object_type {
        ObjectType::Multipart => ObjectKind::Multipart,
        ObjectType::Appendable => ObjectKind::Appendable,
        ObjectType::Symlink => ObjectKind::Symlink,
        ObjectType::Normal | ObjectType::Other(_) => ObjectKind::Normal,
    };
    ObjectAttributes {
        size: meta.size,
        etag: meta.etag,
        crc64: meta.crc64,
        // OSS's CRC-64/XZ covers the object; its ETag's MD5 is not needed on top.
        crc64_nvme: None,
        content_md5: None,
        content: meta.content,
        user_metadata: meta.user_metadata,
        storage_class: Some(neutral_class(&meta.storage_class)),
        kind,
        archive,
        last_modified: meta.last_modified,
    }
}

fn target(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("oss://{bucket}/{key}"),
        None => format!("oss://{bucket}"),
    }
}

/// Maps an OSS error to the neutral kinds.
fn store_error(error: OssError) -> StoreError {
    let kind = match error.kind() {
        ErrorKind::NotFound => StoreErrorKind::NotFound,
        ErrorKind::PreconditionFailed => StoreErrorKind::PreconditionFailed,
        ErrorKind::AccessDenied => StoreErrorKind::AccessDenied,
        ErrorKind::InvalidCredentials => StoreErrorKind::InvalidCredentials,
        ErrorKind::InvalidObjectState => StoreErrorKind::InvalidObjectState,
        ErrorKind::Throttled => StoreErrorKind::Throttled,
        ErrorKind::ServerError
        | ErrorKind::Network
        | ErrorKind::Timeout
        | ErrorKind::TruncatedBody => StoreErrorKind::Unavailable,
        ErrorKind::ChecksumMismatch => StoreErrorKind::ChecksumMismatch,
        ErrorKind::Config => StoreErrorKind::Config,
        ErrorKind::InvalidRequest => match error.code() {
            Some("KeyTooLong" | "InvalidObjectName") => StoreErrorKind::InvalidKey,
            Some("EntityTooLarge") => StoreErrorKind::TooLarge,
            Some("MetadataTooLarge") => StoreErrorKind::MetadataTooLarge,
            _ => StoreErrorKind::InvalidRequest,
        },
        ErrorKind::NotModified | ErrorKind::InvalidResponse => StoreErrorKind::InvalidResponse,
    };
    let mut message = [error.code(), error.request_id()]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(", request id ");
    // A request refused before it was sent has no code: its reason is the client's.
    if error.code().is_none()
        && let Some(context) = error.context()
    {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(context);
    }
    StoreError::new(
        kind,
        error.operation(),
        target(error.bucket(), error.key()),
        message,
    )
    .with_retry_after(error.retry_after())
    .with_source(error)
}

impl ObjectStore for OssClient {
    type Restore = Self;
    type Symlinks = Self;

    fn scheme(&self) -> &'static str {
        "oss"
    }

    fn archive_restore(&self) -> Option<&Self> {
        Some(self)
    }

    fn symlinks(&self) -> Option<&Self> {
        Some(self)
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectAttributes, StoreError> {
        OssClient::head_object(self, bucket, key)
            .await
            .map(attributes)
            .map_err(store_error)
    }

    /// OSS has no conditional DeleteObject: `if_match` is not enforced (see
    /// [`ConditionalWrites`]), and the caller re-checks.
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        _if_match: Option<&str>,
    ) -> Result<(), StoreError> {
        OssClient::delete_object(self, bucket, key)
            .await
            .map_err(store_error)
    }

    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError> {
        let page = self
            .list_objects_v2(
                bucket,
                &ListObjectsV2Request {
                    prefix: Some(request.prefix.clone()),
                    continuation_token: request.continuation.clone(),
                    max_keys: Some(request.max_keys.unwrap_or(1000).clamp(1, 1000)),
                    start_after: request.start_after.clone(),
                    delimiter: None,
                },
            )
            .await
            .map_err(store_error)?;
        let next = match (page.is_truncated, page.next_continuation_token) {
            (true, Some(token)) => Some(token),
            (true, None) => {
                return Err(StoreError::new(
                    StoreErrorKind::InvalidResponse,
                    "ListObjectsV2",
                    target(bucket, None),
                    "a truncated page has no NextContinuationToken",
                ));
            }
            (false, _) => None,
        };
        Ok(ListPage {
            objects: page
                .objects
                .into_iter()
                .map(|o| ListedObject {
                    key: o.key,
                    size: o.size,
                    etag: o.etag,
                    last_modified: o.last_modified,
                    storage_class: Some(neutral_class(&o.storage_class)),
                })
                .collect(),
            next,
        })
    }
}

impl ObjectSource for OssClient {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        request: &GetRequest,
    ) -> Result<GetOutput, StoreError> {
        let options = GetObjectOptions {
            range: request
                .range
                .as_ref()
                .map(|r| ByteRange::inclusive(r.start, r.end.saturating_sub(1))),
            if_match: request.if_match.clone(),
            if_none_match: None,
        };
        let output = OssClient::get_object(self, bucket, key, &options)
            .await
            .map_err(store_error)?;
        Ok(GetOutput {
            attributes: attributes(output.meta),
            body: output.body.map_err(store_error).boxed(),
        })
    }
}

impl RestoreArchived for OssClient {
    async fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        request: &RestoreRequest,
    ) -> Result<RestoreStatus, StoreError> {
        // OSS takes a tier only for ColdArchive and DeepColdArchive; Archive refuses one.
        let meta = OssClient::head_object(self, bucket, key)
            .await
            .map_err(store_error)?;
        let tier = match meta.storage_class {
            oss::StorageClass::ColdArchive | oss::StorageClass::DeepColdArchive => {
                Some(match request.tier {
                    RestoreTier::Expedited => oss::RestoreTier::Expedited,
                    RestoreTier::Standard => oss::RestoreTier::Standard,
                    RestoreTier::Bulk => oss::RestoreTier::Bulk,
                })
            }
            _ => None,
        };
        let outcome = OssClient::restore_object(self, bucket, key, request.days, tier)
            .await
            .map_err(store_error)?;
        Ok(match outcome {
            RestoreOutcome::Started => RestoreStatus::Started,
            RestoreOutcome::AlreadyInProgress => RestoreStatus::InProgress,
            RestoreOutcome::AlreadyRestored => RestoreStatus::Restored,
        })
    }
}

impl Symlinks for OssClient {
    async fn symlink_target(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        match self.get_symlink(bucket, key).await {
            Ok(target) => Ok(Some(target)),
            Err(e) if e.code() == Some("NotSymlink") => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn put_symlink(&self, bucket: &str, key: &str, target: &str) -> Result<(), StoreError> {
        OssClient::put_symlink(self, bucket, key, target)
            .await
            .map_err(store_error)
    }
}

fn put_options(
    operation: &'static str,
    bucket: &str,
    key: &str,
    request: &WriteRequest,
) -> Result<PutObjectOptions, StoreError> {
    let storage_class = match &request.storage_class {
        None => None,
        Some(class) => Some(oss_class(class).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::InvalidRequest,
                operation,
                target(bucket, Some(key)),
                format!("OSS has no storage class like {class}"),
            )
        })?),
    };
    Ok(PutObjectOptions {
        content: request.content.clone(),
        user_metadata: request.user_metadata.clone(),
        storage_class,
        forbid_overwrite: false,
    })
}

/// Refuses a body that does not match the checksums the caller stated, before sending it.
fn check_body(
    operation: &'static str,
    bucket: &str,
    key: &str,
    body: &[u8],
    stated: BodyChecksums,
) -> Result<(), StoreError> {
    let actual = crate::crc64::checksum(body);
    if body.len() as u64 != stated.len || actual != stated.crc64_xz {
        return Err(StoreError::new(
            StoreErrorKind::ChecksumMismatch,
            operation,
            target(bucket, Some(key)),
            format!(
                "the body ({} bytes, CRC-64 {actual}) does not match the stated checksums ({} bytes, CRC-64 {}); nothing was sent",
                body.len(),
                stated.len,
                stated.crc64_xz
            ),
        ));
    }
    Ok(())
}

/// Checks the CRC-64 OSS reports for what it stored against the caller's.
fn check_stored(
    operation: &'static str,
    bucket: &str,
    key: &str,
    reported: Option<u64>,
    stated: BodyChecksums,
) -> Result<(), StoreError> {
    match reported {
        Some(crc) if crc != stated.crc64_xz => Err(StoreError::new(
            StoreErrorKind::ChecksumMismatch,
            operation,
            target(bucket, Some(key)),
            format!(
                "OSS stored CRC-64 {crc}, the bytes sent have {}",
                stated.crc64_xz
            ),
        )),
        _ => Ok(()),
    }
}

/// OSS verifies uploads by the CRC-64 it reports. Encryption settings are not sent (the
/// bucket's default encryption applies).
impl ObjectSink for OssClient {
    fn limits(&self) -> PartLimits {
        PartLimits::OSS
    }

    /// OSS refuses to overwrite with `x-oss-forbid-overwrite: true` (PutObject and
    /// CompleteMultipartUpload) but has no `If-Match` on writes or deletes.
    fn conditional_writes(&self) -> ConditionalWrites {
        ConditionalWrites {
            if_absent: true,
            ..ConditionalWrites::NONE
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
        check_body("PutObject", bucket, key, &body, checksums)?;
        let mut options = put_options("PutObject", bucket, key, request)?;
        options.forbid_overwrite = *condition == WriteCondition::IfAbsent;
        let output = OssClient::put_object(self, bucket, key, PutBody::Bytes(body), &options)
            .await
            .map_err(store_error)?;
        check_stored("PutObject", bucket, key, output.crc64, checksums)?;
        Ok(WriteOutput { etag: output.etag })
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> Result<String, StoreError> {
        let options = put_options("InitiateMultipartUpload", bucket, key, request)?;
        self.initiate_multipart_upload(bucket, key, &options)
            .await
            .map_err(store_error)
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
        check_body("UploadPart", bucket, key, &body, checksums)?;
        let output = OssClient::upload_part(
            self,
            bucket,
            key,
            upload_id,
            part_number,
            PutBody::Bytes(body),
        )
        .await
        .map_err(store_error)?;
        check_stored("UploadPart", bucket, key, output.crc64, checksums)?;
        Ok(PartInfo {
            part_number,
            etag: output.etag,
            size: checksums.len,
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
        let options = CompleteOptions {
            forbid_overwrite: *condition == WriteCondition::IfAbsent,
        };
        let named: Vec<oss::CompletedPart> = parts
            .iter()
            .map(|p| oss::CompletedPart {
                part_number: p.part_number,
                etag: p.etag.clone(),
            })
            .collect();
        let output =
            OssClient::complete_multipart_upload(self, bucket, key, upload_id, &named, options)
                .await
                .map_err(store_error)?;
        if let Err(mismatch) =
            check_stored("CompleteMultipartUpload", bucket, key, output.crc64, whole)
        {
            // The object is visible now; take it away again rather than leave it corrupt.
            if let Err(e) = OssClient::delete_object(self, bucket, key).await {
                tracing::error!(bucket, key, error = %e, "could not delete a completed object whose CRC-64 is wrong");
            }
            return Err(mismatch);
        }
        Ok(WriteOutput { etag: output.etag })
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        match OssClient::abort_multipart_upload(self, bucket, key, upload_id).await {
            Err(e) if !e.is_not_found() => Err(store_error(e)),
            _ => Ok(()),
        }
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, StoreError> {
        let parts = OssClient::list_parts(self, bucket, key, upload_id)
            .await
            .map_err(store_error)?;
        Ok(parts
            .into_iter()
            .map(|p| PartInfo {
                part_number: p.part_number,
                etag: p.etag,
                size: p.size,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_classes_round_trip_through_the_neutral_names() {
        for class in [
            oss::StorageClass::Standard,
            oss::StorageClass::InfrequentAccess,
            oss::StorageClass::Archive,
            oss::StorageClass::ColdArchive,
            oss::StorageClass::DeepColdArchive,
        ] {
            assert_eq!(oss_class(&neutral_class(&class)), Some(class));
        }
        assert_eq!(oss_class(&StorageClass::IntelligentTiering), None);
    }

    #[test]
    fn a_body_that_does_not_match_its_checksums_is_not_sent() {
        let body = b"hello";
        let mut stated = BodyChecksums::of(body);
        assert!(check_body("PutObject", "b", "k", body, stated).is_ok());
        stated.crc64_xz ^= 1;
        let error = check_body("PutObject", "b", "k", body, stated).expect_err("mismatch");
        assert_eq!(error.kind(), StoreErrorKind::ChecksumMismatch);
    }
}
