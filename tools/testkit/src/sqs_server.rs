//! An in-memory SQS server speaking the JSON protocol (`X-Amz-Target: AmazonSQS.*`), for the
//! local stack at rates moto's SQS cannot sustain (at 200 objects/s through the local stack,
//! moto's SQS stopped accepting connections). Like moto it scans a queue on each receive, so it
//! suits queues drained as they fill, not backlogs of millions.
//!
//! It keeps standard queues with SQS's delivery semantics: a received message is invisible for
//! the visibility timeout and comes back unless deleted; `ApproximateReceiveCount` counts its
//! receives; a queue's redrive policy moves a message to its dead-letter queue when a receive
//! would exceed `maxReceiveCount`; `DelaySeconds` (queue or message) delays delivery; long polls
//! (`WaitTimeSeconds`) return as soon as a message is visible. Requests are checked against the
//! API reference's limits (1 to 10 messages per receive or batch, entry IDs, body sizes,
//! visibility timeouts up to 12 hours); anything else, FIFO queues included, is refused with a
//! 400 and counted, so a caller sees every call this server does not serve.
//!
//! Operations: `CreateQueue`, `GetQueueUrl`, `GetQueueAttributes`, `SetQueueAttributes`,
//! `SendMessage`, `SendMessageBatch`, `ReceiveMessage`, `DeleteMessage`, `DeleteMessageBatch`,
//! `ChangeMessageVisibility`, `ChangeMessageVisibilityBatch`, `PurgeQueue`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::aws_stub::{
    Refusal, batch_entries, batch_messages, client_error, is_sqs_name, json_request, json_response,
    md5_hex, message_body, message_id, queue_url,
};

/// The account ID in queue URLs and ARNs.
const ACCOUNT: &str = "000000000000";
/// The region in ARNs.
const REGION: &str = "us-east-1";
/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_hours(12);
/// SQS's longest delay.
const MAX_DELAY: Duration = Duration::from_mins(15);
/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// One message.
#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    attributes: Value,
    sent_ms: u128,
    first_receive_ms: Option<u128>,
    receives: u32,
    visible_at: Instant,
    /// The receipt handle of the latest receive.
    receipt: Option<String>,
}

#[derive(Debug)]
struct Queue {
    url: String,
    arn: String,
    attributes: BTreeMap<String, String>,
    messages: VecDeque<Message>,
}

impl Queue {
    fn duration(&self, name: &str, default: Duration) -> Duration {
        self.attributes
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(default, Duration::from_secs)
    }

    /// `(dead-letter queue ARN, maxReceiveCount)` from the redrive policy.
    fn redrive(&self) -> Option<(String, u32)> {
        let policy: Value = serde_json::from_str(self.attributes.get("RedrivePolicy")?).ok()?;
        let arn = policy["deadLetterTargetArn"].as_str()?.to_owned();
        let max = match &policy["maxReceiveCount"] {
            Value::String(s) => s.parse().ok()?,
            other => u32::try_from(other.as_u64()?).ok()?,
        };
        Some((arn, max))
    }
}

#[derive(Debug, Default)]
struct Queues {
    by_name: BTreeMap<String, Queue>,
    messages_sent: u64,
    refused: Vec<String>,
}

impl Queues {
    fn named_by_url(&mut self, url: &str) -> Result<&mut Queue, Refusal> {
        let name = queue_name_of(url);
        self.by_name.get_mut(name).ok_or((
            "QueueDoesNotExist",
            format!("the queue {name:?} does not exist"),
        ))
    }
}

#[derive(Debug)]
struct ServerState {
    endpoint: String,
    queues: Mutex<Queues>,
    /// Woken when a message is sent or made visible, for long polls.
    arrivals: Notify,
}

