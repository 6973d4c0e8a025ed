//! Native OSS trigger events (`{"events":[...]}`): parsing, the forwarding filter and the mapping
//! of events onto [`ReplicationTask`]s. Amazon S3 event notifications, the events of the other
//! direction, are in [`s3`].
//!
//! The event shape is the one FC passes to a function behind an OSS trigger (not EventBridge).
//! Parsing is lenient about the fields nothing here needs (`objectMeta`, `virtualBucket`, ...) and
//! strict about those a task needs: the event name, the bucket name and a non-empty key.

mod filter;
pub mod s3;

pub use filter::{EventFilter, FilterConfigError, ForwardPlan, Verdict, plan_forward};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::task::{ReplicationTask, SourceObject, TASK_VERSION, TaskOp};

/// Event names forwarded by default: every operation that leaves a complete new object behind.
///
/// `PutSymlink` is included because the replicator copies what a symlink points to.
pub const DEFAULT_FORWARDED_EVENTS: &[&str] = &[
    "ObjectCreated:PutObject",
    "ObjectCreated:PostObject",
    "ObjectCreated:CopyObject",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectCreated:AppendObject",
    "ObjectCreated:PutSymlink",
];

/// Event names forwarded only when deletes are enabled.
pub const DELETE_EVENTS: &[&str] = &["ObjectRemoved:DeleteObject", "ObjectRemoved:DeleteObjects"];

/// Event names never forwarded: they describe an unfinished object (or none at all), so the
/// replicator could only ever find the previous state or nothing.
pub const NEVER_FORWARDED_EVENTS: &[&str] = &[
    "ObjectCreated:InitiateMultipartUpload",
    "ObjectCreated:UploadPart",
    "ObjectCreated:UploadPartCopy",
    "ObjectRemoved:AbortMultipartUpload",
];

pub(crate) const CATEGORIES: &[&str] = &["ObjectCreated:", "ObjectRemoved:", "ObjectModified:"];

/// Why a trigger body could not be parsed. Permanent: the same bytes will fail again.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The body is not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON without an `events` array.
    #[error("body has no `events` array")]
    NoEvents,
    /// One event lacks a required field or has a mistyped one.
    #[error("event #{index}: {reason}")]
    InvalidEvent {
        /// The event's zero-based position in `events`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed trigger body: one or more OSS events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OssEventBatch {
    /// The events, in the order OSS sent them.
    pub events: Vec<OssEvent>,
}

/// One OSS event (only the fields oss2s3 uses or checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OssEvent {
    /// The event name without the `oss:` prefix, e.g. `ObjectCreated:PutObject`.
    pub event_name: String,
    /// The event source, `acs:oss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    /// The event time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The region ID of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The bucket and object.
    pub oss: OssEventDetail,
    /// Response data of the operation, including its request ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_elements: Option<OssResponseElements>,
}

/// The `oss` member of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OssEventDetail {
    /// The bucket.
    pub bucket: OssEventBucket,
    /// The object.
    pub object: OssEventObject,
}

/// The bucket an event happened in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OssEventBucket {
    /// The bucket name.
    pub name: String,
    /// The bucket ARN, `acs:oss:<region>:<account>:<bucket>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OssEventObject {
    /// The key as OSS wrote it into the event (kept byte-exact).
    pub key: String,
    /// The object size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The ETag: uppercase hex, no quotes.
    #[serde(default, rename = "eTag", skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// The `responseElements` member of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OssResponseElements {
    /// The OSS request ID of the operation.
    #[serde(default, rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl OssEventBatch {
    /// Parses a trigger body.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let value: Value = serde_json::from_slice(body).map_err(EventError::NotJson)?;
        Self::from_value(value)
    }

    /// Parses an already-decoded trigger body, naming the first bad event by position.
    pub fn from_value(value: Value) -> Result<Self, EventError> {
        let Value::Object(mut object) = value else {
            return Err(EventError::NoEvents);
        };
        let Some(Value::Array(raw_events)) = object.remove("events") else {
            return Err(EventError::NoEvents);
        };
        let mut events = Vec::with_capacity(raw_events.len());
        for (index, raw) in raw_events.into_iter().enumerate() {
            let invalid = |reason: String| EventError::InvalidEvent { index, reason };
            let event: OssEvent =
                serde_json::from_value(raw).map_err(|e| invalid(e.to_string()))?;
            if event.oss.object.key.is_empty() {
                return Err(invalid("empty object key".into()));
            }
            if event.oss.bucket.name.is_empty() {
                return Err(invalid("empty bucket name".into()));
            }
            if event.region().is_none() {
                return Err(invalid(
                    "no `region` and no region in the bucket ARN".into(),
                ));
            }
            events.push(event);
        }
        Ok(Self { events })
    }
}

