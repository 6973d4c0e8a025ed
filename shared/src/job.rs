//! Migration jobs on the replicator's queue (the message formats; the replicator runs them with
//! [`migrate`](crate::migrate)): a job split into key-range shards that the deployed replicator
//! runs from its own queue. A shard lists its range of the source and of the destination,
//! decides each object, and hands the copies on as ordinary tasks; when its time is up it hands
//! itself on with the last key it decided, and a shard that proves large splits the rest of its
//! range in two. No machine holds the bucket, and no database keeps state: the shard message
//! carries its position and counts, and a finished shard writes its summary under the job's
//! report prefix, named so that one listing of the summaries tells whether the job has listed
//! everything ([`job_complete`]).
//!
//! # Messages (on the replicator's queue)
//! A job, as `oss2s3 sync --queue` plans it or a schedule sends it (the replicator plans it):
//! ```json
//! {"job": {"job_id": "nightly", "source_bucket": "photos", "prefix": "2024/",
//!          "shards": 16, "overwrite": "changed", "delete": false,
//!          "report_bucket": "replica", "report_prefix": "oss2s3-jobs/"}}
//! ```
//! One shard:
//! ```json
//! {"shard": {"job_id": "j1", "index": 3, "of": 16, "part": ".1",
//!            "source_bucket": "photos", "prefix": "2024/",
//!            "start": "d", "after": "dog/17.jpg", "until": "h",
//!            "overwrite": "changed", "delete": false,
//!            "report_bucket": "replica", "report_prefix": "oss2s3-jobs/",
//!            "depth": 1, "pace": {"bytes_per_second": 1048576, "next_at_ms": 0},
//!            "counts": {...}}}
//! ```
//! A shard covers the relative keys `k` (after the job's prefix) with `start < k <= until`
//! (either bound open when absent); `after` is where its next hop resumes.

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

impl std::ops::AddAssign for ShardCounts {
    fn add_assign(&mut self, c: Self) {
        self.listed += c.listed;
        self.to_copy += c.to_copy;
        self.bytes_to_copy += c.bytes_to_copy;
        self.up_to_date += c.up_to_date;
        self.conflicts += c.conflicts;
        self.extra += c.extra;
        self.to_delete += c.to_delete;
        self.errors += c.errors;
    }
}

/// A job's throttle, as one shard keeps its share: copy tasks are enqueued with delays that
/// space their starts, so that the shard's copies start no faster than its share of the job's
/// limits. SQS delays a message at most 15 minutes; a shard whose schedule runs further ahead
/// hands itself on, delayed, instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// Bytes per second of copies started, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    /// Milliseconds between two copy starts, at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis_per_object: Option<u64>,
    /// When the next copy may start (milliseconds since the Unix epoch; 0: now).
    #[serde(default)]
    pub next_at_ms: u64,
}

impl Pace {
    /// The job's limits, shared among `shards` shards; `None` without limits.
    pub fn share(
        bytes_per_second: Option<u64>,
        objects_per_second: Option<f64>,
        shards: u32,
    ) -> Option<Self> {
        if bytes_per_second.is_none() && objects_per_second.is_none() {
            return None;
        }
        let n = u64::from(shards.max(1));
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to 1 ms..10^12 ms first"
        )]
        let millis = |rate: f64| {
            (1000.0 * f64::from(shards.max(1)) / rate)
                .ceil()
                .clamp(1.0, 1e12) as u64
        };
        Some(Self {
            bytes_per_second: bytes_per_second.map(|b| (b / n).max(1)),
            millis_per_object: objects_per_second.filter(|r| *r > 0.0).map(millis),
            next_at_ms: 0,
        })
    }

    /// This pace split between two shards: each gets half.
    #[must_use]
    pub fn halved(self) -> Self {
        Self {
            bytes_per_second: self.bytes_per_second.map(|b| (b / 2).max(1)),
            millis_per_object: self.millis_per_object.map(|m| m.saturating_mul(2)),
            next_at_ms: self.next_at_ms,
        }
    }

    /// Schedules a copy of `bytes` at `now_ms`: how long its task waits (ms), and the pace after it.
    pub fn schedule(self, bytes: u64, now_ms: u64) -> (u64, Self) {
        let start = self.next_at_ms.max(now_ms);
        let by_bytes = self
            .bytes_per_second
            .map_or(0, |b| bytes.saturating_mul(1000) / b.max(1));
        let by_count = self.millis_per_object.unwrap_or(0);
        let next = Self {
            next_at_ms: start + by_bytes.max(by_count),
            ..self
        };
        (start - now_ms, next)
    }
}

