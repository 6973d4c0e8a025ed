//! The replica converges on the source's latest state when deliveries race each other and the
//! user: a slow copy of an old version never lands last, a delete never removes a re-created
//! object's replica, look-alike keys stay apart, metadata-only changes propagate, an archived
//! object already replicated is not restored again, and long non-ASCII keys fit the marker.
//! On `MemoryStore`s, whose delays and hooks put each race exactly where it hurts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use transfer::replicate::{
    CopySettings, MARKER_SOURCE, Outcome, Replicator, RestoreSettings, SkipReason,
};
use transfer::size::KIB;
use transfer::store::memory::{Fault, FaultRule, MemoryConfig};
use transfer::store::{
    ConditionalWrites, MemoryStore, ObjectStore, PartLimits, StorageClass, WriteRequest,
};
use transfer::task::{ReplicationTask, SourceObject};

use common::{SRC, data, delete_task, task};

const DST: &str = "dst-bucket";
const PART: usize = transfer::size::as_usize(64 * KIB);

struct Env {
    src: MemoryStore,
    dst: MemoryStore,
}

impl Env {
    /// A destination that enforces every write condition, as S3 does.
    fn new() -> Self {
        Self::with_conditions(ConditionalWrites::ALL)
    }

    /// A destination that enforces only `conditions` (OSS: only "if absent").
    fn with_conditions(conditions: ConditionalWrites) -> Self {
        Self {
            src: MemoryStore::new(MemoryConfig::default()).with_bucket(SRC),
            dst: MemoryStore::new(MemoryConfig {
                limits: PartLimits {
                    min_part_size: PART as u64,
                    ..PartLimits::S3
                },
                conditional_writes: conditions,
                ..MemoryConfig::default()
            })
            .with_bucket(DST),
        }
    }

    fn settings() -> CopySettings {
        CopySettings {
            part_size: PART as u64,
            multipart_threshold: PART as u64,
            replicate_deletes: true,
            ..CopySettings::new(DST)
        }
    }

    fn engine(&self) -> Replicator<MemoryStore, MemoryStore> {
        Replicator::new(self.src.clone(), self.dst.clone(), Self::settings())
    }

    fn seed(&self, key: &str, body: &[u8]) -> String {
        self.seed_with(key, body, &WriteRequest::default())
    }

    fn seed_with(&self, key: &str, body: &[u8], request: &WriteRequest) -> String {
        let etag = self
            .src
            .seed(SRC, key, Bytes::copy_from_slice(body), request);
        etag.trim_matches('"').to_owned()
    }

    fn dst_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.dst.object_bytes(DST, key).map(|b| b.to_vec())
    }
}

