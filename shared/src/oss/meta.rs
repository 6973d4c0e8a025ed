//! An object's metadata, read from HEAD and GET response headers.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};

use crate::store::{ContentHeaders, unquote_etag};

/// The prefix of user metadata headers.
pub const USER_META_PREFIX: &str = "x-oss-meta-";

/// How the object was written (`x-oss-object-type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// Written with PutObject (or copied); the ETag is the MD5.
    Normal,
    /// Written with AppendObject; may still grow.
    Appendable,
    /// Written with a multipart upload; the ETag is opaque.
    Multipart,
    /// A symbolic link to another object.
    Symlink,
    /// A type this client does not know, as OSS spelled it.
    Other(String),
}

impl ObjectType {
    /// Parses OSS's spelling; unknown values are kept.
    pub fn parse(value: &str) -> Self {
        match value {
            "Normal" => Self::Normal,
            "Appendable" => Self::Appendable,
            "Multipart" => Self::Multipart,
            "Symlink" => Self::Symlink,
            other => Self::Other(other.to_owned()),
        }
    }

    /// OSS's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Normal => "Normal",
            Self::Appendable => "Appendable",
            Self::Multipart => "Multipart",
            Self::Symlink => "Symlink",
            Self::Other(s) => s,
        }
    }
}

/// The storage class (`x-oss-storage-class`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum StorageClass {
    /// Standard storage (the default).
    #[default]
    Standard,
    /// Infrequent Access.
    InfrequentAccess,
    /// Archive: must be restored before it can be read.
    Archive,
    /// Cold Archive: must be restored before it can be read.
    ColdArchive,
    /// Deep Cold Archive: must be restored before it can be read.
    DeepColdArchive,
    /// A class this client does not know, as OSS spelled it.
    Other(String),
}

impl StorageClass {
    /// Parses OSS's spelling; unknown values are kept.
    pub fn parse(value: &str) -> Self {
        match value {
            "Standard" => Self::Standard,
            "IA" => Self::InfrequentAccess,
            "Archive" => Self::Archive,
            "ColdArchive" => Self::ColdArchive,
            "DeepColdArchive" => Self::DeepColdArchive,
            other => Self::Other(other.to_owned()),
        }
    }

