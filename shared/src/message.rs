//! The messages the replicator accepts, classified and parsed: its own versioned
//! [`ReplicationTask`], the legacy `{"key","size"}` message of existing Python forwarders, raw
//! native OSS trigger events, Amazon S3 event notifications (sent by S3 itself, or wrapped in
//! an SNS notification when a topic fans them out), and migration jobs.

use serde_json::Value;

use crate::job::{JobMessage, JobRequest, Shard, ShardMessage};
use crate::task::{ReplicationTask, SourceObject, TASK_VERSION};
use crate::trigger::s3::{S3Event, S3Notification, plan_s3};
use crate::trigger::{EventError, EventFilter, OssEventBatch};

/// Where to find the object named by a legacy `{"key","size"}` message, which names neither.
#[derive(Debug, Clone, Copy)]
pub struct LegacyDefaults<'a> {
    /// The OSS region of the configured source bucket.
    pub region: &'a str,
    /// The configured source bucket.
    pub bucket: &'a str,
}

/// Why a queue message could not be turned into tasks. Every variant is permanent: redelivering
/// the same bytes cannot help.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The body is not JSON at all.
    #[error("message body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("message body is JSON but not an object")]
    NotAnObject,
    /// A versioned task with a version this build does not understand.
    #[error("unsupported task version {0} (this build reads up to {TASK_VERSION})")]
    UnsupportedVersion(u64),
    /// A versioned task whose fields do not match the format.
    #[error("invalid replication task: {0}")]
    InvalidTask(#[source] serde_json::Error),
    /// A migration job or shard message whose fields do not match the format.
    #[error("invalid migration job message: {0}")]
    InvalidJob(#[source] serde_json::Error),
    /// A legacy `{"key","size"}` message with a missing or mistyped field.
    #[error("invalid legacy message: {0}")]
    InvalidLegacy(&'static str),
    /// A raw OSS trigger event that does not parse.
    #[error("invalid OSS event: {0}")]
    InvalidEvent(#[from] EventError),
    /// An S3 event notification that does not parse.
    #[error("invalid S3 event notification: {0}")]
    InvalidS3Event(#[source] EventError),
    /// An SNS notification whose `Message` is not a JSON object.
    #[error("SNS notification's Message is not a JSON object: {0}")]
    InvalidSnsMessage(String),
    /// A JSON object of no known shape.
    #[error(
        "unrecognised message: expected a replication task (\"version\"), a legacy message (\"key\"), an OSS event (\"events\"), an S3 event notification (\"Records\") or a migration job (\"job\", \"shard\"); top-level fields: {fields}"
    )]
    Unrecognized {
        /// The object's top-level field names, comma-separated.
        fields: String,
    },
}

/// A message the replicator received, classified by shape.
#[derive(Debug, Clone, PartialEq)]
pub enum IncomingMessage {
    /// The project's versioned replication task.
    Task(ReplicationTask),
    /// A legacy `{"key","size"}` message, already turned into a put task.
    Legacy(ReplicationTask),
    /// A raw native OSS trigger event (possibly several events).
    OssEvents(OssEventBatch),
    /// An S3 event notification (possibly several records).
    S3Events(Vec<S3Event>),
    /// The test message S3 sends when a notification configuration is saved.
    S3Test {
        /// The bucket it names.
        bucket: Option<String>,
    },
    /// A migration job's key-range shard (see [`crate::job`]).
    Shard(Box<Shard>),
    /// A migration job to plan into shards (as a schedule sends it; see [`crate::job`]).
    Job(Box<JobRequest>),
}

impl IncomingMessage {
    /// The tasks the message asks for. Raw OSS events and S3 events go through `filter` (and
    /// are deduplicated); tasks and legacy messages are taken as they are.
    pub fn into_tasks(self, filter: &EventFilter) -> Vec<ReplicationTask> {
        match self {
            Self::Task(task) | Self::Legacy(task) => vec![task],
            Self::OssEvents(batch) => crate::trigger::plan_forward(&batch, filter).tasks,
            Self::S3Events(events) => plan_s3(&events, filter).tasks,
            Self::Shard(_) | Self::Job(_) | Self::S3Test { .. } => Vec::new(),
        }
    }
}

/// Classifies and parses one queue message body: (a) a versioned task, (b) a legacy
/// `{"key","size"}` message (located with `legacy`), (c) a raw OSS trigger event, (d) an S3
/// event notification, bare or in an SNS notification's `Message`, or (e) a migration job.
pub fn parse_message(
    body: &[u8],
    legacy: LegacyDefaults<'_>,
) -> Result<IncomingMessage, MessageError> {
    let mut value: Value = serde_json::from_slice(body).map_err(MessageError::NotJson)?;
    if let Some(inner) = sns_message(&value)? {
        value = inner;
    }
    let Value::Object(object) = &value else {
        return Err(MessageError::NotAnObject);
    };
    if S3Notification::is_notification(object) {
        return match S3Notification::from_value(value).map_err(MessageError::InvalidS3Event)? {
            S3Notification::Test { bucket } => Ok(IncomingMessage::S3Test { bucket }),
            S3Notification::Records(events) => Ok(IncomingMessage::S3Events(events)),
        };
    }
    if object.contains_key("shard") {
        let message: ShardMessage =
            serde_json::from_value(value).map_err(MessageError::InvalidJob)?;
        return Ok(IncomingMessage::Shard(Box::new(message.shard)));
    }
    if object.contains_key("job") {
        let message: JobMessage =
            serde_json::from_value(value).map_err(MessageError::InvalidJob)?;
        return Ok(IncomingMessage::Job(Box::new(message.job)));
    }
    if object.contains_key("events") {
        return Ok(IncomingMessage::OssEvents(OssEventBatch::from_value(
            value,
        )?));
    }
    if let Some(version) = object.get("version") {
        match version.as_u64() {
            Some(v) if v >= 1 && v <= u64::from(TASK_VERSION) => {}
            Some(v) => return Err(MessageError::UnsupportedVersion(v)),
            None => {
                return Err(MessageError::InvalidTask(serde::de::Error::custom(
                    "`version` is not a positive integer",
                )));
            }
        }
        let task: ReplicationTask =
            serde_json::from_value(value).map_err(MessageError::InvalidTask)?;
        if task.source.key.is_empty() {
            return Err(MessageError::InvalidTask(serde::de::Error::custom(
                "`source.key` is empty",
            )));
        }
        return Ok(IncomingMessage::Task(task));
    }
    if let Some(key) = object.get("key") {
        let key = key
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or(MessageError::InvalidLegacy(
                "`key` is not a non-empty string",
            ))?;
        let size = match object.get("size") {
            None | Some(Value::Null) => None,
            Some(size) => Some(size.as_u64().ok_or(MessageError::InvalidLegacy(
                "`size` is not a non-negative integer",
            ))?),
        };
        let task = ReplicationTask::put(SourceObject {
            region: legacy.region.to_owned(),
            bucket: legacy.bucket.to_owned(),
            key: key.to_owned(),
            size,
            etag: None,
        });
        return Ok(IncomingMessage::Legacy(task));
    }
    let fields = object
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",");
    Err(MessageError::Unrecognized { fields })
}

/// The message an SNS notification carries (`{"Type":"Notification","Message":"…"}`, as a
/// topic without raw message delivery sends it to a queue), decoded; `None` for anything else.
fn sns_message(value: &Value) -> Result<Option<Value>, MessageError> {
    let Value::Object(object) = value else {
        return Ok(None);
    };
    if object.get("Type").and_then(Value::as_str) != Some("Notification") {
        return Ok(None);
    }
    let Some(Value::String(message)) = object.get("Message") else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(message) {
        Ok(inner @ Value::Object(_)) => Ok(Some(inner)),
        Ok(_) => Err(MessageError::InvalidSnsMessage(
            "it is JSON but not an object".into(),
        )),
        Err(e) => Err(MessageError::InvalidSnsMessage(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskOp;

    fn source(key: &str) -> SourceObject {
        SourceObject {
            region: "cn-hangzhou".into(),
            bucket: "bkt".into(),
            key: key.into(),
            size: Some(3),
            etag: Some("ABC".into()),
        }
    }

    const LEGACY: LegacyDefaults<'static> = LegacyDefaults {
        region: "cn-shanghai",
        bucket: "legacy-bucket",
    };

    #[test]
    fn task_round_trips_through_json() {
        let mut task = ReplicationTask::put(source("a b/ü+%.txt"));
        task.event_name = Some("ObjectCreated:PutObject".into());
        task.request_id = Some("RID".into());
        let json = task.to_json();
        assert!(json.contains(r#""key":"a b/ü+%.txt""#), "{json}");
        assert!(json.contains(r#""version":1"#) && json.contains(r#""op":"put""#));
        assert!(!json.contains("continuation"));
        let back = parse_message(json.as_bytes(), LEGACY).unwrap();
        assert_eq!(back, IncomingMessage::Task(task));
    }
    #[test]
    fn task_reader_ignores_unknown_fields() {
        let body = r#"{"version":1,"op":"delete","future":true,
            "source":{"region":"r","bucket":"b","key":"k","extra":1}}"#;
        let IncomingMessage::Task(task) = parse_message(body.as_bytes(), LEGACY).unwrap() else {
            panic!("expected a task");
        };
        assert_eq!(task.op, TaskOp::Delete);
        assert_eq!(task.source.size, None);
    }
    #[test]
    fn rejects_newer_task_version() {
        let body = r#"{"version":2,"op":"put","source":{"region":"r","bucket":"b","key":"k"}}"#;
        let err = parse_message(body.as_bytes(), LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::UnsupportedVersion(2)), "{err}");
    }
    #[test]
    fn rejects_task_with_unknown_op() {
        let body = r#"{"version":1,"op":"move","source":{"region":"r","bucket":"b","key":"k"}}"#;
        let err = parse_message(body.as_bytes(), LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::InvalidTask(_)), "{err}");
    }
    #[test]
    fn legacy_message_takes_bucket_and_region_from_defaults() {
        let body = r#"{"key": "dir/a+b.txt", "size": 42}"#;
        let IncomingMessage::Legacy(task) = parse_message(body.as_bytes(), LEGACY).unwrap() else {
            panic!("expected a legacy message");
        };
        assert_eq!(task.op, TaskOp::Put);
        assert_eq!(task.source.bucket, "legacy-bucket");
        assert_eq!(task.source.region, "cn-shanghai");
        assert_eq!(task.source.key, "dir/a+b.txt");
        assert_eq!(task.source.size, Some(42));
    }
    #[test]
    fn legacy_message_with_bad_size_is_rejected() {
        let err = parse_message(br#"{"key":"k","size":"big"}"#, LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::InvalidLegacy(_)), "{err}");
        let err = parse_message(br#"{"key":7}"#, LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::InvalidLegacy(_)), "{err}");
    }
    #[test]
    fn raw_oss_event_is_accepted_and_filtered() {
        let body = r#"{"events":[
          {"eventName":"ObjectCreated:PutObject","region":"cn-hangzhou",
           "oss":{"bucket":{"name":"b"},"object":{"key":"k1","size":1,"eTag":"E"}}},
          {"eventName":"ObjectCreated:UploadPart","region":"cn-hangzhou",
           "oss":{"bucket":{"name":"b"},"object":{"key":"k2","size":1}}}]}"#;
        let message = parse_message(body.as_bytes(), LEGACY).unwrap();
        let tasks = message.into_tasks(&EventFilter::default());
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].source.key, "k1");
        assert_eq!(tasks[0].source.etag.as_deref(), Some("E"));
    }
    #[test]
    fn unknown_shapes_are_rejected_with_reason() {
        assert!(matches!(
            parse_message(b"not json", LEGACY),
            Err(MessageError::NotJson(_))
        ));
        assert!(matches!(
            parse_message(b"[1,2]", LEGACY),
            Err(MessageError::NotAnObject)
        ));
        let err = parse_message(br#"{"Record":[]}"#, LEGACY).unwrap_err();
        assert!(err.to_string().contains("Record"), "{err}");
        let err = parse_message(br#"{"Records":[{"eventName":"x"}]}"#, LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::InvalidS3Event(_)), "{err}");
        let err = parse_message(br#"{"events":[{"eventName":"x"}]}"#, LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::InvalidEvent(_)), "{err}");
    }

    #[test]
    fn s3_notifications_are_read_bare_and_through_sns() {
        let notification = serde_json::json!({"Records": [
            {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
             "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "src"}, "object": {"key": "a+b%2Bc", "size": 3, "eTag": "e"}}},
            {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
             "eventName": "ObjectRemoved:Delete",
             "s3": {"bucket": {"name": "src"}, "object": {"key": "gone"}}}]});
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m",
            "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": notification.to_string()});
        for body in [notification.to_string(), sns.to_string()] {
            let message = parse_message(body.as_bytes(), LEGACY).unwrap();
            let tasks = message.into_tasks(&EventFilter::default());
            assert_eq!(tasks.len(), 1, "deletes are off");
            assert_eq!(tasks[0].source.key, "a b+c");
            assert_eq!(tasks[0].source.bucket, "src");
        }
        let test = r#"{"Type":"Notification","Message":"{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Bucket\":\"src\"}"}"#;
        assert_eq!(
            parse_message(test.as_bytes(), LEGACY).unwrap(),
            IncomingMessage::S3Test {
                bucket: Some("src".into())
            }
        );
        let err = parse_message(br#"{"Type":"Notification","Message":"[1]"}"#, LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::InvalidSnsMessage(_)), "{err}");
    }
}
