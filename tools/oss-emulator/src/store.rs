//! Object storage: in memory by default, or files in a data directory (one data file and one
//! JSON metadata sidecar per object) when asked.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use transfer::crc64::{self, Crc64};

use crate::error::OssError;
use crate::util::{lock, now_ms};

/// Chunk size for streaming object data out.
const CHUNK: usize = 64 * 1024;

/// The storage classes OSS knows, spelled as OSS spells them.
pub(crate) const STORAGE_CLASSES: [&str; 5] = [
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];

/// An object's bytes.
#[derive(Debug, Clone)]
pub(crate) enum Blob {
    /// Held in memory; ranges are served as slices without copying.
    Memory(Bytes),
    /// A file in the data directory.
    File { path: PathBuf, len: u64 },
    /// Generated as it is read: `pattern` repeated up to `len` bytes. Synthetic objects of any
    /// size (up to terabytes) for benchmarks; never written to the data directory.
    Synthetic { pattern: Bytes, len: u64 },
}

impl Blob {
    /// The size in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Blob::Memory(b) => b.len() as u64,
            Blob::File { len, .. } | Blob::Synthetic { len, .. } => *len,
        }
    }

    /// Streams `len` bytes from `start`. A file is opened before this returns, so a later
    /// overwrite of the object does not change what this stream yields.
    pub(crate) async fn stream(
        &self,
        start: u64,
        len: u64,
    ) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        match self {
            Blob::Memory(bytes) => {
                let slice = bytes
                    .slice(transfer::size::as_usize(start)..transfer::size::as_usize(start + len));
                let chunks: Vec<io::Result<Bytes>> = (0..slice.len())
                    .step_by(CHUNK)
                    .map(|at| Ok(slice.slice(at..(at + CHUNK).min(slice.len()))))
                    .collect();
                Ok(stream::iter(chunks).boxed())
            }
            Blob::File { path, .. } if len <= CHUNK as u64 => {
                // A small range in one blocking call (open, seek, read) rather than one per
                // step: small GETs are most of what a replication of small objects asks for.
                let path = path.clone();
                let chunk = tokio::task::spawn_blocking(move || -> io::Result<Bytes> {
                    use std::io::{Read as _, Seek as _};
                    let mut file = std::fs::File::open(path)?;
                    file.seek(io::SeekFrom::Start(start))?;
                    let mut buf = Vec::with_capacity(transfer::size::as_usize(len));
                    file.take(len).read_to_end(&mut buf)?;
                    Ok(Bytes::from(buf))
                })
                .await
                .map_err(io::Error::other)??;
                Ok(stream::iter((!chunk.is_empty()).then_some(Ok(chunk))).boxed())
            }
            Blob::File { path, .. } => {
                let mut file = tokio::fs::File::open(path).await?;
                file.seek(io::SeekFrom::Start(start)).await?;
                Ok(tokio_util::io::ReaderStream::with_capacity(file.take(len), CHUNK).boxed())
            }
            Blob::Synthetic { pattern, .. } => {
                let pattern = pattern.clone();
                let period = pattern.len() as u64;
                let end = start + len;
                let chunks = stream::unfold(start, move |at| {
                    let pattern = pattern.clone();
                    async move {
                        if at >= end {
                            return None;
                        }
                        let from = transfer::size::as_usize(at % period);
                        let take = (end - at).min(CHUNK as u64).min(period - at % period);
                        let chunk = pattern.slice(from..from + transfer::size::as_usize(take));
                        Some((Ok(chunk), at + take))
                    }
                });
                Ok(chunks.boxed())
            }
        }
    }

    /// A synthetic blob of `len` bytes: a 1 MiB pseudo-random block from `seed`, repeated.
    /// Returns it with its ETag and CRC-64 (combined, not computed over `len` bytes).
    pub(crate) fn synthetic(len: u64, seed: u64) -> (Self, String, u64) {
        const PERIOD: usize = 1024 * 1024;
        let mut state = seed | 1;
        let mut pattern = Vec::with_capacity(PERIOD);
        while pattern.len() < PERIOD {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            pattern.extend_from_slice(&state.to_le_bytes());
        }
        let period = PERIOD as u64;
        let (copies, tail) = (len / period, len % period);
        // The CRC of `copies` patterns by doubling, then the tail.
        let (mut crc, mut power, mut power_len, mut n) =
            (0_u64, crc64::checksum(&pattern), period, copies);
        while n > 0 {
            if n & 1 == 1 {
                crc = crc64::combine(crc, power, power_len);
            }
            power = crc64::combine(power, power, power_len);
            power_len *= 2;
            n >>= 1;
        }
        crc = crc64::combine(
            crc,
            crc64::checksum(&pattern[..transfer::size::as_usize(tail)]),
            tail,
        );
        let etag = format!("{}-{len}", hex::encode_upper(Md5::digest(&pattern)));
        let blob = Self::Synthetic {
            pattern: Bytes::from(pattern),
            len,
        };
        (blob, etag, crc)
    }
}

