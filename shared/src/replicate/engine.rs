//! The copy algorithm: HEAD the source, HEAD the destination, then one PUT or a multipart upload
//! of pinned ranged GETs, verified by CRC-64 before anything becomes visible, and written only
//! if the destination is still as it was seen. Multipart copies, resumes and deletes are in
//! their own modules.
//!
//! # Racing deliveries
//! Two deliveries of the same key may copy different versions at once (a slow copy of v1 and a
//! fast copy of v2). Every write is conditional on the destination state the copy saw: absent
//! (`If-None-Match: *`) or the ETag it held (`If-Match`). A write refused because another
//! writer got there first looks again: if the source moved on, the copy starts over from a
//! fresh HEAD; if the destination already holds this version, nothing is left to do; otherwise
//! the write is retried against the new destination state. Where the sink cannot enforce a
//! condition (OSS has no `If-Match` on writes), the source is HEADed again after the write and
//! the copy repeats if it changed, so the last writer always leaves the latest version.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::error::{FailureKind, ReplicationError};
use super::fresh::Delivery;
use super::marker::{MARKER_SOURCE, SourceVersion, marker_matches, source_url};
use super::outcome::{Outcome, SkipReason};
use super::settings::CopySettings;
use super::stop::StopSignal;
use crate::store::{
    ArchiveState, BodyChecksums, ObjectAttributes, ObjectSink, ObjectSource, PartLimits,
    RestoreArchived, RestoreRequest, RestoreStatus, StoreError, StoreErrorKind, Symlinks,
    WriteCondition, WriteOutput, WriteRequest, same_etag,
};
use crate::task::{ReplicationTask, TaskOp};

/// How often a copy looks again after a race before it gives up (retryably).
pub(super) const MAX_ROUNDS: u32 = 3;

/// The memory budget is counted in KiB, so that a `u32` of permits covers 4 TiB.
const BUDGET_UNIT: u64 = 1024;

/// Copies objects from a source store to a sink store.
///
/// The sink must be `Clone + 'static` so that an upload abandoned by a panic or a cancelled
/// future can still be aborted from a spawned task.
#[derive(Debug, Clone)]
pub struct Replicator<S, D> {
    pub(super) source: S,
    pub(super) sink: D,
    pub(super) settings: CopySettings,
    /// Bytes of object data that may be held at once, in [`BUDGET_UNIT`]s.
    budget: Arc<Semaphore>,
    budget_units: u32,
    pub(super) stop: StopSignal,
}

/// What a copy writes where, and the destination state its write is conditional on.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) src_key: String,
    pub(super) version: SourceVersion,
    pub(super) dst_key: String,
    /// The marker without a symlink target: what [`marker_matches`] compares.
    pub(super) marker: BTreeMap<String, String>,
    pub(super) condition: WriteCondition,
}

/// What the destination holds, seen from a copy.
pub(super) enum Destination {
    /// The version being copied, by its marker.
    Replicated,
    /// Something else (or nothing): write on this condition.
    Replace(WriteCondition),
}

