//! Running one hop of a migration job's shard (see [`crate::job`]): list both sides of its
//! key range, decide each object, hand copies on as ordinary tasks.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use crate::job::{Shard, ShardCounts};
use crate::store::{ObjectStore, StoreError, unquote_etag};
use crate::task::{ReplicationTask, SourceObject, TaskOp};

use super::decide::{Comparison, Decision, Overwrite, compare};
use super::listing::{ListingOptions, list_objects};
use super::merge::{Pair, merge};

/// The overwrite rule a shard names.
pub fn overwrite_rule(name: &str) -> Result<Overwrite, String> {
    match name {
        "never" => Ok(Overwrite::Never),
        "changed" => Ok(Overwrite::Changed),
        "always" => Ok(Overwrite::Always),
        other => Err(format!("{other:?} is not never, changed or always")),
    }
}

/// How a shard's hop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardProgress {
    /// More remains: enqueue this shard (it starts after the last key decided).
    Continue(Box<Shard>),
    /// The range is done; these are the shard's counts.
    Done(ShardCounts),
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
}

/// How many tasks are sent at once.
const SEND_EVERY: usize = 100;
/// Objects compared at once.
const COMPARE_CONCURRENCY: usize = 16;

/// Runs one hop of `shard` until `stop_at`: lists, decides, and hands copies (and deletes)
/// to `send`. Returns what remains.
pub async fn run_shard<S, D, F, Fut>(
    shard: &Shard,
    stores: &ShardStores<S, D>,
    stop_at: Instant,
    mut send: F,
) -> Result<ShardProgress, String>
where
    S: ObjectStore + Clone + 'static,
    D: ObjectStore + Clone + 'static,
    F: FnMut(Vec<ReplicationTask>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
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
        overwrite: overwrite_rule(&shard.overwrite)?,
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
    let mut tasks = Vec::new();
    let mut last = shard.after.clone();
    let mut finished = true;
    while let Some(item) = decided.next().await {
        let (entry, decision) = item.map_err(|e| format!("listing: {e}"))?;
        counts.listed += 1;
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
        match decision {
            Ok(Decision::Missing | Decision::Changed(_)) => {
                let source = entry.source();
                counts.to_copy += 1;
                counts.bytes_to_copy += source.map_or(0, |s| s.size);
                tasks.push(task(TaskOp::Put, source));
            }
            Ok(Decision::UpToDate(_)) => counts.up_to_date += 1,
            Ok(Decision::Conflict(_)) => counts.conflicts += 1,
            Ok(Decision::Extra { owned }) => {
                counts.extra += 1;
                if shard.delete && owned == Some(true) && matches!(entry.pair, Pair::Destination(_))
                {
                    counts.to_delete += 1;
                    tasks.push(task(TaskOp::Delete, None));
                }
            }
            Err(_) => {
                // Counted, and the copy is left to the replicator: it re-reads both sides.
                counts.errors += 1;
                if let Some(source) = entry.source() {
                    counts.to_copy += 1;
                    tasks.push(task(TaskOp::Put, Some(source)));
                }
            }
        }
        last = Some(entry.relative_key.clone());
        if tasks.len() >= SEND_EVERY {
            send(std::mem::take(&mut tasks)).await?;
        }
        if Instant::now() >= stop_at {
            finished = false;
            break;
        }
    }
    if !tasks.is_empty() {
        send(tasks).await?;
    }
    if finished {
        return Ok(ShardProgress::Done(counts));
    }
    let mut next = shard.clone();
    next.after = last;
    next.counts = counts;
    Ok(ShardProgress::Continue(Box::new(next)))
}
