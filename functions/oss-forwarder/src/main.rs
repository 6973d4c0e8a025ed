//! `bootstrap`: the oss-forwarder function for Alibaba Function Compute's custom runtime.
//!
//! It reads the configuration, checks that AWS credentials exist, builds the SQS sender once
//! and serves [`oss_forwarder::fc::router`] on `0.0.0.0:$FC_CUSTOM_LISTEN_PORT` (then
//! `$FC_SERVER_PORT`, then 9000).

use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_sqs::config::ProvideCredentials;
use oss_forwarder::config::Config;
use oss_forwarder::fc::{AppState, router, shutdown_signal};
use transfer::env::Env;
use transfer::logging::LogWriter;
use transfer::sqs::{SqsSender, load_aws_config};

// One thread: FC gives the function 0.1 vCPU, so worker threads could only add cross-thread
// wake-ups (bench P6, profiling build: 28% less CPU per event without them).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match Config::from_env(&Env::process()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("oss-forwarder: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    config.log.init(LogWriter::Stderr);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "oss-forwarder stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let aws = load_aws_config(config.timeouts).await;
    check_credentials(&aws).await?;
    let sender =
        SqsSender::new(aws_sdk_sqs::Client::new(&aws), &config.queue_url).with_retry(config.retry);
    tracing::info!(
        queue_url = %config.queue_url,
        region = %config.region,
        fifo = sender.is_fifo(),
        events = ?config.filter.events(),
        "oss-forwarder configured"
    );
    let app = router(AppState {
        sender,
        filter: config.filter,
    });
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await?;
    println!("oss-forwarder listening on {}", listener.local_addr()?);
    oss_forwarder::fc::serve(listener, app, shutdown_signal()).await;
    Ok(())
}

/// Fails start-up when the standard chain yields no AWS credentials (never logs them).
async fn check_credentials(aws: &aws_config::SdkConfig) -> anyhow::Result<()> {
    let provider = aws
        .credentials_provider()
        .ok_or_else(|| anyhow::anyhow!("no AWS credentials provider configured"))?;
    match tokio::time::timeout(Duration::from_secs(10), provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(anyhow::anyhow!(
            "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): {err}"
        )),
        Err(_) => Err(anyhow::anyhow!(
            "timed out looking up AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )),
    }
}
