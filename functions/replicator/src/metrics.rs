//! Replication metrics as CloudWatch Embedded Metric Format (EMF) lines.
//!
//! Each processed message becomes one JSON line on stdout; CloudWatch Logs extracts the metrics
//! from it (no PutMetricData calls, no added latency). The document shape follows the EMF
//! specification: a root object with an `_aws` member holding `Timestamp` (epoch milliseconds)
//! and `CloudWatchMetrics` (namespace, dimension sets, metric names and units), with every
//! metric value and dimension value as a root member.
//!
//! Metrics (all with the dimension `FunctionName`):
//! - `ObjectsReplicated` (Count), `BytesReplicated` (Bytes), `CopyDurationMs` (Milliseconds),
//!   `ReplicationLatencyMs` (Milliseconds, now minus the task's event time, when known);
//! - `ObjectsSkipped` (Count), `ObjectsDeleted` (Count), `DeletesDeferred` (Count),
//!   `Continuations` (Count), `Requeued` (Count);
//! - `Failures` (Count), twice: by `FunctionName` and `Kind`, and by `FunctionName` alone (the
//!   series the failure alarm watches).
//!
//! # Log levels
//! Lambda's advanced logging filters JSON lines by their `level` member and drops lines without
//! one when the function's level is above INFO. Every EMF line therefore carries the lowest
//! level the function keeps (`AWS_LAMBDA_LOG_LEVEL`, INFO when unset), so metrics survive every
//! allowed log level.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};

/// The default CloudWatch namespace.
pub const DEFAULT_NAMESPACE: &str = "oss2s3";

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
    metrics: Vec<(&'static str, Unit, f64)>,
    properties: Map<String, Value>,
}

impl MetricsRecord {
    /// Adds a metric value.
    #[must_use]
    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        self.metrics.push((name, unit, value));
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
            root.insert((*name).to_owned(), json!(value));
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

/// Writes EMF documents for one function.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    function_name: String,
    level: String,
    sink: MetricsSink,
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

    #[test]
    fn record_without_metrics_writes_nothing() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics::new("ns", "fn", MetricsSink::Memory(lines.clone()));
        metrics.emit(&metrics.record().property("a", 1));
        assert!(lines.lock().unwrap().is_empty());
    }
}
