//! The OSS REST client: signed requests on reqwest, typed outputs, typed errors, retries.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::stream::{self, BoxStream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use reqwest::Url;

use super::body::{self, BodyOrigin, ObjectBody, PutBody, SharedProgress};
use super::config::{AddressingStyle, OssConfig};
use super::error::{ErrorKind, OssError, REQUEST_ID};
use super::meta::{
    ContentHeaders, ContentRange, ObjectMeta, StorageClass, USER_META_PREFIX, parse_content_range,
};
use super::retry::with_retries;
use super::signer::{Credentials, OssSigner, SignableRequest};
use super::xml::{self, ListObjectsPage, ListedObject, RestoreTier, UploadedPart};

/// The largest error body read into memory; OSS's error documents are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The page size ListParts is asked for.
const LIST_PARTS_PAGE: u32 = 1000;

/// A byte range for a ranged GET: `first` to `last` inclusive, or to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte offset.
    pub first: u64,
    /// The last byte offset (inclusive), or `None` for "to the end".
    pub last: Option<u64>,
}

impl ByteRange {
    /// The bytes `first..=last`.
    pub fn inclusive(first: u64, last: u64) -> Self {
        Self {
            first,
            last: Some(last),
        }
    }

    /// The bytes from `first` to the end of the object.
    pub fn from_offset(first: u64) -> Self {
        Self { first, last: None }
    }

    fn header(&self) -> String {
        match self.last {
            Some(last) => format!("bytes={}-{last}", self.first),
            None => format!("bytes={}-", self.first),
        }
    }
}

/// Options for [`OssClient::get_object`].
#[derive(Debug, Clone, Default)]
pub struct GetObjectOptions {
    /// Only these bytes (answered with 206).
    pub range: Option<ByteRange>,
    /// Only if the ETag still equals this (quoted, as OSS sends it); otherwise 412.
    pub if_match: Option<String>,
    /// Only if the ETag differs from this; otherwise 304.
    pub if_none_match: Option<String>,
}

/// Headers for [`OssClient::put_object`] and [`OssClient::initiate_multipart_upload`].
#[derive(Debug, Clone, Default)]
pub struct PutObjectOptions {
    /// The content headers to store with the object.
    pub content: ContentHeaders,
    /// User metadata, names without the `x-oss-meta-` prefix.
    pub user_metadata: BTreeMap<String, String>,
    /// The storage class; the bucket's default when `None`.
    pub storage_class: Option<StorageClass>,
}

/// The result of [`OssClient::get_object`].
#[derive(Debug)]
pub struct GetObjectOutput {
    /// The object's metadata (its `size` is the whole object's, also for ranged GETs).
    pub meta: ObjectMeta,
    /// The range returned, for a 206 answer.
    pub content_range: Option<ContentRange>,
    /// The bytes.
    pub body: ObjectBody,
}

/// The result of a successful upload (PutObject, UploadPart, CompleteMultipartUpload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutObjectOutput {
    /// The new ETag as OSS sent it (quoted).
    pub etag: String,
    /// The CRC-64 OSS computed (`x-oss-hash-crc64ecma`), checked against the bytes sent.
    pub crc64: Option<u64>,
    /// The OSS request ID.
    pub request_id: Option<String>,
}

/// The result of [`OssClient::upload_part`].
pub type UploadPartOutput = PutObjectOutput;
/// The result of [`OssClient::complete_multipart_upload`].
pub type CompleteMultipartUploadOutput = PutObjectOutput;

/// A part to name in [`OssClient::complete_multipart_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// The part number, 1 to 10,000.
    pub part_number: u32,
    /// The ETag UploadPart returned for it.
    pub etag: String,
}

/// Parameters of one ListObjectsV2 request.
#[derive(Debug, Clone, Default)]
pub struct ListObjectsV2Request {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// The token from the previous page.
    pub continuation_token: Option<String>,
    /// Page size, 1 to 1000; OSS's default (100) when `None`.
    pub max_keys: Option<u32>,
    /// Only keys after this one.
    pub start_after: Option<String>,
    /// Group keys up to this character into common prefixes.
    pub delimiter: Option<String>,
}

