//! The summary: objects, bytes, throughput, latency percentiles, what the functions logged.

use super::*;

/// Counts from the replicator's EMF metric lines in its logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionMetrics {
    /// `ObjectsReplicated`.
    pub replicated: u64,
    /// `ObjectsSkipped` (e.g. an event for an object already copied).
    pub skipped: u64,
    /// `Failures` (each retried or dead-lettered attempt).
    pub failures: u64,
    /// `ReplicationLatencyMs` of every copy: from the OSS event's time to the copy's completion.
    pub latencies: Vec<Duration>,
}

/// Sums the EMF documents (`{"_aws":…}` lines) in the function logs.
pub fn function_metrics(logs: &[std::path::PathBuf]) -> FunctionMetrics {
    let mut metrics = FunctionMetrics::default();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if doc.get("_aws").is_none() {
                continue;
            }
            // An EMF value is a number or an array of numbers: the replicator writes counts
            // as sums and durations one value per object.
            let values = |name: &str| -> Vec<f64> {
                match doc.get(name) {
                    Some(serde_json::Value::Array(values)) => values
                        .iter()
                        .filter_map(serde_json::Value::as_f64)
                        .collect(),
                    Some(value) => value.as_f64().into_iter().collect(),
                    None => Vec::new(),
                }
            };
            let n = |name: &str| {
                let sum: f64 = values(name).iter().sum();
                Duration::from_secs_f64(sum.max(0.0)).as_secs()
            };
            metrics.replicated += n("ObjectsReplicated");
            metrics.skipped += n("ObjectsSkipped");
            metrics.failures += n("Failures");
            metrics.latencies.extend(
                values("ReplicationLatencyMs")
                    .into_iter()
                    .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
            );
        }
    }
    metrics
}

/// The outcome of a demo run.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Which way the demo replicated.
    pub direction: DemoDirection,
    /// Objects uploaded.
    pub objects: usize,
    /// Objects that reached the destination and passed verification.
    pub verified: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Time spent uploading.
    pub upload_time: Duration,
    /// From the first upload to the last object's arrival in the destination.
    pub total_time: Duration,
    /// Upload completion to first sight in the destination, per object that arrived.
    pub latencies: Vec<Duration>,
    /// Objects that never arrived within the timeout.
    pub missing: Vec<String>,
    /// Objects that arrived but differ.
    pub mismatches: Vec<Mismatch>,
    /// The replicator's own counts.
    pub function: FunctionMetrics,
    /// The event source mapping's counts.
    pub esm: EsmCounts,
    /// Messages in the DLQ (visible + in flight).
    pub dlq_depth: u64,
    /// Messages left in the task or event queue (visible + in flight).
    pub queue_depth: u64,
    /// The backfill of the objects that were there before replication (`oss2s3 sync`).
    pub backfill: Option<super::CliRun>,
    /// The final audit of both buckets (`oss2s3 verify`).
    pub audit: Option<super::CliRun>,
}

impl DemoReport {
    /// Every object arrived and verified, and nothing is dead-lettered.
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.mismatches.is_empty()
            && self.verified == self.objects
            && self.dlq_depth == 0
            && self.backfill.as_ref().is_none_or(super::CliRun::ok)
            && self.audit.as_ref().is_none_or(super::CliRun::ok)
    }

    /// The `p`-th percentile of the observed latencies (nearest rank), if any object arrived.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies, p)
    }
}

