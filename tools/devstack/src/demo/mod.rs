//! The demo: a realistic data set uploaded through the OSS emulator with the signed client,
//! waited for in S3, and verified object by object (bytes by CRC-64, content headers, user
//! metadata, the replication marker), ending in a summary table. With
//! [`DemoDirection::S3ToOss`] the same data set goes the other way (see `reverse`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use transfer::crc64::Crc64;
use transfer::encoding::encode_path;
use transfer::oss::signer::SignableRequest;
use transfer::oss::{
    CompleteOptions, CompletedPart, Credentials, OssClient, OssSigner, PutBody, PutObjectOptions,
};
use transfer::replicate::{MARKER_CRC64, MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE, source_url};
use transfer::store::ContentHeaders;

mod backfill;
mod dataset;
mod report;
mod reverse;
mod upload;
mod verify;

pub use backfill::{CliRun, oss2s3};
pub(crate) use dataset::Rng;
pub use dataset::{DemoObject, UploadKind, dataset};
pub use report::{DemoReport, FunctionMetrics, function_metrics, percentile};
use upload::generated;
pub use upload::{Appender, Uploaded, upload};
use verify::{Arrivals, Arrived, arrived, check_all, list_oss, list_s3, watch_arrivals};
pub use verify::{Mismatch, verify, verify_in_oss};

use crate::esm::EsmCounts;
use crate::stack::Stack;

use transfer::size::MIB;

/// Which way the demo replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DemoDirection {
    /// Objects written to OSS, copied into S3 (the OSS trigger, the forwarder, the replicator).
    #[default]
    OssToS3,
    /// Objects written to S3, copied into OSS (S3's event notifications, the replicator with
    /// `DIRECTION=s3-to-oss`); the stack must run that direction
    /// ([`crate::StackConfig::s3_to_oss`]).
    S3ToOss,
}

impl DemoDirection {
    /// The side written to, as the report names it.
    pub fn source(self) -> &'static str {
        match self {
            Self::OssToS3 => "OSS",
            Self::S3ToOss => "S3",
        }
    }

    /// The side copied into.
    pub fn destination(self) -> &'static str {
        match self {
            Self::OssToS3 => "S3",
            Self::S3ToOss => "OSS",
        }
    }
}

/// What the demo uploads and how long it waits.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Which way it replicates.
    pub direction: DemoDirection,
    /// How many objects (at least 4 gives every upload kind).
    pub objects: usize,
    /// The largest object, in bytes.
    pub max_size: u64,
    /// How long to wait for the last object to reach S3.
    pub timeout: Duration,
    /// Uploads in flight at once.
    pub upload_concurrency: usize,
    /// Seed of the object contents and sizes (the same seed gives the same data set).
    pub seed: u64,
    /// Objects already in the bucket before replication starts, backfilled with `oss2s3 sync`
    /// (0: no backfill and no final `oss2s3 verify`).
    pub existing: usize,
}

impl Default for DemoOptions {
    /// 200 objects from 0 B to 64 MiB, ten minutes to replicate, four uploads at once.
    fn default() -> Self {
        Self {
            direction: DemoDirection::OssToS3,
            objects: 200,
            max_size: 64 * MIB,
            timeout: Duration::from_mins(10),
            upload_concurrency: 4,
            seed: 20_240_501,
            existing: 40,
        }
    }
}

/// Runs the demo against `stack`: upload, wait, verify, report.
pub async fn run(stack: &Stack, options: &DemoOptions) -> anyhow::Result<DemoReport> {
    match options.direction {
        DemoDirection::OssToS3 => Box::pin(run_oss_to_s3(stack, options)).await,
        DemoDirection::S3ToOss => Box::pin(reverse::run(stack, options)).await,
    }
}

