//! P1 (a large copy against the raw pipe) and P2 (peak memory, flat in the object size).

use super::{
    Command, Context, CopySettings, Instant, MIB, OSS_KEYS, Plan, Report, RunArgs, S3_KEYS,
    SRC_BUCKET, Stack, Value, Verdict, ensure, human, json, large_key, mb_per_s, median, mib,
    replicator_env, start_function, task_body,
};

/// What one copy cost.
#[derive(Debug, Clone, Copy)]
struct CopyRun {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss: u64,
    emulator_cpu: f64,
    sink_cpu: Option<f64>,
}

impl CopyRun {
    fn json(&self, bytes: u64) -> Value {
        json!({
            "seconds": self.seconds,
            "mb_per_s": mb_per_s(bytes, self.seconds),
            "cpu_seconds": self.cpu_seconds,
            "cpu_seconds_per_gb": self.cpu_seconds / (bytes as f64 / 1e9),
            "peak_rss_bytes": self.peak_rss,
            "emulator_cpu_seconds": self.emulator_cpu,
            "sink_cpu_seconds": self.sink_cpu,
        })
    }
}

/// Copies one object with the replicator binary (a fresh process) and checks the result.
async fn engine_copy(
    args: &RunArgs,
    stack: &Stack,
    bucket: &str,
    key: &str,
    size: u64,
) -> anyhow::Result<CopyRun> {
    let mut env = replicator_env(stack, bucket, None);
    if let Some(wrapper) = &args.profile_with {
        env.wrapper = wrapper.split_whitespace().map(str::to_owned).collect();
    }
    let function = start_function(args, stack, &env, "replicator-copy.log").await?;
    let (cpu0, _) = function.usage()?;
    let em0 = stack.emulator.cpu()?;
    let sink0 = stack.sink_cpu();
    let t = Instant::now();
    function
        .replicate(&[task_body(key, size)])
        .await
        .with_context(|| format!("copying {key}"))?;
    let seconds = t.elapsed().as_secs_f64();
    let (cpu1, peak_rss) = function.usage()?;
    let run = CopyRun {
        seconds,
        cpu_seconds: cpu1.saturating_sub(cpu0).as_secs_f64(),
        peak_rss,
        emulator_cpu: stack.emulator.cpu()?.saturating_sub(em0).as_secs_f64(),
        sink_cpu: stack
            .sink_cpu()
            .zip(sink0)
            .map(|(a, b)| a.saturating_sub(b).as_secs_f64()),
    };
    drop(function);
    stack.check_and_delete(bucket, key, size).await?;
    Ok(run)
}

/// Copies one object with the raw pipe (its own process) and checks the result.
async fn raw_copy(
    stack: &Stack,
    bucket: &str,
    key: &str,
    size: u64,
    part_size: u64,
    concurrency: usize,
) -> anyhow::Result<CopyRun> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("raw-pipe")
        .args(["--oss-endpoint", &stack.oss_endpoint])
        .args([
            "--oss-access-key",
            OSS_KEYS.0,
            "--oss-secret-key",
            OSS_KEYS.1,
        ])
        .args(["--src-bucket", SRC_BUCKET, "--src-key", key])
        .args(["--size", &size.to_string()])
        .args(["--s3-endpoint", &stack.s3_endpoint])
        .args(["--s3-access-key", S3_KEYS.0, "--s3-secret-key", S3_KEYS.1])
        .args(["--dst-bucket", bucket, "--dst-key", key])
        .args(["--part-size", &part_size.to_string()])
        .args(["--concurrency", &concurrency.to_string()]);
    let em0 = stack.emulator.cpu()?;
    let sink0 = stack.sink_cpu();
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    ensure!(
        output.status.success(),
        "raw pipe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).context("raw pipe output")?;
    let number = |name: &str| result.get(name).and_then(Value::as_f64).unwrap_or(0.0);
    let integer = |name: &str| result.get(name).and_then(Value::as_u64).unwrap_or(0);
    let run = CopyRun {
        seconds: number("seconds"),
        cpu_seconds: number("cpu_seconds"),
        peak_rss: integer("peak_rss"),
        emulator_cpu: stack.emulator.cpu()?.saturating_sub(em0).as_secs_f64(),
        sink_cpu: stack
            .sink_cpu()
            .zip(sink0)
            .map(|(a, b)| a.saturating_sub(b).as_secs_f64()),
    };
    stack.check_and_delete(bucket, key, size).await?;
    Ok(run)
}

