//! The memory store's reading side: HEAD, GET, DELETE, listing, restores and symlinks.

use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;

use super::{MAX_LIST_KEYS, MemoryStore, Object, archive_state, error, lock, md5_of, target};
use crate::store::{
    ArchiveState, GetOutput, GetRequest, ListPage, ListRequest, ListedObject, ObjectAttributes,
    ObjectKind, ObjectSource, ObjectStore, RestoreArchived, RestoreRequest, RestoreStatus,
    StoreError, StoreErrorKind, Symlinks, WriteRequest, same_etag,
};

impl ObjectStore for MemoryStore {
    type Restore = Self;
    type Symlinks = Self;

    fn scheme(&self) -> &'static str {
        "mem"
    }

    fn archive_restore(&self) -> Option<&Self> {
        self.inner.config.restore.then_some(self)
    }

    fn symlinks(&self) -> Option<&Self> {
        self.inner.config.symlinks.then_some(self)
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectAttributes, StoreError> {
        let _call = self.enter("HeadObject", bucket, key).await?;
        let (object, kind) = self.resolve("HeadObject", bucket, key)?;
        Ok(self.attributes(&object, kind))
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StoreError> {
        let _call = self.enter("DeleteObject", bucket, key).await?;
        let enforced = self.inner.config.conditional_writes.delete_if_match;
        self.with_bucket_mut("DeleteObject", bucket, key, |b, _| {
            if let Some(expected) = if_match.filter(|_| enforced) {
                // An object already gone counts as deleted, as on S3.
                let current = b.objects.get(key).map(|o| o.etag.clone());
                if current
                    .as_deref()
                    .is_some_and(|etag| !same_etag(expected, etag))
                {
                    return Err(error(
                        StoreErrorKind::PreconditionFailed,
                        "DeleteObject",
                        bucket,
                        key,
                        format!("the object is {current:?}, not {expected}"),
                    ));
                }
            }
            b.objects.remove(key);
            Ok(())
        })
    }

    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError> {
        let _call = self.enter("ListObjects", bucket, &request.prefix).await?;
        let state = lock(&self.inner.state);
        let objects = &state
            .buckets
            .get(bucket)
            .ok_or_else(|| {
                error(
                    StoreErrorKind::NotFound,
                    "ListObjects",
                    bucket,
                    "",
                    "no such bucket",
                )
            })?
            .objects;
        let max = request
            .max_keys
            .unwrap_or(MAX_LIST_KEYS)
            .clamp(1, MAX_LIST_KEYS) as usize;
        // The continuation token is the last key of the previous page. Keys are sorted (UTF-8
        // byte order), so the listing starts at the later of that key and the prefix, and stops
        // at the first key past the prefix.
        let after = request
            .continuation
            .as_ref()
            .or(request.start_after.as_ref());
        let lower = match after {
            Some(after) if after.as_str() >= request.prefix.as_str() => {
                std::ops::Bound::Excluded(after.as_str())
            }
            _ => std::ops::Bound::Included(request.prefix.as_str()),
        };
        let mut page = ListPage::default();
        let matching = objects
            .range::<str, _>((lower, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&request.prefix));
        for (key, object) in matching {
            if page.objects.len() == max {
                page.next = page.objects.last().map(|o| o.key.clone());
                break;
            }
            page.objects.push(ListedObject {
                key: key.clone(),
                size: object.data.len() as u64,
                etag: object.etag.clone(),
                last_modified: Some(object.last_modified),
                storage_class: Some(object.request.storage_class.clone().unwrap_or_default()),
            });
        }
        Ok(page)
    }
}

impl ObjectSource for MemoryStore {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        request: &GetRequest,
    ) -> Result<GetOutput, StoreError> {
        let (_call, applied) = self.enter("GetObject", bucket, key).await?;
        let (object, kind) = self.resolve("GetObject", bucket, key)?;
        let fail = |kind, message: String| error(kind, "GetObject", bucket, key, message);
        if let Some(expected) = &request.if_match
            && !same_etag(expected, &object.etag)
        {
            return Err(fail(
                StoreErrorKind::PreconditionFailed,
                format!("the ETag is {}, not {expected}", object.etag),
            ));
        }
        let attributes = self.attributes(&object, kind);
        if !attributes.archive.is_readable() {
            return Err(fail(
                StoreErrorKind::InvalidObjectState,
                "the object is archived; restore it first".to_owned(),
            ));
        }
        let size = object.data.len() as u64;
        let mut data = match &request.range {
            None => object.data.clone(),
            Some(range) if range.start < range.end && range.start < size => {
                let end = range.end.min(size);
                object
                    .data
                    .slice(crate::size::as_usize(range.start)..crate::size::as_usize(end))
            }
            Some(range) => {
                return Err(fail(
                    StoreErrorKind::InvalidRequest,
                    format!("range {range:?} is not within the {size} bytes"),
                ));
            }
        };
        if applied.corrupt && !data.is_empty() {
            let mut bytes = data.to_vec();
            bytes[0] ^= 0xFF;
            data = Bytes::from(bytes);
        }
        let origin = target(bucket, key);
        let body = match applied.truncate {
            Some(cut) if cut < data.len() => {
                let head = data.slice(..cut);
                futures::stream::iter([
                    Ok(head),
                    Err(StoreError::new(
                        StoreErrorKind::Unavailable,
                        "GetObject",
                        origin,
                        "injected truncation: the connection broke",
                    )),
                ])
                .boxed()
            }
            _ => futures::stream::iter(
                data.chunks(64 * 1024)
                    .map(|c| Ok(data.slice_ref(c)))
                    .collect::<Vec<_>>(),
            )
            .boxed(),
        };
        Ok(GetOutput { attributes, body })
    }
}

