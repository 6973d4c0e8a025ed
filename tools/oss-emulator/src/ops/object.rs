//! Single-object operations: PutObject, GetObject, HeadObject, `GetObjectMeta`, DeleteObject,
//! CopyObject and AppendObject, with what reads share (symlink resolution, conditions, ranges,
//! the object headers) and the `replace` fault's overwrite.

use axum::body::Body;
use base64::Engine as _;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;
use md5::{Digest, Md5};
use percent_encoding::percent_decode_str;

use super::restore::restore_status;
use super::{
    empty, forbid_overwrite, ingest, no_content, publish, publish_created, publish_removed, quoted,
    request_meta, require_content_length, storage_class, store_written, stored_headers, written,
};
use crate::error::OssError;
use crate::request::Ctx;
use crate::state::State;
use crate::store::{Object, ObjectMeta, Store};
use crate::util::{http_date, iso_time, now_ms};
use crate::xml::{self, responses::CopyObjectResult};

/// The `response-*` query parameters of a GET and the headers they override.
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// PutObject.
pub(crate) async fn put_object(
    state: &State,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    require_content_length(ctx)?;
    let storage_class = storage_class(ctx, "Standard")?;
    forbid_overwrite(state, ctx)?;
    let ingested = ingest(state, ctx, body).await?;
    let meta = request_meta(ctx, "Normal", storage_class).with_data(&ingested);
    let response = written(&ingested);
    let previous = store_written(state, ctx, meta.clone(), ingested.blob)?;
    publish_created(state, ctx, "ObjectCreated:PutObject", &meta, previous);
    Ok(response)
}

/// The headers GET and HEAD answer with for `meta`, reported as `object_type`.
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