/// A job as it is asked for: planned into shards by `oss2s3 sync --queue`, or by the replicator
/// when a schedule sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The job's ID (letters, digits, `.`, `_` and `-`; other characters become `-`).
    pub job_id: String,
    /// The source bucket.
    pub source_bucket: String,
    /// The job's source prefix (within the replicator's `SRC_PREFIX`).
    #[serde(default)]
    pub prefix: String,
    /// How many shards to plan (1 to [`MAX_SHARDS`]).
    #[serde(default = "default_shards")]
    pub shards: u32,
    /// `never`, `changed` or `always`.
    #[serde(default = "default_overwrite")]
    pub overwrite: String,
    /// Delete tasks for destination objects oss2s3 wrote whose source is gone.
    #[serde(default)]
    pub delete: bool,
    /// The bucket the shards write their summaries to (the replicator's destination bucket).
    pub report_bucket: String,
    /// The prefix of the job's report (its files go under `prefix/JOB_ID/`).
    #[serde(default = "default_report_prefix")]
    pub report_prefix: String,
    /// The job's bandwidth limit in bytes per second, shared by its shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    /// The job's object-rate limit per second, shared by its shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_per_second: Option<f64>,
}

fn default_shards() -> u32 {
    16
}

fn default_overwrite() -> String {
    "changed".to_owned()
}

fn default_report_prefix() -> String {
    "oss2s3-jobs/".to_owned()
}

/// The most shards a job is planned into.
pub const MAX_SHARDS: u32 = 1000;

/// A job ID as it goes into keys: letters, digits, `.`, `_` and `-` kept, anything else `-`
/// (a schedule's time, `2026-12-01T03:00:00Z`, becomes `2026-12-01T03-00-00Z`).
pub fn clean_job_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl JobRequest {
    /// The job's shards over the given range bounds (see [`crate::migrate::plan_bounds`]).
    pub fn shards_over(&self, bounds: &[String]) -> Vec<Shard> {
        let ranges: Vec<(Option<String>, Option<String>)> = {
            let mut edges: Vec<Option<String>> = vec![None];
            edges.extend(bounds.iter().cloned().map(Some));
            edges.push(None);
            edges
                .windows(2)
                .map(|w| (w[0].clone(), w[1].clone()))
                .collect()
        };
        let of = u32::try_from(ranges.len()).unwrap_or(u32::MAX);
        let pace = Pace::share(self.bytes_per_second, self.objects_per_second, of);
        ranges
            .into_iter()
            .zip(0..)
            .map(|((start, until), index)| Shard {
                job_id: clean_job_id(&self.job_id),
                index,
                of,
                part: String::new(),
                source_bucket: self.source_bucket.clone(),
                prefix: self.prefix.clone(),
                start: start.clone(),
                after: start,
                until,
                overwrite: self.overwrite.clone(),
                delete: self.delete,
                report_bucket: self.report_bucket.clone(),
                report_prefix: self.report_prefix.clone(),
                depth: 0,
                hop: 0,
                pace,
                counts: ShardCounts::default(),
            })
            .collect()
    }

    /// The message body.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "job": self }).to_string()
    }
}

