//! Multipart copies: plan the parts, copy them with a bounded number in flight, verify the
//! whole object's CRC-64, complete; or hand the upload to a continuation at the deadline.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, stream};
use tokio::time::Instant;

use super::continuation::{Continuation, ContinuedPart};
use super::engine::{Destination, Replicator, Target, Written, sleep_until};
use super::error::{FailureKind, ReplicationError};
use super::guard::UploadGuard;
use super::outcome::{Outcome, SkipReason};
use crate::size::{MIB, millis};
use crate::store::{
    BodyChecksums, CompletedPart, ObjectSink, ObjectSource, PartLimits, WriteCondition,
    WriteOutput, WriteRequest,
};
use crate::task::{ReplicationTask, TaskOp};

/// The transfer rate assumed for a part before one has been timed: a part is started only if
/// it can finish at this rate before the stop margin.
const ASSUMED_RATE: u64 = 8 * MIB;

/// The delay before the first continuation after a transient failure; it doubles with each
/// stalled invocation, up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(5);

/// The longest delay SQS allows on a message: 15 minutes.
const MAX_RETRY_DELAY: Duration = Duration::from_mins(15);

/// A multipart copy in progress: what is copied where, in which parts.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) src_bucket: String,
    pub(super) target: Target,
    pub(super) part_size: u64,
    pub(super) upload_id: String,
}

impl Plan {
    pub(super) fn size(&self) -> u64 {
        self.target.version.size
    }

    pub(super) fn part_count(&self) -> u32 {
        u32::try_from(self.size().div_ceil(self.part_size)).unwrap_or(u32::MAX)
    }

    pub(super) fn range(&self, part_number: u32) -> Range<u64> {
        let start = u64::from(part_number - 1) * self.part_size;
        start..(start + self.part_size).min(self.size())
    }
}

/// A part uploaded to the sink.
#[derive(Debug, Clone)]
pub(super) struct DonePart {
    pub(super) etag: String,
    pub(super) checksums: BodyChecksums,
}

