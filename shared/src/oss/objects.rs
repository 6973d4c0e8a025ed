//! Object operations of [`OssClient`]: HEAD, GET, PUT, DELETE, listing, symlinks, restore.

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::{Method, StatusCode};

use super::body::{BodyOrigin, ObjectBody, PutBody};
use super::client::{Call, OssClient, SendBody, header_string};
use super::error::{ErrorKind, OssError};
use super::meta::{ObjectMeta, parse_content_range};
use super::request::{
    GetObjectOptions, GetObjectOutput, ListObjectsV2Request, PutObjectOptions, PutObjectOutput,
    RestoreOutcome,
};
use super::retry::with_retries;
use super::xml::{self, ListObjectsPage, ListedObject, RestoreTier};

impl OssClient {
    /// HeadObject: the object's metadata.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, OssError> {
        let call = Call::new("HeadObject", Method::HEAD, bucket, Some(key));
        let (_, headers, _) = self.simple(&call, None).await?;
        ObjectMeta::from_headers(&headers).ok_or_else(|| {
            call.error(ErrorKind::InvalidResponse)
                .with_context("the response has no Content-Length")
        })
    }

    /// GetObject: the metadata and a streamed body. Retries until the response headers arrive;
    /// a failure while the body streams is returned from the body, for the caller to decide.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        options: &GetObjectOptions,
    ) -> Result<GetObjectOutput, OssError> {
        let mut call = Call::new("GetObject", Method::GET, bucket, Some(key));
        if let Some(range) = &options.range {
            call.header("range", &range.header())?;
            // Without this, OSS answers an unsatisfiable range with the whole object (200).
            call.header("x-oss-range-behavior", "standard")?;
        }
        if let Some(etag) = &options.if_match {
            call.header("if-match", etag)?;
        }
        if let Some(etag) = &options.if_none_match {
            call.header("if-none-match", etag)?;
        }
        let timeout = self.request_timeout();
        let call = &call;
        let response = self
            .authorized(call, true, |credentials| async move {
                with_retries(self.retry_policy(), || async {
                    let send = self.send(call, &credentials, SendBody::None, None);
                    match tokio::time::timeout(timeout, send).await {
                        Ok(result) => result,
                        Err(_) => Err(call
                            .error(ErrorKind::Timeout)
                            .with_context(format!("no response headers within {timeout:?}"))),
                    }
                })
                .await
            })
            .await?;
        let headers = response.headers();
        let meta = ObjectMeta::from_headers(headers).ok_or_else(|| {
            call.error(ErrorKind::InvalidResponse)
                .with_context("the response has no Content-Length")
        })?;
        let content_length = header_string(headers, "content-length").and_then(|v| v.parse().ok());
        let content_range = header_string(headers, "content-range")
            .as_deref()
            .and_then(parse_content_range);
        if let Some(range) = &options.range {
            let matches = content_range.is_some_and(|r| r.first == range.first);
            if response.status() != StatusCode::PARTIAL_CONTENT || !matches {
                return Err(call.error(ErrorKind::InvalidResponse).with_context(format!(
                    "asked for {}, got HTTP {} with Content-Range {:?}",
                    range.header(),
                    response.status().as_u16(),
                    content_range
                )));
            }
        }
        // The CRC header describes the whole object, so only a whole-object GET can be checked.
        let expected_crc = if content_range.is_none() {
            meta.crc64
        } else {
            None
        };
        let origin = BodyOrigin {
            operation: call.operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        let body = ObjectBody::new(
            response,
            origin,
            content_length,
            expected_crc,
            self.read_timeout(),
        );
        Ok(GetObjectOutput {
            meta,
            content_range,
            body,
        })
    }

    /// PutObject. An in-memory body is retried on retryable errors; a stream is sent once.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: PutBody,
        options: &PutObjectOptions,
    ) -> Result<PutObjectOutput, OssError> {
        let mut call = Call::new("PutObject", Method::PUT, bucket, Some(key));
        call.put_headers(options)?;
        self.upload(&call, body).await
    }

    /// DeleteObject. Succeeds also when the object does not exist (OSS answers 204 either way).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), OssError> {
        let call = Call::new("DeleteObject", Method::DELETE, bucket, Some(key));
        self.simple(&call, None).await.map(|_| ())
    }

    /// One page of ListObjectsV2, always with `encoding-type=url`, decoded.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        request: &ListObjectsV2Request,
    ) -> Result<ListObjectsPage, OssError> {
        let mut call = Call::new("ListObjectsV2", Method::GET, bucket, None)
            .query("list-type", "2")
            .query("encoding-type", "url");
        let optional = [
            ("prefix", request.prefix.clone()),
            ("continuation-token", request.continuation_token.clone()),
            ("max-keys", request.max_keys.map(|n| n.to_string())),
            ("start-after", request.start_after.clone()),
            ("delimiter", request.delimiter.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                call = call.query(name, value);
            }
        }
        let (_, _, body) = self.simple(&call, None).await?;
        let text = std::str::from_utf8(&body).map_err(|e| {
            call.error(ErrorKind::InvalidResponse)
                .with_context("the listing is not UTF-8")
                .with_source(e)
        })?;
        xml::parse_list_objects_v2(text)
            .map_err(|reason| call.error(ErrorKind::InvalidResponse).with_context(reason))
    }

    /// Every object under `request`'s prefix, page after page, as one stream.
    pub fn list_all_objects(
        &self,
        bucket: &str,
        request: ListObjectsV2Request,
    ) -> BoxStream<'static, Result<ListedObject, OssError>> {
        let client = self.clone();
        let bucket = bucket.to_owned();
        // State: the next request, or None once the last page was read.
        let pages = stream::try_unfold(Some(request), move |next| {
            let client = client.clone();
            let bucket = bucket.clone();
            async move {
                let Some(request) = next else {
                    return Ok(None);
                };
                let page = client.list_objects_v2(&bucket, &request).await?;
                let following = match (&page.next_continuation_token, page.is_truncated) {
                    (Some(token), true) => Some(ListObjectsV2Request {
                        continuation_token: Some(token.clone()),
                        start_after: None,
                        ..request
                    }),
                    (None, true) => {
                        return Err(OssError::new(
                            ErrorKind::InvalidResponse,
                            "ListObjectsV2",
                            bucket.clone(),
                            None,
                        )
                        .with_context("a truncated page has no NextContinuationToken"));
                    }
                    _ => None,
                };
                Ok(Some((page.objects, following)))
            }
        });
        pages
            .map(|page| match page {
                Ok(objects) => stream::iter(objects.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::iter([Err(e)]).right_stream(),
            })
            .flatten()
            .boxed()
    }

    /// PutSymlink: makes `key` a symbolic link to `target` (sent as `x-oss-symlink-target`; OSS
    /// expects non-ASCII targets URL-encoded).
    pub async fn put_symlink(&self, bucket: &str, key: &str, target: &str) -> Result<(), OssError> {
        let mut call = Call::new("PutSymlink", Method::PUT, bucket, Some(key)).query("symlink", "");
        call.header("x-oss-symlink-target", target)?;
        self.simple(&call, Some(Bytes::new())).await.map(|_| ())
    }

    /// GetSymlink: the key a symbolic link points to, as OSS sent it in `x-oss-symlink-target`.
    pub async fn get_symlink(&self, bucket: &str, key: &str) -> Result<String, OssError> {
        let call = Call::new("GetSymlink", Method::GET, bucket, Some(key)).query("symlink", "");
        let (_, headers, _) = self.simple(&call, None).await?;
        headers
            .get("x-oss-symlink-target")
            .map(super::meta::header_text)
            .ok_or_else(|| {
                call.error(ErrorKind::InvalidResponse)
                    .with_context("the response has no x-oss-symlink-target")
            })
    }

    /// RestoreObject: makes an archived object readable for `days` days. `tier` applies to
    /// ColdArchive and DeepColdArchive objects; leave it `None` for Archive.
    pub async fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        days: u32,
        tier: Option<RestoreTier>,
    ) -> Result<RestoreOutcome, OssError> {
        let mut call =
            Call::new("RestoreObject", Method::POST, bucket, Some(key)).query("restore", "");
        call.header("content-type", "application/xml")?;
        let body = Bytes::from(xml::restore_body(days, tier));
        match self.simple(&call, Some(body)).await {
            Ok((StatusCode::ACCEPTED, _, _)) => Ok(RestoreOutcome::Started),
            Ok(_) => Ok(RestoreOutcome::AlreadyRestored),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => {
                Ok(RestoreOutcome::AlreadyInProgress)
            }
            Err(e) => Err(e),
        }
    }
}
