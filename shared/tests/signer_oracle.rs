//! The V4 signer against the official OSS SDK (`alibabacloud-oss-v2`'s `SignerV4`) as an oracle.
//!
//! `tests/python/sign_oracle.py` generates requests from a seed, signs them with the SDK at a
//! fixed signing time, and prints them; this test signs the same requests and requires an
//! identical `Authorization` header for every one. The seed changes every run and is printed,
//! so a failure can be replayed with `SIGN_ORACLE_SEED=<seed>`.

use std::process::Command;

use chrono::DateTime;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use transfer::oss::signer::{Credentials, OssSigner, SignableRequest};

const REQUESTS: usize = 300;

#[derive(Debug, Deserialize)]
struct OracleRequest {
    method: String,
    region: String,
    bucket: Option<String>,
    key: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    additional_headers: Vec<String>,
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
    time: i64,
    authorization: String,
}

fn seed() -> u64 {
    std::env::var("SIGN_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos();
            (nanos % 1_000_000_007) as u64
        })
}

fn oracle_requests(seed: u64) -> Vec<OracleRequest> {
    let script = testkit::repo_root().join("tests/python/sign_oracle.py");
    let output = Command::new(testkit::python())
        .arg(script)
        .args([
            "--count",
            &REQUESTS.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("run the signing oracle");
    assert!(
        output.status.success(),
        "sign_oracle.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("oracle prints a JSON array")
}

fn rust_authorization(request: &OracleRequest) -> String {
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    }
    let mut credentials = Credentials::new(&request.access_key_id, &request.access_key_secret);
    if let Some(token) = &request.security_token {
        credentials = credentials.with_security_token(token);
    }
    let additional: Vec<&str> = request
        .additional_headers
        .iter()
        .map(String::as_str)
        .collect();
    let unsigned = headers.clone();
    OssSigner::new(&request.region).sign(
        &credentials,
        SignableRequest {
            method: &request.method,
            bucket: request.bucket.as_deref(),
            key: request.key.as_deref(),
            query: &request.query,
            headers: &unsigned,
        },
        &mut headers,
        &additional,
        DateTime::from_timestamp(request.time, 0).expect("valid time"),
    );
    headers[http::header::AUTHORIZATION]
        .to_str()
        .expect("ASCII Authorization")
        .to_owned()
}

#[test]
fn signer_matches_official_sdk_on_generated_requests() {
    let seed = seed();
    let requests = oracle_requests(seed);
    assert_eq!(requests.len(), REQUESTS, "the oracle signed every request");

    let mismatches: Vec<String> = requests
        .iter()
        .filter_map(|request| {
            let ours = rust_authorization(request);
            (ours != request.authorization).then(|| {
                format!(
                    "{request:#?}\n  sdk:  {}\n  ours: {ours}",
                    request.authorization
                )
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "seed {seed}: {} of {REQUESTS} signatures differ from the SDK's; first:\n{}",
        mismatches.len(),
        mismatches.first().map(String::as_str).unwrap_or_default()
    );

    // The generator must have exercised what it claims to; otherwise a match proves little.
    let count = |f: &dyn Fn(&OracleRequest) -> bool| requests.iter().filter(|r| f(r)).count();
    assert!(
        count(&|r| r.security_token.is_some()) > 0,
        "seed {seed}: no STS"
    );
    assert!(
        count(&|r| r.authorization.contains("AdditionalHeaders=")) > 0,
        "seed {seed}: no additional headers"
    );
    assert!(
        count(&|r| r.key.as_deref().is_some_and(|k| !k.is_ascii())) > 0,
        "seed {seed}: no Unicode key"
    );
    assert!(
        count(&|r| r.query.iter().any(|(_, v)| v.is_empty())) > 0,
        "seed {seed}: no empty query value"
    );
}
