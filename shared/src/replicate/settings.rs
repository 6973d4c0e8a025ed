//! The engine's settings.

use std::time::Duration;

use crate::retry::RetryPolicy;
use crate::size::MIB;
use crate::store::{Encryption, RestoreTier, StorageClass};

/// How the engine copies. Build with [`CopySettings::new`], which sets the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySettings {
    /// The destination bucket.
    pub dst_bucket: String,
    /// Stripped from the start of source keys (default empty). A key outside it is refused.
    pub src_prefix: String,
    /// Prepended to destination keys (default empty).
    pub dst_prefix: String,
    /// The destination storage class of every object; when `None` (the default), the class
    /// [`storage_class_map`](Self::storage_class_map) gives the source's class, else the
    /// bucket's default.
    pub storage_class: Option<StorageClass>,
    /// Source class → destination class, for objects `storage_class` does not settle (default
    /// empty: the bucket's default class).
    pub storage_class_map: Vec<(StorageClass, StorageClass)>,
    /// Server-side encryption for written objects; the bucket's default when `None` (the
    /// default).
    pub sse: Option<Encryption>,
    /// The multipart part size in bytes (default 16 MiB). Raised to `ceil(size / 10,000)` for
    /// large objects and kept within the sink's limits (5 MiB to 5 GiB on S3).
    pub part_size: u64,
    /// Objects up to this many bytes are copied with one GET and one PUT, larger ones with a
    /// multipart upload (default 16 MiB; at most the sink's single-PUT limit).
    pub multipart_threshold: u64,
    /// The most parts of one object in flight at once (default 8); fewer when the memory
    /// budget does not hold that many parts.
    pub part_concurrency: usize,
    /// The most bytes of object data held in memory at once by this engine, over every copy it
    /// runs (default 512 MiB). Each part, and each object copied with one PUT, holds its size
    /// until it is written; a part larger than the whole budget runs alone.
    pub memory_budget: u64,
    /// How to restore archived source objects; `None` (the default) fails them permanently.
    pub restore: Option<RestoreSettings>,
    /// Whether delete tasks delete destination objects (default `false`: they are skipped).
    pub replicate_deletes: bool,
    /// When less than this remains before the deadline, no new parts are started and the copy
    /// continues in a new task (default 30 s). The engine raises it for parts that take longer
    /// (twice the slowest part so far, or the part size at 8 MiB/s).
    pub deadline_margin: Duration,
    /// When this little remains before the deadline, the parts still in flight are cancelled
    /// and the continuation carries the parts done (default 10 s); a single PUT still in
    /// flight fails retryably, without writing anything.
    pub stop_margin: Duration,
    /// The source buckets the engine may read; a task naming another bucket fails permanently.
    /// Empty (the default) allows any bucket.
    pub source_buckets: Vec<String>,
    /// How one source read (a part, or a small object) is retried before the copy fails
    /// (default 3 attempts, 100 ms doubling up to 2 s).
    pub read_retry: RetryPolicy,
}

impl CopySettings {
    /// The class to write a copy of an object of class `source` in: `storage_class`, else the
    /// map's entry for `source`, else `None` (the bucket's default).
    pub fn destination_class(&self, source: Option<&StorageClass>) -> Option<StorageClass> {
        self.storage_class.clone().or_else(|| {
            let source = source?;
            self.storage_class_map
                .iter()
                .find(|(from, _)| from == source)
                .map(|(_, to)| to.clone())
        })
    }

    /// The default part size: 16 MiB.
    pub const DEFAULT_PART_SIZE: u64 = 16 * MIB;
    /// The default multipart threshold: 16 MiB.
    pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * MIB;
    /// The default number of parts in flight: 8.
    pub const DEFAULT_PART_CONCURRENCY: usize = 8;
    /// The default memory budget: 512 MiB.
    pub const DEFAULT_MEMORY_BUDGET: u64 = 512 * MIB;
    /// The default deadline margin: 30 s.
    pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(30);
    /// The default stop margin: 10 s.
    pub const DEFAULT_STOP_MARGIN: Duration = Duration::from_secs(10);
    /// The default source read retries: 3 attempts, 100 ms doubling up to 2 s.
    pub const DEFAULT_READ_RETRY: RetryPolicy =
        RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(2));

    /// Settings for copying into `dst_bucket`, with every other field at its default.
    pub fn new(dst_bucket: impl Into<String>) -> Self {
        Self {
            dst_bucket: dst_bucket.into(),
            src_prefix: String::new(),
            dst_prefix: String::new(),
            storage_class: None,
            storage_class_map: Vec::new(),
            sse: None,
            part_size: Self::DEFAULT_PART_SIZE,
            multipart_threshold: Self::DEFAULT_MULTIPART_THRESHOLD,
            part_concurrency: Self::DEFAULT_PART_CONCURRENCY,
            memory_budget: Self::DEFAULT_MEMORY_BUDGET,
            restore: None,
            replicate_deletes: false,
            deadline_margin: Self::DEFAULT_DEADLINE_MARGIN,
            stop_margin: Self::DEFAULT_STOP_MARGIN,
            source_buckets: Vec::new(),
            read_retry: Self::DEFAULT_READ_RETRY,
        }
    }
}

/// How archived source objects are restored before they are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreSettings {
    /// How many days the restored copy stays readable (default 1).
    pub days: u32,
    /// The retrieval tier for cold archive classes (default [`RestoreTier::Standard`]).
    pub tier: RestoreTier,
    /// How long to wait before the message is retried while the restore runs (default 5 min).
    pub retry_after: Duration,
}

impl Default for RestoreSettings {
    fn default() -> Self {
        Self {
            days: 1,
            tier: RestoreTier::Standard,
            retry_after: Duration::from_mins(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let s = CopySettings::new("dst");
        assert_eq!(s.part_size, 16 * MIB);
        assert_eq!(s.multipart_threshold, 16 * MIB);
        assert_eq!(s.part_concurrency, 8);
        assert_eq!(s.deadline_margin, Duration::from_secs(30));
        assert_eq!(s.stop_margin, Duration::from_secs(10));
        assert_eq!(s.memory_budget, 512 * MIB);
        assert!(s.source_buckets.is_empty());
        assert!(s.restore.is_none() && !s.replicate_deletes);
    }
}
