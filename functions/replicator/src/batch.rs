//! The replicator function's whole job for one SQS batch: parse each message, run the copy
//! engine, and decide what happens to the message. Kept here (not in the function) so that it is
//! tested without a Lambda runtime.
//!
//! # Where each message ends up
//! | result | what happens | reported in `batchItemFailures` |
//! |---|---|---|
//! | copied, deleted, skipped | done; SQS deletes it | no |
//! | [`Outcome::Continue`] | the continuation task is sent to the queue (after its delay), then the message is done | only if that send fails |
//! | retryable failure | retried after the visibility timeout (or `retry_after`, e.g. restores) | yes |
//! | retryable failure on the last receive (`MAX_RECEIVE_COUNT`) | sent to the DLQ with the reason (a continuation's upload is aborted first) | only if that send fails |
//! | permanent failure (malformed message, invalid key, foreign bucket, …) | sent to the DLQ by the function, with the reason as message attributes, then done | only if that send fails (the redrive policy moves it later) |
//! | not started because the invocation deadline is near | a copy is sent to the queue (no receive counted), then the message is done | only if that send fails |
//! | a delete within `DELETE_DELAY_SECONDS` of its event | sent again with a delay until it is due | only if that send fails (FIFO queues: retried after the remaining delay) |
//! | several tasks in one message | each task sent as its own message, then the message is done | only if that send fails |
//! | a migration job (a schedule's reconcile) | planned into key-range shards, which are enqueued | only if planning or a send fails (retried; a shard sent twice lists twice, harmlessly) |
//! | a migration job's shard (`oss2s3 sync --queue`) | its range listed and diffed until the hop ends; copy tasks enqueued (delayed to the job's pace when throttled); the rest of the shard enqueued (split in two when large), or at its end its summary written under the job's report prefix | only if a send or the summary fails (the hop is retried; tasks are idempotent) |
//! | the replicator panics on it | retried; the other messages of the batch are unaffected | yes |
//! | OSS credentials unreadable or rejected | retried (the OSS client re-reads the secret once when OSS rejects the keys) | yes |
//!
//! Permanent failures are sent to the DLQ by the function itself rather than left to the
//! redrive policy: they never loop through `maxReceiveCount` receives, and the DLQ message says
//! why it is there (see [`DLQ_ATTR_KIND`](crate::queues::DLQ_ATTR_KIND) and friends). When `dlq_url` is not configured they are
//! reported as failures and the redrive policy moves them; the reason is then only in the log.
//!
//! A message may carry several tasks (a raw OSS event with several events). Each becomes a
//! message of its own before any runs, so that each is retried, continued and dead-lettered on
//! its own, and a retry never runs an object twice.
//!
//! # FIFO queues
//! Messages of one `MessageGroupId` run one after the other, in the order Lambda delivered
//! them; once one of them is to be retried, the rest of its group is not started and is
//! retried too, so that their order holds. Messages without a group (standard queues) run
//! concurrently, `message_concurrency` at a time.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use tracing::Instrument;
use transfer::job::{JobRequest, Shard};
use transfer::message::{IncomingMessage, LegacyDefaults, parse_message};
use transfer::migrate::{
    DEFAULT_SPLIT_AFTER, JobQueue, JobStep, ShardStores, run_job, run_shard_hop,
};
use transfer::replicate::{
    Continuation, Delivery, Outcome, ReplicationError, Replicator, StopSignal,
};
use transfer::store::{ObjectSink, ObjectSource};
use transfer::task::{ReplicationTask, TaskOp};
use transfer::trigger::EventFilter;

use crate::disposition::Disposition;
use crate::metrics::{Metrics, Unit};
use crate::queues::Queues;

/// How long before the invocation deadline every task still running is cancelled, leaving
/// time to settle the messages and answer.
const HARD_STOP: Duration = Duration::from_secs(5);

/// The longest one hop of a job shard lists before it hands the rest on.
const SHARD_HOP: Duration = Duration::from_mins(5);

