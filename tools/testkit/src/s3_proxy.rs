//! A proxy in front of an S3 server: forwards every request unchanged (the `Host`
//! header included, so signatures still verify), counts them by S3 operation, and injects the
//! faults a real S3 answers with (error statuses with S3's error codes, bodies cut short,
//! latency, broken connections, answers lost after the request took effect), always or at a
//! rate, so that a test sees how a client copes without a fault-injecting S3 server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// What a fault does to a request it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Fault {
    /// Answer with this status and S3 error code (`503` and `SlowDown`, `500` and
    /// `InternalError`, `403` and `InvalidAccessKeyId`...) instead of forwarding.
    Status {
        /// The HTTP status.
        status: u16,
        /// The S3 error code in the XML body.
        code: String,
    },
    /// Forward, but end the response body after this many bytes (the connection breaks).
    Truncate {
        /// How many body bytes get through.
        after_bytes: usize,
    },
    /// Forward, but flip every bit of each response body byte whose offset is a multiple of
    /// `every` (from offset 0): a corrupted download of the right length.
    Corrupt {
        /// The stride of the corrupted bytes.
        every: usize,
    },
    /// Forward after this delay.
    Delay(Duration),
    /// Break the connection without forwarding (the request never reaches S3).
    Reset,
    /// Forward, then break the connection instead of answering: the request took effect, but
    /// the client never learns it.
    LoseAnswer,
}

/// A fault and the requests it applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct S3FaultRule {
    /// The S3 operation (as [`s3_operation`] names it), or every operation when `None`.
    pub operation: Option<String>,
    /// What happens.
    pub fault: S3Fault,
    /// Apply to this many requests, then retire; forever when `None`.
    pub times: Option<u32>,
    /// The probability (0 to 1) that a matching request is hit; always when `None`.
    pub rate: Option<f64>,
}

impl S3FaultRule {
    /// `fault` on every request of `operation` (every operation when `None`).
    pub fn new(operation: Option<&str>, fault: S3Fault) -> Self {
        Self {
            operation: operation.map(str::to_owned),
            fault,
            times: None,
            rate: None,
        }
    }

    /// Hits a matching request only with probability `rate`.
    #[must_use]
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    counts: Counts,
    faults: Arc<Mutex<Vec<S3FaultRule>>>,
}

/// A running proxy.
pub struct S3Proxy {
    port: u16,
    counts: Counts,
    connections: Arc<AtomicU64>,
    faults: Arc<Mutex<Vec<S3FaultRule>>>,
    server: tokio::task::JoinHandle<()>,
}

impl S3Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let counts = Counts::default();
        let faults = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            counts: Arc::clone(&counts),
            faults: Arc::clone(&faults),
        };
        let router = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections = Arc::new(AtomicU64::new(0));
        let accepted = Arc::clone(&connections);
        let listener = listener.tap_io(move |_| {
            accepted.fetch_add(1, Ordering::Relaxed);
        });
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("testkit: S3 proxy stopped: {e}");
            }
        });
        Ok(Self {
            port,
            counts,
            connections,
            faults,
            server,
        })
    }

    /// The proxy's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The counts so far, and resets them.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The TCP connections clients opened to the proxy so far (with keep-alive, far fewer
    /// than requests).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Adds a fault rule; the first matching rule applies.
    pub fn inject(&self, rule: S3FaultRule) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The fault for a request of `operation`, counting it against the rule's `times`.
fn take_fault(faults: &Mutex<Vec<S3FaultRule>>, operation: &str) -> Option<S3Fault> {
    let mut rules = faults.lock().unwrap_or_else(PoisonError::into_inner);
    let index = rules.iter().position(|r| {
        r.operation.as_deref().is_none_or(|op| op == operation)
            && r.times != Some(0)
            && r.rate.is_none_or(|rate| rand::random::<f64>() < rate)
    })?;
    let rule = &mut rules[index];
    if let Some(times) = rule.times.as_mut() {
        *times -= 1;
    }
    let fault = rule.fault.clone();
    rules.retain(|r| r.times != Some(0));
    Some(fault)
}

/// A broken connection: the headers promise a body that never comes, so the client sees the
/// connection end mid-answer. (A HEAD answer has no body to break; it gets a 500 instead.)
fn broken(head: bool) -> Response {
    if head {
        return error_response(500, "InternalError");
    }
    let body = Body::from_stream(futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-length", "1024")
        .body(body)
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// An S3 error answer (S3 API reference, "Error responses").
fn error_response(status: u16, code: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>TESTKIT</RequestId></Error>"
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "application/xml")], body).into_response()
}

