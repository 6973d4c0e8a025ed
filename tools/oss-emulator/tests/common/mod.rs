//! A small signed HTTP client for the emulator's integration tests.
// Each test crate uses only part of this client, and its items are not an API.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    reason = "shared by several test binaries, each using a different subset"
)]

use chrono::Utc;
use http::HeaderMap;
use oss_emulator::{Emulator, EmulatorConfig};
use transfer::encoding::{encode_path, encode_query};
use transfer::oss::signer::SignableRequest;
use transfer::oss::{Credentials, OssSigner};

pub const BUCKET: &str = "test-bucket";
pub const AK: &str = "test-ak";
pub const SK: &str = "test-sk";

pub fn config() -> EmulatorConfig {
    EmulatorConfig::new()
        .bucket(BUCKET)
        .credentials(Credentials::new(AK, SK))
}

pub async fn start() -> Emulator {
    Emulator::start(config()).await.expect("emulator starts")
}

/// A request to send, signed by the client.
pub struct Req<'a> {
    pub method: &'a str,
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, key: Option<&'a str>) -> Self {
        Self {
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn q(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn h(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub credentials: Credentials,
    pub region: String,
    pub virtual_hosted: bool,
}

impl Client {
    pub fn new(emulator: &Emulator) -> Self {
        Self::with(emulator, Credentials::new(AK, SK))
    }

    pub fn with(emulator: &Emulator, credentials: Credentials) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: emulator.endpoint(),
            credentials,
            region: "cn-hangzhou".to_owned(),
            virtual_hosted: false,
        }
    }

    /// A client that addresses `BUCKET.oss.test` (resolved to the emulator).
    pub fn virtual_hosted(emulator: &Emulator) -> Self {
        let host = format!("{BUCKET}.oss.test");
        Self {
            http: reqwest::Client::builder()
                .resolve(&host, emulator.addr())
                .build()
                .expect("client"),
            base: format!("http://{host}:{}", emulator.addr().port()),
            credentials: Credentials::new(AK, SK),
            region: "cn-hangzhou".to_owned(),
            virtual_hosted: true,
        }
    }

    pub fn url(&self, key: Option<&str>, query: &[(String, String)]) -> String {
        let mut url = if self.virtual_hosted {
            format!("{}/", self.base)
        } else {
            format!("{}/{BUCKET}/", self.base)
        };
        if let Some(key) = key {
            url.push_str(&encode_path(key).to_string());
        }
        if !query.is_empty() {
            url.push('?');
            let parts: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    let k = encode_query(k).to_string();
                    if v.is_empty() {
                        k
                    } else {
                        format!("{k}={}", encode_query(v))
                    }
                })
                .collect();
            url.push_str(&parts.join("&"));
        }
        url
    }

    pub fn signed_headers(&self, req: &Req<'_>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            headers.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(v).expect("header value"),
            );
        }
        let empty = HeaderMap::new();
        OssSigner::new(self.region.clone()).sign(
            &self.credentials,
            SignableRequest {
                method: req.method,
                bucket: Some(BUCKET),
                key: req.key,
                query: &req.query,
                headers: &empty,
            },
            &mut headers,
            &[],
            Utc::now(),
        );
        headers
    }

    pub async fn try_send(&self, req: Req<'_>) -> reqwest::Result<reqwest::Response> {
        let headers = self.signed_headers(&req);
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("method");
        let mut builder = self
            .http
            .request(method, self.url(req.key, &req.query))
            .headers(headers);
        if req.method == "PUT" || req.method == "POST" {
            builder = builder.body(req.body);
        }
        builder.send().await
    }

    pub async fn send(&self, req: Req<'_>) -> reqwest::Response {
        self.try_send(req).await.expect("request is answered")
    }

    pub async fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> reqwest::Response {
        self.send(Req::new("PUT", Some(key)).body(body)).await
    }

    pub async fn get(&self, key: &str) -> reqwest::Response {
        self.send(Req::new("GET", Some(key))).await
    }
}

/// The `<Code>` of an error response body.
pub async fn error_code(response: reqwest::Response) -> String {
    let text = response.text().await.expect("body");
    xml_field(&text, "Code").unwrap_or_else(|| panic!("no <Code> in {text}"))
}

pub fn xml_field(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].to_owned())
}

pub fn xml_fields(text: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    text.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next().map(str::to_owned))
        .collect()
}

pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
