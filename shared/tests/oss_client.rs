//! The OSS client's own API against the OSS emulator on a real socket: every operation, its
//! headers and errors, retries, timeouts, addressing styles and credentials. (The store seam's
//! contract, which the OSS client also meets, is checked by `tools/store-conformance`.)
//!
//! Every case is an `async fn(&Harness)` and is listed once in the `cases!` table at the
//! bottom, which turns it into a `#[tokio::test]` with its own emulator on an ephemeral port.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use oss_emulator::{Emulator, EmulatorConfig, Fault, FaultRule, PutOptions};
use transfer::crc64;
use transfer::oss::{
    AddressingStyle, ByteRange, CompleteOptions, CompletedPart, Credentials, Endpoint, ErrorKind,
    GetObjectOptions, ListObjectsV2Request, ObjectType, OssClient, OssConfig, OssError, PutBody,
    PutObjectOptions, RestoreOutcome, RestoreState, RestoreTier, RetryPolicy, StorageClass,
};
use transfer::oss::{CredentialsError, ProvideCredentials, StaticCredentials};
use transfer::size::MIB;
use transfer::store::ContentHeaders;

const BUCKET: &str = "conformance";
const REGION: &str = "cn-hangzhou";
const AK: &str = "conformance-ak";
const SK: &str = "conformance-secret";
/// OSS's minimum size for every part but the last.
const MIN_PART: usize = 100 * 1024;

/// The backend under test and a client configured for it.
struct Harness {
    emulator: Emulator,
    client: OssClient,
}

/// A retry policy fast enough for tests but with the production shape.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

fn path_style_config(endpoint: String) -> OssConfig {
    OssConfig::new(REGION)
        .with_endpoint(Endpoint::Custom(endpoint))
        .with_addressing(AddressingStyle::PathStyle)
        .with_retry(fast_retries())
        .with_request_timeout(Duration::from_secs(10))
        .with_read_timeout(Duration::from_secs(5))
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(EmulatorConfig::new()).await
    }

    async fn start_with(config: EmulatorConfig) -> Self {
        let config = config
            .region(REGION)
            .bucket(BUCKET)
            .credentials(Credentials::new(AK, SK))
            .restore_delay(Duration::from_millis(300));
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let client = OssClient::new(
            path_style_config(emulator.endpoint()),
            Credentials::new(AK, SK),
        )
        .expect("client");
        Self { emulator, client }
    }

    fn client(&self) -> &OssClient {
        &self.client
    }

    /// A second client with other credentials or settings against the same backend.
    #[expect(
        clippy::unused_self,
        reason = "read like the harness's other constructors"
    )]
    fn client_with(&self, config: OssConfig, credentials: Credentials) -> OssClient {
        OssClient::new(config, credentials).expect("client")
    }

    fn config(&self) -> OssConfig {
        path_style_config(self.emulator.endpoint())
    }

    fn inject(&self, rule: FaultRule) {
        let mut rules = self.emulator.faults();
        rules.push(rule);
        self.emulator.set_faults(rules);
    }

    fn requests(&self, op: &str) -> u64 {
        self.emulator.stats().count(op)
    }

    fn reset_counts(&self) {
        self.emulator.reset_stats();
    }

    async fn seed(&self, key: &str, data: &[u8], options: PutOptions) {
        self.emulator
            .put_object_direct(BUCKET, key, Bytes::copy_from_slice(data), options)
            .await
            .expect("seeded");
    }

    async fn put(&self, key: &str, data: &[u8]) {
        self.client
            .put_object(
                BUCKET,
                key,
                PutBody::from(data.to_vec()),
                &PutObjectOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
    }

    async fn get_bytes(&self, key: &str) -> Result<Bytes, OssError> {
        let output = self
            .client
            .get_object(BUCKET, key, &GetObjectOptions::default())
            .await?;
        output.body.collect().await
    }
}

/// Deterministic test data of `len` bytes.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            u32::try_from(i)
                .unwrap_or(u32::MAX)
                .wrapping_mul(2_654_435_761)
                .to_be_bytes()[0]
                ^ seed
        })
        .collect()
}

/// The ETag OSS gives a PutObject or UploadPart body: the quoted upper-case hex MD5.
fn md5_etag(bytes: &[u8]) -> String {
    use md5::Digest as _;
    format!("\"{}\"", hex::encode_upper(md5::Md5::digest(bytes)))
}

/// Keys that stress encoding: every one must survive PUT, GET, HEAD and LIST byte for byte.
fn odd_keys() -> Vec<String> {
    vec![
        "plain.txt".to_owned(),
        "with space.txt".to_owned(),
        "plus+sign+".to_owned(),
        "percent%20literal%".to_owned(),
        "question?mark=1&x".to_owned(),
        "hash#fragment".to_owned(),
        "unicode/文件/ü-é.bin".to_owned(),
        "emoji/🚀.dat".to_owned(),
        "double//slash".to_owned(),
        "trailing-slash/".to_owned(),
        "tilde~under_score-dash.dot".to_owned(),
        "quote\"apos'semi;comma,".to_owned(),
        "brackets[]{}()<>".to_owned(),
        "a".repeat(1_023),
    ]
}

// ---------------------------------------------------------------------------------------------
// HeadObject