/// What [`OssClient::restore_object`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// 202: the restore was started.
    Started,
    /// 200: the object is already restored (the restored copy's lifetime was extended).
    AlreadyRestored,
    /// 409 `RestoreAlreadyInProgress`: a restore is already running.
    AlreadyInProgress,
}

/// An OSS client. Cheap to clone: clones share the connection pool and the credentials.
#[derive(Clone)]
pub struct OssClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: OssConfig,
    base: Url,
    signer: OssSigner,
    credentials: RwLock<Arc<Credentials>>,
}

impl std::fmt::Debug for OssClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OssClient")
            .field("endpoint", &self.inner.base.as_str())
            .field("region", &self.inner.config.region)
            .field("addressing", &self.inner.config.addressing)
            .finish_non_exhaustive()
    }
}

/// One request to make: everything that is signed, plus the error context.
struct Call<'a> {
    operation: &'static str,
    method: Method,
    bucket: &'a str,
    key: Option<&'a str>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
}

impl<'a> Call<'a> {
    fn new(operation: &'static str, method: Method, bucket: &'a str, key: Option<&'a str>) -> Self {
        Self {
            operation,
            method,
            bucket,
            key,
            query: Vec::new(),
            headers: HeaderMap::new(),
        }
    }

    fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    fn error(&self, kind: ErrorKind) -> OssError {
        OssError::new(kind, self.operation, self.bucket, self.key)
    }

    fn header(&mut self, name: &str, value: &str) -> Result<(), OssError> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            self.error(ErrorKind::InvalidRequest)
                .with_context(format!("header name {name:?} is invalid"))
                .with_source(e)
        })?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|e| {
            self.error(ErrorKind::InvalidRequest)
                .with_context(format!("the value of header {name} is invalid"))
                .with_source(e)
        })?;
        self.headers.insert(name, value);
        Ok(())
    }

    fn put_headers(&mut self, options: &PutObjectOptions) -> Result<(), OssError> {
        for (name, value) in options.content.pairs() {
            self.header(name, value)?;
        }
        for (name, value) in &options.user_metadata {
            self.header(
                &format!("{USER_META_PREFIX}{}", name.to_ascii_lowercase()),
                value,
            )?;
        }
        if let Some(class) = &options.storage_class {
            self.header("x-oss-storage-class", class.as_str())?;
        }
        Ok(())
    }
}