/// Runs the race on `env`: copy A of v1 is held at `operation` for 300 ms; meanwhile the user
/// writes v2 and copy B replicates it. Returns A's outcome.
async fn slow_copy_races_a_fast_one(env: &Env, operation: &'static str, size: usize) -> Outcome {
    let v1 = data(size, 1);
    let v2 = data(size + 10, 2);
    env.seed("race/object.bin", &v1);
    env.dst
        .inject(FaultRule::on(operation, Fault::Delay(Duration::from_millis(300))).times(1));
    let engine = env.engine();
    let slow = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.replicate(&task("race/object.bin"), None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.seed("race/object.bin", &v2);
    let fast = engine
        .replicate(&task("race/object.bin"), None)
        .await
        .expect("the fast copy");
    assert!(matches!(fast, Outcome::Copied { .. }), "{fast:?}");
    let slow = slow.await.expect("joined").expect("the slow copy");
    assert!(
        env.dst_bytes("race/object.bin") == Some(v2),
        "the replica must hold the latest version"
    );
    assert!(env.dst.uploads(DST).is_empty(), "no upload left behind");
    slow
}

#[tokio::test]
async fn a_slow_put_of_an_old_version_never_lands_over_a_newer_one() {
    let env = Env::new();
    let slow = slow_copy_races_a_fast_one(&env, "PutObject", 1000).await;
    assert_eq!(slow, Outcome::Skipped(SkipReason::AlreadyReplicated));
}

#[tokio::test]
async fn a_slow_multipart_completion_of_an_old_version_never_lands_over_a_newer_one() {
    let env = Env::new();
    let slow = slow_copy_races_a_fast_one(&env, "CompleteMultipartUpload", PART * 2 + 1).await;
    assert_eq!(slow, Outcome::Skipped(SkipReason::AlreadyReplicated));
}

#[tokio::test]
async fn without_conditional_overwrites_the_slow_copy_checks_the_source_and_copies_again() {
    // As on OSS: only "if absent" is enforced, so the stale write lands, is noticed by the
    // source check after it, and is replaced.
    let env = Env::with_conditions(ConditionalWrites {
        if_absent: true,
        ..ConditionalWrites::NONE
    });
    env.dst.seed(
        DST,
        "race/object.bin",
        Bytes::from_static(b"older"),
        &WriteRequest::default(),
    );
    let slow = slow_copy_races_a_fast_one(&env, "PutObject", 1000).await;
    assert!(
        matches!(slow, Outcome::Copied { .. }),
        "copied again: {slow:?}"
    );
}

#[tokio::test]
async fn a_copy_over_an_object_changed_meanwhile_looks_again_and_writes_the_latest() {
    // The destination changes between the copy's HEAD and its PUT, to a version the source
    // does not hold: the write is refused, the copy looks again and replaces it.
    let env = Env::new();
    let body = data(500, 3);
    env.seed("race/replaced.bin", &body);
    let dst = env.dst.clone();
    env.dst.inject(
        FaultRule::on(
            "PutObject",
            Fault::Hook(Arc::new(move |store: &MemoryStore| {
                store.seed(
                    DST,
                    "race/replaced.bin",
                    Bytes::from_static(b"someone else"),
                    &WriteRequest::default(),
                );
            })),
        )
        .times(1),
    );
    let outcome = env
        .engine()
        .replicate(&task("race/replaced.bin"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(
        dst.request_count("PutObject"),
        2,
        "refused once, then written"
    );
    assert!(env.dst_bytes("race/replaced.bin") == Some(body));
}

#[tokio::test]
async fn a_delete_never_removes_the_replica_of_a_re_created_object() {
    for same_bytes in [false, true] {
        let env = Env::new();
        let engine = env.engine();
        env.seed("del/again.txt", b"first");
        engine
            .replicate(&task("del/again.txt"), None)
            .await
            .expect("copied");
        env.src
            .delete_object(SRC, "del/again.txt", None)
            .await
            .expect("deleted");
        // The delete task is held at its DeleteObject while the user re-creates the object and
        // its put task replicates it.
        env.dst.inject(
            FaultRule::on("DeleteObject", Fault::Delay(Duration::from_millis(300))).times(1),
        );
        let deleting = {
            let engine = engine.clone();
            tokio::spawn(async move { engine.replicate(&delete_task("del/again.txt"), None).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let again: &[u8] = if same_bytes { b"first" } else { b"second" };
        env.seed("del/again.txt", again);
        engine
            .replicate(&task("del/again.txt"), None)
            .await
            .expect("put");
        let outcome = deleting.await.expect("joined").expect("delete task");
        assert!(
            !matches!(outcome, Outcome::Deleted),
            "same bytes {same_bytes}: {outcome:?}"
        );
        assert_eq!(
            env.dst_bytes("del/again.txt").as_deref(),
            Some(again),
            "same bytes {same_bytes}: the re-created object keeps its replica"
        );
    }
}

#[tokio::test]
async fn a_put_that_loses_the_race_with_a_delete_takes_its_replica_away_again() {
    let env = Env::new();
    let engine = env.engine();
    env.seed("late/put.txt", b"short-lived");
    // The put is held at its PutObject; meanwhile the object is deleted and the delete task
    // runs (finding nothing to delete yet).
    env.dst
        .inject(FaultRule::on("PutObject", Fault::Delay(Duration::from_millis(300))).times(1));
    let putting = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.replicate(&task("late/put.txt"), None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.src
        .delete_object(SRC, "late/put.txt", None)
        .await
        .expect("deleted");
    let outcome = engine
        .replicate(&delete_task("late/put.txt"), None)
        .await
        .expect("delete");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::DestinationAbsent));
    let outcome = putting.await.expect("joined").expect("put task");
    assert_eq!(outcome, Outcome::Deleted, "the put noticed the delete");
    assert!(
        env.dst.keys(DST).is_empty(),
        "no replica of a deleted object"
    );
}

fn hinted(key: &str, etag: &str, size: usize) -> ReplicationTask {
    ReplicationTask::put(SourceObject {
        region: "cn-hangzhou".into(),
        bucket: SRC.into(),
        key: key.into(),
        size: Some(size as u64),
        etag: Some(etag.into()),
    })
}

#[tokio::test]
async fn look_alike_keys_are_told_apart_by_the_event_etag_and_size() {
    // "a+b" and "a b" both exist; an event key "a+b" may name either (form-decoded or not).
    let env = Env::new();
    let plus = data(100, 1);
    let space = data(200, 2);
    let plus_etag = env.seed("dir/a+b", &plus);
    let space_etag = env.seed("dir/a b", &space);
    let engine = env.engine();
    engine
        .replicate(&hinted("dir/a+b", &space_etag, space.len()), None)
        .await
        .expect("copied");
    assert_eq!(
        env.dst.keys(DST),
        ["dir/a b"],
        "the candidate the event describes"
    );
    engine
        .replicate(&hinted("dir/a+b", &plus_etag, plus.len()), None)
        .await
        .expect("copied");
    assert!(env.dst_bytes("dir/a+b") == Some(plus));
    assert!(env.dst_bytes("dir/a b") == Some(space.clone()));

    // Deleting "a+b" deletes its replica only, and leaves the replica of "a b" alone.
    env.src
        .delete_object(SRC, "dir/a+b", None)
        .await
        .expect("deleted");
    let outcome = engine
        .replicate(&delete_task("dir/a+b"), None)
        .await
        .expect("delete");
    assert_eq!(outcome, Outcome::Deleted);
    assert_eq!(env.dst.keys(DST), ["dir/a b"]);
    assert!(env.dst_bytes("dir/a b") == Some(space));
}

#[tokio::test]
async fn a_metadata_only_change_is_copied() {
    let env = Env::new();
    let engine = env.engine();
    let meta = |value: &str| WriteRequest {
        user_metadata: [("owner".to_owned(), value.to_owned())].into(),
        ..WriteRequest::default()
    };
    let etag_before = env.seed_with("meta/doc.txt", b"same bytes", &meta("alice"));
    engine
        .replicate(&task("meta/doc.txt"), None)
        .await
        .expect("copied");
    // OSS UpdateObjectMeta: new metadata, same bytes, same ETag.
    let etag_after = env.seed_with("meta/doc.txt", b"same bytes", &meta("bob"));
    assert_eq!(etag_before, etag_after);
    let outcome = engine
        .replicate(&task("meta/doc.txt"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    let head = env
        .dst
        .head_object(DST, "meta/doc.txt")
        .await
        .expect("head");
    assert_eq!(head.user_metadata["owner"], "bob");
    let outcome = engine
        .replicate(&task("meta/doc.txt"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::AlreadyReplicated));
}

#[tokio::test]
async fn a_replicated_object_that_moved_to_an_archive_is_not_restored_again() {
    let env = Env::new();
    let settings = CopySettings {
        restore: Some(RestoreSettings::default()),
        ..Env::settings()
    };
    let engine = Replicator::new(env.src.clone(), env.dst.clone(), settings);
    env.seed("cold/done.bin", b"replicated while online");
    engine
        .replicate(&task("cold/done.bin"), None)
        .await
        .expect("copied");
    // A lifecycle rule moves the source to Archive: same bytes, same ETag.
    let archived = WriteRequest {
        storage_class: Some(StorageClass::Archive),
        ..WriteRequest::default()
    };
    env.seed_with("cold/done.bin", b"replicated while online", &archived);
    env.src.reset_counters();
    let outcome = engine
        .replicate(&task("cold/done.bin"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::AlreadyReplicated));
    assert_eq!(env.src.request_count("RestoreObject"), 0, "no paid restore");
}

#[tokio::test]
async fn the_longest_non_ascii_key_fits_the_marker() {
    // 341 three-byte characters: 1,023 bytes, which S3 accepts; percent-encoded in the marker
    // it would be 3 KB, over S3's 2 KB of user metadata.
    let env = Env::new();
    let key = "文".repeat(341);
    assert_eq!(key.len(), 1023);
    env.seed(&key, b"far from home");
    let outcome = env
        .engine()
        .replicate(&task(&key), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    let head = env.dst.head_object(DST, &key).await.expect("head");
    assert!(head.user_metadata[MARKER_SOURCE].starts_with("sha256:"));
    let outcome = env
        .engine()
        .replicate(&task(&key), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::AlreadyReplicated));
    env.src
        .delete_object(SRC, &key, None)
        .await
        .expect("deleted");
    let outcome = env
        .engine()
        .replicate(&delete_task(&key), None)
        .await
        .expect("deleted");
    assert_eq!(
        outcome,
        Outcome::Deleted,
        "the compact marker still proves ownership"
    );
}
