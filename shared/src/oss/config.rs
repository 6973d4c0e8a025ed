//! Client configuration: region, endpoint, addressing style, timeouts and retry policy; and how a
//! bucket and key become a request URL.

use std::time::Duration;

pub use crate::retry::RetryPolicy;

use reqwest::Url;

use super::error::OssError;

/// Which OSS endpoint to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Endpoint {
    /// The public endpoint `https://oss-<region>.aliyuncs.com` (the default).
    #[default]
    Public,
    /// The VPC-internal endpoint `https://oss-<region>-internal.aliyuncs.com`.
    Internal,
    /// The global acceleration endpoint `https://oss-accelerate.aliyuncs.com`.
    Accelerate,
    /// Any other URL, such as a custom domain or an emulator at `http://127.0.0.1:PORT`.
    /// Without a scheme, `https://` is assumed.
    Custom(String),
}

/// How the bucket appears in the request URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressingStyle {
    /// `https://<bucket>.<endpoint host>/<key>`: what OSS itself requires (the default).
    #[default]
    VirtualHosted,
    /// `http://<endpoint host>/<bucket>/<key>`: for emulators and custom endpoints.
    PathStyle,
    /// `https://<custom domain>/<key>`: the endpoint host is the bucket's own domain (CNAME).
    Cname,
}

/// The OSS client's retries: 4 attempts, 200 ms doubling up to 10 s, with jitter. Transient
/// failures (throttling, 5xx, broken connections, timeouts, truncated bodies) are retried; a
/// throttling reply's `x-oss-qos-delay-time` raises the next delay to at least the time OSS
/// asked for.
pub const DEFAULT_RETRY: RetryPolicy =
    RetryPolicy::new(4, Duration::from_millis(200), Duration::from_secs(10));

/// Everything an [`super::OssClient`] needs besides credentials.
#[derive(Debug, Clone)]
pub struct OssConfig {
    /// The plain region ID, such as `cn-hangzhou`; it goes into the signature scope.
    pub region: String,
    /// The endpoint. Default: [`Endpoint::Public`].
    pub endpoint: Endpoint,
    /// The addressing style. Default: [`AddressingStyle::VirtualHosted`].
    pub addressing: AddressingStyle,
    /// The TCP and TLS connect timeout. Default: 10 s. Applies only to the HTTP client this crate
    /// builds; an injected client brings its own.
    pub connect_timeout: Duration,
    /// The whole-request limit for operations without a large body (HEAD, DELETE, listing, the
    /// multipart control calls, restore), and the limit for response headers to arrive on GET.
    /// Default: 60 s.
    pub request_timeout: Duration,
    /// The longest pause allowed while a body streams, in either direction, before the transfer
    /// counts as stalled. Default: 30 s.
    pub read_timeout: Duration,
    /// The retry policy. Default: [`DEFAULT_RETRY`].
    pub retry: RetryPolicy,
    /// Whether a plain `http://` endpoint may be used for a host other than loopback. Off by
    /// default: over plain HTTP the object data, and the security token of temporary
    /// credentials, would cross the network in the clear.
    pub allow_insecure_http: bool,
}

