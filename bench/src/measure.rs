//! The measurements, P1–P7 (see `docs/bench.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use transfer::replicate::CopySettings;
use transfer::task::{ReplicationTask, SourceObject};

use crate::RunArgs;
use crate::env::{OSS_KEYS, S3_KEYS, SRC_BUCKET, Seed, Stack, seed};
use crate::lambda::{Function, ReplicatorEnv, batch_failures, sqs_event};
use crate::procs::{Proc, free_bytes, machine_load};
use crate::proxy::CountingProxy;
use crate::report::{Report, Verdict, median, quantile};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
/// How long one invocation may take (Lambda's maximum).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(900);

/// Sizes and repetitions for one mode.
#[derive(Debug, Clone, Copy)]
struct Plan {
    large: u64,
    huge: u64,
    reps: usize,
    small_count: usize,
    small_size: u64,
    init_runs: usize,
    p7_small: usize,
    p7_multipart: u64,
    p4_rate: usize,
    p4_seconds: usize,
    latency_count: usize,
    oss_latency_ms: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                large: 32 * MIB,
                huge: 48 * MIB,
                reps: 1,
                small_count: 100,
                small_size: 4096,
                init_runs: 3,
                p7_small: 10,
                p7_multipart: 40 * MIB,
                p4_rate: 10,
                p4_seconds: 2,
                latency_count: 20,
                oss_latency_ms: 20,
            }
        } else {
            Self {
                large: GIB,
                huge: 4 * GIB,
                reps: 5,
                small_count: 2000,
                small_size: 4096,
                init_runs: 20,
                p7_small: 10,
                p7_multipart: 64 * MIB,
                p4_rate: 50,
                p4_seconds: 60,
                latency_count: 1000,
                oss_latency_ms: 20,
            }
        }
    }
}

fn large_key(size: u64) -> String {
    format!("large/{}m.bin", size / MIB)
}

fn small_key(i: usize) -> String {
    format!("small/{i:05}.bin")
}

fn p7_small_key(i: usize) -> String {
    format!("p7/small-{i:03}.bin")
}

fn task_body(key: &str, size: u64) -> String {
    ReplicationTask::put(SourceObject {
        region: "cn-hangzhou".into(),
        bucket: SRC_BUCKET.into(),
        key: key.into(),
        size: Some(size),
        etag: None,
    })
    .to_json()
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds.max(1e-9)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Runs the selected measurements and reports them.
pub(crate) async fn run(mut args: RunArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args.quick);
    let root = std::env::current_dir()?;
    args.bin_dir = root.join(&args.bin_dir);
    // One directory per run, so that runs started at once (test suites) do not collide; only
    // `--keep-data` shares the seeded source objects between runs.
    let work = root
        .join(&args.work_dir)
        .join(format!("run-{}", std::process::id()));
    let data_dir = if args.keep_data {
        root.join(&args.work_dir).join("oss-kept")
    } else {
        work.join("oss")
    };
    std::fs::create_dir_all(&work)?;
    let (load_before, cores) = machine_load();
    let started = Instant::now();
    let mut report = Report::default();
    if args.s3s_fs.is_none() {
        report.note(
            "S3 sink: moto (no --s3s-fs; scripts/bench passes it once s3s-fs is installed); moto neither verifies checksums nor is fast, so the figures say only that everything works",
        );
    }

    let mut seeds: Vec<Seed> = Vec::new();
    let p12 = args.wants("p1") || args.wants("p2");
    if p12 {
        seeds.push((large_key(plan.large), plan.large));
    }
    let mut huge = args.wants("p2");
    if huge {
        // The source, the sink's parts and its assembled object, plus slack; conservative (a
        // source kept by `--keep-data` is counted again), since the disk is shared.
        let need = plan.huge * 3 + plan.large * 2 + GIB;
        let free = free_bytes(&work).unwrap_or(0);
        if free < need {
            report.note(format!(
                "P2 {} object skipped: {:.1} GiB free, {:.1} GiB needed",
                human(plan.huge),
                free as f64 / GIB as f64,
                need as f64 / GIB as f64
            ));
            huge = false;
        } else {
            seeds.push((large_key(plan.huge), plan.huge));
        }
    }
    if args.wants("p3") {
        seeds.extend((0..plan.small_count).map(|i| (small_key(i), plan.small_size)));
    }
    if args.wants("p7") {
        seeds.extend((0..plan.p7_small).map(|i| (p7_small_key(i), plan.small_size)));
        seeds.push(("p7/multipart.bin".into(), plan.p7_multipart));
    }
    let seeding = Instant::now();
    seed(&data_dir, &seeds)
        .await
        .context("seeding the emulator")?;
    eprintln!(
        "bench: seeded {} objects in {:.1} s",
        seeds.len(),
        seeding.elapsed().as_secs_f64()
    );

    let stack = Stack::start(&args, &work, &data_dir).await?;
    let outcome = measure_all(&args, &plan, &stack, &mut report, p12, huge).await;

    let (load_after, _) = machine_load();
    let meta = json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "mode": if args.quick { "quick" } else { "full" },
        "cores": cores,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "sink": stack.sink_name,
        "seconds": started.elapsed().as_secs_f64(),
        "binaries": args.bin_dir.display().to_string(),
    });
    drop(stack);
    match outcome {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&work);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(work.join("s3"));
            let _ = std::fs::remove_dir_all(work.join("oss"));
            return Err(e.context(format!("logs are in {}", work.join("logs").display())));
        }
    }

    let table = report.markdown();
    println!(
        "\n## oss2s3 benchmark ({}, {} cores, load {} → {}, sink {})\n\n{table}",
        if args.quick { "quick" } else { "full" },
        cores,
        load_before,
        load_after,
        meta["sink"].as_str().unwrap_or_default()
    );
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.quick {
            "bench/results/latest-quick.json"
        } else {
            "bench/results/latest.json"
        })
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report.json(meta))?)?;
    eprintln!("bench: wrote {}", out.display());
    Ok(())
}

