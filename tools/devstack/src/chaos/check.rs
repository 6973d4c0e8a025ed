//! The audit after a chaos run, with every fault off: each source object against its replica
//! (bytes by CRC-64, size, content headers, user metadata, the marker), replicas without a
//! source, multipart uploads left behind, and the dead-letter queue.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use transfer::crc64::Crc64;
use transfer::oss::ListObjectsV2Request;
use transfer::replicate::{marker_matches, source_marker};

use crate::stack::Stack;

/// What the audit found. Objects that differ but whose messages are in the DLQ with a reason
/// are accounted for ([`Audit::dead_lettered`]); everything else that differs fails the run.
#[derive(Debug, Default)]
pub struct Audit {
    /// Source objects checked.
    pub checked: usize,
    /// Source objects whose replica is exact.
    pub exact: usize,
    /// Replicas that differ from the source's latest state (key, what differs), with no DLQ
    /// message for the key.
    pub wrong: Vec<(String, String)>,
    /// Source objects with no replica and no DLQ message: lost.
    pub lost: Vec<String>,
    /// Replicas whose source no longer exists (deletes are replicated).
    pub orphans: Vec<String>,
    /// Multipart uploads left in the destination (key, upload ID).
    pub uploads_left: Vec<(String, String)>,
    /// Keys whose replica differs or is missing, explained by a DLQ message (key, kind: reason).
    pub dead_lettered: Vec<(String, String)>,
    /// Every DLQ message, by failure kind.
    pub dlq_kinds: BTreeMap<String, usize>,
}

impl Audit {
    /// Nothing wrong, lost, orphaned or left behind.
    pub fn clean(&self) -> bool {
        self.wrong.is_empty()
            && self.lost.is_empty()
            && self.orphans.is_empty()
            && self.uploads_left.is_empty()
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  audit: {} source objects, {} replicas exact",
            self.checked, self.exact
        )?;
        let list = |f: &mut fmt::Formatter<'_>, title: &str, items: Vec<String>| {
            writeln!(f, "  {title}: {}", items.len())?;
            for item in items.iter().take(20) {
                writeln!(f, "    {item}")?;
            }
            if items.len() > 20 {
                writeln!(f, "    ... and {} more", items.len() - 20)?;
            }
            Ok(())
        };
        list(
            f,
            "replicas differing from the source, not in the DLQ",
            self.wrong
                .iter()
                .map(|(k, why)| format!("{k:?}: {why}"))
                .collect(),
        )?;
        list(
            f,
            "messages lost (no replica, not in the DLQ)",
            self.lost.iter().map(|k| format!("{k:?}")).collect(),
        )?;
        list(
            f,
            "replicas of deleted objects",
            self.orphans.iter().map(|k| format!("{k:?}")).collect(),
        )?;
        list(
            f,
            "multipart uploads left in S3",
            self.uploads_left
                .iter()
                .map(|(k, id)| format!("{k:?} upload {id}"))
                .collect(),
        )?;
        list(
            f,
            "accounted for by a DLQ message with its reason",
            self.dead_lettered
                .iter()
                .map(|(k, why)| format!("{k:?}: {why}"))
                .collect(),
        )?;
        if !self.dlq_kinds.is_empty() {
            writeln!(f, "  DLQ messages by kind: {:?}", self.dlq_kinds)?;
        }
        Ok(())
    }
}

