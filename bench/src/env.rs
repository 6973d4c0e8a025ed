//! The servers the benchmark runs against, each in its own process: the OSS emulator (with a
//! data directory, seeded before it starts) and the S3 sink (`s3s-fs`, or moto for `--quick`
//! without it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use aws_sdk_s3::config::{BehaviorVersion, Credentials as S3Credentials, Region};
use oss_emulator::{Emulator, EmulatorConfig, PutOptions};
use transfer::oss::Credentials;

use crate::RunArgs;
use testkit::process::{ManagedProcess, ReadyLine, cpu_of, wait_for_port};

/// The emulator's key pair (also what the function's secret holds).
pub(crate) const OSS_KEYS: (&str, &str) = ("AKBENCHOSS", "bench-oss-secret");
/// The S3 sink's key pair.
pub(crate) const S3_KEYS: (&str, &str) = ("AKBENCHS3", "bench-s3-secret");
/// The source bucket.
pub(crate) const SRC_BUCKET: &str = "bench-src";

/// One object to seed: key and size.
pub(crate) type Seed = (String, u64);

/// The S3 server.
enum SinkProcess {
    S3sFs(#[expect(dead_code, reason = "kept only so the process lives")] ManagedProcess),
    Moto(#[expect(dead_code, reason = "kept only so the server lives")] testkit::MotoServer),
}

/// The running servers and the bench's own clients for them.
pub(crate) struct Stack {
    /// Log and scratch directory.
    pub(crate) work: PathBuf,
    /// The emulator's URL.
    pub(crate) oss_endpoint: String,
    /// The emulator process.
    pub(crate) emulator: ManagedProcess,
    /// The S3 server's URL.
    pub(crate) s3_endpoint: String,
    /// `s3s-fs 0.14.1` or `moto`.
    pub(crate) sink_name: &'static str,
    /// The S3 server's process ID.
    pub(crate) sink_pid: Option<u32>,
    /// Kept so the sink lives as long as the stack.
    _sink: SinkProcess,
    /// An S3 client for set-up and checks (not measured).
    pub(crate) s3: aws_sdk_s3::Client,
    http: reqwest::Client,
}

/// Deterministic incompressible bytes (xorshift64), different per `seed`.
pub(crate) fn pattern(len: u64, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    data
}

/// Writes `objects` into the emulator data directory `dir` (through an in-process emulator, so
/// no HTTP is involved), skipping those already there with the right size.
pub(crate) async fn seed(dir: &Path, objects: &[Seed]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let emulator = Emulator::start(
        EmulatorConfig::new()
            .bucket(SRC_BUCKET)
            .credentials(Credentials::new(OSS_KEYS.0, OSS_KEYS.1))
            .data_dir(dir),
    )
    .await?;
    for (i, (key, size)) in objects.iter().enumerate() {
        if emulator
            .head_object_direct(SRC_BUCKET, key)
            .is_some_and(|o| o.size == *size)
        {
            continue;
        }
        let data = pattern(*size, i as u64 + 1);
        emulator
            .put_object_direct(SRC_BUCKET, key, data, PutOptions::default())
            .await
            .with_context(|| format!("seed {key}"))?;
    }
    emulator.shutdown().await;
    Ok(())
}

impl Stack {
    /// Starts the emulator on `data_dir` and the S3 sink.
    pub(crate) async fn start(
        args: &RunArgs,
        work: &Path,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let logs = work.join("logs");
        std::fs::create_dir_all(&logs)?;
        let mut command = Command::new(args.bin_dir.join("oss-emulator"));
        command
            .args(["--listen", "127.0.0.1:0", "--bucket", SRC_BUCKET])
            .args(["--access-key", OSS_KEYS.0, "--secret-key", OSS_KEYS.1])
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn");
        let (emulator, ready) = ManagedProcess::spawn_until(
            "oss-emulator",
            command,
            &logs.join("oss-emulator.log"),
            ReadyLine {
                prefix: "oss-emulator listening on",
                timeout: Duration::from_secs(30),
            },
        )?;
        let oss_endpoint = ready.rest;
        let (sink, s3_endpoint, sink_name, sink_pid) = if let Some(binary) = &args.s3s_fs {
            let root = work.join("s3");
            if root.exists() {
                std::fs::remove_dir_all(&root)?;
            }
            std::fs::create_dir_all(&root)?;
            let port = testkit::free_port();
            let mut command = Command::new(binary);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", S3_KEYS.0, "--secret-key", S3_KEYS.1])
                .arg(&root);
            let proc = ManagedProcess::spawn("s3s-fs", command, &logs.join("s3s-fs.log"))?;
            wait_for_port(port, Duration::from_secs(30)).await?;
            let pid = proc.pid();
            (
                SinkProcess::S3sFs(proc),
                format!("http://127.0.0.1:{port}"),
                "s3s-fs 0.14.1",
                Some(pid),
            )
        } else {
            let moto = tokio::task::spawn_blocking(testkit::MotoServer::start).await?;
            let endpoint = moto.endpoint();
            (SinkProcess::Moto(moto), endpoint, "moto", None)
        };
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(&s3_endpoint)
                .force_path_style(true)
                .credentials_provider(S3Credentials::new(
                    S3_KEYS.0, S3_KEYS.1, None, None, "bench",
                ))
                .build(),
        );
        Ok(Self {
            work: work.to_owned(),
            oss_endpoint,
            emulator,
            s3_endpoint,
            sink_name,
            sink_pid,
            _sink: sink,
            s3,
            http: reqwest::Client::new(),
        })
    }

    /// Whether the sink is a separate process whose CPU can be read.
    pub(crate) fn sink_cpu(&self) -> Option<Duration> {
        let pid = self.sink_pid?;
        cpu_of(&format!("/proc/{pid}/stat")).ok()
    }

    /// Creates a destination bucket.
    pub(crate) async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        self.s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .with_context(|| format!("CreateBucket {bucket}"))?;
        Ok(())
    }

