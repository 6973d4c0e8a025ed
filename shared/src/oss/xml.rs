//! The XML documents OSS sends and receives, and their conversion into typed outputs.

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use quick_xml::escape::escape;
use serde::Deserialize;
use std::fmt::Write as _;

use super::meta::{ObjectType, StorageClass};

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The key, decoded.
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// The ETag as OSS sent it (quoted).
    pub etag: String,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
    /// The storage class.
    pub storage_class: StorageClass,
    /// The object type, when OSS said.
    pub object_type: Option<ObjectType>,
    /// The `RestoreInfo` text for archived objects, as `x-oss-restore` spells it.
    pub restore_info: Option<String>,
}

/// One page of a ListObjectsV2 listing, with every encoded field decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListObjectsPage {
    /// The objects on this page, in key order.
    pub objects: Vec<ListedObject>,
    /// The common prefixes (when a delimiter was given), decoded.
    pub common_prefixes: Vec<String>,
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// The token for the next page, decoded; pass it back as `continuation_token`.
    pub next_continuation_token: Option<String>,
    /// How many keys and prefixes this page holds, as OSS counted them.
    pub key_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResultXml {
    #[serde(default)]
    contents: Vec<ContentsXml>,
    #[serde(default)]
    common_prefixes: Vec<CommonPrefixXml>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
    key_count: Option<u64>,
    encoding_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContentsXml {
    key: String,
    #[serde(default)]
    size: u64,
    #[serde(rename = "ETag", default)]
    etag: String,
    last_modified: Option<String>,
    storage_class: Option<String>,
    #[serde(rename = "Type")]
    object_type: Option<String>,
    restore_info: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommonPrefixXml {
    prefix: String,
}

/// Decodes a value sent with `encoding-type=url`. OSS encodes with `%XX` only, so `+` stays `+`.
fn url_decode(value: &str) -> Result<String, String> {
    percent_decode_str(value)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| format!("{value:?} does not decode to UTF-8"))
}

/// What decodes a listing's keys, prefixes and markers: [`url_decode`] when its `EncodingType`
/// is `url`, nothing otherwise.
fn decoder(encoding_type: Option<&str>) -> impl Fn(String) -> Result<String, String> {
    let encoded = encoding_type.is_some_and(|e| e.eq_ignore_ascii_case("url"));
    move |s| if encoded { url_decode(&s) } else { Ok(s) }
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a `ListBucketResult` (ListObjectsV2), decoding keys, prefixes and tokens when
/// `EncodingType` is `url`.
pub(crate) fn parse_list_objects_v2(body: &str) -> Result<ListObjectsPage, String> {
    let xml: ListBucketResultXml =
        quick_xml::de::from_str(body).map_err(|e| format!("ListBucketResult: {e}"))?;
    let decode = decoder(xml.encoding_type.as_deref());
    let mut objects = Vec::with_capacity(xml.contents.len());
    for c in xml.contents {
        objects.push(ListedObject {
            key: decode(c.key)?,
            size: c.size,
            etag: c.etag,
            last_modified: c.last_modified.as_deref().and_then(parse_time),
            storage_class: c
                .storage_class
                .as_deref()
                .map(StorageClass::parse)
                .unwrap_or_default(),
            object_type: c.object_type.as_deref().map(ObjectType::parse),
            restore_info: c.restore_info,
        });
    }
    let common_prefixes = xml
        .common_prefixes
        .into_iter()
        .map(|p| decode(p.prefix))
        .collect::<Result<_, _>>()?;
    Ok(ListObjectsPage {
        objects,
        common_prefixes,
        is_truncated: xml.is_truncated,
        next_continuation_token: xml
            .next_continuation_token
            .filter(|t| !t.is_empty())
            .map(decode)
            .transpose()?,
        key_count: xml.key_count,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateXml {
    upload_id: String,
}

/// Reads the upload ID from an `InitiateMultipartUploadResult`.
pub(crate) fn parse_initiate(body: &str) -> Result<String, String> {
    let xml: InitiateXml =
        quick_xml::de::from_str(body).map_err(|e| format!("InitiateMultipartUploadResult: {e}"))?;
    if xml.upload_id.is_empty() {
        return Err("InitiateMultipartUploadResult has an empty UploadId".to_owned());
    }
    Ok(xml.upload_id)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteXml {
    #[serde(rename = "ETag")]
    etag: Option<String>,
}

/// Reads the ETag from a `CompleteMultipartUploadResult`.
pub(crate) fn parse_complete(body: &str) -> Result<Option<String>, String> {
    let xml: CompleteXml =
        quick_xml::de::from_str(body).map_err(|e| format!("CompleteMultipartUploadResult: {e}"))?;
    Ok(xml.etag)
}

/// One uploaded part, as ListParts reports it and CompleteMultipartUpload needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// The part number, 1 to 10,000.
    pub part_number: u32,
    /// The part's ETag as OSS sent it (quoted).
    pub etag: String,
    /// The part's size in bytes.
    pub size: u64,
    /// The part's CRC-64, when OSS reported it.
    pub crc64: Option<u64>,
}

/// One page of ListParts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ListPartsPage {
    pub(crate) parts: Vec<UploadedPart>,
    pub(crate) is_truncated: bool,
    pub(crate) next_part_number_marker: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPartsXml {
    #[serde(default)]
    part: Vec<PartXml>,
    #[serde(default)]
    is_truncated: bool,
    next_part_number_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PartXml {
    part_number: u32,
    #[serde(rename = "ETag", default)]
    etag: String,
    #[serde(default)]
    size: u64,
    hash_crc64ecma: Option<String>,
}

/// Parses a `ListPartsResult`.
pub(crate) fn parse_list_parts(body: &str) -> Result<ListPartsPage, String> {
    let xml: ListPartsXml =
        quick_xml::de::from_str(body).map_err(|e| format!("ListPartsResult: {e}"))?;
    Ok(ListPartsPage {
        parts: xml
            .part
            .into_iter()
            .map(|p| UploadedPart {
                part_number: p.part_number,
                etag: p.etag,
                size: p.size,
                crc64: p.hash_crc64ecma.and_then(|c| c.trim().parse().ok()),
            })
            .collect(),
        is_truncated: xml.is_truncated,
        next_part_number_marker: xml
            .next_part_number_marker
            .and_then(|m| m.trim().parse().ok())
            .filter(|&m| m > 0),
    })
}

/// A multipart upload in progress, from `ListMultipartUploads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// The key, decoded.
    pub key: String,
    /// The upload ID.
    pub upload_id: String,
    /// When it was initiated, when OSS said.
    pub initiated: Option<DateTime<Utc>>,
}

/// One page of `ListMultipartUploads`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ListUploadsPage {
    pub(crate) uploads: Vec<PendingUpload>,
    pub(crate) is_truncated: bool,
    pub(crate) next_key_marker: Option<String>,
    pub(crate) next_upload_id_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUploadsXml {
    #[serde(default)]
    upload: Vec<UploadXml>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadXml {
    key: String,
    upload_id: String,
    initiated: Option<String>,
}

/// Parses a `ListMultipartUploadsResult`, decoding keys and the key marker when
/// `EncodingType` is `url`.
pub(crate) fn parse_list_uploads(body: &str) -> Result<ListUploadsPage, String> {
    let xml: ListUploadsXml =
        quick_xml::de::from_str(body).map_err(|e| format!("ListMultipartUploadsResult: {e}"))?;
    let decode = decoder(xml.encoding_type.as_deref());
    let mut uploads = Vec::with_capacity(xml.upload.len());
    for u in xml.upload {
        uploads.push(PendingUpload {
            key: decode(u.key)?,
            upload_id: u.upload_id,
            initiated: u.initiated.as_deref().and_then(parse_time),
        });
    }
    Ok(ListUploadsPage {
        uploads,
        is_truncated: xml.is_truncated,
        next_key_marker: xml
            .next_key_marker
            .filter(|m| !m.is_empty())
            .map(decode)
            .transpose()?,
        next_upload_id_marker: xml.next_upload_id_marker.filter(|m| !m.is_empty()),
    })
}

/// The body of CompleteMultipartUpload: the parts in ascending order with their ETags.
pub(crate) fn complete_body(parts: &[(u32, String)]) -> String {
    let mut sorted: Vec<&(u32, String)> = parts.iter().collect();
    sorted.sort_by_key(|(n, _)| *n);
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (number, etag) in sorted {
        let _ = write!(
            xml,
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            escape(etag.as_str())
        );
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// How fast an archived object is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTier {
    /// Within about an hour (ColdArchive) or 12 hours (DeepColdArchive).
    Expedited,
    /// Within a few hours.
    Standard,
    /// Within several hours to days; the cheapest.
    Bulk,
}

impl RestoreTier {
    /// OSS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expedited => "Expedited",
            Self::Standard => "Standard",
            Self::Bulk => "Bulk",
        }
    }
}

/// The body of RestoreObject.
pub(crate) fn restore_body(days: u32, tier: Option<RestoreTier>) -> String {
    let mut xml = format!("<RestoreRequest><Days>{days}</Days>");
    if let Some(tier) = tier {
        let _ = write!(
            xml,
            "<JobParameters><Tier>{}</Tier></JobParameters>",
            tier.as_str()
        );
    }
    xml.push_str("</RestoreRequest>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_uploads_decodes_keys_and_markers() {
        let page = parse_list_uploads(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult>
  <Bucket>b</Bucket>
  <EncodingType>url</EncodingType>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>a%20b%2B</NextKeyMarker>
  <NextUploadIdMarker>0004B999EF5A239BB9138C6227D6****</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads>
  <IsTruncated>true</IsTruncated>
  <Upload>
    <Key>a%20b%2B</Key>
    <UploadId>0004B999EF5A239BB9138C6227D6****</UploadId>
    <Initiated>2012-02-23T04:18:23.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>%E6%96%87</Key>
    <UploadId>0004B999EF5A239BB9138C6227D7****</UploadId>
  </Upload>
</ListMultipartUploadsResult>"#,
        )
        .expect("parses");
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("a b+"));
        assert_eq!(
            page.next_upload_id_marker.as_deref(),
            Some("0004B999EF5A239BB9138C6227D6****")
        );
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[0].key, "a b+");
        assert_eq!(
            page.uploads[0].initiated.map(|t| t.timestamp()),
            Some(1_329_970_703)
        );
        assert_eq!(page.uploads[1].key, "文");
        assert_eq!(page.uploads[1].initiated, None);
        let empty = parse_list_uploads("<ListMultipartUploadsResult/>").expect("parses");
        assert!(empty.uploads.is_empty() && !empty.is_truncated);
    }

    const ENCODED_LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult>
  <Name>examplebucket</Name>
  <Prefix>a%20b%2F</Prefix>
  <MaxKeys>2</MaxKeys>
  <Delimiter>%2F</Delimiter>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>Cg%2Bx%3D%3D</NextContinuationToken>
  <KeyCount>3</KeyCount>
  <Contents>
    <Key>a%20b%2Fc%2Bd%25e%3Ff%23g</Key>
    <LastModified>2020-05-18T05:45:54.000Z</LastModified>
    <ETag>"35A27C2B9EAEEB6F48FD7FB5861D1234"</ETag>
    <Type>Normal</Type>
    <Size>25</Size>
    <StorageClass>Standard</StorageClass>
    <Owner><ID>1</ID><DisplayName>1</DisplayName></Owner>
  </Contents>
  <Contents>
    <Key>a%20b%2F%E6%96%87%E4%BB%B6+plus</Key>
    <LastModified>2020-05-18T05:45:55.000Z</LastModified>
    <ETag>"ABC-2"</ETag>
    <Type>Multipart</Type>
    <Size>1048576</Size>
    <StorageClass>ColdArchive</StorageClass>
    <RestoreInfo>ongoing-request="true"</RestoreInfo>
  </Contents>
  <CommonPrefixes><Prefix>a%20b%2Fsub%2F</Prefix></CommonPrefixes>
</ListBucketResult>"#;

    #[test]
    fn decodes_url_encoded_listing() {
        let page = parse_list_objects_v2(ENCODED_LISTING).expect("parses");
        assert_eq!(page.objects.len(), 2);
        let first = &page.objects[0];
        assert_eq!(first.key, "a b/c+d%e?f#g");
        assert_eq!(first.size, 25);
        assert_eq!(first.etag, "\"35A27C2B9EAEEB6F48FD7FB5861D1234\"");
        assert_eq!(first.storage_class, StorageClass::Standard);
        assert_eq!(first.object_type, Some(ObjectType::Normal));
        assert_eq!(
            first.last_modified.map(|t| t.timestamp_millis()),
            Some(1_589_780_754_000)
        );
        let second = &page.objects[1];
        assert_eq!(second.key, "a b/文件+plus", "a literal + must stay a plus");
        assert_eq!(second.storage_class, StorageClass::ColdArchive);
        assert_eq!(
            second.restore_info.as_deref(),
            Some("ongoing-request=\"true\"")
        );
        assert_eq!(page.common_prefixes, ["a b/sub/"]);
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("Cg+x=="));
        assert_eq!(page.key_count, Some(3));
    }

    #[test]
    fn leaves_unencoded_listing_alone() {
        let body = "<ListBucketResult><IsTruncated>false</IsTruncated>\
            <Contents><Key>a%20b</Key><Size>1</Size><ETag>\"E\"</ETag></Contents>\
            </ListBucketResult>";
        let page = parse_list_objects_v2(body).expect("parses");
        assert_eq!(page.objects[0].key, "a%20b");
        assert!(!page.is_truncated);
        assert_eq!(page.next_continuation_token, None);
    }

    #[test]
    fn empty_listing_has_no_objects() {
        let body = "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>\
            <IsTruncated>false</IsTruncated><EncodingType>url</EncodingType></ListBucketResult>";
        let page = parse_list_objects_v2(body).expect("parses");
        assert!(page.objects.is_empty() && page.common_prefixes.is_empty());
    }

    #[test]
    fn rejects_malformed_listing() {
        assert!(parse_list_objects_v2("<ListBucketResult><Contents>").is_err());
        let bad_utf8 = "<ListBucketResult><EncodingType>url</EncodingType>\
            <Contents><Key>%FF</Key></Contents></ListBucketResult>";
        assert!(parse_list_objects_v2(bad_utf8).is_err());
    }

    #[test]
    fn parses_multipart_documents() {
        let init = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>\
            <UploadId>0004B9894A22E5B1888A1E29F823****</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(
            parse_initiate(init).expect("parses"),
            "0004B9894A22E5B1888A1E29F823****"
        );
        let done = "<CompleteMultipartUploadResult><Location>l</Location><Bucket>b</Bucket>\
            <Key>k</Key><ETag>\"ABC-3\"</ETag></CompleteMultipartUploadResult>";
        assert_eq!(
            parse_complete(done).expect("parses").as_deref(),
            Some("\"ABC-3\"")
        );

        let parts = "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>\
            <NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts>\
            <IsTruncated>true</IsTruncated>\
            <Part><PartNumber>1</PartNumber><LastModified>2012-02-23T07:01:34.000Z</LastModified>\
            <ETag>\"E1\"</ETag><HashCrc64ecma>123</HashCrc64ecma><Size>6291456</Size></Part>\
            <Part><PartNumber>2</PartNumber><ETag>\"E2\"</ETag><Size>10</Size></Part>\
            </ListPartsResult>";
        let page = parse_list_parts(parts).expect("parses");
        assert_eq!(page.parts.len(), 2);
        assert_eq!(
            page.parts[0],
            UploadedPart {
                part_number: 1,
                etag: "\"E1\"".into(),
                size: 6_291_456,
                crc64: Some(123)
            }
        );
        assert!(page.is_truncated);
        assert_eq!(page.next_part_number_marker, Some(2));
    }

    #[test]
    fn complete_body_sorts_parts_and_escapes_etags() {
        let body = complete_body(&[(2, "\"B\"".into()), (1, "\"A\"".into())]);
        assert_eq!(
            body,
            "<CompleteMultipartUpload>\
             <Part><PartNumber>1</PartNumber><ETag>&quot;A&quot;</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>&quot;B&quot;</ETag></Part>\
             </CompleteMultipartUpload>"
        );
    }

    #[test]
    fn restore_body_includes_tier_only_when_given() {
        assert_eq!(
            restore_body(2, None),
            "<RestoreRequest><Days>2</Days></RestoreRequest>"
        );
        assert_eq!(
            restore_body(1, Some(RestoreTier::Expedited)),
            "<RestoreRequest><Days>1</Days><JobParameters><Tier>Expedited</Tier></JobParameters></RestoreRequest>"
        );
    }
}

/// The response parsers, public for the fuzz targets (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::{ListObjectsPage, UploadedPart};

    /// Parses a `ListBucketResult` (ListObjectsV2).
    pub fn list_objects_v2(body: &str) -> Result<ListObjectsPage, String> {
        super::parse_list_objects_v2(body)
    }

    /// Parses an `InitiateMultipartUploadResult` into its upload ID.
    pub fn initiate(body: &str) -> Result<String, String> {
        super::parse_initiate(body)
    }

    /// Parses a `CompleteMultipartUploadResult` into its ETag.
    pub fn complete(body: &str) -> Result<Option<String>, String> {
        super::parse_complete(body)
    }

    /// Parses a `ListPartsResult`: the parts, whether more follow, the next marker.
    pub fn list_parts(body: &str) -> Result<(Vec<UploadedPart>, bool, Option<u32>), String> {
        super::parse_list_parts(body).map(|p| (p.parts, p.is_truncated, p.next_part_number_marker))
    }

    /// The body of a CompleteMultipartUpload request for `parts`.
    pub fn complete_body(parts: &[(u32, String)]) -> String {
        super::complete_body(parts)
    }

    /// Parses a `ListMultipartUploadsResult`: the uploads, whether more follow, the next
    /// key marker.
    pub fn list_uploads(
        body: &str,
    ) -> Result<(Vec<super::PendingUpload>, bool, Option<String>), String> {
        super::parse_list_uploads(body).map(|p| (p.uploads, p.is_truncated, p.next_key_marker))
    }
}