/// Audits the replica against the source (faults must be off).
pub(super) async fn audit(stack: &Stack) -> anyhow::Result<Audit> {
    let config = stack.config();
    let oss = stack.oss_client()?;
    let s3 = stack.s3();
    let src = config.oss_bucket.as_str();
    let dst = config.dst_bucket.as_str();
    let mut audit = Audit::default();

    let dead = dead_letters(stack).await?;
    for (_, why) in dead.values().flatten() {
        let kind = why.split(':').next().unwrap_or_default().to_owned();
        *audit.dlq_kinds.entry(kind).or_default() += 1;
    }

    let source_keys: Vec<String> = oss
        .list_all_objects(src, ListObjectsV2Request::default())
        .map_ok(|o| o.key)
        .try_collect()
        .await
        .context("listing the source")?;
    let sources: BTreeSet<&str> = source_keys.iter().map(String::as_str).collect();
    audit.checked = source_keys.len();
    let results: Vec<(String, anyhow::Result<Option<String>>)> =
        futures::stream::iter(&source_keys)
            .map(|key| {
                let (oss, key) = (&oss, key.clone());
                async move {
                    let result = compare(oss, s3, src, dst, &key).await;
                    (key, result)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
    for (key, result) in results {
        let problem = match result {
            Ok(None) => {
                audit.exact += 1;
                continue;
            }
            Ok(Some(problem)) => problem,
            Err(e) => format!("{e:#}"),
        };
        if let Some(reasons) = dead.get(&key) {
            audit.dead_lettered.push((key, reasons[0].1.clone()));
        } else if problem == MISSING {
            audit.lost.push(key);
        } else {
            audit.wrong.push((key, problem));
        }
    }

    for key in s3_keys(s3, dst).await? {
        if !sources.contains(key.as_str()) && !dead.contains_key(&key) {
            audit.orphans.push(key);
        }
    }
    let uploads = s3
        .list_multipart_uploads()
        .bucket(dst)
        .send()
        .await
        .context("ListMultipartUploads")?;
    for upload in uploads.uploads() {
        audit.uploads_left.push((
            upload.key().unwrap_or_default().to_owned(),
            upload.upload_id().unwrap_or_default().to_owned(),
        ));
    }
    audit.wrong.sort();
    audit.lost.sort();
    audit.orphans.sort();
    audit.dead_lettered.sort();
    Ok(audit)
}

const MISSING: &str = "no replica";

/// The DLQ message attributes the replicator writes (see `replicator::queues`).
const DLQ_ATTR_KIND: &str = "oss2s3-failure-kind";
const DLQ_ATTR_REASON: &str = "oss2s3-failure-reason";

/// `None` if the replica of `key` is exact, else what differs.
async fn compare(
    oss: &transfer::oss::OssClient,
    s3: &aws_sdk_s3::Client,
    src: &str,
    dst: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let attributes = transfer::store::ObjectStore::head_object(oss, src, key)
        .await
        .with_context(|| format!("HEAD oss://{src}/{key}"))?;
    let get = match s3.get_object().bucket(dst).key(key).send().await {
        Ok(get) => get,
        Err(e)
            if e.as_service_error()
                .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key) =>
        {
            return Ok(Some(MISSING.to_owned()));
        }
        Err(e) => return Err(e).with_context(|| format!("GET s3://{dst}/{key}")),
    };
    let metadata = get.metadata().cloned().unwrap_or_default();
    let metadata: BTreeMap<String, String> = metadata.into_iter().collect();
    let marker = source_marker("oss", src, key, &attributes, None);
    if !marker_matches(&marker, &metadata) {
        return Ok(Some(format!(
            "the marker names another version: {:?}",
            metadata
                .iter()
                .filter(|(n, _)| n.starts_with("oss2s3-"))
                .collect::<Vec<_>>()
        )));
    }
    for (name, value) in &attributes.user_metadata {
        if metadata.get(name) != Some(value) {
            return Ok(Some(format!(
                "user metadata {name}: source {value:?}, replica {:?}",
                metadata.get(name)
            )));
        }
    }
    if attributes.content.content_type.as_deref() != get.content_type()
        && attributes.content.content_type.is_some()
    {
        return Ok(Some(format!(
            "Content-Type: source {:?}, replica {:?}",
            attributes.content.content_type,
            get.content_type()
        )));
    }
    let mut crc = Crc64::new();
    let mut body = get.body;
    while let Some(chunk) = body.try_next().await.context("reading the replica")? {
        crc.update(&chunk);
    }
    if crc.len() != attributes.size || Some(crc.value()) != attributes.crc64 {
        return Ok(Some(format!(
            "bytes: source {} B CRC-64 {:?}, replica {} B CRC-64 {}",
            attributes.size,
            attributes.crc64,
            crc.len(),
            crc.value()
        )));
    }
    Ok(None)
}

/// Every key in the destination bucket.
async fn s3_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.take())
            .send()
            .await
            .context("ListObjectsV2")?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(keys),
        }
    }
}

/// The DLQ's messages by the keys they name: (message ID, "kind: reason").
async fn dead_letters(stack: &Stack) -> anyhow::Result<BTreeMap<String, Vec<(String, String)>>> {
    let mut by_key: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    loop {
        let output = stack
            .sqs()
            .receive_message()
            .queue_url(stack.dlq_url())
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .message_attribute_names("All")
            .send()
            .await
            .context("receiving from the DLQ")?;
        if output.messages().is_empty() {
            return Ok(by_key);
        }
        for message in output.messages() {
            let attribute = |name: &str| {
                message
                    .message_attributes()
                    .and_then(|a| a.get(name))
                    .and_then(|v| v.string_value())
                    .unwrap_or("(none)")
                    .to_owned()
            };
            let why = format!(
                "{}: {}",
                attribute(DLQ_ATTR_KIND),
                attribute(DLQ_ATTR_REASON)
            );
            let id = message.message_id().unwrap_or_default().to_owned();
            for key in keys_named(message.body().unwrap_or_default()) {
                by_key
                    .entry(key)
                    .or_default()
                    .push((id.clone(), why.clone()));
            }
        }
    }
}

/// The object keys a message body names (a task, a legacy message or a raw OSS event), with
/// their decoded forms.
fn keys_named(body: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = Vec::new();
    if let Some(key) = value["source"]["key"].as_str().or(value["key"].as_str()) {
        keys.push(key.to_owned());
    }
    for event in value["events"].as_array().into_iter().flatten() {
        if let Some(key) = event["oss"]["object"]["key"].as_str() {
            keys.push(key.to_owned());
        }
    }
    let decoded: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            percent_encoding::percent_decode_str(&k.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(std::borrow::Cow::into_owned)
        })
        .collect();
    keys.extend(decoded);
    keys
}
