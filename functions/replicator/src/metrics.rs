//! Replication metrics as CloudWatch Embedded Metric Format (EMF) lines.
//!
//! CloudWatch Logs extracts the metrics from JSON lines on stdout (no PutMetricData calls, no
//! added latency). The document shape follows the EMF specification: a root object with an
//! `_aws` member holding `Timestamp` (epoch milliseconds) and `CloudWatchMetrics` (namespace,
//! dimension sets, metric names and units), with every metric value and dimension value as a
//! root member; a value is a number or an array of at most 100 numbers.
//!
//! Per-object outcomes are tallied and written once per invocation by [`Metrics::flush`]
//! (sooner when 100 samples are waiting): counts and bytes as sums, durations as arrays of the
//! individual values, so CloudWatch's sums and percentiles are those of one line per object at
//! a fraction of the log volume and CPU. The object-level detail (key, reason, bytes, ms) is
//! in the function's log lines. Failures are written at once, one line each, with their
//! message ID.
//!
//! Metrics (all with the dimension `FunctionName`):
//! - `ObjectsReplicated` (Count), `BytesReplicated` (Bytes), `CopyDurationMs` (Milliseconds,
//!   one value per object), `ReplicationLatencyMs` (Milliseconds, now minus the task's event
//!   time, when known; one value per object);
//! - `ObjectsSkipped` (Count, with a `SkippedReasons` property counting them by reason),
//!   `ObjectsDeleted` (Count), `DeletesDeferred` (Count), `Continuations` (Count),
//!   `Requeued` (Count);
//! - `Failures` (Count), twice: by `FunctionName` and `Kind`, and by `FunctionName` alone (the
//!   series the failure alarm watches).
//!
//! # Log levels
//! Lambda's advanced logging filters JSON lines by their `level` member and drops lines without
//! one when the function's level is above INFO. Every EMF line therefore carries the lowest
//! level the function keeps (`AWS_LAMBDA_LOG_LEVEL`, INFO when unset), so metrics survive every
//! allowed log level.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};

/// The default CloudWatch namespace.
pub const DEFAULT_NAMESPACE: &str = "oss2s3";

/// The most values EMF accepts for one metric in one document.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// A CloudWatch unit, as EMF spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain count.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// Where EMF lines go.
#[derive(Debug, Clone, Default)]
pub enum MetricsSink {
    /// One line per document on stdout, where the Lambda log agent picks it up (the default).
    #[default]
    Stdout,
    /// Kept in memory, for tests.
    Memory(Arc<Mutex<Vec<String>>>),
    /// Dropped.
    Disabled,
}

/// One EMF document under construction: metrics and properties for a single event.
#[derive(Debug, Clone)]
pub struct MetricsRecord {
    dimensions: Vec<(String, String)>,
    rollup: bool,
    metrics: Vec<(&'static str, Unit, Value)>,
    properties: Map<String, Value>,
}

impl MetricsRecord {
    /// Adds a metric value.
    #[must_use]
    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        self.metrics.push((name, unit, json!(value)));
        self
    }

    /// Adds a metric with several values (at most [`MAX_VALUES_PER_METRIC`]), each counted
    /// as one sample.
    #[must_use]
    pub fn metric_values(mut self, name: &'static str, unit: Unit, values: &[f64]) -> Self {
        self.metrics.push((name, unit, json!(values)));
        self
    }

    /// Adds a dimension (to every metric in this record).
    #[must_use]
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }

    /// Also publishes the metrics with the base dimension (`FunctionName`) alone, so that one
    /// series sums them over every value of the other dimensions.
    #[must_use]
    pub fn rollup(mut self) -> Self {
        self.rollup = true;
        self
    }

    /// Adds a searchable property that is not a metric (e.g. the message ID).
    #[must_use]
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// The EMF JSON document, time-stamped `timestamp_ms` (epoch milliseconds).
    pub fn to_emf(&self, namespace: &str, timestamp_ms: i64) -> Value {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, _, value) in &self.metrics {
            root.insert((*name).to_owned(), value.clone());
        }
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let mut dimension_sets = vec![dimension_names.clone()];
        if self.rollup && dimension_names.len() > 1 {
            dimension_sets.push(dimension_names[..1].to_vec());
        }
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root)
    }
}

/// Writes EMF documents for one function. Clones share one tally (see [`Metrics::flush`]).
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    function_name: String,
    level: String,
    sink: MetricsSink,
    tally: Arc<Mutex<Tally>>,
}