async fn head_returns_typed_metadata(h: &Harness) {
    let body = data(1234, 1);
    let options = PutObjectOptions {
        content: ContentHeaders {
            content_type: Some("text/plain; charset=utf-8".into()),
            content_encoding: Some("identity".into()),
            content_disposition: Some("attachment; filename=\"a b.txt\"".into()),
            content_language: Some("zh-CN".into()),
            cache_control: Some("max-age=60".into()),
            expires: Some("Thu, 01 Dec 2044 16:00:00 GMT".into()),
        },
        user_metadata: BTreeMap::from([
            ("origin".to_owned(), "conformance".to_owned()),
            ("zeta".to_owned(), "last value".to_owned()),
        ]),
        storage_class: Some(StorageClass::InfrequentAccess),
        forbid_overwrite: false,
    };
    h.client()
        .put_object(
            BUCKET,
            "meta/object.txt",
            PutBody::from(body.clone()),
            &options,
        )
        .await
        .expect("put");
    let meta = h
        .client()
        .head_object(BUCKET, "meta/object.txt")
        .await
        .expect("head");
    assert_eq!(meta.size, 1234);
    assert_eq!(meta.etag, md5_etag(&body));
    assert_eq!(format!("\"{}\"", meta.etag_unquoted()), meta.etag);
    assert_eq!(meta.crc64, Some(crc64::checksum(&body)));
    assert_eq!(meta.object_type, ObjectType::Normal);
    assert_eq!(meta.storage_class, StorageClass::InfrequentAccess);
    assert_eq!(meta.restore, RestoreState::NotRequested);
    assert!(meta.last_modified.is_some());
    assert_eq!(meta.content, options.content);
    assert_eq!(meta.user_metadata, options.user_metadata);
    assert!(meta.request_id.is_some());
}

async fn head_missing_object_is_not_found(h: &Harness) {
    let error = h
        .client()
        .head_object(BUCKET, "nope")
        .await
        .expect_err("missing");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(error.status(), Some(404));
    assert!(!error.is_retryable());
    let text = error.to_string();
    assert!(
        text.contains("HeadObject") && text.contains(BUCKET) && text.contains("nope"),
        "{text}"
    );
}

async fn missing_bucket_is_not_found(h: &Harness) {
    let error = h
        .client()
        .head_object("no-such-bucket", "k")
        .await
        .expect_err("missing");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    let error = h
        .client()
        .list_objects_v2("no-such-bucket", &ListObjectsV2Request::default())
        .await
        .expect_err("missing");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(error.code(), Some("NoSuchBucket"));
}

// ---------------------------------------------------------------------------------------------
// GetObject

async fn get_streams_whole_object(h: &Harness) {
    let body = data(transfer::size::as_usize(3 * MIB) + 17, 2);
    h.put("get/whole.bin", &body).await;
    let output = h
        .client()
        .get_object(BUCKET, "get/whole.bin", &GetObjectOptions::default())
        .await
        .expect("get");
    assert_eq!(output.meta.size, body.len() as u64);
    assert_eq!(output.content_range, None);
    assert_eq!(output.body.content_length(), Some(body.len() as u64));
    let mut received = Vec::new();
    let mut stream = output.body;
    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(stream.crc64(), crc64::checksum(&body));
    assert!(received == body, "bytes differ");
}

async fn get_range_returns_requested_bytes(h: &Harness) {
    let body = data(10_000, 3);
    h.put("get/range.bin", &body).await;
    let options = GetObjectOptions {
        range: Some(ByteRange::inclusive(1000, 1999)),
        ..Default::default()
    };
    let output = h
        .client()
        .get_object(BUCKET, "get/range.bin", &options)
        .await
        .expect("get");
    assert_eq!(output.meta.size, 10_000, "size is the whole object's");
    let range = output.content_range.expect("206 with Content-Range");
    assert_eq!(
        (range.first, range.last, range.total),
        (1000, 1999, Some(10_000))
    );
    let bytes = output.body.collect().await.expect("body");
    assert_eq!(&bytes[..], &body[1000..2000]);

    let tail = GetObjectOptions {
        range: Some(ByteRange::from_offset(9_990)),
        ..Default::default()
    };
    let output = h
        .client()
        .get_object(BUCKET, "get/range.bin", &tail)
        .await
        .expect("get");
    assert_eq!(
        &output.body.collect().await.expect("body")[..],
        &body[9_990..]
    );

    let beyond = GetObjectOptions {
        range: Some(ByteRange::from_offset(20_000)),
        ..Default::default()
    };
    let error = h
        .client()
        .get_object(BUCKET, "get/range.bin", &beyond)
        .await
        .expect_err("unsatisfiable");
    assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{error}");
    assert_eq!(error.status(), Some(416));
}

async fn if_match_distinguishes_changed_from_missing(h: &Harness) {
    h.put("get/pinned", b"version one").await;
    let meta = h
        .client()
        .head_object(BUCKET, "get/pinned")
        .await
        .expect("head");
    let pinned = GetObjectOptions {
        if_match: Some(meta.etag.clone()),
        ..Default::default()
    };
    let ok = h
        .client()
        .get_object(BUCKET, "get/pinned", &pinned)
        .await
        .expect("matches");
    assert_eq!(&ok.body.collect().await.expect("body")[..], b"version one");

    h.put("get/pinned", b"version two").await;
    let changed = h
        .client()
        .get_object(BUCKET, "get/pinned", &pinned)
        .await
        .expect_err("changed");
    assert_eq!(changed.kind(), ErrorKind::PreconditionFailed, "{changed}");
    assert_eq!(changed.status(), Some(412));

    let missing = h
        .client()
        .get_object(BUCKET, "get/never-existed", &pinned)
        .await
        .expect_err("missing");
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    assert_ne!(changed.kind(), missing.kind());
}

async fn if_none_match_on_current_etag_is_not_modified(h: &Harness) {
    h.put("get/cached", b"cached").await;
    let meta = h
        .client()
        .head_object(BUCKET, "get/cached")
        .await
        .expect("head");
    let options = GetObjectOptions {
        if_none_match: Some(meta.etag),
        ..Default::default()
    };
    let error = h
        .client()
        .get_object(BUCKET, "get/cached", &options)
        .await
        .expect_err("not modified");
    assert_eq!(error.kind(), ErrorKind::NotModified, "{error}");
}

