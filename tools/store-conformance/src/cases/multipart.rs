//! Multipart uploads: create, upload, list, complete, abort, and the part limits.

use bytes::Bytes;
use transfer::store::{
    BodyChecksums, CompletedPart, ContentHeaders, GetRequest, ObjectKind, ObjectSink, ObjectSource,
    StoreErrorKind, WriteCondition, WriteRequest, same_etag,
};

use super::{data, expect_kind, put, read};
use crate::{Behaviour, CaseResult, Ctx, ensure, must};

/// Uploads `parts` (numbered from 1) to `upload_id`; returns what to name on completion.
async fn upload<S: ObjectSink>(
    ctx: &Ctx<'_, S>,
    key: &str,
    upload_id: &str,
    parts: &[Bytes],
) -> Result<Vec<CompletedPart>, String> {
    let mut done = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let number = u32::try_from(i + 1).map_err(|e| e.to_string())?;
        let checksums = BodyChecksums::of(body);
        let info = must!(
            ctx.store
                .upload_part(ctx.bucket, key, upload_id, number, body.clone(), checksums)
                .await,
            format!("UploadPart {number}")
        );
        ensure!(
            info.part_number == number,
            "part {number} answered as {}",
            info.part_number
        );
        ensure!(
            info.size == body.len() as u64,
            "part {number} size {}",
            info.size
        );
        done.push(CompletedPart {
            part_number: number,
            etag: info.etag,
            checksums,
        });
    }
    Ok(done)
}

/// Creates an upload of `key` with default attributes.
async fn create<S: ObjectSink>(ctx: &Ctx<'_, S>, key: &str) -> Result<String, String> {
    Ok(must!(
        ctx.store
            .create_multipart_upload(ctx.bucket, key, &WriteRequest::default())
            .await,
        "CreateMultipartUpload"
    ))
}

/// Aborts an upload the case is done with.
async fn abort<S: ObjectSink>(ctx: &Ctx<'_, S>, key: &str, upload_id: &str) -> Result<(), String> {
    must!(
        ctx.store
            .abort_multipart_upload(ctx.bucket, key, upload_id)
            .await,
        "AbortMultipartUpload"
    );
    Ok(())
}

fn whole(parts: &[Bytes]) -> (Vec<u8>, BodyChecksums) {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let checksums = BodyChecksums::of(&bytes);
    (bytes, checksums)
}

pub(crate) async fn multipart_upload_assembles_the_parts_in_order<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let min = usize::try_from(ctx.store.limits().min_part_size).map_err(|e| e.to_string())?;
    let key = ctx.key("assembled.bin");
    let request = WriteRequest {
        content: ContentHeaders {
            content_type: Some("application/x-test".into()),
            ..ContentHeaders::default()
        },
        user_metadata: [("origin".to_owned(), "multipart".to_owned())].into(),
        ..WriteRequest::default()
    };
    let upload_id = must!(
        ctx.store
            .create_multipart_upload(ctx.bucket, &key, &request)
            .await,
        "CreateMultipartUpload"
    );
    let parts = [data(min, 1), data(min, 2), data(1000, 3)];
    let named = upload(ctx, &key, &upload_id, &parts).await?;
    let (bytes, checksums) = whole(&parts);
    let written = must!(
        ctx.store
            .complete_multipart_upload(
                ctx.bucket,
                &key,
                &upload_id,
                &named,
                checksums,
                &WriteCondition::None
            )
            .await,
        "CompleteMultipartUpload"
    );
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    ensure!(head.size == bytes.len() as u64, "size {}", head.size);
    ensure!(
        same_etag(&head.etag, &written.etag),
        "HEAD's ETag {} is not the one completion returned, {}",
        head.etag,
        written.etag
    );
    ensure!(head.kind == ObjectKind::Multipart, "kind {:?}", head.kind);
    ensure!(
        head.content.content_type.as_deref() == Some("application/x-test"),
        "content type {:?}",
        head.content.content_type
    );
    ensure!(
        head.user_metadata.get("origin").map(String::as_str) == Some("multipart"),
        "user metadata {:?}",
        head.user_metadata
    );
    if let Some(crc) = head.crc64 {
        ensure!(
            crc == checksums.crc64_xz,
            "reported CRC-64 {crc}, the parts have {}",
            checksums.crc64_xz
        );
    }
    let read_back = must!(read(ctx, &key, &GetRequest::default()).await, "GET");
    ensure!(read_back == bytes, "the assembled object differs");
    Ok(None)
}

