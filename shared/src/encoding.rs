//! The percent-encoding that OSS and S3 use for keys in URLs, signatures and markers, in one
//! place: RFC 3986's unreserved characters (`A-Za-z0-9-_.~`) stay as they are, every other
//! byte of the UTF-8 key becomes `%XX` with upper-case hex.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, PercentEncode, utf8_percent_encode};

/// Kept in a path: the unreserved characters and `/`.
pub const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Kept in a query key or value: the unreserved characters only (`/` becomes `%2F`).
pub const QUERY: &AsciiSet = &PATH.add(b'/');

/// `key` percent-encoded for a URL path, `/` kept.
pub fn encode_path(key: &str) -> PercentEncode<'_> {
    utf8_percent_encode(key, PATH)
}

/// `value` percent-encoded for a query string, `/` encoded too.
pub fn encode_query(value: &str) -> PercentEncode<'_> {
    utf8_percent_encode(value, QUERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_keeps_unreserved_and_slash() {
        assert_eq!(
            encode_path("dir/a b+c%d~_-./文").to_string(),
            "dir/a%20b%2Bc%25d~_-./%E6%96%87"
        );
    }

    #[test]
    fn query_also_encodes_slash() {
        assert_eq!(encode_query("a/b c").to_string(), "a%2Fb%20c");
    }
}
