//! Compatibility with S3-compatible test servers, behind an explicit switch ([`S3Compat`]) that
//! only tests and the local stack turn on. A real S3 never needs it.

use std::error::Error as StdError;

use bytes::Bytes;

/// How far the S3 server under the store strays from S3, and what the store does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum S3Compat {
    /// Amazon S3 itself: no workarounds (the default).
    #[default]
    Aws,
    /// moto's server (5.x): its ListParts answer has the root element `ListPartsResponse`,
    /// where S3 sends `ListPartsResult` and the SDK requires it, so ListParts answers are
    /// rewritten.
    Moto,
}

impl S3Compat {
    /// Reads the switch from its name: `aws` (or empty) and `moto`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "aws" => Some(Self::Aws),
            "moto" => Some(Self::Moto),
            _ => None,
        }
    }
}

/// Accepts `ListPartsResponse` as the root element of a ListParts answer, as moto (5.x) sends it;
/// S3 sends `ListPartsResult`, which the SDK requires. Applied to ListParts calls only, whose
/// answers are small XML documents, so buffering the body is harmless.
#[derive(Debug)]
pub(super) struct ListPartsRootFix;

impl aws_sdk_s3::config::Intercept for ListPartsRootFix {
    fn name(&self) -> &'static str {
        "ListPartsRootFix"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), Box<dyn StdError + Send + Sync>> {
        use aws_sdk_s3::primitives::SdkBody;
        let response = context.response_mut();
        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
        let fixed = futures::stream::once(async move {
            let bytes = http_body_util::BodyExt::collect(body).await?.to_bytes();
            let bytes = match std::str::from_utf8(&bytes) {
                Ok(text) if text.contains("<ListPartsResponse") => Bytes::from(
                    text.replacen("<ListPartsResponse", "<ListPartsResult", 1)
                        .replacen("</ListPartsResponse>", "</ListPartsResult>", 1),
                ),
                _ => bytes,
            };
            Ok::<_, Box<dyn StdError + Send + Sync>>(http_body::Frame::data(bytes))
        });
        response.headers_mut().remove("content-length");
        *response.body_mut() = SdkBody::from_body_1_x(http_body_util::StreamBody::new(fixed));
        Ok(())
    }
}
