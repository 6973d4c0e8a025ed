//! The whole local stack, wired as in the cloud:
//!
//! ```text
//! OSS emulator --trigger POST /invoke--> forwarder (FC custom runtime) --SendMessageBatch--> SQS (moto)
//!   ^                                                                                       |
//!   | GET/HEAD (V4 signed)                                  event source mapping emulation  v
//!   +---------- replicator bootstrap <--Runtime API-- (long poll, invoke, delete, redrive) --+
//!                    |  OSS keys from Secrets Manager (moto), objects into S3 (moto)
//! ```
//!
//! With [`StackConfig::s3_to_oss`] the other direction runs too, on the same two buckets (so
//! the stack is in two-way mode):
//!
//! ```text
//! S3 (moto) --event notification (moto sends it)--> SQS (moto) --ESM--> replicator (s3-to-oss) --> OSS emulator
//! ```
//!
//! Every server listens on a free loopback port; every child process is killed when the
//! [`Stack`] is shut down or dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use tokio::sync::watch;
use transfer::oss::{AddressingStyle, Credentials, Endpoint, OssClient, OssConfig};

use crate::binaries::Binaries;
use crate::esm::{EsmCounts, EsmSettings, EsmStats, run_poller};
use testkit::lambda::{FunctionInstance, FunctionSpec};
use testkit::process::{ManagedProcess, ReadyLine};
use testkit::sqs_server::SqsServer;

/// Everything that can be chosen about the stack. [`StackConfig::new`] gives working defaults.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The emulator and the two `bootstrap` binaries.
    pub binaries: Binaries,
    /// The project venv's python; `moto_server` is next to it.
    pub python: PathBuf,
    /// Where the processes' logs go (created if missing).
    pub run_dir: PathBuf,
    /// The OSS region (signature scope).
    pub oss_region: String,
    /// The source bucket in the emulator.
    pub oss_bucket: String,
    /// The OSS access key ID the emulator accepts (and the secret holds).
    pub oss_access_key_id: String,
    /// Its secret.
    pub oss_access_key_secret: String,
    /// The AWS region of the queue, bucket, secret and function.
    pub aws_region: String,
    /// The AWS account ID moto uses in ARNs.
    pub aws_account: String,
    /// The AWS key everything uses against moto (any value works).
    pub aws_access_key_id: String,
    /// Its secret.
    pub aws_secret_access_key: String,
    /// The destination bucket.
    pub dst_bucket: String,
    /// The task queue.
    pub queue_name: String,
    /// The dead-letter queue.
    pub dlq_name: String,
    /// The Secrets Manager secret with the OSS keys.
    pub secret_name: String,
    /// The replicator's function name.
    pub function_name: String,
    /// The function timeout (each invocation's deadline).
    pub function_timeout: Duration,
    /// The function memory, in MB (informational).
    pub function_memory_mb: u32,
    /// How many execution environments (and pollers) run at once.
    pub function_instances: usize,
    /// Extra or overriding function environment, e.g. `PART_SIZE_MIB`.
    pub function_env: Vec<(String, String)>,
    /// Messages per invocation, 1 to 10.
    pub batch_size: i32,
    /// How long a poller gathers a batch that is not full.
    pub batching_window: Duration,
    /// The queue's visibility timeout.
    pub visibility_timeout: Duration,
    /// The redrive policy's `maxReceiveCount`.
    pub max_receive_count: u32,
    /// Fault rules for the emulator (JSON, as `--fault`).
    pub emulator_faults: Vec<String>,
    /// Put a fault-injecting proxy between the replicator and S3 (see [`Stack::s3_proxy`]).
    pub s3_proxy: bool,
    /// Extra or overriding forwarder environment, e.g. `FORWARD_DELETES`.
    pub forwarder_env: Vec<(String, String)>,
    /// Which server answers SQS calls.
    pub sqs: SqsService,
    /// An S3 server to use instead of moto's (it must accept `aws_access_key_id`); moto still
    /// serves Secrets Manager. Not with `s3_to_oss`, which needs moto's S3 event notifications.
    pub s3_endpoint: Option<String>,
    /// Also replicate S3 → OSS: the destination bucket's event notifications (moto sends them
    /// to its own SQS, so only with `SqsService::Moto`) feed a replicator with `DIRECTION=s3-to-oss`
    /// that copies into the source bucket. With the OSS trigger on, the stack is two-way.
    pub s3_to_oss: bool,
    /// The S3 → OSS direction's event queue.
    pub reverse_queue_name: String,
    /// Its dead-letter queue.
    pub reverse_dlq_name: String,
    /// Extra or overriding environment of the S3 → OSS replicator (after `function_env`).
    pub reverse_function_env: Vec<(String, String)>,
}

