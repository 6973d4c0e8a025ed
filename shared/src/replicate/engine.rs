//! The copy algorithm: HEAD the source, HEAD the destination, then one PUT or a multipart upload
//! of pinned ranged GETs, verified by CRC-64 before anything becomes visible.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, stream};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::time::Instant;

use super::error::{FailureKind, ReplicationError};
use super::settings::{Continuation, ContinuedPart, CopySettings};
use super::{MARKER_CRC64, MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE, MARKER_SYMLINK_TARGET};
use crate::store::{
    ArchiveState, BodyChecksums, CompletedPart, GetRequest, ObjectAttributes, ObjectSink,
    ObjectSource, PartLimits, RestoreRequest, RestoreStatus, StoreError, StoreErrorKind,
    WriteRequest,
};
use crate::task::{ReplicationTask, TaskOp};

/// How often one source read (a part, or a small object) is tried before the copy fails.
const READ_ATTEMPTS: u32 = 3;
/// The first pause between read attempts; it doubles.
const READ_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between read attempts, also when the source asks for more.
const MAX_READ_BACKOFF: Duration = Duration::from_secs(2);

/// Bytes kept as they are in the `oss2s3-src` marker; the rest is percent-encoded.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// What [`Replicator::replicate`] did.
// One `Outcome` is returned per object, so its size does not matter; the task stays unboxed so
// callers can match and move it directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The object was copied.
    Copied {
        /// The object's size in bytes.
        bytes: u64,
        /// Whether a multipart upload was used.
        multipart: bool,
        /// How many parts the object has (1 for a single PUT).
        parts: u32,
    },
    /// Nothing needed doing.
    Skipped(SkipReason),
    /// The destination object was deleted.
    Deleted,
    /// The copy was interrupted by the deadline: enqueue this task (it carries a
    /// [`Continuation`]); the original message is done.
    Continue(ReplicationTask),
}

/// Why a task needed no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The destination's marker shows it already holds this version of the source.
    AlreadyReplicated,
    /// The source object no longer exists (under any of the task's key candidates).
    SourceGone,
    /// A delete task, but the destination object was not written from this source key.
    DeleteNotOwned,
    /// A delete task, and the destination object does not exist.
    DestinationAbsent,
    /// A delete task, and deletes are not replicated.
    DeletesDisabled,
}

impl SkipReason {
    /// A stable name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyReplicated => "AlreadyReplicated",
            Self::SourceGone => "SourceGone",
            Self::DeleteNotOwned => "DeleteNotOwned",
            Self::DestinationAbsent => "DestinationAbsent",
            Self::DeletesDisabled => "DeletesDisabled",
        }
    }
}

/// Copies objects from a source store to a sink store.
///
/// The sink must be `Clone + 'static` so that an upload abandoned by a panic or a cancelled
/// future can still be aborted from a spawned task.
#[derive(Debug, Clone)]
pub struct Replicator<S, D> {
    source: S,
    sink: D,
    settings: CopySettings,
}

/// A multipart copy in progress: what is copied where, in which parts.
#[derive(Debug, Clone)]
struct Plan {
    src_bucket: String,
    src_key: String,
    src_etag: String,
    size: u64,
    src_crc64: Option<u64>,
    part_size: u64,
    dst_key: String,
    upload_id: String,
}

impl Plan {
    fn part_count(&self) -> u32 {
        u32::try_from(self.size.div_ceil(self.part_size)).unwrap_or(u32::MAX)
    }

    fn range(&self, part_number: u32) -> Range<u64> {
        let start = u64::from(part_number - 1) * self.part_size;
        start..(start + self.part_size).min(self.size)
    }
}

/// A part uploaded to the sink.
#[derive(Debug, Clone)]
struct DonePart {
    etag: String,
    checksums: BodyChecksums,
}

