//! OSS Signature V4 (`OSS4-HMAC-SHA256`): signing on the client, verification in the emulator.
//!
//! Written here rather than taken from `reqsign-aliyun-oss` (3.2): that crate only lets its own unit
//! tests fix the signing time, so the official vectors cannot be checked from outside it; it always
//! emits an `AdditionalHeaders=` part, even an empty one; and it cannot verify a received request,
//! which the emulator needs. The algorithm follows Alibaba's V4 documentation and the official SDKs;
//! see `docs/protocol.md` ("Signature V4") for the step list this module implements.

use std::fmt;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::encoding::{encode_path, encode_query};

/// The algorithm name that starts every V4 `Authorization` header and string to sign.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The payload hash OSS V4 requests carry: OSS does not sign bodies.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The product name in the credential scope.
const PRODUCT: &str = "oss";
/// The terminator of the credential scope.
const REQUEST_TYPE: &str = "aliyun_v4_request";
/// The `x-oss-date` format: `YYYYMMDDTHHMMSSZ`.
const DATETIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

type HmacSha256 = Hmac<Sha256>;

/// An OSS access key pair with an optional STS security token.
///
/// `Debug` never prints the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key ID, which is public and appears in every signed request.
    pub access_key_id: String,
    /// The access key secret.
    pub access_key_secret: String,
    /// The STS security token, for temporary credentials.
    pub security_token: Option<String>,
}

impl Credentials {
    /// Long-lived credentials without a security token.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
        }
    }

    /// The same credentials with an STS security token.
    #[must_use]
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The parts of a request that a V4 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// The HTTP method, in upper case.
    pub method: &'a str,
    /// The bucket, or `None` for service-level requests.
    pub bucket: Option<&'a str>,
    /// The object key exactly as stored (not percent-encoded), or `None` for bucket-level requests.
    pub key: Option<&'a str>,
    /// Query parameters, decoded; an empty value stands for a bare `name`.
    pub query: &'a [(String, String)],
    /// The request headers, including the `x-oss-date` and `x-oss-content-sha256` to be signed.
    pub headers: &'a HeaderMap,
}

/// Signs OSS requests for one region with Signature V4.
#[derive(Debug, Clone)]
pub struct OssSigner {
    region: String,
}

impl OssSigner {
    /// A signer for the plain region ID, such as `cn-hangzhou` (not `oss-cn-hangzhou`).
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
        }
    }

    /// The region this signer puts into the credential scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Signs a request in place.
    ///
    /// Sets `x-oss-date`, `x-oss-content-sha256`, `x-oss-security-token` (with STS credentials) and
    /// `Authorization` in `headers`. `additional_headers` names further headers to sign; as in the
    /// official SDKs, names that are signed anyway and names absent from the request are ignored.
    pub fn sign(
        &self,
        credentials: &Credentials,
        request: SignableRequest<'_>,
        headers: &mut HeaderMap,
        additional_headers: &[&str],
        time: DateTime<Utc>,
    ) {
        let datetime = time.format(DATETIME_FORMAT).to_string();
        headers.insert("x-oss-date", header_value(&datetime));
        headers.insert(
            "x-oss-content-sha256",
            HeaderValue::from_static(UNSIGNED_PAYLOAD),
        );
        if let Some(token) = &credentials.security_token {
            headers.insert("x-oss-security-token", header_value(token));
        }
        let additional = effective_additional_headers(headers, additional_headers);
        let signable = SignableRequest { headers, ..request };
        let signature = signature(
            &credentials.access_key_secret,
            &datetime,
            &self.region,
            &signable,
            &additional,
        );
        let authorization = authorization_header(
            &credentials.access_key_id,
            &scope(&datetime[..8], &self.region),
            &additional,
            &signature,
        );
        headers.insert(http::header::AUTHORIZATION, header_value(&authorization));
    }
}

