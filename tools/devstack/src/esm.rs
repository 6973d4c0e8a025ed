//! An SQS event source mapping, as Lambda runs one with
//! `FunctionResponseTypes: [ReportBatchItemFailures]`.
//!
//! One poller per function instance:
//! 1. long-polls the queue (`ReceiveMessage`, up to `batch_size` messages, every system
//!    attribute including `ApproximateReceiveCount`, every message attribute), then keeps
//!    collecting for up to the batching window while the batch is not full;
//! 2. builds the `SqsEvent` Lambda sends (`messageId`, `receiptHandle`, `body`, `attributes`,
//!    `messageAttributes`, `md5OfBody`, `eventSource: aws:sqs`, `eventSourceARN`, `awsRegion`);
//! 3. invokes the function synchronously, with the function timeout as deadline;
//! 4. deletes every message except those named in `batchItemFailures`. A function error, a
//!    timeout or an invalid response (not JSON, an empty, missing or unknown `itemIdentifier`)
//!    fails the whole batch: nothing is deleted.
//!
//! Messages not deleted become visible again when the queue's visibility timeout expires, and
//! the queue's redrive policy moves a message to the DLQ once it has been received
//! `maxReceiveCount` times: both are SQS's own behaviour (moto and testkit's SQS server
//! implement them), as in AWS.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use bytes::Bytes;
use tokio::sync::watch;

use testkit::lambda::FunctionInstance;
use testkit::runtime_api::InvocationOutcome;
use testkit::sqs_event::{failed_items, from_messages};

/// The event source mapping's settings.
#[derive(Debug, Clone)]
pub struct EsmSettings {
    /// The queue to poll.
    pub queue_url: String,
    /// Its ARN (`eventSourceARN`).
    pub queue_arn: String,
    /// Its region (`awsRegion`).
    pub region: String,
    /// `BatchSize`: 1 to 10 messages per invocation.
    pub batch_size: i32,
    /// `MaximumBatchingWindow`: how long to keep gathering a batch that is not full.
    pub batching_window: Duration,
    /// The long poll of each `ReceiveMessage` (`WaitTimeSeconds`, whole seconds up to 20).
    pub poll_wait: Duration,
}

/// Counters of one or more pollers.
#[derive(Debug, Default)]
pub struct EsmStats {
    invocations: AtomicU64,
    received: AtomicU64,
    deleted: AtomicU64,
    items_failed: AtomicU64,
    batches_failed: AtomicU64,
}

/// A snapshot of [`EsmStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EsmCounts {
    /// Function invocations.
    pub invocations: u64,
    /// Messages received (a redelivery counts again).
    pub received: u64,
    /// Messages deleted after their invocation.
    pub deleted: u64,
    /// Messages the function named in `batchItemFailures`.
    pub items_failed: u64,
    /// Invocations that failed as a whole (function error, timeout, invalid response).
    pub batches_failed: u64,
}

impl EsmStats {
    /// The current values.
    pub fn snapshot(&self) -> EsmCounts {
        EsmCounts {
            invocations: self.invocations.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            deleted: self.deleted.load(Ordering::Relaxed),
            items_failed: self.items_failed.load(Ordering::Relaxed),
            batches_failed: self.batches_failed.load(Ordering::Relaxed),
        }
    }
}

/// Polls the queue and invokes `function` until `stop` turns true. An invocation in progress
/// finishes first.
pub async fn run_poller(
    sqs: aws_sdk_sqs::Client,
    settings: EsmSettings,
    function: Arc<FunctionInstance>,
    stats: Arc<EsmStats>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let batch = tokio::select! {
            batch = receive_batch(&sqs, &settings) => batch,
            _ = stop.changed() => return,
        };
        let messages = match batch {
            Ok(messages) if messages.is_empty() => continue,
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %err, "ReceiveMessage failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        stats
            .received
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        stats.invocations.fetch_add(1, Ordering::Relaxed);
        let event = from_messages(&messages, &settings.queue_arn, &settings.region);
        let payload = match serde_json::to_vec(&event) {
            Ok(payload) => Bytes::from(payload),
            Err(err) => {
                tracing::error!(error = %err, "cannot serialise the SQS event");
                continue;
            }
        };
        let ids: Vec<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
        let started = Instant::now();
        let outcome = function.invoke(payload).await;
        let all = || ids.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>();
        let (failed, whole_batch) = match &outcome {
            InvocationOutcome::Response(body) => match failed_items(body, &ids) {
                Ok(failed) => (failed, false),
                Err(reason) => {
                    tracing::warn!(%reason, "invalid batch response: the whole batch failed");
                    (all(), true)
                }
            },
            other => {
                tracing::warn!(outcome = ?other, "invocation failed: no message is deleted");
                (all(), true)
            }
        };
        if whole_batch {
            stats.batches_failed.fetch_add(1, Ordering::Relaxed);
        } else {
            stats
                .items_failed
                .fetch_add(failed.len() as u64, Ordering::Relaxed);
        }
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !failed.contains(id)))
            .collect();
        let deleted = delete_messages(&sqs, &settings.queue_url, &done).await;
        stats.deleted.fetch_add(deleted, Ordering::Relaxed);
        tracing::debug!(
            messages = messages.len(),
            failed = failed.len(),
            deleted,
            ms = transfer::size::millis(started.elapsed()),
            "batch done"
        );
    }
}

/// One batch: a long poll, then more short receives until the batch is full or the batching
/// window has passed.
async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    settings: &EsmSettings,
) -> Result<Vec<Message>, aws_sdk_sqs::Error> {
    let batch_size = settings.batch_size.clamp(1, 10);
    let wait = i32::try_from(settings.poll_wait.as_secs().min(20)).unwrap_or(20);
    let mut messages = receive(sqs, settings, batch_size, wait).await?;
    if messages.is_empty() {
        return Ok(messages);
    }
    let window_end = Instant::now() + settings.batching_window;
    let received = |messages: &Vec<Message>| i32::try_from(messages.len()).unwrap_or(i32::MAX);
    while received(&messages) < batch_size && Instant::now() < window_end {
        let more = receive(sqs, settings, batch_size - received(&messages), 0).await?;
        if more.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        messages.extend(more);
    }
    Ok(messages)
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    settings: &EsmSettings,
    max: i32,
    wait_seconds: i32,
) -> Result<Vec<Message>, aws_sdk_sqs::Error> {
    let output = sqs
        .receive_message()
        .queue_url(&settings.queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await?;
    Ok(output.messages.unwrap_or_default())
}

/// Deletes `messages` (DeleteMessageBatch, ten at a time); returns how many were deleted.
async fn delete_messages(sqs: &aws_sdk_sqs::Client, queue_url: &str, messages: &[&Message]) -> u64 {
    let mut deleted = 0;
    for chunk in messages.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        match sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                deleted += output.successful().len() as u64;
                for failure in output.failed() {
                    tracing::warn!(
                        id = failure.id(),
                        code = failure.code(),
                        "DeleteMessageBatch entry failed"
                    );
                }
            }
            Err(err) => {
                tracing::warn!(error = %aws_sdk_sqs::Error::from(err), "DeleteMessageBatch failed");
            }
        }
    }
    deleted
}
