//! The replicator's batch behaviour end to end on real sockets: the OSS emulator in-process as
//! the source, moto for S3 (destination), SQS (continuations, DLQ) and Secrets Manager (OSS
//! keys). Events come from the `events/sqs-*.json` fixtures that `cargo lambda invoke` uses.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use oss_emulator::{Fault, FaultRule, PutOptions};
use replicator::queues::{DLQ_ATTR_KIND, DLQ_ATTR_MESSAGE_ID, DLQ_ATTR_REASON};
use replicator::{BatchProcessor, BatchSettings, Metrics, MetricsSink, Queues, TaskReplicator};
use tokio::time::Instant;
use transfer::oss::Credentials;
use transfer::replicate::{CopySettings, Delivery, Outcome, ReplicationError, SkipReason};
use transfer::task::ReplicationTask;

use common::*;

// ---------------------------------------------------------------------------------------------
// Message formats

#[tokio::test]
async fn copies_object_named_by_legacy_message() {
    let stack = Stack::start().await;
    let body = data(1024, 1);
    stack.seed("photos/2024/legacy dog.jpg", &body).await;
    let response = stack
        .processor()
        .process(&fixture("sqs-legacy.json"), None)
        .await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(
        stack.dst_bytes("photos/2024/legacy dog.jpg").await,
        Some(body)
    );
}