    /// OSS's spelling, as sent in `x-oss-storage-class`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Standard => "Standard",
            Self::InfrequentAccess => "IA",
            Self::Archive => "Archive",
            Self::ColdArchive => "ColdArchive",
            Self::DeepColdArchive => "DeepColdArchive",
            Self::Other(s) => s,
        }
    }

    /// Whether objects of this class must be restored before they can be read.
    pub fn is_archive(&self) -> bool {
        matches!(
            self,
            Self::Archive | Self::ColdArchive | Self::DeepColdArchive
        )
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The restore state of an archived object (`x-oss-restore`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RestoreState {
    /// No restore was requested (or the header is absent).
    #[default]
    NotRequested,
    /// A restore is running: `ongoing-request="true"`.
    InProgress,
    /// A restored copy is readable until `expiry`: `ongoing-request="false", expiry-date="..."`.
    Restored {
        /// When the restored copy expires, if OSS said so.
        expiry: Option<DateTime<Utc>>,
    },
    /// A header value this client cannot read, kept as sent.
    Unknown(String),
}

impl RestoreState {
    /// Parses an `x-oss-restore` value.
    pub fn parse(value: &str) -> Self {
        let mut ongoing = None;
        let mut expiry = None;
        for part in split_params(value) {
            let Some((name, raw)) = part.split_once('=') else {
                continue;
            };
            let raw = raw.trim().trim_matches('"');
            match name.trim() {
                "ongoing-request" => ongoing = Some(raw.eq_ignore_ascii_case("true")),
                "expiry-date" => {
                    expiry = httpdate::parse_http_date(raw)
                        .ok()
                        .map(DateTime::<Utc>::from);
                }
                _ => {}
            }
        }
        match ongoing {
            Some(true) => Self::InProgress,
            Some(false) => Self::Restored { expiry },
            None => Self::Unknown(value.to_owned()),
        }
    }
}

/// Splits `a="x, y", b="z"` at commas outside quotes (the expiry date itself has a comma).
fn split_params(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// Reads the standard content headers from a response.
pub fn content_headers(headers: &HeaderMap) -> ContentHeaders {
    ContentHeaders {
        content_type: text(headers, "content-type"),
        content_encoding: text(headers, "content-encoding"),
        content_disposition: text(headers, "content-disposition"),
        content_language: text(headers, "content-language"),
        cache_control: text(headers, "cache-control"),
        expires: text(headers, "expires"),
    }
}

/// An object's metadata as OSS reports it on HEAD and GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's full size in bytes (for a ranged GET, the total from `Content-Range`).
    pub size: u64,
    /// The ETag exactly as OSS sent it, quotes included: `"5B3C1A2E053D763E1B002CC607C5A0FE"`.
    pub etag: String,
    /// The CRC-64/XZ from `x-oss-hash-crc64ecma`, when present.
    pub crc64: Option<u64>,
    /// `x-oss-object-type`; `Normal` when absent.
    pub object_type: ObjectType,
    /// `x-oss-storage-class`; `Standard` when absent.
    pub storage_class: StorageClass,
    /// `x-oss-restore`.
    pub restore: RestoreState,
    /// `Last-Modified`.
    pub last_modified: Option<DateTime<Utc>>,
    /// The standard content headers.
    pub content: ContentHeaders,
    /// The user metadata (`x-oss-meta-*`), names without the prefix, sorted.
    pub user_metadata: BTreeMap<String, String>,
    /// `x-oss-request-id` of the response this was read from.
    pub request_id: Option<String>,
}

impl ObjectMeta {
    /// Reads the metadata from response headers. `None` for the size when neither
    /// `Content-Range` nor `Content-Length` can be read.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let size = match text(headers, "content-range").and_then(|r| parse_content_range(&r)) {
            Some(range) => range.total?,
            None => text(headers, "content-length")?.parse().ok()?,
        };
        let user_metadata = headers
            .iter()
            .filter_map(|(name, value)| {
                name.as_str()
                    .strip_prefix(USER_META_PREFIX)
                    .map(|n| (n.to_owned(), header_text(value)))
            })
            .collect();
        Some(Self {
            size,
            etag: text(headers, "etag").unwrap_or_default(),
            crc64: text(headers, "x-oss-hash-crc64ecma").and_then(|v| v.parse().ok()),
            object_type: text(headers, "x-oss-object-type")
                .map_or(ObjectType::Normal, |v| ObjectType::parse(&v)),
            storage_class: text(headers, "x-oss-storage-class")
                .map(|v| StorageClass::parse(&v))
                .unwrap_or_default(),
            restore: text(headers, "x-oss-restore")
                .map(|v| RestoreState::parse(&v))
                .unwrap_or_default(),
            last_modified: text(headers, "last-modified")
                .and_then(|v| httpdate::parse_http_date(&v).ok())
                .map(DateTime::<Utc>::from),
            content: content_headers(headers),
            user_metadata,
            request_id: text(headers, "x-oss-request-id"),
        })
    }

    /// The ETag without its quotes, as OSS trigger events spell it.
    pub fn etag_unquoted(&self) -> &str {
        unquote_etag(&self.etag)
    }

    /// Whether the object must be restored (or is still restoring) before it can be read.
    pub fn needs_restore(&self) -> bool {
        self.storage_class.is_archive() && !matches!(self.restore, RestoreState::Restored { .. })
    }

    /// Whether a restore has been requested and is still running.
    pub fn is_restoring(&self) -> bool {
        self.restore == RestoreState::InProgress
    }
}

/// A parsed `Content-Range: bytes first-last/total` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// The first byte offset of the part returned.
    pub first: u64,
    /// The last byte offset of the part returned (inclusive).
    pub last: u64,
    /// The full object size, or `None` for `*`.
    pub total: Option<u64>,
}

/// Parses `bytes first-last/total`.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    Some(ContentRange {
        first: first.trim().parse().ok()?,
        last: last.trim().parse().ok()?,
        total: match total.trim() {
            "*" => None,
            t => Some(t.parse().ok()?),
        },
    })
}