impl ServerState {
    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The server on a free loopback port; stops when dropped.
#[derive(Debug)]
pub struct SqsServer {
    state: Arc<ServerState>,
    server: tokio::task::JoinHandle<()>,
}

impl SqsServer {
    /// Starts the server.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let state = Arc::new(ServerState {
            endpoint,
            queues: Mutex::default(),
            arrivals: Notify::new(),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { state, server })
    }

    /// The endpoint URL, for `AWS_ENDPOINT_URL_SQS`.
    pub fn url(&self) -> String {
        self.state.endpoint.clone()
    }

    /// How many messages were accepted in all.
    pub fn messages_sent(&self) -> u64 {
        self.state.queues().messages_sent
    }

    /// The targets of the calls that were refused.
    pub fn refused(&self) -> Vec<String> {
        self.state.queues().refused.clone()
    }
}

impl Drop for SqsServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn queue_name_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// A whole number of seconds from a JSON number or string, at most `max`.
fn seconds(value: &Value, name: &str, max: Duration) -> Result<Option<Duration>, Refusal> {
    let n = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    };
    match n.map(Duration::from_secs) {
        Some(d) if d <= max => Ok(Some(d)),
        _ => Err((
            "InvalidParameterValue",
            format!("{name} must be 0 to {} seconds", max.as_secs()),
        )),
    }
}

async fn handle(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (target, request) = json_request(&headers, &body);
    let answer = match target.strip_prefix("AmazonSQS.").unwrap_or_default() {
        "ReceiveMessage" => receive_message(&state, &request).await,
        operation => serve(&state, operation, &request),
    };
    match answer {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err((kind, message)) => {
            state.queues().refused.push(target);
            client_error(kind, &message)
        }
    }
}

/// Every operation but `ReceiveMessage`, which may wait.
fn serve(state: &ServerState, operation: &str, request: &Value) -> Result<Value, Refusal> {
    match operation {
        "CreateQueue" => create_queue(state, request),
        "GetQueueUrl" => {
            let name = request["QueueName"].as_str().unwrap_or_default();
            let queues = state.queues();
            let queue = queues.by_name.get(name).ok_or((
                "QueueDoesNotExist",
                format!("the queue {name:?} does not exist"),
            ))?;
            Ok(json!({"QueueUrl": queue.url}))
        }
        "GetQueueAttributes" => get_queue_attributes(state, request),
        "SetQueueAttributes" => {
            let mut queues = state.queues();
            let queue = queues.named_by_url(&queue_url(request)?)?;
            let attributes = string_map(&request["Attributes"])?;
            queue.attributes.extend(attributes);
            Ok(json!({}))
        }
        "SendMessage" => {
            let url = queue_url(request)?;
            let body = message_body(request)?;
            let md5 = md5_hex(&body);
            let id = send(state, &url, request, body)?;
            Ok(json!({"MessageId": id, "MD5OfMessageBody": md5}))
        }
        "SendMessageBatch" => {
            let url = queue_url(request)?;
            let messages = batch_messages(request)?;
            // Every entry is checked before any is queued, so a refused batch queues nothing.
            for (entry, _) in &messages {
                seconds(&entry["DelaySeconds"], "DelaySeconds", MAX_DELAY)?;
            }
            state.queues().named_by_url(&url)?;
            let mut successful = Vec::new();
            for (entry, body) in messages {
                let md5 = md5_hex(&body);
                let id = send(state, &url, entry, body)?;
                successful
                    .push(json!({"Id": entry["Id"], "MessageId": id, "MD5OfMessageBody": md5}));
            }
            Ok(json!({"Successful": successful, "Failed": []}))
        }
        "DeleteMessage" => {
            let url = queue_url(request)?;
            let receipt = request["ReceiptHandle"].as_str().unwrap_or_default();
            delete(state, &url, receipt)?;
            Ok(json!({}))
        }
        "DeleteMessageBatch" => {
            let url = queue_url(request)?;
            Ok(per_entry(batch_entries(request)?, |entry| {
                delete(
                    state,
                    &url,
                    entry["ReceiptHandle"].as_str().unwrap_or_default(),
                )
            }))
        }
        "ChangeMessageVisibility" => {
            let url = queue_url(request)?;
            change_visibility(state, &url, request)?;
            Ok(json!({}))
        }
        "ChangeMessageVisibilityBatch" => {
            let url = queue_url(request)?;
            Ok(per_entry(batch_entries(request)?, |entry| {
                change_visibility(state, &url, entry)
            }))
        }
        "PurgeQueue" => {
            let mut queues = state.queues();
            queues.named_by_url(&queue_url(request)?)?.messages.clear();
            Ok(json!({}))
        }
        _ => Err((
            "UnsupportedOperation",
            format!("{operation:?} is not served by this SQS server"),
        )),
    }
}