async fn measure_all(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
    p12: bool,
    huge: bool,
) -> anyhow::Result<()> {
    if p12 {
        p1_p2(args, plan, stack, report, huge)
            .await
            .context("P1/P2")?;
    }
    if args.wants("p3") {
        p3(args, plan, stack, report).await.context("P3")?;
    }
    if args.wants("p5") {
        p5(args, plan, stack, report).await.context("P5")?;
    }
    if args.wants("p7") {
        p7(args, plan, stack, report).await.context("P7")?;
    }
    if args.wants("p4") {
        p4(args, plan, stack, report).await.context("P4")?;
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// The replicator's environment against this stack, writing to `dst_bucket`.
fn replicator_env(stack: &Stack, dst_bucket: &str, s3_endpoint: Option<String>) -> ReplicatorEnv {
    ReplicatorEnv {
        oss_endpoint: stack.oss_endpoint.clone(),
        s3_endpoint: s3_endpoint.unwrap_or_else(|| stack.s3_endpoint.clone()),
        dst_bucket: dst_bucket.to_owned(),
        s3_access_key: S3_KEYS.0.into(),
        s3_secret_key: S3_KEYS.1.into(),
        extra: Vec::new(),
        wrapper: Vec::new(),
    }
}

/// Starts the replicator and waits until it polls for its first event (init is not measured).
async fn start_function(
    args: &RunArgs,
    stack: &Stack,
    env: &ReplicatorEnv,
    log: &str,
) -> anyhow::Result<Function> {
    let home = stack.work.join("home");
    std::fs::create_dir_all(&home)?;
    let mut function = Function::start(
        &args.bin_dir.join("replicator"),
        env,
        OSS_KEYS,
        &stack.logs().join(log),
        &home,
    )
    .await?;
    function.api.first_poll(Duration::from_secs(30)).await?;
    Ok(function)
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
    bucket: &str,
    key: &str,
    size: u64,
) -> anyhow::Result<CopyRun> {
    let mut env = replicator_env(stack, bucket, None);
    if let Some(wrapper) = &args.profile_with {
        env.wrapper = wrapper.split_whitespace().map(str::to_owned).collect();
    }
    let function = start_function(args, stack, &env, "replicator-copy.log").await?;
    let Function { proc, mut api, .. } = function;
    let cpu0 = proc.cpu()?;
    let em0 = stack.emulator.cpu()?;
    let sink0 = stack.sink_cpu();
    let t = Instant::now();
    let response = api
        .invoke(sqs_event(&[task_body(key, size)]), INVOKE_TIMEOUT)
        .await?;
    let seconds = t.elapsed().as_secs_f64();
    let failures = batch_failures(&response)?;
    ensure!(
        failures.is_empty(),
        "the replicator reported {key} failed; see its log"
    );
    let run = CopyRun {
        seconds,
        cpu_seconds: (proc.cpu()? - cpu0).as_secs_f64(),
        peak_rss: proc.peak_rss()?,
        emulator_cpu: (stack.emulator.cpu()? - em0).as_secs_f64(),
        sink_cpu: stack
            .sink_cpu()
            .zip(sink0)
            .map(|(a, b)| (a - b).as_secs_f64()),
    };
    drop(proc);
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
    let run = CopyRun {
        seconds: number("seconds"),
        cpu_seconds: number("cpu_seconds"),
        peak_rss: number("peak_rss") as u64,
        emulator_cpu: (stack.emulator.cpu()? - em0).as_secs_f64(),
        sink_cpu: stack
            .sink_cpu()
            .zip(sink0)
            .map(|(a, b)| (a - b).as_secs_f64()),
    };
    stack.check_and_delete(bucket, key, size).await?;
    Ok(run)
}

async fn p1_p2(
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
    let function = start_function(args, stack, &env, "replicator-small.log").await?;
    let Function { proc, mut api, .. } = function;
    let cpu0 = proc.cpu()?;
    let t = Instant::now();
    for batch in keys.chunks(10) {
        let bodies: Vec<String> = batch
            .iter()
            .map(|k| task_body(k, plan.small_size))
            .collect();
        let response = api.invoke(sqs_event(&bodies), INVOKE_TIMEOUT).await?;
        let failures = batch_failures(&response)?;
        ensure!(failures.is_empty(), "batch failures: {failures:?}");
    }
    let seconds = t.elapsed().as_secs_f64();
    let cpu = (proc.cpu()? - cpu0).as_secs_f64();
    drop(proc);
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

async fn p3(args: &RunArgs, plan: &Plan, stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    let n = plan.small_count;
    let keys: Vec<String> = (0..n).map(small_key).collect();
    let default_concurrency = transfer::batch::BatchSettings::DEFAULT_MESSAGE_CONCURRENCY;
    let (engine_s, engine_cpu) =
        small_through_function(args, plan, stack, &keys, "dst-small", default_concurrency).await?;
    let (all_s, _) = small_through_function(args, plan, stack, &keys, "dst-small-10", 10).await?;

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
        "the same with MESSAGE_CONCURRENCY=10 (a whole batch at once)",
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
        let (f4, _) = small_through_function(
            args,
            plan,
            stack,
            slow_keys,
            "dst-slow",
            default_concurrency,
        )
        .await?;
        let (f10, _) =
            small_through_function(args, plan, stack, slow_keys, "dst-slow-10", 10).await?;
        let b = baseline(args, stack, slow_keys, "dst-slow-baseline").await?;
        anyhow::Ok((f4, f10, b))
    }
    .await;
    stack.set_oss_latency(None).await?;
    let (slow_f4, slow_f10, slow_b) = slow?;
    let (slow_f4, slow_f10, slow_b) = (
        slow_n as f64 / slow_f4,
        slow_n as f64 / slow_f10,
        slow_n as f64 / slow_b,
    );
    report.row(
        "P3",
        &format!(
            "{slow_n} objects, OSS {} ms away: function (MESSAGE_CONCURRENCY 4 / 10) vs boto3 loop",
            plan.oss_latency_ms
        ),
        format!(
            "{slow_f4:.0} / {slow_f10:.0} vs {slow_b:.0} objects/s = {:.1}× / {:.1}×",
            slow_f4 / slow_b,
            slow_f10 / slow_b
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
            "message_concurrency_10_seconds": all_s,
            "message_concurrency_10_objects_per_s": all_rate,
            "baseline_seconds": baseline_s,
            "baseline_objects_per_s": baseline_rate,
            "ratio": ratio,
            "ratio_message_concurrency_10": all_rate / baseline_rate,
            "with_oss_latency": {
                "oss_latency_ms": plan.oss_latency_ms,
                "objects": slow_n,
                "engine_objects_per_s": slow_f4,
                "message_concurrency_10_objects_per_s": slow_f10,
                "baseline_objects_per_s": slow_b,
                "ratio": slow_f4 / slow_b,
                "ratio_message_concurrency_10": slow_f10 / slow_b,
            },
            "function": "the replicator binary, one execution environment, invocations one after another",
            "baseline": "bench/baseline.py: alibabacloud_oss_v2 GET then boto3 PUT, sequential",
        }),
    );
    Ok(())
}

async fn p5(args: &RunArgs, plan: &Plan, stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    let runs = plan.init_runs;
    let mut truth = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let status = Command::new("/bin/true").status()?;
        truth.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(status.success(), "/bin/true failed");
    }
    let mut forwarder = Vec::new();
    let logs = stack.logs();
    for _ in 0..runs {
        let mut command = Command::new(args.bin_dir.join("bootstrap"));
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command.envs([
            ("HOME", stack.work.join("home").display().to_string()),
            (
                "SQS_QUEUE_URL",
                "http://127.0.0.1:9/000000000000/bench-tasks".to_owned(),
            ),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", S3_KEYS.0.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", S3_KEYS.1.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("FC_CUSTOM_LISTEN_PORT", testkit::free_port().to_string()),
        ]);
        let log = logs.join("forwarder-init.log");
        let (proc, _, elapsed) = tokio::task::spawn_blocking(move || {
            Proc::spawn_until_line(
                "oss-forwarder",
                command,
                "listening on",
                &log,
                Duration::from_secs(20),
            )
        })
        .await??;
        forwarder.push(elapsed.as_secs_f64() * 1000.0);
        drop(proc);
    }
    let mut replicator = Vec::new();
    let env = replicator_env(stack, "dst-init", None);
    let home = stack.work.join("home");
    std::fs::create_dir_all(&home)?;
    for _ in 0..runs {
        let mut function = Function::start(
            &args.bin_dir.join("replicator"),
            &env,
            OSS_KEYS,
            &stack.logs().join("replicator-init.log"),
            &home,
        )
        .await?;
        let polled = function.api.first_poll(Duration::from_secs(20)).await?;
        replicator.push(polled.duration_since(function.spawned).as_secs_f64() * 1000.0);
    }
    let base = median(&truth);
    let fwd = median(&forwarder);
    let rep = median(&replicator);
    let target = if args.quick {
        Verdict::Info
    } else {
        Verdict::Met
    };
    let verdict = |over: f64| {
        if target == Verdict::Info {
            Verdict::Info
        } else {
            Verdict::of(over < 30.0)
        }
    };
    report.row(
        "P5",
        &format!("forwarder exec → listening (median of {runs})"),
        format!(
            "{fwd:.1} ms (+{:.1} over /bin/true {base:.1} ms; p90 {:.1})",
            fwd - base,
            quantile(&forwarder, 0.9)
        ),
        "< 30 ms over /bin/true",
        verdict(fwd - base),
    );
    report.row(
        "P5",
        &format!("replicator exec → first Runtime API poll (median of {runs})"),
        format!(
            "{rep:.1} ms (+{:.1}; p90 {:.1})",
            rep - base,
            quantile(&replicator, 0.9)
        ),
        "< 30 ms over /bin/true",
        verdict(rep - base),
    );
    report.figures(
        "P5",
        json!({
            "runs": runs,
            "bin_true_ms": truth,
            "forwarder_ms": forwarder,
            "replicator_ms": replicator,
            "bin_true_median_ms": base,
            "forwarder_median_ms": fwd,
            "replicator_median_ms": rep,
        }),
    );
    Ok(())
}

