//! The replicator's queues from the outside: what is in the DLQ and why (`oss2s3 dlq list`),
//! moving it back (`oss2s3 dlq redrive`), and whether a task may still be pending.
//!
//! SQS cannot be searched: a queue is read by receiving its messages, which hides them for a
//! visibility timeout. `list` receives with a short timeout and makes every message visible
//! again when it is done; `redrive` sends each chosen message to the task queue first and only
//! then deletes it from the DLQ, so a failure in between can duplicate a task (harmless: tasks
//! are idempotent) but never lose one.

use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde::Serialize;
use transfer::message::{IncomingMessage, LegacyDefaults, parse_message};
use transfer::sqs::{DLQ_ATTR_KIND, DLQ_ATTR_REASON, is_fifo_queue};

/// One message of the DLQ.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The DLQ's message ID.
    pub message_id: String,
    /// The failure kind the replicator recorded, or `redrive-policy` for a message SQS moved
    /// after too many receives.
    pub kind: String,
    /// The reason the replicator recorded.
    pub reason: String,
    /// `put` or `delete`, when the body is a task.
    pub op: Option<String>,
    /// The source bucket, when the body names one.
    pub bucket: Option<String>,
    /// The source key, when the body names one.
    pub key: Option<String>,
    /// How often the message was received (from the DLQ, by this and earlier reads too).
    pub receives: u64,
    /// The message body.
    pub body: String,
    #[serde(skip)]
    receipt: String,
    #[serde(skip)]
    group_id: Option<String>,
}

/// What a body says about its object.
fn describe(body: &str) -> (Option<String>, Option<String>, Option<String>) {
    let legacy = LegacyDefaults {
        region: "",
        bucket: "",
    };
    match parse_message(body.as_bytes(), legacy) {
        Ok(IncomingMessage::Task(task) | IncomingMessage::Legacy(task)) => (
            Some(format!("{:?}", task.op).to_ascii_lowercase()),
            Some(task.source.bucket),
            Some(task.source.key),
        ),
        Ok(IncomingMessage::OssEvents(_)) => (Some("oss-event".to_owned()), None, None),
        Ok(IncomingMessage::S3Events(events)) => match events.as_slice() {
            [event] => (
                Some(format!("s3-event {}", event.name)),
                Some(event.bucket.clone()),
                Some(event.key.clone()),
            ),
            _ => (Some("s3-event".to_owned()), None, None),
        },
        Ok(IncomingMessage::S3Test { bucket }) => (Some("s3-test-event".to_owned()), bucket, None),
        Ok(IncomingMessage::Shard(shard)) => (
            Some(format!("job {} shard {}", shard.job_id, shard.name())),
            Some(shard.source_bucket),
            None,
        ),
        Ok(IncomingMessage::Job(job)) => (
            Some(format!("job {}", job.job_id)),
            Some(job.source_bucket),
            None,
        ),
        Err(_) => (None, None, None),
    }
}

/// Receives up to `max` messages of `dlq_url`, hiding each for `hide` (they reappear then, or
/// at once with [`release`]).
pub async fn receive(
    sqs: &Client,
    dlq_url: &str,
    max: usize,
    hide: Duration,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters = Vec::new();
    while letters.len() < max {
        let want = i32::try_from((max - letters.len()).min(10)).unwrap_or(10);
        let output = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(want)
            .wait_time_seconds(1)
            .visibility_timeout(i32::try_from(hide.as_secs()).unwrap_or(30))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("receiving from {dlq_url}: {}", DisplayErrorContext(e)))?;
        let messages = output.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let attribute = |name: &str| {
                m.message_attributes()
                    .and_then(|a| a.get(name))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned)
            };
            let system = |name: MessageSystemAttributeName| {
                m.attributes().and_then(|a| a.get(&name)).cloned()
            };
            let body = m.body().unwrap_or_default().to_owned();
            let (op, bucket, key) = describe(&body);
            let kind = attribute(DLQ_ATTR_KIND);
            letters.push(DeadLetter {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                reason: attribute(DLQ_ATTR_REASON).unwrap_or_else(|| {
                    if kind.is_none() {
                        "moved by the queue's redrive policy after maxReceiveCount receives (the replicator's invocations failed or timed out)".to_owned()
                    } else {
                        String::new()
                    }
                }),
                kind: kind.unwrap_or_else(|| "redrive-policy".to_owned()),
                op,
                bucket,
                key,
                receives: system(MessageSystemAttributeName::ApproximateReceiveCount)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                body,
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                group_id: system(MessageSystemAttributeName::MessageGroupId),
            });
        }
    }
    Ok(letters)
}

/// Makes `letters` visible again at once.
pub async fn release(sqs: &Client, dlq_url: &str, letters: &[&DeadLetter]) -> anyhow::Result<()> {
    for chunk in letters.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, l)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(&l.receipt)
                    .visibility_timeout(0)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        sqs.change_message_visibility_batch()
            .queue_url(dlq_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "releasing messages of {dlq_url}: {}",
                    DisplayErrorContext(e)
                )
            })?;
    }
    Ok(())
}

/// Sends `letter`'s body to `queue_url`, then deletes it from `dlq_url`.
pub async fn redrive(
    sqs: &Client,
    dlq_url: &str,
    queue_url: &str,
    letter: &DeadLetter,
) -> anyhow::Result<()> {
    let mut send = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(&letter.body);
    if is_fifo_queue(queue_url) {
        let group = letter
            .group_id
            .clone()
            .unwrap_or_else(|| "oss2s3-redrive".to_owned());
        send = send
            .message_group_id(group)
            .message_deduplication_id(format!("redrive-{}", letter.message_id));
    }
    send.send()
        .await
        .map_err(|e| anyhow::anyhow!("sending to {queue_url}: {}", DisplayErrorContext(e)))?;
    sqs.delete_message()
        .queue_url(dlq_url)
        .receipt_handle(&letter.receipt)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("deleting from {dlq_url}: {}", DisplayErrorContext(e)))?;
    Ok(())
}

/// The URL of the DLQ that `queue_url`'s redrive policy names, if it has one.
pub async fn dlq_of(sqs: &Client, queue_url: &str) -> anyhow::Result<Option<String>> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading {queue_url}: {}", DisplayErrorContext(e)))?;
    let Some(policy) = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
    else {
        return Ok(None);
    };
    let policy: serde_json::Value =
        serde_json::from_str(policy).context("the queue's redrive policy")?;
    // arn:aws:sqs:<region>:<account>:<name>
    let arn = policy["deadLetterTargetArn"].as_str().unwrap_or_default();
    let parts: Vec<&str> = arn.split(':').collect();
    let (Some(account), Some(name)) = (parts.get(4), parts.get(5)) else {
        return Ok(None);
    };
    let url = sqs
        .get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("finding the DLQ {arn}: {}", DisplayErrorContext(e)))?;
    Ok(url.queue_url().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_their_object_when_they_can() {
        let task =
            r#"{"version":1,"op":"delete","source":{"region":"r","bucket":"b-b","key":"a b"}}"#;
        assert_eq!(
            describe(task),
            (
                Some("delete".into()),
                Some("b-b".into()),
                Some("a b".into())
            )
        );
        assert_eq!(describe("not json"), (None, None, None));
    }
}
