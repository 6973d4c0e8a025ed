//! XML helpers: escaping for the documents the emulator writes, `encoding-type=url`, and the
//! request bodies it reads (CompleteMultipartUpload, Delete, RestoreRequest).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::error::OssError;

/// Bytes kept as they are by `encoding-type=url`: unreserved characters and `/`. Everything
/// else, including space and `+`, becomes `%XX`, so both `unquote` and query-style decoders
/// read the key back unchanged.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Escapes text for an XML element.
pub(crate) fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Writes a value for a listing: URL-encoded when the request asked for `encoding-type=url`,
/// XML-escaped otherwise.
pub(crate) fn encode_value(s: &str, url: bool) -> String {
    if url {
        utf8_percent_encode(s, URL_ENCODE).to_string()
    } else {
        escape(s)
    }
}

/// `<CompleteMultipartUpload>`: the parts to stitch together.
#[derive(Debug, Deserialize)]
pub(crate) struct CompleteMultipartUpload {
    #[serde(rename = "Part", default)]
    pub(crate) parts: Vec<CompletePart>,
}

/// One `<Part>` of a CompleteMultipartUpload request.
#[derive(Debug, Deserialize)]
pub(crate) struct CompletePart {
    #[serde(rename = "PartNumber")]
    pub(crate) part_number: String,
    #[serde(rename = "ETag")]
    pub(crate) etag: String,
}

/// `<Delete>`: the keys of a DeleteMultipleObjects request.
#[derive(Debug, Deserialize)]
pub(crate) struct Delete {
    #[serde(rename = "Quiet", default)]
    pub(crate) quiet: Option<String>,
    #[serde(rename = "Object", default)]
    pub(crate) objects: Vec<DeleteObject>,
}

/// One `<Object>` of a Delete request.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteObject {
    #[serde(rename = "Key")]
    pub(crate) key: String,
}

/// `<RestoreRequest>`: how long the restored copy lives.
#[derive(Debug, Deserialize)]
pub(crate) struct RestoreRequest {
    #[serde(rename = "Days", default)]
    pub(crate) days: Option<String>,
}

/// Parses a request body into `T`, answering MalformedXML when it does not fit.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, OssError> {
    let text = std::str::from_utf8(body).map_err(|_| OssError::malformed_xml())?;
    quick_xml::de::from_str(text).map_err(|_| OssError::malformed_xml())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_escapes_plus_space_and_percent_but_keeps_slash() {
        assert_eq!(encode_value("a b+c%/é", true), "a%20b%2Bc%25/%C3%A9");
        assert_eq!(encode_value("a<b&", false), "a&lt;b&amp;");
    }

    #[test]
    fn parses_complete_and_rejects_garbage() {
        let parsed: CompleteMultipartUpload = parse(
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"AB\"</ETag></Part></CompleteMultipartUpload>",
        )
        .expect("parses");
        assert_eq!(parsed.parts.len(), 1);
        assert_eq!(parsed.parts[0].etag, "\"AB\"");
        assert!(parse::<CompleteMultipartUpload>(b"<Complete").is_err());
        assert!(parse::<Delete>(b"not xml at all").is_err());
    }
}