impl RestoreArchived for MemoryStore {
    async fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        request: &RestoreRequest,
    ) -> Result<RestoreStatus, StoreError> {
        let _call = self.enter("RestoreObject", bucket, key).await?;
        if request.days == 0 {
            return Err(error(
                StoreErrorKind::InvalidRequest,
                "RestoreObject",
                bucket,
                key,
                "a restore lasts at least one day",
            ));
        }
        let delay = self.inner.config.restore_delay;
        let state_of = archive_state;
        self.with_bucket_mut("RestoreObject", bucket, key, |b, _| {
            let object = b.objects.get_mut(key).ok_or_else(|| {
                error(
                    StoreErrorKind::NotFound,
                    "RestoreObject",
                    bucket,
                    key,
                    "no such key",
                )
            })?;
            match state_of(object) {
                ArchiveState::Online => Err(error(
                    StoreErrorKind::InvalidObjectState,
                    "RestoreObject",
                    bucket,
                    key,
                    "the object is not archived",
                )),
                ArchiveState::Restoring => Ok(RestoreStatus::InProgress),
                ArchiveState::Restored => Ok(RestoreStatus::Restored),
                ArchiveState::Archived => {
                    object.restored_at = Some(Instant::now() + delay);
                    Ok(RestoreStatus::Started)
                }
            }
        })
    }
}

impl Symlinks for MemoryStore {
    async fn symlink_target(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        let _call = self.enter("GetSymlink", bucket, key).await?;
        let state = lock(&self.inner.state);
        state
            .buckets
            .get(bucket)
            .and_then(|b| b.objects.get(key))
            .map(|o| o.symlink_target.clone())
            .ok_or_else(|| {
                error(
                    StoreErrorKind::NotFound,
                    "GetSymlink",
                    bucket,
                    key,
                    "no such key",
                )
            })
    }

    async fn put_symlink(&self, bucket: &str, key: &str, target: &str) -> Result<(), StoreError> {
        let _call = self.enter("PutSymlink", bucket, key).await?;
        self.check_key("PutSymlink", bucket, key)?;
        let object = Object {
            data: Bytes::new(),
            etag: format!("\"{}\"", hex::encode_upper(md5_of(target.as_bytes()))),
            crc64: 0,
            kind: ObjectKind::Symlink,
            request: WriteRequest::default(),
            symlink_target: Some(target.to_owned()),
            restored_at: None,
            last_modified: chrono::Utc::now(),
        };
        self.with_bucket_mut("PutSymlink", bucket, key, |b, _| {
            b.objects.insert(key.to_owned(), object);
            Ok(())
        })
    }
}
