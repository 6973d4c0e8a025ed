//! A Lambda Runtime API server (version `2018-06-01`) for one execution environment.
//!
//! A custom runtime such as the replicator's `bootstrap` finds it through
//! `AWS_LAMBDA_RUNTIME_API=host:port` and loops:
//! `GET /2018-06-01/runtime/invocation/next` (a long poll that returns the next event, with the
//! `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn` and `-Trace-Id`
//! headers), then `POST /2018-06-01/runtime/invocation/{id}/response` or `.../{id}/error`.
//! `POST /2018-06-01/runtime/init/error` reports a failed start. This follows the AWS Lambda
//! developer guide's "Using the Lambda runtime API for custom runtimes".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// The largest response Lambda accepts from a synchronous invocation (6 MB).
const MAX_RESPONSE_BYTES: usize = transfer::size::as_usize(6 * transfer::size::MIB);

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationOutcome {
    /// The function returned this payload (`.../response`).
    Response(Bytes),
    /// The function reported an error (`.../error`), or its runtime exited mid-invocation
    /// (`Runtime.ExitError`).
    Error {
        /// `Lambda-Runtime-Function-Error-Type`, or the `errorType` of the body.
        error_type: String,
        /// The error document as sent.
        body: String,
    },
    /// No answer before the deadline (`Sandbox.Timedout`).
    TimedOut,
    /// The runtime did not ask for the event in time (it is not running or still starting).
    NotStarted,
}

/// An event waiting for the runtime's next `GET .../invocation/next`.
struct Pending {
    request_id: String,
    payload: Bytes,
    timeout: Duration,
    /// Told when the runtime takes the event; closed if the invoker gave up waiting.
    picked: oneshot::Sender<()>,
    reply: oneshot::Sender<InvocationOutcome>,
}

struct Shared {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<InvocationOutcome>>>,
    next_calls: AtomicU64,
    first_poll: OnceLock<Instant>,
    init_error: Mutex<Option<String>>,
}

impl Shared {
    fn in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<InvocationOutcome>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One Runtime API endpoint on a free loopback port; stops when dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    sender: mpsc::Sender<Pending>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .field("function_arn", &self.shared.function_arn)
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Starts the server for the function `function_arn` on `127.0.0.1:0`.
    pub async fn start(function_arn: impl Into<String>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            function_arn: function_arn.into(),
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::default(),
            next_calls: AtomicU64::new(0),
            first_poll: OnceLock::new(),
            init_error: Mutex::default(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            shared,
            sender,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many times the runtime has asked for the next event (0: it has not started yet).
    pub fn next_calls(&self) -> u64 {
        self.shared.next_calls.load(Ordering::Relaxed)
    }

    /// When the runtime first asked for an event (its start-up ended), if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.first_poll.get().copied()
    }

    /// The error the runtime reported through `/runtime/init/error`, if any.
    pub fn init_error(&self) -> Option<String> {
        self.shared
            .init_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Invokes the function with `payload` and waits for its answer.
    ///
    /// The runtime has `pickup` to take the event (it may be starting) and then `timeout`, the
    /// function timeout, which is also the deadline the runtime is told.
    pub async fn invoke(
        &self,
        payload: Bytes,
        timeout: Duration,
        pickup: Duration,
    ) -> InvocationOutcome {
        let request_id = request_id();
        let (picked, picked_rx) = oneshot::channel();
        let (reply, reply_rx) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.clone(),
            payload,
            timeout,
            picked,
            reply,
        };
        if tokio::time::timeout(pickup, self.sender.send(pending))
            .await
            .is_err()
        {
            return InvocationOutcome::NotStarted;
        }
        match tokio::time::timeout(pickup, picked_rx).await {
            Ok(Ok(())) => {}
            // Dropping `picked_rx` makes the runtime skip this event if it asks later.
            _ => return InvocationOutcome::NotStarted,
        }
        match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => InvocationOutcome::Error {
                error_type: "Runtime.ExitError".into(),
                body: r#"{"errorType":"Runtime.ExitError","errorMessage":"the runtime exited during the invocation"}"#.into(),
            },
            Err(_) => {
                self.shared.in_flight().remove(&request_id);
                InvocationOutcome::TimedOut
            }
        }
    }

    /// Ends every invocation in flight with `Runtime.ExitError` (the runtime process died).
    pub fn fail_in_flight(&self) {
        self.shared.in_flight().clear();
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fresh request ID in Lambda's UUID format.
fn request_id() -> String {
    let a: u128 = rand_u128();
    let hex = format!("{a:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// 128 bits that differ per call: time, a counter and the process ID, mixed.
fn rand_u128() -> u128 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut x = nanos ^ (count << 64) ^ u128::from(std::process::id()) << 96;
    // splitmix-style scrambling of both halves.
    for _ in 0..2 {
        x ^= x >> 31;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    }
    x
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.get_or_init(Instant::now);
    shared.next_calls.fetch_add(1, Ordering::Relaxed);
    let mut queue = shared.queue.lock().await;
    loop {
        let Some(pending) = queue.recv().await else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        if pending.picked.send(()).is_err() {
            continue; // The invoker stopped waiting for this one.
        }
        let deadline = epoch_ms() + pending.timeout.as_millis();
        shared
            .in_flight()
            .insert(pending.request_id.clone(), pending.reply);
        let mut headers = HeaderMap::new();
        headers.insert("lambda-runtime-aws-request-id", header(&pending.request_id));
        headers.insert("lambda-runtime-deadline-ms", header(&deadline.to_string()));
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            header(&shared.function_arn),
        );
        let parent = rand_u128().to_le_bytes();
        let trace = format!(
            "Root=1-{:08x}-{:024x};Parent={};Sampled=0",
            epoch_ms() / 1000,
            rand_u128() >> 32,
            hex::encode(&parent[..8])
        );
        headers.insert("lambda-runtime-trace-id", header(&trace));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        return (StatusCode::OK, headers, pending.payload).into_response();
    }
}

fn unknown_request() -> Response {
    (
        StatusCode::BAD_REQUEST,
        r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
    )
        .into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(reply) = shared.in_flight().remove(&id) else {
        return unknown_request();
    };
    let _ = reply.send(InvocationOutcome::Response(body));
    accepted()
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(reply) = shared.in_flight().remove(&id) else {
        return unknown_request();
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errorType"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "Unhandled".into());
    let _ = reply.send(InvocationOutcome::Error { error_type, body });
    accepted()
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    *shared
        .init_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner) =
        Some(String::from_utf8_lossy(&body).into_owned());
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_lambdas_and_differ() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
    }

    #[tokio::test]
    async fn an_invocation_nobody_takes_is_not_started() {
        let api = RuntimeApi::start("arn:aws:lambda:us-east-1:123456789012:function:f")
            .await
            .unwrap();
        let outcome = api
            .invoke(
                Bytes::from_static(b"{}"),
                Duration::from_secs(1),
                Duration::from_millis(100),
            )
            .await;
        assert_eq!(outcome, InvocationOutcome::NotStarted);
    }
}
