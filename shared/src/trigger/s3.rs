//! Amazon S3 event notifications, as S3 sends them to an SQS queue (directly, or through an SNS
//! topic): the events of the S3 → OSS direction.
//!
//! # Shape
//! A notification is `{"Records":[…]}` with one record per event
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>).
//! When a notification configuration is saved, S3 first sends a test message,
//! `{"Service":"Amazon S3","Event":"s3:TestEvent",…}`, which names no object and is ignored.
//!
//! # Keys
//! S3 documents the record's `s3.object.key` as URL-encoded, with `+` for a space ("red
//! flower.jpg" arrives as "red+flower.jpg"). The key is decoded exactly so: every `+` becomes a
//! space, then `%XX` sequences become bytes, which must form UTF-8. Unlike an OSS trigger's key,
//! the decoded key is the object's key, with no other reading; a literal `+` arrives as `%2B`.
//!
//! # Events
//! | event | task |
//! |---|---|
//! | `ObjectCreated:*` (Put, Post, Copy, CompleteMultipartUpload) | put |
//! | `ObjectRemoved:*`, `LifecycleExpiration:*` | delete, when deletes are replicated; else skipped |
//! | anything else (restores, tagging, ACLs, transitions, replication, …) | skipped |
//!
//! Lifecycle expirations count as deletes: the object is gone from S3 either way, and the
//! replica is deleted only if its marker names that object (see the engine's delete rule).

use serde::Deserialize;
use serde_json::Value;

use std::collections::HashSet;

use super::{EventError, EventFilter, ForwardPlan};
use crate::task::{ReplicationTask, SourceObject, TASK_VERSION, TaskOp};

/// The `Event` of the test message S3 sends when a notification configuration is saved.
pub const TEST_EVENT: &str = "s3:TestEvent";

/// A parsed S3 notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Notification {
    /// The test message S3 sends when a configuration is saved; it names no object.
    Test {
        /// The bucket whose configuration was saved.
        bucket: Option<String>,
    },
    /// Object events.
    Records(Vec<S3Event>),
}

/// One S3 event, with its key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Event {
    /// The event name without an `s3:` prefix, e.g. `ObjectCreated:Put`.
    pub name: String,
    /// The event time (ISO 8601), as S3 wrote it.
    pub time: Option<String>,
    /// The bucket's region, e.g. `us-east-1`.
    pub region: String,
    /// The bucket name.
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    /// The object size, for creations.
    pub size: Option<u64>,
    /// The object ETag without quotes, for creations.
    pub etag: Option<String>,
    /// The S3 request ID of the operation (`responseElements.x-amz-request-id`).
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    event_name: String,
    #[serde(default)]
    event_source: Option<String>,
    #[serde(default)]
    event_version: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    aws_region: Option<String>,
    #[serde(default)]
    response_elements: Option<RawResponse>,
    s3: RawS3,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default, rename = "x-amz-request-id")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct RawS3 {
    bucket: RawBucket,
    object: RawObject,
}

#[derive(Deserialize)]
struct RawBucket {
    name: String,
}

#[derive(Deserialize)]
struct RawObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default, rename = "eTag")]
    etag: Option<String>,
}

impl S3Notification {
    /// Whether a decoded message body has a notification's shape (a `Records` array, or the
    /// test message): the classifier's question, before [`S3Notification::from_value`].
    pub fn is_notification(object: &serde_json::Map<String, Value>) -> bool {
        object.contains_key("Records")
            || object.get("Event").and_then(Value::as_str) == Some(TEST_EVENT)
    }

    /// Parses a notification body.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let value: Value = serde_json::from_slice(body).map_err(EventError::NotJson)?;
        Self::from_value(value)
    }

    /// Parses an already-decoded notification, naming the first bad record by position.
    pub fn from_value(value: Value) -> Result<Self, EventError> {
        let Value::Object(mut object) = value else {
            return Err(EventError::NoEvents);
        };
        if object.get("Event").and_then(Value::as_str) == Some(TEST_EVENT) {
            let bucket = object
                .get("Bucket")
                .and_then(Value::as_str)
                .map(str::to_owned);
            return Ok(Self::Test { bucket });
        }
        let Some(Value::Array(records)) = object.remove("Records") else {
            return Err(EventError::NoEvents);
        };
        let mut events = Vec::with_capacity(records.len());
        for (index, raw) in records.into_iter().enumerate() {
            let invalid = |reason: String| EventError::InvalidEvent { index, reason };
            let record: RawRecord =
                serde_json::from_value(raw).map_err(|e| invalid(e.to_string()))?;
            if let Some(source) = record.event_source.as_deref()
                && source != "aws:s3"
            {
                return Err(invalid(format!("eventSource is {source:?}, not aws:s3")));
            }
            if let Some(version) = record.event_version.as_deref()
                && !version.starts_with("2.")
            {
                return Err(invalid(format!(
                    "eventVersion {version:?} is not 2.x, the version this build reads"
                )));
            }
            if record.s3.bucket.name.is_empty() {
                return Err(invalid("empty bucket name".into()));
            }
            let key = decode_key(&record.s3.object.key).map_err(invalid)?;
            if key.is_empty() {
                return Err(invalid("empty object key".into()));
            }
            let region = record
                .aws_region
                .filter(|r| !r.is_empty())
                .ok_or_else(|| invalid("no awsRegion".into()))?;
            let name = record.event_name.trim();
            events.push(S3Event {
                name: name.strip_prefix("s3:").unwrap_or(name).to_owned(),
                time: record.event_time,
                region,
                bucket: record.s3.bucket.name,
                key,
                size: record.s3.object.size,
                etag: record
                    .s3
                    .object
                    .etag
                    .map(|e| e.trim_matches('"').to_owned())
                    .filter(|e| !e.is_empty()),
                request_id: record.response_elements.and_then(|r| r.request_id),
            });
        }
        Ok(Self::Records(events))
    }
}

