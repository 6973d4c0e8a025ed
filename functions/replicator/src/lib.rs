//! The replicator function's library: everything but the Lambda runtime loop, so it is tested
//! without one.
//!
//! - [`batch`]: one SQS batch → parse, replicate, settle each message (`batchItemFailures`);
//! - [`queues`]: continuations, the DLQ with reasons, visibility changes;
//! - [`metrics`]: CloudWatch Embedded Metric Format lines;
//! - [`config`]: the environment, read once;
//! - [`build_processor`]: the clients, built once from the configuration, and the [`Engine`] in
//!   its direction (`DIRECTION`: `oss-to-s3`, the default, or `s3-to-oss`).
//!
//! The copy itself is `transfer::replicate`; the OSS keys come from Secrets Manager through
//! `transfer::secrets`, refreshed inside the OSS client when OSS rejects them.

pub mod batch;
pub mod config;
mod disposition;
pub mod metrics;
pub mod queues;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use transfer::migrate::{JobQueue, JobStep};
use transfer::oss::OssClient;
use transfer::replicate::{Delivery, Outcome, ReplicationError, Replicator, StopSignal};
use transfer::s3::{S3Store, s3_config};
use transfer::secrets::SecretsManagerCredentials;
use transfer::task::ReplicationTask;

pub use batch::{BatchProcessor, BatchSettings, JobWork, TaskReplicator, invocation_deadline};
pub use config::{Config, Direction};
pub use metrics::{Metrics, MetricsSink};
pub use queues::Queues;

/// The engine as the function runs it, in the configured direction.
pub enum Engine {
    /// OSS to S3.
    OssToS3(Replicator<OssClient, S3Store>),
    /// S3 to OSS.
    S3ToOss(Replicator<S3Store, OssClient>),
}

impl TaskReplicator for Engine {
    async fn replicate(
        &self,
        task: &ReplicationTask,
        delivery: Delivery,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        match self {
            Self::OssToS3(engine) => {
                TaskReplicator::replicate(engine, task, delivery, deadline).await
            }
            Self::S3ToOss(engine) => {
                TaskReplicator::replicate(engine, task, delivery, deadline).await
            }
        }
    }

    async fn abandon_continuation(&self, task: &ReplicationTask) {
        match self {
            Self::OssToS3(engine) => engine.abandon_continuation(task).await,
            Self::S3ToOss(engine) => engine.abandon_continuation(task).await,
        }
    }

    async fn run_job<Q: JobQueue>(
        &self,
        work: &JobWork,
        stop_at: std::time::Instant,
        queue: &Q,
    ) -> Result<JobStep, String> {
        match self {
            Self::OssToS3(engine) => engine.run_job(work, stop_at, queue).await,
            Self::S3ToOss(engine) => engine.run_job(work, stop_at, queue).await,
        }
    }
}

/// Builds every client once: S3, SQS and Secrets Manager from the standard AWS configuration
/// (`AWS_ENDPOINT_URL_S3`, `_SQS`, `_SECRETS_MANAGER` override endpoints), OSS from `config`
/// with its keys from the secret, and the engine in `config.direction`. Raising `stop` makes
/// the processor and its engine wrap up.
pub async fn build_processor(
    config: Config,
    stop: StopSignal,
) -> anyhow::Result<BatchProcessor<Engine>> {
    // Every AWS call is bounded: an attempt, and the whole call with its retries. S3 moves
    // parts (up to 5 GiB for the largest objects) and gets longer limits; the copy engine also
    // cancels whatever is in flight at its stop margin before the deadline.
    // SQS and Secrets Manager calls are small: 10 s an attempt, 20 s with retries, so that
    // settling messages near the deadline cannot outlast the invocation.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(20))
        .build();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let s3_timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_mins(5))
        .operation_timeout(Duration::from_mins(10))
        .build();
    let mut s3 = s3_config(&aws)
        .to_builder()
        .timeout_config(s3_timeouts)
        .build();
    if config.s3_path_style {
        s3 = s3.to_builder().force_path_style(true).build();
    }
    let s3 = S3Store::new(aws_sdk_s3::Client::from_conf(s3)).with_compat(config.s3_compat);
    let secret = SecretsManagerCredentials::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &config.oss_secret_id,
    );
    let oss = OssClient::with_provider(config.oss.clone(), Arc::new(secret))?;
    let queues = Queues::new(
        aws_sdk_sqs::Client::new(&aws),
        &config.queue_url,
        config.dlq_url.clone(),
    );
    let metrics = Metrics::new(
        &config.metrics_namespace,
        &config.function_name,
        MetricsSink::Stdout,
    )
    .with_level(&config.metrics_level);
    tracing::info!(
        direction = config.direction.as_str(),
        oss_region = %config.oss.region,
        dst_bucket = %config.copy.dst_bucket,
        queue_url = %config.queue_url,
        dlq = config.dlq_url.is_some(),
        message_concurrency = config.batch.message_concurrency,
        part_concurrency = config.copy.part_concurrency,
        part_size = config.copy.part_size,
        memory_budget = config.copy.memory_budget,
        source_buckets = %config.copy.source_buckets.join(","),
        delete_delay_s = config.batch.delete_delay.as_secs(),
        "replicator configured"
    );
    if config.dlq_url.is_none() {
        tracing::warn!(
            "DLQ_URL is not set: permanent failures are left to the queue's redrive policy"
        );
    }
    let engine = match config.direction {
        Direction::OssToS3 => {
            Engine::OssToS3(Replicator::new(oss, s3, config.copy).with_stop(stop.clone()))
        }
        Direction::S3ToOss => {
            Engine::S3ToOss(Replicator::new(s3, oss, config.copy).with_stop(stop.clone()))
        }
    };
    Ok(BatchProcessor::new(engine, queues, config.batch, metrics).with_stop(stop))
}
