//! The request-count floor, for tasks that say how they were delivered ([`Delivery`]).
//!
//! - **A first delivery of a small object** (up to [`FRESH_COPY_MAX`]) whose task names its
//!   ETag and size costs two
//!   requests: a GET pinned to that ETag (its answer carries everything a HEAD would: ETag,
//!   checksums, content headers, user metadata), then a PUT with `If-None-Match: *`. Only when
//!   the destination already holds something (the PUT's 412) does the copy look at the
//!   destination's marker, as every copy used to. A GET that finds the source changed, gone or
//!   archived, or a symlink, leaves the task to the full path (source HEAD, destination HEAD).
//! - **A repeated delivery** of an event that created content (not a copy, which may change
//!   only the metadata and keep the ETag) is done with one destination HEAD when the
//!   destination's marker names the task's source key, ETag and size: the first delivery's
//!   copy got there, and every later change of the source raises an event of its own. Otherwise
//!   the task takes the full path.

use tokio::time::Instant;

use super::engine::{Replicator, Target};
use super::error::ReplicationError;
use super::marker::{MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE, SourceVersion, source_url};
use super::outcome::{Outcome, SkipReason};
use crate::store::{ObjectSink, ObjectSource, StoreErrorKind, WriteCondition, same_etag};
use crate::task::ReplicationTask;

/// The largest object a first delivery reads without a HEAD. Up to this size the HEAD's round
/// trip costs more than its bytes, and what the GET may read for nothing stays small: the body
/// of an object the destination already holds (a duplicate delivery), or of a replica the other
/// direction wrote (two-way mode, where the GET's headers show it and nothing is written).
pub const FRESH_COPY_MAX: u64 = crate::size::MIB;

/// How the task reached the engine, as far as the caller knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Delivery {
    /// Not known (a migration job's in-process copy, a test): the full path, source HEAD first.
    #[default]
    Unknown,
    /// The first delivery of the message (SQS `ApproximateReceiveCount` 1).
    First,
    /// A later delivery: an earlier one may have copied the object already.
    Repeated,
}

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// The shortcut `delivery` allows for `task`: `Some` outcome when it settled the task,
    /// `None` when the task takes the full path.
    pub(super) async fn shortcut(
        &self,
        task: &ReplicationTask,
        delivery: Delivery,
        deadline: Option<Instant>,
    ) -> Result<Option<Outcome>, ReplicationError> {
        let (Some(etag), Some(size)) = (task.source.etag.as_deref(), task.source.size) else {
            return Ok(None);
        };
        match delivery {
            Delivery::First if size <= self.single_put_limit() => {
                self.copy_fresh(task, etag, size, deadline).await
            }
            Delivery::Repeated if creates_content(task) => {
                self.already_replicated(task, etag, size).await
            }
            _ => Ok(None),
        }
    }

    /// The largest object copied with one GET and one PUT: [`FRESH_COPY_MAX`], or less when
    /// single PUTs are smaller.
    fn single_put_limit(&self) -> u64 {
        FRESH_COPY_MAX
            .min(self.settings.multipart_threshold)
            .min(self.sink.limits().max_single_put)
    }

    /// GET pinned to the task's ETag, then PUT `If-None-Match: *`.
    async fn copy_fresh(
        &self,
        task: &ReplicationTask,
        etag: &str,
        size: u64,
        deadline: Option<Instant>,
    ) -> Result<Option<Outcome>, ReplicationError> {
        let (bucket, key) = (&task.source.bucket, &task.source.key);
        let dst_key = self.destination_key(key)?;
        let work = async {
            let _budget = self.reserve(size).await;
            let (attributes, body) = match self
                .read_with_attributes(bucket, key, etag, None, size)
                .await
            {
                Ok(read) => read,
                // Changed, gone, archived, or a key the task spells encoded: the full path
                // finds the current version under every key candidate.
                Err(e)
                    if e.is_not_found()
                        || matches!(
                            e.kind(),
                            StoreErrorKind::PreconditionFailed | StoreErrorKind::InvalidObjectState
                        ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(ReplicationError::from_source(e)),
            };
            if attributes.is_symlink() || !attributes.archive.is_readable() {
                return Ok(None);
            }
            if self.is_replica_of(&attributes, &dst_key) {
                return Ok(Some(Outcome::Skipped(SkipReason::ReplicaOfDestination)));
            }
            let version = SourceVersion::of(&attributes);
            let marker = version.marker(self.source.scheme(), bucket, key, None);
            let request = self.write_request(&attributes, marker.clone(), &self.sink.limits())?;
            let target = Target {
                src_key: key.clone(),
                version,
                dst_key,
                marker,
                condition: WriteCondition::IfAbsent,
            };
            self.put_verified(bucket, target, &request, body)
                .await
                .map(Some)
        };
        self.before_stop(size, deadline, Box::pin(work)).await
    }

    /// One destination HEAD: whether its marker names the task's source key, ETag and size.
    async fn already_replicated(
        &self,
        task: &ReplicationTask,
        etag: &str,
        size: u64,
    ) -> Result<Option<Outcome>, ReplicationError> {
        let (bucket, key) = (&task.source.bucket, &task.source.key);
        let dst_key = self.destination_key(key)?;
        let existing = match self
            .sink
            .head_object(&self.settings.dst_bucket, &dst_key)
            .await
        {
            Ok(existing) => existing,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(ReplicationError::from_sink(e)),
        };
        let marker = &existing.user_metadata;
        let names_it = marker.get(MARKER_SOURCE)
            == Some(&source_url(self.source.scheme(), bucket, key))
            && marker.get(MARKER_ETAG).is_some_and(|e| same_etag(e, etag))
            && marker.get(MARKER_SIZE) == Some(&size.to_string());
        Ok(names_it.then_some(Outcome::Skipped(SkipReason::AlreadyReplicated)))
    }
}

/// Whether the task's event wrote new content under its ETag: a create that is not a copy (a
/// copy onto itself may change only the metadata and keep the ETag).
fn creates_content(task: &ReplicationTask) -> bool {
    task.event_name
        .as_deref()
        .is_some_and(|name| name.starts_with("ObjectCreated:") && !name.contains("Copy"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::SourceObject;

    fn task(event: Option<&str>) -> ReplicationTask {
        ReplicationTask {
            event_name: event.map(str::to_owned),
            ..ReplicationTask::put(SourceObject {
                region: "cn-hangzhou".into(),
                bucket: "b".into(),
                key: "k".into(),
                size: Some(1),
                etag: Some("E".into()),
            })
        }
    }

    #[test]
    fn only_content_creating_events_may_skip_on_the_etag() {
        for event in [
            "ObjectCreated:PutObject",
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectCreated:AppendObject",
            "ObjectCreated:Put",
            "ObjectCreated:Post",
        ] {
            assert!(creates_content(&task(Some(event))), "{event}");
        }
        for event in [
            "ObjectCreated:CopyObject",
            "ObjectCreated:Copy",
            "ObjectModified:UpdateObjectMeta",
        ] {
            assert!(!creates_content(&task(Some(event))), "{event}");
        }
        assert!(!creates_content(&task(None)), "a job's task has no event");
    }
}
