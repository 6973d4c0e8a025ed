//! The XML on the wire: request bodies read with serde ([`requests`]), response documents
//! written from serde types ([`responses`]), and the `<Error>` response every failure gets.
//!
//! Documents keep the layout the emulator has always sent: the
//! `<?xml version="1.0" encoding="UTF-8"?>` declaration on its own line, two-space indentation,
//! one element per line, empty elements as `<A></A>`, all five XML special characters escaped
//! in text, and a line break at the end. An element without any children is written on one line
//! (a quiet `DeleteResult` is `<DeleteResult></DeleteResult>`).

pub(crate) mod requests;
pub(crate) mod responses;

use axum::body::Body;
use base64::Engine as _;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use quick_xml::se::{QuoteLevel, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::OssError;

/// The declaration every document starts with.
const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// A response document: a serde type whose container name is the root element.
pub(crate) trait Document: Serialize {
    /// Whether a line break follows the root element's end tag.
    const FINAL_NEWLINE: bool = true;
}

/// `doc` as text, declaration first.
pub(crate) fn render<T: Document>(doc: &T) -> Result<String, OssError> {
    let mut out = String::from(DECLARATION);
    let mut serializer = Serializer::new(&mut out);
    serializer
        .indent(' ', 2)
        .expand_empty_elements(true)
        .set_quote_level(QuoteLevel::Full);
    doc.serialize(serializer)
        .map_err(|e| OssError::internal(format!("writing XML: {e}")))?;
    if T::FINAL_NEWLINE {
        out.push('\n');
    }
    Ok(out)
}

/// A response whose body is `doc`.
pub(crate) fn response<T: Document>(
    status: StatusCode,
    doc: &T,
) -> Result<Response<Body>, OssError> {
    let xml = render(doc)?;
    Ok(Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/xml")
        .header(CONTENT_LENGTH, xml.len())
        .body(Body::from(xml))
        .unwrap_or_default())
}

/// The response for a failed request: the `<Error>` document, `x-oss-ec` and the error's extra
/// headers. HEAD responses carry no body, so the XML goes base64-encoded into `x-oss-err`, as
/// OSS does.
pub(crate) fn error_response(
    error: &OssError,
    request_id: &str,
    host_id: &str,
    head: bool,
) -> Response<Body> {
    let xml = render(&responses::Error {
        code: &error.code,
        message: &error.message,
        request_id,
        host_id,
        ec: error.ec(),
    })
    .unwrap_or_default();
    let mut builder = Response::builder()
        .status(error.status)
        .header("x-oss-ec", error.ec())
        .header(CONTENT_TYPE, "application/xml");
    for (name, value) in &error.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            builder = builder.header(*name, v);
        }
    }
    let response = if head {
        builder
            .header(
                "x-oss-err",
                base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()),
            )
            .body(Body::empty())
    } else {
        builder
            .header(CONTENT_LENGTH, xml.len())
            .body(Body::from(xml))
    };
    response.unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A key, prefix or marker as a listing writes it: URL-encoded when the request asked for
/// `encoding-type=url`, as it is otherwise (the serializer escapes it). URL encoding keeps only
/// the unreserved characters and `/`; everything else, space and `+` included, becomes `%XX`,
/// so both `unquote` and query-style decoders read the key back unchanged.
pub(crate) fn encode_value(s: &str, url: bool) -> String {
    if url {
        transfer::encoding::encode_path(s).to_string()
    } else {
        s.to_owned()
    }
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
        assert_eq!(encode_value("a<b&", false), "a<b&");
    }

    #[test]
    fn error_document_is_escaped_and_indented() {
        let error = OssError::new(StatusCode::NOT_FOUND, "NoSuchKey", "a<b & \"c\" 'd'");
        let response = error_response(&error, "RID", "host:1", false);
        assert_eq!(response.headers()["x-oss-ec"], "0026-00000001");
        let xml = render(&responses::Error {
            code: &error.code,
            message: &error.message,
            request_id: "RID",
            host_id: "host:1",
            ec: error.ec(),
        })
        .expect("renders");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>NoSuchKey</Code>\n  <Message>a&lt;b &amp; &quot;c&quot; &apos;d&apos;</Message>\n  <RequestId>RID</RequestId>\n  <HostId>host:1</HostId>\n  <EC>0026-00000001</EC>\n</Error>\n"
        );
    }
}
