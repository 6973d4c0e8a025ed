//! P6: the forwarder on its own. Its SQS is testkit's sink, which checks each call's shape and
//! counts, so neither moto nor the network sets the pace. Data Transfer Hub's Python forwarder
//! (`bench/dth_forwarder.py`) runs on the same sink for comparison.

use std::collections::BTreeSet;
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use testkit::aws_stub::AwsStub;
use transfer::message::{LegacyDefaults, parse_message};

use super::{
    Command, Context, Duration, Instant, ManagedProcess, Plan, ReadyLine, Report, RunArgs, Stack,
    Verdict, ensure, json,
};
use crate::env::S3_KEYS;

/// Invocations in flight, as OSS triggers drive one FC instance (its `instanceConcurrency`).
const CONCURRENCY: usize = 20;
/// Invocations before the forwarder's measurement (connections, allocator, page cache).
const WARM_UP: usize = 200;
/// Calls before the Python forwarder's measurement (boto3's default session and its models).
const PYTHON_WARM_UP: usize = 10;
/// The queue both forwarders send to.
const QUEUE: (&str, &str) = ("000000000000", "bench-tasks");

/// The forwarder's command line: the `bootstrap` binary with only the variables FC would set
/// and the ones its configuration needs. `sqs_endpoint` overrides the SQS endpoint; `wrapper`
/// (a profiler's command line) runs the binary under it.
pub(super) fn forwarder_command(
    args: &RunArgs,
    stack: &Stack,
    (queue_url, sqs_endpoint): (&str, Option<&str>),
    port: u16,
    wrapper: Option<&str>,
) -> Command {
    let binary = args.bin_dir.join("bootstrap");
    let mut words = wrapper.unwrap_or_default().split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(&binary);
            command
        }
        None => Command::new(&binary),
    };
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs([
        ("HOME", stack.work.join("home").display().to_string()),
        ("SQS_QUEUE_URL", queue_url.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", S3_KEYS.0.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", S3_KEYS.1.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("FC_CUSTOM_LISTEN_PORT", port.to_string()),
    ]);
    if let Some(endpoint) = sqs_endpoint {
        command.env("AWS_ENDPOINT_URL_SQS", endpoint);
    }
    command
}

/// Starts the forwarder and waits until it listens; returns it and the time that took.
pub(super) async fn spawn_forwarder(
    command: Command,
    log: std::path::PathBuf,
) -> anyhow::Result<(ManagedProcess, Duration)> {
    let (process, ready) = tokio::task::spawn_blocking(move || {
        ManagedProcess::spawn_until(
            "oss-forwarder",
            command,
            &log,
            ReadyLine {
                prefix: "oss-forwarder listening on",
                timeout: Duration::from_secs(20),
            },
        )
    })
    .await??;
    Ok((process, ready.after))
}

/// The OSS trigger body of one `PutObject` event (`events/oss-put.json`) for object `i`.
fn trigger_body(template: &Value, i: usize) -> String {
    let mut body = template.clone();
    let object = &mut body["events"][0]["oss"]["object"];
    object["key"] = json!(format!("p6/{i:06}.bin"));
    object["size"] = json!(4096 + i);
    object["deltaSize"] = json!(4096 + i);
    body["events"][0]["responseElements"]["requestId"] = json!(format!("{i:024X}"));
    body.to_string()
}