impl std::fmt::Debug for S3Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Proxy")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The S3 operation a path-style request is.
pub fn s3_operation(method: &str, path: &str, query: &str, copy_source: bool) -> String {
    let has = |name: &str| {
        query
            .split('&')
            .any(|p| p == name || p.starts_with(&format!("{name}=")))
    };
    let on_object = path.trim_start_matches('/').contains('/');
    let op = match (method, on_object) {
        ("HEAD", true) => "HeadObject",
        ("HEAD", false) => "HeadBucket",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) => "GetObject",
        ("GET", false) if has("uploads") => "ListMultipartUploads",
        ("GET", false) => "ListObjects",
        ("PUT", true) if has("partNumber") && copy_source => "UploadPartCopy",
        ("PUT", true) if has("partNumber") => "UploadPart",
        ("PUT", true) if copy_source => "CopyObject",
        ("PUT", true) => "PutObject",
        ("PUT", false) => "CreateBucket",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", false) if has("delete") => "DeleteObjects",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        ("DELETE", false) => "DeleteBucket",
        _ => return format!("{method} other"),
    };
    op.to_owned()
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let op = s3_operation(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or_default(),
        parts.headers.contains_key("x-amz-copy-source"),
    );
    *state
        .counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(op.clone())
        .or_default() += 1;
    let fault = take_fault(&state.faults, &op);
    let head = parts.method == axum::http::Method::HEAD;
    let mut truncate = None;
    let mut corrupt = None;
    let mut lose_answer = false;
    match &fault {
        Some(S3Fault::Status { status, code }) => return error_response(*status, code),
        Some(S3Fault::Delay(delay)) => tokio::time::sleep(*delay).await,
        Some(S3Fault::Truncate { after_bytes }) => truncate = Some(*after_bytes),
        Some(S3Fault::Corrupt { every }) => corrupt = Some((*every).max(1)),
        Some(S3Fault::Reset) => return broken(head),
        Some(S3Fault::LoseAnswer) => lose_answer = true,
        None => {}
    }
    // Buffered (P7 counts requests, it does not time them): a streamed body would lose an
    // explicit `Content-Length: 0`, which S3 servers demand on bodiless POSTs.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let headers: axum::http::HeaderMap = parts
        .headers
        .iter()
        .filter(|(name, _)| !is_hop_by_hop(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let upstream = state
        .http
        .request(parts.method, format!("{}{path_and_query}", state.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match upstream {
        Ok(_) if lose_answer => broken(head),
        Ok(response) => {
            let mut builder = Response::builder().status(response.status());
            for (name, value) in response.headers() {
                if !is_hop_by_hop(name) {
                    builder = builder.header(name, value);
                }
            }
            let stream = response.bytes_stream().map_err(std::io::Error::other);
            let body = match (truncate, corrupt) {
                (Some(after), _) => Body::from_stream(cut_short(stream, after)),
                (None, Some(every)) => Body::from_stream(flipped(stream, every)),
                (None, None) => Body::from_stream(stream),
            };
            builder
                .body(body)
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// Whether `name` is a hop-by-hop header (RFC 9110, section 7.6.1), which describes one
/// connection and must not be forwarded: passing on the upstream's `Connection: close` would
/// close the client's kept-alive connection after every answer.
fn is_hop_by_hop(name: &axum::http::HeaderName) -> bool {
    use axum::http::header;
    [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// `stream` with every bit flipped in each byte whose offset is a multiple of `every`.
fn flipped(
    stream: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    every: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    stream.scan(0usize, move |offset, chunk| {
        let out = chunk.map(|chunk| {
            let mut bytes = chunk.to_vec();
            for (i, byte) in bytes.iter_mut().enumerate() {
                if (*offset + i).is_multiple_of(every) {
                    *byte = !*byte;
                }
            }
            *offset += bytes.len();
            Bytes::from(bytes)
        });
        std::future::ready(Some(out))
    })
}

/// `stream` up to `after` bytes, then a broken connection.
fn cut_short(
    stream: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    after: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let head = stream.scan(after, |left, chunk| {
        let out = match chunk {
            Ok(_) if *left == 0 => Some(Err(std::io::Error::other("cut short"))),
            Ok(chunk) => {
                let take = chunk.len().min(*left);
                *left -= take;
                Some(Ok(chunk.slice(..take)))
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(out)
    });
    head.chain(futures::stream::once(async {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected truncation",
        ))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_path_style_requests_by_operation() {
        assert_eq!(s3_operation("HEAD", "/b/k", "", false), "HeadObject");
        assert_eq!(
            s3_operation("PUT", "/b/k/x", "partNumber=2&uploadId=u", false),
            "UploadPart"
        );
        assert_eq!(
            s3_operation("POST", "/b/k", "uploads=", false),
            "CreateMultipartUpload"
        );
        assert_eq!(
            s3_operation("POST", "/b/k", "uploadId=u", false),
            "CompleteMultipartUpload"
        );
        assert_eq!(
            s3_operation("GET", "/b", "list-type=2", false),
            "ListObjects"
        );
        assert_eq!(s3_operation("PUT", "/b/k", "", false), "PutObject");
    }

    #[tokio::test]
    async fn counts_connections_apart_from_requests() {
        // An upstream that answers every request with an empty 200 and closes its connection,
        // as moto's server does: that must not close the client's connection to the proxy.
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let upstream_url = format!("http://{}", upstream.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let router = Router::new().fallback(|| async {
                (StatusCode::OK, [(axum::http::header::CONNECTION, "close")])
            });
            let _ = axum::serve(upstream, router).await;
        });
        let proxy = S3Proxy::start(&upstream_url).await.expect("proxy");
        let get = |http: reqwest::Client, key: &'static str| {
            let url = format!("{}/b/{key}", proxy.url());
            async move {
                let status = http.get(url).send().await.expect("answered").status();
                assert_eq!(status, 200);
            }
        };
        let keep_alive = reqwest::Client::new();
        for key in ["a", "b", "c"] {
            get(keep_alive.clone(), key).await;
        }
        assert_eq!(proxy.connections(), 1);
        let no_pool = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        for key in ["d", "e"] {
            get(no_pool.clone(), key).await;
        }
        assert_eq!(proxy.connections(), 3);
        assert_eq!(proxy.take().get("GetObject"), Some(&5));
        server.abort();
    }
}
