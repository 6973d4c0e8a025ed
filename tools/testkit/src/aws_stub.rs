//! A minimal AWS endpoint speaking the JSON protocol (`X-Amz-Target`, `application/x-amz-json-1.x`)
//! for two services: Secrets Manager's `GetSecretValue`, which hands out one fixed secret, and an
//! SQS sink that accepts `SendMessage` and `SendMessageBatch`, checks the requests' shape against
//! the SQS API reference (at most 10 entries, entry IDs of at most 80 characters from
//! `[A-Za-z0-9_-]`, bodies of at most 1 MiB) and counts and keeps what was sent.
//!
//! Anything else is answered with a 400 `UnsupportedOperation` and counted as refused, so a test
//! sees every call it did not expect. It replaces moto where moto would be the bottleneck or the
//! test needs nothing else (the benchmark's function runs).

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use serde_json::{Value, json};

/// SQS's largest message body.
const MAX_MESSAGE_BYTES: usize = transfer::size::as_usize(transfer::size::MIB);

/// A message the SQS sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The queue URL it was sent to.
    pub queue_url: String,
    /// The body.
    pub body: String,
}

#[derive(Debug, Default)]
struct Recorded {
    messages: Vec<SentMessage>,
    calls: u64,
    refused: Vec<String>,
}

#[derive(Debug)]
struct StubState {
    secret_string: String,
    recorded: Mutex<Recorded>,
}

/// The endpoint on a free loopback port; stops when dropped.
#[derive(Debug)]
pub struct AwsStub {
    port: u16,
    state: Arc<StubState>,
    server: tokio::task::JoinHandle<()>,
}

impl AwsStub {
    /// Starts the endpoint; `GetSecretValue` answers `secret_string` for any secret ID.
    pub async fn start(secret_string: impl Into<String>) -> std::io::Result<Self> {
        let state = Arc::new(StubState {
            secret_string: secret_string.into(),
            recorded: Mutex::default(),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            port,
            state,
            server,
        })
    }

    /// The endpoint URL, for `AWS_ENDPOINT_URL_SQS` and `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A queue URL on this endpoint.
    pub fn queue_url(&self, account: &str, name: &str) -> String {
        format!("{}/{account}/{name}", self.url())
    }

    /// The messages accepted so far.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.recorded().messages.clone()
    }

    /// How many SendMessage and SendMessageBatch calls were accepted.
    pub fn send_calls(&self) -> u64 {
        self.recorded().calls
    }

    /// The targets of the calls that were refused.
    pub fn refused(&self) -> Vec<String> {
        self.recorded().refused.clone()
    }

    /// Forgets what was recorded.
    pub fn reset(&self) {
        *self.recorded() = Recorded::default();
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.state
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for AwsStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn client_error(kind: &str, message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"__type": kind, "message": message}),
    )
}

pub(crate) fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// A message ID in the UUID shape SQS uses.
pub(crate) fn message_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A JSON-protocol request's operation (`X-Amz-Target`) and body (`null` when not JSON).
pub(crate) fn json_request(headers: &HeaderMap, body: &[u8]) -> (String, Value) {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (target, serde_json::from_slice(body).unwrap_or(Value::Null))
}

async fn handle(State(state): State<Arc<StubState>>, headers: HeaderMap, body: Bytes) -> Response {
    let (target, request) = json_request(&headers, &body);
    let answer = match target.as_str() {
        t if t.ends_with(".GetSecretValue") => Ok(json!({
            "ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:testkit",
            "Name": request["SecretId"].as_str().unwrap_or("testkit"),
            "VersionId": "00000000-0000-4000-8000-000000000001",
            "SecretString": state.secret_string,
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": 1.7e9,
        })),
        "AmazonSQS.SendMessage" => send_message(&state, &request),
        "AmazonSQS.SendMessageBatch" => send_message_batch(&state, &request),
        _ => Err(("UnsupportedOperation", format!("{target:?} is not stubbed"))),
    };
    match answer {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err((kind, message)) => {
            state
                .recorded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .refused
                .push(target);
            client_error(kind, &message)
        }
    }
}

