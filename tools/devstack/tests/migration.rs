//! `oss2s3 sync --queue` on the whole local stack: the job's shards go to the replicator's
//! queue, the replicator (a real function binary under the Lambda Runtime API and the event
//! source mapping emulation) lists and diffs each key range and enqueues the copies, and
//! `--wait` verifies the result and writes the report into S3.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use transfer::oss::{PutBody, PutObjectOptions};

/// Writes `body` to `key` in the source.
async fn upload(oss: &transfer::oss::OssClient, bucket: &str, key: &str, body: &[u8]) {
    oss.put_object(
        bucket,
        key,
        PutBody::from(body.to_vec()),
        &PutObjectOptions::default(),
    )
    .await
    .expect("uploaded");
}

/// A stack of two function instances that replicate deletes, with the OSS trigger off (objects
/// written now are existing data that no event announces); an OSS client, the source bucket and the destination bucket.
async fn stack_without_events() -> (devstack::Stack, transfer::oss::OssClient, String, String) {
    let stack = common::start(|config| {
        config.function_instances = 2;
        config.function_timeout = Duration::from_secs(30);
        // Queued jobs with --delete run only on a replicator that makes deletes; here it
        // makes them at once rather than DELETE_DELAY_SECONDS (300) after the task was sent.
        for (name, value) in [("REPLICATE_DELETES", "true"), ("DELETE_DELAY_SECONDS", "0")] {
            config
                .function_env
                .push((name.to_owned(), value.to_owned()));
        }
    })
    .await;
    stack.set_trigger_enabled(false).await.expect("trigger off");
    let oss = stack.oss_client().expect("an OSS client");
    let bucket = stack.config().oss_bucket.clone();
    let dst = stack.config().dst_bucket.clone();
    (stack, oss, bucket, dst)
}

/// The first key of `want` that S3 does not hold with its bytes.
async fn not_replicated(
    stack: &devstack::Stack,
    want: &BTreeMap<String, Vec<u8>>,
) -> Option<String> {
    for (key, body) in want {
        if common::s3_bytes(stack, key).await.as_ref() != Some(body) {
            return Some(key.clone());
        }
    }
    None
}

/// Every object of `want` is in S3 with its bytes.
async fn assert_replicated(stack: &devstack::Stack, want: &BTreeMap<String, Vec<u8>>) {
    let missing = not_replicated(stack, want).await;
    assert!(missing.is_none(), "not in S3 with its bytes: {missing:?}");
}

