//! Where to split a key range: points spread evenly between two keys in the space of printable
//! strings, and the probes (one-key listings) that find the keys' shared prefix and trim empty
//! space, so that the points fall where the keys are.

use crate::store::{ListRequest, ObjectStore, StoreError};

/// Positions after the shared prefix that the spacing looks at.
const DIGITS: usize = 12;
/// The largest value of [`DIGITS`] (12) positions.
const TOP_VALUE: u128 = BASE.pow(12) - 1;
/// Printable ASCII, `' '` to `'~'`.
const BASE: u128 = 95;
/// How many times one split may halve space that holds no key.
const TRIMS: usize = 64;

fn digit(byte: Option<&u8>) -> u128 {
    byte.map_or(0, |&b| u128::from(b.clamp(0x20, 0x7E) - 0x20))
}

/// The value of `tail`'s first [`DIGITS`] bytes as a base-95 fraction (bytes outside
/// printable ASCII clamped; missing positions are `' '`, the smallest digit).
fn value(tail: &[u8]) -> u128 {
    (0..DIGITS).fold(0, |v, i| v * BASE + digit(tail.get(i)))
}

/// The shortest printable string with `value` (trailing `' '` dropped).
fn string(mut value: u128) -> String {
    let mut digits = [b' '; DIGITS];
    for slot in digits.iter_mut().rev() {
        *slot = 0x20 + u8::try_from(value % BASE).unwrap_or(0);
        value /= BASE;
    }
    let len = digits.iter().rposition(|&d| d != b' ').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&digits[..len]).into_owned()
}

/// The longest common prefix of `a` and `b` that ends on a character boundary of both.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(len) || !b.is_char_boundary(len) {
        len -= 1;
    }
    &a[..len]
}

/// Up to `n - 1` keys strictly between `lo` and `hi` (`None`: past every printable key),
/// increasing, spread evenly in the space of printable strings. Fewer when the two are too close
/// to tell apart.
pub fn spread(lo: &str, hi: Option<&str>, n: u32) -> Vec<String> {
    let (prefix, top) = match hi {
        Some(hi) => {
            let prefix = common_prefix(lo, hi);
            (prefix, value(&hi.as_bytes()[prefix.len()..]))
        }
        None => ("", TOP_VALUE),
    };
    let bottom = value(&lo.as_bytes()[prefix.len()..]);
    if top <= bottom {
        return Vec::new();
    }
    let mut points: Vec<String> = Vec::new();
    for i in 1..u128::from(n.max(1)) {
        let point = format!(
            "{prefix}{}",
            string(bottom + (top - bottom) * i / u128::from(n))
        );
        let inside = point.as_str() > lo && hi.is_none_or(|hi| point.as_str() < hi);
        if inside && points.last().is_none_or(|p| *p < point) {
            points.push(point);
        }
    }
    points
}

/// The first relative key of `bucket` under `prefix` after `after` and not after `until`.
async fn first_after<S: ObjectStore>(
    store: &S,
    bucket: &str,
    prefix: &str,
    after: Option<&str>,
    until: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let request = ListRequest {
        prefix: prefix.to_owned(),
        start_after: after.map(|a| format!("{prefix}{a}")),
        continuation: None,
        max_keys: Some(1),
    };
    let page = store.list_objects(bucket, &request).await?;
    Ok(page
        .objects
        .into_iter()
        .next()
        .and_then(|o| o.key.strip_prefix(prefix).map(str::to_owned))
        .filter(|k| until.is_none_or(|u| k.as_str() <= u)))
}

/// Above every key that starts with a given prefix (in practice: the highest character that is
/// not a noncharacter).
const ABOVE: char = '\u{10FFFD}';

/// The longest prefix of `lo` (a key of the range, on a character boundary) that every key from
/// `lo` up to `until` starts with, found with one-key probes in a binary search over its length.
async fn shared_prefix<S: ObjectStore>(
    store: &S,
    bucket: &str,
    prefix: &str,
    lo: &str,
    until: Option<&str>,
) -> Result<String, StoreError> {
    let lengths: Vec<usize> = lo
        .char_indices()
        .map(|(i, _)| i)
        .chain([lo.len()])
        .collect();
    // `lengths[good]` is shared (the empty prefix always is); `lengths[bad]` is not.
    let (mut good, mut bad) = (0, lengths.len());
    while bad - good > 1 {
        let middle = usize::midpoint(good, bad);
        let candidate = format!("{}{ABOVE}", &lo[..lengths[middle]]);
        if first_after(store, bucket, prefix, Some(&candidate), until)
            .await?
            .is_none()
        {
            good = middle;
        } else {
            bad = middle;
        }
    }
    Ok(lo[..lengths[good]].to_owned())
}

