//! The copy engine's behaviour on the reference store: a `MemoryStore` as the source and another
//! as the destination. Nothing here needs a protocol, so nothing needs a server or Python; the
//! same engine against the OSS emulator and moto is in `engine_end_to_end.rs`.

mod common;

use common::scenarios::{self, Pair};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use transfer::replicate::{
    CopySettings, Delivery, FailureKind, Outcome, Replicator, RestoreSettings, SkipReason,
};
use transfer::size::KIB;
use transfer::store::memory::{Fault, FaultRule, MemoryConfig};
use transfer::store::{
    ContentHeaders, MemoryStore, ObjectAttributes, ObjectStore, PartLimits, StorageClass,
    WriteRequest,
};

use common::{SRC, data, delete_task, expect_error, task};

const DST: &str = "dst-bucket";
/// The part size and threshold the tests use.
const PART: usize = transfer::size::as_usize(64 * KIB);

/// S3's limits, but with parts as small as the tests' so that multipart copies stay small.
fn sink_limits() -> PartLimits {
    PartLimits {
        min_part_size: PART as u64,
        ..PartLimits::S3
    }
}

/// A source store and a destination store.
struct Env {
    src: MemoryStore,
    dst: MemoryStore,
}

impl Env {
    fn new() -> Self {
        Self::with(MemoryConfig::default())
    }

    fn with(source: MemoryConfig) -> Self {
        Self {
            src: MemoryStore::new(source).with_bucket(SRC),
            dst: MemoryStore::new(MemoryConfig {
                limits: sink_limits(),
                ..MemoryConfig::default()
            })
            .with_bucket(DST),
        }
    }

    fn engine(&self, settings: CopySettings) -> Replicator<MemoryStore, MemoryStore> {
        Replicator::new(self.src.clone(), self.dst.clone(), settings)
    }

    /// Stores a source object; returns its ETag as a trigger event carries it.
    fn seed(&self, key: &str, data: &[u8]) -> String {
        self.seed_with(key, data, &WriteRequest::default())
    }

    fn seed_with(&self, key: &str, data: &[u8], request: &WriteRequest) -> String {
        let etag = self
            .src
            .seed(SRC, key, Bytes::copy_from_slice(data), request);
        etag.trim_matches('"').to_owned()
    }