/// Formats the `Authorization` header value.
fn authorization_header(
    access_key_id: &str,
    scope: &str,
    additional: &[String],
    signature: &str,
) -> String {
    let mut value = format!("{ALGORITHM} Credential={access_key_id}/{scope}");
    if !additional.is_empty() {
        value.push_str(",AdditionalHeaders=");
        value.push_str(&additional.join(";"));
    }
    value.push_str(",Signature=");
    value.push_str(signature);
    value
}

fn header_value(s: &str) -> HeaderValue {
    // Every value the signer writes is ASCII (dates, hex, IDs); an STS token is base64-like.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether OSS signs this (lower-case) header without being asked to.
fn is_default_signed(name: &str) -> bool {
    name.starts_with("x-oss-") || name == "content-type" || name == "content-md5"
}

/// The additional headers that take part in the signature: lower-cased, sorted, deduplicated,
/// present with a non-empty value, and not signed by default.
fn effective_additional_headers(headers: &HeaderMap, requested: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = requested
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .filter(|n| !is_default_signed(n))
        .filter(|n| headers.get(n.as_str()).is_some_and(|v| !v.is_empty()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The credential scope `YYYYMMDD/<region>/oss/aliyun_v4_request`.
pub fn scope(date: &str, region: &str) -> String {
    format!("{date}/{region}/{PRODUCT}/{REQUEST_TYPE}")
}

/// Reads a header value as text. Bytes that are not UTF-8 are read as Latin-1, which is how
/// HTTP clients put non-ASCII text on the wire.
fn header_text(value: &HeaderValue) -> String {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(s) => s.to_owned(),
        Err(_) => value.as_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// The canonical request: method, URI, query, headers, additional header names, payload hash.
pub fn canonical_request(request: &SignableRequest<'_>, additional_headers: &[String]) -> String {
    let mut uri = String::from("/");
    if let Some(bucket) = request.bucket {
        uri.push_str(bucket);
        uri.push('/');
        if let Some(key) = request.key {
            uri.push_str(key);
        }
    }
    let uri = encode_path(&uri).to_string();

    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(k, v)| (encode_query(k).to_string(), encode_query(v).to_string()))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&");

    let mut headers: Vec<(String, String)> = Vec::new();
    for name in request.headers.keys() {
        let lower = name.as_str(); // http::HeaderName is always lower case
        if is_default_signed(lower) || additional_headers.iter().any(|a| a == lower) {
            let values: Vec<String> = request
                .headers
                .get_all(name)
                .iter()
                .map(|v| header_text(v).trim().to_owned())
                .collect();
            headers.push((lower.to_owned(), values.join(",")));
        }
    }
    headers.sort();
    let headers = headers.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "{k}:{v}");
        out
    });

    let payload = request
        .headers
        .get("x-oss-content-sha256")
        .map_or_else(|| UNSIGNED_PAYLOAD.to_owned(), header_text);

    format!(
        "{}\n{uri}\n{query}\n{headers}\n{}\n{payload}",
        request.method,
        additional_headers.join(";")
    )
}

/// The string to sign for a canonical request at `datetime` (`YYYYMMDDTHHMMSSZ`).
pub fn string_to_sign(datetime: &str, region: &str, canonical_request: &str) -> String {
    let date = datetime.get(..8).unwrap_or(datetime);
    format!(
        "{ALGORITHM}\n{datetime}\n{}\n{}",
        scope(date, region),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The hex signature of `request`, as `Signature=` carries it.
pub fn signature(
    secret: &str,
    datetime: &str,
    region: &str,
    request: &SignableRequest<'_>,
    additional_headers: &[String],
) -> String {
    let date = datetime.get(..8).unwrap_or(datetime);
    let key = hmac(format!("aliyun_v4{secret}").as_bytes(), date.as_bytes());
    let key = hmac(&key, region.as_bytes());
    let key = hmac(&key, PRODUCT.as_bytes());
    let key = hmac(&key, REQUEST_TYPE.as_bytes());
    let to_sign = string_to_sign(
        datetime,
        region,
        &canonical_request(request, additional_headers),
    );
    hex::encode(hmac(&key, to_sign.as_bytes()))
}

/// Why an `Authorization` header could not be read as OSS V4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed OSS V4 Authorization header: {0}")]
pub struct AuthorizationParseError(&'static str);

/// A parsed V4 `Authorization` header, as a server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key ID from the credential.
    pub access_key_id: String,
    /// The date of the scope, `YYYYMMDD`.
    pub date: String,
    /// The region of the scope.
    pub region: String,
    /// The lower-case additional header names, in the order given.
    pub additional_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

impl Authorization {
    /// Parses `OSS4-HMAC-SHA256 Credential=ak/date/region/oss/aliyun_v4_request[,AdditionalHeaders=a;b],Signature=hex`.
    /// Spaces after the commas are accepted.
    pub fn parse(value: &str) -> Result<Self, AuthorizationParseError> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(AuthorizationParseError(
                "it does not start with OSS4-HMAC-SHA256",
            ))?;
        let (mut credential, mut additional, mut signature) = (None, Vec::new(), None);
        for part in rest.split(',').map(str::trim) {
            if let Some(c) = part.strip_prefix("Credential=") {
                credential = Some(c);
            } else if let Some(a) = part.strip_prefix("AdditionalHeaders=") {
                additional = a
                    .split(';')
                    .filter(|s| !s.is_empty())
                    .map(str::to_ascii_lowercase)
                    .collect();
            } else if let Some(s) = part.strip_prefix("Signature=") {
                signature = Some(s);
            } else {
                return Err(AuthorizationParseError("it has an unknown part"));
            }
        }
        let credential = credential.ok_or(AuthorizationParseError("Credential is missing"))?;
        let signature = signature.ok_or(AuthorizationParseError("Signature is missing"))?;
        // The access key ID may itself contain '/', so take the four scope fields from the right.
        let mut fields = credential.rsplitn(5, '/');
        let (request_type, product, region, date, access_key_id) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        );
        match (request_type, product, region, date, access_key_id) {
            (Some(REQUEST_TYPE), Some(PRODUCT), Some(region), Some(date), Some(ak))
                if date.len() == 8 && !ak.is_empty() =>
            {
                Ok(Self {
                    access_key_id: ak.to_owned(),
                    date: date.to_owned(),
                    region: region.to_owned(),
                    additional_headers: additional,
                    signature: signature.to_owned(),
                })
            }
            _ => Err(AuthorizationParseError(
                "Credential is not <ak>/<date>/<region>/oss/aliyun_v4_request",
            )),
        }
    }
}

/// Parses an `x-oss-date` value (`YYYYMMDDTHHMMSSZ`).
pub fn parse_datetime(value: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value, DATETIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("valid timestamp")
    }

    /// The request of the official SDKs' V4 signer tests.
    fn official_request() -> (HeaderMap, Vec<(String, String)>) {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("x-oss-head1", "value"),
            ("abc", "value"),
            ("ZAbc", "value"),
            ("XYZ", "value"),
            ("content-type", "text/plain"),
        ] {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_static(v),
            );
        }
        let query = [
            ("param1", "value1"),
            ("+param1", "value3"),
            ("|param1", "value4"),
            ("+param2", ""),
            ("|param2", ""),
            ("param2", ""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        (headers, query)
    }

    fn sign_official(credentials: &Credentials, additional: &[&str], time: i64) -> String {
        let (mut headers, query) = official_request();
        let request = SignableRequest {
            method: "PUT",
            bucket: Some("bucket"),
            key: Some("1234+-/123/1.txt"),
            query: &query,
            headers: &HeaderMap::new(),
        };
        OssSigner::new("cn-hangzhou").sign(
            credentials,
            request,
            &mut headers,
            additional,
            at(time),
        );
        headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .expect("Authorization set")
            .to_owned()
    }

    #[test]
    fn matches_official_vector_without_additional_headers() {
        let auth = sign_official(&Credentials::new("ak", "sk"), &[], 1_702_743_657);
        assert_eq!(
            auth,
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
             Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
        );
    }

    #[test]
    fn matches_official_vector_with_additional_headers() {
        let auth = sign_official(
            &Credentials::new("ak", "sk"),
            &["ZAbc", "abc"],
            1_702_747_512,
        );
        assert_eq!(
            auth,
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
             AdditionalHeaders=abc;zabc,\
             Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"
        );
    }

    #[test]
    fn matches_official_vector_with_sts_token() {
        let credentials = Credentials::new("ak", "sk").with_security_token("token");
        let auth = sign_official(&credentials, &[], 1_702_784_856);
        assert!(
            auth.ends_with(
                "Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"
            ),
            "{auth}"
        );
    }

    #[test]
    fn sign_sets_date_payload_and_token_headers() {
        let mut headers = HeaderMap::new();
        let credentials = Credentials::new("ak", "sk").with_security_token("tok");
        let request = SignableRequest {
            method: "GET",
            bucket: Some("b"),
            key: Some("k"),
            query: &[],
            headers: &HeaderMap::new(),
        };
        OssSigner::new("cn-hangzhou").sign(&credentials, request, &mut headers, &[], at(0));
        assert_eq!(headers["x-oss-date"], "19700101T000000Z");
        assert_eq!(headers["x-oss-content-sha256"], UNSIGNED_PAYLOAD);
        assert_eq!(headers["x-oss-security-token"], "tok");
    }

    #[test]
    fn canonical_uri_encodes_everything_but_unreserved_and_slash() {
        let headers = HeaderMap::new();
        let request = SignableRequest {
            method: "GET",
            bucket: Some("b"),
            key: Some("a b+c%d/é~?#"),
            query: &[],
            headers: &headers,
        };
        let canonical = canonical_request(&request, &[]);
        assert_eq!(
            canonical.lines().nth(1),
            Some("/b/a%20b%2Bc%25d/%C3%A9~%3F%23")
        );
    }

    #[test]
    fn canonical_query_encodes_slash_and_sorts() {
        let headers = HeaderMap::new();
        let query = vec![
            ("prefix".to_owned(), "a/b c".to_owned()),
            ("list-type".to_owned(), "2".to_owned()),
            ("acl".to_owned(), String::new()),
        ];
        let request = SignableRequest {
            method: "GET",
            bucket: Some("b"),
            key: None,
            query: &query,
            headers: &headers,
        };
        let canonical = canonical_request(&request, &[]);
        let lines: Vec<&str> = canonical.lines().collect();
        assert_eq!(lines[1], "/b/");
        assert_eq!(lines[2], "acl&list-type=2&prefix=a%2Fb%20c");
    }

    #[test]
    fn parses_authorization_with_and_without_additional_headers() {
        let parsed = Authorization::parse(
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request, \
             AdditionalHeaders=abc;zabc, Signature=00ff",
        )
        .expect("parses");
        assert_eq!(parsed.access_key_id, "ak");
        assert_eq!(parsed.date, "20231216");
        assert_eq!(parsed.region, "cn-hangzhou");
        assert_eq!(parsed.additional_headers, vec!["abc", "zabc"]);
        assert_eq!(parsed.signature, "00ff");

        let bare = Authorization::parse(
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature=ab",
        )
        .expect("parses");
        assert!(bare.additional_headers.is_empty());
    }

    #[test]
    fn rejects_v1_and_broken_authorization() {
        for bad in [
            "OSS ak:signature",
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/s3/aws4_request,Signature=ab",
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request",
            "OSS4-HMAC-SHA256 Signature=ab",
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let credentials = Credentials::new("AKID", "very-secret").with_security_token("sts-token");
        let printed = format!("{credentials:?}");
        assert!(printed.contains("AKID"));
        assert!(!printed.contains("very-secret"));
        assert!(!printed.contains("sts-token"));
    }

    #[test]
    fn parses_x_oss_date() {
        assert_eq!(parse_datetime("20231216T162057Z"), Some(at(1_702_743_657)));
        assert_eq!(parse_datetime("2023-12-16"), None);
    }
}
