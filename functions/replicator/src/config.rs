//! The replicator's configuration, read once from the environment at start-up. Every variable
//! and its default is listed in `docs/replicator.md`.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use transfer::batch::BatchSettings;
use transfer::metrics::DEFAULT_NAMESPACE;
use transfer::oss::{AddressingStyle, Endpoint, OssConfig};
use transfer::replicate::{CopySettings, RestoreSettings};
use transfer::store::{Encryption, RestoreTier};
use transfer::trigger::EventFilter;

const MIB: u64 = 1024 * 1024;

/// S3 storage classes accepted in `DST_STORAGE_CLASS`.
const S3_STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
];

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub(crate) struct ConfigError {
    var: &'static str,
    reason: String,
}

fn error(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// Log settings (Lambda's advanced logging controls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogConfig {
    /// A tracing filter directive: `RUST_LOG` verbatim, else from `AWS_LAMBDA_LOG_LEVEL`.
    pub(crate) filter: String,
    /// JSON lines (`AWS_LAMBDA_LOG_FORMAT=JSON`) instead of text.
    pub(crate) json: bool,
}

/// Everything the replicator reads from its environment.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The OSS client's region, endpoint and addressing style.
    pub(crate) oss: OssConfig,
    /// The Secrets Manager secret with the OSS credentials (`OSS_SECRET_ID`).
    pub(crate) oss_secret_id: String,
    /// The copy engine's settings.
    pub(crate) copy: CopySettings,
    /// Batch behaviour.
    pub(crate) batch: BatchSettings,
    /// Where continuations go (`QUEUE_URL`).
    pub(crate) queue_url: String,
    /// Where permanent failures go (`DLQ_URL`); the redrive policy's job when unset.
    pub(crate) dlq_url: Option<String>,
    /// The CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`).
    pub(crate) metrics_namespace: String,
    /// The `FunctionName` metric dimension (`AWS_LAMBDA_FUNCTION_NAME`).
    pub(crate) function_name: String,
    /// Path-style S3 addressing: on when an S3 endpoint override (`AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`) is set, as local S3 servers need.
    pub(crate) s3_path_style: bool,
    /// Logging.
    pub(crate) log: LogConfig,
}

