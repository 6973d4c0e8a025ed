//! The command line: parsing, dispatch to the stores, printing.
// The doc comments of the argument structs are the `--help` text, written for a terminal.
#![expect(
    clippy::doc_markdown,
    reason = "doc comments here are --help text, not rustdoc"
)]

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use transfer::job::JobRequest;
use transfer::migrate::Overwrite;

use crate::filter::{Filters, parse_size, parse_time};
use crate::job::{JobOptions, JobResult, Mode};
use crate::location::{Location, Service};
use crate::progress::Progress;
use crate::stats::human_bytes;
use crate::throttle::Timetable;
use crate::{job, queue, status, stores};

/// Migration jobs between Alibaba Cloud OSS and Amazon S3: diff, sync and verify whole buckets.
///
/// Locations are oss://bucket/prefix and s3://bucket/prefix. OSS settings come from OSS_REGION,
/// OSS_ENDPOINT, OSS_PATH_STYLE and OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET (or OSS_SECRET_ID,
/// a Secrets Manager secret); AWS uses the standard credential chain and AWS_ENDPOINT_URL*.
#[derive(Debug, Parser)]
#[command(name = "oss2s3", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what a sync would do (objects and bytes to copy, up to date, extra, conflicts) and
    /// an estimate of its requests, cost and time. Changes nothing.
    Diff(DiffArgs),
    /// Copy what the destination lacks or holds in an older version, in this process, with the
    /// replicator's engine; write the job's report.
    Sync(SyncArgs),
    /// Compare without copying; write the report; exit 1 when anything differs.
    Verify(VerifyArgs),
    /// Where one object stands: replicated (the marker matches), stale, missing, pending, or in
    /// the DLQ with its reason. Exit 0 only when replicated.
    Status(StatusArgs),
    /// The replicator's dead-letter queue: list failures with kind and reason, or move them
    /// back to the task queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Check a deployment before trusting it: the queue's attributes and redrive policy, the
    /// DLQ, the event source mapping that feeds the replicator (enabled, partial batch
    /// responses, concurrency cap) and its function's timeout, the secret's format and that the
    /// OSS key can list the bucket, and the destination bucket's versioning and
    /// AbortIncompleteMultipartUpload rule. Each finding says how to fix it. Exit 1 when anything
    /// fails.
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
struct DoctorArgs {
    /// The task queue's URL (the stack's QueueUrl output).
    #[arg(long, value_name = "URL")]
    queue: Option<String>,
    /// The replicator's timeout in seconds, to check the queue's visibility timeout against.
    /// Default: the timeout of the function the queue's event source mapping feeds.
    #[arg(long, value_name = "SECONDS")]
    function_timeout: Option<u64>,
    /// The Secrets Manager secret with the OSS keys (the replicator's OSS_SECRET_ID). Without
    /// it, the OSS keys come from the environment.
    #[arg(long, value_name = "ID")]
    secret: Option<String>,
    /// The source, e.g. oss://bucket/prefix: the keys must be able to list it.
    #[arg(long, value_name = "LOCATION")]
    source: Option<Location>,
    /// The destination, e.g. s3://bucket/prefix.
    #[arg(long, value_name = "LOCATION")]
    destination: Option<Location>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The source object: oss://bucket/key or s3://bucket/key.
    object: Location,
    /// Where it is replicated to: s3://bucket/prefix (the replicator's DST_BUCKET and
    /// DST_PREFIX) or oss://bucket/prefix.
    destination: Location,
    /// The replicator's SRC_PREFIX: stripped from the key before DST_PREFIX is put in front.
    #[arg(long, default_value = "")]
    src_prefix: String,
    /// The task queue's URL: report whether tasks are still pending there.
    #[arg(long, value_name = "URL")]
    queue: Option<String>,
    /// The DLQ's URL: look for this object's failures there.
    #[arg(long, value_name = "URL")]
    dlq: Option<String>,
    /// How many DLQ messages to look through.
    #[arg(long, default_value_t = 1000)]
    dlq_scan: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Show the DLQ's messages: object, failure kind and reason, receive count. Messages are
    /// hidden while they are read and made visible again at the end.
    List {
        /// The DLQ's URL.
        #[arg(long, value_name = "URL")]
        dlq: String,
        /// The most messages to show.
        #[arg(long, default_value_t = 1000)]
        max: usize,
        /// Print one JSON object per message.
        #[arg(long)]
        json: bool,
    },
    /// Move DLQ messages back to the task queue (each is sent first, then deleted from the
    /// DLQ, so none is lost). Fix the cause first, or they come back.
    Redrive {
        /// The DLQ's URL.
        #[arg(long, value_name = "URL")]
        dlq: String,
        /// The task queue's URL.
        #[arg(long, value_name = "URL")]
        queue: String,
        /// Only messages of this failure kind (repeatable; `redrive-policy` for messages the
        /// queue moved after too many receives). Default: every kind.
        #[arg(long, value_name = "KIND")]
        kind: Vec<String>,
        /// The most messages to move.
        #[arg(long, default_value_t = 10_000)]
        max: usize,
        /// Show what would move, and move nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// The source: oss://bucket/prefix or s3://bucket/prefix.
    source: Location,
    /// The destination: s3://bucket/prefix or oss://bucket/prefix. Keys map as the replicator's
    /// SRC_PREFIX/DST_PREFIX do: source prefix + rest becomes destination prefix + rest.
    destination: Location,
    /// Only keys (relative to the source prefix) matching this glob; repeatable. `*` stays
    /// within a path segment, `**` crosses segments. Default: every key.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Leave out keys matching this glob; repeatable. Default: none.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Only source objects last modified at or after this time (2024-05-01 or RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    modified_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only source objects last modified before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    modified_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only source objects of at least this size (bytes, or with K, M, G, T).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    min_size: Option<u64>,
    /// Only source objects of at most this size.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,
    /// Also HEAD each source object present on both sides and compare the whole marker (CRC-64
    /// and a digest of the metadata), which finds metadata-only changes. Default: compare the
    /// listed ETag and size with the marker.
    #[arg(long)]
    check_metadata: bool,
    /// Objects compared or copied at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// No progress bar or progress lines.
    #[arg(long)]
    quiet: bool,
    /// Keys per listing page (1 to 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000), hide = true)]
    page_size: u32,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Where the job's report goes: a local directory, or s3://bucket/prefix or
    /// oss://bucket/prefix (written locally under --state-dir, then uploaded). The report is
    /// REPORT/JOB_ID/{total,completed,skipped,error}_list.csv.gz, summary.json and report.html.
    #[arg(long, value_name = "DIR|URL", default_value = "oss2s3-reports")]
    report: String,
    /// Where jobs reported to a bucket keep their files and checkpoints locally.
    #[arg(long, value_name = "DIR", default_value = ".oss2s3/jobs")]
    state_dir: PathBuf,
    /// The job's ID (letters, digits, `-`, `_`, `.`). Default: the start time and a random
    /// suffix, e.g. 20261201-120000-3f9a.
    #[arg(long, value_name = "ID")]
    job_id: Option<String>,
}

#[derive(Debug, Args)]
struct DiffArgs {
    #[command(flatten)]
    common: Common,
    /// Which destination objects a sync would replace: never; changed (those whose marker
    /// names an older version of the source object); always (every one without the current
    /// marker, including objects oss2s3 did not write).
    #[arg(long, default_value = "changed", value_parser = clap::value_parser!(Overwrite))]
    overwrite: Overwrite,
    /// Count the destination-only objects a sync --delete would remove.
    #[arg(long)]
    delete: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Throughput assumed for the time estimate (bytes/s, or with K, M, G).
    #[arg(long, default_value = "100M", value_parser = parse_size)]
    assume_throughput: u64,
    /// Price assumed for data leaving the source's cloud, in USD per GiB (check your region's
    /// price list; the default is a typical internet egress price).
    #[arg(long, default_value_t = 0.09)]
    egress_price: f64,
}

#[derive(Debug, Args)]
struct SyncArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    report: ReportArgs,
    /// Copy in this process with the replicator's engine (the default).
    #[arg(long, conflicts_with = "queue")]
    local: bool,
    /// Hand the job to the deployed replicator through its task queue: the job is split into
    /// key-range shards, each listed and diffed by the replicator, which enqueues the copies.
    /// Needs --report s3://bucket/prefix, where the replicator writes each shard's summary.
    /// The destination must be the replicator's DST_BUCKET (and DST_PREFIX).
    #[arg(long, value_name = "URL")]
    queue: Option<String>,
    /// (--queue) Wait until every shard is done and the queue has drained, then verify the
    /// job's range and write the report: what the job copied (from the task lists its shards
    /// wrote), what was already up to date, and what still differs.
    #[arg(long, requires = "queue")]
    wait: bool,
    /// (--queue) How many key-range shards to plan (1 to 1000). Split points are spread between
    /// the source's first and last keys, found with one-key listings; a shard that proves large
    /// splits the rest of its range in two while it runs.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=i64::from(transfer::job::MAX_SHARDS)))]
    shards: u32,
    /// (--queue --wait) Give up waiting after this many seconds.
    #[arg(long, default_value_t = 86_400)]
    wait_timeout: u64,
    /// Which destination objects may be replaced: never; changed (those whose marker names an
    /// older version of the source object; objects without a marker are kept and reported as
    /// conflicts unless they hold the same bytes); always (every one without the current
    /// marker, including objects oss2s3 did not write).
    #[arg(long, default_value = "changed", value_parser = clap::value_parser!(Overwrite))]
    overwrite: Overwrite,
    /// Also delete destination objects whose source is gone, but only those carrying oss2s3's
    /// marker for the source key they map to. Off by default. With --queue, the replicator
    /// must be deployed with ReplicateDeletes=true.
    #[arg(long)]
    delete: bool,
    /// Limit reads from the source to this many bytes/s (512K, 10M, ...), or follow a timetable
    /// of local times, e.g. "08:00,10M 19:00,off". With --queue, one rate shared by the shards
    /// (each spaces its copies' starts with SQS delays). Default: no limit.
    #[arg(long, value_name = "RATE|TIMETABLE")]
    bwlimit: Option<Timetable>,
    /// At most this many objects copied or deleted a second (with --queue: copies started,
    /// shared by the shards). Default: no limit.
    #[arg(long, value_name = "N")]
    tpslimit: Option<NonZeroU32>,
    /// Continue the interrupted job JOB_ID (same command and locations) after its checkpoint.
    #[arg(long, value_name = "JOB_ID", conflicts_with = "job_id")]
    resume: Option<String>,
    /// The multipart part size (at least 5M).
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    part_size: u64,
    /// The most bytes of object data held in memory at once.
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    memory: u64,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    report: ReportArgs,
    /// Objects only in the destination are not a difference.
    #[arg(long)]
    allow_extra: bool,
}

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oss2s3: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oss2s3: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Raised by the first Ctrl-C; the second quits at once.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("oss2s3: stopping after the objects in flight (Ctrl-C again to quit now)");
            flag.store(true, Ordering::SeqCst);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    stop
}

