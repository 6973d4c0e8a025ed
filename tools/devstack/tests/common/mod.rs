//! Starting a devstack for a test: binaries built once per test process, logs in a temporary
//! directory, and the logs' tails in the failure message when something goes wrong.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    reason = "shared by several test binaries, each using a different subset"
)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use devstack::{Binaries, Profile, Stack, StackConfig};

/// The emulator, forwarder and replicator binaries (debug), built once per test process.
pub fn binaries() -> Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES
        .get_or_init(|| Binaries::build(Profile::Debug).expect("the stack's binaries build"))
        .clone()
}

/// A stack with test-sized settings, adjusted by `customize`.
pub async fn start(customize: impl FnOnce(&mut StackConfig)) -> Stack {
    static N: AtomicU32 = AtomicU32::new(0);
    let binaries = tokio::task::spawn_blocking(binaries)
        .await
        .expect("binaries build");
    let python = tokio::task::spawn_blocking(|| testkit::python().to_owned())
        .await
        .expect("the venv is ready");
    let run_dir = std::env::temp_dir().join(format!(
        "oss2s3-devstack-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut config = StackConfig::new(binaries, python, run_dir);
    config.function_instances = 1;
    config.function_timeout = Duration::from_secs(20);
    config.visibility_timeout = Duration::from_mins(2);
    customize(&mut config);
    Stack::start(config).await.expect("the stack starts")
}

/// Waits up to `timeout` for `done`, failing with every log's tail.
pub async fn wait_for<F, Fut>(stack: &Stack, what: &str, timeout: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; ESM {:?}\n{}",
            stack.esm_counts(),
            stack.log_tails(25)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A versioned replication task for `key` in the stack's source bucket.
pub fn task(stack: &Stack, key: &str) -> String {
    serde_json::json!({
        "version": 1,
        "op": "put",
        "source": {
            "region": stack.config().oss_region,
            "bucket": stack.config().oss_bucket,
            "key": key,
        },
    })
    .to_string()
}

/// The bytes of `key` in the destination bucket, if it exists.
pub async fn s3_bytes(stack: &Stack, key: &str) -> Option<Vec<u8>> {
    let output = stack
        .s3()
        .get_object()
        .bucket(&stack.config().dst_bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(output.body.collect().await.ok()?.into_bytes().to_vec())
}
