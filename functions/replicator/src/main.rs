//! `replicator`: the Lambda function (`provided.al2023`; packaged as `bootstrap` by
//! `cargo lambda build`). It reads the configuration, builds the clients once and hands each
//! SQS batch to [`replicator::BatchProcessor`].

// The Lambda handler's future nests the batch's, which nests the engine's in either direction:
// deeper than the compiler's default layout depth of 128 in some feature combinations.
#![recursion_limit = "256"]

use std::process::ExitCode;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use replicator::{Config, build_processor, invocation_deadline};
use transfer::env::Env;
use transfer::logging::LogWriter;
use transfer::replicate::StopSignal;

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
    let stop = StopSignal::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    tokio::spawn(stop_on_sigterm(stop.clone(), in_flight.clone()));
    let processor = build_processor(config, stop).await?;
    let processor = &processor;
    let warned = &AtomicBool::new(false);
    let in_flight = &in_flight;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        in_flight.fetch_add(1, Ordering::SeqCst);
        let deadline = invocation_deadline(event.context.deadline, fallback, warned);
        let response = processor.process(&event.payload, Some(deadline)).await;
        in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}

/// On SIGTERM (Lambda sends it at shutdown when an extension is registered; so do process
/// managers before a restart), the invocation in flight wraps up: multipart copies hand their
/// parts on to continuations, messages not started are re-enqueued. Once it has answered, the
/// process exits.
async fn stop_on_sigterm(stop: StopSignal, in_flight: Arc<AtomicUsize>) {
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    terminate.recv().await;
    tracing::warn!("SIGTERM: finishing the invocation in flight, then exiting");
    stop.stop();
    // Exit as soon as no invocation runs (a new one, started meanwhile, only re-enqueues its
    // messages and is quick), leaving the runtime client a moment to post the last answer.
    let mut idle_since: Option<std::time::Instant> = None;
    loop {
        if in_flight.load(Ordering::SeqCst) == 0 {
            let since = *idle_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= Duration::from_millis(50) {
                break;
            }
        } else {
            idle_since = None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::process::exit(0);
}