async fn replaced_object_fails_the_pinned_ranged_get(h: &Harness) {
    let body = data(50_000, 4);
    h.put("get/replaced", &body).await;
    let meta = h
        .client()
        .head_object(BUCKET, "get/replaced")
        .await
        .expect("head");
    h.inject(FaultRule::new("GetObject", Fault::Replace).times(1));
    let first = GetObjectOptions {
        range: Some(ByteRange::inclusive(0, 24_999)),
        if_match: Some(meta.etag.clone()),
        ..Default::default()
    };
    let part = h
        .client()
        .get_object(BUCKET, "get/replaced", &first)
        .await
        .expect("first part");
    assert_eq!(
        &part.body.collect().await.expect("body")[..],
        &body[..25_000]
    );
    let second = GetObjectOptions {
        range: Some(ByteRange::inclusive(25_000, 49_999)),
        if_match: Some(meta.etag),
        ..Default::default()
    };
    let error = h
        .client()
        .get_object(BUCKET, "get/replaced", &second)
        .await
        .expect_err("object changed between parts");
    assert_eq!(error.kind(), ErrorKind::PreconditionFailed, "{error}");
}

// ---------------------------------------------------------------------------------------------
// PutObject

async fn put_returns_etag_and_verified_crc(h: &Harness) {
    let body = data(700_000, 5);
    let output = h
        .client()
        .put_object(
            BUCKET,
            "put/bytes",
            PutBody::from(body.clone()),
            &PutObjectOptions::default(),
        )
        .await
        .expect("put");
    assert_eq!(output.etag, md5_etag(&body));
    assert_eq!(output.crc64, Some(crc64::checksum(&body)));
    assert!(output.request_id.is_some());
    assert!(h.get_bytes("put/bytes").await.expect("get") == body);
}

async fn put_streamed_body_round_trips(h: &Harness) {
    let body = data(1_000_003, 6);
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(65_536)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stream = futures::stream::iter(chunks);
    let output = h
        .client()
        .put_object(
            BUCKET,
            "put/streamed",
            PutBody::from_stream(body.len() as u64, stream),
            &PutObjectOptions::default(),
        )
        .await
        .expect("put");
    assert_eq!(output.crc64, Some(crc64::checksum(&body)));
    assert!(h.get_bytes("put/streamed").await.expect("get") == body);
}

async fn put_stream_shorter_than_declared_fails(h: &Harness) {
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"short"))]);
    let error = h
        .client()
        .put_object(
            BUCKET,
            "put/short",
            PutBody::from_stream(100, stream),
            &PutObjectOptions::default(),
        )
        .await
        .expect_err("short body");
    assert!(
        matches!(error.kind(), ErrorKind::Network | ErrorKind::InvalidRequest),
        "{error}"
    );
    assert!(
        h.client().head_object(BUCKET, "put/short").await.is_err(),
        "a short body must not create the object"
    );
}

async fn empty_object_round_trips(h: &Harness) {
    h.put("put/empty", b"").await;
    let meta = h
        .client()
        .head_object(BUCKET, "put/empty")
        .await
        .expect("head");
    assert_eq!(meta.size, 0);
    assert_eq!(meta.crc64, Some(0));
    assert!(h.get_bytes("put/empty").await.expect("get").is_empty());
}

// ---------------------------------------------------------------------------------------------
// DeleteObject

async fn delete_removes_object_and_is_idempotent(h: &Harness) {
    h.put("delete/me", b"x").await;
    h.client()
        .delete_object(BUCKET, "delete/me")
        .await
        .expect("delete");
    let error = h
        .client()
        .head_object(BUCKET, "delete/me")
        .await
        .expect_err("gone");
    assert_eq!(error.kind(), ErrorKind::NotFound);
    h.client()
        .delete_object(BUCKET, "delete/me")
        .await
        .expect("deleting a missing object succeeds");
}

// ---------------------------------------------------------------------------------------------
// ListObjectsV2

async fn lists_odd_keys_across_pages(h: &Harness) {
    let mut expected: Vec<String> = odd_keys()
        .into_iter()
        .map(|k| format!("list/{k}"))
        .collect();
    let mut sizes = BTreeMap::new();
    for (i, key) in expected.iter().enumerate() {
        h.seed(key, &data(i, 7), PutOptions::default()).await;
        sizes.insert(key.clone(), i as u64);
    }
    h.seed("other/outside-prefix", b"x", PutOptions::default())
        .await;
    expected.sort();
    h.reset_counts();
    let request = ListObjectsV2Request {
        prefix: Some("list/".into()),
        max_keys: Some(3),
        ..Default::default()
    };
    let listed: Vec<_> = h
        .client()
        .list_all_objects(BUCKET, request)
        .try_collect()
        .await
        .expect("list");
    let keys: Vec<String> = listed.iter().map(|o| o.key.clone()).collect();
    assert_eq!(keys, expected);
    let pages = h.requests("ListObjectsV2");
    assert_eq!(
        pages,
        expected.len().div_ceil(3) as u64,
        "one request per page of 3"
    );
    for object in &listed {
        assert_eq!(Some(&object.size), sizes.get(&object.key), "{}", object.key);
        assert!(object.etag.starts_with('"'), "{}", object.etag);
    }
}

