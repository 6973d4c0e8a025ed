//! [`MemoryStore`]: the reference store. It keeps buckets in memory, implements every trait and
//! capability of the seam the way the services document them, and adds what tests need: fault
//! hooks ([`FaultRule`]) and request counters ([`MemoryStore::requests`]).
//!
//! It behaves like a strict service: it verifies the checksums a writer states (as S3 does),
//! reports a CRC-64/XZ for every object (as OSS does), enforces its [`PartLimits`], lists keys in
//! UTF-8 byte order, and refuses reads of archived objects until they are restored. The
//! conformance suite (`tools/store-conformance`) runs against it as well as against S3 and OSS,
//! so it is held to the same contract as the real stores.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use md5::{Digest, Md5};

use super::{
    ArchiveState, BodyChecksums, ConditionalWrites, ObjectAttributes, ObjectKind, PartLimits,
    StoreError, StoreErrorKind, WriteRequest,
};

mod faults;
mod read;
mod write;

pub use faults::{Fault, FaultRule};

/// The most keys one listing page returns, as on S3 and OSS.
const MAX_LIST_KEYS: u32 = 1000;

/// How a [`MemoryStore`] behaves. `Default` is S3's limits, both capabilities, instant restores.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// The size limits it enforces.
    pub limits: PartLimits,
    /// Whether it can restore archived objects.
    pub restore: bool,
    /// Whether it holds symbolic links.
    pub symlinks: bool,
    /// How long a restore runs before the object is readable.
    pub restore_delay: Duration,
    /// Whether HEAD and GET report the object's CRC-64/XZ.
    pub reports_crc64: bool,
    /// Which write conditions it enforces (all, by default, as S3 does).
    pub conditional_writes: ConditionalWrites,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            limits: PartLimits::S3,
            restore: true,
            symlinks: true,
            restore_delay: Duration::ZERO,
            reports_crc64: true,
            conditional_writes: ConditionalWrites::ALL,
        }
    }
}

/// An in-memory object store; cheap to clone (clones share the buckets, faults and counters).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MemoryConfig,
    state: Mutex<State>,
    faults: Mutex<Vec<FaultRule>>,
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct State {
    buckets: BTreeMap<String, Bucket>,
    next_upload: u64,
    next_version: u64,
}

#[derive(Debug, Default)]
struct Bucket {
    objects: BTreeMap<String, Object>,
    uploads: HashMap<String, Upload>,
}

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    etag: String,
    crc64: u64,
    kind: ObjectKind,
    request: WriteRequest,
    symlink_target: Option<String>,
    restored_at: Option<Instant>,
    last_modified: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug)]
struct Upload {
    key: String,
    request: WriteRequest,
    parts: BTreeMap<u32, StoredPart>,
}

#[derive(Debug, Clone)]
struct StoredPart {
    data: Bytes,
    etag: String,
    md5: [u8; 16],
}

#[derive(Debug, Default)]
struct Counters {
    calls: BTreeMap<&'static str, u64>,
    in_flight: BTreeMap<&'static str, usize>,
    peak: BTreeMap<&'static str, usize>,
}

/// What the faults matching one call asked for.
#[derive(Default)]
struct Applied {
    truncate: Option<usize>,
    corrupt: bool,
    drop_metadata: bool,
}

