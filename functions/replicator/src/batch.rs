//! The replicator function's whole job for one SQS batch: parse each message, run the copy
//! engine, and decide what happens to the message. Kept here (not in the function) so that it is
//! tested without a Lambda runtime.
//!
//! # Where each message ends up
//! | result | what happens | reported in `batchItemFailures` |
//! |---|---|---|
//! | copied, deleted, skipped | done; SQS deletes it | no |
//! | [`Outcome::Continue`] | the continuation task is sent to the continuation queue, then the message is done | only if that send fails |
//! | retryable failure | retried after the visibility timeout (or `retry_after`, e.g. restores) | yes |
//! | permanent failure (malformed message, invalid key, …) | sent to the DLQ by the function, with the reason as message attributes, then done | only if that send fails (the redrive policy moves it later) |
//! | not started because the invocation deadline is near | made visible again at once | yes |
//! | OSS credentials unreadable or rejected | retried (the OSS client re-reads the secret once when OSS rejects the keys) | yes |
//!
//! Permanent failures are sent to the DLQ by the function itself rather than left to the
//! redrive policy: they never loop through `maxReceiveCount` receives, and the DLQ message says
//! why it is there (see [`DLQ_ATTR_KIND`](crate::queues::DLQ_ATTR_KIND) and friends). When `dlq_url` is not configured they are
//! reported as failures and the redrive policy moves them; the reason is then only in the log.
//!
//! A message may carry several tasks (a raw OSS event with several events). They run in order;
//! the message is retried if any is retryable (the others are skipped on redelivery, by the
//! destination marker), otherwise dead-lettered if any failed permanently.

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use tokio::time::Instant;
use tracing::Instrument;
use transfer::message::{IncomingMessage, LegacyDefaults, parse_message};
use transfer::replicate::{Continuation, Outcome, ReplicationError, Replicator};
use transfer::store::{ObjectSink, ObjectSource};
use transfer::task::ReplicationTask;
use transfer::trigger::EventFilter;

use crate::disposition::Disposition;
use crate::metrics::{Metrics, Unit};
use crate::queues::Queues;

/// The failure kind of a message body that is no known message shape.
pub const KIND_MALFORMED: &str = "Malformed";

/// The copy engine as the batch processor drives it: one narrow seam, so that batch behaviour
/// is testable with a stand-in engine.
pub trait TaskReplicator: Send + Sync {
    /// Makes the destination reflect the object `task` names (see [`Replicator::replicate`]).
    fn replicate(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Outcome, ReplicationError>> + Send;

    /// Aborts the multipart upload a continuation task carries, because the continuation could
    /// not be enqueued and the copy will start over.
    fn abandon_continuation(&self, task: &ReplicationTask) -> impl Future<Output = ()> + Send;
}

impl<S, D> TaskReplicator for Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    fn replicate(
        &self,
        task: &ReplicationTask,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Outcome, ReplicationError>> + Send {
        Replicator::replicate(self, task, deadline)
    }

    async fn abandon_continuation(&self, task: &ReplicationTask) {
        let Some(continuation) = task
            .continuation
            .as_ref()
            .and_then(|v| Continuation::from_value(v).ok())
        else {
            return;
        };
        let bucket = &self.settings().dst_bucket;
        if let Err(e) = self
            .sink()
            .abort_multipart_upload(bucket, &continuation.dst_key, &continuation.upload_id)
            .await
        {
            tracing::warn!(upload_id = %continuation.upload_id, error = %e, "aborting the upload of an unsent continuation failed");
        }
    }
}

/// Batch behaviour settings.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// How many messages are processed at once (default 4).
    pub message_concurrency: usize,
    /// The region of legacy `{"key","size"}` messages' bucket.
    pub legacy_region: String,
    /// The bucket of legacy messages; without it they fail permanently.
    pub legacy_bucket: Option<String>,
    /// Which events of a raw OSS event become tasks.
    pub event_filter: EventFilter,
    /// A message is not started when less than this remains before the deadline (default 30 s);
    /// it is made visible again at once instead.
    pub start_margin: Duration,
}

