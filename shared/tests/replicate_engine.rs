//! The copy engine end to end on real sockets: the OSS emulator in-process as the source, moto's
//! S3 as the destination.
//!
//! S3 (and moto) refuse parts under 5 MiB, so multipart cases use 5 MiB parts and objects of a
//! few parts; one case copies 100 MiB.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use oss_emulator::{Emulator, EmulatorConfig, Fault, FaultRule, PutOptions};
use testkit::MotoServer;
use tokio::time::Instant;
use transfer::crc64;
use transfer::oss::{AddressingStyle, Credentials, Endpoint, OssClient, OssConfig, RetryPolicy};
use transfer::replicate::{
    Continuation, CopySettings, FailureKind, MARKER_CRC64, MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE,
    MARKER_SYMLINK_TARGET, Outcome, ReplicationError, Replicator, RestoreSettings, SkipReason,
};
use transfer::store::{
    BodyChecksums, CompletedPart, Encryption, ObjectSink, ObjectStore, PartInfo, PartLimits,
    S3Store, StoreError, WriteOutput, WriteRequest,
};
use transfer::task::{ReplicationTask, SourceObject, TaskOp};

const SRC: &str = "src-bucket";
const REGION: &str = "cn-hangzhou";
const AK: &str = "replicate-ak";
const SK: &str = "replicate-secret";
const MIB: usize = 1024 * 1024;
/// The part size and threshold the tests use: S3's smallest part.
const PART: usize = 5 * MIB;

/// A source emulator, a destination bucket on moto, and clients for both.
struct Env {
    emulator: Emulator,
    oss: OssClient,
    s3: aws_sdk_s3::Client,
    store: S3Store,
    dst: String,
    _moto: Arc<MotoServer>,
}

impl Env {
    async fn start() -> Self {
        Self::start_with(EmulatorConfig::new()).await
    }

    async fn start_with(config: EmulatorConfig) -> Self {
        static BUCKETS: AtomicU32 = AtomicU32::new(0);
        let emulator = Emulator::start(
            config
                .region(REGION)
                .bucket(SRC)
                .credentials(Credentials::new(AK, SK)),
        )
        .await
        .expect("emulator starts");
        let oss_config = OssConfig::new(REGION)
            .with_endpoint(Endpoint::Custom(emulator.endpoint()))
            .with_addressing(AddressingStyle::PathStyle)
            .with_retry(RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            })
            .with_request_timeout(Duration::from_secs(20))
            .with_read_timeout(Duration::from_secs(5));
        let oss = OssClient::new(oss_config, Credentials::new(AK, SK)).expect("oss client");
        let moto = tokio::task::spawn_blocking(MotoServer::shared)
            .await
            .expect("moto starts");
        let sdk = moto.sdk_config().await;
        let store = S3Store::from_sdk_config(&sdk);
        let s3 = store.client().clone();
        let dst = format!(
            "dst-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::Relaxed)
        );
        s3.create_bucket()
            .bucket(&dst)
            .send()
            .await
            .expect("bucket created");
        Self {
            emulator,
            oss,
            s3,
            store,
            dst,
            _moto: moto,
        }
    }

    /// Settings with the test part size and threshold.
    fn settings(&self) -> CopySettings {
        CopySettings {
            part_size: PART as u64,
            multipart_threshold: PART as u64,
            part_concurrency: 4,
            ..CopySettings::new(&self.dst)
        }
    }

    fn replicator(&self, settings: CopySettings) -> Replicator<OssClient, S3Store> {
        Replicator::new(self.oss.clone(), self.store.clone(), settings)
    }

    async fn seed(&self, key: &str, data: &[u8]) -> String {
        self.seed_with(key, data, PutOptions::default()).await
    }

    /// Stores a source object; returns its ETag as a trigger event carries it.
    async fn seed_with(&self, key: &str, data: &[u8], options: PutOptions) -> String {
        let info = self
            .emulator
            .put_object_direct(SRC, key, Bytes::copy_from_slice(data), options)
            .await
            .expect("seeded");
        info.etag.trim_matches('"').to_owned()
    }

    fn inject(&self, rule: FaultRule) {
        let mut rules = self.emulator.faults();
        rules.push(rule);
        self.emulator.set_faults(rules);
    }

    async fn dst_bytes(&self, key: &str) -> Option<Vec<u8>> {
        let output = self
            .s3
            .get_object()
            .bucket(&self.dst)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(output.body.collect().await.ok()?.into_bytes().to_vec())
    }

    async fn dst_head(
        &self,
        key: &str,
    ) -> Option<aws_sdk_s3::operation::head_object::HeadObjectOutput> {
        self.s3
            .head_object()
            .bucket(&self.dst)
            .key(key)
            .send()
            .await
            .ok()
    }

    async fn dst_keys(&self) -> Vec<String> {
        let output = self
            .s3
            .list_objects_v2()
            .bucket(&self.dst)
            .send()
            .await
            .expect("list");
        output
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    async fn pending_uploads(&self) -> usize {
        self.s3
            .list_multipart_uploads()
            .bucket(&self.dst)
            .send()
            .await
            .expect("list uploads")
            .uploads()
            .len()
    }

    async fn source_bytes(&self, key: &str) -> Vec<u8> {
        let (bytes, _) = self
            .emulator
            .get_object_direct(SRC, key)
            .await
            .expect("read")
            .expect("exists");
        bytes.to_vec()
    }
}

