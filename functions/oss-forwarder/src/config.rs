//! The forwarder's configuration, read once from the environment at start-up. Every variable
//! and its default is listed in `docs/forwarder.md`.

use transfer::env::{ConfigError, Env};
use transfer::logging::{LogConfig, LogVars};
use transfer::retry::RetryPolicy;
use transfer::sqs::{DEFAULT_SEND_RETRY, SqsTimeouts};
use transfer::trigger::EventFilter;

/// The log variables (FC has no logging controls of its own).
const LOG_VARS: LogVars = LogVars {
    level: "LOG_LEVEL",
    format: "LOG_FORMAT",
    crates: &["bootstrap", "oss_forwarder", "transfer"],
};

/// Everything the forwarder reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The target queue (`SQS_QUEUE_URL`).
    pub queue_url: String,
    /// The queue's AWS region (`AWS_REGION`); the SDK reads it again itself.
    pub region: String,
    /// The port to listen on.
    pub port: u16,
    /// Which events and keys are forwarded.
    pub filter: EventFilter,
    /// SQS client timeouts.
    pub timeouts: SqsTimeouts,
    /// SQS send retries.
    pub retry: RetryPolicy,
    /// Logging.
    pub log: LogConfig,
}

impl Config {
    /// Reads the configuration from `env`.
    pub fn from_env(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let queue_url = env.required_url("SQS_QUEUE_URL")?;
        let region = env.required("AWS_REGION")?;
        let port = match env.optional("FC_CUSTOM_LISTEN_PORT") {
            Some(port) => parse_port("FC_CUSTOM_LISTEN_PORT", &port)?,
            None => match env.optional("FC_SERVER_PORT") {
                Some(port) => parse_port("FC_SERVER_PORT", &port)?,
                None => 9000,
            },
        };
        let filter = EventFilter::from_settings(
            env.optional("FORWARD_EVENTS").as_deref(),
            env.flag("FORWARD_DELETES", false)?,
            env.optional("KEY_PREFIX_INCLUDE").as_deref(),
            env.optional("KEY_PREFIX_EXCLUDE").as_deref(),
        )
        .map_err(|e| ConfigError::new("FORWARD_EVENTS", e.to_string()))?;
        let defaults = SqsTimeouts::default();
        let timeouts = SqsTimeouts {
            connect: env.millis("SQS_CONNECT_TIMEOUT_MS", defaults.connect)?,
            call: env.millis("SQS_CALL_TIMEOUT_MS", defaults.call)?,
        };
        let retry = RetryPolicy {
            max_attempts: env.number(
                "SQS_SEND_ATTEMPTS",
                1..=10,
                DEFAULT_SEND_RETRY.max_attempts,
            )?,
            ..DEFAULT_SEND_RETRY
        };
        Ok(Self {
            queue_url,
            region,
            port,
            filter,
            timeouts,
            retry,
            log: LogConfig::from_env(env, LOG_VARS)?,
        })
    }
}

fn parse_port(var: &'static str, value: &str) -> Result<u16, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::new(var, format!("{value:?} is not a port number")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_env(&Env::new(|name: &str| map.get(name).cloned()))
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
                filter: "warn,bootstrap=info,oss_forwarder=info,transfer=info".into(),
                json: false
            }
        );
        assert_eq!(c.retry, DEFAULT_SEND_RETRY);
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
        assert_eq!(
            c.log.filter,
            "warn,bootstrap=debug,oss_forwarder=debug,transfer=debug"
        );
        assert!(config(&with(&[("LOG_LEVEL", "loud")])).is_err());
        assert_eq!(c.timeouts.call, Duration::from_millis(1500));
        assert_eq!(c.retry.max_attempts, 2);
        assert!(config(&with(&[("SQS_SEND_ATTEMPTS", "0")])).is_err());
        assert!(config(&with(&[("LOG_FORMAT", "xml")])).is_err());
    }
}