impl OssConfig {
    /// A configuration for `region` with every other setting at its default.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            endpoint: Endpoint::Public,
            addressing: AddressingStyle::VirtualHosted,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_mins(1),
            read_timeout: Duration::from_secs(30),
            retry: DEFAULT_RETRY,
            allow_insecure_http: false,
        }
    }

    /// Allows (or forbids) a plain `http://` endpoint on a host other than loopback.
    #[must_use]
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Sets the endpoint.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Sets the addressing style.
    #[must_use]
    pub fn with_addressing(mut self, addressing: AddressingStyle) -> Self {
        self.addressing = addressing;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the per-request timeout for operations without a large body.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the idle timeout for streamed bodies.
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The endpoint as a URL with scheme and host (and port), without path.
    pub fn endpoint_url(&self) -> Result<Url, OssError> {
        let text = match &self.endpoint {
            Endpoint::Public => format!("https://oss-{}.aliyuncs.com", self.region),
            Endpoint::Internal => format!("https://oss-{}-internal.aliyuncs.com", self.region),
            Endpoint::Accelerate => "https://oss-accelerate.aliyuncs.com".to_owned(),
            Endpoint::Custom(url) if url.contains("://") => url.clone(),
            Endpoint::Custom(host) => format!("https://{host}"),
        };
        let url = Url::parse(&text).map_err(|e| {
            OssError::config(format!("endpoint {text:?} is not a URL")).with_source(e)
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OssError::config(format!(
                "endpoint {text:?} is not http or https"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(OssError::config(format!("endpoint {text:?} has no host")));
        }
        if url.scheme() == "http" && !self.allow_insecure_http && !is_loopback(&url) {
            return Err(OssError::config(format!(
                "endpoint {text:?} is plain http:// to a host that is not loopback: data and \
                 credentials would cross the network unencrypted; use https://, or allow it \
                 explicitly (OSS_ALLOW_HTTP=true)"
            )));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(OssError::config(format!(
                "endpoint {text:?} must not have a path, query or fragment"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OssError::config("endpoint must not carry user information"));
        }
        if self.region.is_empty() {
            return Err(OssError::config("region is empty"));
        }
        Ok(url)
    }
}

/// Whether the URL's host is this machine: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Percent-encodes an object key for the URL path, keeping `/`.
pub(crate) fn encode_key(key: &str) -> String {
    // The same encoding as the V4 canonical URI: any difference makes OSS reject the signature.
    crate::encoding::encode_path(key).to_string()
}

/// Percent-encodes a query key or value.
pub(crate) fn encode_query(value: &str) -> String {
    crate::encoding::encode_query(value).to_string()
}

/// Builds the request URL for `bucket` and, for object operations, `key`.
///
/// The path is encoded as the canonical URI is; a URL parser would otherwise normalise dot
/// segments (`a/../b`), which would change the object addressed. Keys that a URL cannot carry
/// unchanged are therefore refused rather than silently rewritten.
pub(crate) fn request_url(
    base: &Url,
    addressing: AddressingStyle,
    bucket: &str,
    key: Option<&str>,
    query: &[(String, String)],
) -> Result<Url, String> {
    if bucket.is_empty() {
        return Err("the bucket name is empty".to_owned());
    }
    if key.is_some_and(str::is_empty) {
        return Err("the object key is empty".to_owned());
    }
    let encoded_key = key.map(encode_key).unwrap_or_default();
    let host = base.host_str().unwrap_or_default();
    let (host, path) = match addressing {
        AddressingStyle::VirtualHosted => (format!("{bucket}.{host}"), format!("/{encoded_key}")),
        AddressingStyle::PathStyle => (
            host.to_owned(),
            format!("/{}/{encoded_key}", encode_key(bucket)),
        ),
        AddressingStyle::Cname => (host.to_owned(), format!("/{encoded_key}")),
    };
    let port = base.port().map(|p| format!(":{p}")).unwrap_or_default();
    let mut text = format!("{}://{host}{port}{path}", base.scheme());
    if !query.is_empty() {
        text.push('?');
        let pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    encode_query(k)
                } else {
                    format!("{}={}", encode_query(k), encode_query(v))
                }
            })
            .collect();
        text.push_str(&pairs.join("&"));
    }
    let url = Url::parse(&text).map_err(|e| format!("cannot form a URL: {e}"))?;
    if url.path() != path {
        return Err(
            "the key contains `.` or `..` path segments, which a URL cannot carry unchanged"
                .to_owned(),
        );
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::signer::{SignableRequest, canonical_request};
    use http::HeaderMap;

    fn config(endpoint: Endpoint) -> OssConfig {
        OssConfig::new("cn-hangzhou").with_endpoint(endpoint)
    }

    #[test]
    fn plain_http_is_refused_beyond_loopback_unless_allowed() {
        let remote = config(Endpoint::Custom("http://oss.example.com".into()));
        let error = remote.endpoint_url().expect_err("refused").to_string();
        assert!(error.contains("OSS_ALLOW_HTTP"), "{error}");
        let allowed = remote
            .with_insecure_http(true)
            .endpoint_url()
            .expect("allowed");
        assert_eq!(allowed.as_str(), "http://oss.example.com/");
        assert!(
            config(Endpoint::Custom("https://oss.example.com".into()))
                .endpoint_url()
                .is_ok()
        );
    }

    #[test]
    fn endpoints_default_to_https_regional_hosts() {
        let url = |e| config(e).endpoint_url().expect("valid").to_string();
        assert_eq!(
            url(Endpoint::Public),
            "https://oss-cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(
            url(Endpoint::Internal),
            "https://oss-cn-hangzhou-internal.aliyuncs.com/"
        );
        assert_eq!(
            url(Endpoint::Accelerate),
            "https://oss-accelerate.aliyuncs.com/"
        );
        assert_eq!(
            url(Endpoint::Custom("files.example.com".into())),
            "https://files.example.com/"
        );
        assert_eq!(
            url(Endpoint::Custom("http://127.0.0.1:9000".into())),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            url(Endpoint::Custom("http://127.0.0.1:9000/".into())),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            url(Endpoint::Custom("http://localhost:9000".into())),
            "http://localhost:9000/"
        );
        assert_eq!(
            url(Endpoint::Custom("http://[::1]:9000".into())),
            "http://[::1]:9000/"
        );
    }

    #[test]
    fn rejects_unusable_endpoints() {
        for bad in [
            "ftp://host",
            "http://host/base",
            "http://u:p@host",
            "http://",
            "https://h?x=1",
        ] {
            let result = config(Endpoint::Custom(bad.into())).endpoint_url();
            assert!(result.is_err(), "{bad} accepted");
        }
    }

    fn url_for(addressing: AddressingStyle, key: Option<&str>, query: &[(&str, &str)]) -> Url {
        let base = Url::parse("http://oss.test:9000").expect("url");
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        request_url(&base, addressing, "bkt", key, &query).expect("url")
    }

    #[test]
    fn builds_urls_for_each_addressing_style() {
        assert_eq!(
            url_for(AddressingStyle::VirtualHosted, Some("a/b.txt"), &[]).as_str(),
            "http://bkt.oss.test:9000/a/b.txt"
        );
        assert_eq!(
            url_for(AddressingStyle::PathStyle, Some("a/b.txt"), &[]).as_str(),
            "http://oss.test:9000/bkt/a/b.txt"
        );
        assert_eq!(
            url_for(AddressingStyle::Cname, Some("a/b.txt"), &[]).as_str(),
            "http://oss.test:9000/a/b.txt"
        );
        assert_eq!(
            url_for(AddressingStyle::PathStyle, None, &[("list-type", "2")]).as_str(),
            "http://oss.test:9000/bkt/?list-type=2"
        );
        assert_eq!(
            url_for(AddressingStyle::VirtualHosted, None, &[]).as_str(),
            "http://bkt.oss.test:9000/"
        );
    }

    /// The canonical URI the signer computes for `key`, minus the `/bkt` prefix.
    fn canonical_key_path(key: &str) -> String {
        let headers = HeaderMap::new();
        let request = SignableRequest {
            method: "GET",
            bucket: Some("bkt"),
            key: Some(key),
            query: &[],
            headers: &headers,
        };
        let canonical = canonical_request(&request, &[]);
        let uri = canonical.lines().nth(1).expect("uri line").to_owned();
        uri.strip_prefix("/bkt").expect("bucket prefix").to_owned()
    }

    #[test]
    fn url_path_encodes_odd_keys_exactly_as_the_canonical_uri() {
        let long = "k".repeat(1_023);
        let keys = [
            "plain.txt",
            "with space.txt",
            "plus+sign",
            "percent%20literal",
            "question?mark",
            "hash#tag",
            "unicode/文件/ü.bin",
            "double//slash",
            "/leading-slash",
            "trailing/",
            "tilde~_-.ok",
            "semi;colon,comma=eq&amp'quote\"",
            long.as_str(),
        ];
        for key in keys {
            for style in [
                AddressingStyle::VirtualHosted,
                AddressingStyle::PathStyle,
                AddressingStyle::Cname,
            ] {
                let url = url_for(style, Some(key), &[]);
                let expected = canonical_key_path(key);
                let path = url.path();
                let key_path = match style {
                    AddressingStyle::PathStyle => path.strip_prefix("/bkt").expect("bucket"),
                    _ => path,
                };
                assert_eq!(key_path, expected, "{style:?} {key}");
                assert_eq!(url.query(), None, "{key} leaked into the query");
                assert_eq!(url.fragment(), None, "{key} leaked into the fragment");
            }
        }
        assert_eq!(
            url_for(AddressingStyle::PathStyle, Some("a b+c%d?e#f"), &[]).path(),
            "/bkt/a%20b%2Bc%25d%3Fe%23f"
        );
    }

    #[test]
    fn refuses_keys_with_dot_segments_instead_of_rewriting_them() {
        let base = Url::parse("http://127.0.0.1:9000").expect("url");
        for key in ["a/../b", "./a", "a/.", ".."] {
            assert!(
                request_url(&base, AddressingStyle::PathStyle, "bkt", Some(key), &[]).is_err(),
                "{key}"
            );
        }
        assert!(
            request_url(
                &base,
                AddressingStyle::PathStyle,
                "bkt",
                Some("a..b/.c"),
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn query_values_encode_slash_and_plus() {
        let url = url_for(
            AddressingStyle::PathStyle,
            None,
            &[("prefix", "a/b c+d"), ("continuation-token", "x=y")],
        );
        assert_eq!(
            url.query(),
            Some("prefix=a%2Fb%20c%2Bd&continuation-token=x%3Dy")
        );
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = OssConfig::new("cn-hangzhou");
        assert_eq!(c.endpoint, Endpoint::Public);
        assert_eq!(c.addressing, AddressingStyle::VirtualHosted);
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.request_timeout, Duration::from_mins(1));
        assert_eq!(c.read_timeout, Duration::from_secs(30));
        assert_eq!(c.retry.max_attempts, 4);
    }
}
