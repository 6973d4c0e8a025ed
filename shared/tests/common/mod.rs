//! Helpers shared by the engine tests (on `MemoryStore` and end to end).

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub(crate) mod scenarios;

use transfer::replicate::{Outcome, ReplicationError};
use transfer::task::{ReplicationTask, SourceObject, TaskOp};

/// The source bucket of every engine test.
pub(crate) const SRC: &str = "src-bucket";

/// A put task for `key` in [`SRC`], as a trigger event without ETag or size makes it.
pub(crate) fn task(key: &str) -> ReplicationTask {
    ReplicationTask::put(SourceObject {
        region: testkit::services::OSS_REGION.into(),
        bucket: SRC.into(),
        key: key.into(),
        size: None,
        etag: None,
    })
}

/// A delete task for `key` in [`SRC`].
pub(crate) fn delete_task(key: &str) -> ReplicationTask {
    ReplicationTask {
        op: TaskOp::Delete,
        ..task(key)
    }
}

/// Deterministic test data of `len` bytes, different per `seed`.
pub(crate) fn data(len: usize, seed: u8) -> Vec<u8> {
    (0u32..)
        .take(len)
        .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[1] ^ seed)
        .collect()
}

/// The error of a replication that should have failed.
pub(crate) fn expect_error(result: Result<Outcome, ReplicationError>) -> ReplicationError {
    match result {
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
        Err(e) => e,
    }
}