    /// Creates a synthetic source object of `size` bytes in the emulator (generated as it is
    /// read; see the emulator's `PUT /_emulator/synthetic`).
    pub(crate) async fn put_synthetic(&self, key: &str, size: u64) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}/_emulator/synthetic", self.oss_endpoint))
            .body(
                serde_json::json!({"bucket": SRC_BUCKET, "key": key, "size": size, "seed": size})
                    .to_string(),
            )
            .send()
            .await
            .context("PUT /_emulator/synthetic")?;
        anyhow::ensure!(
            response.status().is_success(),
            "PUT /_emulator/synthetic answered {}",
            response.status()
        );
        Ok(())
    }

    /// Creates `count` small synthetic objects named `prefix` + an 8-digit number (no events).
    pub(crate) async fn put_many(&self, prefix: &str, count: u64) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}/_emulator/synthetic-many", self.oss_endpoint))
            .body(
                serde_json::json!({"bucket": SRC_BUCKET, "prefix": prefix, "count": count, "size": 100})
                    .to_string(),
            )
            .send()
            .await
            .context("PUT /_emulator/synthetic-many")?;
        anyhow::ensure!(
            response.status().is_success(),
            "PUT /_emulator/synthetic-many answered {}",
            response.status()
        );
        Ok(())
    }

    /// HeadObject of `s3://bucket/key`.
    async fn head_s3(
        &self,
        bucket: &str,
        key: &str,
    ) -> anyhow::Result<aws_sdk_s3::operation::head_object::HeadObjectOutput> {
        self.s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("HeadObject s3://{bucket}/{key}"))
    }

    /// The size of a destination object.
    pub(crate) async fn dst_size(&self, bucket: &str, key: &str) -> anyhow::Result<u64> {
        let head = self.head_s3(bucket, key).await?;
        Ok(head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0))
    }

    /// Checks that `s3://bucket/key` holds `size` bytes, then deletes it (disk stays bounded).
    pub(crate) async fn check_and_delete(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
    ) -> anyhow::Result<()> {
        let got = self.dst_size(bucket, key).await?;
        ensure!(
            got == size,
            "s3://{bucket}/{key} holds {got} bytes, expected {size}"
        );
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("DeleteObject s3://{bucket}/{key}"))?;
        Ok(())
    }

    /// Writes `size` bytes of [`pattern`] to `s3://bucket/key` as a multipart upload of 64 MiB
    /// parts, generated part by part (memory stays at one part).
    pub(crate) async fn put_s3_pattern(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
    ) -> anyhow::Result<()> {
        const PART: u64 = 64 << 20;
        let create = self.s3.create_multipart_upload().bucket(bucket).key(key);
        let parts = (0..size.max(1))
            .step_by(usize::try_from(PART)?)
            .map(|first| pattern(PART.min(size - first), first / PART + 1));
        testkit::s3_upload::upload_in_parts(&self.s3, create, parts).await?;
        Ok(())
    }

    /// The ETag of `s3://bucket/key`, as S3 reports it (quoted).
    pub(crate) async fn s3_etag(&self, bucket: &str, key: &str) -> anyhow::Result<String> {
        let head = self.head_s3(bucket, key).await?;
        Ok(head.e_tag().unwrap_or_default().to_owned())
    }

    /// Deletes `s3://bucket/key`.
    pub(crate) async fn delete_s3(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("DeleteObject s3://{bucket}/{key}"))?;
        Ok(())
    }

    /// A signed client for the emulator.
    fn oss_client(&self) -> anyhow::Result<transfer::oss::OssClient> {
        use transfer::oss::{AddressingStyle, Endpoint, OssClient, OssConfig};
        Ok(OssClient::new(
            OssConfig::new("cn-hangzhou")
                .with_endpoint(Endpoint::Custom(self.oss_endpoint.clone()))
                .with_addressing(AddressingStyle::PathStyle),
            Credentials::new(OSS_KEYS.0, OSS_KEYS.1),
        )?)
    }

    /// The ETag of each of `keys` in the source bucket, as a trigger event names it.
    pub(crate) async fn oss_etags(&self, keys: &[String]) -> anyhow::Result<Vec<String>> {
        let oss = self.oss_client()?;
        let mut etags = Vec::with_capacity(keys.len());
        for key in keys {
            let head = oss
                .head_object(SRC_BUCKET, key)
                .await
                .with_context(|| format!("HeadObject oss://{SRC_BUCKET}/{key}"))?;
            etags.push(head.etag.trim_matches('"').to_owned());
        }
        Ok(etags)
    }

    /// Checks that `oss://bucket/key` in the emulator holds `size` bytes, then deletes it.
    pub(crate) async fn check_and_delete_in_oss(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
    ) -> anyhow::Result<()> {
        let oss = self.oss_client()?;
        let got = oss
            .head_object(bucket, key)
            .await
            .with_context(|| format!("HeadObject oss://{bucket}/{key}"))?
            .size;
        ensure!(
            got == size,
            "oss://{bucket}/{key} holds {got} bytes, expected {size}"
        );
        oss.delete_object(bucket, key)
            .await
            .with_context(|| format!("DeleteObject oss://{bucket}/{key}"))?;
        Ok(())
    }

    /// How many objects a bucket holds, and their total size.
    pub(crate) async fn count_objects(&self, bucket: &str) -> anyhow::Result<(usize, u64)> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        let (mut count, mut bytes) = (0, 0);
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("ListObjectsV2 {bucket}"))?;
            for object in page.contents() {
                count += 1;
                bytes += object
                    .size()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0);
            }
        }
        Ok((count, bytes))
    }

    /// The emulator's counters (`GET /_emulator/stats`).
    async fn oss_stats(&self) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .http
            .get(format!("{}/_emulator/stats", self.oss_endpoint))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b))??)
    }

    /// The emulator's request counts per operation.
    pub(crate) async fn oss_requests(
        &self,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let stats = self.oss_stats().await?;
        match stats.get("requests") {
            Some(serde_json::Value::Object(map)) => Ok(map.clone()),
            _ => bail!("emulator stats without requests: {stats}"),
        }
    }

    /// The TCP connections the emulator has accepted since its counters were last reset.
    pub(crate) async fn oss_connections(&self) -> anyhow::Result<u64> {
        let stats = self.oss_stats().await?;
        stats["connections"]
            .as_u64()
            .with_context(|| format!("emulator stats without connections: {stats}"))
    }

    /// Delays every OSS request by `ms` (an emulator fault rule), or stops delaying (`None`).
    pub(crate) async fn set_oss_latency(&self, ms: Option<u64>) -> anyhow::Result<()> {
        let rules = match ms {
            Some(ms) => serde_json::json!([{"op": "*", "fault": {"kind": "latency", "ms": ms}}]),
            None => serde_json::json!([]),
        };
        self.http
            .put(format!("{}/_emulator/faults", self.oss_endpoint))
            .header("content-type", "application/json")
            .body(rules.to_string())
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Zeroes the emulator's counters.
    pub(crate) async fn reset_oss_requests(&self) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/_emulator/stats/reset", self.oss_endpoint))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The log directory.
    pub(crate) fn logs(&self) -> PathBuf {
        self.work.join("logs")
    }
}
