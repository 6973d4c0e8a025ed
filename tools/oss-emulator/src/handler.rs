//! Request handling: addressing, authentication, fault injection and the OSS operations.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use percent_encoding::percent_decode_str;
use transfer::oss::Credentials;
use transfer::oss::signer::{self, Authorization, SignableRequest};

use crate::error::OssError;
use crate::faults::{Fault, FaultSet, lock};
use crate::notify::{Notifier, ObjectEvent};
use crate::server::ConnControl;
use crate::stats::Stats;
use crate::store::{Blob, Ingested, Object, ObjectMeta, Part, RestoreState, Store, Upload};
use crate::xml::{self, encode_value, escape};

/// The longest key OSS accepts, in bytes.
const MAX_KEY_LEN: usize = 1023;
/// OSS's minimum size of every part but the last.
const MIN_PART_SIZE: u64 = 100 * 1024;
/// The largest part number.
const MAX_PART_NUMBER: u32 = 10_000;
/// How far `x-oss-date` may be from the server's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// The largest XML request body read into memory.
const MAX_XML_BODY: usize = 8 << 20;
/// The storage classes OSS knows.
const STORAGE_CLASSES: [&str; 5] = [
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];
/// Request headers stored with an object and returned on GET/HEAD.
const CONTENT_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) region: String,
    pub(crate) credentials: RwLock<Vec<Credentials>>,
    pub(crate) store: Store,
    pub(crate) faults: FaultSet,
    pub(crate) stats: Arc<Mutex<Stats>>,
    pub(crate) notifier: Notifier,
    pub(crate) restore_delay: Mutex<Duration>,
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh 24-hex-digit request ID, shaped like OSS's.
pub(crate) fn new_request_id() -> String {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:08X}{:016X}", rand::random::<u32>(), n)
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn http_date(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

fn iso_time(ms: i64) -> String {
    ms_to_time(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn is_archived(storage_class: &str) -> bool {
    matches!(storage_class, "Archive" | "ColdArchive" | "DeepColdArchive")
}

/// One parsed request.
struct Ctx {
    request_id: String,
    method: Method,
    bucket: Option<String>,
    key: Option<String>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    peer: SocketAddr,
    host: String,
}

impl Ctx {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn url_encoding(&self) -> bool {
        self.q("encoding-type") == Some("url")
    }

    fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or_default()
    }

    fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }

    fn event(&self, name: &str, meta: &ObjectMeta, delta: i64) -> ObjectEvent {
        ObjectEvent {
            event_name: name.to_owned(),
            bucket: self.bucket().to_owned(),
            key: meta.key.clone(),
            size: meta.size,
            delta_size: delta,
            etag: meta.etag.clone(),
            mime_type: Some(meta.content_type()),
            request_id: self.request_id.clone(),
            source_ip: self.peer.ip().to_string(),
            time: Utc::now(),
        }
    }
}

/// The operation name a request maps to (for stats and fault rules).
fn operation(method: &Method, bucket: bool, key: bool, ctx: &Ctx) -> &'static str {
    if !bucket {
        return "ListBuckets";
    }
    if !key {
        return match *method {
            Method::GET if ctx.q("list-type") == Some("2") => "ListObjectsV2",
            Method::GET if ctx.has("uploads") => "ListMultipartUploads",
            Method::GET if ctx.has("location") => "GetBucketLocation",
            Method::GET if ctx.has("bucketInfo") => "GetBucketInfo",
            Method::GET => "ListObjects",
            Method::POST if ctx.has("delete") => "DeleteMultipleObjects",
            _ => "UnsupportedBucketOperation",
        };
    }
    match *method {
        Method::PUT if ctx.has("symlink") => "PutSymlink",
        Method::PUT if ctx.has("uploadId") && ctx.headers.contains_key("x-oss-copy-source") => {
            "UploadPartCopy"
        }
        Method::PUT if ctx.has("uploadId") => "UploadPart",
        Method::PUT if ctx.headers.contains_key("x-oss-copy-source") => "CopyObject",
        Method::PUT => "PutObject",
        Method::GET if ctx.has("symlink") => "GetSymlink",
        Method::GET if ctx.has("uploadId") => "ListParts",
        Method::GET if ctx.has("objectMeta") => "GetObjectMeta",
        Method::GET => "GetObject",
        Method::HEAD if ctx.has("objectMeta") => "GetObjectMeta",
        Method::HEAD => "HeadObject",
        Method::POST if ctx.has("uploads") => "InitiateMultipartUpload",
        Method::POST if ctx.has("uploadId") => "CompleteMultipartUpload",
        Method::POST if ctx.has("append") => "AppendObject",
        Method::POST if ctx.has("restore") => "RestoreObject",
        Method::DELETE if ctx.has("uploadId") => "AbortMultipartUpload",
        Method::DELETE => "DeleteObject",
        _ => "UnsupportedObjectOperation",
    }
}

fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

/// Entry point for every request on the listener.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    control: Arc<ConnControl>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let request_id = new_request_id();
    let head = req.method() == Method::HEAD;
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let mut response = match route(&shared, &control, peer, &request_id, &host, req).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(code = %error.code, status = %error.status, "request failed");
            error.into_response(&request_id, &host, head)
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = request_id.parse() {
        headers.insert("x-oss-request-id", v);
    }
    headers.insert("server", http::HeaderValue::from_static("AliyunOSS"));
    if let Ok(v) = httpdate::fmt_http_date(std::time::SystemTime::now()).parse() {
        headers.insert("date", v);
    }
    if !head
        && let Some(len) = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    {
        lock(&shared.stats).bytes_out += len;
    }
    response
}

/// Splits the request target into bucket and key, path-style or virtual-hosted.
fn address(
    shared: &Shared,
    host: &str,
    path: &str,
) -> Result<(Option<String>, Option<String>), OssError> {
    let hostname = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let is_ip = hostname
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .is_ok();
    let decode = |raw: &str| -> Result<String, OssError> {
        let bytes: Vec<u8> = percent_decode_str(raw).collect();
        String::from_utf8(bytes).map_err(|_| {
            OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidObjectName",
                "The object name is not valid UTF-8.",
            )
        })
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    if !is_ip
        && let Some((label, _)) = hostname.split_once('.')
        && shared.store.has_bucket(label)
    {
        let key = decode(path)?;
        return Ok((Some(label.to_owned()), (!key.is_empty()).then_some(key)));
    }
    if path.is_empty() {
        return Ok((None, None));
    }
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let bucket = decode(bucket)?;
    let key = decode(key)?;
    Ok((Some(bucket), (!key.is_empty()).then_some(key)))
}

