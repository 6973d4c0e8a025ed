//! The versioned replication task: the SQS message that the forwarder (and backfill) produce and
//! the replicator consumes. [`message`](crate::message) reads every message shape the
//! replicator accepts.
//!
//! # Wire format (version 1)
//! ```json
//! {"version":1,"op":"put",
//!  "source":{"region":"cn-hangzhou","bucket":"photos","key":"a/b c.jpg","size":29203,
//!            "etag":"7D73E1052AF595535DE90994F4C3E6D5"},
//!  "event_name":"ObjectCreated:PutObject","event_time":"2022-06-10T06:21:35.000Z",
//!  "request_id":"62A2E2EFD0DEFE3930847A6E"}
//! ```
//! Readers ignore fields they do not know, so later versions of the replicator can add optional
//! fields (such as `continuation`) without breaking older forwarders.
//!
//! # Key decoding policy
//! OSS does not document whether trigger keys are URL-encoded. The task therefore carries the key
//! exactly as received and never decodes it on the way. [`SourceObject::key_candidates`] lists the
//! received key first, then its percent-decoded and form-decoded forms when they differ; the
//! replicator HEADs the candidates in order and copies the first that exists. Events are hints,
//! the source is the truth, so either encoding is handled safely.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The task format version this crate writes and the highest one it reads.
pub const TASK_VERSION: u32 = 1;

/// What the replicator should do with the named object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskOp {
    /// Make the destination hold the source object's current state.
    Put,
    /// Delete the destination object if the source object is gone.
    Delete,
}

/// The source object a task names, as the event (or message) described it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceObject {
    /// The OSS region ID, e.g. `cn-hangzhou`.
    pub region: String,
    /// The OSS bucket name.
    pub bucket: String,
    /// The object key, byte-exact as received (never URL-decoded on the way).
    pub key: String,
    /// The object size in bytes, when the event carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The object's ETag as OSS reported it in the event (uppercase hex, no quotes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl SourceObject {
    /// The keys to try on the source, in order: the received key, then its percent-decoded form,
    /// then its form-decoded form (`+` as space), each only when it differs from the earlier ones
    /// and decodes to valid UTF-8.
    pub fn key_candidates(&self) -> Vec<Cow<'_, str>> {
        let mut candidates: Vec<Cow<'_, str>> = vec![Cow::Borrowed(self.key.as_str())];
        if let Ok(decoded) = percent_decode_str(&self.key).decode_utf8()
            && decoded != self.key
        {
            candidates.push(Cow::Owned(decoded.into_owned()));
        }
        if self.key.contains('+') {
            let spaced = self.key.replace('+', " ");
            if let Ok(decoded) = percent_decode_str(&spaced).decode_utf8()
                && !candidates.contains(&decoded)
            {
                candidates.push(Cow::Owned(decoded.into_owned()));
            }
        }
        candidates
    }
}

/// One replication task: the message body on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationTask {
    /// The format version; [`TASK_VERSION`] for tasks written by this crate.
    pub version: u32,
    /// What to do.
    pub op: TaskOp,
    /// The object the task names.
    pub source: SourceObject,
    /// The OSS event name without the `oss:` prefix, e.g. `ObjectCreated:PutObject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// The event time as OSS wrote it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The OSS request ID of the operation that caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Continuation state owned by the replicator (e.g. a multipart upload to resume); opaque here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Value>,
    /// Not to be applied before this time (Unix seconds): a delayed delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
}

impl ReplicationTask {
    /// A version-1 put task for `source` with no event metadata.
    pub fn put(source: SourceObject) -> Self {
        Self {
            version: TASK_VERSION,
            op: TaskOp::Put,
            source,
            event_name: None,
            event_time: None,
            request_id: None,
            continuation: None,
            not_before: None,
        }
    }

    /// The task as its JSON message body.
    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and an already-parsed `Value` cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A deterministic identity of the task: the hex SHA-256 of its JSON body (64 characters).
    ///
    /// Two tasks share it only if every field is equal, so it serves as the SQS FIFO deduplication
    /// ID: a redelivered event (an FC retry) is dropped, while a later operation on the same key
    /// (a new OSS request ID) is not.
    pub fn identity(&self) -> String {
        hex::encode(Sha256::digest(self.to_json().as_bytes()))
    }

    /// The SQS FIFO message group: `bucket/key` when it is a valid group ID, otherwise
    /// `bucket/<hex sha256 of key>`, which is always at most 128 characters.
    pub fn message_group_id(&self) -> String {
        let plain = format!("{}/{}", self.source.bucket, self.source.key);
        // SQS allows 1..=128 characters of alphanumerics and ASCII punctuation in group IDs.
        if plain.len() <= 128 && plain.bytes().all(|b| b.is_ascii_graphic()) {
            return plain;
        }
        let digest = hex::encode(Sha256::digest(self.source.key.as_bytes()));
        let bucket: String = self
            .source
            .bucket
            .chars()
            .filter(char::is_ascii_graphic)
            .take(63)
            .collect();
        format!("{bucket}/{digest}")
    }
}

