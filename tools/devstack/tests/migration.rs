//! `oss2s3 sync --queue` on the whole local stack: the job's shards go to the replicator's
//! queue, the replicator (a real function binary under the Lambda Runtime API and the event
//! source mapping emulation) lists and diffs each key range and enqueues the copies, and
//! `--wait` verifies the result and writes the report into S3.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use transfer::oss::{PutBody, PutObjectOptions};

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_job_copies_what_the_destination_lacks_through_the_replicator() {
    let stack = common::start(|config| {
        config.function_instances = 2;
        config.function_timeout = Duration::from_secs(30);
    })
    .await;
    // Existing data: written while the trigger is off, so no event announces it.
    stack.set_trigger_enabled(false).await.expect("trigger off");
    let oss = stack.oss_client().expect("an OSS client");
    let bucket = stack.config().oss_bucket.clone();
    let mut want = BTreeMap::new();
    let starts = ["0", "9", "A", "Z", "_", "a", "m", "z", "~", "é", "文", "😀"];
    for i in 0..120usize {
        let key = format!("{}/{i:03} a b+c%20", starts[i % starts.len()]);
        let body = format!("object {i} ").repeat(1 + i % 50).into_bytes();
        oss.put_object(
            &bucket,
            &key,
            PutBody::from(body.clone()),
            &PutObjectOptions::default(),
        )
        .await
        .expect("uploaded");
        want.insert(key, body);
    }
    let dst = stack.config().dst_bucket.clone();
    let args: Vec<String> = [
        "sync",
        &format!("oss://{bucket}/"),
        &format!("s3://{dst}/"),
        "--queue",
        stack.queue_url(),
        "--wait",
        "--shards",
        "6",
        "--report",
        &format!("s3://{dst}/jobs/"),
        "--job-id",
        "q1",
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let output = devstack::demo::oss2s3(&stack, &args)
        .await
        .expect("oss2s3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        stack.log_tails(30)
    );
    assert!(stdout.contains("6 shards sent"), "{stdout}");
    assert!(
        stdout.contains("120 objects listed, 120 copy tasks"),
        "{stdout}"
    );

    for (key, body) in &want {
        assert_eq!(
            common::s3_bytes(&stack, key).await.as_ref(),
            Some(body),
            "{key}"
        );
    }
    // Every shard wrote its summary, and the report went to S3.
    for index in 0..6 {
        let key = transfer::job::shard_summary_key("jobs/", "q1", index);
        let summary = common::s3_bytes(&stack, &key)
            .await
            .expect("a shard summary");
        let summary: serde_json::Value = serde_json::from_slice(&summary).expect("JSON");
        assert_eq!(summary["index"], index);
    }
    let summary = common::s3_bytes(&stack, "jobs/q1/summary.json")
        .await
        .expect("the report");
    let summary: serde_json::Value = serde_json::from_slice(&summary).expect("JSON");
    assert_eq!(summary["objects"]["completed"], 120, "{summary:#}");
    assert_eq!(summary["ok"], true);
    assert!(
        common::s3_bytes(&stack, "jobs/q1/report.html")
            .await
            .is_some()
    );

    // A second queued job finds nothing to copy.
    let mut again = args.clone();
    let id = again.iter().position(|a| a == "q1").expect("the job ID");
    again[id] = "q2".to_owned();
    let output = devstack::demo::oss2s3(&stack, &again)
        .await
        .expect("oss2s3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 copy tasks"), "{stdout}");
    assert_eq!(
        stack.queue_depth(stack.dlq_url()).await.expect("the DLQ"),
        (0, 0)
    );
    stack.shutdown().await;
}
