//! The copy engine end to end on real sockets: the OSS emulator in-process as the source, moto's
//! S3 as the destination. These are the cases where the protocols matter (headers, ranged GETs
//! pinned by `If-Match`, HTTP-level faults, S3 metadata and checksums, symlinks and restores as
//! OSS spells them); the engine's logic on its own is tested on `MemoryStore` in `engine.rs`.
//!
//! S3 (and moto) refuse parts under 5 MiB, so multipart cases use 5 MiB parts and objects of a
//! few parts; one case copies 100 MiB.

mod common;

use common::scenarios::{self, Pair};

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use oss_emulator::{EmulatorConfig, Fault, FaultRule, PutOptions};
use testkit::Services;
use transfer::crc64;
use transfer::oss::{Credentials, OssClient};
use transfer::replicate::{Continuation, CopySettings, FailureKind, Outcome};
use transfer::s3::S3Store;
use transfer::store::{Encryption, StorageClass};

use common::{SRC, data, expect_error, task};

const AK: &str = "replicate-ak";
const SK: &str = "replicate-secret";
const MIB: usize = transfer::size::as_usize(transfer::size::MIB);
/// The part size and threshold the tests use: S3's smallest part.
const PART: usize = 5 * MIB;

/// A source emulator, a destination bucket on moto, and clients for both.
struct Env {
    services: Services,
    oss: OssClient,
    s3: aws_sdk_s3::Client,
    store: S3Store,
    dst: String,
}

impl Env {
    async fn start() -> Self {
        Self::start_with(EmulatorConfig::new()).await
    }

    async fn start_with(config: EmulatorConfig) -> Self {
        let services =
            Services::start(config.bucket(SRC).credentials(Credentials::new(AK, SK))).await;
        let dst = services.create_bucket("dst").await;
        Self {
            oss: services.oss_client(Credentials::new(AK, SK)),
            s3: services.s3.clone(),
            store: services.s3_store(),
            dst,
            services,
        }
    }

    async fn seed(&self, key: &str, data: &[u8]) -> String {
        self.seed_with(key, data, PutOptions::default()).await
    }

    /// Stores a source object; returns its ETag as a trigger event carries it.
    async fn seed_with(&self, key: &str, data: &[u8], options: PutOptions) -> String {
        let info = self
            .services
            .emulator
            .put_object_direct(SRC, key, Bytes::copy_from_slice(data), options)
            .await
            .expect("seeded");
        info.etag.trim_matches('"').to_owned()
    }

    fn inject(&self, rule: FaultRule) {
        let mut rules = self.services.emulator.faults();
        rules.push(rule);
        self.services.emulator.set_faults(rules);
    }

    async fn dst_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.services.s3_bytes(&self.dst, key).await
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
        self.services.s3_keys(&self.dst).await
    }

    async fn pending_uploads(&self) -> usize {
        self.services.s3_pending_uploads(&self.dst).await
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes, metadata, marker

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
        storage_class: Some(StorageClass::InfrequentAccess),
        sse: Some(Encryption::Aes256),
        ..env.settings()
    };
    let engine = env.engine(settings);
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
    env.engine(env.settings())
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
    let expected = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, &body);
    assert_eq!(
        head.checksum_crc64_nvme(),
        Some(base64::engine::general_purpose::STANDARD.encode(expected.to_be_bytes())).as_deref()
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotence and ordering

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
    let engine = env.engine(env.settings());
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
    assert!(
        env.services.emulator.faults().is_empty(),
        "every fault was hit"
    );
    assert_eq!(env.pending_uploads().await, 0);
}

#[tokio::test]
async fn persistent_truncation_keeps_the_upload_then_gives_up_and_writes_nothing() {
    let env = Env::start().await;
    env.seed("cut/big.bin", &data(PART * 2, 2)).await;
    env.seed("cut/small.bin", &data(1000, 2)).await;
    env.inject(FaultRule::new(
        "GetObject",
        Fault::Truncate { after_bytes: 100 },
    ));
    let engine = env.engine(env.settings());
    let error = expect_error(engine.replicate(&task("cut/small.bin"), None).await);
    assert_eq!(error.kind, FailureKind::SourceUnavailable, "{error}");
    assert!(error.is_retryable());

    // A multipart copy keeps its upload through transient failures: each invocation hands it
    // on, waiting longer each time, until MAX_STALLS fruitless ones abort it.
    let mut next = task("cut/big.bin");
    let mut delays = Vec::new();
    let error = loop {
        match engine.replicate(&next, None).await {
            Ok(Outcome::Continue { task, delay }) => {
                assert_eq!(env.pending_uploads().await, 1, "the upload is kept");
                delays.push(delay);
                next = task;
            }
            Ok(other) => panic!("expected a continuation or an error, got {other:?}"),
            Err(error) => break error,
        }
    };
    assert_eq!(
        delays.len(),
        Continuation::MAX_STALLS as usize,
        "{delays:?}"
    );
    assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
    assert_eq!(error.kind, FailureKind::SourceUnavailable, "{error}");
    assert!(error.is_retryable());
    assert!(env.dst_keys().await.is_empty());
    assert_eq!(env.pending_uploads().await, 0, "aborted in the end");
}

#[tokio::test]
async fn crc_mismatch_writes_nothing_and_leaves_no_upload() {
    let env = Env::start().await;
    env.seed("crc/big.bin", &data(PART * 2 + 1, 6)).await;
    env.seed("crc/small.bin", &data(100, 6)).await;
    env.inject(FaultRule::new("HeadObject", Fault::CrcMismatch));
    let engine = env.engine(env.settings());
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
        env.engine(env.settings())
            .replicate(&task("crc/get.bin"), None)
            .await,
    );
    assert_eq!(error.kind, FailureKind::ChecksumMismatch, "{error}");
    assert!(env.dst_keys().await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Special objects

// ---------------------------------------------------------------------------------------------
// Large objects

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
        .engine(settings)
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

// ---------------------------------------------------------------------------------------------
// Keys

// ---------------------------------------------------------------------------------------------
// Deletes

// ---------------------------------------------------------------------------------------------
// The scenarios shared with the `MemoryStore` tests, here through the protocols

impl Pair for Env {
    type Src = OssClient;
    type Dst = S3Store;

    fn src(&self) -> &OssClient {
        &self.oss
    }

    fn dst(&self) -> &S3Store {
        &self.store
    }

    fn dst_bucket(&self) -> &str {
        &self.dst
    }

    fn part(&self) -> usize {
        PART
    }

    fn source_requests(&self, operation: &str) -> u64 {
        self.services.emulator.stats().count(operation)
    }

    async fn pending_uploads(&self) -> usize {
        self.services.s3_pending_uploads(&self.dst).await
    }
}

/// How long the emulator takes to restore an archived object in these tests.
const RESTORE_DELAY: Duration = Duration::from_millis(600);

macro_rules! shared_scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                scenarios::$name(&Env::start().await).await;
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
    let env = Env::start_with(EmulatorConfig::new().restore_delay(RESTORE_DELAY)).await;
    scenarios::archived_object_is_restored_then_copied(&env, RESTORE_DELAY).await;
}

#[tokio::test]
async fn object_replaced_mid_copy_ends_as_one_whole_version() {
    // The first part's GET is served, then the emulator overwrites the object: later parts get
    // 412 from OSS's If-Match.
    scenarios::object_replaced_mid_copy_ends_as_one_whole_version(&Env::start().await, |env| {
        env.inject(FaultRule::new("GetObject", Fault::Replace).times(1));
    })
    .await;
}
