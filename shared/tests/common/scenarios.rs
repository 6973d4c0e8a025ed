//! Engine scenarios written once against the seam and run on both pairs of stores: the
//! reference `MemoryStore`s (`engine.rs`) and the OSS emulator into moto's S3
//! (`engine_end_to_end.rs`). Seeding goes through the source store's own sink side, so a scenario
//! needs nothing of a protocol.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::time::Instant;
use transfer::replicate::{
    Continuation, CopySettings, FailureKind, MARKER_CRC64, MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE,
    MARKER_SYMLINK_TARGET, Outcome, Replicator, RestoreSettings, SkipReason,
};
use transfer::store::{
    BodyChecksums, GetRequest, ListRequest, ObjectAttributes, ObjectSink, ObjectSource,
    ObjectStore, StorageClass, Symlinks, WriteCondition, WriteRequest, unquote_etag,
};
use transfer::task::ReplicationTask;

use super::{SRC, data, delete_task, expect_error, task};

/// A source store (also writable, for seeding), a destination store and its bucket.
pub(crate) trait Pair {
    /// The source store.
    type Src: ObjectSource + ObjectSink + Clone + 'static;
    /// The destination store.
    type Dst: ObjectSource + ObjectSink + Clone + 'static;

    /// The source store, holding bucket [`SRC`].
    fn src(&self) -> &Self::Src;
    /// The destination store.
    fn dst(&self) -> &Self::Dst;
    /// The destination bucket.
    fn dst_bucket(&self) -> &str;
    /// The part size and multipart threshold the pair's tests use (the sink's smallest part).
    fn part(&self) -> usize;
    /// How many times the source served `operation`.
    fn source_requests(&self, operation: &str) -> u64;
    /// How many multipart uploads the destination has in progress.
    fn pending_uploads(&self) -> impl Future<Output = usize>;

    /// Settings with the pair's part size and threshold.
    fn settings(&self) -> CopySettings {
        CopySettings {
            part_size: self.part() as u64,
            multipart_threshold: self.part() as u64,
            part_concurrency: 4,
            ..CopySettings::new(self.dst_bucket())
        }
    }

    /// The engine from source to destination.
    fn engine(&self, settings: CopySettings) -> Replicator<Self::Src, Self::Dst> {
        Replicator::new(self.src().clone(), self.dst().clone(), settings)
    }

    /// Writes a source object; returns its ETag as a trigger event carries it.
    fn seed(&self, key: &str, body: &[u8], request: &WriteRequest) -> impl Future<Output = String> {
        let body = Bytes::copy_from_slice(body);
        let checksums = BodyChecksums::of(&body);
        async move {
            let written = self
                .src()
                .put_object(SRC, key, body, checksums, request, &WriteCondition::None)
                .await
                .expect("seeded");
            unquote_etag(&written.etag).to_owned()
        }
    }

    /// The destination object's bytes.
    fn dst_bytes(&self, key: &str) -> impl Future<Output = Option<Vec<u8>>> {
        async move {
            let output = self
                .dst()
                .get_object(self.dst_bucket(), key, &GetRequest::default())
                .await
                .ok()?;
            let mut body = output.body;
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                bytes.extend_from_slice(&chunk.ok()?);
            }
            Some(bytes)
        }
    }

    /// The destination object's attributes.
    fn dst_head(&self, key: &str) -> impl Future<Output = Option<ObjectAttributes>> {
        async move { self.dst().head_object(self.dst_bucket(), key).await.ok() }
    }

    /// Every destination key, in listing order.
    fn dst_keys(&self) -> impl Future<Output = Vec<String>> {
        async move {
            let mut keys = Vec::new();
            let mut request = ListRequest::default();
            loop {
                let page = self
                    .dst()
                    .list_objects(self.dst_bucket(), &request)
                    .await
                    .expect("the destination lists");
                keys.extend(page.objects.into_iter().map(|o| o.key));
                match page.next {
                    Some(token) => request.continuation = Some(token),
                    None => return keys,
                }
            }
        }
    }
}

