//! What one merged entry means for a job.

use crate::replicate::{
    MARKER_ETAG, MARKER_SIZE, MARKER_SOURCE, marker_matches, source_marker, source_url,
};
use crate::store::{
    ListedObject, ObjectAttributes, ObjectStore, StoreError, StoreErrorKind, same_etag,
    unquote_etag,
};

use super::merge::{Entry, Pair};

/// Which destination objects a sync may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// None: an existing destination object is kept, whatever it holds.
    Never,
    /// Those whose marker names an older version of the same source object (the default). A
    /// destination object without a marker is kept and reported as a conflict, unless it
    /// provably holds the same bytes (same size and the same MD5 ETag).
    #[default]
    Changed,
    /// Every one that does not carry the current source version's marker, also objects without
    /// a marker (such as data another tool uploaded).
    Always,
}

impl std::str::FromStr for Overwrite {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "never" => Ok(Self::Never),
            "changed" => Ok(Self::Changed),
            "always" => Ok(Self::Always),
            other => Err(format!("{other:?} is not never, changed or always")),
        }
    }
}

impl std::fmt::Display for Overwrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Never => "never",
            Self::Changed => "changed",
            Self::Always => "always",
        })
    }
}

/// What a job does with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Copy: the destination lacks the object.
    Missing,
    /// Copy: the destination holds something else; the reason says what.
    Changed(String),
    /// Nothing to do; the reason says how that is known.
    UpToDate(&'static str),
    /// The destination holds something else, and the overwrite rule keeps it; the reason says
    /// what it holds.
    Conflict(String),
    /// Only the destination has it. `owned` says whether its marker names the source key the
    /// job's prefixes map it to (`None`: not checked).
    Extra {
        /// Whether oss2s3 wrote it from that source key.
        owned: Option<bool>,
    },
}

impl Decision {
    /// Whether a sync copies the object.
    pub fn copies(&self) -> bool {
        matches!(self, Self::Missing | Self::Changed(_))
    }
}

/// How entries are compared: the two stores, their buckets and prefixes, and the rules.
#[derive(Debug, Clone)]
pub struct Comparison<S, D> {
    /// The source store.
    pub source: S,
    /// The source bucket.
    pub source_bucket: String,
    /// The source prefix.
    pub source_prefix: String,
    /// The destination store.
    pub destination: D,
    /// The destination bucket.
    pub destination_bucket: String,
    /// The destination prefix.
    pub destination_prefix: String,
    /// Which destination objects may be replaced.
    pub overwrite: Overwrite,
    /// HEAD the source as well and compare the whole marker (CRC-64 and the metadata digest
    /// too), which finds metadata-only changes; costs one more request per object present on
    /// both sides.
    pub check_metadata: bool,
    /// HEAD destination-only objects to learn whether oss2s3 wrote them (needed to delete).
    pub check_extra_owner: bool,
}

/// Whether the two listed ETags prove the same bytes: equal, and both plain MD5 digests (32 hex
/// digits; multipart and other ETags are not digests of the body).
fn same_md5(a: &ListedObject, b: &ListedObject) -> bool {
    let plain = |e: &str| {
        let e = unquote_etag(e);
        e.len() == 32 && e.bytes().all(|c| c.is_ascii_hexdigit())
    };
    a.size == b.size && plain(&a.etag) && plain(&b.etag) && same_etag(&a.etag, &b.etag)
}