/// A request body for one attempt.
enum SendBody {
    None,
    Small(Bytes),
    Upload(reqwest::Body, u64),
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl OssClient {
    /// A client with its own HTTP connection pool, built with the configured connect timeout.
    pub fn new(config: OssConfig, credentials: Credentials) -> Result<Self, OssError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("oss2s3-transfer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OssError::config("cannot build the HTTP client").with_source(e))?;
        Self::with_http_client(config, credentials, http)
    }

    /// A client that sends its requests through `http`, which brings its own connect timeout,
    /// DNS overrides and TLS settings. Do not give it a total timeout: bodies are streamed.
    pub fn with_http_client(
        config: OssConfig,
        credentials: Credentials,
        http: reqwest::Client,
    ) -> Result<Self, OssError> {
        let base = config.endpoint_url()?;
        let is_ip = base
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok();
        if config.addressing == AddressingStyle::VirtualHosted && is_ip {
            return Err(OssError::config(format!(
                "endpoint {base} is an IP address, which cannot take a bucket subdomain; \
                 use path-style addressing"
            )));
        }
        if credentials.access_key_id.is_empty() {
            return Err(OssError::config("the access key ID is empty"));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                signer: OssSigner::new(config.region.clone()),
                base,
                config,
                credentials: RwLock::new(Arc::new(credentials)),
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &OssConfig {
        &self.inner.config
    }

    /// Replaces the credentials for all later requests, in this client and all its clones.
    pub fn set_credentials(&self, credentials: Credentials) {
        *self
            .inner
            .credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(credentials);
    }

    /// The access key ID currently in use (never the secret).
    pub fn access_key_id(&self) -> String {
        self.credentials().access_key_id.clone()
    }

    fn credentials(&self) -> Arc<Credentials> {
        Arc::clone(
            &self
                .inner
                .credentials
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Builds, signs and sends one attempt; non-success statuses become errors.
    async fn send(
        &self,
        call: &Call<'_>,
        body: SendBody,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, OssError> {
        let url = super::config::request_url(
            &self.inner.base,
            self.inner.config.addressing,
            call.bucket,
            call.key,
            &call.query,
        )
        .map_err(|reason| call.error(ErrorKind::InvalidRequest).with_context(reason))?;
        let mut headers = call.headers.clone();
        let body = match body {
            SendBody::None => None,
            SendBody::Small(bytes) => Some(reqwest::Body::from(bytes)),
            SendBody::Upload(body, len) => {
                headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
                Some(body)
            }
        };
        let empty = HeaderMap::new();
        let signable = SignableRequest {
            method: call.method.as_str(),
            bucket: Some(call.bucket),
            key: call.key,
            query: &call.query,
            headers: &empty,
        };
        self.inner
            .signer
            .sign(&self.credentials(), signable, &mut headers, &[], Utc::now());
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|e| OssError::from_transport(call.operation, call.bucket, call.key, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let error_body = read_limited(response, self.inner.config.request_timeout).await;
        Err(OssError::from_response(
            call.operation,
            call.bucket,
            call.key,
            status,
            &headers,
            &error_body,
        ))
    }

    /// Sends a request without a large body, retrying, and reads the whole response.
    async fn simple(
        &self,
        call: &Call<'_>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), OssError> {
        let timeout = self.inner.config.request_timeout;
        with_retries(&self.inner.config.retry, || async {
            let send_body = match &body {
                Some(b) => SendBody::Small(b.clone()),
                None => SendBody::None,
            };
            let response = self.send(call, send_body, Some(timeout)).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| OssError::from_transport(call.operation, call.bucket, call.key, e))?;
            Ok((status, headers, bytes))
        })
        .await
    }

    /// Sends an upload; replayable bodies are retried, streams are sent once. Checks the CRC-64
    /// OSS reports against the bytes sent.
    async fn upload(&self, call: &Call<'_>, body: PutBody) -> Result<PutObjectOutput, OssError> {
        match body {
            PutBody::Bytes(bytes) => {
                with_retries(&self.inner.config.retry, || {
                    let (body, progress) =
                        body::upload_stream(body::chunked(bytes.clone()), bytes.len() as u64);
                    self.upload_once(call, body, bytes.len() as u64, progress)
                })
                .await
            }
            PutBody::Stream { len, stream } => {
                let (body, progress) = body::upload_stream(stream, len);
                self.upload_once(call, body, len, progress).await
            }
        }
    }

    async fn upload_once(
        &self,
        call: &Call<'_>,
        body: reqwest::Body,
        len: u64,
        progress: SharedProgress,
    ) -> Result<PutObjectOutput, OssError> {
        let send = self.send(call, SendBody::Upload(body, len), None);
        let response = stall_guard(send, &progress, self.inner.config.read_timeout, call).await?;
        let headers = response.headers().clone();
        // Drain the (empty) body so the connection can be reused.
        let _ = read_limited(response, self.inner.config.request_timeout).await;
        let output = put_output(&headers);
        let (sent_crc, sent_len) = body::sent_crc(&progress);
        if let Some(reported) = output.crc64
            && sent_len == len
            && reported != sent_crc
        {
            return Err(call
                .error(ErrorKind::ChecksumMismatch)
                .with_context(format!(
                    "sent CRC-64 {sent_crc}, OSS stored {reported} (request id {})",
                    output.request_id.as_deref().unwrap_or("?")
                )));
        }
        Ok(output)
    }

    /// HeadObject: the object's metadata.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, OssError> {
        let call = Call::new("HeadObject", Method::HEAD, bucket, Some(key));
        let (_, headers, _) = self.simple(&call, None).await?;
        ObjectMeta::from_headers(&headers).ok_or_else(|| {
            call.error(ErrorKind::InvalidResponse)
                .with_context("the response has no Content-Length")
        })
    }

    /// GetObject: the metadata and a streamed body. Retries until the response headers arrive;
    /// a failure while the body streams is returned from the body, for the caller to decide.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        options: &GetObjectOptions,
    ) -> Result<GetObjectOutput, OssError> {
        let mut call = Call::new("GetObject", Method::GET, bucket, Some(key));
        if let Some(range) = &options.range {
            call.header("range", &range.header())?;
            // Without this, OSS answers an unsatisfiable range with the whole object (200).
            call.header("x-oss-range-behavior", "standard")?;
        }
        if let Some(etag) = &options.if_match {
            call.header("if-match", etag)?;
        }
        if let Some(etag) = &options.if_none_match {
            call.header("if-none-match", etag)?;
        }
        let timeout = self.inner.config.request_timeout;
        let response = with_retries(&self.inner.config.retry, || async {
            match tokio::time::timeout(timeout, self.send(&call, SendBody::None, None)).await {
                Ok(result) => result,
                Err(_) => Err(call
                    .error(ErrorKind::Timeout)
                    .with_context(format!("no response headers within {timeout:?}"))),
            }
        })
        .await?;
        let headers = response.headers();
        let meta = ObjectMeta::from_headers(headers).ok_or_else(|| {
            call.error(ErrorKind::InvalidResponse)
                .with_context("the response has no Content-Length")
        })?;
        let content_length = header_string(headers, "content-length").and_then(|v| v.parse().ok());
        let content_range = header_string(headers, "content-range")
            .as_deref()
            .and_then(parse_content_range);
        if let Some(range) = &options.range {
            let matches = content_range.is_some_and(|r| r.first == range.first);
            if response.status() != StatusCode::PARTIAL_CONTENT || !matches {
                return Err(call.error(ErrorKind::InvalidResponse).with_context(format!(
                    "asked for {}, got HTTP {} with Content-Range {:?}",
                    range.header(),
                    response.status().as_u16(),
                    content_range
                )));
            }
        }
        // The CRC header describes the whole object, so only a whole-object GET can be checked.
        let expected_crc = if content_range.is_none() {
            meta.crc64
        } else {
            None
        };
        let origin = BodyOrigin {
            operation: call.operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        let body = ObjectBody::new(
            response,
            origin,
            content_length,
            expected_crc,
            self.inner.config.read_timeout,
        );
        Ok(GetObjectOutput {
            meta,
            content_range,
            body,
        })
    }

    /// PutObject. An in-memory body is retried on retryable errors; a stream is sent once.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: PutBody,
        options: &PutObjectOptions,
    ) -> Result<PutObjectOutput, OssError> {
        let mut call = Call::new("PutObject", Method::PUT, bucket, Some(key));
        call.put_headers(options)?;
        self.upload(&call, body).await
    }

    /// DeleteObject. Succeeds also when the object does not exist (OSS answers 204 either way).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), OssError> {
        let call = Call::new("DeleteObject", Method::DELETE, bucket, Some(key));
        self.simple(&call, None).await.map(|_| ())
    }

    /// One page of ListObjectsV2, always with `encoding-type=url`, decoded.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        request: &ListObjectsV2Request,
    ) -> Result<ListObjectsPage, OssError> {
        let mut call = Call::new("ListObjectsV2", Method::GET, bucket, None)
            .query("list-type", "2")
            .query("encoding-type", "url");
        let optional = [
            ("prefix", request.prefix.clone()),
            ("continuation-token", request.continuation_token.clone()),
            ("max-keys", request.max_keys.map(|n| n.to_string())),
            ("start-after", request.start_after.clone()),
            ("delimiter", request.delimiter.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                call = call.query(name, value);
            }
        }
        let (_, _, body) = self.simple(&call, None).await?;
        let text = std::str::from_utf8(&body).map_err(|e| {
            call.error(ErrorKind::InvalidResponse)
                .with_context("the listing is not UTF-8")
                .with_source(e)
        })?;
        xml::parse_list_objects_v2(text)
            .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))
    }

