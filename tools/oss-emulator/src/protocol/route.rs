//! Routing: the operation a request names (by method, whether it has a bucket and a key, and
//! its query parameters and headers), and the call into [`crate::ops`] for it. The names are
//! OSS's API names, as stats and fault rules use them.

use axum::body::Body;
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;

use crate::error::OssError;
use crate::ops::{bucket, multipart, object, restore, symlink};
use crate::request::Ctx;
use crate::state::State;

/// The operation a request maps to.
pub(crate) fn operation(ctx: &Ctx) -> &'static str {
    if ctx.bucket.is_none() {
        return "ListBuckets";
    }
    if ctx.key.is_none() {
        return match ctx.method {
            Method::GET if ctx.q("list-type") == Some("2") => "ListObjectsV2",
            Method::GET if ctx.has("uploads") => "ListMultipartUploads",
            Method::GET if ctx.has("location") => "GetBucketLocation",
            Method::GET if ctx.has("bucketInfo") => "GetBucketInfo",
            Method::GET => "ListObjects",
            Method::POST if ctx.has("delete") => "DeleteMultipleObjects",
            _ => "UnsupportedBucketOperation",
        };
    }
    let copy = ctx.headers.contains_key("x-oss-copy-source");
    match ctx.method {
        Method::PUT if ctx.has("symlink") => "PutSymlink",
        Method::PUT if ctx.has("uploadId") && copy => "UploadPartCopy",
        Method::PUT if ctx.has("uploadId") => "UploadPart",
        Method::PUT if copy => "CopyObject",
        Method::PUT => "PutObject",
        Method::GET if ctx.has("symlink") => "GetSymlink",
        Method::GET if ctx.has("uploadId") => "ListParts",
        Method::GET | Method::HEAD if ctx.has("objectMeta") => "GetObjectMeta",
        Method::GET => "GetObject",
        Method::HEAD => "HeadObject",
        Method::POST if ctx.has("uploads") => "InitiateMultipartUpload",
        Method::POST if ctx.has("uploadId") => "CompleteMultipartUpload",
        Method::POST if ctx.has("append") => "AppendObject",
        Method::POST if ctx.has("restore") => "RestoreObject",
        Method::DELETE if ctx.has("uploadId") => "AbortMultipartUpload",
        Method::DELETE => "DeleteObject",
        _ => "UnsupportedObjectOperation",
    }
}

/// Runs operation `op` (named by [`operation`]). Operations the emulator does not implement,
/// `UploadPartCopy` among them, answer 501 `NotImplemented`.
pub(crate) async fn dispatch(
    state: &State,
    op: &str,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    match op {
        "PutObject" => object::put_object(state, ctx, body).await,
        "GetObject" => object::get_object(state, ctx, false).await,
        "HeadObject" => object::get_object(state, ctx, true).await,
        "GetObjectMeta" => object::get_object_meta(state, ctx),
        "DeleteObject" => Ok(object::delete_object(state, ctx)),
        "CopyObject" => object::copy_object(state, ctx).await,
        "AppendObject" => object::append_object(state, ctx, body).await,
        "DeleteMultipleObjects" => bucket::delete_multiple(state, ctx, body).await,
        "ListObjectsV2" => bucket::list_objects(state, ctx, true),
        "ListObjects" => bucket::list_objects(state, ctx, false),
        "GetBucketLocation" => bucket::get_bucket_location(state),
        "GetBucketInfo" => bucket::get_bucket_info(state, ctx),
        "InitiateMultipartUpload" => multipart::initiate_upload(state, ctx),
        "UploadPart" => multipart::upload_part(state, ctx, body).await,
        "CompleteMultipartUpload" => multipart::complete_upload(state, ctx, body).await,
        "AbortMultipartUpload" => multipart::abort_upload(state, ctx),
        "ListParts" => multipart::list_parts(state, ctx),
        "ListMultipartUploads" => multipart::list_uploads(state, ctx),
        "RestoreObject" => restore::restore_object(state, ctx, body).await,
        "PutSymlink" => symlink::put_symlink(state, ctx),
        "GetSymlink" => symlink::get_symlink(state, ctx),
        _ => Err(OssError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!(
                "The emulator does not implement {} {} with this query.",
                ctx.method,
                ctx.key.as_deref().map_or("a bucket", |_| "an object")
            ),
        )),
    }
}
