//! Migration jobs' core: whole-bucket comparison in constant memory.
//!
//! | step | module |
//! |---|---|
//! | a store's listing as one stream of objects, a page ahead, order checked | `listing` |
//! | two sorted listings merged by the key relative to each side's prefix | `merge` |
//! | what a pair means: missing, changed, up to date, conflict, extra | `decide` |
//! | where to split a key range, from one-key probes of where its keys are | `split` |
//! | a job planned into key-range shards, and a shard's hop, run by the replicator from its queue | `shard` |
//!
//! Both S3 and OSS list keys in UTF-8 byte order, which is the order of Rust's `str`; a listing
//! that goes backwards is an error rather than a silently wrong comparison. Memory holds at most
//! two pages per side, whatever the bucket size.
//!
//! Decisions use the destination marker (source ETag, CRC-64, size; see
//! [`replicate`](crate::replicate)), not the size alone, so overwrites that keep the size are
//! found.

mod decide;
mod listing;
mod merge;
mod shard;
mod split;

pub use decide::{Comparison, Decision, Overwrite, compare};
pub use listing::{ListingOptions, list_objects};
pub use merge::{Entry, Pair, merge};
pub use shard::{
    DEFAULT_SPLIT_AFTER, JobQueue, JobStep, MAX_SPLIT_DEPTH, ShardStores, enqueued_tasks,
    finished_shards, plan_job, read_summaries, run_job, run_shard_hop,
};
pub use split::{plan_bounds, split_points, spread};
