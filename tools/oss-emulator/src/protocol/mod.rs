//! The request pipeline, from an HTTP request to its response: request ID and common headers,
//! the admin API under `/_emulator/`, counting, authentication ([`auth`]), key and bucket
//! checks, fault injection ([`inject`]) and the operation itself ([`route`]).
//!
//! [`handle`] is the one entry point; the accept loop in [`crate::server`] knows nothing else.

mod auth;
mod inject;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::connection::ConnControl;
use crate::error::OssError;
use crate::request::{self, Ctx};
use crate::state::State;
use crate::util::new_request_id;

/// The pseudo-bucket the admin API lives under: a name no OSS bucket can have.
const ADMIN_PREFIX: &str = "_emulator";

/// Answers one request that arrived on a connection from `peer`.
pub(crate) async fn handle(
    state: Arc<State>,
    control: Arc<ConnControl>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let request_id = new_request_id();
    let head = req.method() == Method::HEAD;
    let host = request::host(&req);
    let mut response = match serve(&state, &control, peer, &request_id, &host, req).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(code = %error.code, status = %error.status, "request failed");
            crate::xml::error_response(&error, &request_id, &host, head)
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = request_id.parse() {
        headers.insert("x-oss-request-id", v);
    }
    headers.insert("server", HeaderValue::from_static("AliyunOSS"));
    if let Ok(v) = httpdate::fmt_http_date(std::time::SystemTime::now()).parse() {
        headers.insert("date", v);
    }
    if !head
        && let Some(len) = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    {
        state.count(|s| s.bytes_out += len);
    }
    response
}

/// Everything between parsing and the common headers.
async fn serve(
    state: &Arc<State>,
    control: &ConnControl,
    peer: SocketAddr,
    request_id: &str,
    host: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, OssError> {
    let (parts, body) = req.into_parts();
    let (bucket, key) = request::address(&state.store, host, parts.uri.path())?;
    if bucket.as_deref() == Some(ADMIN_PREFIX) {
        return Ok(
            crate::admin::handle(state, &parts.method, key.as_deref().unwrap_or(""), body).await,
        );
    }
    let ctx = Ctx {
        request_id: request_id.to_owned(),
        method: parts.method,
        bucket,
        key,
        query: request::parse_query(parts.uri.query()),
        headers: parts.headers,
        peer,
        host: host.to_owned(),
    };
    let op = route::operation(&ctx);
    state.count(|s| *s.requests.entry(op.to_owned()).or_default() += 1);
    tracing::debug!(op, bucket = ctx.bucket(), key = ctx.key(), "request");

    auth::authenticate(state, &ctx)?;
    ctx.check_key()?;
    if ctx.bucket.is_none() {
        return Err(OssError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "The emulator does not list buckets.",
        ));
    }
    if !state.store.has_bucket(ctx.bucket()) {
        return Err(OssError::no_such_bucket());
    }

    let fault = inject::before(state, control, op, &ctx).await?;
    let response = route::dispatch(state, op, &ctx, body).await?;
    Ok(inject::after(state, control, &ctx, fault, response).await)
}
