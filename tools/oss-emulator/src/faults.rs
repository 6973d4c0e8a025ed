//! Fault injection: rules that make matching requests fail, stall, break or change.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::util::lock;

/// One fault rule: which requests it hits and what happens to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The operation name (`GetObject`, `UploadPart`, …) or `*` for every operation.
    pub op: String,
    /// Only requests whose object key starts with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Apply to the next N matching requests, then the rule is spent; `None` means forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// The probability (0..=1) that a matching request is hit; `None` means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// What happens to a request the rule hits.
    pub fault: Fault,
}

impl FaultRule {
    /// A rule that hits every request of `op` (or `*`) with `fault`.
    pub fn new(op: impl Into<String>, fault: Fault) -> Self {
        Self {
            op: op.into(),
            key_prefix: None,
            times: None,
            rate: None,
            fault,
        }
    }

    /// Limits the rule to the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Limits the rule to keys starting with `prefix`.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Hits a matching request only with probability `rate`.
    #[must_use]
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }

    fn matches(&self, op: &str, key: Option<&str>) -> bool {
        (self.op == "*" || self.op == op)
            && match &self.key_prefix {
                None => true,
                Some(prefix) => key.is_some_and(|k| k.starts_with(prefix.as_str())),
            }
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with an OSS error instead of serving the request.
    Error {
        /// The HTTP status, e.g. 500 or 503.
        status: u16,
        /// The OSS error code, e.g. `InternalError` or `ServerBusy`.
        code: String,
        /// Sets `x-oss-qos-delay-time` (milliseconds), as OSS does when it throttles.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qos_delay_ms: Option<u64>,
    },
    /// Wait this many milliseconds, then serve the request normally.
    Latency {
        /// The added delay in milliseconds.
        ms: u64,
    },
    /// Send the headers with the full Content-Length, then close the connection after this
    /// many body bytes.
    Truncate {
        /// How many body bytes are sent before the connection is closed.
        after_bytes: u64,
    },
    /// Serve the request, but send the body at this many bytes per second: a slow
    /// cross-border download, for races between a slow copy and a fast overwrite.
    SlowBody {
        /// The body's pace.
        bytes_per_second: u64,
    },
    /// Close the TCP connection (with a RST) without answering.
    Reset,
    /// Serve the request, then overwrite the object with different bytes of the same size, so
    /// that its ETag changes.
    Replace,
    /// Serve the object with a wrong `x-oss-hash-crc64ecma`.
    CrcMismatch,
    /// Serve the request (it takes effect), then close the TCP connection (with a RST) instead
    /// of answering: the client never learns what happened.
    LoseAnswer,
}

/// The live rule set.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    rules: Mutex<Vec<FaultRule>>,
}

impl FaultSet {
    /// A set holding `rules`.
    pub(crate) fn new(rules: Vec<FaultRule>) -> Self {
        Self {
            rules: Mutex::new(rules),
        }
    }

    /// Replaces the rules.
    pub(crate) fn set(&self, rules: Vec<FaultRule>) {
        *lock(&self.rules) = rules;
    }

    /// The rules still active.
    pub(crate) fn get(&self) -> Vec<FaultRule> {
        lock(&self.rules).clone()
    }

    /// The fault for this request, if a rule hits it. Spends one use of a counted rule.
    pub(crate) fn pick(&self, op: &str, key: Option<&str>) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let index = rules.iter().position(|rule| {
            rule.matches(op, key)
                && rule.times != Some(0)
                && rule.rate.is_none_or(|rate| rand::random::<f64>() < rate)
        })?;
        let fault = rules[index].fault.clone();
        if let Some(times) = rules[index].times.as_mut() {
            *times -= 1;
            if *times == 0 {
                rules.remove(index);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rule_is_spent_after_n_hits() {
        let set = FaultSet::new(vec![FaultRule::new("GetObject", Fault::Reset).times(2)]);
        assert_eq!(set.pick("GetObject", Some("k")), Some(Fault::Reset));
        assert_eq!(set.pick("PutObject", Some("k")), None);
        assert_eq!(set.pick("GetObject", Some("k")), Some(Fault::Reset));
        assert_eq!(set.pick("GetObject", Some("k")), None);
        assert!(set.get().is_empty());
    }

    #[test]
    fn prefix_and_wildcard_select_requests() {
        let set = FaultSet::new(vec![
            FaultRule::new("*", Fault::Latency { ms: 1 }).key_prefix("slow/"),
        ]);
        assert!(set.pick("HeadObject", Some("slow/a")).is_some());
        assert!(set.pick("HeadObject", Some("fast/a")).is_none());
        assert!(set.pick("ListObjectsV2", None).is_none());
    }

    #[test]
    fn parses_documented_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"op":"GetObject","times":1,"fault":{"kind":"error","status":503,"code":"ServerBusy","qos_delay_ms":50}}"#,
        )
        .expect("parses");
        assert_eq!(
            rule.fault,
            Fault::Error {
                status: 503,
                code: "ServerBusy".into(),
                qos_delay_ms: Some(50)
            }
        );
        let rule: FaultRule =
            serde_json::from_str(r#"{"op":"*","fault":{"kind":"truncate","after_bytes":10}}"#)
                .expect("parses");
        assert_eq!(rule.fault, Fault::Truncate { after_bytes: 10 });
        let rule: FaultRule = serde_json::from_str(
            r#"{"op":"GetObject","key_prefix":"slow/","fault":{"kind":"slow_body","bytes_per_second":1048576}}"#,
        )
        .expect("parses");
        assert_eq!(
            rule.fault,
            Fault::SlowBody {
                bytes_per_second: 1_048_576
            }
        );
    }
}
