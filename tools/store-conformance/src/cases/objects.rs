//! Single objects: HEAD, GET (whole, ranged, pinned), PUT, DELETE, keys and limits.

use std::collections::BTreeMap;

use chrono::Utc;
use transfer::store::{
    ArchiveState, BodyChecksums, ContentHeaders, GetRequest, ListRequest, ObjectKind, ObjectSink,
    ObjectSource, StorageClass, StoreErrorKind, WriteCondition, WriteRequest, same_etag,
};

use super::{data, expect_kind, put, read};
use crate::{Behaviour, CaseResult, Ctx, ensure, must};

pub(crate) async fn head_of_a_missing_key_is_not_found<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let result = ctx.store.head_object(ctx.bucket, &ctx.key("absent")).await;
    expect_kind(result, StoreErrorKind::NotFound, "HEAD of a missing key")?;
    let result = ctx
        .store
        .get_object(ctx.bucket, &ctx.key("absent"), &GetRequest::default())
        .await;
    expect_kind(result, StoreErrorKind::NotFound, "GET of a missing key")?;
    Ok(None)
}

pub(crate) async fn operations_on_a_missing_bucket_are_not_found<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let (bucket, key) = (ctx.missing_bucket, ctx.key("k"));
    let head = ctx.store.head_object(bucket, &key).await;
    expect_kind(head, StoreErrorKind::NotFound, "HEAD in a missing bucket")?;
    let get = ctx
        .store
        .get_object(bucket, &key, &GetRequest::default())
        .await;
    expect_kind(get, StoreErrorKind::NotFound, "GET in a missing bucket")?;
    let list = ctx
        .store
        .list_objects(bucket, &ListRequest::default())
        .await;
    expect_kind(list, StoreErrorKind::NotFound, "listing a missing bucket")?;
    let body = data(10, 1);
    let put = ctx
        .store
        .put_object(
            bucket,
            &key,
            body.clone(),
            BodyChecksums::of(&body),
            &WriteRequest::default(),
            &WriteCondition::None,
        )
        .await;
    expect_kind(put, StoreErrorKind::NotFound, "PUT into a missing bucket")?;
    Ok(None)
}

fn content_headers() -> ContentHeaders {
    ContentHeaders {
        content_type: Some("text/csv; charset=utf-8".into()),
        content_encoding: Some("gzip".into()),
        content_disposition: Some("attachment; filename=\"report 1.csv\"".into()),
        content_language: Some("zh-CN".into()),
        cache_control: Some("max-age=3600, public".into()),
        expires: Some("Thu, 01 Dec 2044 16:00:00 GMT".into()),
    }
}

pub(crate) async fn put_then_head_reports_size_etag_and_content_headers<
    S: ObjectSource + ObjectSink,
>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("object.csv");
    let request = WriteRequest {
        content: content_headers(),
        ..WriteRequest::default()
    };
    let written = must!(put(ctx, &key, data(1234, 2), &request).await, "PUT");
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    ensure!(head.size == 1234, "size {} instead of 1234", head.size);
    ensure!(!head.etag.is_empty(), "no ETag");
    ensure!(
        same_etag(&head.etag, &written.etag),
        "HEAD's ETag {} is not the one PUT returned, {}",
        head.etag,
        written.etag
    );
    ensure!(
        head.content == request.content,
        "content headers {:?} instead of {:?}",
        head.content,
        request.content
    );
    ensure!(head.kind == ObjectKind::Normal, "kind {:?}", head.kind);
    ensure!(
        head.archive == ArchiveState::Online,
        "archive state {:?}",
        head.archive
    );
    ensure!(
        matches!(head.storage_class, None | Some(StorageClass::Standard)),
        "storage class {:?} for an object written without one",
        head.storage_class
    );
    if let Some(crc) = head.crc64 {
        let expected = transfer::crc64::checksum(&data(1234, 2));
        ensure!(
            crc == expected,
            "reported CRC-64 {crc}, the bytes have {expected}"
        );
    }
    let modified = head
        .last_modified
        .ok_or_else(|| "no last-modified time".to_owned())?;
    let skew = (Utc::now() - modified).num_seconds().abs();
    ensure!(skew < 3600, "last modified {modified}, {skew} s from now");
    Ok(None)
}

pub(crate) async fn user_metadata_round_trips_with_lower_case_names<
    S: ObjectSource + ObjectSink,
