//! The real function binary refuses to start with an unusable configuration, naming the
//! variable, before it talks to any service.

use std::process::Command;

/// Runs the function binary with exactly `vars` in its environment.
fn run_function(vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_replicator"))
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("the function runs")
}

const VALID: &[(&str, &str)] = &[
    ("OSS_REGION", "cn-hangzhou"),
    ("OSS_SECRET_ID", "oss2s3/oss"),
    ("DST_BUCKET", "dst"),
    ("QUEUE_URL", "https://sqs.example/123456789012/tasks"),
];

fn without(var: &str) -> Vec<(&'static str, &'static str)> {
    VALID.iter().copied().filter(|(k, _)| *k != var).collect()
}

#[test]
fn exits_naming_a_missing_dst_bucket() {
    let output = run_function(&without("DST_BUCKET"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DST_BUCKET"), "{stderr}");
}

#[test]
fn exits_naming_an_invalid_part_size() {
    let mut vars = VALID.to_vec();
    vars.push(("PART_SIZE_MIB", "1"));
    let output = run_function(&vars);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PART_SIZE_MIB"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The binary under a Lambda Runtime API stand-in

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};

/// The Lambda Runtime API as the function sees it: it hands out queued events and records the
/// answers.
#[derive(Default)]
struct RuntimeApi {
    events: Mutex<VecDeque<(String, String)>>,
    answers: Mutex<Vec<(String, String, String)>>,
}

async fn next_invocation(State(api): State<Arc<RuntimeApi>>) -> (HeaderMap, String) {
    let next = api.events.lock().expect("events").pop_front();
    let Some((id, body)) = next else {
        // No more events: keep the runtime waiting, as Lambda does between invocations.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        + 120_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:replicator".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".into(),
    );
    (headers, body)
}

async fn answer(
    State(api): State<Arc<RuntimeApi>>,
    Path((id, kind)): Path<(String, String)>,
    body: String,
) -> StatusCode {
    api.answers.lock().expect("answers").push((id, kind, body));
    StatusCode::ACCEPTED
}

async fn start_runtime_api(api: Arc<RuntimeApi>) -> std::net::SocketAddr {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn function_answers_an_sqs_event_with_batch_item_failures() {
    let stack = common::Stack::start().await;
    let body = common::data(4096, 21);
    stack.seed("photos/2024/cat.jpg", &body).await;
    let api = Arc::new(RuntimeApi::default());
    let event =
        std::fs::read_to_string(testkit::repo_root().join("events/sqs-batch.json")).unwrap();
    api.events
        .lock()
        .unwrap()
        .push_back(("req-1".into(), event.clone()));
    let addr = start_runtime_api(api.clone()).await;

    let log_path =
        std::env::temp_dir().join(format!("replicator-runtime-api-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let emulator = stack.emulator.endpoint();
    let moto = stack.moto.endpoint();
    let mut child = Command::new(env!("CARGO_BIN_EXE_replicator"))
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", addr.to_string().as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "replicator"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", moto.as_str()),
            ("OSS_REGION", common::REGION),
            ("OSS_ENDPOINT", emulator.as_str()),
            ("OSS_BUCKET", common::SRC),
            ("OSS_SECRET_ID", stack.secret_id.as_str()),
            ("DST_BUCKET", stack.dst.as_str()),
            ("DST_PREFIX", "mirror/"),
            ("QUEUE_URL", stack.queue_url.as_str()),
            ("DLQ_URL", stack.dlq_url.as_str()),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("the function starts");

    let started = std::time::Instant::now();
    let answer = loop {
        if let Some(answer) = api.answers.lock().unwrap().first().cloned() {
            break answer;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the function exited with {status}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);

    let (id, kind, response) = answer;
    assert_eq!(
        (id.as_str(), kind.as_str()),
        ("req-1", "response"),
        "{output}"
    );
    let response: serde_json::Value = serde_json::from_str(&response).unwrap();
    // Only the task's object exists; the legacy and event objects are gone (skipped), and the
    // malformed message went to the DLQ: nothing is left for SQS to redeliver.
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": []}),
        "{output}"
    );
    assert_eq!(
        stack.dst_bytes("mirror/photos/2024/cat.jpg").await,
        Some(body)
    );
    assert_eq!(stack.receive(&stack.dlq_url).await.len(), 1);

    let lines: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let emf: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert!(
        emf.iter()
            .any(|d| d["ObjectsReplicated"] == 1.0 && d["FunctionName"] == "replicator"),
        "{output}"
    );
    assert!(emf.iter().any(|d| d["Reason"] == "SourceGone"), "{output}");
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "copied"),
        "JSON logs: {output}"
    );
    assert!(
        !output.contains("secret-a"),
        "the OSS key secret leaked into the output"
    );
}
