//! The demo: a realistic data set uploaded through the OSS emulator with the signed client,
//! waited for in S3, and verified object by object (bytes by CRC-64, content headers, user
//! metadata, the replication marker), ending in a summary table.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use transfer::crc64::Crc64;
use transfer::oss::signer::SignableRequest;
use transfer::oss::{
    CompletedPart, ContentHeaders, Credentials, OssClient, OssSigner, PutBody, PutObjectOptions,
};
use transfer::replicate::{MARKER_CRC64, MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE};

use crate::esm::EsmCounts;
use crate::stack::Stack;

const MIB: u64 = 1024 * 1024;

/// The key bytes the `oss2s3-src` marker keeps as they are; the rest is percent-encoded.
const MARKER_KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// What the demo uploads and how long it waits.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many objects (at least 4 gives every upload kind).
    pub objects: usize,
    /// The largest object, in bytes.
    pub max_size: u64,
    /// How long to wait for the last object to reach S3.
    pub timeout: Duration,
    /// Uploads in flight at once.
    pub upload_concurrency: usize,
    /// Seed of the object contents and sizes (the same seed gives the same data set).
    pub seed: u64,
}

impl Default for DemoOptions {
    /// 200 objects from 0 B to 64 MiB, ten minutes to replicate, four uploads at once.
    fn default() -> Self {
        Self {
            objects: 200,
            max_size: 64 * MIB,
            timeout: Duration::from_secs(600),
            upload_concurrency: 4,
            seed: 20_240_501,
        }
    }
}

/// How an object is written to OSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadKind {
    /// One PutObject.
    Put,
    /// InitiateMultipartUpload, UploadPart × n, CompleteMultipartUpload.
    Multipart {
        /// The part size in bytes (every part but the last).
        part_size: u64,
    },
    /// AppendObject `pieces` times (each append fires its own trigger event).
    Append {
        /// How many appends.
        pieces: u64,
    },
}

/// One object of the data set.
#[derive(Debug, Clone)]
pub struct DemoObject {
    /// The key, deliberately odd at times (spaces, `+`, `%`, Unicode).
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// Seed of its contents.
    pub seed: u64,
    /// How it is uploaded.
    pub kind: UploadKind,
    /// Content headers stored with it.
    pub content: ContentHeaders,
    /// User metadata (names as sent; OSS and S3 keep them lower-case).
    pub user_metadata: BTreeMap<String, String>,
}

