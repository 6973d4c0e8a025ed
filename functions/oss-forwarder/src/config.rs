//! The forwarder's configuration, read once from the environment at start-up.

use std::time::Duration;

use transfer::sqs::{SendRetry, SqsTimeouts};
use transfer::trigger::EventFilter;

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub(crate) struct ConfigError {
    /// The environment variable.
    var: &'static str,
    /// What is wrong with it.
    reason: String,
}

fn error(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// Log settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogConfig {
    /// A tracing filter directive (`RUST_LOG` verbatim, else `LOG_LEVEL` for this code).
    pub(crate) filter: String,
    /// JSON lines instead of text (`LOG_FORMAT=json`).
    pub(crate) json: bool,
}

/// Everything the forwarder reads from its environment.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The target queue (`SQS_QUEUE_URL`).
    pub(crate) queue_url: String,
    /// The queue's AWS region (`AWS_REGION`); the SDK reads it again itself.
    pub(crate) region: String,
    /// The port to listen on.
    pub(crate) port: u16,
    /// Which events and keys are forwarded.
    pub(crate) filter: EventFilter,
    /// SQS client timeouts.
    pub(crate) timeouts: SqsTimeouts,
    /// SQS send retries.
    pub(crate) retry: SendRetry,
    /// Logging.
    pub(crate) log: LogConfig,
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
        // Unset and empty mean the same: FC consoles tend to leave empty values behind.
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let queue_url = get("SQS_QUEUE_URL").ok_or_else(|| error("SQS_QUEUE_URL", "is not set"))?;
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(error("SQS_QUEUE_URL", "is not an http(s) queue URL"));
        }
        let region = get("AWS_REGION").ok_or_else(|| error("AWS_REGION", "is not set"))?;

        let port = match get("FC_CUSTOM_LISTEN_PORT") {
            Some(port) => parse_port("FC_CUSTOM_LISTEN_PORT", &port)?,
            None => match get("FC_SERVER_PORT") {
                Some(port) => parse_port("FC_SERVER_PORT", &port)?,
                None => 9000,
            },
        };

        let deletes = match get("FORWARD_DELETES") {
            Some(v) => parse_bool("FORWARD_DELETES", &v)?,
            None => false,
        };
        let filter = EventFilter::from_settings(
            get("FORWARD_EVENTS").as_deref(),
            deletes,
            get("KEY_PREFIX_INCLUDE").as_deref(),
            get("KEY_PREFIX_EXCLUDE").as_deref(),
        )
        .map_err(|e| error("FORWARD_EVENTS", e.to_string()))?;

        let defaults = SqsTimeouts::default();
        let timeouts = SqsTimeouts {
            connect: millis(&get, "SQS_CONNECT_TIMEOUT_MS", defaults.connect)?,
            call: millis(&get, "SQS_CALL_TIMEOUT_MS", defaults.call)?,
        };
        let mut retry = SendRetry::default();
        if let Some(attempts) = get("SQS_SEND_ATTEMPTS") {
            retry.max_attempts = attempts
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| error("SQS_SEND_ATTEMPTS", "must be an integer from 1 to 10"))?;
        }

        // LOG_LEVEL applies to this function's own code; the AWS SDK stays at `warn` (its debug
        // output is large). RUST_LOG, when set, is used verbatim.
        let filter_directive = match (get("RUST_LOG"), get("LOG_LEVEL")) {
            (Some(directive), _) => directive,
            (None, level) => {
                let level = level
                    .unwrap_or_else(|| "info".to_owned())
                    .to_ascii_lowercase();
                if !["trace", "debug", "info", "warn", "error"].contains(&level.as_str()) {
                    return Err(error(
                        "LOG_LEVEL",
                        "must be trace, debug, info, warn or error",
                    ));
                }
                format!("warn,bootstrap={level},transfer={level}")
            }
        };
        let json = match get("LOG_FORMAT").map(|f| f.to_ascii_lowercase()).as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(_) => return Err(error("LOG_FORMAT", "must be `text` or `json`")),
        };

        Ok(Self {
            queue_url,
            region,
            port,
            filter,
            timeouts,
            retry,
            log: LogConfig {
                filter: filter_directive,
                json,
            },
        })
    }
}

