//! Writing an object to an S3 server as an application does, in parts: create, one UploadPart
//! per part, complete. Tests, the demo and the benchmark all seed S3 sources this way.

use anyhow::Context as _;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

/// Sends `create` (which names the bucket and key, and may set headers, metadata or a checksum
/// algorithm), uploads `parts` in order as parts 1, 2, …, and completes the upload. Parts are
/// taken from the iterator one at a time, so a generator keeps one part in memory. Returns the
/// object's ETag without quotes.
pub async fn upload_in_parts(
    s3: &aws_sdk_s3::Client,
    create: CreateMultipartUploadFluentBuilder,
    parts: impl IntoIterator<Item = Vec<u8>>,
) -> anyhow::Result<String> {
    let bucket = create.get_bucket().clone().unwrap_or_default();
    let key = create.get_key().clone().unwrap_or_default();
    let object = format!("s3://{bucket}/{key}");
    let upload = create
        .send()
        .await
        .with_context(|| format!("CreateMultipartUpload {object}"))?;
    let upload_id = upload.upload_id().context("no UploadId")?;
    let mut completed = CompletedMultipartUpload::builder();
    for (n, body) in (1..).zip(parts) {
        let part = s3
            .upload_part()
            .bucket(&bucket)
            .key(&key)
            .upload_id(upload_id)
            .part_number(n)
            .body(body.into())
            .send()
            .await
            .with_context(|| format!("UploadPart {n} of {object}"))?;
        completed = completed.parts(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .build(),
        );
    }
    let done = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .upload_id(upload_id)
        .multipart_upload(completed.build())
        .send()
        .await
        .with_context(|| format!("CompleteMultipartUpload {object}"))?;
    Ok(done
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned())
}
