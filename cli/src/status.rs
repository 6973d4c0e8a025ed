//! `oss2s3 status`: where one object stands.

use serde::Serialize;
use transfer::replicate::{
    MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE, marker_matches, source_marker, source_url,
};
use transfer::store::{ObjectAttributes, ObjectStore, StoreErrorKind, unquote_etag};

/// One object's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The destination's marker names the source's current version (ETag, CRC-64, size,
    /// metadata).
    Replicated,
    /// The destination holds an older version of this source object.
    Stale,
    /// The destination has no object at the key.
    Missing,
    /// The destination holds an object oss2s3 did not write from this source key.
    Foreign,
    /// The source object does not exist.
    SourceGone,
}

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The state.
    pub state: State,
    /// The destination key.
    pub destination_key: String,
    /// In words.
    pub detail: String,
}

async fn head<S: ObjectStore>(
    store: &S,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<ObjectAttributes>> {
    match store.head_object(bucket, key).await {
        Ok(a) => Ok(Some(a)),
        Err(e) if e.kind() == StoreErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// The state of `source_bucket/source_key` and its replica `destination_bucket/destination_key`.
pub async fn status<S: ObjectStore, D: ObjectStore>(
    source: &S,
    source_bucket: &str,
    source_key: &str,
    destination: &D,
    destination_bucket: &str,
    destination_key: &str,
) -> anyhow::Result<Status> {
    let src = head(source, source_bucket, source_key).await?;
    let dst = head(destination, destination_bucket, destination_key).await?;
    let url = source_url(source.scheme(), source_bucket, source_key);
    let owned = dst
        .as_ref()
        .is_some_and(|d| d.user_metadata.get(MARKER_SOURCE) == Some(&url));
    let field = |name: &str| {
        dst.as_ref()
            .and_then(|d| d.user_metadata.get(name).cloned())
            .unwrap_or_else(|| "none".to_owned())
    };
    let (state, detail) = match (&src, &dst) {
        (None, Some(_)) if owned => (
            State::SourceGone,
            "the source object is gone; its replica remains (deletes are replicated only with REPLICATE_DELETES or sync --delete)".to_owned(),
        ),
        (None, _) => (State::SourceGone, "the source object does not exist".to_owned()),
        (Some(_), None) => (State::Missing, "the destination has no object at the key".to_owned()),
        (Some(_), Some(d)) if !owned => (
            State::Foreign,
            match d.user_metadata.get(MARKER_SOURCE) {
                Some(other) => format!("the destination object was written by oss2s3 from {other}"),
                None => "the destination object has no oss2s3 marker (another tool wrote it)".to_owned(),
            },
        ),
        (Some(s), Some(d)) => {
            let want = source_marker(source.scheme(), source_bucket, source_key, s, None);
            if marker_matches(&want, &d.user_metadata) {
                (
                    State::Replicated,
                    format!("the replica holds ETag {} ({} bytes)", unquote_etag(&s.etag), s.size),
                )
            } else {
                (
                    State::Stale,
                    format!(
                        "the replica holds source ETag {} size {}; the source is ETag {} size {} (or its metadata changed)",
                        field(MARKER_ETAG),
                        field(MARKER_SIZE),
                        unquote_etag(&s.etag),
                        s.size
                    ),
                )
            }
        }
    };
    Ok(Status {
        state,
        destination_key: destination_key.to_owned(),
        detail,
    })
}