impl DemoObject {
    /// The object's bytes (deterministic pseudo-random data).
    pub fn bytes(&self) -> Vec<u8> {
        let mut state = self.seed | 1;
        let mut out = Vec::with_capacity(self.size as usize + 8);
        while (out.len() as u64) < self.size {
            // xorshift64*: fast and good enough to defeat compression and dedup.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        out.truncate(self.size as usize);
        out
    }
}

/// A small deterministic random source for sizes and choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Key shapes: plain, nested, spaces, `+`, `%`, literal `%2B`, Unicode, emoji, punctuation.
const KEY_SHAPES: &[&str] = &[
    "photos/2024/05/IMG_{i}.jpg",
    "logs/app server {i}.log",
    "a+b/c+d {i}.bin",
    "percent/100% done {i}.txt",
    "percent/literal a%2Bb {i}",
    "unicode/文件-{i}.txt",
    "unicode/Ünïcödé Straße {i}.csv",
    "emoji/rocket 🚀 {i}.dat",
    "deep/a/b/c/d/e/f/{i}.json",
    "punct/key=({i}) & [x],y;z!'@$.txt",
    "tilde/~user/{i}.tar",
    "reports/Q2 (final) v{i}.pdf",
];

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or_default() {
        "jpg" => "image/jpeg",
        "txt" | "log" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv",
        "pdf" => "application/pdf",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

/// The data set: `options.objects` objects from 0 B to `options.max_size`, with an empty
/// object, one object of exactly the maximum size, a few multipart uploads (one of them also the
/// maximum size), one appendable object, and log-uniform sizes for the rest.
pub fn dataset(options: &DemoOptions) -> Vec<DemoObject> {
    let mut rng = Rng(options.seed);
    let max = options.max_size.max(1);
    let n = options.objects.max(1);
    let mut objects = Vec::with_capacity(n);
    let multipart_sizes: Vec<u64> = if n >= 50 {
        vec![max, max / 2 + 12_345, max * 3 / 8, (5 * MIB + 1).min(max)]
    } else if n >= 3 {
        vec![max]
    } else {
        Vec::new()
    };
    for i in 0..n {
        let shape = KEY_SHAPES[i % KEY_SHAPES.len()];
        let mut key = shape.replace("{i}", &format!("{i:03}"));
        let (size, kind) = if i == 0 {
            (0, UploadKind::Put)
        } else if i == 1 {
            (max, UploadKind::Put)
        } else if i == 2 && n >= 4 {
            key = format!("append/journal-{i:03}.log");
            (300 * 1024 + 7, UploadKind::Append { pieces: 3 })
        } else if let Some(&size) = multipart_sizes.get(i.wrapping_sub(3)) {
            let part_size = if size >= 32 * MIB { 8 * MIB } else { MIB };
            key = format!("multipart/{} part {i:03}.bin", size / MIB);
            (size, UploadKind::Multipart { part_size })
        } else {
            // Log-uniform between 1 B and max/8: mostly small objects, some large ones.
            let top = ((max / 8).max(2)) as f64;
            ((top.powf(rng.unit())) as u64, UploadKind::Put)
        };
        let mut content = ContentHeaders {
            content_type: Some(content_type(&key).to_owned()),
            ..ContentHeaders::default()
        };
        if i % 3 == 0 {
            content.content_disposition = Some(format!("attachment; filename=\"file-{i}.bin\""));
        }
        if i % 5 == 0 {
            content.cache_control = Some("public, max-age=3600".into());
        }
        if i % 7 == 0 {
            content.content_language = Some("en-US".into());
        }
        if i % 11 == 0 {
            content.content_encoding = Some("gzip".into());
        }
        if i % 13 == 0 {
            content.expires = Some("Thu, 01 Jan 2037 00:00:00 GMT".into());
        }
        let mut user_metadata = BTreeMap::from([
            ("origin".to_owned(), "devstack-demo".to_owned()),
            ("index".to_owned(), i.to_string()),
        ]);
        if i % 4 == 0 {
            user_metadata.insert("Camera-Model".into(), "Model X 100".into());
        }
        objects.push(DemoObject {
            key,
            size,
            seed: options.seed ^ (i as u64).wrapping_mul(0x9E37_79B9),
            kind,
            content,
            user_metadata,
        });
    }
    objects
}

/// An uploaded object, as the source reports it afterwards.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The object.
    pub object: DemoObject,
    /// The source ETag without quotes.
    pub etag: String,
    /// The CRC-64/XZ of the bytes uploaded.
    pub crc64: u64,
    /// When the last upload request returned (the event that makes the object what it is).
    pub completed_at: Instant,
}

/// Uploads `object` with the signed client and HEADs it back.
pub async fn upload(
    oss: &OssClient,
    appender: &Appender,
    bucket: &str,
    object: &DemoObject,
) -> anyhow::Result<Uploaded> {
    // Generating tens of MiB is CPU work: keep it off the async workers (the arrival watcher
    // must keep its 50 ms rhythm).
    let generate = object.clone();
    let (data, crc64) = tokio::task::spawn_blocking(move || {
        let data = generate.bytes();
        let crc64 = transfer::crc64::checksum(&data);
        (data, crc64)
    })
    .await?;
    let options = PutObjectOptions {
        content: object.content.clone(),
        user_metadata: object.user_metadata.clone(),
        storage_class: None,
    };
    let key = &object.key;
    match object.kind {
        UploadKind::Put => {
            oss.put_object(bucket, key, PutBody::from(data), &options)
                .await
                .with_context(|| format!("PutObject {key}"))?;
        }
        UploadKind::Multipart { part_size } => {
            let upload_id = oss
                .initiate_multipart_upload(bucket, key, &options)
                .await
                .with_context(|| format!("InitiateMultipartUpload {key}"))?;
            let mut parts = Vec::new();
            for (n, chunk) in data.chunks(part_size as usize).enumerate() {
                let part_number = n as u32 + 1;
                let out = oss
                    .upload_part(
                        bucket,
                        key,
                        &upload_id,
                        part_number,
                        PutBody::from(chunk.to_vec()),
                    )
                    .await
                    .with_context(|| format!("UploadPart {part_number} of {key}"))?;
                parts.push(CompletedPart {
                    part_number,
                    etag: out.etag,
                });
            }
            oss.complete_multipart_upload(bucket, key, &upload_id, &parts)
                .await
                .with_context(|| format!("CompleteMultipartUpload {key}"))?;
        }
        UploadKind::Append { pieces } => {
            let piece = (data.len() as u64).div_ceil(pieces.max(1)).max(1) as usize;
            let mut position = 0;
            for chunk in data.chunks(piece) {
                let first = position == 0;
                position = appender
                    .append(
                        bucket,
                        key,
                        position,
                        chunk.to_vec(),
                        first.then_some(object),
                    )
                    .await
                    .with_context(|| format!("AppendObject {key} at {position}"))?;
            }
        }
    }
    let completed_at = Instant::now();
    let meta = oss
        .head_object(bucket, key)
        .await
        .with_context(|| format!("HeadObject {key}"))?;
    if meta.crc64.is_some_and(|c| c != crc64) || meta.size != object.size {
        bail!("the emulator holds other bytes for {key} than were uploaded");
    }
    Ok(Uploaded {
        object: object.clone(),
        etag: meta.etag.trim_matches('"').to_owned(),
        crc64,
        completed_at,
    })
}

/// AppendObject, which [`OssClient`] does not offer: a request signed with [`OssSigner`].
#[derive(Debug, Clone)]
pub struct Appender {
    http: reqwest::Client,
    endpoint: String,
    signer: OssSigner,
    credentials: Credentials,
}

impl Appender {
    /// An appender for the path-style endpoint `endpoint`.
    pub fn new(endpoint: &str, region: &str, credentials: Credentials) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            signer: OssSigner::new(region),
            credentials,
        }
    }

    /// `POST /<bucket>/<key>?append&position=<position>`; returns the next position. The first
    /// append (`headers`) sets the content headers and user metadata.
    pub async fn append(
        &self,
        bucket: &str,
        key: &str,
        position: u64,
        body: Vec<u8>,
        headers: Option<&DemoObject>,
    ) -> anyhow::Result<u64> {
        let mut map = http::HeaderMap::new();
        if let Some(object) = headers {
            let c = &object.content;
            for (name, value) in [
                ("content-type", &c.content_type),
                ("content-disposition", &c.content_disposition),
                ("content-language", &c.content_language),
                ("content-encoding", &c.content_encoding),
                ("cache-control", &c.cache_control),
                ("expires", &c.expires),
            ] {
                if let Some(value) = value {
                    map.insert(name, value.parse()?);
                }
            }
            for (name, value) in &object.user_metadata {
                map.insert(
                    http::HeaderName::try_from(format!(
                        "x-oss-meta-{}",
                        name.to_ascii_lowercase()
                    ))?,
                    value.parse()?,
                );
            }
        }
        let query = [
            ("append".to_owned(), String::new()),
            ("position".to_owned(), position.to_string()),
        ];
        let empty = http::HeaderMap::new();
        let signable = SignableRequest {
            method: "POST",
            bucket: Some(bucket),
            key: Some(key),
            query: &query,
            headers: &empty,
        };
        self.signer.sign(
            &self.credentials,
            signable,
            &mut map,
            &[],
            chrono::Utc::now(),
        );
        let url = format!(
            "{}/{bucket}/{}?append&position={position}",
            self.endpoint,
            utf8_percent_encode(key, MARKER_KEY_SET)
        );
        let response = self.http.post(url).headers(map).body(body).send().await?;
        let status = response.status();
        let next = response
            .headers()
            .get("x-oss-next-append-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if !status.is_success() {
            bail!(
                "AppendObject answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        next.context("AppendObject answer without x-oss-next-append-position")
    }
}

/// What was wrong with one replicated object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The key.
    pub key: String,
    /// What differs.
    pub problems: Vec<String>,
}