async fn route(
    shared: &Arc<Shared>,
    control: &Arc<ConnControl>,
    peer: SocketAddr,
    request_id: &str,
    host: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, OssError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let (bucket, key) = address(shared, host, &path)?;
    if bucket.as_deref() == Some("_emulator") {
        return Ok(
            crate::admin::handle(shared, &parts.method, key.as_deref().unwrap_or(""), body).await,
        );
    }
    let ctx = Ctx {
        request_id: request_id.to_owned(),
        method: parts.method.clone(),
        bucket,
        key,
        query: parse_query(parts.uri.query()),
        headers: parts.headers,
        peer,
        host: host.to_owned(),
    };
    let op = operation(&ctx.method, ctx.bucket.is_some(), ctx.key.is_some(), &ctx);
    *lock(&shared.stats)
        .requests
        .entry(op.to_owned())
        .or_default() += 1;
    tracing::debug!(op, bucket = ctx.bucket(), key = ctx.key(), "request");

    authenticate(shared, &ctx)?;
    if let Some(key) = &ctx.key {
        if key.len() > MAX_KEY_LEN {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "KeyTooLong",
                format!(
                    "The object key is {} bytes long; at most {MAX_KEY_LEN} are allowed.",
                    key.len()
                ),
            ));
        }
        if key.starts_with('/') || key.starts_with('\\') {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidObjectName",
                "The object name must not start with '/' or '\\'.",
            ));
        }
    }
    if ctx.bucket.is_none() {
        return Err(OssError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "The emulator does not list buckets.",
        ));
    }
    if !shared.store.has_bucket(ctx.bucket()) {
        return Err(OssError::no_such_bucket());
    }

    let fault = shared.faults.pick(op, ctx.key.as_deref());
    if let Some(fault) = &fault {
        lock(&shared.stats).faults_injected += 1;
        tracing::warn!(op, key = ctx.key(), ?fault, "injecting fault");
        match fault {
            Fault::Error {
                status,
                code,
                qos_delay_ms,
            } => {
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut error = OssError::custom(status, code.clone(), "Injected fault.");
                if let Some(ms) = qos_delay_ms {
                    error = error.with_header("x-oss-qos-delay-time", ms.to_string());
                }
                return Err(error);
            }
            Fault::Latency { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Fault::Reset => {
                control.reset();
                // The connection task drops this request with its connection.
                std::future::pending::<()>().await;
            }
            _ => {}
        }
    }

    let mut response = dispatch(shared, op, &ctx, body, fault.as_ref()).await?;
    match fault {
        Some(Fault::Truncate { after_bytes }) => {
            let (parts, body) = response.into_parts();
            response = Response::from_parts(parts, truncate(body, after_bytes));
        }
        Some(Fault::CrcMismatch) => {
            if let Some(crc) = response
                .headers()
                .get("x-oss-hash-crc64ecma")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            {
                response
                    .headers_mut()
                    .insert("x-oss-hash-crc64ecma", (crc ^ 0x5A5A).into());
            }
        }
        Some(Fault::Replace) => replace_object(shared, ctx.bucket(), ctx.key()).await,
        _ => {}
    }
    Ok(response)
}

/// A body that sends `after_bytes` bytes, then fails, which makes the server close the
/// connection before the announced Content-Length is reached.
fn truncate(body: Body, after_bytes: u64) -> Body {
    let head = body
        .into_data_stream()
        .scan(after_bytes, |remaining, chunk| {
            let out = match chunk {
                Ok(chunk) if *remaining > 0 => {
                    let take = (*remaining).min(chunk.len() as u64) as usize;
                    *remaining -= take as u64;
                    Some(Ok::<Bytes, std::io::Error>(chunk.slice(..take)))
                }
                _ => None,
            };
            futures::future::ready(out)
        });
    let tail = futures::stream::once(async {
        // Let the connection flush what was sent before it is torn down.
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected truncation",
        ))
    });
    Body::from_stream(head.chain(tail))
}

/// Overwrites an object with different bytes of the same size (fault `replace`).
async fn replace_object(shared: &Shared, bucket: &str, key: &str) {
    let Some(object) = shared.store.get(bucket, key) else {
        return;
    };
    if object.meta.symlink_target.is_some() {
        return;
    }
    let Ok(ingested) = shared
        .store
        .concat(
            bucket,
            std::slice::from_ref(&object.blob),
            Some(|b: u8| b.wrapping_add(1)),
        )
        .await
    else {
        return;
    };
    let mut meta = object.meta.clone();
    meta.etag = hex::encode_upper(ingested.md5);
    meta.crc64 = ingested.crc64;
    meta.object_type = "Normal".to_owned();
    meta.last_modified_ms = now_ms();
    tracing::warn!(key, etag = meta.etag, "fault replaced the object");
    let _ = shared.store.put(bucket, meta, ingested.blob);
}

fn authenticate(shared: &Shared, ctx: &Ctx) -> Result<(), OssError> {
    let Some(value) = ctx.headers.get(AUTHORIZATION) else {
        return Err(OssError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "You have no right to access this object because of bucket acl.",
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let auth = Authorization::parse(value).map_err(|e| {
        OssError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!("Authorization header is invalid: {e}"),
        )
    })?;
    let credential = shared
        .credentials
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|c| c.access_key_id == auth.access_key_id)
        .cloned()
        .ok_or_else(|| {
            OssError::new(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
            )
        })?;
    if let Some(token) = &credential.security_token {
        match ctx.header("x-oss-security-token") {
            Some(sent) if sent == token => {}
            Some(_) => {
                return Err(OssError::new(
                    StatusCode::FORBIDDEN,
                    "InvalidSecurityToken",
                    "The security token you provided is invalid.",
                ));
            }
            None => {
                return Err(OssError::new(
                    StatusCode::FORBIDDEN,
                    "InvalidSecurityToken",
                    "The request was signed with temporary credentials but carries no x-oss-security-token.",
                ));
            }
        }
    }
    let datetime = ctx.header("x-oss-date").ok_or_else(|| {
        OssError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "x-oss-date is missing.",
        )
    })?;
    let time = signer::parse_datetime(datetime).ok_or_else(|| {
        OssError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "x-oss-date is not YYYYMMDDTHHMMSSZ.",
        )
    })?;
    if (Utc::now() - time).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(OssError::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    if auth.region != shared.region || !datetime.starts_with(&auth.date) {
        return Err(OssError::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            format!(
                "The credential scope {}/{} does not match the request date or the region {}.",
                auth.date, auth.region, shared.region
            ),
        ));
    }
    let request = SignableRequest {
        method: ctx.method.as_str(),
        bucket: ctx.bucket.as_deref(),
        key: ctx.key.as_deref(),
        query: &ctx.query,
        headers: &ctx.headers,
    };
    let expected = signer::signature(
        &credential.access_key_secret,
        datetime,
        &shared.region,
        &request,
        &auth.additional_headers,
    );
    if expected != auth.signature {
        return Err(OssError::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(())
}

async fn dispatch(
    shared: &Arc<Shared>,
    op: &str,
    ctx: &Ctx,
    body: Incoming,
    fault: Option<&Fault>,
) -> Result<Response<Body>, OssError> {
    let _ = fault;
    match op {
        "PutObject" => put_object(shared, ctx, body).await,
        "GetObject" => get_object(shared, ctx, false).await,
        "HeadObject" => get_object(shared, ctx, true).await,
        "GetObjectMeta" => get_object_meta(shared, ctx),
        "DeleteObject" => delete_object(shared, ctx),
        "DeleteMultipleObjects" => delete_multiple(shared, ctx, body).await,
        "ListObjectsV2" => list_objects(shared, ctx, true),
        "ListObjects" => list_objects(shared, ctx, false),
        "InitiateMultipartUpload" => initiate_upload(shared, ctx),
        "UploadPart" => upload_part(shared, ctx, body).await,
        "CompleteMultipartUpload" => complete_upload(shared, ctx, body).await,
        "AbortMultipartUpload" => abort_upload(shared, ctx),
        "ListParts" => list_parts(shared, ctx),
        "ListMultipartUploads" => list_uploads(shared, ctx),
        "AppendObject" => append_object(shared, ctx, body).await,
        "RestoreObject" => restore_object(shared, ctx, body).await,
        "PutSymlink" => put_symlink(shared, ctx),
        "GetSymlink" => get_symlink(shared, ctx),
        "CopyObject" => copy_object(shared, ctx).await,
        "GetBucketLocation" => Ok(xml_response(
            StatusCode::OK,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint>oss-{}</LocationConstraint>",
                shared.region
            ),
        )),
        "GetBucketInfo" => Ok(bucket_info(shared, ctx)),
        _ => Err(OssError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!(
                "The emulator does not implement {} {} with this query.",
                ctx.method,
                ctx.key.as_deref().map_or("a bucket", |_| "an object")
            ),
        )),
    }
}

