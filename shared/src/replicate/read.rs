//! Pinned reads: a GET (or ranged GET) with `If-Match`, retried on transient failures, whose
//! length is checked.

use std::ops::Range;

use backon::BackoffBuilder as _;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::engine::Replicator;
use super::error::ReplicationError;
use crate::store::{GetRequest, ObjectSink, ObjectSource, StoreError, StoreErrorKind};

impl<S, D> Replicator<S, D>
where
    S: ObjectSource,
    D: ObjectSink + Clone + 'static,
{
    /// Reads `range` (the whole object when `None`) pinned to `etag`, trying retryable failures
    /// again as [`CopySettings::read_retry`](super::CopySettings::read_retry) says (a pause the
    /// source asks for is honoured up to the policy's `max_delay`), and checks the length.
    pub(super) async fn read(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        range: Option<Range<u64>>,
        len: u64,
    ) -> Result<Bytes, ReplicationError> {
        let policy = self.settings.read_retry;
        let mut delays = policy.backoff().build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.read_once(bucket, key, etag, range.clone(), len).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(ReplicationError::from_source(e)),
            };
            let Some(delay) = delays.next() else {
                return Err(ReplicationError::from_source(error));
            };
            let pause = error
                .retry_after()
                .map_or(delay, |asked| asked.max(delay))
                .min(policy.max_delay);
            tracing::debug!(key, attempt, error = %error, "source read failed; retrying");
            tokio::time::sleep(pause).await;
        }
    }

    async fn read_once(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        range: Option<Range<u64>>,
        len: u64,
    ) -> Result<Bytes, StoreError> {
        let request = GetRequest {
            range,
            if_match: Some(etag.to_owned()),
        };
        let output = self.source.get_object(bucket, key, &request).await?;
        let mut body = output.body;
        let mut buffer = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
        let short = |detail: String| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                "GetObject",
                format!("{}://{bucket}/{key}", self.source.scheme()),
                detail,
            )
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if buffer.len() as u64 + chunk.len() as u64 > len {
                return Err(short(format!(
                    "received more than the {len} bytes asked for"
                )));
            }
            buffer.extend_from_slice(&chunk);
        }
        if buffer.len() as u64 != len {
            return Err(short(format!("received {} of {len} bytes", buffer.len())));
        }
        Ok(buffer.freeze())
    }
}
