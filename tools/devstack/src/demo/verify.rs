//! Waiting for every object in the destination and verifying it: bytes by CRC-64, content headers, user
//! metadata and the replication marker.

use super::*;

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
    let content = ContentHeaders {
        content_type: get.content_type().map(str::to_owned),
        content_encoding: get.content_encoding().map(str::to_owned),
        content_disposition: get.content_disposition().map(str::to_owned),
        content_language: get.content_language().map(str::to_owned),
        cache_control: get.cache_control().map(str::to_owned),
        expires: get.expires_string().map(str::to_owned),
    };
    let meta: BTreeMap<String, String> = get
        .metadata()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let source = source_url("oss", src_bucket, &object.key);
    let marker = (source.as_str(), Some(uploaded.crc64));
    let mut problems = compare_attributes(uploaded, &content, &meta, marker, "x-amz-meta-");
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
    compare_bytes(uploaded, &crc, &mut problems);
    problems
}

/// Checks the OSS copy of `uploaded` (the S3 → OSS direction) as [`verify`] checks an S3 copy,
/// and also the CRC-64 OSS reports for what it stores.
pub async fn verify_in_oss(
    oss: &OssClient,
    dst_bucket: &str,
    src_bucket: &str,
    uploaded: &Uploaded,
) -> Vec<String> {
    let object = &uploaded.object;
    let get = match oss
        .get_object(
            dst_bucket,
            &object.key,
            &transfer::oss::GetObjectOptions::default(),
        )
        .await
    {
        Ok(get) => get,
        Err(err) => return vec![format!("GET failed: {err}")],
    };
    let source = source_url("s3", src_bucket, &object.key);
    let mut problems = compare_attributes(
        uploaded,
        &get.meta.content,
        &get.meta.user_metadata,
        (&source, None),
        "x-oss-meta-",
    );
    if get.meta.crc64 != Some(uploaded.crc64) {
        problems.push(format!(
            "x-oss-hash-crc64ecma: expected {}, got {:?}",
            uploaded.crc64, get.meta.crc64
        ));
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
    compare_bytes(uploaded, &crc, &mut problems);
    problems
}

/// The differences in content headers, user metadata (`meta`, names without `prefix`) and the
/// replication marker between a copy and what was uploaded. The marker names `source`, and
/// the source's CRC-64/XZ when the source reports one (`source_crc64`: OSS does, S3 does not).
fn compare_attributes(
    uploaded: &Uploaded,
    content: &ContentHeaders,
    meta: &BTreeMap<String, String>,
    (source, source_crc64): (&str, Option<u64>),
    prefix: &str,
) -> Vec<String> {
    let object = &uploaded.object;
    let mut problems = Vec::new();
    let want = &object.content;
    for (what, want, got) in [
        ("Content-Type", &want.content_type, &content.content_type),
        (
            "Content-Disposition",
            &want.content_disposition,
            &content.content_disposition,
        ),
        (
            "Content-Language",
            &want.content_language,
            &content.content_language,
        ),
        (
            "Content-Encoding",
            &want.content_encoding,
            &content.content_encoding,
        ),
        ("Cache-Control", &want.cache_control, &content.cache_control),
    ] {
        if want != got {
            problems.push(format!("{what}: expected {want:?}, got {got:?}"));
        }
    }
    let expires = |v: &Option<String>| v.as_deref().and_then(httpdate_secs);
    if expires(&want.expires) != expires(&content.expires) {
        problems.push(format!(
            "Expires: expected {:?}, got {:?}",
            want.expires, content.expires
        ));
    }
    for (name, value) in &object.user_metadata {
        let got = meta.get(&name.to_ascii_lowercase()).map(String::as_str);
        if got != Some(value.as_str()) {
            problems.push(format!("{prefix}{name}: expected {value:?}, got {got:?}"));
        }
    }
    for (name, want) in [
        (MARKER_SOURCE, Some(source.to_owned())),
        (MARKER_ETAG, Some(uploaded.etag.clone())),
        (MARKER_CRC64, source_crc64.map(|crc| crc.to_string())),
        (MARKER_SIZE, Some(object.size.to_string())),
    ] {
        let got = meta.get(name);
        if got != want.as_ref() {
            problems.push(format!(
                "marker {prefix}{name}: expected {want:?}, got {got:?}"
            ));
        }
    }
    problems
}

/// The differences in size and CRC-64 between the bytes read back (`crc`) and those uploaded.
fn compare_bytes(uploaded: &Uploaded, crc: &Crc64, problems: &mut Vec<String>) {
    let size = uploaded.object.size;
    if crc.len() != size {
        problems.push(format!("size: expected {size}, got {}", crc.len()));
    }
    if crc.value() != uploaded.crc64 {
        problems.push(format!(
            "CRC-64: expected {}, got {}",
            uploaded.crc64,
            crc.value()
        ));
    }
}

/// Seconds since the epoch of an HTTP date, for comparing `Expires` across formats.
fn httpdate_secs(value: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|d| d.timestamp())
        .or_else(|| value.trim().parse().ok())
}

