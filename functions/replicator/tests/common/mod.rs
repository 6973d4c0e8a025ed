//! The test stack shared by the replicator's integration tests: the OSS emulator in-process as
//! the source, and moto for S3 (destination), SQS (task queue, DLQ) and Secrets Manager (OSS
//! keys), each test with its own bucket, queues and secret.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use bytes::Bytes;
use oss_emulator::{Emulator, EmulatorConfig, PutOptions};
use serde_json::Value;
use testkit::MotoServer;
use transfer::batch::{BatchProcessor, BatchSettings, Queues, SourceCredentials};
use transfer::credentials::SecretCredentials;
use transfer::metrics::{Metrics, MetricsSink};
use transfer::oss::{AddressingStyle, Credentials, Endpoint, OssClient, OssConfig, RetryPolicy};
use transfer::replicate::{CopySettings, Replicator, RestoreSettings};
use transfer::store::S3Store;

pub const SRC: &str = "src-bucket";
pub const REGION: &str = "cn-hangzhou";
pub const ACCOUNT: &str = "123456789012";
pub const MIB: usize = 1024 * 1024;

pub type Engine = Replicator<OssClient, S3Store>;

/// A fixture from `events/`, as Lambda would deliver it.
pub fn fixture(name: &str) -> SqsEvent {
    let path = testkit::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is an SqsEvent")
}

pub fn ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The source emulator, and a destination bucket, task queue, DLQ and secret on moto.
pub struct Stack {
    pub emulator: Emulator,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub dst: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub secret_id: String,
    pub metrics: Arc<Mutex<Vec<String>>>,
    pub moto: Arc<MotoServer>,
}

impl Stack {
    pub async fn start() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let key_a = Credentials::new("key-a", "secret-a");
        let emulator = Emulator::start(
            EmulatorConfig::new()
                .region(REGION)
                .bucket(SRC)
                .credentials(key_a),
        )
        .await
        .expect("emulator starts");
        let moto = tokio::task::spawn_blocking(MotoServer::shared)
            .await
            .expect("moto starts");
        let sdk = moto.sdk_config().await;
        let s3 = S3Store::from_sdk_config(&sdk).client().clone();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let dst = format!("dst-{n}");
        s3.create_bucket()
            .bucket(&dst)
            .send()
            .await
            .expect("bucket");
        let queue_name = format!("tasks-{n}");
        let queue_url = create_queue(&sqs, &queue_name).await;
        let dlq_url = create_queue(&sqs, &format!("dlq-{n}")).await;
        let secret_id = format!("oss2s3/oss-{n}");
        secrets
            .create_secret()
            .name(&secret_id)
            .secret_string(secret_json("key-a", "secret-a"))
            .send()
            .await
            .expect("secret");
        Self {
            emulator,
            s3,
            sqs,
            secrets,
            dst,
            queue_url,
            queue_arn: format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"),
            dlq_url,
            secret_id,
            metrics: Arc::default(),
            moto,
        }
    }

    pub fn copy_settings(&self) -> CopySettings {
        CopySettings {
            part_size: 5 * MIB as u64,
            multipart_threshold: 5 * MIB as u64,
            part_concurrency: 2,
            restore: Some(RestoreSettings {
                retry_after: Duration::from_secs(600),
                ..RestoreSettings::default()
            }),
            ..CopySettings::new(&self.dst)
        }
    }

    pub fn batch_settings(&self) -> BatchSettings {
        BatchSettings {
            legacy_bucket: Some(SRC.to_owned()),
            ..BatchSettings::new(REGION)
        }
    }

    /// An OSS client on the emulator that starts without keys, as the function does.
    pub fn oss(&self) -> OssClient {
        let config = OssConfig::new(REGION)
            .with_endpoint(Endpoint::Custom(self.emulator.endpoint()))
            .with_addressing(AddressingStyle::PathStyle)
            .with_retry(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(40),
            });
        OssClient::new(config, Credentials::new("not-loaded-yet", "")).expect("oss client")
    }

    pub fn processor(&self) -> BatchProcessor<Engine> {
        self.processor_with(
            self.copy_settings(),
            self.batch_settings(),
            Some(self.dlq_url.clone()),
        )
    }

    pub fn processor_with(
        &self,
        copy: CopySettings,
        batch: BatchSettings,
        dlq_url: Option<String>,
    ) -> BatchProcessor<Engine> {
        let oss = self.oss();
        let sink = S3Store::new(self.s3.clone());
        let engine = Replicator::new(oss.clone(), sink, copy);
        let secret = SecretCredentials::new(self.secrets.clone(), &self.secret_id);
        BatchProcessor::new(
            engine,
            Queues::new(self.sqs.clone(), &self.queue_url, dlq_url),
            batch,
            self.metrics(),
        )
        .with_source_credentials(SourceCredentials::new(secret, oss))
    }

    pub fn metrics(&self) -> Metrics {
        Metrics::new(
            "oss2s3-test",
            "replicator-test",
            MetricsSink::Memory(self.metrics.clone()),
        )
    }

    /// The EMF documents written so far.
    pub fn emf(&self) -> Vec<Value> {
        self.metrics
            .lock()
            .expect("metrics")
            .iter()
            .map(|line| serde_json::from_str(line).expect("EMF line is JSON"))
            .collect()
    }

    pub async fn seed(&self, key: &str, body: &[u8]) {
        self.seed_with(key, body, PutOptions::default()).await;
    }

    pub async fn seed_with(&self, key: &str, body: &[u8], options: PutOptions) {
        self.emulator
            .put_object_direct(SRC, key, Bytes::copy_from_slice(body), options)
            .await
            .expect("seeded");
    }

    pub async fn dst_bytes(&self, key: &str) -> Option<Vec<u8>> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.dst)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(object.body.collect().await.ok()?.into_bytes().to_vec())
    }

    pub async fn dst_keys(&self) -> Vec<String> {
        let listing = self
            .s3
            .list_objects_v2()
            .bucket(&self.dst)
            .send()
            .await
            .expect("list");
        listing
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    pub async fn pending_uploads(&self) -> usize {
        self.s3
            .list_multipart_uploads()
            .bucket(&self.dst)
            .send()
            .await
            .expect("list uploads")
            .uploads()
            .len()
    }

    /// Every message on `queue_url` now (received once, with attributes).
    pub async fn receive(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        for _ in 0..5 {
            let output = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = output.messages().to_vec();
            if messages.is_empty() {
                break;
            }
            all.extend(messages);
        }
        all
    }

    /// Lambda's event for messages received from the task queue.
    pub fn event_from(&self, messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).expect("event")
    }

    /// Sends `body` to the task queue and receives it back, as the event source mapping would.
    pub async fn enqueue_and_receive(&self, body: &str) -> SqsEvent {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("sent");
        let messages = self.receive(&self.queue_url).await;
        assert_eq!(messages.len(), 1);
        self.event_from(&messages)
    }
}

pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned()
}

pub fn secret_json(ak: &str, sk: &str) -> String {
    serde_json::json!({"access_key_id": ak, "secret_access_key": sk}).to_string()
}

pub fn attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> String {
    message
        .message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .unwrap_or_default()
        .to_owned()
}

/// The EMF documents that carry `metric`.
pub fn with_metric<'a>(docs: &'a [Value], metric: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d.get(metric).is_some()).collect()
}