/// The `summary.json` of job `id`'s report, under `jobs/` in the destination.
async fn report_summary(stack: &devstack::Stack, id: &str) -> serde_json::Value {
    let body = common::s3_bytes(stack, &format!("jobs/{id}/summary.json"))
        .await
        .expect("the report's summary.json");
    serde_json::from_slice(&body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_job_copies_what_the_destination_lacks_through_the_replicator() {
    // OSS2S3_QUEUED_OBJECTS=10000 runs the size (minutes on moto); the suite runs 120.
    let count: usize = std::env::var("OSS2S3_QUEUED_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let (stack, oss, bucket, dst) = stack_without_events().await;
    let mut want = BTreeMap::new();
    let starts = ["0", "9", "A", "Z", "_", "a", "m", "z", "~", "é", "文", "😀"];
    for i in 0..count {
        let key = format!("{}/{i:03} a b+c%20", starts[i % starts.len()]);
        let body = format!("object {i} ").repeat(1 + i % 50).into_bytes();
        upload(&oss, &bucket, &key, &body).await;
        want.insert(key, body);
    }
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
    // Listed: the objects, and whichever shard summaries (under jobs/, in the destination)
    // existed when the shard covering "jobs/" listed; copied: exactly the objects.
    assert!(
        stdout.contains(&format!(" objects listed, {count} copy tasks")),
        "{stdout}"
    );

    assert_replicated(&stack, &want).await;
    // Every shard wrote its summary, the last one listed.json, and the report went to S3.
    let store =
        transfer::s3::S3Store::new(stack.s3().clone()).with_compat(transfer::s3::S3Compat::Moto);
    let summaries = transfer::migrate::read_summaries(
        &store,
        &dst,
        &transfer::job::shards_prefix("jobs/", "q1"),
    )
    .await
    .expect("the shard summaries");
    assert_eq!(summaries.len(), 6, "{summaries:?}");
    let finished = transfer::migrate::finished_shards(
        &store,
        &dst,
        &transfer::job::shards_prefix("jobs/", "q1"),
    )
    .await
    .expect("the summaries' names");
    assert!(transfer::job::job_complete(6, &finished));
    let listed = common::s3_bytes(&stack, "jobs/q1/listed.json")
        .await
        .expect("listed.json");
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("JSON");
    assert_eq!(listed["counts"]["to_copy"], count, "{listed:#}");
    // The report says which objects this job copied: every one, from the shards' task lists.
    let summary = report_summary(&stack, "q1").await;
    assert_eq!(summary["command"], "sync", "{summary:#}");
    assert_eq!(summary["objects"]["completed"], count, "{summary:#}");
    assert_eq!(summary["statuses"]["copied"], count, "{summary:#}");
    assert_eq!(summary["ok"], true);
    assert!(
        common::s3_bytes(&stack, "jobs/q1/report.html")
            .await
            .is_some()
    );

    // Drift no event announces: every tenth object rewritten at the same size, and objects
    // another tool put into the destination. The next job copies exactly the rewritten ones.
    let mut changed = 0;
    for (i, (key, body)) in want.iter_mut().enumerate() {
        if i % 10 == 0 {
            *body = body.to_ascii_uppercase();
            upload(&oss, &bucket, key, body).await;
            changed += 1;
        }
    }
    for i in 0..3 {
        stack
            .s3()
            .put_object()
            .bucket(&dst)
            .key(format!("other-tool/{i}"))
            .body(b"not from oss2s3".to_vec().into())
            .send()
            .await
            .expect("an extra object");
    }
    let with_id = |id: &str| {
        let mut again = args.clone();
        let at = again.iter().position(|a| a == "q1").expect("the job ID");
        again[at] = id.to_owned();
        again
    };
    let output = devstack::demo::oss2s3(&stack, &with_id("q2"))
        .await
        .expect("oss2s3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(", {changed} copy tasks")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(", {} up to date", count - changed)),
        "{stdout}"
    );
    let summary = report_summary(&stack, "q2").await;
    assert_eq!(summary["statuses"]["copied"], changed, "{summary:#}");
    assert_eq!(
        summary["statuses"]["up_to_date"],
        count - changed,
        "{summary:#}"
    );
    assert_eq!(summary["objects"]["completed"], changed, "{summary:#}");
    assert_replicated(&stack, &want).await;
    // A third, with --delete after one source object is deleted, copies nothing and deletes
    // that one replica; the objects another tool wrote stay.
    let (gone, _) = want.pop_first().expect("an object");
    oss.delete_object(&bucket, &gone).await.expect("deleted");
    let mut q3 = with_id("q3");
    q3.push("--delete".to_owned());
    let output = devstack::demo::oss2s3(&stack, &q3)
        .await
        .expect("oss2s3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 copy tasks"), "{stdout}");
    assert!(stdout.contains(", 1 delete tasks"), "{stdout}");
    let summary = report_summary(&stack, "q3").await;
    assert_eq!(summary["objects"]["completed"], 1, "{summary:#}");
    assert_eq!(summary["statuses"]["deleted"], 1, "{summary:#}");
    assert_eq!(summary["statuses"]["up_to_date"], count - 1, "{summary:#}");
    assert_eq!(common::s3_bytes(&stack, &gone).await, None);
    assert!(
        common::s3_bytes(&stack, "other-tool/0").await.is_some(),
        "another tool's object kept"
    );
    assert_eq!(
        stack.queue_depth(stack.dlq_url()).await.expect("the DLQ"),
        (0, 0)
    );
    stack.shutdown().await;
}

/// The job message `template.yaml`'s reconcile schedule sends, as EventBridge Scheduler fills it
/// in: the `Input` line with the parameters and the scheduled time substituted.
fn scheduled_job_message(parameters: &[(&str, &str)], scheduled_time: &str) -> String {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"),
    )
    .expect("template.yaml");
    let line = template
        .lines()
        .find(|l| l.trim_start().starts_with("Input: !Sub '{\"job\""))
        .expect("the schedule's Input");
    let mut body = line
        .split_once('\'')
        .and_then(|(_, rest)| rest.strip_suffix('\''))
        .expect("a quoted !Sub string")
        .to_owned();
    for (name, value) in parameters {
        body = body.replace(&format!("${{{name}}}"), value);
    }
    assert!(!body.contains("${"), "every parameter substituted: {body}");
    body.replace("<aws.scheduler.scheduled-time>", scheduled_time)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_templates_scheduled_reconcile_copies_objects_whose_events_never_arrived() {
    // Events lost: the trigger is off while these are written.
    let (stack, oss, bucket, dst) = stack_without_events().await;
    let mut want = BTreeMap::new();
    for i in 0..40usize {
        let key = format!("lost/{i:02} é+%.bin");
        let body = format!("missed {i} ").repeat(1 + i).into_bytes();
        upload(&oss, &bucket, &key, &body).await;
        want.insert(key, body);
    }
    let body = scheduled_job_message(
        &[
            ("OssBucket", &bucket),
            ("SourcePrefix", ""),
            ("ReconcileShards", "4"),
            ("DestinationBucket", &dst),
            ("JobReportPrefix", "oss2s3-jobs/"),
        ],
        "2026-12-01T03:00:00Z",
    );
    stack
        .sqs()
        .send_message()
        .queue_url(stack.queue_url())
        .message_body(body)
        .send()
        .await
        .expect("the schedule's message is sent");
    // The replicator plans the job, lists its shards, and the last one writes listed.json.
    let listed_key = "oss2s3-jobs/reconcile-2026-12-01T03-00-00Z/listed.json";
    common::wait_for(
        &stack,
        "the reconcile's listed.json",
        Duration::from_mins(2),
        || async { common::s3_bytes(&stack, listed_key).await.is_some() },
    )
    .await;
    let listed = common::s3_bytes(&stack, listed_key)
        .await
        .expect("listed.json");
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("JSON");
    assert_eq!(listed["counts"]["to_copy"], 40, "{listed:#}");
    assert!(
        listed["shards"].as_u64().is_some_and(|n| n >= 2),
        "{listed:#}"
    );
    common::wait_for(
        &stack,
        "every missed object copied",
        Duration::from_mins(2),
        || async { not_replicated(&stack, &want).await.is_none() },
    )
    .await;
    assert_eq!(
        stack.queue_depth(stack.dlq_url()).await.expect("the DLQ"),
        (0, 0)
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_queued_job_spaces_its_copies_with_queue_delays() {
    let (stack, oss, bucket, dst) = stack_without_events().await;
    for i in 0..12 {
        upload(&oss, &bucket, &format!("paced/{i:02}"), &[b'p'; 100]).await;
    }
    let sync = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "sync",
            &format!("oss://{bucket}/paced/"),
            &format!("s3://{dst}/paced/"),
            "--queue",
            stack.queue_url(),
            "--report",
            &format!("s3://{dst}/jobs/"),
            "--quiet",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    // A timetable cannot be shared out; the error says what to use instead.
    let refused = devstack::demo::oss2s3(&stack, &sync(&["--bwlimit", "08:00,1M 19:00,off"]))
        .await
        .expect_err("a timetable is refused")
        .to_string();
    assert!(refused.contains("a queued job takes one rate"), "{refused}");

    // 4 copies a second: the twelve start over at least 2.75 s.
    let started = std::time::Instant::now();
    let output = devstack::demo::oss2s3(
        &stack,
        &sync(&[
            "--wait",
            "--shards",
            "1",
            "--tpslimit",
            "4",
            "--job-id",
            "paced",
        ]),
    )
    .await
    .expect("oss2s3 runs");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("12 copy tasks"), "{stdout}");
    assert!(elapsed >= Duration::from_millis(2_750), "{elapsed:?}");
    for i in 0..12 {
        assert_eq!(
            common::s3_bytes(&stack, &format!("paced/{i:02}")).await,
            Some(vec![b'p'; 100])
        );
    }
    stack.shutdown().await;
}