/// Reads variables through a lookup; unset and empty mean the same.
struct Env<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn optional(&self, var: &'static str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.optional(var)
            .ok_or_else(|| error(var, "is required but not set"))
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.optional(var) else {
            return Ok(default);
        };
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(error(
                var,
                format!("{value:?} is not a boolean (true/false)"),
            )),
        }
    }

    fn number<T>(
        &self,
        var: &'static str,
        range: RangeInclusive<T>,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(value) = self.optional(var) else {
            return Ok(default);
        };
        value
            .parse::<T>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                error(
                    var,
                    format!(
                        "{value:?} is not an integer from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    }

    fn url(&self, var: &'static str, value: String) -> Result<String, ConfigError> {
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(value)
        } else {
            Err(error(var, format!("{value:?} is not an http(s) URL")))
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a variable's value, if set).
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env { lookup };
        let oss = oss_config(&env)?;
        let oss_secret_id = env.required("OSS_SECRET_ID")?;
        let copy = copy_settings(&env)?;
        let queue_url = env.url("QUEUE_URL", env.required("QUEUE_URL")?)?;
        let dlq_url = env
            .optional("DLQ_URL")
            .map(|url| env.url("DLQ_URL", url))
            .transpose()?;
        let mut batch = BatchSettings::new(oss.region.clone());
        batch.legacy_bucket = env.optional("OSS_BUCKET");
        batch.message_concurrency = env.number(
            "MESSAGE_CONCURRENCY",
            1..=100,
            BatchSettings::DEFAULT_MESSAGE_CONCURRENCY,
        )?;
        batch.start_margin = copy.deadline_margin;
        batch.event_filter = EventFilter::from_settings(None, copy.replicate_deletes, None, None)
            .map_err(|e| error("REPLICATE_DELETES", e.to_string()))?;
        Ok(Self {
            oss,
            oss_secret_id,
            copy,
            batch,
            queue_url,
            dlq_url,
            metrics_namespace: env
                .optional("METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            function_name: env
                .optional("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "replicator".to_owned()),
            s3_path_style: env.optional("AWS_ENDPOINT_URL_S3").is_some()
                || env.optional("AWS_ENDPOINT_URL").is_some(),
            log: log_config(&env)?,
        })
    }
}

/// `OSS_REGION`, `OSS_ENDPOINT`, `OSS_PATH_STYLE`, `OSS_CNAME`.
fn oss_config(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<OssConfig, ConfigError> {
    let region = env.required("OSS_REGION")?;
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(error(
            "OSS_REGION",
            format!("{region:?} is not a region ID such as cn-hangzhou"),
        ));
    }
    let endpoint = match env.optional("OSS_ENDPOINT").as_deref() {
        None => Endpoint::Public,
        Some("accelerate") => Endpoint::Accelerate,
        Some("internal") => Endpoint::Internal,
        Some(url) => Endpoint::Custom(url.to_owned()),
    };
    let host = match &endpoint {
        Endpoint::Custom(url) => endpoint_host(url),
        _ => "",
    };
    let is_ip = host.parse::<IpAddr>().is_ok();
    let path_style = env.flag("OSS_PATH_STYLE", is_ip || host == "localhost")?;
    if is_ip && !path_style {
        return Err(error(
            "OSS_PATH_STYLE",
            "must be true for an endpoint that is an IP address (no bucket subdomain possible)",
        ));
    }
    let cname = env.flag("OSS_CNAME", false)?;
    let addressing = match (path_style, cname) {
        (true, true) => return Err(error("OSS_CNAME", "cannot be combined with OSS_PATH_STYLE")),
        (true, false) => AddressingStyle::PathStyle,
        (false, true) => AddressingStyle::Cname,
        (false, false) => AddressingStyle::VirtualHosted,
    };
    let config = OssConfig::new(region)
        .with_endpoint(endpoint)
        .with_addressing(addressing);
    config
        .endpoint_url()
        .map_err(|e| error("OSS_ENDPOINT", e.to_string()))?;
    Ok(config)
}

/// The host of `url` (with or without scheme), without brackets or port.
fn endpoint_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

/// The copy engine's settings: destination, keys, sizes, restore, deletes, deadline.
fn copy_settings(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<CopySettings, ConfigError> {
    let mut copy = CopySettings::new(env.required("DST_BUCKET")?);
    copy.src_prefix = env.optional("SRC_PREFIX").unwrap_or_default();
    copy.dst_prefix = env.optional("DST_PREFIX").unwrap_or_default();
    copy.storage_class = env
        .optional("DST_STORAGE_CLASS")
        .map(|class| {
            let upper = class.to_ascii_uppercase();
            if S3_STORAGE_CLASSES.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(error(
                    "DST_STORAGE_CLASS",
                    format!("{class:?} is not one of {}", S3_STORAGE_CLASSES.join(", ")),
                ))
            }
        })
        .transpose()?;
    copy.sse = encryption(env)?;
    copy.part_size = env.number(
        "PART_SIZE_MIB",
        5..=5120,
        CopySettings::DEFAULT_PART_SIZE / MIB,
    )? * MIB;
    copy.multipart_threshold = env.number(
        "MULTIPART_THRESHOLD_MIB",
        1..=5120,
        CopySettings::DEFAULT_MULTIPART_THRESHOLD / MIB,
    )? * MIB;
    copy.part_concurrency = env.number(
        "PART_CONCURRENCY",
        1..=64,
        CopySettings::DEFAULT_PART_CONCURRENCY,
    )?;
    copy.replicate_deletes = env.flag("REPLICATE_DELETES", false)?;
    copy.deadline_margin = Duration::from_secs(env.number(
        "DEADLINE_MARGIN_SECONDS",
        1..=600,
        CopySettings::DEFAULT_DEADLINE_MARGIN.as_secs(),
    )?);
    copy.restore = restore_settings(env)?;
    Ok(copy)
}

/// `DST_SSE` and `DST_SSE_KMS_KEY_ID`.
fn encryption(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<Encryption>, ConfigError> {
    let key_id = env.optional("DST_SSE_KMS_KEY_ID");
    match env.optional("DST_SSE").as_deref() {
        None if key_id.is_some() => Err(error(
            "DST_SSE_KMS_KEY_ID",
            "is set but DST_SSE is not aws:kms",
        )),
        None => Ok(None),
        Some("AES256") if key_id.is_some() => Err(error(
            "DST_SSE_KMS_KEY_ID",
            "is set but DST_SSE is AES256, not aws:kms",
        )),
        Some("AES256") => Ok(Some(Encryption::Aes256)),
        Some("aws:kms") => Ok(Some(Encryption::Kms { key_id })),
        Some(other) => Err(error(
            "DST_SSE",
            format!("{other:?} is not AES256 or aws:kms"),
        )),
    }
}

/// `RESTORE_ENABLED`, `RESTORE_DAYS`, `RESTORE_TIER`, `RESTORE_RETRY_DELAY_SECONDS`.
fn restore_settings(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<RestoreSettings>, ConfigError> {
    let defaults = RestoreSettings::default();
    let days = env.number("RESTORE_DAYS", 1..=365, defaults.days)?;
    let tier = match env
        .optional("RESTORE_TIER")
        .map(|t| t.to_ascii_lowercase())
        .as_deref()
    {
        None => defaults.tier,
        Some("expedited") => RestoreTier::Expedited,
        Some("standard") => RestoreTier::Standard,
        Some("bulk") => RestoreTier::Bulk,
        Some(other) => {
            return Err(error(
                "RESTORE_TIER",
                format!("{other:?} is not Expedited, Standard or Bulk"),
            ));
        }
    };
    let retry_after = Duration::from_secs(env.number(
        "RESTORE_RETRY_DELAY_SECONDS",
        1..=43_200,
        defaults.retry_after.as_secs(),
    )?);
    Ok(env
        .flag("RESTORE_ENABLED", true)?
        .then_some(RestoreSettings {
            days,
            tier,
            retry_after,
        }))
}

/// `RUST_LOG` verbatim, else `AWS_LAMBDA_LOG_LEVEL` for this code (the AWS SDK stays at warn);
/// `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines.
fn log_config(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<LogConfig, ConfigError> {
    let filter = match env.optional("RUST_LOG") {
        Some(directive) => directive,
        None => {
            let level = env
                .optional("AWS_LAMBDA_LOG_LEVEL")
                .unwrap_or_else(|| "INFO".to_owned())
                .to_ascii_lowercase();
            // Lambda's levels include FATAL, which tracing calls error.
            let level = match level.as_str() {
                "fatal" => "error",
                l @ ("trace" | "debug" | "info" | "warn" | "error") => l,
                _ => {
                    return Err(error(
                        "AWS_LAMBDA_LOG_LEVEL",
                        "must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL",
                    ));
                }
            };
            format!("warn,replicator={level},transfer={level}")
        }
    };
    let json = match env.optional("AWS_LAMBDA_LOG_FORMAT") {
        None => false,
        Some(format) if format.eq_ignore_ascii_case("json") => true,
        Some(format) if format.eq_ignore_ascii_case("text") => false,
        Some(_) => return Err(error("AWS_LAMBDA_LOG_FORMAT", "must be Text or JSON")),
    };
    Ok(LogConfig { filter, json })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const BASE: &[(&str, &str)] = &[
        ("OSS_REGION", "cn-hangzhou"),
        ("OSS_SECRET_ID", "oss2s3/oss"),
        ("DST_BUCKET", "dst"),
        ("QUEUE_URL", "https://sqs.example/123/q"),
    ];

    fn config(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = BASE
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in extra {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|name| map.get(name).cloned())
    }

    fn err(extra: &[(&str, &str)]) -> String {
        config(extra).expect_err("should be rejected").to_string()
    }

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.oss.region, "cn-hangzhou");
        assert_eq!(c.oss.endpoint, Endpoint::Public);
        assert_eq!(c.oss.addressing, AddressingStyle::VirtualHosted);
        assert_eq!(c.copy.dst_bucket, "dst");
        assert_eq!(c.copy.part_size, 16 * MIB);
        assert_eq!(c.copy.multipart_threshold, 16 * MIB);
        assert_eq!(c.copy.part_concurrency, 8);
        assert_eq!(c.copy.storage_class, None);
        assert_eq!(c.copy.sse, None);
        assert!(!c.copy.replicate_deletes);
        assert_eq!(c.copy.deadline_margin, Duration::from_secs(30));
        let restore = c.copy.restore.unwrap();
        assert_eq!((restore.days, restore.tier), (1, RestoreTier::Standard));
        assert_eq!(restore.retry_after, Duration::from_secs(300));
        assert_eq!(c.batch.message_concurrency, 4);
        assert_eq!(c.batch.legacy_bucket, None);
        assert_eq!(c.dlq_url, None);
        assert_eq!(c.metrics_namespace, "oss2s3");
        assert!(!c.s3_path_style);
        assert_eq!(
            c.log,
            LogConfig {
                filter: "warn,replicator=info,transfer=info".into(),
                json: false
            }
        );
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for var in ["OSS_REGION", "OSS_SECRET_ID", "DST_BUCKET", "QUEUE_URL"] {
            let message = err(&[(var, "")]);
            assert!(
                message.starts_with(var) && message.contains("not set"),
                "{message}"
            );
        }
    }

    #[test]
    fn every_setting_is_read() {
        let c = config(&[
            ("OSS_ENDPOINT", "http://127.0.0.1:9000"),
            ("OSS_BUCKET", "src"),
            ("SRC_PREFIX", "in/"),
            ("DST_PREFIX", "out/"),
            ("DST_STORAGE_CLASS", "standard_ia"),
            ("DST_SSE", "aws:kms"),
            ("DST_SSE_KMS_KEY_ID", "alias/k"),
            ("PART_SIZE_MIB", "8"),
            ("MULTIPART_THRESHOLD_MIB", "32"),
            ("PART_CONCURRENCY", "4"),
            ("MESSAGE_CONCURRENCY", "10"),
            ("REPLICATE_DELETES", "true"),
            ("DLQ_URL", "http://127.0.0.1:1/123/dlq"),
            ("RESTORE_DAYS", "3"),
            ("RESTORE_TIER", "Bulk"),
            ("RESTORE_RETRY_DELAY_SECONDS", "900"),
            ("DEADLINE_MARGIN_SECONDS", "45"),
            ("METRICS_NAMESPACE", "ns"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ])
        .unwrap();
        assert_eq!(
            c.oss.endpoint,
            Endpoint::Custom("http://127.0.0.1:9000".into())
        );
        assert_eq!(
            c.oss.addressing,
            AddressingStyle::PathStyle,
            "IP endpoints default to path style"
        );
        assert_eq!(c.batch.legacy_bucket.as_deref(), Some("src"));
        assert_eq!(
            (c.copy.src_prefix.as_str(), c.copy.dst_prefix.as_str()),
            ("in/", "out/")
        );
        assert_eq!(c.copy.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(
            c.copy.sse,
            Some(Encryption::Kms {
                key_id: Some("alias/k".into())
            })
        );
        assert_eq!(c.copy.part_size, 8 * MIB);
        assert_eq!(c.copy.multipart_threshold, 32 * MIB);
        assert_eq!(c.copy.part_concurrency, 4);
        assert_eq!(c.batch.message_concurrency, 10);
        assert!(c.copy.replicate_deletes);
        assert!(
            c.batch
                .event_filter
                .events()
                .iter()
                .any(|e| e.starts_with("ObjectRemoved"))
        );
        assert_eq!(c.dlq_url.as_deref(), Some("http://127.0.0.1:1/123/dlq"));
        let restore = c.copy.restore.unwrap();
        assert_eq!((restore.days, restore.tier), (3, RestoreTier::Bulk));
        assert_eq!(restore.retry_after, Duration::from_secs(900));
        assert_eq!(c.copy.deadline_margin, Duration::from_secs(45));
        assert_eq!(c.batch.start_margin, Duration::from_secs(45));
        assert_eq!(c.metrics_namespace, "ns");
        assert!(
            config(&[("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")])
                .unwrap()
                .s3_path_style
        );
        assert_eq!(
            c.log,
            LogConfig {
                filter: "warn,replicator=debug,transfer=debug".into(),
                json: true
            }
        );
    }

    #[test]
    fn restore_can_be_disabled() {
        assert!(
            config(&[("RESTORE_ENABLED", "false")])
                .unwrap()
                .copy
                .restore
                .is_none()
        );
    }

    #[test]
    fn endpoint_keywords_and_addressing() {
        let c = config(&[("OSS_ENDPOINT", "accelerate")]).unwrap();
        assert_eq!(c.oss.endpoint, Endpoint::Accelerate);
        let c = config(&[
            ("OSS_ENDPOINT", "https://files.example.com"),
            ("OSS_CNAME", "1"),
        ])
        .unwrap();
        assert_eq!(c.oss.addressing, AddressingStyle::Cname);
        let c = config(&[("OSS_ENDPOINT", "http://localhost:9000")]).unwrap();
        assert_eq!(c.oss.addressing, AddressingStyle::PathStyle);
        let message = err(&[
            ("OSS_ENDPOINT", "http://127.0.0.1:9000"),
            ("OSS_PATH_STYLE", "false"),
        ]);
        assert!(message.starts_with("OSS_PATH_STYLE"), "{message}");
        assert!(err(&[("OSS_PATH_STYLE", "maybe")]).starts_with("OSS_PATH_STYLE"));
        assert!(err(&[("OSS_ENDPOINT", "http://h/path")]).starts_with("OSS_ENDPOINT"));
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (var, value) in [
            ("OSS_REGION", "CN HANGZHOU"),
            ("DST_STORAGE_CLASS", "COLD"),
            ("DST_SSE", "aws:kms:dsse"),
            ("PART_SIZE_MIB", "4"),
            ("PART_SIZE_MIB", "lots"),
            ("MULTIPART_THRESHOLD_MIB", "0"),
            ("PART_CONCURRENCY", "0"),
            ("MESSAGE_CONCURRENCY", "101"),
            ("REPLICATE_DELETES", "sometimes"),
            ("QUEUE_URL", "sqs://q"),
            ("DLQ_URL", "q"),
            ("RESTORE_TIER", "Fast"),
            ("RESTORE_DAYS", "0"),
            ("DEADLINE_MARGIN_SECONDS", "0"),
            ("AWS_LAMBDA_LOG_FORMAT", "xml"),
            ("AWS_LAMBDA_LOG_LEVEL", "loud"),
        ] {
            let message = err(&[(var, value)]);
            assert!(message.starts_with(var), "{var}={value}: {message}");
        }
    }

    #[test]
    fn kms_key_requires_aws_kms() {
        assert!(err(&[("DST_SSE_KMS_KEY_ID", "k")]).starts_with("DST_SSE_KMS_KEY_ID"));
        assert!(
            err(&[("DST_SSE", "AES256"), ("DST_SSE_KMS_KEY_ID", "k")])
                .starts_with("DST_SSE_KMS_KEY_ID")
        );
        let c = config(&[("DST_SSE", "AES256")]).unwrap();
        assert_eq!(c.copy.sse, Some(Encryption::Aes256));
    }

    #[test]
    fn rust_log_overrides_the_lambda_level() {
        let c = config(&[("RUST_LOG", "debug"), ("AWS_LAMBDA_LOG_LEVEL", "ERROR")]).unwrap();
        assert_eq!(c.log.filter, "debug");
        let c = config(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).unwrap();
        assert_eq!(c.log.filter, "warn,replicator=error,transfer=error");
    }

    #[test]
    fn endpoint_hosts_are_extracted() {
        assert_eq!(endpoint_host("http://127.0.0.1:9000"), "127.0.0.1");
        assert_eq!(endpoint_host("http://[::1]:9000/"), "::1");
        assert_eq!(endpoint_host("localhost:9000"), "localhost");
        assert_eq!(
            endpoint_host("https://oss-cn-hangzhou.aliyuncs.com"),
            "oss-cn-hangzhou.aliyuncs.com"
        );
    }
}
