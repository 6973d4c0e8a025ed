//! Migration jobs' key-range shards (the message format; the replicator runs them with
//! `migrate::run_shard`): a migration job split into pieces the deployed replicator runs from its
//! own queue. A shard lists its range of the source and of the destination, decides each
//! object, and hands the copies on as ordinary tasks; when its time is up it hands itself on
//! with the last key it decided. No machine holds the bucket, and no database keeps state:
//! the shard message carries its position and counts, and a finished shard writes its counts
//! under the job's report prefix.
//!
//! # Message (on the replicator's queue)
//! ```json
//! {"shard": {"job_id": "j1", "index": 3, "of": 16,
//!            "source_bucket": "photos", "prefix": "2024/",
//!            "after": "d", "until": "h", "overwrite": "changed", "delete": false,
//!            "report_bucket": "replica", "report_prefix": "oss2s3-jobs/",
//!            "counts": {...}}}
//! ```
//! A shard covers the relative keys `k` (after the job's prefix) with `after < k <= until`
//! (either bound open when absent).

use serde::{Deserialize, Serialize};

/// What a shard has counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCounts {
    /// Objects decided (both sides).
    pub listed: u64,
    /// Copy tasks enqueued.
    pub to_copy: u64,
    /// Their bytes.
    pub bytes_to_copy: u64,
    /// Up to date.
    pub up_to_date: u64,
    /// Kept by the overwrite rule.
    pub conflicts: u64,
    /// Only in the destination.
    pub extra: u64,
    /// Delete tasks enqueued.
    pub to_delete: u64,
    /// Objects that could not be compared.
    pub errors: u64,
}

/// One shard of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// The job.
    pub job_id: String,
    /// This shard's number, from 0.
    pub index: u32,
    /// How many shards the job has.
    pub of: u32,
    /// The source bucket.
    pub source_bucket: String,
    /// The job's source prefix (within the replicator's `SRC_PREFIX`).
    pub prefix: String,
    /// Relative keys after this one (exclusive); from the start when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Relative keys up to this one (inclusive); to the end when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `never`, `changed` or `always`.
    pub overwrite: String,
    /// Whether destination objects oss2s3 wrote whose source is gone get delete tasks.
    #[serde(default)]
    pub delete: bool,
    /// Where the job's report lives: the bucket.
    pub report_bucket: String,
    /// Where the job's report lives: the prefix (the job's files are under `prefix/JOB_ID/`).
    pub report_prefix: String,
    /// What the shard counted in earlier hops.
    #[serde(default)]
    pub counts: ShardCounts,
}

/// The body of a shard message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMessage {
    /// The shard.
    pub shard: Shard,
}

impl Shard {
    /// The message body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&ShardMessage {
            shard: self.clone(),
        })
        .unwrap_or_default()
    }

    /// The key of the shard's summary: `REPORT_PREFIX/JOB_ID/shards/NNNNN.json`.
    pub fn summary_key(&self) -> String {
        shard_summary_key(&self.report_prefix, &self.job_id, self.index)
    }
}

/// The key of shard `index`'s summary in job `job_id`'s report.
pub fn shard_summary_key(report_prefix: &str, job_id: &str, index: u32) -> String {
    format!("{report_prefix}{job_id}/shards/{index:05}.json")
}

/// `n` shards of the relative key space, split by the first byte: printable ASCII (0x20 to
/// 0x7E) in equal steps. The first shard also takes keys that start with a control character,
/// the last every key from 0x7E on, non-ASCII ones included. Bounds are printable, so they
/// travel in listing requests and answers (XML cannot hold most control characters).
pub fn split_by_first_byte(n: u32) -> Vec<(Option<String>, Option<String>)> {
    let n = n.clamp(1, 95);
    let bound = |i: u32| -> Option<String> {
        if i == 0 || i == n {
            None
        } else {
            let byte = u8::try_from(0x20 + i * 95 / n).unwrap_or(0x7E);
            Some(char::from(byte).to_string())
        }
    };
    (0..n).map(|i| (bound(i), bound(i + 1))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_shards_cover_every_key_once() {
        for n in [1, 2, 3, 6, 16, 95, 500] {
            let shards = split_by_first_byte(n);
            assert_eq!(shards.first().and_then(|s| s.0.clone()), None);
            assert_eq!(shards.last().and_then(|s| s.1.clone()), None);
            assert!(
                shards.windows(2).all(|w| w[0].1 == w[1].0),
                "{n}: contiguous"
            );
            for key in [
                "", "\u{0}", "a", "a/b", "c", "ca", "~", "\u{7f}", "é", "😀", "ZZ",
            ] {
                let holders = shards
                    .iter()
                    .filter(|(after, until)| {
                        after.as_deref().is_none_or(|a| key > a)
                            && until.as_deref().is_none_or(|u| key <= u)
                    })
                    .count();
                assert_eq!(holders, 1, "{n} shards, key {key:?}");
            }
        }
    }

    #[test]
    fn a_shard_message_round_trips() {
        let shard = Shard {
            job_id: "j".into(),
            index: 2,
            of: 4,
            source_bucket: "b-b".into(),
            prefix: "p/".into(),
            after: Some("a".into()),
            until: None,
            overwrite: "changed".into(),
            delete: true,
            report_bucket: "r-r".into(),
            report_prefix: "jobs/".into(),
            counts: ShardCounts::default(),
        };
        let back: ShardMessage = serde_json::from_str(&shard.to_json()).expect("valid");
        assert_eq!(back.shard, shard);
        assert_eq!(shard.summary_key(), "jobs/j/shards/00002.json");
    }
}
