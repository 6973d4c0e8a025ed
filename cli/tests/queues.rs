//! `oss2s3 status` and `oss2s3 dlq` against the emulator and moto's SQS and S3.

mod common;

use aws_sdk_sqs::types::MessageAttributeValue;
use common::Stack;
use transfer::sqs::{DLQ_ATTR_KIND, DLQ_ATTR_REASON};
use transfer::task::{ReplicationTask, SourceObject};

fn code(output: &std::process::Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn task_body(key: &str) -> String {
    ReplicationTask::put(SourceObject {
        region: "cn-hangzhou".to_owned(),
        bucket: common::SRC.to_owned(),
        key: key.to_owned(),
        size: Some(3),
        etag: None,
    })
    .to_json()
}

async fn dead_letter(stack: &Stack, dlq: &str, body: &str, kind: Option<(&str, &str)>) {
    let mut send = stack
        .services
        .sqs
        .send_message()
        .queue_url(dlq)
        .message_body(body);
    if let Some((kind, reason)) = kind {
        let value = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .expect("an attribute")
        };
        send = send
            .message_attributes(DLQ_ATTR_KIND, value(kind))
            .message_attributes(DLQ_ATTR_REASON, value(reason));
    }
    send.send().await.expect("sent to the DLQ");
}

async fn bodies(stack: &Stack, queue: &str) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        let got = stack
            .services
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("received");
        if got.messages().is_empty() {
            all.sort();
            return all;
        }
        all.extend(
            got.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_tells_replicated_stale_missing_and_failed_objects_apart() {
    let stack = Stack::start().await;
    let (queue, _) = stack.services.create_queue("status-tasks", &[]).await;
    let (dlq, _) = stack.services.create_queue("status-dlq", &[]).await;
    stack.seed("dir/a b+c.txt", b"one").await;
    let sync = stack
        .run(&[
            "sync",
            &Stack::src_url(),
            &stack.dst_url(),
            "--job-id",
            "s",
            "--quiet",
        ])
        .await;
    assert_eq!(code(&sync), 0);
    let object = format!("oss://{}/dir/a b+c.txt", common::SRC);
    let dst = stack.dst_url();

    let replicated = stack.run(&["status", &object, &dst, "--json"]).await;
    assert_eq!(code(&replicated), 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&replicated)).expect("JSON");
    assert_eq!(json["status"]["state"], "replicated");

    stack.seed("dir/a b+c.txt", b"two").await;
    let stale = stack.run(&["status", &object, &dst]).await;
    assert_eq!(code(&stale), 1);
    assert!(stdout(&stale).contains("Stale"), "{}", stdout(&stale));

    stack.seed("dir/lost.txt", b"new").await;
    dead_letter(
        &stack,
        &dlq,
        &task_body("dir/lost.txt"),
        Some(("SourceUnavailable", "OSS answered 503 four times")),
    )
    .await;
    stack
        .services
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(task_body("other"))
        .send()
        .await
        .expect("sent");
    let lost = format!("oss://{}/dir/lost.txt", common::SRC);
    let missing = stack
        .run(&["status", &lost, &dst, "--dlq", &dlq, "--queue", &queue])
        .await;
    assert_eq!(code(&missing), 1);
    let text = stdout(&missing);
    assert!(text.contains("Missing"), "{text}");
    assert!(
        text.contains("SourceUnavailable: OSS answered 503 four times"),
        "{text}"
    );
    assert!(text.contains("holds 1 messages"), "{text}");
    // Looking did not take the message out of the DLQ.
    assert_eq!(bodies(&stack, &dlq).await, vec![task_body("dir/lost.txt")]);

    let prefixed = stack
        .run(&[
            "status",
            &object,
            &format!("s3://{}/backup/", stack.dst),
            "--src-prefix",
            "dir/",
        ])
        .await;
    assert_eq!(code(&prefixed), 1);
    assert!(
        stdout(&prefixed).contains("backup/a b+c.txt"),
        "{}",
        stdout(&prefixed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dlq_list_shows_kinds_and_redrive_moves_what_it_chooses_without_losing_any() {
    let stack = Stack::start().await;
    let (queue, _) = stack.services.create_queue("redrive-tasks", &[]).await;
    let (dlq, _) = stack.services.create_queue("redrive-dlq", &[]).await;
    let throttled = task_body("t/1");
    let invalid = task_body("k/2");
    let moved_by_sqs = task_body("r/3");
    dead_letter(&stack, &dlq, &throttled, Some(("Throttled", "slow down"))).await;
    dead_letter(&stack, &dlq, &invalid, Some(("InvalidKey", "too long"))).await;
    dead_letter(&stack, &dlq, &moved_by_sqs, None).await;
    dead_letter(
        &stack,
        &dlq,
        "not json at all",
        Some(("Malformed", "not JSON")),
    )
    .await;

    let list = stack.run(&["dlq", "list", "--dlq", &dlq, "--json"]).await;
    assert_eq!(code(&list), 0);
    let letters: Vec<serde_json::Value> = stdout(&list)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(letters.len(), 4);
    let by_kind = |kind: &str| {
        letters
            .iter()
            .find(|l| l["kind"] == kind)
            .cloned()
            .expect(kind)
    };
    assert_eq!(by_kind("Throttled")["key"], "t/1");
    assert_eq!(by_kind("InvalidKey")["reason"], "too long");
    assert!(
        by_kind("redrive-policy")["reason"]
            .as_str()
            .expect("a reason")
            .contains("maxReceiveCount")
    );
    assert!(by_kind("Malformed")["key"].is_null());

    let dry = stack
        .run(&[
            "dlq",
            "redrive",
            "--dlq",
            &dlq,
            "--queue",
            &queue,
            "--kind",
            "Throttled",
            "--dry-run",
        ])
        .await;
    assert_eq!(code(&dry), 0);
    assert!(
        bodies(&stack, &queue).await.is_empty(),
        "a dry run moves nothing"
    );

    let some = stack
        .run(&[
            "dlq",
            "redrive",
            "--dlq",
            &dlq,
            "--queue",
            &queue,
            "--kind",
            "Throttled",
            "--kind",
            "redrive-policy",
        ])
        .await;
    assert_eq!(code(&some), 0);
    assert!(stdout(&some).contains("moved 2 of 4"), "{}", stdout(&some));
    let mut want = vec![throttled, moved_by_sqs];
    want.sort();
    assert_eq!(bodies(&stack, &queue).await, want);
    let mut left = vec![invalid, "not json at all".to_owned()];
    left.sort();
    assert_eq!(
        bodies(&stack, &dlq).await,
        left,
        "the others stay in the DLQ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_queued_job_fails_when_its_shards_are_in_the_dlq() {
    let stack = Stack::start().await;
    let (dlq, dlq_arn) = stack.services.create_queue("stuck-dlq", &[]).await;
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3});
    let (queue, _) = stack
        .services
        .create_queue(
            "stuck-tasks",
            &[(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                policy.to_string(),
            )],
        )
        .await;
    // Job "stuck" had two shards; one finished, the other was moved to the DLQ by the redrive
    // policy (no reason attributes), and the task queue is empty.
    let request: transfer::job::JobRequest = serde_json::from_value(serde_json::json!({
        "job_id": "stuck", "source_bucket": common::SRC,
        "report_bucket": stack.dst, "report_prefix": "jobs/",
    }))
    .expect("a job");
    let shards = request.shards_over(&["m".to_owned()]);
    let summary = shards[0].summary(transfer::job::ShardCounts::default(), String::new());
    stack
        .services
        .s3
        .put_object()
        .bucket(&stack.dst)
        .key(shards[0].summary_key())
        .body(serde_json::to_vec(&summary).expect("JSON").into())
        .send()
        .await
        .expect("a summary");
    dead_letter(&stack, &dlq, &shards[1].to_json(), None).await;
    let job = oss2s3_cli::queued::QueuedJob {
        request,
        queue_url: queue.clone(),
        report: format!("s3://{}/jobs/", stack.dst)
            .parse()
            .expect("a location"),
    };
    let error = oss2s3_cli::queued::wait(
        &stack.services.s3_store(),
        &stack.services.sqs,
        &job,
        2,
        std::time::Duration::from_millis(100),
        std::time::Duration::from_mins(1),
        true,
    )
    .await
    .expect_err("the job cannot finish");
    let text = format!("{error:#}");
    assert!(text.contains("job stuck cannot finish"), "{text}");
    assert!(
        text.contains("job stuck shard 00001 (redrive-policy"),
        "{text}"
    );
    assert!(text.contains("oss2s3 dlq redrive"), "{text}");
    // Looking did not take the shard out of the DLQ.
    assert_eq!(bodies(&stack, &dlq).await, vec![shards[1].to_json()]);
}