/// Bytes written into storage with their digests.
#[derive(Debug)]
pub(crate) struct Ingested {
    /// Where the bytes are.
    pub(crate) blob: Blob,
    /// Their MD5.
    pub(crate) md5: [u8; 16],
    /// Their CRC-64/XZ.
    pub(crate) crc64: u64,
}

impl Ingested {
    /// The ETag of these bytes as one upload: upper-case hex MD5, no quotes.
    pub(crate) fn etag(&self) -> String {
        hex::encode_upper(self.md5)
    }
}

/// An object's metadata; in data-dir mode also its sidecar file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ObjectMeta {
    pub(crate) key: String,
    pub(crate) size: u64,
    /// Upper-case hex, no quotes (`…-N` for multipart).
    pub(crate) etag: String,
    pub(crate) crc64: u64,
    /// Normal, Multipart, Appendable or Symlink.
    pub(crate) object_type: String,
    pub(crate) storage_class: String,
    pub(crate) last_modified_ms: i64,
    /// Content headers and `x-oss-meta-*`, lower-case names, raw values.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) restore: Option<RestoreState>,
    pub(crate) symlink_target: Option<String>,
    /// The data file's name, in data-dir mode.
    pub(crate) data_file: Option<String>,
}

impl ObjectMeta {
    /// Metadata for an empty `key` written now, with no restore state and no symlink target;
    /// callers fill in the rest (see [`with_data`](Self::with_data)).
    pub(crate) fn new(
        key: impl Into<String>,
        object_type: &str,
        storage_class: String,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Self {
        Self {
            key: key.into(),
            size: 0,
            etag: String::new(),
            crc64: 0,
            object_type: object_type.to_owned(),
            storage_class,
            last_modified_ms: now_ms(),
            headers,
            restore: None,
            symlink_target: None,
            data_file: None,
        }
    }

    /// The same metadata describing `ingested`'s bytes: their size, MD5 ETag and CRC-64.
    pub(crate) fn with_data(self, ingested: &Ingested) -> Self {
        Self {
            size: ingested.blob.len(),
            etag: ingested.etag(),
            crc64: ingested.crc64,
            ..self
        }
    }

    /// Whether the storage class keeps the data offline until a RestoreObject.
    pub(crate) fn is_archived(&self) -> bool {
        matches!(
            self.storage_class.as_str(),
            "Archive" | "ColdArchive" | "DeepColdArchive"
        )
    }

    /// A stored header's raw value.
    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The Content-Type, `application/octet-stream` when none was stored.
    pub(crate) fn content_type(&self) -> String {
        self.header("content-type").map_or_else(
            || "application/octet-stream".to_owned(),
            |v| String::from_utf8_lossy(v).into_owned(),
        )
    }
}

/// A restore request on an archived object.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct RestoreState {
    /// When the restored copy becomes readable (ms since the epoch).
    pub(crate) ready_at_ms: i64,
    /// When the restored copy expires (ms since the epoch).
    pub(crate) expiry_ms: i64,
}

/// An object: metadata and bytes.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// What GET/HEAD and listings report.
    pub(crate) meta: ObjectMeta,
    /// The data.
    pub(crate) blob: Blob,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The part's MD5 (its ETag).
    pub(crate) md5: [u8; 16],
    /// The part's CRC-64/XZ.
    pub(crate) crc64: u64,
    /// The part's bytes.
    pub(crate) blob: Blob,
    /// When the part was uploaded (ms since the epoch).
    pub(crate) last_modified_ms: i64,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    /// The key the completed object gets.
    pub(crate) key: String,
    /// When the upload was initiated (ms since the epoch).
    pub(crate) initiated_ms: i64,
    /// The headers given at initiation, stored with the completed object.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// The storage class given at initiation.
    pub(crate) storage_class: String,
    /// The parts uploaded so far, by part number.
    pub(crate) parts: BTreeMap<u32, Part>,
}

/// A bucket's objects and uploads.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    /// Objects by key, in key order (the order listings need).
    pub(crate) objects: BTreeMap<String, Object>,
    /// Uploads in progress by upload ID.
    pub(crate) uploads: BTreeMap<String, Upload>,
}

