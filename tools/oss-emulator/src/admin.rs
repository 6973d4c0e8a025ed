//! The unsigned admin API under `/_emulator/` (a name no OSS bucket can have): health, stats,
//! fault rules, notification targets, credentials, synthetic objects and reset, as JSON.

use axum::body::Body;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use transfer::oss::Credentials;

use crate::faults::FaultRule;
use crate::notify::NotificationTarget;
use crate::state::State;

/// Credentials as the admin API reads them.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct CredentialsJson {
    access_key_id: String,
    access_key_secret: String,
    #[serde(default)]
    security_token: Option<String>,
}

/// A synthetic object to create (`PUT /_emulator/synthetic`).
#[derive(Debug, Deserialize)]
struct ManyJson {
    bucket: String,
    prefix: String,
    count: u64,
    #[serde(default)]
    size: u64,
}

#[derive(Deserialize)]
struct SyntheticJson {
    bucket: String,
    key: String,
    size: u64,
    #[serde(default)]
    seed: u64,
}

/// A JSON response.
fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap_or_default()
}

/// A JSON error response: `{"error": message}`.
fn text(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

/// `{"ok": true}`.
fn ok() -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "ok": true }))
}

/// Reads a JSON request body; a bad one is answered with 400.
async fn read<T: for<'de> Deserialize<'de>>(body: Incoming) -> Result<T, Response<Body>> {
    let bytes = body
        .collect()
        .await
        .map_err(|e| text(StatusCode::BAD_REQUEST, &e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| text(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))
}

/// Serves one admin request; `path` is what follows `/_emulator/`.
pub(crate) async fn handle(
    state: &State,
    method: &Method,
    path: &str,
    body: Incoming,
) -> Response<Body> {
    let path = path.trim_end_matches('/');
    match (method.as_str(), path) {
        ("GET", "health") => ok(),
        ("GET", "stats") => json(StatusCode::OK, &state.stats()),
        ("POST", "stats/reset") => {
            state.reset_stats();
            ok()
        }
        ("POST", "reset") => {
            state.reset();
            ok()
        }
        ("GET", "faults") => json(StatusCode::OK, &state.faults.get()),
        ("PUT", "faults") => match read::<Vec<FaultRule>>(body).await {
            Ok(rules) => {
                tracing::info!(rules = rules.len(), "fault rules replaced");
                state.faults.set(rules);
                ok()
            }
            Err(response) => response,
        },
        ("PUT", "synthetic") => match read::<SyntheticJson>(body).await {
            Ok(o) => match state.store.put_synthetic(&o.bucket, &o.key, o.size, o.seed) {
                Ok(meta) => json(
                    StatusCode::OK,
                    &serde_json::json!({"etag": meta.etag, "size": meta.size, "crc64": meta.crc64.to_string()}),
                ),
                Err(e) => text(StatusCode::NOT_FOUND, &e.message),
            },
            Err(response) => response,
        },
        ("PUT", "synthetic-many") => match read::<ManyJson>(body).await {
            Ok(o) => match state
                .store
                .put_many_synthetic(&o.bucket, &o.prefix, o.count, o.size)
            {
                Ok(etag) => json(
                    StatusCode::OK,
                    &serde_json::json!({"etag": etag, "count": o.count}),
                ),
                Err(e) => text(StatusCode::NOT_FOUND, &e.message),
            },
            Err(response) => response,
        },
        ("GET", path) if path.starts_with("uploads/") => {
            let bucket = &path["uploads/".len()..];
            match state.store.with_bucket(bucket, |b| b.uploads.len()) {
                Some(pending) => json(StatusCode::OK, &serde_json::json!({ "pending": pending })),
                None => text(StatusCode::NOT_FOUND, &format!("no bucket {bucket:?}")),
            }
        }
        ("GET", "notifications") => json(StatusCode::OK, &state.notifier.targets()),
        ("PUT", "notifications") => match read::<Vec<NotificationTarget>>(body).await {
            Ok(targets) => {
                state.notifier.set_targets(targets);
                ok()
            }
            Err(response) => response,
        },
        ("PUT", "credentials") => match read::<Vec<CredentialsJson>>(body).await {
            Ok(list) => {
                state.set_credentials(
                    list.into_iter()
                        .map(|c| Credentials {
                            access_key_id: c.access_key_id,
                            access_key_secret: c.access_key_secret,
                            security_token: c.security_token,
                        })
                        .collect(),
                );
                ok()
            }
            Err(response) => response,
        },
        _ => text(StatusCode::NOT_FOUND, "unknown admin endpoint"),
    }
}
