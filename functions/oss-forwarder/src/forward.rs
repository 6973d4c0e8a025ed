//! The forwarder's whole job for one trigger invocation: parse the body, filter and map the
//! events, enqueue the tasks, and report. Kept here (not in the function) so that it can be
//! tested without a server.
//!
//! Failure semantics: the caller must report any error to FC as a failed invocation, so FC
//! retries the whole event and finally routes it to its on-failure destination. A retry may
//! enqueue some tasks a second time; that is harmless because the replicator is idempotent.

use serde::Serialize;

use transfer::sqs::{FailedMessage, SqsSender};
use transfer::trigger::{EventError, EventFilter, OssEventBatch, plan_forward};

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForwardReport {
    /// Events in the body.
    pub events: usize,
    /// Unique tasks the events produced.
    pub tasks: usize,
    /// Events of a type that is not forwarded.
    pub skipped_events: usize,
    /// Events whose key the prefix filter excluded.
    pub skipped_keys: usize,
    /// Events identical to an earlier one in the body.
    pub duplicates: usize,
    /// Tasks SQS accepted.
    pub sent: usize,
    /// SendMessageBatch calls made, retries included.
    pub batch_calls: usize,
    /// Tasks not enqueued (entry ID `t<n>` is the n-th task).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedTask>,
}

/// A task that could not be enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTask {
    /// The object key.
    pub key: String,
    /// The SQS error code.
    pub code: String,
    /// The error message.
    pub message: String,
}

/// Why an invocation failed; either way FC should retry it.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The body is not a usable OSS trigger event.
    #[error("malformed OSS trigger event: {0}")]
    Malformed(#[from] EventError),
    /// Some tasks were not enqueued after all retries.
    #[error("{} of {} tasks not enqueued", .0.failed.len(), .0.tasks)]
    NotEnqueued(ForwardReport),
}

impl ForwardError {
    /// A short machine-readable kind for response bodies and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_event",
            Self::NotEnqueued(_) => "enqueue_failed",
        }
    }
}

/// Parses a trigger body, enqueues the tasks it yields and reports what happened.
pub async fn forward_trigger(
    body: &[u8],
    filter: &EventFilter,
    sender: &SqsSender,
) -> Result<ForwardReport, ForwardError> {
    let batch = OssEventBatch::parse(body)?;
    let plan = plan_forward(&batch, filter);
    let summary = sender.send_tasks(&plan.tasks).await;
    let failed = summary
        .failed
        .iter()
        .map(|f: &FailedMessage| FailedTask {
            key: task_index(&f.id)
                .and_then(|i| plan.tasks.get(i))
                .map(|t| t.source.key.clone())
                .unwrap_or_default(),
            code: f.code.clone(),
            message: f.message.clone(),
        })
        .collect();
    let report = ForwardReport {
        events: batch.events.len(),
        tasks: plan.tasks.len(),
        skipped_events: plan.skipped_events,
        skipped_keys: plan.skipped_keys,
        duplicates: plan.duplicates,
        sent: summary.sent,
        batch_calls: summary.batch_calls,
        failed,
    };
    if report.failed.is_empty() {
        Ok(report)
    } else {
        Err(ForwardError::NotEnqueued(report))
    }
}

/// The task index in an entry ID `t<n>`.
fn task_index(entry_id: &str) -> Option<usize> {
    entry_id.strip_prefix('t')?.parse().ok()
}

/// At most `max` bytes of `body` as text (cut on a character boundary, invalid UTF-8 replaced),
/// with a marker when something was cut: for error logs.
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= max {
        return text.into_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes total)", &text[..end], body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_bodies_whole() {
        assert_eq!(excerpt(b"{\"a\":1}", 100), "{\"a\":1}");
    }

    #[test]
    fn excerpt_cuts_on_char_boundary() {
        let body = "ééééé".as_bytes();
        let cut = excerpt(body, 3);
        assert!(cut.starts_with('é') && !cut.starts_with("éé"), "{cut}");
        assert!(cut.ends_with("(10 bytes total)"), "{cut}");
    }

    #[test]
    fn parses_task_index_from_entry_id() {
        assert_eq!(task_index("t12"), Some(12));
        assert_eq!(task_index("x"), None);
    }
}