/// Up to `n - 1` increasing points that split the relative keys `after < k <= until` into `n`
/// ranges of about equal numbers of keys, found with one-key listings: each split takes the
/// keys' shared prefix, halves the space after it, and trims space that holds no key, so the
/// points fall where the keys are, whatever prefix they share or characters they use. Halves
/// are split at the same time. Fewer points when the range holds too few keys.
pub async fn split_points<S: ObjectStore>(
    store: &S,
    bucket: &str,
    prefix: &str,
    after: Option<&str>,
    until: Option<&str>,
    n: u32,
) -> Result<Vec<String>, StoreError> {
    if n <= 1 {
        return Ok(Vec::new());
    }
    let Some(lo) = first_after(store, bucket, prefix, after, until).await? else {
        return Ok(Vec::new());
    };
    bisect(store, bucket, prefix, lo, until.map(str::to_owned), n).await
}

/// [`split_points`] for the keys from `lo` (a key) up to `top`.
fn bisect<'a, S: ObjectStore>(
    store: &'a S,
    bucket: &'a str,
    prefix: &'a str,
    lo: String,
    top: Option<String>,
    n: u32,
) -> futures::future::BoxFuture<'a, Result<Vec<String>, StoreError>> {
    Box::pin(async move {
        if n <= 1 {
            return Ok(Vec::new());
        }
        let shared = shared_prefix(store, bucket, prefix, &lo, top.as_deref()).await?;
        let ceiling = format!("{shared}{ABOVE}");
        let mut hi = match &top {
            Some(top) if *top < ceiling => top.clone(),
            _ => ceiling,
        };
        for _ in 0..TRIMS {
            let Some(mid) = spread(&lo, Some(&hi), 2).pop() else {
                break;
            };
            match first_after(store, bucket, prefix, Some(&mid), top.as_deref()).await? {
                // Nothing above the middle: the keys end below it.
                None => hi = mid,
                Some(next) => {
                    let (left, right) = futures::future::try_join(
                        bisect(store, bucket, prefix, lo, Some(mid.clone()), n / 2),
                        bisect(store, bucket, prefix, next, top, n - n / 2),
                    )
                    .await?;
                    let mut points = left;
                    points.push(mid);
                    points.extend(right);
                    return Ok(points);
                }
            }
        }
        Ok(Vec::new())
    })
}

/// Where to split a job's range into `n` shards (see [`split_points`]).
pub async fn plan_bounds<S: ObjectStore>(
    store: &S,
    bucket: &str,
    prefix: &str,
    n: u32,
) -> Result<Vec<String>, StoreError> {
    split_points(store, bucket, prefix, None, None, n).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_lie_strictly_between_in_order() {
        for (lo, hi) in [
            ("a", Some("b")),
            ("data/2024-01-01/x", Some("data/2026-12-01/y")),
            ("img_000001.jpg", Some("img_999999.jpg")),
            ("a", None),
            ("", None),
            ("é/1", Some("é/9")),
            ("a\u{1}", Some("a\u{2}")),
            ("~~~", None),
        ] {
            for n in [2, 3, 16, 95] {
                let points = spread(lo, hi, n);
                assert!(points.len() < n as usize, "{lo:?} {hi:?} {n}");
                assert!(points.windows(2).all(|w| w[0] < w[1]));
                assert!(
                    points
                        .iter()
                        .all(|p| p.as_str() > lo && hi.is_none_or(|h| p.as_str() < h)),
                    "{lo:?} {hi:?} {points:?}"
                );
            }
        }
    }

    #[test]
    fn points_follow_the_shared_prefix() {
        let points = spread("data/2024-01-01/x", Some("data/2026-12-01/y"), 4);
        assert_eq!(points.len(), 3);
        assert!(
            points.iter().all(|p| p.starts_with("data/202")),
            "{points:?}"
        );
        let mid = spread("img_000000", Some("img_999999"), 2);
        assert_eq!(mid.len(), 1);
        assert!(
            mid[0].starts_with("img_4") || mid[0].starts_with("img_5"),
            "{mid:?}"
        );
        // Adjacent keys leave no room.
        assert!(spread("a", Some("a "), 2).is_empty());
        assert!(spread("b", Some("a"), 2).is_empty());
    }
}