fn xml_response(status: StatusCode, xml: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header(CONTENT_LENGTH, xml.len())
        .body(Body::from(xml))
        .unwrap_or_default()
}

fn empty_response(status: StatusCode) -> http::response::Builder {
    Response::builder().status(status)
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Collects a small request body (XML).
async fn read_small_body(shared: &Shared, body: Incoming) -> Result<Bytes, OssError> {
    let limited = http_body_util::Limited::new(body, MAX_XML_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|_| {
            OssError::new(
                StatusCode::BAD_REQUEST,
                "MalformedXML",
                "The request body is too large or incomplete.",
            )
        })?
        .to_bytes();
    lock(&shared.stats).bytes_in += bytes.len() as u64;
    Ok(bytes)
}

/// The content headers and `x-oss-meta-*` headers of a request, as stored with an object.
fn stored_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|(name, _)| {
            CONTENT_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("x-oss-meta-")
        })
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    out.sort();
    out
}

fn storage_class(ctx: &Ctx, default: &str) -> Result<String, OssError> {
    match ctx.header("x-oss-storage-class") {
        None => Ok(default.to_owned()),
        Some(value) => STORAGE_CLASSES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(value))
            .map(|c| (*c).to_owned())
            .ok_or_else(|| OssError::invalid_argument(format!("Invalid storage class {value}."))),
    }
}

fn require_content_length(ctx: &Ctx) -> Result<(), OssError> {
    if ctx.headers.contains_key(CONTENT_LENGTH) {
        Ok(())
    } else {
        Err(OssError::new(
            StatusCode::LENGTH_REQUIRED,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
        ))
    }
}

/// Checks `Content-MD5` when the request carries one.
fn check_content_md5(ctx: &Ctx, md5: &[u8; 16]) -> Result<(), OssError> {
    let Some(value) = ctx.header("content-md5") else {
        return Ok(());
    };
    let sent = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .filter(|d| d.len() == 16)
        .ok_or_else(|| {
            OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidDigest",
                "The Content-MD5 you specified is not valid.",
            )
        })?;
    if sent != md5 {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "InvalidDigest",
            "The Content-MD5 you specified did not match what was received.",
        ));
    }
    Ok(())
}

async fn ingest(shared: &Shared, ctx: &Ctx, body: Incoming) -> Result<Ingested, OssError> {
    let (ingested, received) = shared.store.ingest(ctx.bucket(), body).await?;
    lock(&shared.stats).bytes_in += received;
    if let Err(e) = check_content_md5(ctx, &ingested.md5) {
        Store::discard([ingested.blob]);
        return Err(e);
    }
    Ok(ingested)
}

fn forbid_overwrite(shared: &Shared, ctx: &Ctx) -> Result<(), OssError> {
    if ctx.header("x-oss-forbid-overwrite") == Some("true")
        && shared.store.get(ctx.bucket(), ctx.key()).is_some()
    {
        return Err(OssError::new(
            StatusCode::CONFLICT,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        ));
    }
    Ok(())
}

async fn put_object(
    shared: &Shared,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    require_content_length(ctx)?;
    let storage_class = storage_class(ctx, "Standard")?;
    forbid_overwrite(shared, ctx)?;
    let ingested = ingest(shared, ctx, body).await?;
    let meta = ObjectMeta {
        key: ctx.key().to_owned(),
        size: ingested.blob.len(),
        etag: hex::encode_upper(ingested.md5),
        crc64: ingested.crc64,
        object_type: "Normal".to_owned(),
        storage_class,
        last_modified_ms: now_ms(),
        headers: stored_headers(&ctx.headers),
        restore: None,
        symlink_target: None,
        data_file: None,
    };
    let previous = shared
        .store
        .put(ctx.bucket(), meta.clone(), ingested.blob)?;
    let delta = meta.size as i64 - previous.map_or(0, |p| p.meta.size as i64);
    shared
        .notifier
        .publish(ctx.event("ObjectCreated:PutObject", &meta, delta));
    Ok(empty_response(StatusCode::OK)
        .header("etag", quoted(&meta.etag))
        .header("x-oss-hash-crc64ecma", meta.crc64)
        .header(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(ingested.md5),
        )
        .header(CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default())
}

/// The restore header and whether the object's data may be read.
fn restore_status(meta: &ObjectMeta) -> (Option<String>, bool) {
    let readable = !is_archived(&meta.storage_class);
    match meta.restore {
        None => (None, readable),
        Some(RestoreState {
            ready_at_ms,
            expiry_ms,
        }) => {
            let now = now_ms();
            if now < ready_at_ms {
                (Some("ongoing-request=\"true\"".to_owned()), readable)
            } else if now < expiry_ms {
                (
                    Some(format!(
                        "ongoing-request=\"false\", expiry-date=\"{}\"",
                        http_date(expiry_ms)
                    )),
                    true,
                )
            } else {
                (None, readable)
            }
        }
    }
}

fn object_headers(
    mut builder: http::response::Builder,
    meta: &ObjectMeta,
    object_type: &str,
) -> http::response::Builder {
    builder = builder
        .header("etag", quoted(&meta.etag))
        .header("x-oss-hash-crc64ecma", meta.crc64)
        .header("x-oss-object-type", object_type)
        .header("x-oss-storage-class", &meta.storage_class)
        .header("last-modified", http_date(meta.last_modified_ms))
        .header("accept-ranges", "bytes");
    if meta.header("content-type").is_none() {
        builder = builder.header("content-type", "application/octet-stream");
    }
    for (name, value) in &meta.headers {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            builder = builder.header(name.as_str(), value);
        }
    }
    if meta.object_type == "Normal"
        && let Ok(md5) = hex::decode(&meta.etag)
    {
        builder = builder.header(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(md5),
        );
    }
    if let (Some(restore), _) = restore_status(meta) {
        builder = builder.header("x-oss-restore", restore);
    }
    builder
}