>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("meta");
    let sent: BTreeMap<String, String> = [
        ("origin", "camera 7"),
        ("multi-word-name", "a=b; c, d"),
        ("Camel-Case", "kept value"),
        ("empty-ish", "-"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let request = WriteRequest {
        user_metadata: sent.clone(),
        ..WriteRequest::default()
    };
    must!(put(ctx, &key, data(10, 3), &request).await, "PUT");
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    let expected: BTreeMap<String, String> = sent
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    ensure!(
        head.user_metadata == expected,
        "user metadata {:?} instead of {expected:?}",
        head.user_metadata
    );
    let got = must!(
        ctx.store
            .get_object(ctx.bucket, &key, &GetRequest::default())
            .await,
        "GET"
    );
    ensure!(
        got.attributes.user_metadata == expected,
        "GET reports user metadata {:?}",
        got.attributes.user_metadata
    );
    Ok(None)
}

pub(crate) async fn get_returns_the_whole_body_and_its_attributes<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("whole.bin");
    let body = data(300_001, 4);
    must!(
        put(ctx, &key, body.clone(), &WriteRequest::default()).await,
        "PUT"
    );
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    let output = must!(
        ctx.store
            .get_object(ctx.bucket, &key, &GetRequest::default())
            .await,
        "GET"
    );
    ensure!(
        output.attributes.size == body.len() as u64,
        "GET reports size {}",
        output.attributes.size
    );
    ensure!(
        same_etag(&output.attributes.etag, &head.etag),
        "GET's ETag {} differs from HEAD's {}",
        output.attributes.etag,
        head.etag
    );
    drop(output);
    let bytes = must!(read(ctx, &key, &GetRequest::default()).await, "reading");
    ensure!(
        bytes == body,
        "the body differs ({} bytes read, {} written)",
        bytes.len(),
        body.len()
    );
    Ok(None)
}

pub(crate) async fn ranged_get_returns_exactly_the_range<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("ranged.bin");
    let body = data(1000, 5);
    must!(
        put(ctx, &key, body.clone(), &WriteRequest::default()).await,
        "PUT"
    );
    for range in [0..1, 10..20, 999..1000, 500..1000, 0..1000] {
        let request = GetRequest {
            range: Some(range.clone()),
            if_match: None,
        };
        let output = must!(
            ctx.store.get_object(ctx.bucket, &key, &request).await,
            format!("GET {range:?}")
        );
        ensure!(
            output.attributes.size == 1000,
            "a ranged GET reports size {}, not the object's 1000",
            output.attributes.size
        );
        drop(output);
        let bytes = must!(
            read(ctx, &key, &request).await,
            format!("reading {range:?}")
        );
        let expected =
            &body[transfer::size::as_usize(range.start)..transfer::size::as_usize(range.end)];
        ensure!(
            bytes == expected,
            "range {range:?}: {} bytes, not the {} asked for (or other bytes)",
            bytes.len(),
            expected.len()
        );
    }
    Ok(None)
}

pub(crate) async fn get_pinned_to_a_stale_etag_fails_its_precondition<
    S: ObjectSource + ObjectSink,
>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("pinned");
    let first = must!(
        put(ctx, &key, data(100, 6), &WriteRequest::default()).await,
        "PUT v1"
    );
    let second = must!(
        put(ctx, &key, data(100, 7), &WriteRequest::default()).await,
        "PUT v2"
    );
    ensure!(
        !same_etag(&first.etag, &second.etag),
        "two different bodies have the same ETag {}",
        first.etag
    );
    let stale = GetRequest {
        range: Some(0..10),
        if_match: Some(first.etag.clone()),
    };
    let result = ctx.store.get_object(ctx.bucket, &key, &stale).await;
    expect_kind(
        result,
        StoreErrorKind::PreconditionFailed,
        "GET pinned to the replaced ETag",
    )?;
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    let current = GetRequest {
        range: None,
        if_match: Some(head.etag.clone()),
    };
    let bytes = must!(
        read(ctx, &key, &current).await,
        "GET pinned to the current ETag"
    );
    ensure!(bytes == data(100, 7), "the pinned GET returned other bytes");
    Ok(None)
}

pub(crate) async fn empty_object_round_trips<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("empty");
    must!(
        put(ctx, &key, data(0, 0), &WriteRequest::default()).await,
        "PUT"
    );
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    ensure!(head.size == 0, "size {}", head.size);
    let bytes = must!(read(ctx, &key, &GetRequest::default()).await, "GET");
    ensure!(
        bytes.is_empty(),
        "{} bytes from an empty object",
        bytes.len()
    );
    Ok(None)
}

