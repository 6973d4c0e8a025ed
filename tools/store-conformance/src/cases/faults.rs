//! The error classes only a misbehaving service produces: throttling, server errors, rejected
//! keys, denied access and broken bodies, each injected by the test's fault hooks.

use transfer::store::{GetRequest, ObjectSink, ObjectSource, StoreErrorKind, WriteRequest};

use super::{data, expect_kind, put, read};
use crate::{CaseResult, Ctx, InjectedFault, must};

pub(crate) async fn service_faults_have_their_error_class<S: ObjectSource + ObjectSink>(
    ctx: &Ctx<'_, S>,
) -> CaseResult {
    let Some(faults) = ctx.options.faults.as_ref() else {
        return Ok(Some("no fault hooks for this store's service".to_owned()));
    };
    let key = ctx.key("faulty");
    must!(
        put(ctx, &key, data(300_000, 4), &WriteRequest::default()).await,
        "PUT"
    );
    let cases = [
        (InjectedFault::Throttle, StoreErrorKind::Throttled),
        (InjectedFault::ServerError, StoreErrorKind::Unavailable),
        (
            InjectedFault::RejectCredentials,
            StoreErrorKind::InvalidCredentials,
        ),
        (InjectedFault::DenyAccess, StoreErrorKind::AccessDenied),
    ];
    // GETs, not HEADs: a HEAD's error answer has no body, so S3 cannot say which 403 it is.
    for (fault, kind) in cases {
        faults.inject(fault);
        let result = ctx
            .store
            .get_object(ctx.bucket, &key, &GetRequest::default())
            .await;
        faults.clear();
        expect_kind(
            result,
            kind,
            &format!("GET while the service answers {fault:?}"),
        )?;
        // Retryable classes say so, the others do not.
        let retryable = matches!(
            kind,
            StoreErrorKind::Throttled | StoreErrorKind::Unavailable
        );
        crate::ensure!(
            kind.is_retryable() == retryable,
            "{kind:?} is retryable: {}",
            kind.is_retryable()
        );
    }
    faults.inject(InjectedFault::TruncateBody);
    let result = read(ctx, &key, &GetRequest::default()).await;
    faults.clear();
    expect_kind(
        result,
        StoreErrorKind::Unavailable,
        "a GET whose body breaks off",
    )?;
    // The store works again once the service does.
    let bytes = must!(
        read(ctx, &key, &GetRequest::default()).await,
        "GET after the faults"
    );
    crate::ensure!(bytes == data(300_000, 4), "the object reads other bytes");
    Ok(None)
}
