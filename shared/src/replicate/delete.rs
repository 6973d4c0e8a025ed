//! Delete tasks: a destination object goes only when its source is gone and the destination's
//! marker names that source key; and it goes conditionally, so a replica written meanwhile by a
//! re-created source survives.

use tokio::time::Instant;

use super::engine::{MAX_ROUNDS, Replicator};
use super::error::{FailureKind, ReplicationError};
use super::marker::{MARKER_SOURCE, source_url};
use super::outcome::{Outcome, SkipReason};
use crate::store::{ObjectSink, ObjectSource, StoreErrorKind};
use crate::task::ReplicationTask;

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// A delete task. Each key candidate is settled on its own, so that a delete of `a+b`
    /// never touches the replica of a different object `a b`: a candidate that exists in the
    /// source has its replica brought up to date (usually a marker check and nothing more); a
    /// candidate that is gone has its replica deleted, if the replica's marker names it.
    pub(super) async fn delete(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let mut result: Option<Outcome> = None;
        for key in task.source.key_candidates() {
            let outcome = self.delete_candidate(task, &key, deadline).await?;
            if let Outcome::Continue { .. } = outcome {
                // A large replica being brought up to date goes on in a continuation; any
                // candidate left is an object of its own, copied by its own events.
                return Ok(outcome);
            }
            result = Some(match result {
                None => outcome,
                Some(earlier) => more_telling(earlier, outcome),
            });
        }
        Ok(result.unwrap_or(Outcome::Skipped(SkipReason::DestinationAbsent)))
    }

    /// Settles one key candidate of a delete task.
    async fn delete_candidate(
        &self,
        task: &ReplicationTask,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let Ok(dst_key) = self.destination_key(key) else {
            return Ok(Outcome::Skipped(SkipReason::DestinationAbsent));
        };
        let bucket = &task.source.bucket;
        let dst_bucket = &self.settings.dst_bucket;
        let owner = source_url(self.source.scheme(), bucket, key);
        for _ in 0..MAX_ROUNDS {
            if let Some(attributes) = self.head_source(bucket, key).await? {
                // Boxed: a rare path, and it keeps the delete future small.
                return Box::pin(self.copy_object(task, key, attributes, deadline)).await;
            }
            let existing = match self.sink.head_object(dst_bucket, &dst_key).await {
                Ok(existing) => existing,
                Err(e) if e.is_not_found() => {
                    return Ok(Outcome::Skipped(SkipReason::DestinationAbsent));
                }
                Err(e) => return Err(ReplicationError::from_sink(e)),
            };
            if existing.user_metadata.get(MARKER_SOURCE) != Some(&owner) {
                return Ok(Outcome::Skipped(SkipReason::DeleteNotOwned));
            }
            // Only the object whose marker was just checked: S3 refuses with 412 if it was
            // replaced meanwhile (conditional deletes,
            // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
            match self
                .sink
                .delete_object(dst_bucket, &dst_key, Some(&existing.etag))
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind() == StoreErrorKind::PreconditionFailed => {
                    tracing::info!(key = %dst_key, "the replica changed before it was deleted; looking again");
                    continue;
                }
                Err(e) => return Err(ReplicationError::from_sink(e)),
            }
            // The source may have come back between its HEAD and the delete, and its new
            // replica (same ETag, or a sink without conditional deletes) be the one just
            // deleted: then it is copied back.
            return match self.head_source(bucket, key).await? {
                None => Ok(Outcome::Deleted),
                Some(attributes) => {
                    tracing::info!(
                        key,
                        "the source reappeared during the delete; copying it back"
                    );
                    self.copy_object(task, key, attributes, deadline).await
                }
            };
        }
        Err(ReplicationError::new(
            FailureKind::DestinationChanged,
            format!("{dst_key}: the replica kept changing; the delete will be retried"),
        ))
    }

    /// HEADs a source key: its attributes, or `None` when it does not exist.
    async fn head_source(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<crate::store::ObjectAttributes>, ReplicationError> {
        match self.source.head_object(bucket, key).await {
            Ok(attributes) => Ok(Some(attributes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(ReplicationError::from_source(e)),
        }
    }
}

/// Of two candidates' outcomes, the one that says more: a delete, then a copy, then a skip
/// (a replica not owned, then an absent one).
fn more_telling(a: Outcome, b: Outcome) -> Outcome {
    fn rank(outcome: &Outcome) -> u8 {
        match outcome {
            Outcome::Deleted => 5,
            Outcome::Copied { .. } | Outcome::Continue { .. } => 4,
            Outcome::Skipped(SkipReason::AlreadyReplicated) => 3,
            Outcome::Skipped(SkipReason::DeleteNotOwned) => 2,
            Outcome::Skipped(_) => 1,
        }
    }
    if rank(&b) > rank(&a) { b } else { a }
}