/// Decodes an event key as S3 encodes it: `+` is a space, `%XX` a byte; the bytes must be UTF-8.
pub fn decode_key(encoded: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(&encoded.replace('+', " "))
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| format!("the key {encoded:?} is not UTF-8 once URL-decoded"))
}

/// Encodes a key as S3 writes it into an event: every byte but `A-Za-z0-9`, `-`, `_`, `.` and
/// `~` as `%XX`, and spaces as `+` (the form encoding [`decode_key`] reverses). The local stack
/// uses it to write events in S3's format.
pub fn encode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b' ');
    percent_encoding::utf8_percent_encode(key, KEEP)
        .to_string()
        .replace(' ', "+")
}

/// What a task is made of an S3 event: a put, a delete, or nothing.
pub fn op_for_s3_event(name: &str) -> Option<TaskOp> {
    if name.starts_with("ObjectCreated:") {
        Some(TaskOp::Put)
    } else if name.starts_with("ObjectRemoved:") || name.starts_with("LifecycleExpiration:") {
        Some(TaskOp::Delete)
    } else {
        None
    }
}

/// The tasks of S3 events, as [`plan_forward`](super::plan_forward) makes them of OSS events:
/// creations put; removals delete when `filter` forwards deletes (else they are skipped, as are
/// all other events); keys outside `filter`'s prefixes are skipped; repeats dropped.
pub fn plan_s3(events: &[S3Event], filter: &EventFilter) -> ForwardPlan {
    let mut plan = ForwardPlan::default();
    let mut seen = HashSet::new();
    for event in events {
        let op = match op_for_s3_event(&event.name) {
            Some(TaskOp::Delete) if !filter.forwards_deletes() => None,
            op => op,
        };
        let Some(op) = op else {
            plan.skipped_events += 1;
            continue;
        };
        let task = event.to_task(op);
        if !filter.forwards_key(&task.source) {
            plan.skipped_keys += 1;
        } else if seen.insert(task.to_json()) {
            plan.tasks.push(task);
        } else {
            plan.duplicates += 1;
        }
    }
    plan
}

impl S3Event {
    /// The source object the event names.
    pub fn source(&self) -> SourceObject {
        SourceObject {
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            size: self.size,
            etag: self.etag.clone(),
        }
    }

    /// The task for this event with operation `op`.
    pub fn to_task(&self, op: TaskOp) -> ReplicationTask {
        let mut source = self.source();
        if op == TaskOp::Delete {
            // A removal's size and ETag describe nothing that still exists.
            source.size = None;
            source.etag = None;
        }
        ReplicationTask {
            version: TASK_VERSION,
            op,
            source,
            event_name: Some(self.name.clone()),
            event_time: self.time.clone(),
            request_id: self.request_id.clone(),
            continuation: None,
            not_before: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as AWS documents it, with a delete's fields or a creation's.
    fn record(name: &str, encoded_key: &str) -> Value {
        serde_json::json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-west-2",
            "eventTime": "1970-01-01T00:00:00.000Z", "eventName": name,
            "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810",
                                 "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "testConfigRule",
                   "bucket": {"name": "amzn-s3-demo-bucket",
                              "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                              "arn": "arn:aws:s3:::amzn-s3-demo-bucket"},
                   "object": {"key": encoded_key, "size": 1024,
                              "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                              "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                              "sequencer": "0055AED6DCD90281E5"}}
        })
    }

    fn records(records: &[Value]) -> Vec<S3Event> {
        match S3Notification::from_value(serde_json::json!({ "Records": records })).unwrap() {
            S3Notification::Records(events) => events,
            S3Notification::Test { .. } => panic!("not a test event"),
        }
    }

