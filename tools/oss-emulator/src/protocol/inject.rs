//! Fault injection in the pipeline: a fault rule that hits a request acts before the operation
//! runs (`error`, `latency`, `reset`) or on its response (`truncate`, `slow_body`,
//! `crc_mismatch`, `replace`, `lose_answer`).

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{Response, StatusCode};

use crate::connection::ConnControl;
use crate::error::OssError;
use crate::faults::Fault;
use crate::ops::object;
use crate::request::Ctx;
use crate::state::State;

/// Picks the fault for this request, if a rule hits it, and applies what happens before the
/// operation: an error answer, a delay, or a connection reset (which never returns). The
/// fault is returned for [`after`].
pub(crate) async fn before(
    state: &State,
    control: &ConnControl,
    op: &str,
    ctx: &Ctx,
) -> Result<Option<Fault>, OssError> {
    let Some(fault) = state.faults.pick(op, ctx.key.as_deref()) else {
        return Ok(None);
    };
    state.count(|s| s.faults_injected += 1);
    tracing::warn!(op, key = ctx.key(), ?fault, "injecting fault");
    match &fault {
        Fault::Error {
            status,
            code,
            qos_delay_ms,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut error = OssError::custom(status, code.clone(), "Injected fault.");
            if let Some(ms) = qos_delay_ms {
                error = error.with_header("x-oss-qos-delay-time", ms.to_string());
            }
            return Err(error);
        }
        Fault::Latency { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Fault::Reset => {
            control.reset();
            // The connection task drops this request with its connection.
            std::future::pending::<()>().await;
        }
        Fault::Truncate { .. }
        | Fault::SlowBody { .. }
        | Fault::Replace
        | Fault::CrcMismatch
        | Fault::LoseAnswer => {}
    }
    Ok(Some(fault))
}

/// Applies what a fault does to the served response: cut its body, corrupt its CRC header,
/// overwrite the object it read, or drop the connection instead of answering (which never
/// returns).
pub(crate) async fn after(
    state: &State,
    control: &ConnControl,
    ctx: &Ctx,
    fault: Option<Fault>,
    mut response: Response<Body>,
) -> Response<Body> {
    match fault {
        Some(Fault::LoseAnswer) => {
            control.reset();
            std::future::pending::<()>().await;
        }
        Some(Fault::Truncate { after_bytes }) => {
            let (parts, body) = response.into_parts();
            response = Response::from_parts(parts, truncate(body, after_bytes));
        }
        Some(Fault::SlowBody { bytes_per_second }) => {
            let (parts, body) = response.into_parts();
            response = Response::from_parts(parts, paced(body, bytes_per_second));
        }
        Some(Fault::CrcMismatch) => {
            if let Some(crc) = response
                .headers()
                .get("x-oss-hash-crc64ecma")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            {
                response
                    .headers_mut()
                    .insert("x-oss-hash-crc64ecma", (crc ^ 0x5A5A).into());
            }
        }
        Some(Fault::Replace) => object::replace(state, ctx.bucket(), ctx.key()).await,
        _ => {}
    }
    response
}

/// A body that sends `after_bytes` bytes, then fails, which makes the server close the
/// connection before the announced Content-Length is reached.
fn truncate(body: Body, after_bytes: u64) -> Body {
    let head = body
        .into_data_stream()
        .scan(after_bytes, |remaining, chunk| {
            let out = match chunk {
                Ok(chunk) if *remaining > 0 => {
                    let take = transfer::size::as_usize((*remaining).min(chunk.len() as u64));
                    *remaining -= take as u64;
                    Some(Ok::<Bytes, std::io::Error>(chunk.slice(..take)))
                }
                _ => None,
            };
            futures::future::ready(out)
        });
    let tail = futures::stream::once(async {
        // Let the connection flush what was sent before it is torn down.
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected truncation",
        ))
    });
    Body::from_stream(head.chain(tail))
}

/// A body sent at `bytes_per_second`, in slices of at most 64 KiB.
fn paced(body: Body, bytes_per_second: u64) -> Body {
    const SLICE: usize = 64 * 1024;
    let rate = bytes_per_second.max(1);
    let stream = body
        .into_data_stream()
        .flat_map(|chunk| {
            let slices: Vec<Result<Bytes, axum::Error>> = match chunk {
                Ok(chunk) => (0..chunk.len())
                    .step_by(SLICE)
                    .map(|at| Ok(chunk.slice(at..(at + SLICE).min(chunk.len()))))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(slices)
        })
        .then(move |slice| async move {
            if let Ok(bytes) = &slice {
                let pause = Duration::from_secs_f64(bytes.len() as f64 / rate as f64);
                tokio::time::sleep(pause).await;
            }
            slice
        });
    Body::from_stream(stream)
}
