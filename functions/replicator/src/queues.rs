//! Where messages go besides back to their queue: continuations, fanned-out, deferred and
//! re-enqueued tasks to the task queue; permanent failures to the DLQ (with the reason as
//! message attributes); and visibility changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageAttributeValue;
use transfer::job::Shard;
use transfer::migrate::JobQueue;
use transfer::sqs::{OutgoingMessage, SendSummary, SqsSender, is_fifo_queue};
use transfer::task::ReplicationTask;

pub use transfer::sqs::{
    DLQ_ATTR_KIND, DLQ_ATTR_MESSAGE_ID, DLQ_ATTR_REASON, DLQ_ATTR_SOURCE_QUEUE, MAX_REASON_BYTES,
};
/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_hours(12);

/// Where messages go besides back to their queue.
#[derive(Debug, Clone)]
pub struct Queues {
    sqs: aws_sdk_sqs::Client,
    queue: SqsSender,
    pub(crate) dlq_url: Option<String>,
    queue_urls: Arc<Mutex<HashMap<String, String>>>,
}

impl Queues {
    /// Tasks go to `queue_url` (the queue the function consumes), permanent failures to
    /// `dlq_url` (when set).
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        dlq_url: Option<String>,
    ) -> Self {
        Self {
            queue: SqsSender::new(sqs.clone(), queue_url),
            sqs,
            dlq_url,
            queue_urls: Arc::default(),
        }
    }

    /// Whether the task queue is a FIFO queue (no per-message delays there).
    pub(crate) fn is_fifo(&self) -> bool {
        self.queue.is_fifo()
    }

    /// Enqueues tasks, each delivered no earlier than `delay` from now (standard queues; at
    /// most 15 minutes); the error says why one was not enqueued.
    pub(crate) async fn send_tasks(
        &self,
        tasks: &[ReplicationTask],
        delay: Duration,
    ) -> Result<(), String> {
        let fifo = self.queue.is_fifo();
        let messages = tasks
            .iter()
            .enumerate()
            .map(|(i, task)| OutgoingMessage::from_task(i, task, fifo).delayed(delay))
            .collect();
        confirmed(&self.queue.send_messages(messages).await, tasks.len())
    }

    /// Sends a copy of `message` to the task queue, so that it runs in a later invocation
    /// without one more receive counted against the original. On a FIFO queue the copy keeps
    /// the message group and gets a deduplication ID of its own.
    pub(crate) async fn requeue(&self, message: &SqsMessage) -> Result<(), String> {
        let fifo = self.queue.is_fifo();
        let id = message.message_id.as_deref().unwrap_or("unknown");
        let receives = message
            .attributes
            .get("ApproximateReceiveCount")
            .map_or("0", String::as_str);
        let copy = OutgoingMessage {
            id: "requeue".to_owned(),
            body: message.body.clone().unwrap_or_default(),
            attributes: Vec::new(),
            group_id: fifo.then(|| {
                message
                    .attributes
                    .get("MessageGroupId")
                    .cloned()
                    .unwrap_or_else(|| "oss2s3-requeued".to_owned())
            }),
            dedup_id: fifo.then(|| format!("requeue-{id}-{receives}")),
            delay: None,
        };
        confirmed(&self.queue.send_messages(vec![copy]).await, 1)
    }

    /// Sends the original message to the DLQ with the failure as attributes.
    pub(crate) async fn dead_letter(
        &self,
        dlq_url: &str,
        message: &SqsMessage,
        kind: &str,
        reason: &str,
    ) -> Result<(), String> {
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| e.to_string())
        };
        let message_id = message.message_id.as_deref().unwrap_or("unknown");
        let body = message
            .body
            .as_deref()
            .filter(|b| !b.is_empty())
            .unwrap_or("(empty body)");
        let mut request = self
            .sqs
            .send_message()
            .queue_url(dlq_url)
            .message_body(body)
            .message_attributes(DLQ_ATTR_KIND, attribute(kind)?)
            .message_attributes(DLQ_ATTR_REASON, attribute(&truncate(reason))?)
            .message_attributes(DLQ_ATTR_MESSAGE_ID, attribute(message_id)?);
        if let Some(arn) = message
            .event_source_arn
            .as_deref()
            .filter(|a| !a.is_empty())
        {
            request = request.message_attributes(DLQ_ATTR_SOURCE_QUEUE, attribute(arn)?);
        }
        if is_fifo_queue(dlq_url) {
            let group = message
                .attributes
                .get("MessageGroupId")
                .map_or("oss2s3-dlq", String::as_str);
            request = request
                .message_group_id(group)
                .message_deduplication_id(message_id);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DisplayErrorContext(e).to_string())
    }

    /// Sets the message's visibility timeout (best effort: a failure is only logged).
    pub(crate) async fn delay(&self, message: &SqsMessage, delay: Duration) {
        let (Some(arn), Some(receipt)) = (
            message.event_source_arn.as_deref(),
            message.receipt_handle.as_deref(),
        ) else {
            return;
        };
        let result = async {
            let url = self.queue_url(arn).await?;
            let seconds = i32::try_from(delay.min(MAX_VISIBILITY).as_secs()).unwrap_or(0);
            self.sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(receipt)
                .visibility_timeout(seconds)
                .send()
                .await
                .map_err(|e| DisplayErrorContext(e).to_string())?;
            Ok::<_, String>(seconds)
        }
        .await;
        match result {
            Ok(seconds) => tracing::info!(seconds, "message visibility changed"),
            Err(error) => tracing::warn!(%error, "could not change the message visibility"),
        }
    }

    /// The URL of the queue `arn` (`arn:aws:sqs:<region>:<account>:<name>`), looked up once.
    async fn queue_url(&self, arn: &str) -> Result<String, String> {
        if let Some(url) = self
            .queue_urls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(arn)
        {
            return Ok(url.clone());
        }
        let parts: Vec<&str> = arn.split(':').collect();
        let [_, _, "sqs", _, account, name] = parts.as_slice() else {
            return Err(format!("{arn:?} is not an SQS queue ARN"));
        };
        let output = self
            .sqs
            .get_queue_url()
            .queue_name(*name)
            .queue_owner_aws_account_id(*account)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        let url = output
            .queue_url()
            .ok_or("GetQueueUrl returned no URL")?
            .to_owned();
        self.queue_urls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(arn.to_owned(), url.clone());
        Ok(url)
    }
}

