//! Reading configuration from environment variables, the same way in every binary: unset and
//! empty mean the same (consoles tend to leave empty values behind), values are trimmed, and
//! every error names the variable at fault.

use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// A configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    var: &'static str,
    reason: String,
}

impl ConfigError {
    /// `var` is unusable because of `reason`.
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }

    /// The variable at fault.
    pub fn var(&self) -> &'static str {
        self.var
    }
}

/// Environment variables read through a lookup (the process environment, or a map in tests).
#[derive(Debug, Clone)]
pub struct Env<F> {
    lookup: F,
}

/// The lookup of the process environment.
pub type ProcessLookup = fn(&str) -> Option<String>;

impl Env<ProcessLookup> {
    /// The process environment.
    pub fn process() -> Self {
        Self {
            lookup: |name| std::env::var(name).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Variables read through `lookup` (a variable's value, if set).
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The trimmed value, or `None` when unset or empty.
    pub fn optional(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value, or an error saying it is required.
    pub fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.optional(var)
            .ok_or_else(|| ConfigError::new(var, "is required but not set"))
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case), or `default`.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.optional(var) else {
            return Ok(default);
        };
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                var,
                format!("{value:?} is not a boolean (true/false)"),
            )),
        }
    }

    /// An integer within `range`, or `default`.
    pub fn number<T>(
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
                ConfigError::new(
                    var,
                    format!(
                        "{value:?} is not an integer from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    }

    /// A positive number of milliseconds, or `default`.
    pub fn millis(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| ConfigError::new(var, "must be a positive number of milliseconds")),
        }
    }

    /// An `http://` or `https://` URL, when set.
    pub fn url(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        match self.optional(var) {
            None => Ok(None),
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(Some(url)),
            Some(url) => Err(ConfigError::new(
                var,
                format!("{url:?} is not an http(s) URL"),
            )),
        }
    }

    /// A required `http://` or `https://` URL.
    pub fn required_url(&self, var: &'static str) -> Result<String, ConfigError> {
        self.url(var)?
            .ok_or_else(|| ConfigError::new(var, "is required but not set"))
    }
}

/// The OSS client's settings from `OSS_REGION`, `OSS_ENDPOINT`, `OSS_PATH_STYLE`, `OSS_CNAME`
/// and `OSS_ALLOW_HTTP`, as the replicator and the CLI read them.
#[cfg(feature = "oss")]
pub fn oss_config(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<crate::oss::OssConfig, ConfigError> {
    use crate::oss::{AddressingStyle, Endpoint, OssConfig};
    let region = env.required("OSS_REGION")?;
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ConfigError::new(
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
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let path_style = env.flag("OSS_PATH_STYLE", is_ip || host == "localhost")?;
    if is_ip && !path_style {
        return Err(ConfigError::new(
            "OSS_PATH_STYLE",
            "must be true for an endpoint that is an IP address (no bucket subdomain possible)",
        ));
    }
    let cname = env.flag("OSS_CNAME", false)?;
    let addressing = match (path_style, cname) {
        (true, true) => {
            return Err(ConfigError::new(
                "OSS_CNAME",
                "cannot be combined with OSS_PATH_STYLE",
            ));
        }
        (true, false) => AddressingStyle::PathStyle,
        (false, true) => AddressingStyle::Cname,
        (false, false) => AddressingStyle::VirtualHosted,
    };
    let config = OssConfig::new(region)
        .with_endpoint(endpoint)
        .with_addressing(addressing)
        .with_insecure_http(env.flag("OSS_ALLOW_HTTP", false)?);
    config
        .endpoint_url()
        .map_err(|e| ConfigError::new("OSS_ENDPOINT", e.to_string()))?;
    Ok(config)
}

/// The host of `url` (with or without scheme), without brackets or port.
#[cfg(feature = "oss")]
fn endpoint_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::new(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn empty_and_blank_values_count_as_unset() {
        let e = env(&[("A", ""), ("B", "  "), ("C", " x ")]);
        assert_eq!(e.optional("A"), None);
        assert_eq!(e.optional("B"), None);
        assert_eq!(e.optional("C").as_deref(), Some("x"));
        assert_eq!(e.required("A").unwrap_err().var(), "A");
    }

    #[test]
    fn flags_numbers_and_urls_name_the_variable_when_wrong() {
        let e = env(&[("F", "maybe"), ("N", "70"), ("U", "ftp://x"), ("M", "0")]);
        assert!(
            e.flag("F", false)
                .unwrap_err()
                .to_string()
                .starts_with("F:")
        );
        assert!(
            e.number("N", 1..=64, 8)
                .unwrap_err()
                .to_string()
                .contains("1 to 64")
        );
        assert_eq!(e.number("unset", 1..=64, 8), Ok(8));
        assert!(e.url("U").unwrap_err().to_string().starts_with("U:"));
        assert!(e.millis("M", Duration::from_secs(1)).is_err());
        let ok = env(&[("F", "YES"), ("N", "64"), ("U", "https://q")]);
        assert_eq!(ok.flag("F", false), Ok(true));
        assert_eq!(ok.number("N", 1..=64, 8), Ok(64));
        assert_eq!(ok.url("U"), Ok(Some("https://q".to_owned())));
    }

    #[cfg(feature = "oss")]
    #[test]
    fn oss_settings_default_to_path_style_for_ip_endpoints() {
        use crate::oss::AddressingStyle;
        let c = oss_config(&env(&[
            ("OSS_REGION", "cn-hangzhou"),
            ("OSS_ENDPOINT", "http://127.0.0.1:9000"),
        ]))
        .unwrap();
        assert_eq!(c.addressing, AddressingStyle::PathStyle);
        let err = oss_config(&env(&[
            ("OSS_REGION", "cn-hangzhou"),
            ("OSS_ENDPOINT", "http://127.0.0.1:9000"),
            ("OSS_PATH_STYLE", "false"),
        ]))
        .unwrap_err();
        assert_eq!(err.var(), "OSS_PATH_STYLE");
        let err = oss_config(&env(&[("OSS_REGION", "CN_Hangzhou")])).unwrap_err();
        assert!(err.to_string().starts_with("OSS_REGION"), "{err}");
        assert_eq!(oss_config(&env(&[])).unwrap_err().var(), "OSS_REGION");
    }

    #[cfg(feature = "oss")]
    #[test]
    fn plain_http_to_a_remote_endpoint_needs_oss_allow_http() {
        let remote = [
            ("OSS_REGION", "cn-hangzhou"),
            ("OSS_ENDPOINT", "http://oss.example.com"),
        ];
        let err = oss_config(&env(&remote)).unwrap_err();
        assert_eq!(err.var(), "OSS_ENDPOINT");
        let allowed = [remote[0], remote[1], ("OSS_ALLOW_HTTP", "true")];
        assert!(oss_config(&env(&allowed)).unwrap().allow_insecure_http);
    }
}
