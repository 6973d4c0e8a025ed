//! The `replicator` binary as Lambda runs it, for the benchmark: a testkit execution environment
//! (the Runtime API and the process) with a testkit AWS stub as its Secrets Manager (the
//! emulator's keys) and SQS (which must stay unused: a message would be a continuation or a dead
//! letter, neither of which a benchmark copy may need).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure};
use bytes::Bytes;
use testkit::aws_stub::AwsStub;
use testkit::lambda::{FunctionInstance, FunctionSpec};
use testkit::runtime_api::InvocationOutcome;
use testkit::sqs_event;

/// The ARN of the queue the benchmark's events claim to come from.
const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:bench-tasks";

/// What the replicator process is pointed at.
#[derive(Debug, Clone)]
pub(crate) struct ReplicatorEnv {
    /// The emulator's URL.
    pub(crate) oss_endpoint: String,
    /// The S3 server's URL.
    pub(crate) s3_endpoint: String,
    /// The destination bucket.
    pub(crate) dst_bucket: String,
    /// S3 keys.
    pub(crate) s3_access_key: String,
    /// S3 secret.
    pub(crate) s3_secret_key: String,
    /// The S3 source bucket, for the S3 → OSS direction (`DIRECTION=s3-to-oss`, copying into
    /// the OSS bucket `dst_bucket`); `None` copies from the emulator's bucket into S3.
    pub(crate) s3_source: Option<String>,
    /// Extra variables (`PART_SIZE_MIB`, …).
    pub(crate) extra: Vec<(String, String)>,
    /// A program (with arguments) to run the binary under, e.g. valgrind; empty for none.
    pub(crate) wrapper: Vec<String>,
}

/// The `replicator` binary in its execution environment, with its AWS stub.
pub(crate) struct Function {
    instance: FunctionInstance,
    aws: AwsStub,
}

impl Function {
    /// Starts `binary` (with `env` and nothing else from this process's environment but `PATH`)
    /// and waits until it polls for its first event. Each invocation may take up to `timeout`.
    pub(crate) async fn start(
        binary: &Path,
        env: &ReplicatorEnv,
        oss_keys: (&str, &str),
        log: &Path,
        home: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let secret = serde_json::json!({
            "access_key_id": oss_keys.0,
            "secret_access_key": oss_keys.1,
        });
        let aws = AwsStub::start(secret.to_string()).await?;
        let mut vars: Vec<(String, String)> = [
            ("HOME", home.display().to_string()),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN".to_owned()),
            ("AWS_ACCESS_KEY_ID", env.s3_access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", env.s3_secret_key.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_ENDPOINT_URL_S3", env.s3_endpoint.clone()),
            ("AWS_ENDPOINT_URL_SQS", aws.url()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws.url()),
            ("OSS_REGION", "cn-hangzhou".to_owned()),
            ("OSS_ENDPOINT", env.oss_endpoint.clone()),
            ("OSS_SECRET_ID", "bench-oss-keys".to_owned()),
            ("DST_BUCKET", env.dst_bucket.clone()),
            ("QUEUE_URL", aws.queue_url("000000000000", "bench-tasks")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let source = match &env.s3_source {
            Some(bucket) => vec![
                ("DIRECTION", "s3-to-oss".to_owned()),
                ("SRC_BUCKET", bucket.clone()),
            ],
            None => vec![("OSS_BUCKET", crate::env::SRC_BUCKET.to_owned())],
        };
        vars.extend(source.into_iter().map(|(k, v)| (k.to_owned(), v)));
        vars.extend(env.extra.iter().cloned());
        let spec = FunctionSpec {
            name: "replicator".to_owned(),
            binary: binary.to_owned(),
            env: vars,
            memory_mb: 1769,
            timeout,
            region: "us-east-1".to_owned(),
            account: "000000000000".to_owned(),
            log: log.to_owned(),
            wrapper: env.wrapper.clone(),
            // A profiler writes its output when the process ends.
            grace: Duration::from_secs(30),
        };
        let instance = FunctionInstance::start(spec).await?;
        Ok(Self { instance, aws })
    }

    /// The time from exec to the first `invocation/next`.
    pub(crate) fn startup(&self) -> anyhow::Result<Duration> {
        self.instance
            .startup()
            .ok_or_else(|| anyhow::anyhow!("the replicator has not polled"))
    }

    /// The replicator's CPU time and peak RSS (bytes) so far.
    pub(crate) fn usage(&self) -> anyhow::Result<(Duration, u64)> {
        self.instance.usage()
    }

    /// Invokes the function with one SQS event holding `bodies`; fails unless every message
    /// succeeded. Returns how many messages the function sent to SQS (continuations).
    pub(crate) async fn invoke_allowing_continuations(
        &self,
        bodies: &[String],
    ) -> anyhow::Result<usize> {
        self.invoke_received(bodies, 1).await
    }

    /// [`Self::invoke_allowing_continuations`], with every message's
    /// `ApproximateReceiveCount` set to `receives` (2 or more: a redelivery).
    async fn invoke_received(&self, bodies: &[String], receives: u32) -> anyhow::Result<usize> {
        let mut event = sqs_event::from_bodies(bodies, QUEUE_ARN);
        for record in &mut event.records {
            record
                .attributes
                .insert("ApproximateReceiveCount".to_owned(), receives.to_string());
        }
        let ids: Vec<String> = event
            .records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .collect();
        let payload = Bytes::from(serde_json::to_vec(&event)?);
        let body = match self.instance.invoke(payload).await {
            InvocationOutcome::Response(body) => body,
            other => bail!("the invocation failed: {other:?}; see the replicator's log"),
        };
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let failed = sqs_event::failed_items(&body, &id_refs).map_err(anyhow::Error::msg)?;
        ensure!(
            failed.is_empty(),
            "the replicator reported {} of {} messages failed; see its log",
            failed.len(),
            ids.len()
        );
        Ok(self.aws.messages().len())
    }

    /// Invokes the function with one SQS event holding `bodies`; fails unless every message
    /// succeeded without touching SQS.
    pub(crate) async fn replicate(&self, bodies: &[String]) -> anyhow::Result<()> {
        self.replicate_received(bodies, 1).await
    }

    /// [`Self::replicate`], as the second delivery of every message.
    pub(crate) async fn replicate_again(&self, bodies: &[String]) -> anyhow::Result<()> {
        self.replicate_received(bodies, 2).await
    }

    async fn replicate_received(&self, bodies: &[String], receives: u32) -> anyhow::Result<()> {
        self.invoke_received(bodies, receives).await?;
        ensure!(
            self.aws.messages().is_empty() && self.aws.refused().is_empty(),
            "the replicator called SQS (a continuation or a dead letter): {:?} {:?}",
            self.aws.messages(),
            self.aws.refused()
        );
        Ok(())
    }
}