/// Request counts per object, by operation, for one batch.
async fn count_requests(
    stack: &Stack,
    proxy: &CountingProxy,
    api: &mut crate::lambda::RuntimeApi,
    bodies: &[String],
    objects: usize,
) -> anyhow::Result<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    stack.reset_oss_requests().await?;
    proxy.take();
    let response = api.invoke(sqs_event(bodies), INVOKE_TIMEOUT).await?;
    ensure!(batch_failures(&response)?.is_empty(), "P7 batch failed");
    let per = |n: f64| n / objects as f64;
    let oss = stack
        .oss_requests()
        .await?
        .into_iter()
        .filter_map(|(op, n)| n.as_f64().filter(|n| *n > 0.0).map(|n| (op, per(n))))
        .collect();
    let s3 = proxy
        .take()
        .into_iter()
        .map(|(op, n)| (op, per(n as f64)))
        .collect();
    Ok((oss, s3))
}

fn describe(counts: &BTreeMap<String, f64>) -> String {
    let total: f64 = counts.values().sum();
    let parts: Vec<String> = counts
        .iter()
        .map(|(op, n)| format!("{op} {}", trim(*n)))
        .collect();
    format!("{} ({})", trim(total), parts.join(", "))
}

fn trim(n: f64) -> String {
    if (n - n.round()).abs() < 1e-9 {
        format!("{}", n.round())
    } else {
        format!("{n:.2}")
    }
}

