//! The destination marker: the source object's identity, kept in the destination object's user
//! metadata, which makes copies idempotent and deletes safe.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::encoding::encode_path;
use crate::store::{ObjectAttributes, same_etag, unquote_etag};

/// Marker metadata name: the source object, `<scheme>://<bucket>/<percent-encoded key>`, or
/// `sha256:<hex>` of that URL when it is longer than [`MAX_PLAIN_URL`].
pub const MARKER_SOURCE: &str = "oss2s3-src";
/// Marker metadata name: the source ETag without quotes.
pub const MARKER_ETAG: &str = "oss2s3-src-etag";
/// Marker metadata name: the source CRC-64/XZ, decimal.
pub const MARKER_CRC64: &str = "oss2s3-src-crc64";
/// Marker metadata name: the source size in bytes, decimal.
pub const MARKER_SIZE: &str = "oss2s3-src-size";
/// Marker metadata name: a digest of the source's content headers and user metadata, so a
/// metadata-only change (OSS `UpdateObjectMeta`) is copied although the ETag stays.
pub const MARKER_META: &str = "oss2s3-src-meta";
/// Marker metadata name: the key a copied symlink pointed to (compacted like the source).
pub const MARKER_SYMLINK_TARGET: &str = "oss2s3-symlink-target";

/// The longest source URL kept as it is in the marker. Longer ones (long keys, and above all
/// non-ASCII keys, whose percent-encoding triples their size) are kept as a SHA-256 digest, so
/// that every key the destination accepts fits its 2 KB of user metadata.
pub const MAX_PLAIN_URL: usize = 256;

/// Metadata names the engine writes; they are not part of the source's own metadata digest.
const MARKER_PREFIX: &str = "oss2s3-";

/// The marker value naming the source object `scheme://bucket/key`: the URL with the key
/// percent-encoded (all but `A-Za-z0-9-_.~/`) when it is at most [`MAX_PLAIN_URL`] bytes, else
/// `sha256:` and the hex digest of that URL.
pub fn source_url(scheme: &str, bucket: &str, key: &str) -> String {
    compact(format!("{scheme}://{bucket}/{}", encode_path(key)))
}

fn compact(url: String) -> String {
    if url.len() <= MAX_PLAIN_URL {
        url
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(url.as_bytes())))
    }
}

/// A digest of what a metadata-only change can alter: the content headers and the user
/// metadata (without the engine's own `oss2s3-` names), 32 hex digits.
pub fn metadata_digest(attributes: &ObjectAttributes) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in attributes.content.pairs() {
        hasher.update(format!("h:{name}\0{value}\n").as_bytes());
    }
    for (name, value) in &attributes.user_metadata {
        let name = name.to_ascii_lowercase();
        if !name.starts_with(MARKER_PREFIX) {
            hasher.update(format!("m:{name}\0{value}\n").as_bytes());
        }
    }
    hex::encode(&Sha256::digest(hasher.finalize())[..16])
}

/// The identity of one version of a source object: what the marker records and what the engine
/// compares to notice that the source changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SourceVersion {
    /// The ETag as the source sent it (quoted); used for `If-Match` reads.
    pub(super) etag: String,
    pub(super) size: u64,
    pub(super) crc64: Option<u64>,
    /// The source's full-object CRC-64/NVME, when it reports one.
    pub(super) crc64_nvme: Option<u64>,
    /// The MD5 of the source's bytes, when its store vouches for one.
    pub(super) md5: Option<[u8; 16]>,
    /// [`metadata_digest`].
    pub(super) meta: String,
}

impl SourceVersion {
    pub(super) fn of(attributes: &ObjectAttributes) -> Self {
        Self {
            etag: attributes.etag.clone(),
            size: attributes.size,
            crc64: attributes.crc64,
            crc64_nvme: attributes.crc64_nvme,
            md5: attributes.content_md5,
            meta: metadata_digest(attributes),
        }
    }

    /// Whether `attributes` (a fresh HEAD) still describe this version.
    pub(super) fn is_current(&self, attributes: &ObjectAttributes) -> bool {
        same_etag(&self.etag, &attributes.etag)
            && self.size == attributes.size
            && (self.crc64.is_none()
                || attributes.crc64.is_none()
                || self.crc64 == attributes.crc64)
            && self.meta == metadata_digest(attributes)
    }

    /// The marker naming this version of `scheme://bucket/key`; `symlink_target` for a symlink.
    pub(super) fn marker(
        &self,
        scheme: &str,
        bucket: &str,
        key: &str,
        symlink_target: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut marker = BTreeMap::from([
            (MARKER_SOURCE.to_owned(), source_url(scheme, bucket, key)),
            (MARKER_ETAG.to_owned(), unquote_etag(&self.etag).to_owned()),
            (MARKER_SIZE.to_owned(), self.size.to_string()),
            (MARKER_META.to_owned(), self.meta.clone()),
        ]);
        if let Some(crc) = self.crc64 {
            marker.insert(MARKER_CRC64.to_owned(), crc.to_string());
        }
        if let Some(target) = symlink_target {
            marker.insert(
                MARKER_SYMLINK_TARGET.to_owned(),
                compact(encode_path(target).to_string()),
            );
        }
        marker
    }
}

