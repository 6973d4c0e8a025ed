//! A request as the operations see it: bucket and key (path-style or virtual-hosted), the
//! decoded query, the headers, and who sent it. Parsing the HTTP request into this context is
//! done here; what happens with it is [`crate::protocol`]'s and [`crate::ops`]'s business.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Method, StatusCode};
use percent_encoding::percent_decode_str;

use crate::error::OssError;
use crate::store::Store;

/// The longest key OSS accepts, in bytes.
const MAX_KEY_LEN: usize = 1023;

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The ID this request is answered with (`x-oss-request-id`).
    pub(crate) request_id: String,
    /// The HTTP method.
    pub(crate) method: Method,
    /// The bucket, `None` for the service (`ListBuckets`).
    pub(crate) bucket: Option<String>,
    /// The object key, `None` for bucket operations.
    pub(crate) key: Option<String>,
    /// The query parameters, decoded, in request order.
    pub(crate) query: Vec<(String, String)>,
    /// The request headers.
    pub(crate) headers: HeaderMap,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The `Host` the request was sent to.
    pub(crate) host: String,
}

impl Ctx {
    /// A query parameter's value (empty for a bare `?name`).
    pub(crate) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the query has the parameter at all.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// A header's value, when it is visible ASCII.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the request asked for `encoding-type=url` in the answer.
    pub(crate) fn url_encoding(&self) -> bool {
        self.q("encoding-type") == Some("url")
    }

    /// The bucket, or `""`.
    pub(crate) fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or_default()
    }

    /// The key, or `""`.
    pub(crate) fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }

    /// Rejects keys OSS does not accept: longer than 1023 bytes, or starting with `/` or `\`.
    pub(crate) fn check_key(&self) -> Result<(), OssError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        if key.len() > MAX_KEY_LEN {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "KeyTooLong",
                format!(
                    "The object key is {} bytes long; at most {MAX_KEY_LEN} are allowed.",
                    key.len()
                ),
            ));
        }
        if key.starts_with('/') || key.starts_with('\\') {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidObjectName",
                "The object name must not start with '/' or '\\'.",
            ));
        }
        Ok(())
    }
}

/// The host a request was sent to: the `Host` header, else the URI's authority.
pub(crate) fn host<B>(req: &http::Request<B>) -> String {
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(std::string::ToString::to_string))
        .unwrap_or_default()
}

/// Decodes a query string into name/value pairs; a bare `name` has an empty value.
pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

/// Splits the request target into bucket and key. A host whose first label is a configured
/// bucket (and that is not an IP address) is virtual-hosted style, `bucket.endpoint/key`;
/// everything else is path style, `endpoint/bucket/key`.
pub(crate) fn address(
    store: &Store,
    host: &str,
    path: &str,
) -> Result<(Option<String>, Option<String>), OssError> {
    let hostname = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let is_ip = hostname
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .is_ok();
    let decode = |raw: &str| -> Result<String, OssError> {
        let bytes: Vec<u8> = percent_decode_str(raw).collect();
        String::from_utf8(bytes).map_err(|_| {
            OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidObjectName",
                "The object name is not valid UTF-8.",
            )
        })
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    if !is_ip
        && let Some((label, _)) = hostname.split_once('.')
        && store.has_bucket(label)
    {
        let key = decode(path)?;
        return Ok((Some(label.to_owned()), (!key.is_empty()).then_some(key)));
    }
    if path.is_empty() {
        return Ok((None, None));
    }
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let bucket = decode(bucket)?;
    let key = decode(key)?;
    Ok((Some(bucket), (!key.is_empty()).then_some(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open(&["b".to_owned()], None).expect("store")
    }

    #[test]
    fn path_style_and_virtual_hosted_addressing() {
        let store = store();
        assert_eq!(
            address(&store, "127.0.0.1:80", "/b/dir/a%20b").ok(),
            Some((Some("b".into()), Some("dir/a b".into())))
        );
        assert_eq!(
            address(&store, "b.oss.test:80", "/k").ok(),
            Some((Some("b".into()), Some("k".into())))
        );
        assert_eq!(
            address(&store, "other.oss.test", "/b/").ok(),
            Some((Some("b".into()), None))
        );
        assert_eq!(address(&store, "127.0.0.1", "/").ok(), Some((None, None)));
        assert!(address(&store, "127.0.0.1", "/b/%FF").is_err());
    }

    #[test]
    fn query_pairs_are_decoded_and_bare_names_kept() {
        assert_eq!(
            parse_query(Some("uploads&prefix=a%2Fb&x=1+2")),
            vec![
                ("uploads".to_owned(), String::new()),
                ("prefix".to_owned(), "a/b".to_owned()),
                ("x".to_owned(), "1+2".to_owned()),
            ]
        );
    }
}