pub(crate) async fn copies_sizes_around_the_threshold_byte_exact(pair: &impl Pair) {
    let part = pair.part();
    let engine = pair.engine(pair.settings());
    for (size, multipart, parts) in [
        (0, false, 1),
        (1, false, 1),
        (part - 1, false, 1),
        (part, false, 1),
        (part + 1, true, 2),
        (part * 3 + 3, true, 4),
    ] {
        let key = format!("sizes/{size}.bin");
        let body = data(size, 3);
        pair.seed(&key, &body, &WriteRequest::default()).await;
        let outcome = engine.replicate(&task(&key), None).await.expect("copied");
        assert_eq!(
            outcome,
            Outcome::Copied {
                bytes: size as u64,
                multipart,
                parts
            },
            "{key}"
        );
        assert!(pair.dst_bytes(&key).await == Some(body), "{key} differs");
    }
    assert_eq!(pair.pending_uploads().await, 0);
}

/// `replace_mid_copy` arranges for the source object to be overwritten after its first part has
/// been read (each pair has its own fault hooks).
pub(crate) async fn object_replaced_mid_copy_ends_as_one_whole_version<P: Pair>(
    pair: &P,
    replace_mid_copy: impl FnOnce(&P),
) {
    let original = data(pair.part() * 2 + 10, 7);
    pair.seed("replaced.bin", &original, &WriteRequest::default())
        .await;
    replace_mid_copy(pair);
    let settings = CopySettings {
        part_concurrency: 1,
        ..pair.settings()
    };
    let outcome = pair
        .engine(settings)
        .replicate(&task("replaced.bin"), None)
        .await
        .expect("copied after a restart");
    assert!(
        matches!(
            outcome,
            Outcome::Copied {
                multipart: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    let current = source_bytes(pair, "replaced.bin").await;
    assert_ne!(current, original, "the fault replaced the object");
    assert!(
        pair.dst_bytes("replaced.bin").await == Some(current),
        "the destination does not hold the current version"
    );
    assert_eq!(pair.pending_uploads().await, 0);
}

/// The source object's current bytes.
async fn source_bytes(pair: &impl Pair, key: &str) -> Vec<u8> {
    let output = pair
        .src()
        .get_object(SRC, key, &GetRequest::default())
        .await
        .expect("the source object exists");
    let mut body = output.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.expect("the body reads"));
    }
    bytes
}

pub(crate) async fn writes_the_marker_with_source_identity(pair: &impl Pair) {
    let body = data(pair.part() + 100, 9);
    let etag = pair
        .seed("marked/big.bin", &body, &WriteRequest::default())
        .await;
    pair.seed("marked/small.txt", b"hello", &WriteRequest::default())
        .await;
    let engine = pair.engine(pair.settings());
    let scheme = pair.src().scheme();
    for (key, bytes) in [
        ("marked/big.bin", &body[..]),
        ("marked/small.txt", b"hello"),
    ] {
        engine.replicate(&task(key), None).await.expect("copied");
        let meta = pair.dst_head(key).await.expect("exists").user_metadata;
        assert_eq!(meta[MARKER_SOURCE], format!("{scheme}://{SRC}/{key}"));
        assert_eq!(meta[MARKER_SIZE], bytes.len().to_string());
        assert_eq!(
            meta[MARKER_CRC64],
            transfer::crc64::checksum(bytes).to_string()
        );
        assert!(
            !meta[MARKER_ETAG].contains('"'),
            "the marker's ETag is unquoted"
        );
    }
    let meta = pair.dst_head("marked/big.bin").await.expect("exists");
    assert_eq!(meta.user_metadata[MARKER_ETAG], etag);
}

/// `restore_delay` is how long the source takes to restore an object.
pub(crate) async fn archived_object_is_restored_then_copied(
    pair: &impl Pair,
    restore_delay: Duration,
) {
    let body = data(300, 8);
    let archived = WriteRequest {
        storage_class: Some(StorageClass::Archive),
        ..WriteRequest::default()
    };
    pair.seed("cold/a.bin", &body, &archived).await;
    let settings = CopySettings {
        restore: Some(RestoreSettings {
            retry_after: Duration::from_mins(10),
            ..RestoreSettings::default()
        }),
        ..pair.settings()
    };
    let engine = pair.engine(settings);
    let error = expect_error(engine.replicate(&task("cold/a.bin"), None).await);
    assert_eq!(error.kind, FailureKind::RestoreInProgress, "{error}");
    assert!(error.is_retryable());
    assert_eq!(error.retry_after, Some(Duration::from_mins(10)));
    assert_eq!(pair.source_requests("RestoreObject"), 1);
    let again = expect_error(engine.replicate(&task("cold/a.bin"), None).await);
    assert_eq!(again.kind, FailureKind::RestoreInProgress);
    assert_eq!(
        pair.source_requests("RestoreObject"),
        1,
        "no second restore while one runs"
    );
    tokio::time::sleep(restore_delay + Duration::from_millis(300)).await;
    let outcome = engine
        .replicate(&task("cold/a.bin"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert!(pair.dst_bytes("cold/a.bin").await == Some(body));
}

pub(crate) async fn symlink_copies_the_target_bytes_and_records_the_target(pair: &impl Pair) {
    pair.seed(
        "real/target.txt",
        b"pointed-to bytes",
        &WriteRequest::default(),
    )
    .await;
    pair.src()
        .symlinks()
        .expect("the source has symlinks")
        .put_symlink(SRC, "links/link.txt", "real/target.txt")
        .await
        .expect("symlink");
    pair.engine(pair.settings())
        .replicate(&task("links/link.txt"), None)
        .await
        .expect("copied");
    assert_eq!(
        pair.dst_bytes("links/link.txt").await.as_deref(),
        Some(&b"pointed-to bytes"[..])
    );
    let head = pair.dst_head("links/link.txt").await.expect("exists");
    assert_eq!(head.user_metadata[MARKER_SYMLINK_TARGET], "real/target.txt");
}

pub(crate) async fn continues_across_invocations_when_the_deadline_nears(pair: &impl Pair) {
    let body = data(pair.part() * 3 + 5, 4);
    pair.seed("long/object.bin", &body, &WriteRequest::default())
        .await;
    // The margin is never met, so each invocation starts one part only; the stop margin is
    // zero, so that part may run to the (generous) deadline.
    let settings = CopySettings {
        deadline_margin: Duration::from_hours(1),
        stop_margin: Duration::ZERO,
        ..pair.settings()
    };
    let engine = pair.engine(settings);
    let first = engine
        .replicate(
            &task("long/object.bin"),
            Some(Instant::now() + Duration::from_secs(30)),
        )
        .await
        .expect("continues");
    let Outcome::Continue { task: next, .. } = first else {
        panic!("expected a continuation, got {first:?}");
    };
    let continuation =
        Continuation::from_value(next.continuation.as_ref().expect("carried")).expect("readable");
    assert_eq!(
        continuation.parts.len(),
        1,
        "one part per too-short invocation"
    );
    assert_eq!(continuation.src_size, body.len() as u64);
    assert_eq!(continuation.dst_key, "long/object.bin");
    assert!(next.to_json().len() < 4096);
    assert_eq!(
        pair.pending_uploads().await,
        1,
        "the upload is kept for the next call"
    );
    assert!(pair.dst_keys().await.is_empty());

    // The continuation travels through the queue as JSON.
    let next = serde_json::from_str::<ReplicationTask>(&next.to_json()).expect("parses");
    let second = engine.replicate(&next, None).await.expect("completes");
    assert_eq!(
        second,
        Outcome::Copied {
            bytes: body.len() as u64,
            multipart: true,
            parts: 4
        }
    );
    assert!(pair.dst_bytes("long/object.bin").await == Some(body));
    assert_eq!(pair.pending_uploads().await, 0);
}

pub(crate) async fn odd_keys_are_copied_byte_exact(pair: &impl Pair) {
    let keys = [
        "with space.txt".to_owned(),
        "plus+sign+".to_owned(),
        "percent%20literal%".to_owned(),
        "unicode/文件/ü-é.bin".to_owned(),
        "emoji/🚀.dat".to_owned(),
        "question?mark=1&x#hash".to_owned(),
        "a".repeat(1_023),
    ];
    let engine = pair.engine(pair.settings());
    for key in &keys {
        pair.seed(key, key.as_bytes(), &WriteRequest::default())
            .await;
        let outcome = engine.replicate(&task(key), None).await.expect("copied");
        assert!(
            matches!(outcome, Outcome::Copied { .. }),
            "{key}: {outcome:?}"
        );
        assert_eq!(
            pair.dst_bytes(key).await.as_deref(),
            Some(key.as_bytes()),
            "{key}"
        );
    }
    let mut expected = keys.to_vec();
    expected.sort();
    assert_eq!(pair.dst_keys().await, expected, "listed in byte order");
}

pub(crate) async fn deletes_only_objects_carrying_this_sources_marker(pair: &impl Pair) {
    let settings = CopySettings {
        replicate_deletes: true,
        ..pair.settings()
    };
    let engine = pair.engine(settings);
    pair.seed("del/mine.txt", b"mine", &WriteRequest::default())
        .await;
    engine
        .replicate(&task("del/mine.txt"), None)
        .await
        .expect("copied");
    pair.src()
        .delete_object(SRC, "del/mine.txt", None)
        .await
        .expect("deleted at the source");
    let outcome = engine
        .replicate(&delete_task("del/mine.txt"), None)
        .await
        .expect("deleted");
    assert_eq!(outcome, Outcome::Deleted);
    assert!(pair.dst_head("del/mine.txt").await.is_none());

    let foreign = Bytes::from_static(b"not ours");
    pair.dst()
        .put_object(
            pair.dst_bucket(),
            "del/foreign.txt",
            foreign.clone(),
            BodyChecksums::of(&foreign),
            &WriteRequest::default(),
            &WriteCondition::None,
        )
        .await
        .expect("a foreign object");
    let outcome = engine
        .replicate(&delete_task("del/foreign.txt"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::DeleteNotOwned));
    assert!(pair.dst_head("del/foreign.txt").await.is_some());

    let outcome = engine
        .replicate(&delete_task("del/absent.txt"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::DestinationAbsent));
}

/// Two-way mode: an engine each way on one pair of buckets. What one direction writes, the
/// other never copies back, and an object written on either side ends on both, once.
pub(crate) async fn two_way_copies_never_loop(pair: &impl Pair) {
    let forward = pair.engine(pair.settings());
    let back = Replicator::new(
        pair.dst().clone(),
        pair.src().clone(),
        CopySettings {
            part_size: pair.part() as u64,
            multipart_threshold: pair.part() as u64,
            ..CopySettings::new(SRC)
        },
    );
    let back_task = |key: &str| {
        let mut task = task(key);
        pair.dst_bucket().clone_into(&mut task.source.bucket);
        task
    };
    let body = data(pair.part() + 7, 21);
    let etag = pair
        .seed("two-way/a.bin", &body, &WriteRequest::default())
        .await;
    let copied = forward.replicate(&task("two-way/a.bin"), None).await;
    assert!(
        matches!(
            copied,
            Ok(Outcome::Copied {
                multipart: true,
                ..
            })
        ),
        "{copied:?}"
    );
    // The replica's event, in the other direction: skipped, and the original left as it was.
    let echo = back.replicate(&back_task("two-way/a.bin"), None).await;
    assert_eq!(
        echo.expect("settled"),
        Outcome::Skipped(SkipReason::ReplicaOfDestination)
    );
    let original = pair
        .src()
        .head_object(SRC, "two-way/a.bin")
        .await
        .expect("source");
    assert_eq!(
        unquote_etag(&original.etag),
        etag,
        "the original was rewritten"
    );
    assert!(!original.user_metadata.contains_key(MARKER_SOURCE));

    // An object written on the other side goes the other way, and its echo stops there too.
    let other = data(99, 22);
    let written = pair
        .dst()
        .put_object(
            pair.dst_bucket(),
            "two-way/b.bin",
            Bytes::from(other.clone()),
            BodyChecksums::of(&other),
            &WriteRequest::default(),
            &WriteCondition::None,
        )
        .await
        .expect("written on the destination side");
    let copied = back.replicate(&back_task("two-way/b.bin"), None).await;
    assert!(
        matches!(copied, Ok(Outcome::Copied { bytes: 99, .. })),
        "{copied:?}"
    );
    assert_eq!(source_bytes(pair, "two-way/b.bin").await, other);
    let echo = forward.replicate(&task("two-way/b.bin"), None).await;
    assert_eq!(
        echo.expect("settled"),
        Outcome::Skipped(SkipReason::ReplicaOfDestination)
    );
    let kept = pair.dst_head("two-way/b.bin").await.expect("kept");
    assert_eq!(
        kept.etag, written.etag,
        "the other side's object was rewritten"
    );

    // The origin changes: its copy is brought up to date, and that echo is skipped as well.
    let newer = data(pair.part() + 9, 23);
    pair.seed("two-way/a.bin", &newer, &WriteRequest::default())
        .await;
    let copied = forward.replicate(&task("two-way/a.bin"), None).await;
    assert!(matches!(copied, Ok(Outcome::Copied { .. })), "{copied:?}");
    let echo = back.replicate(&back_task("two-way/a.bin"), None).await;
    assert_eq!(
        echo.expect("settled"),
        Outcome::Skipped(SkipReason::ReplicaOfDestination)
    );
    assert_eq!(pair.dst_bytes("two-way/a.bin").await, Some(newer.clone()));
    assert_eq!(source_bytes(pair, "two-way/a.bin").await, newer);
    assert_eq!(pair.pending_uploads().await, 0);
}
