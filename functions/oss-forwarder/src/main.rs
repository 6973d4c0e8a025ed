//! `bootstrap`: the oss-forwarder function for Alibaba Function Compute's custom runtime.
//!
//! An HTTP server on `0.0.0.0:$FC_CUSTOM_LISTEN_PORT` (then `$FC_SERVER_PORT`, then 9000). Each
//! `POST /invoke` carries an OSS trigger event; the events become replication tasks on SQS
//! (`transfer::forward`). Any failure answers 404 with `x-fc-status: 404`, so FC retries the
//! event and finally routes it to the on-failure destination.

mod config;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::ProvideCredentials;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tracing::Instrument;
use transfer::forward::{ForwardError, excerpt, forward_trigger};
use transfer::sqs::{SqsSender, load_aws_config};
use transfer::trigger::EventFilter;

use crate::config::{Config, LogConfig};

/// Largest body read; OSS trigger events are at most 128 KB.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of a bad body quoted in the error log.
const EXCERPT_BYTES: usize = 512;

/// What every invocation shares: built once at start-up.
struct AppState {
    sender: SqsSender,
    filter: EventFilter,
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("oss-forwarder: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "oss-forwarder stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let aws = load_aws_config(config.timeouts).await;
    check_credentials(&aws).await?;
    let client = aws_sdk_sqs::Client::new(&aws);
    let sender = SqsSender::new(client, &config.queue_url).with_retry(config.retry);
    tracing::info!(
        queue_url = %config.queue_url,
        region = %config.region,
        fifo = sender.is_fifo(),
        events = ?config.filter.events(),
        "oss-forwarder configured"
    );
    let state = Arc::new(AppState {
        sender,
        filter: config.filter,
    });
    let app = Router::new()
        .route("/invoke", post(invoke))
        .route("/initialize", post(|| async { fc_ok("{}".to_owned()) }))
        .route("/pre-stop", get(|| async { fc_ok("{}".to_owned()) }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await?;
    println!("oss-forwarder listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Fails start-up when the standard chain yields no AWS credentials (never logs them).
async fn check_credentials(aws: &aws_config::SdkConfig) -> anyhow::Result<()> {
    let provider = aws
        .credentials_provider()
        .ok_or_else(|| anyhow::anyhow!("no AWS credentials provider configured"))?;
    match tokio::time::timeout(Duration::from_secs(10), provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(anyhow::anyhow!(
            "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): {err}"
        )),
        Err(_) => Err(anyhow::anyhow!(
            "timed out looking up AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )),
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
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "could not read the invocation body");
            return fc_error("unreadable_body", &err.to_string(), None);
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
                ms = started.elapsed().as_millis() as u64,
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
                ms = started.elapsed().as_millis() as u64,
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

fn init_tracing(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if log.json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
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
