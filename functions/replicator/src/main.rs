//! `replicator`: the Lambda function (`provided.al2023`; packaged as `bootstrap` by
//! `cargo lambda build`). It reads the configuration, builds the clients once and hands each
//! SQS batch to [`replicator::BatchProcessor`].

use std::process::ExitCode;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::atomic::AtomicBool;

use replicator::{Config, build_processor, invocation_deadline};
use transfer::env::Env;
use transfer::logging::LogWriter;

fn main() -> ExitCode {
    let config = match Config::from_env(&Env::process()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("replicator: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    config.log.init(LogWriter::Stdout);
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
    let fallback = config.function_timeout;
    let processor = build_processor(config).await?;
    let processor = &processor;
    let warned = &AtomicBool::new(false);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = invocation_deadline(event.context.deadline, fallback, warned);
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            processor.process(&event.payload, Some(deadline)).await,
        )
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}
