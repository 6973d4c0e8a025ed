//! P3: small objects through the function against a boto3 loop, on loopback and with OSS
//! 20 ms away.

use super::{
    Command, Context, Instant, OSS_KEYS, Path, Plan, Report, RunArgs, S3_KEYS, SRC_BUCKET, Stack,
    Value, Verdict, ensure, event_body, json, replicator_env, small_key, start_function,
};

/// Replicates every key through the function in batches of 10 (one execution environment,
/// sequential invocations) and checks the destination; returns seconds and CPU-seconds.
async fn small_through_function(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    keys: &[String],
    bucket: &str,
    message_concurrency: usize,
) -> anyhow::Result<(f64, f64)> {
    stack.create_bucket(bucket).await?;
    let mut env = replicator_env(stack, bucket, None);
    env.extra.push((
        "MESSAGE_CONCURRENCY".into(),
        message_concurrency.to_string(),
    ));
    // The tasks the forwarder would send: each event names the object's ETag and size.
    let etags = stack.oss_etags(keys).await?;
    let bodies: Vec<String> = keys
        .iter()
        .zip(&etags)
        .map(|(key, etag)| event_body(key, plan.small_size, etag))
        .collect();
    let function = start_function(args, stack, &env, "replicator-small.log").await?;
    let (cpu0, _) = function.usage()?;
    let t = Instant::now();
    for batch in bodies.chunks(10) {
        function.replicate(batch).await?;
    }
    let seconds = t.elapsed().as_secs_f64();
    let cpu = function.usage()?.0.saturating_sub(cpu0).as_secs_f64();
    drop(function);
    let n = keys.len();
    let (copied, bytes) = stack.count_objects(bucket).await?;
    ensure!(
        copied == n && bytes == n as u64 * plan.small_size,
        "{bucket} holds {copied} objects ({bytes} bytes), expected {n}"
    );
    Ok((seconds, cpu))
}

