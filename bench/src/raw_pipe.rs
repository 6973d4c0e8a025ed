//! The raw pipe: the ceiling the copy engine is measured against. Ranged GETs from OSS, each
//! part buffered and sent as UploadPart to S3 (or, with `--from-s3`, from S3 to OSS), with the
//! same part size and parts in flight as the engine, and nothing else: no HEADs, no CRCs, no
//! SDK, only the signatures the servers demand (OSS V4 from `transfer`'s signer, S3 SigV4 with
//! `UNSIGNED-PAYLOAD`).

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use http::HeaderMap;
use transfer::oss::Credentials;
use transfer::oss::OssSigner;
use transfer::oss::signer::SignableRequest;

use crate::sigv4::S3Signer;

/// What to copy where.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RawPipeArgs {
    /// The emulator's URL.
    #[arg(long)]
    oss_endpoint: String,
    /// OSS access key ID.
    #[arg(long)]
    oss_access_key: String,
    /// OSS access key secret.
    #[arg(long)]
    oss_secret_key: String,
    /// Source bucket.
    #[arg(long)]
    src_bucket: String,
    /// Source key.
    #[arg(long)]
    src_key: String,
    /// Source size in bytes.
    #[arg(long)]
    size: u64,
    /// The S3 server's URL.
    #[arg(long)]
    s3_endpoint: String,
    /// S3 access key.
    #[arg(long)]
    s3_access_key: String,
    /// S3 secret key.
    #[arg(long)]
    s3_secret_key: String,
    /// Destination bucket.
    #[arg(long)]
    dst_bucket: String,
    /// Destination key.
    #[arg(long)]
    dst_key: String,
    /// Part size in bytes.
    #[arg(long)]
    part_size: u64,
    /// Parts in flight.
    #[arg(long)]
    concurrency: usize,
    /// Copy the other way: the source bucket and key are in S3, the destination in OSS.
    #[arg(long)]
    from_s3: bool,
}

/// Copies the object and prints `{"bytes":…,"seconds":…,"cpu_seconds":…,"peak_rss":…}`.
pub(crate) async fn run(args: RawPipeArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let started = Instant::now();
    let pipe = Pipe {
        http,
        oss_signer: OssSigner::new("cn-hangzhou"),
        oss_credentials: Credentials::new(&args.oss_access_key, &args.oss_secret_key),
        s3_signer: S3Signer::new(&args.s3_access_key, &args.s3_secret_key),
        s3_host: args
            .s3_endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
        args,
    };
    let upload_id = pipe.create().await?;
    let parts = pipe.args.size.div_ceil(pipe.args.part_size);
    let etags: Vec<(u64, String)> = stream::iter(1..=parts)
        .map(|n| pipe.part(&upload_id, n))
        .buffer_unordered(pipe.args.concurrency)
        .try_collect()
        .await?;
    pipe.complete(&upload_id, etags).await?;
    let seconds = started.elapsed().as_secs_f64();
    let (cpu, peak_rss) = testkit::process::own_usage()?;
    println!(
        "{}",
        serde_json::json!({
            "bytes": pipe.args.size,
            "seconds": seconds,
            "cpu_seconds": cpu.as_secs_f64(),
            "peak_rss": peak_rss,
            "parts": parts,
        })
    );
    Ok(())
}

struct Pipe {
    http: reqwest::Client,
    oss_signer: OssSigner,
    oss_credentials: Credentials,
    s3_signer: S3Signer,
    s3_host: String,
    args: RawPipeArgs,
}