pub(crate) async fn list_parts_reports_every_uploaded_part<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("listed.bin");
    let upload_id = create(ctx, &key).await?;
    let mut named = upload(
        ctx,
        &key,
        &upload_id,
        &[data(10, 1), data(20, 2), data(30, 3)],
    )
    .await?;
    // Uploading a part number again replaces the part.
    let again = data(25, 4);
    let info = must!(
        ctx.store
            .upload_part(
                ctx.bucket,
                &key,
                &upload_id,
                2,
                again.clone(),
                BodyChecksums::of(&again)
            )
            .await,
        "UploadPart 2 again"
    );
    named[1].etag = info.etag;
    let listed = must!(
        ctx.store.list_parts(ctx.bucket, &key, &upload_id).await,
        "ListParts"
    );
    let summary: Vec<(u32, u64)> = listed.iter().map(|p| (p.part_number, p.size)).collect();
    ensure!(
        summary == [(1, 10), (2, 25), (3, 30)],
        "ListParts reports {summary:?}"
    );
    for (part, listed) in named.iter().zip(&listed) {
        ensure!(
            same_etag(&part.etag, &listed.etag),
            "part {} listed with ETag {}, uploaded as {}",
            part.part_number,
            listed.etag,
            part.etag
        );
    }
    abort(ctx, &key, &upload_id).await?;
    Ok(None)
}

pub(crate) async fn list_parts_returns_every_part_across_pages<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    // Both services answer ListParts with at most 1,000 parts a page.
    const PARTS: usize = 1_003;
    let key = ctx.key("many-parts.bin");
    let upload_id = create(ctx, &key).await?;
    let parts: Vec<Bytes> = (0..PARTS).map(|i| data(1, i.to_le_bytes()[0])).collect();
    upload(ctx, &key, &upload_id, &parts).await?;
    let listed = must!(
        ctx.store.list_parts(ctx.bucket, &key, &upload_id).await,
        "ListParts"
    );
    let numbers: Vec<u32> = listed.iter().map(|p| p.part_number).collect();
    let expected: Vec<u32> = (1..=u32::try_from(PARTS).map_err(|e| e.to_string())?).collect();
    ensure!(
        numbers == expected,
        "ListParts returned {} parts (first {:?}, last {:?}), not 1 to {PARTS}",
        numbers.len(),
        numbers.first(),
        numbers.last()
    );
    abort(ctx, &key, &upload_id).await?;
    Ok(None)
}

pub(crate) async fn abort_discards_the_upload_and_is_idempotent<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("aborted.bin");
    let upload_id = create(ctx, &key).await?;
    upload(ctx, &key, &upload_id, &[data(100, 1)]).await?;
    must!(
        ctx.store
            .abort_multipart_upload(ctx.bucket, &key, &upload_id)
            .await,
        "AbortMultipartUpload"
    );
    let listed = ctx.store.list_parts(ctx.bucket, &key, &upload_id).await;
    expect_kind(
        listed,
        StoreErrorKind::NotFound,
        "ListParts after the abort",
    )?;
    must!(
        ctx.store
            .abort_multipart_upload(ctx.bucket, &key, &upload_id)
            .await,
        "a second AbortMultipartUpload"
    );
    let head = ctx.store.head_object(ctx.bucket, &key).await;
    expect_kind(
        head,
        StoreErrorKind::NotFound,
        "HEAD of an aborted upload's key",
    )?;
    Ok(None)
}

pub(crate) async fn complete_naming_an_unknown_part_is_refused<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("bad-part.bin");
    let upload_id = create(ctx, &key).await?;
    let parts = [data(100, 1)];
    let mut named = upload(ctx, &key, &upload_id, &parts).await?;
    "\"0123456789abcdef0123456789abcdef\"".clone_into(&mut named[0].etag);
    let (_, checksums) = whole(&parts);
    let result = ctx
        .store
        .complete_multipart_upload(
            ctx.bucket,
            &key,
            &upload_id,
            &named,
            checksums,
            &WriteCondition::None,
        )
        .await;
    expect_kind(
        result,
        StoreErrorKind::InvalidRequest,
        "completion naming a part ETag that was never uploaded",
    )?;
    let head = ctx.store.head_object(ctx.bucket, &key).await;
    expect_kind(
        head,
        StoreErrorKind::NotFound,
        "HEAD after the refused completion",
    )?;
    abort(ctx, &key, &upload_id).await?;
    Ok(None)
}

pub(crate) async fn parts_below_the_minimum_size_are_refused_on_complete<
    S: ObjectSource + ObjectSink,
>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let min = ctx.store.limits().min_part_size;
    if min <= 1 {
        return Ok(Some("the store has no minimum part size".to_owned()));
    }
    let key = ctx.key("small-parts.bin");
    let upload_id = create(ctx, &key).await?;
    let small = usize::try_from(min / 2).map_err(|e| e.to_string())?;
    let parts = [data(small, 1), data(small, 2)];
    let named = upload(ctx, &key, &upload_id, &parts).await?;
    let (_, checksums) = whole(&parts);
    let result = ctx
        .store
        .complete_multipart_upload(
            ctx.bucket,
            &key,
            &upload_id,
            &named,
            checksums,
            &WriteCondition::None,
        )
        .await;
    expect_kind(
        result,
        StoreErrorKind::InvalidRequest,
        "completion with a first part under the minimum size",
    )?;
    abort(ctx, &key, &upload_id).await?;
    Ok(None)
}

