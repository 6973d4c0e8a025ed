//! Typed OSS errors: what went wrong, on which operation and object, and whether to retry.
//!
//! OSS reports errors as `<Error><Code/><Message/><RequestId/><HostId/><EC/></Error>` with the HTTP
//! status, plus the headers `x-oss-request-id` and `x-oss-ec`. HEAD responses carry no body; OSS
//! then puts the same XML, base64-encoded, into the `x-oss-err` header.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

/// The header with the OSS request ID.
pub(crate) const REQUEST_ID: &str = "x-oss-request-id";
/// The header with OSS's detailed error code (EC).
const EC: &str = "x-oss-ec";
/// The header with the base64 error XML on HEAD responses.
const ERR: &str = "x-oss-err";
/// The throttling header. Its value is a decimal number of **milliseconds**: OSS's limits page
/// says "`x-oss-qos-delay-time: number` ... indicates the throttling duration in milliseconds".
pub(crate) const QOS_DELAY_TIME: &str = "x-oss-qos-delay-time";

/// What kind of failure an [`OssError`] is; decides retrying and how callers react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 404: the bucket, object or multipart upload does not exist (NoSuchKey, NoSuchBucket, NoSuchUpload).
    NotFound,
    /// 412: an `If-Match` (or similar) precondition did not hold; the object changed.
    PreconditionFailed,
    /// 304: an `If-None-Match` or `If-Modified-Since` condition says the object is unchanged.
    NotModified,
    /// 403 other than the credential and object-state cases: the key lacks permission.
    AccessDenied,
    /// The credentials are wrong, unknown or expired; re-read them and try again.
    InvalidCredentials,
    /// The object must be restored first (Archive, ColdArchive, DeepColdArchive).
    InvalidObjectState,
    /// OSS throttled the request (429, 503 with a throttling code, or `x-oss-qos-delay-time`).
    Throttled,
    /// A 5xx server error other than throttling.
    ServerError,
    /// The connection could not be made or broke (refused, reset, closed).
    Network,
    /// A connect, request or read timeout elapsed.
    Timeout,
    /// The response body ended before `Content-Length` bytes arrived.
    TruncatedBody,
    /// The CRC-64 of the bytes sent or received differs from the one OSS reported.
    ChecksumMismatch,
    /// Any other 4xx: the request itself is wrong (bad key, bad part, malformed XML, ...).
    InvalidRequest,
    /// OSS answered with something this client cannot read.
    InvalidResponse,
    /// The client configuration is unusable (endpoint, addressing style, credentials).
    Config,
}

impl ErrorKind {
    /// Whether a failure of this kind may succeed when tried again unchanged.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled
                | Self::ServerError
                | Self::Network
                | Self::Timeout
                | Self::TruncatedBody
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::PreconditionFailed => "precondition failed",
            Self::NotModified => "not modified",
            Self::AccessDenied => "access denied",
            Self::InvalidCredentials => "invalid credentials",
            Self::InvalidObjectState => "object must be restored first",
            Self::Throttled => "throttled",
            Self::ServerError => "server error",
            Self::Network => "network error",
            Self::Timeout => "timed out",
            Self::TruncatedBody => "response body truncated",
            Self::ChecksumMismatch => "CRC-64 mismatch",
            Self::InvalidRequest => "invalid request",
            Self::InvalidResponse => "invalid response",
            Self::Config => "invalid configuration",
        }
    }
}

/// The fields of OSS's error XML and headers, as far as they were present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDetails {
    /// The HTTP status code.
    pub status: Option<u16>,
    /// OSS's error code, such as `NoSuchKey`.
    pub code: Option<String>,
    /// OSS's human-readable message.
    pub message: Option<String>,
    /// The request ID, from the XML or `x-oss-request-id`.
    pub request_id: Option<String>,
    /// The host ID from the XML.
    pub host_id: Option<String>,
    /// OSS's detailed error code (EC), from the XML or `x-oss-ec`.
    pub ec: Option<String>,
}

