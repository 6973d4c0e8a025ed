//! Multipart operations of [`OssClient`].

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::Method;

use super::body::PutBody;
use super::client::{Call, FORBID_OVERWRITE, OssClient, put_output};
use super::error::{ErrorKind, OssError};
use super::request::{
    CompleteMultipartUploadOutput, CompleteOptions, CompletedPart, PutObjectOptions,
    UploadPartOutput,
};
use super::retry::with_retries;
use super::xml::{self, PendingUpload, UploadedPart};

/// The page size `ListParts` and `ListMultipartUploads` are asked for.
const LIST_PARTS_PAGE: u32 = 1000;

/// How far this machine's clock may be from OSS's when it looks for uploads by their
/// `Initiated` time. OSS refuses requests signed 15 minutes off; anything near that is a broken
/// clock, not a difference to allow for.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(15);

/// Whether a failed request may still have taken effect: no answer arrived (the connection
/// broke, the call timed out), the answer could not be read, or OSS answered with a server
/// error. A 4xx, or throttling, was a refusal.
fn may_have_taken_effect(error: &OssError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Network
            | ErrorKind::Timeout
            | ErrorKind::TruncatedBody
            | ErrorKind::ServerError
            | ErrorKind::InvalidResponse
    )
}

impl OssClient {
    /// InitiateMultipartUpload: returns the upload ID.
    ///
    /// OSS creates an upload for every InitiateMultipartUpload it receives, so an attempt whose
    /// answer is lost (the connection broke, the call timed out, a 5xx other than throttling)
    /// may have left one that nobody knows the ID of. After each such attempt, before the
    /// retry, the uploads of exactly `key` initiated since the attempt began (less
    /// [`CLOCK_SLACK`]) are listed and aborted. An upload that another writer of the same key
    /// initiated in those seconds is aborted too; that writer's next UploadPart fails with
    /// `NoSuchUpload`.
    pub async fn initiate_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        options: &PutObjectOptions,
    ) -> Result<String, OssError> {
        let mut call = Call::new("InitiateMultipartUpload", Method::POST, bucket, Some(key))
            .query("uploads", "");
        call.put_headers(options)?;
        let call = &call;
        let (_, _, body) = self
            .authorized(call, true, |credentials| async move {
                with_retries(self.retry_policy(), || async {
                    let started = Utc::now();
                    let result = self
                        .simple_once(call, &credentials, Some(Bytes::new()))
                        .await;
                    if let Err(error) = &result
                        && may_have_taken_effect(error)
                        && let Err(cleanup) = self.abort_uploads_since(bucket, key, started).await
                    {
                        tracing::error!(
                            bucket, key, error = %cleanup,
                            "could not look for the upload a failed InitiateMultipartUpload may \
                             have created; the bucket's lifecycle rule must remove it"
                        );
                    }
                    result
                })
                .await
            })
            .await?;
        xml::parse_initiate(&String::from_utf8_lossy(&body))
            .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))
    }

    /// The multipart uploads in progress of exactly `key`, page after page.
    pub async fn list_uploads_of(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<PendingUpload>, OssError> {
        let mut uploads = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let mut call = Call::new("ListMultipartUploads", Method::GET, bucket, None)
                .query("uploads", "")
                .query("prefix", key)
                .query("encoding-type", "url")
                .query("max-uploads", LIST_PARTS_PAGE.to_string());
            if let Some(marker) = &markers.0 {
                call = call.query("key-marker", marker.clone());
            }
            if let Some(marker) = &markers.1 {
                call = call.query("upload-id-marker", marker.clone());
            }
            let (_, _, body) = self.simple(&call, None).await?;
            let page = xml::parse_list_uploads(&String::from_utf8_lossy(&body))
                .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))?;
            uploads.extend(page.uploads.into_iter().filter(|u| u.key == key));
            let next = (page.next_key_marker, page.next_upload_id_marker);
            if !page.is_truncated || next.0.is_none() || next == markers {
                return Ok(uploads);
            }
            markers = next;
        }
    }

    /// Aborts the uploads of exactly `key` that OSS says were initiated at or after `since`
    /// (less [`CLOCK_SLACK`]), or that have no initiation time. Returns how many it aborted.
    async fn abort_uploads_since(
        &self,
        bucket: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<usize, OssError> {
        let since = since - CLOCK_SLACK;
        let mut aborted = 0;
        for upload in self.list_uploads_of(bucket, key).await? {
            if upload.initiated.is_some_and(|at| at < since) {
                continue;
            }
            match self
                .abort_multipart_upload(bucket, key, &upload.upload_id)
                .await
            {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
            tracing::warn!(
                bucket,
                key,
                upload_id = upload.upload_id,
                "aborted an upload that an InitiateMultipartUpload whose answer was lost may have created"
            );
            aborted += 1;
        }
        Ok(aborted)
    }

    /// UploadPart. Part numbers run from 1 to 10,000; every part but the last must be at least
    /// 100 KB. An in-memory body is retried; a stream is sent once.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: PutBody,
    ) -> Result<UploadPartOutput, OssError> {
        let call = Call::new("UploadPart", Method::PUT, bucket, Some(key))
            .query("partNumber", part_number.to_string())
            .query("uploadId", upload_id);
        self.upload(&call, body).await
    }

    /// CompleteMultipartUpload with the given parts (sorted by number here). With
    /// [`CompleteOptions::forbid_overwrite`], OSS refuses to replace an existing object (409
    /// `FileAlreadyExists`) and the upload stays.
    ///
    /// Retried like any other call. If an earlier attempt did complete the upload but its answer
    /// was lost, the retry fails with `NoSuchUpload` ([`ErrorKind::NotFound`]); callers should
    /// then HEAD the object.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        options: CompleteOptions,
    ) -> Result<CompleteMultipartUploadOutput, OssError> {
        let mut call = Call::new("CompleteMultipartUpload", Method::POST, bucket, Some(key))
            .query("uploadId", upload_id);
        call.header("content-type", "application/xml")?;
        if options.forbid_overwrite {
            call.header(FORBID_OVERWRITE, "true")?;
        }
        let pairs: Vec<(u32, String)> = parts
            .iter()
            .map(|p| (p.part_number, p.etag.clone()))
            .collect();
        let body = Bytes::from(xml::complete_body(&pairs));
        let (_, headers, body) = self.simple(&call, Some(body)).await?;
        let mut output = put_output(&headers);
        if output.etag.is_empty() {
            let etag = xml::parse_complete(&String::from_utf8_lossy(&body))
                .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))?;
            output.etag = etag.unwrap_or_default();
        }
        Ok(output)
    }

    /// AbortMultipartUpload: discards the upload and its parts.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), OssError> {
        let call = Call::new("AbortMultipartUpload", Method::DELETE, bucket, Some(key))
            .query("uploadId", upload_id);
        self.simple(&call, None).await.map(|_| ())
    }

    /// ListParts: every part uploaded so far, in part-number order, across all pages.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, OssError> {
        let mut parts = Vec::new();
        let mut marker: Option<u32> = None;
        loop {
            let mut call = Call::new("ListParts", Method::GET, bucket, Some(key))
                .query("uploadId", upload_id)
                .query("max-parts", LIST_PARTS_PAGE.to_string());
            if let Some(marker) = marker {
                call = call.query("part-number-marker", marker.to_string());
            }
            let (_, _, body) = self.simple(&call, None).await?;
            let page = xml::parse_list_parts(&String::from_utf8_lossy(&body))
                .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))?;
            parts.extend(page.parts);
            match (page.is_truncated, page.next_part_number_marker) {
                (true, Some(next)) if marker.is_none_or(|m| next > m) => marker = Some(next),
                (true, _) => {
                    return Err(call
                        .error(ErrorKind::InvalidResponse)
                        .with_context("a truncated page has no usable NextPartNumberMarker"));
                }
                (false, _) => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }
}
