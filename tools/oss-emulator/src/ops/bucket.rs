//! Bucket operations: `ListObjects` (v1) and ListObjectsV2, DeleteMultipleObjects,
//! `GetBucketLocation` and `GetBucketInfo`.

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::body::Body;
use base64::Engine as _;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use md5::{Digest, Md5};

use super::restore::restore_status;
use super::{digest_mismatch, parse_max, publish_removed, quoted, read_small_body};
use crate::error::OssError;
use crate::notify::OWNER_ID;
use crate::request::Ctx;
use crate::state::State;
use crate::store::{Object, ObjectMeta};
use crate::util::iso_time;
use crate::xml::requests::Delete;
use crate::xml::responses::{
    BucketDetails, BucketInfo, BucketOwner, CommonPrefix, Contents, DeleteResult, Deleted,
    ListBucketResult, ListEntry, LocationConstraint, Owner, encoding_type,
};
use crate::xml::{self, encode_value};

/// The most keys one DeleteMultipleObjects may name.
const MAX_DELETE_KEYS: usize = 1000;

/// What a listing asks for, in the form the page walk needs.
struct Query<'a> {
    prefix: &'a str,
    delimiter: Option<&'a str>,
    /// List keys (and common prefixes) after this one.
    from: &'a str,
    max_keys: usize,
    url: bool,
    fetch_owner: bool,
}

/// One page of a listing: its entries, whether more follow, and the last name listed (the
/// next marker or token).
struct Page {
    entries: Vec<ListEntry>,
    truncated: bool,
    last: String,
}

/// Walks the keys after `query.from` under `query.prefix`, folding keys that continue past the
/// delimiter into one common prefix each.
fn page(objects: &BTreeMap<String, Object>, query: &Query<'_>) -> Page {
    let Query {
        prefix,
        delimiter,
        from,
        ..
    } = *query;
    let mut page = Page {
        entries: Vec::new(),
        truncated: false,
        last: String::new(),
    };
    let lower = if from.as_bytes() > prefix.as_bytes() {
        from
    } else {
        prefix
    };
    for (key, object) in objects.range::<str, _>((Bound::Included(lower), Bound::Unbounded)) {
        if !key.starts_with(prefix) {
            break;
        }
        if key.as_str() <= from {
            continue;
        }
        let common = delimiter.and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|i| key[..prefix.len() + i + d.len()].to_owned())
        });
        let name = common.clone().unwrap_or_else(|| key.clone());
        if name.as_str() <= from || (common.is_some() && page.last == name) {
            continue;
        }
        if page.entries.len() >= query.max_keys {
            page.truncated = true;
            break;
        }
        page.last = name;
        page.entries.push(match common {
            Some(p) => ListEntry::CommonPrefixes(CommonPrefix {
                prefix: encode_value(&p, query.url),
            }),
            None => ListEntry::Contents(contents(&object.meta, query)),
        });
    }
    page
}

/// The `<Contents>` entry of an object.
fn contents(meta: &ObjectMeta, query: &Query<'_>) -> Contents {
    Contents {
        key: encode_value(&meta.key, query.url),
        last_modified: iso_time(meta.last_modified_ms),
        e_tag: quoted(&meta.etag),
        object_type: meta.object_type.clone(),
        size: meta.size,
        storage_class: meta.storage_class.clone(),
        owner: query.fetch_owner.then_some(Owner {
            id: OWNER_ID,
            display_name: OWNER_ID,
        }),
        restore_info: restore_status(meta).0,
    }
}

