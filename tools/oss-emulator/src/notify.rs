//! Trigger emulation: POSTs native OSS trigger events to notification targets, asynchronously,
//! retrying like Function Compute's asynchronous invocation does.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::stats::Stats;
use crate::util::{lock, new_request_id};

/// The owner account the emulator reports in events, listings and bucket info.
pub(crate) const OWNER_ID: &str = "1000000000000000";
/// Retries after the first attempt, as FC's default `maxAsyncRetryAttempts`.
const RETRIES: u32 = 3;
/// The largest event body FC accepts from an OSS trigger.
const MAX_BODY: usize = 128 * 1024;

/// Where and for which changes to POST trigger events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationTarget {
    /// The URL that receives `POST` requests with the event JSON.
    pub url: String,
    /// Event patterns such as `oss:ObjectCreated:*` or `oss:ObjectRemoved:DeleteObject` (the
    /// `oss:` prefix is optional). Empty means every ObjectCreated and ObjectRemoved event.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only keys starting with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Only keys ending with this suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

impl NotificationTarget {
    /// A target for every ObjectCreated and ObjectRemoved event.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            events: Vec::new(),
            prefix: None,
            suffix: None,
        }
    }

    /// Limits the target to these event patterns.
    #[must_use]
    pub fn events(mut self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.events = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Limits the target to keys starting with `prefix`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Limits the target to keys ending with `suffix`.
    #[must_use]
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = Some(suffix.into());
        self
    }

    /// Whether an event named like `ObjectCreated:PutObject` on `key` goes to this target.
    pub fn matches(&self, event_name: &str, key: &str) -> bool {
        let event_ok = if self.events.is_empty() {
            event_name.starts_with("ObjectCreated:") || event_name.starts_with("ObjectRemoved:")
        } else {
            self.events.iter().any(|pattern| {
                let pattern = pattern.strip_prefix("oss:").unwrap_or(pattern);
                match pattern.strip_suffix('*') {
                    Some(head) => event_name.starts_with(head),
                    None => pattern == event_name,
                }
            })
        };
        event_ok
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }

    fn rule_id(&self) -> String {
        hex::encode(Md5::digest(self.url.as_bytes()))
    }
}

/// One object change, before it is rendered for a target.
#[derive(Debug, Clone)]
pub(crate) struct ObjectEvent {
    /// `ObjectCreated:PutObject`, `ObjectRemoved:DeleteObject`, …
    pub(crate) event_name: String,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) delta_size: i64,
    /// Upper-case hex, no quotes.
    pub(crate) etag: String,
    pub(crate) mime_type: Option<String>,
    pub(crate) request_id: String,
    pub(crate) source_ip: String,
    pub(crate) time: DateTime<Utc>,
}

impl ObjectEvent {
    fn to_json(&self, region: &str, rule_id: &str) -> Value {
        let mut object = json!({
            "deltaSize": self.delta_size,
            "eTag": self.etag,
            "key": self.key,
            "size": self.size,
        });
        if let Some(mime) = &self.mime_type {
            object["objectMeta"] = json!({ "mimeType": mime });
        }
        json!({
            "eventName": self.event_name,
            "eventSource": "acs:oss",
            "eventTime": self.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            "eventVersion": "1.0",
            "oss": {
                "bucket": {
                    "arn": format!("acs:oss:{region}:{OWNER_ID}:{}", self.bucket),
                    "name": self.bucket,
                    "ownerIdentity": OWNER_ID,
                    "virtualBucket": "",
                },
                "object": object,
                "ossSchemaVersion": "1.0",
                "ruleId": rule_id,
            },
            "region": region,
            "requestParameters": { "sourceIPAddress": self.source_ip },
            "responseElements": { "requestId": self.request_id },
            "userIdentity": { "principalId": OWNER_ID },
        })
    }
}

