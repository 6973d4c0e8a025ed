//! The cases, grouped by what they cover. Each is an `async fn(&Ctx<S>) -> CaseResult`.

mod capabilities;
mod faults;
mod listing;
mod multipart;
mod objects;

use bytes::Bytes;
use futures::StreamExt;
use transfer::store::{
    BodyChecksums, GetRequest, ObjectSink, ObjectSource, StoreError, StoreErrorKind,
    WriteCondition, WriteOutput, WriteRequest,
};

use crate::{CaseFuture, Ctx};

/// One case of the suite.
pub struct Case<S> {
    /// The case's name, a sentence saying what the store must do.
    pub name: &'static str,
    /// Runs the case.
    pub run: for<'a> fn(&'a Ctx<'a, S>) -> CaseFuture<'a>,
}

impl<S> std::fmt::Debug for Case<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! case {
    ($module:ident :: $name:ident) => {
        Case {
            name: stringify!($name),
            run: |ctx| Box::pin($module::$name(ctx)),
        }
    };
}

/// Every case, in the order the suite runs them.
pub fn cases<S: ObjectSource + ObjectSink>() -> Vec<Case<S>> {
    vec![
        case!(objects::head_of_a_missing_key_is_not_found),
        case!(objects::operations_on_a_missing_bucket_are_not_found),
        case!(objects::put_then_head_reports_size_etag_and_content_headers),
        case!(objects::user_metadata_round_trips_with_lower_case_names),
        case!(objects::get_returns_the_whole_body_and_its_attributes),
        case!(objects::ranged_get_returns_exactly_the_range),
        case!(objects::get_pinned_to_a_stale_etag_fails_its_precondition),
        case!(objects::empty_object_round_trips),
        case!(objects::put_replaces_an_existing_object),
        case!(objects::delete_removes_and_is_idempotent),
        case!(objects::odd_keys_round_trip_byte_exact),
        case!(objects::key_over_the_limit_is_an_invalid_key),
        case!(objects::metadata_over_the_limit_is_refused),
        case!(objects::body_that_does_not_match_its_checksums_is_refused),
        case!(objects::conditional_puts_hold_as_declared),
        case!(listing::listing_is_in_utf8_byte_order_across_pages),
        case!(listing::listing_honours_prefix_and_start_after),
        case!(listing::listing_an_unused_prefix_is_empty),
        case!(multipart::multipart_upload_assembles_the_parts_in_order),
        case!(multipart::list_parts_reports_every_uploaded_part),
        case!(multipart::list_parts_returns_every_part_across_pages),
        case!(multipart::abort_discards_the_upload_and_is_idempotent),
        case!(multipart::complete_naming_an_unknown_part_is_refused),
        case!(multipart::parts_below_the_minimum_size_are_refused_on_complete),
        case!(multipart::operations_on_an_unknown_upload_are_not_found),
        case!(multipart::conditional_completions_hold_as_declared),
        case!(multipart::limits_are_self_consistent),
        case!(faults::service_faults_have_their_error_class),
        case!(capabilities::capabilities_match_the_declared_gaps),
        case!(capabilities::archived_objects_read_only_after_a_restore),
        case!(capabilities::symlinks_resolve_to_their_target),
    ]
}

/// Deterministic test data of `len` bytes.
pub(crate) fn data(len: usize, seed: u8) -> Bytes {
    (0u32..)
        .take(len)
        .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[1] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

/// PutObject with correct checksums.
pub(crate) async fn put<S: ObjectSink>(
    ctx: &Ctx<'_, S>,
    key: &str,
    body: Bytes,
    request: &WriteRequest,
) -> Result<WriteOutput, StoreError> {
    let checksums = BodyChecksums::of(&body);
    ctx.store
        .put_object(
            ctx.bucket,
            key,
            body,
            checksums,
            request,
            &WriteCondition::None,
        )
        .await
}

/// The whole body (or the range) of `key`, collected.
pub(crate) async fn read<S: ObjectSource>(
    ctx: &Ctx<'_, S>,
    key: &str,
    request: &GetRequest,
) -> Result<Vec<u8>, StoreError> {
    let output = ctx.store.get_object(ctx.bucket, key, request).await?;
    let mut body = output.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// Checks that `result` failed with `kind`.
pub(crate) fn expect_kind<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    kind: StoreErrorKind,
    what: &str,
) -> Result<(), String> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(format!(
            "{what}: expected {kind:?}, got {:?}: {e}",
            e.kind()
        )),
        Ok(value) => Err(format!("{what}: expected {kind:?}, got success: {value:?}")),
    }
}