fn parse_port(var: &'static str, value: &str) -> Result<u16, ConfigError> {
    value
        .parse()
        .map_err(|_| error(var, format!("{value:?} is not a port number")))
}

fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(error(
            var,
            format!("{value:?} is not a boolean (true/false)"),
        )),
    }
}

fn millis(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| error(var, "must be a positive number of milliseconds")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("SQS_QUEUE_URL", "https://sqs.example/123/q"),
        ("AWS_REGION", "eu-west-1"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        BASE.iter().chain(extra).copied().collect()
    }

    #[test]
    fn defaults_apply_with_only_required_variables() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.filter, EventFilter::default());
        assert_eq!(
            c.log,
            LogConfig {
                filter: "warn,bootstrap=info,transfer=info".into(),
                json: false
            }
        );
        assert_eq!(c.retry, SendRetry::default());
    }

    #[test]
    fn missing_queue_url_names_the_variable() {
        let err = config(&[("AWS_REGION", "r")]).unwrap_err();
        assert!(err.to_string().starts_with("SQS_QUEUE_URL:"), "{err}");
    }

    #[test]
    fn missing_region_names_the_variable() {
        let err = config(&[("SQS_QUEUE_URL", "https://q/1/q")]).unwrap_err();
        assert!(err.to_string().starts_with("AWS_REGION:"), "{err}");
    }

    #[test]
    fn listen_port_prefers_fc_custom_listen_port() {
        let both = with(&[("FC_CUSTOM_LISTEN_PORT", "0"), ("FC_SERVER_PORT", "7000")]);
        assert_eq!(config(&both).unwrap().port, 0);
        assert_eq!(
            config(&with(&[("FC_SERVER_PORT", "7000")])).unwrap().port,
            7000
        );
        let err = config(&with(&[("FC_CUSTOM_LISTEN_PORT", "x")])).unwrap_err();
        assert!(
            err.to_string().starts_with("FC_CUSTOM_LISTEN_PORT:"),
            "{err}"
        );
    }

    #[test]
    fn bad_filter_settings_name_the_variable() {
        let err = config(&with(&[("FORWARD_DELETES", "maybe")])).unwrap_err();
        assert!(err.to_string().starts_with("FORWARD_DELETES:"), "{err}");
        let err = config(&with(&[("FORWARD_EVENTS", "ObjectCreated:UploadPart")])).unwrap_err();
        assert!(err.to_string().starts_with("FORWARD_EVENTS:"), "{err}");
    }

    #[test]
    fn deletes_and_prefixes_are_read() {
        let c = config(&with(&[
            ("FORWARD_DELETES", "true"),
            ("KEY_PREFIX_INCLUDE", "a/"),
            ("KEY_PREFIX_EXCLUDE", "a/tmp/"),
        ]))
        .unwrap();
        assert_eq!(
            c.filter,
            EventFilter::from_settings(None, true, Some("a/"), Some("a/tmp/")).unwrap()
        );
    }

    #[test]
    fn log_and_sqs_tuning_are_read() {
        let c = config(&with(&[
            ("LOG_FORMAT", "JSON"),
            ("LOG_LEVEL", "debug"),
            ("SQS_CALL_TIMEOUT_MS", "1500"),
            ("SQS_SEND_ATTEMPTS", "2"),
        ]))
        .unwrap();
        assert!(c.log.json);
        assert_eq!(c.log.filter, "warn,bootstrap=debug,transfer=debug");
        assert!(config(&with(&[("LOG_LEVEL", "loud")])).is_err());
        assert_eq!(c.timeouts.call, Duration::from_millis(1500));
        assert_eq!(c.retry.max_attempts, 2);
        assert!(config(&with(&[("SQS_SEND_ATTEMPTS", "0")])).is_err());
        assert!(config(&with(&[("LOG_FORMAT", "xml")])).is_err());
    }
}