/// Compares one entry (see [`Comparison`]), with a HEAD only where the listings cannot tell.
pub async fn compare<S, D>(
    comparison: &Comparison<S, D>,
    entry: &Entry,
) -> Result<Decision, StoreError>
where
    S: ObjectStore,
    D: ObjectStore,
{
    let c = comparison;
    match &entry.pair {
        Pair::Source(_) => Ok(Decision::Missing),
        Pair::Destination(destination) => {
            if !c.check_extra_owner {
                return Ok(Decision::Extra { owned: None });
            }
            let source_key = format!("{}{}", c.source_prefix, entry.relative_key);
            let owned = match c
                .destination
                .head_object(&c.destination_bucket, &destination.key)
                .await
            {
                Ok(attributes) => {
                    attributes.user_metadata.get(MARKER_SOURCE)
                        == Some(&source_url(
                            c.source.scheme(),
                            &c.source_bucket,
                            &source_key,
                        ))
                }
                Err(e) if e.kind() == StoreErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            Ok(Decision::Extra { owned: Some(owned) })
        }
        Pair::Both {
            source,
            destination,
        } => {
            if c.overwrite == Overwrite::Never {
                return Ok(Decision::Conflict(
                    "the destination object exists and --overwrite is never".to_owned(),
                ));
            }
            if c.overwrite == Overwrite::Changed
                && !c.check_metadata
                && same_md5(source, destination)
            {
                return Ok(Decision::UpToDate("same size and MD5 ETag"));
            }
            let dst = match c
                .destination
                .head_object(&c.destination_bucket, &destination.key)
                .await
            {
                Ok(attributes) => attributes,
                Err(e) if e.kind() == StoreErrorKind::NotFound => return Ok(Decision::Missing),
                Err(e) => return Err(e),
            };
            decide_pair(c, entry, source, &dst).await
        }
    }
}

async fn decide_pair<S, D>(
    c: &Comparison<S, D>,
    entry: &Entry,
    source: &ListedObject,
    dst: &ObjectAttributes,
) -> Result<Decision, StoreError>
where
    S: ObjectStore,
    D: ObjectStore,
{
    let source_key = format!("{}{}", c.source_prefix, entry.relative_key);
    let url = source_url(c.source.scheme(), &c.source_bucket, &source_key);
    let metadata = &dst.user_metadata;
    let Some(marked) = metadata.get(MARKER_SOURCE) else {
        return Ok(unmarked(c.overwrite, source, dst));
    };
    if *marked != url {
        let reason = format!("the destination object was written by oss2s3 from {marked}");
        return Ok(match c.overwrite {
            Overwrite::Always => Decision::Changed(reason),
            _ => Decision::Conflict(reason),
        });
    }
    if c.check_metadata {
        let attributes = match c.source.head_object(&c.source_bucket, &source_key).await {
            Ok(attributes) => attributes,
            // Gone since the listing: nothing to copy; the next run sees it as extra.
            Err(e) if e.kind() == StoreErrorKind::NotFound => {
                return Ok(Decision::UpToDate("source deleted since it was listed"));
            }
            Err(e) => return Err(e),
        };
        let want = source_marker(
            c.source.scheme(),
            &c.source_bucket,
            &source_key,
            &attributes,
            None,
        );
        return Ok(if marker_matches(&want, metadata) {
            Decision::UpToDate("marker matches the source's ETag, CRC-64, size and metadata")
        } else {
            Decision::Changed(changed_reason(
                metadata,
                &attributes.etag,
                attributes.size,
                true,
            ))
        });
    }
    let etag_ok = metadata
        .get(MARKER_ETAG)
        .is_some_and(|e| same_etag(e, &source.etag));
    let size_ok = metadata.get(MARKER_SIZE) == Some(&source.size.to_string());
    Ok(if etag_ok && size_ok {
        Decision::UpToDate("marker matches the source's ETag and size")
    } else {
        Decision::Changed(changed_reason(metadata, &source.etag, source.size, false))
    })
}

fn changed_reason(
    metadata: &std::collections::BTreeMap<String, String>,
    etag: &str,
    size: u64,
    with_metadata: bool,
) -> String {
    let old_etag = metadata.get(MARKER_ETAG).map_or("none", String::as_str);
    let old_size = metadata.get(MARKER_SIZE).map_or("none", String::as_str);
    if same_etag(old_etag, etag) && old_size == size.to_string() && with_metadata {
        "the source's metadata or CRC-64 changed since it was copied".to_owned()
    } else {
        format!(
            "the destination holds source ETag {old_etag} size {old_size}; the source is now ETag {} size {size}",
            unquote_etag(etag)
        )
    }
}

/// A destination object without a marker.
fn unmarked(overwrite: Overwrite, source: &ListedObject, dst: &ObjectAttributes) -> Decision {
    let same = dst.size == source.size && same_etag(&dst.etag, &source.etag);
    match overwrite {
        Overwrite::Always => {
            Decision::Changed("the destination object has no oss2s3 marker".to_owned())
        }
        _ if same => Decision::UpToDate("same size and ETag (no marker)"),
        _ => Decision::Conflict(format!(
            "the destination object has no oss2s3 marker and differs (size {} vs {}); --overwrite always replaces it",
            dst.size, source.size
        )),
    }
}