pub(crate) async fn put_replaces_an_existing_object<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("replaced");
    let first = WriteRequest {
        user_metadata: [("version".to_owned(), "one".to_owned())].into(),
        ..WriteRequest::default()
    };
    must!(put(ctx, &key, data(50, 1), &first).await, "PUT v1");
    must!(
        put(ctx, &key, data(70, 2), &WriteRequest::default()).await,
        "PUT v2"
    );
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    ensure!(head.size == 70, "size {} after the replacement", head.size);
    ensure!(
        head.user_metadata.is_empty(),
        "the old metadata survived: {:?}",
        head.user_metadata
    );
    let bytes = must!(read(ctx, &key, &GetRequest::default()).await, "GET");
    ensure!(bytes == data(70, 2), "the old bytes survived");
    Ok(None)
}

pub(crate) async fn delete_removes_and_is_idempotent<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("deleted");
    must!(
        put(ctx, &key, data(10, 1), &WriteRequest::default()).await,
        "PUT"
    );
    must!(
        ctx.store.delete_object(ctx.bucket, &key, None).await,
        "DELETE"
    );
    let head = ctx.store.head_object(ctx.bucket, &key).await;
    expect_kind(head, StoreErrorKind::NotFound, "HEAD after DELETE")?;
    must!(
        ctx.store.delete_object(ctx.bucket, &key, None).await,
        "DELETE of a deleted key"
    );
    must!(
        ctx.store
            .delete_object(ctx.bucket, &ctx.key("never-existed"), None)
            .await,
        "DELETE of a key that never existed"
    );
    Ok(None)
}

pub(crate) async fn odd_keys_round_trip_byte_exact<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let max = ctx.store.limits().max_key_len;
    let longest = format!(
        "{}{}",
        ctx.prefix,
        "k".repeat(max.saturating_sub(ctx.prefix.len()))
    );
    let mut keys: Vec<String> = [
        "with space.txt",
        "plus+sign+",
        "percent%20literal%",
        "percent%2Fslash",
        "unicode/文件/ü-é.bin",
        "emoji/🚀.dat",
        "question?mark=1&x#hash",
        "tilde~star*quote'",
        "double//slash",
        "trailing/",
        "back\\slash",
    ]
    .iter()
    .map(|k| ctx.key(k))
    .collect();
    keys.push(longest);
    for (i, key) in keys.iter().enumerate() {
        let body = data(20 + i, 9);
        must!(
            put(ctx, key, body.clone(), &WriteRequest::default()).await,
            format!("PUT {key:?}")
        );
        let head = must!(
            ctx.store.head_object(ctx.bucket, key).await,
            format!("HEAD {key:?}")
        );
        ensure!(
            head.size == body.len() as u64,
            "{key:?}: size {}",
            head.size
        );
        let bytes = must!(
            read(ctx, key, &GetRequest::default()).await,
            format!("GET {key:?}")
        );
        ensure!(bytes == body, "{key:?}: other bytes");
    }
    let page = must!(
        ctx.store
            .list_objects(
                ctx.bucket,
                &ListRequest {
                    prefix: ctx.prefix.clone(),
                    ..ListRequest::default()
                },
            )
            .await,
        "listing"
    );
    let listed: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
    keys.sort();
    ensure!(listed == keys, "listed {listed:?}, expected {keys:?}");
    Ok(None)
}

pub(crate) async fn key_over_the_limit_is_an_invalid_key<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    if let Some(why) = ctx.options.gap(Behaviour::KeyLengthLimit) {
        return Ok(Some(why.to_owned()));
    }
    let max = ctx.store.limits().max_key_len;
    let key = format!("{}{}", ctx.prefix, "k".repeat(max + 1 - ctx.prefix.len()));
    let result = put(ctx, &key, data(1, 1), &WriteRequest::default()).await;
    expect_kind(
        result,
        StoreErrorKind::InvalidKey,
        "PUT of a key one byte too long",
    )?;
    Ok(None)
}

pub(crate) async fn metadata_over_the_limit_is_refused<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    if let Some(why) = ctx.options.gap(Behaviour::MetadataLimit) {
        return Ok(Some(why.to_owned()));
    }
    let Some(max) = ctx.store.limits().max_user_metadata else {
        return Ok(Some("the store does not limit user metadata".to_owned()));
    };
    let key = ctx.key("fat");
    let request = WriteRequest {
        user_metadata: [("big".to_owned(), "v".repeat(max))].into(),
        ..WriteRequest::default()
    };
    let result = put(ctx, &key, data(1, 1), &request).await;
    expect_kind(
        result,
        StoreErrorKind::MetadataTooLarge,
        "PUT with user metadata over the limit",
    )?;
    let head = ctx.store.head_object(ctx.bucket, &key).await;
    expect_kind(head, StoreErrorKind::NotFound, "HEAD after the refused PUT")?;
    Ok(None)
}