    /// Every object under `request`'s prefix, page after page, as one stream.
    pub fn list_all_objects(
        &self,
        bucket: &str,
        request: ListObjectsV2Request,
    ) -> BoxStream<'static, Result<ListedObject, OssError>> {
        let client = self.clone();
        let bucket = bucket.to_owned();
        // State: the next request, or None once the last page was read.
        let pages = stream::try_unfold(Some(request), move |next| {
            let client = client.clone();
            let bucket = bucket.clone();
            async move {
                let Some(request) = next else {
                    return Ok(None);
                };
                let page = client.list_objects_v2(&bucket, &request).await?;
                let following = match (&page.next_continuation_token, page.is_truncated) {
                    (Some(token), true) => Some(ListObjectsV2Request {
                        continuation_token: Some(token.clone()),
                        start_after: None,
                        ..request
                    }),
                    (None, true) => {
                        return Err(OssError::new(
                            ErrorKind::InvalidResponse,
                            "ListObjectsV2",
                            bucket.clone(),
                            None,
                        )
                        .with_context("a truncated page has no NextContinuationToken"));
                    }
                    _ => None,
                };
                Ok(Some((page.objects, following)))
            }
        });
        pages
            .map(|page| match page {
                Ok(objects) => stream::iter(objects.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::iter([Err(e)]).right_stream(),
            })
            .flatten()
            .boxed()
    }

