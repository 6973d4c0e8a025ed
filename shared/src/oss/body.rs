//! Request and response bodies: replayable or streamed uploads, and a downloaded body that turns
//! a premature end, a stall or a CRC mismatch into an error instead of a short success.

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use super::error::{ErrorKind, OssError};
use crate::crc64::Crc64;

/// A boxed error from a caller's body stream.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The size of the slices a replayable body is sent in, so that upload progress is observable.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// The body of a PutObject or UploadPart request.
pub enum PutBody {
    /// Bytes in memory. Replayable, so failed attempts are retried.
    Bytes(Bytes),
    /// A stream of exactly `len` bytes. It can be sent only once, so it is never retried: a
    /// failure is returned to the caller, who can produce the bytes again.
    Stream {
        /// The exact number of bytes the stream yields; sent as `Content-Length`.
        len: u64,
        /// The bytes.
        stream: BoxStream<'static, Result<Bytes, BoxError>>,
    },
}

impl PutBody {
    /// A streamed body of exactly `len` bytes.
    pub fn from_stream<S, E>(len: u64, stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::Stream {
            len,
            stream: stream.map(|r| r.map_err(Into::into)).boxed(),
        }
    }

    /// The number of bytes the body holds.
    pub fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Stream { len, .. } => *len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the body can be sent again after a failed attempt.
    pub fn is_replayable(&self) -> bool {
        matches!(self, Self::Bytes(_))
    }
}

impl fmt::Debug for PutBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => f.debug_tuple("Bytes").field(&b.len()).finish(),
            Self::Stream { len, .. } => f.debug_struct("Stream").field("len", len).finish(),
        }
    }
}

impl From<Bytes> for PutBody {
    fn from(bytes: Bytes) -> Self {
        Self::Bytes(bytes)
    }
}

impl From<Vec<u8>> for PutBody {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes.into())
    }
}

impl From<&'static [u8]> for PutBody {
    fn from(bytes: &'static [u8]) -> Self {
        Self::Bytes(Bytes::from_static(bytes))
    }
}

/// What an upload has sent so far, shared between the body stream and the stall watchdog.
#[derive(Debug)]
pub(crate) struct UploadProgress {
    pub(crate) crc: Crc64,
    pub(crate) last_progress: Instant,
}

/// A handle on an upload's progress.
pub(crate) type SharedProgress = Arc<Mutex<UploadProgress>>;

fn lock(progress: &SharedProgress) -> std::sync::MutexGuard<'_, UploadProgress> {
    progress.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The time of the last upload progress.
pub(crate) fn last_progress(progress: &SharedProgress) -> Instant {
    lock(progress).last_progress
}

/// The CRC-64 and length of what the upload stream yielded.
pub(crate) fn sent_crc(progress: &SharedProgress) -> (u64, u64) {
    let p = lock(progress);
    (p.crc.value(), p.crc.len())
}

/// Turns the body into a stream that counts and hashes what it yields, records progress, and
/// fails if the source yields more or fewer than `len` bytes.
pub(crate) fn upload_stream(
    source: BoxStream<'static, Result<Bytes, BoxError>>,
    len: u64,
) -> (reqwest::Body, SharedProgress) {
    let progress = Arc::new(Mutex::new(UploadProgress {
        crc: Crc64::new(),
        last_progress: Instant::now(),
    }));
    let shared = Arc::clone(&progress);
    let counted = futures::stream::unfold(
        (source, shared, false),
        move |(mut source, shared, finished)| async move {
            if finished {
                return None;
            }
            match source.next().await {
                Some(Ok(chunk)) => {
                    let total = {
                        let mut p = lock(&shared);
                        p.crc.update(&chunk);
                        p.last_progress = Instant::now();
                        p.crc.len()
                    };
                    if total > len {
                        let e: BoxError =
                            format!("the body yielded more than the declared {len} bytes").into();
                        return Some((Err(e), (source, shared, true)));
                    }
                    Some((Ok(chunk), (source, shared, false)))
                }
                Some(Err(e)) => Some((Err(e), (source, shared, true))),
                None => {
                    let total = lock(&shared).crc.len();
                    if total < len {
                        let e: BoxError =
                            format!("the body ended after {total} of the declared {len} bytes")
                                .into();
                        Some((Err(e), (source, shared, true)))
                    } else {
                        None
                    }
                }
            }
        },
    );
    (reqwest::Body::wrap_stream(counted), progress)
}

/// A replayable body as a stream of slices (no copies).
pub(crate) fn chunked(bytes: &Bytes) -> BoxStream<'static, Result<Bytes, BoxError>> {
    let mut slices = Vec::with_capacity(bytes.len() / UPLOAD_CHUNK + 1);
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + UPLOAD_CHUNK).min(bytes.len());
        slices.push(Ok(bytes.slice(offset..end)));
        offset = end;
    }
    futures::stream::iter(slices).boxed()
}

/// Where a body came from, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct BodyOrigin {
    pub(crate) operation: &'static str,
    pub(crate) bucket: String,
    pub(crate) key: String,
}

impl BodyOrigin {
    fn error(&self, kind: ErrorKind) -> OssError {
        OssError::new(kind, self.operation, self.bucket.clone(), Some(&self.key))
    }
}

