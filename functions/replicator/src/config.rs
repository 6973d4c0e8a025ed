//! The replicator's configuration, read once from the environment at start-up. Every variable
//! and its default is listed in `docs/replicator.md`.

use std::time::Duration;

use transfer::env::{ConfigError, Env, oss_config};
use transfer::logging::{LogConfig, LogVars};
use transfer::oss::OssConfig;
use transfer::replicate::{CopySettings, RestoreSettings};
use transfer::s3::{S3Compat, neutral_class};
use transfer::size::MIB;
use transfer::store::{Encryption, RestoreTier, StorageClass};
use transfer::trigger::EventFilter;

use crate::batch::BatchSettings;
use crate::metrics::DEFAULT_NAMESPACE;

/// OSS storage classes accepted in `DST_STORAGE_CLASS` and `STORAGE_CLASS_MAP` (s3-to-oss).
const OSS_STORAGE_CLASSES: &[&str] = &[
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];

/// The s3-to-oss direction's default `STORAGE_CLASS_MAP`: each S3 class to the OSS class that
/// reads the same way (instantly, or after a restore) at the nearest price. Unlisted classes
/// (`OUTPOSTS`, `SNOW`, …) get the OSS bucket's default.
pub const DEFAULT_S3_TO_OSS_CLASSES: &str = "STANDARD=Standard,REDUCED_REDUNDANCY=Standard,\
EXPRESS_ONEZONE=Standard,INTELLIGENT_TIERING=Standard,STANDARD_IA=IA,ONEZONE_IA=IA,GLACIER_IR=IA,\
GLACIER=Archive,DEEP_ARCHIVE=ColdArchive";

/// Which way the replicator copies (`DIRECTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// OSS to S3 (the default): OSS trigger events through the forwarder.
    OssToS3,
    /// S3 to OSS: S3 event notifications straight from S3 to the queue.
    S3ToOss,
}

impl Direction {
    /// The name `DIRECTION` spells it with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OssToS3 => "oss-to-s3",
            Self::S3ToOss => "s3-to-oss",
        }
    }

    /// The variable that names the source bucket(s).
    pub fn source_var(self) -> &'static str {
        match self {
            Self::OssToS3 => "OSS_BUCKET",
            Self::S3ToOss => "SRC_BUCKET",
        }
    }

    fn from_env(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        match env
            .optional("DIRECTION")
            .map(|d| d.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("oss-to-s3") => Ok(Self::OssToS3),
            Some("s3-to-oss") => Ok(Self::S3ToOss),
            Some(other) => Err(ConfigError::new(
                "DIRECTION",
                format!("{other:?} is not oss-to-s3 or s3-to-oss"),
            )),
        }
    }
}

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

/// The log variables Lambda's advanced logging controls set.
const LOG_VARS: LogVars = LogVars {
    level: "AWS_LAMBDA_LOG_LEVEL",
    format: "AWS_LAMBDA_LOG_FORMAT",
    crates: &["replicator", "transfer"],
};

/// Everything the replicator reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which way objects go (`DIRECTION`, default `oss-to-s3`).
    pub direction: Direction,
    /// The OSS client's region, endpoint and addressing style: the source's in oss-to-s3, the
    /// destination's in s3-to-oss.
    pub oss: OssConfig,
    /// The Secrets Manager secret with the OSS credentials (`OSS_SECRET_ID`); in s3-to-oss the
    /// key needs write rights.
    pub oss_secret_id: String,
    /// The copy engine's settings.
    pub copy: CopySettings,
    /// Batch behaviour.
    pub batch: BatchSettings,
    /// The queue the function consumes, where continuations, deferred deletes and re-enqueued
    /// messages go (`QUEUE_URL`).
    pub queue_url: String,
    /// The function's timeout (`FUNCTION_TIMEOUT_SECONDS`, default 900): the deadline used when
    /// the runtime's is implausible.
    pub function_timeout: Duration,
    /// Where permanent failures go (`DLQ_URL`); the redrive policy's job when unset.
    pub dlq_url: Option<String>,
    /// The CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// The `FunctionName` metric dimension (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: String,
    /// The level EMF lines carry: the lowest the log keeps (`AWS_LAMBDA_LOG_LEVEL`, default
    /// INFO).
    pub metrics_level: String,
    /// Path-style S3 addressing: on when an S3 endpoint override (`AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`) is set, as local S3 servers need.
    pub s3_path_style: bool,
    /// Workarounds for an S3-compatible test server (`OSS2S3_S3_COMPAT=moto`); tests and the
    /// local stack only.
    pub s3_compat: S3Compat,
    /// Logging.
    pub log: LogConfig,
}