    /// InitiateMultipartUpload: returns the upload ID.
    pub async fn initiate_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        options: &PutObjectOptions,
    ) -> Result<String, OssError> {
        let mut call = Call::new("InitiateMultipartUpload", Method::POST, bucket, Some(key))
            .query("uploads", "");
        call.put_headers(options)?;
        let (_, _, body) = self.simple(&call, Some(Bytes::new())).await?;
        xml::parse_initiate(&String::from_utf8_lossy(&body))
            .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))
    }

    /// UploadPart. Part numbers run from 1 to 10,000; every part but the last must be at least
    /// 100 KB. An in-memory body is retried; a stream is sent once.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: PutBody,
    ) -> Result<UploadPartOutput, OssError> {
        let call = Call::new("UploadPart", Method::PUT, bucket, Some(key))
            .query("partNumber", part_number.to_string())
            .query("uploadId", upload_id);
        self.upload(&call, body).await
    }

    /// CompleteMultipartUpload with the given parts (sorted by number here).
    ///
    /// Retried like any other call. If an earlier attempt did complete the upload but its answer
    /// was lost, the retry fails with `NoSuchUpload` ([`ErrorKind::NotFound`]); callers should
    /// then HEAD the object.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<CompleteMultipartUploadOutput, OssError> {
        let mut call = Call::new("CompleteMultipartUpload", Method::POST, bucket, Some(key))
            .query("uploadId", upload_id);
        call.header("content-type", "application/xml")?;
        let pairs: Vec<(u32, String)> = parts
            .iter()
            .map(|p| (p.part_number, p.etag.clone()))
            .collect();
        let body = Bytes::from(xml::complete_body(&pairs));
        let (_, headers, body) = self.simple(&call, Some(body)).await?;
        let mut output = put_output(&headers);
        if output.etag.is_empty() {
            let etag = xml::parse_complete(&String::from_utf8_lossy(&body))
                .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))?;
            output.etag = etag.unwrap_or_default();
        }
        Ok(output)
    }

    /// AbortMultipartUpload: discards the upload and its parts.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), OssError> {
        let call = Call::new("AbortMultipartUpload", Method::DELETE, bucket, Some(key))
            .query("uploadId", upload_id);
        self.simple(&call, None).await.map(|_| ())
    }

    /// ListParts: every part uploaded so far, in part-number order, across all pages.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, OssError> {
        let mut parts = Vec::new();
        let mut marker: Option<u32> = None;
        loop {
            let mut call = Call::new("ListParts", Method::GET, bucket, Some(key))
                .query("uploadId", upload_id)
                .query("max-parts", LIST_PARTS_PAGE.to_string());
            if let Some(marker) = marker {
                call = call.query("part-number-marker", marker.to_string());
            }
            let (_, _, body) = self.simple(&call, None).await?;
            let page = xml::parse_list_parts(&String::from_utf8_lossy(&body))
                .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))?;
            parts.extend(page.parts);
            match (page.is_truncated, page.next_part_number_marker) {
                (true, Some(next)) if marker.is_none_or(|m| next > m) => marker = Some(next),
                (true, _) => {
                    return Err(call
                        .error(ErrorKind::InvalidResponse)
                        .with_context("a truncated page has no usable NextPartNumberMarker"));
                }
                (false, _) => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// PutSymlink: makes `key` a symbolic link to `target` (sent as `x-oss-symlink-target`; OSS
    /// expects non-ASCII targets URL-encoded).
    pub async fn put_symlink(&self, bucket: &str, key: &str, target: &str) -> Result<(), OssError> {
        let mut call = Call::new("PutSymlink", Method::PUT, bucket, Some(key)).query("symlink", "");
        call.header("x-oss-symlink-target", target)?;
        self.simple(&call, Some(Bytes::new())).await.map(|_| ())
    }

    /// GetSymlink: the key a symbolic link points to, as OSS sent it in `x-oss-symlink-target`.
    pub async fn get_symlink(&self, bucket: &str, key: &str) -> Result<String, OssError> {
        let call = Call::new("GetSymlink", Method::GET, bucket, Some(key)).query("symlink", "");
        let (_, headers, _) = self.simple(&call, None).await?;
        headers
            .get("x-oss-symlink-target")
            .map(super::meta::header_text)
            .ok_or_else(|| {
                call.error(ErrorKind::InvalidResponse)
                    .with_context("the response has no x-oss-symlink-target")
            })
    }

    /// RestoreObject: makes an archived object readable for `days` days. `tier` applies to
    /// ColdArchive and DeepColdArchive objects; leave it `None` for Archive.
    pub async fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        days: u32,
        tier: Option<RestoreTier>,
    ) -> Result<RestoreOutcome, OssError> {
        let mut call =
            Call::new("RestoreObject", Method::POST, bucket, Some(key)).query("restore", "");
        call.header("content-type", "application/xml")?;
        let body = Bytes::from(xml::restore_body(days, tier));
        match self.simple(&call, Some(body)).await {
            Ok((StatusCode::ACCEPTED, _, _)) => Ok(RestoreOutcome::Started),
            Ok(_) => Ok(RestoreOutcome::AlreadyRestored),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => {
                Ok(RestoreOutcome::AlreadyInProgress)
            }
            Err(e) => Err(e),
        }
    }
}

