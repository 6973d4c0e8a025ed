//! P3: small objects through the function against a boto3 loop, on loopback and with OSS
//! 20 ms away, at the template's defaults and at the other shapes that chose them.

use super::{
    Command, Context, Instant, OSS_KEYS, Path, Plan, Report, RunArgs, S3_KEYS, SRC_BUCKET, Stack,
    Value, Verdict, ensure, event_body, json, replicator_env, small_key, start_function,
};
use replicator::BatchSettings;
use std::time::Duration;

/// How the function takes small-object messages: how many one invocation carries (the event
/// source mapping's `BatchSize`) and how many of them it copies at once (`MESSAGE_CONCURRENCY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    batch: usize,
    concurrency: usize,
}

impl Shape {
    /// The template's defaults.
    const DEFAULT: Self = Self {
        batch: BatchSettings::RECOMMENDED_BATCH_SIZE,
        concurrency: BatchSettings::DEFAULT_MESSAGE_CONCURRENCY,
    };

    /// Every shape measured: the defaults first, then those they were chosen against (the
    /// defaults until 2026-12 among them).
    fn measured() -> Vec<Self> {
        let mut shapes = vec![Self::DEFAULT];
        for (batch, concurrency) in [(10, 10), (100, 10), (100, 32), (100, 50), (100, 100)] {
            let shape = Self { batch, concurrency };
            if !shapes.contains(&shape) {
                shapes.push(shape);
            }
        }
        shapes
    }

    fn label(self) -> String {
        format!("{} × {}", self.batch, self.concurrency)
    }

    fn bucket(self, prefix: &str) -> String {
        format!("{prefix}-{}x{}", self.batch, self.concurrency)
    }
}

/// One copy of every key, by the function or by the baseline: wall time, and the CPU time of
/// the copying process and of both servers.
#[derive(Debug, Clone, Copy)]
struct Run {
    objects: usize,
    seconds: f64,
    client_cpu: f64,
    emulator_cpu: f64,
    sink_cpu: Option<f64>,
    /// TCP connections the emulator accepted meanwhile.
    oss_connections: u64,
}

impl Run {
    fn objects_per_s(&self) -> f64 {
        self.objects as f64 / self.seconds
    }

    /// CPU-milliseconds per object of the client, the emulator and the S3 server (when it is
    /// a process of its own).
    fn cpu_ms(&self) -> (f64, f64, Option<f64>) {
        let per = |s: f64| s * 1000.0 / self.objects as f64;
        (
            per(self.client_cpu),
            per(self.emulator_cpu),
            self.sink_cpu.map(per),
        )
    }

    fn figures(&self) -> Value {
        let (client, emulator, sink) = self.cpu_ms();
        json!({
            "objects_per_s": self.objects_per_s(),
            "cpu_ms_per_object": client,
            "emulator_cpu_ms_per_object": emulator,
            "sink_cpu_ms_per_object": sink,
            "oss_connections": self.oss_connections,
        })
    }
}

/// The servers' counters when a run starts.
struct Servers {
    started: Instant,
    emulator: Duration,
    sink: Option<Duration>,
    connections: u64,
}

impl Servers {
    async fn start(stack: &Stack) -> anyhow::Result<Self> {
        Ok(Self {
            connections: stack.oss_connections().await?,
            emulator: stack.emulator.cpu()?,
            sink: stack.sink_cpu(),
            started: Instant::now(),
        })
    }

    /// The run since `start`, `client_cpu` being the copying process's CPU time.
    async fn finish(self, stack: &Stack, objects: usize, client_cpu: f64) -> anyhow::Result<Run> {
        let seconds = self.started.elapsed().as_secs_f64();
        Ok(Run {
            objects,
            seconds,
            client_cpu,
            emulator_cpu: stack
                .emulator
                .cpu()?
                .saturating_sub(self.emulator)
                .as_secs_f64(),
            sink_cpu: stack
                .sink_cpu()
                .zip(self.sink)
                .map(|(now, then)| now.saturating_sub(then).as_secs_f64()),
            oss_connections: stack.oss_connections().await? - self.connections,
        })
    }
}