impl Config {
    /// Reads the configuration from `env`.
    pub fn from_env(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let direction = Direction::from_env(env)?;
        let oss = oss_config(env)?;
        let oss_secret_id = env.required("OSS_SECRET_ID")?;
        let copy = copy_settings(env, direction)?;
        let queue_url = env.required_url("QUEUE_URL")?;
        let dlq_url = env.url("DLQ_URL")?;
        let source_region = match direction {
            Direction::OssToS3 => oss.region.clone(),
            // Lambda sets AWS_REGION; S3 events name their bucket's region themselves.
            Direction::S3ToOss => env.optional("AWS_REGION").unwrap_or_default(),
        };
        let mut batch = BatchSettings::new(source_region);
        batch.legacy_bucket = copy.source_buckets.first().cloned();
        batch.max_receive_count = env
            .optional("MAX_RECEIVE_COUNT")
            .map(|_| env.number("MAX_RECEIVE_COUNT", 1..=1000, 5))
            .transpose()?;
        if copy.replicate_deletes {
            batch.delete_delay =
                Duration::from_secs(env.number("DELETE_DELAY_SECONDS", 0..=86_400, 300)?);
        }
        batch.message_concurrency = env.number(
            "MESSAGE_CONCURRENCY",
            1..=100,
            BatchSettings::DEFAULT_MESSAGE_CONCURRENCY,
        )?;
        batch.start_margin = copy.deadline_margin;
        batch.event_filter = EventFilter::from_settings(None, copy.replicate_deletes, None, None)
            .map_err(|e| ConfigError::new("REPLICATE_DELETES", e.to_string()))?;
        let s3_compat = match env.optional("OSS2S3_S3_COMPAT") {
            None => S3Compat::Aws,
            Some(name) => S3Compat::parse(&name).ok_or_else(|| {
                ConfigError::new("OSS2S3_S3_COMPAT", format!("{name:?} is not aws or moto"))
            })?,
        };
        let function_timeout =
            Duration::from_secs(env.number("FUNCTION_TIMEOUT_SECONDS", 1..=900, 900)?);
        let log = LogConfig::from_env(env, LOG_VARS)?;
        Ok(Self {
            direction,
            oss,
            oss_secret_id,
            copy,
            batch,
            queue_url,
            function_timeout,
            dlq_url,
            metrics_namespace: env
                .optional("METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            function_name: env
                .optional("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "replicator".to_owned()),
            // LogConfig has checked it is one of Lambda's levels.
            metrics_level: env
                .optional(LOG_VARS.level)
                .map_or_else(|| "INFO".to_owned(), |l| l.to_ascii_uppercase()),
            s3_path_style: env.optional("AWS_ENDPOINT_URL_S3").is_some()
                || env.optional("AWS_ENDPOINT_URL").is_some(),
            s3_compat,
            log,
        })
    }
}

/// The copy engine's settings: source buckets, destination, keys, sizes, memory, restore,
/// deletes, deadline.
fn copy_settings(
    env: &Env<impl Fn(&str) -> Option<String>>,
    direction: Direction,
) -> Result<CopySettings, ConfigError> {
    let mut copy = CopySettings::new(env.required("DST_BUCKET")?);
    if direction == Direction::S3ToOss {
        // An OSS bucket: held to the bucket-name rules here, as OSS would refuse it later.
        check_bucket("DST_BUCKET", &copy.dst_bucket)?;
    }
    copy.source_buckets = source_buckets(env, direction)?;
    copy.src_prefix = env.optional("SRC_PREFIX").unwrap_or_default();
    copy.dst_prefix = env.optional("DST_PREFIX").unwrap_or_default();
    copy.storage_class = env
        .optional("DST_STORAGE_CLASS")
        .map(|class| destination_class("DST_STORAGE_CLASS", &class, direction))
        .transpose()?;
    copy.storage_class_map = storage_class_map(env, direction)?;
    copy.sse = match direction {
        Direction::OssToS3 => encryption(env)?,
        Direction::S3ToOss => {
            for var in ["DST_SSE", "DST_SSE_KMS_KEY_ID"] {
                if env.optional(var).is_some() {
                    return Err(ConfigError::new(
                        var,
                        "applies to S3 destinations only; in s3-to-oss the OSS bucket's default encryption applies",
                    ));
                }
            }
            None
        }
    };
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
    copy.memory_budget = memory_budget(env, copy.part_size, copy.multipart_threshold)?;
    copy.replicate_deletes = env.flag("REPLICATE_DELETES", false)?;
    copy.deadline_margin = Duration::from_secs(env.number(
        "DEADLINE_MARGIN_SECONDS",
        1..=600,
        CopySettings::DEFAULT_DEADLINE_MARGIN.as_secs(),
    )?);
    copy.restore = restore_settings(env)?;
    Ok(copy)
}

/// A destination class, in the destination's spelling (any case).
fn destination_class(
    var: &'static str,
    class: &str,
    direction: Direction,
) -> Result<StorageClass, ConfigError> {
    match direction {
        Direction::OssToS3 => {
            let upper = class.to_ascii_uppercase();
            if S3_STORAGE_CLASSES.contains(&upper.as_str()) {
                Ok(neutral_class(&upper.as_str().into()))
            } else {
                Err(ConfigError::new(
                    var,
                    format!("{class:?} is not one of {}", S3_STORAGE_CLASSES.join(", ")),
                ))
            }
        }
        Direction::S3ToOss => OSS_STORAGE_CLASSES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(class))
            .map(|c| oss_neutral(c))
            .ok_or_else(|| {
                ConfigError::new(
                    var,
                    format!("{class:?} is not one of {}", OSS_STORAGE_CLASSES.join(", ")),
                )
            }),
    }
}

/// The neutral class of an OSS class name.
fn oss_neutral(name: &str) -> StorageClass {
    transfer::oss::store::neutral_class(&transfer::oss::StorageClass::parse(name))
}

/// `STORAGE_CLASS_MAP`: `SOURCE=DESTINATION` pairs separated by commas, each class in its own
/// store's spelling. In s3-to-oss it defaults to [`DEFAULT_S3_TO_OSS_CLASSES`]; in oss-to-s3 to
/// nothing (copies get the bucket's default class); `none` maps nothing.
fn storage_class_map(
    env: &Env<impl Fn(&str) -> Option<String>>,
    direction: Direction,
) -> Result<Vec<(StorageClass, StorageClass)>, ConfigError> {
    const VAR: &str = "STORAGE_CLASS_MAP";
    let value = match (env.optional(VAR), direction) {
        (Some(value), _) => value,
        (None, Direction::S3ToOss) => DEFAULT_S3_TO_OSS_CLASSES.to_owned(),
        (None, Direction::OssToS3) => return Ok(Vec::new()),
    };
    if value.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let source_classes: &[&str] = match direction {
        Direction::OssToS3 => OSS_STORAGE_CLASSES,
        Direction::S3ToOss => S3_STORAGE_CLASSES,
    };
    let mut map = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((from, to)) = pair.split_once('=') else {
            return Err(ConfigError::new(
                VAR,
                format!("{pair:?} is not SOURCE_CLASS=DESTINATION_CLASS"),
            ));
        };
        let from = source_classes
            .iter()
            .find(|c| c.eq_ignore_ascii_case(from.trim()))
            .ok_or_else(|| {
                ConfigError::new(
                    VAR,
                    format!(
                        "{:?} is not a source class: one of {}",
                        from.trim(),
                        source_classes.join(", ")
                    ),
                )
            })?;
        let from = match direction {
            Direction::OssToS3 => oss_neutral(from),
            Direction::S3ToOss => neutral_class(&(*from).into()),
        };
        map.push((from, destination_class(VAR, to.trim(), direction)?));
    }
    Ok(map)
}