/// Checks the S3 copy of `uploaded`: size, bytes (CRC-64 of the streamed GET), content headers,
/// user metadata and the marker. Returns every difference found.
pub async fn verify(
    s3: &aws_sdk_s3::Client,
    dst_bucket: &str,
    src_bucket: &str,
    uploaded: &Uploaded,
) -> Vec<String> {
    let object = &uploaded.object;
    let mut problems = Vec::new();
    let get = match s3
        .get_object()
        .bucket(dst_bucket)
        .key(&object.key)
        .send()
        .await
    {
        Ok(get) => get,
        Err(err) => return vec![format!("GET failed: {}", aws_sdk_s3::Error::from(err))],
    };
    let mut check = |what: &str, want: Option<&str>, got: Option<&str>| {
        if want != got {
            problems.push(format!("{what}: expected {want:?}, got {got:?}"));
        }
    };
    let c = &object.content;
    check(
        "Content-Type",
        c.content_type.as_deref(),
        get.content_type(),
    );
    check(
        "Content-Disposition",
        c.content_disposition.as_deref(),
        get.content_disposition(),
    );
    check(
        "Content-Language",
        c.content_language.as_deref(),
        get.content_language(),
    );
    check(
        "Content-Encoding",
        c.content_encoding.as_deref(),
        get.content_encoding(),
    );
    check(
        "Cache-Control",
        c.cache_control.as_deref(),
        get.cache_control(),
    );
    let expires = |v: Option<&str>| v.and_then(httpdate_secs);
    if expires(c.expires.as_deref()) != expires(get.expires_string()) {
        problems.push(format!(
            "Expires: expected {:?}, got {:?}",
            c.expires,
            get.expires_string()
        ));
    }
    let meta = get.metadata().cloned().unwrap_or_default();
    for (name, value) in &object.user_metadata {
        let got = meta.get(&name.to_ascii_lowercase()).map(String::as_str);
        if got != Some(value.as_str()) {
            problems.push(format!(
                "x-amz-meta-{name}: expected {value:?}, got {got:?}"
            ));
        }
    }
    let source = format!(
        "oss://{src_bucket}/{}",
        utf8_percent_encode(&object.key, MARKER_KEY_SET)
    );
    for (name, want) in [
        (MARKER_SOURCE, source),
        (MARKER_ETAG, uploaded.etag.clone()),
        (MARKER_CRC64, uploaded.crc64.to_string()),
        (MARKER_SIZE, object.size.to_string()),
    ] {
        let got = meta.get(name).map(String::as_str);
        if got != Some(want.as_str()) {
            problems.push(format!(
                "marker x-amz-meta-{name}: expected {want:?}, got {got:?}"
            ));
        }
    }
    let mut crc = Crc64::new();
    let mut body = get.body;
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => crc.update(&chunk),
            Ok(None) => break,
            Err(err) => {
                problems.push(format!("GET body failed: {err}"));
                return problems;
            }
        }
    }
    if crc.len() != object.size {
        problems.push(format!("size: expected {}, got {}", object.size, crc.len()));
    }
    if crc.value() != uploaded.crc64 {
        problems.push(format!(
            "CRC-64: expected {}, got {}",
            uploaded.crc64,
            crc.value()
        ));
    }
    problems
}