fn new_job_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{:04x}",
        chrono::Local::now().format("%Y%m%d-%H%M%S"),
        (nanos ^ std::process::id()) & 0xffff
    )
}

fn check_job_id(id: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !id.is_empty()
            && id.len() <= 128
            && id != "."
            && id != ".."
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "the job ID {id:?} must be 1 to 128 letters, digits, '-', '_' or '.'"
    );
    Ok(())
}

fn base_options(mode: Mode, c: &Common) -> anyhow::Result<JobOptions> {
    anyhow::ensure!(
        c.source.service != c.destination.service,
        "oss2s3 copies between OSS and S3; both locations are on {}",
        c.source.service.scheme()
    );
    let mut filters = Filters::new(&c.include, &c.exclude).map_err(anyhow::Error::msg)?;
    filters.modified_after = c.modified_after;
    filters.modified_before = c.modified_before;
    filters.min_size = c.min_size;
    filters.max_size = c.max_size;
    let source_region = match c.source.service {
        Service::Oss => std::env::var("OSS_REGION").unwrap_or_default(),
        Service::S3 => std::env::var("AWS_REGION").unwrap_or_default(),
    };
    Ok(JobOptions {
        mode,
        source: c.source.clone(),
        destination: c.destination.clone(),
        overwrite: Overwrite::Changed,
        delete: false,
        check_metadata: c.check_metadata,
        allow_extra: false,
        filters,
        concurrency: usize::from(c.concurrency),
        tps: None,
        bandwidth: None,
        job_id: String::new(),
        job_dir: None,
        resume: None,
        part_size: transfer::replicate::CopySettings::DEFAULT_PART_SIZE,
        memory_budget: transfer::replicate::CopySettings::DEFAULT_MEMORY_BUDGET,
        progress: if c.quiet {
            Progress::Off
        } else {
            Progress::Auto
        },
        page_size: Some(c.page_size),
        source_region,
        enqueued: None,
    })
}

