//! The destination marker: the source object's identity, kept in the destination object's user
//! metadata, which makes copies idempotent and deletes safe.

use std::collections::BTreeMap;

use crate::encoding::encode_path;
use crate::store::ObjectAttributes;

/// Marker metadata name: the source object, `<scheme>://<bucket>/<percent-encoded key>`.
pub const MARKER_SOURCE: &str = "oss2s3-src";
/// Marker metadata name: the source ETag without quotes.
pub const MARKER_ETAG: &str = "oss2s3-src-etag";
/// Marker metadata name: the source CRC-64/XZ, decimal.
pub const MARKER_CRC64: &str = "oss2s3-src-crc64";
/// Marker metadata name: the source size in bytes, decimal.
pub const MARKER_SIZE: &str = "oss2s3-src-size";
/// Marker metadata name: the key a copied symlink pointed to (percent-encoded).
pub const MARKER_SYMLINK_TARGET: &str = "oss2s3-symlink-target";

/// `scheme://bucket/key` with the key percent-encoded (all but `A-Za-z0-9-_.~/`).
pub fn source_url(scheme: &str, bucket: &str, key: &str) -> String {
    format!("{scheme}://{bucket}/{}", encode_path(key))
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
    let mut marker = BTreeMap::from([
        (MARKER_SOURCE.to_owned(), source_url(scheme, bucket, key)),
        (
            MARKER_ETAG.to_owned(),
            attributes.etag_unquoted().to_owned(),
        ),
        (MARKER_SIZE.to_owned(), attributes.size.to_string()),
    ]);
    if let Some(crc) = attributes.crc64 {
        marker.insert(MARKER_CRC64.to_owned(), crc.to_string());
    }
    if let Some(target) = symlink_target {
        marker.insert(
            MARKER_SYMLINK_TARGET.to_owned(),
            encode_path(target).to_string(),
        );
    }
    marker
}

/// Whether the destination's metadata names the same source version as `marker`.
pub fn marker_matches(
    marker: &BTreeMap<String, String>,
    existing: &BTreeMap<String, String>,
) -> bool {
    [MARKER_SOURCE, MARKER_ETAG, MARKER_CRC64, MARKER_SIZE]
        .iter()
        .all(|name| marker.get(*name) == existing.get(*name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_url_encodes_everything_but_unreserved_and_slash() {
        assert_eq!(
            source_url("oss", "b", "dir/a b+c%d/文.txt"),
            "oss://b/dir/a%20b%2Bc%25d/%E6%96%87.txt"
        );
    }

    #[test]
    fn marker_mismatch_on_any_identity_field() {
        let marker = BTreeMap::from([
            (MARKER_SOURCE.to_owned(), "oss://b/k".to_owned()),
            (MARKER_ETAG.to_owned(), "E".to_owned()),
            (MARKER_CRC64.to_owned(), "1".to_owned()),
            (MARKER_SIZE.to_owned(), "3".to_owned()),
        ]);
        let mut existing = marker.clone();
        existing.insert("other".into(), "x".into());
        assert!(marker_matches(&marker, &existing));
        for name in [MARKER_SOURCE, MARKER_ETAG, MARKER_CRC64, MARKER_SIZE] {
            let mut changed = existing.clone();
            changed.insert(name.to_owned(), "changed".into());
            assert!(!marker_matches(&marker, &changed), "{name}");
            changed.remove(name);
            assert!(!marker_matches(&marker, &changed), "{name} missing");
        }
    }
}
