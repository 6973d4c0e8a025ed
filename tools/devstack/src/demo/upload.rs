//! Uploading the data set through the OSS emulator with the signed client (single PUTs,
//! multipart uploads, appends).

use super::*;

/// An uploaded object, as the source reports it afterwards.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The object.
    pub object: DemoObject,
    /// The source ETag without quotes.
    pub etag: String,
    /// The CRC-64/XZ of the bytes uploaded.
    pub crc64: u64,
    /// When the last upload request returned (the event that makes the object what it is).
    pub completed_at: Instant,
}

/// Uploads `object` with the signed client and HEADs it back.
pub async fn upload(
    oss: &OssClient,
    appender: &Appender,
    bucket: &str,
    object: &DemoObject,
) -> anyhow::Result<Uploaded> {
    let (data, crc64) = generated(object).await?;
    let options = PutObjectOptions {
        content: object.content.clone(),
        user_metadata: object.user_metadata.clone(),
        storage_class: None,
        forbid_overwrite: false,
    };
    let key = &object.key;
    match object.kind {
        UploadKind::Put => {
            oss.put_object(bucket, key, PutBody::from(data), &options)
                .await
                .with_context(|| format!("PutObject {key}"))?;
        }
        UploadKind::Multipart { part_size } => {
            let upload_id = oss
                .initiate_multipart_upload(bucket, key, &options)
                .await
                .with_context(|| format!("InitiateMultipartUpload {key}"))?;
            let mut parts = Vec::new();
            for (part_number, chunk) in
                (1u32..).zip(data.chunks(transfer::size::as_usize(part_size)))
            {
                let out = oss
                    .upload_part(
                        bucket,
                        key,
                        &upload_id,
                        part_number,
                        PutBody::from(chunk.to_vec()),
                    )
                    .await
                    .with_context(|| format!("UploadPart {part_number} of {key}"))?;
                parts.push(CompletedPart {
                    part_number,
                    etag: out.etag,
                });
            }
            oss.complete_multipart_upload(
                bucket,
                key,
                &upload_id,
                &parts,
                CompleteOptions::default(),
            )
            .await
            .with_context(|| format!("CompleteMultipartUpload {key}"))?;
        }
        UploadKind::Append { pieces } => {
            let piece = data
                .len()
                .div_ceil(transfer::size::as_usize(pieces.max(1)))
                .max(1);
            let mut position = 0;
            for chunk in data.chunks(piece) {
                let first = position == 0;
                position = appender
                    .append(
                        bucket,
                        key,
                        position,
                        chunk.to_vec(),
                        first.then_some(object),
                    )
                    .await
                    .with_context(|| format!("AppendObject {key} at {position}"))?;
            }
        }
    }
    let completed_at = Instant::now();
    let meta = oss
        .head_object(bucket, key)
        .await
        .with_context(|| format!("HeadObject {key}"))?;
    if meta.crc64.is_some_and(|c| c != crc64) || meta.size != object.size {
        bail!("the emulator holds other bytes for {key} than were uploaded");
    }
    Ok(Uploaded {
        object: object.clone(),
        etag: meta.etag.trim_matches('"').to_owned(),
        crc64,
        completed_at,
    })
}

/// The bytes of `object` and their CRC-64/XZ. Generating tens of MiB is CPU work: it runs off
/// the async workers, so that the arrival watcher keeps its 50 ms rhythm.
pub(super) async fn generated(object: &DemoObject) -> anyhow::Result<(Vec<u8>, u64)> {
    let generate = object.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let data = generate.bytes();
        let crc64 = transfer::crc64::checksum(&data);
        (data, crc64)
    })
    .await?)
}

/// AppendObject, which [`OssClient`] does not offer: a request signed with [`OssSigner`].
#[derive(Debug, Clone)]
pub struct Appender {
    http: reqwest::Client,
    endpoint: String,
    signer: OssSigner,
    credentials: Credentials,
}

impl Appender {
    /// An appender for the path-style endpoint `endpoint`.
    pub fn new(endpoint: &str, region: &str, credentials: Credentials) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            signer: OssSigner::new(region),
            credentials,
        }
    }

    /// `POST /<bucket>/<key>?append&position=<position>`; returns the next position. The first
    /// append (`headers`) sets the content headers and user metadata.
    pub async fn append(
        &self,
        bucket: &str,
        key: &str,
        position: u64,
        body: Vec<u8>,
        headers: Option<&DemoObject>,
    ) -> anyhow::Result<u64> {
        let mut map = http::HeaderMap::new();
        if let Some(object) = headers {
            let c = &object.content;
            for (name, value) in [
                ("content-type", &c.content_type),
                ("content-disposition", &c.content_disposition),
                ("content-language", &c.content_language),
                ("content-encoding", &c.content_encoding),
                ("cache-control", &c.cache_control),
                ("expires", &c.expires),
            ] {
                if let Some(value) = value {
                    map.insert(name, value.parse()?);
                }
            }
            for (name, value) in &object.user_metadata {
                map.insert(
                    http::HeaderName::try_from(format!(
                        "x-oss-meta-{}",
                        name.to_ascii_lowercase()
                    ))?,
                    value.parse()?,
                );
            }
        }
        let query = [
            ("append".to_owned(), String::new()),
            ("position".to_owned(), position.to_string()),
        ];
        let empty = http::HeaderMap::new();
        let signable = SignableRequest {
            method: "POST",
            bucket: Some(bucket),
            key: Some(key),
            query: &query,
            headers: &empty,
        };
        self.signer.sign(
            &self.credentials,
            signable,
            &mut map,
            &[],
            chrono::Utc::now(),
        );
        let url = format!(
            "{}/{bucket}/{}?append&position={position}",
            self.endpoint,
            encode_path(key)
        );
        let response = self.http.post(url).headers(map).body(body).send().await?;
        let status = response.status();
        let next = response
            .headers()
            .get("x-oss-next-append-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if !status.is_success() {
            bail!(
                "AppendObject answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        next.context("AppendObject answer without x-oss-next-append-position")
    }
}