impl StackConfig {
    /// Defaults: one source bucket `oss2s3-src`, destination `oss2s3-dst`, queue `oss2s3-tasks`
    /// with DLQ `oss2s3-dlq` (`maxReceiveCount` 3), a 60 s function timeout with a 360 s (6×)
    /// visibility timeout, batches of 10 with a 200 ms window, two execution environments.
    pub fn new(binaries: Binaries, python: PathBuf, run_dir: PathBuf) -> Self {
        Self {
            binaries,
            python,
            run_dir,
            oss_region: "cn-hangzhou".into(),
            oss_bucket: "oss2s3-src".into(),
            oss_access_key_id: "LTAI5tDevstackKey".into(),
            oss_access_key_secret: "devstack-oss-secret".into(),
            aws_region: "us-east-1".into(),
            aws_account: "123456789012".into(),
            aws_access_key_id: "testing".into(),
            aws_secret_access_key: "testing".into(),
            dst_bucket: "oss2s3-dst".into(),
            queue_name: "oss2s3-tasks".into(),
            dlq_name: "oss2s3-dlq".into(),
            secret_name: "oss2s3/oss-source".into(),
            function_name: "oss2s3-replicator".into(),
            function_timeout: Duration::from_mins(1),
            function_memory_mb: 1024,
            function_instances: 2,
            function_env: Vec::new(),
            batch_size: 10,
            batching_window: Duration::from_millis(200),
            visibility_timeout: Duration::from_mins(6),
            max_receive_count: 3,
            emulator_faults: Vec::new(),
            s3_proxy: false,
            forwarder_env: Vec::new(),
            sqs: SqsService::Moto,
            s3_endpoint: None,
            s3_to_oss: false,
            reverse_queue_name: "oss2s3-s3-events".into(),
            reverse_dlq_name: "oss2s3-s3-dlq".into(),
            reverse_function_env: Vec::new(),
        }
    }
}

/// Which server answers a stack's SQS calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqsService {
    /// moto's SQS, in the moto server that also serves S3 and Secrets Manager.
    #[default]
    Moto,
    /// moto's SQS in a moto server of its own. moto's SQS scans every message of a queue on
    /// each receive, so a backlog of thousands costs a core; apart, it does not slow S3 down.
    SeparateMoto,
    /// testkit's in-memory SQS server ([`testkit::sqs_server`]), for rates moto cannot
    /// sustain (a few hundred calls a second).
    InMemory,
}

