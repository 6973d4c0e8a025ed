//! `oss-emulator`: runs the OSS protocol server until interrupted.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use oss_emulator::{Emulator, EmulatorConfig, FaultRule, NotificationTarget};
use transfer::oss::Credentials;

/// An Alibaba Cloud OSS protocol server for tests and local stacks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Accepted access key ID.
    #[arg(long)]
    access_key: String,
    /// Its secret.
    #[arg(long)]
    secret_key: String,
    /// Require this STS security token with the key.
    #[arg(long)]
    security_token: Option<String>,
    /// A bucket to serve (repeatable).
    #[arg(long = "bucket", required = true)]
    buckets: Vec<String>,
    /// The region signatures are scoped to.
    #[arg(long, default_value = "cn-hangzhou")]
    region: String,
    /// Store objects in this directory instead of in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A trigger target: a URL (every ObjectCreated/ObjectRemoved event) or a JSON object
    /// `{"url":…,"events":[…],"prefix":…,"suffix":…}` (repeatable).
    #[arg(long = "notify")]
    notify: Vec<String>,
    /// How long a RestoreObject takes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    restore_delay_ms: u64,
    /// First retry delay of trigger deliveries, in milliseconds (doubles per retry).
    #[arg(long, default_value_t = 200)]
    trigger_backoff_ms: u64,
    /// A fault rule as JSON, e.g. `{"op":"GetObject","times":1,"fault":{"kind":"reset"}}` (repeatable).
    #[arg(long = "fault")]
    faults: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut credentials = Credentials::new(args.access_key, args.secret_key);
    credentials.security_token = args.security_token;
    let mut config = EmulatorConfig::new()
        .listen(args.listen)
        .region(args.region)
        .credentials(credentials)
        .restore_delay(Duration::from_millis(args.restore_delay_ms))
        .trigger_retry_backoff(Duration::from_millis(args.trigger_backoff_ms));
    config.buckets = args.buckets;
    config.data_dir = args.data_dir;
    for target in &args.notify {
        let target = if target.trim_start().starts_with('{') {
            serde_json::from_str::<NotificationTarget>(target)
                .with_context(|| format!("--notify {target} is not a valid target"))?
        } else {
            NotificationTarget::new(target.clone())
        };
        config.notifications.push(target);
    }
    for fault in &args.faults {
        let rule: FaultRule = serde_json::from_str(fault)
            .with_context(|| format!("--fault {fault} is not a valid rule"))?;
        config.faults.push(rule);
    }
    let emulator = Emulator::start(config)
        .await
        .context("starting the emulator")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "oss-emulator listening on {}", emulator.endpoint())?;
    stdout.flush()?;
    drop(stdout);
    shutdown_signal().await;
    emulator.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
