//! `oss2s3 sync --queue`: a job handed to the deployed replicator as key-range shards on its
//! queue (see `transfer::job`). The job is planned here (where to split is found with one-key
//! listings of the source); the replicator lists and decides each shard, enqueues the copies,
//! and splits shards that prove large. `--wait` waits until the shards' summaries under the
//! report prefix cover the whole key range and the queue has drained, then verifies the job's
//! range and writes the report.

use std::time::{Duration, Instant};

use std::pin::Pin;

use aws_sdk_sqs::error::DisplayErrorContext;
use futures::StreamExt;
use futures::stream::{BoxStream, Peekable};
use transfer::job::{
    EnqueuedTask, JobRequest, Shard, ShardCounts, ShardSummary, job_complete, shards_prefix,
};
use transfer::migrate::{enqueued_tasks, finished_shards, plan_job, read_summaries};
use transfer::oss::OssClient;
use transfer::s3::S3Store;
use transfer::sqs::{is_fifo_queue, queue_depth};
use transfer::store::StoreError;

use crate::location::Location;
use crate::queue;

/// A queued job.
#[derive(Debug, Clone)]
pub struct QueuedJob {
    /// The job as the replicator runs it.
    pub request: JobRequest,
    /// The replicator's task queue.
    pub queue_url: String,
    /// Where the shards write their summaries (an S3 bucket the replicator can write).
    pub report: Location,
}

impl QueuedJob {
    /// The job's ID.
    pub fn job_id(&self) -> &str {
        &self.request.job_id
    }
}

/// A queued job's tasks in key order (see [`JobTasks::stream`]).
pub type Tasks = Pin<Box<Peekable<BoxStream<'static, Result<EnqueuedTask, StoreError>>>>>;

/// The tasks a queued job enqueued, as its shards listed them under the report prefix.
#[derive(Debug, Clone)]
pub struct JobTasks {
    /// The store the report prefix is in.
    pub store: S3Store,
    /// The report's bucket.
    pub bucket: String,
    /// The report prefix.
    pub report_prefix: String,
    /// The job.
    pub job_id: String,
    /// The job's pieces in key order.
    pub pieces: Vec<String>,
    /// When the job's shards were sent.
    pub sent_at: chrono::DateTime<chrono::Utc>,
}

impl JobTasks {
    /// The tasks in key order.
    pub fn stream(&self) -> Tasks {
        Box::pin(
            enqueued_tasks(
                self.store.clone(),
                self.bucket.clone(),
                self.report_prefix.clone(),
                self.job_id.clone(),
                self.pieces.clone(),
            )
            .peekable(),
        )
    }
}

/// From a key-ordered stream of tasks: those for keys before `key` (all that remain when
/// `None`), and the one for `key` itself.
pub async fn tasks_up_to(
    tasks: &mut Tasks,
    key: Option<&str>,
) -> Result<(Vec<EnqueuedTask>, Option<EnqueuedTask>), StoreError> {
    let mut before = Vec::new();
    loop {
        let order = match tasks.as_mut().peek().await {
            None => return Ok((before, None)),
            Some(Err(_)) => match tasks.as_mut().next().await {
                Some(Err(e)) => return Err(e),
                _ => unreachable!("peeked an error"),
            },
            Some(Ok(task)) => key.map_or(std::cmp::Ordering::Less, |k| {
                task.key.as_bytes().cmp(k.as_bytes())
            }),
        };
        if order == std::cmp::Ordering::Greater {
            return Ok((before, None));
        }
        let Some(Ok(task)) = tasks.as_mut().next().await else {
            unreachable!("peeked a task")
        };
        if order == std::cmp::Ordering::Equal {
            return Ok((before, Some(task)));
        }
        before.push(task);
    }
}

/// Plans the job over the source's keys and sends its shards to the queue.
pub async fn send(
    sqs: &aws_sdk_sqs::Client,
    source: &OssClient,
    job: &QueuedJob,
) -> anyhow::Result<usize> {
    let fifo = is_fifo_queue(&job.queue_url);
    anyhow::ensure!(
        !fifo
            || (job.request.bytes_per_second.is_none() && job.request.objects_per_second.is_none()),
        "a throttled queued job spaces its copies with SQS message delays, which a FIFO queue does not have: use a standard queue, or --local"
    );
    let shards: Vec<Shard> = plan_job(&job.request, source).await.map_err(|e| {
        anyhow::anyhow!(
            "planning the job over oss://{}/{}: {e}",
            job.request.source_bucket,
            job.request.prefix
        )
    })?;
    for shard in &shards {
        let mut send = sqs
            .send_message()
            .queue_url(&job.queue_url)
            .message_body(shard.to_json());
        if fifo {
            send = send
                .message_group_id(format!("oss2s3-job-{}-{}", shard.job_id, shard.name()))
                .message_deduplication_id(format!("{}-{}", shard.job_id, shard.name()));
        }
        send.send().await.map_err(|e| {
            anyhow::anyhow!(
                "sending shard {} to {}: {}",
                shard.name(),
                job.queue_url,
                DisplayErrorContext(e)
            )
        })?;
    }
    Ok(shards.len())
}

