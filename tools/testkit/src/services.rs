//! The OSS emulator (in-process) and moto together: the setup most integration tests need, with
//! helpers that create a bucket, queue or secret of the test's own on the shared moto server and
//! read back what landed in S3.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use oss_emulator::{Emulator, EmulatorConfig};
use transfer::oss::{AddressingStyle, Credentials, Endpoint, OssClient, OssConfig, RetryPolicy};
use transfer::s3::{S3Compat, S3Store};

use crate::moto::MotoServer;

/// The region the emulator signs for.
pub const OSS_REGION: &str = "cn-hangzhou";

/// An emulator and the shared moto server, with SDK clients for moto.
#[derive(Debug)]
pub struct Services {
    /// The OSS emulator, in this process.
    pub emulator: Emulator,
    /// moto, shared by the tests of this test binary that run at once.
    pub moto: Arc<MotoServer>,
    /// The AWS SDK configuration for moto.
    pub sdk: aws_config::SdkConfig,
    /// S3 on moto (path style, as `S3Store` configures it).
    pub s3: aws_sdk_s3::Client,
    /// SQS on moto.
    pub sqs: aws_sdk_sqs::Client,
    /// Secrets Manager on moto.
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Services {
    /// Starts an emulator from `config` (its region is set to [`OSS_REGION`]) and joins the
    /// shared moto server (starting it if needed).
    pub async fn start(config: EmulatorConfig) -> Self {
        let emulator = Emulator::start(config.region(OSS_REGION))
            .await
            .expect("the OSS emulator starts");
        let moto = tokio::task::spawn_blocking(MotoServer::shared)
            .await
            .expect("moto starts");
        let sdk = moto.sdk_config().await;
        Self {
            emulator,
            s3: S3Store::from_sdk_config(&sdk).client().clone(),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
            moto,
        }
    }

    /// `name` made unique on the shared moto server: `<name>-<pid>-<n>`.
    pub fn unique(name: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The OSS client settings for the emulator: path style, quick retries.
    pub fn oss_config(&self) -> OssConfig {
        oss_config(&self.emulator)
    }

    /// An OSS client on the emulator with `credentials`.
    pub fn oss_client(&self, credentials: Credentials) -> OssClient {
        OssClient::new(self.oss_config(), credentials).expect("an OSS client")
    }

    /// An `S3Store` on moto, with moto's workarounds on.
    pub fn s3_store(&self) -> S3Store {
        S3Store::from_sdk_config(&self.sdk).with_compat(S3Compat::Moto)
    }

    /// Creates a bucket named after `name` (made unique) on moto; returns its name.
    pub async fn create_bucket(&self, name: &str) -> String {
        let bucket = Self::unique(name);
        self.s3
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("the bucket is created");
        bucket
    }

    /// Creates a queue named after `name` (made unique) with `attributes`; returns its URL and
    /// ARN.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, String)],
    ) -> (String, String) {
        let name = Self::unique(name);
        let mut call = self.sqs.create_queue().queue_name(&name);
        for (attribute, value) in attributes {
            call = call.attributes(attribute.clone(), value);
        }
        let url = call
            .send()
            .await
            .expect("the queue is created")
            .queue_url()
            .expect("a queue URL")
            .to_owned();
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's attributes")
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("a queue ARN");
        (url, arn)
    }

    /// Creates a secret named after `name` (made unique) holding `credentials` in the format the
    /// replicator reads; returns its name.
    pub async fn create_secret(&self, name: &str, credentials: &Credentials) -> String {
        let id = Self::unique(name);
        self.secrets
            .create_secret()
            .name(&id)
            .secret_string(credentials_json(credentials))
            .send()
            .await
            .expect("the secret is created");
        id
    }

    /// The bytes of `bucket/key` in S3, or `None` when it does not exist.
    pub async fn s3_bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let output = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(output.body.collect().await.ok()?.into_bytes().to_vec())
    }

    /// Every key of `bucket` in S3 (all pages), in listing order.
    pub async fn s3_keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token)
                .send()
                .await
                .expect("the bucket lists");
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return keys,
            }
        }
    }

    /// How many multipart uploads `bucket` has in progress.
    pub async fn s3_pending_uploads(&self, bucket: &str) -> usize {
        self.s3
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .expect("the uploads list")
            .uploads()
            .len()
    }
}

/// The OSS client settings for `emulator`: path style, quick retries, short timeouts.
pub fn oss_config(emulator: &Emulator) -> OssConfig {
    OssConfig::new(OSS_REGION)
        .with_endpoint(Endpoint::Custom(emulator.endpoint()))
        .with_addressing(AddressingStyle::PathStyle)
        .with_retry(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        })
        .with_request_timeout(Duration::from_secs(20))
        .with_read_timeout(Duration::from_secs(5))
}

/// `credentials` in the JSON format oss2s3 keeps in secrets.
pub fn credentials_json(credentials: &Credentials) -> String {
    let mut value = serde_json::json!({
        "access_key_id": credentials.access_key_id,
        "secret_access_key": credentials.access_key_secret,
    });
    if let Some(token) = &credentials.security_token {
        value["security_token"] = token.clone().into();
    }
    value.to_string()
}