/// What [`Metrics::flush`] writes next.
#[derive(Debug, Default)]
struct Tally {
    /// Summed metrics, in the order first seen.
    sums: Vec<(&'static str, Unit, f64)>,
    /// Metrics kept value by value, in the order first seen.
    samples: Vec<(&'static str, Unit, Vec<f64>)>,
    /// Counters written as properties: name → label → count.
    labels: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

impl Tally {
    fn is_empty(&self) -> bool {
        self.sums.is_empty() && self.samples.is_empty()
    }

    fn full(&self) -> bool {
        self.samples
            .iter()
            .any(|(_, _, values)| values.len() >= MAX_VALUES_PER_METRIC)
    }
}

impl Metrics {
    /// Metrics in `namespace`, with the `FunctionName` dimension `function_name`, written to
    /// `sink`.
    pub fn new(
        namespace: impl Into<String>,
        function_name: impl Into<String>,
        sink: MetricsSink,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            function_name: function_name.into(),
            level: "INFO".to_owned(),
            sink,
            tally: Arc::default(),
        }
    }

    /// Tags every line with `level` (the lowest level the function's log keeps, such as
    /// `WARN`), so Lambda's log-level filter keeps the metrics.
    #[must_use]
    pub fn with_level(mut self, level: impl Into<String>) -> Self {
        self.level = level.into();
        self
    }

    /// A record with this function's base dimension and nothing else yet.
    pub fn record(&self) -> MetricsRecord {
        MetricsRecord {
            dimensions: vec![("FunctionName".to_owned(), self.function_name.clone())],
            rollup: false,
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds `value` to the summed metric `name`, written by the next [`Self::flush`].
    pub fn add(&self, name: &'static str, unit: Unit, value: f64) {
        let mut tally = self.lock();
        match tally.sums.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, sum)) => *sum += value,
            None => tally.sums.push((name, unit, value)),
        }
    }

    /// Keeps `value` as one sample of `name` (for percentiles); flushes once a metric holds
    /// [`MAX_VALUES_PER_METRIC`] samples.
    pub fn sample(&self, name: &'static str, unit: Unit, value: f64) {
        let full = {
            let mut tally = self.lock();
            match tally.samples.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, _, values)) => values.push(value),
                None => tally.samples.push((name, unit, vec![value])),
            }
            tally.full()
        };
        if full {
            self.flush();
        }
    }

    /// Counts one `label` under the property `name` (such as a skip's reason), written with
    /// the next [`Self::flush`] as `{"name": {"label": count}}`.
    pub fn count_label(&self, name: &'static str, label: &str) {
        let mut tally = self.lock();
        let counts = tally.labels.entry(name).or_default();
        match counts.get_mut(label) {
            Some(count) => *count += 1,
            None => {
                counts.insert(label.to_owned(), 1);
            }
        }
    }

    /// Writes what [`Self::add`], [`Self::sample`] and [`Self::count_label`] gathered since
    /// the last flush: sums and labels in the first line, samples 100 per metric and line.
    pub fn flush(&self) {
        let tally = std::mem::take(&mut *self.lock());
        if tally.is_empty() {
            return;
        }
        let mut record = self.record();
        for (name, unit, sum) in &tally.sums {
            record = record.metric(name, *unit, *sum);
        }
        for (name, counts) in tally.labels {
            record = record.property(name, json!(counts));
        }
        // The first line has the sums and labels; every line one slice of each sample list.
        let lines = tally
            .samples
            .iter()
            .map(|(_, _, values)| values.len().div_ceil(MAX_VALUES_PER_METRIC))
            .max()
            .unwrap_or(0)
            .max(1);
        for line in 0..lines {
            for (name, unit, values) in &tally.samples {
                if let Some(slice) = values.chunks(MAX_VALUES_PER_METRIC).nth(line) {
                    record = record.metric_values(name, *unit, slice);
                }
            }
            self.emit(&record);
            record = self.record();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `record` as one line, unless it holds no metric.
    pub fn emit(&self, record: &MetricsRecord) {
        if record.metrics.is_empty() {
            return;
        }
        let mut document = record.to_emf(&self.namespace, chrono::Utc::now().timestamp_millis());
        document["level"] = Value::String(self.level.clone());
        let line = document.to_string();
        match &self.sink {
            MetricsSink::Stdout => {
                use std::io::Write as _;
                // One write of a whole line, so concurrent messages never interleave.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            MetricsSink::Memory(lines) => lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line),
            MetricsSink::Disabled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_every_metric_and_dimension() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics::new("oss2s3-test", "fn", MetricsSink::Memory(lines.clone()));
        let record = metrics
            .record()
            .dimension("Kind", "throttled")
            .rollup()
            .metric("Failures", Unit::Count, 1.0)
            .property("messageId", "m-1");
        metrics.emit(&record);
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "oss2s3-test");
        assert_eq!(
            directive["Dimensions"],
            json!([["FunctionName", "Kind"], ["FunctionName"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Failures", "Unit": "Count"}])
        );
        assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        assert_eq!(doc["Failures"], 1.0);
        assert_eq!(doc["Kind"], "throttled");
        assert_eq!(doc["FunctionName"], "fn");
        assert_eq!(doc["messageId"], "m-1");
        assert_eq!(doc["level"], "INFO");
    }

    #[test]
    fn lines_carry_the_lowest_level_the_log_keeps() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics =
            Metrics::new("ns", "fn", MetricsSink::Memory(lines.clone())).with_level("ERROR");
        metrics.emit(&metrics.record().metric("ObjectsDeleted", Unit::Count, 1.0));
        let doc: Value = serde_json::from_str(&lines.lock().unwrap()[0]).unwrap();
        assert_eq!(doc["level"], "ERROR");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName"]]),
            "no roll-up unless asked"
        );
    }

    fn documents(lines: &Mutex<Vec<String>>) -> Vec<Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_flush_writes_sums_labels_and_samples_in_one_line() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics::new("ns", "fn", MetricsSink::Memory(lines.clone()));
        for (bytes, ms) in [(10.0, 3.0), (20.0, 5.0), (30.0, 4.0)] {
            metrics.add("ObjectsReplicated", Unit::Count, 1.0);
            metrics.add("BytesReplicated", Unit::Bytes, bytes);
            metrics.sample("CopyDurationMs", Unit::Milliseconds, ms);
        }
        metrics.count_label("SkippedReasons", "unchanged");
        metrics.count_label("SkippedReasons", "unchanged");
        metrics.count_label("SkippedReasons", "source gone");
        metrics.add("ObjectsSkipped", Unit::Count, 3.0);
        assert!(lines.lock().unwrap().is_empty(), "nothing before the flush");
        metrics.flush();
        let docs = documents(&lines);
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(doc["ObjectsReplicated"], 3.0);
        assert_eq!(doc["BytesReplicated"], 60.0);
        assert_eq!(doc["ObjectsSkipped"], 3.0);
        assert_eq!(doc["CopyDurationMs"], json!([3.0, 5.0, 4.0]));
        assert_eq!(
            doc["SkippedReasons"],
            json!({"unchanged": 2, "source gone": 1})
        );
        let declared: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            declared,
            [
                "ObjectsReplicated",
                "BytesReplicated",
                "ObjectsSkipped",
                "CopyDurationMs"
            ]
        );
        metrics.flush();
        assert_eq!(
            documents(&lines).len(),
            1,
            "a second flush has nothing to write"
        );
    }

    #[test]
    fn samples_are_written_at_most_100_per_metric_and_line() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics::new("ns", "fn", MetricsSink::Memory(lines.clone()));
        for i in 0..99 {
            metrics.sample("CopyDurationMs", Unit::Milliseconds, f64::from(i));
            metrics.sample("ReplicationLatencyMs", Unit::Milliseconds, 1.0);
        }
        metrics.sample("ReplicationLatencyMs", Unit::Milliseconds, 1.0);
        let docs = documents(&lines);
        assert_eq!(docs.len(), 1, "the 100th sample flushes");
        assert_eq!(
            docs[0]["ReplicationLatencyMs"].as_array().unwrap().len(),
            100
        );
        assert_eq!(docs[0]["CopyDurationMs"].as_array().unwrap().len(), 99);
        for _ in 0..250 {
            metrics.add("ObjectsReplicated", Unit::Count, 1.0);
        }
        metrics.flush();
        assert_eq!(documents(&lines)[1]["ObjectsReplicated"], 250.0);

        // A tally that outgrew one line (values added while another thread flushed cannot
        // exceed it by much, but the split must hold for any number).
        let big = Metrics::new("ns", "fn", MetricsSink::Memory(lines.clone()));
        big.lock().samples.push((
            "CopyDurationMs",
            Unit::Milliseconds,
            (0..250).map(f64::from).collect(),
        ));
        big.flush();
        let docs = documents(&lines);
        let sizes: Vec<usize> = docs[2..]
            .iter()
            .map(|d| d["CopyDurationMs"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(docs[4]["CopyDurationMs"][49], 249.0);
    }

    #[test]
    fn record_without_metrics_writes_nothing() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics::new("ns", "fn", MetricsSink::Memory(lines.clone()));
        metrics.emit(&metrics.record().property("a", 1));
        assert!(lines.lock().unwrap().is_empty());
    }
}