async fn p7(args: &RunArgs, plan: &Plan, stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    stack.create_bucket("dst-p7").await?;
    let proxy = CountingProxy::start(&stack.s3_endpoint).await?;
    let env = replicator_env(stack, "dst-p7", Some(proxy.url()));
    let function = start_function(args, stack, &env, "replicator-p7.log").await?;
    let Function { proc, mut api, .. } = function;
    let small: Vec<String> = (0..plan.p7_small)
        .map(|i| task_body(&p7_small_key(i), plan.small_size))
        .collect();
    let (small_oss, small_s3) =
        count_requests(stack, &proxy, &mut api, &small, plan.p7_small).await?;
    let multipart = vec![task_body("p7/multipart.bin", plan.p7_multipart)];
    let (mp_oss, mp_s3) = count_requests(stack, &proxy, &mut api, &multipart, 1).await?;
    // Replaying the same batch shows what an already-replicated object costs.
    let (again_oss, again_s3) =
        count_requests(stack, &proxy, &mut api, &small, plan.p7_small).await?;
    drop(proc);
    let (copied, _) = stack.count_objects("dst-p7").await?;
    ensure!(
        copied == plan.p7_small + 1,
        "dst-p7 holds {copied} objects, expected {}",
        plan.p7_small + 1
    );
    let parts = plan.p7_multipart.div_ceil(CopySettings::DEFAULT_PART_SIZE);
    report.row(
        "P7",
        &format!(
            "requests per {} KiB object: OSS; S3",
            plan.small_size / 1024
        ),
        format!("{}; {}", describe(&small_oss), describe(&small_s3)),
        "",
        Verdict::Info,
    );
    report.row(
        "P7",
        &format!(
            "requests for one {} object ({parts} parts): OSS; S3",
            human(plan.p7_multipart)
        ),
        format!("{}; {}", describe(&mp_oss), describe(&mp_s3)),
        "",
        Verdict::Info,
    );
    report.row(
        "P7",
        "requests per already-replicated object: OSS; S3",
        format!("{}; {}", describe(&again_oss), describe(&again_s3)),
        "",
        Verdict::Info,
    );
    report.figures(
        "P7",
        json!({
            "small_objects": plan.p7_small,
            "small_object_bytes": plan.small_size,
            "small_per_object": { "oss": small_oss, "s3": small_s3 },
            "multipart_object_bytes": plan.p7_multipart,
            "multipart_parts": parts,
            "multipart": { "oss": mp_oss, "s3": mp_s3 },
            "already_replicated_per_object": { "oss": again_oss, "s3": again_s3 },
            "s3_counted_by": "a counting proxy in front of the sink",
        }),
    );
    Ok(())
}