async fn lists_with_delimiter_and_start_after(h: &Harness) {
    for key in ["dir/a", "dir/b c/1", "dir/b c/2", "dir/d+e/1", "dir/z"] {
        h.seed(key, b"x", PutOptions::default()).await;
    }
    let page = h
        .client()
        .list_objects_v2(
            BUCKET,
            &ListObjectsV2Request {
                prefix: Some("dir/".into()),
                delimiter: Some("/".into()),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["dir/a", "dir/z"]);
    assert_eq!(page.common_prefixes, ["dir/b c/", "dir/d+e/"]);
    assert!(!page.is_truncated);

    let after = h
        .client()
        .list_objects_v2(
            BUCKET,
            &ListObjectsV2Request {
                prefix: Some("dir/".into()),
                start_after: Some("dir/b c/2".into()),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let keys: Vec<&str> = after.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["dir/d+e/1", "dir/z"]);
}

async fn lists_empty_prefix_as_empty(h: &Harness) {
    let listed: Vec<_> = h
        .client()
        .list_all_objects(
            BUCKET,
            ListObjectsV2Request {
                prefix: Some("nothing-here/".into()),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .expect("list");
    assert!(listed.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Odd keys and addressing

async fn odd_keys_round_trip_byte_exact(h: &Harness) {
    for (i, key) in odd_keys().iter().enumerate() {
        let body = data(100 + i, 8);
        h.put(key, &body).await;
        let meta = h
            .client()
            .head_object(BUCKET, key)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.size, body.len() as u64, "{key}");
        assert!(
            h.get_bytes(key).await.unwrap_or_else(|e| panic!("{e}")) == body,
            "{key}"
        );
        let stored = h.emulator.head_object_direct(BUCKET, key);
        assert!(
            stored.is_some(),
            "stored under a different key than {key:?}"
        );
    }
}

async fn over_long_and_dot_segment_keys_are_refused(h: &Harness) {
    let long = "k".repeat(1_024);
    let error = h
        .client()
        .put_object(
            BUCKET,
            &long,
            PutBody::from(&b"x"[..]),
            &PutObjectOptions::default(),
        )
        .await
        .expect_err("key too long");
    assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{error}");
    h.reset_counts();
    let error = h
        .client()
        .head_object(BUCKET, "a/../b")
        .await
        .expect_err("dot segments");
    assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{error}");
    assert_eq!(
        h.emulator.stats().total_requests(),
        0,
        "refused before sending"
    );
}

async fn virtual_hosted_addressing_works(h: &Harness) {
    let domain = "oss.emulator.test";
    let http = reqwest::Client::builder()
        .resolve(&format!("{BUCKET}.{domain}"), h.emulator.addr())
        .build()
        .expect("http client");
    let config = OssConfig::new(REGION)
        .with_endpoint(Endpoint::Custom(format!(
            "http://{domain}:{}",
            h.emulator.addr().port()
        )))
        .with_addressing(AddressingStyle::VirtualHosted)
        .with_retry(fast_retries())
        // A made-up domain that resolves to the emulator on loopback.
        .with_insecure_http(true);
    let client = OssClient::with_http_client(
        config,
        Arc::new(StaticCredentials::new(Credentials::new(AK, SK))),
        http,
    )
    .expect("client");
    let key = "virtual/with space+plus.txt";
    client
        .put_object(
            BUCKET,
            key,
            PutBody::from(&b"hosted"[..]),
            &PutObjectOptions::default(),
        )
        .await
        .expect("put");
    let got = client
        .get_object(BUCKET, key, &GetObjectOptions::default())
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body");
    assert_eq!(&got[..], b"hosted");
    let page = client
        .list_objects_v2(
            BUCKET,
            &ListObjectsV2Request {
                prefix: Some("virtual/".into()),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].key, key);
    // The same object through path-style: it is one store.
    assert_eq!(&h.get_bytes(key).await.expect("get")[..], b"hosted");
}

// ---------------------------------------------------------------------------------------------
// Multipart uploads

async fn multipart_upload_round_trips(h: &Harness) {
    let key = "multipart/object bin+1";
    let parts_data = [data(MIN_PART, 10), data(MIN_PART + 5, 11), data(1234, 12)];
    let options = PutObjectOptions {
        user_metadata: BTreeMap::from([("kind".to_owned(), "multipart".to_owned())]),
        ..Default::default()
    };
    let upload_id = h
        .client()
        .initiate_multipart_upload(BUCKET, key, &options)
        .await
        .expect("initiate");
    let mut completed = Vec::new();
    let mut whole_crc = 0;
    // Upload out of order: part numbers, not arrival, define the object.
    for (i, part) in parts_data.iter().enumerate().rev() {
        let number = u32::try_from(i).expect("few parts") + 1;
        let output = h
            .client()
            .upload_part(BUCKET, key, &upload_id, number, PutBody::from(part.clone()))
            .await
            .expect("upload part");
        assert_eq!(output.etag, md5_etag(part));
        assert_eq!(output.crc64, Some(crc64::checksum(part)));
        completed.push(CompletedPart {
            part_number: number,
            etag: output.etag,
        });
    }
    for part in &parts_data {
        whole_crc = crc64::combine(whole_crc, crc64::checksum(part), part.len() as u64);
    }
    let listed = h
        .client()
        .list_parts(BUCKET, key, &upload_id)
        .await
        .expect("list parts");
    let numbers: Vec<u32> = listed.iter().map(|p| p.part_number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    for (listed, part) in listed.iter().zip(&parts_data) {
        assert_eq!(listed.size, part.len() as u64);
        assert_eq!(listed.etag, md5_etag(part));
    }
    let done = h
        .client()
        .complete_multipart_upload(
            BUCKET,
            key,
            &upload_id,
            &completed,
            CompleteOptions::default(),
        )
        .await
        .expect("complete");
    assert!(
        done.etag.ends_with("-3\""),
        "multipart ETag form: {}",
        done.etag
    );
    assert_eq!(done.crc64, Some(whole_crc));
    let meta = h.client().head_object(BUCKET, key).await.expect("head");
    assert_eq!(meta.object_type, ObjectType::Multipart);
    assert_eq!(meta.crc64, Some(whole_crc));
    assert_eq!(
        meta.user_metadata.get("kind").map(String::as_str),
        Some("multipart")
    );
    let expected: Vec<u8> = parts_data.concat();
    assert!(h.get_bytes(key).await.expect("get") == expected);
    assert_eq!(h.emulator.pending_uploads(BUCKET), 0);
}

async fn list_parts_pages_through_many_parts(h: &Harness) {
    let key = "multipart/many";
    let upload_id = h
        .client()
        .initiate_multipart_upload(BUCKET, key, &PutObjectOptions::default())
        .await
        .expect("initiate");
    for number in 1..=1005_u32 {
        h.client()
            .upload_part(
                BUCKET,
                key,
                &upload_id,
                number,
                PutBody::from(number.to_be_bytes().to_vec()),
            )
            .await
            .expect("upload part");
    }
    h.reset_counts();
    let parts = h
        .client()
        .list_parts(BUCKET, key, &upload_id)
        .await
        .expect("list parts");
    assert_eq!(parts.len(), 1005);
    assert!(
        parts
            .iter()
            .enumerate()
            .all(|(i, p)| u32::try_from(i).is_ok_and(|i| p.part_number == i + 1))
    );
    assert_eq!(h.requests("ListParts"), 2, "1000 per page");
    h.client()
        .abort_multipart_upload(BUCKET, key, &upload_id)
        .await
        .expect("abort");
}

async fn aborted_upload_leaves_nothing_behind(h: &Harness) {
    let key = "multipart/aborted";
    let upload_id = h
        .client()
        .initiate_multipart_upload(BUCKET, key, &PutObjectOptions::default())
        .await
        .expect("initiate");
    h.client()
        .upload_part(
            BUCKET,
            key,
            &upload_id,
            1,
            PutBody::from(data(MIN_PART, 13)),
        )
        .await
        .expect("upload part");
    assert_eq!(h.emulator.pending_uploads(BUCKET), 1);
    h.client()
        .abort_multipart_upload(BUCKET, key, &upload_id)
        .await
        .expect("abort");
    assert_eq!(h.emulator.pending_uploads(BUCKET), 0);
    let error = h
        .client()
        .upload_part(BUCKET, key, &upload_id, 2, PutBody::from(&b"late"[..]))
        .await
        .expect_err("upload is gone");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(error.code(), Some("NoSuchUpload"));
    let error = h
        .client()
        .list_parts(BUCKET, key, &upload_id)
        .await
        .expect_err("gone");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(h.client().head_object(BUCKET, key).await.is_err());
}

async fn undersized_part_fails_completion(h: &Harness) {
    let key = "multipart/small";
    let upload_id = h
        .client()
        .initiate_multipart_upload(BUCKET, key, &PutObjectOptions::default())
        .await
        .expect("initiate");
    let mut completed = Vec::new();
    for number in 1..=2 {
        let output = h
            .client()
            .upload_part(BUCKET, key, &upload_id, number, PutBody::from(data(10, 14)))
            .await
            .expect("upload part");
        completed.push(CompletedPart {
            part_number: number,
            etag: output.etag,
        });
    }
    let error = h
        .client()
        .complete_multipart_upload(
            BUCKET,
            key,
            &upload_id,
            &completed,
            CompleteOptions::default(),
        )
        .await
        .expect_err("first part below 100 KB");
    assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{error}");
    assert_eq!(error.code(), Some("EntityTooSmall"));
    h.client()
        .abort_multipart_upload(BUCKET, key, &upload_id)
        .await
        .expect("abort");
}

// ---------------------------------------------------------------------------------------------
// Archive objects and RestoreObject

async fn archive_object_needs_restore(h: &Harness) {
    let body = data(4096, 15);
    let archive = PutOptions {
        storage_class: Some("Archive".into()),
        ..Default::default()
    };
    h.seed("archive/frozen", &body, archive).await;
    let meta = h
        .client()
        .head_object(BUCKET, "archive/frozen")
        .await
        .expect("head works");
    assert_eq!(meta.storage_class, StorageClass::Archive);
    assert!(meta.needs_restore());
    let error = h.get_bytes("archive/frozen").await.expect_err("frozen");
    assert_eq!(error.kind(), ErrorKind::InvalidObjectState, "{error}");
    assert!(!error.is_retryable());

    let outcome = h
        .client()
        .restore_object(BUCKET, "archive/frozen", 1, None)
        .await
        .expect("restore");
    assert_eq!(outcome, RestoreOutcome::Started);
    let meta = h
        .client()
        .head_object(BUCKET, "archive/frozen")
        .await
        .expect("head");
    assert_eq!(meta.restore, RestoreState::InProgress);
    assert!(meta.needs_restore());
    let again = h
        .client()
        .restore_object(BUCKET, "archive/frozen", 1, None)
        .await
        .expect("restore while restoring");
    assert_eq!(again, RestoreOutcome::AlreadyInProgress);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let meta = h
            .client()
            .head_object(BUCKET, "archive/frozen")
            .await
            .expect("head");
        if !meta.needs_restore() {
            assert!(
                matches!(meta.restore, RestoreState::Restored { expiry: Some(_) }),
                "{:?}",
                meta.restore
            );
            break;
        }
        assert!(Instant::now() < deadline, "restore never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(h.get_bytes("archive/frozen").await.expect("readable") == body);
    let extended = h
        .client()
        .restore_object(BUCKET, "archive/frozen", 2, None)
        .await
        .expect("restore again");
    assert_eq!(extended, RestoreOutcome::AlreadyRestored);
}

async fn cold_archive_restore_takes_a_tier(h: &Harness) {
    let cold = PutOptions {
        storage_class: Some("ColdArchive".into()),
        ..Default::default()
    };
    h.seed("archive/cold", b"cold bytes", cold).await;
    let error = h.get_bytes("archive/cold").await.expect_err("frozen");
    assert_eq!(error.kind(), ErrorKind::InvalidObjectState);
    let outcome = h
        .client()
        .restore_object(BUCKET, "archive/cold", 1, Some(RestoreTier::Expedited))
        .await
        .expect("restore");
    assert_eq!(outcome, RestoreOutcome::Started);
}

// ---------------------------------------------------------------------------------------------
// Credentials

async fn wrong_secret_is_invalid_credentials(h: &Harness) {
    let client = h.client_with(h.config(), Credentials::new(AK, "wrong-secret"));
    h.reset_counts();
    let error = client
        .head_object(BUCKET, "any")
        .await
        .expect_err("bad signature");
    assert_eq!(error.kind(), ErrorKind::InvalidCredentials, "{error}");
    assert!(error.is_credential_error());
    let error = client
        .list_objects_v2(BUCKET, &ListObjectsV2Request::default())
        .await
        .expect_err("bad signature");
    assert_eq!(error.code(), Some("SignatureDoesNotMatch"));
    assert!(!error.to_string().contains("wrong-secret"), "{error}");
    assert_eq!(
        h.requests("ListObjectsV2"),
        1,
        "credential errors are not retried"
    );
}

async fn unknown_access_key_is_invalid_credentials(h: &Harness) {
    let client = h.client_with(h.config(), Credentials::new("unknown-ak", SK));
    let error = client
        .list_objects_v2(BUCKET, &ListObjectsV2Request::default())
        .await
        .expect_err("unknown key");
    assert_eq!(error.kind(), ErrorKind::InvalidCredentials, "{error}");
    assert_eq!(error.code(), Some("InvalidAccessKeyId"));
}

/// A provider that hands out its current keys and, on a refresh, its next ones (as a rotated
/// secret would), counting refreshes.
#[derive(Debug)]
struct Rotating {
    current: Mutex<Arc<Credentials>>,
    next: Mutex<Option<Credentials>>,
    refreshes: AtomicUsize,
}

impl Rotating {
    fn new(current: Credentials, next: Option<Credentials>) -> Arc<Self> {
        Arc::new(Self {
            current: Mutex::new(Arc::new(current)),
            next: Mutex::new(next),
            refreshes: AtomicUsize::new(0),
        })
    }
}

impl ProvideCredentials for Rotating {
    fn credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>> {
        let current = self.current.lock().expect("lock").clone();
        Box::pin(async move { Ok(current) })
    }

    fn refresh<'a>(
        &'a self,
        _rejected: &'a Arc<Credentials>,
    ) -> BoxFuture<'a, Result<Arc<Credentials>, CredentialsError>> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        if let Some(next) = self.next.lock().expect("lock").take() {
            *self.current.lock().expect("lock") = Arc::new(next);
        }
        self.credentials()
    }
}

async fn rejected_credentials_are_refreshed_and_the_request_sent_again(h: &Harness) {
    h.put("creds/object", b"x").await;
    // The backend rotates its key; the old one stops working.
    let rotated = Credentials::new("rotated-ak", "rotated-secret");
    h.emulator.set_credentials(vec![rotated.clone()]);
    let provider = Rotating::new(Credentials::new(AK, SK), Some(rotated));
    let client = OssClient::with_provider(h.config(), provider.clone()).expect("client");
    h.emulator.reset_stats();
    let meta = client
        .head_object(BUCKET, "creds/object")
        .await
        .expect("refreshed and retried");
    assert_eq!(meta.size, 1);
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.emulator.stats().count("HeadObject"),
        2,
        "rejected, then accepted"
    );
    // Later requests, also from clones, use the fresh keys without another refresh.
    client
        .clone()
        .head_object(BUCKET, "creds/object")
        .await
        .expect("fresh keys");
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);
}

async fn rejected_credentials_without_fresh_ones_fail_after_one_refresh(h: &Harness) {
    h.put("creds/stale", b"x").await;
    h.emulator
        .set_credentials(vec![Credentials::new("other-ak", "other-secret")]);
    let provider = Rotating::new(Credentials::new(AK, SK), None);
    let client = OssClient::with_provider(h.config(), provider.clone()).expect("client");
    h.emulator.reset_stats();
    let error = client
        .head_object(BUCKET, "creds/stale")
        .await
        .expect_err("nothing newer");
    assert!(error.is_credential_error(), "{error}");
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(h.emulator.stats().count("HeadObject"), 1, "not sent again");
}

async fn sts_token_is_sent_and_required(h: &Harness) {
    let sts = Credentials::new("sts-ak", "sts-secret").with_security_token("sts-token-value");
    h.emulator
        .set_credentials(vec![Credentials::new(AK, SK), sts.clone()]);
    let with_token = h.client_with(h.config(), sts);
    with_token
        .put_object(
            BUCKET,
            "sts/object",
            PutBody::from(&b"sts"[..]),
            &PutObjectOptions::default(),
        )
        .await
        .expect("STS credentials work");
    let without_token = h.client_with(h.config(), Credentials::new("sts-ak", "sts-secret"));
    let error = without_token
        .head_object(BUCKET, "sts/object")
        .await
        .expect_err("no token");
    assert!(error.is_credential_error(), "{error}");
    let wrong_token = h.client_with(
        h.config(),
        Credentials::new("sts-ak", "sts-secret").with_security_token("forged"),
    );
    let error = wrong_token
        .head_object(BUCKET, "sts/object")
        .await
        .expect_err("bad token");
    assert_eq!(error.code(), Some("InvalidSecurityToken"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Retries and faults

async fn retries_server_busy_then_succeeds(h: &Harness) {
    h.put("retry/busy", b"eventually").await;
    h.reset_counts();
    h.inject(
        FaultRule::new(
            "GetObject",
            Fault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
                qos_delay_ms: None,
            },
        )
        .times(2),
    );
    let bytes = h
        .get_bytes("retry/busy")
        .await
        .expect("third attempt succeeds");
    assert_eq!(&bytes[..], b"eventually");
    assert_eq!(h.requests("GetObject"), 3);
}

async fn retries_internal_error_on_put_with_bytes(h: &Harness) {
    h.reset_counts();
    h.inject(
        FaultRule::new(
            "PutObject",
            Fault::Error {
                status: 500,
                code: "InternalError".into(),
                qos_delay_ms: None,
            },
        )
        .times(1),
    );
    h.put("retry/put", b"replayed").await;
    assert_eq!(h.requests("PutObject"), 2);
    assert_eq!(
        &h.get_bytes("retry/put").await.expect("get")[..],
        b"replayed"
    );
}

async fn retries_after_connection_reset(h: &Harness) {
    h.put("retry/reset", b"after reset").await;
    h.reset_counts();
    h.inject(FaultRule::new("HeadObject", Fault::Reset).times(1));
    let meta = h
        .client()
        .head_object(BUCKET, "retry/reset")
        .await
        .expect("retried");
    assert_eq!(meta.size, 11);
    assert_eq!(h.requests("HeadObject"), 2);

    h.inject(FaultRule::new("PutObject", Fault::Reset).times(1));
    h.put("retry/reset-put", b"put after reset").await;
    assert_eq!(
        &h.get_bytes("retry/reset-put").await.expect("get")[..],
        b"put after reset"
    );
}

async fn gives_up_after_max_attempts(h: &Harness) {
    h.put("retry/down", b"x").await;
    h.reset_counts();
    h.inject(FaultRule::new(
        "HeadObject",
        Fault::Error {
            status: 500,
            code: "InternalError".into(),
            qos_delay_ms: None,
        },
    ));
    let error = h
        .client()
        .head_object(BUCKET, "retry/down")
        .await
        .expect_err("always failing");
    assert_eq!(error.kind(), ErrorKind::ServerError, "{error}");
    assert_eq!(error.code(), Some("InternalError"));
    assert!(error.request_id().is_some());
    assert_eq!(
        h.requests("HeadObject"),
        u64::from(fast_retries().max_attempts)
    );
}

async fn streamed_put_is_never_retried(h: &Harness) {
    h.reset_counts();
    h.inject(
        FaultRule::new(
            "PutObject",
            Fault::Error {
                status: 503,
                code: "ServiceUnavailable".into(),
                qos_delay_ms: None,
            },
        )
        .times(1),
    );
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"once"))]);
    let error = h
        .client()
        .put_object(
            BUCKET,
            "retry/stream",
            PutBody::from_stream(4, stream),
            &PutObjectOptions::default(),
        )
        .await
        .expect_err("no silent retry");
    assert_eq!(error.kind(), ErrorKind::ServerError, "{error}");
    assert!(
        error.is_retryable(),
        "the caller may retry with a fresh stream"
    );
    assert_eq!(h.requests("PutObject"), 1);
}