impl OssEvent {
    /// The event's region: `region`, else the region field of the bucket ARN.
    pub fn region(&self) -> Option<&str> {
        self.region
            .as_deref()
            .filter(|r| !r.is_empty())
            .or_else(|| {
                self.oss
                    .bucket
                    .arn
                    .as_deref()
                    .and_then(|arn| arn.split(':').nth(2))
                    .filter(|r| !r.is_empty())
            })
    }

    /// The event name without a leading `oss:`.
    pub fn name(&self) -> &str {
        normalize_event_name(&self.event_name)
    }

    /// The source object the event names.
    pub fn source(&self) -> SourceObject {
        SourceObject {
            region: self.region().unwrap_or_default().to_owned(),
            bucket: self.oss.bucket.name.clone(),
            key: self.oss.object.key.clone(),
            size: self.oss.object.size,
            etag: self
                .oss
                .object
                .etag
                .as_deref()
                .map(|e| e.trim_matches('"').to_owned())
                .filter(|e| !e.is_empty()),
        }
    }

    /// The task for this event with operation `op`.
    pub fn to_task(&self, op: TaskOp) -> ReplicationTask {
        ReplicationTask {
            version: TASK_VERSION,
            op,
            source: self.source(),
            event_name: Some(self.name().to_owned()),
            event_time: self.event_time.clone(),
            request_id: self
                .response_elements
                .as_ref()
                .and_then(|r| r.request_id.clone()),
            continuation: None,
            not_before: None,
        }
    }
}

/// Strips the `oss:` prefix the trigger configuration uses but event bodies do not.
pub(crate) fn normalize_event_name(name: &str) -> &str {
    let name = name.trim();
    name.strip_prefix("oss:").unwrap_or(name)
}