/// Runs `bench/baseline.py` over `keys` into `bucket`, checks it, and returns its seconds.
async fn baseline(
    args: &RunArgs,
    stack: &Stack,
    keys: &[String],
    bucket: &str,
) -> anyhow::Result<f64> {
    stack.create_bucket(bucket).await?;
    let keys_file = stack.work.join("p3-keys.txt");
    std::fs::write(&keys_file, keys.join("\n"))?;
    let mut command = Command::new(&args.python);
    command
        .arg(Path::new("bench").join("baseline.py"))
        .args(["--oss-endpoint", &stack.oss_endpoint])
        .args([
            "--oss-access-key",
            OSS_KEYS.0,
            "--oss-secret-key",
            OSS_KEYS.1,
        ])
        .args(["--src-bucket", SRC_BUCKET])
        .args(["--s3-endpoint", &stack.s3_endpoint])
        .args(["--s3-access-key", S3_KEYS.0, "--s3-secret-key", S3_KEYS.1])
        .args(["--dst-bucket", bucket])
        .arg("--keys-file")
        .arg(&keys_file);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    ensure!(
        output.status.success(),
        "baseline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).context("baseline output")?;
    let (copied, _) = stack.count_objects(bucket).await?;
    ensure!(
        copied == keys.len(),
        "{bucket} holds {copied} objects, expected {}",
        keys.len()
    );
    result["seconds"]
        .as_f64()
        .context("baseline output without seconds")
}

pub(super) async fn small_object_rate(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = plan.small_count;
    let keys: Vec<String> = (0..n).map(small_key).collect();
    let default_concurrency = replicator::BatchSettings::DEFAULT_MESSAGE_CONCURRENCY;
    // An unmeasured pass first, so that the first measured run does not pay for the servers'
    // cold start (page cache, the S3 server's first writes) alone.
    small_through_function(
        args,
        plan,
        stack,
        &keys[..(n / 10).max(1)],
        "dst-warm-up",
        default_concurrency,
    )
    .await
    .context("warm-up")?;
    let (engine_s, engine_cpu) =
        small_through_function(args, plan, stack, &keys, "dst-small", default_concurrency).await?;
    // The old default, for comparison: fewer messages at once.
    let (all_s, _) = small_through_function(args, plan, stack, &keys, "dst-small-4", 4).await?;

    let baseline_s = baseline(args, stack, &keys, "dst-baseline").await?;

    let engine_rate = n as f64 / engine_s;
    let all_rate = n as f64 / all_s;
    let baseline_rate = n as f64 / baseline_s;
    let ratio = engine_rate / baseline_rate;
    report.row(
        "P3",
        &format!(
            "{n} × {} KiB, batches of 10: function vs boto3 loop",
            plan.small_size / 1024
        ),
        format!("{engine_rate:.0} vs {baseline_rate:.0} objects/s = **{ratio:.1}×**"),
        "≥ 10×",
        if args.quick {
            Verdict::Info
        } else {
            Verdict::of(ratio >= 10.0)
        },
    );
    report.row(
        "P3",
        "the same with MESSAGE_CONCURRENCY=4 (the default until 2026-12)",
        format!("{all_rate:.0} objects/s = {:.1}×", all_rate / baseline_rate),
        "",
        Verdict::Info,
    );
    // The same with every OSS request 20 ms away, as OSS is from AWS in a real deployment;
    // fewer objects, since the baseline now takes at least 20 ms per object.
    let slow_keys = &keys[..plan.latency_count.min(keys.len())];
    let slow_n = slow_keys.len();
    stack.set_oss_latency(Some(plan.oss_latency_ms)).await?;
    let slow = async {
        let (f_default, _) = small_through_function(
            args,
            plan,
            stack,
            slow_keys,
            "dst-slow",
            default_concurrency,
        )
        .await?;
        let (f_old, _) =
            small_through_function(args, plan, stack, slow_keys, "dst-slow-4", 4).await?;
        let b = baseline(args, stack, slow_keys, "dst-slow-baseline").await?;
        anyhow::Ok((f_default, f_old, b))
    }
    .await;
    stack.set_oss_latency(None).await?;
    let (slow_default, slow_old, slow_b) = slow?;
    let (slow_default, slow_old, slow_b) = (
        slow_n as f64 / slow_default,
        slow_n as f64 / slow_old,
        slow_n as f64 / slow_b,
    );
    report.row(
        "P3",
        &format!(
            "{slow_n} objects, OSS {} ms away: function (MESSAGE_CONCURRENCY {default_concurrency} / 4) vs boto3 loop",
            plan.oss_latency_ms
        ),
        format!(
            "{slow_default:.0} / {slow_old:.0} vs {slow_b:.0} objects/s = {:.1}× / {:.1}×",
            slow_default / slow_b,
            slow_old / slow_b
        ),
        "",
        Verdict::Info,
    );
    report.figures(
        "P3",
        json!({
            "objects": n,
            "object_bytes": plan.small_size,
            "batch_size": 10,
            "message_concurrency": default_concurrency,
            "engine_seconds": engine_s,
            "engine_objects_per_s": engine_rate,
            "engine_cpu_ms_per_object": engine_cpu * 1000.0 / n as f64,
            "message_concurrency_4_seconds": all_s,
            "message_concurrency_4_objects_per_s": all_rate,
            "baseline_seconds": baseline_s,
            "baseline_objects_per_s": baseline_rate,
            "ratio": ratio,
            "ratio_message_concurrency_4": all_rate / baseline_rate,
            "with_oss_latency": {
                "oss_latency_ms": plan.oss_latency_ms,
                "objects": slow_n,
                "engine_objects_per_s": slow_default,
                "message_concurrency_4_objects_per_s": slow_old,
                "baseline_objects_per_s": slow_b,
                "ratio": slow_default / slow_b,
                "ratio_message_concurrency_4": slow_old / slow_b,
            },
            "function": "the replicator binary, one execution environment, invocations one after another",
            "baseline": "bench/baseline.py: alibabacloud_oss_v2 GET then boto3 PUT, sequential",
        }),
    );
    Ok(())
}
