//! What a job has done so far: counts and bytes by category, reasons, the size histogram and
//! progress over time (for the report's charts), in memory independent of the object count.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which list of the report a row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Done: copied or deleted (sync), or found equal (verify).
    Completed,
    /// Nothing done, for a stated reason.
    Skipped,
    /// Failed (sync), or found different (verify).
    Failed,
}

/// Objects and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Every object of the job.
    pub total: u64,
    /// Completed ones.
    pub completed: u64,
    /// Skipped ones.
    pub skipped: u64,
    /// Failed ones.
    pub failed: u64,
}

impl Tally {
    fn add(&mut self, category: Category, n: u64) {
        self.total += n;
        match category {
            Category::Completed => self.completed += n,
            Category::Skipped => self.skipped += n,
            Category::Failed => self.failed += n,
        }
    }
}

/// One point of progress: seconds since the start, bytes and objects done by then.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds since the job started.
    pub t: f64,
    /// Bytes copied by then.
    pub bytes: u64,
    /// Objects finished (any category) by then.
    pub objects: u64,
}

/// The most points kept; when full, every other one is dropped and the spacing doubles.
const MAX_POINTS: usize = 512;

/// The size histogram's buckets: powers of 4 from 1 KiB to 256 GiB, and one above.
pub const SIZE_BUCKETS: usize = 16;

/// The label of histogram bucket `i`: `< 1 KiB`, `< 4 KiB`, ..., `>= 256 GiB`.
pub fn bucket_label(i: usize) -> String {
    let limit = |i: usize| human_bytes(1024u64 << (2 * i));
    if i + 1 == SIZE_BUCKETS {
        format!(">= {}", limit(i - 1))
    } else {
        format!("< {}", limit(i))
    }
}

fn bucket_of(size: u64) -> usize {
    (0..SIZE_BUCKETS - 1)
        .find(|i| size < 1024u64 << (2 * i))
        .unwrap_or(SIZE_BUCKETS - 1)
}

/// Everything counted so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Objects by category.
    pub objects: Tally,
    /// Bytes by category (the object's size).
    pub bytes: Tally,
    /// Bytes actually copied (sync).
    pub copied_bytes: u64,
    /// Rows by status.
    pub reasons: BTreeMap<String, u64>,
    /// Object bytes by status.
    pub status_bytes: BTreeMap<String, u64>,
    /// Object counts by size bucket.
    pub sizes: Vec<u64>,
    /// Progress over time.
    pub points: Vec<Point>,
    /// The first errors (key, reason).
    pub first_errors: Vec<(String, String)>,
    #[serde(skip)]
    spacing: f64,
}

/// The most errors kept for the report page.
const MAX_ERRORS: usize = 100;

impl Stats {
    /// Counts one row.
    pub fn record(
        &mut self,
        category: Category,
        status: &str,
        key: &str,
        size: u64,
        reason: &str,
        copied: u64,
    ) {
        self.objects.add(category, 1);
        self.bytes.add(category, size);
        self.copied_bytes += copied;
        *self.reasons.entry(status.to_owned()).or_default() += 1;
        *self.status_bytes.entry(status.to_owned()).or_default() += size;
        if self.sizes.len() < SIZE_BUCKETS {
            self.sizes.resize(SIZE_BUCKETS, 0);
        }
        self.sizes[bucket_of(size)] += 1;
        if category == Category::Failed && self.first_errors.len() < MAX_ERRORS {
            self.first_errors.push((key.to_owned(), reason.to_owned()));
        }
    }

    /// Adds a progress point at `elapsed` (after the last one by at least the spacing).
    pub fn sample(&mut self, elapsed: Duration) {
        let t = elapsed.as_secs_f64();
        if self.spacing == 0.0 {
            self.spacing = 1.0;
        }
        if let Some(last) = self.points.last()
            && t - last.t < self.spacing
        {
            return;
        }
        self.points.push(Point {
            t,
            bytes: self.copied_bytes,
            objects: self.objects.total,
        });
        if self.points.len() >= MAX_POINTS {
            let kept: Vec<Point> = self.points.iter().copied().step_by(2).collect();
            self.points = kept;
            self.spacing *= 2.0;
        }
    }
}

/// A rate or amount of bytes computed as `f64`, back as a whole number (0 for negative or NaN).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "saturating conversion is the intent: values are byte counts and rates"
)]
pub fn whole(value: f64) -> u64 {
    value.max(0.0) as u64
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_split_by_category_and_sizes_fall_into_buckets() {
        let mut s = Stats::default();
        s.record(Category::Completed, "copied", "a", 10, "", 10);
        s.record(Category::Skipped, "up_to_date", "b", 5000, "marker", 0);
        s.record(Category::Failed, "failed", "c", 1 << 30, "boom", 0);
        assert_eq!(
            s.objects,
            Tally {
                total: 3,
                completed: 1,
                skipped: 1,
                failed: 1
            }
        );
        assert_eq!(s.bytes.total, 10 + 5000 + (1 << 30));
        assert_eq!(s.copied_bytes, 10);
        assert_eq!(s.sizes[0], 1, "10 B < 1 KiB");
        assert_eq!(s.sizes[2], 1, "5000 B < 16 KiB");
        assert_eq!(s.sizes[bucket_of(1 << 30)], 1);
        assert_eq!(bucket_label(0), "< 1 KiB");
        assert_eq!(bucket_label(SIZE_BUCKETS - 1), ">= 256 GiB");
        assert_eq!(s.first_errors, vec![("c".to_owned(), "boom".to_owned())]);
    }

    #[test]
    fn progress_points_stay_bounded_however_long_the_job() {
        let mut s = Stats::default();
        for second in 0..100_000 {
            s.sample(Duration::from_secs(second));
        }
        assert!(s.points.len() < MAX_POINTS, "{}", s.points.len());
        assert!(s.points.len() > MAX_POINTS / 4);
        assert!(s.points.windows(2).all(|w| w[0].t < w[1].t));
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5 GiB");
    }
}
