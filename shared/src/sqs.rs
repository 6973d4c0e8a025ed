//! Sending replication tasks to SQS: batching within SendMessageBatch's limits and a sender that
//! retries what can be retried.
//!
//! Limits (SQS API reference, SendMessageBatch): at most [`MAX_BATCH_ENTRIES`] entries and
//! [`MAX_BATCH_BYTES`] for the batch, entry IDs of at most 80 characters from `[A-Za-z0-9_-]`, and
//! a 200 reply may still list `Failed` entries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use backon::BackoffBuilder;
use futures::StreamExt;

use crate::retry::RetryPolicy;
use crate::task::ReplicationTask;

/// SendMessageBatch's entry limit.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SendMessageBatch's size limit for one message and for the whole batch: 1 MiB.
pub const MAX_BATCH_BYTES: usize = crate::size::as_usize(crate::size::MIB);
/// How many batches one [`SqsSender::send_tasks`] call has in flight.
pub const BATCH_CONCURRENCY: usize = 4;

/// DLQ message attribute: the failure kind (e.g. `Malformed`, `InvalidKey`), as the replicator
/// writes it and `oss2s3 dlq` reads it.
pub const DLQ_ATTR_KIND: &str = "oss2s3-failure-kind";
/// DLQ message attribute: the human-readable reason (at most [`MAX_REASON_BYTES`]).
pub const DLQ_ATTR_REASON: &str = "oss2s3-failure-reason";
/// DLQ message attribute: the ID of the message as it was received from the source queue.
pub const DLQ_ATTR_MESSAGE_ID: &str = "oss2s3-original-message-id";
/// DLQ message attribute: the ARN of the queue the message came from.
pub const DLQ_ATTR_SOURCE_QUEUE: &str = "oss2s3-source-queue-arn";
/// The longest reason kept in a DLQ attribute.
pub const MAX_REASON_BYTES: usize = 4096;

/// A queue's approximate message counts, as SQS reports them: `(visible, in flight, delayed)`.
pub async fn queue_depth(client: &Client, queue_url: &str) -> Result<(u64, u64, u64), String> {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let output = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(Name::ApproximateNumberOfMessages)
        .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(Name::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the depth of {queue_url}: {}",
                DisplayErrorContext(e)
            )
        })?;
    let get = |name: Name| {
        output
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((
        get(Name::ApproximateNumberOfMessages),
        get(Name::ApproximateNumberOfMessagesNotVisible),
        get(Name::ApproximateNumberOfMessagesDelayed),
    ))
}

/// Whether a queue URL names a FIFO queue (its name ends in `.fifo`).
pub fn is_fifo_queue(queue_url: &str) -> bool {
    queue_url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .is_some_and(|(_, suffix)| suffix == "fifo")
}

/// One message ready for a SendMessageBatch entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The batch entry ID (`t<index>`), unique within one send.
    pub id: String,
    /// The message body: the task's JSON.
    pub body: String,
    /// String message attributes (name, value).
    pub attributes: Vec<(String, String)>,
    /// The FIFO message group ID.
    pub group_id: Option<String>,
    /// The FIFO deduplication ID.
    pub dedup_id: Option<String>,
    /// How long SQS keeps the message invisible after it is sent (standard queues only; at
    /// most [`MAX_DELAY`]).
    pub delay: Option<Duration>,
}

/// The longest delay SQS allows on one message: 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_mins(15);

impl OutgoingMessage {
    /// The message for the task at position `index`; FIFO queues get a group ID from bucket/key
    /// and the task identity as deduplication ID.
    pub fn from_task(index: usize, task: &ReplicationTask, fifo: bool) -> Self {
        Self {
            id: format!("t{index}"),
            body: task.to_json(),
            attributes: Vec::new(),
            group_id: fifo.then(|| task.message_group_id()),
            dedup_id: fifo.then(|| task.identity()),
            delay: None,
        }
    }

    /// The message, delivered no earlier than `delay` from now (cut to [`MAX_DELAY`]). FIFO
    /// queues have no per-message delay; there it is ignored.
    #[must_use]
    pub fn delayed(mut self, delay: Duration) -> Self {
        if self.group_id.is_none() && !delay.is_zero() {
            self.delay = Some(delay.min(MAX_DELAY));
        }
        self
    }