async fn run_oss_to_s3(stack: &Stack, options: &DemoOptions) -> anyhow::Result<DemoReport> {
    let objects = dataset(options);
    let config = stack.config();
    let bucket = config.oss_bucket.clone();
    let oss = stack.oss_client()?;
    let appender = Appender::new(
        stack.oss_endpoint(),
        &config.oss_region,
        Credentials::new(&config.oss_access_key_id, &config.oss_access_key_secret),
    );
    let expected: HashMap<String, u64> = objects.iter().map(|o| (o.key.clone(), o.size)).collect();
    if expected.len() != objects.len() {
        bail!("the data set has duplicate keys");
    }
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    let backfill = if options.existing > 0 {
        let existing = backfill::seed_existing(stack, options.existing, options.seed).await?;
        eprintln!(
            "demo: {} objects ({:.1} MiB) were in oss://{bucket} before replication; backfilling with oss2s3 sync --queue (the replicator lists and copies them)",
            options.existing,
            existing as f64 / MIB as f64
        );
        let queued = [
            "--queue".to_owned(),
            stack.queue_url().to_owned(),
            "--wait".to_owned(),
            "--shards".to_owned(),
            "4".to_owned(),
            "--report".to_owned(),
            format!("s3://{}/oss2s3-jobs/", config.dst_bucket),
        ];
        let run = backfill::run_cli(stack, options.direction, "sync", "backfill", &queued).await?;
        eprintln!("demo: {}", run.headline());
        Some(run)
    } else {
        None
    };
    let started = Instant::now();
    let deadline = started + options.timeout;
    let arrivals = Arrivals::default();
    let (s3, dst_bucket) = (stack.s3().clone(), config.dst_bucket.clone());
    let watcher = tokio::spawn(watch_arrivals(
        move || list_s3(s3.clone(), dst_bucket.clone()),
        expected,
        arrivals.clone(),
        deadline,
    ));

    eprintln!(
        "demo: uploading {} objects ({:.1} MiB) to oss://{bucket} through the emulator",
        objects.len(),
        bytes as f64 / MIB as f64
    );
    let uploaded: Vec<Uploaded> = futures::stream::iter(objects.iter())
        .map(|o| upload(&oss, &appender, &bucket, o))
        .buffer_unordered(options.upload_concurrency.max(1))
        .try_collect()
        .await?;
    let upload_time = started.elapsed();
    eprintln!(
        "demo: uploads done in {:.1} s; waiting for S3 (timeout {:?})",
        upload_time.as_secs_f64(),
        options.timeout
    );
    let _ = watcher.await;
    let Arrived {
        total_time,
        latencies,
        missing,
        to_verify,
    } = arrived(&uploaded, &arrivals, started);
    eprintln!(
        "demo: verifying {} objects in s3://{}",
        to_verify.len(),
        config.dst_bucket
    );
    let (s3, bucket) = (stack.s3(), &bucket);
    let (verified, mismatches) =
        check_all(to_verify, |u| verify(s3, &config.dst_bucket, bucket, u)).await;
    let audit = audit(stack, options).await?;
    let (dlq_visible, dlq_in_flight) = stack.queue_depth(stack.dlq_url()).await?;
    let (queue_visible, queue_in_flight) = stack.queue_depth(stack.queue_url()).await?;
    Ok(DemoReport {
        direction: options.direction,
        objects: uploaded.len(),
        verified,
        bytes,
        upload_time,
        total_time,
        latencies,
        missing,
        mismatches,
        function: function_metrics(&stack.function_logs()),
        esm: stack.esm_counts(),
        dlq_depth: dlq_visible + dlq_in_flight,
        queue_depth: queue_visible + queue_in_flight,
        backfill,
        audit,
    })
}

/// The final audit of both buckets with `oss2s3 verify`, when the demo backfilled.
async fn audit(stack: &Stack, options: &DemoOptions) -> anyhow::Result<Option<CliRun>> {
    if options.existing == 0 {
        return Ok(None);
    }
    eprintln!("demo: auditing both buckets with oss2s3 verify");
    let allow_extra = ["--allow-extra".to_owned()];
    let run = backfill::run_cli(stack, options.direction, "verify", "verify", &allow_extra).await?;
    print!("{}", run.stdout);
    Ok(Some(run))
}
