//! Two sorted listings merged by relative key.

use std::cmp::Ordering;

use futures::stream::{self, BoxStream, StreamExt};

use crate::store::{ListedObject, StoreError};

/// What one relative key holds on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pair {
    /// Only the source has it.
    Source(ListedObject),
    /// Only the destination has it.
    Destination(ListedObject),
    /// Both sides have it.
    Both {
        /// The source object.
        source: ListedObject,
        /// The destination object.
        destination: ListedObject,
    },
}

/// One relative key of a merged listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key without the side's prefix; the same on both sides.
    pub relative_key: String,
    /// What each side holds.
    pub pair: Pair,
}

impl Entry {
    /// The source object, when the source has one.
    pub fn source(&self) -> Option<&ListedObject> {
        match &self.pair {
            Pair::Source(s) | Pair::Both { source: s, .. } => Some(s),
            Pair::Destination(_) => None,
        }
    }

    /// The destination object, when the destination has one.
    pub fn destination(&self) -> Option<&ListedObject> {
        match &self.pair {
            Pair::Destination(d) | Pair::Both { destination: d, .. } => Some(d),
            Pair::Source(_) => None,
        }
    }
}

type Listing =
    std::pin::Pin<Box<stream::Peekable<BoxStream<'static, Result<ListedObject, StoreError>>>>>;

struct Sides {
    source: Listing,
    source_prefix: String,
    destination: Listing,
    destination_prefix: String,
}

/// The peeked relative key of one side: `Ok(None)` at its end.
async fn peek_key(listing: &mut Listing, prefix: &str) -> Result<Option<String>, StoreError> {
    match listing.as_mut().peek().await {
        None => Ok(None),
        Some(Ok(object)) => Ok(Some(
            object
                .key
                .strip_prefix(prefix)
                .unwrap_or(&object.key)
                .to_owned(),
        )),
        Some(Err(_)) => match listing.as_mut().next().await {
            Some(Err(e)) => Err(e),
            _ => unreachable!("peeked an error"),
        },
    }
}

async fn take(listing: &mut Listing) -> Result<ListedObject, StoreError> {
    match listing.as_mut().next().await {
        Some(result) => result,
        None => unreachable!("peeked an object"),
    }
}

/// Merges a source listing of keys under `source_prefix` with a destination listing of keys
/// under `destination_prefix` (both in UTF-8 byte order, as [`list_objects`](super::list_objects)
/// gives them) into one stream of [`Entry`]s in relative-key order. Relative keys keep the
/// order, since both sides share their prefix: key `p + r` maps to `q + r`, as the
/// replicator's `SRC_PREFIX`/`DST_PREFIX` mapping does.
pub fn merge(
    source: BoxStream<'static, Result<ListedObject, StoreError>>,
    source_prefix: &str,
    destination: BoxStream<'static, Result<ListedObject, StoreError>>,
    destination_prefix: &str,
) -> BoxStream<'static, Result<Entry, StoreError>> {
    let sides = Sides {
        source: Box::pin(source.peekable()),
        source_prefix: source_prefix.to_owned(),
        destination: Box::pin(destination.peekable()),
        destination_prefix: destination_prefix.to_owned(),
    };
    stream::try_unfold(sides, |mut sides| async move {
        let s = peek_key(&mut sides.source, &sides.source_prefix).await?;
        let d = peek_key(&mut sides.destination, &sides.destination_prefix).await?;
        let (relative_key, pair) = match (s, d) {
            (None, None) => return Ok(None),
            (Some(s), None) => (s, Pair::Source(take(&mut sides.source).await?)),
            (None, Some(d)) => (d, Pair::Destination(take(&mut sides.destination).await?)),
            (Some(s), Some(d)) => match s.as_bytes().cmp(d.as_bytes()) {
                Ordering::Less => (s, Pair::Source(take(&mut sides.source).await?)),
                Ordering::Greater => (d, Pair::Destination(take(&mut sides.destination).await?)),
                Ordering::Equal => (
                    s,
                    Pair::Both {
                        source: take(&mut sides.source).await?,
                        destination: take(&mut sides.destination).await?,
                    },
                ),
            },
        };
        Ok(Some((Entry { relative_key, pair }, sides)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(key: &str, size: u64) -> ListedObject {
        ListedObject {
            key: key.to_owned(),
            size,
            etag: "\"e\"".to_owned(),
            last_modified: None,
            storage_class: None,
        }
    }

    fn listing(keys: &[&str]) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        let objects: Vec<_> = keys.iter().map(|k| Ok(listed(k, 1))).collect();
        stream::iter(objects).boxed()
    }

    async fn run(src: &[&str], sp: &str, dst: &[&str], dp: &str) -> Vec<(String, char)> {
        merge(listing(src), sp, listing(dst), dp)
            .map(|e| {
                let e = e.expect("no error");
                let side = match e.pair {
                    Pair::Source(_) => 's',
                    Pair::Destination(_) => 'd',
                    Pair::Both { .. } => 'b',
                };
                (e.relative_key, side)
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn pairs_keys_by_their_relative_names_in_byte_order() {
        let got = run(
            &["p/a", "p/b", "p/é", "p/😀"],
            "p/",
            &["q/b", "q/c", "q/\u{fffd}", "q/😀"],
            "q/",
        )
        .await;
        let want = [
            ("a", 's'),
            ("b", 'b'),
            ("c", 'd'),
            ("é", 's'),
            ("\u{fffd}", 'd'),
            ("😀", 'b'),
        ];
        let want: Vec<_> = want.iter().map(|(k, c)| ((*k).to_owned(), *c)).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn an_empty_side_yields_the_other_whole() {
        assert_eq!(run(&[], "", &["x", "y"], "").await.len(), 2);
        assert_eq!(run(&["x"], "", &[], "").await, vec![("x".to_owned(), 's')]);
        assert!(run(&[], "", &[], "").await.is_empty());
    }

    #[tokio::test]
    async fn an_error_on_either_side_ends_the_merge_with_it() {
        let failing = stream::iter(vec![
            Ok(listed("a", 1)),
            Err(StoreError::new(
                crate::store::StoreErrorKind::Unavailable,
                "ListObjects",
                "b",
                "boom",
            )),
        ])
        .boxed();
        let results: Vec<_> = merge(listing(&["a", "b"]), "", failing, "").collect().await;
        assert!(results[0].is_ok());
        assert!(results.iter().any(Result::is_err), "{results:?}");
    }
}