/// Replicates every key through the function in invocations of `shape.batch` messages (one
/// execution environment, invocations one after another) and checks the destination.
async fn small_through_function(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    keys: &[String],
    bucket: &str,
    shape: Shape,
) -> anyhow::Result<Run> {
    stack.create_bucket(bucket).await?;
    let mut env = replicator_env(stack, bucket, None);
    env.extra
        .push(("MESSAGE_CONCURRENCY".into(), shape.concurrency.to_string()));
    // The tasks the forwarder would send: each event names the object's ETag and size.
    let etags = stack.oss_etags(keys).await?;
    let bodies: Vec<String> = keys
        .iter()
        .zip(&etags)
        .map(|(key, etag)| event_body(key, plan.small_size, etag))
        .collect();
    // Started, the function has not yet spoken to OSS: it connects as it copies.
    let function = start_function(args, stack, &env, "replicator-small.log").await?;
    let (cpu0, _) = function.usage()?;
    let servers = Servers::start(stack).await?;
    for batch in bodies.chunks(shape.batch) {
        function.replicate(batch).await?;
    }
    let cpu = function.usage()?.0.saturating_sub(cpu0).as_secs_f64();
    let run = servers.finish(stack, keys.len(), cpu).await?;
    drop(function);
    let n = keys.len();
    let (copied, bytes) = stack.count_objects(bucket).await?;
    ensure!(
        copied == n && bytes == n as u64 * plan.small_size,
        "{bucket} holds {copied} objects ({bytes} bytes), expected {n}"
    );
    Ok(run)
}

/// Runs `bench/baseline.py` over `keys` into `bucket` and checks it.
async fn baseline(
    args: &RunArgs,
    stack: &Stack,
    keys: &[String],
    bucket: &str,
) -> anyhow::Result<Run> {
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
    let servers = Servers::start(stack).await?;
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    ensure!(
        output.status.success(),
        "baseline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).context("baseline output")?;
    let number = |name: &str| {
        result[name]
            .as_f64()
            .with_context(|| format!("baseline output without {name}: {result}"))
    };
    // The servers' CPU over the whole process (they idle while Python starts); the loop's own
    // time and CPU as the script measured them.
    let mut run = servers
        .finish(stack, keys.len(), number("cpu_seconds")?)
        .await?;
    run.seconds = number("seconds")?;
    let (copied, _) = stack.count_objects(bucket).await?;
    ensure!(
        copied == keys.len(),
        "{bucket} holds {copied} objects, expected {}",
        keys.len()
    );
    Ok(run)
}

/// Rounds over every shape: the shapes alternate, so that a slow moment of the shared machine
/// does not fall on one shape alone.
const ROUNDS: usize = 3;

/// Copies `keys` through the function at every shape, [`ROUNDS`] times each (each into its
/// own bucket), between two runs of the baseline; returns each shape's median run (by rate)
/// and the faster of the baseline's two, so that the ratio errs against the function.
async fn every_shape_and_baseline(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    keys: &[String],
    prefix: &str,
) -> anyhow::Result<(Vec<(Shape, Run)>, Run)> {
    let before = baseline(args, stack, keys, &format!("{prefix}-baseline-1")).await?;
    let shapes = Shape::measured();
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); shapes.len()];
    for round in 0..ROUNDS {
        for (shape, runs) in shapes.iter().zip(&mut runs) {
            let bucket = format!("{}-{round}", shape.bucket(prefix));
            let run = small_through_function(args, plan, stack, keys, &bucket, *shape)
                .await
                .with_context(|| format!("{} messages per invocation", shape.label()))?;
            runs.push(run);
        }
    }
    let after = baseline(args, stack, keys, &format!("{prefix}-baseline-2")).await?;
    let median = |mut runs: Vec<Run>| {
        runs.sort_by(|a, b| a.objects_per_s().total_cmp(&b.objects_per_s()));
        runs[runs.len() / 2]
    };
    let measured = shapes
        .into_iter()
        .zip(runs.into_iter().map(median))
        .collect();
    let base = if before.objects_per_s() >= after.objects_per_s() {
        before
    } else {
        after
    };
    Ok((measured, base))
}

/// "a + b + c = total" CPU-ms per object.
fn cpu_sum(run: &Run) -> String {
    let (client, emulator, sink) = run.cpu_ms();
    let total = client + emulator + sink.unwrap_or(0.0);
    match sink {
        Some(sink) => format!("{client:.2} + {emulator:.2} + {sink:.2} = {total:.2}"),
        None => format!("{client:.2} + {emulator:.2} + (S3 server not measured) = {total:.2}"),
    }
}

