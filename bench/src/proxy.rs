//! A counting proxy in front of the S3 server: forwards every request unchanged (the `Host`
//! header included, so signatures still verify) and counts them by S3 operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    counts: Counts,
}

/// A running counting proxy.
pub(crate) struct CountingProxy {
    port: u16,
    counts: Counts,
    server: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub(crate) async fn start(upstream: &str) -> anyhow::Result<Self> {
        let counts = Counts::default();
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            counts: Arc::clone(&counts),
        };
        let router = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("bench: counting proxy stopped: {e}");
            }
        });
        Ok(Self {
            port,
            counts,
            server,
        })
    }

    /// The proxy's URL.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The counts so far, and resets them.
    pub(crate) fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The S3 operation a path-style request is.
pub(crate) fn s3_operation(method: &str, path: &str, query: &str, copy_source: bool) -> String {
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
        .entry(op)
        .or_default() += 1;
    // Buffered (P7 counts requests, it does not time them): a streamed body would lose an
    // explicit `Content-Length: 0`, which S3 servers demand on bodiless POSTs.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let upstream = state
        .http
        .request(parts.method, format!("{}{path_and_query}", state.upstream))
        .headers(parts.headers)
        .body(body)
        .send()
        .await;
    match upstream {
        Ok(response) => {
            let mut builder = Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = Body::from_stream(response.bytes_stream().map_err(std::io::Error::other));
            builder
                .body(body)
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
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
}