#[tokio::test]
async fn legacy_message_without_configured_bucket_is_dead_lettered() {
    let stack = Stack::start().await;
    let batch = BatchSettings::new(REGION);
    let processor = stack.processor_with(stack.copy_settings(), batch, Some(stack.dlq_url.clone()));
    let response = processor.process(&fixture("sqs-legacy.json"), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    let dead = stack.receive(&stack.dlq_url).await;
    assert_eq!(dead.len(), 1);
    assert!(
        attribute(&dead[0], DLQ_ATTR_REASON).contains("OSS_BUCKET"),
        "{dead:?}"
    );
}

#[tokio::test]
async fn copies_object_named_by_raw_oss_event() {
    let stack = Stack::start().await;
    let body = data(2048, 2);
    stack.seed("photos/2024/raw-event.jpg", &body).await;
    let response = stack
        .processor()
        .process(&fixture("sqs-oss-event.json"), None)
        .await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(
        stack.dst_bytes("photos/2024/raw-event.jpg").await,
        Some(body)
    );
}

#[tokio::test]
async fn copies_object_named_by_versioned_task() {
    let stack = Stack::start().await;
    let body = data(29203, 3);
    stack.seed("photos/2024/cat.jpg", &body).await;
    let event = fixture("sqs-task.json");
    let processor = stack.processor();
    let response = processor.process(&event, None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.dst_bytes("photos/2024/cat.jpg").await, Some(body));

    // Redelivery is harmless: skipped by the destination marker, without reading the body.
    stack.services.emulator.reset_stats();
    let mut redelivered = event.clone();
    redelivered.records[0]
        .attributes
        .insert("ApproximateReceiveCount".to_owned(), "2".to_owned());
    let response = processor.process(&redelivered, None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.services.emulator.stats().count("GetObject"), 0);
    // One metrics line per invocation: the copy, then the skip and its reason.
    let docs = stack.emf();
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert_eq!(docs[0]["ObjectsReplicated"], 1.0);
    assert_eq!(docs[1]["ObjectsSkipped"], 1.0);
    assert_eq!(docs[1]["SkippedReasons"]["AlreadyReplicated"], 1);
}

#[tokio::test]
async fn malformed_messages_go_to_the_dlq_with_their_reason() {
    let stack = Stack::start().await;
    let event = fixture("sqs-malformed.json");
    let response = stack.processor().process(&event, None).await;
    assert!(
        ids(&response).is_empty(),
        "permanent failures are not retried: {response:?}"
    );
    let dead = stack.receive(&stack.dlq_url).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    let by_id: HashMap<String, &aws_sdk_sqs::types::Message> = dead
        .iter()
        .map(|m| (attribute(m, DLQ_ATTR_MESSAGE_ID), m))
        .collect();
    let not_json = by_id[event.records[0].message_id.as_deref().unwrap()];
    assert_eq!(attribute(not_json, DLQ_ATTR_KIND), "Malformed");
    assert!(attribute(not_json, DLQ_ATTR_REASON).contains("not JSON"));
    assert_eq!(not_json.body(), event.records[0].body.as_deref());
    let unknown = by_id[event.records[1].message_id.as_deref().unwrap()];
    assert!(
        attribute(unknown, DLQ_ATTR_REASON).contains("unrecognised message"),
        "{unknown:?}"
    );
    let failures = with_metric(&stack.emf(), "Failures")
        .into_iter()
        .filter(|d| d["Kind"] == "Malformed")
        .count();
    assert_eq!(failures, 2);
}

#[tokio::test]
async fn mixed_batch_copies_good_messages_and_dead_letters_the_bad_one() {
    let stack = Stack::start().await;
    stack.seed("photos/2024/cat.jpg", &data(100, 4)).await;
    stack
        .seed("photos/2024/legacy dog.jpg", &data(200, 5))
        .await;
    stack.seed("photos/2024/raw-event.jpg", &data(300, 6)).await;
    let response = stack
        .processor()
        .process(&fixture("sqs-batch.json"), None)
        .await;
    assert!(ids(&response).is_empty(), "{response:?}");
    let mut keys = stack.dst_keys().await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "photos/2024/cat.jpg",
            "photos/2024/legacy dog.jpg",
            "photos/2024/raw-event.jpg"
        ]
    );
    assert_eq!(stack.receive(&stack.dlq_url).await.len(), 1);

    // Every metric line is an EMF document: `_aws` declares each metric, whose value is a
    // root member (a number, or an array of one value per object), and every dimension is a
    // root member too. The failure has its own line; the copies share one.
    let docs = stack.emf();
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert!((metric_sum(&docs, "ObjectsReplicated") - 3.0).abs() < f64::EPSILON);
    assert_eq!(with_metric(&docs, "Failures").len(), 1);
    let bytes = metric_sum(&docs, "BytesReplicated");
    assert!((bytes - 600.0).abs() < f64::EPSILON, "{bytes}");
    assert_eq!(metric_values(&docs, "CopyDurationMs").len(), 3);
    for doc in &docs {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some(), "{doc}");
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "oss2s3-test");
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            let value = &doc[name];
            let numbers = value.as_array().map_or(value.is_number(), |values| {
                (1..=100).contains(&values.len()) && values.iter().all(serde_json::Value::is_number)
            });
            assert!(numbers, "{name} missing or malformed in {doc}");
        }
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(doc[dimension.as_str().unwrap()].is_string(), "{doc}");
        }
    }
    let latency = metric_values(&docs, "ReplicationLatencyMs");
    assert_eq!(latency.len(), 2, "task and OSS event carry an event time");
}

// ---------------------------------------------------------------------------------------------
// Failures