/// Adds the rows of one setting: the defaults against the baseline (with the target), every
/// other shape, and where the CPU goes; returns the setting's figures.
fn rows(
    args: &RunArgs,
    report: &mut Report,
    setting: &str,
    measured: &[(Shape, Run)],
    baseline: &Run,
) -> Value {
    let (default_shape, default) = &measured[0];
    let baseline_rate = baseline.objects_per_s();
    let ratio = default.objects_per_s() / baseline_rate;
    report.row(
        "P3",
        &format!(
            "{setting}, the template's defaults ({} messages per invocation, {} at once): function vs boto3 loop",
            default_shape.batch, default_shape.concurrency
        ),
        format!(
            "{:.0} vs {baseline_rate:.0} objects/s = **{ratio:.1}×** ({} connections to OSS)",
            default.objects_per_s(),
            default.oss_connections
        ),
        "≥ 10×",
        if args.quick {
            Verdict::Info
        } else {
            Verdict::of(ratio >= 10.0)
        },
    );
    let others: Vec<String> = measured[1..]
        .iter()
        .map(|(shape, run)| {
            format!(
                "{}: {:.0} ({:.1}×)",
                shape.label(),
                run.objects_per_s(),
                run.objects_per_s() / baseline_rate
            )
        })
        .collect();
    report.row(
        "P3",
        &format!("{setting}, other shapes (messages per invocation × at once): objects/s"),
        others.join("; "),
        "",
        Verdict::Info,
    );
    report.row(
        "P3",
        &format!(
            "{setting}, CPU-ms per object, client + emulator + S3 server: function at the defaults; boto3 loop"
        ),
        format!("{}; {}", cpu_sum(default), cpu_sum(baseline)),
        "",
        Verdict::Info,
    );
    let shapes: Vec<Value> = measured
        .iter()
        .map(|(shape, run)| {
            let mut figures = run.figures();
            figures["batch_size"] = json!(shape.batch);
            figures["message_concurrency"] = json!(shape.concurrency);
            figures["ratio"] = json!(run.objects_per_s() / baseline_rate);
            figures
        })
        .collect();
    json!({
        "objects": default.objects,
        "batch_size": default_shape.batch,
        "message_concurrency": default_shape.concurrency,
        "engine_objects_per_s": default.objects_per_s(),
        "engine": default.figures(),
        "baseline_objects_per_s": baseline_rate,
        "baseline": baseline.figures(),
        "ratio": ratio,
        "shapes": shapes,
    })
}

pub(super) async fn small_object_rate(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = plan.small_count;
    let keys: Vec<String> = (0..n).map(small_key).collect();
    // An unmeasured pass first, so that the first measured run does not pay for the servers'
    // cold start (page cache, the S3 server's first writes) alone.
    small_through_function(
        args,
        plan,
        stack,
        &keys[..(n / 10).max(1)],
        "dst-warm-up",
        Shape::DEFAULT,
    )
    .await
    .context("warm-up")?;
    let (measured, base) = every_shape_and_baseline(args, plan, stack, &keys, "dst-small").await?;
    let mut figures = rows(
        args,
        report,
        &format!("{n} × {} KiB", plan.small_size / 1024),
        &measured,
        &base,
    );

    // The same with every OSS request 20 ms away, as OSS is from AWS in a real deployment;
    // fewer objects, since the baseline now takes at least 20 ms per object.
    let slow_keys = &keys[..plan.latency_count.min(keys.len())];
    stack.set_oss_latency(Some(plan.oss_latency_ms)).await?;
    let slow = every_shape_and_baseline(args, plan, stack, slow_keys, "dst-slow").await;
    stack.set_oss_latency(None).await?;
    let (slow_measured, slow_base) = slow?;
    let mut with_latency = rows(
        args,
        report,
        &format!(
            "{} objects, OSS {} ms away",
            slow_keys.len(),
            plan.oss_latency_ms
        ),
        &slow_measured,
        &slow_base,
    );
    with_latency["oss_latency_ms"] = json!(plan.oss_latency_ms);

    figures["object_bytes"] = json!(plan.small_size);
    figures["with_oss_latency"] = with_latency;
    figures["function"] =
        json!("the replicator binary, one execution environment, invocations one after another");
    figures["baseline_is"] =
        json!("bench/baseline.py: alibabacloud_oss_v2 GET then boto3 PUT, sequential");
    report.figures("P3", figures);
    Ok(())
}
