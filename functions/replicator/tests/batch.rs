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
use transfer::replicate::{CopySettings, Outcome, ReplicationError, SkipReason};
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
    let response = processor.process(&event, None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.services.emulator.stats().count("GetObject"), 0);
    let docs = stack.emf();
    assert_eq!(with_metric(&docs, "ObjectsReplicated").len(), 1);
    let skipped = with_metric(&docs, "ObjectsSkipped");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["Reason"], "AlreadyReplicated");
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
    // root member, and every dimension is a root member too.
    let docs = stack.emf();
    assert_eq!(with_metric(&docs, "ObjectsReplicated").len(), 3);
    assert_eq!(with_metric(&docs, "Failures").len(), 1);
    let bytes: f64 = with_metric(&docs, "BytesReplicated")
        .iter()
        .map(|d| d["BytesReplicated"].as_f64().unwrap())
        .sum();
    assert!((bytes - 600.0).abs() < f64::EPSILON, "{bytes}");
    for doc in &docs {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some(), "{doc}");
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "oss2s3-test");
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} missing in {doc}");
        }
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(doc[dimension.as_str().unwrap()].is_string(), "{doc}");
        }
    }
    let latency = with_metric(&docs, "ReplicationLatencyMs");
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
    let copy = CopySettings {
        deadline_margin: Duration::from_hours(1),
        ..stack.copy_settings()
    };
    let batch = BatchSettings {
        start_margin: Duration::ZERO,
        ..stack.batch_settings()
    };
    let processor = stack.processor_with(copy, batch, Some(stack.dlq_url.clone()));

    // First invocation: the deadline is (nearly) here, so one part is copied and the rest
    // continues in a new message on QUEUE_URL; the original is done.
    let first = fixture("sqs-task.json");
    let deadline = Instant::now() + Duration::from_millis(50);
    let response = processor.process(&first, Some(deadline)).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert!(stack.dst_keys().await.is_empty());
    assert_eq!(stack.pending_uploads().await, 1);
    let queued = stack.receive(&stack.queue_url).await;
    assert_eq!(queued.len(), 1);
    let task: ReplicationTask = serde_json::from_str(queued[0].body().unwrap()).expect("task");
    assert!(task.continuation.is_some());
    assert_eq!(with_metric(&stack.emf(), "Continuations").len(), 1);

    // Second invocation: the continuation, fed back, completes the object.
    let response = processor.process(&stack.event_from(&queued), None).await;
    assert!(ids(&response).is_empty(), "{response:?}");
    assert_eq!(stack.dst_bytes("photos/2024/cat.jpg").await, Some(body));
    assert_eq!(stack.pending_uploads().await, 0);
    assert!(stack.receive(&stack.queue_url).await.is_empty());
}

#[tokio::test]
async fn message_is_released_untouched_when_the_deadline_is_too_near_to_start() {
    let stack = Stack::start().await;
    stack.seed("photos/2024/cat.jpg", &data(10, 12)).await;
    let body = fixture("sqs-task.json").records[0].body.clone().unwrap();
    let event = stack.enqueue_and_receive(&body).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let response = stack.processor().process(&event, Some(deadline)).await;
    assert_eq!(ids(&response).len(), 1);
    assert_eq!(stack.services.emulator.stats().total_requests(), 0);
    assert_eq!(
        stack.receive(&stack.queue_url).await.len(),
        1,
        "visible again at once"
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