/// Where a job's files live locally, and the bucket they are uploaded to, if any.
fn job_dir(report: &ReportArgs, job_id: &str) -> anyhow::Result<(PathBuf, Option<Location>)> {
    if report.report.contains("://") {
        let location: Location = report.report.parse().map_err(anyhow::Error::msg)?;
        Ok((report.state_dir.join(job_id), Some(location)))
    } else {
        Ok((PathBuf::from(&report.report).join(job_id), None))
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let aws = stores::aws_config().await;
    match cli.command {
        Command::Diff(args) => {
            let mut options = base_options(Mode::Diff, &args.common)?;
            options.overwrite = args.overwrite;
            options.delete = args.delete;
            if args.json {
                options.progress = Progress::Off;
            }
            "diff".clone_into(&mut options.job_id);
            let result = dispatch(options.clone(), &aws, Arc::new(AtomicBool::new(false))).await?;
            print_diff(&options, &args, &result);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync(args) if args.queue.is_some() => run_queued(&args, &aws).await,
        Command::Sync(args) => {
            let _ = args.local;
            let mut options = base_options(Mode::Sync, &args.common)?;
            options.overwrite = args.overwrite;
            options.delete = args.delete;
            options.bandwidth = args.bwlimit.clone();
            options.tps = args.tpslimit;
            options.part_size = args.part_size;
            options.memory_budget = args.memory;
            anyhow::ensure!(
                args.part_size >= 5 << 20,
                "--part-size must be at least 5M (S3's smallest part)"
            );
            let job_id = args
                .resume
                .clone()
                .or_else(|| args.report.job_id.clone())
                .unwrap_or_else(new_job_id);
            run_reported(options, &args.report, job_id, args.resume.is_some(), &aws).await
        }
        Command::Status(args) => object_status(&args, &aws).await,
        Command::Dlq(command) => dlq(command, &aws).await,
        Command::Doctor(args) => {
            let target = crate::doctor::Target {
                queue: args.queue,
                function_timeout: args.function_timeout,
                secret: args.secret,
                source: args.source,
                destination: args.destination,
            };
            anyhow::ensure!(
                target.queue.is_some()
                    || target.secret.is_some()
                    || target.source.is_some()
                    || target.destination.is_some(),
                "nothing to check: give --queue, --secret, --source and/or --destination"
            );
            let s3 = stores::s3_store(&aws)?;
            let findings = crate::doctor::run(&aws, s3.client(), &target).await;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&findings)?);
            } else {
                for f in &findings {
                    println!("{f}");
                }
            }
            let failed = findings
                .iter()
                .any(|f| f.level == crate::doctor::Level::Fail);
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Verify(args) => {
            let mut options = base_options(Mode::Verify, &args.common)?;
            options.allow_extra = args.allow_extra;
            let job_id = args.report.job_id.clone().unwrap_or_else(new_job_id);
            run_reported(options, &args.report, job_id, false, &aws).await
        }
    }
}

