//! Running a migration job's messages (see [`crate::job`]): planning a job into shards, and one
//! hop of a shard: list both sides of its key range, decide each object, hand copies on as
//! ordinary tasks (paced when the job is throttled), hand the rest of the range on (split in
//! two when the shard proves large), and at its end write its summary.

use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};

use crate::job::{
    EnqueuedTask, JobRequest, Shard, ShardCounts, ShardSummary, job_complete, listed_key,
    parse_summary_key, shards_prefix,
};
use crate::store::{ListRequest, ObjectSink, ObjectSource, ObjectStore, StoreError, unquote_etag};
use crate::task::{ReplicationTask, SourceObject, TaskOp};

use super::decide::{Comparison, Decision, Overwrite, compare};
use super::listing::{ListingOptions, list_objects};
use super::merge::{Pair, merge};
use super::split::{plan_bounds, split_points};

/// Where a job's messages go: the replicator's queue.
pub trait JobQueue: Sync {
    /// Enqueues tasks, each after its delay (at most 15 minutes).
    fn enqueue_tasks(
        &self,
        tasks: Vec<(ReplicationTask, Duration)>,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Enqueues a shard, after `delay` (at most 15 minutes).
    fn enqueue_shard(
        &self,
        shard: &Shard,
        delay: Duration,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// How a shard's hop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ShardProgress {
    /// More remains: these shards (the rest of the range, split in two when it proved large)
    /// continue it.
    Continue(Vec<Shard>),
    /// The range is done; these are the shard's counts.
    Done(ShardCounts),
}

/// What running a job message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStep {
    /// A job was planned into this many shards, all enqueued.
    Planned(usize),
    /// A shard's hop ended with more to do; this many shards continue it.
    Continued {
        /// Shards enqueued.
        pieces: usize,
        /// Objects the shard has decided so far.
        listed: u64,
    },
    /// A shard finished and wrote its summary.
    Finished {
        /// The shard's counts.
        counts: ShardCounts,
        /// Whether the job's summaries now cover its whole range (`listed.json` written).
        job_listed: bool,
    },
}

/// The stores and prefixes a shard runs against, as the replicator is configured.
#[derive(Debug, Clone)]
pub struct ShardStores<S, D> {
    /// The source.
    pub source: S,
    /// The destination.
    pub destination: D,
    /// The destination bucket.
    pub destination_bucket: String,
    /// The replicator's `SRC_PREFIX`.
    pub src_prefix: String,
    /// The replicator's `DST_PREFIX`.
    pub dst_prefix: String,
    /// A hop that runs out of time after listing at least this many objects splits the rest
    /// of its range ([`DEFAULT_SPLIT_AFTER`]); a hop cut short by its invocation's deadline
    /// says little about the shard's size.
    pub split_after: u64,
    /// Whether the replicator makes deletes (`REPLICATE_DELETES`): a job that asks for them
    /// is refused without.
    pub deletes: bool,
}

/// Task-list lines per file: a hop's list is written this many at a time.
const LIST_EVERY: usize = 10_000;

/// The default [`ShardStores::split_after`]: 100,000 objects, a fraction of what one
/// five-minute hop lists.
pub const DEFAULT_SPLIT_AFTER: u64 = 100_000;

/// How many tasks are sent at once.
const SEND_EVERY: usize = 100;
/// Objects compared at once.
const COMPARE_CONCURRENCY: usize = 16;
/// The longest SQS delays a message.
const MAX_DELAY: Duration = Duration::from_mins(15);
/// How far ahead of a paced shard's schedule its next hop arrives.
const PACE_LEAD: Duration = Duration::from_mins(5);
/// How many times a shard's range may split (a planned shard becomes at most 2^this pieces).
pub const MAX_SPLIT_DEPTH: u32 = 6;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Plans `job` over the source's keys (see [`plan_bounds`]) into at most `job.shards` shards.
pub async fn plan_job<S: ObjectStore>(
    job: &JobRequest,
    source: &S,
) -> Result<Vec<Shard>, StoreError> {
    let n = job.shards.clamp(1, crate::job::MAX_SHARDS);
    let bounds = plan_bounds(source, &job.source_bucket, &job.prefix, n).await?;
    Ok(job.shards_over(&bounds))
}

/// Runs a job message the replicator received: plans it and enqueues its shards.
pub async fn run_job<S, D, Q>(
    job: &JobRequest,
    stores: &ShardStores<S, D>,
    queue: &Q,
) -> Result<JobStep, String>
where
    S: ObjectStore,
    Q: JobQueue,
{
    job.overwrite.parse::<Overwrite>()?;
    check_deletes(&job.job_id, job.delete, stores)?;
    let shards = plan_job(job, &stores.source)
        .await
        .map_err(|e| format!("planning the job: {e}"))?;
    for shard in &shards {
        queue.enqueue_shard(shard, Duration::ZERO).await?;
    }
    Ok(JobStep::Planned(shards.len()))
}

/// Runs one hop of `shard` until `stop_at` and hands on what follows: the rest of the shard,
/// or its summary (and, when the job's summaries then cover its range, `listed.json`).
pub async fn run_shard_hop<S, D, Q>(
    shard: &Shard,
    stores: &ShardStores<S, D>,
    stop_at: Instant,
    queue: &Q,
) -> Result<JobStep, String>
where
    S: ObjectStore + Clone + 'static,
    D: ObjectSink + ObjectSource + Clone + 'static,
    Q: JobQueue,
{
    check_deletes(&shard.job_id, shard.delete, stores)?;
    match run_shard(shard, stores, stop_at, queue).await? {
        ShardProgress::Continue(pieces) => {
            let listed = pieces.first().map_or(0, |s| s.counts.listed);
            for piece in &pieces {
                queue.enqueue_shard(piece, resume_delay(piece)).await?;
            }
            Ok(JobStep::Continued {
                pieces: pieces.len(),
                listed,
            })
        }
        ShardProgress::Done(counts) => {
            let summary = shard.summary(counts, chrono::Utc::now().to_rfc3339());
            let body = serde_json::to_vec(&summary).map_err(|e| e.to_string())?;
            put_json(stores, &shard.report_bucket, &shard.summary_key(), body)
                .await
                .map_err(|e| format!("writing the shard's summary: {e}"))?;
            let prefix = shards_prefix(&shard.report_prefix, &shard.job_id);
            let finished = finished_shards(&stores.destination, &shard.report_bucket, &prefix)
                .await
                .map_err(|e| format!("listing the job's summaries: {e}"))?;
            let job_listed = job_complete(shard.of, &finished);
            if job_listed {
                // Once per job: the totals.
                let summaries = read_summaries(&stores.destination, &shard.report_bucket, &prefix)
                    .await
                    .map_err(|e| format!("reading the job's summaries: {e}"))?;
                let mut total = ShardCounts::default();
                for s in &summaries {
                    total += s.counts;
                }
                let body = serde_json::to_vec(&serde_json::json!({
                    "job_id": shard.job_id,
                    "shards": summaries.len(),
                    "counts": total,
                    "listed_at": summary.finished_at,
                }))
                .map_err(|e| e.to_string())?;
                put_json(
                    stores,
                    &shard.report_bucket,
                    &listed_key(&shard.report_prefix, &shard.job_id),
                    body,
                )
                .await
                .map_err(|e| format!("writing the job's listed.json: {e}"))?;
            }
            Ok(JobStep::Finished { counts, job_listed })
        }
    }
}

/// A job that asks for deletes runs only on a replicator that makes them: its delete tasks
/// would otherwise all be skipped.
fn check_deletes<S, D>(
    job_id: &str,
    delete: bool,
    stores: &ShardStores<S, D>,
) -> Result<(), String> {
    if delete && !stores.deletes {
        return Err(format!(
            "job {job_id} asks for deletes (sync --delete), which this replicator does not make: deploy it with ReplicateDeletes=true (REPLICATE_DELETES), or send the job without --delete"
        ));
    }
    Ok(())
}

/// How long the next hop of a paced shard waits: until shortly before its schedule's next copy.
fn resume_delay(shard: &Shard) -> Duration {
    let Some(pace) = shard.pace else {
        return Duration::ZERO;
    };
    let ahead = Duration::from_millis(pace.next_at_ms.saturating_sub(now_ms()));
    ahead.saturating_sub(PACE_LEAD).min(MAX_DELAY)
}

async fn put_json<S, D: ObjectSink>(
    stores: &ShardStores<S, D>,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), StoreError> {
    crate::store::put_small(
        &stores.destination,
        bucket,
        key,
        bytes::Bytes::from(body),
        "application/json",
    )
    .await
}

/// Every object key under `prefix`, page by page.
async fn keys_under<D: ObjectStore>(
    store: &D,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::new();
    let mut continuation = None;
    loop {
        let request = ListRequest {
            prefix: prefix.to_owned(),
            start_after: None,
            continuation: continuation.take(),
            max_keys: None,
        };
        let page = store.list_objects(bucket, &request).await?;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(next) => continuation = Some(next),
            None => return Ok(keys),
        }
    }
}