/// The marker naming the source object `scheme://bucket/key` in the version `attributes`
/// describe; `symlink_target` for a symlink.
pub fn source_marker(
    scheme: &str,
    bucket: &str,
    key: &str,
    attributes: &ObjectAttributes,
    symlink_target: Option<&str>,
) -> BTreeMap<String, String> {
    SourceVersion::of(attributes).marker(scheme, bucket, key, symlink_target)
}

/// Whether the destination's metadata names the same source version as `marker`.
pub fn marker_matches(
    marker: &BTreeMap<String, String>,
    existing: &BTreeMap<String, String>,
) -> bool {
    [
        MARKER_SOURCE,
        MARKER_ETAG,
        MARKER_CRC64,
        MARKER_SIZE,
        MARKER_META,
    ]
    .iter()
    .all(|name| marker.get(*name) == existing.get(*name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ContentHeaders;

    #[test]
    fn source_url_encodes_everything_but_unreserved_and_slash() {
        assert_eq!(
            source_url("oss", "b", "dir/a b+c%d/文.txt"),
            "oss://b/dir/a%20b%2Bc%25d/%E6%96%87.txt"
        );
    }

    #[test]
    fn long_source_urls_become_a_digest_that_fits_any_metadata_limit() {
        // 341 three-byte characters: 1,023 bytes of key, 3,069 bytes percent-encoded.
        let key = "文".repeat(341);
        let url = source_url("oss", "bucket", &key);
        assert!(url.starts_with("sha256:"), "{url}");
        assert_eq!(url.len(), "sha256:".len() + 64);
        assert_ne!(url, source_url("oss", "bucket", &"文".repeat(340)));
        assert_eq!(url, source_url("oss", "bucket", &key), "deterministic");
        let short = "k".repeat(MAX_PLAIN_URL - "oss://bucket/".len());
        assert_eq!(source_url("oss", "bucket", &short).len(), MAX_PLAIN_URL);
    }

    fn attributes(meta: &[(&str, &str)], content_type: Option<&str>) -> ObjectAttributes {
        ObjectAttributes {
            size: 3,
            etag: "\"E\"".into(),
            crc64: Some(1),
            content: ContentHeaders {
                content_type: content_type.map(str::to_owned),
                ..ContentHeaders::default()
            },
            user_metadata: meta
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            storage_class: None,
            kind: crate::store::ObjectKind::Normal,
            archive: crate::store::ArchiveState::Online,
            last_modified: None,
            ..ObjectAttributes::default()
        }
    }

    #[test]
    fn metadata_digest_follows_content_headers_and_user_metadata_only() {
        let base = metadata_digest(&attributes(&[("a", "1")], Some("text/plain")));
        assert_eq!(base.len(), 32);
        assert_ne!(
            base,
            metadata_digest(&attributes(&[("a", "2")], Some("text/plain")))
        );
        assert_ne!(
            base,
            metadata_digest(&attributes(&[("a", "1")], Some("text/html")))
        );
        assert_eq!(
            base,
            metadata_digest(&attributes(
                &[("a", "1"), ("oss2s3-src-etag", "X")],
                Some("text/plain")
            )),
            "the engine's own marker names do not count"
        );
    }

    #[test]
    fn a_version_is_current_until_bytes_or_metadata_change() {
        let v1 = attributes(&[("a", "1")], None);
        let version = SourceVersion::of(&v1);
        assert!(version.is_current(&v1));
        let mut retagged = v1.clone();
        retagged.etag = "\"F\"".into();
        assert!(!version.is_current(&retagged));
        assert!(!version.is_current(&attributes(&[("a", "2")], None)));
    }

    #[test]
    fn marker_mismatch_on_any_identity_field() {
        let marker = BTreeMap::from([
            (MARKER_SOURCE.to_owned(), "oss://b/k".to_owned()),
            (MARKER_ETAG.to_owned(), "E".to_owned()),
            (MARKER_CRC64.to_owned(), "1".to_owned()),
            (MARKER_SIZE.to_owned(), "3".to_owned()),
            (MARKER_META.to_owned(), "0123".to_owned()),
        ]);
        let mut existing = marker.clone();
        existing.insert("other".into(), "x".into());
        assert!(marker_matches(&marker, &existing));
        for name in [
            MARKER_SOURCE,
            MARKER_ETAG,
            MARKER_CRC64,
            MARKER_SIZE,
            MARKER_META,
        ] {
            let mut changed = existing.clone();
            changed.insert(name.to_owned(), "changed".into());
            assert!(!marker_matches(&marker, &changed), "{name}");
            changed.remove(name);
            assert!(!marker_matches(&marker, &changed), "{name} missing");
        }
    }
}