async fn run_reported(
    mut options: JobOptions,
    report: &ReportArgs,
    job_id: String,
    resume: bool,
    aws: &aws_config::SdkConfig,
) -> anyhow::Result<ExitCode> {
    check_job_id(&job_id)?;
    let (dir, upload) = job_dir(report, &job_id)?;
    if resume {
        let checkpoint = job::load_checkpoint(&dir)?;
        job::check_resume(&checkpoint, &options)?;
        options.resume = Some(checkpoint);
    } else {
        anyhow::ensure!(
            !dir.join("checkpoint.json").exists(),
            "job {job_id} already exists in {}; choose another --job-id, or --resume it",
            dir.display()
        );
    }
    options.job_id.clone_from(&job_id);
    options.job_dir = Some(dir.clone());
    let mode = options.mode;
    let stop = stop_on_ctrl_c();
    let result = dispatch(options, aws, Arc::clone(&stop)).await?;
    if let Some(location) = upload {
        upload_report(&dir, &location, &job_id, aws).await?;
        eprintln!("oss2s3: report uploaded to {location}{job_id}/");
    }
    let s = &result.summary;
    println!(
        "{} {}: {} objects ({} completed, {} skipped, {} failed), {} copied in {:.1} s ({}/s)",
        s.command,
        s.job_id,
        s.objects.total,
        s.objects.completed,
        s.objects.skipped,
        s.objects.failed,
        human_bytes(s.copied_bytes),
        s.duration_seconds,
        human_bytes(crate::stats::whole(s.throughput_bytes_per_second)),
    );
    for (status, n) in &s.statuses {
        println!("  {status:<14} {n}");
    }
    println!("report: {}", dir.join("report.html").display());
    if stop.load(Ordering::SeqCst) {
        println!("interrupted: resume with --resume {job_id}");
        return Ok(ExitCode::from(130));
    }
    let ok = result.summary.ok;
    if !ok && mode == Mode::Verify {
        println!("verify: the buckets differ (see error_list.csv.gz)");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `sync --queue`: sends the shards, and with `--wait` waits for them and verifies.
async fn run_queued(args: &SyncArgs, aws: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    anyhow::ensure!(
        c.source.service == Service::Oss && c.destination.service == Service::S3,
        "--queue runs on the deployed OSS → S3 replicator: the source must be oss:// and the destination s3://"
    );
    let bytes_per_second = match &args.bwlimit {
        None => None,
        Some(timetable) => timetable.single_rate().ok_or_else(|| {
            anyhow::anyhow!(
                "--bwlimit: a timetable applies to --local jobs; a queued job takes one rate (such as 10M), shared by its shards"
            )
        })?,
    };
    anyhow::ensure!(
        c.include.is_empty()
            && c.exclude.is_empty()
            && c.modified_after.is_none()
            && c.modified_before.is_none()
            && c.min_size.is_none()
            && c.max_size.is_none(),
        "filters apply to --local jobs; a queued job takes every object under the source prefix"
    );
    let report: Location = args.report.report.parse().map_err(|e: String| {
        anyhow::anyhow!(
            "with --queue, --report must be s3://bucket/prefix the replicator can write to: {e}"
        )
    })?;
    anyhow::ensure!(
        report.service == Service::S3,
        "with --queue, --report must be s3://bucket/prefix the replicator can write to"
    );
    let job_id = args.report.job_id.clone().unwrap_or_else(new_job_id);
    check_job_id(&job_id)?;
    let job = crate::queued::QueuedJob {
        request: JobRequest {
            job_id: job_id.clone(),
            source_bucket: c.source.bucket.clone(),
            prefix: c.source.prefix.clone(),
            shards: args.shards,
            overwrite: args.overwrite.to_string(),
            delete: args.delete,
            report_bucket: report.bucket.clone(),
            report_prefix: report.prefix.clone(),
            bytes_per_second,
            objects_per_second: args.tpslimit.map(|n| f64::from(n.get())),
        },
        queue_url: args.queue.clone().unwrap_or_default(),
        report: report.clone(),
    };
    let sqs = aws_sdk_sqs::Client::new(aws);
    let source = stores::oss_client(aws)?;
    let sent_at = chrono::Utc::now();
    let sent = crate::queued::send(&sqs, &source, &job).await?;
    println!(
        "sync {job_id}: {sent} shards sent to {}; the replicator lists, diffs and copies them",
        job.queue_url
    );
    if !args.wait {
        println!(
            "follow it with: oss2s3 verify {} {} (or run again with --wait)",
            c.source, c.destination
        );
        return Ok(ExitCode::SUCCESS);
    }
    let s3 = stores::s3_store(aws)?;
    let (totals, summaries) = crate::queued::wait(
        &s3,
        &sqs,
        &job,
        u32::try_from(sent).unwrap_or(u32::MAX),
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(args.wait_timeout),
        c.quiet,
    )
    .await?;
    println!(
        "sync {job_id}: every shard done: {} objects listed, {} copy tasks ({}), {} up to date, {} conflicts, {} extra, {} delete tasks",
        totals.listed,
        totals.to_copy,
        human_bytes(totals.bytes_to_copy),
        totals.up_to_date,
        totals.conflicts,
        totals.extra,
        totals.to_delete
    );
    let mut options = base_options(Mode::Verify, c)?;
    // Objects only in the destination (the report's own files among them, when it shares the
    // bucket) are not a difference; --delete removed those oss2s3 wrote.
    options.allow_extra = true;
    options.enqueued = Some(crate::queued::JobTasks {
        store: s3,
        bucket: report.bucket.clone(),
        report_prefix: report.prefix.clone(),
        job_id: job_id.clone(),
        pieces: transfer::job::pieces_in_key_order(&summaries),
        sent_at,
    });
    let report_args = ReportArgs {
        report: args.report.report.clone(),
        state_dir: args.report.state_dir.clone(),
        job_id: Some(job_id.clone()),
    };
    run_reported(options, &report_args, job_id, false, aws).await
}

/// Runs the job with the stores its locations name.
async fn dispatch(
    options: JobOptions,
    aws: &aws_config::SdkConfig,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JobResult> {
    let s3 = stores::s3_store(aws)?;
    let oss = stores::oss_client(aws)?;
    match options.source.service {
        Service::Oss => job::run(options, oss, s3, stop).await,
        Service::S3 => job::run(options, s3, oss, stop).await,
    }
}

async fn upload_report(
    dir: &std::path::Path,
    location: &Location,
    job_id: &str,
    aws: &aws_config::SdkConfig,
) -> anyhow::Result<()> {
    async fn upload_all<D: transfer::store::ObjectSink>(
        sink: &D,
        dir: &std::path::Path,
        location: &Location,
        job_id: &str,
    ) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let content_type = match path.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("json") => "application/json",
                Some("gz") => "application/gzip",
                _ => continue,
            };
            let bytes = bytes::Bytes::from(std::fs::read(&path)?);
            let key = format!("{}{job_id}/{name}", location.prefix);
            transfer::store::put_small(sink, &location.bucket, &key, bytes, content_type)
                .await
                .map_err(|e| anyhow::anyhow!("uploading the report to {location}: {e}"))?;
        }
        Ok(())
    }
    match location.service {
        Service::S3 => upload_all(&stores::s3_store(aws)?, dir, location, job_id).await,
        Service::Oss => upload_all(&stores::oss_client(aws)?, dir, location, job_id).await,
    }
}