/// POSTs every body to the forwarder, `CONCURRENCY` at a time, as FC invokes it; fails on the
/// first invocation that FC would count as failed.
async fn invoke_all(client: &reqwest::Client, url: &str, bodies: &[String]) -> anyhow::Result<()> {
    futures::stream::iter(bodies.iter().enumerate())
        .map(|(i, body)| async move {
            let response = client
                .post(url)
                .header("x-fc-request-id", format!("p6-{i}"))
                .header("content-type", "application/octet-stream")
                .body(body.clone())
                .send()
                .await
                .with_context(|| format!("invoke {i}"))?;
            let status = response.status();
            let fc_status = response
                .headers()
                .get("x-fc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let text = response.text().await.unwrap_or_default();
            ensure!(
                status.is_success() && fc_status == "200",
                "invocation {i} failed: HTTP {status}, x-fc-status {fc_status:?}: {text}"
            );
            anyhow::Ok(())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// Checks that the sink holds exactly one message per body, each naming its body's key in a
/// shape the replicator accepts (a task, or the legacy `{"key","size"}`).
fn check_sent(sink: &AwsStub, bodies: &[String], who: &str) -> anyhow::Result<()> {
    let legacy = LegacyDefaults {
        region: "cn-hangzhou",
        bucket: "src-bucket",
    };
    let mut sent = BTreeSet::new();
    let messages = sink.messages();
    for message in &messages {
        let tasks = parse_message(message.body.as_bytes(), legacy)
            .with_context(|| format!("{who} sent {:?}", message.body))?
            .into_tasks(&transfer::trigger::EventFilter::default());
        sent.extend(tasks.into_iter().map(|t| t.source.key));
    }
    let expected: BTreeSet<String> = bodies
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_str(b).unwrap_or_default();
            v["events"][0]["oss"]["object"]["key"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    ensure!(
        messages.len() == bodies.len() && sent == expected,
        "{who}: the sink holds {} messages for {} distinct keys; expected one for each of {} events",
        messages.len(),
        sent.len(),
        bodies.len()
    );
    ensure!(
        sink.refused().is_empty(),
        "{who}: the sink refused {:?}",
        sink.refused()
    );
    Ok(())
}

/// What one forwarder run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    events: usize,
    seconds: f64,
    cpu_seconds: f64,
    /// SQS calls the sink accepted.
    send_calls: u64,
}

impl Run {
    fn rate(self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }

    fn cpu_ms_per_event(self) -> f64 {
        self.cpu_seconds * 1000.0 / self.events.max(1) as f64
    }
}

/// Runs the `bootstrap` binary and drives it with `bodies` (after a warm-up).
async fn run_forwarder(
    args: &RunArgs,
    stack: &Stack,
    sink: &AwsStub,
    bodies: &[String],
) -> anyhow::Result<Run> {
    let port = testkit::free_port();
    let command = forwarder_command(
        args,
        stack,
        (&sink.queue_url(QUEUE.0, QUEUE.1), Some(&sink.url())),
        port,
        args.profile_with.as_deref(),
    );
    let (process, _) = spawn_forwarder(command, stack.logs().join("forwarder-p6.log")).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let url = format!("http://127.0.0.1:{port}/invoke");
    let (warm, measured) = bodies.split_at(WARM_UP.min(bodies.len() / 2));
    invoke_all(&client, &url, warm).await.context("warm-up")?;
    sink.reset();
    let cpu0 = process.cpu()?;
    let started = Instant::now();
    invoke_all(&client, &url, measured).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process.cpu()?.saturating_sub(cpu0).as_secs_f64();
    drop(process);
    check_sent(sink, measured, "the forwarder")?;
    Ok(Run {
        events: measured.len(),
        seconds,
        cpu_seconds,
        send_calls: sink.send_calls(),
    })
}

/// Runs `bench/dth_forwarder.py` over `bodies` (after a warm-up) against the sink.
async fn run_python(
    args: &RunArgs,
    stack: &Stack,
    sink: &AwsStub,
    bodies: &[String],
) -> anyhow::Result<Run> {
    let events_file = stack.work.join("p6-events.jsonl");
    std::fs::write(&events_file, bodies.join("\n"))?;
    sink.reset();
    let mut command = Command::new(&args.python);
    command
        .arg(Path::new("bench").join("dth_forwarder.py"))
        .arg("--events-file")
        .arg(&events_file)
        .args(["--warm-up", &PYTHON_WARM_UP.to_string()])
        .envs([
            ("ACCESS_KEY", S3_KEYS.0),
            ("SECRET_KEY", S3_KEYS.1),
            ("REGION_NAME", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
        .env("QUEUE_URL", sink.queue_url(QUEUE.0, QUEUE.1))
        .env("AWS_ENDPOINT_URL_SQS", sink.url())
        .stderr(std::fs::File::create(
            stack.logs().join("dth-forwarder.log"),
        )?);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    ensure!(
        output.status.success(),
        "the Python forwarder failed (log: {})",
        stack.logs().join("dth-forwarder.log").display()
    );
    let result: Value =
        serde_json::from_slice(&output.stdout).context("the Python forwarder's output")?;
    check_sent(sink, bodies, "the Python forwarder")?;
    let number = |field: &str| {
        result[field]
            .as_f64()
            .with_context(|| format!("the Python forwarder's output has no {field}"))
    };
    Ok(Run {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a count of events"
        )]
        events: number("events")? as usize,
        seconds: number("seconds")?,
        cpu_seconds: number("cpu_seconds")?,
        send_calls: sink.send_calls(),
    })
}

pub(super) async fn forwarder_alone(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let template: Value = serde_json::from_str(&std::fs::read_to_string(
        Path::new("events").join("oss-put.json"),
    )?)?;
    let sink = AwsStub::start("{}").await?;
    let bodies: Vec<String> = (0..WARM_UP + plan.p6_events)
        .map(|i| trigger_body(&template, i))
        .collect();
    let ours = run_forwarder(args, stack, &sink, &bodies).await?;
    let python_bodies: Vec<String> = (0..PYTHON_WARM_UP + plan.p6_python_events)
        .map(|i| trigger_body(&template, i))
        .collect();
    let python = run_python(args, stack, &sink, &python_bodies).await?;
    let fraction = ours.cpu_ms_per_event() / python.cpu_ms_per_event().max(1e-9);
    report.row(
        "P6",
        &format!(
            "forwarder alone: events/s, {} invocations of one event each, {CONCURRENCY} in flight",
            ours.events
        ),
        format!("**{:.0}** events/s", ours.rate()),
        "",
        Verdict::Info,
    );
    report.row(
        "P6",
        "CPU-ms per event: forwarder vs Data Transfer Hub's Python forwarder (boto3 client per call)",
        format!(
            "{:.3} vs {:.2} ms = **1/{:.0}** ({:.0} events/s, one call at a time)",
            ours.cpu_ms_per_event(),
            python.cpu_ms_per_event(),
            1.0 / fraction.max(1e-9),
            python.rate()
        ),
        "≤ 1/20",
        if args.quick {
            Verdict::Info
        } else {
            Verdict::of(fraction <= 1.0 / 20.0)
        },
    );
    report.figures(
        "P6",
        json!({
            "sink": "testkit::aws_stub: checks SendMessage/SendMessageBatch shapes and counts",
            "concurrency": CONCURRENCY,
            "forwarder": {
                "events": ours.events,
                "warm_up": WARM_UP,
                "seconds": ours.seconds,
                "events_per_s": ours.rate(),
                "cpu_seconds": ours.cpu_seconds,
                "cpu_ms_per_event": ours.cpu_ms_per_event(),
                "send_calls_per_event": ours.send_calls as f64 / ours.events as f64,
            },
            "python": {
                "events": python.events,
                "warm_up": PYTHON_WARM_UP,
                "seconds": python.seconds,
                "events_per_s": python.rate(),
                "cpu_seconds": python.cpu_seconds,
                "cpu_ms_per_event": python.cpu_ms_per_event(),
                "what": "bench/dth_forwarder.py: Data Transfer Hub's tutorial handler, in-process, one call at a time",
            },
            "cpu_fraction": fraction,
        }),
    );
    Ok(())
}