async fn throttling_honours_qos_delay(h: &Harness) {
    h.put("retry/throttled", b"slow down").await;
    h.reset_counts();
    let throttle = Fault::Error {
        status: 503,
        code: "DownloadTrafficRateLimitExceeded".into(),
        qos_delay_ms: Some(400),
    };
    let patient = h.client_with(
        h.config().with_retry(RetryPolicy {
            max_delay: Duration::from_secs(1),
            ..fast_retries()
        }),
        Credentials::new(AK, SK),
    );
    h.inject(FaultRule::new("GetObject", throttle.clone()).times(1));
    let started = Instant::now();
    let object = patient
        .get_object(BUCKET, "retry/throttled", &GetObjectOptions::default())
        .await
        .expect("retried");
    assert_eq!(
        &object.body.collect().await.expect("body")[..],
        b"slow down"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "waited only {:?}, OSS asked for 400 ms",
        started.elapsed()
    );
    assert_eq!(h.requests("GetObject"), 2);

    // OSS's pause is capped at the policy's longest delay (50 ms here), so it cannot hold a
    // copy past its deadline.
    h.reset_counts();
    h.inject(FaultRule::new("GetObject", throttle.clone()).times(1));
    let started = Instant::now();
    let bytes = h.get_bytes("retry/throttled").await.expect("retried");
    assert_eq!(&bytes[..], b"slow down");
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "waited {:?}, beyond the 50 ms cap",
        started.elapsed()
    );
    assert_eq!(h.requests("GetObject"), 2);

    let once = h.client_with(
        h.config()
            .with_retry(transfer::oss::config::DEFAULT_RETRY.no_retries()),
        Credentials::new(AK, SK),
    );
    h.inject(FaultRule::new("GetObject", throttle).times(1));
    let error = once
        .get_object(BUCKET, "retry/throttled", &GetObjectOptions::default())
        .await
        .expect_err("throttled");
    assert_eq!(error.kind(), ErrorKind::Throttled, "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_millis(400)));
    assert!(error.is_retryable());
}