/// How a guarded write ended.
pub(super) enum Written {
    /// This copy wrote the object.
    Written,
    /// Another writer had already written the same version.
    AlreadyThere,
}

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// An engine copying from `source` to `sink` as `settings` say.
    pub fn new(source: S, sink: D, settings: CopySettings) -> Self {
        let budget_units =
            u32::try_from(settings.memory_budget.div_ceil(BUDGET_UNIT).max(1)).unwrap_or(u32::MAX);
        Self {
            source,
            sink,
            settings,
            budget: Arc::new(Semaphore::new(budget_units as usize)),
            budget_units,
            stop: StopSignal::new(),
        }
    }

    /// Stops this engine's copies when `stop` is raised (see [`StopSignal`]).
    #[must_use]
    pub fn with_stop(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
        self
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
    /// [`CopySettings::deadline_margin`] remains, no new parts are started; at
    /// [`CopySettings::stop_margin`] the parts in flight are cancelled, and
    /// [`Outcome::Continue`] carries the parts done.
    pub async fn replicate(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        self.replicate_delivered(task, Delivery::Unknown, deadline)
            .await
    }

    /// [`Self::replicate`], for a task whose `delivery` the caller knows: a first delivery of
    /// a small object is copied with two requests, a repeated one that was already copied is
    /// skipped with one (see [`Delivery`]).
    pub async fn replicate_delivered(
        &self,
        task: &ReplicationTask,
        delivery: Delivery,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        self.check_bucket(&task.source.bucket)?;
        match task.op {
            TaskOp::Delete if !self.settings.replicate_deletes => {
                Ok(Outcome::Skipped(SkipReason::DeletesDisabled))
            }
            TaskOp::Delete => self.delete(task, deadline).await,
            TaskOp::Put => {
                if let Some(value) = &task.continuation {
                    return self.resume(task, value, deadline).await;
                }
                // Boxed: the shortcut's future is as large as a copy's.
                match Box::pin(self.shortcut(task, delivery, deadline)).await {
                    Ok(Some(outcome)) => return Ok(outcome),
                    Ok(None) => {}
                    // Another writer or a change of the source got in the way: the full path
                    // looks at the current state of both sides.
                    Err(e) if e.kind.is_race() => {
                        tracing::info!(key = %task.source.key, reason = %e.reason, "looking again after a race");
                    }
                    Err(e) => return Err(e),
                }
                self.copy(task, deadline).await
            }
        }
    }

    /// Refuses a bucket name that is not a valid bucket name, or not one the engine may read.
    fn check_bucket(&self, bucket: &str) -> Result<(), ReplicationError> {
        if let Err(reason) = crate::task::check_bucket_name(bucket) {
            return Err(ReplicationError::new(
                FailureKind::BucketNotAllowed,
                format!("the task names the source bucket {bucket:?}, which {reason}"),
            ));
        }
        let allowed = &self.settings.source_buckets;
        if !allowed.is_empty() && !allowed.iter().any(|b| b == bucket) {
            return Err(ReplicationError::new(
                FailureKind::BucketNotAllowed,
                format!(
                    "the task names the source bucket {bucket:?}; this replicator copies only from {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(())
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

    /// Copies the source's current state, looking again (up to [`MAX_ROUNDS`] times) when the
    /// source or the destination changes meanwhile.
    pub(super) async fn copy(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let mut round = 1;
        loop {
            match self.copy_current(task, deadline).await {
                Err(e) if e.kind.is_race() && round < MAX_ROUNDS => {
                    tracing::info!(key = %task.source.key, round, reason = %e.reason, "looking again after a race");
                    round += 1;
                }
                other => return other,
            }
        }
    }

    /// One round of [`Self::copy`]: find the source, then copy it; a source that is gone takes
    /// its replica with it when deletes are replicated.
    async fn copy_current(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        if let Some((src_key, attributes)) = self.find_source(task).await? {
            return self.copy_object(task, &src_key, attributes, deadline).await;
        }
        tracing::info!(bucket = %task.source.bucket, key = %task.source.key, "source gone");
        if self.settings.replicate_deletes {
            // A put that lost the race with a delete may have written the replica after the
            // delete task ran: the delete is applied here too (its usual checks included).
            if let Outcome::Deleted = Box::pin(self.delete(task, deadline)).await? {
                return Ok(Outcome::Deleted);
            }
        }
        Ok(Outcome::Skipped(SkipReason::SourceGone))
    }

    /// HEADs the task's key candidates: the one whose ETag and size match what the task says,
    /// else the first that exists (in candidate order), or `None`.
    pub(super) async fn find_source(
        &self,
        task: &ReplicationTask,
    ) -> Result<Option<(String, ObjectAttributes)>, ReplicationError> {
        let hinted = task.source.etag.is_some() || task.source.size.is_some();
        let mut first = None;
        for key in task.source.key_candidates() {
            match self.source.head_object(&task.source.bucket, &key).await {
                Ok(attributes) => {
                    if !hinted || describes(task, &attributes) {
                        return Ok(Some((key.into_owned(), attributes)));
                    }
                    first.get_or_insert((key.into_owned(), attributes));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(ReplicationError::from_source(e)),
            }
        }
        Ok(first)
    }

    /// Copies the source object `src_key` (already HEADed) unless the destination holds it.
    pub(super) async fn copy_object(
        &self,
        task: &ReplicationTask,
        src_key: &str,
        attributes: ObjectAttributes,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let src_bucket = &task.source.bucket;
        let dst_key = self.destination_key(src_key)?;
        // Two-way mode: an object the other direction wrote names its origin, the object this
        // copy would overwrite. It is never copied back, current or not: when the origin has
        // changed since, its own event brings the replica up to date; when it is gone, copying
        // back would resurrect it. Known from the HEAD already made, so it costs no request.
        if self.is_replica_of(&attributes, &dst_key) {
            return Ok(Outcome::Skipped(SkipReason::ReplicaOfDestination));
        }
        let version = SourceVersion::of(&attributes);
        let scheme = self.source.scheme();
        let marker = version.marker(scheme, src_bucket, src_key, None);
        // The marker is checked before anything is paid for: a restore, a symlink lookup.
        let condition = match self.destination(&dst_key, &marker).await? {
            Destination::Replicated => return Ok(Outcome::Skipped(SkipReason::AlreadyReplicated)),
            Destination::Replace(condition) => condition,
        };
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
        let limits = self.sink.limits();
        if attributes.size > limits.max_object_size {
            return Err(ReplicationError::new(
                FailureKind::ObjectTooLarge,
                format!(
                    "{scheme}://{src_bucket}/{src_key} is {} bytes; the destination allows at most {}",
                    attributes.size, limits.max_object_size
                ),
            ));
        }
        let written_marker = version.marker(scheme, src_bucket, src_key, symlink_target.as_deref());
        let request = self.write_request(&attributes, written_marker, &limits)?;
        let target = Target {
            src_key: src_key.to_owned(),
            version,
            dst_key,
            marker,
            condition,
        };
        let threshold = self.settings.multipart_threshold.min(limits.max_single_put);
        if attributes.size == 0 || attributes.size <= threshold {
            self.copy_single(src_bucket, target, &request, deadline)
                .await
        } else {
            self.copy_multipart(task, target, &request, deadline).await
        }
    }

    /// Whether the source object (`attributes`) is the replica the other direction wrote of
    /// the destination object `dst_key`: its marker names that object.
    pub(super) fn is_replica_of(&self, attributes: &ObjectAttributes, dst_key: &str) -> bool {
        attributes
            .user_metadata
            .get(MARKER_SOURCE)
            .is_some_and(|origin| {
                *origin == source_url(self.sink.scheme(), &self.settings.dst_bucket, dst_key)
            })
    }

    /// What the destination holds for `dst_key`, compared with `marker`.
    pub(super) async fn destination(
        &self,
        dst_key: &str,
        marker: &BTreeMap<String, String>,
    ) -> Result<Destination, ReplicationError> {
        match self
            .sink
            .head_object(&self.settings.dst_bucket, dst_key)
            .await
        {
            Ok(existing) if marker_matches(marker, &existing.user_metadata) => {
                Ok(Destination::Replicated)
            }
            Ok(existing) => Ok(Destination::Replace(WriteCondition::IfMatch(existing.etag))),
            Err(e) if e.is_not_found() => Ok(Destination::Replace(WriteCondition::IfAbsent)),
            Err(e) => Err(ReplicationError::from_sink(e)),
        }
    }

    /// Runs `write` on the target's condition. When another writer got there first, looks
    /// again: a changed source fails with [`FailureKind::SourceChanged`] (the copy starts
    /// over), a destination holding this version ends as [`Written::AlreadyThere`], and
    /// anything else is written over on its new condition. After a write whose condition the
    /// sink cannot enforce, checks that the source did not change meanwhile.
    pub(super) async fn write_guarded<F, Fut>(
        &self,
        src_bucket: &str,
        target: &mut Target,
        multipart: bool,
        mut write: F,
    ) -> Result<Written, ReplicationError>
    where
        F: FnMut(WriteCondition) -> Fut,
        Fut: Future<Output = Result<WriteOutput, StoreError>>,
    {
        for round in 1..=MAX_ROUNDS {
            match write(target.condition.clone()).await {
                Ok(_) => {
                    self.confirm_unguarded(src_bucket, target, multipart)
                        .await?;
                    return Ok(Written::Written);
                }
                Err(e) if e.kind() == StoreErrorKind::PreconditionFailed => {
                    tracing::info!(key = %target.dst_key, round, error = %e, "the destination changed during the copy; looking again");
                    self.check_source_current(src_bucket, target).await?;
                    match self.destination(&target.dst_key, &target.marker).await? {
                        Destination::Replicated => return Ok(Written::AlreadyThere),
                        Destination::Replace(condition) => target.condition = condition,
                    }
                }
                Err(e) => return Err(ReplicationError::from_sink(e)),
            }
        }
        Err(ReplicationError::new(
            FailureKind::DestinationChanged,
            format!(
                "{}: other writers kept changing the destination object; will retry",
                target.dst_key
            ),
        ))
    }

    /// Fails with [`FailureKind::SourceChanged`] unless the source still holds the version
    /// being copied.
    pub(super) async fn check_source_current(
        &self,
        src_bucket: &str,
        target: &Target,
    ) -> Result<(), ReplicationError> {
        let object = format!("{}://{src_bucket}/{}", self.source.scheme(), target.src_key);
        match self.source.head_object(src_bucket, &target.src_key).await {
            Ok(now) if target.version.is_current(&now) => Ok(()),
            Ok(_) => Err(ReplicationError::new(
                FailureKind::SourceChanged,
                format!("{object} changed while it was copied"),
            )),
            Err(e) if e.is_not_found() => Err(ReplicationError::new(
                FailureKind::SourceChanged,
                format!("{object} was deleted while it was copied"),
            )),
            Err(e) => Err(ReplicationError::from_source(e)),
        }
    }

    /// After a write the sink could not make conditional, the source must not have changed
    /// meanwhile, or an older version may have landed over a newer one. With deletes
    /// replicated, the source must also still exist after any write: a delete task that ran
    /// while this copy was in flight found no replica to delete, so this copy takes its own
    /// replica away again (through [`FailureKind::SourceChanged`] and a fresh look).
    async fn confirm_unguarded(
        &self,
        src_bucket: &str,
        target: &Target,
        multipart: bool,
    ) -> Result<(), ReplicationError> {
        let guarded = self
            .sink
            .conditional_writes()
            .enforces(&target.condition, multipart);
        if guarded && !self.settings.replicate_deletes {
            return Ok(());
        }
        self.check_source_current(src_bucket, target).await
    }

    /// Holds `bytes` of the memory budget until the permit is dropped (the whole budget for
    /// anything larger, so that it runs alone).
    pub(super) async fn reserve(&self, bytes: u64) -> SemaphorePermit<'_> {
        let units = u32::try_from(bytes.div_ceil(BUDGET_UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_units);
        // The semaphore is never closed, so acquiring only waits.
        self.budget
            .acquire_many(units)
            .await
            .unwrap_or_else(|_| unreachable!("the memory budget is never closed"))
    }

    /// How many parts of `part_size` bytes one copy keeps in flight: the configured
    /// concurrency, fewer if the budget holds fewer.
    pub(super) fn part_concurrency(&self, part_size: u64) -> usize {
        let fit =
            usize::try_from(self.settings.memory_budget / part_size.max(1)).unwrap_or(usize::MAX);
        self.settings.part_concurrency.min(fit).max(1)
    }

    /// The attributes to write: the source's content headers and user metadata plus the marker,
    /// within the sink's metadata limit.
    pub(super) fn write_request(
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
            storage_class: self
                .settings
                .destination_class(attributes.storage_class.as_ref()),
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

    /// One GET into memory, verified, then one conditional PUT; all of it before the stop
    /// margin of the deadline, or nothing is written.
    async fn copy_single(
        &self,
        src_bucket: &str,
        target: Target,
        request: &WriteRequest,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let size = target.version.size;
        let work = async {
            let _budget = self.reserve(size).await;
            let body = self
                .read(
                    src_bucket,
                    &target.src_key,
                    &target.version.etag,
                    None,
                    size,
                )
                .await?;
            self.put_verified(src_bucket, target, request, body).await
        };
        // Boxed, so that every caller's future does not carry the copy's.
        self.before_stop(size, deadline, Box::pin(work)).await
    }

    /// Verifies `body` against the source's checksums, then PUTs it on the target's condition
    /// (see [`Self::write_guarded`]).
    pub(super) async fn put_verified(
        &self,
        src_bucket: &str,
        mut target: Target,
        request: &WriteRequest,
        body: bytes::Bytes,
    ) -> Result<Outcome, ReplicationError> {
        let size = target.version.size;
        let checksums = BodyChecksums::of(&body);
        let md5 = target.version.md5.map(|_| md5_of(&body));
        self.verify(src_bucket, &target.src_key, &target.version, checksums, md5)?;
        let dst_bucket = &self.settings.dst_bucket;
        let dst_key = target.dst_key.clone();
        let written = self
            .write_guarded(src_bucket, &mut target, false, |condition| {
                let body = body.clone();
                let dst_key = &dst_key;
                async move {
                    self.sink
                        .put_object(dst_bucket, dst_key, body, checksums, request, &condition)
                        .await
                }
            })
            .await?;
        Ok(match written {
            Written::Written => Outcome::Copied {
                bytes: size,
                multipart: false,
                parts: 1,
            },
            Written::AlreadyThere => Outcome::Skipped(SkipReason::AlreadyReplicated),
        })
    }

    /// Runs the copy of one in-memory object (`size` bytes), but cancels it at the stop margin
    /// of the deadline, or when the function shuts down: then nothing is written.
    pub(super) async fn before_stop<T>(
        &self,
        size: u64,
        deadline: Option<Instant>,
        work: impl Future<Output = Result<T, ReplicationError>>,
    ) -> Result<T, ReplicationError> {
        let stop_at = self.stop_at(deadline);
        tokio::select! {
            done = work => done,
            () = sleep_until(stop_at) => Err(ReplicationError::new(
                FailureKind::DeadlineReached,
                format!(
                    "the invocation deadline came before the {size}-byte copy finished; it was cancelled and is retried (a PUT already under way may have landed, complete; the retry finds it by its marker)"
                ),
            )),
            () = self.stop.stopped() => Err(ReplicationError::new(
                FailureKind::DeadlineReached,
                format!(
                    "the function is shutting down; the {size}-byte copy was cancelled and is retried"
                ),
            )),
        }
    }

    /// When in-flight work is cancelled: the deadline less the stop margin.
    pub(super) fn stop_at(&self, deadline: Option<Instant>) -> Option<Instant> {
        deadline.map(|d| {
            d.checked_sub(self.settings.stop_margin)
                .unwrap_or_else(Instant::now)
        })
    }

    /// Compares the CRC-64 of the bytes copied with the source's.
    ///
    /// Every check the source makes possible is made: its CRC-64/XZ (OSS), its full-object
    /// CRC-64/NVME (S3's default checksum), and the MD5 its ETag is (S3 objects of one PUT
    /// without SSE-KMS; `md5` is the copied bytes', computed only for copies read in one GET).
    pub(super) fn verify(
        &self,
        bucket: &str,
        key: &str,
        version: &SourceVersion,
        copied: BodyChecksums,
        md5: Option<[u8; 16]>,
    ) -> Result<(), ReplicationError> {
        let mismatch = |what: &str, copied_value: String, source_value: String| {
            ReplicationError::new(
                FailureKind::ChecksumMismatch,
                format!(
                    "{}://{bucket}/{key}: the {} bytes copied have {what} {copied_value}, the source reports {source_value}; nothing was written",
                    self.source.scheme(),
                    copied.len,
                ),
            )
        };
        let mut checked = false;
        if let Some(expected) = version.crc64 {
            if expected != copied.crc64_xz {
                return Err(mismatch(
                    "CRC-64",
                    copied.crc64_xz.to_string(),
                    expected.to_string(),
                ));
            }
            checked = true;
        }
        if let Some(expected) = version.crc64_nvme {
            if expected != copied.crc64_nvme {
                return Err(mismatch(
                    "CRC-64/NVME",
                    format!("{:016x}", copied.crc64_nvme),
                    format!("{expected:016x}"),
                ));
            }
            checked = true;
        }
        if let (Some(expected), Some(md5)) = (version.md5, md5) {
            if expected != md5 {
                return Err(mismatch("MD5", hex::encode(md5), hex::encode(expected)));
            }
            checked = true;
        }
        if !checked {
            tracing::warn!(
                bucket,
                key,
                "the source reports no checksum of the whole object; copied without end-to-end verification"
            );
        }
        Ok(())
    }
}

/// The MD5 of `bytes`.
fn md5_of(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(bytes).into()
}

/// Sleeps until `at`, or forever when there is no such time.
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether the source object matches what the task says of it (ETag and size, where given).
fn describes(task: &ReplicationTask, attributes: &ObjectAttributes) -> bool {
    task.source
        .etag
        .as_deref()
        .is_none_or(|etag| same_etag(etag, &attributes.etag))
        && task.source.size.is_none_or(|size| size == attributes.size)
}