/// An error from an OSS operation.
///
/// Its `Display` names the operation, the bucket and key, the kind, and OSS's code, status and
/// request ID; it never includes credentials.
pub struct OssError {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    operation: &'static str,
    bucket: String,
    key: Option<String>,
    details: ServiceDetails,
    retry_after: Option<Duration>,
    context: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl OssError {
    /// A new error of `kind` for `operation` on `bucket`/`key`.
    pub fn new(
        kind: ErrorKind,
        operation: &'static str,
        bucket: impl Into<String>,
        key: Option<&str>,
    ) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                operation,
                bucket: bucket.into(),
                key: key.map(str::to_owned),
                details: ServiceDetails::default(),
                retry_after: None,
                context: None,
                source: None,
            }),
        }
    }

    /// A client-side configuration error, not tied to an object.
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, "Configure", "", None).with_context(message)
    }

    /// Adds a short explanation written by this client.
    pub(crate) fn with_context(mut self, context: impl Into<String>) -> Self {
        self.inner.context = Some(context.into());
        self
    }

    /// Adds the underlying cause.
    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Replaces the service details.
    pub(crate) fn with_details(mut self, details: ServiceDetails) -> Self {
        self.inner.details = details;
        self
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The operation that failed, such as `GetObject`.
    pub fn operation(&self) -> &'static str {
        self.inner.operation
    }

    /// The bucket the operation addressed.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The object key, for object-level operations.
    pub fn key(&self) -> Option<&str> {
        self.inner.key.as_deref()
    }

    /// The explanation this client added (why it refused a request before sending it, say).
    pub fn context(&self) -> Option<&str> {
        self.inner.context.as_deref()
    }

    /// OSS's status, code, message and IDs, as far as the response carried them.
    pub fn details(&self) -> &ServiceDetails {
        &self.inner.details
    }

    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<u16> {
        self.inner.details.status
    }

    /// OSS's error code, such as `NoSuchKey` or `SignatureDoesNotMatch`.
    pub fn code(&self) -> Option<&str> {
        self.inner.details.code.as_deref()
    }

    /// The OSS request ID, for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.details.request_id.as_deref()
    }

    /// Whether trying the same request again may succeed (see [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.inner.kind.is_retryable()
    }

    /// Whether the credentials were rejected, so fresh ones should be loaded before retrying.
    pub fn is_credential_error(&self) -> bool {
        self.inner.kind == ErrorKind::InvalidCredentials
    }

    /// Whether the object (or bucket or upload) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.inner.kind == ErrorKind::NotFound
    }

    /// How long OSS asked the client to wait, from `x-oss-qos-delay-time` (milliseconds on the wire).
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Builds the error for a non-success response from its status, headers and body.
    pub(crate) fn from_response(
        operation: &'static str,
        bucket: &str,
        key: Option<&str>,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let details = service_details(status, headers, body);
        let retry_after = qos_delay(headers);
        let from_oss =
            details.code.is_some() || details.request_id.is_some() || status.as_u16() < 400;
        let (kind, context) = if from_oss {
            let kind = classify(status, details.code.as_deref(), retry_after.is_some());
            (kind, None)
        } else {
            // Neither an OSS error document nor a request ID: a proxy, load balancer or
            // captive portal answered, not OSS. Whatever its status, that is transient.
            (
                ErrorKind::ServerError,
                Some("the answer did not come from OSS (no OSS error document or request ID)"),
            )
        };
        let mut error = Self::new(kind, operation, bucket, key).with_details(details);
        if let Some(context) = context {
            error = error.with_context(context);
        }
        error.inner.retry_after = retry_after;
        error
    }

    /// Maps a transport error from reqwest.
    pub(crate) fn from_transport(
        operation: &'static str,
        bucket: &str,
        key: Option<&str>,
        error: reqwest::Error,
    ) -> Self {
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else if error.is_decode() {
            ErrorKind::InvalidResponse
        } else if error.is_builder() {
            ErrorKind::InvalidRequest
        } else {
            ErrorKind::Network
        };
        // reqwest's Display includes the URL, which holds no secrets (requests are signed in
        // headers), but keep the message short: the source chain carries the detail.
        Self::new(kind, operation, bucket, key).with_source(error.without_url())
    }
}