/// The process or task that serves SQS apart from moto's main server, kept for the stack's
/// life.
#[derive(Debug)]
enum SqsServerHandle {
    Moto(ManagedProcess),
    InMemory(#[expect(dead_code, reason = "kept only so the server lives")] SqsServer),
}

/// The running stack. Stop it with [`Stack::shutdown`]; dropping it kills everything too.
#[derive(Debug)]
pub struct Stack {
    config: StackConfig,
    moto_endpoint: String,
    sqs_endpoint: String,
    emulator_endpoint: String,
    forwarder_url: String,
    queue_url: String,
    queue_arn: String,
    dlq_url: String,
    dlq_arn: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    stats: Arc<EsmStats>,
    stop: watch::Sender<bool>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
    functions: Vec<Arc<FunctionInstance>>,
    s3_proxy: Option<testkit::s3_proxy::S3Proxy>,
    reverse: Option<Reverse>,
    // Declared last: processes are killed after the pollers and functions above stop.
    emulator: ManagedProcess,
    forwarder: ManagedProcess,
    moto: ManagedProcess,
    sqs_server: Option<SqsServerHandle>,
}

/// The S3 → OSS direction of a stack: its queues, replicator environments and pollers.
#[derive(Debug)]
struct Reverse {
    queue_url: String,
    dlq_url: String,
    stats: Arc<EsmStats>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
    functions: Vec<Arc<FunctionInstance>>,
}

/// Which replicator an execution environment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    /// OSS → S3, fed by the forwarder.
    Forward,
    /// S3 → OSS, fed by S3's event notifications.
    Reverse,
}