pub(super) async fn throughput_and_memory(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
    huge: bool,
) -> anyhow::Result<()> {
    let part_size = CopySettings::DEFAULT_PART_SIZE;
    let concurrency = CopySettings::DEFAULT_PART_CONCURRENCY;
    let key = large_key(plan.large);
    stack.create_bucket("dst-engine").await?;
    stack.create_bucket("dst-raw").await?;
    let mut engine = Vec::new();
    let mut raw = Vec::new();
    for rep in 0..plan.reps {
        // Alternate which goes first, so neither always inherits a warm page cache.
        if rep % 2 == 0 {
            raw.push(raw_copy(stack, "dst-raw", &key, plan.large, part_size, concurrency).await?);
            engine.push(engine_copy(args, stack, "dst-engine", &key, plan.large).await?);
        } else {
            engine.push(engine_copy(args, stack, "dst-engine", &key, plan.large).await?);
            raw.push(raw_copy(stack, "dst-raw", &key, plan.large, part_size, concurrency).await?);
        }
        eprintln!(
            "bench: P1 rep {}: raw {:.0} MB/s, engine {:.0} MB/s",
            rep + 1,
            mb_per_s(plan.large, raw[rep].seconds),
            mb_per_s(plan.large, engine[rep].seconds)
        );
    }
    let gb = plan.large as f64 / 1e9;
    let med =
        |runs: &[CopyRun], f: fn(&CopyRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let raw_mbs = mb_per_s(plan.large, med(&raw, |r| r.seconds));
    let engine_mbs = mb_per_s(plan.large, med(&engine, |r| r.seconds));
    let ratio = engine_mbs / raw_mbs;
    let raw_cpu = med(&raw, |r| r.cpu_seconds) / gb;
    let engine_cpu = med(&engine, |r| r.cpu_seconds) / gb;
    let quick = args.quick;
    let verdict = |ok: bool| {
        if quick {
            Verdict::Info
        } else {
            Verdict::of(ok)
        }
    };
    report.row(
        "P1",
        &format!(
            "{} copy: engine vs raw pipe (median of {})",
            human(plan.large),
            plan.reps
        ),
        format!(
            "{engine_mbs:.0} vs {raw_mbs:.0} MB/s = **{:.0}%**",
            ratio * 100.0
        ),
        "≥ 80%",
        verdict(ratio >= 0.8),
    );
    report.row(
        "P1",
        "CPU-seconds per GB (client process)",
        format!("engine {engine_cpu:.2}, raw {raw_cpu:.2}"),
        "",
        Verdict::Info,
    );
    let server_cpu = |runs: &[CopyRun]| {
        let em = med(runs, |r| r.emulator_cpu) / gb;
        let sink = med(runs, |r| r.sink_cpu.unwrap_or(f64::NAN)) / gb;
        (em, sink)
    };
    let (raw_em, raw_sink) = server_cpu(&raw);
    let (eng_em, eng_sink) = server_cpu(&engine);
    report.row(
        "P1",
        "server CPU-s per GB (emulator / sink)",
        format!("engine {eng_em:.2} / {eng_sink:.2}, raw {raw_em:.2} / {raw_sink:.2}"),
        "",
        Verdict::Info,
    );
    report.figures(
        "P1",
        json!({
            "object_bytes": plan.large,
            "part_size": part_size,
            "part_concurrency": concurrency,
            "repetitions": plan.reps,
            "engine_mb_per_s": engine_mbs,
            "raw_mb_per_s": raw_mbs,
            "ratio": ratio,
            "engine_cpu_seconds_per_gb": engine_cpu,
            "raw_cpu_seconds_per_gb": raw_cpu,
            "engine_runs": engine.iter().map(|r| r.json(plan.large)).collect::<Vec<_>>(),
            "raw_runs": raw.iter().map(|r| r.json(plan.large)).collect::<Vec<_>>(),
            "engine": "the replicator binary under the bench's Runtime API, one SQS message",
        }),
    );

    if !args.wants("p2") {
        return Ok(());
    }
    let peak_large = engine.iter().map(|r| r.peak_rss).max().unwrap_or(0);
    let bound = 64 * MIB + concurrency as u64 * part_size;
    let mut p2 = json!({
        "part_size": part_size,
        "part_concurrency": concurrency,
        "bound_bytes": bound,
        "peaks": { plan.large.to_string(): peak_large },
    });
    if huge {
        stack.create_bucket("dst-huge").await?;
        let key = large_key(plan.huge);
        let run = engine_copy(args, stack, "dst-huge", &key, plan.huge).await?;
        p2["peaks"][plan.huge.to_string()] = json!(run.peak_rss);
        p2["huge_run"] = run.json(plan.huge);
        let growth = run.peak_rss as f64 / peak_large.max(1) as f64;
        p2["growth"] = json!(growth);
        report.row(
            "P2",
            &format!("peak RSS, {} vs {}", human(plan.huge), human(plan.large)),
            format!(
                "{:.0} vs {:.0} MiB (×{growth:.2})",
                mib(run.peak_rss),
                mib(peak_large)
            ),
            "within 10%",
            verdict(growth <= 1.10),
        );
        let peak = run.peak_rss.max(peak_large);
        report.row(
            "P2",
            "peak RSS vs 64 MiB + parts in flight × part size",
            format!("{:.0} MiB of {:.0} MiB", mib(peak), mib(bound)),
            "≤ bound",
            verdict(peak <= bound),
        );
    } else {
        report.row(
            "P2",
            &format!("peak RSS, {}", human(plan.large)),
            format!("{:.0} MiB", mib(peak_large)),
            &format!("≤ {:.0} MiB", mib(bound)),
            verdict(peak_large <= bound),
        );
    }
    report.figures("P2", p2);
    Ok(())
}