/// Seconds since the epoch of an HTTP date, for comparing `Expires` across formats.
fn httpdate_secs(value: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|d| d.timestamp())
        .or_else(|| value.trim().parse().ok())
}

/// When each key first showed up in S3 with its expected size.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// Lists the destination every 50 ms and records when each awaited key first appears with its
/// expected size; returns when all have, or at `deadline`.
async fn watch_arrivals(
    s3: aws_sdk_s3::Client,
    bucket: String,
    expected: HashMap<String, u64>,
    arrivals: Arrivals,
    deadline: Instant,
) {
    loop {
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(&bucket)
                .set_continuation_token(token.take())
                .send()
                .await;
            let Ok(page) = page else { break };
            let now = Instant::now();
            {
                let mut seen = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
                for object in page.contents() {
                    let (Some(key), Some(size)) = (object.key(), object.size()) else {
                        continue;
                    };
                    if expected.get(key) == Some(&(size as u64)) {
                        seen.entry(key.to_owned()).or_insert(now);
                    }
                }
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let done = arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            >= expected.len();
        if done || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts from the replicator's EMF metric lines in its logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionMetrics {
    /// `ObjectsReplicated`.
    pub replicated: u64,
    /// `ObjectsSkipped` (e.g. an event for an object already copied).
    pub skipped: u64,
    /// `Failures` (each retried or dead-lettered attempt).
    pub failures: u64,
    /// `ReplicationLatencyMs` of every copy: from the OSS event's time to the copy's completion.
    pub latencies: Vec<Duration>,
}

/// Sums the EMF documents (`{"_aws":…}` lines) in the function logs.
pub fn function_metrics(logs: &[std::path::PathBuf]) -> FunctionMetrics {
    let mut metrics = FunctionMetrics::default();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if doc.get("_aws").is_none() {
                continue;
            }
            let n = |name: &str| {
                doc.get(name)
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(0.0) as u64
            };
            metrics.replicated += n("ObjectsReplicated");
            metrics.skipped += n("ObjectsSkipped");
            metrics.failures += n("Failures");
            if let Some(ms) = doc
                .get("ReplicationLatencyMs")
                .and_then(serde_json::Value::as_f64)
            {
                metrics.latencies.push(Duration::from_millis(ms as u64));
            }
        }
    }
    metrics
}