fn string_map(value: &Value) -> Result<BTreeMap<String, String>, Refusal> {
    let Some(object) = value.as_object() else {
        return Ok(BTreeMap::new());
    };
    object
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err((
                "InvalidAttributeValue",
                format!("attribute {k} is not a string"),
            )),
        })
        .collect()
}

fn create_queue(state: &ServerState, request: &Value) -> Result<Value, Refusal> {
    let name = request["QueueName"].as_str().unwrap_or_default();
    if !is_sqs_name(name) {
        return Err((
            "InvalidParameterValue",
            format!("queue name {name:?} is invalid (FIFO queues are not served)"),
        ));
    }
    let attributes = string_map(&request["Attributes"])?;
    let mut queues = state.queues();
    let url = format!("{}/{ACCOUNT}/{name}", state.endpoint);
    if let Some(existing) = queues.by_name.get(name)
        && attributes
            .iter()
            .any(|(k, v)| existing.attributes.get(k) != Some(v))
    {
        return Err((
            "QueueNameExists",
            format!("the queue {name:?} exists with other attributes"),
        ));
    }
    queues
        .by_name
        .entry(name.to_owned())
        .or_insert_with(|| Queue {
            url: url.clone(),
            arn: format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
            attributes,
            messages: VecDeque::new(),
        });
    Ok(json!({"QueueUrl": url}))
}