impl Pipe {
    fn s3_request(
        &self,
        method: &str,
        (bucket, key): (&str, &str),
        query: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let path = S3Signer::path(bucket, key);
        let query = S3Signer::query(query);
        let headers = self
            .s3_signer
            .sign(method, &self.s3_host, &path, &query, chrono::Utc::now());
        let url = format!("http://{}{path}?{query}", self.s3_host);
        let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET);
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
    }

    fn oss_request(
        &self,
        method: &str,
        (bucket, key): (&str, &str),
        query: &[(&str, &str)],
        mut headers: HeaderMap,
    ) -> reqwest::RequestBuilder {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let request = SignableRequest {
            method,
            bucket: Some(bucket),
            key: Some(key),
            query: &query,
            headers: &HeaderMap::new(),
        };
        self.oss_signer.sign(
            &self.oss_credentials,
            request,
            &mut headers,
            &[],
            chrono::Utc::now(),
        );
        let mut url = format!(
            "{}/{bucket}/{}",
            self.args.oss_endpoint.trim_end_matches('/'),
            transfer::encoding::encode_path(key)
        );
        for (i, (name, value)) in query.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            let _ = write!(url, "{sep}{name}");
            if !value.is_empty() {
                let _ = write!(url, "={}", transfer::encoding::encode_path(value));
            }
        }
        let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET);
        self.http.request(method, url).headers(headers)
    }

    fn src(&self) -> (&str, &str) {
        (&self.args.src_bucket, &self.args.src_key)
    }

    fn dst(&self) -> (&str, &str) {
        (&self.args.dst_bucket, &self.args.dst_key)
    }

    async fn create(&self) -> anyhow::Result<String> {
        let request = if self.args.from_s3 {
            self.oss_request("POST", self.dst(), &[("uploads", "")], HeaderMap::new())
        } else {
            self.s3_request("POST", self.dst(), &[("uploads", "")])
        };
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(
            status.is_success(),
            "CreateMultipartUpload: {status} {text}"
        );
        xml_value(&text, "UploadId").context("CreateMultipartUpload: no UploadId")
    }

    async fn part(&self, upload_id: &str, number: u64) -> anyhow::Result<(u64, String)> {
        let first = (number - 1) * self.args.part_size;
        let last = (first + self.args.part_size).min(self.args.size) - 1;
        let body = self.get_range(first, last).await?;
        ensure!(
            body.len() as u64 == last - first + 1,
            "part {number}: got {} bytes",
            body.len()
        );
        let number_text = number.to_string();
        let query = [
            ("partNumber", number_text.as_str()),
            ("uploadId", upload_id),
        ];
        let request = if self.args.from_s3 {
            self.oss_request("PUT", self.dst(), &query, HeaderMap::new())
        } else {
            self.s3_request("PUT", self.dst(), &query)
        };
        let response = request.body(body).send().await?;
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        ensure!(status.is_success(), "UploadPart {number}: {status} {text}");
        Ok((number, etag.context("UploadPart: no ETag")?))
    }

    async fn get_range(&self, first: u64, last: u64) -> anyhow::Result<Bytes> {
        let range = format!("bytes={first}-{last}");
        let request = if self.args.from_s3 {
            self.s3_request("GET", self.src(), &[])
                .header("range", range)
        } else {
            let mut headers = HeaderMap::new();
            headers.insert("range", range.parse()?);
            self.oss_request("GET", self.src(), &[], headers)
        };
        let response = request.send().await?;
        let status = response.status();
        if status != reqwest::StatusCode::PARTIAL_CONTENT {
            bail!(
                "GET bytes={first}-{last}: {status} {}",
                response.text().await?
            );
        }
        Ok(response.bytes().await?)
    }

    async fn complete(&self, upload_id: &str, mut etags: Vec<(u64, String)>) -> anyhow::Result<()> {
        etags.sort();
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in etags {
            let _ = write!(
                xml,
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            );
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = [("uploadId", upload_id)];
        let request = if self.args.from_s3 {
            self.oss_request("POST", self.dst(), &query, HeaderMap::new())
        } else {
            self.s3_request("POST", self.dst(), &query)
        };
        let response = request.body(xml).send().await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(
            status.is_success() && !text.contains("<Error>"),
            "CompleteMultipartUpload: {status} {text}"
        );
        Ok(())
    }
}

/// The text of the first `<name>…</name>` element.
fn xml_value(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_owned())
}