/// `Ok` when SQS accepted all `expected` messages, else why not.
fn confirmed(summary: &SendSummary, expected: usize) -> Result<(), String> {
    match summary.failed.first() {
        None if summary.sent == expected => Ok(()),
        None => Err("SQS did not confirm every message".to_owned()),
        Some(failed) => Err(format!("{}: {}", failed.code, failed.message)),
    }
}

/// At most [`MAX_REASON_BYTES`] of `reason`, cut on a character boundary.
fn truncate(reason: &str) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason.to_owned();
    }
    let mut end = MAX_REASON_BYTES - 3;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &reason[..end])
}

/// The reason a throttled job cannot run on a FIFO queue.
const FIFO_CANNOT_PACE: &str = "a FIFO queue cannot delay single messages, so a throttled migration job needs a standard queue";

impl JobQueue for Queues {
    async fn enqueue_tasks(&self, tasks: Vec<(ReplicationTask, Duration)>) -> Result<(), String> {
        let fifo = self.queue.is_fifo();
        if fifo && tasks.iter().any(|(_, delay)| !delay.is_zero()) {
            return Err(FIFO_CANNOT_PACE.to_owned());
        }
        let count = tasks.len();
        let messages = tasks
            .iter()
            .enumerate()
            .map(|(i, (task, delay))| OutgoingMessage::from_task(i, task, fifo).delayed(*delay))
            .collect();
        confirmed(&self.queue.send_messages(messages).await, count)
    }

    /// A shard goes in a message of its own; on FIFO queues in its own group, deduplicated by
    /// the SHA-256 of its body.
    async fn enqueue_shard(&self, shard: &Shard, delay: Duration) -> Result<(), String> {
        let fifo = self.queue.is_fifo();
        if fifo && !delay.is_zero() {
            return Err(FIFO_CANNOT_PACE.to_owned());
        }
        let body = shard.to_json();
        let digest = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(body.as_bytes()))
        };
        let group = format!("oss2s3-job-{}-{}", shard.job_id, shard.name());
        let message = OutgoingMessage {
            id: "m0".to_owned(),
            body,
            attributes: Vec::new(),
            group_id: fifo.then(|| {
                group
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(128)
                    .collect()
            }),
            dedup_id: fifo.then_some(digest),
            delay: None,
        }
        .delayed(delay);
        confirmed(&self.queue.send_messages(vec![message]).await, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let reason = "é".repeat(MAX_REASON_BYTES);
        let cut = truncate(&reason);
        assert!(cut.len() <= MAX_REASON_BYTES && cut.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }
}
