//! [`OssClient`] as an [`ObjectSource`] and an [`ObjectSink`].

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{
    ArchiveState, BodyChecksums, CompletedPart, GetOutput, GetRequest, ObjectAttributes,
    ObjectSink, ObjectSource, ObjectStore, PartInfo, PartLimits, RestoreRequest, RestoreStatus,
    RestoreTier, StoreError, StoreErrorKind, WriteOutput, WriteRequest,
};
use crate::oss::{
    self, ByteRange, ErrorKind, GetObjectOptions, ObjectMeta, OssClient, OssError, PutBody,
    PutObjectOptions, RestoreOutcome, RestoreState, StorageClass,
};

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
    ObjectAttributes {
        size: meta.size,
        etag: meta.etag,
        crc64: meta.crc64,
        content: meta.content,
        user_metadata: meta.user_metadata,
        storage_class: Some(meta.storage_class.as_str().to_owned()),
        object_type: Some(meta.object_type.as_str().to_owned()),
        archive,
        last_modified: meta.last_modified,
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
    let target = match error.key() {
        Some(key) => format!("oss://{}/{key}", error.bucket()),
        None => format!("oss://{}", error.bucket()),
    };
    let message = [error.code(), error.request_id()]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(", request id ");
    StoreError::new(kind, error.operation(), target, message)
        .with_retry_after(error.retry_after())
        .with_source(error)
}

impl ObjectStore for OssClient {
    fn scheme(&self) -> &'static str {
        "oss"
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectAttributes, StoreError> {
        OssClient::head_object(self, bucket, key)
            .await
            .map(attributes)
            .map_err(store_error)
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        OssClient::delete_object(self, bucket, key)
            .await
            .map_err(store_error)
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
            StorageClass::ColdArchive | StorageClass::DeepColdArchive => Some(match request.tier {
                RestoreTier::Expedited => oss::RestoreTier::Expedited,
                RestoreTier::Standard => oss::RestoreTier::Standard,
                RestoreTier::Bulk => oss::RestoreTier::Bulk,
            }),
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

    async fn symlink_target(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        match self.get_symlink(bucket, key).await {
            Ok(target) => Ok(Some(target)),
            Err(e) if e.code() == Some("NotSymlink") => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }
}

fn put_options(request: &WriteRequest) -> PutObjectOptions {
    PutObjectOptions {
        content: request.content.clone(),
        user_metadata: request.user_metadata.clone(),
        storage_class: request.storage_class.as_deref().map(StorageClass::parse),
    }
}

/// OSS verifies uploads itself: the client compares the CRC-64 OSS reports with the bytes sent.
/// Encryption settings are not sent (the bucket's default encryption applies).
impl ObjectSink for OssClient {
    fn limits(&self) -> PartLimits {
        PartLimits::OSS
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        _checksums: BodyChecksums,
        request: &WriteRequest,
    ) -> Result<WriteOutput, StoreError> {
        let output = OssClient::put_object(
            self,
            bucket,
            key,
            PutBody::Bytes(body),
            &put_options(request),
        )
        .await
        .map_err(store_error)?;
        Ok(WriteOutput { etag: output.etag })
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> Result<String, StoreError> {
        self.initiate_multipart_upload(bucket, key, &put_options(request))
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
        _whole: BodyChecksums,
    ) -> Result<WriteOutput, StoreError> {
        let parts: Vec<oss::CompletedPart> = parts
            .iter()
            .map(|p| oss::CompletedPart {
                part_number: p.part_number,
                etag: p.etag.clone(),
            })
            .collect();
        let output = OssClient::complete_multipart_upload(self, bucket, key, upload_id, &parts)
            .await
            .map_err(store_error)?;
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
