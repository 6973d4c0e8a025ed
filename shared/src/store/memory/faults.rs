//! The memory store's fault hooks.

use std::sync::Arc;
use std::time::Duration;

use super::MemoryStore;
use crate::store::StoreErrorKind;

/// What an injected fault does to the operation it matches.
#[derive(Clone)]
pub enum Fault {
    /// Fail with this kind (the store's message says it was injected).
    Fail(StoreErrorKind),
    /// GetObject sends only the first `bytes` bytes, then the stream breaks.
    Truncate {
        /// How many bytes arrive before the break.
        bytes: usize,
    },
    /// GetObject returns the right number of bytes with one of them changed.
    Corrupt,
    /// Writes store no user metadata (a broken store).
    DropMetadata,
    /// The operation waits this long before it runs.
    Delay(Duration),
    /// Runs this closure before the operation (for example, to overwrite the object mid-copy).
    Hook(Arc<dyn Fn(&MemoryStore) + Send + Sync>),
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fail(kind) => f.debug_tuple("Fail").field(kind).finish(),
            Self::Truncate { bytes } => f.debug_struct("Truncate").field("bytes", bytes).finish(),
            Self::Corrupt => f.write_str("Corrupt"),
            Self::DropMetadata => f.write_str("DropMetadata"),
            Self::Delay(delay) => f.debug_tuple("Delay").field(delay).finish(),
            Self::Hook(_) => f.write_str("Hook(..)"),
        }
    }
}

/// A fault and the operations it applies to.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// The operation name (`GetObject`, `UploadPart`, …); every operation when `None`.
    pub operation: Option<&'static str>,
    /// Only operations on keys starting with this.
    pub key_prefix: String,
    /// Skip this many matching calls before the fault applies.
    pub skip: u32,
    /// Apply to this many calls, then retire; forever when `None`.
    pub times: Option<u32>,
    /// What happens.
    pub fault: Fault,
}

impl FaultRule {
    /// `fault` on every call of `operation`.
    pub fn on(operation: &'static str, fault: Fault) -> Self {
        Self {
            operation: Some(operation),
            key_prefix: String::new(),
            skip: 0,
            times: None,
            fault,
        }
    }

    /// `fault` on every operation.
    pub fn always(fault: Fault) -> Self {
        Self {
            operation: None,
            ..Self::on("", fault)
        }
    }

    /// Only for keys starting with `prefix`.
    #[must_use]
    pub fn for_keys(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Only `n` times.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Not for the first `n` matching calls.
    #[must_use]
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    pub(super) fn matches(&self, operation: &str, key: &str) -> bool {
        self.operation.is_none_or(|op| op == operation) && key.starts_with(&self.key_prefix)
    }
}
