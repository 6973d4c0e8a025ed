//! The messages the replicator accepts, classified and parsed: its own versioned
//! [`ReplicationTask`], the legacy `{"key","size"}` message of existing Python forwarders, and
//! raw native OSS trigger events.

use serde_json::Value;

use crate::job::{JobMessage, JobRequest, Shard, ShardMessage};
use crate::task::{ReplicationTask, SourceObject, TASK_VERSION};
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
    /// A JSON object of no known shape.
    #[error(
        "unrecognised message: expected a replication task (\"version\"), a legacy message (\"key\"), an OSS event (\"events\") or a migration job (\"job\", \"shard\"); top-level fields: {fields}"
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
    /// A migration job's key-range shard (see [`crate::job`]).
    Shard(Box<Shard>),
    /// A migration job to plan into shards (as a schedule sends it; see [`crate::job`]).
    Job(Box<JobRequest>),
}

impl IncomingMessage {
    /// The tasks the message asks for. Raw OSS events go through `filter` (and are deduplicated);
    /// tasks and legacy messages are taken as they are.
    pub fn into_tasks(self, filter: &EventFilter) -> Vec<ReplicationTask> {
        match self {
            Self::Task(task) | Self::Legacy(task) => vec![task],
            Self::OssEvents(batch) => crate::trigger::plan_forward(&batch, filter).tasks,
            Self::Shard(_) | Self::Job(_) => Vec::new(),
        }
    }
}

/// Classifies and parses one queue message body: (a) a versioned task, (b) a legacy
/// `{"key","size"}` message (located with `legacy`), or (c) a raw OSS trigger event.
pub fn parse_message(
    body: &[u8],
    legacy: LegacyDefaults<'_>,
) -> Result<IncomingMessage, MessageError> {
    let value: Value = serde_json::from_slice(body).map_err(MessageError::NotJson)?;
    let Value::Object(object) = &value else {
        return Err(MessageError::NotAnObject);
    };
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
        let err = parse_message(br#"{"Records":[]}"#, LEGACY).unwrap_err();
        assert!(err.to_string().contains("Records"), "{err}");
        let err = parse_message(br#"{"events":[{"eventName":"x"}]}"#, LEGACY).unwrap_err();
        assert!(matches!(err, MessageError::InvalidEvent(_)), "{err}");
    }
}
