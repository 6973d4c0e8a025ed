//! Waiting for every object in S3 and verifying it: bytes by CRC-64, content headers, user
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
    let source = format!("oss://{src_bucket}/{}", encode_path(&object.key));
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
pub(super) type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// Lists the destination every 50 ms and records when each awaited key first appears with its
/// expected size; returns when all have, or at `deadline`.
pub(super) async fn watch_arrivals(
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
                    if u64::try_from(size).is_ok_and(|size| expected.get(key) == Some(&size)) {
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
