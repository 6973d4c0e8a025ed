//! The memory store's writing side: PUT and multipart uploads, verified against the stated
//! checksums and the store's limits.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Bucket;
use super::{MemoryStore, Object, StoredPart, Upload, error, md5_of};
use crate::store::{
    BodyChecksums, CompletedPart, ConditionalWrites, ObjectKind, ObjectSink, PartInfo, PartLimits,
    StoreError, StoreErrorKind, WriteCondition, WriteOutput, WriteRequest, same_etag,
};

/// Refuses a write whose `condition` does not hold (and that the store enforces), as S3 does
/// with 412 `PreconditionFailed`.
fn check_condition(
    operation: &'static str,
    bucket: &str,
    key: &str,
    state: &Bucket,
    condition: &WriteCondition,
    enforced: ConditionalWrites,
    multipart: bool,
) -> Result<(), StoreError> {
    if !enforced.enforces(condition, multipart) {
        return Ok(());
    }
    let current = state.objects.get(key).map(|o| o.etag.as_str());
    let holds = match (condition, current) {
        (WriteCondition::None, _) | (WriteCondition::IfAbsent, None) => true,
        (WriteCondition::IfAbsent, Some(_)) | (WriteCondition::IfMatch(_), None) => false,
        (WriteCondition::IfMatch(expected), Some(etag)) => same_etag(expected, etag),
    };
    if holds {
        Ok(())
    } else {
        Err(error(
            StoreErrorKind::PreconditionFailed,
            operation,
            bucket,
            key,
            format!("the condition {condition:?} does not hold (the object is {current:?})"),
        ))
    }
}

impl ObjectSink for MemoryStore {
    fn limits(&self) -> PartLimits {
        self.inner.config.limits
    }