/// The outcome of a demo run.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Objects uploaded.
    pub objects: usize,
    /// Objects that reached S3 and passed verification.
    pub verified: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Time spent uploading.
    pub upload_time: Duration,
    /// From the first upload to the last object's arrival in S3.
    pub total_time: Duration,
    /// Upload completion to first sight in S3, per object that arrived.
    pub latencies: Vec<Duration>,
    /// Objects that never arrived within the timeout.
    pub missing: Vec<String>,
    /// Objects that arrived but differ.
    pub mismatches: Vec<Mismatch>,
    /// The replicator's own counts.
    pub function: FunctionMetrics,
    /// The event source mapping's counts.
    pub esm: EsmCounts,
    /// Messages in the DLQ (visible + in flight).
    pub dlq_depth: u64,
    /// Messages left in the task queue (visible + in flight).
    pub queue_depth: u64,
}

impl DemoReport {
    /// Every object arrived and verified, and nothing is dead-lettered.
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.mismatches.is_empty()
            && self.verified == self.objects
            && self.dlq_depth == 0
    }

    /// The `p`-th percentile of the observed latencies (nearest rank), if any object arrived.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies, p)
    }
}

/// The `p`-th percentile of `values` (nearest rank).
pub fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = self.bytes as f64 / MIB as f64;
        let throughput = mib / self.total_time.as_secs_f64().max(0.001);
        let rows = [
            (
                "objects",
                format!("{} uploaded, {} verified", self.objects, self.verified),
            ),
            ("bytes", format!("{mib:.1} MiB")),
            ("upload time", secs(Some(self.upload_time))),
            (
                "end to end",
                format!(
                    "{} (first upload to last object in S3)",
                    secs(Some(self.total_time))
                ),
            ),
            ("throughput", format!("{throughput:.1} MiB/s")),
            (
                "latency p50/p95/p99",
                format!(
                    "{} / {} / {}  (max {}; OSS event -> copy done, per replicator)",
                    secs(percentile(&self.function.latencies, 50.0)),
                    secs(percentile(&self.function.latencies, 95.0)),
                    secs(percentile(&self.function.latencies, 99.0)),
                    secs(percentile(&self.function.latencies, 100.0))
                ),
            ),
            (
                "observed p50/p95/p99",
                format!(
                    "{} / {} / {}  (max {}; upload done -> listed in S3)",
                    secs(self.percentile(50.0)),
                    secs(self.percentile(95.0)),
                    secs(self.percentile(99.0)),
                    secs(self.percentile(100.0))
                ),
            ),
            (
                "replicated",
                format!(
                    "{} copies written by the replicator",
                    self.function.replicated
                ),
            ),
            (
                "skipped",
                format!(
                    "{} (already replicated: duplicate or superseded events)",
                    self.function.skipped
                ),
            ),
            (
                "failed",
                format!(
                    "{} missing, {} mismatched, {} failed attempts (retried)",
                    self.missing.len(),
                    self.mismatches.len(),
                    self.function.failures
                ),
            ),
            ("DLQ", format!("{} messages", self.dlq_depth)),
            ("task queue left", format!("{} messages", self.queue_depth)),
            (
                "event source mapping",
                format!(
                    "{} invocations, {} messages received, {} deleted, {} batch item failures, {} failed invocations",
                    self.esm.invocations,
                    self.esm.received,
                    self.esm.deleted,
                    self.esm.items_failed,
                    self.esm.batches_failed
                ),
            ),
            (
                "result",
                if self.passed() {
                    "PASS".to_owned()
                } else {
                    "FAIL".to_owned()
                },
            ),
        ];
        let width = rows
            .iter()
            .map(|(_, value)| value.chars().count())
            .max()
            .unwrap_or(0);
        let line = format!("+{}+{}+", "-".repeat(22), "-".repeat(width + 2));
        writeln!(f, "{line}")?;
        writeln!(f, "| {:<20} | {:<width$} |", "oss2s3 demo", "summary")?;
        writeln!(f, "{line}")?;
        for (name, value) in &rows {
            writeln!(f, "| {name:<20} | {value:<width$} |")?;
        }
        writeln!(f, "{line}")?;
        for key in self.missing.iter().take(20) {
            writeln!(f, "missing: {key}")?;
        }
        for mismatch in self.mismatches.iter().take(20) {
            writeln!(
                f,
                "mismatch: {}: {}",
                mismatch.key,
                mismatch.problems.join("; ")
            )?;
        }
        Ok(())
    }
}

