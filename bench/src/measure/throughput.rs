//! P1 (a large copy against the raw pipe) and P2 (peak memory, flat in the object size), in
//! both directions: P1 and P2 copy from the emulator into the S3 sink, P1R and P2R from the S3
//! sink (as the source) into the emulator, with the replicator's `DIRECTION=s3-to-oss`.

use super::{
    Command, Context, CopySettings, Instant, MIB, OSS_KEYS, Plan, Report, RunArgs, S3_KEYS,
    SRC_BUCKET, Stack, Value, Verdict, ensure, human, json, large_key, mb_per_s, median, mib,
    replicator_env, start_function, task_body,
};

/// Which way a copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// From the emulator's source bucket into an S3 bucket.
    OssToS3,
    /// From [`S3_SOURCE`] into the emulator's bucket, under a prefix named like the S3 bucket
    /// the other way would use.
    S3ToOss,
}

/// The S3 source bucket of the S3 → OSS copies.
const S3_SOURCE: &str = "bench-s3-src";

impl Way {
    /// The figure IDs: `P1`/`P2`, or `P1R`/`P2R`.
    fn ids(self) -> (&'static str, &'static str) {
        match self {
            Self::OssToS3 => ("P1", "P2"),
            Self::S3ToOss => ("P1R", "P2R"),
        }
    }

    /// What the report says before each figure.
    fn label(self) -> &'static str {
        match self {
            Self::OssToS3 => "",
            Self::S3ToOss => "S3 → OSS: ",
        }
    }

    /// Where the copy of `key` for `dst` lands: (bucket, key).
    fn destination(self, dst: &str, key: &str) -> (String, String) {
        match self {
            Self::OssToS3 => (dst.to_owned(), key.to_owned()),
            Self::S3ToOss => (SRC_BUCKET.to_owned(), format!("{dst}/{key}")),
        }
    }
}

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
    way: Way,
    dst: &str,
    key: &str,
    size: u64,
) -> anyhow::Result<CopyRun> {
    let mut env = replicator_env(stack, &way.destination(dst, key).0, None);
    let body = match way {
        Way::OssToS3 => task_body(key, size),
        Way::S3ToOss => {
            env.s3_source = Some(S3_SOURCE.to_owned());
            env.extra.push(("DST_PREFIX".to_owned(), format!("{dst}/")));
            let etag = stack.s3_etag(S3_SOURCE, key).await?;
            s3_event_body(S3_SOURCE, key, size, &etag)
        }
    };
    if let Some(wrapper) = &args.profile_with {
        env.wrapper = wrapper.split_whitespace().map(str::to_owned).collect();
    }
    let function = start_function(args, stack, &env, "replicator-copy.log").await?;
    let (cpu0, _) = function.usage()?;
    let em0 = stack.emulator.cpu()?;
    let sink0 = stack.sink_cpu();
    let t = Instant::now();
    function
        .replicate(&[body])
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
    check_and_delete(stack, way, dst, key, size).await?;
    Ok(run)
}

/// Checks that the copy of `key` for `dst` holds `size` bytes, then deletes it (disk stays
/// bounded).
async fn check_and_delete(
    stack: &Stack,
    way: Way,
    dst: &str,
    key: &str,
    size: u64,
) -> anyhow::Result<()> {
    match way {
        Way::OssToS3 => stack.check_and_delete(dst, key, size).await,
        Way::S3ToOss => {
            let (bucket, key) = way.destination(dst, key);
            stack.check_and_delete_in_oss(&bucket, &key, size).await
        }
    }
}

/// An S3 event notification for a new object, as S3 sends it to the queue.
fn s3_event_body(bucket: &str, key: &str, size: u64, etag: &str) -> String {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {
                "key": transfer::trigger::s3::encode_key(key),
                "size": size,
                "eTag": etag.trim_matches('"'),
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }]})
    .to_string()
}

/// Copies one object with the raw pipe (its own process) and checks the result.
async fn raw_copy(
    stack: &Stack,
    way: Way,
    dst: &str,
    key: &str,
    size: u64,
    (part_size, concurrency): (u64, usize),
) -> anyhow::Result<CopyRun> {
    let (dst_bucket, dst_key) = way.destination(dst, key);
    let src_bucket = match way {
        Way::OssToS3 => SRC_BUCKET,
        Way::S3ToOss => S3_SOURCE,
    };
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
        .args(["--src-bucket", src_bucket, "--src-key", key])
        .args(["--size", &size.to_string()])
        .args(["--s3-endpoint", &stack.s3_endpoint])
        .args(["--s3-access-key", S3_KEYS.0, "--s3-secret-key", S3_KEYS.1])
        .args(["--dst-bucket", &dst_bucket, "--dst-key", &dst_key])
        .args(["--part-size", &part_size.to_string()])
        .args(["--concurrency", &concurrency.to_string()]);
    if way == Way::S3ToOss {
        command.arg("--from-s3");
    }
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
    check_and_delete(stack, way, dst, key, size).await?;
    Ok(run)
}