async fn qps_limit_429_is_throttled(h: &Harness) {
    let once = h.client_with(
        h.config()
            .with_retry(transfer::oss::config::DEFAULT_RETRY.no_retries()),
        Credentials::new(AK, SK),
    );
    h.inject(
        FaultRule::new(
            "ListObjectsV2",
            Fault::Error {
                status: 429,
                code: "QpsLimitExceeded".into(),
                qos_delay_ms: None,
            },
        )
        .times(1),
    );
    let error = once
        .list_objects_v2(BUCKET, &ListObjectsV2Request::default())
        .await
        .expect_err("throttled");
    assert_eq!(error.kind(), ErrorKind::Throttled, "{error}");
}

async fn truncated_body_is_an_error_not_a_short_success(h: &Harness) {
    let body = data(200_000, 16);
    h.put("fault/truncated", &body).await;
    h.inject(
        FaultRule::new(
            "GetObject",
            Fault::Truncate {
                after_bytes: 50_000,
            },
        )
        .times(1),
    );
    let output = h
        .client()
        .get_object(BUCKET, "fault/truncated", &GetObjectOptions::default())
        .await
        .expect("headers arrive");
    let mut stream = output.body;
    let mut received = 0;
    let mut outcome = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => received += c.len(),
            Err(e) => {
                outcome = Some(e);
                break;
            }
        }
    }
    let error = outcome.expect("the stream must end with an error");
    assert_eq!(error.kind(), ErrorKind::TruncatedBody, "{error}");
    assert!(error.is_retryable());
    assert!(received <= 50_000, "received {received}");
    assert!(
        stream.next().await.is_none(),
        "the stream ends after the error"
    );
    // The next attempt (by the caller) reads the whole object.
    assert!(h.get_bytes("fault/truncated").await.expect("get") == body);
}

