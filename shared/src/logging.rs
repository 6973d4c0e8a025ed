//! Log settings and the tracing subscriber, the same for every binary.
//!
//! The level variable (`AWS_LAMBDA_LOG_LEVEL` in Lambda, `LOG_LEVEL` in Function Compute) sets
//! the level of this project's own crates; the AWS SDK and the HTTP stack stay at `warn`, as
//! their debug output is large. `RUST_LOG`, when set, replaces all of that with a full tracing
//! filter directive. The format variable chooses text or JSON lines (one object per line, with
//! the enclosing spans' fields).

use std::fmt::Write as _;

use crate::env::{ConfigError, Env};

/// Which variables a binary reads its log settings from, and which crates it logs from.
#[derive(Debug, Clone, Copy)]
pub struct LogVars {
    /// The level variable: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL` (any case).
    pub level: &'static str,
    /// The format variable: `Text` or `JSON` (any case).
    pub format: &'static str,
    /// The crates the level applies to (the binary's own, `transfer`, ...).
    pub crates: &'static [&'static str],
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWriter {
    /// Standard output (Lambda).
    Stdout,
    /// Standard error (Function Compute, command-line tools).
    Stderr,
}

/// Log settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A tracing filter directive.
    pub filter: String,
    /// JSON lines instead of text.
    pub json: bool,
}

impl LogConfig {
    /// Reads `RUST_LOG`, then `vars.level` and `vars.format`.
    pub fn from_env(
        env: &Env<impl Fn(&str) -> Option<String>>,
        vars: LogVars,
    ) -> Result<Self, ConfigError> {
        let filter = if let Some(directive) = env.optional("RUST_LOG") {
            directive
        } else {
            let level = env
                .optional(vars.level)
                .unwrap_or_else(|| "INFO".to_owned())
                .to_ascii_lowercase();
            // Lambda's levels include FATAL, which tracing calls error.
            let level = match level.as_str() {
                "fatal" => "error",
                l @ ("trace" | "debug" | "info" | "warn" | "error") => l,
                _ => {
                    return Err(ConfigError::new(
                        vars.level,
                        "must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL",
                    ));
                }
            };
            let mut filter = String::from("warn");
            for name in vars.crates {
                let _ = write!(filter, ",{name}={level}");
            }
            filter
        };
        let json = match env.optional(vars.format) {
            None => false,
            Some(format) if format.eq_ignore_ascii_case("json") => true,
            Some(format) if format.eq_ignore_ascii_case("text") => false,
            Some(_) => return Err(ConfigError::new(vars.format, "must be Text or JSON")),
        };
        Ok(Self { filter, json })
    }

    /// Installs the global tracing subscriber (once per process; later calls do nothing).
    pub fn init(&self, writer: LogWriter) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false);
        let result = match (writer, self.json) {
            (LogWriter::Stdout, false) => builder.with_writer(std::io::stdout).try_init(),
            (LogWriter::Stderr, false) => builder.with_writer(std::io::stderr).try_init(),
            (LogWriter::Stdout, true) => builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_writer(std::io::stdout)
                .try_init(),
            (LogWriter::Stderr, true) => builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_writer(std::io::stderr)
                .try_init(),
        };
        // A subscriber is already set (a test harness, a second call): keep it.
        drop(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: LogVars = LogVars {
        level: "LEVEL",
        format: "FORMAT",
        crates: &["app", "transfer"],
    };

    fn config(vars: &[(&'static str, &'static str)]) -> Result<LogConfig, ConfigError> {
        let vars = vars.to_vec();
        LogConfig::from_env(
            &Env::new(move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }),
            VARS,
        )
    }

    #[test]
    fn level_applies_to_own_crates_and_sdk_stays_at_warn() {
        let c = config(&[("LEVEL", "DEBUG"), ("FORMAT", "json")]).unwrap();
        assert_eq!(c.filter, "warn,app=debug,transfer=debug");
        assert!(c.json);
        assert_eq!(config(&[]).unwrap().filter, "warn,app=info,transfer=info");
        assert_eq!(
            config(&[("LEVEL", "fatal")]).unwrap().filter,
            "warn,app=error,transfer=error"
        );
    }

    #[test]
    fn rust_log_replaces_the_level_and_bad_values_name_the_variable() {
        let c = config(&[("RUST_LOG", "trace"), ("LEVEL", "loud")]).unwrap();
        assert_eq!(c.filter, "trace");
        assert_eq!(config(&[("LEVEL", "loud")]).unwrap_err().var(), "LEVEL");
        assert_eq!(config(&[("FORMAT", "xml")]).unwrap_err().var(), "FORMAT");
    }
}
