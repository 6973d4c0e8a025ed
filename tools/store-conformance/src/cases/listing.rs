//! ListObjectsV2 through the seam: order, paging, prefixes and start-after.

use transfer::store::{
    ListRequest, ListedObject, ObjectSink, ObjectSource, WriteRequest, same_etag,
};

use super::{data, put};
use crate::{CaseResult, Ctx, ensure, must};

/// Every object under `request.prefix`, page by page; fails on a page over `max_keys`, a token
/// that repeats, or more than `limit` pages.
async fn list_all<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
    mut request: ListRequest,
    limit: usize,
) -> Result<(Vec<ListedObject>, usize), String> {
    let mut all = Vec::new();
    let mut pages = 0;
    let mut seen_tokens = Vec::new();
    loop {
        let page = must!(
            ctx.store.list_objects(ctx.bucket, &request).await,
            format!("listing page {}", pages + 1)
        );
        pages += 1;
        if let Some(max) = request.max_keys {
            ensure!(
                page.objects.len() <= max as usize,
                "a page of {} keys for max_keys {max}",
                page.objects.len()
            );
        }
        all.extend(page.objects);
        match page.next {
            None => return Ok((all, pages)),
            Some(token) => {
                ensure!(!seen_tokens.contains(&token), "the token {token:?} repeats");
                ensure!(pages < limit, "more than {limit} pages");
                seen_tokens.push(token.clone());
                request.continuation = Some(token);
                request.start_after = None;
            }
        }
    }
}

pub(crate) async fn listing_is_in_utf8_byte_order_across_pages<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let names = [
        "B", "a", "Z", "é", "z", "日本", "A-", "A/", "a b", "🚀", "a+b", "a%2Bb", "0", "~",
    ];
    let mut etags = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let written = must!(
            put(ctx, &ctx.key(name), data(i, 1), &WriteRequest::default()).await,
            format!("PUT {name:?}")
        );
        etags.push((ctx.key(name), i as u64, written.etag));
    }
    let request = ListRequest {
        prefix: ctx.prefix.clone(),
        max_keys: Some(3),
        ..ListRequest::default()
    };
    let (listed, pages) = list_all(ctx, request, 20).await?;
    ensure!(
        pages >= names.len().div_ceil(3),
        "{pages} pages of at most 3 for {} keys",
        names.len()
    );
    let keys: Vec<String> = listed.iter().map(|o| o.key.clone()).collect();
    let mut expected: Vec<String> = names.iter().map(|n| ctx.key(n)).collect();
    // UTF-8 byte order is the order of Rust strings.
    expected.sort();
    ensure!(keys == expected, "listed {keys:?}, expected {expected:?}");
    for (key, size, etag) in etags {
        let object = listed
            .iter()
            .find(|o| o.key == key)
            .ok_or_else(|| format!("{key:?} is not listed"))?;
        ensure!(
            object.size == size,
            "{key:?} listed with size {}",
            object.size
        );
        ensure!(
            same_etag(&object.etag, &etag),
            "{key:?} listed with ETag {}, written as {etag}",
            object.etag
        );
    }
    Ok(None)
}

pub(crate) async fn listing_honours_prefix_and_start_after<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    for name in ["p/a", "p/b", "p/c", "pq", "q/a"] {
        must!(
            put(ctx, &ctx.key(name), data(1, 1), &WriteRequest::default()).await,
            format!("PUT {name}")
        );
    }
    let keys = |objects: Vec<ListedObject>| -> Vec<String> {
        objects
            .into_iter()
            .map(|o| o.key.trim_start_matches(&ctx.prefix).to_owned())
            .collect()
    };
    let (listed, _) = list_all(
        ctx,
        ListRequest {
            prefix: ctx.key("p/"),
            ..ListRequest::default()
        },
        5,
    )
    .await?;
    let listed = keys(listed);
    ensure!(
        listed == ["p/a", "p/b", "p/c"],
        "prefix p/ lists {listed:?}"
    );
    let (listed, _) = list_all(
        ctx,
        ListRequest {
            prefix: ctx.prefix.clone(),
            start_after: Some(ctx.key("p/b")),
            ..ListRequest::default()
        },
        5,
    )
    .await?;
    let listed = keys(listed);
    ensure!(
        listed == ["p/c", "pq", "q/a"],
        "start-after p/b lists {listed:?}"
    );
    Ok(None)
}

pub(crate) async fn listing_an_unused_prefix_is_empty<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let page = must!(
        ctx.store
            .list_objects(
                ctx.bucket,
                &ListRequest {
                    prefix: ctx.key("nothing-here/"),
                    ..ListRequest::default()
                },
            )
            .await,
        "listing"
    );
    ensure!(page.objects.is_empty(), "listed {:?}", page.objects);
    ensure!(page.next.is_none(), "a next token for an empty listing");
    Ok(None)
}
