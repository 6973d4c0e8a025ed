//! An Alibaba Cloud OSS protocol server for tests and local stacks.
//!
//! It verifies Signature V4, keeps objects in memory or in a directory, answers with OSS's
//! headers (ETag, `x-oss-hash-crc64ecma`, object type, storage class, restore state) and error
//! XML, posts native OSS trigger events to notification targets, and injects faults on request.
//! Start it in-process with [`Emulator::start`] or run the `oss-emulator` binary.
//!
//! # Modules
//!
//! Listed from the top down; each module uses only modules listed below it, so there are no
//! cycles (`tests/layering.rs` checks this list against the code). The crate root, with the
//! public API, sits above them all.
//!
//! ```text
//! server      the accept loop: one HTTP/1 connection per socket, calling protocol::handle
//! protocol    the request pipeline behind that one entry point: auth (V4 verification),
//!             route (the operation by method and query), inject (fault effects)
//! admin       the unsigned JSON API under /_emulator/
//! ops         the operations: object, multipart, bucket, restore, symlink
//! request     the parsed request (bucket, key, query, headers) and its parsing
//! state       what every connection shares: store, faults, stats, notifier, credentials
//! notify      trigger events and their delivery
//! store       buckets, objects, uploads and their bytes, in memory or in a directory
//! faults      fault rules
//! xml         request bodies, response documents (serde + quick-xml), the <Error> answer
//! error       OssError: status, OSS code, message, EC
//! connection  the kill switch a connection shares with its requests
//! stats       counters
//! util        locking, OSS time formats, request IDs
//! ```

mod admin;
mod connection;
mod error;
mod faults;
mod notify;
mod ops;
mod protocol;
mod request;
mod server;
mod state;
mod stats;
mod store;
mod util;
mod xml;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::watch;
use transfer::oss::Credentials;

pub use faults::{Fault, FaultRule};
pub use notify::NotificationTarget;
pub use stats::Stats;

use crate::state::State;
use crate::store::{Blob, ObjectMeta, STORAGE_CLASSES, Store};

/// How to start an emulator. `Default` listens on `127.0.0.1:0` in `cn-hangzhou` with no
/// buckets and no credentials; use the builder methods to add them.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The region that signatures must be scoped to.
    pub region: String,
    /// Accepted credentials; one with a security token requires that STS token on requests.
    pub credentials: Vec<Credentials>,
    /// The buckets that exist.
    pub buckets: Vec<String>,
    /// Store objects as files here instead of in memory; objects found there are loaded.
    pub data_dir: Option<PathBuf>,
    /// Where to POST trigger events.
    pub notifications: Vec<NotificationTarget>,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// How long a RestoreObject takes to complete.
    pub restore_delay: Duration,
    /// The delay before the first retry of a trigger delivery; it doubles for each retry.
    pub trigger_retry_backoff: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            region: "cn-hangzhou".to_owned(),
            credentials: Vec::new(),
            buckets: Vec::new(),
            data_dir: None,
            notifications: Vec::new(),
            faults: Vec::new(),
            restore_delay: Duration::from_secs(1),
            trigger_retry_backoff: Duration::from_millis(200),
        }
    }
}

impl EmulatorConfig {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a bucket.
    #[must_use]
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.buckets.push(name.into());
        self
    }

    /// Adds accepted credentials.
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials.push(credentials);
        self
    }

    /// Sets the listen address.
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Sets the region.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Stores objects in `dir`.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Adds a notification target.
    #[must_use]
    pub fn notification(mut self, target: NotificationTarget) -> Self {
        self.notifications.push(target);
        self
    }

    /// Adds a fault rule.
    #[must_use]
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Sets how long restores take.
    #[must_use]
    pub fn restore_delay(mut self, delay: Duration) -> Self {
        self.restore_delay = delay;
        self
    }

    /// Sets the first trigger retry delay.
    #[must_use]
    pub fn trigger_retry_backoff(mut self, backoff: Duration) -> Self {
        self.trigger_retry_backoff = backoff;
        self
    }
}

