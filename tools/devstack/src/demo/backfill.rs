//! The demo's migration steps: objects already in the bucket before replication starts (the
//! emulator's synthetic objects, which raise no event), backfilled with `oss2s3 sync`, and the
//! final audit with `oss2s3 verify`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use super::DemoDirection;
use crate::stack::Stack;

/// What one `oss2s3` run said.
#[derive(Debug, Clone)]
pub struct CliRun {
    /// Its exit code.
    pub code: i32,
    /// Its standard output (the job's summary).
    pub stdout: String,
    /// The job's `report.html`.
    pub report: PathBuf,
}

impl CliRun {
    /// Whether the job found nothing wrong.
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// The line that sums the job up: for a queued sync, the one that says what the shards
    /// found; otherwise the first (`sync JOB: N objects (...)`).
    pub fn headline(&self) -> &str {
        self.stdout
            .lines()
            .find(|l| l.contains("every shard done"))
            .or_else(|| self.stdout.lines().next())
            .unwrap_or("(no output)")
    }
}

/// Creates `count` objects under `existing/` without events: data that was in the bucket
/// before the trigger existed. Returns their total size.
pub(super) async fn seed_existing(stack: &Stack, count: usize, seed: u64) -> anyhow::Result<u64> {
    let http = reqwest::Client::new();
    let mut bytes = 0;
    for i in 0..count {
        // 1 KiB to about 24 MiB, so the backfill also makes multipart copies.
        let size = super::dataset::existing_size(i);
        let body = serde_json::json!({
            "bucket": stack.config().oss_bucket,
            "key": format!("existing/{i:03} before the trigger.bin"),
            "size": size,
            "seed": seed + i as u64,
        });
        let response = http
            .put(format!("{}/_emulator/synthetic", stack.oss_endpoint()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .context("PUT /_emulator/synthetic")?;
        if !response.status().is_success() {
            bail!(
                "the emulator refused a synthetic object: {}",
                response.status()
            );
        }
        bytes += size;
    }
    Ok(bytes)
}

/// Runs `oss2s3 ARGS...` against the stack as a user would: the binary, configured through the
/// environment (OSS keys, the emulator, moto). Refuses to treat bad arguments as a result.
pub async fn oss2s3(stack: &Stack, args: &[String]) -> anyhow::Result<std::process::Output> {
    let config = stack.config();
    let binary = config
        .binaries
        .cli
        .clone()
        .context("the oss2s3 binary was not built")?;
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .current_dir(stack.run_dir())
        .env("OSS_REGION", &config.oss_region)
        .env("OSS_ENDPOINT", stack.oss_endpoint())
        .env("OSS_PATH_STYLE", "true")
        .env("OSS_ACCESS_KEY_ID", &config.oss_access_key_id)
        .env("OSS_ACCESS_KEY_SECRET", &config.oss_access_key_secret)
        .env("AWS_ENDPOINT_URL", stack.aws_endpoint())
        .env("AWS_ENDPOINT_URL_SQS", stack.sqs_endpoint())
        .env("AWS_ACCESS_KEY_ID", &config.aws_access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &config.aws_secret_access_key)
        .env("AWS_REGION", &config.aws_region)
        .env("OSS2S3_S3_COMPAT", "moto")
        .env_remove("OSS_SECRET_ID");
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .context("joining oss2s3")?
        .context("running oss2s3")?;
    if output.status.code() == Some(2) {
        bail!(
            "oss2s3 {} refused to run: {}",
            args.first().map_or("", String::as_str),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

/// Runs `oss2s3 <command> oss://SRC/ s3://DST/ --job-id <job> --quiet <extra>...` (or
/// `s3://DST/ oss://SRC/` in the S3 → OSS direction); the report goes to the run directory (or
/// where `extra` says).
pub(super) async fn run_cli(
    stack: &Stack,
    direction: DemoDirection,
    command: &str,
    job: &str,
    extra: &[String],
) -> anyhow::Result<CliRun> {
    let config = stack.config();
    let reports = stack.run_dir().join("oss2s3-reports");
    let oss = format!("oss://{}/", config.oss_bucket);
    let s3 = format!("s3://{}/", config.dst_bucket);
    let (from, to) = match direction {
        DemoDirection::OssToS3 => (oss, s3),
        DemoDirection::S3ToOss => (s3, oss),
    };
    let mut args = vec![
        command.to_owned(),
        from,
        to,
        "--job-id".to_owned(),
        job.to_owned(),
        "--quiet".to_owned(),
    ];
    if extra.iter().any(|a| a == "--queue") {
        args.extend(["--state-dir".to_owned(), reports.display().to_string()]);
    } else {
        args.extend(["--report".to_owned(), reports.display().to_string()]);
    }
    args.extend(extra.iter().cloned());
    let output = oss2s3(stack, &args).await?;
    Ok(CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        report: reports.join(job).join("report.html"),
    })
}