/// The object a GET/HEAD serves: the object itself or a symlink's target.
fn resolve(shared: &Shared, ctx: &Ctx) -> Result<(Object, &'static str), OssError> {
    let object = shared
        .store
        .get(ctx.bucket(), ctx.key())
        .ok_or_else(OssError::no_such_key)?;
    match &object.meta.symlink_target {
        None => {
            let kind = match object.meta.object_type.as_str() {
                "Multipart" => "Multipart",
                "Appendable" => "Appendable",
                _ => "Normal",
            };
            Ok((object, kind))
        }
        Some(target) => {
            let target = shared.store.get(ctx.bucket(), target).ok_or_else(|| {
                OssError::new(
                    StatusCode::NOT_FOUND,
                    "SymlinkTargetNotExist",
                    "The symlink target object does not exist.",
                )
            })?;
            Ok((target, "Symlink"))
        }
    }
}

/// Evaluates If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since.
fn check_conditions(ctx: &Ctx, meta: &ObjectMeta) -> Result<(), OssError> {
    let matches = |list: &str| {
        list.split(',').map(str::trim).any(|tag| {
            tag == "*"
                || tag
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .eq_ignore_ascii_case(&meta.etag)
        })
    };
    let precondition = || {
        OssError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
    };
    let not_modified = || {
        OssError::new(
            StatusCode::NOT_MODIFIED,
            "NotModified",
            "The object was not modified.",
        )
    };
    let modified_s = meta.last_modified_ms / 1000;
    let date = |name: &str| {
        ctx.header(name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
    };
    if let Some(list) = ctx.header("if-match") {
        if !matches(list) {
            return Err(precondition());
        }
    } else if let Some(since) = date("if-unmodified-since")
        && modified_s > since
    {
        return Err(precondition());
    }
    if let Some(list) = ctx.header("if-none-match") {
        if matches(list) {
            return Err(not_modified());
        }
    } else if let Some(since) = date("if-modified-since")
        && modified_s <= since
    {
        return Err(not_modified());
    }
    Ok(())
}

/// Parses a single `bytes=` range. `Ok(None)` means "serve the whole object" (no header or a
/// header OSS ignores); an unsatisfiable range is an error.
fn parse_range(value: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, OssError> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let invalid = || {
        OssError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range cannot be satisfied.",
        )
    };
    let (start, end) = (start.trim(), end.trim());
    let range = match (start.parse::<u64>().ok(), end.parse::<u64>().ok()) {
        (Some(s), Some(e)) if s <= e => (s, e.min(size.saturating_sub(1))),
        (Some(s), None) if end.is_empty() => (s, size.saturating_sub(1)),
        (None, Some(n)) if start.is_empty() => {
            if n == 0 {
                return Err(invalid());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return Ok(None),
    };
    if range.0 >= size {
        return Err(invalid());
    }
    Ok(Some(range))
}

async fn get_object(shared: &Shared, ctx: &Ctx, head: bool) -> Result<Response<Body>, OssError> {
    let (object, kind) = resolve(shared, ctx)?;
    let meta = &object.meta;
    check_conditions(ctx, meta)?;
    let (_, readable) = restore_status(meta);
    if !head && !readable {
        return Err(OssError::new(
            StatusCode::FORBIDDEN,
            "InvalidObjectState",
            "The operation is not valid for the object's state: restore the archived object first.",
        ));
    }
    let size = meta.size;
    let range = if head {
        None
    } else {
        parse_range(ctx.header("range"), size)?
    };
    let mut builder = object_headers(empty_response(StatusCode::OK), meta, kind);
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let (Some(value), Some(headers)) = (ctx.q(param), builder.headers_mut())
            && let Ok(v) = http::HeaderValue::from_str(value)
        {
            headers.insert(header, v);
        }
    }
    if head {
        return Ok(builder
            .header(CONTENT_LENGTH, size)
            .body(Body::empty())
            .unwrap_or_default());
    }
    let (start, len) = match range {
        Some((s, e)) => {
            builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header("content-range", format!("bytes {s}-{e}/{size}"));
            (s, e - s + 1)
        }
        None => (0, size),
    };
    let stream = object
        .blob
        .stream(start, len)
        .await
        .map_err(|e| OssError::internal(format!("reading object data: {e}")))?;
    Ok(builder
        .header(CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

fn get_object_meta(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let (object, _) = resolve(shared, ctx)?;
    let meta = &object.meta;
    Ok(empty_response(StatusCode::OK)
        .header("etag", quoted(&meta.etag))
        .header("x-oss-hash-crc64ecma", meta.crc64)
        .header("last-modified", http_date(meta.last_modified_ms))
        .header("x-oss-last-access-time", http_date(meta.last_modified_ms))
        .header(CONTENT_LENGTH, meta.size)
        .body(Body::empty())
        .unwrap_or_default())
}

fn delete_object(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    if let Some(removed) = shared.store.delete(ctx.bucket(), ctx.key()) {
        let mut meta = removed.meta;
        let delta = -(meta.size as i64);
        meta.size = 0;
        shared
            .notifier
            .publish(ctx.event("ObjectRemoved:DeleteObject", &meta, delta));
    }
    Ok(empty_response(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default())
}

async fn delete_multiple(
    shared: &Shared,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let body = read_small_body(shared, body).await?;
    let request: xml::Delete = xml::parse(&body)?;
    if request.objects.len() > 1000 {
        return Err(OssError::malformed_xml());
    }
    if let Some(md5) = ctx.header("content-md5") {
        let digest: [u8; 16] = Md5::digest(&body).into();
        if base64::engine::general_purpose::STANDARD.encode(digest) != md5.trim() {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidDigest",
                "The Content-MD5 you specified did not match what was received.",
            ));
        }
    }
    let quiet = request
        .quiet
        .as_deref()
        .is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));
    let url = ctx.url_encoding();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult>\n");
    if url {
        out.push_str("  <EncodingType>url</EncodingType>\n");
    }
    for object in &request.objects {
        if let Some(removed) = shared.store.delete(ctx.bucket(), &object.key) {
            let mut meta = removed.meta;
            let delta = -(meta.size as i64);
            meta.size = 0;
            shared
                .notifier
                .publish(ctx.event("ObjectRemoved:DeleteObjects", &meta, delta));
        }
        if !quiet {
            out.push_str(&format!(
                "  <Deleted>\n    <Key>{}</Key>\n  </Deleted>\n",
                encode_value(&object.key, url)
            ));
        }
    }
    out.push_str("</DeleteResult>\n");
    Ok(xml_response(StatusCode::OK, out))
}

fn parse_max(ctx: &Ctx, name: &str, default: usize, max: usize) -> Result<usize, OssError> {
    match ctx.q(name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                OssError::invalid_argument(format!(
                    "{name} must be an integer between 0 and {max}."
                ))
            }),
    }
}