/// Checks a bucket name against the rules OSS and S3 share: 3 to 63 characters of lower-case
/// letters, digits, `-` and `.`, beginning and ending with a letter or digit. The error says
/// what is wrong.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len()) {
        return Err(format!("is {} characters long, not 3 to 63", name.len()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("has characters other than a-z, 0-9, '-' and '.'".to_owned());
    }
    if !edge(name.as_bytes().first()) || !edge(name.as_bytes().last()) {
        return Err("does not begin and end with a letter or digit".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_shared_rules() {
        for good in ["abc", "photos-2024", "a.b.c", &"a".repeat(63)] {
            assert_eq!(check_bucket_name(good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            "Photos",
            "-abc",
            "abc-",
            "a_b",
            "a/b",
            "../x",
            &"a".repeat(64),
            "",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    fn source(key: &str) -> SourceObject {
        SourceObject {
            region: "cn-hangzhou".into(),
            bucket: "bkt".into(),
            key: key.into(),
            size: Some(3),
            etag: Some("ABC".into()),
        }
    }

    fn candidates(key: &str) -> Vec<String> {
        source(key)
            .key_candidates()
            .into_iter()
            .map(Cow::into_owned)
            .collect()
    }
    #[test]
    fn plain_key_has_a_single_candidate() {
        assert_eq!(candidates("photos/2024/a.jpg"), ["photos/2024/a.jpg"]);
    }
    #[test]
    fn raw_key_with_space_is_tried_as_received_only() {
        assert_eq!(candidates("my dir/a b.txt"), ["my dir/a b.txt"]);
    }
    #[test]
    fn encoded_space_key_tries_received_then_decoded() {
        assert_eq!(
            candidates("my%20dir/a%20b.txt"),
            ["my%20dir/a%20b.txt", "my dir/a b.txt"]
        );
    }
    #[test]
    fn plus_key_tries_literal_plus_then_form_decoded_space() {
        assert_eq!(candidates("a+b.txt"), ["a+b.txt", "a b.txt"]);
    }
    #[test]
    fn encoded_plus_decodes_to_plus_and_not_to_space() {
        assert_eq!(candidates("a%2Bb.txt"), ["a%2Bb.txt", "a+b.txt"]);
    }
    #[test]
    fn literal_percent_key_without_valid_escape_stays_single() {
        assert_eq!(candidates("100%.txt"), ["100%.txt"]);
        assert_eq!(candidates("100%25.txt"), ["100%25.txt", "100%.txt"]);
    }
    #[test]
    fn unicode_key_decodes_from_utf8_escapes() {
        assert_eq!(candidates("日本/ü.txt"), ["日本/ü.txt"]);
        assert_eq!(
            candidates("%E6%97%A5%E6%9C%AC/%C3%BC.txt"),
            ["%E6%97%A5%E6%9C%AC/%C3%BC.txt", "日本/ü.txt"]
        );
    }
    #[test]
    fn invalid_utf8_escape_is_not_a_candidate() {
        assert_eq!(candidates("bad%FF.txt"), ["bad%FF.txt"]);
    }
    #[test]
    fn encoded_slash_decodes_to_slash() {
        assert_eq!(candidates("a%2Fb"), ["a%2Fb", "a/b"]);
    }
    #[test]
    fn identity_differs_by_request_and_is_stable() {
        let mut a = ReplicationTask::put(source("k"));
        a.request_id = Some("R1".into());
        let mut b = a.clone();
        assert_eq!(a.identity(), b.identity());
        assert_eq!(a.identity().len(), 64);
        b.request_id = Some("R2".into());
        assert_ne!(a.identity(), b.identity());
    }
    #[test]
    fn group_id_is_bucket_slash_key_when_valid() {
        assert_eq!(
            ReplicationTask::put(source("dir/a.txt")).message_group_id(),
            "bkt/dir/a.txt"
        );
    }
    #[test]
    fn group_id_hashes_long_or_non_ascii_keys() {
        for key in ["x".repeat(200), "a b.txt".to_owned(), "日本.txt".to_owned()] {
            let group = ReplicationTask::put(source(&key)).message_group_id();
            assert!(group.len() <= 128, "{group}");
            assert!(group.starts_with("bkt/"), "{group}");
            assert!(group.bytes().all(|b| b.is_ascii_graphic()), "{group}");
        }
        let long_bucket = SourceObject {
            bucket: "b".repeat(63),
            ..source("ü")
        };
        assert!(ReplicationTask::put(long_bucket).message_group_id().len() <= 128);
    }
}