    fn dst_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.dst.object_bytes(DST, key).map(|b| b.to_vec())
    }

    async fn dst_head(&self, key: &str) -> Option<ObjectAttributes> {
        self.dst.head_object(DST, key).await.ok()
    }

    fn dst_keys(&self) -> Vec<String> {
        self.dst.keys(DST)
    }

    fn pending_uploads(&self) -> usize {
        self.dst.uploads(DST).len()
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes, metadata, marker

#[tokio::test]
async fn copies_content_headers_user_metadata_and_the_configured_class() {
    let env = Env::new();
    let request = WriteRequest {
        content: ContentHeaders {
            content_type: Some("text/csv; charset=utf-8".into()),
            content_encoding: Some("gzip".into()),
            content_disposition: Some("attachment; filename=\"report 1.csv\"".into()),
            content_language: Some("zh-CN".into()),
            cache_control: Some("max-age=3600, public".into()),
            expires: Some("Thu, 01 Dec 2044 16:00:00 GMT".into()),
        },
        user_metadata: [("origin", "camera-7"), ("multi-word", "a b c")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..WriteRequest::default()
    };
    let settings = CopySettings {
        storage_class: Some(StorageClass::InfrequentAccess),
        ..env.settings()
    };
    let engine = env.engine(settings);
    for (key, size) in [("meta/single.csv", 1000), ("meta/multi.csv", PART + 1)] {
        env.seed_with(key, &data(size, 1), &request);
        engine.replicate(&task(key), None).await.expect("copied");
        let head = env.dst_head(key).await.expect("exists");
        assert_eq!(head.content, request.content, "{key}");
        assert_eq!(head.user_metadata["origin"], "camera-7", "{key}");
        assert_eq!(head.user_metadata["multi-word"], "a b c", "{key}");
        assert_eq!(
            head.storage_class,
            Some(StorageClass::InfrequentAccess),
            "{key}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Idempotence and ordering

#[tokio::test]
async fn skips_object_already_replicated_without_reading_the_body() {
    let env = Env::new();
    env.seed("again/small.txt", b"same bytes");
    env.seed("again/big.bin", &data(PART * 2, 4));
    let engine = env.engine(env.settings());
    for key in ["again/small.txt", "again/big.bin"] {
        engine.replicate(&task(key), None).await.expect("copied");
        env.src.reset_counters();
        env.dst.reset_counters();
        let outcome = engine.replicate(&task(key), None).await.expect("skipped");
        assert_eq!(outcome, Outcome::Skipped(SkipReason::AlreadyReplicated));
        assert_eq!(env.src.request_count("GetObject"), 0, "{key}");
        assert_eq!(env.src.request_count("HeadObject"), 1, "{key}");
        assert_eq!(env.dst.request_count("PutObject"), 0, "{key}");
        assert_eq!(env.dst.request_count("CreateMultipartUpload"), 0, "{key}");
    }
}

/// A task as a first or repeated delivery of an event carries it: with the object's ETag and
/// size and the event's name.
fn event_task(key: &str, etag: &str, size: usize, event: &str) -> transfer::task::ReplicationTask {
    let mut task = task(key);
    task.source.etag = Some(etag.to_owned());
    task.source.size = Some(size as u64);
    task.event_name = Some(event.to_owned());
    task
}

/// Every request a store saw, as `(operation, count)`.
fn requests(store: &MemoryStore) -> Vec<(&'static str, u64)> {
    store.requests().into_iter().collect()
}

#[tokio::test]
async fn a_first_delivery_of_a_new_small_object_costs_one_get_and_one_put() {
    let env = Env::new();
    let request = WriteRequest {
        content: ContentHeaders {
            content_type: Some("text/plain".into()),
            ..ContentHeaders::default()
        },
        user_metadata: [("origin".to_owned(), "camera-7".to_owned())].into(),
        ..WriteRequest::default()
    };
    let body = data(4096, 7);
    let etag = env.seed_with("new/small.txt", &body, &request);
    let engine = env.engine(env.settings());
    env.src.reset_counters();
    let task = event_task(
        "new/small.txt",
        &etag,
        body.len(),
        "ObjectCreated:PutObject",
    );
    let outcome = engine
        .replicate_delivered(&task, Delivery::First, None)
        .await
        .expect("copied");
    assert!(
        matches!(outcome, Outcome::Copied { parts: 1, .. }),
        "{outcome:?}"
    );
    assert_eq!(requests(&env.src), [("GetObject", 1)]);
    assert_eq!(requests(&env.dst), [("PutObject", 1)]);
    assert_eq!(env.dst_bytes("new/small.txt"), Some(body));
    let head = env.dst_head("new/small.txt").await.expect("exists");
    assert_eq!(head.content, request.content);
    assert_eq!(head.user_metadata["origin"], "camera-7");
    // The marker is the one the full path writes: a later full-path task skips it.
    let outcome = engine.replicate(&task, None).await.expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::AlreadyReplicated));

    // An object above the threshold takes the full path, HEADs first.
    let big = data(PART * 2, 8);
    let etag = env.seed("new/big.bin", &big);
    env.src.reset_counters();
    env.dst.reset_counters();
    let task = event_task("new/big.bin", &etag, big.len(), "ObjectCreated:PutObject");
    let outcome = engine
        .replicate_delivered(&task, Delivery::First, None)
        .await
        .expect("copied");
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
    assert_eq!(env.src.request_count("HeadObject"), 1);
    assert_eq!(env.dst.request_count("HeadObject"), 1);
    assert_eq!(env.dst_bytes("new/big.bin"), Some(big));
}

#[tokio::test]
async fn a_first_delivery_onto_another_object_replaces_it_on_its_etag() {
    let env = Env::new();
    let engine = env.engine(env.settings());
    // The destination already holds an older replica, and an object oss2s3 did not write.
    env.seed("older.txt", b"version one");
    engine
        .replicate(&task("older.txt"), None)
        .await
        .expect("copied");
    env.dst.seed(
        DST,
        "foreign.txt",
        Bytes::from_static(b"not from the source"),
        &WriteRequest::default(),
    );
    for key in ["older.txt", "foreign.txt"] {
        let etag = env.seed(key, b"version two, longer");
        let task = event_task(key, &etag, 19, "ObjectCreated:PutObject");
        let outcome = engine
            .replicate_delivered(&task, Delivery::First, None)
            .await
            .expect("copied");
        assert!(
            matches!(outcome, Outcome::Copied { .. }),
            "{key}: {outcome:?}"
        );
        assert_eq!(
            env.dst_bytes(key).as_deref(),
            Some(&b"version two, longer"[..]),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_first_delivery_of_a_metadata_change_rewrites_the_metadata() {
    let env = Env::new();
    let engine = env.engine(env.settings());
    let etag = env.seed("meta.txt", b"same bytes");
    engine
        .replicate(&task("meta.txt"), None)
        .await
        .expect("copied");
    // UpdateObjectMeta: the same bytes, so the same ETag, with new metadata.
    let changed = WriteRequest {
        user_metadata: [("state".to_owned(), "reviewed".to_owned())].into(),
        ..WriteRequest::default()
    };
    assert_eq!(env.seed_with("meta.txt", b"same bytes", &changed), etag);
    let task = event_task("meta.txt", &etag, 10, "ObjectModified:UpdateObjectMeta");
    let outcome = engine
        .replicate_delivered(&task, Delivery::First, None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    let head = env.dst_head("meta.txt").await.expect("exists");
    assert_eq!(
        head.user_metadata.get("state").map(String::as_str),
        Some("reviewed")
    );
}

#[tokio::test]
async fn a_first_delivery_of_a_stale_event_copies_the_current_version() {
    let env = Env::new();
    let engine = env.engine(env.settings());
    let old = env.seed("moved-on.txt", b"version one");
    env.seed("moved-on.txt", b"version two, longer");
    let task = event_task("moved-on.txt", &old, 11, "ObjectCreated:PutObject");
    let outcome = engine
        .replicate_delivered(&task, Delivery::First, None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(
        env.dst_bytes("moved-on.txt").as_deref(),
        Some(&b"version two, longer"[..])
    );
    // An event for an object that is gone again is skipped, as on the full path.
    env.src
        .delete_object(SRC, "moved-on.txt", None)
        .await
        .expect("deleted");
    let outcome = engine
        .replicate_delivered(&task, Delivery::First, None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::SourceGone));
}

#[tokio::test]
async fn a_repeated_delivery_of_a_replicated_object_costs_one_destination_head() {
    let env = Env::new();
    let engine = env.engine(env.settings());
    let etag = env.seed("again.txt", b"copied once");
    let put = event_task("again.txt", &etag, 11, "ObjectCreated:PutObject");
    engine
        .replicate_delivered(&put, Delivery::First, None)
        .await
        .expect("copied");
    env.src.reset_counters();
    env.dst.reset_counters();
    let outcome = engine
        .replicate_delivered(&put, Delivery::Repeated, None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::AlreadyReplicated));
    assert_eq!(requests(&env.src), []);
    assert_eq!(requests(&env.dst), [("HeadObject", 1)]);

    // A copy event keeps the ETag when it changes only the metadata, so it is never skipped on
    // the ETag: its repeated delivery reads the source and copies the new metadata.
    let changed = WriteRequest {
        user_metadata: [("state".to_owned(), "copied over itself".to_owned())].into(),
        ..WriteRequest::default()
    };
    env.seed_with("again.txt", b"copied once", &changed);
    let copy = event_task("again.txt", &etag, 11, "ObjectCreated:CopyObject");
    let outcome = engine
        .replicate_delivered(&copy, Delivery::Repeated, None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    let head = env.dst_head("again.txt").await.expect("exists");
    assert_eq!(
        head.user_metadata.get("state").map(String::as_str),
        Some("copied over itself")
    );

    // A repeated delivery whose first one never copied copies now.
    let etag = env.seed("missed.txt", b"never copied");
    let missed = event_task("missed.txt", &etag, 12, "ObjectCreated:PutObject");
    let outcome = engine
        .replicate_delivered(&missed, Delivery::Repeated, None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(
        env.dst_bytes("missed.txt").as_deref(),
        Some(&b"never copied"[..])
    );
}

#[tokio::test]
async fn stale_task_copies_the_current_state() {
    let env = Env::new();
    let engine = env.engine(env.settings());
    let old_etag = env.seed("stale.txt", b"version one");
    engine
        .replicate(&task("stale.txt"), None)
        .await
        .expect("copied");
    env.seed("stale.txt", b"version two, longer");
    let mut stale = task("stale.txt");
    stale.source.etag = Some(old_etag);
    stale.source.size = Some(11);
    let outcome = engine.replicate(&stale, None).await.expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(
        env.dst_bytes("stale.txt").as_deref(),
        Some(&b"version two, longer"[..])
    );
}

#[tokio::test]
async fn source_gone_is_skipped() {
    let env = Env::new();
    let outcome = env
        .engine(env.settings())
        .replicate(&task("never/existed"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::SourceGone));
    assert!(env.dst_keys().is_empty());
}

#[tokio::test]
async fn encoded_key_in_task_copies_the_decoded_object() {
    let env = Env::new();
    env.seed("dir/a b+c.txt", b"decoded");
    let outcome = env
        .engine(env.settings())
        .replicate(&task("dir/a%20b%2Bc.txt"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(env.dst_keys(), ["dir/a b+c.txt"]);
}

/// A hook that overwrites `key` in the source with `data(len, seed)`.
fn overwrite(key: &'static str, len: usize, seed: u8) -> Fault {
    Fault::Hook(Arc::new(move |store: &MemoryStore| {
        store.seed(SRC, key, data(len, seed), &WriteRequest::default());
    }))
}

#[tokio::test]
async fn object_that_keeps_changing_fails_retryably_without_writing() {
    let env = Env::new();
    env.seed("churn.bin", &data(PART * 2, 1));
    // Every GET after the first finds a new version (new bytes, so a new ETag).
    for n in 1..=8u8 {
        env.src.inject(
            FaultRule::on("GetObject", overwrite("churn.bin", PART * 2, 100 + n))
                .after(u32::from(n))
                .times(1),
        );
    }
    let settings = CopySettings {
        part_concurrency: 1,
        ..env.settings()
    };
    let error = expect_error(
        env.engine(settings)
            .replicate(&task("churn.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::SourceChanged, "{error}");
    assert!(error.is_retryable());
    assert!(env.dst_keys().is_empty());
    assert_eq!(env.pending_uploads(), 0);
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn transient_read_failures_are_retried_and_end_identical() {
    let env = Env::new();
    let big = data(PART * 3 + 7, 2);
    env.seed("faults/big.bin", &big);
    env.src.inject(
        FaultRule::on(
            "GetObject",
            Fault::Fail(transfer::store::StoreErrorKind::Unavailable),
        )
        .times(2),
    );
    env.src
        .inject(FaultRule::on("GetObject", Fault::Truncate { bytes: 1000 }).times(1));
    env.engine(env.settings())
        .replicate(&task("faults/big.bin"), None)
        .await
        .expect("copied");
    assert!(env.dst_bytes("faults/big.bin") == Some(big));
    assert_eq!(env.pending_uploads(), 0);
}

#[tokio::test]
async fn corrupt_reads_fail_retryably_and_write_nothing() {
    let env = Env::new();
    env.seed("crc/big.bin", &data(PART * 2 + 1, 6));
    env.seed("crc/small.bin", &data(100, 6));
    env.src.inject(FaultRule::on("GetObject", Fault::Corrupt));
    let engine = env.engine(env.settings());
    for key in ["crc/big.bin", "crc/small.bin"] {
        let error = expect_error(engine.replicate(&task(key), None).await);
        assert_eq!(error.kind, FailureKind::ChecksumMismatch, "{key}: {error}");
        assert!(error.is_retryable());
        assert!(error.reason.contains("nothing was written"), "{error}");
    }
    assert!(env.dst_keys().is_empty());
    assert_eq!(env.pending_uploads(), 0);
}

#[tokio::test]
async fn a_failed_part_upload_aborts_the_upload() {
    let env = Env::new();
    env.seed("abort/big.bin", &data(PART * 4, 6));
    env.dst.inject(
        FaultRule::on(
            "UploadPart",
            Fault::Fail(transfer::store::StoreErrorKind::InvalidRequest),
        )
        .after(1),
    );
    let error = expect_error(
        env.engine(env.settings())
            .replicate(&task("abort/big.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::Rejected, "{error}");
    assert_eq!(env.pending_uploads(), 0, "the upload was aborted");
    assert_eq!(env.dst.request_count("AbortMultipartUpload"), 1);
}

// ---------------------------------------------------------------------------------------------
// Archives and symlinks

fn archived() -> WriteRequest {
    WriteRequest {
        storage_class: Some(StorageClass::Archive),
        ..WriteRequest::default()
    }
}

#[tokio::test]
async fn archived_object_without_restore_fails_permanently() {
    let env = Env::new();
    env.seed_with("cold/b.bin", b"frozen", &archived());
    let error = expect_error(
        env.engine(env.settings())
            .replicate(&task("cold/b.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::ArchivedNoRestore, "{error}");
    assert!(!error.is_retryable());
    assert!(error.reason.contains("restoring is disabled"), "{error}");
    assert_eq!(env.src.request_count("RestoreObject"), 0);
}

#[tokio::test]
async fn archived_object_of_a_source_that_cannot_restore_fails_permanently() {
    let env = Env::with(MemoryConfig {
        restore: false,
        ..MemoryConfig::default()
    });
    env.seed_with("cold/c.bin", b"frozen", &archived());
    let settings = CopySettings {
        restore: Some(RestoreSettings::default()),
        ..env.settings()
    };
    let error = expect_error(
        env.engine(settings)
            .replicate(&task("cold/c.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::ArchivedNoRestore, "{error}");
    assert!(error.reason.contains("cannot restore"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Large objects

#[tokio::test]
async fn continuation_restarts_when_the_source_changed() {
    let env = Env::new();
    env.seed("long/changing.bin", &data(PART * 2 + 5, 4));
    let settings = CopySettings {
        deadline_margin: Duration::from_hours(1),
        ..env.settings()
    };
    let engine = env.engine(settings);
    let Outcome::Continue { task: next, .. } = engine
        .replicate(&task("long/changing.bin"), Some(Instant::now()))
        .await
        .expect("continues")
    else {
        panic!("expected a continuation");
    };
    let newer = data(PART * 2 + 9, 5);
    env.seed("long/changing.bin", &newer);
    let outcome = engine.replicate(&next, None).await.expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert!(env.dst_bytes("long/changing.bin") == Some(newer));
    assert_eq!(env.pending_uploads(), 0, "the stale upload was aborted");
}

#[tokio::test]
async fn never_has_more_than_part_concurrency_parts_in_flight() {
    let env = Env::new();
    let body = data(PART * 6, 12);
    env.seed("bounded.bin", &body);
    env.dst.inject(FaultRule::on(
        "UploadPart",
        Fault::Delay(Duration::from_millis(30)),
    ));
    let settings = CopySettings {
        part_concurrency: 2,
        ..env.settings()
    };
    env.engine(settings)
        .replicate(&task("bounded.bin"), None)
        .await
        .expect("copied");
    assert_eq!(env.dst.peak_in_flight("UploadPart"), 2);
    assert!(env.dst_bytes("bounded.bin") == Some(body));
}

#[tokio::test]
async fn the_memory_budget_bounds_parts_in_flight_over_every_copy() {
    let env = Env::new();
    for key in ["budget/a.bin", "budget/b.bin"] {
        env.seed(key, &data(PART * 6, 3));
    }
    env.dst.inject(FaultRule::on(
        "UploadPart",
        Fault::Delay(Duration::from_millis(30)),
    ));
    // Room for three parts, although each copy may have eight in flight.
    let settings = CopySettings {
        part_concurrency: 8,
        memory_budget: 3 * PART as u64,
        ..env.settings()
    };
    let engine = env.engine(settings);
    let (task_a, task_b) = (task("budget/a.bin"), task("budget/b.bin"));
    let (a, b) = tokio::join!(
        engine.replicate(&task_a, None),
        engine.replicate(&task_b, None),
    );
    a.expect("a copied");
    b.expect("b copied");
    assert_eq!(
        env.dst.peak_in_flight("UploadPart"),
        3,
        "two copies share the budget of three parts"
    );
}

#[tokio::test]
async fn parts_in_flight_at_the_stop_margin_are_cancelled_and_the_done_ones_carried() {
    let env = Env::new();
    let body = data(PART * 4, 5);
    env.seed("deadline/big.bin", &body);
    // The first two parts are quick; the others would take far longer than the invocation.
    env.dst
        .inject(FaultRule::on("UploadPart", Fault::Delay(Duration::from_secs(30))).after(2));
    let settings = CopySettings {
        part_concurrency: 4,
        deadline_margin: Duration::from_millis(100),
        stop_margin: Duration::from_secs(1),
        ..env.settings()
    };
    let engine = env.engine(settings);
    let started = Instant::now();
    let outcome = engine
        .replicate(
            &task("deadline/big.bin"),
            Some(started + Duration::from_secs(2)),
        )
        .await
        .expect("continues");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "returned at the stop margin, not after the slow parts: {:?}",
        started.elapsed()
    );
    let Outcome::Continue { task: next, delay } = outcome else {
        panic!("expected a continuation, got {outcome:?}");
    };
    assert_eq!(delay, Duration::ZERO);
    let continuation =
        transfer::replicate::Continuation::from_value(next.continuation.as_ref().expect("carried"))
            .expect("readable");
    assert_eq!(continuation.parts.len(), 2, "the two quick parts are kept");
    assert_eq!(
        env.pending_uploads(),
        1,
        "the upload waits for the continuation"
    );
    env.dst.clear_faults();
    engine.replicate(&next, None).await.expect("completed");
    assert!(env.dst_bytes("deadline/big.bin") == Some(body));
    assert_eq!(env.pending_uploads(), 0);
}

#[tokio::test]
async fn a_single_put_that_cannot_finish_before_the_deadline_writes_nothing() {
    let env = Env::new();
    env.seed("deadline/small.bin", &data(1000, 6));
    env.dst.inject(FaultRule::on(
        "PutObject",
        Fault::Delay(Duration::from_secs(30)),
    ));
    let settings = CopySettings {
        stop_margin: Duration::from_secs(1),
        ..env.settings()
    };
    let started = Instant::now();
    let error = expect_error(
        env.engine(settings)
            .replicate(
                &task("deadline/small.bin"),
                Some(started + Duration::from_secs(2)),
            )
            .await,
    );
    assert_eq!(error.kind, FailureKind::DeadlineReached, "{error}");
    assert!(error.is_retryable());
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(env.dst_keys().is_empty());
}

#[tokio::test]
async fn a_transient_failure_of_the_completion_keeps_every_part() {
    // S3's InternalError inside a 200 CompleteMultipartUpload answer is transient: the upload,
    // with every part sent, waits for the next invocation to complete it.
    let env = Env::new();
    let body = data(PART * 3 + 11, 8);
    env.seed("complete/later.bin", &body);
    env.dst.inject(
        FaultRule::on(
            "CompleteMultipartUpload",
            Fault::Fail(transfer::store::StoreErrorKind::Unavailable),
        )
        .times(1),
    );
    let engine = env.engine(env.settings());
    let Outcome::Continue { task: next, delay } = engine
        .replicate(&task("complete/later.bin"), None)
        .await
        .expect("continues")
    else {
        panic!("expected a continuation");
    };
    assert!(
        delay > Duration::ZERO,
        "after a failure, the next try waits"
    );
    assert_eq!(env.pending_uploads(), 1, "not aborted");
    env.dst.reset_counters();
    let outcome = engine.replicate(&next, None).await.expect("completed");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(env.dst.request_count("UploadPart"), 0, "no part sent again");
    assert!(env.dst_bytes("complete/later.bin") == Some(body));
}

// ---------------------------------------------------------------------------------------------
// Keys and limits

#[tokio::test]
async fn prefixes_map_source_keys_to_destination_keys() {
    let env = Env::new();
    env.seed("incoming/2024/a.txt", b"a");
    let settings = CopySettings {
        src_prefix: "incoming/".into(),
        dst_prefix: "mirror/oss/".into(),
        ..env.settings()
    };
    env.engine(settings.clone())
        .replicate(&task("incoming/2024/a.txt"), None)
        .await
        .expect("copied");
    assert_eq!(env.dst_keys(), ["mirror/oss/2024/a.txt"]);
    env.seed("elsewhere/b.txt", b"b");
    let error = expect_error(
        env.engine(settings)
            .replicate(&task("elsewhere/b.txt"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::InvalidKey, "{error}");
}

#[tokio::test]
async fn key_too_long_after_prefixing_fails_permanently() {
    let env = Env::new();
    let key = "k".repeat(1_020);
    env.seed(&key, b"x");
    let settings = CopySettings {
        dst_prefix: "replica/".into(),
        ..env.settings()
    };
    let error = expect_error(env.engine(settings).replicate(&task(&key), None).await);
    assert_eq!(error.kind, FailureKind::InvalidKey, "{error}");
    assert!(!error.is_retryable());
    assert!(error.reason.contains("1028 bytes"), "{}", error.reason);
    assert!(env.dst_keys().is_empty());
}

#[tokio::test]
async fn metadata_over_the_destination_limit_fails_permanently() {
    let env = Env::new();
    let request = WriteRequest {
        user_metadata: [("big".to_owned(), "v".repeat(2_000))].into(),
        ..WriteRequest::default()
    };
    env.seed_with("fat-meta.txt", b"x", &request);
    let error = expect_error(
        env.engine(env.settings())
            .replicate(&task("fat-meta.txt"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::MetadataTooLarge, "{error}");
    assert!(!error.is_retryable());
    assert!(error.reason.contains("2048"), "{}", error.reason);
    assert!(env.dst_keys().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Deletes

#[tokio::test]
async fn delete_of_an_object_that_exists_again_copies_it() {
    let env = Env::new();
    let settings = CopySettings {
        replicate_deletes: true,
        ..env.settings()
    };
    env.seed("del/back.txt", b"back again");
    let outcome = env
        .engine(settings)
        .replicate(&delete_task("del/back.txt"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(
        env.dst_bytes("del/back.txt").as_deref(),
        Some(&b"back again"[..])
    );
}

#[tokio::test]
async fn deletes_are_skipped_unless_enabled() {
    let env = Env::new();
    let engine = env.engine(env.settings());
    env.seed("del/kept.txt", b"kept");
    engine
        .replicate(&task("del/kept.txt"), None)
        .await
        .expect("copied");
    env.src
        .delete_object(SRC, "del/kept.txt", None)
        .await
        .expect("deleted at the source");
    let outcome = engine
        .replicate(&delete_task("del/kept.txt"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::DeletesDisabled));
    assert!(env.dst_head("del/kept.txt").await.is_some());
}

// ---------------------------------------------------------------------------------------------
// The scenarios shared with the end-to-end tests

impl Pair for Env {
    type Src = MemoryStore;
    type Dst = MemoryStore;

    fn src(&self) -> &MemoryStore {
        &self.src
    }

    fn dst(&self) -> &MemoryStore {
        &self.dst
    }

    fn dst_bucket(&self) -> &str {
        DST
    }

    fn part(&self) -> usize {
        PART
    }

    fn source_requests(&self, operation: &str) -> u64 {
        self.src.request_count(operation)
    }

    async fn pending_uploads(&self) -> usize {
        self.dst.uploads(DST).len()
    }
}

/// The restore delay of the memory source.
const RESTORE_DELAY: Duration = Duration::from_millis(300);

macro_rules! shared_scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                scenarios::$name(&Env::new()).await;
            }
        )*
    };
}

shared_scenarios! {
    copies_sizes_around_the_threshold_byte_exact,
    writes_the_marker_with_source_identity,
    symlink_copies_the_target_bytes_and_records_the_target,
    continues_across_invocations_when_the_deadline_nears,
    odd_keys_are_copied_byte_exact,
    deletes_only_objects_carrying_this_sources_marker,
    two_way_copies_never_loop,
}

#[tokio::test]
async fn archived_object_is_restored_then_copied() {
    let env = Env::with(MemoryConfig {
        restore_delay: RESTORE_DELAY,
        ..MemoryConfig::default()
    });
    scenarios::archived_object_is_restored_then_copied(&env, RESTORE_DELAY).await;
}

#[tokio::test]
async fn object_replaced_mid_copy_ends_as_one_whole_version() {
    // The first part's GET is served; before the second, the object is overwritten, so the
    // second GET (pinned to the first version's ETag) fails its precondition.
    scenarios::object_replaced_mid_copy_ends_as_one_whole_version(&Env::new(), |env| {
        env.src.inject(
            FaultRule::on("GetObject", overwrite("replaced.bin", PART * 2 + 10, 8))
                .after(1)
                .times(1),
        );
    })
    .await;
}