/// When each P4 object was written to OSS and first seen in S3.
#[derive(Debug, Default)]
struct Sightings {
    put: BTreeMap<String, Instant>,
    seen: BTreeMap<String, Instant>,
    failed_puts: usize,
}

async fn p4(args: &RunArgs, plan: &Plan, bench: &Stack, report: &mut Report) -> anyhow::Result<()> {
    let binaries = devstack::Binaries {
        oss_emulator: args.bin_dir.join("oss-emulator"),
        forwarder: args.bin_dir.join("bootstrap"),
        replicator: args.bin_dir.join("replicator"),
    };
    let run_dir = bench.work.join("devstack");
    let config = devstack::StackConfig::new(binaries, args.python.clone(), run_dir);
    let parameters = json!({
        "rate_per_s": plan.p4_rate,
        "seconds": plan.p4_seconds,
        "object_bytes": plan.small_size,
        "function_instances": config.function_instances,
        "batch_size": config.batch_size,
        "batching_window_ms": config.batching_window.as_millis() as u64,
        "stack": "tools/devstack: emulator trigger → forwarder → SQS (moto) → event source mapping emulation → replicator → S3 (moto)",
    });
    let stack = devstack::Stack::start(config)
        .await
        .context("start the local stack")?;
    let driven = drive_p4(&stack, plan).await;
    stack.shutdown().await;
    let (sightings, poll_interval) = driven?;
    let total = plan.p4_rate * plan.p4_seconds;
    let latencies: Vec<f64> = sightings
        .put
        .iter()
        .filter_map(|(key, put)| {
            sightings
                .seen
                .get(key)
                .map(|seen| seen.duration_since(*put).as_secs_f64() * 1000.0)
        })
        .collect();
    ensure!(
        sightings.failed_puts == 0,
        "{} OSS PUTs failed",
        sightings.failed_puts
    );
    let missing = total - latencies.len();
    let (p50, p95, p99, max) = (
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.95),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
    );
    report.row(
        "P4",
        &format!(
            "OSS PUT → readable in S3, {}/s for {} s (p50 / p95 / p99 / max)",
            plan.p4_rate, plan.p4_seconds
        ),
        format!(
            "{p50:.0} / {p95:.0} / **{p99:.0}** / {max:.0} ms{}",
            if missing > 0 {
                format!(", {missing} of {total} never arrived")
            } else {
                String::new()
            }
        ),
        "p99 < 1 s",
        if args.quick {
            Verdict::Info
        } else {
            Verdict::of(p99 < 1000.0 && missing == 0)
        },
    );
    let mut figures = parameters;
    figures["objects"] = json!(total);
    figures["arrived"] = json!(latencies.len());
    figures["p50_ms"] = json!(p50);
    figures["p95_ms"] = json!(p95);
    figures["p99_ms"] = json!(p99);
    figures["max_ms"] = json!(max);
    figures["poll_interval_ms"] = json!(poll_interval.as_millis() as u64);
    report.figures("P4", figures);
    ensure!(
        missing == 0,
        "{missing} of {total} objects never reached S3"
    );
    Ok(())
}

