//! `oss2s3 sync --queue`: a job handed to the deployed replicator as key-range shards on its
//! queue (see `transfer::job`). The job is planned here (where to split is found with one-key
//! listings of the source); the replicator lists and decides each shard, enqueues the copies,
//! and splits shards that prove large. `--wait` waits until the shards' summaries under the
//! report prefix cover the whole key range and the queue has drained, then verifies the job's
//! range and writes the report.

use std::time::{Duration, Instant};

use aws_sdk_sqs::error::DisplayErrorContext;
use transfer::job::{JobRequest, Shard, ShardCounts, covers_key_space, shards_prefix};
use transfer::migrate::{plan_job, read_summaries};
use transfer::oss::OssClient;
use transfer::s3::S3Store;
use transfer::sqs::is_fifo_queue;

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

/// Waits until the shards' summaries cover the job's key range and the queue is empty (twice
/// in a row, `poll` apart); returns the shards' counts summed.
pub async fn wait(
    s3: &S3Store,
    sqs: &aws_sdk_sqs::Client,
    job: &QueuedJob,
    poll: Duration,
    timeout: Duration,
    quiet: bool,
) -> anyhow::Result<ShardCounts> {
    let started = Instant::now();
    let mut empty_polls = 0;
    let mut last_line = Instant::now();
    let prefix = shards_prefix(&job.report.prefix, job.job_id());
    loop {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "job {} did not finish within {} s (see oss2s3 dlq list and the replicator's logs)",
            job.job_id(),
            timeout.as_secs()
        );
        let summaries = read_summaries(s3, &job.report.bucket, &prefix)
            .await
            .map_err(|e| {
                anyhow::anyhow!("reading the shard summaries under {}: {e}", job.report)
            })?;
        let mut total = ShardCounts::default();
        for summary in &summaries {
            total += summary.counts;
        }
        let listed = covers_key_space(&summaries);
        let (visible, in_flight, delayed) = queue::depth(sqs, &job.queue_url).await?;
        if !quiet && last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "sync --queue {}: {} shards done{}, {} copy tasks enqueued; queue {visible} visible, {in_flight} in flight, {delayed} delayed",
                job.job_id(),
                summaries.len(),
                if listed { " (every key listed)" } else { "" },
                total.to_copy
            );
            last_line = Instant::now();
        }
        if listed && visible + in_flight + delayed == 0 {
            empty_polls += 1;
            if empty_polls >= 2 {
                return Ok(total);
            }
        } else {
            empty_polls = 0;
        }
        tokio::time::sleep(poll).await;
    }
}