/// The `p`-th percentile of `values` (nearest rank).
pub fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "p is a percentage, so the rank is within the values' count"
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = self.bytes as f64 / MIB as f64;
        let (src, dst) = (self.direction.source(), self.direction.destination());
        let throughput = mib / self.total_time.as_secs_f64().max(0.001);
        let rows = [
            (
                "objects",
                format!("{} uploaded, {} verified", self.objects, self.verified),
            ),
            ("bytes", format!("{mib:.1} MiB")),
            ("upload time", secs(Some(self.upload_time))),
            (
                "end to end",
                format!(
                    "{} (first upload to last object in {dst})",
                    secs(Some(self.total_time))
                ),
            ),
            ("throughput", format!("{throughput:.1} MiB/s")),
            (
                "latency p50/p95/p99",
                format!(
                    "{} / {} / {}  (max {}; {src} event -> copy done, per replicator)",
                    secs(percentile(&self.function.latencies, 50.0)),
                    secs(percentile(&self.function.latencies, 95.0)),
                    secs(percentile(&self.function.latencies, 99.0)),
                    secs(percentile(&self.function.latencies, 100.0))
                ),
            ),
            (
                "observed p50/p95/p99",
                format!(
                    "{} / {} / {}  (max {}; upload done -> listed in {dst})",
                    secs(self.percentile(50.0)),
                    secs(self.percentile(95.0)),
                    secs(self.percentile(99.0)),
                    secs(self.percentile(100.0))
                ),
            ),
            (
                "replicated",
                format!(
                    "{} copies written by the replicator",
                    self.function.replicated
                ),
            ),
            (
                "skipped",
                format!(
                    "{} (already replicated: duplicate or superseded events)",
                    self.function.skipped
                ),
            ),
            (
                "failed",
                format!(
                    "{} missing, {} mismatched, {} failed attempts (retried)",
                    self.missing.len(),
                    self.mismatches.len(),
                    self.function.failures
                ),
            ),
            ("DLQ", format!("{} messages", self.dlq_depth)),
            ("queue left", format!("{} messages", self.queue_depth)),
            (
                "event source mapping",
                format!(
                    "{} invocations, {} messages received, {} deleted, {} batch item failures, {} failed invocations",
                    self.esm.invocations,
                    self.esm.received,
                    self.esm.deleted,
                    self.esm.items_failed,
                    self.esm.batches_failed
                ),
            ),
            (
                "backfill",
                self.backfill
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |r| format!("oss2s3 {}", r.headline())),
            ),
            (
                "verify",
                self.audit.as_ref().map_or_else(
                    || "-".to_owned(),
                    |r| {
                        format!(
                            "oss2s3 verify {}: {}",
                            if r.ok() { "PASS" } else { "FAIL" },
                            r.report.display()
                        )
                    },
                ),
            ),
            (
                "result",
                if self.passed() {
                    "PASS".to_owned()
                } else {
                    "FAIL".to_owned()
                },
            ),
        ];
        let width = rows
            .iter()
            .map(|(_, value)| value.chars().count())
            .max()
            .unwrap_or(0);
        let line = format!("+{}+{}+", "-".repeat(22), "-".repeat(width + 2));
        writeln!(f, "{line}")?;
        let title = format!("demo: {src} -> {dst}");
        writeln!(f, "| {title:<20} | {:<width$} |", "summary")?;
        writeln!(f, "{line}")?;
        for (name, value) in &rows {
            writeln!(f, "| {name:<20} | {value:<width$} |")?;
        }
        writeln!(f, "{line}")?;
        for key in self.missing.iter().take(20) {
            writeln!(f, "missing: {key}")?;
        }
        for mismatch in self.mismatches.iter().take(20) {
            writeln!(
                f,
                "mismatch: {}: {}",
                mismatch.key,
                mismatch.problems.join("; ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let report = DemoReport {
            direction: DemoDirection::OssToS3,
            objects: 0,
            verified: 0,
            bytes: 0,
            upload_time: Duration::ZERO,
            total_time: Duration::ZERO,
            latencies: (1..=100).map(Duration::from_millis).collect(),
            missing: Vec::new(),
            mismatches: Vec::new(),
            function: FunctionMetrics::default(),
            esm: EsmCounts::default(),
            dlq_depth: 0,
            queue_depth: 0,
            backfill: None,
            audit: None,
        };
        assert_eq!(report.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(report.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(report.percentile(100.0), Some(Duration::from_millis(100)));
    }
}