    /// The size SQS counts against the 1 MiB limit: the body plus each attribute's name, data
    /// type (`String`) and value.
    pub fn billed_size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
    }
}

/// Splits messages into SendMessageBatch-sized chunks, keeping their order: at most
/// [`MAX_BATCH_ENTRIES`] entries and [`MAX_BATCH_BYTES`] per chunk. A message larger than the
/// limit on its own goes alone into a chunk, for SQS to reject (and the sender to report).
pub fn chunk_messages(messages: Vec<OutgoingMessage>) -> Vec<Vec<OutgoingMessage>> {
    let mut chunks = Vec::new();
    let mut current: Vec<OutgoingMessage> = Vec::new();
    let mut current_bytes = 0;
    for message in messages {
        let size = message.billed_size();
        if !current.is_empty()
            && (current.len() == MAX_BATCH_ENTRIES || current_bytes + size > MAX_BATCH_BYTES)
        {
            chunks.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += size;
        current.push(message);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// How a failed send is retried: 4 attempts, 200 ms doubling up to 2 s, with jitter.
pub const DEFAULT_SEND_RETRY: RetryPolicy =
    RetryPolicy::new(4, Duration::from_millis(200), Duration::from_secs(2));

/// A message that was not enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedMessage {
    /// The batch entry ID.
    pub id: String,
    /// The error code (SQS's, or `Transport` for errors without one).
    pub code: String,
    /// The error message.
    pub message: String,
    /// Whether SQS blamed the request (not worth retrying).
    pub permanent: bool,
}

/// What a send achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSummary {
    /// Messages SQS accepted.
    pub sent: usize,
    /// SendMessageBatch calls made, retries included.
    pub batch_calls: usize,
    /// Messages not enqueued after all attempts.
    pub failed: Vec<FailedMessage>,
}

impl SendSummary {
    /// Whether every message was enqueued.
    pub fn all_sent(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Timeouts for the SQS client, applied to every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqsTimeouts {
    /// TCP/TLS connect timeout (default 3 s).
    pub connect: Duration,
    /// Timeout of one whole API call (default 10 s).
    pub call: Duration,
}

impl Default for SqsTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            call: Duration::from_secs(10),
        }
    }
}