fn list_objects(shared: &Shared, ctx: &Ctx, v2: bool) -> Result<Response<Body>, OssError> {
    let url = ctx.url_encoding();
    let prefix = ctx.q("prefix").unwrap_or_default();
    let delimiter = ctx.q("delimiter").filter(|d| !d.is_empty());
    let max_keys = parse_max(ctx, "max-keys", 100, 1000)?;
    let token = if v2 {
        match ctx.q("continuation-token").filter(|t| !t.is_empty()) {
            Some(t) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        OssError::invalid_argument("The continuation token is not valid.")
                    })?,
            ),
            None => None,
        }
    } else {
        None
    };
    let start_after = if v2 {
        ctx.q("start-after")
    } else {
        ctx.q("marker")
    }
    .unwrap_or_default();
    let fetch_owner = ctx.q("fetch-owner") == Some("true") || !v2;

    enum Entry {
        Object(Box<ObjectMeta>),
        Prefix(String),
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    let mut last = String::new();
    {
        let buckets = lock(&shared.store.buckets);
        let objects = &buckets
            .get(ctx.bucket())
            .ok_or_else(OssError::no_such_bucket)?
            .objects;
        let from = token.as_deref().unwrap_or(start_after);
        let lower = if from.as_bytes() > prefix.as_bytes() {
            from
        } else {
            prefix
        };
        let range =
            objects.range::<str, _>((std::ops::Bound::Included(lower), std::ops::Bound::Unbounded));
        for (key, object) in range {
            if !key.starts_with(prefix) {
                break;
            }
            if key.as_str() <= from {
                continue;
            }
            let common = delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|i| key[..prefix.len() + i + d.len()].to_owned())
            });
            let name = common.clone().unwrap_or_else(|| key.clone());
            if name.as_str() <= from || (common.is_some() && last == name) {
                continue;
            }
            if entries.len() >= max_keys {
                truncated = true;
                break;
            }
            last = name.clone();
            entries.push(match common {
                Some(p) => Entry::Prefix(p),
                None => Entry::Object(Box::new(object.meta.clone())),
            });
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult>\n");
    let mut field =
        |name: &str, value: &str| out.push_str(&format!("  <{name}>{value}</{name}>\n"));
    field("Name", &escape(ctx.bucket()));
    field("Prefix", &encode_value(prefix, url));
    if v2 {
        if let Some(s) = ctx.q("start-after") {
            field("StartAfter", &encode_value(s, url));
        }
        if let Some(t) = ctx.q("continuation-token") {
            field("ContinuationToken", &escape(t));
        }
    } else {
        field("Marker", &encode_value(start_after, url));
    }
    field("MaxKeys", &max_keys.to_string());
    if let Some(d) = delimiter {
        field("Delimiter", &encode_value(d, url));
    }
    if url {
        field("EncodingType", "url");
    }
    field("IsTruncated", if truncated { "true" } else { "false" });
    if truncated {
        if v2 {
            field(
                "NextContinuationToken",
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&last),
            );
        } else {
            field("NextMarker", &encode_value(&last, url));
        }
    }
    if v2 {
        field("KeyCount", &entries.len().to_string());
    }
    for entry in &entries {
        match entry {
            Entry::Object(meta) => {
                out.push_str("  <Contents>\n");
                out.push_str(&format!(
                    "    <Key>{}</Key>\n",
                    encode_value(&meta.key, url)
                ));
                out.push_str(&format!(
                    "    <LastModified>{}</LastModified>\n",
                    iso_time(meta.last_modified_ms)
                ));
                out.push_str(&format!("    <ETag>&quot;{}&quot;</ETag>\n", meta.etag));
                out.push_str(&format!("    <Type>{}</Type>\n", meta.object_type));
                out.push_str(&format!("    <Size>{}</Size>\n", meta.size));
                out.push_str(&format!(
                    "    <StorageClass>{}</StorageClass>\n",
                    meta.storage_class
                ));
                if fetch_owner {
                    out.push_str(&format!(
                        "    <Owner>\n      <ID>{0}</ID>\n      <DisplayName>{0}</DisplayName>\n    </Owner>\n",
                        crate::notify::OWNER_ID
                    ));
                }
                if let (Some(restore), _) = restore_status(meta) {
                    out.push_str(&format!(
                        "    <RestoreInfo>{}</RestoreInfo>\n",
                        escape(&restore)
                    ));
                }
                out.push_str("  </Contents>\n");
            }
            Entry::Prefix(p) => {
                out.push_str(&format!(
                    "  <CommonPrefixes>\n    <Prefix>{}</Prefix>\n  </CommonPrefixes>\n",
                    encode_value(p, url)
                ));
            }
        }
    }
    out.push_str("</ListBucketResult>\n");
    Ok(xml_response(StatusCode::OK, out))
}

fn initiate_upload(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let storage_class = storage_class(ctx, "Standard")?;
    forbid_overwrite(shared, ctx)?;
    let upload_id = hex::encode_upper(rand::random::<[u8; 16]>());
    let upload = Upload {
        key: ctx.key().to_owned(),
        initiated_ms: now_ms(),
        headers: stored_headers(&ctx.headers),
        storage_class,
        parts: Default::default(),
    };
    lock(&shared.store.buckets)
        .get_mut(ctx.bucket())
        .ok_or_else(OssError::no_such_bucket)?
        .uploads
        .insert(upload_id.clone(), upload);
    let placeholder = ObjectMeta {
        key: ctx.key().to_owned(),
        size: 0,
        etag: String::new(),
        crc64: 0,
        object_type: "Multipart".to_owned(),
        storage_class: String::new(),
        last_modified_ms: now_ms(),
        headers: stored_headers(&ctx.headers),
        restore: None,
        symlink_target: None,
        data_file: None,
    };
    shared
        .notifier
        .publish(ctx.event("ObjectCreated:InitiateMultipartUpload", &placeholder, 0));
    let url = ctx.url_encoding();
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult>\n",
    );
    if url {
        out.push_str("  <EncodingType>url</EncodingType>\n");
    }
    out.push_str(&format!(
        "  <Bucket>{}</Bucket>\n  <Key>{}</Key>\n  <UploadId>{}</UploadId>\n</InitiateMultipartUploadResult>\n",
        escape(ctx.bucket()),
        encode_value(ctx.key(), url),
        upload_id
    ));
    Ok(xml_response(StatusCode::OK, out))
}

fn upload_key_matches(shared: &Shared, ctx: &Ctx, upload_id: &str) -> Result<Upload, OssError> {
    lock(&shared.store.buckets)
        .get(ctx.bucket())
        .and_then(|b| b.uploads.get(upload_id))
        .filter(|u| u.key == ctx.key())
        .cloned()
        .ok_or_else(OssError::no_such_upload)
}

