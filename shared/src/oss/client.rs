//! The OSS REST client's core: signed requests on reqwest, the credentials provider, retries,
//! upload verification. The operations themselves are in `objects` and `multipart`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use reqwest::Url;

use super::body::{self, PutBody, SharedProgress};
use super::config::{AddressingStyle, OssConfig};
use super::credentials::{CredentialsError, ProvideCredentials, StaticCredentials};
use super::error::{ErrorKind, OssError, REQUEST_ID};
use super::meta::USER_META_PREFIX;
use super::request::{PutObjectOptions, PutObjectOutput};
use super::retry::with_retries;
use super::signer::{Credentials, OssSigner, SignableRequest};

/// The largest error body read into memory; OSS's error documents are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The header that makes a write fail when the key already exists.
pub(super) const FORBID_OVERWRITE: &str = "x-oss-forbid-overwrite";

/// The header that carries an STS session token.
const SECURITY_TOKEN: &str = "x-oss-security-token";

/// An OSS client. Cheap to clone: clones share the connection pool and the credentials
/// provider.
#[derive(Clone)]
pub struct OssClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: OssConfig,
    base: Url,
    signer: OssSigner,
    credentials: Arc<dyn ProvideCredentials>,
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
pub(super) struct Call<'a> {
    pub(super) operation: &'static str,
    method: Method,
    bucket: &'a str,
    key: Option<&'a str>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
}

impl<'a> Call<'a> {
    pub(super) fn new(
        operation: &'static str,
        method: Method,
        bucket: &'a str,
        key: Option<&'a str>,
    ) -> Self {
        Self {
            operation,
            method,
            bucket,
            key,
            query: Vec::new(),
            headers: HeaderMap::new(),
        }
    }

    pub(super) fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    pub(super) fn error(&self, kind: ErrorKind) -> OssError {
        OssError::new(kind, self.operation, self.bucket, self.key)
    }

