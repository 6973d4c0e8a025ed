//! Multipart operations of [`OssClient`].

use bytes::Bytes;
use http::Method;

use super::body::PutBody;
use super::client::{Call, FORBID_OVERWRITE, OssClient, put_output};
use super::error::{ErrorKind, OssError};
use super::request::{
    CompleteMultipartUploadOutput, CompleteOptions, CompletedPart, PutObjectOptions,
    UploadPartOutput,
};
use super::xml::{self, UploadedPart};

/// The page size ListParts is asked for.
const LIST_PARTS_PAGE: u32 = 1000;

impl OssClient {
    /// InitiateMultipartUpload: returns the upload ID.
    pub async fn initiate_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        options: &PutObjectOptions,
    ) -> Result<String, OssError> {
        let mut call = Call::new("InitiateMultipartUpload", Method::POST, bucket, Some(key))
            .query("uploads", "");
        call.put_headers(options)?;
        let (_, _, body) = self.simple(&call, Some(Bytes::new())).await?;
        xml::parse_initiate(&String::from_utf8_lossy(&body))
            .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))
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
