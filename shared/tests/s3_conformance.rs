//! The store conformance suite: the same cases, written against the neutral `ObjectSource` /
//! `ObjectSink` traits, run against `S3Store` on moto and `OssClient` on the OSS emulator.
//!
//! Each case is an `async fn(&S, bucket)` listed once in the `conformance!` table at the bottom,
//! which turns it into one `#[tokio::test]` per backend (`s3::case`, `oss::case`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use oss_emulator::{Emulator, EmulatorConfig};
use testkit::MotoServer;
use transfer::oss::{AddressingStyle, Credentials, Endpoint, OssClient, OssConfig, RetryPolicy};
use transfer::store::{
    BodyChecksums, CompletedPart, ContentHeaders, GetRequest, ObjectSink, ObjectSource, S3Store,
    StoreErrorKind, WriteRequest,
};

/// S3Store on a fresh bucket of a (shared) moto server.
struct S3Harness {
    store: S3Store,
    bucket: String,
    _moto: Arc<MotoServer>,
}

impl S3Harness {
    async fn start() -> Self {
        static BUCKETS: AtomicU32 = AtomicU32::new(0);
        let moto = tokio::task::spawn_blocking(MotoServer::shared)
            .await
            .expect("moto starts");
        let sdk = moto.sdk_config().await;
        let store = S3Store::from_sdk_config(&sdk);
        let bucket = format!(
            "conf-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::Relaxed)
        );
        store
            .client()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        Self {
            store,
            bucket,
            _moto: moto,
        }
    }
}

/// OssClient on the in-process emulator.
struct OssHarness {
    store: OssClient,
    bucket: String,
    _emulator: Emulator,
}

impl OssHarness {
    async fn start() -> Self {
        let emulator = Emulator::start(
            EmulatorConfig::new()
                .region("cn-hangzhou")
                .bucket("conformance")
                .credentials(Credentials::new("ak", "sk")),
        )
        .await
        .expect("emulator");
        let config = OssConfig::new("cn-hangzhou")
            .with_endpoint(Endpoint::Custom(emulator.endpoint()))
            .with_addressing(AddressingStyle::PathStyle)
            .with_retry(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            });
        Self {
            store: OssClient::new(config, Credentials::new("ak", "sk")).expect("client"),
            bucket: "conformance".into(),
            _emulator: emulator,
        }
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[2] ^ seed)
        .collect()
}

async fn put<S: ObjectSink>(
    store: &S,
    bucket: &str,
    key: &str,
    body: &[u8],
    request: &WriteRequest,
) {
    store
        .put_object(
            bucket,
            key,
            Bytes::copy_from_slice(body),
            BodyChecksums::of(body),
            request,
        )
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
}