/// When each key first showed up in the destination with its expected size.
pub(super) type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// Every key of an S3 bucket with its size.
pub(super) async fn list_s3(
    s3: aws_sdk_s3::Client,
    bucket: String,
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .set_continuation_token(token.take())
            .send()
            .await
            .context("ListObjectsV2")?;
        listed.extend(
            page.contents()
                .iter()
                .filter_map(|o| Some((o.key()?.to_owned(), u64::try_from(o.size()?).ok()?))),
        );
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(listed);
        }
    }
}

/// Every key of an OSS bucket with its size.
pub(super) async fn list_oss(oss: OssClient, bucket: String) -> anyhow::Result<Vec<(String, u64)>> {
    let mut listed = Vec::new();
    let mut request = transfer::oss::ListObjectsV2Request {
        max_keys: Some(1000),
        ..Default::default()
    };
    loop {
        let page = oss.list_objects_v2(&bucket, &request).await?;
        listed.extend(page.objects.into_iter().map(|o| (o.key, o.size)));
        match page.next_continuation_token {
            Some(token) if page.is_truncated => request.continuation_token = Some(token),
            _ => return Ok(listed),
        }
    }
}

/// Lists the destination (with `list`) every 50 ms and records when each awaited key first
/// appears with its expected size; returns when all have, or at `deadline`.
pub(super) async fn watch_arrivals<L, F>(
    list: L,
    expected: HashMap<String, u64>,
    arrivals: Arrivals,
    deadline: Instant,
) where
    L: Fn() -> F,
    F: Future<Output = anyhow::Result<Vec<(String, u64)>>>,
{
    loop {
        if let Ok(listed) = list().await {
            let now = Instant::now();
            let mut seen = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, size) in listed {
                if expected.get(&key) == Some(&size) {
                    seen.entry(key).or_insert(now);
                }
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

/// The uploads as the destination showed them.
pub(super) struct Arrived<'a> {
    /// From the first upload to the last arrival (or until now, when nothing arrived).
    pub(super) total_time: Duration,
    /// Upload completion to first sight, per object that arrived.
    pub(super) latencies: Vec<Duration>,
    /// The keys that never arrived.
    pub(super) missing: Vec<String>,
    /// The uploads that arrived, to verify.
    pub(super) to_verify: Vec<&'a Uploaded>,
}

/// Splits `uploaded` by what [`watch_arrivals`] saw, the uploads having started at `started`.
pub(super) fn arrived<'a>(
    uploaded: &'a [Uploaded],
    arrivals: &Arrivals,
    started: Instant,
) -> Arrived<'a> {
    let seen = arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let total_time = seen
        .values()
        .max()
        .map_or_else(|| started.elapsed(), |last| last.duration_since(started));
    let mut split = Arrived {
        total_time,
        latencies: Vec::new(),
        missing: Vec::new(),
        to_verify: Vec::new(),
    };
    for u in uploaded {
        match seen.get(&u.object.key) {
            Some(at) => {
                split
                    .latencies
                    .push(at.saturating_duration_since(u.completed_at));
                split.to_verify.push(u);
            }
            None => split.missing.push(u.object.key.clone()),
        }
    }
    split
}

/// Runs `check` on every upload, four at once: how many had no problem, and the problems of
/// the others.
pub(super) async fn check_all<'a, F, Fut>(
    uploads: Vec<&'a Uploaded>,
    check: F,
) -> (usize, Vec<Mismatch>)
where
    F: Fn(&'a Uploaded) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let results: Vec<(String, Vec<String>)> = futures::stream::iter(uploads)
        .map(|u| {
            let problems = check(u);
            async move { (u.object.key.clone(), problems.await) }
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
    (verified, mismatches)
}
