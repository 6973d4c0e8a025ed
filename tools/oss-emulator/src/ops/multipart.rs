//! Multipart uploads: InitiateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts and `ListMultipartUploads`.

use axum::body::Body;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use md5::{Digest, Md5};

use super::{
    forbid_overwrite, ingest, no_content, parse_max, publish, publish_created, quoted,
    read_small_body, request_meta, require_content_length, storage_class, store_written,
    stored_headers, written,
};
use crate::error::OssError;
use crate::request::Ctx;
use crate::state::State;
use crate::store::{Blob, ObjectMeta, Part, Store, Upload, combined_crc};
use crate::util::{iso_time, now_ms};
use crate::xml::requests::CompleteMultipartUpload;
use crate::xml::responses::{
    CompleteMultipartUploadResult, InitiateMultipartUploadResult, ListMultipartUploadsResult,
    ListPartsResult, ListedPart, ListedUpload, encoding_type,
};
use crate::xml::{self, encode_value};

/// OSS's minimum size of every part but the last.
const MIN_PART_SIZE: u64 = 100 * 1024;
/// The largest part number.
const MAX_PART_NUMBER: u32 = 10_000;

/// The request's `uploadId`, or `""`.
fn upload_id(ctx: &Ctx) -> &str {
    ctx.q("uploadId").unwrap_or_default()
}

/// The upload `upload_id` of the request's bucket, if it is for the request's key.
fn upload_for(state: &State, ctx: &Ctx, upload_id: &str) -> Result<Upload, OssError> {
    state
        .store
        .with_bucket(ctx.bucket(), |b| b.uploads.get(upload_id).cloned())
        .flatten()
        .filter(|u| u.key == ctx.key())
        .ok_or_else(OssError::no_such_upload)
}

/// Removes an upload and returns it.
fn take_upload(state: &State, ctx: &Ctx, upload_id: &str) -> Option<Upload> {
    state
        .store
        .with_bucket(ctx.bucket(), |b| b.uploads.remove(upload_id))
        .flatten()
}

/// Puts back an upload taken by [`take_upload`] whose completion failed.
fn restore_upload(state: &State, ctx: &Ctx, upload_id: &str, upload: Upload) {
    state.store.with_bucket(ctx.bucket(), |b| {
        b.uploads.insert(upload_id.to_owned(), upload);
    });
}

/// Metadata shaped like the object an upload will become, for trigger events.
fn upload_meta(upload: &Upload) -> ObjectMeta {
    ObjectMeta::new(
        upload.key.clone(),
        "Multipart",
        upload.storage_class.clone(),
        upload.headers.clone(),
    )
}

/// InitiateMultipartUpload: a random 32-hex-digit upload ID.
pub(crate) fn initiate_upload(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let storage_class = storage_class(ctx, "Standard")?;
    forbid_overwrite(state, ctx)?;
    let upload_id = hex::encode_upper(rand::random::<[u8; 16]>());
    let upload = Upload {
        key: ctx.key().to_owned(),
        initiated_ms: now_ms(),
        headers: stored_headers(&ctx.headers),
        storage_class,
        parts: std::collections::BTreeMap::default(),
    };
    state
        .store
        .with_bucket(ctx.bucket(), |b| {
            b.uploads.insert(upload_id.clone(), upload);
        })
        .ok_or_else(OssError::no_such_bucket)?;
    let placeholder = request_meta(ctx, "Multipart", String::new());
    publish(
        state,
        ctx,
        "ObjectCreated:InitiateMultipartUpload",
        &placeholder,
        0,
    );
    let url = ctx.url_encoding();
    xml::response(
        StatusCode::OK,
        &InitiateMultipartUploadResult {
            encoding_type: encoding_type(url),
            bucket: ctx.bucket().to_owned(),
            key: encode_value(ctx.key(), url),
            upload_id,
        },
    )
}

/// UploadPart: parts 1..=10000; a part uploaded again replaces the earlier one.
pub(crate) async fn upload_part(
    state: &State,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let upload_id = upload_id(ctx);
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
    let upload = upload_for(state, ctx, upload_id)?;
    let ingested = ingest(state, ctx, body).await?;
    let response = written(&ingested);
    let meta = upload_meta(&upload).with_data(&ingested);
    let part = Part {
        md5: ingested.md5,
        crc64: ingested.crc64,
        blob: ingested.blob,
        last_modified_ms: now_ms(),
    };
    let replaced = state
        .store
        .with_bucket(ctx.bucket(), |b| {
            b.uploads
                .get_mut(upload_id)
                .map(|u| u.parts.insert(number, part.clone()))
        })
        .flatten();
    match replaced {
        None => {
            Store::discard([part.blob]);
            return Err(OssError::no_such_upload());
        }
        Some(Some(old)) => Store::discard([old.blob]),
        Some(None) => {}
    }
    publish(state, ctx, "ObjectCreated:UploadPart", &meta, 0);
    Ok(response)
}

/// The parts a CompleteMultipartUpload names, checked against what was uploaded: ascending
/// numbers, matching ETags.
fn chosen_parts(upload: &Upload, body: &[u8]) -> Result<Vec<(u32, Part)>, OssError> {
    let request: CompleteMultipartUpload = xml::parse(body)?;
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
                OssError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidPart",
                    "One or more of the specified parts could not be found or the ETag did not match.",
                )
            })?;
        chosen.push((number, part.clone()));
    }
    Ok(chosen)
}