/// How far a copy has come over its invocations.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    pub(super) hops: u32,
    pub(super) stalls: u32,
}

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    pub(super) async fn copy_multipart(
        &self,
        task: &ReplicationTask,
        target: Target,
        request: &WriteRequest,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let dst_bucket = &self.settings.dst_bucket;
        let part_size = choose_part_size(
            self.settings.part_size,
            target.version.size,
            &self.sink.limits(),
        )?;
        let upload_id = self
            .sink
            .create_multipart_upload(dst_bucket, &target.dst_key, request)
            .await
            .map_err(ReplicationError::from_sink)?;
        let guard = UploadGuard::new(self.sink.clone(), dst_bucket, &target.dst_key, &upload_id);
        let plan = Plan {
            src_bucket: task.source.bucket.clone(),
            target,
            part_size,
            upload_id,
        };
        self.upload_parts(
            task,
            plan,
            guard,
            BTreeMap::new(),
            Progress::default(),
            deadline,
        )
        .await
    }

    /// Copies one part: a pinned ranged GET into memory (within the memory budget), then
    /// UploadPart with its checksums. Returns how long it took once it had its memory.
    async fn copy_part(
        &self,
        plan: &Plan,
        part_number: u32,
    ) -> Result<(u32, DonePart, Duration), ReplicationError> {
        let range = plan.range(part_number);
        let len = range.end - range.start;
        let _budget = self.reserve(len).await;
        let started = Instant::now();
        let body = self
            .read(
                &plan.src_bucket,
                &plan.target.src_key,
                &plan.target.version.etag,
                Some(range),
                len,
            )
            .await?;
        let checksums = BodyChecksums::of(&body);
        let part = self
            .sink
            .upload_part(
                &self.settings.dst_bucket,
                &plan.target.dst_key,
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
            started.elapsed(),
        ))
    }

    /// Uploads the parts not yet in `done`, as many in flight as the settings and the memory
    /// budget allow, then verifies and completes. Near the deadline it starts no new part, at
    /// the stop margin it cancels the parts in flight, and either way hands the upload on to a
    /// continuation; a transient failure does the same (after a delay), so the parts done are
    /// never lost.
    pub(super) async fn upload_parts(
        &self,
        task: &ReplicationTask,
        mut plan: Plan,
        guard: UploadGuard<D>,
        mut done: BTreeMap<u32, DonePart>,
        progress: Progress,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let total = plan.part_count();
        let todo: Vec<u32> = (1..=total).filter(|n| !done.contains_key(n)).collect();
        let before = done.len();
        let margin = self.settings.deadline_margin;
        let stop_margin = self.settings.stop_margin;
        let stop = self.stop_at(deadline);
        // The slowest part so far, in ms; before one is timed, the part size at ASSUMED_RATE.
        let slowest = AtomicU64::new(plan.part_size.saturating_mul(1000) / ASSUMED_RATE);
        // Every invocation starts at least one part, so a too-short deadline still progresses.
        let mut first = true;
        let schedule = |_: &u32| {
            let part_time = Duration::from_millis(slowest.load(Ordering::Relaxed));
            let needed = margin.max(stop_margin + part_time * 2);
            let go = !self.stop.is_stopped()
                && (first
                    || deadline
                        .is_none_or(|d| d.saturating_duration_since(Instant::now()) >= needed));
            first = false;
            std::future::ready(go)
        };
        let mut failure = None;
        let mut stopped = false;
        {
            let results = stream::iter(todo)
                .take_while(schedule)
                .map(|n| self.copy_part(&plan, n))
                .buffer_unordered(self.part_concurrency(plan.part_size));
            futures::pin_mut!(results);
            loop {
                let next = tokio::select! {
                    next = results.next() => next,
                    // Dropping the stream cancels the parts in flight.
                    () = sleep_until(stop) => {
                        stopped = true;
                        break;
                    }
                    () = self.stop.stopped() => {
                        stopped = true;
                        break;
                    }
                };
                match next {
                    None => break,
                    Some(Ok((n, part, took))) => {
                        slowest.fetch_max(millis(took), Ordering::Relaxed);
                        done.insert(n, part);
                    }
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        let progressed = done.len() > before;
        if let Some(error) = failure {
            if !error.is_retryable() || error.kind.is_race() {
                guard.abort().await;
                return Err(error);
            }
            return self
                .carry_on(task, &plan, guard, &done, progress, progressed, Some(error))
                .await;
        }
        if done.len() < total as usize {
            if stopped {
                tracing::info!(upload_id = %plan.upload_id, "stopped (deadline or shutdown): the parts in flight were cancelled");
            }
            return self
                .carry_on(task, &plan, guard, &done, progress, progressed, None)
                .await;
        }
        let whole = done
            .values()
            .fold(BodyChecksums::empty(), |acc, p| acc.then(p.checksums));
        if whole.len != plan.size() {
            guard.abort().await;
            return Err(ReplicationError::new(
                FailureKind::ChecksumMismatch,
                format!(
                    "the parts hold {} bytes, the source {}; nothing was written",
                    whole.len,
                    plan.size()
                ),
            ));
        }
        if let Err(e) = self.verify(
            &plan.src_bucket,
            &plan.target.src_key,
            &plan.target.version,
            whole,
            None,
        ) {
            guard.abort().await;
            return Err(e);
        }
        let parts: Vec<CompletedPart> = done
            .iter()
            .map(|(&part_number, part)| CompletedPart {
                part_number,
                etag: part.etag.clone(),
                checksums: part.checksums,
            })
            .collect();
        let dst_bucket = &self.settings.dst_bucket;
        let (dst_key, upload_id, marker) = (
            plan.target.dst_key.clone(),
            plan.upload_id.clone(),
            plan.target.marker.clone(),
        );
        let src_bucket = plan.src_bucket.clone();
        let result = self
            .write_guarded(&src_bucket, &mut plan.target, true, |condition| {
                let (dst_key, upload_id, marker, parts) = (&dst_key, &upload_id, &marker, &parts);
                async move {
                    match self
                        .sink
                        .complete_multipart_upload(
                            dst_bucket, dst_key, upload_id, parts, whole, &condition,
                        )
                        .await
                    {
                        // An earlier attempt may have completed the upload and lost the answer.
                        Err(e)
                            if e.is_not_found()
                                && matches!(
                                    self.destination(dst_key, marker).await,
                                    Ok(Destination::Replicated)
                                ) =>
                        {
                            Ok(WriteOutput {
                                etag: String::new(),
                            })
                        }
                        other => other,
                    }
                }
            })
            .await;
        match result {
            Ok(Written::Written) => {
                guard.disarm();
                Ok(Outcome::Copied {
                    bytes: plan.size(),
                    multipart: true,
                    parts: total,
                })
            }
            Ok(Written::AlreadyThere) => {
                guard.abort().await;
                Ok(Outcome::Skipped(SkipReason::AlreadyReplicated))
            }
            // Every part is uploaded: a later invocation only has to complete.
            Err(e) if e.is_retryable() && !e.kind.is_race() => {
                self.carry_on(task, &plan, guard, &done, progress, true, Some(e))
                    .await
            }
            Err(e) => {
                guard.abort().await;
                Err(e)
            }
        }
    }

    /// Hands the upload on to a continuation task carrying the parts done; after a transient
    /// `error`, with a delay that grows while invocations make no progress, until the copy is
    /// abandoned after [`Continuation::MAX_STALLS`] of them.
    #[expect(
        clippy::too_many_arguments,
        reason = "the state of one multipart copy, passed along as it is"
    )]
    async fn carry_on(
        &self,
        task: &ReplicationTask,
        plan: &Plan,
        guard: UploadGuard<D>,
        done: &BTreeMap<u32, DonePart>,
        progress: Progress,
        progressed: bool,
        error: Option<ReplicationError>,
    ) -> Result<Outcome, ReplicationError> {
        let stalls = if progressed { 0 } else { progress.stalls + 1 };
        if stalls > Continuation::MAX_STALLS {
            guard.abort().await;
            return Err(error.unwrap_or_else(|| {
                ReplicationError::new(
                    FailureKind::DeadlineReached,
                    format!(
                        "{} invocations in a row finished no part of {} bytes before their deadline; raise the function timeout or lower PART_SIZE_MIB",
                        stalls,
                        plan.part_size
                    ),
                )
            }));
        }
        let delay = match &error {
            None => Duration::ZERO,
            Some(error) => FIRST_RETRY_DELAY
                .saturating_mul(1 << stalls.min(8))
                .max(error.retry_after.unwrap_or_default())
                .min(MAX_RETRY_DELAY),
        };
        let (dst_if_absent, dst_if_match) = match &plan.target.condition {
            WriteCondition::IfAbsent => (true, None),
            WriteCondition::IfMatch(etag) => (false, Some(etag.clone())),
            WriteCondition::None => (false, None),
        };
        let version = &plan.target.version;
        let continuation = Continuation {
            upload_id: plan.upload_id.clone(),
            dst_key: plan.target.dst_key.clone(),
            src_key: plan.target.src_key.clone(),
            src_etag: version.etag.clone(),
            src_size: version.size,
            src_crc64: version.crc64,
            src_meta: Some(version.meta.clone()),
            dst_if_absent,
            dst_if_match,
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
            hops: progress.hops + 1,
            stalls,
        };
        match &error {
            None => tracing::info!(
                upload_id = %plan.upload_id, done = done.len(), total = plan.part_count(),
                "deadline near; continuing in a new task"
            ),
            Some(error) => tracing::warn!(
                upload_id = %plan.upload_id, done = done.len(), total = plan.part_count(),
                stalls, delay_s = delay.as_secs(), reason = %error.reason,
                "transient failure; continuing in a new task with the parts done"
            ),
        }
        guard.disarm();
        let mut next = task.clone();
        next.op = TaskOp::Put;
        next.continuation = Some(continuation.to_value());
        Ok(Outcome::Continue { task: next, delay })
    }
}

/// The part size for an object of `size` bytes: `configured`, raised so that the parts fit the
/// sink's part count, within the sink's part size limits.
pub(super) fn choose_part_size(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size::MIB;

    #[test]
    fn part_size_grows_to_stay_within_ten_thousand_parts() {
        let s3 = PartLimits::S3;
        assert_eq!(
            choose_part_size(16 * MIB, 100 * MIB, &s3).ok(),
            Some(16 * MIB)
        );
        assert_eq!(choose_part_size(MIB, 100 * MIB, &s3).ok(), Some(5 * MIB));
        let big = crate::size::TIB;
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
            target: Target {
                src_key: String::new(),
                version: super::super::marker::SourceVersion {
                    etag: String::new(),
                    size: 25,
                    crc64: None,
                    crc64_nvme: None,
                    md5: None,
                    meta: String::new(),
                },
                dst_key: String::new(),
                marker: BTreeMap::new(),
                condition: WriteCondition::None,
            },
            part_size: 10,
            upload_id: String::new(),
        };
        assert_eq!(plan.part_count(), 3);
        assert_eq!(plan.range(1), 0..10);
        assert_eq!(plan.range(3), 20..25);
    }
}
