//! The README's local path, as a user runs it: `cargo lambda watch` serving the replicator,
//! and `cargo lambda invoke replicator --data-file events/sqs-task.json`. `cargo lambda watch`
//! sends `Lambda-Runtime-Deadline-Ms: 600000`, which is no epoch time; the replicator must
//! still replicate (with its configured timeout as the deadline) and say why in its log.
//!
//! cargo-lambda comes from the project's Python environment (`./scripts/pyenv` installs it).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::process::ManagedProcess;

/// The cargo-lambda the project installs, or a clear failure.
fn cargo_lambda() -> std::path::PathBuf {
    let path = testkit::repo_root().join(".venv/bin/cargo-lambda");
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/pyenv (./scripts/test does) to install cargo-lambda",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_lambda_watch_and_invoke_replicate_the_fixture() {
    let stack = common::Stack::start().await;
    let body = common::data(29_203, 23);
    stack.seed("photos/2024/cat.jpg", &body).await;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let env_file = dir.path().join("replicator.env");
    let mut vars = stack.function_vars();
    vars.push(("AWS_REGION".to_owned(), "us-east-1".to_owned()));
    vars.push(("FUNCTION_TIMEOUT_SECONDS".to_owned(), "120".to_owned()));
    let text = vars
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&env_file, text).expect("env file");

    let port = testkit::free_port().to_string();
    let mut watch = Command::new(cargo_lambda());
    watch
        .args(["lambda", "watch", "--quiet", "-A", "127.0.0.1", "-P", &port])
        .arg("--env-file")
        .arg(&env_file)
        .current_dir(testkit::repo_root().join("functions/replicator"));
    let log = dir.path().join("watch.log");
    let watcher = ManagedProcess::spawn("cargo-lambda-watch", watch, &log).expect("watch starts");

    // The first invocation waits for watch to build the function (incrementally).
    let started = Instant::now();
    let response = loop {
        let output = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "replicator",
                "-A",
                "127.0.0.1",
                "-P",
                &port,
            ])
            .arg("--data-file")
            .arg(testkit::repo_root().join("events/sqs-task.json"))
            .output()
            .expect("cargo lambda invoke runs");
        if output.status.success() {
            break String::from_utf8_lossy(&output.stdout).into_owned();
        }
        assert!(
            started.elapsed() < Duration::from_mins(6),
            "cargo lambda invoke kept failing: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            watcher.log_text()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let response: serde_json::Value = serde_json::from_str(response.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {response}"));
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": []}),
        "{}",
        watcher.log_text()
    );
    assert_eq!(stack.dst_bytes("photos/2024/cat.jpg").await, Some(body));
    let logs = watcher.log_text();
    assert!(
        logs.contains("not a plausible time"),
        "the replicator says why it ignores the deadline: {logs}"
    );
    watcher.stop();
}