fn get_queue_attributes(state: &ServerState, request: &Value) -> Result<Value, Refusal> {
    let mut queues = state.queues();
    let queue = queues.named_by_url(&queue_url(request)?)?;
    let now = Instant::now();
    let (mut visible, mut in_flight, mut delayed) = (0, 0, 0);
    for message in &queue.messages {
        match (message.visible_at <= now, message.receives) {
            (true, _) => visible += 1,
            (false, 0) => delayed += 1,
            (false, _) => in_flight += 1,
        }
    }
    let mut all: BTreeMap<String, String> = queue.attributes.clone();
    all.insert("QueueArn".into(), queue.arn.clone());
    all.entry("VisibilityTimeout".into())
        .or_insert_with(|| "30".into());
    all.insert("ApproximateNumberOfMessages".into(), visible.to_string());
    all.insert(
        "ApproximateNumberOfMessagesNotVisible".into(),
        in_flight.to_string(),
    );
    all.insert(
        "ApproximateNumberOfMessagesDelayed".into(),
        delayed.to_string(),
    );
    let wanted: Vec<&str> = request["AttributeNames"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let chosen: Map<String, Value> = all
        .into_iter()
        .filter(|(k, _)| wanted.contains(&"All") || wanted.contains(&k.as_str()))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Ok(json!({"Attributes": chosen}))
}

/// Runs `one` for each entry of a batch and reports each entry's outcome, as SQS does.
fn per_entry(entries: &[Value], mut one: impl FnMut(&Value) -> Result<(), Refusal>) -> Value {
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for entry in entries {
        match one(entry) {
            Ok(()) => successful.push(json!({"Id": entry["Id"]})),
            Err((code, message)) => failed.push(json!({
                "Id": entry["Id"], "Code": code, "Message": message, "SenderFault": true,
            })),
        }
    }
    json!({"Successful": successful, "Failed": failed})
}

fn send(state: &ServerState, url: &str, entry: &Value, body: String) -> Result<String, Refusal> {
    let delay = seconds(&entry["DelaySeconds"], "DelaySeconds", MAX_DELAY)?;
    let mut queues = state.queues();
    let id = message_id(usize::try_from(queues.messages_sent + 1).unwrap_or(usize::MAX));
    let queue = queues.named_by_url(url)?;
    let delay = delay.unwrap_or_else(|| queue.duration("DelaySeconds", Duration::ZERO));
    queue.messages.push_back(Message {
        id: id.clone(),
        body,
        attributes: entry["MessageAttributes"].clone(),
        sent_ms: now_ms(),
        first_receive_ms: None,
        receives: 0,
        visible_at: Instant::now() + delay,
        receipt: None,
    });
    queues.messages_sent += 1;
    drop(queues);
    state.arrivals.notify_waiters();
    Ok(id)
}

/// The message ID a receipt handle (`<message ID>/<receive number>`) names.
fn receipt_message_id(receipt: &str) -> Result<&str, Refusal> {
    receipt
        .rsplit_once('/')
        .filter(|(id, n)| !id.is_empty() && n.parse::<u32>().is_ok())
        .map(|(id, _)| id)
        .ok_or((
            "ReceiptHandleIsInvalid",
            format!("{receipt:?} is not a receipt handle"),
        ))
}

/// Deletes the message a receipt handle names. As in SQS, a handle of an earlier receive, or of
/// a message already deleted, succeeds and deletes nothing.
fn delete(state: &ServerState, url: &str, receipt: &str) -> Result<(), Refusal> {
    receipt_message_id(receipt)?;
    let mut queues = state.queues();
    let queue = queues.named_by_url(url)?;
    queue
        .messages
        .retain(|m| m.receipt.as_deref() != Some(receipt));
    Ok(())
}

fn change_visibility(state: &ServerState, url: &str, entry: &Value) -> Result<(), Refusal> {
    let timeout = seconds(
        &entry["VisibilityTimeout"],
        "VisibilityTimeout",
        MAX_VISIBILITY,
    )?
    .ok_or((
        "MissingParameter",
        "VisibilityTimeout is required".to_owned(),
    ))?;
    let receipt = entry["ReceiptHandle"].as_str().unwrap_or_default();
    receipt_message_id(receipt)?;
    let mut queues = state.queues();
    let queue = queues.named_by_url(url)?;
    let now = Instant::now();
    let message = queue
        .messages
        .iter_mut()
        .find(|m| m.receipt.as_deref() == Some(receipt) && m.visible_at > now)
        .ok_or((
            "MessageNotInflight",
            format!("no message is in flight under {receipt:?}"),
        ))?;
    message.visible_at = now + timeout;
    drop(queues);
    state.arrivals.notify_waiters();
    Ok(())
}

/// The names a receive asked for in `field` (`All` and `.*` mean every one).
fn wants(request: &Value, fields: &[&str], name: &str) -> bool {
    fields.iter().any(|field| {
        request[*field].as_array().is_some_and(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .any(|n| n == "All" || n == ".*" || n == name)
        })
    })
}