async fn upload_part(
    shared: &Shared,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let upload_id = ctx.q("uploadId").unwrap_or_default().to_owned();
    let number = ctx
        .q("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            OssError::invalid_argument(format!(
                "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive."
            ))
        })?;
    require_content_length(ctx)?;
    let upload = upload_key_matches(shared, ctx, &upload_id)?;
    let ingested = ingest(shared, ctx, body).await?;
    let part = Part {
        md5: ingested.md5,
        crc64: ingested.crc64,
        blob: ingested.blob,
        last_modified_ms: now_ms(),
    };
    let size = part.blob.len();
    let replaced = {
        let mut buckets = lock(&shared.store.buckets);
        let Some(upload) = buckets
            .get_mut(ctx.bucket())
            .and_then(|b| b.uploads.get_mut(&upload_id))
        else {
            Store::discard([part.blob]);
            return Err(OssError::no_such_upload());
        };
        upload.parts.insert(number, part)
    };
    if let Some(old) = replaced {
        Store::discard([old.blob]);
    }
    let etag = hex::encode_upper(ingested.md5);
    let meta = ObjectMeta {
        key: upload.key.clone(),
        size,
        etag: etag.clone(),
        crc64: ingested.crc64,
        object_type: "Multipart".to_owned(),
        storage_class: upload.storage_class.clone(),
        last_modified_ms: now_ms(),
        headers: upload.headers.clone(),
        restore: None,
        symlink_target: None,
        data_file: None,
    };
    shared
        .notifier
        .publish(ctx.event("ObjectCreated:UploadPart", &meta, 0));
    Ok(empty_response(StatusCode::OK)
        .header("etag", quoted(&etag))
        .header("x-oss-hash-crc64ecma", ingested.crc64)
        .header(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(ingested.md5),
        )
        .header(CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default())
}

async fn complete_upload(
    shared: &Shared,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let upload_id = ctx.q("uploadId").unwrap_or_default().to_owned();
    let body = read_small_body(shared, body).await?;
    let upload = upload_key_matches(shared, ctx, &upload_id)?;
    let complete_all = ctx.header("x-oss-complete-all") == Some("yes");
    let chosen: Vec<(u32, Part)> = if complete_all {
        if !body.is_empty() {
            return Err(OssError::invalid_argument(
                "x-oss-complete-all cannot be used with a part list.",
            ));
        }
        upload.parts.iter().map(|(n, p)| (*n, p.clone())).collect()
    } else {
        let request: xml::CompleteMultipartUpload = xml::parse(&body)?;
        if request.parts.is_empty() {
            return Err(OssError::malformed_xml());
        }
        let mut chosen = Vec::new();
        let mut previous = 0;
        for requested in &request.parts {
            let number = requested
                .part_number
                .trim()
                .parse::<u32>()
                .map_err(|_| OssError::malformed_xml())?;
            if number <= previous {
                return Err(OssError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order.",
                ));
            }
            previous = number;
            let etag = requested.etag.trim().trim_matches('"');
            let part = upload
                .parts
                .get(&number)
                .filter(|p| hex::encode_upper(p.md5).eq_ignore_ascii_case(etag))
                .ok_or_else(|| {
                    OssError::new(StatusCode::BAD_REQUEST, "InvalidPart", "One or more of the specified parts could not be found or the ETag did not match.")
                })?;
            chosen.push((number, part.clone()));
        }
        chosen
    };
    if chosen.is_empty() {
        return Err(OssError::invalid_argument("No parts were uploaded."));
    }
    for (number, part) in &chosen[..chosen.len() - 1] {
        if part.blob.len() < MIN_PART_SIZE {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                format!(
                    "Part {number} is smaller than the minimum allowed size of {MIN_PART_SIZE} bytes."
                ),
            ));
        }
    }
    let blobs: Vec<Blob> = chosen.iter().map(|(_, p)| p.blob.clone()).collect();
    let ingested = shared.store.concat(ctx.bucket(), &blobs, None).await?;
    let mut md5s = Md5::new();
    for (_, part) in &chosen {
        md5s.update(part.md5);
    }
    let crc = crate::store::combined_crc(chosen.iter().map(|(_, p)| (p.crc64, p.blob.len())));
    let meta = ObjectMeta {
        key: upload.key.clone(),
        size: ingested.blob.len(),
        etag: format!("{}-{}", hex::encode_upper(md5s.finalize()), chosen.len()),
        crc64: crc,
        object_type: "Multipart".to_owned(),
        storage_class: upload.storage_class.clone(),
        last_modified_ms: now_ms(),
        headers: upload.headers.clone(),
        restore: None,
        symlink_target: None,
        data_file: None,
    };
    let removed = lock(&shared.store.buckets)
        .get_mut(ctx.bucket())
        .and_then(|b| b.uploads.remove(&upload_id));
    let Some(removed) = removed else {
        Store::discard([ingested.blob]);
        return Err(OssError::no_such_upload());
    };
    Store::discard(removed.parts.into_values().map(|p| p.blob));
    let previous = shared
        .store
        .put(ctx.bucket(), meta.clone(), ingested.blob)?;
    let delta = meta.size as i64 - previous.map_or(0, |p| p.meta.size as i64);
    shared
        .notifier
        .publish(ctx.event("ObjectCreated:CompleteMultipartUpload", &meta, delta));
    let url = ctx.url_encoding();
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult>\n",
    );
    if url {
        out.push_str("  <EncodingType>url</EncodingType>\n");
    }
    out.push_str(&format!(
        "  <Location>http://{}/{}/{}</Location>\n  <Bucket>{}</Bucket>\n  <Key>{}</Key>\n  <ETag>&quot;{}&quot;</ETag>\n</CompleteMultipartUploadResult>\n",
        escape(&ctx.host),
        escape(ctx.bucket()),
        encode_value(&meta.key, true),
        escape(ctx.bucket()),
        encode_value(&meta.key, url),
        meta.etag
    ));
    let mut response = xml_response(StatusCode::OK, out);
    response
        .headers_mut()
        .insert("x-oss-hash-crc64ecma", meta.crc64.into());
    if let Ok(v) = quoted(&meta.etag).parse() {
        response.headers_mut().insert("etag", v);
    }
    Ok(response)
}

