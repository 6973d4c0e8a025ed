//! The OSS operations, one function each, from a parsed [`Ctx`] to a response; and the helpers
//! they share: request checks (Content-Length, Content-MD5, storage class, forbid-overwrite),
//! reading bodies into the store, trigger events and the small responses.

pub(crate) mod bucket;
pub(crate) mod multipart;
pub(crate) mod object;
pub(crate) mod restore;
pub(crate) mod symlink;

use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use chrono::Utc;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::OssError;
use crate::notify::ObjectEvent;
use crate::request::Ctx;
use crate::state::State;
use crate::store::{Blob, Ingested, Object, ObjectMeta, STORAGE_CLASSES, Store};

/// The largest XML request body read into memory.
const MAX_XML_BODY: usize = 8 << 20;
/// Request headers stored with an object and returned on GET/HEAD.
const CONTENT_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// An ETag as headers and XML carry it: in double quotes.
fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// A response with no body and `Content-Length: 0`.
fn empty(builder: http::response::Builder) -> Response<Body> {
    builder
        .header(CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default()
}

/// 204 No Content, the answer to deletes.
fn no_content() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default()
}

/// The answer to a PutObject or UploadPart: the ETag, CRC-64 and MD5 of what was received.
fn written(ingested: &Ingested) -> Response<Body> {
    empty(
        Response::builder()
            .status(StatusCode::OK)
            .header("etag", quoted(&ingested.etag()))
            .header("x-oss-hash-crc64ecma", ingested.crc64)
            .header(
                "content-md5",
                base64::engine::general_purpose::STANDARD.encode(ingested.md5),
            ),
    )
}

/// Queues the trigger event `name` (`ObjectCreated:PutObject`, …) for `meta`.
fn publish(state: &State, ctx: &Ctx, name: &str, meta: &ObjectMeta, delta_size: i64) {
    state.notifier.publish(ObjectEvent {
        event_name: name.to_owned(),
        bucket: ctx.bucket().to_owned(),
        key: meta.key.clone(),
        size: meta.size,
        delta_size,
        etag: meta.etag.clone(),
        mime_type: Some(meta.content_type()),
        request_id: ctx.request_id.clone(),
        source_ip: ctx.peer.ip().to_string(),
        time: Utc::now(),
    });
}

/// Queues an ObjectCreated event for `meta`, which replaced `previous` if there was one.
fn publish_created(
    state: &State,
    ctx: &Ctx,
    name: &str,
    meta: &ObjectMeta,
    previous: Option<Object>,
) {
    let signed = |size: u64| i64::try_from(size).unwrap_or(i64::MAX);
    let delta = signed(meta.size) - previous.map_or(0, |p| signed(p.meta.size));
    publish(state, ctx, name, meta, delta);
}

/// Queues an ObjectRemoved event for an object that was just deleted: size 0, the negative
/// of its size as the delta.
fn publish_removed(state: &State, ctx: &Ctx, name: &str, removed: Object) {
    let mut meta = removed.meta;
    let delta = -i64::try_from(meta.size).unwrap_or(i64::MAX);
    meta.size = 0;
    publish(state, ctx, name, &meta, delta);
}

/// Collects a small request body (XML).
async fn read_small_body(state: &State, body: Incoming) -> Result<Bytes, OssError> {
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
    state.count(|s| s.bytes_in += bytes.len() as u64);
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

/// Metadata for the object the request writes: its key, its content and `x-oss-meta-*`
/// headers, written now.
fn request_meta(ctx: &Ctx, object_type: &str, storage_class: String) -> ObjectMeta {
    ObjectMeta::new(
        ctx.key(),
        object_type,
        storage_class,
        stored_headers(&ctx.headers),
    )
}

/// The `x-oss-storage-class` of the request (any case), or `default`.
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

/// Writes need a Content-Length: OSS answers a chunked upload with 411.
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

/// 400 `InvalidDigest`: the body does not have the MD5 that `Content-MD5` announced.
fn digest_mismatch() -> OssError {
    OssError::new(
        StatusCode::BAD_REQUEST,
        "InvalidDigest",
        "The Content-MD5 you specified did not match what was received.",
    )
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
        return Err(digest_mismatch());
    }
    Ok(())
}

/// Reads the request body into the store, counts it and checks its `Content-MD5`.
async fn ingest(state: &State, ctx: &Ctx, body: Incoming) -> Result<Ingested, OssError> {
    let (ingested, received) = state.store.ingest(ctx.bucket(), body).await?;
    state.count(|s| s.bytes_in += received);
    if let Err(e) = check_content_md5(ctx, &ingested.md5) {
        Store::discard([ingested.blob]);
        return Err(e);
    }
    Ok(ingested)
}

/// `x-oss-forbid-overwrite: true` makes a write to an existing key fail with 409.
fn forbid_overwrite(state: &State, ctx: &Ctx) -> Result<(), OssError> {
    if forbids_overwrite(ctx) && state.store.get(ctx.bucket(), ctx.key()).is_some() {
        return Err(OssError::file_already_exists());
    }
    Ok(())
}

/// Whether the request carries `x-oss-forbid-overwrite: true`.
fn forbids_overwrite(ctx: &Ctx) -> bool {
    ctx.header("x-oss-forbid-overwrite") == Some("true")
}

/// Stores a written object; with `x-oss-forbid-overwrite: true` only if the key is still free
/// (checked again under the store's lock, so two racing writers cannot both win).
fn store_written(
    state: &State,
    ctx: &Ctx,
    meta: ObjectMeta,
    blob: Blob,
) -> Result<Option<Object>, OssError> {
    if forbids_overwrite(ctx) {
        state.store.put_new(ctx.bucket(), meta, blob)
    } else {
        state.store.put(ctx.bucket(), meta, blob)
    }
}

/// A page size from the query (`max-keys`, `max-parts`, `max-uploads`): `default` when
/// absent or empty, at most `max`.
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
