//! `oss2s3 sync --queue`: a job handed to the deployed replicator as key-range shards on its
//! queue (see `transfer::job`). The replicator lists and decides each shard and enqueues the
//! copies; `--wait` waits until every shard has written its summary under the report prefix
//! and the queue has drained, then verifies the job's range and writes the report.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_sqs::error::DisplayErrorContext;
use transfer::job::{Shard, ShardCounts, shard_summary_key, split_by_first_byte};
use transfer::sqs::is_fifo_queue;

use crate::location::Location;
use crate::queue;

/// A queued job.
#[derive(Debug, Clone)]
pub struct QueuedJob {
    /// The job's ID.
    pub job_id: String,
    /// The source.
    pub source: Location,
    /// `never`, `changed` or `always`.
    pub overwrite: String,
    /// Delete tasks for owned extras.
    pub delete: bool,
    /// How many shards.
    pub shards: u32,
    /// The replicator's task queue.
    pub queue_url: String,
    /// Where the shards write their summaries (an S3 bucket the replicator can write).
    pub report: Location,
}

impl QueuedJob {
    /// The job's shards.
    pub fn shards(&self) -> Vec<Shard> {
        let ranges = split_by_first_byte(self.shards);
        let of = u32::try_from(ranges.len()).unwrap_or(u32::MAX);
        ranges
            .into_iter()
            .zip(0..)
            .map(|((after, until), index)| Shard {
                job_id: self.job_id.clone(),
                index,
                of,
                source_bucket: self.source.bucket.clone(),
                prefix: self.source.prefix.clone(),
                after,
                until,
                overwrite: self.overwrite.clone(),
                delete: self.delete,
                report_bucket: self.report.bucket.clone(),
                report_prefix: self.report.prefix.clone(),
                counts: ShardCounts::default(),
            })
            .collect()
    }
}

/// Sends the job's shards to the queue.
pub async fn send(sqs: &aws_sdk_sqs::Client, job: &QueuedJob) -> anyhow::Result<usize> {
    let shards = job.shards();
    for shard in &shards {
        let mut send = sqs
            .send_message()
            .queue_url(&job.queue_url)
            .message_body(shard.to_json());
        if is_fifo_queue(&job.queue_url) {
            send = send
                .message_group_id(format!("oss2s3-job-{}-{}", shard.job_id, shard.index))
                .message_deduplication_id(format!("{}-{}", shard.job_id, shard.index));
        }
        send.send().await.map_err(|e| {
            anyhow::anyhow!(
                "sending shard {} to {}: {}",
                shard.index,
                job.queue_url,
                DisplayErrorContext(e)
            )
        })?;
    }
    Ok(shards.len())
}

/// The summaries written so far: their counts.
async fn summaries(s3: &aws_sdk_s3::Client, job: &QueuedJob) -> anyhow::Result<Vec<ShardCounts>> {
    let prefix = shard_summary_key(&job.report.prefix, &job.job_id, 0);
    let prefix = prefix.trim_end_matches("00000.json");
    let listed = s3
        .list_objects_v2()
        .bucket(&job.report.bucket)
        .prefix(prefix)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "listing {}: {}",
                job.report,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?;
    let mut counts = Vec::new();
    for object in listed.contents() {
        let Some(key) = object.key() else { continue };
        let body = s3
            .get_object()
            .bucket(&job.report.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "reading {key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?
            .body
            .collect()
            .await
            .context("reading a shard summary")?
            .into_bytes();
        let value: serde_json::Value = serde_json::from_slice(&body).context("a shard summary")?;
        counts.push(serde_json::from_value(value["counts"].clone()).context("a shard's counts")?);
    }
    Ok(counts)
}

/// The shards' counts summed.
pub fn total(counts: &[ShardCounts]) -> ShardCounts {
    counts.iter().fold(ShardCounts::default(), |mut t, c| {
        t.listed += c.listed;
        t.to_copy += c.to_copy;
        t.bytes_to_copy += c.bytes_to_copy;
        t.up_to_date += c.up_to_date;
        t.conflicts += c.conflicts;
        t.extra += c.extra;
        t.to_delete += c.to_delete;
        t.errors += c.errors;
        t
    })
}

/// Waits until every shard has finished and the queue is empty (twice in a row, `poll`
/// apart); returns the shards' counts summed.
pub async fn wait(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    job: &QueuedJob,
    poll: Duration,
    timeout: Duration,
    quiet: bool,
) -> anyhow::Result<ShardCounts> {
    let started = Instant::now();
    let mut empty_polls = 0;
    let mut last_line = Instant::now();
    loop {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "job {} did not finish within {} s (see oss2s3 dlq list and the replicator's logs)",
            job.job_id,
            timeout.as_secs()
        );
        let counts = summaries(s3, job).await?;
        let (visible, in_flight, delayed) = queue::depth(sqs, &job.queue_url).await?;
        let done = counts.len() >= job.shards as usize;
        if !quiet && last_line.elapsed() >= Duration::from_secs(10) {
            let t = total(&counts);
            eprintln!(
                "sync --queue {}: {}/{} shards listed, {} copy tasks enqueued; queue {visible} visible, {in_flight} in flight, {delayed} delayed",
                job.job_id,
                counts.len(),
                job.shards,
                t.to_copy
            );
            last_line = Instant::now();
        }
        if done && visible + in_flight + delayed == 0 {
            empty_polls += 1;
            if empty_polls >= 2 {
                return Ok(total(&counts));
            }
        } else {
            empty_polls = 0;
        }
        tokio::time::sleep(poll).await;
    }
}