async fn get<S: ObjectSource>(
    store: &S,
    bucket: &str,
    key: &str,
    request: &GetRequest,
) -> Result<Vec<u8>, transfer::store::StoreError> {
    let output = store.get_object(bucket, key, request).await?;
    let chunks: Vec<Bytes> = output.body.try_collect().await?;
    Ok(chunks.concat())
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn head_missing_object_is_not_found<S: ObjectSource + ObjectSink>(store: &S, bucket: &str) {
    let error = store
        .head_object(bucket, "no/such/key")
        .await
        .expect_err("missing");
    assert_eq!(error.kind(), StoreErrorKind::NotFound, "{error}");
    assert!(!error.is_retryable());
}

async fn put_then_head_returns_size_etag_content_and_metadata<S: ObjectSource + ObjectSink>(
    store: &S,
    bucket: &str,
) {
    let body = data(1234, 1);
    let request = WriteRequest {
        content: ContentHeaders {
            content_type: Some("text/plain; charset=utf-8".into()),
            content_encoding: Some("identity".into()),
            content_disposition: Some("inline".into()),
            content_language: Some("en".into()),
            cache_control: Some("no-cache".into()),
            expires: Some("Thu, 01 Dec 2044 16:00:00 GMT".into()),
        },
        user_metadata: BTreeMap::from([("origin".to_owned(), "conformance".to_owned())]),
        ..WriteRequest::default()
    };
    put(store, bucket, "meta/object.txt", &body, &request).await;
    let attributes = store
        .head_object(bucket, "meta/object.txt")
        .await
        .expect("head");
    assert_eq!(attributes.size, 1234);
    assert_eq!(attributes.etag_unquoted().len(), 32, "{}", attributes.etag);
    assert_eq!(attributes.content, request.content);
    assert_eq!(attributes.user_metadata, request.user_metadata);
    assert!(attributes.archive.is_readable());
    assert!(attributes.last_modified.is_some());
}

async fn ranged_get_pinned_by_etag_returns_the_bytes<S: ObjectSource + ObjectSink>(
    store: &S,
    bucket: &str,
) {
    let body = data(10_000, 2);
    put(store, bucket, "range.bin", &body, &WriteRequest::default()).await;
    let etag = store
        .head_object(bucket, "range.bin")
        .await
        .expect("head")
        .etag;
    let request = GetRequest {
        range: Some(100..2100),
        if_match: Some(etag),
    };
    let bytes = get(store, bucket, "range.bin", &request)
        .await
        .expect("get");
    assert_eq!(bytes, body[100..2100]);
    let output = store
        .get_object(bucket, "range.bin", &request)
        .await
        .expect("get");
    assert_eq!(output.attributes.size, 10_000, "the whole object's size");
    let whole = get(store, bucket, "range.bin", &GetRequest::default())
        .await
        .expect("get");
    assert_eq!(whole, body);
}

async fn stale_etag_is_precondition_failed<S: ObjectSource + ObjectSink>(store: &S, bucket: &str) {
    put(
        store,
        bucket,
        "pinned.txt",
        b"one",
        &WriteRequest::default(),
    )
    .await;
    let etag = store
        .head_object(bucket, "pinned.txt")
        .await
        .expect("head")
        .etag;
    put(
        store,
        bucket,
        "pinned.txt",
        b"two",
        &WriteRequest::default(),
    )
    .await;
    let error = get(
        store,
        bucket,
        "pinned.txt",
        &GetRequest {
            range: Some(0..2),
            if_match: Some(etag),
        },
    )
    .await
    .expect_err("changed");
    assert_eq!(error.kind(), StoreErrorKind::PreconditionFailed, "{error}");
}

async fn multipart_upload_round_trips<S: ObjectSource + ObjectSink>(store: &S, bucket: &str) {
    let part = usize::try_from(store.limits().min_part_size).expect("fits");
    let body = data(part * 2 + 17, 3);
    let upload = store
        .create_multipart_upload(bucket, "mp/object.bin", &WriteRequest::default())
        .await
        .expect("create");
    let mut completed = Vec::new();
    let mut whole = BodyChecksums::empty();
    for (i, chunk) in body.chunks(part).enumerate() {
        let number = u32::try_from(i + 1).expect("small");
        let sums = BodyChecksums::of(chunk);
        whole = whole.then(sums);
        let info = store
            .upload_part(
                bucket,
                "mp/object.bin",
                &upload,
                number,
                Bytes::copy_from_slice(chunk),
                sums,
            )
            .await
            .expect("part");
        completed.push(CompletedPart {
            part_number: number,
            etag: info.etag,
            checksums: sums,
        });
    }
    let listed = store
        .list_parts(bucket, "mp/object.bin", &upload)
        .await
        .expect("list parts");
    assert_eq!(
        listed
            .iter()
            .map(|p| (p.part_number, p.size))
            .collect::<Vec<_>>(),
        [(1, part as u64), (2, part as u64), (3, 17)]
    );
    store
        .complete_multipart_upload(bucket, "mp/object.bin", &upload, &completed, whole)
        .await
        .expect("complete");
    let copied = get(store, bucket, "mp/object.bin", &GetRequest::default())
        .await
        .expect("get");
    assert!(copied == body, "multipart object differs");
}

async fn aborted_upload_is_gone<S: ObjectSource + ObjectSink>(store: &S, bucket: &str) {
    let upload = store
        .create_multipart_upload(bucket, "mp/aborted.bin", &WriteRequest::default())
        .await
        .expect("create");
    store
        .upload_part(
            bucket,
            "mp/aborted.bin",
            &upload,
            1,
            Bytes::from_static(b"abc"),
            BodyChecksums::of(b"abc"),
        )
        .await
        .expect("part");
    store
        .abort_multipart_upload(bucket, "mp/aborted.bin", &upload)
        .await
        .expect("abort");
    let error = store
        .list_parts(bucket, "mp/aborted.bin", &upload)
        .await
        .expect_err("gone");
    assert_eq!(error.kind(), StoreErrorKind::NotFound, "{error}");
    store
        .abort_multipart_upload(bucket, "mp/aborted.bin", &upload)
        .await
        .expect("aborting twice succeeds");
    assert!(store.head_object(bucket, "mp/aborted.bin").await.is_err());
}

async fn delete_removes_and_is_idempotent<S: ObjectSource + ObjectSink>(store: &S, bucket: &str) {
    put(store, bucket, "gone.txt", b"x", &WriteRequest::default()).await;
    store
        .delete_object(bucket, "gone.txt")
        .await
        .expect("delete");
    assert!(
        store
            .head_object(bucket, "gone.txt")
            .await
            .expect_err("deleted")
            .is_not_found()
    );
    store
        .delete_object(bucket, "gone.txt")
        .await
        .expect("deleting again succeeds");
}

async fn odd_keys_round_trip_byte_exact<S: ObjectSource + ObjectSink>(store: &S, bucket: &str) {
    for key in [
        "with space.txt".to_owned(),
        "plus+sign".to_owned(),
        "percent%20literal%".to_owned(),
        "unicode/文件/ü.bin".to_owned(),
        "a".repeat(1_023),
    ] {
        put(
            store,
            bucket,
            &key,
            key.as_bytes(),
            &WriteRequest::default(),
        )
        .await;
        let bytes = get(store, bucket, &key, &GetRequest::default())
            .await
            .unwrap_or_else(|e| panic!("get {key:?}: {e}"));
        assert_eq!(bytes, key.as_bytes(), "{key}");
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod s3 {
            $(
                #[tokio::test]
                async fn $case() {
                    let h = super::S3Harness::start().await;
                    super::$case(&h.store, &h.bucket).await;
                }
            )*
        }
        mod oss {
            $(
                #[tokio::test]
                async fn $case() {
                    let h = super::OssHarness::start().await;
                    super::$case(&h.store, &h.bucket).await;
                }
            )*
        }
    };
}

conformance! {
    head_missing_object_is_not_found,
    put_then_head_returns_size_etag_content_and_metadata,
    ranged_get_pinned_by_etag_returns_the_bytes,
    stale_etag_is_precondition_failed,
    multipart_upload_round_trips,
    aborted_upload_is_gone,
    delete_removes_and_is_idempotent,
    odd_keys_round_trip_byte_exact,
}