/// One shard of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// The job.
    pub job_id: String,
    /// The number of the shard the job was planned with, from 0.
    pub index: u32,
    /// How many shards the job was planned with.
    pub of: u32,
    /// Which piece of shard `index` this is after splits: empty for the planned shard; a split
    /// appends `.N` to the new piece's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub part: String,
    /// The source bucket.
    pub source_bucket: String,
    /// The job's source prefix (within the replicator's `SRC_PREFIX`).
    pub prefix: String,
    /// Where the shard's range starts: relative keys after this one; from the start when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Where the next hop resumes: relative keys after this one.
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
    /// How many splits made this shard's range.
    #[serde(default)]
    pub depth: u32,
    /// How many hops of this piece ran before this one (names its task lists).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hop: u32,
    /// The shard's share of the job's throttle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<Pace>,
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

/// The body of a job message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    /// The job.
    pub job: JobRequest,
}

/// What a finished shard writes under the job's report prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// The job.
    pub job_id: String,
    /// The planned shard's number.
    pub index: u32,
    /// How many shards the job was planned with.
    pub of: u32,
    /// The piece of the planned shard.
    #[serde(default)]
    pub part: String,
    /// The range's start (exclusive; open when absent).
    pub start: Option<String>,
    /// The range's end (inclusive; open when absent).
    pub until: Option<String>,
    /// What the shard counted.
    pub counts: ShardCounts,
    /// When it finished (RFC 3339).
    pub finished_at: String,
}

impl Shard {
    /// The message body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&ShardMessage {
            shard: self.clone(),
        })
        .unwrap_or_default()
    }

    /// The shard's name within its job: `NNNNN` and its part.
    pub fn name(&self) -> String {
        format!("{:05}{}", self.index, self.part)
    }

    /// The key of the `chunk`th task list of this hop (see [`tasks_prefix`]).
    pub fn tasks_key(&self, chunk: u32) -> String {
        format!(
            "{}{:08}-{chunk:06}.jsonl",
            tasks_prefix(&self.report_prefix, &self.job_id, &self.name()),
            self.hop
        )
    }

    /// The key of the shard's summary: `REPORT_PREFIX/JOB_ID/shards/NAME_DEPTH.json`. The depth
    /// it ended at names the pieces it split off (see [`job_complete`]).
    pub fn summary_key(&self) -> String {
        format!(
            "{}{}_{}.json",
            shards_prefix(&self.report_prefix, &self.job_id),
            self.name(),
            self.depth
        )
    }

    /// The summary of this shard, finished with `counts`.
    pub fn summary(&self, counts: ShardCounts, finished_at: String) -> ShardSummary {
        ShardSummary {
            job_id: self.job_id.clone(),
            index: self.index,
            of: self.of,
            part: self.part.clone(),
            start: self.start.clone(),
            until: self.until.clone(),
            counts,
            finished_at,
        }
    }

    /// Splits the rest of this shard's range at `at` (a relative key after `after` and before
    /// `until`): this shard keeps the keys up to `at`, the new one takes the rest. Each gets
    /// half the pace.
    #[must_use]
    pub fn split_at(&mut self, at: String) -> Self {
        self.depth += 1;
        let pace = self.pace.map(Pace::halved);
        self.pace = pace;
        let piece = Self {
            part: format!("{}.{}", self.part, self.depth),
            start: Some(at.clone()),
            after: Some(at.clone()),
            until: self.until.take(),
            hop: 0,
            pace,
            counts: ShardCounts::default(),
            ..self.clone()
        };
        self.until = Some(at);
        piece
    }
}