/// Polls of an empty queue, with the job unfinished, after which the DLQ is searched for the
/// job's shards.
const STALLED_POLLS: u32 = 5;

/// Waits until every one of the `of` planned shards, and every piece they split off, has
/// written its summary and the queue is empty (twice in a row, `poll` apart); returns the
/// shards' counts summed, and their summaries. Fails, naming them, when shards of the job are in the DLQ and
/// nothing is left to run.
pub async fn wait(
    s3: &S3Store,
    sqs: &aws_sdk_sqs::Client,
    job: &QueuedJob,
    of: u32,
    poll: Duration,
    timeout: Duration,
    quiet: bool,
) -> anyhow::Result<(ShardCounts, Vec<ShardSummary>)> {
    let started = Instant::now();
    let (mut empty_polls, mut stalled_polls) = (0, 0);
    let mut last_line = Instant::now();
    let prefix = shards_prefix(&job.report.prefix, job.job_id());
    loop {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "job {} did not finish within {} s (see oss2s3 dlq list and the replicator's logs)",
            job.job_id(),
            timeout.as_secs()
        );
        let finished = finished_shards(s3, &job.report.bucket, &prefix)
            .await
            .map_err(|e| {
                anyhow::anyhow!("listing the shard summaries under {}: {e}", job.report)
            })?;
        let listed = job_complete(of, &finished);
        let (visible, in_flight, delayed) = queue_depth(sqs, &job.queue_url)
            .await
            .map_err(anyhow::Error::msg)?;
        let idle = visible + in_flight + delayed == 0;
        if !quiet && last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "sync --queue {}: {} shards done{}; queue {visible} visible, {in_flight} in flight, {delayed} delayed",
                job.job_id(),
                finished.len(),
                if listed { " (every key listed)" } else { "" },
            );
            last_line = Instant::now();
        }
        if listed && idle {
            empty_polls += 1;
            if empty_polls >= 2 {
                let summaries = read_summaries(s3, &job.report.bucket, &prefix)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("reading the shard summaries under {}: {e}", job.report)
                    })?;
                let mut total = ShardCounts::default();
                for summary in &summaries {
                    total += summary.counts;
                }
                return Ok((total, summaries));
            }
        } else {
            empty_polls = 0;
        }
        stalled_polls = if !listed && idle {
            stalled_polls + 1
        } else {
            0
        };
        if stalled_polls >= STALLED_POLLS {
            stalled_polls = 0;
            dead_shards(sqs, job).await?;
        }
        tokio::time::sleep(poll).await;
    }
}

/// Fails when the task queue's DLQ holds shards of the job: with nothing left on the queue,
/// the job cannot finish until they are moved back.
async fn dead_shards(sqs: &aws_sdk_sqs::Client, job: &QueuedJob) -> anyhow::Result<()> {
    let Some(dlq) = queue::dlq_of(sqs, &job.queue_url).await? else {
        return Ok(());
    };
    let letters = queue::receive(sqs, &dlq, 100, Duration::from_secs(5)).await?;
    queue::release(sqs, &dlq, &letters.iter().collect::<Vec<_>>()).await?;
    let mine = format!("job {} ", job.job_id());
    let dead: Vec<String> = letters
        .iter()
        .filter(|l| l.op.as_deref().is_some_and(|op| op.starts_with(&mine)))
        .map(|l| {
            format!(
                "{} ({}: {})",
                l.op.as_deref().unwrap_or_default(),
                l.kind,
                l.reason
            )
        })
        .collect();
    anyhow::ensure!(
        dead.is_empty(),
        "job {} cannot finish: the queue is empty and {} of its shard messages are in the DLQ: {}. Fix the cause (oss2s3 dlq list shows each reason) and move them back with oss2s3 dlq redrive; this command, run again, then waits for them (a job sent twice lists twice and copies nothing more)",
        job.job_id(),
        dead.len(),
        dead.join("; ")
    );
    Ok(())
}