    #[test]
    fn the_documented_record_becomes_a_put_task() {
        let events = records(&[record("ObjectCreated:Put", "red+flower%2B1.jpg")]);
        let task = events[0].to_task(TaskOp::Put);
        assert_eq!(task.source.key, "red flower+1.jpg");
        assert_eq!(task.source.bucket, "amzn-s3-demo-bucket");
        assert_eq!(task.source.region, "us-west-2");
        assert_eq!(task.source.size, Some(1024));
        assert_eq!(
            task.source.etag.as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(task.event_name.as_deref(), Some("ObjectCreated:Put"));
        assert_eq!(task.request_id.as_deref(), Some("C3D13FE58DE4C810"));
        assert_eq!(op_for_s3_event(&events[0].name), Some(TaskOp::Put));
    }

    #[test]
    fn removals_and_expirations_delete_and_the_rest_is_skipped() {
        for (name, op) in [
            ("ObjectCreated:CompleteMultipartUpload", Some(TaskOp::Put)),
            ("ObjectCreated:Copy", Some(TaskOp::Put)),
            ("ObjectRemoved:Delete", Some(TaskOp::Delete)),
            ("ObjectRemoved:DeleteMarkerCreated", Some(TaskOp::Delete)),
            ("LifecycleExpiration:Delete", Some(TaskOp::Delete)),
            ("ObjectRestore:Completed", None),
            ("ObjectTagging:Put", None),
            ("LifecycleTransition", None),
        ] {
            assert_eq!(op_for_s3_event(name), op, "{name}");
        }
        let delete = records(&[record("ObjectRemoved:Delete", "k")])[0].to_task(TaskOp::Delete);
        assert_eq!((delete.source.size, delete.source.etag), (None, None));
    }

    #[test]
    fn deletes_are_planned_only_when_forwarded() {
        let events = records(&[
            record("ObjectCreated:Put", "a"),
            record("ObjectRemoved:Delete", "b"),
            record("ObjectAcl:Put", "c"),
            record("ObjectCreated:Put", "a"),
        ]);
        let plan = plan_s3(&events, &EventFilter::default());
        let keys: Vec<_> = plan.tasks.iter().map(|t| t.source.key.as_str()).collect();
        assert_eq!(keys, ["a"]);
        assert_eq!((plan.skipped_events, plan.duplicates), (2, 1));
        let deletes = EventFilter::from_settings(None, true, None, None).unwrap();
        let plan = plan_s3(&events, &deletes);
        let ops: Vec<_> = plan
            .tasks
            .iter()
            .map(|t| (t.source.key.as_str(), t.op))
            .collect();
        assert_eq!(ops, [("a", TaskOp::Put), ("b", TaskOp::Delete)]);
    }

    #[test]
    fn the_test_event_names_no_object() {
        let body = br#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z",
            "Bucket":"amzn-s3-demo-bucket","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        assert_eq!(
            S3Notification::parse(body).unwrap(),
            S3Notification::Test {
                bucket: Some("amzn-s3-demo-bucket".into())
            }
        );
    }

    #[test]
    fn bad_records_are_named_by_position() {
        let mut foreign = record("ObjectCreated:Put", "k");
        foreign["eventSource"] = "aws:sqs".into();
        let mut undecodable = record("ObjectCreated:Put", "k");
        undecodable["s3"]["object"]["key"] = "%FF".into();
        let mut regionless = record("ObjectCreated:Put", "k");
        regionless["awsRegion"] = "".into();
        let mut newer = record("ObjectCreated:Put", "k");
        newer["eventVersion"] = "3.0".into();
        for (bad, reason) in [
            (foreign, "aws:sqs"),
            (undecodable, "not UTF-8"),
            (regionless, "awsRegion"),
            (newer, "3.0"),
            (record("ObjectCreated:Put", ""), "empty object key"),
        ] {
            let body = serde_json::json!({"Records": [record("ObjectCreated:Put", "ok"), bad]});
            let err = S3Notification::from_value(body).unwrap_err().to_string();
            assert!(err.starts_with("event #1") && err.contains(reason), "{err}");
        }
        assert!(matches!(
            S3Notification::from_value(serde_json::json!({"Records": 1})),
            Err(EventError::NoEvents)
        ));
    }

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        for (encoded, key) in [
            ("a+b", "a b"),
            ("a%2Bb", "a+b"),
            ("a%2520b", "a%20b"),
            ("%E6%96%87%E4%BB%B6", "文件"),
            ("dir%2F%2Fx", "dir//x"),
            ("dir//x", "dir//x"),
        ] {
            assert_eq!(decode_key(encoded).unwrap(), key, "{encoded}");
        }
        for key in ["a b+c%d", "~/.x_-y", "é\u{301}", "🎉 +", " "] {
            assert_eq!(decode_key(&encode_key(key)).unwrap(), key);
        }
        assert_eq!(encode_key("red flower+1.jpg"), "red+flower%2B1.jpg");
    }
}