fn abort_upload(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let upload_id = ctx.q("uploadId").unwrap_or_default();
    upload_key_matches(shared, ctx, upload_id)?;
    let removed = lock(&shared.store.buckets)
        .get_mut(ctx.bucket())
        .and_then(|b| b.uploads.remove(upload_id))
        .ok_or_else(OssError::no_such_upload)?;
    Store::discard(removed.parts.into_values().map(|p| p.blob));
    Ok(empty_response(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default())
}

fn list_parts(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let upload_id = ctx.q("uploadId").unwrap_or_default();
    let upload = upload_key_matches(shared, ctx, upload_id)?;
    let max = parse_max(ctx, "max-parts", 1000, 1000)?;
    let marker = ctx
        .q("part-number-marker")
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    let parts: Vec<(&u32, &Part)> = upload.parts.range(marker + 1..).collect();
    let truncated = parts.len() > max;
    let shown = &parts[..parts.len().min(max)];
    let url = ctx.url_encoding();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult>\n");
    if url {
        out.push_str("  <EncodingType>url</EncodingType>\n");
    }
    out.push_str(&format!(
        "  <Bucket>{}</Bucket>\n  <Key>{}</Key>\n  <UploadId>{}</UploadId>\n  <StorageClass>{}</StorageClass>\n  <PartNumberMarker>{}</PartNumberMarker>\n  <NextPartNumberMarker>{}</NextPartNumberMarker>\n  <MaxParts>{}</MaxParts>\n  <IsTruncated>{}</IsTruncated>\n",
        escape(ctx.bucket()),
        encode_value(&upload.key, url),
        upload_id,
        upload.storage_class,
        marker,
        shown.last().map_or(0, |(n, _)| **n),
        max,
        truncated
    ));
    for (number, part) in shown {
        out.push_str(&format!(
            "  <Part>\n    <PartNumber>{}</PartNumber>\n    <LastModified>{}</LastModified>\n    <ETag>&quot;{}&quot;</ETag>\n    <HashCrc64ecma>{}</HashCrc64ecma>\n    <Size>{}</Size>\n  </Part>\n",
            number,
            iso_time(part.last_modified_ms),
            hex::encode_upper(part.md5),
            part.crc64,
            part.blob.len()
        ));
    }
    out.push_str("</ListPartsResult>\n");
    Ok(xml_response(StatusCode::OK, out))
}

fn list_uploads(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let prefix = ctx.q("prefix").unwrap_or_default();
    let max = parse_max(ctx, "max-uploads", 1000, 1000)?;
    let key_marker = ctx.q("key-marker").unwrap_or_default();
    let mut uploads: Vec<(String, String, i64)> = lock(&shared.store.buckets)
        .get(ctx.bucket())
        .map(|b| {
            b.uploads
                .iter()
                .filter(|(_, u)| u.key.starts_with(prefix) && u.key.as_str() > key_marker)
                .map(|(id, u)| (u.key.clone(), id.clone(), u.initiated_ms))
                .collect()
        })
        .unwrap_or_default();
    uploads.sort();
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let url = ctx.url_encoding();
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult>\n");
    if url {
        out.push_str("  <EncodingType>url</EncodingType>\n");
    }
    let (next_key, next_id) = uploads
        .last()
        .map(|(k, id, _)| (k.clone(), id.clone()))
        .unwrap_or_default();
    out.push_str(&format!(
        "  <Bucket>{}</Bucket>\n  <KeyMarker>{}</KeyMarker>\n  <UploadIdMarker></UploadIdMarker>\n  <NextKeyMarker>{}</NextKeyMarker>\n  <NextUploadIdMarker>{}</NextUploadIdMarker>\n  <Prefix>{}</Prefix>\n  <MaxUploads>{}</MaxUploads>\n  <IsTruncated>{}</IsTruncated>\n",
        escape(ctx.bucket()),
        encode_value(key_marker, url),
        encode_value(&next_key, url),
        next_id,
        encode_value(prefix, url),
        max,
        truncated
    ));
    for (key, id, initiated) in &uploads {
        out.push_str(&format!(
            "  <Upload>\n    <Key>{}</Key>\n    <UploadId>{}</UploadId>\n    <Initiated>{}</Initiated>\n  </Upload>\n",
            encode_value(key, url),
            id,
            iso_time(*initiated)
        ));
    }
    out.push_str("</ListMultipartUploadsResult>\n");
    Ok(xml_response(StatusCode::OK, out))
}

async fn append_object(
    shared: &Shared,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let position = ctx
        .q("position")
        .and_then(|p| p.parse::<u64>().ok())
        .ok_or_else(|| OssError::invalid_argument("position is missing or not a number."))?;
    require_content_length(ctx)?;
    let existing = shared.store.get(ctx.bucket(), ctx.key());
    let mismatch = |len: u64| {
        OssError::new(
            StatusCode::CONFLICT,
            "PositionNotEqualToLength",
            "Position is not equal to file length.",
        )
        .with_header("x-oss-next-append-position", len.to_string())
    };
    match &existing {
        Some(object) if object.meta.object_type != "Appendable" => {
            return Err(OssError::new(
                StatusCode::CONFLICT,
                "ObjectNotAppendable",
                "The object is not appendable.",
            ));
        }
        Some(object) if object.meta.size != position => return Err(mismatch(object.meta.size)),
        None if position != 0 => return Err(mismatch(0)),
        _ => {}
    }
    let added = ingest(shared, ctx, body).await?;
    let added_len = added.blob.len();
    let (blob, crc, etag, meta_base) = match &existing {
        Some(object) => {
            let joined = shared
                .store
                .concat(
                    ctx.bucket(),
                    &[object.blob.clone(), added.blob.clone()],
                    None,
                )
                .await;
            Store::discard([added.blob.clone()]);
            let joined = joined?;
            let mut chain = Md5::new();
            chain.update(object.meta.etag.as_bytes());
            chain.update(added.md5);
            (
                joined.blob,
                transfer::crc64::combine(object.meta.crc64, added.crc64, added_len),
                hex::encode_upper(chain.finalize()),
                Some(object.meta.clone()),
            )
        }
        None => (added.blob, added.crc64, hex::encode_upper(added.md5), None),
    };
    let meta = match meta_base {
        Some(mut meta) => {
            meta.size = blob.len();
            meta.crc64 = crc;
            meta.etag = etag;
            meta.last_modified_ms = now_ms();
            meta
        }
        None => ObjectMeta {
            key: ctx.key().to_owned(),
            size: blob.len(),
            etag,
            crc64: crc,
            object_type: "Appendable".to_owned(),
            storage_class: storage_class(ctx, "Standard")?,
            last_modified_ms: now_ms(),
            headers: stored_headers(&ctx.headers),
            restore: None,
            symlink_target: None,
            data_file: None,
        },
    };
    // Another append may have won the race while this one read its body.
    let current = shared
        .store
        .get(ctx.bucket(), ctx.key())
        .map(|o| o.meta.size);
    if current != existing.as_ref().map(|o| o.meta.size) {
        Store::discard([blob]);
        return Err(mismatch(current.unwrap_or(0)));
    }
    shared.store.put(ctx.bucket(), meta.clone(), blob)?;
    shared
        .notifier
        .publish(ctx.event("ObjectCreated:AppendObject", &meta, added_len as i64));
    Ok(empty_response(StatusCode::OK)
        .header("etag", quoted(&meta.etag))
        .header("x-oss-next-append-position", meta.size)
        .header("x-oss-hash-crc64ecma", meta.crc64)
        .header(CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default())
}

async fn restore_object(
    shared: &Shared,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let body = read_small_body(shared, body).await?;
    let days = if body.is_empty() {
        1
    } else {
        let request: xml::RestoreRequest = xml::parse(&body)?;
        request
            .days
            .and_then(|d| d.trim().parse::<i64>().ok())
            .unwrap_or(1)
    };
    let object = shared
        .store
        .get(ctx.bucket(), ctx.key())
        .ok_or_else(OssError::no_such_key)?;
    if !is_archived(&object.meta.storage_class) {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "OperationNotSupported",
            "The operation is not supported for this storage class.",
        ));
    }
    let now = now_ms();
    let delay = *lock(&shared.restore_delay);
    match object.meta.restore {
        Some(state) if now < state.ready_at_ms => Err(OssError::new(
            StatusCode::CONFLICT,
            "RestoreAlreadyInProgress",
            "The restore operation is in progress.",
        )),
        Some(state) if now < state.expiry_ms => {
            shared.store.update_meta(ctx.bucket(), ctx.key(), |m| {
                m.restore = Some(RestoreState {
                    ready_at_ms: state.ready_at_ms,
                    expiry_ms: now + days * 86_400_000,
                });
            });
            Ok(empty_response(StatusCode::OK)
                .header(CONTENT_LENGTH, 0)
                .body(Body::empty())
                .unwrap_or_default())
        }
        _ => {
            let ready = now + delay.as_millis() as i64;
            shared.store.update_meta(ctx.bucket(), ctx.key(), |m| {
                m.restore = Some(RestoreState {
                    ready_at_ms: ready,
                    expiry_ms: ready + days * 86_400_000,
                });
            });
            Ok(empty_response(StatusCode::ACCEPTED)
                .header(CONTENT_LENGTH, 0)
                .body(Body::empty())
                .unwrap_or_default())
        }
    }
}