pub(crate) async fn body_that_does_not_match_its_checksums_is_refused<
    S: ObjectSource + ObjectSink,
>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    if let Some(why) = ctx.options.gap(Behaviour::ChecksumVerification) {
        return Ok(Some(why.to_owned()));
    }
    let key = ctx.key("corrupt");
    let body = data(1000, 1);
    let mut other = data(1000, 1).to_vec();
    other[500] ^= 0x01;
    let wrong = BodyChecksums::of(&other);
    let result = ctx
        .store
        .put_object(
            ctx.bucket,
            &key,
            body,
            wrong,
            &WriteRequest::default(),
            &WriteCondition::None,
        )
        .await;
    expect_kind(
        result,
        StoreErrorKind::ChecksumMismatch,
        "PUT of a body whose checksums are of other bytes",
    )?;
    let head = ctx.store.head_object(ctx.bucket, &key).await;
    expect_kind(head, StoreErrorKind::NotFound, "HEAD after the refused PUT")?;
    Ok(None)
}

/// PUT with `condition`, correct checksums.
async fn put_if<S: ObjectSink>(
    ctx: &Ctx<'_, S>,
    key: &str,
    body: bytes::Bytes,
    condition: &WriteCondition,
) -> Result<transfer::store::WriteOutput, transfer::store::StoreError> {
    let checksums = BodyChecksums::of(&body);
    ctx.store
        .put_object(
            ctx.bucket,
            key,
            body,
            checksums,
            &WriteRequest::default(),
            condition,
        )
        .await
}

pub(crate) async fn conditional_puts_hold_as_declared<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let declared = ctx.store.conditional_writes();
    let key = ctx.key("conditional.bin");
    let first = must!(
        put_if(ctx, &key, data(10, 1), &WriteCondition::IfAbsent).await,
        "PUT if absent of a new key"
    );
    let mut skipped = Vec::new();
    if declared.if_absent {
        let again = put_if(ctx, &key, data(10, 2), &WriteCondition::IfAbsent).await;
        expect_kind(
            again,
            StoreErrorKind::PreconditionFailed,
            "PUT if absent of a key in use",
        )?;
        let bytes = must!(read(ctx, &key, &GetRequest::default()).await, "GET");
        ensure!(bytes == data(10, 1), "a refused PUT changed the object");
    } else {
        skipped.push("if absent");
    }
    if declared.put_if_match {
        let stale = WriteCondition::IfMatch("\"0123456789abcdef0123456789abcdef\"".into());
        let refused = put_if(ctx, &key, data(10, 3), &stale).await;
        expect_kind(
            refused,
            StoreErrorKind::PreconditionFailed,
            "PUT if the ETag matches a stale one",
        )?;
        let current = WriteCondition::IfMatch(first.etag.clone());
        must!(
            put_if(ctx, &key, data(10, 4), &current).await,
            "PUT if the ETag matches the current one"
        );
        ensure!(
            must!(read(ctx, &key, &GetRequest::default()).await, "GET") == data(10, 4),
            "the conditional PUT did not replace the object"
        );
        let gone = WriteCondition::IfMatch(first.etag);
        let absent = put_if(ctx, &ctx.key("conditional-absent.bin"), data(1, 1), &gone).await;
        expect_kind(
            absent,
            StoreErrorKind::PreconditionFailed,
            "PUT if the ETag matches, of a missing key",
        )?;
    } else {
        skipped.push("if match");
    }
    if declared.delete_if_match {
        let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
        let refused = ctx
            .store
            .delete_object(
                ctx.bucket,
                &key,
                Some("\"0123456789abcdef0123456789abcdef\""),
            )
            .await;
        expect_kind(
            refused,
            StoreErrorKind::PreconditionFailed,
            "DELETE if a stale ETag matches",
        )?;
        must!(
            ctx.store
                .delete_object(ctx.bucket, &key, Some(&head.etag))
                .await,
            "DELETE if the current ETag matches"
        );
        let head = ctx.store.head_object(ctx.bucket, &key).await;
        expect_kind(
            head,
            StoreErrorKind::NotFound,
            "HEAD after the conditional DELETE",
        )?;
        // Already gone: deleted, whatever ETag the condition names.
        must!(
            ctx.store
                .delete_object(
                    ctx.bucket,
                    &key,
                    Some("\"00000000000000000000000000000000\"")
                )
                .await,
            "DELETE if an ETag matches, of a key already gone"
        );
    } else {
        skipped.push("delete if match");
    }
    Ok((!skipped.is_empty()).then(|| format!("not declared: {}", skipped.join(", "))))
}
