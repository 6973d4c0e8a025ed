//! The real function binary: it refuses to start with an unusable configuration, naming the
//! variable, before it talks to any service; and in a Lambda execution environment (testkit's
//! Runtime API) it answers an SQS event with `batchItemFailures`.

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
    ("OSS_BUCKET", "src-bucket"),
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
fn exits_naming_a_missing_source_bucket() {
    let output = run_function(&without("OSS_BUCKET"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OSS_BUCKET"), "{stderr}");
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
// The binary in a Lambda execution environment (testkit's Runtime API)

mod common;

use std::time::Duration;

use testkit::lambda::{FunctionInstance, FunctionSpec};
use testkit::runtime_api::InvocationOutcome;

/// The function binary in an execution environment, configured against `stack`, plus `extra`.
async fn start_function(
    stack: &common::Stack,
    log: &std::path::Path,
    extra: &[(&str, &str)],
) -> FunctionInstance {
    let mut env = stack.function_vars();
    env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    FunctionInstance::start(FunctionSpec {
        name: "replicator".to_owned(),
        binary: env!("CARGO_BIN_EXE_replicator").into(),
        env,
        memory_mb: 1024,
        timeout: Duration::from_mins(2),
        region: "us-east-1".to_owned(),
        account: common::ACCOUNT.to_owned(),
        log: log.to_owned(),
        wrapper: Vec::new(),
        grace: Duration::from_secs(10),
    })
    .await
    .expect("the function starts")
}

#[tokio::test]
async fn sigterm_mid_copy_hands_the_parts_on_to_a_continuation() {
    let stack = common::Stack::start().await;
    let body = common::data(6 * 5 * common::MIB, 22);
    stack.seed("photos/2024/cat.jpg", &body).await;
    // Each part's GET takes 800 ms, so the copy is mid-way when SIGTERM comes.
    stack
        .services
        .emulator
        .set_faults(vec![oss_emulator::FaultRule::new(
            "GetObject",
            oss_emulator::Fault::Latency { ms: 800 },
        )]);
    let log = std::env::temp_dir().join(format!("replicator-sigterm-{}.log", std::process::id()));
    let function = std::sync::Arc::new(
        start_function(
            &stack,
            &log,
            &[
                ("PART_SIZE_MIB", "5"),
                ("MULTIPART_THRESHOLD_MIB", "5"),
                ("PART_CONCURRENCY", "2"),
            ],
        )
        .await,
    );
    let pid = function.pid().expect("running");
    let event = std::fs::read_to_string(testkit::repo_root().join("events/sqs-task.json")).unwrap();
    let invocation = tokio::spawn({
        let function = function.clone();
        async move { function.invoke(event.into_bytes().into()).await }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let outcome = invocation.await.expect("joined");
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let InvocationOutcome::Response(response) = outcome else {
        panic!("the invocation was not answered: {outcome:?}\n{output}");
    };
    let response: serde_json::Value = serde_json::from_slice(&response).unwrap();
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": []}),
        "{output}"
    );
    assert!(output.contains("SIGTERM"), "{output}");
    let queued = stack.receive(&stack.queue_url).await;
    assert_eq!(queued.len(), 1, "a continuation: {output}");
    let task: transfer::task::ReplicationTask =
        serde_json::from_str(queued[0].body().unwrap()).unwrap();
    let continuation = transfer::replicate::Continuation::from_value(
        task.continuation.as_ref().expect("a continuation"),
    )
    .unwrap();
    assert!(
        !continuation.parts.is_empty() && continuation.parts.len() < 6,
        "{} parts carried",
        continuation.parts.len()
    );
    assert_eq!(
        stack.pending_uploads().await,
        1,
        "the upload is kept for it"
    );

    // Another environment finishes the copy from there.
    stack.services.emulator.set_faults(Vec::new());
    let response = stack
        .processor()
        .process(&stack.event_from(&queued), None)
        .await;
    assert!(common::ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.dst_bytes("photos/2024/cat.jpg").await, Some(body));
    assert_eq!(stack.pending_uploads().await, 0);
}

#[tokio::test]
async fn function_answers_an_sqs_event_with_batch_item_failures() {
    let stack = common::Stack::start().await;
    let body = common::data(4096, 21);
    stack.seed("photos/2024/cat.jpg", &body).await;
    let event =
        std::fs::read_to_string(testkit::repo_root().join("events/sqs-batch.json")).unwrap();
    let log = std::env::temp_dir().join(format!("replicator-function-{}.log", std::process::id()));
    let function = start_function(&stack, &log, &[("DST_PREFIX", "mirror/")]).await;
    let outcome = function.invoke(event.into_bytes().into()).await;
    drop(function);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);

    let InvocationOutcome::Response(response) = outcome else {
        panic!("the invocation failed: {outcome:?}\n{output}");
    };
    let response: serde_json::Value = serde_json::from_slice(&response).unwrap();
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
    assert!(
        emf.iter().any(|d| d["SkippedReasons"]["SourceGone"] == 2),
        "the legacy and the event message were skipped, their source gone: {output}"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "copied"),
        "JSON logs: {output}"
    );
    assert!(
        !output.contains("secret-a"),
        "the OSS key secret leaked into the output"
    );
}
