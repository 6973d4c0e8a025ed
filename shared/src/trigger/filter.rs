//! Which events are forwarded: the event filter (names, categories, key prefixes) and the plan of
//! tasks one trigger body yields.

use std::collections::HashSet;

use super::{
    CATEGORIES, DEFAULT_FORWARDED_EVENTS, DELETE_EVENTS, NEVER_FORWARDED_EVENTS, OssEvent,
    OssEventBatch, normalize_event_name, op_for_event,
};
use crate::task::{ReplicationTask, SourceObject, TaskOp};

/// A filter setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilterConfigError {
    /// An event pattern names one of [`NEVER_FORWARDED_EVENTS`].
    #[error("{0} is never forwarded (it does not describe a complete object)")]
    NeverForwarded(String),
    /// An `ObjectRemoved` pattern while deletes are off.
    #[error("{0} is a delete event, but forwarding deletes is not enabled")]
    DeleteNotEnabled(String),
    /// A pattern outside the ObjectCreated/ObjectRemoved/ObjectModified categories.
    #[error(
        "{0:?} is not an OSS event name (expected e.g. ObjectCreated:PutObject or ObjectCreated:*)"
    )]
    UnknownEvent(String),
}

/// Which events, and which keys, are forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Exact event names, or `Category:*` patterns.
    events: Vec<String>,
    include_prefixes: Vec<String>,
    exclude_prefixes: Vec<String>,
}

impl Default for EventFilter {
    /// [`DEFAULT_FORWARDED_EVENTS`], no deletes, every key.
    fn default() -> Self {
        Self {
            events: DEFAULT_FORWARDED_EVENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            include_prefixes: Vec::new(),
            exclude_prefixes: Vec::new(),
        }
    }
}

/// What the filter decided for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it as a task with this operation.
    Forward(TaskOp),
    /// Not a forwarded event type.
    SkipEvent,
    /// The key is outside the include prefixes or inside an exclude prefix.
    SkipKey,
}

/// Splits a comma-separated list, trimming entries and dropping empty ones.
fn split_list(list: Option<&str>) -> impl Iterator<Item = &str> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl EventFilter {
    /// Builds a filter from its settings.
    ///
    /// - `events`: comma-separated event names or `Category:*` patterns (an `oss:` prefix is
    ///   accepted) replacing [`DEFAULT_FORWARDED_EVENTS`]; `None` or empty keeps the default;
    /// - `deletes`: also forward [`DELETE_EVENTS`]; `ObjectRemoved` patterns require it;
    /// - `include_prefixes` / `exclude_prefixes`: comma-separated key prefixes.
    pub fn from_settings(
        events: Option<&str>,
        deletes: bool,
        include_prefixes: Option<&str>,
        exclude_prefixes: Option<&str>,
    ) -> Result<Self, FilterConfigError> {
        let mut patterns: Vec<String> = split_list(events)
            .map(|e| normalize_event_name(e).to_owned())
            .collect();
        for pattern in &patterns {
            if !CATEGORIES
                .iter()
                .any(|c| pattern.starts_with(c) && pattern.len() > c.len())
            {
                return Err(FilterConfigError::UnknownEvent(pattern.clone()));
            }
            if NEVER_FORWARDED_EVENTS.contains(&pattern.as_str()) {
                return Err(FilterConfigError::NeverForwarded(pattern.clone()));
            }
            if pattern.starts_with("ObjectRemoved:") && !deletes {
                return Err(FilterConfigError::DeleteNotEnabled(pattern.clone()));
            }
        }
        if patterns.is_empty() {
            patterns = DEFAULT_FORWARDED_EVENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        }
        if deletes {
            for delete in DELETE_EVENTS {
                if !patterns
                    .iter()
                    .any(|p| p == delete || p == "ObjectRemoved:*")
                {
                    patterns.push((*delete).to_owned());
                }
            }
        }
        Ok(Self {
            events: patterns,
            include_prefixes: split_list(include_prefixes).map(str::to_owned).collect(),
            exclude_prefixes: split_list(exclude_prefixes).map(str::to_owned).collect(),
        })
    }

    /// The forwarded event names and patterns.
    pub fn events(&self) -> &[String] {
        &self.events
    }

    /// Whether deletes are forwarded: some pattern names an `ObjectRemoved` event.
    pub fn forwards_deletes(&self) -> bool {
        self.events.iter().any(|p| p.starts_with("ObjectRemoved:"))
    }

    /// Whether an event name passes the event-type part of the filter.
    pub fn forwards_event(&self, name: &str) -> bool {
        let name = normalize_event_name(name);
        if NEVER_FORWARDED_EVENTS.contains(&name) {
            return false;
        }
        self.events
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(category) => name.starts_with(category),
                None => pattern == name,
            })
    }

    /// Whether a source object passes the key-prefix part of the filter.
    ///
    /// Prefixes are compared with every [`SourceObject::key_candidates`] form, so a prefix
    /// written in plain text also matches a URL-encoded key: an include matches if any form
    /// starts with an include prefix, an exclude if any form starts with an exclude prefix.
    pub fn forwards_key(&self, source: &SourceObject) -> bool {
        let candidates = source.key_candidates();
        let starts = |prefixes: &[String]| {
            candidates
                .iter()
                .any(|k| prefixes.iter().any(|p| k.starts_with(p.as_str())))
        };
        (self.include_prefixes.is_empty() || starts(&self.include_prefixes))
            && !starts(&self.exclude_prefixes)
    }

    /// The verdict for one event.
    pub fn decide(&self, event: &OssEvent) -> Verdict {
        if !self.forwards_event(&event.event_name) {
            Verdict::SkipEvent
        } else if !self.forwards_key(&event.source()) {
            Verdict::SkipKey
        } else {
            Verdict::Forward(op_for_event(&event.event_name))
        }
    }
}

/// The tasks one trigger invocation produces, with counts of what was left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardPlan {
    /// The tasks to enqueue, unique, in event order.
    pub tasks: Vec<ReplicationTask>,
    /// Events of a type that is not forwarded.
    pub skipped_events: usize,
    /// Events whose key the prefix lists excluded.
    pub skipped_keys: usize,
    /// Events identical to an earlier one in the same batch.
    pub duplicates: usize,
}

/// Filters a batch, maps the survivors onto tasks and drops tasks identical to an earlier one.
pub fn plan_forward(batch: &OssEventBatch, filter: &EventFilter) -> ForwardPlan {
    let mut plan = ForwardPlan::default();
    let mut seen = HashSet::new();
    for event in &batch.events {
        match filter.decide(event) {
            Verdict::SkipEvent => plan.skipped_events += 1,
            Verdict::SkipKey => plan.skipped_keys += 1,
            Verdict::Forward(op) => {
                let task = event.to_task(op);
                if seen.insert(task.to_json()) {
                    plan.tasks.push(task);
                } else {
                    plan.duplicates += 1;
                }
            }
        }
    }
    plan
}