impl Stack {
    /// Starts moto, creates the queues, bucket and secret, starts the forwarder, the emulator,
    /// the replicator's execution environments and their pollers; returns when all are ready.
    pub async fn start(config: StackConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.run_dir)
            .with_context(|| format!("create {}", config.run_dir.display()))?;
        let (moto, moto_endpoint) = start_moto(&config, "moto.log").await?;
        let (sqs_server, sqs_endpoint) = match config.sqs {
            SqsService::Moto => (None, moto_endpoint.clone()),
            SqsService::SeparateMoto => {
                let (process, endpoint) = start_moto(&config, "moto-sqs.log").await?;
                (Some(SqsServerHandle::Moto(process)), endpoint)
            }
            SqsService::InMemory => {
                let server = SqsServer::start()
                    .await
                    .context("start the in-memory SQS server")?;
                let endpoint = server.url();
                (Some(SqsServerHandle::InMemory(server)), endpoint)
            }
        };
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.aws_region.clone()))
            .endpoint_url(&moto_endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &config.aws_access_key_id,
                &config.aws_secret_access_key,
                None,
                None,
                "devstack",
            ))
            .load()
            .await;
        let s3_server = config
            .s3_endpoint
            .clone()
            .unwrap_or_else(|| moto_endpoint.clone());
        let s3 = aws_sdk_s3::Client::from_conf(
            transfer::s3::s3_config(&sdk)
                .to_builder()
                .endpoint_url(&s3_server)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .endpoint_url(&sqs_endpoint)
                .build(),
        );
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);

        let (dlq_url, dlq_arn) = create_queue(&sqs, &config.dlq_name, &[]).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": config.max_receive_count,
        });
        let (queue_url, queue_arn) = create_queue(
            &sqs,
            &config.queue_name,
            &[
                (
                    QueueAttributeName::VisibilityTimeout,
                    config.visibility_timeout.as_secs().to_string(),
                ),
                (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            ],
        )
        .await?;
        s3.create_bucket()
            .bucket(&config.dst_bucket)
            .send()
            .await
            .context("create the destination bucket")?;
        let secret = serde_json::json!({
            "access_key_id": config.oss_access_key_id,
            "secret_access_key": config.oss_access_key_secret,
        });
        secrets
            .create_secret()
            .name(&config.secret_name)
            .secret_string(secret.to_string())
            .send()
            .await
            .context("create the OSS secret")?;

        let s3_proxy = if config.s3_proxy {
            Some(testkit::s3_proxy::S3Proxy::start(&s3_server).await?)
        } else {
            None
        };
        let s3_endpoint = s3_proxy
            .as_ref()
            .map_or_else(|| s3_server.clone(), testkit::s3_proxy::S3Proxy::url);
        let (forwarder, forwarder_url) = start_forwarder(&config, &sqs_endpoint, &queue_url)?;
        let (emulator, emulator_endpoint) = start_emulator(&config, &forwarder_url)?;

        let mut functions = Vec::new();
        let function_starts = (0..config.function_instances.max(1)).map(|i| {
            let spec = function_spec(
                &config,
                Leg::Forward,
                i,
                &Endpoints {
                    moto: &moto_endpoint,
                    sqs: &sqs_endpoint,
                    s3: &s3_endpoint,
                    emulator: &emulator_endpoint,
                    queue_url: &queue_url,
                    dlq_url: &dlq_url,
                },
            );
            FunctionInstance::start(spec)
        });
        for instance in futures::future::join_all(function_starts).await {
            functions.push(Arc::new(instance?));
        }

        let stats = Arc::new(EsmStats::default());
        let (stop, stopped) = watch::channel(false);
        let esm = EsmSettings {
            queue_url: queue_url.clone(),
            queue_arn: queue_arn.clone(),
            region: config.aws_region.clone(),
            batch_size: config.batch_size,
            batching_window: config.batching_window,
            poll_wait: Duration::from_secs(20),
        };
        let pollers = spawn_pollers(&sqs, &esm, &functions, &stats, &stopped);
        let reverse = if config.s3_to_oss {
            if config.sqs != SqsService::Moto || config.s3_endpoint.is_some() {
                bail!(
                    "s3_to_oss needs moto's S3 and SQS in one server: moto delivers S3 events in-process"
                );
            }
            let endpoints = Endpoints {
                moto: &moto_endpoint,
                sqs: &sqs_endpoint,
                s3: &s3_endpoint,
                emulator: &emulator_endpoint,
                queue_url: "",
                dlq_url: "",
            };
            Some(start_reverse(&config, &s3, &sqs, &esm, endpoints, &stopped).await?)
        } else {
            None
        };
        Ok(Self {
            config,
            moto_endpoint,
            sqs_endpoint,
            emulator_endpoint,
            forwarder_url,
            queue_url,
            queue_arn,
            dlq_url,
            dlq_arn,
            s3,
            sqs,
            stats,
            stop,
            pollers,
            functions,
            s3_proxy,
            reverse,
            emulator,
            forwarder,
            moto,
            sqs_server,
        })
    }

    /// Stops the pollers (an invocation in progress gets a few seconds to finish), then every
    /// process.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        stop_pollers(std::mem::take(&mut self.pollers)).await;
        let mut functions = std::mem::take(&mut self.functions);
        if let Some(reverse) = &mut self.reverse {
            stop_pollers(std::mem::take(&mut reverse.pollers)).await;
            functions.append(&mut reverse.functions);
        }
        for function in functions {
            if let Ok(function) = Arc::try_unwrap(function) {
                function.stop().await;
            }
        }
        self.emulator.kill();
        self.forwarder.kill();
        self.moto.kill();
        if let Some(SqsServerHandle::Moto(moto)) = &self.sqs_server {
            moto.kill();
        }
    }

    /// The fault-injecting proxy between the replicator and S3, when the stack has one.
    pub fn s3_proxy(&self) -> Option<&testkit::s3_proxy::S3Proxy> {
        self.s3_proxy.as_ref()
    }

    /// Restarts execution environment `i` as a deploy would: SIGTERM to its runtime, which
    /// hands its work on and exits; the environment then starts a new runtime. Returns whether
    /// a runtime was running.
    pub fn restart_function(&self, i: usize) -> bool {
        let Some(pid) = self.functions.get(i).and_then(|f| f.pid()) else {
            return false;
        };
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// How many execution environments run.
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// The configuration the stack was started with.
    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// moto's endpoint (Secrets Manager, and S3 and SQS unless [`StackConfig::s3_endpoint`] and
    /// [`StackConfig::sqs`] name other servers), `http://127.0.0.1:PORT`.
    pub fn aws_endpoint(&self) -> &str {
        &self.moto_endpoint
    }

    /// The SQS endpoint: the AWS endpoint, or the SQS server of its own
    /// ([`StackConfig::sqs`]).
    pub fn sqs_endpoint(&self) -> &str {
        &self.sqs_endpoint
    }

    /// The OSS emulator's endpoint (path-style), `http://127.0.0.1:PORT`.
    pub fn oss_endpoint(&self) -> &str {
        &self.emulator_endpoint
    }

    /// The forwarder's FC invoke URL, `http://127.0.0.1:PORT/invoke`.
    pub fn forwarder_url(&self) -> &str {
        &self.forwarder_url
    }

    /// The task queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// The task queue's ARN.
    pub fn queue_arn(&self) -> &str {
        &self.queue_arn
    }

    /// The DLQ's URL.
    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }

    /// The DLQ's ARN.
    pub fn dlq_arn(&self) -> &str {
        &self.dlq_arn
    }

    /// The S3 → OSS direction's event queue URL, when the stack runs it.
    pub fn reverse_queue_url(&self) -> Option<&str> {
        self.reverse.as_ref().map(|r| r.queue_url.as_str())
    }

    /// The S3 → OSS direction's DLQ URL, when the stack runs it.
    pub fn reverse_dlq_url(&self) -> Option<&str> {
        self.reverse.as_ref().map(|r| r.dlq_url.as_str())
    }

    /// The S3 → OSS direction's event source mapping counters, when the stack runs it.
    pub fn reverse_esm_counts(&self) -> Option<EsmCounts> {
        self.reverse.as_ref().map(|r| r.stats.snapshot())
    }

    /// An S3 client for moto (path style).
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// An SQS client for moto.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// A signed OSS client for the emulator, with the stack's OSS keys.
    pub fn oss_client(&self) -> anyhow::Result<OssClient> {
        let config = OssConfig::new(&self.config.oss_region)
            .with_endpoint(Endpoint::Custom(self.emulator_endpoint.clone()))
            .with_addressing(AddressingStyle::PathStyle);
        Ok(OssClient::new(
            config,
            Credentials::new(
                &self.config.oss_access_key_id,
                &self.config.oss_access_key_secret,
            ),
        )?)
    }

    /// Points the emulator's trigger at the forwarder (`true`, as at start) or turns it off, so
    /// that objects can be written without events (through the admin API).
    pub async fn set_trigger_enabled(&self, enabled: bool) -> anyhow::Result<()> {
        let targets = if enabled {
            serde_json::json!([{ "url": self.forwarder_url }])
        } else {
            serde_json::json!([])
        };
        let response = reqwest::Client::new()
            .put(format!(
                "{}/_emulator/notifications",
                self.emulator_endpoint
            ))
            .body(targets.to_string())
            .send()
            .await
            .context("PUT /_emulator/notifications")?;
        if !response.status().is_success() {
            bail!(
                "PUT /_emulator/notifications answered {}",
                response.status()
            );
        }
        Ok(())
    }

    /// The event source mapping's counters so far.
    pub fn esm_counts(&self) -> EsmCounts {
        self.stats.snapshot()
    }

    /// Replaces the emulator's fault rules (JSON objects, as `--fault` takes them).
    pub async fn set_emulator_faults(&self, rules: &serde_json::Value) -> anyhow::Result<()> {
        let response = reqwest::Client::new()
            .put(format!("{}/_emulator/faults", self.emulator_endpoint))
            .body(rules.to_string())
            .send()
            .await
            .context("PUT /_emulator/faults")?;
        if !response.status().is_success() {
            bail!("PUT /_emulator/faults answered {}", response.status());
        }
        Ok(())
    }

    /// The emulator's statistics (`GET /_emulator/stats`).
    pub async fn emulator_stats(&self) -> anyhow::Result<serde_json::Value> {
        let text = reqwest::get(format!("{}/_emulator/stats", self.emulator_endpoint))
            .await
            .context("GET /_emulator/stats")?
            .text()
            .await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// How many multipart uploads are in progress in the emulator's `bucket`.
    pub async fn emulator_pending_uploads(&self, bucket: &str) -> anyhow::Result<u64> {
        let text = reqwest::get(format!(
            "{}/_emulator/uploads/{bucket}",
            self.emulator_endpoint
        ))
        .await
        .context("GET /_emulator/uploads")?
        .error_for_status()?
        .text()
        .await?;
        let answer: serde_json::Value = serde_json::from_str(&text)?;
        answer["pending"]
            .as_u64()
            .with_context(|| format!("GET /_emulator/uploads answered {text}"))
    }

    /// Messages of the queue at `url` that are visible, in flight and delayed (SQS's
    /// approximate counts), summed.
    pub async fn queue_total(&self, url: &str) -> anyhow::Result<u64> {
        let (visible, in_flight, delayed) = transfer::sqs::queue_depth(&self.sqs, url)
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(visible + in_flight + delayed)
    }

    /// `(visible, in flight)` messages of the queue at `url` (SQS's approximate counts).
    pub async fn queue_depth(&self, url: &str) -> anyhow::Result<(u64, u64)> {
        let (visible, in_flight, _) = transfer::sqs::queue_depth(&self.sqs, url)
            .await
            .map_err(anyhow::Error::msg)?;
        Ok((visible, in_flight))
    }

    /// The log files of the replicators' execution environments (both directions).
    pub fn function_logs(&self) -> Vec<PathBuf> {
        let reverse = self.reverse.iter().flat_map(|r| r.functions.iter());
        self.functions
            .iter()
            .chain(reverse)
            .map(|f| f.spec().log.clone())
            .collect()
    }

    /// The directory with every process's log.
    pub fn run_dir(&self) -> &Path {
        &self.config.run_dir
    }

    /// The last lines of every log, for test failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut logs = vec![
            self.moto.log_path().to_owned(),
            self.emulator.log_path().to_owned(),
            self.forwarder.log_path().to_owned(),
        ];
        if let Some(SqsServerHandle::Moto(moto)) = &self.sqs_server {
            logs.push(moto.log_path().to_owned());
        }
        logs.extend(self.function_logs());
        logs.iter()
            .map(|p| testkit::process::log_tail(p, lines))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let reverse = self.reverse.iter().flat_map(|r| r.pollers.iter());
        for poller in self.pollers.iter().chain(reverse) {
            poller.abort();
        }
    }
}