/// Why a request was refused: the error code and its message.
pub(crate) type Refusal = (&'static str, String);

pub(crate) fn queue_url(request: &Value) -> Result<String, Refusal> {
    request["QueueUrl"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .ok_or(("MissingParameter", "QueueUrl is required".to_owned()))
}

pub(crate) fn message_body(value: &Value) -> Result<String, Refusal> {
    let body = value["MessageBody"]
        .as_str()
        .filter(|b| !b.is_empty())
        .ok_or(("MissingParameter", "MessageBody is required".to_owned()))?;
    if body.len() > MAX_MESSAGE_BYTES {
        return Err((
            "InvalidParameterValue",
            format!(
                "the body is {} bytes; at most {MAX_MESSAGE_BYTES}",
                body.len()
            ),
        ));
    }
    Ok(body.to_owned())
}

fn send_message(state: &StubState, request: &Value) -> Result<Value, Refusal> {
    let queue_url = queue_url(request)?;
    let body = message_body(request)?;
    let mut recorded = state
        .recorded
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    recorded.calls += 1;
    let id = message_id(recorded.messages.len());
    let md5 = md5_hex(&body);
    recorded.messages.push(SentMessage { queue_url, body });
    Ok(json!({"MessageId": id, "MD5OfMessageBody": md5}))
}

/// Whether `name` is a valid batch entry ID or queue name: 1 to 80 characters from
/// `[A-Za-z0-9_-]`.
pub(crate) fn is_sqs_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 80
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The entries of a batch request (`Entries`: 1 to 10, with valid, distinct IDs).
pub(crate) fn batch_entries(request: &Value) -> Result<&Vec<Value>, Refusal> {
    let entries = request["Entries"]
        .as_array()
        .filter(|e| !e.is_empty())
        .ok_or((
            "EmptyBatchRequest",
            "Entries is empty or missing".to_owned(),
        ))?;
    if entries.len() > 10 {
        return Err((
            "TooManyEntriesInBatchRequest",
            format!("{} entries; at most 10", entries.len()),
        ));
    }
    let mut ids: Vec<&str> = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = entry["Id"].as_str().unwrap_or_default();
        if !is_sqs_name(id) {
            return Err(("InvalidBatchEntryId", format!("entry ID {id:?} is invalid")));
        }
        if ids.contains(&id) {
            return Err((
                "BatchEntryIdsNotDistinct",
                format!("entry ID {id:?} repeats"),
            ));
        }
        ids.push(id);
    }
    Ok(entries)
}

/// The entries of a `SendMessageBatch` request with their bodies, checked as SQS checks them
/// (see [`batch_entries`]; each body and their total at most 1 MiB).
pub(crate) fn batch_messages(request: &Value) -> Result<Vec<(&Value, String)>, Refusal> {
    let entries = batch_entries(request)?;
    let mut messages = Vec::with_capacity(entries.len());
    let mut total = 0;
    for entry in entries {
        let body = message_body(entry)?;
        total += body.len();
        messages.push((entry, body));
    }
    if total > MAX_MESSAGE_BYTES {
        return Err((
            "BatchRequestTooLong",
            format!("the batch is {total} bytes; at most {MAX_MESSAGE_BYTES}"),
        ));
    }
    Ok(messages)
}

fn send_message_batch(state: &StubState, request: &Value) -> Result<Value, Refusal> {
    let queue_url = queue_url(request)?;
    let messages = batch_messages(request)?;
    let mut recorded = state
        .recorded
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    recorded.calls += 1;
    let mut successful = Vec::with_capacity(messages.len());
    for (entry, body) in messages {
        let message = message_id(recorded.messages.len());
        successful.push(
            json!({"Id": entry["Id"], "MessageId": message, "MD5OfMessageBody": md5_hex(&body)}),
        );
        recorded.messages.push(SentMessage {
            queue_url: queue_url.clone(),
            body,
        });
    }
    Ok(json!({"Successful": successful, "Failed": []}))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(stub: &AwsStub, target: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(stub.url())
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string())
            .send()
            .await
            .expect("the stub answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("a body");
        let value = serde_json::from_slice(&bytes).expect("JSON");
        (status, value)
    }

    #[tokio::test]
    async fn accepts_batches_within_the_limits_and_refuses_others() {
        let stub = AwsStub::start("{}").await.expect("starts");
        let url = stub.queue_url("123", "q");
        let entries: Vec<Value> = (0..3)
            .map(|i| json!({"Id": format!("t{i}"), "MessageBody": format!("body {i}")}))
            .collect();
        let (status, answer) = call(
            &stub,
            "AmazonSQS.SendMessageBatch",
            json!({"QueueUrl": url, "Entries": entries}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["Successful"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            answer["Successful"][0]["MD5OfMessageBody"],
            md5_hex("body 0")
        );
        assert_eq!(stub.messages().len(), 3);
        let eleven: Vec<Value> = (0..11)
            .map(|i| json!({"Id": format!("t{i}"), "MessageBody": "x"}))
            .collect();
        let (status, answer) = call(
            &stub,
            "AmazonSQS.SendMessageBatch",
            json!({"QueueUrl": url, "Entries": eleven}),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(answer["__type"], "TooManyEntriesInBatchRequest");
        let (status, _) = call(&stub, "AmazonSQS.DeleteQueue", json!({"QueueUrl": url})).await;
        assert_eq!(status, 400);
        assert_eq!(
            stub.refused(),
            ["AmazonSQS.SendMessageBatch", "AmazonSQS.DeleteQueue"]
        );
        assert_eq!(stub.send_calls(), 1);
    }

    #[tokio::test]
    async fn hands_out_the_secret() {
        let stub = AwsStub::start(r#"{"access_key_id":"a"}"#)
            .await
            .expect("starts");
        let (status, answer) = call(
            &stub,
            "secretsmanager.GetSecretValue",
            json!({"SecretId": "oss"}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(answer["SecretString"], r#"{"access_key_id":"a"}"#);
        assert_eq!(answer["Name"], "oss");
    }
}