pub(crate) async fn operations_on_an_unknown_upload_are_not_found<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let key = ctx.key("no-upload.bin");
    let bogus = "0000000000000000000000000000000000000000";
    let listed = ctx.store.list_parts(ctx.bucket, &key, bogus).await;
    expect_kind(
        listed,
        StoreErrorKind::NotFound,
        "ListParts of an unknown upload",
    )?;
    if let Some(why) = ctx.options.gap(Behaviour::UnknownUploadWrites) {
        return Ok(Some(format!("ListParts checked; {why}")));
    }
    let body = data(10, 1);
    let part = ctx
        .store
        .upload_part(
            ctx.bucket,
            &key,
            bogus,
            1,
            body.clone(),
            BodyChecksums::of(&body),
        )
        .await;
    expect_kind(
        part,
        StoreErrorKind::NotFound,
        "UploadPart to an unknown upload",
    )?;
    let named = [CompletedPart {
        part_number: 1,
        etag: "\"0123456789abcdef0123456789abcdef\"".to_owned(),
        checksums: BodyChecksums::of(&body),
    }];
    let completed = ctx
        .store
        .complete_multipart_upload(
            ctx.bucket,
            &key,
            bogus,
            &named,
            BodyChecksums::of(&body),
            &WriteCondition::None,
        )
        .await;
    expect_kind(
        completed,
        StoreErrorKind::NotFound,
        "CompleteMultipartUpload of an unknown upload",
    )?;
    Ok(None)
}

pub(crate) async fn limits_are_self_consistent<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let l = ctx.store.limits();
    ensure!(
        l.min_part_size >= 1,
        "minimum part size {}",
        l.min_part_size
    );
    ensure!(
        l.min_part_size <= l.max_part_size,
        "parts from {} to {} bytes",
        l.min_part_size,
        l.max_part_size
    );
    ensure!(l.max_parts >= 1, "at most {} parts", l.max_parts);
    ensure!(
        l.max_single_put <= l.max_object_size,
        "a PUT of {} bytes but objects of at most {}",
        l.max_single_put,
        l.max_object_size
    );
    ensure!(
        l.max_part_size.saturating_mul(u64::from(l.max_parts)) >= l.max_object_size,
        "{} parts of {} bytes cannot hold the largest object, {}",
        l.max_parts,
        l.max_part_size,
        l.max_object_size
    );
    ensure!(
        l.max_key_len >= 255,
        "keys of at most {} bytes",
        l.max_key_len
    );
    Ok(None)
}

pub(crate) async fn conditional_completions_hold_as_declared<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let declared = ctx.store.conditional_writes();
    if !declared.if_absent && !declared.complete_if_match {
        return Ok(Some("no conditional completion declared".to_owned()));
    }
    let key = ctx.key("conditional.bin");
    let existing = must!(
        put(ctx, &key, data(10, 1), &WriteRequest::default()).await,
        "PUT of the object in the way"
    );
    let parts = [data(100, 2)];
    let upload_id = create(ctx, &key).await?;
    let named = upload(ctx, &key, &upload_id, &parts).await?;
    let (bytes, checksums) = whole(&parts);
    let complete = |condition: WriteCondition| {
        let (key, upload_id, named) = (&key, &upload_id, &named);
        async move {
            ctx.store
                .complete_multipart_upload(ctx.bucket, key, upload_id, named, checksums, &condition)
                .await
        }
    };
    let mut skipped = Vec::new();
    if declared.if_absent {
        let refused = complete(WriteCondition::IfAbsent).await;
        expect_kind(
            refused,
            StoreErrorKind::PreconditionFailed,
            "completion if absent, of a key in use",
        )?;
    } else {
        skipped.push("if absent");
    }
    if declared.complete_if_match {
        let stale = WriteCondition::IfMatch("\"0123456789abcdef0123456789abcdef\"".into());
        let refused = complete(stale).await;
        expect_kind(
            refused,
            StoreErrorKind::PreconditionFailed,
            "completion if a stale ETag matches",
        )?;
    } else {
        skipped.push("if match");
    }
    ensure!(
        must!(read(ctx, &key, &GetRequest::default()).await, "GET") == data(10, 1),
        "a refused completion changed the object"
    );
    // The upload survives a refused completion: completed on the right condition, it lands.
    let condition = if declared.complete_if_match {
        WriteCondition::IfMatch(existing.etag)
    } else {
        WriteCondition::None
    };
    must!(complete(condition).await, "completion after the refusals");
    ensure!(
        must!(read(ctx, &key, &GetRequest::default()).await, "GET") == bytes,
        "the completion did not replace the object"
    );
    Ok((!skipped.is_empty()).then(|| format!("not declared: {}", skipped.join(", "))))
}
