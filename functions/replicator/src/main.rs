//! `replicator`: the Lambda function (`provided.al2023`; packaged as `bootstrap` by
//! `cargo lambda build`).
//!
//! Drains the replication queue: each SQS batch goes to [`transfer::batch::BatchProcessor`],
//! which copies the named OSS objects into S3 and answers with `batchItemFailures`. This file only
//! reads the configuration, builds the clients once and hands each event over.

mod config;

use std::process::ExitCode;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use transfer::batch::{BatchProcessor, Queues, SourceCredentials, deadline_from_epoch_ms};
use transfer::credentials::SecretCredentials;
use transfer::metrics::{Metrics, MetricsSink};
use transfer::oss::{Credentials, OssClient};
use transfer::replicate::Replicator;
use transfer::store::{S3Store, s3_config};

use crate::config::{Config, LogConfig};

/// The engine as this function runs it.
type Engine = Replicator<OssClient, S3Store>;

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("replicator: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("replicator: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "replicator stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let processor = build_processor(config).await?;
    let processor = &processor;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            processor.process(&event.payload, Some(deadline)).await,
        )
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}

/// Builds every client once: S3, SQS and Secrets Manager from the standard AWS configuration
/// (`AWS_ENDPOINT_URL_S3`, `_SQS`, `_SECRETS_MANAGER` override endpoints), OSS from `config`.
async fn build_processor(config: Config) -> anyhow::Result<BatchProcessor<Engine>> {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let mut s3 = s3_config(&aws);
    if config.s3_path_style {
        s3 = s3.to_builder().force_path_style(true).build();
    }
    let sink = S3Store::new(aws_sdk_s3::Client::from_conf(s3));
    // The real keys come from the secret before the first message is processed.
    let placeholder = Credentials::new("not-loaded-yet", "");
    let oss = OssClient::new(config.oss.clone(), placeholder)?;
    let secret = SecretCredentials::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &config.oss_secret_id,
    );
    let queues = Queues::new(
        aws_sdk_sqs::Client::new(&aws),
        &config.queue_url,
        config.dlq_url.clone(),
    );
    let metrics = Metrics::new(
        &config.metrics_namespace,
        &config.function_name,
        MetricsSink::Stdout,
    );
    tracing::info!(
        oss_region = %config.oss.region,
        dst_bucket = %config.copy.dst_bucket,
        queue_url = %config.queue_url,
        dlq = config.dlq_url.is_some(),
        message_concurrency = config.batch.message_concurrency,
        part_concurrency = config.copy.part_concurrency,
        part_size = config.copy.part_size,
        "replicator configured"
    );
    if config.dlq_url.is_none() {
        tracing::warn!(
            "DLQ_URL is not set: permanent failures are left to the queue's redrive policy"
        );
    }
    let engine = Replicator::new(oss.clone(), sink, config.copy);
    Ok(BatchProcessor::new(engine, queues, config.batch, metrics)
        .with_source_credentials(SourceCredentials::new(secret, oss)))
}

fn init_tracing(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(false);
    if log.json {
        builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .init();
    } else {
        builder.init();
    }
}
