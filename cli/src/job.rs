//! A job: list both sides, merge, decide per object, act (sync) or only compare (diff,
//! verify), and record every object in the report.
//!
//! Objects are processed `--concurrency` at a time but recorded in key order, so the
//! checkpoint is simply the last key recorded: a resumed job lists both sides after it.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, future};
use serde::{Deserialize, Serialize};
use transfer::job::EnqueuedTask;
use transfer::migrate::{
    Comparison, Decision, Entry, ListingOptions, Overwrite, compare, list_objects, merge,
};
use transfer::replicate::{CopySettings, Delivery, Outcome, Replicator, SkipReason};
use transfer::retry::RetryPolicy;
use transfer::store::{ObjectSink, ObjectSource, unquote_etag};
use transfer::task::{ReplicationTask, SourceObject, TaskOp};

use crate::filter::Filters;
use crate::location::Location;
use crate::progress::{Expected, Progress};
use crate::report::{Lists, Row, Summary, write_atomic, write_summary};
use crate::stats::{Category, Stats};
use crate::throttle::{Bandwidth, Throttled, Timetable, Tps};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only say what a sync would do.
    Diff,
    /// Copy what the destination lacks or holds older.
    Sync,
    /// Compare; any difference fails the job.
    Verify,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Diff => "diff",
            Self::Sync => "sync",
            Self::Verify => "verify",
        }
    }
}

/// Everything a job needs to know.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// What the job does.
    pub mode: Mode,
    /// Where from.
    pub source: Location,
    /// Where to.
    pub destination: Location,
    /// Which destination objects may be replaced.
    pub overwrite: Overwrite,
    /// Delete destination objects oss2s3 wrote whose source is gone.
    pub delete: bool,
    /// Compare the whole marker (one more source HEAD per object on both sides).
    pub check_metadata: bool,
    /// (verify) Objects only in the destination are not a difference.
    pub allow_extra: bool,
    /// Which objects.
    pub filters: Filters,
    /// Objects in flight at once.
    pub concurrency: usize,
    /// At most this many objects copied or deleted a second.
    pub tps: Option<NonZeroU32>,
    /// Bandwidth limit for reads from the source.
    pub bandwidth: Option<Timetable>,
    /// The job's ID.
    pub job_id: String,
    /// The job's report directory (`REPORT/JOB_ID`); `None` for diff.
    pub job_dir: Option<PathBuf>,
    /// Resume from this checkpoint.
    pub resume: Option<Checkpoint>,
    /// The copy engine's settings (part size, memory budget).
    pub part_size: u64,
    /// The copy engine's memory budget.
    pub memory_budget: u64,
    /// Show a progress bar (a terminal) or plain lines every so often.
    pub progress: Progress,
    /// Keys per listing page (tests use small pages).
    pub page_size: Option<u32>,
    /// The source region, for the tasks the engine runs.
    pub source_region: String,
    /// (sync --queue --wait) The tasks the queued job enqueued: the verify that ends it reports
    /// those it finds done as copied (or deleted) by the job, and the rest as skipped.
    pub enqueued: Option<crate::queued::JobTasks>,
}

/// Where an interrupted job resumes: `checkpoint.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The job's ID.
    pub job_id: String,
    /// The job's mode.
    pub mode: Mode,
    /// The source location.
    pub source: String,
    /// The destination location.
    pub destination: String,
    /// The last relative key recorded; the job continues after it.
    pub after: Option<String>,
    /// The lists' lengths at the checkpoint.
    pub lengths: [u64; 4],
    /// What was counted by then.
    pub stats: Stats,
    /// When the job first started.
    pub started_at: DateTime<Utc>,
    /// Seconds the job ran before this checkpoint.
    pub elapsed: f64,
    /// Whether the job reached its end.
    pub finished: bool,
}

/// The outcome of one object.
struct Done {
    category: Category,
    row: Row,
    copied: u64,
    /// Requests a sync would make (diff): (source, destination).
    estimate: (u64, u64),
}

struct Context<S, D> {
    options: JobOptions,
    comparison: Comparison<Throttled<S>, D>,
    engine: Replicator<Throttled<S>, D>,
    tps: Option<Tps>,
}

