//! Multipart copies: plan the parts, copy them with a bounded number in flight, verify the
//! whole object's CRC-64, complete; or hand the upload to a continuation at the deadline.

use std::collections::BTreeMap;
use std::ops::Range;

use futures::{StreamExt, stream};
use tokio::time::Instant;

use super::continuation::{Continuation, ContinuedPart};
use super::engine::Replicator;
use super::error::{FailureKind, ReplicationError};
use super::guard::UploadGuard;
use super::marker::{MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE, source_url};
use super::outcome::Outcome;
use crate::store::{
    BodyChecksums, CompletedPart, ObjectAttributes, ObjectSink, ObjectSource, PartLimits,
    WriteRequest, unquote_etag,
};
use crate::task::{ReplicationTask, TaskOp};

/// A multipart copy in progress: what is copied where, in which parts.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) src_bucket: String,
    pub(super) src_key: String,
    pub(super) src_etag: String,
    pub(super) size: u64,
    pub(super) src_crc64: Option<u64>,
    pub(super) part_size: u64,
    pub(super) dst_key: String,
    pub(super) upload_id: String,
}

impl Plan {
    pub(super) fn part_count(&self) -> u32 {
        u32::try_from(self.size.div_ceil(self.part_size)).unwrap_or(u32::MAX)
    }

    pub(super) fn range(&self, part_number: u32) -> Range<u64> {
        let start = u64::from(part_number - 1) * self.part_size;
        start..(start + self.part_size).min(self.size)
    }
}

/// A part uploaded to the sink.
#[derive(Debug, Clone)]
pub(super) struct DonePart {
    pub(super) etag: String,
    pub(super) checksums: BodyChecksums,
}

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    pub(super) async fn copy_multipart(
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
    pub(super) async fn upload_parts(
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
            && meta.get(MARKER_ETAG).map(String::as_str) == Some(unquote_etag(&plan.src_etag))
            && meta.get(MARKER_SIZE) == Some(&plan.size.to_string())
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