#[tokio::test]
async fn retryable_failure_is_reported_for_redelivery() {
    let stack = Stack::start().await;
    stack.seed("photos/2024/cat.jpg", &data(10, 7)).await;
    stack.services.emulator.set_faults(vec![FaultRule::new(
        "HeadObject",
        Fault::Error {
            status: 503,
            code: "ServiceUnavailable".into(),
            qos_delay_ms: None,
        },
    )]);
    let event = fixture("sqs-task.json");
    let response = stack.processor().process(&event, None).await;
    assert_eq!(
        ids(&response),
        [event.records[0].message_id.clone().unwrap()]
    );
    assert!(stack.receive(&stack.dlq_url).await.is_empty());
    assert!(stack.dst_keys().await.is_empty());
    let failures = with_metric(&stack.emf(), "Failures")
        .into_iter()
        .map(|d| d["Kind"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(failures, ["SourceUnavailable"]);
}

#[tokio::test]
async fn permanent_failure_is_retried_when_the_dlq_cannot_take_it() {
    let stack = Stack::start().await;
    let missing_dlq = format!("{}-missing", stack.dlq_url);
    let processor = stack.processor_with(
        stack.copy_settings(),
        stack.batch_settings(),
        Some(missing_dlq),
    );
    let event = fixture("sqs-malformed.json");
    let response = processor.process(&event, None).await;
    assert_eq!(
        ids(&response).len(),
        2,
        "left to the redrive policy: {response:?}"
    );
}

#[tokio::test]
async fn archived_object_is_retried_after_the_restore_delay() {
    let stack = Stack::start().await;
    stack
        .services
        .emulator
        .set_restore_delay(Duration::from_hours(1));
    let options = PutOptions {
        storage_class: Some("Archive".into()),
        ..PutOptions::default()
    };
    stack
        .seed_with("photos/2024/cat.jpg", &data(10, 8), options)
        .await;
    let body = fixture("sqs-task.json").records[0].body.clone().unwrap();
    let event = stack.enqueue_and_receive(&body).await;
    let response = stack.processor().process(&event, None).await;
    assert_eq!(ids(&response).len(), 1, "{response:?}");
    assert_eq!(stack.services.emulator.stats().count("RestoreObject"), 1);
    // The queue's visibility timeout is 1 s; the restore delay (600 s) keeps it hidden longer.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        stack.receive(&stack.queue_url).await.is_empty(),
        "message is hidden while the restore runs"
    );
}

// ---------------------------------------------------------------------------------------------
// Credentials

#[tokio::test]
async fn rotated_secret_is_reread_after_a_credential_error() {
    let stack = Stack::start().await;
    stack.seed("photos/2024/cat.jpg", &data(100, 9)).await;
    let processor = stack.processor();
    let response = processor.process(&fixture("sqs-task.json"), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");

    // Rotate: the secret gets key B and OSS stops accepting key A.
    stack
        .services
        .secrets
        .put_secret_value()
        .secret_id(&stack.secret_id)
        .secret_string(secret_json("key-b", "secret-b"))
        .send()
        .await
        .expect("rotated");
    stack
        .services
        .emulator
        .set_credentials(vec![Credentials::new("key-b", "secret-b")]);
    stack
        .seed("photos/2024/legacy dog.jpg", &data(50, 10))
        .await;
    stack.services.emulator.reset_stats();

    let response = processor.process(&fixture("sqs-legacy.json"), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(
        stack.dst_bytes("photos/2024/legacy dog.jpg").await,
        Some(data(50, 10))
    );
    assert_eq!(
        stack.services.emulator.stats().count("HeadObject"),
        2,
        "one rejected HEAD with key A, one accepted with key B"
    );
}

#[tokio::test]
async fn unreadable_secret_retries_every_message_without_calling_oss() {
    let stack = Stack::start().await;
    stack
        .services
        .secrets
        .put_secret_value()
        .secret_id(&stack.secret_id)
        .secret_string("{\"access_key_id\": \"key-a\"}")
        .send()
        .await
        .expect("broken");
    // Three messages name objects; the fourth is not JSON.
    let event = fixture("sqs-batch.json");
    let response = stack.processor().process(&event, None).await;
    let mut retried = ids(&response);
    retried.sort();
    let mut expected: Vec<String> = event.records[..3]
        .iter()
        .map(|r| r.message_id.clone().unwrap_or_default())
        .collect();
    expected.sort();
    assert_eq!(retried, expected, "every object message is retried");
    assert_eq!(
        stack.services.emulator.stats().total_requests(),
        0,
        "nothing was signed"
    );
    let dead = stack.receive(&stack.dlq_url).await;
    assert_eq!(dead.len(), 1, "only the malformed message is dead-lettered");
    assert_eq!(attribute(&dead[0], DLQ_ATTR_KIND), "Malformed");
    let kinds: Vec<_> = with_metric(&stack.emf(), "Failures")
        .into_iter()
        .map(|d| d["Kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    let credentials = kinds.iter().filter(|k| *k == "Credentials").count();
    assert_eq!(credentials, 3, "{kinds:?}");
}

// ---------------------------------------------------------------------------------------------
// Continuations

#[tokio::test]
async fn continuation_completes_the_object_in_a_second_invocation() {
    let stack = Stack::start().await;
    let body = data(3 * 5 * MIB + 7, 11);
    stack.seed("photos/2024/cat.jpg", &body).await;
    // The engine stops 6 s before the deadline (the batch's hard stop is at 5 s).
    let copy = CopySettings {
        deadline_margin: Duration::from_hours(1),
        stop_margin: Duration::from_secs(6),
        ..stack.copy_settings()
    };
    let batch = BatchSettings {
        start_margin: Duration::ZERO,
        ..stack.batch_settings()
    };
    let processor = stack.processor_with(copy, batch, Some(stack.dlq_url.clone()));

    // First invocation: the engine's stop is (nearly) here, so the copy hands on what it has
    // in a new message on QUEUE_URL; the original is done.
    let first = fixture("sqs-task.json");
    let deadline = Instant::now() + Duration::from_millis(6050);
    let response = processor.process(&first, Some(deadline)).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert!(stack.dst_keys().await.is_empty());
    assert_eq!(stack.pending_uploads().await, 1);
    let queued = stack.receive(&stack.queue_url).await;
    assert_eq!(queued.len(), 1);
    let task: ReplicationTask = serde_json::from_str(queued[0].body().unwrap()).expect("task");
    assert!(task.continuation.is_some());
    assert!((metric_sum(&stack.emf(), "Continuations") - 1.0).abs() < f64::EPSILON);

    // Second invocation: the continuation, fed back, completes the object.
    let response = processor.process(&stack.event_from(&queued), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.dst_bytes("photos/2024/cat.jpg").await, Some(body));
    assert_eq!(stack.pending_uploads().await, 0);
    assert!(stack.receive(&stack.queue_url).await.is_empty());
}

#[tokio::test]
async fn message_is_requeued_without_a_receive_when_the_deadline_is_too_near_to_start() {
    let stack = Stack::start().await;
    stack.seed("photos/2024/cat.jpg", &data(10, 12)).await;
    let body = fixture("sqs-task.json").records[0].body.clone().unwrap();
    let event = stack.enqueue_and_receive(&body).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let response = stack.processor().process(&event, Some(deadline)).await;
    assert!(
        ids(&response).is_empty(),
        "not reported as a failure, which would count a receive: {response:?}"
    );
    assert_eq!(stack.services.emulator.stats().total_requests(), 0);
    let queued = stack.receive(&stack.queue_url).await;
    assert_eq!(queued.len(), 1, "a copy waits on the queue");
    assert_eq!(queued[0].body(), Some(body.as_str()));
    let receives = queued[0]
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .cloned();
    assert_eq!(receives.as_deref(), Some("1"), "the copy starts afresh");
    assert!((metric_sum(&stack.emf(), "Requeued") - 1.0).abs() < f64::EPSILON);

    // The copy, delivered to a later invocation, replicates.
    let response = stack
        .processor()
        .process(&stack.event_from(&queued), None)
        .await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(
        stack.dst_bytes("photos/2024/cat.jpg").await,
        Some(data(10, 12))
    );
}

#[tokio::test]
async fn a_retryable_failure_on_the_last_receive_is_dead_lettered_with_its_reason() {
    let stack = Stack::start().await;
    stack.seed("photos/2024/cat.jpg", &data(10, 7)).await;
    stack.services.emulator.set_faults(vec![FaultRule::new(
        "HeadObject",
        Fault::Error {
            status: 503,
            code: "ServiceUnavailable".into(),
            qos_delay_ms: None,
        },
    )]);
    let batch = BatchSettings {
        max_receive_count: Some(1),
        ..stack.batch_settings()
    };
    let processor = stack.processor_with(stack.copy_settings(), batch, Some(stack.dlq_url.clone()));
    let response = processor.process(&fixture("sqs-task.json"), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    let dead = stack.receive(&stack.dlq_url).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(attribute(&dead[0], DLQ_ATTR_KIND), "SourceUnavailable");
    let reason = attribute(&dead[0], DLQ_ATTR_REASON);
    assert!(reason.starts_with("gave up after 1 receives"), "{reason}");
}

#[tokio::test]
async fn a_task_for_a_bucket_that_is_not_configured_is_dead_lettered() {
    let stack = Stack::start().await;
    let body = fixture("sqs-task.json").records[0]
        .body
        .clone()
        .unwrap()
        .replace("\"src-bucket\"", "\"someone-elses-bucket\"");
    let event = stack.enqueue_and_receive(&body).await;
    let response = stack.processor().process(&event, None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.services.emulator.stats().total_requests(), 0);
    let dead = stack.receive(&stack.dlq_url).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(attribute(&dead[0], DLQ_ATTR_KIND), "BucketNotAllowed");
    let reason = attribute(&dead[0], DLQ_ATTR_REASON);
    assert!(
        reason.contains("someone-elses-bucket") && reason.contains(SRC),
        "{reason}"
    );
}

#[tokio::test]
async fn a_message_of_several_events_is_fanned_out_one_task_per_message() {
    let stack = Stack::start().await;
    stack.seed("fan/one.txt", &data(100, 1)).await;
    stack.seed("fan/two.txt", &data(200, 2)).await;
    let event = |key: &str| {
        serde_json::json!({
            "eventName": "ObjectCreated:PutObject",
            "eventSource": "acs:oss",
            "eventTime": "2024-05-01T08:00:00.000Z",
            "eventVersion": "1.0",
            "oss": {"bucket": {"name": SRC}, "object": {"key": key, "size": 1}},
            "region": REGION,
        })
    };
    let body = serde_json::json!({"events": [event("fan/one.txt"), event("fan/two.txt")]});
    let received = stack.enqueue_and_receive(&body.to_string()).await;
    let response = stack.processor().process(&received, None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert!(
        stack.dst_keys().await.is_empty(),
        "nothing ran in the fanned-out message"
    );
    let queued = stack.receive(&stack.queue_url).await;
    assert_eq!(queued.len(), 2);
    let mut keys: Vec<String> = queued
        .iter()
        .map(|m| {
            let task: ReplicationTask = serde_json::from_str(m.body().unwrap()).expect("a task");
            task.source.key
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["fan/one.txt", "fan/two.txt"]);
    let response = stack
        .processor()
        .process(&stack.event_from(&queued), None)
        .await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.dst_keys().await, ["fan/one.txt", "fan/two.txt"]);
}

/// A delete task for `key`, as the forwarder writes it.
fn delete_body(key: &str) -> String {
    serde_json::json!({
        "version": 1, "op": "delete",
        "source": {"region": REGION, "bucket": SRC, "key": key},
        "event_name": "ObjectRemoved:DeleteObject",
    })
    .to_string()
}

#[tokio::test]
async fn deletes_wait_for_the_delay_and_are_cancelled_by_a_reappearing_source() {
    let stack = Stack::start().await;
    stack.seed("del/gone.txt", &data(10, 1)).await;
    stack.seed("del/back.txt", &data(10, 2)).await;
    let copy = CopySettings {
        replicate_deletes: true,
        ..stack.copy_settings()
    };
    let batch = BatchSettings {
        delete_delay: Duration::from_secs(2),
        ..stack.batch_settings()
    };
    let processor = stack.processor_with(copy, batch, Some(stack.dlq_url.clone()));
    for key in ["del/gone.txt", "del/back.txt"] {
        stack
            .services
            .sqs
            .send_message()
            .queue_url(&stack.queue_url)
            .message_body(task_body(key))
            .send()
            .await
            .expect("sent");
        let received = stack.receive(&stack.queue_url).await;
        assert!(ids(&processor.process(&stack.event_from(&received), None).await).is_empty());
        stack.ack(&received).await;
    }
    stack
        .services
        .emulator
        .delete_object_direct(SRC, "del/gone.txt");
    stack
        .services
        .emulator
        .delete_object_direct(SRC, "del/back.txt");
    let sent = std::time::Instant::now();
    for key in ["del/gone.txt", "del/back.txt"] {
        stack
            .services
            .sqs
            .send_message()
            .queue_url(&stack.queue_url)
            .message_body(delete_body(key))
            .send()
            .await
            .expect("sent");
    }
    let first = stack.receive(&stack.queue_url).await;
    assert_eq!(first.len(), 2);
    let response = processor.process(&stack.event_from(&first), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    stack.ack(&first).await;
    assert_eq!(
        stack.dst_keys().await.len(),
        2,
        "nothing is deleted before the delay"
    );
    assert!((metric_sum(&stack.emf(), "DeletesDeferred") - 2.0).abs() < f64::EPSILON);

    // The user restores one object meanwhile.
    stack.seed("del/back.txt", &data(10, 2)).await;
    let mut due = Vec::new();
    while due.len() < 2 && sent.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        due.extend(stack.receive(&stack.queue_url).await);
    }
    assert_eq!(due.len(), 2, "the deferred deletes come back");
    assert!(
        sent.elapsed() >= Duration::from_secs(2),
        "not before the delay"
    );
    let response = processor.process(&stack.event_from(&due), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(
        stack.dst_keys().await,
        ["del/back.txt"],
        "the reappeared object stays"
    );
    assert!(
        stack.receive(&stack.queue_url).await.is_empty(),
        "nothing deferred again"
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// An engine stand-in that records how many tasks run at once.
#[derive(Default)]
struct CountingEngine {
    running: AtomicUsize,
    peak: AtomicUsize,
    done: AtomicUsize,
}

impl TaskReplicator for CountingEngine {
    async fn replicate(
        &self,
        _task: &ReplicationTask,
        _delivery: Delivery,
        _deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::Skipped(SkipReason::AlreadyReplicated))
    }

    async fn abandon_continuation(&self, _task: &ReplicationTask) {}
}

/// An engine stand-in that records the order tasks start and end in, fails tasks whose key
/// contains `fail`, panics on keys containing `boom`, and hangs on keys containing `hang`.
#[derive(Default)]
struct ScriptedEngine {
    log: std::sync::Mutex<Vec<String>>,
}

impl TaskReplicator for ScriptedEngine {
    async fn replicate(
        &self,
        task: &ReplicationTask,
        _delivery: Delivery,
        _deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        let key = task.source.key.clone();
        self.log.lock().expect("log").push(format!("start {key}"));
        let pause = if key.contains("hang") { 600_000 } else { 20 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        assert!(!key.contains("boom"), "the engine blew up on {key}");
        self.log.lock().expect("log").push(format!("end {key}"));
        if key.contains("fail") {
            return Err(ReplicationError::new(
                transfer::replicate::FailureKind::DestinationUnavailable,
                "scripted failure",
            ));
        }
        Ok(Outcome::Skipped(SkipReason::AlreadyReplicated))
    }

    async fn abandon_continuation(&self, _task: &ReplicationTask) {}
}

/// A batch of task messages for `keys`, each `(message id, key, FIFO group)`.
fn batch_of(messages: &[(&str, &str, Option<&str>)]) -> SqsEvent {
    let template = fixture("sqs-task.json").records[0].clone();
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|(id, key, group)| {
            let mut record = template.clone();
            record.message_id = Some((*id).to_owned());
            record.body = Some(task_body(key));
            if let Some(group) = group {
                record
                    .attributes
                    .insert("MessageGroupId".to_owned(), (*group).to_owned());
            }
            record
        })
        .collect();
    event
}

/// A processor around `engine` whose queues are never reached.
fn offline_processor<R: TaskReplicator>(engine: R, metrics: MetricsSink) -> BatchProcessor<R> {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let queues = Queues::new(aws_sdk_sqs::Client::new(&sdk), "http://127.0.0.1:9/q", None);
    let settings = BatchSettings {
        message_concurrency: 4,
        ..BatchSettings::new(REGION)
    };
    BatchProcessor::new(engine, queues, settings, Metrics::new("ns", "fn", metrics))
}

#[tokio::test]
async fn fifo_groups_run_in_order_and_stop_at_the_first_failure() {
    let processor = offline_processor(ScriptedEngine::default(), MetricsSink::Disabled);
    let event = batch_of(&[
        ("a1", "a/1", Some("g-a")),
        ("b1", "b/1", Some("g-b")),
        ("a2", "a/2-fail", Some("g-a")),
        ("a3", "a/3", Some("g-a")),
        ("b2", "b/2", Some("g-b")),
    ]);
    let response = processor.process(&event, None).await;
    let mut failed = ids(&response);
    failed.sort();
    assert_eq!(
        failed,
        ["a2", "a3"],
        "a3 waits for a2, to keep the group's order"
    );
    let log = processor.replicator().log.lock().unwrap().clone();
    let group_a: Vec<&String> = log.iter().filter(|l| l.contains(" a/")).collect();
    assert_eq!(
        group_a,
        ["start a/1", "end a/1", "start a/2-fail", "end a/2-fail"],
        "one at a time, in order, and a/3 never starts: {log:?}"
    );
    let group_b: Vec<&String> = log.iter().filter(|l| l.contains(" b/")).collect();
    assert_eq!(group_b, ["start b/1", "end b/1", "start b/2", "end b/2"]);
    let first_a = log.iter().position(|l| l == "start a/1").unwrap();
    let first_b = log.iter().position(|l| l == "start b/1").unwrap();
    assert!(
        first_a.max(first_b)
            < log
                .iter()
                .position(|l| l == "end a/1")
                .unwrap()
                .max(log.iter().position(|l| l == "end b/1").unwrap()),
        "different groups run at once: {log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_still_running_near_the_deadline_is_cancelled_and_retried() {
    let processor = offline_processor(ScriptedEngine::default(), MetricsSink::Disabled);
    let event = batch_of(&[("stuck", "hang/1", None)]);
    let started = Instant::now();
    // Past the start margin (30 s by default) would not start it: use a deadline that allows
    // the start, then hangs past the 5 s hard stop.
    let deadline = started + Duration::from_secs(36);
    let response = processor.process(&event, Some(deadline)).await;
    let took = started.elapsed();
    assert_eq!(ids(&response), ["stuck"], "retried");
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(33),
        "answered 5 s before the deadline, not at it: {took:?}"
    );
}

#[tokio::test]
async fn a_panic_fails_only_its_own_message() {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let processor = offline_processor(
        ScriptedEngine::default(),
        MetricsSink::Memory(lines.clone()),
    );
    let event = batch_of(&[
        ("ok1", "ok/1", None),
        ("boom", "boom/1", None),
        ("ok2", "ok/2", None),
    ]);
    let response = processor.process(&event, None).await;
    assert_eq!(ids(&response), ["boom"]);
    let log = processor.replicator().log.lock().unwrap().clone();
    assert!(
        log.contains(&"end ok/1".to_owned()) && log.contains(&"end ok/2".to_owned()),
        "{log:?}"
    );
    let panics = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"Kind\":\"Panic\""))
        .count();
    assert_eq!(panics, 1);
}

#[tokio::test]
async fn message_concurrency_bounds_messages_in_flight() {
    let template = fixture("sqs-task.json").records[0].clone();
    let records: Vec<SqsMessage> = (0..10)
        .map(|i| {
            let mut record = template.clone();
            record.message_id = Some(format!("m-{i}"));
            record
        })
        .collect();
    let mut event = SqsEvent::default();
    event.records = records;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let queues = Queues::new(aws_sdk_sqs::Client::new(&sdk), "http://127.0.0.1:9/q", None);
    let settings = BatchSettings {
        message_concurrency: 3,
        ..BatchSettings::new(REGION)
    };
    let metrics = Metrics::new("ns", "fn", MetricsSink::Disabled);
    let processor = BatchProcessor::new(CountingEngine::default(), queues, settings, metrics);
    let response = processor.process(&event, None).await;
    assert!(ids(&response).is_empty());
    let engine = processor.replicator();
    assert_eq!(engine.done.load(Ordering::SeqCst), 10);
    assert_eq!(engine.peak.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------------------------------------
// A 10,000-part continuation

#[tokio::test]
async fn a_continuation_of_ten_thousand_parts_travels_through_the_queue() {
    use aws_sdk_sqs::types::QueueAttributeName;
    use transfer::store::memory::{Fault, FaultRule, MemoryConfig};
    use transfer::store::{MemoryStore, PartLimits, WriteRequest};

    const PARTS: usize = 10_000;
    const PART: usize = 1024;
    let services = testkit::Services::start(oss_emulator::EmulatorConfig::new()).await;
    let src = MemoryStore::new(MemoryConfig::default()).with_bucket(SRC);
    let dst = MemoryStore::new(MemoryConfig {
        limits: PartLimits {
            min_part_size: PART as u64,
            ..PartLimits::S3
        },
        ..MemoryConfig::default()
    })
    .with_bucket("dst");
    let body = data(PARTS * PART, 4);
    src.seed(SRC, "huge.bin", body.clone(), &WriteRequest::default());
    let settings = CopySettings {
        part_size: PART as u64,
        multipart_threshold: PART as u64,
        ..CopySettings::new("dst")
    };
    let engine = transfer::replicate::Replicator::new(src, dst.clone(), settings);
    // The destination fails after 9,990 parts, so the copy hands on a continuation that
    // records 9,990 parts.
    dst.inject(
        FaultRule::on(
            "UploadPart",
            Fault::Fail(transfer::store::StoreErrorKind::Unavailable),
        )
        .after(9_990),
    );
    let task = ReplicationTask::put(transfer::task::SourceObject {
        region: REGION.into(),
        bucket: SRC.into(),
        key: "huge.bin".into(),
        size: None,
        etag: None,
    });
    let Outcome::Continue { task: next, .. } =
        engine.replicate(&task, None).await.expect("continues")
    else {
        panic!("expected a continuation");
    };
    let json = next.to_json();
    assert!(
        json.len() > 256 * 1024,
        "beyond the old 256 KiB limit: {} bytes",
        json.len()
    );

    // The queue takes it with the 1 MiB the template sets, as the function sends it.
    let (queue_url, _) = services
        .create_queue(
            "huge",
            &[(QueueAttributeName::MaximumMessageSize, "1048576".to_owned())],
        )
        .await;
    let sender = transfer::sqs::SqsSender::new(services.sqs.clone(), &queue_url);
    let summary = sender.send_tasks(std::slice::from_ref(&next)).await;
    assert!(summary.all_sent(), "{summary:?}");
    let received = services
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("received");
    let message = received.messages().first().expect("the continuation");
    let resumed: ReplicationTask =
        serde_json::from_str(message.body().expect("a body")).expect("a task");
    dst.clear_faults();
    dst.reset_counters();
    let outcome = engine.replicate(&resumed, None).await.expect("completed");
    assert!(
        matches!(outcome, Outcome::Copied { parts: 10_000, .. }),
        "{outcome:?}"
    );
    assert!(dst.object_bytes("dst", "huge.bin").map(|b| b.to_vec()) == Some(body));
    assert_eq!(
        dst.request_count("UploadPart"),
        10,
        "only the parts not recorded were uploaded again"
    );
}