impl BatchSettings {
    /// The default number of messages processed at once.
    pub const DEFAULT_MESSAGE_CONCURRENCY: usize = 4;

    /// Settings for legacy messages from `legacy_region`, every other field at its default.
    pub fn new(legacy_region: impl Into<String>) -> Self {
        Self {
            message_concurrency: Self::DEFAULT_MESSAGE_CONCURRENCY,
            legacy_region: legacy_region.into(),
            legacy_bucket: None,
            event_filter: EventFilter::default(),
            start_margin: Duration::from_secs(30),
        }
    }
}

/// Processes SQS batches for the replicator function.
#[derive(Debug)]
pub struct BatchProcessor<R> {
    replicator: R,
    queues: Queues,
    settings: BatchSettings,
    metrics: Metrics,
}

impl<R: TaskReplicator> BatchProcessor<R> {
    /// A processor running `replicator`, sending to `queues`, emitting `metrics`.
    pub fn new(replicator: R, queues: Queues, settings: BatchSettings, metrics: Metrics) -> Self {
        Self {
            replicator,
            queues,
            settings,
            metrics,
        }
    }

    /// The engine.
    pub fn replicator(&self) -> &R {
        &self.replicator
    }

    /// Processes one batch; the response lists the messages SQS should deliver again.
    pub async fn process(&self, event: &SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let started = Instant::now();
        let failed: Vec<String> = futures::stream::iter(&event.records)
            .map(|message| self.handle_message(message, deadline))
            .buffer_unordered(self.settings.message_concurrency.max(1))
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        tracing::info!(
            messages = event.records.len(),
            failed = failed.len(),
            ms = transfer::size::millis(started.elapsed()),
            "batch done"
        );
        failures(failed)
    }

    /// One message, in its own span; returns its ID if SQS should deliver it again.
    async fn handle_message(
        &self,
        message: &SqsMessage,
        deadline: Option<Instant>,
    ) -> Option<String> {
        let id = message_id(message);
        let span = tracing::info_span!(
            "message",
            message_id = %id,
            receive_count = message.attributes.get("ApproximateReceiveCount").map_or("-", String::as_str),
        );
        async {
            let disposition = self.run_message(message, deadline).await;
            self.settle(message, disposition).await.then_some(id)
        }
        .instrument(span)
        .await
    }

    /// Parses the message and runs its tasks.
    async fn run_message(&self, message: &SqsMessage, deadline: Option<Instant>) -> Disposition {
        if let Some(deadline) = deadline
            && deadline.saturating_duration_since(Instant::now()) < self.settings.start_margin
        {
            return Disposition::Retry {
                kind: "DeadlineNear".to_owned(),
                reason: "not started: the invocation deadline is near".to_owned(),
                delay: Some(Duration::ZERO),
            };
        }
        let tasks = match self.parse(message) {
            Ok(tasks) => tasks,
            Err(reason) => {
                self.count_failure(KIND_MALFORMED, message.message_id.as_deref());
                return Disposition::Permanent {
                    kind: KIND_MALFORMED.to_owned(),
                    reason,
                };
            }
        };
        if tasks.is_empty() {
            tracing::info!("message holds no event that is replicated");
        }
        let mut disposition = Disposition::Done;
        for task in &tasks {
            let next = self.run_task(task, message, deadline).await;
            disposition = disposition.and(next);
        }
        disposition
    }