fn put_symlink(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let target = ctx
        .headers
        .get("x-oss-symlink-target")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OssError::invalid_argument("x-oss-symlink-target is missing."))?;
    let storage_class = storage_class(ctx, "Standard")?;
    forbid_overwrite(shared, ctx)?;
    let meta = ObjectMeta {
        key: ctx.key().to_owned(),
        size: 0,
        etag: hex::encode_upper(Md5::digest(target.as_bytes())),
        crc64: 0,
        object_type: "Symlink".to_owned(),
        storage_class,
        last_modified_ms: now_ms(),
        headers: stored_headers(&ctx.headers),
        restore: None,
        symlink_target: Some(target),
        data_file: None,
    };
    shared
        .store
        .put(ctx.bucket(), meta.clone(), Blob::Memory(Bytes::new()))?;
    shared
        .notifier
        .publish(ctx.event("ObjectCreated:PutSymlink", &meta, 0));
    Ok(empty_response(StatusCode::OK)
        .header("etag", quoted(&meta.etag))
        .header(CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default())
}

fn get_symlink(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let object = shared
        .store
        .get(ctx.bucket(), ctx.key())
        .ok_or_else(OssError::no_such_key)?;
    let target = object.meta.symlink_target.as_deref().ok_or_else(|| {
        OssError::new(
            StatusCode::BAD_REQUEST,
            "NotSymlink",
            "The specified object is not a symlink.",
        )
    })?;
    let mut builder = empty_response(StatusCode::OK)
        .header("etag", quoted(&object.meta.etag))
        .header("last-modified", http_date(object.meta.last_modified_ms))
        .header(CONTENT_LENGTH, 0);
    if let Ok(v) = http::HeaderValue::from_bytes(target.as_bytes()) {
        builder = builder.header("x-oss-symlink-target", v);
    }
    Ok(builder.body(Body::empty()).unwrap_or_default())
}

async fn copy_object(shared: &Shared, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let source = ctx.header("x-oss-copy-source").unwrap_or_default();
    let source = percent_decode_str(source).decode_utf8_lossy().into_owned();
    let source = source.strip_prefix('/').unwrap_or(&source);
    let (src_bucket, src_key) = source
        .split_once('/')
        .ok_or_else(|| OssError::invalid_argument("x-oss-copy-source must be /bucket/key."))?;
    let src_key = src_key
        .split_once("?versionId=")
        .map_or(src_key, |(k, _)| k);
    if !shared.store.has_bucket(src_bucket) {
        return Err(OssError::no_such_bucket());
    }
    let object = shared
        .store
        .get(src_bucket, src_key)
        .ok_or_else(OssError::no_such_key)?;
    check_conditions(
        &Ctx {
            request_id: String::new(),
            method: Method::GET,
            bucket: None,
            key: None,
            query: Vec::new(),
            headers: ctx
                .headers
                .iter()
                .filter_map(|(n, v)| {
                    n.as_str()
                        .strip_prefix("x-oss-copy-source-")
                        .map(|rest| (rest, v))
                })
                .filter_map(|(rest, v)| {
                    Some((
                        http::HeaderName::from_bytes(rest.as_bytes()).ok()?,
                        v.clone(),
                    ))
                })
                .collect(),
            peer: ctx.peer,
            host: String::new(),
        },
        &object.meta,
    )
    .map_err(|e| {
        if e.status == StatusCode::NOT_MODIFIED {
            OssError::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                e.message,
            )
        } else {
            e
        }
    })?;
    let copied = shared
        .store
        .concat(ctx.bucket(), std::slice::from_ref(&object.blob), None)
        .await?;
    let replace = ctx.header("x-oss-metadata-directive") == Some("REPLACE");
    let meta = ObjectMeta {
        key: ctx.key().to_owned(),
        size: copied.blob.len(),
        etag: if object.meta.object_type == "Normal" {
            object.meta.etag.clone()
        } else {
            hex::encode_upper(copied.md5)
        },
        crc64: copied.crc64,
        object_type: "Normal".to_owned(),
        storage_class: storage_class(ctx, &object.meta.storage_class)?,
        last_modified_ms: now_ms(),
        headers: if replace {
            stored_headers(&ctx.headers)
        } else {
            object.meta.headers.clone()
        },
        restore: None,
        symlink_target: None,
        data_file: None,
    };
    let previous = shared.store.put(ctx.bucket(), meta.clone(), copied.blob)?;
    let delta = meta.size as i64 - previous.map_or(0, |p| p.meta.size as i64);
    shared
        .notifier
        .publish(ctx.event("ObjectCreated:CopyObject", &meta, delta));
    let mut response = xml_response(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult>\n  <ETag>&quot;{}&quot;</ETag>\n  <LastModified>{}</LastModified>\n</CopyObjectResult>\n",
            meta.etag,
            iso_time(meta.last_modified_ms)
        ),
    );
    response
        .headers_mut()
        .insert("x-oss-hash-crc64ecma", meta.crc64.into());
    Ok(response)
}

fn bucket_info(shared: &Shared, ctx: &Ctx) -> Response<Body> {
    let name = escape(ctx.bucket());
    xml_response(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BucketInfo>\n  <Bucket>\n    <AccessMonitor>Disabled</AccessMonitor>\n    <CreationDate>2024-01-01T00:00:00.000Z</CreationDate>\n    <ExtranetEndpoint>oss-{0}.aliyuncs.com</ExtranetEndpoint>\n    <IntranetEndpoint>oss-{0}-internal.aliyuncs.com</IntranetEndpoint>\n    <Location>oss-{0}</Location>\n    <StorageClass>Standard</StorageClass>\n    <Name>{1}</Name>\n    <Owner>\n      <DisplayName>{2}</DisplayName>\n      <ID>{2}</ID>\n    </Owner>\n  </Bucket>\n</BucketInfo>\n",
            shared.region,
            name,
            crate::notify::OWNER_ID
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms_and_unsatisfiable_ranges() {
        assert_eq!(
            parse_range(Some("bytes=0-9"), 100).ok().flatten(),
            Some((0, 9))
        );
        assert_eq!(
            parse_range(Some("bytes=90-200"), 100).ok().flatten(),
            Some((90, 99))
        );
        assert_eq!(
            parse_range(Some("bytes=10-"), 100).ok().flatten(),
            Some((10, 99))
        );
        assert_eq!(
            parse_range(Some("bytes=-10"), 100).ok().flatten(),
            Some((90, 99))
        );
        assert_eq!(parse_range(Some("bytes=9-1"), 100).ok().flatten(), None);
        assert_eq!(parse_range(None, 100).ok().flatten(), None);
        assert!(parse_range(Some("bytes=100-"), 100).is_err());
    }

    #[test]
    fn request_ids_are_unique_and_24_hex_digits() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
