//! The stores a job talks to, configured as the replicator's are.
//!
//! - OSS: `OSS_REGION`, `OSS_ENDPOINT`, `OSS_PATH_STYLE`, `OSS_CNAME`, `OSS_ALLOW_HTTP`; keys
//!   from `OSS_ACCESS_KEY_ID` / `OSS_ACCESS_KEY_SECRET` (and `OSS_SESSION_TOKEN` for STS keys),
//!   or from the Secrets Manager secret `OSS_SECRET_ID` in the replicator's format.
//! - S3: the standard AWS chain (profile, environment, SSO, instance role) and
//!   `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` (which also switch on path-style addressing).
//!   `OSS2S3_S3_COMPAT=moto` works around moto's quirks (tests and local stacks only).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use transfer::env::Env;
use transfer::oss::{Credentials, OssClient, StaticCredentials};
use transfer::s3::{S3Compat, S3Store, s3_config};
use transfer::secrets::SecretsManagerCredentials;

/// The AWS configuration: every call bounded, S3's long enough for 5 GiB parts.
pub async fn aws_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_mins(5))
        .operation_timeout(Duration::from_mins(10))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}

/// S3 from the AWS configuration.
pub fn s3_store(aws: &aws_config::SdkConfig) -> anyhow::Result<S3Store> {
    let env = Env::process();
    let mut config = s3_config(aws);
    if env.optional("AWS_ENDPOINT_URL_S3").is_some() || env.optional("AWS_ENDPOINT_URL").is_some() {
        config = config.to_builder().force_path_style(true).build();
    }
    let compat = match env.optional("OSS2S3_S3_COMPAT") {
        None => S3Compat::Aws,
        Some(name) => S3Compat::parse(&name)
            .with_context(|| format!("OSS2S3_S3_COMPAT: {name:?} is not aws or moto"))?,
    };
    Ok(S3Store::new(aws_sdk_s3::Client::from_conf(config)).with_compat(compat))
}

/// OSS from the environment.
pub fn oss_client(aws: &aws_config::SdkConfig) -> anyhow::Result<OssClient> {
    let env = Env::process();
    let config = transfer::env::oss_config(&env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let keys = (
        env.optional("OSS_ACCESS_KEY_ID"),
        env.optional("OSS_ACCESS_KEY_SECRET"),
    );
    let client = match keys {
        (Some(id), Some(secret)) => {
            let mut credentials = Credentials::new(id, secret);
            credentials.security_token = env.optional("OSS_SESSION_TOKEN");
            OssClient::with_provider(config, Arc::new(StaticCredentials::new(credentials)))
        }
        (None, None) => {
            let secret_id = env.optional("OSS_SECRET_ID").context(
                "OSS credentials: set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET, or OSS_SECRET_ID \
                 (a Secrets Manager secret in the replicator's format)",
            )?;
            let provider =
                SecretsManagerCredentials::new(aws_sdk_secretsmanager::Client::new(aws), secret_id);
            OssClient::with_provider(config, Arc::new(provider))
        }
        _ => anyhow::bail!("OSS credentials: set both OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET"),
    };
    client.context("building the OSS client")
}
