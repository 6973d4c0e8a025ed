//! The Function Compute custom-runtime adapter: the HTTP routes FC calls (`POST /invoke`,
//! `POST /initialize`, `GET /pre-stop`), the `FC Invoke Start/End RequestId` log lines, and the
//! `x-fc-status` header that tells FC whether the invocation failed.
//!
//! FC's contract (custom runtime, event invocation): success is HTTP 200 with
//! `x-fc-status: 200`; a function error is HTTP 404 with `x-fc-status: 404`, which FC retries
//! (`maxAsyncRetryAttempts`) and finally sends to the on-failure destination. Without the header
//! FC counts the call as a success, so every answer carries it. See `docs/protocol.md`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tracing::Instrument;
use transfer::sqs::SqsSender;
use transfer::trigger::EventFilter;

use crate::forward::{ForwardError, excerpt, forward_trigger};

/// Largest body read: OSS trigger events are at most 128 KB; twice that leaves room for a
/// future field or two without letting a stray client make the function buffer megabytes.
pub const MAX_BODY_BYTES: usize = transfer::size::as_usize(256 * transfer::size::KIB);
/// How long a client may take to send the request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send the whole body once the headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for invocations in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Bytes of a bad body quoted in the error log.
const EXCERPT_BYTES: usize = 512;

/// What every invocation shares: built once at start-up.
#[derive(Debug)]
pub struct AppState {
    /// Where tasks go.
    pub sender: SqsSender,
    /// Which events become tasks.
    pub filter: EventFilter,
}

/// The routes FC calls.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/invoke", post(invoke))
        .route("/initialize", post(|| async { fc_ok("{}".to_owned()) }))
        .route("/pre-stop", get(|| async { fc_ok("{}".to_owned()) }))
        .with_state(Arc::new(state))
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the invocations in flight
/// finish (for up to 10 s). A client gets [`HEADER_TIMEOUT`] for its request headers, so a
/// stalled connection cannot hold the function.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let mut stopping = stopping.clone();
                connections.spawn(async move {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        result = connection.as_mut() => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        _ = stopping.changed() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
        }
    }
    let _ = stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("invocations still in flight at shutdown");
    }
}

/// `POST /invoke`: one OSS trigger event.
async fn invoke(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let request_id = header("x-fc-request-id");
    let span = tracing::info_span!(
        "invoke",
        request_id = %request_id,
        retry_count = %header("x-fc-retry-count"),
    );
    println!("FC Invoke Start RequestId: {request_id}");
    let response = handle(&state, body).instrument(span).await;
    println!("FC Invoke End RequestId: {request_id}");
    response
}

async fn handle(state: &AppState, body: Body) -> Response {
    let started = Instant::now();
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES));
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(err)) => {
            tracing::error!(error = %err, limit = MAX_BODY_BYTES, "could not read the invocation body");
            return fc_error("unreadable_body", &err.to_string(), None);
        }
        Err(_) => {
            tracing::error!(
                timeout_s = BODY_TIMEOUT.as_secs(),
                "the invocation body did not arrive in time"
            );
            return fc_error(
                "body_timeout",
                &format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
                None,
            );
        }
    };
    match forward_trigger(&body, &state.filter, &state.sender).await {
        Ok(report) => {
            tracing::info!(
                events = report.events,
                tasks = report.tasks,
                sent = report.sent,
                skipped_events = report.skipped_events,
                skipped_keys = report.skipped_keys,
                duplicates = report.duplicates,
                batch_calls = report.batch_calls,
                ms = transfer::size::millis(started.elapsed()),
                "forwarded"
            );
            let mut summary = serde_json::to_value(&report).unwrap_or_default();
            summary["status"] = "ok".into();
            fc_ok(summary.to_string())
        }
        Err(err @ ForwardError::Malformed(_)) => {
            tracing::error!(
                error = %err,
                body_excerpt = %excerpt(&body, EXCERPT_BYTES),
                "rejecting malformed trigger event"
            );
            fc_error(err.kind(), &err.to_string(), None)
        }
        Err(ForwardError::NotEnqueued(report)) => {
            let message = format!(
                "{} of {} tasks not enqueued",
                report.failed.len(),
                report.tasks
            );
            for failed in &report.failed {
                tracing::error!(key = %failed.key, code = %failed.code, error = %failed.message, "task not enqueued");
            }
            tracing::error!(
                sent = report.sent,
                batch_calls = report.batch_calls,
                ms = transfer::size::millis(started.elapsed()),
                body_excerpt = %excerpt(&body, EXCERPT_BYTES),
                "{message}; failing the invocation so FC retries it"
            );
            let report = serde_json::to_value(&report).ok();
            fc_error("enqueue_failed", &message, report)
        }
    }
}

/// 200 with `x-fc-status: 200`.
fn fc_ok(body: String) -> Response {
    fc_response(StatusCode::OK, body)
}

/// 404 with `x-fc-status: 404` and a JSON error body: FC treats it as a function error.
fn fc_error(kind: &str, message: &str, report: Option<serde_json::Value>) -> Response {
    let mut body = serde_json::json!({ "error": kind, "message": message });
    if let Some(report) = report {
        body["report"] = report;
    }
    fc_response(StatusCode::NOT_FOUND, body.to_string())
}

fn fc_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("x-fc-status", HeaderValue::from(status.as_u16()));
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Resolves on SIGTERM (FC stopping the instance) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