/// Writes `rate` objects a second for `seconds` into OSS (each PUT on its own task, so a slow
/// one does not delay the schedule) and lists S3 until every object is there (or 60 s after
/// the last PUT). Keys are grouped per second, so each listing is short.
async fn drive_p4(stack: &devstack::Stack, plan: &Plan) -> anyhow::Result<(Sightings, Duration)> {
    use std::sync::{Arc, Mutex, PoisonError};
    use transfer::oss::{PutBody, client::PutObjectOptions};

    let poll_interval = Duration::from_millis(25);
    let oss = stack.oss_client()?;
    let src_bucket = stack.config().oss_bucket.clone();
    let dst_bucket = stack.config().dst_bucket.clone();
    let s3 = stack.s3().clone();
    let body = bytes::Bytes::from(crate::env::pattern(plan.small_size, 4));
    let sightings = Arc::new(Mutex::new(Sightings::default()));
    let total = plan.p4_rate * plan.p4_seconds;
    let writer = {
        let sightings = Arc::clone(&sightings);
        let rate = plan.p4_rate;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut puts = tokio::task::JoinSet::new();
            for i in 0..total {
                ticks.tick().await;
                let key = format!("p4/{:03}/{i:05}.bin", i / rate);
                let (oss, bucket, body) = (oss.clone(), src_bucket.clone(), body.clone());
                let sightings = Arc::clone(&sightings);
                puts.spawn(async move {
                    let started = Instant::now();
                    let result = oss
                        .put_object(
                            &bucket,
                            &key,
                            PutBody::Bytes(body),
                            &PutObjectOptions::default(),
                        )
                        .await;
                    let mut s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
                    match result {
                        Ok(_) => {
                            s.put.insert(key, started);
                        }
                        Err(e) => {
                            eprintln!("bench: P4 PUT {key} failed: {e}");
                            s.failed_puts += 1;
                        }
                    }
                });
            }
            while puts.join_next().await.is_some() {}
        })
    };
    let mut writer = Some(writer);
    let mut give_up: Option<Instant> = None;
    loop {
        tokio::time::sleep(poll_interval).await;
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            if let Some(w) = writer.take() {
                w.await?;
            }
            give_up = Some(Instant::now() + Duration::from_secs(60));
        }
        let prefixes: std::collections::BTreeSet<String> = {
            let s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            s.put
                .keys()
                .filter(|k| !s.seen.contains_key(*k))
                .filter_map(|k| k.rsplit_once('/').map(|(p, _)| format!("{p}/")))
                .collect()
        };
        let done = {
            let s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            writer.is_none() && s.seen.len() + s.failed_puts >= total
        };
        if done || give_up.is_some_and(|g| Instant::now() > g) {
            break;
        }
        for prefix in prefixes {
            let page = s3
                .list_objects_v2()
                .bucket(&dst_bucket)
                .prefix(&prefix)
                .send()
                .await
                .with_context(|| format!("list s3://{dst_bucket}/{prefix}"))?;
            let now = Instant::now();
            let mut s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            for object in page.contents() {
                if let Some(key) = object.key()
                    && s.put.contains_key(key)
                    && !s.seen.contains_key(key)
                {
                    s.seen.insert(key.to_owned(), now);
                }
            }
        }
    }
    let sightings = std::mem::take(&mut *sightings.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((sightings, poll_interval))
}