/// Aborts a multipart upload unless disarmed: explicitly with [`UploadGuard::abort`], or from a
/// spawned task when dropped armed (a panic, an early return, a cancelled future).
struct UploadGuard<D: ObjectSink + Clone + 'static> {
    sink: D,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl<D: ObjectSink + Clone + 'static> UploadGuard<D> {
    fn new(sink: D, bucket: &str, key: &str, upload_id: &str) -> Self {
        Self {
            sink,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            armed: true,
        }
    }

    /// Aborts the upload now (trying twice), logging a failure.
    async fn abort(mut self) {
        self.armed = false;
        for attempt in 1..=2 {
            match self
                .sink
                .abort_multipart_upload(&self.bucket, &self.key, &self.upload_id)
                .await
            {
                Ok(()) => return,
                Err(e) => tracing::warn!(
                    upload_id = %self.upload_id, attempt, error = %e,
                    "aborting the multipart upload failed"
                ),
            }
        }
    }

    /// Leaves the upload alone (it was completed, or is handed to a continuation).
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl<D: ObjectSink + Clone + 'static> Drop for UploadGuard<D> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(upload_id = %self.upload_id, "multipart upload left behind: no runtime to abort it");
            return;
        };
        let sink = self.sink.clone();
        let (bucket, key, upload_id) = (
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.upload_id),
        );
        runtime.spawn(async move {
            if let Err(e) = sink.abort_multipart_upload(&bucket, &key, &upload_id).await {
                tracing::warn!(%upload_id, error = %e, "aborting an abandoned multipart upload failed");
            }
        });
    }
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
    async fn copy(
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

    async fn copy_current(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        match self.find_source(task).await? {
            Some((src_key, attributes)) => {
                self.copy_object(task, &src_key, attributes, deadline).await
            }
            None => {
                tracing::info!(bucket = %task.source.bucket, key = %task.source.key, "source gone");
                Ok(Outcome::Skipped(SkipReason::SourceGone))
            }
        }
    }

    /// HEADs the task's key candidates in order: the first that exists, or `None`.
    async fn find_source(
        &self,
        task: &ReplicationTask,
    ) -> Result<Option<(String, ObjectAttributes)>, ReplicationError> {
        for key in task.source.key_candidates() {
            match self.source.head_object(&task.source.bucket, &key).await {
                Ok(attributes) => return Ok(Some((key.into_owned(), attributes))),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(ReplicationError::from_source(e)),
            }
        }
        Ok(None)
    }

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
        let symlink_target = if attributes.is_symlink() {
            self.source
                .symlink_target(src_bucket, src_key)
                .await
                .map_err(ReplicationError::from_source)?
        } else {
            None
        };
        let marker = self.marker(src_bucket, src_key, &attributes, symlink_target.as_deref());
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

    /// The marker metadata naming this source version.
    fn marker(
        &self,
        bucket: &str,
        key: &str,
        attributes: &ObjectAttributes,
        symlink_target: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut marker = BTreeMap::from([
            (
                MARKER_SOURCE.to_owned(),
                source_url(self.source.scheme(), bucket, key),
            ),
            (
                MARKER_ETAG.to_owned(),
                attributes.etag_unquoted().to_owned(),
            ),
            (MARKER_SIZE.to_owned(), attributes.size.to_string()),
        ]);
        if let Some(crc) = attributes.crc64 {
            marker.insert(MARKER_CRC64.to_owned(), crc.to_string());
        }
        if let Some(target) = symlink_target {
            marker.insert(
                MARKER_SYMLINK_TARGET.to_owned(),
                utf8_percent_encode(target, KEY_ENCODE).to_string(),
            );
        }
        marker
    }

    fn write_request(
        &self,
        attributes: &ObjectAttributes,
        marker: BTreeMap<String, String>,
        limits: &PartLimits,
    ) -> Result<WriteRequest, ReplicationError> {
        let mut user_metadata = attributes.user_metadata.clone();
        user_metadata.extend(marker);
        // S3 counts the UTF-8 bytes of every user metadata name and value against its 2 KB.
        let size: usize = user_metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if let Some(max) = limits.max_user_metadata
            && size > max
        {
            return Err(ReplicationError::new(
                FailureKind::MetadataTooLarge,
                format!(
                    "user metadata is {size} bytes with the replication marker ({} bytes from the source); the destination allows at most {max}",
                    attributes
                        .user_metadata
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
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
        let class = attributes.storage_class.as_deref().unwrap_or("archive");
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
        let request = RestoreRequest {
            days: restore.days,
            tier: restore.tier,
        };
        match self.source.restore_object(bucket, key, &request).await {
            Ok(RestoreStatus::Started) => in_progress("restore requested"),
            Ok(RestoreStatus::InProgress) => in_progress("a restore is running"),
            Ok(RestoreStatus::Restored) => ReplicationError::new(
                FailureKind::RestoreInProgress,
                format!("{object} was restored just now; retry"),
            ),
            Err(e) => ReplicationError::from_source(e),
        }
    }

    /// Reads `range` (the whole object when `None`) pinned to `etag`, trying retryable failures
    /// again, and checks the length.
    async fn read(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        range: Option<Range<u64>>,
        len: u64,
    ) -> Result<Bytes, ReplicationError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.read_once(bucket, key, etag, range.clone(), len).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.is_retryable() && attempt < READ_ATTEMPTS => {
                    let pause = e
                        .retry_after()
                        .unwrap_or(READ_BACKOFF * 2u32.pow(attempt - 1))
                        .min(MAX_READ_BACKOFF);
                    tracing::debug!(key, attempt, error = %e, "source read failed; retrying");
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(ReplicationError::from_source(e)),
            }
        }
    }

    async fn read_once(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        range: Option<Range<u64>>,
        len: u64,
    ) -> Result<Bytes, StoreError> {
        let request = GetRequest {
            range,
            if_match: Some(etag.to_owned()),
        };
        let output = self.source.get_object(bucket, key, &request).await?;
        let mut body = output.body;
        let mut buffer = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
        let short = |detail: String| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                "GetObject",
                format!("{}://{bucket}/{key}", self.source.scheme()),
                detail,
            )
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if buffer.len() as u64 + chunk.len() as u64 > len {
                return Err(short(format!(
                    "received more than the {len} bytes asked for"
                )));
            }
            buffer.extend_from_slice(&chunk);
        }
        if buffer.len() as u64 != len {
            return Err(short(format!("received {} of {len} bytes", buffer.len())));
        }
        Ok(buffer.freeze())
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
    fn verify(
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

    async fn copy_multipart(
        &self,
        task: &ReplicationTask,
        src_key: &str,
        attributes: &ObjectAttributes,
        dst_key: &str,
        request: &WriteRequest,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let dst_bucket = &self.settings.dst_bucket;
        let part_size = choose_part_size(
            self.settings.part_size,
            attributes.size,
            &self.sink.limits(),
        )?;
        let upload_id = self
            .sink
            .create_multipart_upload(dst_bucket, dst_key, request)
            .await
            .map_err(ReplicationError::from_sink)?;
        let guard = UploadGuard::new(self.sink.clone(), dst_bucket, dst_key, &upload_id);
        let plan = Plan {
            src_bucket: task.source.bucket.clone(),
            src_key: src_key.to_owned(),
            src_etag: attributes.etag.clone(),
            size: attributes.size,
            src_crc64: attributes.crc64,
            part_size,
            dst_key: dst_key.to_owned(),
            upload_id,
        };
        self.upload_parts(task, plan, guard, BTreeMap::new(), 0, deadline)
            .await
    }

    /// Copies one part: a pinned ranged GET into memory, then UploadPart with its checksums.
    async fn copy_part(
        &self,
        plan: &Plan,
        part_number: u32,
    ) -> Result<(u32, DonePart), ReplicationError> {
        let range = plan.range(part_number);
        let len = range.end - range.start;
        let body = self
            .read(
                &plan.src_bucket,
                &plan.src_key,
                &plan.src_etag,
                Some(range),
                len,
            )
            .await?;
        let checksums = BodyChecksums::of(&body);
        let part = self
            .sink
            .upload_part(
                &self.settings.dst_bucket,
                &plan.dst_key,
                &plan.upload_id,
                part_number,
                body,
                checksums,
            )
            .await
            .map_err(ReplicationError::from_sink)?;
        Ok((
            part_number,
            DonePart {
                etag: part.etag,
                checksums,
            },
        ))
    }

    /// Uploads the parts not yet in `done` with at most `part_concurrency` in flight, then
    /// verifies and completes, or hands the upload to a continuation when the deadline nears.
    async fn upload_parts(
        &self,
        task: &ReplicationTask,
        plan: Plan,
        guard: UploadGuard<D>,
        mut done: BTreeMap<u32, DonePart>,
        hops: u32,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let total = plan.part_count();
        let todo: Vec<u32> = (1..=total).filter(|n| !done.contains_key(n)).collect();
        let margin = self.settings.deadline_margin;
        // Every invocation copies at least one part, so a too-short deadline still progresses.
        let mut first = true;
        let schedule = move |_: &u32| {
            let go = first
                || deadline.is_none_or(|d| d.saturating_duration_since(Instant::now()) >= margin);
            first = false;
            std::future::ready(go)
        };
        let mut failure = None;
        {
            let results = stream::iter(todo)
                .take_while(schedule)
                .map(|n| self.copy_part(&plan, n))
                .buffer_unordered(self.settings.part_concurrency.max(1));
            futures::pin_mut!(results);
            while let Some(result) = results.next().await {
                match result {
                    Ok((n, part)) => {
                        done.insert(n, part);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(error) = failure {
            guard.abort().await;
            return Err(error);
        }
        if done.len() < total as usize {
            let continuation = Continuation {
                upload_id: plan.upload_id.clone(),
                dst_key: plan.dst_key.clone(),
                src_key: plan.src_key.clone(),
                src_etag: plan.src_etag.clone(),
                src_size: plan.size,
                src_crc64: plan.src_crc64,
                part_size: plan.part_size,
                parts: done
                    .iter()
                    .map(|(&part_number, part)| ContinuedPart {
                        part_number,
                        len: part.checksums.len,
                        crc64: part.checksums.crc64_xz,
                        crc64_nvme: part.checksums.crc64_nvme,
                    })
                    .collect(),
                hops: hops + 1,
            };
            tracing::info!(
                upload_id = %plan.upload_id, done = done.len(), total,
                "deadline near; continuing in a new task"
            );
            guard.disarm();
            let mut next = task.clone();
            next.op = TaskOp::Put;
            next.continuation = Some(continuation.to_value());
            return Ok(Outcome::Continue(next));
        }
        let whole = done
            .values()
            .fold(BodyChecksums::empty(), |acc, p| acc.then(p.checksums));
        if whole.len != plan.size {
            guard.abort().await;
            return Err(ReplicationError::new(
                FailureKind::ChecksumMismatch,
                format!(
                    "the parts hold {} bytes, the source {}; nothing was written",
                    whole.len, plan.size
                ),
            ));
        }
        if let Err(e) = self.verify(&plan.src_bucket, &plan.src_key, plan.src_crc64, whole) {
            guard.abort().await;
            return Err(e);
        }
        let parts: Vec<CompletedPart> = done
            .into_iter()
            .map(|(part_number, part)| CompletedPart {
                part_number,
                etag: part.etag,
                checksums: part.checksums,
            })
            .collect();
        let dst_bucket = &self.settings.dst_bucket;
        match self
            .sink
            .complete_multipart_upload(dst_bucket, &plan.dst_key, &plan.upload_id, &parts, whole)
            .await
        {
            Ok(_) => {
                guard.disarm();
                Ok(Outcome::Copied {
                    bytes: plan.size,
                    multipart: true,
                    parts: total,
                })
            }
            Err(e) => {
                // An earlier attempt may have completed the upload and lost the answer.
                if e.is_not_found() && self.destination_holds(&plan).await {
                    guard.disarm();
                    return Ok(Outcome::Copied {
                        bytes: plan.size,
                        multipart: true,
                        parts: total,
                    });
                }
                guard.abort().await;
                Err(ReplicationError::from_sink(e))
            }
        }
    }

    /// Whether the destination already holds the plan's source version (by its marker).
    async fn destination_holds(&self, plan: &Plan) -> bool {
        let Ok(existing) = self
            .sink
            .head_object(&self.settings.dst_bucket, &plan.dst_key)
            .await
        else {
            return false;
        };
        let meta = &existing.user_metadata;
        meta.get(MARKER_SOURCE)
            == Some(&source_url(
                self.source.scheme(),
                &plan.src_bucket,
                &plan.src_key,
            ))
            && meta.get(MARKER_ETAG).map(String::as_str)
                == Some(crate::oss::meta::unquote_etag(&plan.src_etag))
            && meta.get(MARKER_SIZE) == Some(&plan.size.to_string())
    }

    /// Resumes a multipart copy from a continuation.
    async fn resume(
        &self,
        task: &ReplicationTask,
        value: &serde_json::Value,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let continuation = Continuation::from_value(value).map_err(|e| {
            ReplicationError::new(
                FailureKind::InvalidTask,
                format!("the task's continuation cannot be read: {e}"),
            )
        })?;
        let dst_bucket = &self.settings.dst_bucket;
        let guard = UploadGuard::new(
            self.sink.clone(),
            dst_bucket,
            &continuation.dst_key,
            &continuation.upload_id,
        );
        let mut fresh = task.clone();
        fresh.continuation = None;
        let src_bucket = &task.source.bucket;
        let attributes = match self
            .source
            .head_object(src_bucket, &continuation.src_key)
            .await
        {
            Ok(attributes) => attributes,
            Err(e) if e.is_not_found() => {
                guard.abort().await;
                return Ok(Outcome::Skipped(SkipReason::SourceGone));
            }
            Err(e) => {
                guard.abort().await;
                return Err(ReplicationError::from_source(e));
            }
        };
        if attributes.etag != continuation.src_etag || attributes.size != continuation.src_size {
            tracing::info!(key = %continuation.src_key, "source changed since the copy began; restarting");
            guard.abort().await;
            return self.copy(&fresh, deadline).await;
        }
        let listed = match self
            .sink
            .list_parts(dst_bucket, &continuation.dst_key, &continuation.upload_id)
            .await
        {
            Ok(parts) => parts,
            Err(e) if e.is_not_found() => {
                tracing::info!(upload_id = %continuation.upload_id, "the upload is gone; restarting");
                guard.disarm();
                return self.copy(&fresh, deadline).await;
            }
            Err(e) => {
                guard.abort().await;
                return Err(ReplicationError::from_sink(e));
            }
        };
        let plan = Plan {
            src_bucket: src_bucket.clone(),
            src_key: continuation.src_key.clone(),
            src_etag: continuation.src_etag.clone(),
            size: continuation.src_size,
            src_crc64: continuation.src_crc64.or(attributes.crc64),
            part_size: continuation.part_size,
            dst_key: continuation.dst_key.clone(),
            upload_id: continuation.upload_id.clone(),
        };
        if plan.part_size == 0 || plan.part_count() > self.sink.limits().max_parts {
            guard.abort().await;
            return Err(ReplicationError::new(
                FailureKind::InvalidTask,
                format!(
                    "the continuation's part size {} is unusable",
                    plan.part_size
                ),
            ));
        }
        // Keep the recorded parts that the sink holds with the recorded length; anything else
        // is uploaded again (which replaces a part of the same number).
        let listed: HashMap<u32, _> = listed.into_iter().map(|p| (p.part_number, p)).collect();
        let mut done = BTreeMap::new();
        for part in &continuation.parts {
            let expected = plan.range(part.part_number.max(1));
            if part.part_number == 0
                || part.part_number > plan.part_count()
                || part.len != expected.end - expected.start
            {
                continue;
            }
            if let Some(held) = listed.get(&part.part_number)
                && held.size == part.len
            {
                done.insert(
                    part.part_number,
                    DonePart {
                        etag: held.etag.clone(),
                        checksums: BodyChecksums {
                            crc64_xz: part.crc64,
                            crc64_nvme: part.crc64_nvme,
                            len: part.len,
                        },
                    },
                );
            }
        }
        tracing::info!(
            upload_id = %plan.upload_id, kept = done.len(), total = plan.part_count(),
            "resuming a multipart copy"
        );
        self.upload_parts(task, plan, guard, done, continuation.hops, deadline)
            .await
    }

    /// A delete task: copy the source if it exists again, else delete the destination if its
    /// marker names this source key.
    async fn delete(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        if self.find_source(task).await?.is_some() {
            let mut put = task.clone();
            put.op = TaskOp::Put;
            return self.copy(&put, deadline).await;
        }
        let dst_bucket = &self.settings.dst_bucket;
        let mut not_owned = false;
        for key in task.source.key_candidates() {
            let Ok(dst_key) = self.destination_key(&key) else {
                continue;
            };
            match self.sink.head_object(dst_bucket, &dst_key).await {
                Ok(existing) => {
                    let source = source_url(self.source.scheme(), &task.source.bucket, &key);
                    if existing.user_metadata.get(MARKER_SOURCE) == Some(&source) {
                        self.sink
                            .delete_object(dst_bucket, &dst_key)
                            .await
                            .map_err(ReplicationError::from_sink)?;
                        return Ok(Outcome::Deleted);
                    }
                    not_owned = true;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ReplicationError::from_sink(e)),
            }
        }
        Ok(Outcome::Skipped(if not_owned {
            SkipReason::DeleteNotOwned
        } else {
            SkipReason::DestinationAbsent
        }))
    }
}

/// The part size for an object of `size` bytes: `configured`, raised so that the parts fit the
/// sink's part count, within the sink's part size limits.
fn choose_part_size(
    configured: u64,
    size: u64,
    limits: &PartLimits,
) -> Result<u64, ReplicationError> {
    let needed = size.div_ceil(u64::from(limits.max_parts));
    let part_size = configured
        .max(needed)
        .clamp(limits.min_part_size, limits.max_part_size);
    if size.div_ceil(part_size) > u64::from(limits.max_parts) {
        return Err(ReplicationError::new(
            FailureKind::ObjectTooLarge,
            format!(
                "{size} bytes need more than {} parts of at most {} bytes",
                limits.max_parts, limits.max_part_size
            ),
        ));
    }
    Ok(part_size)
}

/// `scheme://bucket/key` with the key percent-encoded (all but `A-Za-z0-9-_.~/`).
pub(crate) fn source_url(scheme: &str, bucket: &str, key: &str) -> String {
    format!(
        "{scheme}://{bucket}/{}",
        utf8_percent_encode(key, KEY_ENCODE)
    )
}

/// Whether the destination's metadata names the same source version as `marker`.
fn marker_matches(marker: &BTreeMap<String, String>, existing: &BTreeMap<String, String>) -> bool {
    [MARKER_SOURCE, MARKER_ETAG, MARKER_CRC64, MARKER_SIZE]
        .iter()
        .all(|name| marker.get(*name) == existing.get(*name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_url_encodes_everything_but_unreserved_and_slash() {
        assert_eq!(
            source_url("oss", "b", "dir/a b+c%d/文.txt"),
            "oss://b/dir/a%20b%2Bc%25d/%E6%96%87.txt"
        );
    }

    #[test]
    fn marker_mismatch_on_any_identity_field() {
        let marker = BTreeMap::from([
            (MARKER_SOURCE.to_owned(), "oss://b/k".to_owned()),
            (MARKER_ETAG.to_owned(), "E".to_owned()),
            (MARKER_CRC64.to_owned(), "1".to_owned()),
            (MARKER_SIZE.to_owned(), "3".to_owned()),
        ]);
        let mut existing = marker.clone();
        existing.insert("other".into(), "x".into());
        assert!(marker_matches(&marker, &existing));
        for name in [MARKER_SOURCE, MARKER_ETAG, MARKER_CRC64, MARKER_SIZE] {
            let mut changed = existing.clone();
            changed.insert(name.to_owned(), "changed".into());
            assert!(!marker_matches(&marker, &changed), "{name}");
            changed.remove(name);
            assert!(!marker_matches(&marker, &changed), "{name} missing");
        }
    }

    #[test]
    fn part_size_grows_to_stay_within_ten_thousand_parts() {
        const MIB: u64 = 1024 * 1024;
        let s3 = PartLimits::S3;
        assert_eq!(
            choose_part_size(16 * MIB, 100 * MIB, &s3).ok(),
            Some(16 * MIB)
        );
        assert_eq!(choose_part_size(MIB, 100 * MIB, &s3).ok(), Some(5 * MIB));
        let big = 1024 * 1024 * MIB; // 1 TiB
        let part = choose_part_size(16 * MIB, big, &s3).expect("fits");
        assert_eq!(part, big.div_ceil(10_000));
        assert!(big.div_ceil(part) <= 10_000);
        let too_big = 10_000 * 5 * 1024 * MIB + 1;
        let error = choose_part_size(16 * MIB, too_big, &s3).expect_err("too large");
        assert_eq!(error.kind, FailureKind::ObjectTooLarge);
    }

    #[test]
    fn plan_ranges_cover_the_object_exactly() {
        let plan = Plan {
            src_bucket: String::new(),
            src_key: String::new(),
            src_etag: String::new(),
            size: 25,
            src_crc64: None,
            part_size: 10,
            dst_key: String::new(),
            upload_id: String::new(),
        };
        assert_eq!(plan.part_count(), 3);
        assert_eq!(plan.range(1), 0..10);
        assert_eq!(plan.range(3), 20..25);
    }
}