/// The finished shards under `prefix` as their summaries' keys name them (one listing, no
/// reads; see [`job_complete`]).
pub async fn finished_shards<D: ObjectStore>(
    store: &D,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, u32)>, StoreError> {
    Ok(keys_under(store, bucket, prefix)
        .await?
        .iter()
        .filter_map(|k| parse_summary_key(k))
        .collect())
}

/// Every shard summary under `prefix`.
pub async fn read_summaries<D: ObjectSource + Clone + 'static>(
    store: &D,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ShardSummary>, StoreError> {
    let mut summaries = Vec::new();
    for key in keys_under(store, bucket, prefix).await? {
        if parse_summary_key(&key).is_none() {
            continue;
        }
        let body = crate::store::read_all(store, bucket, &key).await?;
        match serde_json::from_slice::<ShardSummary>(&body) {
            Ok(summary) => summaries.push(summary),
            Err(e) => tracing::warn!(key = %key, error = %e, "not a shard summary"),
        }
    }
    Ok(summaries)
}

/// The tasks job `job_id` enqueued, in key order, from the task lists of its pieces (named in
/// key order: [`crate::job::pieces_in_key_order`]). One list file is read at a time. A line
/// at or before the last one given is dropped: a hop that ran twice (its message delivered
/// again) may leave a chunk of its first run behind.
pub fn enqueued_tasks<D: ObjectSource + Clone + Send + Sync + 'static>(
    store: D,
    bucket: String,
    report_prefix: String,
    job_id: String,
    pieces: Vec<String>,
) -> futures::stream::BoxStream<'static, Result<EnqueuedTask, StoreError>> {
    struct State<D> {
        store: D,
        bucket: String,
        report_prefix: String,
        job_id: String,
        pieces: std::vec::IntoIter<String>,
        files: std::vec::IntoIter<String>,
        lines: std::vec::IntoIter<EnqueuedTask>,
        last: Option<String>,
    }
    let state = State {
        store,
        bucket,
        report_prefix,
        job_id,
        pieces: pieces.into_iter(),
        files: Vec::new().into_iter(),
        lines: Vec::new().into_iter(),
        last: None,
    };
    futures::stream::try_unfold(state, |mut s| async move {
        loop {
            if let Some(task) = s.lines.next() {
                if s.last.as_deref().is_some_and(|l| task.key.as_str() <= l) {
                    continue;
                }
                s.last = Some(task.key.clone());
                return Ok(Some((task, s)));
            }
            if let Some(file) = s.files.next() {
                let body = crate::store::read_all(&s.store, &s.bucket, &file).await?;
                let mut lines = Vec::new();
                for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    match serde_json::from_slice::<EnqueuedTask>(line) {
                        Ok(task) => lines.push(task),
                        Err(e) => tracing::warn!(file = %file, error = %e, "not a task-list line"),
                    }
                }
                s.lines = lines.into_iter();
                continue;
            }
            let Some(piece) = s.pieces.next() else {
                return Ok(None);
            };
            let prefix = crate::job::tasks_prefix(&s.report_prefix, &s.job_id, &piece);
            s.files = keys_under(&s.store, &s.bucket, &prefix).await?.into_iter();
        }
    })
    .boxed()
}