/// Takes up to `max` visible messages, moving those past the redrive limit to the DLQ (when
/// the redrive policy names a queue that does not exist, nothing moves, so nothing is lost).
/// Returns the messages and, when there are none, the time the next one becomes visible.
fn take_visible(
    state: &ServerState,
    url: &str,
    max: usize,
    visibility: Option<Duration>,
) -> Result<(Vec<Message>, Option<Instant>), Refusal> {
    let mut queues = state.queues();
    let redrive = queues
        .named_by_url(url)?
        .redrive()
        .and_then(|(arn, limit)| {
            let dlq = queues.by_name.iter().find(|(_, q)| q.arn == arn)?.0.clone();
            Some((dlq, limit))
        });
    let queue = queues.named_by_url(url)?;
    let now = Instant::now();
    let visibility =
        visibility.unwrap_or_else(|| queue.duration("VisibilityTimeout", Duration::from_secs(30)));
    let mut taken = Vec::new();
    let mut dead = Vec::new();
    let mut next: Option<Instant> = None;
    let mut i = 0;
    while i < queue.messages.len() && taken.len() < max {
        let message = &mut queue.messages[i];
        if message.visible_at > now {
            next = Some(next.map_or(message.visible_at, |n| n.min(message.visible_at)));
            i += 1;
            continue;
        }
        if redrive
            .as_ref()
            .is_some_and(|(_, limit)| message.receives >= *limit)
        {
            dead.extend(queue.messages.remove(i));
            continue;
        }
        message.receives += 1;
        message.first_receive_ms.get_or_insert_with(now_ms);
        message.visible_at = now + visibility;
        message.receipt = Some(format!("{}/{}", message.id, message.receives));
        taken.push(message.clone());
        i += 1;
    }
    if let Some((dlq, _)) = redrive
        && !dead.is_empty()
        && let Some(dlq) = queues.by_name.get_mut(&dlq)
    {
        for mut message in dead {
            message.visible_at = now;
            message.receipt = None;
            dlq.messages.push_back(message);
        }
        drop(queues);
        state.arrivals.notify_waiters();
    }
    Ok((taken, next))
}

