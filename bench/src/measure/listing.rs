//! P9: how fast `oss2s3 diff` lists and compares, and that its memory is flat in the object
//! count. The source holds N synthetic objects (one shared blob, `PUT
//! /_emulator/synthetic-many`); the destination is an empty bucket, so every object is listed,
//! merged and decided ("missing") without a HEAD. Peak RSS is sampled from `/proc` while the
//! process runs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Context, OSS_KEYS, Report, RunArgs, S3_KEYS, Stack, Value, Verdict, json, mib};

/// Runs `oss2s3 diff` over `count` objects; returns (seconds, peak RSS in bytes, missing count).
async fn diff(
    args: &RunArgs,
    stack: &Stack,
    prefix: &str,
    bucket: &str,
) -> anyhow::Result<(f64, u64, u64)> {
    let mut command = Command::new(args.bin_dir.join("oss2s3"));
    command
        .args([
            "diff",
            &format!("oss://{}/{prefix}", super::SRC_BUCKET),
            &format!("s3://{bucket}/"),
            "--json",
            "--quiet",
        ])
        .env("OSS_REGION", "cn-hangzhou")
        .env("OSS_ENDPOINT", &stack.oss_endpoint)
        .env("OSS_PATH_STYLE", "true")
        .env("OSS_ACCESS_KEY_ID", OSS_KEYS.0)
        .env("OSS_ACCESS_KEY_SECRET", OSS_KEYS.1)
        .env("AWS_ENDPOINT_URL", &stack.s3_endpoint)
        .env("AWS_ACCESS_KEY_ID", S3_KEYS.0)
        .env("AWS_SECRET_ACCESS_KEY", S3_KEYS.1)
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = command.spawn().context("starting oss2s3 diff")?;
    let pid = child.id();
    let mut peak = 0;
    let status_path = format!("/proc/{pid}/status");
    loop {
        if let Ok(kib) = testkit::process::status_kib(&status_path, "VmHWM:") {
            peak = peak.max(kib * 1024);
        }
        if child.try_wait()?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "oss2s3 diff failed: {}",
        output.status
    );
    let answer: Value = serde_json::from_slice(&output.stdout).context("diff's JSON")?;
    let missing = answer["to_copy"]["missing"].as_u64().unwrap_or(0);
    Ok((seconds, peak, missing))
}

pub(super) async fn listing_rate_and_memory(
    args: &RunArgs,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let counts: [u64; 2] = if args.quick {
        [10_000, 100_000]
    } else {
        [100_000, 1_000_000]
    };
    let bucket = "p9-empty";
    stack
        .s3
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .context("creating the P9 bucket")?;
    let mut runs = Vec::new();
    for count in counts {
        let prefix = format!("p9-{count}/");
        let seeding = Instant::now();
        stack.put_many(&prefix, count).await?;
        eprintln!(
            "bench: P9 seeded {count} objects in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        let (seconds, peak, missing) = diff(args, stack, &prefix, bucket).await?;
        anyhow::ensure!(
            missing == count,
            "diff counted {missing} of {count} objects"
        );
        runs.push((count, seconds, peak));
    }
    let (small, large) = (runs[0], runs[1]);
    let flat = large.2 as f64 <= small.2 as f64 * 1.2 + 16.0 * 1024.0 * 1024.0;
    for (count, seconds, peak) in &runs {
        report.row(
            "P9",
            &format!("oss2s3 diff over {count} objects: listed and decided per second; peak RSS"),
            format!(
                "{:.0} objects/s in {seconds:.1} s; {:.0} MiB",
                *count as f64 / seconds,
                mib(*peak)
            ),
            "",
            Verdict::Info,
        );
    }
    report.row(
        "P9",
        "peak RSS of diff, largest vs smallest count",
        format!(
            "{:.0} vs {:.0} MiB (×{:.2})",
            mib(large.2),
            mib(small.2),
            large.2 as f64 / small.2.max(1) as f64
        ),
        "flat: ≤ 1.2 × + 16 MiB",
        Verdict::of(flat),
    );
    report.figures(
        "p9",
        json!(runs
            .iter()
            .map(|(count, seconds, peak)| json!({"objects": count, "seconds": seconds, "objects_per_second": *count as f64 / seconds, "peak_rss_bytes": peak}))
            .collect::<Vec<_>>()),
    );
    Ok(())
}