async fn crc_mismatch_on_download_is_detected(h: &Harness) {
    h.put("fault/crc", &data(10_000, 17)).await;
    h.inject(FaultRule::new("GetObject", Fault::CrcMismatch).times(1));
    let error = h.get_bytes("fault/crc").await.expect_err("wrong CRC");
    assert_eq!(error.kind(), ErrorKind::ChecksumMismatch, "{error}");
}

async fn slow_response_times_out(h: &Harness) {
    h.put("fault/slow", b"x").await;
    let impatient = h.client_with(
        h.config()
            .with_retry(transfer::oss::config::DEFAULT_RETRY.no_retries())
            .with_request_timeout(Duration::from_millis(200)),
        Credentials::new(AK, SK),
    );
    h.inject(FaultRule::new("HeadObject", Fault::Latency { ms: 2_000 }).times(1));
    let error = impatient
        .head_object(BUCKET, "fault/slow")
        .await
        .expect_err("too slow");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    h.inject(FaultRule::new("GetObject", Fault::Latency { ms: 2_000 }).times(1));
    let error = impatient
        .get_object(BUCKET, "fault/slow", &GetObjectOptions::default())
        .await
        .expect_err("too slow");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
}

async fn refused_connection_is_network_error(h: &Harness) {
    let addr = h.emulator.addr();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let config = path_style_config(format!("http://127.0.0.1:{port}"))
        .with_retry(transfer::oss::config::DEFAULT_RETRY.no_retries());
    let client = h.client_with(config, Credentials::new(AK, SK));
    let error = client
        .head_object(BUCKET, "k")
        .await
        .expect_err("nothing listens");
    assert_eq!(error.kind(), ErrorKind::Network, "{error}");
    assert!(error.is_retryable());
    assert_ne!(addr.port(), port);
}