/// Why the emulator could not start or a direct helper failed.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding the listener or reading the data directory failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A direct helper named a bucket that is not configured.
    #[error("no such bucket: {0}")]
    NoSuchBucket(String),
    /// A direct helper was given an invalid value.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// Options for [`Emulator::put_object_direct`].
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// `Standard`, `IA`, `Archive`, `ColdArchive` or `DeepColdArchive`; default `Standard`.
    pub storage_class: Option<String>,
    /// `Normal` (default), `Multipart` or `Appendable`: only changes the reported type.
    pub object_type: Option<String>,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Content-Encoding.
    pub content_encoding: Option<String>,
    /// Content-Disposition.
    pub content_disposition: Option<String>,
    /// Content-Language.
    pub content_language: Option<String>,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Expires.
    pub expires: Option<String>,
    /// User metadata, names without the `x-oss-meta-` prefix.
    pub user_meta: Vec<(String, String)>,
}

impl PutOptions {
    /// The content headers and `x-oss-meta-*` headers these options set, as stored with an
    /// object: lower-case names, sorted.
    fn headers(&self) -> Vec<(String, Vec<u8>)> {
        let mut headers: Vec<(String, Vec<u8>)> = [
            ("content-type", &self.content_type),
            ("content-encoding", &self.content_encoding),
            ("content-disposition", &self.content_disposition),
            ("content-language", &self.content_language),
            ("cache-control", &self.cache_control),
            ("expires", &self.expires),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (n.to_owned(), v.as_bytes().to_vec())))
        .collect();
        for (name, value) in &self.user_meta {
            headers.push((
                format!("x-oss-meta-{}", name.to_ascii_lowercase()),
                value.as_bytes().to_vec(),
            ));
        }
        headers.sort();
        headers
    }
}

/// An object's metadata as the emulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// The ETag as OSS sends it: quoted upper-case hex.
    pub etag: String,
    /// The CRC-64/XZ of the data.
    pub crc64: u64,
    /// Normal, Multipart, Appendable or Symlink.
    pub object_type: String,
    /// The storage class.
    pub storage_class: String,
    /// When the object was last written.
    pub last_modified: DateTime<Utc>,
    /// Content headers and `x-oss-meta-*` headers (lower-case names).
    pub headers: Vec<(String, String)>,
}