/// The ETag, CRC-64 and request ID of an upload response.
fn put_output(headers: &HeaderMap) -> PutObjectOutput {
    PutObjectOutput {
        etag: header_string(headers, "etag").unwrap_or_default(),
        crc64: header_string(headers, "x-oss-hash-crc64ecma").and_then(|v| v.trim().parse().ok()),
        request_id: header_string(headers, REQUEST_ID),
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a response body, giving up after `timeout`.
async fn read_limited(mut response: reqwest::Response, timeout: Duration) -> Vec<u8> {
    let read = async {
        let mut buffer = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= MAX_ERROR_BODY {
                buffer.truncate(MAX_ERROR_BODY);
                break;
            }
        }
        buffer
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_default()
}

/// Runs an upload, failing it with a timeout when the body makes no progress for `idle` (and,
/// once the body is sent, when the answer takes longer than `idle`).
async fn stall_guard<T>(
    send: impl Future<Output = Result<T, OssError>>,
    progress: &SharedProgress,
    idle: Duration,
    call: &Call<'_>,
) -> Result<T, OssError> {
    tokio::pin!(send);
    loop {
        let deadline = body::last_progress(progress) + idle;
        tokio::select! {
            result = &mut send => return result,
            () = tokio::time::sleep_until(deadline) => {
                if body::last_progress(progress) + idle <= tokio::time::Instant::now() {
                    return Err(call.error(ErrorKind::Timeout).with_context(format!(
                        "the upload made no progress for {idle:?}"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::config::Endpoint;

    fn client(endpoint: &str, addressing: AddressingStyle) -> Result<OssClient, OssError> {
        OssClient::new(
            OssConfig::new("cn-hangzhou")
                .with_endpoint(Endpoint::Custom(endpoint.into()))
                .with_addressing(addressing),
            Credentials::new("ak", "sk"),
        )
    }

    #[test]
    fn virtual_hosted_addressing_refuses_ip_endpoints() {
        let error = client("http://127.0.0.1:1", AddressingStyle::VirtualHosted)
            .expect_err("IP endpoints cannot be virtual-hosted");
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(client("http://127.0.0.1:1", AddressingStyle::PathStyle).is_ok());
        assert!(client("http://oss.test:1", AddressingStyle::VirtualHosted).is_ok());
    }

    #[test]
    fn clones_share_replaced_credentials() {
        let a = client("http://127.0.0.1:1", AddressingStyle::PathStyle).expect("client");
        let b = a.clone();
        a.set_credentials(Credentials::new("ak2", "sk2"));
        assert_eq!(b.access_key_id(), "ak2");
    }

    #[test]
    fn client_is_send_sync_and_debug_hides_secrets() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<OssClient>();
        let c = client("http://127.0.0.1:1", AddressingStyle::PathStyle).expect("client");
        assert!(!format!("{c:?}").contains("sk"));
    }

    #[test]
    fn byte_ranges_format_as_http_ranges() {
        assert_eq!(ByteRange::inclusive(0, 99).header(), "bytes=0-99");
        assert_eq!(ByteRange::from_offset(100).header(), "bytes=100-");
    }

    /// A client for a raw test server at `addr`, without retries and with short timeouts.
    fn raw_client(addr: std::net::SocketAddr) -> OssClient {
        OssClient::new(
            OssConfig::new("cn-hangzhou")
                .with_endpoint(Endpoint::Custom(format!("http://{addr}")))
                .with_addressing(AddressingStyle::PathStyle)
                .with_retry(crate::oss::RetryPolicy::no_retries())
                .with_read_timeout(Duration::from_millis(300)),
            Credentials::new("ak", "sk"),
        )
        .expect("client")
    }

    #[tokio::test]
    async fn stalled_download_body_times_out() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0_u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
            socket.write_all(head.as_bytes()).await.expect("write");
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let output = raw_client(addr)
            .get_object("b", "k", &GetObjectOptions::default())
            .await
            .expect("headers arrive");
        let error = output.body.collect().await.expect_err("body stalls");
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        server.abort();
    }

    #[tokio::test]
    async fn stalled_upload_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Accept the connection but never read from it, so the send buffers fill up.
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(socket);
        });
        let body = PutBody::from(vec![0_u8; 64 * 1024 * 1024]);
        let started = std::time::Instant::now();
        let error = raw_client(addr)
            .put_object("b", "k", body, &PutObjectOptions::default())
            .await
            .expect_err("upload stalls");
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        server.abort();
    }

    #[tokio::test]
    async fn refused_connection_is_a_retryable_network_error() {
        // Bind and drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let c = OssClient::new(
            OssConfig::new("cn-hangzhou")
                .with_endpoint(Endpoint::Custom(format!("http://127.0.0.1:{port}")))
                .with_addressing(AddressingStyle::PathStyle)
                .with_retry(crate::oss::RetryPolicy::no_retries()),
            Credentials::new("ak", "sk"),
        )
        .expect("client");
        let error = c.head_object("b", "k").await.expect_err("nothing listens");
        assert_eq!(error.kind(), ErrorKind::Network, "{error}");
        assert!(error.is_retryable());
    }
}
