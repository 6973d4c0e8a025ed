//! The copy algorithm: HEAD the source, HEAD the destination, then one PUT or a multipart upload
//! of pinned ranged GETs, verified by CRC-64 before anything becomes visible. Multipart copies,
//! resumes and deletes are in their own modules.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::error::{FailureKind, ReplicationError};
use super::marker::{self, marker_matches};
use super::outcome::{Outcome, SkipReason};
use super::settings::CopySettings;
use crate::store::{
    ArchiveState, BodyChecksums, ObjectAttributes, ObjectSink, ObjectSource, PartLimits,
    RestoreArchived, RestoreRequest, RestoreStatus, Symlinks, WriteRequest,
};
use crate::task::{ReplicationTask, TaskOp};

/// Copies objects from a source store to a sink store.
///
/// The sink must be `Clone + 'static` so that an upload abandoned by a panic or a cancelled
/// future can still be aborted from a spawned task.
#[derive(Debug, Clone)]
pub struct Replicator<S, D> {
    pub(super) source: S,
    pub(super) sink: D,
    pub(super) settings: CopySettings,
}

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// An engine copying from `source` to `sink` as `settings` say.
    pub fn new(source: S, sink: D, settings: CopySettings) -> Self {
        Self {
            source,
            sink,
            settings,
        }
    }

    /// The source store.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The destination store.
    pub fn sink(&self) -> &D {
        &self.sink
    }

    /// The settings.
    pub fn settings(&self) -> &CopySettings {
        &self.settings
    }

    /// Makes the destination reflect the source object `task` names.
    ///
    /// `deadline` is when the invocation ends (`None`: no limit). When less than
    /// [`CopySettings::deadline_margin`] remains, no new parts are started; the parts in flight
    /// finish and [`Outcome::Continue`] carries the rest.
    pub async fn replicate(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        match task.op {
            TaskOp::Delete if !self.settings.replicate_deletes => {
                Ok(Outcome::Skipped(SkipReason::DeletesDisabled))
            }
            TaskOp::Delete => self.delete(task, deadline).await,
            TaskOp::Put => match &task.continuation {
                Some(value) => self.resume(task, value, deadline).await,
                None => self.copy(task, deadline).await,
            },
        }
    }

    /// The destination key for a source key: `dst_prefix` + (key without `src_prefix`).
    pub fn destination_key(&self, src_key: &str) -> Result<String, ReplicationError> {
        let rest = src_key
            .strip_prefix(&self.settings.src_prefix)
            .ok_or_else(|| {
                ReplicationError::new(
                    FailureKind::InvalidKey,
                    format!(
                        "source key {src_key:?} does not start with the source prefix {:?}",
                        self.settings.src_prefix
                    ),
                )
            })?;
        let key = format!("{}{rest}", self.settings.dst_prefix);
        let max = self.sink.limits().max_key_len;
        if key.is_empty() {
            return Err(ReplicationError::new(
                FailureKind::InvalidKey,
                format!("source key {src_key:?} maps to an empty destination key"),
            ));
        }
        if key.len() > max {
            return Err(ReplicationError::new(
                FailureKind::InvalidKey,
                format!(
                    "destination key is {} bytes long; the destination allows at most {max} (source key {src_key:?})",
                    key.len()
                ),
            ));
        }
        Ok(key)
    }

    /// Copies the source's current state, restarting once from HEAD if it changes meanwhile.
    pub(super) async fn copy(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        match self.copy_current(task, deadline).await {
            Err(e) if e.kind == FailureKind::SourceChanged => {
                tracing::info!(key = %task.source.key, reason = %e.reason, "source changed during the copy; restarting from HEAD");
                self.copy_current(task, deadline).await
            }
            other => other,
        }
    }

    /// One attempt of [`Self::copy`]: find the source, then copy it.
    async fn copy_current(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        if let Some((src_key, attributes)) = self.find_source(task).await? {
            self.copy_object(task, &src_key, attributes, deadline).await
        } else {
            tracing::info!(bucket = %task.source.bucket, key = %task.source.key, "source gone");
            Ok(Outcome::Skipped(SkipReason::SourceGone))
        }
    }

    /// HEADs the task's key candidates in order: the first that exists, or `None`.
    pub(super) async fn find_source(
        &self,
        task: &ReplicationTask,
    ) -> Result<Option<(String, ObjectAttributes)>, ReplicationError> {
        for key in task.source.key_candidates() {
            match self.source.head_object(&task.source.bucket, &key).await {
                Ok(attributes) => return Ok(Some((key.into_owned(), attributes))),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ReplicationError::from_source(e)),
            }
        }
        Ok(None)
    }

    /// Copies the source object `src_key` (already HEADed) unless the destination holds it.
    async fn copy_object(
        &self,
        task: &ReplicationTask,
        src_key: &str,
        attributes: ObjectAttributes,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let src_bucket = &task.source.bucket;
        let dst_bucket = &self.settings.dst_bucket;
        let dst_key = self.destination_key(src_key)?;
        if !attributes.archive.is_readable() {
            return Err(self.restore(src_bucket, src_key, &attributes).await);
        }
        let symlink_target = match self.source.symlinks() {
            Some(links) if attributes.is_symlink() => links
                .symlink_target(src_bucket, src_key)
                .await
                .map_err(ReplicationError::from_source)?,
            _ => None,
        };
        let marker = marker::source_marker(
            self.source.scheme(),
            src_bucket,
            src_key,
            &attributes,
            symlink_target.as_deref(),
        );
        match self.sink.head_object(dst_bucket, &dst_key).await {
            Ok(existing) if marker_matches(&marker, &existing.user_metadata) => {
                return Ok(Outcome::Skipped(SkipReason::AlreadyReplicated));
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(ReplicationError::from_sink(e)),
        }
        let limits = self.sink.limits();
        if attributes.size > limits.max_object_size {
            return Err(ReplicationError::new(
                FailureKind::ObjectTooLarge,
                format!(
                    "{}://{src_bucket}/{src_key} is {} bytes; the destination allows at most {}",
                    self.source.scheme(),
                    attributes.size,
                    limits.max_object_size
                ),
            ));
        }
        let request = self.write_request(&attributes, marker, &limits)?;
        let threshold = self.settings.multipart_threshold.min(limits.max_single_put);
        if attributes.size == 0 || attributes.size <= threshold {
            self.copy_single(src_bucket, src_key, &attributes, &dst_key, &request)
                .await
        } else {
            self.copy_multipart(task, src_key, &attributes, &dst_key, &request, deadline)
                .await
        }
    }

    /// The attributes to write: the source's content headers and user metadata plus the marker,
    /// within the sink's metadata limit.
    fn write_request(
        &self,
        attributes: &ObjectAttributes,
        marker: BTreeMap<String, String>,
        limits: &PartLimits,
    ) -> Result<WriteRequest, ReplicationError> {
        let mut user_metadata = attributes.user_metadata.clone();
        user_metadata.extend(marker);
        // S3 counts the UTF-8 bytes of every user metadata name and value against its 2 KB.
        let size = PartLimits::user_metadata_size(&user_metadata);
        if let Some(max) = limits.max_user_metadata
            && size > max
        {
            return Err(ReplicationError::new(
                FailureKind::MetadataTooLarge,
                format!(
                    "user metadata is {size} bytes with the replication marker ({} bytes from the source); the destination allows at most {max}",
                    PartLimits::user_metadata_size(&attributes.user_metadata)
                ),
            ));
        }
        Ok(WriteRequest {
            content: attributes.content.clone(),
            user_metadata,
            storage_class: self.settings.storage_class.clone(),
            encryption: self.settings.sse.clone(),
        })
    }

    /// Starts (or notes) a restore of an archived source and returns the error to report.
    async fn restore(
        &self,
        bucket: &str,
        key: &str,
        attributes: &ObjectAttributes,
    ) -> ReplicationError {
        let class = attributes
            .storage_class
            .as_ref()
            .map_or("archive", |c| c.as_str());
        let object = format!("{}://{bucket}/{key}", self.source.scheme());
        let Some(restore) = self.settings.restore else {
            return ReplicationError::new(
                FailureKind::ArchivedNoRestore,
                format!("{object} is in storage class {class} and restoring is disabled"),
            );
        };
        let in_progress = |what: &str| {
            ReplicationError::new(
                FailureKind::RestoreInProgress,
                format!("{object} is in storage class {class}: {what}"),
            )
            .with_retry_after(restore.retry_after)
        };
        if attributes.archive == ArchiveState::Restoring {
            return in_progress("a restore is running");
        }
        let Some(restorer) = self.source.archive_restore() else {
            return ReplicationError::new(
                FailureKind::ArchivedNoRestore,
                format!(
                    "{object} is in storage class {class}, and {} sources cannot restore archived objects",
                    self.source.scheme()
                ),
            );
        };
        let request = RestoreRequest {
            days: restore.days,
            tier: restore.tier,
        };
        match restorer.restore_object(bucket, key, &request).await {
            Ok(RestoreStatus::Started) => in_progress("restore requested"),
            Ok(RestoreStatus::InProgress) => in_progress("a restore is running"),
            Ok(RestoreStatus::Restored) => ReplicationError::new(
                FailureKind::RestoreInProgress,
                format!("{object} was restored just now; retry"),
            ),
            Err(e) => ReplicationError::from_source(e),
        }
    }

    /// One GET into memory, verified, then one PUT.
    async fn copy_single(
        &self,
        src_bucket: &str,
        src_key: &str,
        attributes: &ObjectAttributes,
        dst_key: &str,
        request: &WriteRequest,
    ) -> Result<Outcome, ReplicationError> {
        let body = self
            .read(src_bucket, src_key, &attributes.etag, None, attributes.size)
            .await?;
        let checksums = BodyChecksums::of(&body);
        self.verify(src_bucket, src_key, attributes.crc64, checksums)?;
        self.sink
            .put_object(&self.settings.dst_bucket, dst_key, body, checksums, request)
            .await
            .map_err(ReplicationError::from_sink)?;
        Ok(Outcome::Copied {
            bytes: attributes.size,
            multipart: false,
            parts: 1,
        })
    }

    /// Compares the CRC-64 of the bytes copied with the source's.
    pub(super) fn verify(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<u64>,
        copied: BodyChecksums,
    ) -> Result<(), ReplicationError> {
        match expected {
            Some(expected) if expected != copied.crc64_xz => Err(ReplicationError::new(
                FailureKind::ChecksumMismatch,
                format!(
                    "{}://{bucket}/{key}: the {} bytes copied have CRC-64 {}, the source reports {expected}; nothing was written",
                    self.source.scheme(),
                    copied.len,
                    copied.crc64_xz
                ),
            )),
            Some(_) => Ok(()),
            None => {
                tracing::warn!(
                    bucket,
                    key,
                    "the source reports no CRC-64; copied without end-to-end verification"
                );
                Ok(())
            }
        }
    }
}