/// A header value as text: UTF-8 when it is, Latin-1 otherwise.
pub(crate) fn header_text(value: &HeaderValue) -> String {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(s) => s.to_owned(),
        Err(_) => value.as_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(header_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_bytes(v.as_bytes()).expect("value"),
            );
        }
        map
    }

    #[test]
    fn reads_every_field_from_head_headers() {
        let h = headers(&[
            ("content-length", "344606"),
            ("etag", "\"5B3C1A2E053D763E1B002CC607C5A0FE\""),
            ("x-oss-hash-crc64ecma", "11051210869376104954"),
            ("x-oss-object-type", "Multipart"),
            ("x-oss-storage-class", "IA"),
            ("last-modified", "Fri, 24 Feb 2012 06:07:48 GMT"),
            ("content-type", "image/jpg"),
            ("content-encoding", "gzip"),
            ("content-disposition", "attachment; filename=\"a b.jpg\""),
            ("content-language", "zh-CN"),
            ("cache-control", "no-cache"),
            ("expires", "Thu, 01 Dec 1994 16:00:00 GMT"),
            ("x-oss-meta-zeta", "last"),
            ("x-oss-meta-Alpha", "first"),
            ("x-oss-meta-unicode", "文件"),
            ("x-oss-request-id", "RID"),
        ]);
        let meta = ObjectMeta::from_headers(&h).expect("meta");
        assert_eq!(meta.size, 344_606);
        assert_eq!(meta.etag, "\"5B3C1A2E053D763E1B002CC607C5A0FE\"");
        assert_eq!(meta.etag_unquoted(), "5B3C1A2E053D763E1B002CC607C5A0FE");
        assert_eq!(meta.crc64, Some(11_051_210_869_376_104_954));
        assert_eq!(meta.object_type, ObjectType::Multipart);
        assert_eq!(meta.storage_class, StorageClass::InfrequentAccess);
        assert_eq!(meta.restore, RestoreState::NotRequested);
        assert_eq!(
            meta.last_modified.map(|t| t.timestamp()),
            Some(1_330_063_668)
        );
        assert_eq!(meta.content.content_type.as_deref(), Some("image/jpg"));
        assert_eq!(meta.content.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(
            meta.content.content_disposition.as_deref(),
            Some("attachment; filename=\"a b.jpg\"")
        );
        assert_eq!(meta.content.content_language.as_deref(), Some("zh-CN"));
        assert_eq!(meta.content.cache_control.as_deref(), Some("no-cache"));
        assert_eq!(
            meta.content.expires.as_deref(),
            Some("Thu, 01 Dec 1994 16:00:00 GMT")
        );
        let names: Vec<&str> = meta.user_metadata.keys().map(String::as_str).collect();
        assert_eq!(names, ["alpha", "unicode", "zeta"]);
        assert_eq!(meta.user_metadata["unicode"], "文件");
        assert_eq!(meta.request_id.as_deref(), Some("RID"));
        assert!(!meta.needs_restore());
    }

    #[test]
    fn ranged_get_reports_the_full_size() {
        let h = headers(&[
            ("content-length", "100"),
            ("content-range", "bytes 100-199/1000"),
        ]);
        assert_eq!(ObjectMeta::from_headers(&h).expect("meta").size, 1000);
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange {
                first: 100,
                last: 199,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-0/*").and_then(|r| r.total),
            None
        );
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn missing_optional_headers_take_defaults() {
        let meta = ObjectMeta::from_headers(&headers(&[("content-length", "0")])).expect("meta");
        assert_eq!(meta.object_type, ObjectType::Normal);
        assert_eq!(meta.storage_class, StorageClass::Standard);
        assert_eq!(meta.crc64, None);
        assert!(meta.user_metadata.is_empty());
        assert!(ObjectMeta::from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn unknown_types_and_classes_are_kept() {
        assert_eq!(
            ObjectType::parse("Future"),
            ObjectType::Other("Future".into())
        );
        assert_eq!(
            StorageClass::parse("Hot"),
            StorageClass::Other("Hot".into())
        );
        for class in [
            "Standard",
            "IA",
            "Archive",
            "ColdArchive",
            "DeepColdArchive",
        ] {
            assert_eq!(StorageClass::parse(class).as_str(), class);
        }
    }

    #[test]
    fn parses_restore_states() {
        assert_eq!(
            RestoreState::parse("ongoing-request=\"true\""),
            RestoreState::InProgress
        );
        let restored = RestoreState::parse(
            "ongoing-request=\"false\", expiry-date=\"Sun, 16 Apr 2017 08:12:33 GMT\"",
        );
        let RestoreState::Restored {
            expiry: Some(expiry),
        } = restored
        else {
            panic!("not restored: {restored:?}");
        };
        assert_eq!(expiry.timestamp(), 1_492_330_353);
        assert!(matches!(
            RestoreState::parse("garbage"),
            RestoreState::Unknown(_)
        ));
    }

    #[test]
    fn archive_needs_restore_until_restored() {
        let mut h = headers(&[
            ("content-length", "1"),
            ("x-oss-storage-class", "ColdArchive"),
        ]);
        assert!(ObjectMeta::from_headers(&h).expect("meta").needs_restore());
        h.insert(
            "x-oss-restore",
            HeaderValue::from_static("ongoing-request=\"true\""),
        );
        let meta = ObjectMeta::from_headers(&h).expect("meta");
        assert!(meta.needs_restore() && meta.is_restoring());
        h.insert(
            "x-oss-restore",
            HeaderValue::from_static(
                "ongoing-request=\"false\", expiry-date=\"Sun, 16 Apr 2017 08:12:33 GMT\"",
            ),
        );
        assert!(!ObjectMeta::from_headers(&h).expect("meta").needs_restore());
    }

    #[test]
    fn unquotes_etags() {
        assert_eq!(unquote_etag("\"ABC\""), "ABC");
        assert_eq!(unquote_etag("ABC"), "ABC");
        assert_eq!(unquote_etag("W/\"ABC-2\""), "ABC-2");
    }
}