// ---------------------------------------------------------------------------------------------
// The table: one test per case, each with its own backend.

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = Harness::start().await;
                super::$case(&harness).await;
            }
        )*
    };
}

mod oss_emulator_backend {
    use super::Harness;

    cases! {
        head_returns_typed_metadata,
        head_missing_object_is_not_found,
        missing_bucket_is_not_found,
        get_streams_whole_object,
        get_range_returns_requested_bytes,
        if_match_distinguishes_changed_from_missing,
        if_none_match_on_current_etag_is_not_modified,
        replaced_object_fails_the_pinned_ranged_get,
        put_returns_etag_and_verified_crc,
        put_streamed_body_round_trips,
        put_stream_shorter_than_declared_fails,
        empty_object_round_trips,
        delete_removes_object_and_is_idempotent,
        lists_odd_keys_across_pages,
        lists_with_delimiter_and_start_after,
        lists_empty_prefix_as_empty,
        odd_keys_round_trip_byte_exact,
        over_long_and_dot_segment_keys_are_refused,
        virtual_hosted_addressing_works,
        multipart_upload_round_trips,
        list_parts_pages_through_many_parts,
        aborted_upload_leaves_nothing_behind,
        undersized_part_fails_completion,
        archive_object_needs_restore,
        cold_archive_restore_takes_a_tier,
        wrong_secret_is_invalid_credentials,
        unknown_access_key_is_invalid_credentials,
        rejected_credentials_are_refreshed_and_the_request_sent_again,
        rejected_credentials_without_fresh_ones_fail_after_one_refresh,
        sts_token_is_sent_and_required,
        retries_server_busy_then_succeeds,
        retries_internal_error_on_put_with_bytes,
        retries_after_connection_reset,
        gives_up_after_max_attempts,
        streamed_put_is_never_retried,
        throttling_honours_qos_delay,
        qps_limit_429_is_throttled,
        truncated_body_is_an_error_not_a_short_success,
        crc_mismatch_on_download_is_detected,
        slow_response_times_out,
        refused_connection_is_network_error,
    }
}