/// Queues events and delivers them in the background.
#[derive(Debug)]
pub(crate) struct Notifier {
    targets: Arc<RwLock<Vec<NotificationTarget>>>,
    tx: mpsc::UnboundedSender<ObjectEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Notifier {
    /// Starts the dispatcher task.
    pub(crate) fn start(
        targets: Vec<NotificationTarget>,
        region: String,
        backoff: Duration,
        stats: Arc<Mutex<Stats>>,
    ) -> Self {
        let targets = Arc::new(RwLock::new(targets));
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(dispatch(rx, targets.clone(), region, backoff, stats));
        Self { targets, tx, task }
    }

    /// Replaces the targets; events already queued go to the new ones.
    pub(crate) fn set_targets(&self, targets: Vec<NotificationTarget>) {
        *self
            .targets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = targets;
    }

    /// The current targets.
    pub(crate) fn targets(&self) -> Vec<NotificationTarget> {
        self.targets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Queues an event; never blocks.
    pub(crate) fn publish(&self, event: ObjectEvent) {
        let has_targets = !self
            .targets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty();
        if has_targets {
            let _ = self.tx.send(event);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Takes whatever events are pending together, groups them per target and spawns one
/// delivery per batch. There is no waiting for more events: a lone event goes out at once.
async fn dispatch(
    mut rx: mpsc::UnboundedReceiver<ObjectEvent>,
    targets: Arc<RwLock<Vec<NotificationTarget>>>,
    region: String,
    backoff: Duration,
    stats: Arc<Mutex<Stats>>,
) {
    let client = reqwest::Client::new();
    while let Some(first) = rx.recv().await {
        let mut pending = vec![first];
        while let Ok(more) = rx.try_recv() {
            pending.push(more);
        }
        let targets = targets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for target in targets {
            let rule_id = target.rule_id();
            let mut batch: Vec<Value> = Vec::new();
            let mut batch_len = 0;
            for event in pending
                .iter()
                .filter(|e| target.matches(&e.event_name, &e.key))
            {
                let value = event.to_json(&region, &rule_id);
                let len = value.to_string().len() + 1;
                if !batch.is_empty() && batch_len + len + 16 > MAX_BODY {
                    spawn_delivery(
                        &client,
                        &target.url,
                        &std::mem::take(&mut batch),
                        backoff,
                        &stats,
                    );
                    batch_len = 0;
                }
                batch_len += len;
                batch.push(value);
            }
            if !batch.is_empty() {
                spawn_delivery(&client, &target.url, &batch, backoff, &stats);
            }
        }
    }
}

fn spawn_delivery(
    client: &reqwest::Client,
    url: &str,
    events: &[Value],
    backoff: Duration,
    stats: &Arc<Mutex<Stats>>,
) {
    let body = json!({ "events": events }).to_string();
    let (client, url, stats) = (client.clone(), url.to_owned(), stats.clone());
    tokio::spawn(async move { deliver(client, url, body, backoff, stats).await });
}

/// POSTs one batch, retrying when the reply is not 200 or says `x-fc-status: 404`.
async fn deliver(
    client: reqwest::Client,
    url: String,
    body: String,
    backoff: Duration,
    stats: Arc<Mutex<Stats>>,
) {
    let request_id = new_request_id();
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            tokio::time::sleep(backoff * 2u32.pow(attempt - 1)).await;
        }
        lock(&stats).notification_attempts += 1;
        let result = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-fc-request-id", &request_id)
            .body(body.clone())
            .send()
            .await;
        let outcome = match result {
            Ok(response) => {
                let fc_failed = response
                    .headers()
                    .get("x-fc-status")
                    .is_some_and(|v| v.as_bytes() == b"404");
                if response.status() == reqwest::StatusCode::OK && !fc_failed {
                    Ok(())
                } else {
                    Err(format!("status {}", response.status()))
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                lock(&stats).notifications_delivered += 1;
                tracing::debug!(url, request_id, attempt, "trigger event delivered");
                return;
            }
            Err(reason) => {
                tracing::warn!(
                    url,
                    request_id,
                    attempt,
                    reason,
                    "trigger event not accepted"
                );
            }
        }
    }
    lock(&stats).notifications_failed += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_prefix_and_suffix_select_events() {
        let target = NotificationTarget::new("http://x")
            .events(["oss:ObjectCreated:*", "oss:ObjectRemoved:DeleteObject"])
            .prefix("img/")
            .suffix(".jpg");
        assert!(target.matches("ObjectCreated:PutObject", "img/a.jpg"));
        assert!(target.matches("ObjectRemoved:DeleteObject", "img/a.jpg"));
        assert!(!target.matches("ObjectRemoved:DeleteObjects", "img/a.jpg"));
        assert!(!target.matches("ObjectCreated:PutObject", "doc/a.jpg"));
        assert!(!target.matches("ObjectCreated:PutObject", "img/a.png"));
        assert!(NotificationTarget::new("http://x").matches("ObjectRemoved:DeleteObjects", "k"));
    }

    #[test]
    fn event_json_has_the_native_trigger_shape() {
        let event = ObjectEvent {
            event_name: "ObjectCreated:PutObject".into(),
            bucket: "b".into(),
            key: "a b.txt".into(),
            size: 3,
            delta_size: 3,
            etag: "900150983CD24FB0D6963F7D28E17F72".into(),
            mime_type: Some("text/plain".into()),
            request_id: "RID".into(),
            source_ip: "127.0.0.1".into(),
            time: DateTime::from_timestamp(1_654_842_095, 0).expect("time"),
        };
        let v = event.to_json("cn-hangzhou", "rule");
        assert_eq!(v["eventTime"], "2022-06-10T06:21:35.000Z");
        assert_eq!(v["oss"]["bucket"]["ownerIdentity"], OWNER_ID);
        assert_eq!(
            v["oss"]["bucket"]["arn"],
            format!("acs:oss:cn-hangzhou:{OWNER_ID}:b")
        );
        assert_eq!(v["oss"]["object"]["objectMeta"]["mimeType"], "text/plain");
        assert_eq!(v["oss"]["object"]["key"], "a b.txt");
        assert_eq!(v["responseElements"]["requestId"], "RID");
    }
}