/// How a job ended.
#[derive(Debug)]
pub struct JobResult {
    /// The summary (also in `summary.json`).
    pub summary: Summary,
    /// What was counted.
    pub stats: Stats,
    /// (diff) Requests a sync would make: source, destination, plus listing pages.
    pub estimated_requests: (u64, u64),
}

/// Runs the job `options` describe from `source` to `destination`. Raising `stop` ends it
/// cleanly: no new object starts, those in flight finish, the checkpoint is written.
pub async fn run<S, D>(
    options: JobOptions,
    source: S,
    destination: D,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JobResult>
where
    S: ObjectSource + Clone + 'static,
    D: ObjectSink + Clone + 'static,
{
    let bandwidth = options.bandwidth.clone().map(Bandwidth::new);
    let source = Throttled::new(source, bandwidth);
    let mut settings = CopySettings::new(&options.destination.bucket);
    settings.src_prefix.clone_from(&options.source.prefix);
    settings.dst_prefix.clone_from(&options.destination.prefix);
    settings.part_size = options.part_size;
    settings.memory_budget = options.memory_budget;
    settings.replicate_deletes = options.delete;
    settings.source_buckets = vec![options.source.bucket.clone()];
    let comparison = Comparison {
        source: source.clone(),
        source_bucket: options.source.bucket.clone(),
        source_prefix: options.source.prefix.clone(),
        destination: destination.clone(),
        destination_bucket: options.destination.bucket.clone(),
        destination_prefix: options.destination.prefix.clone(),
        overwrite: options.overwrite,
        check_metadata: options.check_metadata,
        check_extra_owner: options.delete,
    };
    let engine = Replicator::new(source.clone(), destination.clone(), settings);
    let resume = options.resume.clone();
    let after = resume.as_ref().and_then(|c| c.after.clone());
    let listing = |prefix: &str| ListingOptions {
        prefix: prefix.to_owned(),
        start_after: after.as_ref().map(|a| format!("{prefix}{a}")),
        page_size: options.page_size,
    };
    let entries = merge(
        list_objects(
            source.clone(),
            &options.source.bucket,
            listing(&options.source.prefix),
        ),
        &options.source.prefix,
        list_objects(
            destination.clone(),
            &options.destination.bucket,
            listing(&options.destination.prefix),
        ),
        &options.destination.prefix,
    );
    let expected = Expected::count(
        source.clone(),
        options.source.bucket.clone(),
        listing(&options.source.prefix),
        options.filters.clone(),
    );
    let ctx = Arc::new(Context {
        tps: options.tps.map(Tps::new),
        options,
        comparison,
        engine,
    });

    let lists = match &ctx.options.job_dir {
        Some(dir) => Some(Lists::open(dir, resume.as_ref().map(|c| &c.lengths))?),
        None => None,
    };
    let (started_at, elapsed_before) = match (&resume, &ctx.options.enqueued) {
        (Some(c), _) => (c.started_at, c.elapsed),
        // A queued job's report covers it from when its shards were sent.
        (None, Some(tasks)) => (
            tasks.sent_at,
            (Utc::now() - tasks.sent_at).as_seconds_f64().max(0.0),
        ),
        (None, None) => (Utc::now(), 0.0),
    };
    let mut enqueued = ctx
        .options
        .enqueued
        .as_ref()
        .map(crate::queued::JobTasks::stream);
    let stats = Arc::new(Mutex::new(
        resume.as_ref().map(|c| c.stats.clone()).unwrap_or_default(),
    ));
    let clock = Instant::now();
    let elapsed = || Duration::from_secs_f64(elapsed_before + clock.elapsed().as_secs_f64());
    let progress = ctx
        .options
        .progress
        .start(ctx.options.mode.as_str(), expected);

    let stop_feed = Arc::clone(&stop);
    let filter_ctx = Arc::clone(&ctx);
    let work_ctx = Arc::clone(&ctx);
    let mut work = entries
        .take_while(move |_| future::ready(!stop_feed.load(Ordering::SeqCst)))
        .try_filter(move |entry| future::ready(taken(&filter_ctx.options.filters, entry)))
        .map_ok(move |entry| {
            let ctx = Arc::clone(&work_ctx);
            async move {
                let done = process(&ctx, &entry).await;
                Ok::<_, transfer::store::StoreError>((entry.relative_key, done))
            }
        })
        .try_buffered(ctx.options.concurrency.max(1));

    let mut last_key = after;
    let mut last_checkpoint = Instant::now();
    let mut failure = None;
    let mut recorder = Recorder {
        lists,
        estimate: (0, 0),
        stats: &stats,
        progress,
    };
    loop {
        let item = tokio::select! {
            item = work.next() => item,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let mut s = stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.sample(elapsed());
                recorder.progress.update(&s);
                continue;
            }
        };
        let Some(item) = item else { break };
        let (key, mut done) = match item {
            Ok(done) => done,
            Err(e) => {
                failure = Some(anyhow::anyhow!("listing failed: {e}"));
                break;
            }
        };
        if let Some(enqueued) = &mut enqueued {
            let (gone, task) = match crate::queued::tasks_up_to(enqueued, Some(&key)).await {
                Ok(found) => found,
                Err(e) => {
                    failure = Some(anyhow::anyhow!("reading the job's task lists: {e}"));
                    break;
                }
            };
            for task in &gone {
                recorder.record(&gone_task(&ctx.options, task), elapsed())?;
            }
            done = queued_outcome(done, task.as_ref());
        }
        recorder.record(&done, elapsed())?;
        last_key = Some(key);
        if last_checkpoint.elapsed() >= Duration::from_secs(10) {
            if let Some(lists) = &mut recorder.lists {
                let s = stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                save_checkpoint(
                    &ctx.options,
                    lists,
                    last_key.as_ref(),
                    &s,
                    started_at,
                    elapsed(),
                    false,
                )?;
            }
            last_checkpoint = Instant::now();
        }
    }
    drop(work);
    if let Some(enqueued) = &mut enqueued
        && failure.is_none()
        && !stop.load(Ordering::SeqCst)
    {
        match crate::queued::tasks_up_to(enqueued, None).await {
            Ok((gone, _)) => {
                for task in &gone {
                    recorder.record(&gone_task(&ctx.options, task), elapsed())?;
                }
            }
            Err(e) => failure = Some(anyhow::anyhow!("reading the job's task lists: {e}")),
        }
    }
    let Recorder {
        mut lists,
        estimate,
        mut progress,
        ..
    } = recorder;
    let interrupted = stop.load(Ordering::SeqCst) || failure.is_some();
    let mut final_stats = stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    final_stats.sample(elapsed());
    final_stats.points.push(crate::stats::Point {
        t: elapsed().as_secs_f64(),
        bytes: final_stats.copied_bytes,
        objects: final_stats.objects.total,
    });
    progress.finish(&final_stats);
    let duration = elapsed().as_secs_f64();
    let summary = Summary {
        job_id: ctx.options.job_id.clone(),
        command: if ctx.options.enqueued.is_some() {
            Mode::Sync.as_str().to_owned()
        } else {
            ctx.options.mode.as_str().to_owned()
        },
        source: ctx.options.source.to_string(),
        destination: ctx.options.destination.to_string(),
        started_at,
        finished_at: Utc::now(),
        duration_seconds: duration,
        objects: final_stats.objects,
        bytes: final_stats.bytes,
        copied_bytes: final_stats.copied_bytes,
        throughput_bytes_per_second: if duration > 0.0 {
            final_stats.copied_bytes as f64 / duration
        } else {
            0.0
        },
        statuses: final_stats.reasons.clone(),
        interrupted,
        ok: final_stats.objects.failed == 0 && !interrupted,
    };
    if let (Some(lists), Some(dir)) = (&mut lists, &ctx.options.job_dir) {
        save_checkpoint(
            &ctx.options,
            lists,
            last_key.as_ref(),
            &final_stats,
            started_at,
            elapsed(),
            !interrupted,
        )?;
        write_summary(dir, &summary, &final_stats)?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(JobResult {
        summary,
        stats: final_stats,
        estimated_requests: estimate,
    })
}

fn save_checkpoint(
    options: &JobOptions,
    lists: &mut Lists,
    after: Option<&String>,
    stats: &Stats,
    started_at: DateTime<Utc>,
    elapsed: Duration,
    finished: bool,
) -> anyhow::Result<()> {
    let Some(dir) = &options.job_dir else {
        return Ok(());
    };
    let checkpoint = Checkpoint {
        job_id: options.job_id.clone(),
        mode: options.mode,
        source: options.source.to_string(),
        destination: options.destination.to_string(),
        after: after.cloned(),
        lengths: lists.sync()?,
        stats: stats.clone(),
        started_at,
        elapsed: elapsed.as_secs_f64(),
        finished,
    };
    write_atomic(
        &dir.join("checkpoint.json"),
        &serde_json::to_vec_pretty(&checkpoint)?,
    )
}

/// Whether the filters take an entry: source objects by key, size and time; destination-only
/// objects by key.
fn taken(filters: &Filters, entry: &Entry) -> bool {
    match entry.source() {
        Some(source) => filters.takes(&entry.relative_key, source),
        None => filters.takes_key(&entry.relative_key),
    }
}

fn row(ctx_options: &JobOptions, entry: &Entry, status: &str, reason: impl Into<String>) -> Row {
    let object = entry.source().or(entry.destination());
    Row {
        key: format!("{}{}", ctx_options.source.prefix, entry.relative_key),
        destination_key: format!("{}{}", ctx_options.destination.prefix, entry.relative_key),
        size: object.map_or(0, |o| o.size),
        etag: object.map_or("", |o| unquote_etag(&o.etag)).to_owned(),
        crc64: None,
        last_modified: object
            .and_then(|o| o.last_modified)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        status: status.to_owned(),
        reason: reason.into(),
    }
}

/// Where each object's outcome goes: the report's lists, the counts and the progress display.
struct Recorder<'a> {
    lists: Option<Lists>,
    estimate: (u64, u64),
    stats: &'a Mutex<Stats>,
    progress: crate::progress::Running,
}