/// Loads the standard AWS configuration (region, credentials chain, `AWS_ENDPOINT_URL_SQS` /
/// `AWS_ENDPOINT_URL`) with `timeouts` on every call and SDK retries off: the [`SqsSender`] owns
/// retrying, so one place bounds the total time.
pub async fn load_aws_config(timeouts: SqsTimeouts) -> aws_config::SdkConfig {
    let timeout_config = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(timeouts.connect)
        .operation_attempt_timeout(timeouts.call)
        .operation_timeout(timeouts.call)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeout_config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// An SQS client from [`load_aws_config`].
pub async fn load_sqs_client(timeouts: SqsTimeouts) -> Client {
    Client::new(&load_aws_config(timeouts).await)
}

/// Sends replication tasks to one queue with SendMessageBatch.
#[derive(Debug, Clone)]
pub struct SqsSender {
    client: Client,
    queue_url: String,
    fifo: bool,
    retry: RetryPolicy,
}

impl SqsSender {
    /// A sender for `queue_url` using `client` (FIFO handling follows the URL).
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        Self {
            fifo: is_fifo_queue(&queue_url),
            client,
            queue_url,
            retry: DEFAULT_SEND_RETRY,
        }
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Whether the queue is a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    /// The messages (and batches) `tasks` become on this queue.
    pub fn batches(&self, tasks: &[ReplicationTask]) -> Vec<Vec<OutgoingMessage>> {
        let messages = tasks
            .iter()
            .enumerate()
            .map(|(i, task)| OutgoingMessage::from_task(i, task, self.fifo))
            .collect();
        chunk_messages(messages)
    }

    /// Enqueues every task, retrying `Failed` entries that SQS did not blame on the sender and
    /// calls that failed retryably, with backoff. Never returns early on a failure: the summary
    /// lists each message that was not enqueued.
    pub async fn send_tasks(&self, tasks: &[ReplicationTask]) -> SendSummary {
        self.send_batches(self.batches(tasks)).await
    }

    /// Enqueues `messages` (with unique entry IDs) as [`Self::send_tasks`] does.
    pub async fn send_messages(&self, messages: Vec<OutgoingMessage>) -> SendSummary {
        self.send_batches(chunk_messages(messages)).await
    }

    async fn send_batches(&self, batches: Vec<Vec<OutgoingMessage>>) -> SendSummary {
        let calls = AtomicUsize::new(0);
        let results: Vec<(usize, Vec<FailedMessage>)> = futures::stream::iter(batches)
            .map(|batch| self.send_batch(batch, &calls))
            .buffer_unordered(BATCH_CONCURRENCY)
            .collect()
            .await;
        let mut summary = SendSummary {
            batch_calls: calls.into_inner(),
            ..SendSummary::default()
        };
        for (sent, failed) in results {
            summary.sent += sent;
            summary.failed.extend(failed);
        }
        summary
            .failed
            .sort_by_key(|f| f.id.trim_start_matches('t').parse::<usize>().unwrap_or(0));
        summary
    }

    /// Sends one chunk until it is through or out of attempts; returns (sent, failed).
    async fn send_batch(
        &self,
        batch: Vec<OutgoingMessage>,
        calls: &AtomicUsize,
    ) -> (usize, Vec<FailedMessage>) {
        let mut pending = batch;
        let mut failed = Vec::new();
        let mut sent = 0;
        let mut delays = self.retry.backoff().build();
        let mut last_errors: Vec<FailedMessage> = Vec::new();
        for attempt in 1..=self.retry.max_attempts.max(1) {
            if attempt > 1 {
                let Some(delay) = delays.next() else { break };
                tokio::time::sleep(delay).await;
            }
            calls.fetch_add(1, Ordering::Relaxed);
            match self.call(&pending).await {
                Ok(output) => {
                    sent += output.successful.len();
                    let mut retry_ids = Vec::new();
                    last_errors.clear();
                    for entry in output.failed {
                        let failure = FailedMessage {
                            id: entry.id.clone(),
                            code: entry.code,
                            message: entry.message.unwrap_or_default(),
                            permanent: entry.sender_fault,
                        };
                        if entry.sender_fault {
                            failed.push(failure);
                        } else {
                            retry_ids.push(entry.id);
                            last_errors.push(failure);
                        }
                    }
                    // Entries SQS reported neither way are treated as not sent.
                    let answered: Vec<String> =
                        output.successful.into_iter().map(|s| s.id).collect();
                    pending.retain(|m| {
                        retry_ids.contains(&m.id)
                            || (!answered.contains(&m.id) && !failed.iter().any(|f| f.id == m.id))
                    });
                    if !pending.is_empty() {
                        tracing::warn!(
                            attempt,
                            remaining = pending.len(),
                            "SendMessageBatch left entries unsent; retrying"
                        );
                    }
                }
                Err((code, message, retryable)) => {
                    tracing::warn!(attempt, retryable, code = %code, error = %message, "SendMessageBatch failed");
                    last_errors = pending
                        .iter()
                        .map(|m| FailedMessage {
                            id: m.id.clone(),
                            code: code.clone(),
                            message: message.clone(),
                            permanent: !retryable,
                        })
                        .collect();
                    if !retryable {
                        break;
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        for message in pending {
            let failure = last_errors
                .iter()
                .find(|f| f.id == message.id)
                .cloned()
                .unwrap_or(FailedMessage {
                    id: message.id,
                    code: "NotSent".into(),
                    message: "no reply for this entry".into(),
                    permanent: false,
                });
            failed.push(failure);
        }
        (sent, failed)
    }

    /// One SendMessageBatch call; an error is (code, message, retryable).
    async fn call(
        &self,
        batch: &[OutgoingMessage],
    ) -> Result<
        aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput,
        (String, String, bool),
    > {
        let mut entries = Vec::with_capacity(batch.len());
        for message in batch {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(&message.id)
                .message_body(&message.body)
                .set_message_group_id(message.group_id.clone())
                .set_message_deduplication_id(message.dedup_id.clone())
                .set_delay_seconds(
                    message
                        .delay
                        .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX)),
                );
            for (name, value) in &message.attributes {
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(|e| ("InvalidAttribute".to_owned(), e.to_string(), false))?;
                entry = entry.message_attributes(name, value);
            }
            entries.push(
                entry
                    .build()
                    .map_err(|e| ("InvalidEntry".to_owned(), e.to_string(), false))?,
            );
        }
        self.client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| classify(&err))
    }
}

/// Error codes SQS uses for throttling and transient server trouble.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KmsThrottled",
];

/// (code, message, retryable) for an SDK error: transport errors, timeouts, 5xx and throttling are
/// retryable; other service errors (missing queue, access denied, invalid request) are not.
fn classify<E, R>(err: &SdkError<E, R>) -> (String, String, bool)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(err).to_string();
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_owned();
            let retryable = RETRYABLE_CODES.contains(&code.as_str());
            (code, message, retryable)
        }
        SdkError::ConstructionFailure(_) => ("ConstructionFailure".into(), message, false),
        SdkError::TimeoutError(_) => ("Timeout".into(), message, true),
        _ => ("Transport".into(), message, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::SourceObject;

    fn task(key: &str) -> ReplicationTask {
        ReplicationTask::put(SourceObject {
            region: "cn-hangzhou".into(),
            bucket: "b".into(),
            key: key.into(),
            size: Some(1),
            etag: None,
        })
    }

    fn messages(n: usize, body_len: usize) -> Vec<OutgoingMessage> {
        (0..n)
            .map(|i| OutgoingMessage {
                id: format!("t{i}"),
                body: "x".repeat(body_len),
                attributes: Vec::new(),
                group_id: None,
                dedup_id: None,
                delay: None,
            })
            .collect()
    }

    fn sizes(chunks: &[Vec<OutgoingMessage>]) -> Vec<usize> {
        chunks.iter().map(Vec::len).collect()
    }

    #[test]
    fn chunks_25_messages_into_10_10_5() {
        let chunks = chunk_messages(messages(25, 100));
        assert_eq!(sizes(&chunks), [10, 10, 5]);
        let ids: Vec<_> = chunks.concat().into_iter().map(|m| m.id).collect();
        assert_eq!(ids, (0..25).map(|i| format!("t{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn chunks_respect_the_byte_limit() {
        // 300 KiB bodies: three fit in 1 MiB, a fourth does not.
        let chunks = chunk_messages(messages(7, 300 * 1024));
        assert_eq!(sizes(&chunks), [3, 3, 1]);
        for chunk in &chunks {
            let total: usize = chunk.iter().map(OutgoingMessage::billed_size).sum();
            assert!(total <= MAX_BATCH_BYTES);
        }
    }

    #[test]
    fn byte_limit_counts_attributes() {
        let mut msgs = messages(2, MAX_BATCH_BYTES / 2);
        assert_eq!(sizes(&chunk_messages(msgs.clone())), [2]);
        msgs[1].attributes.push(("a".into(), "v".into()));
        assert_eq!(msgs[1].billed_size(), MAX_BATCH_BYTES / 2 + 1 + 6 + 1);
        assert_eq!(sizes(&chunk_messages(msgs)), [1, 1]);
    }

    #[test]
    fn oversized_message_goes_alone() {
        let mut msgs = messages(3, 10);
        msgs[1].body = "x".repeat(MAX_BATCH_BYTES + 1);
        assert_eq!(sizes(&chunk_messages(msgs)), [1, 1, 1]);
    }

    #[test]
    fn no_messages_no_chunks() {
        assert!(chunk_messages(Vec::new()).is_empty());
    }

    #[test]
    fn entry_ids_are_valid_sqs_ids() {
        for i in [0, 9, 10_000_000] {
            let m = OutgoingMessage::from_task(i, &task("k"), false);
            assert!(m.id.len() <= 80);
            assert!(
                m.id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            );
        }
    }

    #[test]
    fn fifo_messages_carry_group_and_dedup_ids() {
        let t = task("dir/a.txt");
        let standard = OutgoingMessage::from_task(0, &t, false);
        assert_eq!((standard.group_id, standard.dedup_id), (None, None));
        let fifo = OutgoingMessage::from_task(0, &t, true);
        assert_eq!(fifo.group_id.as_deref(), Some("b/dir/a.txt"));
        assert_eq!(fifo.dedup_id, Some(t.identity()));
        assert_eq!(fifo.body, t.to_json());
    }

    #[test]
    fn detects_fifo_queue_urls() {
        assert!(is_fifo_queue("http://h/123/q.fifo"));
        assert!(!is_fifo_queue("http://h/123/q"));
        assert!(!is_fifo_queue("http://h/123/fifo"));
    }
}
