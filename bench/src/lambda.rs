//! Just enough of the Lambda platform to run the real `replicator` binary: the Runtime API
//! (`2018-06-01`: `invocation/next`, `…/response`, `…/error`, `init/error`) and a Secrets
//! Manager `GetSecretValue` that hands out the emulator's keys. One instance per function
//! process, so a killed process can never swallow the next event.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, watch};

use crate::procs::Proc;

/// One event waiting for the runtime's next poll.
struct Invocation {
    id: String,
    payload: Bytes,
    deadline_ms: u64,
}

type Answer = Result<Bytes, String>;

struct ApiState {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: Mutex<Option<String>>,
    secret_string: String,
}

/// A Runtime API (plus Secrets Manager) server on a free loopback port.
pub(crate) struct RuntimeApi {
    port: u16,
    state: Arc<ApiState>,
    events: mpsc::UnboundedSender<Invocation>,
    first_poll: watch::Receiver<Option<Instant>>,
    server: tokio::task::JoinHandle<()>,
    next_id: u64,
}

impl RuntimeApi {
    /// Starts a server whose secret holds `access_key_id` / `secret_access_key`.
    pub(crate) async fn start(
        access_key_id: &str,
        secret_access_key: &str,
    ) -> anyhow::Result<Self> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (poll_tx, poll_rx) = watch::channel(None);
        let secret_string = serde_json::json!({
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
        })
        .to_string();
        let state = Arc::new(ApiState {
            events: tokio::sync::Mutex::new(events_rx),
            waiting: Mutex::default(),
            first_poll: poll_tx,
            init_error: Mutex::default(),
            secret_string,
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(aws_json)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("bench: runtime API server stopped: {e}");
            }
        });
        Ok(Self {
            port,
            state,
            events: events_tx,
            first_poll: poll_rx,
            server,
            next_id: 0,
        })
    }

    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The base URL, used as the Secrets Manager and SQS endpoint.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for the runtime's first `invocation/next` and returns when it arrived.
    pub(crate) async fn first_poll(&mut self, timeout: Duration) -> anyhow::Result<Instant> {
        let waited = tokio::time::timeout(timeout, self.first_poll.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(at)) => Ok(at.unwrap_or_else(Instant::now)),
            _ => {
                let init = self
                    .state
                    .init_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                bail!("the function did not poll within {timeout:?} (init error: {init:?})")
            }
        }
    }

    /// Sends one event and waits for the function's answer.
    pub(crate) async fn invoke(
        &mut self,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> anyhow::Result<Bytes> {
        self.next_id += 1;
        let id = format!("bench-{:08}", self.next_id);
        let (tx, rx) = oneshot::channel();
        self.state
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), tx);
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64
            + timeout.as_millis() as u64;
        self.events
            .send(Invocation {
                id: id.clone(),
                payload: payload.into(),
                deadline_ms,
            })
            .ok()
            .context("runtime API stopped")?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(body))) => Ok(body),
            Ok(Ok(Err(error))) => bail!("invocation {id} failed: {error}"),
            Ok(Err(_)) => bail!("invocation {id}: runtime API stopped"),
            Err(_) => bail!("invocation {id}: no answer within {timeout:?}"),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    state.first_poll.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(Instant::now());
            true
        } else {
            false
        }
    });
    let Some(event) = state.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    (
        [
            ("lambda-runtime-aws-request-id", event.id),
            ("lambda-runtime-deadline-ms", event.deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:replicator".to_owned(),
            ),
            ("lambda-runtime-trace-id", "Root=1-bench".to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        event.payload,
    )
        .into_response()
}

fn answer(state: &ApiState, id: &str, answer: Answer) -> StatusCode {
    let waiter = state
        .waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(id);
    match waiter {
        Some(tx) => {
            let _ = tx.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn respond(
    State(state): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    answer(&state, &id, Ok(body))
}

async fn fail(
    State(state): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    answer(
        &state,
        &id,
        Err(String::from_utf8_lossy(&body).into_owned()),
    )
}

async fn init_error(State(state): State<Arc<ApiState>>, body: Bytes) -> StatusCode {
    *state
        .init_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner) =
        Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

/// AWS JSON-protocol calls: `secretsmanager.GetSecretValue` answers with the keys; anything
/// else (an SQS call would mean a continuation or a dead letter) is refused loudly.
async fn aws_json(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target.ends_with("GetSecretValue") {
        let body = serde_json::json!({
            "ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench-oss-keys",
            "Name": "bench-oss-keys",
            "VersionId": "00000000-0000-4000-8000-000000000001",
            "SecretString": state.secret_string,
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": 1.7e9,
        });
        return (
            [("content-type", "application/x-amz-json-1.1")],
            body.to_string(),
        )
            .into_response();
    }
    eprintln!("bench: unexpected AWS call {target:?} from the function");
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        serde_json::json!({"__type": "UnsupportedOperation", "message": target}).to_string(),
    )
        .into_response()
}

/// What the replicator process is pointed at.
#[derive(Debug, Clone)]
pub(crate) struct ReplicatorEnv {
    /// The emulator's URL.
    pub(crate) oss_endpoint: String,
    /// The S3 server's URL.
    pub(crate) s3_endpoint: String,
    /// The destination bucket.
    pub(crate) dst_bucket: String,
    /// S3 keys.
    pub(crate) s3_access_key: String,
    /// S3 secret.
    pub(crate) s3_secret_key: String,
    /// Extra variables (`PART_SIZE_MIB`, …).
    pub(crate) extra: Vec<(String, String)>,
    /// A program (with arguments) to run the binary under, e.g. valgrind; empty for none.
    pub(crate) wrapper: Vec<String>,
}

/// The `replicator` binary as Lambda runs it: its process and its Runtime API.
pub(crate) struct Function {
    /// The process.
    pub(crate) proc: Proc,
    /// Its Runtime API.
    pub(crate) api: RuntimeApi,
    /// When the process was spawned.
    pub(crate) spawned: Instant,
}

impl Function {
    /// Starts `binary` under a fresh Runtime API with `env` (and nothing else from this
    /// process's environment but `PATH`).
    pub(crate) async fn start(
        binary: &Path,
        env: &ReplicatorEnv,
        oss_keys: (&str, &str),
        log: &Path,
        home: &Path,
    ) -> anyhow::Result<Self> {
        let api = RuntimeApi::start(oss_keys.0, oss_keys.1).await?;
        let mut command = match env.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let vars: Vec<(String, String)> = vec![
            ("HOME".into(), home.display().to_string()),
            ("AWS_LAMBDA_RUNTIME_API".into(), api.address()),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), "replicator".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "1769".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            ("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), env.s3_access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), env.s3_secret_key.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_ENDPOINT_URL_S3".into(), env.s3_endpoint.clone()),
            ("AWS_ENDPOINT_URL_SQS".into(), api.url()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), api.url()),
            ("OSS_REGION".into(), "cn-hangzhou".into()),
            ("OSS_ENDPOINT".into(), env.oss_endpoint.clone()),
            ("OSS_SECRET_ID".into(), "bench-oss-keys".into()),
            ("DST_BUCKET".into(), env.dst_bucket.clone()),
            (
                "QUEUE_URL".into(),
                format!("{}/000000000000/bench-tasks", api.url()),
            ),
        ];
        command.envs(vars).envs(env.extra.iter().cloned());
        let spawned = Instant::now();
        let proc = Proc::spawn("replicator", command, log)?;
        Ok(Self { proc, api, spawned })
    }
}

/// An SQS event (as the event source mapping delivers it) with one message per body.
pub(crate) fn sqs_event(bodies: &[String]) -> String {
    let records: Vec<serde_json::Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            serde_json::json!({
                "messageId": format!("00000000-0000-4000-8000-{i:012}"),
                "receiptHandle": format!("bench-receipt-{i}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1714550400000",
                    "SenderId": "BENCH",
                    "ApproximateFirstReceiveTimestamp": "1714550400000"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench-tasks",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

/// The message IDs a batch response reports as failed.
pub(crate) fn batch_failures(response: &[u8]) -> anyhow::Result<Vec<String>> {
    let value: serde_json::Value =
        serde_json::from_slice(response).context("the batch response is not JSON")?;
    Ok(value
        .get("batchItemFailures")
        .and_then(|f| f.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("itemIdentifier").and_then(|v| v.as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}