fn task(key: &str) -> ReplicationTask {
    ReplicationTask::put(SourceObject {
        region: REGION.into(),
        bucket: SRC.into(),
        key: key.into(),
        size: None,
        etag: None,
    })
}

fn delete_task(key: &str) -> ReplicationTask {
    ReplicationTask {
        op: TaskOp::Delete,
        ..task(key)
    }
}

/// Deterministic test data of `len` bytes.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1] ^ seed)
        .collect()
}

fn expect_error(result: Result<Outcome, ReplicationError>) -> ReplicationError {
    match result {
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes, metadata, marker

#[tokio::test]
async fn copies_sizes_around_the_threshold_byte_exact() {
    let env = Env::start().await;
    let engine = env.replicator(env.settings());
    for (size, multipart) in [
        (0, false),
        (1, false),
        (PART - 1, false),
        (PART, false),
        (PART + 1, true),
    ] {
        let key = format!("sizes/{size}.bin");
        let body = data(size, 3);
        env.seed(&key, &body).await;
        let outcome = engine.replicate(&task(&key), None).await.expect("copied");
        let parts = if multipart { 2 } else { 1 };
        assert_eq!(
            outcome,
            Outcome::Copied {
                bytes: size as u64,
                multipart,
                parts
            },
            "{key}"
        );
        assert!(env.dst_bytes(&key).await == Some(body), "{key} differs");
    }
    assert_eq!(env.pending_uploads().await, 0);
}

#[tokio::test]
async fn writes_the_marker_with_source_identity() {
    let env = Env::start().await;
    let body = data(PART + 100, 9);
    let etag = env.seed("marked/big.bin", &body).await;
    env.seed("marked/small.txt", b"hello").await;
    let engine = env.replicator(env.settings());
    for (key, bytes) in [
        ("marked/big.bin", &body[..]),
        ("marked/small.txt", b"hello"),
    ] {
        engine.replicate(&task(key), None).await.expect("copied");
        let head = env.dst_head(key).await.expect("exists");
        let meta = head.metadata().expect("metadata");
        assert_eq!(meta[MARKER_SOURCE], format!("oss://{SRC}/{key}"));
        assert_eq!(meta[MARKER_SIZE], bytes.len().to_string());
        assert_eq!(meta[MARKER_CRC64], crc64::checksum(bytes).to_string());
        assert_eq!(meta[MARKER_ETAG].len(), 32, "unquoted MD5-style ETag");
        assert!(!meta[MARKER_ETAG].contains('"'));
    }
    let head = env.dst_head("marked/big.bin").await.expect("exists");
    assert_eq!(head.metadata().expect("metadata")[MARKER_ETAG], etag);
}

#[tokio::test]
async fn round_trips_every_metadata_field_and_storage_class() {
    let env = Env::start().await;
    let options = PutOptions {
        content_type: Some("text/csv; charset=utf-8".into()),
        content_encoding: Some("gzip".into()),
        content_disposition: Some("attachment; filename=\"report 1.csv\"".into()),
        content_language: Some("zh-CN".into()),
        cache_control: Some("max-age=3600, public".into()),
        expires: Some("Thu, 01 Dec 2044 16:00:00 GMT".into()),
        user_meta: vec![
            ("origin".into(), "camera-7".into()),
            ("multi-word".into(), "a b c".into()),
        ],
        ..PutOptions::default()
    };
    let settings = CopySettings {
        storage_class: Some("STANDARD_IA".into()),
        sse: Some(Encryption::Aes256),
        ..env.settings()
    };
    let engine = env.replicator(settings);
    for (key, size) in [("meta/single.csv", 1000), ("meta/multi.csv", PART + 1)] {
        env.seed_with(key, &data(size, 1), options.clone()).await;
        engine.replicate(&task(key), None).await.expect("copied");
        let head = env.dst_head(key).await.expect("exists");
        assert_eq!(
            head.content_type(),
            Some("text/csv; charset=utf-8"),
            "{key}"
        );
        assert_eq!(head.content_encoding(), Some("gzip"), "{key}");
        assert_eq!(
            head.content_disposition(),
            Some("attachment; filename=\"report 1.csv\""),
            "{key}"
        );
        assert_eq!(head.content_language(), Some("zh-CN"), "{key}");
        assert_eq!(head.cache_control(), Some("max-age=3600, public"), "{key}");
        assert_eq!(
            head.expires_string(),
            Some("Thu, 01 Dec 2044 16:00:00 GMT"),
            "{key}"
        );
        let meta = head.metadata().expect("metadata");
        assert_eq!(meta["origin"], "camera-7", "{key}");
        assert_eq!(meta["multi-word"], "a b c", "{key}");
        assert_eq!(
            head.storage_class(),
            Some(&aws_sdk_s3::types::StorageClass::StandardIa),
            "{key}"
        );
        assert_eq!(
            head.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256),
            "{key}"
        );
    }
}

#[tokio::test]
async fn sends_the_crc64_nvme_checksum_of_the_bytes() {
    let env = Env::start().await;
    let body = data(4096, 5);
    env.seed("sum.bin", &body).await;
    env.replicator(env.settings())
        .replicate(&task("sum.bin"), None)
        .await
        .expect("copied");
    let head = env
        .s3
        .head_object()
        .bucket(&env.dst)
        .key("sum.bin")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    use base64::Engine as _;
    let expected = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, &body);
    assert_eq!(
        head.checksum_crc64_nvme(),
        Some(base64::engine::general_purpose::STANDARD.encode(expected.to_be_bytes())).as_deref()
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotence and ordering

#[tokio::test]
async fn skips_object_already_replicated_without_reading_the_body() {
    let env = Env::start().await;
    env.seed("again/small.txt", b"same bytes").await;
    env.seed("again/big.bin", &data(PART * 2, 4)).await;
    let engine = env.replicator(env.settings());
    for key in ["again/small.txt", "again/big.bin"] {
        engine.replicate(&task(key), None).await.expect("copied");
        env.emulator.reset_stats();
        let outcome = engine.replicate(&task(key), None).await.expect("skipped");
        assert_eq!(outcome, Outcome::Skipped(SkipReason::AlreadyReplicated));
        assert_eq!(env.emulator.stats().count("GetObject"), 0, "{key}");
        assert_eq!(env.emulator.stats().count("HeadObject"), 1, "{key}");
    }
}

#[tokio::test]
async fn stale_task_copies_the_current_state() {
    let env = Env::start().await;
    let engine = env.replicator(env.settings());
    let old_etag = env.seed("stale.txt", b"version one").await;
    engine
        .replicate(&task("stale.txt"), None)
        .await
        .expect("copied");
    env.seed("stale.txt", b"version two, longer").await;
    let mut stale = task("stale.txt");
    stale.source.etag = Some(old_etag);
    stale.source.size = Some(11);
    let outcome = engine.replicate(&stale, None).await.expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(
        env.dst_bytes("stale.txt").await.as_deref(),
        Some(&b"version two, longer"[..])
    );
}

#[tokio::test]
async fn source_gone_is_skipped() {
    let env = Env::start().await;
    let outcome = env
        .replicator(env.settings())
        .replicate(&task("never/existed"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::SourceGone));
    assert!(env.dst_keys().await.is_empty());
}

#[tokio::test]
async fn encoded_key_in_task_copies_the_decoded_object() {
    let env = Env::start().await;
    env.seed("dir/a b+c.txt", b"decoded").await;
    let outcome = env
        .replicator(env.settings())
        .replicate(&task("dir/a%20b%2Bc.txt"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(env.dst_keys().await, ["dir/a b+c.txt"]);
}

#[tokio::test]
async fn object_replaced_mid_copy_ends_as_one_whole_version() {
    let env = Env::start().await;
    let original = data(PART * 2 + 10, 7);
    env.seed("replaced.bin", &original).await;
    // The first part's GET is served, then the object is overwritten: later parts get 412.
    env.inject(FaultRule::new("GetObject", Fault::Replace).times(1));
    let settings = CopySettings {
        part_concurrency: 1,
        ..env.settings()
    };
    let outcome = env
        .replicator(settings)
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
    let current = env.source_bytes("replaced.bin").await;
    assert_ne!(current, original, "the fault replaced the object");
    assert!(
        env.dst_bytes("replaced.bin").await == Some(current),
        "not the current version"
    );
    assert_eq!(env.pending_uploads().await, 0);
}

#[tokio::test]
async fn object_that_keeps_changing_fails_retryably_without_writing() {
    let env = Env::start().await;
    env.seed("churn.bin", &data(PART * 2, 1)).await;
    env.inject(FaultRule::new("GetObject", Fault::Replace));
    let settings = CopySettings {
        part_concurrency: 1,
        ..env.settings()
    };
    let error = expect_error(
        env.replicator(settings)
            .replicate(&task("churn.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::SourceChanged, "{error}");
    assert!(error.is_retryable());
    assert!(env.dst_keys().await.is_empty());
    assert_eq!(env.pending_uploads().await, 0);
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn transient_source_faults_end_identical() {
    let env = Env::start().await;
    let big = data(PART * 3 + 7, 2);
    let small = data(1000, 3);
    env.seed("faults/big.bin", &big).await;
    env.seed("faults/small.bin", &small).await;
    for rule in [
        FaultRule::new(
            "GetObject",
            Fault::Error {
                status: 500,
                code: "InternalError".into(),
                qos_delay_ms: None,
            },
        )
        .times(2),
        FaultRule::new("GetObject", Fault::Reset).times(1),
        FaultRule::new("GetObject", Fault::Truncate { after_bytes: 1000 }).times(2),
    ] {
        env.inject(rule);
    }
    let engine = env.replicator(env.settings());
    engine
        .replicate(&task("faults/big.bin"), None)
        .await
        .expect("copied");
    env.inject(FaultRule::new("GetObject", Fault::Truncate { after_bytes: 10 }).times(1));
    engine
        .replicate(&task("faults/small.bin"), None)
        .await
        .expect("copied");
    assert!(env.dst_bytes("faults/big.bin").await == Some(big));
    assert!(env.dst_bytes("faults/small.bin").await == Some(small));
    assert!(env.emulator.faults().is_empty(), "every fault was hit");
    assert_eq!(env.pending_uploads().await, 0);
}

#[tokio::test]
async fn persistent_truncation_fails_retryably_and_writes_nothing() {
    let env = Env::start().await;
    env.seed("cut/big.bin", &data(PART * 2, 2)).await;
    env.seed("cut/small.bin", &data(1000, 2)).await;
    env.inject(FaultRule::new(
        "GetObject",
        Fault::Truncate { after_bytes: 100 },
    ));
    let engine = env.replicator(env.settings());
    for key in ["cut/big.bin", "cut/small.bin"] {
        let error = expect_error(engine.replicate(&task(key), None).await);
        assert_eq!(error.kind, FailureKind::SourceUnavailable, "{error}");
        assert!(error.is_retryable());
    }
    assert!(env.dst_keys().await.is_empty());
    assert_eq!(env.pending_uploads().await, 0);
}

#[tokio::test]
async fn crc_mismatch_writes_nothing_and_leaves_no_upload() {
    let env = Env::start().await;
    env.seed("crc/big.bin", &data(PART * 2 + 1, 6)).await;
    env.seed("crc/small.bin", &data(100, 6)).await;
    env.inject(FaultRule::new("HeadObject", Fault::CrcMismatch));
    let engine = env.replicator(env.settings());
    for key in ["crc/big.bin", "crc/small.bin"] {
        let error = expect_error(engine.replicate(&task(key), None).await);
        assert_eq!(error.kind, FailureKind::ChecksumMismatch, "{key}: {error}");
        assert!(error.is_retryable());
    }
    assert!(env.dst_keys().await.is_empty());
    assert_eq!(env.pending_uploads().await, 0);
}

#[tokio::test]
async fn corrupt_download_is_detected_for_whole_object_reads() {
    let env = Env::start().await;
    env.seed("crc/get.bin", &data(100, 6)).await;
    env.inject(FaultRule::new("GetObject", Fault::CrcMismatch));
    let error = expect_error(
        env.replicator(env.settings())
            .replicate(&task("crc/get.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::ChecksumMismatch, "{error}");
    assert!(env.dst_keys().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Special objects

#[tokio::test]
async fn archived_object_is_restored_then_copied() {
    let env =
        Env::start_with(EmulatorConfig::new().restore_delay(Duration::from_millis(600))).await;
    let body = data(300, 8);
    let archive = PutOptions {
        storage_class: Some("Archive".into()),
        ..PutOptions::default()
    };
    env.seed_with("cold/a.bin", &body, archive).await;
    let settings = CopySettings {
        restore: Some(RestoreSettings {
            retry_after: Duration::from_secs(600),
            ..RestoreSettings::default()
        }),
        ..env.settings()
    };
    let engine = env.replicator(settings);
    let error = expect_error(engine.replicate(&task("cold/a.bin"), None).await);
    assert_eq!(error.kind, FailureKind::RestoreInProgress, "{error}");
    assert!(error.is_retryable());
    assert_eq!(error.retry_after, Some(Duration::from_secs(600)));
    assert_eq!(env.emulator.stats().count("RestoreObject"), 1);
    let again = expect_error(engine.replicate(&task("cold/a.bin"), None).await);
    assert_eq!(again.kind, FailureKind::RestoreInProgress);
    assert_eq!(
        env.emulator.stats().count("RestoreObject"),
        1,
        "no second restore"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    let outcome = engine
        .replicate(&task("cold/a.bin"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert!(env.dst_bytes("cold/a.bin").await == Some(body));
}

#[tokio::test]
async fn archived_object_without_restore_fails_permanently() {
    let env = Env::start().await;
    let archive = PutOptions {
        storage_class: Some("ColdArchive".into()),
        ..PutOptions::default()
    };
    env.seed_with("cold/b.bin", b"frozen", archive).await;
    let error = expect_error(
        env.replicator(env.settings())
            .replicate(&task("cold/b.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::ArchivedNoRestore, "{error}");
    assert!(!error.is_retryable());
    assert!(error.reason.contains("ColdArchive"), "{}", error.reason);
    assert_eq!(env.emulator.stats().count("RestoreObject"), 0);
}

#[tokio::test]
async fn symlink_copies_the_target_bytes_and_records_the_target() {
    let env = Env::start().await;
    env.seed("real/target.txt", b"pointed-to bytes").await;
    env.oss
        .put_symlink(SRC, "links/link.txt", "real/target.txt")
        .await
        .expect("symlink");
    env.replicator(env.settings())
        .replicate(&task("links/link.txt"), None)
        .await
        .expect("copied");
    assert_eq!(
        env.dst_bytes("links/link.txt").await.as_deref(),
        Some(&b"pointed-to bytes"[..])
    );
    let head = env.dst_head("links/link.txt").await.expect("exists");
    assert_eq!(
        head.metadata().expect("metadata")[MARKER_SYMLINK_TARGET],
        "real/target.txt"
    );
}

// ---------------------------------------------------------------------------------------------
// Large objects

#[tokio::test]
async fn continues_across_invocations_when_the_deadline_nears() {
    let env = Env::start().await;
    let body = data(PART * 3 + 5, 4);
    env.seed("long/object.bin", &body).await;
    let settings = CopySettings {
        deadline_margin: Duration::from_secs(3600),
        ..env.settings()
    };
    let engine = env.replicator(settings);
    let first = engine
        .replicate(&task("long/object.bin"), Some(Instant::now()))
        .await
        .expect("continues");
    let Outcome::Continue(next) = first else {
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
        env.pending_uploads().await,
        1,
        "the upload is kept for the next call"
    );
    assert!(env.dst_keys().await.is_empty());

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
    assert!(env.dst_bytes("long/object.bin").await == Some(body));
    assert_eq!(env.pending_uploads().await, 0);
}

#[tokio::test]
async fn continuation_restarts_when_the_source_changed() {
    let env = Env::start().await;
    env.seed("long/changing.bin", &data(PART * 2 + 5, 4)).await;
    let settings = CopySettings {
        deadline_margin: Duration::from_secs(3600),
        ..env.settings()
    };
    let engine = env.replicator(settings);
    let Outcome::Continue(next) = engine
        .replicate(&task("long/changing.bin"), Some(Instant::now()))
        .await
        .expect("continues")
    else {
        panic!("expected a continuation");
    };
    let newer = data(PART * 2 + 9, 5);
    env.seed("long/changing.bin", &newer).await;
    let outcome = engine.replicate(&next, None).await.expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert!(env.dst_bytes("long/changing.bin").await == Some(newer));
    assert_eq!(
        env.pending_uploads().await,
        0,
        "the stale upload was aborted"
    );
}

#[tokio::test]
async fn copies_100_mib_in_parts() {
    let env = Env::start().await;
    let body = data(100 * MIB, 11);
    env.seed("large/100mib.bin", &body).await;
    let settings = CopySettings {
        part_size: 8 * MIB as u64,
        part_concurrency: 4,
        ..env.settings()
    };
    let outcome = env
        .replicator(settings)
        .replicate(&task("large/100mib.bin"), None)
        .await
        .expect("copied");
    assert_eq!(
        outcome,
        Outcome::Copied {
            bytes: body.len() as u64,
            multipart: true,
            parts: 13
        }
    );
    let copied = env.dst_bytes("large/100mib.bin").await.expect("exists");
    assert_eq!(copied.len(), body.len());
    assert_eq!(crc64::checksum(&copied), crc64::checksum(&body));
    assert_eq!(env.pending_uploads().await, 0);
}

/// A sink that records how many parts are in flight at once.
#[derive(Clone)]
struct CountingSink {
    inner: S3Store,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl ObjectStore for CountingSink {
    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }
    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<transfer::store::ObjectAttributes, StoreError> {
        self.inner.head_object(bucket, key).await
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.inner.delete_object(bucket, key).await
    }
}

impl ObjectSink for CountingSink {
    fn limits(&self) -> PartLimits {
        self.inner.limits()
    }
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        checksums: BodyChecksums,
        request: &WriteRequest,
    ) -> Result<WriteOutput, StoreError> {
        self.inner
            .put_object(bucket, key, body, checksums, request)
            .await
    }
    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> Result<String, StoreError> {
        self.inner
            .create_multipart_upload(bucket, key, request)
            .await
    }
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        checksums: BodyChecksums,
    ) -> Result<PartInfo, StoreError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let result = self
            .inner
            .upload_part(bucket, key, upload_id, part_number, body, checksums)
            .await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        whole: BodyChecksums,
    ) -> Result<WriteOutput, StoreError> {
        self.inner
            .complete_multipart_upload(bucket, key, upload_id, parts, whole)
            .await
    }
    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        self.inner
            .abort_multipart_upload(bucket, key, upload_id)
            .await
    }
    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, StoreError> {
        self.inner.list_parts(bucket, key, upload_id).await
    }
}

#[tokio::test]
async fn never_has_more_than_part_concurrency_parts_in_flight() {
    let env = Env::start().await;
    let body = data(PART * 6, 12);
    env.seed("bounded.bin", &body).await;
    let sink = CountingSink {
        inner: env.store.clone(),
        in_flight: Arc::default(),
        peak: Arc::default(),
    };
    let settings = CopySettings {
        part_concurrency: 2,
        ..env.settings()
    };
    Replicator::new(env.oss.clone(), sink.clone(), settings)
        .replicate(&task("bounded.bin"), None)
        .await
        .expect("copied");
    assert_eq!(sink.peak.load(Ordering::SeqCst), 2);
    assert!(env.dst_bytes("bounded.bin").await == Some(body));
}

// ---------------------------------------------------------------------------------------------
// Keys

#[tokio::test]
async fn odd_keys_are_copied_byte_exact() {
    let env = Env::start().await;
    let keys = [
        "with space.txt".to_owned(),
        "plus+sign+".to_owned(),
        "percent%20literal%".to_owned(),
        "unicode/文件/ü-é.bin".to_owned(),
        "emoji/🚀.dat".to_owned(),
        "question?mark=1&x#hash".to_owned(),
        "a".repeat(1_023),
    ];
    let engine = env.replicator(env.settings());
    for key in &keys {
        env.seed(key, key.as_bytes()).await;
        let outcome = engine.replicate(&task(key), None).await.expect("copied");
        assert!(
            matches!(outcome, Outcome::Copied { .. }),
            "{key}: {outcome:?}"
        );
        assert_eq!(
            env.dst_bytes(key).await.as_deref(),
            Some(key.as_bytes()),
            "{key}"
        );
    }
    let mut expected = keys.to_vec();
    expected.sort();
    let mut listed = env.dst_keys().await;
    listed.sort();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn prefixes_map_source_keys_to_destination_keys() {
    let env = Env::start().await;
    env.seed("incoming/2024/a.txt", b"a").await;
    let settings = CopySettings {
        src_prefix: "incoming/".into(),
        dst_prefix: "mirror/oss/".into(),
        ..env.settings()
    };
    env.replicator(settings.clone())
        .replicate(&task("incoming/2024/a.txt"), None)
        .await
        .expect("copied");
    assert_eq!(env.dst_keys().await, ["mirror/oss/2024/a.txt"]);
    env.seed("elsewhere/b.txt", b"b").await;
    let error = expect_error(
        env.replicator(settings)
            .replicate(&task("elsewhere/b.txt"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::InvalidKey, "{error}");
}

#[tokio::test]
async fn key_too_long_after_prefixing_fails_permanently() {
    let env = Env::start().await;
    let key = "k".repeat(1_020);
    env.seed(&key, b"x").await;
    let settings = CopySettings {
        dst_prefix: "replica/".into(),
        ..env.settings()
    };
    let error = expect_error(env.replicator(settings).replicate(&task(&key), None).await);
    assert_eq!(error.kind, FailureKind::InvalidKey, "{error}");
    assert!(!error.is_retryable());
    assert!(error.reason.contains("1028 bytes"), "{}", error.reason);
    assert!(env.dst_keys().await.is_empty());
}

#[tokio::test]
async fn metadata_over_two_kilobytes_fails_permanently() {
    let env = Env::start().await;
    let options = PutOptions {
        user_meta: vec![("big".into(), "v".repeat(2_000))],
        ..PutOptions::default()
    };
    env.seed_with("fat-meta.txt", b"x", options).await;
    let error = expect_error(
        env.replicator(env.settings())
            .replicate(&task("fat-meta.txt"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::MetadataTooLarge, "{error}");
    assert!(!error.is_retryable());
    assert!(error.reason.contains("2048"), "{}", error.reason);
    assert!(env.dst_keys().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Deletes

#[tokio::test]
async fn deletes_only_objects_carrying_this_sources_marker() {
    let env = Env::start().await;
    let settings = CopySettings {
        replicate_deletes: true,
        ..env.settings()
    };
    let engine = env.replicator(settings);
    env.seed("del/mine.txt", b"mine").await;
    engine
        .replicate(&task("del/mine.txt"), None)
        .await
        .expect("copied");
    assert!(env.emulator.delete_object_direct(SRC, "del/mine.txt"));
    let outcome = engine
        .replicate(&delete_task("del/mine.txt"), None)
        .await
        .expect("deleted");
    assert_eq!(outcome, Outcome::Deleted);
    assert!(env.dst_head("del/mine.txt").await.is_none());

    env.s3
        .put_object()
        .bucket(&env.dst)
        .key("del/foreign.txt")
        .body(Bytes::from_static(b"not ours").into())
        .send()
        .await
        .expect("foreign object");
    let outcome = engine
        .replicate(&delete_task("del/foreign.txt"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::DeleteNotOwned));
    assert!(env.dst_head("del/foreign.txt").await.is_some());

    let outcome = engine
        .replicate(&delete_task("del/absent.txt"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::DestinationAbsent));
}

#[tokio::test]
async fn delete_of_an_object_that_exists_again_copies_it() {
    let env = Env::start().await;
    let settings = CopySettings {
        replicate_deletes: true,
        ..env.settings()
    };
    env.seed("del/back.txt", b"back again").await;
    let outcome = env
        .replicator(settings)
        .replicate(&delete_task("del/back.txt"), None)
        .await
        .expect("copied");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    assert_eq!(
        env.dst_bytes("del/back.txt").await.as_deref(),
        Some(&b"back again"[..])
    );
}

#[tokio::test]
async fn deletes_are_skipped_unless_enabled() {
    let env = Env::start().await;
    let engine = env.replicator(env.settings());
    env.seed("del/kept.txt", b"kept").await;
    engine
        .replicate(&task("del/kept.txt"), None)
        .await
        .expect("copied");
    env.emulator.delete_object_direct(SRC, "del/kept.txt");
    let outcome = engine
        .replicate(&delete_task("del/kept.txt"), None)
        .await
        .expect("skipped");
    assert_eq!(outcome, Outcome::Skipped(SkipReason::DeletesDisabled));
    assert!(env.dst_head("del/kept.txt").await.is_some());
}

#[test]
fn s3_limits_are_the_documented_ones() {
    let limits = PartLimits::S3;
    assert_eq!(limits.min_part_size, 5 * MIB as u64);
    assert_eq!(limits.max_parts, 10_000);
    assert_eq!(limits.max_user_metadata, Some(2048));
    assert_eq!(limits.max_key_len, 1024);
}
