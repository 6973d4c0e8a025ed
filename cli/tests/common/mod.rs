//! A stack for the CLI's tests: the OSS emulator and moto, and the `oss2s3` binary run as a
//! user runs it, configured through the environment.

#![allow(dead_code, reason = "each test binary uses part of the stack")]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bytes::Bytes;
use oss_emulator::{EmulatorConfig, PutOptions};
use testkit::Services;
use transfer::oss::Credentials;

pub(crate) const SRC: &str = "cli-src";
pub(crate) const AK: &str = "cli-ak";
pub(crate) const SK: &str = "cli-secret";

pub(crate) struct Stack {
    pub(crate) services: Services,
    pub(crate) dst: String,
    pub(crate) reports: tempfile::TempDir,
}

/// One row of a report list.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) key: String,
    pub(crate) destination_key: String,
    pub(crate) size: u64,
    pub(crate) etag: String,
    pub crc64: Option<u64>,
    pub(crate) last_modified: String,
    pub(crate) status: String,
    pub(crate) reason: String,
}

impl Stack {
    pub(crate) async fn start() -> Self {
        let services = Services::start(
            EmulatorConfig::new()
                .bucket(SRC)
                .credentials(Credentials::new(AK, SK)),
        )
        .await;
        let dst = services.create_bucket("cli-dst").await;
        Self {
            services,
            dst,
            reports: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// Stores a source object.
    pub(crate) async fn seed(&self, key: &str, data: &[u8]) {
        self.services
            .emulator
            .put_object_direct(
                SRC,
                key,
                Bytes::copy_from_slice(data),
                PutOptions::default(),
            )
            .await
            .expect("seeded");
    }

    /// The `oss2s3` command with the stack's environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oss2s3"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("OSS_REGION", testkit::services::OSS_REGION)
            .env("OSS_ENDPOINT", self.services.emulator.endpoint())
            .env("OSS_PATH_STYLE", "true")
            .env("OSS_ACCESS_KEY_ID", AK)
            .env("OSS_ACCESS_KEY_SECRET", SK)
            .env("AWS_ENDPOINT_URL", self.services.moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("OSS2S3_S3_COMPAT", "moto")
            .current_dir(self.reports.path())
            .stdin(Stdio::null());
        command
    }

    /// Runs `oss2s3 args...` to its end.
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("joined")
            .expect("oss2s3 runs");
        eprintln!(
            "$ oss2s3 {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    pub(crate) fn src_url() -> String {
        format!("oss://{SRC}/")
    }

    pub(crate) fn dst_url(&self) -> String {
        format!("s3://{}/", self.dst)
    }

    /// The directory of job `id` under the default report directory.
    pub(crate) fn job_dir(&self, id: &str) -> PathBuf {
        self.reports.path().join("oss2s3-reports").join(id)
    }

    /// The rows of one list of job `id`.
    pub(crate) fn list(&self, id: &str, list: &str) -> Vec<Row> {
        read_list(&self.job_dir(id).join(format!("{list}.csv.gz")))
    }

    /// `summary.json` of job `id`.
    pub(crate) fn summary(&self, id: &str) -> serde_json::Value {
        let text = std::fs::read(self.job_dir(id).join("summary.json")).expect("summary.json");
        serde_json::from_slice(&text).expect("valid JSON")
    }

    /// Every object of the destination bucket: key → bytes.
    pub(crate) async fn s3_objects(&self) -> BTreeMap<String, Vec<u8>> {
        let mut objects = BTreeMap::new();
        for key in self.services.s3_keys(&self.dst).await {
            let bytes = self
                .services
                .s3_bytes(&self.dst, &key)
                .await
                .expect("readable");
            objects.insert(key, bytes);
        }
        objects
    }

    /// Writes an object straight into the destination, as another tool would (no marker).
    pub(crate) async fn put_s3(&self, key: &str, data: &[u8]) {
        self.services
            .s3
            .put_object()
            .bucket(&self.dst)
            .key(key)
            .body(data.to_vec().into())
            .send()
            .await
            .expect("put into S3");
    }
}

/// A list read with this test's own row type, independently of the CLI's reader.
pub(crate) fn read_list(path: &Path) -> Vec<Row> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).expect("the list exists"))
        .read_to_string(&mut text)
        .expect("valid gzip");
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("valid CSV")
}

/// The keys of `rows`, sorted.
pub(crate) fn keys(rows: &[Row]) -> Vec<String> {
    let mut keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    keys.sort();
    keys
}

/// Deterministic bytes.
pub(crate) fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Keys that stress encoding, for the object number `i`.
pub(crate) fn odd_key(dir: &str, i: usize) -> String {
    const ODD: [&str; 12] = [
        "plain",
        "with space",
        "plus+sign",
        "pct%20lit",
        "pct%",
        "文件",
        "🚀",
        "é-ü",
        "q?x=1&y",
        "hash#",
        "tilde~",
        "quote\"'",
    ];
    format!("{dir}/{i:05} {}", ODD[i % ODD.len()])
}