impl Recorder<'_> {
    fn record(&mut self, done: &Done, elapsed: Duration) -> anyhow::Result<()> {
        self.estimate.0 += done.estimate.0;
        self.estimate.1 += done.estimate.1;
        if let Some(lists) = &mut self.lists {
            lists.write(done.category, &done.row)?;
        }
        let mut s = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.record(
            done.category,
            &done.row.status,
            &done.row.key,
            done.row.size,
            &done.row.reason,
            done.copied,
        );
        s.sample(elapsed);
        self.progress.update(&s);
        Ok(())
    }
}

/// (sync --queue) What the verify at a queued job's end found for an object, given the task the
/// job enqueued for it, if any.
fn queued_outcome(mut done: Done, task: Option<&EnqueuedTask>) -> Done {
    match (task, done.row.status.as_str()) {
        (Some(task), "up_to_date") if !task.delete => {
            done.category = Category::Completed;
            "copied".clone_into(&mut done.row.status);
            "copied by the replicator from this job's task".clone_into(&mut done.row.reason);
            done.copied = done.row.size;
        }
        (None, "up_to_date") => done.category = Category::Skipped,
        (Some(task), "extra") if task.delete => {
            done.category = Category::Failed;
            "the job enqueued its delete, but the object is still in the destination (see oss2s3 dlq list)"
                .clone_into(&mut done.row.reason);
        }
        (Some(_), _) if done.category == Category::Failed => {
            done.row
                .reason
                .push_str(" (the job enqueued its copy: see oss2s3 dlq list)");
        }
        _ => {}
    }
    done
}