/// The object a GET/HEAD serves, and the type to report: the object itself, or a symlink's
/// target reported as `Symlink`.
fn resolve(state: &State, ctx: &Ctx) -> Result<(Object, &'static str), OssError> {
    let object = state
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
            let target = state.store.get(ctx.bucket(), target).ok_or_else(|| {
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

/// Evaluates If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since in `headers`.
fn check_conditions(headers: &HeaderMap, meta: &ObjectMeta) -> Result<(), OssError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
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
        header(name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
    };
    if let Some(list) = header("if-match") {
        if !matches(list) {
            return Err(precondition());
        }
    } else if let Some(since) = date("if-unmodified-since")
        && modified_s > since
    {
        return Err(precondition());
    }
    if let Some(list) = header("if-none-match") {
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

/// GetObject, or HeadObject when `head`.
pub(crate) async fn get_object(
    state: &State,
    ctx: &Ctx,
    head: bool,
) -> Result<Response<Body>, OssError> {
    let (object, kind) = resolve(state, ctx)?;
    let meta = &object.meta;
    check_conditions(&ctx.headers, meta)?;
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
    let mut builder = object_headers(Response::builder().status(StatusCode::OK), meta, kind);
    for (param, header) in RESPONSE_OVERRIDES {
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

/// `GetObjectMeta`: the ETag, CRC, size and times, without the data.
pub(crate) fn get_object_meta(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let (object, _) = resolve(state, ctx)?;
    let meta = &object.meta;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted(&meta.etag))
        .header("x-oss-hash-crc64ecma", meta.crc64)
        .header("last-modified", http_date(meta.last_modified_ms))
        .header("x-oss-last-access-time", http_date(meta.last_modified_ms))
        .header(CONTENT_LENGTH, meta.size)
        .body(Body::empty())
        .unwrap_or_default())
}

/// DeleteObject: 204 whether or not the key existed.
pub(crate) fn delete_object(state: &State, ctx: &Ctx) -> Response<Body> {
    if let Some(removed) = state.store.delete(ctx.bucket(), ctx.key()) {
        publish_removed(state, ctx, "ObjectRemoved:DeleteObject", removed);
    }
    no_content()
}

/// CopyObject from `x-oss-copy-source: /bucket/key`, with the `x-oss-copy-source-if-*`
/// conditions and `x-oss-metadata-directive`. The copy of a Normal object keeps its ETag;
/// any other gets the MD5 of its bytes.
pub(crate) async fn copy_object(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let source = ctx.header("x-oss-copy-source").unwrap_or_default();
    let source = percent_decode_str(source).decode_utf8_lossy().into_owned();
    let source = source.strip_prefix('/').unwrap_or(&source);
    let (src_bucket, src_key) = source
        .split_once('/')
        .ok_or_else(|| OssError::invalid_argument("x-oss-copy-source must be /bucket/key."))?;
    let src_key = src_key
        .split_once("?versionId=")
        .map_or(src_key, |(k, _)| k);
    if !state.store.has_bucket(src_bucket) {
        return Err(OssError::no_such_bucket());
    }
    let object = state
        .store
        .get(src_bucket, src_key)
        .ok_or_else(OssError::no_such_key)?;
    let conditions: HeaderMap = ctx
        .headers
        .iter()
        .filter_map(|(n, v)| {
            let rest = n.as_str().strip_prefix("x-oss-copy-source-")?;
            Some((
                http::HeaderName::from_bytes(rest.as_bytes()).ok()?,
                v.clone(),
            ))
        })
        .collect();
    // A copy has nothing to answer "not modified" with: OSS fails it as a precondition.
    check_conditions(&conditions, &object.meta).map_err(|e| {
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
    let copied = state
        .store
        .concat(ctx.bucket(), std::slice::from_ref(&object.blob), None)
        .await?;
    let headers = if ctx.header("x-oss-metadata-directive") == Some("REPLACE") {
        stored_headers(&ctx.headers)
    } else {
        object.meta.headers.clone()
    };
    let storage_class = storage_class(ctx, &object.meta.storage_class)?;
    let mut meta = ObjectMeta::new(ctx.key(), "Normal", storage_class, headers).with_data(&copied);
    if object.meta.object_type == "Normal" {
        meta.etag.clone_from(&object.meta.etag);
    }
    let previous = state.store.put(ctx.bucket(), meta.clone(), copied.blob)?;
    publish_created(state, ctx, "ObjectCreated:CopyObject", &meta, previous);
    let mut response = xml::response(
        StatusCode::OK,
        &CopyObjectResult {
            e_tag: quoted(&meta.etag),
            last_modified: iso_time(meta.last_modified_ms),
        },
    )?;
    response
        .headers_mut()
        .insert("x-oss-hash-crc64ecma", meta.crc64.into());
    Ok(response)
}

/// AppendObject at `position`, which must be the current length (409
/// `PositionNotEqualToLength` with `x-oss-next-append-position` otherwise). The ETag of an
/// appended object is the MD5 of the previous ETag and the new bytes' MD5: opaque, as OSS's.
pub(crate) async fn append_object(
    state: &State,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let position = ctx
        .q("position")
        .and_then(|p| p.parse::<u64>().ok())
        .ok_or_else(|| OssError::invalid_argument("position is missing or not a number."))?;
    require_content_length(ctx)?;
    let existing = state.store.get(ctx.bucket(), ctx.key());
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
    let added = ingest(state, ctx, body).await?;
    let added_len = added.blob.len();
    let (blob, meta) = if let Some(object) = &existing {
        let joined = state
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
        let meta = ObjectMeta {
            size: joined.blob.len(),
            crc64: transfer::crc64::combine(object.meta.crc64, added.crc64, added_len),
            etag: hex::encode_upper(chain.finalize()),
            last_modified_ms: now_ms(),
            ..object.meta.clone()
        };
        (joined.blob, meta)
    } else {
        let storage_class = storage_class(ctx, "Standard")?;
        let meta = request_meta(ctx, "Appendable", storage_class).with_data(&added);
        (added.blob, meta)
    };
    // Another append may have won the race while this one read its body.
    let current = state
        .store
        .get(ctx.bucket(), ctx.key())
        .map(|o| o.meta.size);
    if current != existing.as_ref().map(|o| o.meta.size) {
        Store::discard([blob]);
        return Err(mismatch(current.unwrap_or(0)));
    }
    state.store.put(ctx.bucket(), meta.clone(), blob)?;
    publish(
        state,
        ctx,
        "ObjectCreated:AppendObject",
        &meta,
        i64::try_from(added_len).unwrap_or(i64::MAX),
    );
    Ok(empty(
        Response::builder()
            .status(StatusCode::OK)
            .header("etag", quoted(&meta.etag))
            .header("x-oss-next-append-position", meta.size)
            .header("x-oss-hash-crc64ecma", meta.crc64),
    ))
}

/// Overwrites an object with different bytes of the same size, so that its ETag changes (the
/// `replace` fault, applied after the request was served). Symlinks are left alone.
pub(crate) async fn replace(state: &State, bucket: &str, key: &str) {
    let Some(object) = state.store.get(bucket, key) else {
        return;
    };
    if object.meta.symlink_target.is_some() {
        return;
    }
    let Ok(ingested) = state
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
    let meta = ObjectMeta {
        object_type: "Normal".to_owned(),
        last_modified_ms: now_ms(),
        ..object.meta.clone().with_data(&ingested)
    };
    tracing::warn!(key, etag = meta.etag, "fault replaced the object");
    let _ = state.store.put(bucket, meta, ingested.blob);
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
}
