//! Resuming a multipart copy from the continuation an earlier invocation sent.

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

use super::continuation::Continuation;
use super::engine::{Replicator, Target};
use super::error::{FailureKind, ReplicationError};
use super::guard::UploadGuard;
use super::marker::{SourceVersion, metadata_digest};
use super::multipart::{DonePart, Plan, Progress};
use super::outcome::Outcome;
use crate::store::{BodyChecksums, ObjectSink, ObjectSource, WriteCondition, same_etag};
use crate::task::ReplicationTask;

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// Resumes a multipart copy from a continuation. The continuation's keys are checked
    /// against the task, not trusted: its source key must be one of the task's key candidates,
    /// and its destination key the one the settings derive from it.
    ///
    /// A transient failure here (HEAD, ListParts, expired credentials) keeps the upload, so
    /// that the message's retry resumes it; only a permanent failure or a changed source aborts
    /// it.
    pub(super) async fn resume(
        &self,
        task: &ReplicationTask,
        value: &serde_json::Value,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let invalid = |reason: String| ReplicationError::new(FailureKind::InvalidTask, reason);
        let continuation = Continuation::from_value(value)
            .map_err(|e| invalid(format!("the task's continuation cannot be read: {e}")))?;
        if !task
            .source
            .key_candidates()
            .iter()
            .any(|k| *k == continuation.src_key)
        {
            return Err(invalid(format!(
                "the continuation copies source key {:?}, which is not the task's key {:?}",
                continuation.src_key, task.source.key
            )));
        }
        let dst_key = self.destination_key(&continuation.src_key)?;
        let dst_bucket = &self.settings.dst_bucket;
        if dst_key != continuation.dst_key {
            return Err(invalid(format!(
                "the continuation writes destination key {:?}, but the source key maps to {dst_key:?}",
                continuation.dst_key
            )));
        }
        let guard = UploadGuard::new(
            self.sink.clone(),
            dst_bucket,
            &dst_key,
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
                // The source is gone: no upload to finish. A fresh look settles the rest (with
                // deletes replicated, it also removes a replica this copy completed just before).
                guard.abort().await;
                return self.copy(&fresh, deadline).await;
            }
            Err(e) => return Err(keep_if_transient(guard, ReplicationError::from_source(e)).await),
        };
        let changed = !same_etag(&attributes.etag, &continuation.src_etag)
            || attributes.size != continuation.src_size
            || continuation
                .src_meta
                .as_ref()
                .is_some_and(|meta| *meta != metadata_digest(&attributes));
        if changed {
            tracing::info!(key = %continuation.src_key, "source changed since the copy began; restarting");
            guard.abort().await;
            return self.copy(&fresh, deadline).await;
        }
        let listed = match self
            .sink
            .list_parts(dst_bucket, &dst_key, &continuation.upload_id)
            .await
        {
            Ok(parts) => parts,
            Err(e) if e.is_not_found() => {
                tracing::info!(upload_id = %continuation.upload_id, "the upload is gone; restarting");
                guard.disarm();
                return self.copy(&fresh, deadline).await;
            }
            Err(e) => return Err(keep_if_transient(guard, ReplicationError::from_sink(e)).await),
        };
        let version = SourceVersion {
            etag: continuation.src_etag.clone(),
            size: continuation.src_size,
            crc64: continuation.src_crc64.or(attributes.crc64),
            // The fresh HEAD describes the same version (its ETag was checked).
            crc64_nvme: attributes.crc64_nvme,
            md5: attributes.content_md5,
            meta: continuation
                .src_meta
                .clone()
                .unwrap_or_else(|| metadata_digest(&attributes)),
        };
        let condition = match (&continuation.dst_if_match, continuation.dst_if_absent) {
            (Some(etag), _) => WriteCondition::IfMatch(etag.clone()),
            (None, true) => WriteCondition::IfAbsent,
            (None, false) => WriteCondition::None,
        };
        let marker = version.marker(
            self.source.scheme(),
            src_bucket,
            &continuation.src_key,
            None,
        );
        let plan = Plan {
            src_bucket: src_bucket.clone(),
            target: Target {
                src_key: continuation.src_key.clone(),
                version,
                dst_key,
                marker,
                condition,
            },
            part_size: continuation.part_size,
            upload_id: continuation.upload_id.clone(),
        };
        if plan.part_size == 0 || plan.part_count() > self.sink.limits().max_parts {
            guard.abort().await;
            return Err(invalid(format!(
                "the continuation's part size {} is unusable",
                plan.part_size
            )));
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
        let progress = Progress {
            hops: continuation.hops,
            stalls: continuation.stalls,
        };
        self.upload_parts(task, plan, guard, done, progress, deadline)
            .await
    }
}

/// A transient `error` leaves the upload for the retry to resume; a permanent one aborts it.
async fn keep_if_transient<D: ObjectSink + Clone + 'static>(
    guard: UploadGuard<D>,
    error: ReplicationError,
) -> ReplicationError {
    if error.is_retryable() {
        guard.disarm();
    } else {
        guard.abort().await;
    }
    error
}