/// All buckets.
#[derive(Debug)]
pub(crate) struct Store {
    data_dir: Option<PathBuf>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// A fresh random name for temporary and data files.
fn nonce() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Store {
    /// A store for `buckets`; in data-dir mode, objects already on disk are loaded.
    pub(crate) fn open(buckets: &[String], data_dir: Option<PathBuf>) -> io::Result<Self> {
        let mut map = HashMap::new();
        for name in buckets {
            let mut bucket = Bucket::default();
            if let Some(dir) = &data_dir {
                let objects = dir.join(name).join("objects");
                std::fs::create_dir_all(&objects)?;
                let _ = std::fs::remove_dir_all(dir.join(name).join("tmp"));
                let _ = std::fs::remove_dir_all(dir.join(name).join("uploads"));
                std::fs::create_dir_all(dir.join(name).join("tmp"))?;
                for entry in std::fs::read_dir(&objects)? {
                    let path = entry?.path();
                    if path.extension().is_some_and(|e| e == "json") {
                        let meta: ObjectMeta = if let Some(meta) = std::fs::read(&path)
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                        {
                            meta
                        } else {
                            tracing::warn!(path = %path.display(), "unreadable metadata sidecar skipped");
                            continue;
                        };
                        let blob = match &meta.data_file {
                            Some(file) => Blob::File {
                                path: objects.join(file),
                                len: meta.size,
                            },
                            None => Blob::Memory(Bytes::new()),
                        };
                        bucket
                            .objects
                            .insert(meta.key.clone(), Object { meta, blob });
                    }
                }
            }
            map.insert(name.clone(), bucket);
        }
        Ok(Self {
            data_dir,
            buckets: Mutex::new(map),
        })
    }

    /// Whether `bucket` is configured.
    pub(crate) fn has_bucket(&self, bucket: &str) -> bool {
        lock(&self.buckets).contains_key(bucket)
    }

    /// The configured buckets, in no particular order.
    pub(crate) fn bucket_names(&self) -> Vec<String> {
        lock(&self.buckets).keys().cloned().collect()
    }

    /// Runs `f` on a bucket under the store's lock (listings, uploads); `None` when the bucket
    /// does not exist. Object writes go through [`put`](Self::put) and
    /// [`delete`](Self::delete) instead, which keep the data directory in step.
    pub(crate) fn with_bucket<R>(
        &self,
        bucket: &str,
        f: impl FnOnce(&mut Bucket) -> R,
    ) -> Option<R> {
        lock(&self.buckets).get_mut(bucket).map(f)
    }

    /// A copy of an object (cheap: blobs are shared bytes or a file path).
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Option<Object> {
        lock(&self.buckets)
            .get(bucket)
            .and_then(|b| b.objects.get(key))
            .cloned()
    }

    fn tmp_path(&self, bucket: &str) -> Option<PathBuf> {
        self.data_dir
            .as_ref()
            .map(|d| d.join(bucket).join("tmp").join(nonce()))
    }

    /// Reads a request body into storage, hashing as it goes; also returns the byte count.
    pub(crate) async fn ingest<B>(&self, bucket: &str, body: B) -> Result<(Ingested, u64), OssError>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let mut sink = Sink::new(self.tmp_path(bucket)).await?;
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                OssError::new(
                    http::StatusCode::BAD_REQUEST,
                    "IncompleteBody",
                    format!("the request body could not be read: {e}"),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                sink.write(data).await?;
            }
        }
        let received = sink.len;
        Ok((sink.finish().await?, received))
    }

    /// Concatenates blobs into a new blob (multipart completion, append, replace).
    pub(crate) async fn concat(
        &self,
        bucket: &str,
        blobs: &[Blob],
        transform: Option<fn(u8) -> u8>,
    ) -> Result<Ingested, OssError> {
        let mut sink = Sink::new(self.tmp_path(bucket)).await?;
        for blob in blobs {
            let mut stream = blob
                .stream(0, blob.len())
                .await
                .map_err(|e| OssError::internal(format!("reading stored data: {e}")))?;
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| OssError::internal(format!("reading stored data: {e}")))?;
                let chunk = match transform {
                    Some(f) => chunk.iter().map(|&b| f(b)).collect::<Vec<u8>>().into(),
                    None => chunk,
                };
                sink.write(chunk).await?;
            }
        }
        sink.finish().await
    }

    /// Stores an object, replacing any previous one. Returns the previous object.
    pub(crate) fn put(
        &self,
        bucket: &str,
        meta: ObjectMeta,
        blob: Blob,
    ) -> Result<Option<Object>, OssError> {
        self.put_with(bucket, meta, blob, false)
    }

    /// Stores an object only if none exists at its key, checked and written under one lock, as
    /// `x-oss-forbid-overwrite: true` asks: otherwise 409 `FileAlreadyExists` and the blob is
    /// discarded.
    pub(crate) fn put_new(
        &self,
        bucket: &str,
        meta: ObjectMeta,
        blob: Blob,
    ) -> Result<Option<Object>, OssError> {
        self.put_with(bucket, meta, blob, true)
    }

    fn put_with(
        &self,
        bucket: &str,
        mut meta: ObjectMeta,
        blob: Blob,
        exclusive: bool,
    ) -> Result<Option<Object>, OssError> {
        let mut buckets = lock(&self.buckets);
        let Some(state) = buckets.get_mut(bucket) else {
            Self::discard([blob]);
            return Err(OssError::no_such_bucket());
        };
        let objects = &mut state.objects;
        if exclusive && objects.contains_key(&meta.key) {
            Self::discard([blob]);
            return Err(OssError::file_already_exists());
        }
        let blob = match (&self.data_dir, blob) {
            (Some(dir), Blob::File { path, len }) => {
                let dir = dir.join(bucket).join("objects");
                let name = format!("{}-{}.data", key_hash(&meta.key), nonce());
                let target = dir.join(&name);
                std::fs::rename(&path, &target)
                    .map_err(|e| OssError::internal(format!("storing object: {e}")))?;
                meta.data_file = Some(name);
                write_sidecar(&dir, &meta)?;
                Blob::File { path: target, len }
            }
            (Some(dir), Blob::Memory(bytes)) => {
                // A symlink or an empty object: no data file needed.
                meta.data_file = None;
                write_sidecar(&dir.join(bucket).join("objects"), &meta)?;
                Blob::Memory(bytes)
            }
            // Synthetic blobs are generated, never written to the data directory.
            (None, blob) | (Some(_), blob @ Blob::Synthetic { .. }) => blob,
        };
        let previous = objects.insert(meta.key.clone(), Object { meta, blob });
        if let Some(Object {
            blob: Blob::File { path, .. },
            ..
        }) = &previous
        {
            let _ = std::fs::remove_file(path);
        }
        Ok(previous)
    }

    /// Stores a synthetic object of `size` bytes (see [`Blob::synthetic`]), without an event.
    pub(crate) fn put_synthetic(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        seed: u64,
    ) -> Result<ObjectMeta, OssError> {
        let (blob, etag, crc64) = Blob::synthetic(size, seed);
        let meta = ObjectMeta {
            size,
            etag,
            crc64,
            ..ObjectMeta::new(key, "Normal", "Standard".to_owned(), Vec::new())
        };
        self.put(bucket, meta.clone(), blob)?;
        Ok(meta)
    }

    /// Stores `count` synthetic objects of `size` bytes named `prefix` + an 8-digit number,
    /// without events, all sharing one blob (so a million objects cost only their metadata).
    /// Returns the ETag they share.
    pub(crate) fn put_many_synthetic(
        &self,
        bucket: &str,
        prefix: &str,
        count: u64,
        size: u64,
    ) -> Result<String, OssError> {
        let (blob, etag, crc64) = Blob::synthetic(size, count);
        for i in 0..count {
            let meta = ObjectMeta {
                size,
                etag: etag.clone(),
                crc64,
                ..ObjectMeta::new(
                    format!("{prefix}{i:08}"),
                    "Normal",
                    "Standard".to_owned(),
                    Vec::new(),
                )
            };
            self.put(bucket, meta, blob.clone())?;
        }
        Ok(etag)
    }

    /// Updates an object's metadata in place (restore state).
    pub(crate) fn update_meta(&self, bucket: &str, key: &str, f: impl FnOnce(&mut ObjectMeta)) {
        let mut buckets = lock(&self.buckets);
        if let Some(object) = buckets.get_mut(bucket).and_then(|b| b.objects.get_mut(key)) {
            f(&mut object.meta);
            if let Some(dir) = &self.data_dir {
                let _ = write_sidecar(&dir.join(bucket).join("objects"), &object.meta);
            }
        }
    }

    /// Removes an object. Returns it if it existed.
    pub(crate) fn delete(&self, bucket: &str, key: &str) -> Option<Object> {
        let mut buckets = lock(&self.buckets);
        let removed = buckets.get_mut(bucket)?.objects.remove(key)?;
        if let Some(dir) = &self.data_dir {
            let dir = dir.join(bucket).join("objects");
            let _ = std::fs::remove_file(dir.join(format!("{}.json", key_hash(key))));
            if let Blob::File { path, .. } = &removed.blob {
                let _ = std::fs::remove_file(path);
            }
        }
        Some(removed)
    }

    /// Drops every object and upload (and their files).
    pub(crate) fn clear(&self) {
        let mut buckets = lock(&self.buckets);
        for (name, bucket) in buckets.iter_mut() {
            *bucket = Bucket::default();
            if let Some(dir) = &self.data_dir {
                for sub in ["objects", "tmp", "uploads"] {
                    let _ = std::fs::remove_dir_all(dir.join(name).join(sub));
                    let _ = std::fs::create_dir_all(dir.join(name).join(sub));
                }
            }
        }
    }

    /// Removes files of parts that are no longer referenced.
    pub(crate) fn discard(blobs: impl IntoIterator<Item = Blob>) {
        for blob in blobs {
            if let Blob::File { path, .. } = blob {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn write_sidecar(dir: &Path, meta: &ObjectMeta) -> Result<(), OssError> {
    let json = serde_json::to_vec(meta).map_err(|e| OssError::internal(e.to_string()))?;
    let path = dir.join(format!("{}.json", key_hash(&meta.key)));
    let tmp = dir.join(format!("{}.json.{}", key_hash(&meta.key), nonce()));
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| OssError::internal(format!("writing metadata: {e}")))
}

/// Where ingested bytes go: a buffer or a temporary file.
struct Sink {
    buffer: BytesMut,
    file: Option<(tokio::io::BufWriter<tokio::fs::File>, PathBuf)>,
    md5: Md5,
    crc: Crc64,
    len: u64,
}

impl Sink {
    async fn new(path: Option<PathBuf>) -> Result<Self, OssError> {
        let file = match path {
            Some(path) => {
                let file = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| OssError::internal(format!("creating data file: {e}")))?;
                Some((tokio::io::BufWriter::with_capacity(1 << 20, file), path))
            }
            None => None,
        };
        Ok(Self {
            buffer: BytesMut::new(),
            file,
            md5: Md5::new(),
            crc: Crc64::new(),
            len: 0,
        })
    }

    async fn write(&mut self, data: Bytes) -> Result<(), OssError> {
        self.md5.update(&data);
        self.crc.update(&data);
        self.len += data.len() as u64;
        if let Some((file, _)) = &mut self.file {
            file.write_all(&data)
                .await
                .map_err(|e| OssError::internal(format!("writing data file: {e}")))
        } else {
            self.buffer.extend_from_slice(&data);
            Ok(())
        }
    }

    async fn finish(self) -> Result<Ingested, OssError> {
        let blob = match self.file {
            Some((mut file, path)) => {
                file.flush()
                    .await
                    .map_err(|e| OssError::internal(format!("writing data file: {e}")))?;
                Blob::File {
                    path,
                    len: self.len,
                }
            }
            None => Blob::Memory(self.buffer.freeze()),
        };
        Ok(Ingested {
            blob,
            md5: self.md5.finalize().into(),
            crc64: self.crc.value(),
        })
    }
}

/// The CRC-64 of a whole made of parts with known CRCs.
pub(crate) fn combined_crc(parts: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    parts
        .into_iter()
        .fold(0, |acc, (crc, len)| crc64::combine(acc, crc, len))
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;

    #[tokio::test]
    async fn synthetic_blobs_stream_what_their_crc_and_length_say() {
        for len in [0, 10, 1024 * 1024, 2 * 1024 * 1024 + 12_345] {
            let (blob, etag, crc) = Blob::synthetic(len, 7);
            assert_eq!(blob.len(), len);
            assert!(!etag.is_empty());
            let mut stream = blob.stream(0, len).await.expect("stream");
            let mut actual = Crc64::new();
            while let Some(chunk) = stream.next().await {
                actual.update(&chunk.expect("chunk"));
            }
            assert_eq!(actual.len(), len);
            assert_eq!(actual.value(), crc, "len {len}");
        }
        // A range in the middle, across the pattern's period.
        let (blob, _, _) = Blob::synthetic(3 * 1024 * 1024, 9);
        let mut whole = Vec::new();
        let mut stream = blob.stream(0, blob.len()).await.expect("stream");
        while let Some(chunk) = stream.next().await {
            whole.extend_from_slice(&chunk.expect("chunk"));
        }
        let (start, len) = (1024 * 1024 - 100, 300_u64);
        let mut part = Vec::new();
        let mut stream = blob.stream(start, len).await.expect("stream");
        while let Some(chunk) = stream.next().await {
            part.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(part, whole[1024 * 1024 - 100..1024 * 1024 + 200]);
    }
}