    pub(super) fn header(&mut self, name: &str, value: &str) -> Result<(), OssError> {
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

    pub(super) fn put_headers(&mut self, options: &PutObjectOptions) -> Result<(), OssError> {
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
        if options.forbid_overwrite {
            self.header(FORBID_OVERWRITE, "true")?;
        }
        Ok(())
    }
}

/// A request body for one attempt.
pub(super) enum SendBody {
    None,
    Small(Bytes),
    Upload(reqwest::Body, u64),
}

pub(super) fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl OssClient {
    /// A client with fixed credentials and its own HTTP connection pool, built with the
    /// configured connect timeout.
    pub fn new(config: OssConfig, credentials: Credentials) -> Result<Self, OssError> {
        if credentials.access_key_id.is_empty() {
            return Err(OssError::config("the access key ID is empty"));
        }
        Self::with_provider(config, Arc::new(StaticCredentials::new(credentials)))
    }

    /// A client that asks `credentials` for its keys before each request (and again when OSS
    /// rejects them), with its own HTTP connection pool.
    pub fn with_provider(
        config: OssConfig,
        credentials: Arc<dyn ProvideCredentials>,
    ) -> Result<Self, OssError> {
        // Signed headers must never follow a redirect to another host.
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("oss2s3-transfer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OssError::config("cannot build the HTTP client").with_source(e))?;
        Self::with_http_client(config, credentials, http)
    }

    /// A client that sends its requests through `http`, which brings its own connect timeout,
    /// DNS overrides and TLS settings. Do not give it a total timeout (bodies are streamed), and
    /// do not let it follow redirects (the signed headers would go along).
    pub fn with_http_client(
        config: OssConfig,
        credentials: Arc<dyn ProvideCredentials>,
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
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                signer: OssSigner::new(config.region.clone()),
                base,
                config,
                credentials,
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &OssConfig {
        &self.inner.config
    }

    /// The credentials provider.
    pub fn credentials_provider(&self) -> &Arc<dyn ProvideCredentials> {
        &self.inner.credentials
    }

    /// The configured retry policy.
    pub(super) fn retry_policy(&self) -> &super::RetryPolicy {
        &self.inner.config.retry
    }

    /// The configured timeout for requests without a streamed body.
    pub(super) fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout
    }

    /// The configured timeout for a stalled body.
    pub(super) fn read_timeout(&self) -> Duration {
        self.inner.config.read_timeout
    }

    /// Runs `attempt` with the provider's credentials. When OSS rejects them, asks the provider
    /// for fresh ones and, if they differ and the request can be sent again (`replayable`),
    /// runs `attempt` once more with them.
    pub(super) async fn authorized<T, F, Fut>(
        &self,
        call: &Call<'_>,
        replayable: bool,
        attempt: F,
    ) -> Result<T, OssError>
    where
        F: Fn(Arc<Credentials>) -> Fut,
        Fut: Future<Output = Result<T, OssError>>,
    {
        let loaded = self
            .inner
            .credentials
            .credentials()
            .await
            .map_err(|e| credentials_error(call, e))?;
        let error = match attempt(Arc::clone(&loaded)).await {
            Err(error) if error.is_credential_error() => error,
            other => return other,
        };
        let fresh = match self.inner.credentials.refresh(&loaded).await {
            Ok(fresh) => fresh,
            Err(refresh) => {
                return Err(
                    error.with_context(format!("re-reading the credentials failed: {refresh}"))
                );
            }
        };
        if *fresh == *loaded || !replayable {
            return Err(error);
        }
        tracing::info!(
            operation = call.operation,
            access_key_id = %fresh.access_key_id,
            "OSS rejected the credentials; retrying with fresh ones"
        );
        attempt(fresh).await
    }

    /// Builds, signs and sends one attempt; non-success statuses become errors.
    /// Signs `headers` for `call` and marks the signature and the session token sensitive,
    /// which keeps them out of logs and debug output.
    fn sign(&self, call: &Call<'_>, credentials: &Credentials, headers: &mut HeaderMap) {
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
            .sign(credentials, signable, headers, &[], Utc::now());
        for name in [http::header::AUTHORIZATION.as_str(), SECURITY_TOKEN] {
            if let Some(value) = headers.get_mut(name) {
                value.set_sensitive(true);
            }
        }
    }

    pub(super) async fn send(
        &self,
        call: &Call<'_>,
        credentials: &Credentials,
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
        self.sign(call, credentials, &mut headers);
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
    pub(super) async fn simple(
        &self,
        call: &Call<'_>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), OssError> {
        self.authorized(call, true, |credentials| {
            let body = body.clone();
            async move {
                with_retries(&self.inner.config.retry, || {
                    self.simple_once(call, &credentials, body.clone())
                })
                .await
            }
        })
        .await
    }

    /// One attempt of [`simple`](Self::simple): sends the request and reads the whole response.
    pub(super) async fn simple_once(
        &self,
        call: &Call<'_>,
        credentials: &Credentials,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), OssError> {
        let send_body = match body {
            Some(b) => SendBody::Small(b),
            None => SendBody::None,
        };
        let timeout = self.inner.config.request_timeout;
        let response = self
            .send(call, credentials, send_body, Some(timeout))
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| OssError::from_transport(call.operation, call.bucket, call.key, e))?;
        Ok((status, headers, bytes))
    }

    /// Sends an upload; replayable bodies are retried, streams are sent once. Checks the CRC-64
    /// OSS reports against the bytes sent.
    pub(super) async fn upload(
        &self,
        call: &Call<'_>,
        body: PutBody,
    ) -> Result<PutObjectOutput, OssError> {
        match body {
            PutBody::Bytes(bytes) => {
                self.authorized(call, true, |credentials| {
                    let bytes = bytes.clone();
                    async move {
                        with_retries(&self.inner.config.retry, || {
                            let (body, progress) =
                                body::upload_stream(body::chunked(&bytes), bytes.len() as u64);
                            self.upload_once(call, &credentials, body, bytes.len() as u64, progress)
                        })
                        .await
                    }
                })
                .await
            }
            PutBody::Stream { len, stream } => {
                // A stream is sent once: a rejection refreshes the credentials for the next
                // request, but this one fails.
                let stream = std::sync::Mutex::new(Some(stream));
                self.authorized(call, false, |credentials| {
                    let taken = stream
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    async move {
                        let Some(stream) = taken else {
                            return Err(call
                                .error(ErrorKind::InvalidRequest)
                                .with_context("a streamed body cannot be sent twice"));
                        };
                        let (body, progress) = body::upload_stream(stream, len);
                        self.upload_once(call, &credentials, body, len, progress)
                            .await
                    }
                })
                .await
            }
        }
    }

    async fn upload_once(
        &self,
        call: &Call<'_>,
        credentials: &Credentials,
        body: reqwest::Body,
        len: u64,
        progress: SharedProgress,
    ) -> Result<PutObjectOutput, OssError> {
        let send = self.send(call, credentials, SendBody::Upload(body, len), None);
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
}

/// The ETag, CRC-64 and request ID of an upload response.
pub(super) fn put_output(headers: &HeaderMap) -> PutObjectOutput {
    PutObjectOutput {
        etag: header_string(headers, "etag").unwrap_or_default(),
        crc64: header_string(headers, "x-oss-hash-crc64ecma").and_then(|v| v.trim().parse().ok()),
        request_id: header_string(headers, REQUEST_ID),
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a response body, giving up after `timeout`.
pub(super) async fn read_limited(mut response: reqwest::Response, timeout: Duration) -> Vec<u8> {
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

/// The error for credentials the provider could not load.
fn credentials_error(call: &Call<'_>, error: CredentialsError) -> OssError {
    call.error(ErrorKind::InvalidCredentials)
        .with_context("the credentials could not be loaded")
        .with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::config::Endpoint;
    use crate::oss::{ByteRange, GetObjectOptions, PutObjectOptions};

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
        assert!(client("https://oss.test:1", AddressingStyle::VirtualHosted).is_ok());
    }

    #[test]
    fn signed_headers_hide_the_signature_and_the_session_token() {
        let client = client("https://oss.test", AddressingStyle::VirtualHosted).expect("client");
        let call = Call::new("GetObject", Method::GET, "b", Some("k"));
        let credentials = Credentials {
            security_token: Some("SESSION-TOKEN-VALUE".into()),
            ..Credentials::new("ak", "sk")
        };
        let mut headers = HeaderMap::new();
        client.sign(&call, &credentials, &mut headers);
        let authorization = headers.get(http::header::AUTHORIZATION).expect("signed");
        assert!(authorization.is_sensitive());
        assert!(headers.get(SECURITY_TOKEN).expect("token").is_sensitive());
        let shown = format!("{headers:?}");
        assert!(!shown.contains("SESSION-TOKEN-VALUE"), "{shown}");
        assert!(!shown.contains("Signature="), "{shown}");
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
                .with_retry(crate::oss::config::DEFAULT_RETRY.no_retries())
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
    async fn redirects_are_not_followed_with_the_signed_headers() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let target = elsewhere.local_addr().expect("addr");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0_u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}/b/k\r\nx-oss-request-id: R\r\nContent-Length: 0\r\n\r\n"
            );
            socket.write_all(head.as_bytes()).await.expect("write");
        });
        let error = raw_client(addr)
            .head_object("b", "k")
            .await
            .expect_err("a redirect is an error");
        assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
        let followed = tokio::time::timeout(Duration::from_millis(300), elsewhere.accept()).await;
        assert!(followed.is_err(), "the client went to the redirect target");
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
        let body = PutBody::from(vec![0_u8; crate::size::as_usize(64 * crate::size::MIB)]);
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
                .with_retry(crate::oss::config::DEFAULT_RETRY.no_retries()),
            Credentials::new("ak", "sk"),
        )
        .expect("client");
        let error = c.head_object("b", "k").await.expect_err("nothing listens");
        assert_eq!(error.kind(), ErrorKind::Network, "{error}");
        assert!(error.is_retryable());
    }
}
