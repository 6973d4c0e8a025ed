//! Where messages go besides back to their queue: continuations to the task queue, permanent
//! failures to the DLQ (with the reason as message attributes), and visibility changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageAttributeValue;
use transfer::sqs::{SqsSender, is_fifo_queue};
use transfer::task::ReplicationTask;

/// DLQ message attribute: the failure kind (e.g. `Malformed`, `InvalidKey`).
pub const DLQ_ATTR_KIND: &str = "oss2s3-failure-kind";
/// DLQ message attribute: the human-readable reason (at most [`MAX_REASON_BYTES`]).
pub const DLQ_ATTR_REASON: &str = "oss2s3-failure-reason";
/// DLQ message attribute: the ID of the message as it was received from the source queue.
pub const DLQ_ATTR_MESSAGE_ID: &str = "oss2s3-original-message-id";
/// DLQ message attribute: the ARN of the queue the message came from.
pub const DLQ_ATTR_SOURCE_QUEUE: &str = "oss2s3-source-queue-arn";
/// The longest reason kept in a DLQ attribute.
pub const MAX_REASON_BYTES: usize = 4096;
/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_hours(12);

/// Where messages go besides back to their queue.
#[derive(Debug, Clone)]
pub struct Queues {
    sqs: aws_sdk_sqs::Client,
    continuation: SqsSender,
    pub(crate) dlq_url: Option<String>,
    queue_urls: Arc<Mutex<HashMap<String, String>>>,
}

impl Queues {
    /// Continuations go to `continuation_queue_url`, permanent failures to `dlq_url` (when set).
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        continuation_queue_url: impl Into<String>,
        dlq_url: Option<String>,
    ) -> Self {
        Self {
            continuation: SqsSender::new(sqs.clone(), continuation_queue_url),
            sqs,
            dlq_url,
            queue_urls: Arc::default(),
        }
    }

    /// Enqueues a continuation task; the error says why it was not enqueued.
    pub(crate) async fn send_continuation(&self, task: &ReplicationTask) -> Result<(), String> {
        let summary = self
            .continuation
            .send_tasks(std::slice::from_ref(task))
            .await;
        match summary.failed.first() {
            None if summary.sent == 1 => Ok(()),
            None => Err("SQS did not confirm the message".to_owned()),
            Some(failed) => Err(format!("{}: {}", failed.code, failed.message)),
        }
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
