//! An S3 endpoint that verifies what it receives and keeps none of the bytes: a sink for
//! copies far larger than the disk (a terabyte), so that a benchmark can watch the copier's
//! memory while the object streams through.
//!
//! It answers the calls a multipart copy makes, path-style: HeadObject (404 until an object is
//! completed, then its size and user metadata), PutObject, CreateMultipartUpload, UploadPart
//! (the body's CRC-64/NVME must match `x-amz-checksum-crc64nvme`, else 400 `BadDigest`),
//! ListParts, CompleteMultipartUpload and AbortMultipartUpload. It checks no signature.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::StreamExt as _;

use crate::s3_proxy::s3_operation;

/// An upload's parts: number → (size, CRC-64/NVME).
type Parts = BTreeMap<u32, (u64, u64)>;
/// `x-amz-meta-*` headers, as sent.
type Metadata = Vec<(String, String)>;
/// An upload: its `bucket/key`, its parts and the metadata it was created with.
type UploadState = (String, Parts, Metadata);

#[derive(Default)]
struct Sink {
    uploads: Mutex<HashMap<String, UploadState>>,
    /// Completed objects: size and metadata.
    objects: Mutex<HashMap<String, (u64, Metadata)>>,
    next_upload: AtomicU64,
    bytes: AtomicU64,
}

/// A running discarding S3 endpoint.
pub struct DiscardS3 {
    port: u16,
    sink: Arc<Sink>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DiscardS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscardS3")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl DiscardS3 {
    /// Starts the endpoint on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let sink = Arc::new(Sink::default());
        let router = Router::new().fallback(handle).with_state(Arc::clone(&sink));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { port, sink, server })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Body bytes received and verified so far (then dropped).
    pub fn bytes_received(&self) -> u64 {
        self.sink.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for DiscardS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn error(status: StatusCode, code: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{code}</Message><RequestId>DISCARD</RequestId></Error>"
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

fn xml(body: String) -> Response {
    (StatusCode::OK, [("content-type", "application/xml")], body).into_response()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn user_metadata(headers: &HeaderMap) -> Metadata {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-amz-meta-"))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Reads the body, counting and checksumming it, keeping nothing.
async fn consume(body: Body, sink: &Sink) -> Result<(u64, u64), Response> {
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
    let mut len = 0_u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| error(StatusCode::BAD_REQUEST, "IncompleteBody"))?;
        digest.update(&chunk);
        len += chunk.len() as u64;
    }
    sink.bytes.fetch_add(len, Ordering::Relaxed);
    Ok((len, digest.finalize()))
}

/// Whether the stated `x-amz-checksum-crc64nvme` (if any) is `crc`.
fn checksum_ok(headers: &HeaderMap, crc: u64) -> bool {
    match headers
        .get("x-amz-checksum-crc64nvme")
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(stated) => {
            base64::engine::general_purpose::STANDARD
                .decode(stated)
                .ok()
                == Some(crc.to_be_bytes().to_vec())
        }
    }
}

async fn handle(State(sink): State<Arc<Sink>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let op = s3_operation(parts.method.as_str(), parts.uri.path(), &query, false);
    let object = path.trim_start_matches('/').to_owned();
    match op.as_str() {
        "HeadBucket" | "CreateBucket" => StatusCode::OK.into_response(),
        "HeadObject" => match lock(&sink.objects).get(&object) {
            Some((size, meta)) => {
                let mut response = StatusCode::OK.into_response();
                let headers = response.headers_mut();
                headers.insert("content-length", (*size).into());
                headers.insert("etag", "\"discarded\"".parse().expect("ascii"));
                for (name, value) in meta {
                    if let (Ok(n), Ok(v)) = (
                        axum::http::HeaderName::from_bytes(name.as_bytes()),
                        value.parse(),
                    ) {
                        headers.insert(n, v);
                    }
                }
                response
            }
            None => StatusCode::NOT_FOUND.into_response(),
        },
        "GetObject" => error(StatusCode::NOT_FOUND, "NoSuchKey"),
        "PutObject" => match consume(body, &sink).await {
            Ok((len, crc)) if checksum_ok(&parts.headers, crc) => {
                lock(&sink.objects).insert(object, (len, user_metadata(&parts.headers)));
                (StatusCode::OK, [("etag", format!("\"{crc:016x}\""))]).into_response()
            }
            Ok(_) => error(StatusCode::BAD_REQUEST, "BadDigest"),
            Err(response) => response,
        },
        "CreateMultipartUpload" => {
            let id = format!(
                "discard-{}",
                sink.next_upload.fetch_add(1, Ordering::Relaxed)
            );
            lock(&sink.uploads).insert(
                id.clone(),
                (object.clone(), Parts::new(), user_metadata(&parts.headers)),
            );
            let (bucket, key) = object.split_once('/').unwrap_or((&object, ""));
            xml(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
            ))
        }
        "UploadPart" => {
            let id = query_param(&query, "uploadId").unwrap_or_default();
            let number: u32 = query_param(&query, "partNumber")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if !lock(&sink.uploads).contains_key(&id) {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload");
            }
            match consume(body, &sink).await {
                Ok((len, crc)) if checksum_ok(&parts.headers, crc) => {
                    if let Some(upload) = lock(&sink.uploads).get_mut(&id) {
                        upload.1.insert(number, (len, crc));
                    }
                    (StatusCode::OK, [("etag", format!("\"{crc:016x}\""))]).into_response()
                }
                Ok(_) => error(StatusCode::BAD_REQUEST, "BadDigest"),
                Err(response) => response,
            }
        }
        "ListParts" => {
            let id = query_param(&query, "uploadId").unwrap_or_default();
            let uploads = lock(&sink.uploads);
            let Some((_, listed, _)) = uploads.get(&id) else {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload");
            };
            let mut parts = String::new();
            for (n, (size, crc)) in listed {
                let _ = write!(
                    parts,
                    "<Part><PartNumber>{n}</PartNumber><ETag>\"{crc:016x}\"</ETag><Size>{size}</Size></Part>"
                );
            }
            xml(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult><UploadId>{id}</UploadId><IsTruncated>false</IsTruncated>{parts}</ListPartsResult>"
            ))
        }
        "CompleteMultipartUpload" => {
            let id = query_param(&query, "uploadId").unwrap_or_default();
            let _ = axum::body::to_bytes(body, 4 * 1024 * 1024).await;
            let Some((key, listed, meta)) = lock(&sink.uploads).remove(&id) else {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload");
            };
            let size = listed.values().map(|(s, _)| s).sum();
            lock(&sink.objects).insert(key.clone(), (size, meta));
            xml(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult><Key>{key}</Key><ETag>\"discarded-{}\"</ETag></CompleteMultipartUploadResult>",
                listed.len()
            ))
        }
        "AbortMultipartUpload" => {
            lock(&sink.uploads).remove(&query_param(&query, "uploadId").unwrap_or_default());
            StatusCode::NO_CONTENT.into_response()
        }
        other => error(
            StatusCode::NOT_IMPLEMENTED,
            &format!("NotImplemented-{other}"),
        ),
    }
}