/// (sync --queue) A task the job enqueued for a key that neither side holds at its end.
fn gone_task(o: &JobOptions, task: &EnqueuedTask) -> Done {
    let (category, status, reason) = if task.delete {
        (
            Category::Completed,
            "deleted",
            "deleted by the replicator from this job's task",
        )
    } else {
        (
            Category::Skipped,
            "gone",
            "the job enqueued its copy, but the source no longer holds the object",
        )
    };
    Done {
        category,
        row: Row {
            key: format!("{}{}", o.source.prefix, task.key),
            destination_key: format!("{}{}", o.destination.prefix, task.key),
            size: task.size.unwrap_or(0),
            etag: task.etag.clone().unwrap_or_default(),
            crc64: None,
            last_modified: String::new(),
            status: status.to_owned(),
            reason: reason.to_owned(),
        },
        copied: 0,
        estimate: (0, 0),
    }
}

/// Requests a sync makes to copy an object of `size` bytes: (source, destination).
fn copy_requests(size: u64, part_size: u64) -> (u64, u64) {
    if size <= CopySettings::DEFAULT_MULTIPART_THRESHOLD {
        (2, 2)
    } else {
        let parts = size.div_ceil(part_size.max(1));
        (1 + parts, 1 + 1 + parts + 1)
    }
}

