//! The response documents, one serde type each. Element names and their order are OSS's (see
//! the API reference of each operation, e.g.
//! <https://www.alibabacloud.com/help/en/oss/developer-reference/listobjectsv2>); a field that
//! OSS only sends in some cases is an `Option` that is skipped when `None`.
//!
//! Keys, prefixes and markers are given as they should appear: already URL-encoded when the
//! request asked for `encoding-type=url` (see [`super::encode_value`]). ETags are given with
//! their quotes, which the serializer writes as `&quot;` like OSS does.

use serde::Serialize;

use super::Document;

/// `EncodingType` as the listings echo it: present, and `url`, only when asked for.
pub(crate) fn encoding_type(url: bool) -> Option<&'static str> {
    url.then_some("url")
}

/// `<Error>`: what every failed request answers.
#[derive(Debug, Serialize)]
#[serde(rename = "Error", rename_all = "PascalCase")]
pub(crate) struct Error<'a> {
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) host_id: &'a str,
    #[serde(rename = "EC")]
    pub(crate) ec: &'a str,
}

impl Document for Error<'_> {}

/// `<ListBucketResult>`: `ListObjects` (v1) and ListObjectsV2. V1 has `Marker` and `NextMarker`;
/// V2 has `StartAfter`, `ContinuationToken`, `NextContinuationToken` and `KeyCount`.
#[derive(Debug, Serialize)]
#[serde(rename = "ListBucketResult", rename_all = "PascalCase")]
pub(crate) struct ListBucketResult {
    pub(crate) name: String,
    pub(crate) prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) marker: Option<String>,
    pub(crate) max_keys: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    pub(crate) is_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_count: Option<usize>,
    /// Objects and common prefixes, interleaved in key order as OSS lists them.
    #[serde(rename = "$value")]
    pub(crate) entries: Vec<ListEntry>,
}

impl Document for ListBucketResult {}

/// One entry of a listing; the variant names are the element names.
#[derive(Debug, Serialize)]
pub(crate) enum ListEntry {
    /// An object.
    Contents(Contents),
    /// The keys that share a prefix up to the delimiter.
    CommonPrefixes(CommonPrefix),
}

/// `<Contents>`: one object of a listing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Contents {
    pub(crate) key: String,
    pub(crate) last_modified: String,
    pub(crate) e_tag: String,
    #[serde(rename = "Type")]
    pub(crate) object_type: String,
    pub(crate) size: u64,
    pub(crate) storage_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<Owner>,
    /// The `x-oss-restore` value of an archived object with a restore request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) restore_info: Option<String>,
}

/// `<CommonPrefixes>`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CommonPrefix {
    pub(crate) prefix: String,
}

/// `<Owner>` in a listing: `ID` before `DisplayName`.
#[derive(Debug, Serialize)]
pub(crate) struct Owner {
    #[serde(rename = "ID")]
    pub(crate) id: &'static str,
    #[serde(rename = "DisplayName")]
    pub(crate) display_name: &'static str,
}

/// `<DeleteResult>`: DeleteMultipleObjects. Quiet mode lists nothing.
#[derive(Debug, Serialize)]
#[serde(rename = "DeleteResult", rename_all = "PascalCase")]
pub(crate) struct DeleteResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    pub(crate) deleted: Vec<Deleted>,
}

impl Document for DeleteResult {}

/// `<Deleted>`: one key a DeleteMultipleObjects removed (or found absent).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Deleted {
    pub(crate) key: String,
}

/// `<InitiateMultipartUploadResult>`.
#[derive(Debug, Serialize)]
#[serde(rename = "InitiateMultipartUploadResult", rename_all = "PascalCase")]
pub(crate) struct InitiateMultipartUploadResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) upload_id: String,
}

impl Document for InitiateMultipartUploadResult {}