/// The operation an event name implies: removals delete, everything else puts.
pub fn op_for_event(name: &str) -> TaskOp {
    if normalize_event_name(name).starts_with("ObjectRemoved:") {
        TaskOp::Delete
    } else {
        TaskOp::Put
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, key: &str) -> Value {
        serde_json::json!({
            "eventName": name, "eventSource": "acs:oss", "eventTime": "2022-06-10T06:21:35.000Z",
            "eventVersion": "1.0",
            "oss": {"bucket": {"arn": "acs:oss:cn-shenzhen:1581223139******:testbucket",
                               "name": "testbucket", "ownerIdentity": "1581224182******"},
                    "object": {"deltaSize": 29203, "eTag": "7D73E1052AF595535DE90994F4C3E6D5",
                               "key": key, "size": 29203},
                    "ossSchemaVersion": "1.0", "ruleId": "7c5a"},
            "region": "cn-shenzhen",
            "responseElements": {"requestId": "62A2E2EFD0DEFE3930847A6E"},
            "userIdentity": {"principalId": "1581224182******"}
        })
    }

    fn batch(events: &[Value]) -> OssEventBatch {
        OssEventBatch::from_value(serde_json::json!({ "events": events })).unwrap()
    }

    fn keys(plan: &ForwardPlan) -> Vec<&str> {
        plan.tasks.iter().map(|t| t.source.key.as_str()).collect()
    }

    #[test]
    fn parses_documented_event_into_put_task() {
        let body = r#"{"events":[{"eventName":"ObjectCreated:PutObject","eventSource":"acs:oss",
 "eventTime":"2022-06-10T06:21:35.000Z","eventVersion":"1.0",
 "oss":{"bucket":{"arn":"acs:oss:cn-shenzhen:1581223139******:bucketname","name":"testbucket",
   "ownerIdentity":"1581224182******","virtualBucket":""},
  "object":{"deltaSize":29203,"eTag":"7D73E1052AF595535DE90994F4C3E6D5","key":"image/a.jpg",
   "objectMeta":{"mimeType":"image/jpeg"},"size":29203},
  "ossSchemaVersion":"1.0","ruleId":"7c5a5ccfb06114a4d1ea8867e3916eb543d84e7c"},
 "region":"cn-shenzhen","requestParameters":{"sourceIPAddress":"106.23.**.**"},
 "responseElements":{"requestId":"62A2E2EFD0DEFE3930847A6E"},
 "userIdentity":{"principalId":"1581224182******"}}]}"#;
        let batch = OssEventBatch::parse(body.as_bytes()).unwrap();
        let plan = plan_forward(&batch, &EventFilter::default());
        assert_eq!(plan.tasks.len(), 1);
        let task = &plan.tasks[0];
        assert_eq!(task.version, 1);
        assert_eq!(task.op, TaskOp::Put);
        assert_eq!(
            task.source,
            SourceObject {
                region: "cn-shenzhen".into(),
                bucket: "testbucket".into(),
                key: "image/a.jpg".into(),
                size: Some(29203),
                etag: Some("7D73E1052AF595535DE90994F4C3E6D5".into()),
            }
        );
        assert_eq!(task.event_name.as_deref(), Some("ObjectCreated:PutObject"));
        assert_eq!(task.event_time.as_deref(), Some("2022-06-10T06:21:35.000Z"));
        assert_eq!(task.request_id.as_deref(), Some("62A2E2EFD0DEFE3930847A6E"));
    }

    #[test]
    fn tolerates_missing_optional_members() {
        let body = br#"{"events":[{"eventName":"ObjectCreated:PostObject",
            "oss":{"bucket":{"name":"b","arn":"acs:oss:cn-beijing:1:b"},"object":{"key":"k"}}}]}"#;
        let batch = OssEventBatch::parse(body).unwrap();
        let task = batch.events[0].to_task(TaskOp::Put);
        assert_eq!(task.source.region, "cn-beijing");
        assert_eq!(task.source.size, None);
        assert_eq!(task.source.etag, None);
        assert_eq!(task.request_id, None);
    }

    #[test]
    fn strips_quotes_from_etag_if_present() {
        let mut e = event("ObjectCreated:PutObject", "k");
        e["oss"]["object"]["eTag"] = Value::from("\"ABC\"");
        let task = batch(&[e]).events[0].to_task(TaskOp::Put);
        assert_eq!(task.source.etag.as_deref(), Some("ABC"));
    }

    #[test]
    fn rejects_bodies_without_events_or_keys() {
        assert!(matches!(
            OssEventBatch::parse(b"{nope"),
            Err(EventError::NotJson(_))
        ));
        assert!(matches!(
            OssEventBatch::parse(br#"{"Records":[]}"#),
            Err(EventError::NoEvents)
        ));
        assert!(matches!(
            OssEventBatch::parse(br#"{"events":{}}"#),
            Err(EventError::NoEvents)
        ));
        let mut no_key = event("ObjectCreated:PutObject", "k");
        no_key["oss"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("key");
        let body = serde_json::json!({"events": [event("ObjectCreated:PutObject", "a"), no_key]});
        let err = OssEventBatch::from_value(body).unwrap_err();
        assert!(
            matches!(&err, EventError::InvalidEvent { index: 1, reason } if reason.contains("key")),
            "{err}"
        );
        let empty = serde_json::json!({"events": [event("ObjectCreated:PutObject", "")]});
        assert!(OssEventBatch::from_value(empty).is_err());
    }

    #[test]
    fn default_filter_forwards_complete_objects_only() {
        let names = [
            "ObjectCreated:PutObject",
            "ObjectCreated:PostObject",
            "ObjectCreated:CopyObject",
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectCreated:AppendObject",
            "ObjectCreated:PutSymlink",
            "ObjectCreated:InitiateMultipartUpload",
            "ObjectCreated:UploadPart",
            "ObjectCreated:UploadPartCopy",
            "ObjectRemoved:DeleteObject",
            "ObjectRemoved:DeleteObjects",
            "ObjectRemoved:AbortMultipartUpload",
            "ObjectModified:UpdateObjectMeta",
        ];
        let events = names.iter().map(|n| event(n, n)).collect::<Vec<_>>();
        let plan = plan_forward(&batch(&events), &EventFilter::default());
        assert_eq!(keys(&plan), &names[..6]);
        assert_eq!(plan.skipped_events, 7);
    }

    #[test]
    fn deletes_are_opt_in_and_map_to_delete_op() {
        let events = vec![
            event("ObjectRemoved:DeleteObject", "a"),
            event("ObjectRemoved:DeleteObjects", "b"),
            event("ObjectRemoved:AbortMultipartUpload", "c"),
        ];
        let off = plan_forward(&batch(&events), &EventFilter::default());
        assert!(off.tasks.is_empty());
        let filter = EventFilter::from_settings(None, true, None, None).unwrap();
        let on = plan_forward(&batch(&events), &filter);
        assert_eq!(keys(&on), ["a", "b"]);
        assert!(on.tasks.iter().all(|t| t.op == TaskOp::Delete));
    }

    #[test]
    fn event_list_replaces_default_and_accepts_wildcards() {
        let filter = EventFilter::from_settings(
            Some("oss:ObjectCreated:*, ObjectModified:UpdateObjectMeta"),
            false,
            None,
            None,
        )
        .unwrap();
        assert!(filter.forwards_event("ObjectCreated:PutObject"));
        assert!(filter.forwards_event("oss:ObjectCreated:AppendObject"));
        assert!(filter.forwards_event("ObjectModified:UpdateObjectMeta"));
        assert!(!filter.forwards_event("ObjectCreated:UploadPart"));
        assert!(!filter.forwards_event("ObjectRemoved:DeleteObject"));
        let only_put =
            EventFilter::from_settings(Some("ObjectCreated:PutObject"), false, None, None).unwrap();
        assert!(!only_put.forwards_event("ObjectCreated:CopyObject"));
    }

    #[test]
    fn rejects_unusable_event_settings() {
        assert!(matches!(
            EventFilter::from_settings(Some("ObjectCreated:UploadPart"), false, None, None),
            Err(FilterConfigError::NeverForwarded(_))
        ));
        assert!(matches!(
            EventFilter::from_settings(Some("ObjectRemoved:DeleteObject"), false, None, None),
            Err(FilterConfigError::DeleteNotEnabled(_))
        ));
        assert!(matches!(
            EventFilter::from_settings(Some("PutObject"), false, None, None),
            Err(FilterConfigError::UnknownEvent(_))
        ));
        assert!(EventFilter::from_settings(Some("ObjectRemoved:*"), true, None, None).is_ok());
    }

    #[test]
    fn prefix_lists_include_and_exclude_keys() {
        let filter =
            EventFilter::from_settings(None, false, Some("data/, logs/"), Some("data/tmp/"))
                .unwrap();
        let events = ["data/a", "data/tmp/b", "logs/c", "other/d", "data%2Fe"]
            .iter()
            .map(|k| event("ObjectCreated:PutObject", k))
            .collect::<Vec<_>>();
        let plan = plan_forward(&batch(&events), &filter);
        assert_eq!(keys(&plan), ["data/a", "logs/c", "data%2Fe"]);
        assert_eq!(plan.skipped_keys, 2);
    }

    #[test]
    fn exclude_prefix_matches_encoded_key_too() {
        let filter = EventFilter::from_settings(None, false, None, Some("tmp dir/")).unwrap();
        let events = ["tmp%20dir/a", "tmp+dir/b", "tmp dir/c", "tmpdir/d"]
            .iter()
            .map(|k| event("ObjectCreated:PutObject", k))
            .collect::<Vec<_>>();
        assert_eq!(keys(&plan_forward(&batch(&events), &filter)), ["tmpdir/d"]);
    }

    #[test]
    fn identical_events_become_one_task() {
        let a = event("ObjectCreated:PutObject", "k");
        let mut other_request = a.clone();
        other_request["responseElements"]["requestId"] = Value::from("OTHER");
        let plan = plan_forward(
            &batch(&[a.clone(), a.clone(), other_request, a]),
            &EventFilter::default(),
        );
        assert_eq!(plan.tasks.len(), 2);
        assert_eq!(plan.duplicates, 2);
    }

    #[test]
    fn keys_are_kept_byte_exact() {
        let odd = [
            "a b+c%2B%20.txt",
            "日本/ü ö.bin",
            "x%E6%97%A5",
            "/lead//double/",
        ];
        let events = odd
            .iter()
            .map(|k| event("ObjectCreated:PutObject", k))
            .collect::<Vec<_>>();
        let plan = plan_forward(&batch(&events), &EventFilter::default());
        assert_eq!(keys(&plan), odd);
    }
}
