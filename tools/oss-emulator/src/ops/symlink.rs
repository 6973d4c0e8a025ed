//! PutSymlink and GetSymlink. GET and HEAD on a symlink serve its target
//! ([`super::object::get_object`]).

use axum::body::Body;
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Response, StatusCode};
use md5::{Digest, Md5};

use super::{empty, forbid_overwrite, publish, quoted, request_meta, storage_class};
use crate::error::OssError;
use crate::request::Ctx;
use crate::state::State;
use crate::store::{Blob, ObjectMeta};
use crate::util::http_date;

/// PutSymlink: an empty object of type Symlink whose ETag is the MD5 of the target name.
pub(crate) fn put_symlink(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let target = ctx
        .headers
        .get("x-oss-symlink-target")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OssError::invalid_argument("x-oss-symlink-target is missing."))?;
    let storage_class = storage_class(ctx, "Standard")?;
    forbid_overwrite(state, ctx)?;
    let meta = ObjectMeta {
        etag: hex::encode_upper(Md5::digest(target.as_bytes())),
        symlink_target: Some(target),
        ..request_meta(ctx, "Symlink", storage_class)
    };
    state
        .store
        .put(ctx.bucket(), meta.clone(), Blob::Memory(Bytes::new()))?;
    // The event reports no size change, whatever the symlink replaced.
    publish(state, ctx, "ObjectCreated:PutSymlink", &meta, 0);
    Ok(empty(
        Response::builder()
            .status(StatusCode::OK)
            .header("etag", quoted(&meta.etag)),
    ))
}

/// GetSymlink: the target in `x-oss-symlink-target`.
pub(crate) fn get_symlink(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let object = state
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
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header("etag", quoted(&object.meta.etag))
        .header("last-modified", http_date(object.meta.last_modified_ms))
        .header(CONTENT_LENGTH, 0);
    if let Ok(v) = http::HeaderValue::from_bytes(target.as_bytes()) {
        builder = builder.header("x-oss-symlink-target", v);
    }
    Ok(builder.body(Body::empty()).unwrap_or_default())
}