fn print_diff(options: &JobOptions, args: &DiffArgs, result: &JobResult) {
    let stats = &result.stats;
    let count = |s: &str| stats.reasons.get(s).copied().unwrap_or(0);
    let bytes = |s: &str| stats.status_bytes.get(s).copied().unwrap_or(0);
    let copy_objects = count("missing") + count("changed");
    let copy_bytes = bytes("missing") + bytes("changed");
    let (src_requests, dst_requests) = result.estimated_requests;
    // Amazon S3 Standard request prices (us-east-1, from the S3 pricing page): PUT, COPY,
    // POST and LIST $0.005 per 1,000; GET, HEAD and others $0.0004 per 1,000.
    // Listing pages of 1,000 keys on the S3 side count as LIST requests.
    let s3_side = match options.destination.service {
        Service::S3 => count("up_to_date") + count("changed") + count("conflict") + count("extra"),
        Service::Oss => stats.objects.total - count("extra"),
    };
    let pages = s3_side.div_ceil(1000).max(1);
    // Destination requests are one HEAD per copy and the writes; source requests are a HEAD
    // and the GETs.
    let (s3_writes, s3_reads) = match options.destination.service {
        Service::S3 => (
            dst_requests.saturating_sub(copy_objects) + pages,
            copy_objects,
        ),
        Service::Oss => (pages, src_requests),
    };
    let request_cost = s3_writes as f64 * 0.005 / 1000.0 + s3_reads as f64 * 0.0004 / 1000.0;
    let egress_cost = copy_bytes as f64 / f64::from(1u32 << 30) * args.egress_price;
    let seconds = copy_bytes as f64 / args.assume_throughput.max(1) as f64;
    if args.json {
        let json = serde_json::json!({
            "source": options.source.to_string(),
            "destination": options.destination.to_string(),
            "to_copy": {"objects": copy_objects, "bytes": copy_bytes,
                        "missing": count("missing"), "changed": count("changed")},
            "up_to_date": {"objects": count("up_to_date"), "bytes": bytes("up_to_date")},
            "conflicts": {"objects": count("conflict"), "bytes": bytes("conflict")},
            "extra": {"objects": count("extra"), "bytes": bytes("extra")},
            "errors": count("failed"),
            "estimate": {"source_requests": src_requests, "destination_requests": dst_requests,
                         "s3_request_usd": request_cost, "egress_usd": egress_cost,
                         "seconds": seconds},
        });
        println!("{json:#}");
        return;
    }
    println!("oss2s3 diff {} -> {}", options.source, options.destination);
    let line = |label: &str, n: u64, b: u64, note: &str| {
        println!(
            "  {label:<11} {n:>10} objects {:>12}  {note}",
            human_bytes(b)
        );
    };
    line(
        "to copy",
        copy_objects,
        copy_bytes,
        &format!("missing {}, changed {}", count("missing"), count("changed")),
    );
    line("up to date", count("up_to_date"), bytes("up_to_date"), "");
    line(
        "conflicts",
        count("conflict"),
        bytes("conflict"),
        "kept by --overwrite; see its --help",
    );
    line(
        "extra",
        count("extra"),
        bytes("extra"),
        "only in the destination",
    );
    if count("failed") > 0 {
        println!(
            "  errors      {:>10} (objects that could not be compared)",
            count("failed")
        );
    }
    println!(
        "  estimate    {src_requests} source and {dst_requests} destination requests; ~${request_cost:.4} in S3 requests, ~${egress_cost:.2} egress; ~{seconds:.0} s at {}/s",
        human_bytes(args.assume_throughput)
    );
}

