//! Pinned reads: a GET (or ranged GET) with `If-Match`, retried on transient failures, whose
//! length is checked.

use std::ops::Range;

use backon::BackoffBuilder as _;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::engine::Replicator;
use super::error::ReplicationError;
use crate::store::{
    GetOutput, GetRequest, ObjectAttributes, ObjectSink, ObjectSource, StoreError, StoreErrorKind,
};

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
        self.read_with_attributes(bucket, key, etag, range, len)
            .await
            .map(|(_, bytes)| bytes)
            .map_err(ReplicationError::from_source)
    }

    /// [`Self::read`], also returning the attributes the GET answered with, and the store's
    /// error as it is (after the retries), for callers that tell failures apart.
    pub(super) async fn read_with_attributes(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        range: Option<Range<u64>>,
        len: u64,
    ) -> Result<(ObjectAttributes, Bytes), StoreError> {
        let policy = self.settings.read_retry;
        let mut delays = policy.backoff().build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.read_once(bucket, key, etag, range.clone(), len).await {
                Ok(read) => return Ok(read),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            let Some(delay) = delays.next() else {
                return Err(error);
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
    ) -> Result<(ObjectAttributes, Bytes), StoreError> {
        let request = GetRequest {
            range,
            if_match: Some(etag.to_owned()),
        };
        let GetOutput {
            attributes,
            mut body,
        } = self.source.get_object(bucket, key, &request).await?;
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
        Ok((attributes, buffer.freeze()))
    }
}
