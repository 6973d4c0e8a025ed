//! The request bodies the emulator reads: CompleteMultipartUpload, Delete and RestoreRequest.
//! Values stay strings here; the operations parse and check them, so that a bad number is
//! reported as OSS reports it.

use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

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