impl fmt::Display for OssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        write!(f, "OSS {} oss://{}", i.operation, i.bucket)?;
        if let Some(key) = &i.key {
            write!(f, "/{key}")?;
        }
        write!(f, ": {}", i.kind.describe())?;
        let d = &i.details;
        if let Some(status) = d.status {
            write!(f, " (HTTP {status}")?;
            if let Some(code) = &d.code {
                write!(f, " {code}")?;
            }
            if let Some(ec) = &d.ec {
                write!(f, ", EC {ec}")?;
            }
            if let Some(id) = &d.request_id {
                write!(f, ", request id {id}")?;
            }
            write!(f, ")")?;
        }
        if let Some(message) = &d.message {
            write!(f, ": {message}")?;
        }
        if let Some(context) = &i.context {
            write!(f, ": {context}")?;
        }
        if let Some(source) = &i.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for OssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("OssError")
            .field("kind", &i.kind)
            .field("operation", &i.operation)
            .field("bucket", &i.bucket)
            .field("key", &i.key)
            .field("details", &i.details)
            .field("retry_after", &i.retry_after)
            .field("context", &i.context)
            .field("source", &i.source)
            .finish()
    }
}

impl StdError for OssError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// OSS's error document.
#[derive(Debug, Default, Deserialize)]
#[serde(rename = "Error", rename_all = "PascalCase")]
struct ErrorXml {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    host_id: Option<String>,
    #[serde(rename = "EC")]
    ec: Option<String>,
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// An error response's details as the client reads them, public for the fuzz targets (feature
/// `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
pub fn fuzz_service_details(status: u16, headers: &HeaderMap, body: &[u8]) -> ServiceDetails {
    service_details(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers,
        body,
    )
}

/// Reads the error XML from the body, or from `x-oss-err` when the body is empty (HEAD).
fn service_details(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ServiceDetails {
    let mut xml_bytes = body.to_vec();
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(encoded) = headers.get(ERR)
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes())
    {
        xml_bytes = decoded;
    }
    let xml: ErrorXml = std::str::from_utf8(&xml_bytes)
        .ok()
        .and_then(|text| quick_xml::de::from_str(text).ok())
        .unwrap_or_default();
    let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    ServiceDetails {
        status: Some(status.as_u16()),
        code: nonempty(xml.code),
        message: nonempty(xml.message),
        request_id: nonempty(xml.request_id).or_else(|| header_str(headers, REQUEST_ID)),
        host_id: nonempty(xml.host_id),
        ec: nonempty(xml.ec).or_else(|| header_str(headers, EC)),
    }
}

/// The `x-oss-qos-delay-time` header as a duration (the value is in milliseconds).
pub(crate) fn qos_delay(headers: &HeaderMap) -> Option<Duration> {
    header_str(headers, QOS_DELAY_TIME)
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// OSS's 503 codes that mean "slow down" rather than "broken".
fn is_throttling_code(code: &str) -> bool {
    code.ends_with("LimitExceeded") || matches!(code, "SlowDown" | "Throttling" | "RequestLimited")
}

/// Chooses the kind for an error response.
pub(crate) fn classify(status: StatusCode, code: Option<&str>, qos_delay: bool) -> ErrorKind {
    let code = code.unwrap_or("");
    if matches!(
        code,
        "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidSecurityToken"
            | "SecurityTokenExpired"
    ) {
        return ErrorKind::InvalidCredentials;
    }
    if code == "InvalidObjectState" {
        return ErrorKind::InvalidObjectState;
    }
    // 409 for a write with `x-oss-forbid-overwrite: true` to a key that exists.
    if code == "FileAlreadyExists" {
        return ErrorKind::PreconditionFailed;
    }
    match status.as_u16() {
        304 => ErrorKind::NotModified,
        412 => ErrorKind::PreconditionFailed,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::Throttled,
        403 => ErrorKind::AccessDenied,
        _ if qos_delay && (status.is_client_error() || status.is_server_error()) => {
            ErrorKind::Throttled
        }
        503 if is_throttling_code(code) => ErrorKind::Throttled,
        s if (500..600).contains(&s) => ErrorKind::ServerError,
        s if (400..500).contains(&s) => ErrorKind::InvalidRequest,
        _ => ErrorKind::InvalidResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const NO_SUCH_KEY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The specified key does not exist.</Message>
  <RequestId>5C3D9175B6FC201293AD****</RequestId>
  <HostId>bucket.oss-cn-hangzhou.aliyuncs.com</HostId>
  <Key>a/b.txt</Key>
  <EC>0026-00000001</EC>
</Error>"#;

    fn error_body(code: &str) -> String {
        format!("<Error><Code>{code}</Code><Message>m</Message><RequestId>R1</RequestId></Error>")
    }

    fn from(status: u16, headers: &HeaderMap, body: &str) -> OssError {
        OssError::from_response(
            "GetObject",
            "bucket",
            Some("a/b.txt"),
            StatusCode::from_u16(status).expect("status"),
            headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn parses_error_xml_fields() {
        let error = from(404, &HeaderMap::new(), NO_SUCH_KEY);
        assert_eq!(error.kind(), ErrorKind::NotFound);
        let d = error.details();
        assert_eq!(d.status, Some(404));
        assert_eq!(d.code.as_deref(), Some("NoSuchKey"));
        assert_eq!(
            d.message.as_deref(),
            Some("The specified key does not exist.")
        );
        assert_eq!(d.request_id.as_deref(), Some("5C3D9175B6FC201293AD****"));
        assert_eq!(
            d.host_id.as_deref(),
            Some("bucket.oss-cn-hangzhou.aliyuncs.com")
        );
        assert_eq!(d.ec.as_deref(), Some("0026-00000001"));
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_doctype_inside_an_element_is_no_panic() {
        // Found by the oss_error fuzz target: quick-xml before 0.40 panicked (unreachable) on
        // a DOCTYPE between two runs of text.
        let body =
            "<Error><Code>Signature<!DOCTYPE x [<!ENTITY e \"e\">]>DoesNotMatch</Code></Error>";
        let error = from(403, &HeaderMap::new(), body);
        assert_eq!(error.details().status, Some(403));
        // The DOCTYPE is skipped and the text around it read as one.
        assert_eq!(error.code(), Some("SignatureDoesNotMatch"));
        assert_eq!(error.kind(), ErrorKind::InvalidCredentials);
    }

    #[test]
    fn falls_back_to_headers_for_request_id_and_ec() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("RID"));
        headers.insert(EC, HeaderValue::from_static("0002-00000040"));
        let error = from(500, &headers, "not xml at all");
        assert_eq!(error.kind(), ErrorKind::ServerError);
        assert_eq!(error.request_id(), Some("RID"));
        assert_eq!(error.details().ec.as_deref(), Some("0002-00000040"));
        assert_eq!(error.code(), None);
        assert!(error.is_retryable());
    }

    #[test]
    fn reads_head_errors_from_x_oss_err() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(error_body("NoSuchKey"));
        headers.insert(ERR, HeaderValue::from_str(&encoded).expect("ascii"));
        let error = from(404, &headers, "");
        assert_eq!(error.code(), Some("NoSuchKey"));
        assert_eq!(error.request_id(), Some("R1"));
    }

    #[test]
    fn not_found_and_precondition_failed_are_distinct() {
        let h = HeaderMap::new();
        assert_eq!(
            from(404, &h, &error_body("NoSuchKey")).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            from(404, &h, &error_body("NoSuchBucket")).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            from(404, &h, &error_body("NoSuchUpload")).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            from(412, &h, &error_body("PreconditionFailed")).kind(),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(from(304, &h, "").kind(), ErrorKind::NotModified);
    }

    #[test]
    fn answers_that_did_not_come_from_oss_are_retried() {
        // A proxy's HTML page: no OSS error document, no request ID.
        let page = "<html><body><h1>403 Forbidden</h1>by the corporate proxy</body></html>";
        for status in [400, 403, 404, 502] {
            let error = from(status, &HeaderMap::new(), page);
            assert_eq!(error.kind(), ErrorKind::ServerError, "HTTP {status}");
            assert!(error.is_retryable());
            assert!(
                error.to_string().contains("did not come from OSS"),
                "{error}"
            );
        }
        // The same status from OSS itself keeps its meaning.
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("RID"));
        assert_eq!(from(403, &h, "").kind(), ErrorKind::AccessDenied);
        assert_eq!(from(404, &h, "").kind(), ErrorKind::NotFound);
    }

    #[test]
    fn forbidden_overwrites_are_failed_preconditions() {
        assert_eq!(
            from(409, &HeaderMap::new(), &error_body("FileAlreadyExists")).kind(),
            ErrorKind::PreconditionFailed
        );
    }

    #[test]
    fn credential_codes_are_credential_errors() {
        let h = HeaderMap::new();
        for code in [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "InvalidSecurityToken",
            "SecurityTokenExpired",
        ] {
            let error = from(403, &h, &error_body(code));
            assert_eq!(error.kind(), ErrorKind::InvalidCredentials, "{code}");
            assert!(error.is_credential_error());
            assert!(!error.is_retryable());
        }
        let denied = from(403, &h, &error_body("AccessDenied"));
        assert_eq!(denied.kind(), ErrorKind::AccessDenied);
        assert!(!denied.is_credential_error());
    }

    #[test]
    fn archive_objects_are_invalid_object_state() {
        let error = from(403, &HeaderMap::new(), &error_body("InvalidObjectState"));
        assert_eq!(error.kind(), ErrorKind::InvalidObjectState);
        assert!(!error.is_retryable());
    }

    #[test]
    fn throttling_is_retryable_with_delay_in_milliseconds() {
        let h = HeaderMap::new();
        assert_eq!(
            from(429, &h, &error_body("QpsLimitExceeded")).kind(),
            ErrorKind::Throttled
        );
        for code in [
            "TotalQpsLimitExceeded",
            "DownloadTrafficRateLimitExceeded",
            "ActiveRequestLimitExceeded",
            "SlowDown",
        ] {
            assert_eq!(
                from(503, &h, &error_body(code)).kind(),
                ErrorKind::Throttled,
                "{code}"
            );
        }
        assert_eq!(
            from(503, &h, &error_body("ServiceUnavailable")).kind(),
            ErrorKind::ServerError
        );

        let mut delayed = HeaderMap::new();
        delayed.insert(QOS_DELAY_TIME, HeaderValue::from_static("1500"));
        let error = from(500, &delayed, &error_body("InternalError"));
        assert_eq!(error.kind(), ErrorKind::Throttled);
        assert_eq!(error.retry_after(), Some(Duration::from_millis(1500)));
        assert!(error.is_retryable());
    }

    #[test]
    fn other_client_errors_are_invalid_requests() {
        let h = HeaderMap::new();
        assert_eq!(
            from(400, &h, &error_body("InvalidArgument")).kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            from(409, &h, &error_body("ObjectAlreadyExists")).kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(from(502, &h, "").kind(), ErrorKind::ServerError);
    }

    #[test]
    fn display_names_operation_object_code_and_request_id() {
        let error = from(404, &HeaderMap::new(), NO_SUCH_KEY);
        let text = error.to_string();
        for part in [
            "GetObject",
            "oss://bucket/a/b.txt",
            "NoSuchKey",
            "404",
            "5C3D9175B6FC201293AD****",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
    }

    #[test]
    fn retryable_split_matches_the_contract() {
        use ErrorKind::*;
        for kind in [Throttled, ServerError, Network, Timeout, TruncatedBody] {
            assert!(kind.is_retryable(), "{kind:?}");
        }
        for kind in [
            NotFound,
            PreconditionFailed,
            NotModified,
            AccessDenied,
            InvalidCredentials,
            InvalidObjectState,
            ChecksumMismatch,
            InvalidRequest,
            InvalidResponse,
            Config,
        ] {
            assert!(!kind.is_retryable(), "{kind:?}");
        }
    }
}
