//! Delete tasks: the destination object goes only when the source is gone and the
//! destination's marker names that source key.

use tokio::time::Instant;

use super::engine::Replicator;
use super::error::ReplicationError;
use super::marker::{MARKER_SOURCE, source_url};
use super::outcome::{Outcome, SkipReason};
use crate::store::{ObjectSink, ObjectSource};
use crate::task::{ReplicationTask, TaskOp};

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// A delete task: copy the source if it exists again, else delete the destination if its
    /// marker names this source key.
    pub(super) async fn delete(
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