    /// The tasks a message body asks for, or why it is malformed.
    fn parse(&self, message: &SqsMessage) -> Result<Vec<ReplicationTask>, String> {
        let body = message.body.as_deref().unwrap_or_default();
        let legacy = LegacyDefaults {
            region: &self.settings.legacy_region,
            bucket: self.settings.legacy_bucket.as_deref().unwrap_or_default(),
        };
        match parse_message(body.as_bytes(), legacy) {
            Ok(IncomingMessage::Legacy(_)) if self.settings.legacy_bucket.is_none() => Err(
                "legacy {\"key\",\"size\"} message, but no source bucket is configured for them (OSS_BUCKET)"
                    .to_owned(),
            ),
            Ok(incoming) => Ok(incoming.into_tasks(&self.settings.event_filter)),
            Err(error) => Err(error.to_string()),
        }
    }

    /// One task, in its own span with key, bytes and ms.
    async fn run_task(
        &self,
        task: &ReplicationTask,
        message: &SqsMessage,
        deadline: Option<Instant>,
    ) -> Disposition {
        let span = tracing::info_span!(
            "object",
            bucket = %task.source.bucket,
            key = %task.source.key,
            op = ?task.op,
            continued = task.continuation.is_some(),
            bytes = tracing::field::Empty,
            ms = tracing::field::Empty,
        );
        async {
            let started = Instant::now();
            let result = self.replicator.replicate(task, deadline).await;
            let ms = transfer::size::millis(started.elapsed());
            tracing::Span::current().record("ms", ms);
            match result {
                Ok(outcome) => self.finish(task, outcome, ms).await,
                Err(error) => self.fail(&error, message),
            }
        }
        .instrument(span)
        .await
    }

    /// Logs and counts an outcome; sends a continuation.
    async fn finish(&self, task: &ReplicationTask, outcome: Outcome, ms: u64) -> Disposition {
        let record = self
            .metrics
            .record()
            .property("key", task.source.key.as_str());
        match outcome {
            Outcome::Copied {
                bytes,
                multipart,
                parts,
            } => {
                tracing::Span::current().record("bytes", bytes);
                tracing::info!(bytes, multipart, parts, ms, "copied");
                let mut record = record
                    .metric("ObjectsReplicated", Unit::Count, 1.0)
                    .metric("BytesReplicated", Unit::Bytes, bytes as f64)
                    .metric("CopyDurationMs", Unit::Milliseconds, ms as f64);
                if let Some(latency) = replication_latency_ms(task) {
                    record = record.metric("ReplicationLatencyMs", Unit::Milliseconds, latency);
                }
                self.metrics.emit(&record);
                Disposition::Done
            }
            Outcome::Skipped(reason) => {
                tracing::info!(reason = reason.as_str(), ms, "skipped");
                self.metrics.emit(
                    &record
                        .metric("ObjectsSkipped", Unit::Count, 1.0)
                        .property("Reason", reason.as_str()),
                );
                Disposition::Done
            }
            Outcome::Deleted => {
                tracing::info!(ms, "deleted from the destination");
                self.metrics
                    .emit(&record.metric("ObjectsDeleted", Unit::Count, 1.0));
                Disposition::Done
            }
            Outcome::Continue(next) => self.continue_later(&next, ms).await,
        }
    }

    /// Enqueues the continuation; if that fails, aborts its upload and retries the message.
    async fn continue_later(&self, next: &ReplicationTask, ms: u64) -> Disposition {
        match self.queues.send_continuation(next).await {
            Ok(()) => {
                tracing::info!(ms, "deadline near: continuation enqueued");
                self.metrics.emit(
                    &self
                        .metrics
                        .record()
                        .metric("Continuations", Unit::Count, 1.0),
                );
                Disposition::Done
            }
            Err(reason) => {
                tracing::error!(%reason, "could not enqueue the continuation; the copy will start over");
                self.replicator.abandon_continuation(next).await;
                self.count_failure("ContinuationNotSent", None);
                Disposition::Retry {
                    kind: "ContinuationNotSent".to_owned(),
                    reason,
                    delay: None,
                }
            }
        }
    }