/// A hop's task list, written to the report prefix a chunk at a time (see
/// [`crate::job::tasks_prefix`]) so that the job's report can say which objects this job copied.
struct TaskList {
    lines: Vec<u8>,
    count: usize,
    chunk: u32,
}

impl TaskList {
    fn push(&mut self, task: &EnqueuedTask) -> Result<(), String> {
        serde_json::to_writer(&mut self.lines, task).map_err(|e| e.to_string())?;
        self.lines.push(b'\n');
        self.count += 1;
        Ok(())
    }

    /// Writes the lines gathered so far as the next chunk, when there are any (or `LIST_EVERY`
    /// of them unless `all`).
    async fn write<S, D: ObjectSink>(
        &mut self,
        shard: &Shard,
        stores: &ShardStores<S, D>,
        all: bool,
    ) -> Result<(), String> {
        if self.count == 0 || (!all && self.count < LIST_EVERY) {
            return Ok(());
        }
        let key = shard.tasks_key(self.chunk);
        crate::store::put_small(
            &stores.destination,
            &shard.report_bucket,
            &key,
            bytes::Bytes::from(std::mem::take(&mut self.lines)),
            "application/x-ndjson",
        )
        .await
        .map_err(|e| format!("writing the shard's task list {key}: {e}"))?;
        self.count = 0;
        self.chunk += 1;
        Ok(())
    }
}

