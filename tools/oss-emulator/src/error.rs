//! The errors the emulator answers with: status, OSS error code, message, OSS's "EC" code and
//! extra headers. How they go on the wire (the `<Error>` document, `x-oss-ec`, `x-oss-err` for
//! HEAD) is [`crate::xml::error_response`]'s job.

use std::borrow::Cow;

use http::StatusCode;

/// An error the emulator answers with, in OSS's shape.
#[derive(Debug, Clone)]
pub(crate) struct OssError {
    pub(crate) status: StatusCode,
    pub(crate) code: Cow<'static, str>,
    pub(crate) message: String,
    /// Extra response headers, e.g. `x-oss-next-append-position` or `x-oss-qos-delay-time`.
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl OssError {
    /// An error with a status, an OSS code and a message.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// An error with a code chosen at run time (fault injection).
    pub(crate) fn custom(status: StatusCode, code: String, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Owned(code),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// The same error with one more response header.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 404 NoSuchKey.
    pub(crate) fn no_such_key() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }

    /// 404 NoSuchBucket.
    pub(crate) fn no_such_bucket() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        )
    }

    /// 409 `FileAlreadyExists`: a write with `x-oss-forbid-overwrite: true` to a key in use.
    pub(crate) fn file_already_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        )
    }

    /// 404 NoSuchUpload.
    pub(crate) fn no_such_upload() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    }

    /// 400 `InvalidArgument` with `message`.
    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    /// 400 MalformedXML.
    pub(crate) fn malformed_xml() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    /// 500 `InternalError` with `message`.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// OSS's "EC" error-center code for this error. The values follow the shape OSS uses
    /// (`NNNN-NNNNNNNN`); clients only display them.
    pub(crate) fn ec(&self) -> &'static str {
        match &*self.code {
            "SignatureDoesNotMatch" => "0002-00000040",
            "InvalidAccessKeyId" => "0002-00000030",
            "InvalidSecurityToken" | "SecurityTokenExpired" => "0002-00000038",
            "AccessDenied" => "0003-00000001",
            "RequestTimeTooSkewed" => "0002-00000031",
            "NoSuchBucket" => "0015-00000101",
            "NoSuchKey" => "0026-00000001",
            "NoSuchUpload" => "0042-00000002",
            "InvalidObjectState" => "0016-00000001",
            "PreconditionFailed" => "0026-00000004",
            "InvalidRange" => "0016-00000005",
            "PositionNotEqualToLength" => "0026-00000015",
            "ObjectNotAppendable" => "0026-00000014",
            "RestoreAlreadyInProgress" => "0016-00000301",
            "EntityTooSmall" => "0042-00000305",
            "InvalidPart" => "0042-00000300",
            "InvalidPartOrder" => "0042-00000303",
            "MalformedXML" => "0016-00000608",
            "KeyTooLong" => "0016-00000706",
            "InvalidObjectName" => "0016-00000705",
            "MissingContentLength" => "0016-00000901",
            "InvalidDigest" | "BadDigest" => "0016-00000904",
            _ => "0000-00000000",
        }
    }
}
