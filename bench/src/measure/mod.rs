//! The measurements, P1–P9 (see `docs/bench.md`), one module per figure; this module holds the
//! plan, the run and what the figures share.

mod forwarder;
mod latency;
mod listing;
mod memory;
mod requests;
mod small_objects;
mod startup;
mod throughput;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use transfer::replicate::CopySettings;
use transfer::task::{ReplicationTask, SourceObject};

use crate::RunArgs;
use crate::cost;
use crate::env::{OSS_KEYS, S3_KEYS, SRC_BUCKET, Seed, Stack, seed};
use testkit::process::{ManagedProcess, ReadyLine, free_bytes, machine_load};
use testkit::s3_proxy::S3Proxy;

use crate::lambda::{Function, ReplicatorEnv};
use crate::report::{Report, Verdict, median, quantile};

use transfer::size::{GIB, MIB};
/// How long one invocation may take (Lambda's maximum).
const INVOKE_TIMEOUT: Duration = Duration::from_mins(15);

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
    /// The large file of the cost model (Data Transfer Hub's 50 MB).
    p7_cost_large: u64,
    /// P4's arrival rates, objects per second, each run on a fresh stack.
    p4_rates: [usize; 2],
    p6_events: usize,
    p6_python_events: usize,
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
                p7_cost_large: 20_000_000,
                p4_rates: [10, 40],
                p6_events: 200,
                p6_python_events: 20,
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
                p7_cost_large: 50_000_000,
                p4_rates: [50, 200],
                p6_events: 20_000,
                p6_python_events: 1000,
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

/// P7's object of the cost model's large case.
const P7_COST_LARGE: &str = "p7/cost-large.bin";

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

/// A task as the forwarder makes it from an OSS trigger event: with the object's ETag and size,
/// and the event's name.
fn event_body(key: &str, size: u64, etag: &str) -> String {
    ReplicationTask {
        event_name: Some("ObjectCreated:PutObject".to_owned()),
        ..ReplicationTask::put(SourceObject {
            region: "cn-hangzhou".into(),
            bucket: SRC_BUCKET.into(),
            key: key.into(),
            size: Some(size),
            etag: Some(etag.trim_matches('"').to_owned()),
        })
    }
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
        seeds.push((P7_COST_LARGE.into(), plan.p7_cost_large));
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
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.quick {
            "bench/results/latest-quick.json"
        } else {
            "bench/results/latest.json"
        })
    });
    let outcome = outcome.and_then(|()| add_cost_model(&mut report, &out, args.quick));

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
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report.json(&meta))?)?;
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
        let way = (throughput::Way::OssToS3, huge);
        throughput::throughput_and_memory(args, plan, stack, report, way)
            .await
            .context("P1/P2")?;
    }
    if args.wants("p1r") || args.wants("p2r") {
        // The S3 source, the emulator's parts and its assembled object, the S3 server's parts
        // while the source is written, plus slack.
        let need = plan.huge * 4 + plan.large * 2 + GIB;
        let free = free_bytes(&stack.work).unwrap_or(0);
        let huge = args.wants("p2r") && free >= need;
        if args.wants("p2r") && !huge {
            report.note(format!(
                "P2R {} object skipped: {:.1} GiB free, {:.1} GiB needed",
                human(plan.huge),
                free as f64 / GIB as f64,
                need as f64 / GIB as f64
            ));
        }
        let way = (throughput::Way::S3ToOss, huge);
        throughput::throughput_and_memory(args, plan, stack, report, way)
            .await
            .context("P1R/P2R")?;
    }
    if args.wants("p3") {
        small_objects::small_object_rate(args, plan, stack, report)
            .await
            .context("P3")?;
    }
    if args.wants("p5") {
        startup::startup_time(args, plan, stack, report)
            .await
            .context("P5")?;
    }
    if args.wants("p6") {
        forwarder::forwarder_alone(args, plan, stack, report)
            .await
            .context("P6")?;
    }
    if args.wants("p7") {
        requests::requests_per_object(args, plan, stack, report)
            .await
            .context("P7")?;
    }
    if args.wants("p4") {
        latency::end_to_end_latency(args, plan, stack, report)
            .await
            .context("P4")?;
    }
    if args.wants("p9") {
        listing::listing_rate_and_memory(args, stack, report)
            .await
            .context("P9")?;
    }
    if args.wants("p8") {
        memory::memory_over_object_size(args, stack, report)
            .await
            .context("P8")?;
    }
    Ok(())
}