async fn object_status(args: &StatusArgs, aws: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let key = &args.object.prefix;
    anyhow::ensure!(
        !key.is_empty(),
        "{}: name an object, not a bucket",
        args.object
    );
    anyhow::ensure!(
        args.object.service != args.destination.service,
        "the object and the destination must be on different services"
    );
    let rest = key.strip_prefix(&args.src_prefix).ok_or_else(|| {
        anyhow::anyhow!(
            "the key {key:?} does not start with --src-prefix {:?}",
            args.src_prefix
        )
    })?;
    let destination_key = format!("{}{rest}", args.destination.prefix);
    let s3 = stores::s3_store(aws)?;
    let oss = stores::oss_client(aws)?;
    let (src, dst) = (&args.object, &args.destination);
    let found = match src.service {
        Service::Oss => {
            status::status(&oss, &src.bucket, key, &s3, &dst.bucket, &destination_key).await?
        }
        Service::S3 => {
            status::status(&s3, &src.bucket, key, &oss, &dst.bucket, &destination_key).await?
        }
    };
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut dead = Vec::new();
    if let (Some(dlq), false) = (&args.dlq, found.state == status::State::Replicated) {
        let letters =
            queue::receive(&sqs, dlq, args.dlq_scan, std::time::Duration::from_secs(30)).await?;
        dead = letters
            .iter()
            .filter(|l| l.bucket.as_deref() == Some(&src.bucket) && l.key.as_deref() == Some(key))
            .cloned()
            .collect();
        queue::release(&sqs, dlq, &letters.iter().collect::<Vec<_>>()).await?;
    }
    let mut pending = None;
    if let (Some(url), false) = (&args.queue, found.state == status::State::Replicated) {
        pending = Some(
            transfer::sqs::queue_depth(&sqs, url)
                .await
                .map_err(anyhow::Error::msg)?,
        );
    }
    if args.json {
        let json = serde_json::json!({
            "object": args.object.to_string(),
            "status": found,
            "dlq": dead,
            "queue": pending.map(|(v, f, d)| serde_json::json!({"visible": v, "in_flight": f, "delayed": d})),
        });
        println!("{json:#}");
    } else {
        println!("{}: {:?}", args.object, found.state);
        println!("  destination  {}/{}", dst.bucket, found.destination_key);
        println!("  detail       {}", found.detail);
        for l in &dead {
            println!(
                "  in the DLQ   {}: {} (received {} times)",
                l.kind, l.reason, l.receives
            );
        }
        if let Some((visible, in_flight, delayed)) = pending {
            let total = visible + in_flight + delayed;
            if total > 0 {
                println!(
                    "  pending?     the task queue holds {total} messages ({visible} visible, {in_flight} in flight, {delayed} delayed); this object's task may be among them"
                );
            } else {
                println!("  pending      no: the task queue is empty");
            }
        }
    }
    Ok(if found.state == status::State::Replicated {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn dlq(command: DlqCommand, aws: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    match command {
        DlqCommand::List { dlq, max, json } => {
            let letters =
                queue::receive(&sqs, &dlq, max, std::time::Duration::from_mins(1)).await?;
            if json {
                for l in &letters {
                    println!("{}", serde_json::to_string(l)?);
                }
            } else {
                for l in &letters {
                    println!(
                        "{} {}/{}  {}: {}  (received {} times)",
                        l.op.as_deref().unwrap_or("?"),
                        l.bucket.as_deref().unwrap_or("?"),
                        l.key.as_deref().unwrap_or("(not a task)"),
                        l.kind,
                        l.reason,
                        l.receives
                    );
                }
                println!("{} messages", letters.len());
            }
            queue::release(&sqs, &dlq, &letters.iter().collect::<Vec<_>>()).await?;
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Redrive {
            dlq,
            queue: task_queue,
            kind,
            max,
            dry_run,
        } => {
            let letters =
                queue::receive(&sqs, &dlq, max, std::time::Duration::from_mins(5)).await?;
            let (chosen, kept): (Vec<_>, Vec<_>) = letters
                .iter()
                .partition(|l| kind.is_empty() || kind.contains(&l.kind));
            let mut moved = 0;
            let mut failed = Vec::new();
            if dry_run {
                for l in &chosen {
                    println!(
                        "would move {}: {}",
                        l.key.as_deref().unwrap_or("(not a task)"),
                        l.kind
                    );
                }
            } else {
                for l in &chosen {
                    match queue::redrive(&sqs, &dlq, &task_queue, l).await {
                        Ok(()) => moved += 1,
                        Err(e) => {
                            eprintln!("oss2s3: {e:#}");
                            failed.push(*l);
                        }
                    }
                }
            }
            let mut release: Vec<&queue::DeadLetter> = kept;
            release.extend(failed.iter().copied());
            if dry_run {
                release.extend(chosen.iter().copied());
            }
            queue::release(&sqs, &dlq, &release).await?;
            println!(
                "{} {} of {} messages to {task_queue}",
                if dry_run { "would move" } else { "moved" },
                if dry_run { chosen.len() } else { moved },
                letters.len()
            );
            Ok(if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn job_ids_are_safe_directory_names() {
        assert!(check_job_id("20261201-120000-3f9a").is_ok());
        assert!(check_job_id(&new_job_id()).is_ok());
        for bad in ["", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_job_id(bad).is_err(), "{bad:?}");
        }
    }
}