/// The streamed body of a GetObject response.
///
/// Yields the bytes as they arrive. It ends with an error, never silently, when the connection
/// closes before `Content-Length` bytes ([`ErrorKind::TruncatedBody`]), when no data arrives for
/// the configured read timeout ([`ErrorKind::Timeout`]), or, for a whole-object GET, when the
/// CRC-64 of the bytes differs from `x-oss-hash-crc64ecma` ([`ErrorKind::ChecksumMismatch`]).
pub struct ObjectBody {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    origin: BodyOrigin,
    expected_len: Option<u64>,
    expected_crc: Option<u64>,
    crc: Crc64,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    done: bool,
}

impl fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBody")
            .field("key", &self.origin.key)
            .field("expected_len", &self.expected_len)
            .field("received", &self.crc.len())
            .finish_non_exhaustive()
    }
}

impl ObjectBody {
    pub(crate) fn new(
        response: reqwest::Response,
        origin: BodyOrigin,
        expected_len: Option<u64>,
        expected_crc: Option<u64>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner: response.bytes_stream().boxed(),
            origin,
            expected_len,
            expected_crc,
            crc: Crc64::new(),
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            done: false,
        }
    }

    /// The number of bytes the response announced (`Content-Length`).
    pub fn content_length(&self) -> Option<u64> {
        self.expected_len
    }

    /// The number of bytes received so far.
    pub fn bytes_received(&self) -> u64 {
        self.crc.len()
    }

    /// The CRC-64 of the bytes received so far.
    pub fn crc64(&self) -> u64 {
        self.crc.value()
    }

    /// Reads the whole body into memory.
    pub async fn collect(mut self) -> Result<Bytes, OssError> {
        let capacity = self
            .expected_len
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(crate::size::as_usize(64 * crate::size::MIB));
        let mut buffer = Vec::with_capacity(capacity);
        while let Some(chunk) = self.next().await {
            buffer.extend_from_slice(&chunk?);
        }
        Ok(buffer.into())
    }

    fn fail(&mut self, error: OssError) -> Poll<Option<Result<Bytes, OssError>>> {
        self.done = true;
        Poll::Ready(Some(Err(error)))
    }

    fn shortfall(&self) -> Option<String> {
        let expected = self.expected_len?;
        let received = self.crc.len();
        (received < expected).then(|| format!("received {received} of {expected} bytes"))
    }
}

impl Stream for ObjectBody {
    type Item = Result<Bytes, OssError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.crc.update(&chunk);
                if let Some(expected) = this.expected_len
                    && this.crc.len() > expected
                {
                    let error =
                        this.origin
                            .error(ErrorKind::InvalidResponse)
                            .with_context(format!(
                                "the body is longer than its Content-Length {expected}"
                            ));
                    return this.fail(error);
                }
                let deadline = Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let error = match this.shortfall() {
                    Some(shortfall) => this
                        .origin
                        .error(ErrorKind::TruncatedBody)
                        .with_context(shortfall)
                        .with_source(e.without_url()),
                    None => OssError::from_transport(
                        this.origin.operation,
                        &this.origin.bucket,
                        Some(&this.origin.key),
                        e,
                    ),
                };
                this.fail(error)
            }
            Poll::Ready(None) => {
                if let Some(shortfall) = this.shortfall() {
                    let error = this
                        .origin
                        .error(ErrorKind::TruncatedBody)
                        .with_context(shortfall);
                    return this.fail(error);
                }
                if let Some(expected) = this.expected_crc
                    && this.crc.value() != expected
                {
                    let actual = this.crc.value();
                    let error = this
                        .origin
                        .error(ErrorKind::ChecksumMismatch)
                        .with_context(format!("received CRC-64 {actual}, OSS reported {expected}"));
                    return this.fail(error);
                }
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    let error = this.origin.error(ErrorKind::Timeout).with_context(format!(
                        "no data for {:?} after {} bytes",
                        this.idle_timeout,
                        this.crc.len()
                    ));
                    return this.fail(error);
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upload_stream_rejects_short_and_long_bodies() {
        use http_body_util::BodyExt as _;
        for (chunks, len) in [(vec!["abc"], 5_u64), (vec!["abc", "def"], 4)] {
            let source = futures::stream::iter(
                chunks
                    .into_iter()
                    .map(|c| Ok::<_, BoxError>(Bytes::from_static(c.as_bytes()))),
            )
            .boxed();
            let (body, _) = upload_stream(source, len);
            let mut body = body;
            let mut failed = false;
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    failed = true;
                    break;
                }
            }
            assert!(failed, "len {len} accepted");
        }
    }

    #[tokio::test]
    async fn upload_stream_hashes_what_it_sends() {
        use http_body_util::BodyExt as _;
        let data = Bytes::from(vec![7_u8; 600_000]);
        let (mut body, progress) = upload_stream(chunked(&data), data.len() as u64);
        let mut sent = Vec::new();
        while let Some(frame) = body.frame().await {
            sent.extend_from_slice(frame.expect("ok").data_ref().expect("data"));
        }
        assert_eq!(sent, data);
        assert_eq!(
            sent_crc(&progress),
            (crate::crc64::checksum(&data), 600_000)
        );
    }

    #[test]
    fn only_in_memory_bodies_are_replayable() {
        assert!(PutBody::from(vec![1, 2, 3]).is_replayable());
        let stream = futures::stream::empty::<Result<Bytes, BoxError>>();
        assert!(!PutBody::from_stream(0, stream).is_replayable());
    }
}