/// ListObjectsV2 when `v2`, else `ListObjects`. V2 pages with an opaque continuation token (the
/// last name listed, base64url) and lists owners only with `fetch-owner=true`; v1 pages with
/// `marker` and always lists owners.
pub(crate) fn list_objects(state: &State, ctx: &Ctx, v2: bool) -> Result<Response<Body>, OssError> {
    let url = ctx.url_encoding();
    let prefix = ctx.q("prefix").unwrap_or_default();
    let delimiter = ctx.q("delimiter").filter(|d| !d.is_empty());
    let max_keys = parse_max(ctx, "max-keys", 100, 1000)?;
    let token = match ctx.q("continuation-token").filter(|t| v2 && !t.is_empty()) {
        Some(t) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    OssError::invalid_argument("The continuation token is not valid.")
                })?,
        ),
        None => None,
    };
    let start_after = if v2 {
        ctx.q("start-after")
    } else {
        ctx.q("marker")
    }
    .unwrap_or_default();
    let query = Query {
        prefix,
        delimiter,
        from: token.as_deref().unwrap_or(start_after),
        max_keys,
        url,
        fetch_owner: ctx.q("fetch-owner") == Some("true") || !v2,
    };
    let page = state
        .store
        .with_bucket(ctx.bucket(), |b| page(&b.objects, &query))
        .ok_or_else(OssError::no_such_bucket)?;
    let next = page.truncated.then_some(page.last.as_str());
    let document = ListBucketResult {
        name: ctx.bucket().to_owned(),
        prefix: encode_value(prefix, url),
        start_after: ctx
            .q("start-after")
            .filter(|_| v2)
            .map(|s| encode_value(s, url)),
        continuation_token: ctx
            .q("continuation-token")
            .filter(|_| v2)
            .map(str::to_owned),
        marker: (!v2).then(|| encode_value(start_after, url)),
        max_keys,
        delimiter: delimiter.map(|d| encode_value(d, url)),
        encoding_type: encoding_type(url),
        is_truncated: page.truncated,
        next_continuation_token: next
            .filter(|_| v2)
            .map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)),
        next_marker: next.filter(|_| !v2).map(|last| encode_value(last, url)),
        key_count: v2.then_some(page.entries.len()),
        entries: page.entries,
    };
    xml::response(StatusCode::OK, &document)
}

/// DeleteMultipleObjects: at most 1000 keys; the answer lists every key unless `Quiet`.
pub(crate) async fn delete_multiple(
    state: &State,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let body = read_small_body(state, body).await?;
    let request: Delete = xml::parse(&body)?;
    if request.objects.len() > MAX_DELETE_KEYS {
        return Err(OssError::malformed_xml());
    }
    if let Some(md5) = ctx.header("content-md5") {
        let digest: [u8; 16] = Md5::digest(&body).into();
        if base64::engine::general_purpose::STANDARD.encode(digest) != md5.trim() {
            return Err(digest_mismatch());
        }
    }
    let quiet = request
        .quiet
        .as_deref()
        .is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));
    let url = ctx.url_encoding();
    let mut deleted = Vec::new();
    for object in &request.objects {
        if let Some(removed) = state.store.delete(ctx.bucket(), &object.key) {
            publish_removed(state, ctx, "ObjectRemoved:DeleteObjects", removed);
        }
        if !quiet {
            deleted.push(Deleted {
                key: encode_value(&object.key, url),
            });
        }
    }
    xml::response(
        StatusCode::OK,
        &DeleteResult {
            encoding_type: encoding_type(url),
            deleted,
        },
    )
}

/// `GetBucketLocation`: `oss-REGION`.
pub(crate) fn get_bucket_location(state: &State) -> Result<Response<Body>, OssError> {
    xml::response(
        StatusCode::OK,
        &LocationConstraint {
            location: format!("oss-{}", state.region),
        },
    )
}

/// `GetBucketInfo`: fixed values but for the name, the region's endpoints and the owner.
pub(crate) fn get_bucket_info(state: &State, ctx: &Ctx) -> Result<Response<Body>, OssError> {
    let region = &state.region;
    xml::response(
        StatusCode::OK,
        &BucketInfo {
            bucket: BucketDetails {
                access_monitor: "Disabled",
                creation_date: "2024-01-01T00:00:00.000Z",
                extranet_endpoint: format!("oss-{region}.aliyuncs.com"),
                intranet_endpoint: format!("oss-{region}-internal.aliyuncs.com"),
                location: format!("oss-{region}"),
                storage_class: "Standard",
                name: ctx.bucket().to_owned(),
                owner: BucketOwner {
                    display_name: OWNER_ID,
                    id: OWNER_ID,
                },
            },
        },
    )
}