/// Runs one hop of `shard` until `stop_at`: lists, decides, and hands copies (and deletes)
/// to `queue`, listing them under the report prefix. Returns what remains.
async fn run_shard<S, D, Q>(
    shard: &Shard,
    stores: &ShardStores<S, D>,
    stop_at: Instant,
    queue: &Q,
) -> Result<ShardProgress, String>
where
    S: ObjectStore + Clone + 'static,
    D: ObjectStore + ObjectSink + Clone + 'static,
    Q: JobQueue,
{
    let rest = shard
        .prefix
        .strip_prefix(&stores.src_prefix)
        .ok_or_else(|| {
            format!(
                "the job's prefix {:?} is not within the replicator's SRC_PREFIX {:?}",
                shard.prefix, stores.src_prefix
            )
        })?;
    let dst_prefix = format!("{}{rest}", stores.dst_prefix);
    let listing = |prefix: &str| ListingOptions {
        prefix: prefix.to_owned(),
        start_after: shard.after.as_ref().map(|a| format!("{prefix}{a}")),
        page_size: None,
    };
    let comparison = Comparison {
        source: stores.source.clone(),
        source_bucket: shard.source_bucket.clone(),
        source_prefix: shard.prefix.clone(),
        destination: stores.destination.clone(),
        destination_bucket: stores.destination_bucket.clone(),
        destination_prefix: dst_prefix.clone(),
        overwrite: shard.overwrite.parse()?,
        check_metadata: false,
        check_extra_owner: shard.delete,
    };
    let until = shard.until.clone();
    let entries = merge(
        list_objects(
            stores.source.clone(),
            &shard.source_bucket,
            listing(&shard.prefix),
        ),
        &shard.prefix,
        list_objects(
            stores.destination.clone(),
            &stores.destination_bucket,
            listing(&dst_prefix),
        ),
        &dst_prefix,
    )
    .try_take_while(move |e| {
        let inside = until
            .as_ref()
            .is_none_or(|u| e.relative_key.as_str() <= u.as_str());
        futures::future::ready(Ok(inside))
    });
    let comparison = &comparison;
    let mut decided = std::pin::pin!(
        entries
            .map_ok(|entry| async move {
                let decision = compare(comparison, &entry).await;
                Ok::<_, StoreError>((entry, decision))
            })
            .try_buffered(COMPARE_CONCURRENCY)
    );
    let mut counts = shard.counts;
    let mut pace = shard.pace;
    let mut tasks = Vec::new();
    let mut task_list = TaskList {
        lines: Vec::new(),
        count: 0,
        chunk: 0,
    };
    let mut last = shard.after.clone();
    // Why the hop ended early: `Some(true)` out of time, `Some(false)` ahead of its pace.
    let mut stopped = None;
    while let Some(item) = decided.next().await {
        let (entry, decision) = item.map_err(|e| format!("listing: {e}"))?;
        let task = |op: TaskOp, source: Option<&crate::store::ListedObject>| {
            let mut task = ReplicationTask::put(SourceObject {
                region: String::new(),
                bucket: shard.source_bucket.clone(),
                key: format!("{}{}", shard.prefix, entry.relative_key),
                size: source.map(|s| s.size),
                etag: source.map(|s| unquote_etag(&s.etag).to_owned()),
            });
            task.op = op;
            task.event_name = Some(format!("oss2s3:Job:{}", shard.job_id));
            task
        };
        // A copy waits its turn in the shard's pace; one that would wait longer than SQS can
        // delay a message is left to the next hop.
        let mut copy = |source: Option<&crate::store::ListedObject>| -> Option<Duration> {
            let Some(current) = pace else {
                return Some(Duration::ZERO);
            };
            let (wait, next) = current.schedule(source.map_or(0, |s| s.size), now_ms());
            let wait = Duration::from_millis(wait);
            (wait <= MAX_DELAY).then(|| {
                pace = Some(next);
                wait
            })
        };
        let copies = match &decision {
            Ok(Decision::Missing | Decision::Changed(_)) => true,
            Err(_) => entry.source().is_some(),
            Ok(_) => false,
        };
        let delay = if copies {
            let Some(delay) = copy(entry.source()) else {
                stopped = Some(false);
                break;
            };
            delay
        } else {
            Duration::ZERO
        };
        counts.listed += 1;
        let queued_before = tasks.len();
        match decision {
            Ok(Decision::Missing | Decision::Changed(_)) => {
                let source = entry.source();
                counts.to_copy += 1;
                counts.bytes_to_copy += source.map_or(0, |s| s.size);
                tasks.push((task(TaskOp::Put, source), delay));
            }
            Ok(Decision::UpToDate(_)) => counts.up_to_date += 1,
            Ok(Decision::Conflict(_)) => counts.conflicts += 1,
            Ok(Decision::Extra { owned }) => {
                counts.extra += 1;
                if shard.delete && owned == Some(true) && matches!(entry.pair, Pair::Destination(_))
                {
                    counts.to_delete += 1;
                    tasks.push((task(TaskOp::Delete, None), Duration::ZERO));
                }
            }
            Err(_) => {
                // Counted, and the copy is left to the replicator: it re-reads both sides.
                counts.errors += 1;
                if let Some(source) = entry.source() {
                    counts.to_copy += 1;
                    tasks.push((task(TaskOp::Put, Some(source)), delay));
                }
            }
        }
        for (task, _) in &tasks[queued_before..] {
            task_list.push(&EnqueuedTask {
                key: entry.relative_key.clone(),
                delete: task.op == TaskOp::Delete,
                size: task.source.size,
                etag: task.source.etag.clone(),
            })?;
        }
        last = Some(entry.relative_key.clone());
        if tasks.len() >= SEND_EVERY {
            queue.enqueue_tasks(std::mem::take(&mut tasks)).await?;
            task_list.write(shard, stores, false).await?;
        }
        if Instant::now() >= stop_at {
            stopped = Some(true);
            break;
        }
    }
    if !tasks.is_empty() {
        queue.enqueue_tasks(tasks).await?;
    }
    task_list.write(shard, stores, true).await?;
    let Some(out_of_time) = stopped else {
        return Ok(ShardProgress::Done(counts));
    };
    let mut next = shard.clone();
    next.hop += 1;
    next.after = last;
    next.counts = counts;
    next.pace = pace;
    let mut pieces = Vec::new();
    // A shard that ran out of time is large: the rest of its range splits in two, at a point
    // between the next key and (about) the last one. A paced shard is not split: its pace,
    // not its listing, sets its speed.
    let listed_now = counts.listed - shard.counts.listed;
    if out_of_time && next.depth < MAX_SPLIT_DEPTH && listed_now >= stores.split_after {
        let points = split_points(
            &stores.source,
            &shard.source_bucket,
            &shard.prefix,
            next.after.as_deref(),
            next.until.as_deref(),
            2,
        )
        .await
        .map_err(|e| format!("probing the rest of the shard: {e}"))?;
        if let Some(at) = points.into_iter().next() {
            pieces.push(next.split_at(at));
        }
    }
    pieces.insert(0, next);
    Ok(ShardProgress::Continue(pieces))
}