    fn conditional_writes(&self) -> ConditionalWrites {
        self.inner.config.conditional_writes
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
        let (_call, applied) = self.enter("PutObject", bucket, key).await?;
        self.check_request("PutObject", bucket, key, request)?;
        let limits = self.inner.config.limits;
        if body.len() as u64 > limits.max_single_put {
            return Err(error(
                StoreErrorKind::TooLarge,
                "PutObject",
                bucket,
                key,
                format!("a single PUT holds at most {} bytes", limits.max_single_put),
            ));
        }
        Self::verify_body("PutObject", bucket, key, &body, checksums)?;
        let etag = format!("\"{}\"", hex::encode_upper(md5_of(&body)));
        let object = Object {
            crc64: checksums.crc64_xz,
            data: body,
            etag: etag.clone(),
            kind: ObjectKind::Normal,
            request: Self::stored_request(request, &applied),
            symlink_target: None,
            restored_at: None,
            last_modified: chrono::Utc::now(),
        };
        let conditions = self.inner.config.conditional_writes;
        self.with_bucket_mut("PutObject", bucket, key, |b, _| {
            check_condition("PutObject", bucket, key, b, condition, conditions, false)?;
            b.objects.insert(key.to_owned(), object);
            Ok(())
        })?;
        Ok(WriteOutput { etag })
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> Result<String, StoreError> {
        let (_call, applied) = self.enter("CreateMultipartUpload", bucket, key).await?;
        self.check_request("CreateMultipartUpload", bucket, key, request)?;
        let request = Self::stored_request(request, &applied);
        self.with_bucket_mut("CreateMultipartUpload", bucket, key, |b, next| {
            *next += 1;
            let id = format!("mem-upload-{next:08}");
            b.uploads.insert(
                id.clone(),
                Upload {
                    key: key.to_owned(),
                    request,
                    parts: BTreeMap::new(),
                },
            );
            Ok(id)
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
        let _call = self.enter("UploadPart", bucket, key).await?;
        let limits = self.inner.config.limits;
        let fail = |kind, message: String| error(kind, "UploadPart", bucket, key, message);
        if part_number == 0 || part_number > limits.max_parts {
            return Err(fail(
                StoreErrorKind::InvalidRequest,
                format!("part numbers run from 1 to {}", limits.max_parts),
            ));
        }
        if body.len() as u64 > limits.max_part_size {
            return Err(fail(
                StoreErrorKind::TooLarge,
                format!("a part holds at most {} bytes", limits.max_part_size),
            ));
        }
        Self::verify_body("UploadPart", bucket, key, &body, checksums)?;
        let md5 = md5_of(&body);
        let etag = format!("\"{}\"", hex::encode_upper(md5));
        let size = body.len() as u64;
        self.with_bucket_mut("UploadPart", bucket, key, |b, _| {
            let upload = b
                .uploads
                .get_mut(upload_id)
                .filter(|u| u.key == key)
                .ok_or_else(|| fail(StoreErrorKind::NotFound, "no such upload".to_owned()))?;
            upload.parts.insert(
                part_number,
                StoredPart {
                    data: body,
                    etag: etag.clone(),
                    md5,
                },
            );
            Ok(())
        })?;
        Ok(PartInfo {
            part_number,
            etag,
            size,
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
        let _call = self.enter("CompleteMultipartUpload", bucket, key).await?;
        let limits = self.inner.config.limits;
        let conditions = self.inner.config.conditional_writes;
        let fail =
            |kind, message: String| error(kind, "CompleteMultipartUpload", bucket, key, message);
        self.with_bucket_mut("CompleteMultipartUpload", bucket, key, |b, _| {
            check_condition(
                "CompleteMultipartUpload",
                bucket,
                key,
                b,
                condition,
                conditions,
                true,
            )?;
            let upload = b
                .uploads
                .get(upload_id)
                .filter(|u| u.key == key)
                .ok_or_else(|| fail(StoreErrorKind::NotFound, "no such upload".to_owned()))?;
            if parts.is_empty() {
                return Err(fail(
                    StoreErrorKind::InvalidRequest,
                    "no parts named".to_owned(),
                ));
            }
            let mut data = Vec::new();
            let mut md5s = Vec::new();
            let mut previous = 0;
            for (i, part) in parts.iter().enumerate() {
                if part.part_number <= previous {
                    return Err(fail(
                        StoreErrorKind::InvalidRequest,
                        "parts must be named in ascending order".to_owned(),
                    ));
                }
                previous = part.part_number;
                let stored = upload
                    .parts
                    .get(&part.part_number)
                    .filter(|p| same_etag(&p.etag, &part.etag))
                    .ok_or_else(|| {
                        fail(
                            StoreErrorKind::InvalidRequest,
                            format!(
                                "part {} with ETag {} was not uploaded",
                                part.part_number, part.etag
                            ),
                        )
                    })?;
                if i + 1 < parts.len() && (stored.data.len() as u64) < limits.min_part_size {
                    return Err(fail(
                        StoreErrorKind::InvalidRequest,
                        format!(
                            "part {} is {} bytes; every part but the last needs at least {}",
                            part.part_number,
                            stored.data.len(),
                            limits.min_part_size
                        ),
                    ));
                }
                data.extend_from_slice(&stored.data);
                md5s.extend_from_slice(&stored.md5);
            }
            if data.len() as u64 > limits.max_object_size {
                return Err(fail(
                    StoreErrorKind::TooLarge,
                    format!("objects hold at most {} bytes", limits.max_object_size),
                ));
            }
            Self::verify_body("CompleteMultipartUpload", bucket, key, &data, whole)?;
            let etag = format!("\"{}-{}\"", hex::encode_upper(md5_of(&md5s)), parts.len());
            let request = upload.request.clone();
            b.uploads.remove(upload_id);
            b.objects.insert(
                key.to_owned(),
                Object {
                    crc64: whole.crc64_xz,
                    data: Bytes::from(data),
                    etag: etag.clone(),
                    kind: ObjectKind::Multipart,
                    request,
                    symlink_target: None,
                    restored_at: None,
                    last_modified: chrono::Utc::now(),
                },
            );
            Ok(WriteOutput { etag })
        })
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let _call = self.enter("AbortMultipartUpload", bucket, key).await?;
        self.with_bucket_mut("AbortMultipartUpload", bucket, key, |b, _| {
            b.uploads.remove(upload_id);
            Ok(())
        })
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, StoreError> {
        let _call = self.enter("ListParts", bucket, key).await?;
        self.with_bucket_mut("ListParts", bucket, key, |b, _| {
            let upload = b
                .uploads
                .get(upload_id)
                .filter(|u| u.key == key)
                .ok_or_else(|| {
                    error(
                        StoreErrorKind::NotFound,
                        "ListParts",
                        bucket,
                        key,
                        "no such upload",
                    )
                })?;
            Ok(upload
                .parts
                .iter()
                .map(|(&part_number, p)| PartInfo {
                    part_number,
                    etag: p.etag.clone(),
                    size: p.data.len() as u64,
                })
                .collect())
        })
    }
}
