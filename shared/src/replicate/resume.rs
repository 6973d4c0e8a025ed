//! Resuming a multipart copy from the continuation an earlier invocation sent.

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

use super::continuation::Continuation;
use super::engine::Replicator;
use super::error::{FailureKind, ReplicationError};
use super::guard::UploadGuard;
use super::multipart::{DonePart, Plan};
use super::outcome::{Outcome, SkipReason};
use crate::store::{BodyChecksums, ObjectSink, ObjectSource};
use crate::task::ReplicationTask;

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// Resumes a multipart copy from a continuation.
    pub(super) async fn resume(
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
}
