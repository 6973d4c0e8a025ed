//! The SQS events Lambda's event source mapping delivers, and the `batchItemFailures` answers
//! it reads back (Lambda developer guide, "Using Lambda with Amazon SQS": the event shape and
//! `ReportBatchItemFailures`).

use std::collections::HashSet;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::Message;

/// The `SqsEvent` Lambda builds from received messages.
pub fn from_messages(messages: &[Message], queue_arn: &str, region: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_owned);
            record.receipt_handle = m.receipt_handle().map(str::to_owned);
            record.body = m.body().map(str::to_owned);
            record.md5_of_body = m.md5_of_body().map(str::to_owned);
            record.md5_of_message_attributes = m.md5_of_message_attributes().map(str::to_owned);
            record.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            record.message_attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(name, value)| {
                            let mut attribute = SqsMessageAttribute::default();
                            attribute.string_value = value.string_value().map(str::to_owned);
                            attribute.binary_value =
                                value.binary_value().map(|b| base64(b.as_ref()));
                            attribute.string_list_values = value.string_list_values().to_vec();
                            attribute.binary_list_values = value
                                .binary_list_values()
                                .iter()
                                .map(|b| base64(b.as_ref()))
                                .collect();
                            attribute.data_type = Some(value.data_type().to_owned());
                            (name.clone(), attribute)
                        })
                        .collect()
                })
                .unwrap_or_default();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = Some(region.to_owned());
            record
        })
        .collect();
    event
}

fn base64(bytes: &[u8]) -> Base64Data {
    let mut data = Base64Data::default();
    *data = bytes.to_vec();
    data
}

/// The message IDs to keep, read from a function response as Lambda reads it with
/// `ReportBatchItemFailures`. `Err` means the whole batch failed.
///
/// An empty or `null` response, or one without `batchItemFailures`, is complete success.
pub fn failed_items(body: &[u8], batch_ids: &[&str]) -> Result<HashSet<String>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "response is not UTF-8".to_owned())?;
    if text.trim().is_empty() {
        return Ok(HashSet::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("response is not JSON: {e}"))?;
    let failures = match &value {
        serde_json::Value::Null => return Ok(HashSet::new()),
        serde_json::Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(serde_json::Value::Null) => return Ok(HashSet::new()),
            Some(serde_json::Value::Array(items)) => items,
            Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
        },
        other => return Err(format!("response is not an object: {other}")),
    };
    let mut failed = HashSet::new();
    for item in failures {
        let id = item
            .get("itemIdentifier")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("no itemIdentifier in {item}"))?;
        if id.is_empty() || !batch_ids.contains(&id) {
            return Err(format!(
                "itemIdentifier {id:?} is not a message of the batch"
            ));
        }
        failed.insert(id.to_owned());
    }
    Ok(failed)
}

/// A synthetic event with one message per body, as the event source mapping would deliver
/// them from `queue_arn` (first receive, no attributes).
pub fn from_bodies(bodies: &[String], queue_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("00000000-0000-4000-8000-{i:012}"));
            record.receipt_handle = Some(format!("receipt-{i}"));
            record.body = Some(body.clone());
            record.attributes = [
                ("ApproximateReceiveCount", "1"),
                ("SentTimestamp", "1714550400000"),
                ("SenderId", "TESTKIT"),
                ("ApproximateFirstReceiveTimestamp", "1714550400000"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = queue_arn.split(':').nth(3).map(str::to_owned);
            record
        })
        .collect();
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: &[&str] = &["a", "b", "c"];

    #[test]
    fn an_empty_or_null_response_is_complete_success() {
        for body in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":null}"#,
            r#"{"batchItemFailures":[]}"#,
        ] {
            assert_eq!(
                failed_items(body.as_bytes(), IDS),
                Ok(HashSet::new()),
                "{body}"
            );
        }
    }

    #[test]
    fn listed_items_are_kept() {
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#;
        assert_eq!(failed_items(body, IDS), Ok(HashSet::from(["b".to_owned()])));
    }

    #[test]
    fn invalid_responses_fail_the_whole_batch() {
        for body in [
            "not json",
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"id":"a"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#,
        ] {
            assert!(failed_items(body.as_bytes(), IDS).is_err(), "{body}");
        }
    }
}