async fn process<S, D>(ctx: &Context<S, D>, entry: &Entry) -> Done
where
    S: ObjectSource + Clone + 'static,
    D: ObjectSink + Clone + 'static,
{
    let o = &ctx.options;
    let decision = match compare(&ctx.comparison, entry).await {
        Ok(decision) => decision,
        Err(e) => {
            return Done {
                category: Category::Failed,
                row: row(o, entry, "failed", format!("comparing: {e}")),
                copied: 0,
                estimate: (0, 0),
            };
        }
    };
    match o.mode {
        Mode::Diff | Mode::Verify => judge(o, entry, &decision),
        Mode::Sync => act(ctx, entry, decision).await,
    }
}

/// Diff and verify: what the decision means, without acting.
fn judge(o: &JobOptions, entry: &Entry, decision: &Decision) -> Done {
    let size = entry.source().map_or(0, |s| s.size);
    let (status, reason, difference) = match decision {
        Decision::Missing => ("missing", "only in the source".to_owned(), true),
        Decision::Changed(r) => ("changed", r.clone(), true),
        Decision::UpToDate(how) => ("up_to_date", (*how).to_owned(), false),
        Decision::Conflict(r) => ("conflict", r.clone(), true),
        Decision::Extra { owned } => (
            "extra",
            match owned {
                Some(true) => "only in the destination; written by oss2s3 from this source (--delete removes it)",
                Some(false) => "only in the destination; not written by oss2s3 from this source",
                None => "only in the destination",
            }
            .to_owned(),
            !o.allow_extra || o.mode == Mode::Diff,
        ),
    };
    let category = match (o.mode, difference) {
        (_, false) if status == "extra" => Category::Skipped,
        (_, false) => Category::Completed,
        (Mode::Diff, true) if status == "conflict" || status == "extra" => Category::Skipped,
        (_, true) => Category::Failed,
    };
    let estimate = if decision.copies() {
        copy_requests(size, o.part_size)
    } else {
        (0, 0)
    };
    Done {
        category,
        row: row(o, entry, status, reason),
        copied: 0,
        estimate,
    }
}

async fn act<S, D>(ctx: &Context<S, D>, entry: &Entry, decision: Decision) -> Done
where
    S: ObjectSource + Clone + 'static,
    D: ObjectSink + Clone + 'static,
{
    let o = &ctx.options;
    let skipped = |status: &str, reason: String| Done {
        category: Category::Skipped,
        row: row(o, entry, status, reason),
        copied: 0,
        estimate: (0, 0),
    };
    match decision {
        Decision::UpToDate(how) => skipped("up_to_date", how.to_owned()),
        Decision::Conflict(reason) => skipped("conflict", reason),
        Decision::Extra { owned: Some(true) } if o.delete => {
            run_engine(ctx, entry, TaskOp::Delete, "deleted").await
        }
        Decision::Extra { owned } => skipped(
            "extra",
            match owned {
                Some(false) => {
                    "only in the destination; not written by oss2s3 from this source, kept"
                }
                _ => "only in the destination (--delete removes those oss2s3 wrote)",
            }
            .to_owned(),
        ),
        Decision::Missing | Decision::Changed(_) => {
            run_engine(ctx, entry, TaskOp::Put, "copied").await
        }
    }
}