/// The prefix of job `job_id`'s shard summaries.
pub fn shards_prefix(report_prefix: &str, job_id: &str) -> String {
    format!("{report_prefix}{job_id}/shards/")
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The prefix of the task lists of the piece `name` of job `job_id`: the tasks each hop
/// enqueued, in key order, in files that sort in the order the hops ran.
pub fn tasks_prefix(report_prefix: &str, job_id: &str, name: &str) -> String {
    format!("{report_prefix}{job_id}/tasks/{name}/")
}

/// A line of a shard's task list (JSON lines): a copy or delete task a hop enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueuedTask {
    /// The key relative to the job's prefix.
    pub key: String,
    /// A delete task (a copy task otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
    /// The source object's size, as listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The source object's ETag, as listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// The pieces of a job in the order of their key ranges, from their summaries: ranges never
/// overlap, so ordering them by where they start orders every key they cover.
pub fn pieces_in_key_order(summaries: &[ShardSummary]) -> Vec<String> {
    let mut ranges: Vec<(Option<&str>, String)> = summaries
        .iter()
        .map(|s| (s.start.as_deref(), format!("{:05}{}", s.index, s.part)))
        .collect();
    ranges.sort();
    ranges.into_iter().map(|(_, name)| name).collect()
}

/// The key of the file a job's last shard writes when the job has listed everything.
pub fn listed_key(report_prefix: &str, job_id: &str) -> String {
    format!("{report_prefix}{job_id}/listed.json")
}

/// A finished shard as its summary's key names it: `(name, depth)` from `.../NAME_DEPTH.json`.
pub fn parse_summary_key(key: &str) -> Option<(String, u32)> {
    let file = key.rsplit('/').next()?.strip_suffix(".json")?;
    let (name, depth) = file.rsplit_once('_')?;
    Some((name.to_owned(), depth.parse().ok()?))
}

/// The pieces a finished shard split off: a piece named `NAME` that was made at depth `d0` (the
/// last `.d0` of its name; 0 for a planned shard) and finished at `depth` split off
/// `NAME.(d0+1)` to `NAME.depth`.
fn pieces_of(name: &str, depth: u32) -> impl Iterator<Item = String> + '_ {
    let made_at = name
        .rsplit_once('.')
        .and_then(|(_, d)| d.parse::<u32>().ok())
        .unwrap_or(0);
    (made_at + 1..=depth).map(move |d| format!("{name}.{d}"))
}

