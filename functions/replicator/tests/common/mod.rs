//! The test stack shared by the replicator's integration tests: the OSS emulator in-process as
//! the source, and moto for S3 (destination), SQS (task queue, DLQ) and Secrets Manager (OSS
//! keys), each test with its own bucket, queues and secret.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    reason = "shared by several test binaries, each using a different subset"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use bytes::Bytes;
use oss_emulator::{EmulatorConfig, PutOptions};
use replicator::{BatchProcessor, BatchSettings, Engine, Metrics, MetricsSink, Queues};
use serde_json::Value;
use testkit::Services;
use transfer::oss::{Credentials, OssClient};
use transfer::replicate::{CopySettings, Replicator, RestoreSettings};
use transfer::secrets::SecretsManagerCredentials;

pub const SRC: &str = "src-bucket";
pub const REGION: &str = "cn-hangzhou";
pub const ACCOUNT: &str = "123456789012";
pub const MIB: usize = transfer::size::as_usize(transfer::size::MIB);

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
        .map(|i| (i.to_le_bytes()[0]).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The source emulator, and a destination bucket, task queue, DLQ and secret on moto.
pub struct Stack {
    pub services: Services,
    pub dst: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub secret_id: String,
    pub metrics: Arc<Mutex<Vec<String>>>,
}

impl Stack {
    pub async fn start() -> Self {
        let key_a = Credentials::new("key-a", "secret-a");
        let services =
            Services::start(EmulatorConfig::new().bucket(SRC).credentials(key_a.clone())).await;
        let visibility = [(QueueAttributeName::VisibilityTimeout, "1".to_owned())];
        let dst = services.create_bucket("dst").await;
        let (queue_url, queue_arn) = services.create_queue("tasks", &visibility).await;
        let (dlq_url, _) = services.create_queue("dlq", &visibility).await;
        let secret_id = services.create_secret("oss2s3-oss", &key_a).await;
        Self {
            services,
            dst,
            queue_url,
            queue_arn,
            dlq_url,
            secret_id,
            metrics: Arc::default(),
        }
    }

    pub fn copy_settings(&self) -> CopySettings {
        CopySettings {
            part_size: 5 * MIB as u64,
            multipart_threshold: 5 * MIB as u64,
            part_concurrency: 2,
            restore: Some(RestoreSettings {
                retry_after: Duration::from_mins(10),
                ..RestoreSettings::default()
            }),
            source_buckets: vec![SRC.to_owned()],
            ..CopySettings::new(&self.dst)
        }
    }

    #[expect(clippy::unused_self, reason = "read like the stack's other settings")]
    pub fn batch_settings(&self) -> BatchSettings {
        BatchSettings {
            legacy_bucket: Some(SRC.to_owned()),
            ..BatchSettings::new(REGION)
        }
    }

    /// The function's environment against this stack, as a deployment sets it (moto for
    /// every AWS service, the emulator for OSS).
    pub fn function_vars(&self) -> Vec<(String, String)> {
        let emulator = self.services.emulator.endpoint();
        let moto = self.services.moto.endpoint();
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", moto.as_str()),
            ("OSS_REGION", REGION),
            ("OSS_ENDPOINT", emulator.as_str()),
            ("OSS_BUCKET", SRC),
            ("OSS_SECRET_ID", self.secret_id.as_str()),
            ("DST_BUCKET", self.dst.as_str()),
            ("QUEUE_URL", self.queue_url.as_str()),
            ("DLQ_URL", self.dlq_url.as_str()),
            ("OSS2S3_S3_COMPAT", "moto"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// An OSS client on the emulator with its keys from the test's secret, as the function
    /// has.
    pub fn oss(&self) -> OssClient {
        let secret = SecretsManagerCredentials::new(self.services.secrets.clone(), &self.secret_id);
        OssClient::with_provider(self.services.oss_config(), Arc::new(secret)).expect("oss client")
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
        let engine = Engine::OssToS3(Replicator::new(self.oss(), self.services.s3_store(), copy));
        BatchProcessor::new(
            engine,
            Queues::new(self.services.sqs.clone(), &self.queue_url, dlq_url),
            batch,
            self.metrics(),
        )
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
        self.services
            .emulator
            .put_object_direct(SRC, key, Bytes::copy_from_slice(body), options)
            .await
            .expect("seeded");
    }

    pub async fn dst_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.services.s3_bytes(&self.dst, key).await
    }

    pub async fn dst_keys(&self) -> Vec<String> {
        self.services.s3_keys(&self.dst).await
    }

    pub async fn pending_uploads(&self) -> usize {
        self.services.s3_pending_uploads(&self.dst).await
    }

    /// Every message on `queue_url` now (received once, with attributes).
    pub async fn receive(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        for _ in 0..5 {
            let output = self
                .services
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

    /// Deletes received messages from the task queue, as the event source mapping does with
    /// the messages a batch did not report as failed.
    pub async fn ack(&self, messages: &[aws_sdk_sqs::types::Message]) {
        for message in messages {
            self.services
                .sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("deleted");
        }
    }

    /// Lambda's event for messages received from the task queue.
    pub fn event_from(&self, messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
        testkit::sqs_event::from_messages(messages, &self.queue_arn, "us-east-1")
    }

    /// Sends `body` to the task queue and receives it back, as the event source mapping would.
    pub async fn enqueue_and_receive(&self, body: &str) -> SqsEvent {
        self.services
            .sqs
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

/// A put task for `key` in the source bucket, as the forwarder writes it.
pub fn task_body(key: &str) -> String {
    serde_json::json!({
        "version": 1, "op": "put",
        "source": {"region": REGION, "bucket": SRC, "key": key},
        "event_name": "ObjectCreated:PutObject",
    })
    .to_string()
}

pub fn secret_json(ak: &str, sk: &str) -> String {
    testkit::services::credentials_json(&Credentials::new(ak, sk))
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

/// Every value of `metric` in `docs`: numbers as they are, arrays (EMF's several values of
/// one metric) element by element.
pub fn metric_values(docs: &[Value], metric: &str) -> Vec<f64> {
    docs.iter()
        .filter_map(|d| d.get(metric))
        .flat_map(|v| match v {
            Value::Array(values) => values.iter().filter_map(Value::as_f64).collect(),
            other => other.as_f64().into_iter().collect::<Vec<_>>(),
        })
        .collect()
}

/// The sum of every value of `metric` in `docs`, as CloudWatch's `Sum` statistic sees it.
pub fn metric_sum(docs: &[Value], metric: &str) -> f64 {
    metric_values(docs, metric).iter().sum()
}