async fn receive_message(state: &ServerState, request: &Value) -> Result<Value, Refusal> {
    let url = queue_url(request)?;
    let max = match &request["MaxNumberOfMessages"] {
        Value::Null => 1,
        value => value.as_u64().filter(|n| (1..=10).contains(n)).ok_or((
            "InvalidParameterValue",
            "MaxNumberOfMessages must be 1 to 10".to_owned(),
        ))?,
    };
    let wait = match seconds(&request["WaitTimeSeconds"], "WaitTimeSeconds", MAX_WAIT)? {
        Some(wait) => wait,
        None => state
            .queues()
            .named_by_url(&url)?
            .duration("ReceiveMessageWaitTimeSeconds", Duration::ZERO),
    };
    let visibility = seconds(
        &request["VisibilityTimeout"],
        "VisibilityTimeout",
        MAX_VISIBILITY,
    )?;
    let deadline = Instant::now() + wait;
    let messages = loop {
        // Registered before looking, so a message sent in between still wakes this poll.
        let arrival = state.arrivals.notified();
        let (taken, next) =
            take_visible(state, &url, usize::try_from(max).unwrap_or(10), visibility)?;
        let now = Instant::now();
        if !taken.is_empty() || now >= deadline {
            break taken;
        }
        let until = next.map_or(deadline, |n| n.min(deadline));
        let _ = tokio::time::timeout(until.saturating_duration_since(now), arrival).await;
    };
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            let mut system = Map::new();
            let mut put = |name: &str, value: String| {
                if wants(
                    request,
                    &["AttributeNames", "MessageSystemAttributeNames"],
                    name,
                ) {
                    system.insert(name.to_owned(), Value::String(value));
                }
            };
            put("ApproximateReceiveCount", m.receives.to_string());
            put("SentTimestamp", m.sent_ms.to_string());
            put(
                "ApproximateFirstReceiveTimestamp",
                m.first_receive_ms.unwrap_or_default().to_string(),
            );
            put("SenderId", ACCOUNT.to_owned());
            let mut message = json!({
                "MessageId": m.id,
                "ReceiptHandle": m.receipt,
                "MD5OfBody": md5_hex(&m.body),
                "Body": m.body,
            });
            if !system.is_empty() {
                message["Attributes"] = Value::Object(system);
            }
            if let Some(attributes) = m.attributes.as_object() {
                let chosen: Map<String, Value> = attributes
                    .iter()
                    .filter(|(name, _)| wants(request, &["MessageAttributeNames"], name))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !chosen.is_empty() {
                    message["MessageAttributes"] = Value::Object(chosen);
                }
            }
            message
        })
        .collect();
    Ok(json!({"Messages": messages}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::{
        DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
        SendMessageBatchRequestEntry,
    };

    fn client(server: &SqsServer) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(REGION))
            .endpoint_url(server.url())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    async fn queue(
        sqs: &aws_sdk_sqs::Client,
        name: &str,
        attributes: &[(QueueAttributeName, String)],
    ) -> String {
        let mut request = sqs.create_queue().queue_name(name);
        for (k, v) in attributes {
            request = request.attributes(k.clone(), v);
        }
        request
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("a queue URL")
    }

    async fn attribute(sqs: &aws_sdk_sqs::Client, url: &str, name: QueueAttributeName) -> String {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(name.clone())
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes
            .and_then(|a| a.get(&name).cloned())
            .expect("the attribute")
    }

    #[tokio::test]
    async fn the_sdk_sends_receives_and_deletes_with_sqs_semantics() {
        let server = SqsServer::start().await.expect("starts");
        let sqs = client(&server);
        let url = queue(
            &sqs,
            "tasks",
            &[(QueueAttributeName::VisibilityTimeout, "1".into())],
        )
        .await;
        let entries: Vec<SendMessageBatchRequestEntry> = (0..3)
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("t{i}"))
                    .message_body(format!("body {i}"))
                    .build()
                    .expect("entry")
            })
            .collect();
        let sent = sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("SendMessageBatch");
        assert_eq!(sent.successful.len(), 3);
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        let bodies: Vec<&str> = got.iter().filter_map(|m| m.body()).collect();
        assert_eq!(bodies, ["body 0", "body 1", "body 2"]);
        assert_eq!(
            got[0]
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .map(String::as_str),
            Some("1")
        );
        assert_eq!(
            attribute(
                &sqs,
                &url,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible
            )
            .await,
            "3"
        );
        // Delete two; the third comes back after the visibility timeout, received twice.
        let deletes: Vec<DeleteMessageBatchRequestEntry> = got[..2]
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(m.receipt_handle().expect("a handle"))
                    .build()
                    .expect("entry")
            })
            .collect();
        let delete_answer = sqs
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(deletes))
            .send()
            .await
            .expect("DeleteMessageBatch");
        assert_eq!(delete_answer.successful.len(), 2);
        let started = Instant::now();
        let again = sqs
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(5)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "waited for the timeout"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "returned once visible"
        );
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].body(), Some("body 2"));
        assert_eq!(
            again[0]
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .map(String::as_str),
            Some("2")
        );
        // The first receive's handle is stale now: the delete succeeds and deletes nothing.
        for (receipt, left) in [(&got[2], "1"), (&again[0], "0")] {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(receipt.receipt_handle().expect("a handle"))
                .send()
                .await
                .expect("DeleteMessage");
            let in_flight = attribute(
                &sqs,
                &url,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            );
            assert_eq!(in_flight.await, left);
        }
        assert!(server.refused().is_empty(), "{:?}", server.refused());
    }

    #[tokio::test]
    async fn a_long_poll_returns_when_a_message_arrives_and_delays_are_kept() {
        let server = SqsServer::start().await.expect("starts");
        let sqs = client(&server);
        let url = queue(&sqs, "poll", &[]).await;
        let poll = {
            let (sqs, url) = (sqs.clone(), url.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let got = sqs
                    .receive_message()
                    .queue_url(&url)
                    .wait_time_seconds(10)
                    .send()
                    .await
                    .expect("ReceiveMessage");
                (started.elapsed(), got.messages.unwrap_or_default().len())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqs.send_message()
            .queue_url(&url)
            .message_body("now")
            .send()
            .await
            .expect("SendMessage");
        let (waited, received) = poll.await.expect("the poll");
        assert_eq!(received, 1);
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        sqs.send_message()
            .queue_url(&url)
            .message_body("later")
            .delay_seconds(1)
            .send()
            .await
            .expect("SendMessage");
        assert_eq!(
            attribute(
                &sqs,
                &url,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed
            )
            .await,
            "1"
        );
        let now = sqs
            .receive_message()
            .queue_url(&url)
            .send()
            .await
            .expect("ReceiveMessage");
        assert!(now.messages.unwrap_or_default().is_empty(), "delayed");
        let started = Instant::now();
        let later = sqs
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(5)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        assert_eq!(later.first().and_then(|m| m.body()), Some("later"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "delivered once the delay ended"
        );
    }

    #[tokio::test]
    async fn visibility_can_be_changed_and_a_queue_is_not_recreated_differently() {
        let server = SqsServer::start().await.expect("starts");
        let sqs = client(&server);
        let url = queue(&sqs, "vis", &[]).await;
        sqs.send_message()
            .queue_url(&url)
            .message_body("m")
            .send()
            .await
            .expect("SendMessage");
        let receive = || {
            sqs.receive_message()
                .queue_url(&url)
                .visibility_timeout(600)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
        };
        let first = receive()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        assert_eq!(first.len(), 1);
        assert!(
            receive()
                .await
                .expect("ReceiveMessage")
                .messages
                .unwrap_or_default()
                .is_empty()
        );
        // Made visible again at once, as a function does with a message it hands back.
        sqs.change_message_visibility()
            .queue_url(&url)
            .receipt_handle(first[0].receipt_handle().expect("a handle"))
            .visibility_timeout(0)
            .send()
            .await
            .expect("ChangeMessageVisibility");
        let second = receive()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        assert_eq!(
            second.first().and_then(|m| m.attributes()).and_then(|a| a
                .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                .cloned()),
            Some("2".to_owned())
        );
        // The first receive's handle no longer names the message in flight.
        let stale = sqs
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(first[0].receipt_handle().expect("a handle"))
            .visibility_timeout(0)
            .send()
            .await;
        assert!(stale.is_err());
        // The same name with the same attributes is the same queue; with others, refused.
        assert_eq!(queue(&sqs, "vis", &[]).await, url);
        let other = sqs
            .create_queue()
            .queue_name("vis")
            .attributes(QueueAttributeName::VisibilityTimeout, "5")
            .send()
            .await;
        assert!(other.is_err());
        assert_eq!(
            server.refused(),
            ["AmazonSQS.ChangeMessageVisibility", "AmazonSQS.CreateQueue"]
        );
    }

    async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str) {
        sqs.send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }

    /// One message at most, visible again at once (visibility timeout 0).
    async fn receive_visible_again(
        sqs: &aws_sdk_sqs::Client,
        url: &str,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        sqs.receive_message()
            .queue_url(url)
            .visibility_timeout(0)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn the_redrive_policy_moves_a_message_to_the_dead_letter_queue() {
        let server = SqsServer::start().await.expect("starts");
        let sqs = client(&server);
        let dlq = queue(&sqs, "dlq", &[]).await;
        let dlq_arn = attribute(&sqs, &dlq, QueueAttributeName::QueueArn).await;
        let policy = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string();
        let url = queue(&sqs, "main", &[(QueueAttributeName::RedrivePolicy, policy)]).await;
        send(&sqs, &url, "poison").await;
        for _ in 0..2 {
            assert_eq!(receive_visible_again(&sqs, &url).await.len(), 1);
        }
        assert!(receive_visible_again(&sqs, &url).await.is_empty());
        let dead = receive_visible_again(&sqs, &dlq).await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body(), Some("poison"));
        // A redrive policy naming a queue that does not exist moves nothing: nothing is lost.
        let missing = json!({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:gone", "maxReceiveCount": 1});
        let orphan = queue(
            &sqs,
            "orphan",
            &[(QueueAttributeName::RedrivePolicy, missing.to_string())],
        )
        .await;
        send(&sqs, &orphan, "kept").await;
        for _ in 0..3 {
            let got = receive_visible_again(&sqs, &orphan).await;
            assert_eq!(got.len(), 1, "still delivered");
        }
        // Requests beyond the API's limits are refused, and FIFO queues are not served.
        let eleven = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(11)
            .send()
            .await;
        assert!(eleven.is_err());
        assert!(
            sqs.create_queue()
                .queue_name("q.fifo")
                .send()
                .await
                .is_err()
        );
        assert_eq!(server.refused().len(), 2);
    }
}