/// Copies or deletes one object with the replicator's engine, retrying transient failures and
/// following continuations in this process.
async fn run_engine<S, D>(ctx: &Context<S, D>, entry: &Entry, op: TaskOp, status: &str) -> Done
where
    S: ObjectSource + Clone + 'static,
    D: ObjectSink + Clone + 'static,
{
    // Five attempts, 1 s doubling up to a minute; a store's own pause (OSS's QoS delay) can
    // lengthen one, up to the minute.
    const RETRY: RetryPolicy = RetryPolicy::new(5, Duration::from_secs(1), Duration::from_mins(1));
    const MAX_HOPS: u32 = 100;
    let o = &ctx.options;
    if let Some(tps) = &ctx.tps {
        tps.wait().await;
    }
    let listed = entry.source();
    let source = SourceObject {
        region: o.source_region.clone(),
        bucket: o.source.bucket.clone(),
        key: format!("{}{}", o.source.prefix, entry.relative_key),
        size: listed.map(|s| s.size),
        etag: listed.map(|s| unquote_etag(&s.etag).to_owned()),
    };
    let mut task = ReplicationTask::put(source);
    task.op = op;
    let mut delays = RETRY.delays();
    let mut hops = 0;
    let done = |category, status: &str, reason: String, copied| Done {
        category,
        row: row(o, entry, status, reason),
        copied,
        estimate: (0, 0),
    };
    loop {
        // Each task is sent once: a new object costs one GET and one conditional PUT.
        match ctx
            .engine
            .replicate_delivered(&task, Delivery::First, None)
            .await
        {
            Ok(Outcome::Copied { bytes, parts, .. }) => {
                return done(
                    Category::Completed,
                    status,
                    format!("{parts} part(s)"),
                    bytes,
                );
            }
            Ok(Outcome::Deleted) => {
                return done(Category::Completed, "deleted", "source gone".to_owned(), 0);
            }
            Ok(Outcome::Skipped(SkipReason::AlreadyReplicated)) => {
                return done(
                    Category::Skipped,
                    "up_to_date",
                    "already replicated (by a concurrent writer)".to_owned(),
                    0,
                );
            }
            Ok(Outcome::Skipped(reason)) => {
                return done(
                    Category::Skipped,
                    &reason.as_str().to_ascii_lowercase(),
                    reason.as_str().to_owned(),
                    0,
                );
            }
            Ok(Outcome::Continue { task: next, delay }) if hops < MAX_HOPS => {
                hops += 1;
                tokio::time::sleep(delay).await;
                task = next;
            }
            Ok(Outcome::Continue { .. }) => {
                return done(
                    Category::Failed,
                    "failed",
                    format!("the copy did not finish in {MAX_HOPS} continuations"),
                    0,
                );
            }
            Err(e) => match delays.next().filter(|_| e.is_retryable()) {
                Some(delay) => {
                    let delay = e.retry_after.map_or(delay, |asked| asked.max(delay));
                    tokio::time::sleep(delay.min(RETRY.max_delay)).await;
                }
                None => return done(Category::Failed, "failed", e.to_string(), 0),
            },
        }
    }
}

/// Whether the checkpoint belongs to this job (same mode and locations).
pub fn check_resume(checkpoint: &Checkpoint, options: &JobOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        checkpoint.mode == options.mode
            && checkpoint.source == options.source.to_string()
            && checkpoint.destination == options.destination.to_string(),
        "job {} was a {} from {} to {}; resume it with the same command and locations",
        checkpoint.job_id,
        checkpoint.mode.as_str(),
        checkpoint.source,
        checkpoint.destination
    );
    anyhow::ensure!(
        !checkpoint.finished,
        "job {} has already finished; start a new job (without --resume)",
        checkpoint.job_id
    );
    Ok(())
}

/// The checkpoint of job `job_id` under `report_root`.
pub fn load_checkpoint(job_dir: &std::path::Path) -> anyhow::Result<Checkpoint> {
    let path = job_dir.join("checkpoint.json");
    let bytes = std::fs::read(&path)
        .map_err(|e| anyhow::anyhow!("no checkpoint at {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
