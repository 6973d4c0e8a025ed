//! A minimal AWS Signature V4 for path-style S3 requests with `UNSIGNED-PAYLOAD`: the least
//! signing a signature-verifying S3 server demands, for the raw pipe.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Signs S3 requests for one key pair in `us-east-1`.
#[derive(Debug, Clone)]
pub(crate) struct S3Signer {
    access_key: String,
    secret_key: String,
    region: String,
}

/// Every byte but `A-Za-z0-9-_.~` is `%XX`-encoded (the `/` between path segments is kept by
/// the caller).
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

impl S3Signer {
    /// A signer for these keys.
    pub(crate) fn new(access_key: &str, secret_key: &str) -> Self {
        Self {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: "us-east-1".to_owned(),
        }
    }

    /// The path `/bucket/key` as it goes on the wire (each segment encoded).
    pub(crate) fn path(bucket: &str, key: &str) -> String {
        let key: Vec<String> = key.split('/').map(uri_encode).collect();
        format!("/{}/{}", uri_encode(bucket), key.join("/"))
    }

    /// The query string as it goes on the wire (sorted, encoded; canonical too).
    pub(crate) fn query(params: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (uri_encode(k), uri_encode(v)))
            .collect();
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The headers to send: `x-amz-date`, `x-amz-content-sha256` and `authorization`.
    pub(crate) fn sign(
        &self,
        method: &str,
        host: &str,
        path: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Vec<(&'static str, String)> {
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = &amz_date[..8];
        let signed_headers = "host;x-amz-content-sha256;x-amz-date";
        let canonical = format!(
            "{method}\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{UNSIGNED_PAYLOAD}\nx-amz-date:{amz_date}\n\n{signed_headers}\n{UNSIGNED_PAYLOAD}"
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{}", self.secret_key).as_bytes(), date);
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac(&key, part);
        }
        let signature = hex::encode(hmac(&key, &to_sign));
        vec![
            ("x-amz-date", amz_date),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD.to_owned()),
            (
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                    self.access_key
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_encoded_canonically() {
        assert_eq!(S3Signer::path("b", "a b/c+d"), "/b/a%20b/c%2Bd");
        assert_eq!(
            S3Signer::query(&[("uploadId", "x/y"), ("partNumber", "2")]),
            "partNumber=2&uploadId=x%2Fy"
        );
        assert_eq!(S3Signer::query(&[("uploads", "")]), "uploads=");
    }
}