/// Counts a call as in flight until dropped.
struct InFlight<'a> {
    store: &'a MemoryStore,
    operation: &'static str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut counters = lock(&self.store.inner.counters);
        if let Some(n) = counters.in_flight.get_mut(self.operation) {
            *n = n.saturating_sub(1);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn target(bucket: &str, key: &str) -> String {
    format!("mem://{bucket}/{key}")
}

fn error(
    kind: StoreErrorKind,
    operation: &'static str,
    bucket: &str,
    key: &str,
    message: impl Into<String>,
) -> StoreError {
    StoreError::new(kind, operation, target(bucket, key), message)
}

/// Whether an object of an archive class can be read, is being restored, or must be.
fn archive_state(object: &Object) -> ArchiveState {
    let archived = object
        .request
        .storage_class
        .as_ref()
        .is_some_and(super::StorageClass::needs_restore);
    match object.restored_at {
        _ if !archived => ArchiveState::Online,
        None => ArchiveState::Archived,
        Some(at) if Instant::now() >= at => ArchiveState::Restored,
        Some(_) => ArchiveState::Restoring,
    }
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

impl MemoryStore {
    /// An empty store with no buckets.
    pub fn new(config: MemoryConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::default(),
                faults: Mutex::default(),
                counters: Mutex::default(),
            }),
        }
    }

    /// Adds a bucket (no-op if it exists).
    #[must_use]
    pub fn with_bucket(self, bucket: &str) -> Self {
        self.create_bucket(bucket);
        self
    }

    /// Creates a bucket (no-op if it exists).
    pub fn create_bucket(&self, bucket: &str) {
        lock(&self.inner.state)
            .buckets
            .entry(bucket.to_owned())
            .or_default();
    }

    /// The configuration.
    pub fn config(&self) -> &MemoryConfig {
        &self.inner.config
    }

    /// Adds a fault rule; rules apply in the order they were added.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.inner.faults).push(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// How many times each operation was called (faulted calls included).
    pub fn requests(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.inner.counters).calls.clone()
    }

    /// How many times `operation` was called.
    pub fn request_count(&self, operation: &str) -> u64 {
        lock(&self.inner.counters)
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// The most calls of `operation` that were ever in flight at once.
    pub fn peak_in_flight(&self, operation: &str) -> usize {
        lock(&self.inner.counters)
            .peak
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Forgets the counters.
    pub fn reset_counters(&self) {
        let mut counters = lock(&self.inner.counters);
        counters.calls.clear();
        counters.peak.clear();
    }

    /// The stored bytes of `key` (a symlink's own target key is not followed), without counting
    /// a request or applying faults.
    pub fn object_bytes(&self, bucket: &str, key: &str) -> Option<Bytes> {
        lock(&self.inner.state)
            .buckets
            .get(bucket)?
            .objects
            .get(key)
            .map(|o| o.data.clone())
    }

    /// The keys of `bucket`, in order, without counting a request.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        lock(&self.inner.state)
            .buckets
            .get(bucket)
            .map(|b| b.objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The multipart uploads in progress in `bucket`, as (key, upload ID).
    pub fn uploads(&self, bucket: &str) -> Vec<(String, String)> {
        let state = lock(&self.inner.state);
        let mut uploads: Vec<_> = state
            .buckets
            .get(bucket)
            .map(|b| {
                b.uploads
                    .iter()
                    .map(|(id, u)| (u.key.clone(), id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        uploads.sort();
        uploads
    }

    /// Stores an object directly (no request counted, no faults, no limits): for seeding tests.
    /// Returns its quoted ETag.
    pub fn seed(
        &self,
        bucket: &str,
        key: &str,
        data: impl Into<Bytes>,
        request: &WriteRequest,
    ) -> String {
        let data = data.into();
        let etag = format!("\"{}\"", hex::encode_upper(md5_of(&data)));
        let object = Object {
            crc64: crate::crc64::checksum(&data),
            data,
            etag: etag.clone(),
            kind: ObjectKind::Normal,
            request: request.clone(),
            symlink_target: None,
            restored_at: None,
            last_modified: chrono::Utc::now(),
        };
        let mut state = lock(&self.inner.state);
        state.next_version += 1;
        state
            .buckets
            .entry(bucket.to_owned())
            .or_default()
            .objects
            .insert(key.to_owned(), object);
        etag
    }

    /// Counts the call, applies the matching faults (waiting for delays and running hooks) and
    /// returns what is left for the operation to apply, or the injected error.
    async fn enter(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<(InFlight<'_>, Applied), StoreError> {
        {
            let mut counters = lock(&self.inner.counters);
            *counters.calls.entry(operation).or_default() += 1;
            let now = {
                let n = counters.in_flight.entry(operation).or_default();
                *n += 1;
                *n
            };
            let peak = counters.peak.entry(operation).or_default();
            *peak = (*peak).max(now);
        }
        let guard = InFlight {
            store: self,
            operation,
        };
        let matched: Vec<Fault> = {
            let mut rules = lock(&self.inner.faults);
            let mut matched = Vec::new();
            for rule in rules.iter_mut() {
                if !rule.matches(operation, key) || rule.times == Some(0) {
                    continue;
                }
                if rule.skip > 0 {
                    rule.skip -= 1;
                    continue;
                }
                if let Some(times) = rule.times.as_mut() {
                    *times -= 1;
                }
                matched.push(rule.fault.clone());
            }
            rules.retain(|r| r.times != Some(0));
            matched
        };
        let mut applied = Applied::default();
        for fault in matched {
            match fault {
                Fault::Fail(kind) => {
                    return Err(error(kind, operation, bucket, key, "injected fault"));
                }
                Fault::Truncate { bytes } => applied.truncate = Some(bytes),
                Fault::Corrupt => applied.corrupt = true,
                Fault::DropMetadata => applied.drop_metadata = true,
                Fault::Delay(delay) => tokio::time::sleep(delay).await,
                Fault::Hook(hook) => hook(self),
            }
        }
        Ok((guard, applied))
    }

    fn check_key(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let max = self.inner.config.limits.max_key_len;
        if key.is_empty() || key.len() > max {
            return Err(error(
                StoreErrorKind::InvalidKey,
                operation,
                bucket,
                key,
                format!("keys must be 1 to {max} bytes; this one is {}", key.len()),
            ));
        }
        Ok(())
    }

    fn check_request(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        request: &WriteRequest,
    ) -> Result<(), StoreError> {
        self.check_key(operation, bucket, key)?;
        let size = PartLimits::user_metadata_size(&request.user_metadata);
        if let Some(max) = self.inner.config.limits.max_user_metadata
            && size > max
        {
            return Err(error(
                StoreErrorKind::MetadataTooLarge,
                operation,
                bucket,
                key,
                format!("user metadata is {size} bytes; at most {max} are allowed"),
            ));
        }
        Ok(())
    }

    fn stored_request(request: &WriteRequest, applied: &Applied) -> WriteRequest {
        let mut request = request.clone();
        request.user_metadata = if applied.drop_metadata {
            BTreeMap::new()
        } else {
            request
                .user_metadata
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect()
        };
        request
    }

    fn attributes(&self, object: &Object, kind: ObjectKind) -> ObjectAttributes {
        ObjectAttributes {
            size: object.data.len() as u64,
            etag: object.etag.clone(),
            crc64: self.inner.config.reports_crc64.then_some(object.crc64),
            // The reference store vouches for its CRC-64/XZ only.
            crc64_nvme: None,
            content_md5: None,
            content: object.request.content.clone(),
            user_metadata: object.request.user_metadata.clone(),
            storage_class: Some(object.request.storage_class.clone().unwrap_or_default()),
            kind,
            archive: archive_state(object),
            last_modified: Some(object.last_modified),
        }
    }

    /// The object HEAD and GET describe: the object, or a symlink's target.
    fn resolve(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<(Object, ObjectKind), StoreError> {
        let state = lock(&self.inner.state);
        let objects = &state
            .buckets
            .get(bucket)
            .ok_or_else(|| {
                error(
                    StoreErrorKind::NotFound,
                    operation,
                    bucket,
                    key,
                    "no such bucket",
                )
            })?
            .objects;
        let object = objects.get(key).ok_or_else(|| {
            error(
                StoreErrorKind::NotFound,
                operation,
                bucket,
                key,
                "no such key",
            )
        })?;
        match &object.symlink_target {
            None => Ok((object.clone(), object.kind)),
            Some(target) => objects
                .get(target)
                .map(|t| (t.clone(), ObjectKind::Symlink))
                .ok_or_else(|| {
                    error(
                        StoreErrorKind::NotFound,
                        operation,
                        bucket,
                        key,
                        "the symlink target does not exist",
                    )
                }),
        }
    }

    fn with_bucket_mut<T>(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        f: impl FnOnce(&mut Bucket, &mut u64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = lock(&self.inner.state);
        let State {
            buckets,
            next_upload,
            ..
        } = &mut *state;
        let bucket_state = buckets.get_mut(bucket).ok_or_else(|| {
            error(
                StoreErrorKind::NotFound,
                operation,
                bucket,
                key,
                "no such bucket",
            )
        })?;
        f(bucket_state, next_upload)
    }

    fn verify_body(
        operation: &'static str,
        bucket: &str,
        key: &str,
        body: &[u8],
        stated: BodyChecksums,
    ) -> Result<(), StoreError> {
        let actual = BodyChecksums::of(body);
        if actual != stated {
            return Err(error(
                StoreErrorKind::ChecksumMismatch,
                operation,
                bucket,
                key,
                format!(
                    "the body ({} bytes, CRC-64/XZ {}) does not match the stated checksums ({} bytes, CRC-64/XZ {})",
                    actual.len, actual.crc64_xz, stated.len, stated.crc64_xz
                ),
            ));
        }
        Ok(())
    }
}