impl ObjectInfo {
    fn from_meta(meta: &ObjectMeta) -> Self {
        Self {
            key: meta.key.clone(),
            size: meta.size,
            etag: format!("\"{}\"", meta.etag),
            crc64: meta.crc64,
            object_type: meta.object_type.clone(),
            storage_class: meta.storage_class.clone(),
            last_modified: DateTime::from_timestamp_millis(meta.last_modified_ms)
                .unwrap_or_default(),
            headers: meta
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
        }
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Binds the listener and starts serving in the background.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Mutex::new(Stats::default()));
        let store = Store::open(&config.buckets, config.data_dir.clone())?;
        let notifier = notify::Notifier::start(
            config.notifications,
            config.region.clone(),
            config.trigger_retry_backoff,
            stats.clone(),
        );
        let shared = Arc::new(State::new(
            config.region,
            config.credentials,
            store,
            faults::FaultSet::new(config.faults),
            stats,
            notifier,
            config.restore_delay,
        ));
        let (shutdown, receiver) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, shared.clone(), receiver));
        tracing::info!(%addr, buckets = ?shared.store.bucket_names(), "oss-emulator listening");
        Ok(Self {
            addr,
            state: shared,
            shutdown,
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The region signatures are checked against.
    pub fn region(&self) -> &str {
        &self.state.region
    }

    /// Replaces the fault rules.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.state.faults.set(rules);
    }

    /// The fault rules still active (spent rules are gone).
    pub fn faults(&self) -> Vec<FaultRule> {
        self.state.faults.get()
    }

    /// The counters since start or the last reset.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Zeroes the counters only.
    pub fn reset_stats(&self) {
        self.state.reset_stats();
    }

    /// Drops every object, upload, counter and fault rule.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Replaces the accepted credentials (e.g. to test key rotation).
    pub fn set_credentials(&self, credentials: Vec<Credentials>) {
        self.state.set_credentials(credentials);
    }

    /// Replaces the notification targets.
    pub fn set_notifications(&self, targets: Vec<NotificationTarget>) {
        self.state.notifier.set_targets(targets);
    }

    /// Changes how long future restores take.
    pub fn set_restore_delay(&self, delay: Duration) {
        self.state.set_restore_delay(delay);
    }

    /// Stores an object without HTTP (and without a trigger event).
    pub async fn put_object_direct(
        &self,
        bucket: &str,
        key: &str,
        data: impl Into<Bytes>,
        options: PutOptions,
    ) -> Result<ObjectInfo, EmulatorError> {
        if !self.state.store.has_bucket(bucket) {
            return Err(EmulatorError::NoSuchBucket(bucket.to_owned()));
        }
        let storage_class = options
            .storage_class
            .clone()
            .unwrap_or_else(|| "Standard".to_owned());
        if !STORAGE_CLASSES.contains(&storage_class.as_str()) {
            return Err(EmulatorError::Invalid(format!(
                "storage class {storage_class}"
            )));
        }
        let data: Bytes = data.into();
        let body = http_body_util::Full::new(data);
        let (ingested, _) = self
            .state
            .store
            .ingest(bucket, body)
            .await
            .map_err(|e| EmulatorError::Invalid(e.message))?;
        let meta = ObjectMeta::new(
            key,
            options.object_type.as_deref().unwrap_or("Normal"),
            storage_class,
            options.headers(),
        )
        .with_data(&ingested);
        let info = ObjectInfo::from_meta(&meta);
        self.state
            .store
            .put(bucket, meta, ingested.blob)
            .map_err(|e| EmulatorError::Invalid(e.message))?;
        Ok(info)
    }

    /// An object's metadata, without HTTP.
    pub fn head_object_direct(&self, bucket: &str, key: &str) -> Option<ObjectInfo> {
        self.state
            .store
            .get(bucket, key)
            .map(|o| ObjectInfo::from_meta(&o.meta))
    }

    /// An object's bytes and metadata, without HTTP.
    pub async fn get_object_direct(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(Bytes, ObjectInfo)>, EmulatorError> {
        let Some(object) = self.state.store.get(bucket, key) else {
            return Ok(None);
        };
        let data = match &object.blob {
            Blob::Memory(bytes) => bytes.clone(),
            blob @ (Blob::File { .. } | Blob::Synthetic { .. }) => {
                let mut stream = blob.stream(0, blob.len()).await?;
                let mut out = Vec::with_capacity(transfer::size::as_usize(blob.len()));
                while let Some(chunk) = stream.next().await {
                    out.extend_from_slice(&chunk?);
                }
                Bytes::from(out)
            }
        };
        Ok(Some((data, ObjectInfo::from_meta(&object.meta))))
    }

    /// Removes an object without HTTP. Returns whether it existed.
    pub fn delete_object_direct(&self, bucket: &str, key: &str) -> bool {
        self.state.store.delete(bucket, key).is_some()
    }

    /// The keys of a bucket, in order.
    pub fn list_keys_direct(&self, bucket: &str) -> Vec<String> {
        self.state
            .store
            .with_bucket(bucket, |b| b.objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// How many multipart uploads are in progress in `bucket` (to check nothing is orphaned).
    pub fn pending_uploads(&self, bucket: &str) -> usize {
        self.state
            .store
            .with_bucket(bucket, |b| b.uploads.len())
            .unwrap_or(0)
    }

    /// Stops accepting connections, drops open ones and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