/// The source bucket, or several separated by commas: `OSS_BUCKET` in oss-to-s3, `SRC_BUCKET`
/// (S3 buckets) in s3-to-oss. Tasks naming any other bucket fail permanently.
fn source_buckets(
    env: &Env<impl Fn(&str) -> Option<String>>,
    direction: Direction,
) -> Result<Vec<String>, ConfigError> {
    let var = direction.source_var();
    if direction == Direction::S3ToOss && env.optional("OSS_BUCKET").is_some() {
        return Err(ConfigError::new(
            "OSS_BUCKET",
            "names an OSS source, but DIRECTION is s3-to-oss: the S3 source is SRC_BUCKET and the OSS bucket DST_BUCKET",
        ));
    }
    let value = env.required(var)?;
    let buckets: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect();
    if buckets.is_empty() {
        return Err(ConfigError::new(var, "names no bucket"));
    }
    for bucket in &buckets {
        check_bucket(var, bucket)?;
    }
    Ok(buckets)
}

fn check_bucket(var: &'static str, bucket: &str) -> Result<(), ConfigError> {
    transfer::task::check_bucket_name(bucket).map_err(|reason| {
        ConfigError::new(var, format!("{bucket:?} is not a bucket name: it {reason}"))
    })
}

/// `MEMORY_BUDGET_MIB`: by default half the function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`),
/// or 512 MiB where that is unknown. It must hold a part and an object copied in one PUT.
fn memory_budget(
    env: &Env<impl Fn(&str) -> Option<String>>,
    part_size: u64,
    multipart_threshold: u64,
) -> Result<u64, ConfigError> {
    let function_mib: Option<u64> = env
        .optional("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .and_then(|m| m.parse().ok());
    let default = function_mib.map_or(CopySettings::DEFAULT_MEMORY_BUDGET / MIB, |m| m / 2);
    let budget = env.number("MEMORY_BUDGET_MIB", 16..=10_240, default.max(16))?;
    if let Some(function) = function_mib
        && budget >= function
    {
        return Err(ConfigError::new(
            "MEMORY_BUDGET_MIB",
            format!(
                "{budget} MiB leaves nothing of the function's {function} MB for anything else"
            ),
        ));
    }
    for (var, size) in [
        ("PART_SIZE_MIB", part_size),
        ("MULTIPART_THRESHOLD_MIB", multipart_threshold),
    ] {
        if size > budget * MIB {
            return Err(ConfigError::new(
                var,
                format!(
                    "{} MiB does not fit the memory budget of {budget} MiB (MEMORY_BUDGET_MIB, by default half the function's memory): raise the function's memory or lower {var}",
                    size / MIB
                ),
            ));
        }
    }
    Ok(budget * MIB)
}

/// `DST_SSE` and `DST_SSE_KMS_KEY_ID`.
fn encryption(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<Encryption>, ConfigError> {
    let key_id = env.optional("DST_SSE_KMS_KEY_ID");
    match env.optional("DST_SSE").as_deref() {
        None if key_id.is_some() => Err(ConfigError::new(
            "DST_SSE_KMS_KEY_ID",
            "is set but DST_SSE is not aws:kms",
        )),
        None => Ok(None),
        Some("AES256") if key_id.is_some() => Err(ConfigError::new(
            "DST_SSE_KMS_KEY_ID",
            "is set but DST_SSE is AES256, not aws:kms",
        )),
        Some("AES256") => Ok(Some(Encryption::Aes256)),
        Some("aws:kms") => Ok(Some(Encryption::Kms { key_id })),
        Some(other) => Err(ConfigError::new(
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
            return Err(ConfigError::new(
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use transfer::oss::{AddressingStyle, Endpoint};

    const BASE: &[(&str, &str)] = &[
        ("OSS_REGION", "cn-hangzhou"),
        ("OSS_BUCKET", "src"),
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
        Config::from_env(&Env::new(|name: &str| map.get(name).cloned()))
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
        assert_eq!(restore.retry_after, Duration::from_mins(5));
        assert_eq!(c.batch.message_concurrency, 100);
        assert_eq!(c.batch.legacy_bucket.as_deref(), Some("src"));
        assert_eq!(c.copy.source_buckets, ["src"]);
        assert_eq!(c.copy.memory_budget, 512 * MIB);
        assert_eq!(c.function_timeout, Duration::from_mins(15));
        assert_eq!(c.batch.max_receive_count, None);
        assert_eq!(c.batch.delete_delay, Duration::ZERO, "deletes are off");
        assert_eq!(c.metrics_level, "INFO");
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
        for var in [
            "OSS_REGION",
            "OSS_BUCKET",
            "OSS_SECRET_ID",
            "DST_BUCKET",
            "QUEUE_URL",
        ] {
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
            ("OSS_BUCKET", "src, other-src"),
            ("FUNCTION_TIMEOUT_SECONDS", "300"),
            ("MAX_RECEIVE_COUNT", "7"),
            ("DELETE_DELAY_SECONDS", "60"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"),
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
        assert_eq!(c.copy.source_buckets, ["src", "other-src"]);
        assert_eq!(c.function_timeout, Duration::from_mins(5));
        assert_eq!(c.batch.max_receive_count, Some(7));
        assert_eq!(c.batch.delete_delay, Duration::from_mins(1));
        assert_eq!(
            c.copy.memory_budget,
            1024 * MIB,
            "half the function's memory"
        );
        assert_eq!(c.metrics_level, "DEBUG");
        assert_eq!(
            (c.copy.src_prefix.as_str(), c.copy.dst_prefix.as_str()),
            ("in/", "out/")
        );
        assert_eq!(c.copy.storage_class, Some(StorageClass::InfrequentAccess));
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
        assert_eq!(restore.retry_after, Duration::from_mins(15));
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
            ("OSS_BUCKET", "Not_A_Bucket"),
            ("OSS_BUCKET", " , "),
            ("FUNCTION_TIMEOUT_SECONDS", "901"),
            ("MAX_RECEIVE_COUNT", "0"),
            ("MEMORY_BUDGET_MIB", "8"),
        ] {
            let message = err(&[(var, value)]);
            assert!(message.starts_with(var), "{var}={value}: {message}");
        }
    }

    #[test]
    fn parts_and_single_puts_must_fit_the_memory_budget() {
        let small = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")];
        let c = config(&small).unwrap();
        assert_eq!(c.copy.memory_budget, 64 * MIB);
        let message = err(&[small[0], ("PART_SIZE_MIB", "100")]);
        assert!(
            message.starts_with("PART_SIZE_MIB") && message.contains("64 MiB"),
            "{message}"
        );
        let message = err(&[
            ("MEMORY_BUDGET_MIB", "32"),
            ("MULTIPART_THRESHOLD_MIB", "64"),
        ]);
        assert!(message.starts_with("MULTIPART_THRESHOLD_MIB"), "{message}");
        let message = err(&[small[0], ("MEMORY_BUDGET_MIB", "128")]);
        assert!(message.starts_with("MEMORY_BUDGET_MIB"), "{message}");
    }

    #[test]
    fn deletes_wait_five_minutes_unless_configured() {
        let c = config(&[("REPLICATE_DELETES", "true")]).unwrap();
        assert_eq!(c.batch.delete_delay, Duration::from_mins(5));
        let c = config(&[("REPLICATE_DELETES", "true"), ("DELETE_DELAY_SECONDS", "0")]).unwrap();
        assert_eq!(c.batch.delete_delay, Duration::ZERO);
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
    fn s3_compat_is_aws_unless_switched() {
        assert_eq!(config(&[]).unwrap().s3_compat, S3Compat::Aws);
        assert_eq!(
            config(&[("OSS2S3_S3_COMPAT", "moto")]).unwrap().s3_compat,
            S3Compat::Moto
        );
        assert!(err(&[("OSS2S3_S3_COMPAT", "minio")]).starts_with("OSS2S3_S3_COMPAT"));
    }

    /// The s3-to-oss direction's variables, over `BASE` without its `OSS_BUCKET`.
    fn s3_to_oss(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut vars = vec![
            ("OSS_BUCKET", ""),
            ("DIRECTION", "s3-to-oss"),
            ("SRC_BUCKET", "photos-us"),
            ("AWS_REGION", "us-east-1"),
        ];
        vars.extend_from_slice(extra);
        config(&vars)
    }

    #[test]
    fn s3_to_oss_reads_its_source_from_src_bucket_and_maps_classes() {
        assert_eq!(config(&[]).unwrap().direction, Direction::OssToS3);
        let c = s3_to_oss(&[]).unwrap();
        assert_eq!(c.direction, Direction::S3ToOss);
        assert_eq!(c.copy.source_buckets, ["photos-us"]);
        assert_eq!(c.copy.dst_bucket, "dst");
        assert_eq!(c.batch.legacy_bucket.as_deref(), Some("photos-us"));
        assert_eq!(c.batch.legacy_region, "us-east-1");
        assert_eq!(c.copy.storage_class, None);
        for (s3, oss) in [
            (StorageClass::Standard, StorageClass::Standard),
            (StorageClass::IntelligentTiering, StorageClass::Standard),
            (
                StorageClass::OneZoneInfrequentAccess,
                StorageClass::InfrequentAccess,
            ),
            (
                StorageClass::InstantRetrievalArchive,
                StorageClass::InfrequentAccess,
            ),
            (StorageClass::Archive, StorageClass::Archive),
            (StorageClass::DeepArchive, StorageClass::ColdArchive),
        ] {
            assert_eq!(c.copy.destination_class(Some(&s3)), Some(oss), "{s3:?}");
        }
        assert_eq!(
            c.copy
                .destination_class(Some(&StorageClass::Other("OUTPOSTS".into()))),
            None,
            "unmapped classes get the bucket's default"
        );
        let c = s3_to_oss(&[(
            "STORAGE_CLASS_MAP",
            "deep_archive=DeepColdArchive, GLACIER=coldarchive",
        )])
        .unwrap();
        assert_eq!(
            c.copy.destination_class(Some(&StorageClass::DeepArchive)),
            Some(StorageClass::DeepArchive)
        );
        assert_eq!(
            c.copy.destination_class(Some(&StorageClass::Standard)),
            None
        );
        let c = s3_to_oss(&[("DST_STORAGE_CLASS", "ia")]).unwrap();
        assert_eq!(
            c.copy.destination_class(Some(&StorageClass::DeepArchive)),
            Some(StorageClass::InfrequentAccess),
            "one class for every object overrides the map"
        );
        let c = s3_to_oss(&[("STORAGE_CLASS_MAP", "none")]).unwrap();
        assert!(c.copy.storage_class_map.is_empty());
        let c = config(&[("STORAGE_CLASS_MAP", "Archive=GLACIER")]).unwrap();
        assert_eq!(
            c.copy.destination_class(Some(&StorageClass::Archive)),
            Some(StorageClass::Archive)
        );
        assert!(config(&[]).unwrap().copy.storage_class_map.is_empty());
    }

    #[test]
    fn s3_to_oss_refuses_what_belongs_to_the_other_direction() {
        for (extra, var) in [
            (vec![("DIRECTION", "sideways")], "DIRECTION"),
            (vec![("OSS_BUCKET", "src")], "OSS_BUCKET"),
            (vec![("SRC_BUCKET", "")], "SRC_BUCKET"),
            (vec![("DST_BUCKET", "Not_OSS")], "DST_BUCKET"),
            (vec![("DST_SSE", "AES256")], "DST_SSE"),
            (vec![("DST_STORAGE_CLASS", "GLACIER")], "DST_STORAGE_CLASS"),
            (vec![("STORAGE_CLASS_MAP", "GLACIER")], "STORAGE_CLASS_MAP"),
            (vec![("STORAGE_CLASS_MAP", "COLD=IA")], "STORAGE_CLASS_MAP"),
            (
                vec![("STORAGE_CLASS_MAP", "GLACIER=DEEP_ARCHIVE")],
                "STORAGE_CLASS_MAP",
            ),
        ] {
            let message = s3_to_oss(&extra).expect_err("refused").to_string();
            assert!(message.starts_with(var), "{extra:?}: {message}");
        }
        let message = s3_to_oss(&[("OSS_BUCKET", "src")]).unwrap_err().to_string();
        assert!(message.contains("SRC_BUCKET"), "{message}");
    }
}