pub(super) async fn throughput_and_memory(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
    (way, huge): (Way, bool),
) -> anyhow::Result<()> {
    let part_size = CopySettings::DEFAULT_PART_SIZE;
    let concurrency = CopySettings::DEFAULT_PART_CONCURRENCY;
    let key = large_key(plan.large);
    let (p1, p2) = way.ids();
    let label = way.label();
    match way {
        Way::OssToS3 => {
            stack.create_bucket("dst-engine").await?;
            stack.create_bucket("dst-raw").await?;
        }
        Way::S3ToOss => {
            stack.create_bucket(S3_SOURCE).await?;
            stack.put_s3_pattern(S3_SOURCE, &key, plan.large).await?;
        }
    }
    let shape = (part_size, concurrency);
    let mut engine = Vec::new();
    let mut raw = Vec::new();
    for rep in 0..plan.reps {
        // Alternate which goes first, so neither always inherits a warm page cache.
        if rep % 2 == 0 {
            raw.push(raw_copy(stack, way, "dst-raw", &key, plan.large, shape).await?);
            engine.push(engine_copy(args, stack, way, "dst-engine", &key, plan.large).await?);
        } else {
            engine.push(engine_copy(args, stack, way, "dst-engine", &key, plan.large).await?);
            raw.push(raw_copy(stack, way, "dst-raw", &key, plan.large, shape).await?);
        }
        eprintln!(
            "bench: {p1} rep {}: raw {:.0} MB/s, engine {:.0} MB/s",
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
        p1,
        &format!(
            "{label}{} copy: engine vs raw pipe (median of {})",
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
        p1,
        &format!("{label}CPU-seconds per GB (client process)"),
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
        p1,
        &format!("{label}server CPU-s per GB (emulator / S3 server)"),
        format!("engine {eng_em:.2} / {eng_sink:.2}, raw {raw_em:.2} / {raw_sink:.2}"),
        "",
        Verdict::Info,
    );
    report.figures(
        p1,
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

    if !args.wants(&p2.to_ascii_lowercase()) {
        return Ok(());
    }
    let peak_large = engine.iter().map(|r| r.peak_rss).max().unwrap_or(0);
    let bound = 64 * MIB + concurrency as u64 * part_size;
    let mut p2_figures = json!({
        "part_size": part_size,
        "part_concurrency": concurrency,
        "bound_bytes": bound,
        "peaks": { plan.large.to_string(): peak_large },
    });
    if huge {
        let key = large_key(plan.huge);
        match way {
            Way::OssToS3 => stack.create_bucket("dst-huge").await?,
            Way::S3ToOss => stack.put_s3_pattern(S3_SOURCE, &key, plan.huge).await?,
        }
        let run = engine_copy(args, stack, way, "dst-huge", &key, plan.huge).await?;
        if way == Way::S3ToOss {
            stack.delete_s3(S3_SOURCE, &key).await?;
        }
        p2_figures["peaks"][plan.huge.to_string()] = json!(run.peak_rss);
        p2_figures["huge_run"] = run.json(plan.huge);
        let growth = run.peak_rss as f64 / peak_large.max(1) as f64;
        p2_figures["growth"] = json!(growth);
        report.row(
            p2,
            &format!(
                "{label}peak RSS, {} vs {}",
                human(plan.huge),
                human(plan.large)
            ),
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
            p2,
            &format!("{label}peak RSS vs 64 MiB + parts in flight × part size"),
            format!("{:.0} MiB of {:.0} MiB", mib(peak), mib(bound)),
            "≤ bound",
            verdict(peak <= bound),
        );
    } else {
        report.row(
            p2,
            &format!("{label}peak RSS, {}", human(plan.large)),
            format!("{:.0} MiB", mib(peak_large)),
            &format!("≤ {:.0} MiB", mib(bound)),
            verdict(peak_large <= bound),
        );
    }
    report.figures(p2, p2_figures);
    if way == Way::S3ToOss {
        stack.delete_s3(S3_SOURCE, &large_key(plan.large)).await?;
    }
    Ok(())
}