/// Runs the demo against `stack`: upload, wait, verify, report.
pub async fn run(stack: &Stack, options: &DemoOptions) -> anyhow::Result<DemoReport> {
    let objects = dataset(options);
    let config = stack.config();
    let bucket = config.oss_bucket.clone();
    let oss = stack.oss_client()?;
    let appender = Appender::new(
        stack.oss_endpoint(),
        &config.oss_region,
        Credentials::new(&config.oss_access_key_id, &config.oss_access_key_secret),
    );
    let expected: HashMap<String, u64> = objects.iter().map(|o| (o.key.clone(), o.size)).collect();
    if expected.len() != objects.len() {
        bail!("the data set has duplicate keys");
    }
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    let started = Instant::now();
    let deadline = started + options.timeout;
    let arrivals = Arrivals::default();
    let watcher = tokio::spawn(watch_arrivals(
        stack.s3().clone(),
        config.dst_bucket.clone(),
        expected,
        arrivals.clone(),
        deadline,
    ));

    eprintln!(
        "demo: uploading {} objects ({:.1} MiB) to oss://{bucket} through the emulator",
        objects.len(),
        bytes as f64 / MIB as f64
    );
    let uploaded: Vec<Uploaded> = futures::stream::iter(objects.iter())
        .map(|o| upload(&oss, &appender, &bucket, o))
        .buffer_unordered(options.upload_concurrency.max(1))
        .try_collect()
        .await?;
    let upload_time = started.elapsed();
    eprintln!(
        "demo: uploads done in {:.1} s; waiting for S3 (timeout {:?})",
        upload_time.as_secs_f64(),
        options.timeout
    );
    let _ = watcher.await;
    let arrived = arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let total_time = arrived
        .values()
        .max()
        .map_or_else(|| started.elapsed(), |last| last.duration_since(started));

    eprintln!(
        "demo: verifying {} objects in s3://{}",
        arrived.len(),
        config.dst_bucket
    );
    let mut latencies = Vec::new();
    let mut missing = Vec::new();
    let mut to_verify = Vec::new();
    for u in &uploaded {
        match arrived.get(&u.object.key) {
            Some(at) => {
                latencies.push(at.saturating_duration_since(u.completed_at));
                to_verify.push(u);
            }
            None => missing.push(u.object.key.clone()),
        }
    }
    let s3 = stack.s3();
    let bucket = &bucket;
    let results: Vec<(String, Vec<String>)> = futures::stream::iter(to_verify)
        .map(|u| async move {
            (
                u.object.key.clone(),
                verify(s3, &config.dst_bucket, bucket, u).await,
            )
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let verified = results.iter().filter(|(_, p)| p.is_empty()).count();
    let mismatches = results
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(key, problems)| Mismatch { key, problems })
        .collect();
    let (dlq_visible, dlq_in_flight) = stack.queue_depth(stack.dlq_url()).await?;
    let (queue_visible, queue_in_flight) = stack.queue_depth(stack.queue_url()).await?;
    Ok(DemoReport {
        objects: uploaded.len(),
        verified,
        bytes,
        upload_time,
        total_time,
        latencies,
        missing,
        mismatches,
        function: function_metrics(&stack.function_logs()),
        esm: stack.esm_counts(),
        dlq_depth: dlq_visible + dlq_in_flight,
        queue_depth: queue_visible + queue_in_flight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_data_set_covers_every_kind_and_the_size_range() {
        let objects = dataset(&DemoOptions::default());
        assert_eq!(objects.len(), 200);
        assert_eq!(objects.iter().map(|o| o.size).min(), Some(0));
        assert_eq!(objects.iter().map(|o| o.size).max(), Some(64 * MIB));
        let multipart = objects
            .iter()
            .filter(|o| matches!(o.kind, UploadKind::Multipart { .. }))
            .count();
        assert!(multipart >= 3, "{multipart}");
        assert_eq!(
            objects
                .iter()
                .filter(|o| matches!(o.kind, UploadKind::Append { .. }))
                .count(),
            1
        );
        assert!(objects.iter().any(|o| o.key.contains(' ')));
        assert!(objects.iter().any(|o| o.key.contains('+')));
        assert!(objects.iter().any(|o| o.key.contains('%')));
        assert!(objects.iter().any(|o| !o.key.is_ascii()));
        let keys: std::collections::HashSet<_> = objects.iter().map(|o| &o.key).collect();
        assert_eq!(keys.len(), objects.len(), "keys are unique");
    }

    #[test]
    fn object_bytes_are_deterministic_and_sized() {
        let objects = dataset(&DemoOptions {
            objects: 10,
            max_size: MIB,
            ..DemoOptions::default()
        });
        for o in &objects {
            assert_eq!(o.bytes().len() as u64, o.size);
            assert_eq!(o.bytes(), o.bytes());
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let report = DemoReport {
            objects: 0,
            verified: 0,
            bytes: 0,
            upload_time: Duration::ZERO,
            total_time: Duration::ZERO,
            latencies: (1..=100).map(Duration::from_millis).collect(),
            missing: Vec::new(),
            mismatches: Vec::new(),
            function: FunctionMetrics::default(),
            esm: EsmCounts::default(),
            dlq_depth: 0,
            queue_depth: 0,
        };
        assert_eq!(report.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(report.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(report.percentile(100.0), Some(Duration::from_millis(100)));
    }
}