/// Adds the cost model (`docs/cost.md`) to the report. It needs P1, P3, P6 and P7; those this
/// run skipped come from the last run's results in `previous` (same mode), and a note says so.
/// Fails only when this run measured all four and the model still cannot be computed.
fn add_cost_model(report: &mut Report, previous: &Path, quick: bool) -> anyhow::Result<()> {
    let earlier: Option<Value> = std::fs::read_to_string(previous)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let mut figures = earlier
        .as_ref()
        .map(|e| e["figures"].clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let reused: Vec<&str> = ["P1", "P3", "P6", "P7"]
        .into_iter()
        .filter(|id| !report.recorded().contains_key(*id) && figures.get(*id).is_some())
        .collect();
    for (id, value) in report.recorded() {
        figures[id] = value.clone();
    }
    let deployment = cost::Deployment::default();
    let model = cost::Measured::from_figures(&figures).and_then(|measured| {
        let prices = cost::Prices::load(Path::new("bench/prices.json"))?;
        Ok(cost::Model::compute(&prices, &deployment, &measured))
    });
    let model = match model {
        Ok(model) => model,
        Err(e)
            if ["P1", "P3", "P6", "P7"]
                .iter()
                .all(|id| report.recorded().contains_key(*id)) =>
        {
            return Err(e.context("the cost model"));
        }
        Err(e) => {
            report.note(format!("cost model skipped: {e:#}"));
            return Ok(());
        }
    };
    let json = model.json(&deployment);
    let per_tb = |case: &str, field: &str| json[case][field].as_f64().unwrap_or_default();
    let ratio = model.floor_ratio();
    report.row(
        "C",
        &format!(
            "cost of {} KB files, all but data transfer, vs the floor (S3's PUT price alone), per TB",
            model.small.object_bytes / 1000
        ),
        format!(
            "${:.0} vs ${:.0} = **{ratio:.2}×**",
            per_tb("small", "all_but_transfer_per_tb"),
            json["floor_per_tb"].as_f64().unwrap_or_default()
        ),
        &format!("≤ {}×", cost::FLOOR_TARGET),
        if quick {
            Verdict::Info
        } else {
            Verdict::of(ratio <= cost::FLOOR_TARGET)
        },
    );
    let [(dth_small, dth_small_tb), (dth_large, dth_large_tb)] = cost::DTH_PER_TB;
    report.row(
        "C",
        &format!(
            "cost per TB, all in: {} KB files; {} MB files (Data Transfer Hub, {} KB and {} MB: ${dth_small_tb:.0}; ${dth_large_tb:.0})",
            model.small.object_bytes / 1000,
            model.large.object_bytes / 1_000_000,
            dth_small / 1000,
            dth_large / 1_000_000,
        ),
        format!(
            "${:.0}; ${:.2}",
            per_tb("small", "total_per_tb"),
            per_tb("large", "total_per_tb")
        ),
        "",
        Verdict::Info,
    );
    if !reused.is_empty() {
        let date = earlier
            .as_ref()
            .and_then(|e| e["meta"]["date"].as_str())
            .unwrap_or("an earlier run")
            .to_owned();
        report.note(format!(
            "cost model: {} from the run of {date} (not measured in this run)",
            reused.join(", ")
        ));
        // Kept in this run's results, marked, so that the next partial run and
        // `oss2s3-bench cost` find them too.
        for id in reused {
            let mut value = figures[id].clone();
            if value.get("reused_from").is_none() {
                value["reused_from"] = json!(date);
            }
            report.figures(id, value);
        }
    }
    report.figures("cost", json);
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
        s3_source: None,
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
    Function::start(
        &args.bin_dir.join("replicator"),
        env,
        OSS_KEYS,
        &stack.logs().join(log),
        &home,
        INVOKE_TIMEOUT,
    )
    .await
}