/// Whether a job of `of` planned shards has listed everything, from its finished shards'
/// `(name, depth)` alone (one listing of the summaries, no reads): every planned shard is
/// finished, and so is every piece a finished shard split off. A piece whose parent is still
/// running is not yet expected; it is once the parent finishes.
pub fn job_complete(of: u32, finished: &[(String, u32)]) -> bool {
    let done: std::collections::HashMap<&str, u32> =
        finished.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let mut expected: Vec<String> = (0..of).map(|i| format!("{i:05}")).collect();
    while let Some(name) = expected.pop() {
        let Some(&depth) = done.get(name.as_str()) else {
            return false;
        };
        expected.extend(pieces_of(&name, depth));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> JobRequest {
        serde_json::from_str::<JobMessage>(
            r#"{"job":{"job_id":"reconcile-2026-12-01T03:00:00Z","source_bucket":"b-b","report_bucket":"r-r"}}"#,
        )
        .expect("a job message with defaults")
        .job
    }

    #[test]
    fn a_job_message_takes_defaults_and_plans_contiguous_shards() {
        let job = request();
        assert_eq!((job.shards, job.overwrite.as_str()), (16, "changed"));
        assert_eq!(job.report_prefix, "oss2s3-jobs/");
        let shards = job.shards_over(&["d".into(), "m".into()]);
        assert_eq!(shards.len(), 3);
        assert!(shards.iter().all(|s| s.of == 3 && s.pace.is_none()));
        assert_eq!(shards[0].job_id, "reconcile-2026-12-01T03-00-00Z");
        let ranges: Vec<_> = shards
            .iter()
            .map(|s| (s.start.as_deref(), s.after.as_deref(), s.until.as_deref()))
            .collect();
        assert_eq!(
            ranges,
            [
                (None, None, Some("d")),
                (Some("d"), Some("d"), Some("m")),
                (Some("m"), Some("m"), None)
            ]
        );
        let finished: Vec<_> = shards
            .iter()
            .map(|s| parse_summary_key(&s.summary_key()).expect("a summary key"))
            .collect();
        assert!(job_complete(3, &finished));
        assert!(!job_complete(3, &finished[1..]));
        assert!(!job_complete(3, &finished[..2]));
    }

    fn done(name: &str, depth: u32) -> (String, u32) {
        (name.to_owned(), depth)
    }

    #[test]
    fn a_job_is_complete_when_every_planned_shard_and_every_piece_split_off_is_done() {
        assert!(job_complete(1, &[done("00000", 0)]));
        assert!(!job_complete(1, &[]));
        assert!(!job_complete(2, &[done("00000", 0)]));
        // 00000 split twice (pieces .1 and .2); .1 split once more (.1.2).
        let all = [
            done("00000", 2),
            done("00000.1", 2),
            done("00000.2", 2),
            done("00000.1.2", 2),
        ];
        assert!(job_complete(1, &all));
        for missing in 0..all.len() {
            let mut some = all.to_vec();
            some.remove(missing);
            assert!(!job_complete(1, &some), "without {:?}", all[missing]);
        }
        // A parent still running: its piece is done, it is not.
        assert!(!job_complete(1, &[done("00000.1", 1)]));
        assert_eq!(
            parse_summary_key("jobs/j/shards/00003.1.2_4.json"),
            Some(("00003.1.2".to_owned(), 4))
        );
        assert_eq!(parse_summary_key("jobs/j/shards/notes.txt"), None);
    }

    #[test]
    fn a_split_names_a_new_piece_and_halves_the_pace() {
        let mut job = request();
        job.bytes_per_second = Some(8_000);
        job.objects_per_second = Some(4.0);
        let mut shard = job.shards_over(&[]).remove(0);
        assert_eq!(
            shard
                .pace
                .map(|p| (p.bytes_per_second, p.millis_per_object)),
            Some((Some(8_000), Some(250)))
        );
        shard.after = Some("b".into());
        shard.counts.listed = 7;
        let piece = shard.split_at("k".into());
        assert_eq!(shard.name(), "00000");
        assert_eq!(piece.name(), "00000.1");
        assert_eq!(
            (
                shard.until.as_deref(),
                piece.start.as_deref(),
                piece.until.as_deref()
            ),
            (Some("k"), Some("k"), None)
        );
        assert_eq!((shard.counts.listed, piece.counts.listed), (7, 0));
        assert_eq!(
            piece
                .pace
                .map(|p| (p.bytes_per_second, p.millis_per_object)),
            Some((Some(4_000), Some(500)))
        );
        let again = shard.split_at("f".into());
        assert_eq!(again.name(), "00000.2");
        let mut piece = piece;
        assert_eq!(piece.split_at("q".into()).name(), "00000.1.2");
        assert_eq!(
            again.summary_key(),
            "oss2s3-jobs/reconcile-2026-12-01T03-00-00Z/shards/00000.2_2.json"
        );
        let back: ShardMessage = serde_json::from_str(&again.to_json()).expect("valid");
        assert_eq!(back.shard, again);
    }

    #[test]
    fn a_pace_spaces_copy_starts_by_bytes_and_by_count() {
        let pace = Pace::share(Some(2_000), Some(10.0), 2).expect("limited");
        assert_eq!(
            (pace.bytes_per_second, pace.millis_per_object),
            (Some(1_000), Some(200))
        );
        // 500 B at 1,000 B/s: 500 ms; the count's 200 ms is less.
        let (wait, pace) = pace.schedule(500, 10_000);
        assert_eq!((wait, pace.next_at_ms), (0, 10_500));
        // A small object: the count's 200 ms.
        let (wait, pace) = pace.schedule(1, 10_100);
        assert_eq!((wait, pace.next_at_ms), (400, 10_700));
        // After a pause, the schedule restarts at now.
        let (wait, pace) = pace.schedule(0, 20_000);
        assert_eq!((wait, pace.next_at_ms), (0, 20_200));
        assert_eq!(Pace::share(None, None, 4), None);
    }
}