/// One event source mapping poller per execution environment, on `esm`'s queue.
fn spawn_pollers(
    sqs: &aws_sdk_sqs::Client,
    esm: &EsmSettings,
    functions: &[Arc<FunctionInstance>],
    stats: &Arc<EsmStats>,
    stopped: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    functions
        .iter()
        .map(|f| {
            tokio::spawn(run_poller(
                sqs.clone(),
                esm.clone(),
                f.clone(),
                stats.clone(),
                stopped.clone(),
            ))
        })
        .collect()
}

/// Waits for each poller to finish its invocation (3 s at most), then stops it.
async fn stop_pollers(pollers: Vec<tokio::task::JoinHandle<()>>) {
    for poller in pollers {
        let abort = poller.abort_handle();
        if tokio::time::timeout(Duration::from_secs(3), poller)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Starts the S3 → OSS direction: its queues, the destination bucket's notification
/// configuration (ObjectCreated and ObjectRemoved events to the queue, as the deployment
/// configures them), its replicator environments and their pollers.
async fn start_reverse(
    config: &StackConfig,
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    forward_esm: &EsmSettings,
    endpoints: Endpoints<'_>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<Reverse> {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};

    let (dlq_url, dlq_arn) = create_queue(sqs, &config.reverse_dlq_name, &[]).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": config.max_receive_count,
    });
    let (queue_url, queue_arn) = create_queue(
        sqs,
        &config.reverse_queue_name,
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                config.visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await?;
    let notifications = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("oss2s3-s3-to-oss")
                .queue_arn(&queue_arn)
                .events(Event::from("s3:ObjectCreated:*"))
                .events(Event::from("s3:ObjectRemoved:*"))
                .build()
                .context("the queue configuration")?,
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(&config.dst_bucket)
        .notification_configuration(notifications)
        .send()
        .await
        .context("configure the destination bucket's event notifications")?;
    let endpoints = Endpoints {
        queue_url: &queue_url,
        dlq_url: &dlq_url,
        ..endpoints
    };
    let launches = (0..config.function_instances.max(1))
        .map(|i| FunctionInstance::start(function_spec(config, Leg::Reverse, i, &endpoints)));
    let mut functions = Vec::new();
    for instance in futures::future::join_all(launches).await {
        functions.push(Arc::new(instance?));
    }
    let stats = Arc::new(EsmStats::default());
    let esm = EsmSettings {
        queue_url: queue_url.clone(),
        queue_arn,
        ..forward_esm.clone()
    };
    let pollers = spawn_pollers(sqs, &esm, &functions, &stats, stopped);
    Ok(Reverse {
        queue_url,
        dlq_url,
        stats,
        pollers,
        functions,
    })
}

/// Starts `moto_server` on a free port (retrying on another port if that one was taken) and
/// waits until it answers.
async fn start_moto(config: &StackConfig, log: &str) -> anyhow::Result<(ManagedProcess, String)> {
    let moto = config.python.with_file_name("moto_server");
    let log = config.run_dir.join(log);
    let http = reqwest::Client::new();
    let mut last_error = None;
    for _ in 0..3 {
        let port = testkit::free_port();
        let mut command = Command::new(&moto);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let process = ManagedProcess::spawn("moto", command, &log)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while started.elapsed() < Duration::from_mins(1) {
            if process.try_wait().is_some() {
                break;
            }
            let answer = http
                .get(format!("{endpoint}/moto-api/"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok() {
                return Ok((process, endpoint));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last_error = Some(process.log_tail(20));
    }
    bail!(
        "moto_server ({}) did not start\n{}",
        moto.display(),
        last_error.unwrap_or_default()
    )
}

/// Creates a queue and returns its URL and ARN.
async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> anyhow::Result<(String, String)> {
    let mut request = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        request = request.attributes(k.clone(), v);
    }
    let url = request
        .send()
        .await
        .with_context(|| format!("create queue {name}"))?
        .queue_url
        .context("CreateQueue returned no URL")?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("GetQueueAttributes QueueArn")?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("queue without an ARN")?;
    Ok((url, arn))
}

/// Starts the forwarder as FC would (port from `FC_CUSTOM_LISTEN_PORT`, here 0 = any free one).
fn start_forwarder(
    config: &StackConfig,
    moto_endpoint: &str,
    queue_url: &str,
) -> anyhow::Result<(ManagedProcess, String)> {
    let mut command = Command::new(&config.binaries.forwarder);
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
        .env("FC_CUSTOM_LISTEN_PORT", "0")
        .env("SQS_QUEUE_URL", queue_url)
        .env("AWS_REGION", &config.aws_region)
        .env("AWS_ACCESS_KEY_ID", &config.aws_access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &config.aws_secret_access_key)
        .env("AWS_ENDPOINT_URL_SQS", moto_endpoint)
        .envs(config.forwarder_env.iter().map(|(k, v)| (k, v)));
    let (process, ready) = ManagedProcess::spawn_until(
        "oss-forwarder",
        command,
        &config.run_dir.join("oss-forwarder.log"),
        ReadyLine {
            prefix: "oss-forwarder listening on",
            timeout: Duration::from_mins(1),
        },
    )?;
    let address = ready.rest;
    let port = address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .with_context(|| format!("forwarder announced {address:?}"))?;
    Ok((process, format!("http://127.0.0.1:{port}/invoke")))
}

/// Starts the OSS emulator with its trigger pointed at the forwarder.
fn start_emulator(
    config: &StackConfig,
    forwarder_url: &str,
) -> anyhow::Result<(ManagedProcess, String)> {
    let mut command = Command::new(&config.binaries.oss_emulator);
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(["--access-key", &config.oss_access_key_id])
        .args(["--secret-key", &config.oss_access_key_secret])
        .args(["--bucket", &config.oss_bucket])
        .args(["--region", &config.oss_region])
        .args(["--notify", forwarder_url])
        .env("RUST_LOG", "warn");
    for fault in &config.emulator_faults {
        command.args(["--fault", fault]);
    }
    let (process, ready) = ManagedProcess::spawn_until(
        "oss-emulator",
        command,
        &config.run_dir.join("oss-emulator.log"),
        ReadyLine {
            prefix: "oss-emulator listening on",
            timeout: Duration::from_mins(1),
        },
    )?;
    Ok((process, ready.rest))
}

/// Where the replicator's environment points.
#[derive(Clone, Copy)]
struct Endpoints<'a> {
    moto: &'a str,
    /// SQS: moto, or a moto server of its own.
    sqs: &'a str,
    /// S3: moto, or the fault proxy in front of it.
    s3: &'a str,
    emulator: &'a str,
    queue_url: &'a str,
    dlq_url: &'a str,
}

/// The replicator's environment `i` of `leg`, configured as the SAM template does, against the
/// stack.
fn function_spec(
    config: &StackConfig,
    leg: Leg,
    i: usize,
    endpoints: &Endpoints<'_>,
) -> FunctionSpec {
    // Stop starting work a little before the deadline, in proportion to short test timeouts.
    let margin = (config.function_timeout.as_secs() / 4).clamp(1, 30);
    let timeout = config.function_timeout.as_secs().to_string();
    let receives = config.max_receive_count.to_string();
    let mut env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", config.aws_access_key_id.as_str()),
        (
            "AWS_SECRET_ACCESS_KEY",
            config.aws_secret_access_key.as_str(),
        ),
        ("AWS_ENDPOINT_URL", endpoints.moto),
        ("AWS_ENDPOINT_URL_S3", endpoints.s3),
        ("AWS_ENDPOINT_URL_SQS", endpoints.sqs),
        ("OSS_REGION", config.oss_region.as_str()),
        ("OSS_ENDPOINT", endpoints.emulator),
        ("OSS_BUCKET", config.oss_bucket.as_str()),
        ("OSS_SECRET_ID", config.secret_name.as_str()),
        ("DST_BUCKET", config.dst_bucket.as_str()),
        ("QUEUE_URL", endpoints.queue_url),
        ("DLQ_URL", endpoints.dlq_url),
        ("DEADLINE_MARGIN_SECONDS", &margin.to_string()),
        ("FUNCTION_TIMEOUT_SECONDS", &timeout),
        ("MAX_RECEIVE_COUNT", &receives),
        // moto's ListParts answer needs the replicator's compatibility switch.
        ("OSS2S3_S3_COMPAT", "moto"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut overrides = config.function_env.clone();
    let (name, log) = match leg {
        Leg::Forward => (
            config.function_name.clone(),
            config.run_dir.join(format!("replicator-{i}.log")),
        ),
        Leg::Reverse => {
            // The same buckets the other way round: S3's destination bucket is the source.
            env.retain(|(k, _)| k != "OSS_BUCKET" && k != "DST_BUCKET");
            for (k, v) in [
                ("DIRECTION", "s3-to-oss"),
                ("SRC_BUCKET", config.dst_bucket.as_str()),
                ("DST_BUCKET", config.oss_bucket.as_str()),
            ] {
                env.push((k.to_owned(), v.to_owned()));
            }
            overrides.extend(config.reverse_function_env.iter().cloned());
            (
                format!("{}-s3-to-oss", config.function_name),
                config.run_dir.join(format!("replicator-s3-to-oss-{i}.log")),
            )
        }
    };
    for (k, v) in overrides {
        env.retain(|(existing, _)| *existing != k);
        env.push((k, v));
    }
    FunctionSpec {
        name,
        binary: config.binaries.replicator.clone(),
        env,
        memory_mb: config.function_memory_mb,
        timeout: config.function_timeout,
        region: config.aws_region.clone(),
        account: config.aws_account.clone(),
        log,
        wrapper: Vec::new(),
        grace: testkit::process::DEFAULT_GRACE,
    }
}
