//! The optional capabilities: each is either implemented and passes, or declared
//! unimplementable and absent.

use std::time::Instant;

use transfer::store::{
    ArchiveState, GetRequest, ObjectKind, ObjectSink, ObjectSource, RestoreArchived,
    RestoreRequest, RestoreStatus, RestoreTier, StorageClass, StoreErrorKind, Symlinks,
    WriteRequest,
};

use super::{data, expect_kind, put, read};
use crate::{CAPABILITY_METHODS, CaseResult, Ctx, ensure, must};

pub(crate) async fn capabilities_match_the_declared_gaps<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let options = ctx.options;
    for method in options.unimplementable {
        ensure!(
            CAPABILITY_METHODS.contains(method),
            "{method:?} is declared unimplementable, but only {CAPABILITY_METHODS:?} are optional"
        );
    }
    let restore_declared_missing = options.is_unimplementable("restore_object");
    let has_restore = ctx.store.archive_restore().is_some();
    ensure!(
        has_restore != restore_declared_missing,
        "restore_object is {} but declared {}",
        if has_restore {
            "implemented"
        } else {
            "missing"
        },
        if restore_declared_missing {
            "unimplementable"
        } else {
            "implemented"
        }
    );
    let symlinks_declared_missing =
        options.is_unimplementable("symlink_target") && options.is_unimplementable("put_symlink");
    let symlinks_half_declared =
        options.is_unimplementable("symlink_target") != options.is_unimplementable("put_symlink");
    ensure!(
        !symlinks_half_declared,
        "symlink_target and put_symlink are one capability: declare both or neither"
    );
    let has_symlinks = ctx.store.symlinks().is_some();
    ensure!(
        has_symlinks != symlinks_declared_missing,
        "symlinks are {} but declared {}",
        if has_symlinks {
            "implemented"
        } else {
            "missing"
        },
        if symlinks_declared_missing {
            "unimplementable"
        } else {
            "implemented"
        }
    );
    Ok(None)
}

pub(crate) async fn archived_objects_read_only_after_a_restore<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let Some(restorer) = ctx.store.archive_restore() else {
        return Ok(Some("unimplementable: restore_object".to_owned()));
    };
    let key = ctx.key("archived.bin");
    let body = data(500, 3);
    let request = WriteRequest {
        storage_class: Some(StorageClass::Archive),
        ..WriteRequest::default()
    };
    must!(
        put(ctx, &key, body.clone(), &request).await,
        "PUT into the archive class"
    );
    let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
    ensure!(
        head.storage_class == Some(StorageClass::Archive),
        "storage class {:?}",
        head.storage_class
    );
    ensure!(
        head.archive == ArchiveState::Archived,
        "archive state {:?}",
        head.archive
    );
    let get = ctx
        .store
        .get_object(ctx.bucket, &key, &GetRequest::default())
        .await;
    expect_kind(
        get,
        StoreErrorKind::InvalidObjectState,
        "GET of an archived object",
    )?;
    let restore = RestoreRequest {
        days: 1,
        tier: RestoreTier::Standard,
    };
    let status = must!(
        restorer.restore_object(ctx.bucket, &key, &restore).await,
        "RestoreObject"
    );
    ensure!(
        status == RestoreStatus::Started,
        "the first restore reports {status:?}"
    );
    let started = Instant::now();
    loop {
        let head = must!(ctx.store.head_object(ctx.bucket, &key).await, "HEAD");
        match head.archive {
            ArchiveState::Restored => break,
            ArchiveState::Restoring => {}
            other => return Err(format!("after a restore the archive state is {other:?}")),
        }
        ensure!(
            started.elapsed() < ctx.options.restore_timeout,
            "not restored within {:?}",
            ctx.options.restore_timeout
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let bytes = must!(
        read(ctx, &key, &GetRequest::default()).await,
        "GET of the restored object"
    );
    ensure!(bytes == body, "the restored object reads other bytes");
    must!(
        restorer.restore_object(ctx.bucket, &key, &restore).await,
        "a second RestoreObject of a restored object"
    );
    let normal = ctx.key("not-archived");
    must!(
        put(ctx, &normal, data(5, 1), &WriteRequest::default()).await,
        "PUT"
    );
    // S3 answers 403 InvalidObjectState, OSS 400 OperationNotSupported: either is a refusal.
    match restorer.restore_object(ctx.bucket, &normal, &restore).await {
        Err(e)
            if matches!(
                e.kind(),
                StoreErrorKind::InvalidObjectState | StoreErrorKind::InvalidRequest
            ) => {}
        other => {
            return Err(format!(
                "RestoreObject of an object that is not archived: expected a refusal, got {other:?}"
            ));
        }
    }
    Ok(None)
}

pub(crate) async fn symlinks_resolve_to_their_target<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let Some(links) = ctx.store.symlinks() else {
        return Ok(Some(
            "unimplementable: symlink_target, put_symlink".to_owned(),
        ));
    };
    let target = ctx.key("target.txt");
    let link = ctx.key("link.txt");
    let body = data(77, 5);
    must!(
        put(ctx, &target, body.clone(), &WriteRequest::default()).await,
        "PUT"
    );
    must!(
        links.put_symlink(ctx.bucket, &link, &target).await,
        "PutSymlink"
    );
    let pointed = must!(links.symlink_target(ctx.bucket, &link).await, "GetSymlink");
    ensure!(
        pointed.as_deref() == Some(target.as_str()),
        "the link points to {pointed:?}"
    );
    let plain = must!(
        links.symlink_target(ctx.bucket, &target).await,
        "GetSymlink of an ordinary object"
    );
    ensure!(plain.is_none(), "an ordinary object points to {plain:?}");
    let missing = links.symlink_target(ctx.bucket, &ctx.key("absent")).await;
    expect_kind(
        missing,
        StoreErrorKind::NotFound,
        "GetSymlink of a missing key",
    )?;
    let head = must!(
        ctx.store.head_object(ctx.bucket, &link).await,
        "HEAD of the link"
    );
    ensure!(head.kind == ObjectKind::Symlink, "kind {:?}", head.kind);
    ensure!(
        head.size == body.len() as u64,
        "the link's size is {}",
        head.size
    );
    let bytes = must!(
        read(ctx, &link, &GetRequest::default()).await,
        "GET of the link"
    );
    ensure!(bytes == body, "the link reads other bytes than its target");
    Ok(None)
}
