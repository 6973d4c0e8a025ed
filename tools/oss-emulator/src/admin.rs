//! The unsigned admin API under `/_emulator/` (a name no OSS bucket can have).

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use transfer::oss::Credentials;

use crate::faults::{FaultRule, lock};
use crate::handler::Shared;
use crate::notify::NotificationTarget;
use crate::stats::Stats;

/// Credentials as the admin API reads them.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct CredentialsJson {
    access_key_id: String,
    access_key_secret: String,
    #[serde(default)]
    security_token: Option<String>,
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap_or_default()
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

fn ok() -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({ "ok": true }))
}

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
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    body: Incoming,
) -> Response<Body> {
    let path = path.trim_end_matches('/');
    match (method.as_str(), path) {
        ("GET", "health") => ok(),
        ("GET", "stats") => json(StatusCode::OK, &lock(&shared.stats).clone()),
        ("POST", "stats/reset") => {
            reset_stats(shared);
            ok()
        }
        ("POST", "reset") => {
            reset_all(shared);
            ok()
        }
        ("GET", "faults") => json(StatusCode::OK, &shared.faults.get()),
        ("PUT", "faults") => match read::<Vec<FaultRule>>(body).await {
            Ok(rules) => {
                tracing::info!(rules = rules.len(), "fault rules replaced");
                shared.faults.set(rules);
                ok()
            }
            Err(response) => response,
        },
        ("GET", "notifications") => json(StatusCode::OK, &shared.notifier.targets()),
        ("PUT", "notifications") => match read::<Vec<NotificationTarget>>(body).await {
            Ok(targets) => {
                shared.notifier.set_targets(targets);
                ok()
            }
            Err(response) => response,
        },
        ("PUT", "credentials") => match read::<Vec<CredentialsJson>>(body).await {
            Ok(list) => {
                let credentials = list
                    .into_iter()
                    .map(|c| Credentials {
                        access_key_id: c.access_key_id,
                        access_key_secret: c.access_key_secret,
                        security_token: c.security_token,
                    })
                    .collect();
                *shared
                    .credentials
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = credentials;
                ok()
            }
            Err(response) => response,
        },
        _ => text(StatusCode::NOT_FOUND, "unknown admin endpoint"),
    }
}

/// Zeroes the counters.
pub(crate) fn reset_stats(shared: &Shared) {
    *lock(&shared.stats) = Stats::default();
}

/// Drops every object, upload, counter and fault rule.
pub(crate) fn reset_all(shared: &Shared) {
    shared.store.clear();
    shared.faults.set(Vec::new());
    reset_stats(shared);
}
