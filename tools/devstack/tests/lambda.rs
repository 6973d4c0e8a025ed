//! The Lambda emulation with the real replicator binary: the event source mapping delivers
//! batches through the Runtime API, deletes exactly the messages that succeeded, and the queue's
//! redrive policy dead-letters a message that keeps failing.

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use transfer::oss::{PutBody, PutObjectOptions};

/// Every request for keys under `poison/` fails with a retryable 503, so their tasks keep failing.
const POISON: &str = r#"{"op":"*","key_prefix":"poison/","fault":{"kind":"error","status":503,"code":"ServiceUnavailable"}}"#;

async fn send_tasks(stack: &devstack::Stack, keys: &[&str]) {
    let entries = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("t{i}"))
                .message_body(common::task(stack, key))
                .build()
                .expect("a valid entry")
        })
        .collect();
    let output = stack
        .sqs()
        .send_message_batch()
        .queue_url(stack.queue_url())
        .set_entries(Some(entries))
        .send()
        .await
        .expect("SendMessageBatch");
    assert!(output.failed().is_empty(), "{:?}", output.failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_mapping_deletes_every_message_except_the_reported_failures() {
    let stack = common::start(|c| {
        c.max_receive_count = 5;
        c.emulator_faults = vec![POISON.into()];
    })
    .await;
    // Objects written without trigger events: the only tasks are the ones sent below.
    stack.set_trigger_enabled(false).await.unwrap();
    let oss = stack.oss_client().unwrap();
    let bucket = stack.config().oss_bucket.clone();
    let two = vec![7u8; 150_000];
    for (key, body) in [("good/one.txt", &b"first"[..]), ("good/two.bin", &two[..])] {
        oss.put_object(
            &bucket,
            key,
            PutBody::from(body.to_vec()),
            &PutObjectOptions::default(),
        )
        .await
        .unwrap();
    }

    send_tasks(&stack, &["good/one.txt", "poison/three", "good/two.bin"]).await;

    common::wait_for(
        &stack,
        "two deletions and one reported failure",
        Duration::from_mins(1),
        || async {
            let counts = stack.esm_counts();
            counts.deleted >= 2 && counts.items_failed >= 1
        },
    )
    .await;
    assert_eq!(
        common::s3_bytes(&stack, "good/one.txt").await.as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(
        common::s3_bytes(&stack, "good/two.bin").await,
        Some(vec![7u8; 150_000])
    );
    assert_eq!(common::s3_bytes(&stack, "poison/three").await, None);
    // The failed message was not deleted: it waits, invisible, for its visibility timeout.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stack.queue_depth(stack.queue_url()).await.unwrap(), (0, 1));
    assert_eq!(stack.queue_depth(stack.dlq_url()).await.unwrap(), (0, 0));
    let counts = stack.esm_counts();
    assert_eq!(
        (counts.received, counts.deleted, counts.items_failed),
        (3, 2, 1),
        "{counts:?}"
    );
    assert_eq!(counts.batches_failed, 0);
    stack.shutdown().await;
}

/// Sends a task for a poisoned key to a stack whose queue redrives after 2 receives and whose
/// function believes the limit is `function_limit`; returns the stack and what reached the DLQ.
async fn keep_failing(
    function_limit: &str,
) -> (devstack::Stack, aws_sdk_sqs::types::Message, String) {
    let limit = function_limit.to_owned();
    let stack = common::start(move |c| {
        c.max_receive_count = 2;
        c.visibility_timeout = Duration::from_secs(1);
        c.emulator_faults = vec![POISON.into()];
        c.function_env.push(("MAX_RECEIVE_COUNT".into(), limit));
    })
    .await;
    let body = common::task(&stack, "poison/forever.bin");
    stack
        .sqs()
        .send_message()
        .queue_url(stack.queue_url())
        .message_body(&body)
        .send()
        .await
        .expect("sent");

    let dead = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    common::wait_for(
        &stack,
        "the message in the DLQ",
        Duration::from_secs(90),
        || {
            let sqs = stack.sqs().clone();
            let dlq = stack.dlq_url().to_owned();
            let dead = dead.clone();
            async move {
                let output = sqs
                    .receive_message()
                    .queue_url(dlq)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send()
                    .await
                    .expect("received");
                let mut dead = dead.lock().expect("the list");
                dead.extend(output.messages.unwrap_or_default());
                !dead.is_empty()
            }
        },
    )
    .await;
    let dead = dead.lock().expect("the list").clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some(body.as_str()));
    let message = dead[0].clone();
    (stack, message, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_its_last_receive_a_failing_message_is_dead_lettered_with_its_reason() {
    let (stack, dead, _) = keep_failing("2").await;
    let attribute = |name: &str| {
        dead.message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
            .map(str::to_owned)
    };
    assert_eq!(
        attribute("oss2s3-failure-kind").as_deref(),
        Some("SourceUnavailable")
    );
    let reason = attribute("oss2s3-failure-reason").unwrap_or_default();
    assert!(reason.starts_with("gave up after 2 receives"), "{reason}");
    // The function sends the DLQ copy before it answers; then the message is deleted.
    common::wait_for(
        &stack,
        "the message deleted",
        Duration::from_secs(30),
        || async { stack.esm_counts().deleted >= 1 },
    )
    .await;
    let counts = stack.esm_counts();
    assert_eq!(
        counts.items_failed, 1,
        "failed once, then dead-lettered: {counts:?}"
    );
    assert_eq!(
        counts.deleted, 1,
        "the function settled it on the second receive"
    );
    assert_eq!(stack.queue_depth(stack.queue_url()).await.unwrap(), (0, 0));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redrive_policy_still_catches_what_the_function_does_not_dead_letter() {
    // The function believes in more receives than the queue allows.
    let (stack, dead, _) = keep_failing("99").await;
    // Moved by the queue's redrive policy, not sent by the function (which labels its DLQ
    // messages with the failure kind).
    assert!(
        dead.message_attributes()
            .is_none_or(|a| !a.contains_key("oss2s3-failure-kind")),
        "{:?}",
        dead.message_attributes()
    );
    let counts = stack.esm_counts();
    assert_eq!(
        counts.items_failed, 2,
        "failed exactly maxReceiveCount times: {counts:?}"
    );
    assert_eq!(counts.deleted, 0);
    assert_eq!(stack.queue_depth(stack.queue_url()).await.unwrap(), (0, 0));
    stack.shutdown().await;
}