    /// Logs and counts a failure, and decides retry or dead-letter.
    fn fail(&self, error: &ReplicationError, message: &SqsMessage) -> Disposition {
        let kind = error.kind.as_str();
        self.count_failure(kind, message.message_id.as_deref());
        if error.is_retryable() {
            tracing::warn!(kind, reason = %error.reason, retry_after_s = error.retry_after.map(|d| d.as_secs()), "failed; will retry");
            Disposition::Retry {
                kind: kind.to_owned(),
                reason: error.reason.clone(),
                delay: error.retry_after.filter(|d| *d >= Duration::from_secs(1)),
            }
        } else {
            tracing::error!(kind, reason = %error.reason, "failed permanently");
            Disposition::Permanent {
                kind: kind.to_owned(),
                reason: error.reason.clone(),
            }
        }
    }

    /// Carries out a disposition; returns whether SQS should deliver the message again.
    async fn settle(&self, message: &SqsMessage, disposition: Disposition) -> bool {
        match disposition {
            Disposition::Done => false,
            Disposition::Retry { delay, .. } => {
                if let Some(delay) = delay {
                    self.queues.delay(message, delay).await;
                }
                true
            }
            Disposition::Permanent { kind, reason } => {
                let Some(dlq_url) = self.queues.dlq_url.as_deref() else {
                    tracing::error!(%kind, %reason, "permanent failure; no DLQ_URL, leaving it to the redrive policy");
                    return true;
                };
                match self
                    .queues
                    .dead_letter(dlq_url, message, &kind, &reason)
                    .await
                {
                    Ok(()) => {
                        tracing::error!(%kind, %reason, "permanent failure; sent to the DLQ");
                        false
                    }
                    Err(error) => {
                        tracing::error!(%kind, %reason, %error, "permanent failure, and sending it to the DLQ failed; retrying it so the redrive policy moves it");
                        true
                    }
                }
            }
        }
    }

    fn count_failure(&self, kind: &str, message_id: Option<&str>) {
        let mut record =
            self.metrics
                .record()
                .dimension("Kind", kind)
                .metric("Failures", Unit::Count, 1.0);
        if let Some(id) = message_id {
            record = record.property("messageId", id);
        }
        self.metrics.emit(&record);
    }
}

/// The message ID, or an empty string (which makes Lambda retry the whole batch).
fn message_id(message: &SqsMessage) -> String {
    message.message_id.clone().unwrap_or_default()
}

/// A response naming `ids` as failed.
fn failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Milliseconds from the task's event time to now, when the task has a readable event time.
fn replication_latency_ms(task: &ReplicationTask) -> Option<f64> {
    let event_time = chrono::DateTime::parse_from_rfc3339(task.event_time.as_deref()?).ok()?;
    let latency = chrono::Utc::now().signed_duration_since(event_time);
    Some(latency.num_milliseconds().max(0) as f64)
}

/// The Lambda deadline (epoch milliseconds) as a tokio instant.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + remaining
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_measured_from_the_event_time() {
        let mut task = ReplicationTask::put(transfer::task::SourceObject {
            region: "r".into(),
            bucket: "b".into(),
            key: "k".into(),
            size: None,
            etag: None,
        });
        assert_eq!(replication_latency_ms(&task), None);
        let ten_s_ago = chrono::Utc::now() - chrono::Duration::seconds(10);
        task.event_time = Some(ten_s_ago.to_rfc3339());
        let latency = replication_latency_ms(&task).unwrap();
        assert!((10_000.0..20_000.0).contains(&latency), "{latency}");
    }

    #[test]
    fn deadline_in_the_past_is_now() {
        let before = Instant::now();
        assert!(deadline_from_epoch_ms(0) >= before);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        let in_a_minute = transfer::size::millis(now) + 60_000;
        let left = deadline_from_epoch_ms(in_a_minute) - Instant::now();
        assert!(left > Duration::from_secs(58) && left <= Duration::from_mins(1));
    }
}