/// CompleteMultipartUpload, from a part list or with `x-oss-complete-all: yes`. The ETag is
/// `HEX(md5(part md5s))-N` and the CRC-64 is combined from the parts'.
pub(crate) async fn complete_upload(
    state: &State,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let upload_id = upload_id(ctx);
    let body = read_small_body(state, body).await?;
    let upload = upload_for(state, ctx, upload_id)?;
    let chosen: Vec<(u32, Part)> = if ctx.header("x-oss-complete-all") == Some("yes") {
        if !body.is_empty() {
            return Err(OssError::invalid_argument(
                "x-oss-complete-all cannot be used with a part list.",
            ));
        }
        upload.parts.iter().map(|(n, p)| (*n, p.clone())).collect()
    } else {
        chosen_parts(&upload, &body)?
    };
    if chosen.is_empty() {
        return Err(OssError::invalid_argument("No parts were uploaded."));
    }
    // Checked before anything is assembled; the upload stays for another try.
    forbid_overwrite(state, ctx)?;
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
    let ingested = state.store.concat(ctx.bucket(), &blobs, None).await?;
    let mut md5s = Md5::new();
    for (_, part) in &chosen {
        md5s.update(part.md5);
    }
    let meta = ObjectMeta {
        size: ingested.blob.len(),
        etag: format!("{}-{}", hex::encode_upper(md5s.finalize()), chosen.len()),
        crc64: combined_crc(chosen.iter().map(|(_, p)| (p.crc64, p.blob.len()))),
        ..upload_meta(&upload)
    };
    let Some(removed) = take_upload(state, ctx, upload_id) else {
        Store::discard([ingested.blob]);
        return Err(OssError::no_such_upload());
    };
    let previous = match store_written(state, ctx, meta.clone(), ingested.blob) {
        Ok(previous) => previous,
        Err(e) => {
            // Another writer took the key meanwhile: the upload stays, as on OSS.
            restore_upload(state, ctx, upload_id, removed);
            return Err(e);
        }
    };
    Store::discard(removed.parts.into_values().map(|p| p.blob));
    publish_created(
        state,
        ctx,
        "ObjectCreated:CompleteMultipartUpload",
        &meta,
        previous,
    );
    let url = ctx.url_encoding();
    let mut response = xml::response(
        StatusCode::OK,
        &CompleteMultipartUploadResult {
            encoding_type: encoding_type(url),
            location: format!(
                "http://{}/{}/{}",
                ctx.host,
                ctx.bucket(),
                encode_value(&meta.key, true)
            ),
            bucket: ctx.bucket().to_owned(),
            key: encode_value(&meta.key, url),
            e_tag: quoted(&meta.etag),
        },
    )?;
    response
        .headers_mut()
        .insert("x-oss-hash-crc64ecma", meta.crc64.into());
    if let Ok(v) = quoted(&meta.etag).parse() {
        response.headers_mut().insert("etag", v);
    }
    Ok(response)
}

/// AbortMultipartUpload: drops the upload and its parts.
pub(crate) fn abort_upload(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let upload_id = upload_id(ctx);
    upload_for(state, ctx, upload_id)?;
    let removed = take_upload(state, ctx, upload_id).ok_or_else(OssError::no_such_upload)?;
    Store::discard(removed.parts.into_values().map(|p| p.blob));
    Ok(no_content())
}

/// ListParts, paged by `part-number-marker` and `max-parts`.
pub(crate) fn list_parts(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let upload_id = upload_id(ctx);
    let upload = upload_for(state, ctx, upload_id)?;
    let max = parse_max(ctx, "max-parts", 1000, 1000)?;
    let marker = ctx
        .q("part-number-marker")
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    let parts: Vec<(&u32, &Part)> = upload.parts.range(marker + 1..).collect();
    let truncated = parts.len() > max;
    let shown = &parts[..parts.len().min(max)];
    let url = ctx.url_encoding();
    xml::response(
        StatusCode::OK,
        &ListPartsResult {
            encoding_type: encoding_type(url),
            bucket: ctx.bucket().to_owned(),
            key: encode_value(&upload.key, url),
            upload_id: upload_id.to_owned(),
            storage_class: upload.storage_class.clone(),
            part_number_marker: marker,
            next_part_number_marker: shown.last().map_or(0, |(n, _)| **n),
            max_parts: max,
            is_truncated: truncated,
            part: shown
                .iter()
                .map(|(number, part)| ListedPart {
                    part_number: **number,
                    last_modified: iso_time(part.last_modified_ms),
                    e_tag: quoted(&hex::encode_upper(part.md5)),
                    hash_crc64ecma: part.crc64,
                    size: part.blob.len(),
                })
                .collect(),
        },
    )
}

/// `ListMultipartUploads`, in key order, paged by `key-marker` and `max-uploads`.
pub(crate) fn list_uploads(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let prefix = ctx.q("prefix").unwrap_or_default();
    let max = parse_max(ctx, "max-uploads", 1000, 1000)?;
    let key_marker = ctx.q("key-marker").unwrap_or_default();
    let mut uploads: Vec<(String, String, i64)> = state
        .store
        .with_bucket(ctx.bucket(), |b| {
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
    let (next_key, next_id) = uploads
        .last()
        .map(|(k, id, _)| (k.clone(), id.clone()))
        .unwrap_or_default();
    xml::response(
        StatusCode::OK,
        &ListMultipartUploadsResult {
            encoding_type: encoding_type(url),
            bucket: ctx.bucket().to_owned(),
            key_marker: encode_value(key_marker, url),
            upload_id_marker: String::new(),
            next_key_marker: encode_value(&next_key, url),
            next_upload_id_marker: next_id,
            prefix: encode_value(prefix, url),
            max_uploads: max,
            is_truncated: truncated,
            upload: uploads
                .iter()
                .map(|(key, id, initiated)| ListedUpload {
                    key: encode_value(key, url),
                    upload_id: id.clone(),
                    initiated: iso_time(*initiated),
                })
                .collect(),
        },
    )
}