/// `<CompleteMultipartUploadResult>`.
#[derive(Debug, Serialize)]
#[serde(rename = "CompleteMultipartUploadResult", rename_all = "PascalCase")]
pub(crate) struct CompleteMultipartUploadResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    /// `http://HOST/BUCKET/KEY`, the key always URL-encoded.
    pub(crate) location: String,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) e_tag: String,
}

impl Document for CompleteMultipartUploadResult {}

/// `<ListPartsResult>`.
#[derive(Debug, Serialize)]
#[serde(rename = "ListPartsResult", rename_all = "PascalCase")]
pub(crate) struct ListPartsResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) upload_id: String,
    pub(crate) storage_class: String,
    pub(crate) part_number_marker: u32,
    pub(crate) next_part_number_marker: u32,
    pub(crate) max_parts: usize,
    pub(crate) is_truncated: bool,
    pub(crate) part: Vec<ListedPart>,
}

impl Document for ListPartsResult {}

/// `<Part>` of a ListParts answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListedPart {
    pub(crate) part_number: u32,
    pub(crate) last_modified: String,
    pub(crate) e_tag: String,
    pub(crate) hash_crc64ecma: u64,
    pub(crate) size: u64,
}

/// `<ListMultipartUploadsResult>`.
#[derive(Debug, Serialize)]
#[serde(rename = "ListMultipartUploadsResult", rename_all = "PascalCase")]
pub(crate) struct ListMultipartUploadsResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) encoding_type: Option<&'static str>,
    pub(crate) bucket: String,
    pub(crate) key_marker: String,
    /// Always empty: the emulator pages uploads by key marker only.
    pub(crate) upload_id_marker: String,
    pub(crate) next_key_marker: String,
    pub(crate) next_upload_id_marker: String,
    pub(crate) prefix: String,
    pub(crate) max_uploads: usize,
    pub(crate) is_truncated: bool,
    pub(crate) upload: Vec<ListedUpload>,
}

impl Document for ListMultipartUploadsResult {}

/// `<Upload>` of a `ListMultipartUploads` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListedUpload {
    pub(crate) key: String,
    pub(crate) upload_id: String,
    pub(crate) initiated: String,
}

/// `<CopyObjectResult>`.
#[derive(Debug, Serialize)]
#[serde(rename = "CopyObjectResult", rename_all = "PascalCase")]
pub(crate) struct CopyObjectResult {
    pub(crate) e_tag: String,
    pub(crate) last_modified: String,
}

impl Document for CopyObjectResult {}

/// `<LocationConstraint>`: `GetBucketLocation`, the region as `oss-REGION` in the root's text.
#[derive(Debug, Serialize)]
#[serde(rename = "LocationConstraint")]
pub(crate) struct LocationConstraint {
    #[serde(rename = "$text")]
    pub(crate) location: String,
}

impl Document for LocationConstraint {
    /// The emulator has always sent this one-line answer without a final line break.
    const FINAL_NEWLINE: bool = false;
}

/// `<BucketInfo>`: `GetBucketInfo`.
#[derive(Debug, Serialize)]
#[serde(rename = "BucketInfo", rename_all = "PascalCase")]
pub(crate) struct BucketInfo {
    pub(crate) bucket: BucketDetails,
}

impl Document for BucketInfo {}

/// `<Bucket>` of a `GetBucketInfo` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BucketDetails {
    pub(crate) access_monitor: &'static str,
    pub(crate) creation_date: &'static str,
    pub(crate) extranet_endpoint: String,
    pub(crate) intranet_endpoint: String,
    pub(crate) location: String,
    pub(crate) storage_class: &'static str,
    pub(crate) name: String,
    pub(crate) owner: BucketOwner,
}

/// `<Owner>` in `GetBucketInfo`: `DisplayName` before `ID`, unlike in listings.
#[derive(Debug, Serialize)]
pub(crate) struct BucketOwner {
    #[serde(rename = "DisplayName")]
    pub(crate) display_name: &'static str,
    #[serde(rename = "ID")]
    pub(crate) id: &'static str,
}
