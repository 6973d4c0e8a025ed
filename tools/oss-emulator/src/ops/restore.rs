//! RestoreObject, and the restore state that GET, HEAD and listings report for archived
//! objects (`x-oss-restore`, `<RestoreInfo>`).

use axum::body::Body;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{empty, read_small_body};
use crate::error::OssError;
use crate::request::Ctx;
use crate::state::State;
use crate::store::{ObjectMeta, RestoreState};
use crate::util::{http_date, now_ms};
use crate::xml::{self, requests::RestoreRequest};

/// One day, in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The `x-oss-restore` value, if any, and whether the object's data may be read now.
pub(crate) fn restore_status(meta: &ObjectMeta) -> (Option<String>, bool) {
    let readable = !meta.is_archived();
    match meta.restore {
        None => (None, readable),
        Some(RestoreState {
            ready_at_ms,
            expiry_ms,
        }) => {
            let now = now_ms();
            if now < ready_at_ms {
                (Some("ongoing-request=\"true\"".to_owned()), readable)
            } else if now < expiry_ms {
                (
                    Some(format!(
                        "ongoing-request=\"false\", expiry-date=\"{}\"",
                        http_date(expiry_ms)
                    )),
                    true,
                )
            } else {
                (None, readable)
            }
        }
    }
}

/// RestoreObject: 202 when a restore starts (it completes after the configured delay), 409
/// while one runs, 200 when the object is already restored (the expiry is extended).
pub(crate) async fn restore_object(
    state: &State,
    ctx: &Ctx,
    body: Incoming,
) -> Result<Response<Body>, OssError> {
    let body = read_small_body(state, body).await?;
    let days = if body.is_empty() {
        1
    } else {
        let request: RestoreRequest = xml::parse(&body)?;
        request
            .days
            .and_then(|d| d.trim().parse::<i64>().ok())
            .unwrap_or(1)
    };
    let object = state
        .store
        .get(ctx.bucket(), ctx.key())
        .ok_or_else(OssError::no_such_key)?;
    if !object.meta.is_archived() {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "OperationNotSupported",
            "The operation is not supported for this storage class.",
        ));
    }
    let now = now_ms();
    let (restore, status) = match object.meta.restore {
        Some(current) if now < current.ready_at_ms => {
            return Err(OssError::new(
                StatusCode::CONFLICT,
                "RestoreAlreadyInProgress",
                "The restore operation is in progress.",
            ));
        }
        Some(current) if now < current.expiry_ms => (
            RestoreState {
                ready_at_ms: current.ready_at_ms,
                expiry_ms: now + days * DAY_MS,
            },
            StatusCode::OK,
        ),
        _ => {
            let delay = i64::try_from(state.restore_delay().as_millis()).unwrap_or(i64::MAX);
            let ready = now.saturating_add(delay);
            (
                RestoreState {
                    ready_at_ms: ready,
                    expiry_ms: ready + days * DAY_MS,
                },
                StatusCode::ACCEPTED,
            )
        }
    };
    state
        .store
        .update_meta(ctx.bucket(), ctx.key(), |m| m.restore = Some(restore));
    Ok(empty(Response::builder().status(status)))
}