/// The most time a hop keeps after its listing, before the start margin.
const SHARD_TAIL: Duration = Duration::from_secs(20);

/// What a message asks for.
enum Parsed {
    /// Replication tasks.
    Tasks(Vec<ReplicationTask>),
    /// A migration job's message.
    Job(JobWork),
}

/// A migration job's message (see [`transfer::job`]).
#[derive(Debug, Clone)]
pub enum JobWork {
    /// A job to plan into shards (as a schedule sends it).
    Plan(Box<JobRequest>),
    /// One hop of a shard.
    Shard(Box<Shard>),
}

/// The failure kind of a message body that is no known message shape.
pub const KIND_MALFORMED: &str = "Malformed";

/// The copy engine as the batch processor drives it: one narrow seam, so that batch behaviour
/// is testable with a stand-in engine.
pub trait TaskReplicator: Send + Sync {
    /// Makes the destination reflect the object `task` names, which arrived as `delivery`
    /// says (see [`Replicator::replicate_delivered`]).
    fn replicate(
        &self,
        task: &ReplicationTask,
        delivery: Delivery,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Outcome, ReplicationError>> + Send;

    /// Aborts the multipart upload a continuation task carries, because the continuation could
    /// not be enqueued and the copy will start over.
    fn abandon_continuation(&self, task: &ReplicationTask) -> impl Future<Output = ()> + Send;

    /// Runs a migration job's message, listing until `stop_at` and sending what follows to
    /// `queue` (see [`transfer::migrate::run_shard_hop`]). Stand-in engines do not run jobs.
    fn run_job<Q: JobQueue>(
        &self,
        _work: &JobWork,
        _stop_at: std::time::Instant,
        _queue: &Q,
    ) -> impl Future<Output = Result<JobStep, String>> + Send {
        async { Err("this engine does not run migration jobs".to_owned()) }
    }
}

impl<S, D> TaskReplicator for Replicator<S, D>
where
    S: ObjectSource + Clone + 'static,
    D: ObjectSink + ObjectSource + Clone + 'static,
{
    async fn run_job<Q: JobQueue>(
        &self,
        work: &JobWork,
        stop_at: std::time::Instant,
        queue: &Q,
    ) -> Result<JobStep, String> {
        let settings = self.settings();
        let stores = ShardStores {
            source: self.source().clone(),
            destination: self.sink().clone(),
            destination_bucket: settings.dst_bucket.clone(),
            src_prefix: settings.src_prefix.clone(),
            dst_prefix: settings.dst_prefix.clone(),
            split_after: DEFAULT_SPLIT_AFTER,
            deletes: settings.replicate_deletes,
        };
        match work {
            JobWork::Plan(job) => run_job(job, &stores, queue).await,
            JobWork::Shard(shard) => run_shard_hop(shard, &stores, stop_at, queue).await,
        }
    }

    fn replicate(
        &self,
        task: &ReplicationTask,
        delivery: Delivery,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Outcome, ReplicationError>> + Send {
        Replicator::replicate_delivered(self, task, delivery, deadline)
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
    /// How many messages are processed at once (default [`Self::DEFAULT_MESSAGE_CONCURRENCY`]).
    pub message_concurrency: usize,
    /// The region of legacy `{"key","size"}` messages' bucket.
    pub legacy_region: String,
    /// The bucket of legacy messages; without it they fail permanently.
    pub legacy_bucket: Option<String>,
    /// Which events of a raw OSS event become tasks.
    pub event_filter: EventFilter,
    /// A message is not started when less than this remains before the deadline (default 30 s);
    /// a copy of it is enqueued instead.
    pub start_margin: Duration,
    /// The queue's `maxReceiveCount`, when known: a retryable failure on that receive is
    /// dead-lettered by the function, with its reason.
    pub max_receive_count: Option<u32>,
    /// How long after its event a delete is applied (default zero: at once).
    pub delete_delay: Duration,
}

impl BatchSettings {
    /// The default number of messages processed at once: a whole batch of
    /// [`Self::RECOMMENDED_BATCH_SIZE`]. Measured (bench P3), small objects are copied at the
    /// rate of one object's round trips divided by this number, up to the CPU; memory stays
    /// within the copy engine's budget however many run.
    pub const DEFAULT_MESSAGE_CONCURRENCY: usize = 100;

    /// The event source mapping's `BatchSize` the template deploys by default (the largest
    /// a standard queue allows with a batching window of at least 1 s): one invocation then
    /// carries up to this many messages, all copied at once.
    pub const RECOMMENDED_BATCH_SIZE: usize = 100;

    /// Settings for legacy messages from `legacy_region`, every other field at its default.
    pub fn new(legacy_region: impl Into<String>) -> Self {
        Self {
            message_concurrency: Self::DEFAULT_MESSAGE_CONCURRENCY,
            legacy_region: legacy_region.into(),
            legacy_bucket: None,
            event_filter: EventFilter::default(),
            start_margin: Duration::from_secs(30),
            max_receive_count: None,
            delete_delay: Duration::ZERO,
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
    stop: StopSignal,
}

impl<R: TaskReplicator> BatchProcessor<R> {
    /// A processor running `replicator`, sending to `queues`, emitting `metrics`.
    pub fn new(replicator: R, queues: Queues, settings: BatchSettings, metrics: Metrics) -> Self {
        Self {
            replicator,
            queues,
            settings,
            metrics,
            stop: StopSignal::new(),
        }
    }

    /// Starts no further message once `stop` is raised: those not started are re-enqueued.
    /// (The engine gets the same signal, so copies in flight wrap up.)
    #[must_use]
    pub fn with_stop(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
        self
    }

    /// The engine.
    pub fn replicator(&self) -> &R {
        &self.replicator
    }

    /// Processes one batch; the response lists the messages SQS should deliver again.
    pub async fn process(&self, event: &SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let started = Instant::now();
        let failed: Vec<String> = futures::stream::iter(message_groups(&event.records))
            .map(|group| self.handle_group(group, deadline))
            .buffer_unordered(self.settings.message_concurrency.max(1))
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        self.metrics.flush();
        tracing::info!(
            messages = event.records.len(),
            failed = failed.len(),
            ms = transfer::size::millis(started.elapsed()),
            "batch done"
        );
        failures(failed)
    }

    /// The messages of one group, in order; returns the IDs SQS should deliver again.
    async fn handle_group(
        &self,
        group: Vec<&SqsMessage>,
        deadline: Option<Instant>,
    ) -> Vec<String> {
        let mut failed: Vec<String> = Vec::new();
        for message in group {
            if let Some(earlier) = failed.first() {
                tracing::info!(message_id = %message_id(message), earlier = %earlier, "not started: an earlier message of its FIFO group is retried first");
                failed.push(message_id(message));
            } else if self.handle_message(message, deadline).await {
                failed.push(message_id(message));
            }
        }
        failed
    }

    /// One message, in its own span; returns whether SQS should deliver it again. A panic while
    /// it runs fails this message only.
    async fn handle_message(&self, message: &SqsMessage, deadline: Option<Instant>) -> bool {
        let id = message_id(message);
        let span = tracing::info_span!(
            "message",
            message_id = %id,
            receive_count = message.attributes.get("ApproximateReceiveCount").map_or("-", String::as_str),
        );
        async {
            let run = AssertUnwindSafe(self.run_message(message, deadline));
            let disposition = match run.catch_unwind().await {
                Ok(disposition) => disposition,
                Err(panic) => {
                    let reason = format!("the replicator panicked: {}", panic_text(&*panic));
                    tracing::error!(%reason, "message failed");
                    self.count_failure("Panic", message.message_id.as_deref());
                    Disposition::Retry {
                        kind: "Panic".to_owned(),
                        reason,
                        delay: None,
                    }
                }
            };
            self.settle(message, disposition).await
        }
        .instrument(span)
        .await
    }

    /// Parses the message and runs its task; fans out a message of several tasks.
    async fn run_message(&self, message: &SqsMessage, deadline: Option<Instant>) -> Disposition {
        if self.stop.is_stopped() {
            return Disposition::Requeue {
                reason: "not started: the function is shutting down".to_owned(),
            };
        }
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < self.settings.start_margin {
                return Disposition::Requeue {
                    reason: format!(
                        "not started: {} ms of the invocation remain, less than the {} s start margin",
                        transfer::size::millis(left),
                        self.settings.start_margin.as_secs()
                    ),
                };
            }
        }
        let tasks = match self.parse(message) {
            Ok(Parsed::Tasks(tasks)) => tasks,
            Ok(Parsed::Job(work)) => return self.run_job_message(&work, deadline).await,
            Err(reason) => {
                self.count_failure(KIND_MALFORMED, message.message_id.as_deref());
                return Disposition::Permanent {
                    kind: KIND_MALFORMED.to_owned(),
                    reason,
                };
            }
        };
        match tasks.as_slice() {
            [] => {
                tracing::info!("message holds no event that is replicated");
                Disposition::Done
            }
            [task] => self.run_task(task, message, deadline).await,
            _ => match self.queues.send_tasks(&tasks, Duration::ZERO).await {
                Ok(()) => {
                    tracing::info!(
                        tasks = tasks.len(),
                        "message of several tasks: each enqueued as its own message"
                    );
                    Disposition::Done
                }
                Err(reason) => {
                    self.count_failure("FanOutNotSent", message.message_id.as_deref());
                    Disposition::Retry {
                        kind: "FanOutNotSent".to_owned(),
                        reason: format!(
                            "could not enqueue the message's tasks one by one: {reason}"
                        ),
                        delay: None,
                    }
                }
            },
        }
    }

    /// A migration job's message: a job planned into shards, or one hop of a shard (its copy
    /// tasks go to the queue, then the rest of the shard, or at its end its summary under the
    /// job's report prefix).
    async fn run_job_message(&self, work: &JobWork, deadline: Option<Instant>) -> Disposition {
        let now = Instant::now();
        // A hop stops listing after at most five minutes, so that a shard's tasks start flowing
        // early; the rest continues in a new message. It stops well before the deadline too:
        // the start margin, and a quarter of the time left (at most 20 s) for what follows the
        // listing (the last tasks, the split's probes, the next message, the summary).
        let mut stop_at = now + SHARD_HOP;
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(now);
            let tail = (left / 4).min(SHARD_TAIL);
            let end = deadline
                .checked_sub(self.settings.start_margin + tail)
                .unwrap_or(now);
            stop_at = stop_at.min(end.max(now));
        }
        let span = match work {
            JobWork::Plan(job) => tracing::info_span!("job", job = %job.job_id),
            JobWork::Shard(shard) => {
                tracing::info_span!("shard", job = %shard.job_id, shard = %shard.name())
            }
        };
        let step = self
            .replicator
            .run_job(work, stop_at.into_std(), &self.queues)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match step {
            Ok(JobStep::Planned(shards)) => tracing::info!(shards, "job planned"),
            Ok(JobStep::Continued { pieces, listed }) => {
                tracing::info!(pieces, listed, "shard continues");
            }
            Ok(JobStep::Finished { counts, job_listed }) => {
                tracing::info!(
                    listed = counts.listed,
                    to_copy = counts.to_copy,
                    job_listed,
                    "shard done"
                );
            }
            Err(reason) => {
                tracing::warn!(%reason, "job message failed; retried");
                self.count_failure("JobFailed", None);
                return Disposition::Retry {
                    kind: "JobFailed".to_owned(),
                    reason,
                    delay: None,
                };
            }
        }
        Disposition::Done
    }

    /// The tasks a message body asks for, or why it is malformed.
    fn parse(&self, message: &SqsMessage) -> Result<Parsed, String> {
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
            Ok(IncomingMessage::Shard(shard)) => Ok(Parsed::Job(JobWork::Shard(shard))),
            Ok(IncomingMessage::Job(job)) => Ok(Parsed::Job(JobWork::Plan(job))),
            Ok(IncomingMessage::S3Test { bucket }) => {
                tracing::info!(
                    bucket = bucket.as_deref().unwrap_or_default(),
                    "S3's test event (sent when a notification configuration is saved): nothing to replicate"
                );
                Ok(Parsed::Tasks(Vec::new()))
            }
            Ok(incoming) => Ok(Parsed::Tasks(
                incoming.into_tasks(&self.settings.event_filter),
            )),
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
            if let Some(deferred) = self.defer_delete(task, message).await {
                return deferred;
            }
            let started = Instant::now();
            let delivery = if receive_count(message) > 1 {
                Delivery::Repeated
            } else {
                Delivery::First
            };
            let result = self.replicate_in_time(task, delivery, deadline).await;
            let ms = transfer::size::millis(started.elapsed());
            tracing::Span::current().record("ms", ms);
            match result {
                Ok(outcome) => self.finish(task, outcome, ms).await,
                Err(error) => self.fail(&error, task, message).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Logs and counts an outcome; sends a continuation.
    async fn finish(&self, task: &ReplicationTask, outcome: Outcome, ms: u64) -> Disposition {
        let metrics = &self.metrics;
        match outcome {
            Outcome::Copied {
                bytes,
                multipart,
                parts,
            } => {
                tracing::Span::current().record("bytes", bytes);
                tracing::info!(bytes, multipart, parts, ms, "copied");
                metrics.add("ObjectsReplicated", Unit::Count, 1.0);
                metrics.add("BytesReplicated", Unit::Bytes, bytes as f64);
                metrics.sample("CopyDurationMs", Unit::Milliseconds, ms as f64);
                if let Some(latency) = replication_latency_ms(task) {
                    metrics.sample("ReplicationLatencyMs", Unit::Milliseconds, latency);
                }
                Disposition::Done
            }
            Outcome::Skipped(reason) => {
                tracing::info!(reason = reason.as_str(), ms, "skipped");
                metrics.add("ObjectsSkipped", Unit::Count, 1.0);
                metrics.count_label("SkippedReasons", reason.as_str());
                Disposition::Done
            }
            Outcome::Deleted => {
                tracing::info!(ms, "deleted from the destination");
                metrics.add("ObjectsDeleted", Unit::Count, 1.0);
                Disposition::Done
            }
            Outcome::Continue { task: next, delay } => self.continue_later(&next, delay, ms).await,
        }
    }

    /// Runs the engine on `task`, but never past [`HARD_STOP`] before the deadline: whatever
    /// the engine has not wrapped up by then (a HEAD or a delete stuck in retries) is cancelled
    /// and retried, so the invocation always answers before Lambda's timeout. (The engine hands
    /// multipart copies on at its own, earlier, stop margin; a cancelled upload is aborted.)
    async fn replicate_in_time(
        &self,
        task: &ReplicationTask,
        delivery: Delivery,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        // Boxed: the engine's future is large and deep; one allocation per task keeps the
        // batch's own future small.
        let run = Box::pin(self.replicator.replicate(task, delivery, deadline));
        let Some(deadline) = deadline else {
            return run.await;
        };
        let cutoff = deadline.checked_sub(HARD_STOP).unwrap_or_else(Instant::now);
        tokio::select! {
            result = run => result,
            () = tokio::time::sleep_until(cutoff) => Err(ReplicationError::new(
                transfer::replicate::FailureKind::DeadlineReached,
                format!(
                    "the task had not finished {} s before the invocation deadline; it was cancelled and is retried",
                    HARD_STOP.as_secs()
                ),
            )),
        }
    }

    /// A delete that is not yet due (`delete_delay` after the message was first sent) is sent
    /// again, delayed, and this message is done; `None` when the task runs now.
    async fn defer_delete(
        &self,
        task: &ReplicationTask,
        message: &SqsMessage,
    ) -> Option<Disposition> {
        let delay = self.settings.delete_delay;
        if task.op != TaskOp::Delete || delay.is_zero() {
            return None;
        }
        let now = unix_seconds(SystemTime::now());
        let not_before = task.not_before.unwrap_or_else(|| {
            // From when the message was first sent, so redeliveries do not push it back;
            // rounded up to the second, so that the delete never comes early.
            let sent_ms = message
                .attributes
                .get("SentTimestamp")
                .and_then(|t| t.parse::<u64>().ok());
            sent_ms.map_or(now, |ms| ms.div_ceil(1000)) + delay.as_secs()
        });
        if not_before <= now {
            return None;
        }
        let wait = Duration::from_secs(not_before - now);
        if self.queues.is_fifo() {
            // No per-message delay on FIFO queues: the message waits out the delay invisible.
            return Some(Disposition::Retry {
                kind: "DeleteDelayed".to_owned(),
                reason: format!("the delete is due in {} s", wait.as_secs()),
                delay: Some(wait),
            });
        }
        let mut deferred = task.clone();
        deferred.not_before = Some(not_before);
        Some(match self.queues.send_tasks(&[deferred], wait).await {
            Ok(()) => {
                tracing::info!(due_in_s = wait.as_secs(), "delete deferred");
                self.metrics.add("DeletesDeferred", Unit::Count, 1.0);
                Disposition::Done
            }
            Err(reason) => {
                self.count_failure("DeferNotSent", message.message_id.as_deref());
                Disposition::Retry {
                    kind: "DeferNotSent".to_owned(),
                    reason: format!("could not enqueue the delayed delete: {reason}"),
                    delay: None,
                }
            }
        })
    }

    /// Enqueues the continuation after `delay`; if that fails, aborts its upload and retries
    /// the message.
    async fn continue_later(
        &self,
        next: &ReplicationTask,
        delay: Duration,
        ms: u64,
    ) -> Disposition {
        match self
            .queues
            .send_tasks(std::slice::from_ref(next), delay)
            .await
        {
            Ok(()) => {
                tracing::info!(ms, delay_s = delay.as_secs(), "continuation enqueued");
                self.metrics.add("Continuations", Unit::Count, 1.0);
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

    /// Logs and counts a failure, and decides retry or dead-letter. A retryable failure on the
    /// last receive the queue allows is dead-lettered here, with its reason, rather than by the
    /// redrive policy without one; the upload of a continuation is aborted first, since no
    /// later invocation will resume it.
    async fn fail(
        &self,
        error: &ReplicationError,
        task: &ReplicationTask,
        message: &SqsMessage,
    ) -> Disposition {
        let kind = error.kind.as_str();
        self.count_failure(kind, message.message_id.as_deref());
        let receives = receive_count(message);
        let last = self
            .settings
            .max_receive_count
            .is_some_and(|max| receives >= max);
        if error.is_retryable() && last {
            tracing::error!(kind, reason = %error.reason, receives, "failed on the last receive; giving up");
            if task.continuation.is_some() {
                self.replicator.abandon_continuation(task).await;
            }
            return Disposition::Permanent {
                kind: kind.to_owned(),
                reason: format!("gave up after {receives} receives: {}", error.reason),
            };
        }
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
            Disposition::Requeue { reason } => match self.queues.requeue(message).await {
                Ok(()) => {
                    tracing::info!(%reason, "re-enqueued to run in a later invocation");
                    self.metrics.add("Requeued", Unit::Count, 1.0);
                    false
                }
                Err(error) => {
                    tracing::warn!(%reason, %error, "could not re-enqueue; SQS delivers it again");
                    self.queues.delay(message, Duration::ZERO).await;
                    true
                }
            },
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
        let mut record = self
            .metrics
            .record()
            .dimension("Kind", kind)
            .rollup()
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

/// The batch's messages in groups that must run in order: one group per FIFO
/// `MessageGroupId` (in delivery order), and every message without one on its own.
fn message_groups(messages: &[SqsMessage]) -> Vec<Vec<&SqsMessage>> {
    let mut groups: Vec<Vec<&SqsMessage>> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for message in messages {
        match message.attributes.get("MessageGroupId") {
            Some(group) => {
                if let Some(&i) = index.get(group.as_str()) {
                    groups[i].push(message);
                } else {
                    index.insert(group.as_str(), groups.len());
                    groups.push(vec![message]);
                }
            }
            None => groups.push(vec![message]),
        }
    }
    groups
}

/// The message's `ApproximateReceiveCount` (1 when absent).
fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// What a panic said, when it said it with a string.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned())
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The invocation deadline as a tokio instant, from the runtime's `Lambda-Runtime-Deadline-Ms`
/// (epoch milliseconds). A value that cannot be a deadline of this invocation (in the past, or
/// further ahead than Lambda's 15-minute limit, as the 600000 that `cargo lambda watch` sends)
/// is treated as unknown: the deadline is then `fallback` from now, and the first time this
/// happens a warning says so.
pub fn invocation_deadline(deadline_ms: u64, fallback: Duration, warned: &AtomicBool) -> Instant {
    let now = SystemTime::now();
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    match deadline.duration_since(now) {
        Ok(remaining) if remaining <= MAX_INVOCATION => Instant::now() + remaining,
        _ => {
            if !warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    deadline_ms,
                    fallback_s = fallback.as_secs(),
                    "the runtime's deadline is not a plausible time for this invocation; using the configured function timeout (FUNCTION_TIMEOUT_SECONDS) from now"
                );
            }
            Instant::now() + fallback
        }
    }
}

/// Lambda's longest invocation, with a minute's slack for clock differences.
const MAX_INVOCATION: Duration = Duration::from_mins(16);

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
    fn a_plausible_deadline_is_used_and_an_implausible_one_falls_back_once() {
        let warned = AtomicBool::new(false);
        let fallback = Duration::from_mins(15);
        let now_ms = transfer::size::millis(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap(),
        );
        let left = invocation_deadline(now_ms + 60_000, fallback, &warned) - Instant::now();
        assert!(left > Duration::from_secs(58) && left <= Duration::from_mins(1));
        assert!(!warned.load(Ordering::Relaxed));
        // What `cargo lambda watch` sends: 600000, ten minutes after the epoch.
        let left = invocation_deadline(600_000, fallback, &warned) - Instant::now();
        assert!(
            left > Duration::from_secs(898) && left <= fallback,
            "{left:?}"
        );
        assert!(warned.load(Ordering::Relaxed));
        // A day ahead is not a Lambda deadline either.
        let left = invocation_deadline(now_ms + 86_400_000, fallback, &warned) - Instant::now();
        assert!(left <= fallback);
    }

    fn message(id: &str, group: Option<&str>) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        if let Some(group) = group {
            message
                .attributes
                .insert("MessageGroupId".to_owned(), group.to_owned());
        }
        message
    }

    #[test]
    fn fifo_groups_keep_their_order_and_ungrouped_messages_stand_alone() {
        let batch = [
            message("a1", Some("a")),
            message("s1", None),
            message("b1", Some("b")),
            message("a2", Some("a")),
            message("s2", None),
            message("a3", Some("a")),
        ];
        let groups: Vec<Vec<&str>> = message_groups(&batch)
            .iter()
            .map(|g| g.iter().map(|m| m.message_id.as_deref().unwrap()).collect())
            .collect();
        assert_eq!(
            groups,
            vec![vec!["a1", "a2", "a3"], vec!["s1"], vec!["b1"], vec!["s2"]]
        );
    }
}
